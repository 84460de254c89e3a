//! LSTM gate kernels: the fused element-wise pass of one time step, forward and backward.
//!
//! Gate rows are PyTorch's `i, f, g, o`; every `[B, 4H]` buffer holds, per batch row, the four
//! `H`-wide gate blocks in that order. The recurrent products around these kernels are issued by
//! the shared sequence loop (`super::sequence`).

use super::activation::{sigmoid, tanh};

/// Forward gate pass of one step.
///
/// - `pre[B, 4H]`: read the gate pre-activations `W_ih x + b_ih + W_hh h + b_hh`; written the
///   activations `i = σ, f = σ, g = tanh, o = σ` (what backward needs).
/// - `c[B, H]`: read `c_{t-1}`, written `c_t = f ⊙ c_{t-1} + i ⊙ g`.
/// - `h[B, H]`: written `h_t = o ⊙ tanh(c_t)`.
pub fn forward_gates(pre: &mut [f32], c: &mut [f32], h: &mut [f32], hidden: usize) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { forward_gates_avx2(pre, c, h, hidden) };
        return;
    }
    forward_gates_scalar(pre, c, h, hidden, 0);
}

/// [`forward_gates`] one column at a time, for columns `from..H` of every row: the reference of
/// the vector version and its tail.
fn forward_gates_scalar(pre: &mut [f32], c: &mut [f32], h: &mut [f32], hidden: usize, from: usize) {
    let hs = hidden;
    for ((p, c), h) in pre
        .chunks_exact_mut(4 * hs)
        .zip(c.chunks_exact_mut(hs))
        .zip(h.chunks_exact_mut(hs))
    {
        let (pi, rest) = p.split_at_mut(hs);
        let (pf, rest) = rest.split_at_mut(hs);
        let (pg, po) = rest.split_at_mut(hs);
        for j in from..hs {
            let i = sigmoid(pi[j]);
            let f = sigmoid(pf[j]);
            let g = tanh(pg[j]);
            let o = sigmoid(po[j]);
            let cn = f * c[j] + i * g;
            c[j] = cn;
            h[j] = o * tanh(cn);
            pi[j] = i;
            pf[j] = f;
            pg[j] = g;
            po[j] = o;
        }
    }
}

/// [`forward_gates`] eight columns at a time with AVX2; the last `H mod 8` columns of each row
/// go through [`forward_gates_scalar`]. Bit-identical to the scalar pass.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn forward_gates_avx2(pre: &mut [f32], c: &mut [f32], h: &mut [f32], hidden: usize) {
    use super::activation::avx2::{sigmoid8, tanh8};
    use std::arch::x86_64::*;
    let hs = hidden;
    let main = hs - hs % 8;
    let rows = h.len() / hs;
    assert!(pre.len() >= rows * 4 * hs && c.len() >= rows * hs);
    for r in 0..rows {
        let p = pre[r * 4 * hs..].as_mut_ptr();
        let cr = c[r * hs..].as_mut_ptr();
        let hr = h[r * hs..].as_mut_ptr();
        for j in (0..main).step_by(8) {
            // SAFETY: j + 8 ≤ H, so every access stays inside row r of its buffer (checked above).
            unsafe {
                let i = sigmoid8(_mm256_loadu_ps(p.add(j)));
                let f = sigmoid8(_mm256_loadu_ps(p.add(hs + j)));
                let g = tanh8(_mm256_loadu_ps(p.add(2 * hs + j)));
                let o = sigmoid8(_mm256_loadu_ps(p.add(3 * hs + j)));
                let cn = _mm256_add_ps(
                    _mm256_mul_ps(f, _mm256_loadu_ps(cr.add(j))),
                    _mm256_mul_ps(i, g),
                );
                _mm256_storeu_ps(cr.add(j), cn);
                _mm256_storeu_ps(hr.add(j), _mm256_mul_ps(o, tanh8(cn)));
                _mm256_storeu_ps(p.add(j), i);
                _mm256_storeu_ps(p.add(hs + j), f);
                _mm256_storeu_ps(p.add(2 * hs + j), g);
                _mm256_storeu_ps(p.add(3 * hs + j), o);
            }
        }
    }
    if main < hs {
        forward_gates_scalar(pre, c, h, hidden, main);
    }
}

/// Backward gate pass of one step, the mirror of [`forward_gates`].
///
/// - `gates[B, 4H]`: read the activations `i, f, g, o` of step t.
/// - `c[B, H]`: read `c_t`; `c_prev[B, H]`: read `c_{t-1}`.
/// - `dh[B, H]`: read `∂L/∂h_t` (from the output and from step t+1).
/// - `dc[B, H]`: read `∂L/∂c_t` from step t+1; written `∂L/∂c_{t-1}`.
/// - `dpre[B, 4H]`: written `∂L/∂pre` for the four gates (the same for the input and the
///   recurrent product, and for both biases).
#[multiversion::multiversion(targets = "simd")]
pub fn backward_gates(
    gates: &[f32],
    c: &[f32],
    c_prev: &[f32],
    dh: &[f32],
    dc: &mut [f32],
    dpre: &mut [f32],
    hidden: usize,
) {
    let hs = hidden;
    for (((((g4, c), cp), dh), dc), dp) in gates
        .chunks_exact(4 * hs)
        .zip(c.chunks_exact(hs))
        .zip(c_prev.chunks_exact(hs))
        .zip(dh.chunks_exact(hs))
        .zip(dc.chunks_exact_mut(hs))
        .zip(dpre.chunks_exact_mut(4 * hs))
    {
        let (gi, rest) = g4.split_at(hs);
        let (gf, rest) = rest.split_at(hs);
        let (gg, go) = rest.split_at(hs);
        let (di, rest) = dp.split_at_mut(hs);
        let (df, rest) = rest.split_at_mut(hs);
        let (dg, d_o) = rest.split_at_mut(hs);
        for j in 0..hs {
            let (i, f, g, o) = (gi[j], gf[j], gg[j], go[j]);
            let tc = tanh(c[j]);
            let dct = dc[j] + dh[j] * o * (1.0 - tc * tc);
            di[j] = dct * g * i * (1.0 - i);
            df[j] = dct * cp[j] * f * (1.0 - f);
            dg[j] = dct * i * (1.0 - g * g);
            d_o[j] = dh[j] * tc * o * (1.0 - o);
            dc[j] = dct * f;
        }
    }
}

#[cfg(test)]
mod vector_tests {
    use super::*;

    #[test]
    fn vector_gates_equal_the_scalar_pass_bit_for_bit() {
        // H = 13: one vector block and a scalar tail per row; values up to the clamps and NaN.
        let (b, hs) = (3, 13);
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 * 40.0 - 20.0
        };
        let mut pre: Vec<f32> = (0..b * 4 * hs).map(|_| next()).collect();
        pre[5] = 200.0;
        pre[6] = -200.0;
        pre[7] = f32::NAN;
        let c: Vec<f32> = (0..b * hs).map(|_| next() / 4.0).collect();
        let (mut p1, mut c1, mut h1) = (pre.clone(), c.clone(), vec![0.0; b * hs]);
        let (mut p2, mut c2, mut h2) = (pre, c, vec![0.0; b * hs]);
        forward_gates(&mut p1, &mut c1, &mut h1, hs);
        forward_gates_scalar(&mut p2, &mut c2, &mut h2, hs, 0);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&p1), bits(&p2));
        assert_eq!(bits(&c1), bits(&c2));
        assert_eq!(bits(&h1), bits(&h2));
        assert!(p1[7].is_nan());
    }
}

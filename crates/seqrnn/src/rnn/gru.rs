//! GRU gate kernels: the fused element-wise passes of one time step, forward and backward, for
//! both forms of the candidate state ([`GruVariant`](super::GruVariant)).
//!
//! Gate rows are PyTorch's `r, z, n`; every `[B, 3H]` buffer holds, per batch row, the three
//! `H`-wide gate blocks in that order. The update is `h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}` in both forms.
//! The recurrent products around these kernels are issued by the shared sequence loop
//! (`super::sequence`); "reset before" needs two per step, because `W_hn` multiplies `r ⊙ h`.

use super::activation::{sigmoid, tanh};

/// Forward gate pass of one "reset after" step.
///
/// - `pre[B, 3H]`: read the input part `W_ih x + b_ih` plus `b_hr, b_hz` in the `r, z` blocks;
///   written the activations `r, z, n`.
/// - `hg[B, 3H]`: read `W_hh h_{t-1}` (no bias).
/// - `b_hn[H]`: read, the recurrent bias of the `n` gate (inside the reset product).
/// - `hn[B, H]`: written `W_hn h_{t-1} + b_hn` (training keeps it for backward; inference passes
///   scratch).
/// - `h[B, H]`: read `h_{t-1}`, written `h_t`.
pub fn forward_gates_reset_after(
    pre: &mut [f32],
    hg: &[f32],
    b_hn: &[f32],
    hn: &mut [f32],
    h: &mut [f32],
    hidden: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { forward_gates_reset_after_avx2(pre, hg, b_hn, hn, h, hidden) };
        return;
    }
    forward_gates_reset_after_scalar(pre, hg, b_hn, hn, h, hidden, 0);
}

/// [`forward_gates_reset_after`] one column at a time, for columns `from..H` of every row: the
/// reference of the vector version and its tail.
fn forward_gates_reset_after_scalar(
    pre: &mut [f32],
    hg: &[f32],
    b_hn: &[f32],
    hn: &mut [f32],
    h: &mut [f32],
    hidden: usize,
    from: usize,
) {
    let hs = hidden;
    for (((p, q), h), hn_row) in pre
        .chunks_exact_mut(3 * hs)
        .zip(hg.chunks_exact(3 * hs))
        .zip(h.chunks_exact_mut(hs))
        .zip(hn.chunks_exact_mut(hs))
    {
        let (pr, rest) = p.split_at_mut(hs);
        let (pz, pn) = rest.split_at_mut(hs);
        let (qr, rest) = q.split_at(hs);
        let (qz, qn) = rest.split_at(hs);
        for j in from..hs {
            let r = sigmoid(pr[j] + qr[j]);
            let z = sigmoid(pz[j] + qz[j]);
            let hnj = qn[j] + b_hn[j];
            let n = tanh(pn[j] + r * hnj);
            h[j] = (1.0 - z) * n + z * h[j];
            pr[j] = r;
            pz[j] = z;
            pn[j] = n;
            hn_row[j] = hnj;
        }
    }
}

/// [`forward_gates_reset_after`] eight columns at a time with AVX2; the last `H mod 8` columns
/// of each row go through [`forward_gates_reset_after_scalar`]. Bit-identical to the scalar
/// pass (the same operations in the same order; the activations are those of the LSTM's
/// vector pass).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn forward_gates_reset_after_avx2(
    pre: &mut [f32],
    hg: &[f32],
    b_hn: &[f32],
    hn: &mut [f32],
    h: &mut [f32],
    hidden: usize,
) {
    use super::activation::avx2::{sigmoid8, tanh8};
    use std::arch::x86_64::*;
    let hs = hidden;
    let main = hs - hs % 8;
    let rows = h.len() / hs;
    assert!(pre.len() >= rows * 3 * hs && hg.len() >= rows * 3 * hs);
    assert!(hn.len() >= rows * hs && b_hn.len() >= hs);
    for row in 0..rows {
        let p = pre[row * 3 * hs..].as_mut_ptr();
        let q = hg[row * 3 * hs..].as_ptr();
        let hr = h[row * hs..].as_mut_ptr();
        let nr = hn[row * hs..].as_mut_ptr();
        for j in (0..main).step_by(8) {
            // SAFETY: j + 8 ≤ H, so every access stays inside row `row` of its buffer (checked
            // above).
            unsafe {
                let load = |ptr: *const f32| _mm256_loadu_ps(ptr);
                let r = sigmoid8(_mm256_add_ps(load(p.add(j)), load(q.add(j))));
                let z = sigmoid8(_mm256_add_ps(load(p.add(hs + j)), load(q.add(hs + j))));
                let hnj = _mm256_add_ps(load(q.add(2 * hs + j)), load(b_hn.as_ptr().add(j)));
                let n = tanh8(_mm256_add_ps(
                    load(p.add(2 * hs + j)),
                    _mm256_mul_ps(r, hnj),
                ));
                let one_minus_z = _mm256_sub_ps(_mm256_set1_ps(1.0), z);
                let hj = _mm256_add_ps(
                    _mm256_mul_ps(one_minus_z, n),
                    _mm256_mul_ps(z, load(hr.add(j))),
                );
                _mm256_storeu_ps(hr.add(j), hj);
                _mm256_storeu_ps(p.add(j), r);
                _mm256_storeu_ps(p.add(hs + j), z);
                _mm256_storeu_ps(p.add(2 * hs + j), n);
                _mm256_storeu_ps(nr.add(j), hnj);
            }
        }
    }
    if main < hs {
        forward_gates_reset_after_scalar(pre, hg, b_hn, hn, h, hidden, main);
    }
}

/// Backward gate pass of one "reset after" step, the mirror of [`forward_gates_reset_after`].
///
/// - `gates[B, 3H]`: read the activations `r, z, n`; `hn[B, H]`: read `W_hn h_{t-1} + b_hn`.
/// - `h_prev[B, H]`: read `h_{t-1}`.
/// - `dh[B, H]`: read `∂L/∂h_t`; written the direct part of `∂L/∂h_{t-1}`, `dh ⊙ z` (the loop
///   adds `dhg · W_hh`).
/// - `dxg[B, 3H]`: written `∂L/∂(W_ih x + b_ih)`; `dhg[B, 3H]`: written `∂L/∂(W_hh h + b_hh)`.
#[multiversion::multiversion(targets = "simd")]
pub fn backward_gates_reset_after(
    gates: &[f32],
    hn: &[f32],
    h_prev: &[f32],
    dh: &mut [f32],
    dxg: &mut [f32],
    dhg: &mut [f32],
    hidden: usize,
) {
    let hs = hidden;
    for (((((g3, hn), hp), dh), dx), dq) in gates
        .chunks_exact(3 * hs)
        .zip(hn.chunks_exact(hs))
        .zip(h_prev.chunks_exact(hs))
        .zip(dh.chunks_exact_mut(hs))
        .zip(dxg.chunks_exact_mut(3 * hs))
        .zip(dhg.chunks_exact_mut(3 * hs))
    {
        let (gr, rest) = g3.split_at(hs);
        let (gz, gn) = rest.split_at(hs);
        let (dxr, rest) = dx.split_at_mut(hs);
        let (dxz, dxn) = rest.split_at_mut(hs);
        let (dqr, rest) = dq.split_at_mut(hs);
        let (dqz, dqn) = rest.split_at_mut(hs);
        for j in 0..hs {
            let (r, z, n) = (gr[j], gz[j], gn[j]);
            let d = dh[j];
            let dn = d * (1.0 - z) * (1.0 - n * n);
            let dz = d * (hp[j] - n) * z * (1.0 - z);
            let dr = dn * hn[j] * r * (1.0 - r);
            dxr[j] = dr;
            dxz[j] = dz;
            dxn[j] = dn;
            dqr[j] = dr;
            dqz[j] = dz;
            dqn[j] = dn * r;
            dh[j] = d * z;
        }
    }
}

/// First forward pass of a "reset before" step: the `r` and `z` gates.
///
/// - `pre[B, 3H]`: read in the `r, z` blocks the full pre-activations (input part, both biases and
///   `W_h{r,z} h_{t-1}`); written the activations `r, z` there. The `n` block is left alone.
/// - `h[B, H]`: read `h_{t-1}`.
/// - `rh[B, H]`: written `r ⊙ h_{t-1}`, the operand of the `W_hn` product.
#[multiversion::multiversion(targets = "simd")]
pub fn forward_rz_reset_before(pre: &mut [f32], h: &[f32], rh: &mut [f32], hidden: usize) {
    let hs = hidden;
    for ((p, h), rh) in pre
        .chunks_exact_mut(3 * hs)
        .zip(h.chunks_exact(hs))
        .zip(rh.chunks_exact_mut(hs))
    {
        let (pr, rest) = p.split_at_mut(hs);
        let pz = &mut rest[..hs];
        for j in 0..hs {
            let r = sigmoid(pr[j]);
            pz[j] = sigmoid(pz[j]);
            pr[j] = r;
            rh[j] = r * h[j];
        }
    }
}

/// Second forward pass of a "reset before" step: the candidate and the new state.
///
/// - `pre[B, 3H]`: read `z` and, in the `n` block, the full pre-activation
///   `W_in x + b_in + b_hn + W_hn (r ⊙ h)`; written `n` there.
/// - `h[B, H]`: read `h_{t-1}`, written `h_t`.
#[multiversion::multiversion(targets = "simd")]
pub fn forward_n_reset_before(pre: &mut [f32], h: &mut [f32], hidden: usize) {
    let hs = hidden;
    for (p, h) in pre.chunks_exact_mut(3 * hs).zip(h.chunks_exact_mut(hs)) {
        let (_, rest) = p.split_at_mut(hs);
        let (pz, pn) = rest.split_at_mut(hs);
        for j in 0..hs {
            let n = tanh(pn[j]);
            let z = pz[j];
            h[j] = (1.0 - z) * n + z * h[j];
            pn[j] = n;
        }
    }
}

/// First backward pass of a "reset before" step: gradients of the `z` and `n` pre-activations.
///
/// - `gates[B, 3H]`: read `r, z, n`; `h_prev[B, H]`: read `h_{t-1}`; `dh[B, H]`: read `∂L/∂h_t`.
/// - `dpre[B, 3H]`: written in the `z` and `n` blocks (the loop then forms `∂L/∂(r ⊙ h) =
///   dpre_n · W_hn` and calls [`backward_r_reset_before`]).
#[multiversion::multiversion(targets = "simd")]
pub fn backward_zn_reset_before(
    gates: &[f32],
    h_prev: &[f32],
    dh: &[f32],
    dpre: &mut [f32],
    hidden: usize,
) {
    let hs = hidden;
    for (((g3, hp), dh), dp) in gates
        .chunks_exact(3 * hs)
        .zip(h_prev.chunks_exact(hs))
        .zip(dh.chunks_exact(hs))
        .zip(dpre.chunks_exact_mut(3 * hs))
    {
        let (_, rest) = g3.split_at(hs);
        let (gz, gn) = rest.split_at(hs);
        let (_, rest) = dp.split_at_mut(hs);
        let (dz, dn) = rest.split_at_mut(hs);
        for j in 0..hs {
            let (z, n) = (gz[j], gn[j]);
            dn[j] = dh[j] * (1.0 - z) * (1.0 - n * n);
            dz[j] = dh[j] * (hp[j] - n) * z * (1.0 - z);
        }
    }
}

/// Second backward pass of a "reset before" step: the `r` gate and the direct state gradient.
///
/// - `gates[B, 3H]`: read `r, z`; `h_prev[B, H]`: read `h_{t-1}`.
/// - `drh[B, H]`: read `∂L/∂(r ⊙ h_{t-1})`.
/// - `dh[B, H]`: read `∂L/∂h_t`; written `dh ⊙ z + drh ⊙ r` (the loop adds the `r, z` products).
/// - `dpre[B, 3H]`: written in the `r` block.
#[multiversion::multiversion(targets = "simd")]
pub fn backward_r_reset_before(
    gates: &[f32],
    h_prev: &[f32],
    drh: &[f32],
    dh: &mut [f32],
    dpre: &mut [f32],
    hidden: usize,
) {
    let hs = hidden;
    for ((((g3, hp), drh), dh), dp) in gates
        .chunks_exact(3 * hs)
        .zip(h_prev.chunks_exact(hs))
        .zip(drh.chunks_exact(hs))
        .zip(dh.chunks_exact_mut(hs))
        .zip(dpre.chunks_exact_mut(3 * hs))
    {
        let (gr, rest) = g3.split_at(hs);
        let gz = &rest[..hs];
        let dr = &mut dp[..hs];
        for j in 0..hs {
            let r = gr[j];
            dr[j] = drh[j] * hp[j] * r * (1.0 - r);
            dh[j] = dh[j] * gz[j] + drh[j] * r;
        }
    }
}

#[cfg(test)]
mod vector_tests {
    use super::*;

    #[test]
    fn vector_reset_after_gates_equal_the_scalar_pass_bit_for_bit() {
        // H = 13: one vector block and a scalar tail per row; values up to the clamps and NaN.
        let (b, hs) = (3, 13);
        let mut seed = 11u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 * 40.0 - 20.0
        };
        let mut pre: Vec<f32> = (0..b * 3 * hs).map(|_| next()).collect();
        pre[5] = 200.0;
        pre[6] = -200.0;
        pre[7] = f32::NAN;
        let hg: Vec<f32> = (0..b * 3 * hs).map(|_| next() / 2.0).collect();
        let b_hn: Vec<f32> = (0..hs).map(|_| next() / 8.0).collect();
        let h: Vec<f32> = (0..b * hs).map(|_| next() / 20.0).collect();
        let (mut p1, mut h1, mut n1) = (pre.clone(), h.clone(), vec![0.0; b * hs]);
        let (mut p2, mut h2, mut n2) = (pre, h, vec![0.0; b * hs]);
        forward_gates_reset_after(&mut p1, &hg, &b_hn, &mut n1, &mut h1, hs);
        forward_gates_reset_after_scalar(&mut p2, &hg, &b_hn, &mut n2, &mut h2, hs, 0);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&p1), bits(&p2));
        assert_eq!(bits(&h1), bits(&h2));
        assert_eq!(bits(&n1), bits(&n2));
        assert!(p1[7].is_nan());
    }
}

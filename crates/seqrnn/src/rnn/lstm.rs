//! LSTM gate kernels: the fused element-wise pass of one time step, forward and backward.
//!
//! Gate rows are PyTorch's `i, f, g, o`; every `[B, 4H]` buffer holds, per batch row, the four
//! `H`-wide gate blocks in that order. The recurrent products around these kernels are issued by
//! the shared sequence loop ([`super::sequence`]).

use super::activation::{sigmoid, tanh};

/// Forward gate pass of one step.
///
/// - `pre[B, 4H]`: read the gate pre-activations `W_ih x + b_ih + W_hh h + b_hh`; written the
///   activations `i = σ, f = σ, g = tanh, o = σ` (what backward needs).
/// - `c[B, H]`: read `c_{t-1}`, written `c_t = f ⊙ c_{t-1} + i ⊙ g`.
/// - `h[B, H]`: written `h_t = o ⊙ tanh(c_t)`.
#[multiversion::multiversion(targets = "simd")]
pub fn forward_gates(pre: &mut [f32], c: &mut [f32], h: &mut [f32], hidden: usize) {
    let hs = hidden;
    for ((p, c), h) in pre
        .chunks_exact_mut(4 * hs)
        .zip(c.chunks_exact_mut(hs))
        .zip(h.chunks_exact_mut(hs))
    {
        let (pi, rest) = p.split_at_mut(hs);
        let (pf, rest) = rest.split_at_mut(hs);
        let (pg, po) = rest.split_at_mut(hs);
        for j in 0..hs {
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

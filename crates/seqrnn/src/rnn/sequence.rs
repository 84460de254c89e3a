//! The sequence loop shared by every cell: one layer, one direction, over a whole sequence.
//!
//! Forward, the way cuDNN does it: one large product for the input projection of all `T` steps,
//! then per step the recurrent product(s) and one fused gate pass ([`super::lstm`], [`super::gru`]).
//! Backward mirrors it: per step the fused gate backward and the recurrent product that carries
//! `∂L/∂h` to the previous step; after the loop, the weight gradients in large products over all
//! `T·B` rows and the input gradient in one more.
//!
//! Buffers are time-major and row-major; this module's doc comments use the letters of
//! [`crate::rnn`]. A layer's output buffer is `[T, B, D·H]`; one direction owns the `H` columns
//! starting at `dir·H`.

use crate::linalg::{matmul, Accumulate, Mat, MatMut};

use super::config::{CellKind, GruVariant};
use super::params::{CellGrads, CellParams};
use super::{gru, lstm};

/// Everything fixed for one layer-direction during a pass.
#[derive(Clone, Copy)]
pub(crate) struct Pass<'a> {
    pub cell: CellKind,
    /// This layer-direction's weights.
    pub p: CellParams<'a>,
    /// Time steps `T`.
    pub t: usize,
    /// Batch rows `B`.
    pub b: usize,
    /// Units `H`.
    pub h: usize,
    /// Input features of this layer, `I_l`.
    pub input_size: usize,
    /// Whether this direction runs from `t = T−1` down to 0.
    pub reverse: bool,
    /// Width `D·H` of a row of the layer's output buffer.
    pub out_stride: usize,
    /// First column of this direction in the output buffer, `dir·H`.
    pub out_col: usize,
}

impl Pass<'_> {
    fn gh(&self) -> usize {
        self.cell.gates() * self.h
    }

    /// Time index of processing step `s` (forward in this direction's own order).
    fn time(&self, s: usize) -> usize {
        if self.reverse {
            self.t - 1 - s
        } else {
            s
        }
    }
}

/// Per-step scratch of the forward loop, allocated once by the caller.
pub(crate) struct ForwardScratch<'a> {
    /// `[G·H]`: the bias row added after the input projection.
    pub bias: &'a mut [f32],
    /// `[B, G·H]`: GRU "reset after" recurrent product.
    pub hg: &'a mut [f32],
    /// `[B, H]`: GRU "reset before" `r ⊙ h` when not cached.
    pub rh: &'a mut [f32],
}

/// Runs one layer-direction forward over the sequence.
///
/// - `x[T·B, I_l]`: read, the layer input.
/// - `h[B, H]`: read the initial state, written the final state; `c[B, H]` likewise (LSTM only).
/// - `out[T, B, D·H]`: written in this direction's columns.
/// - `gates[T·B, G·H]`: written; holds the gate activations afterwards (the training cache).
/// - `extra[T·B, H]`: written when given (training): LSTM `c_t`, GRU "reset after"
///   `W_hn h_{t-1} + b_hn`, GRU "reset before" `r ⊙ h_{t-1}`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    pass: &Pass<'_>,
    x: &[f32],
    h: &mut [f32],
    mut c: Option<&mut [f32]>,
    out: &mut [f32],
    gates: &mut [f32],
    mut extra: Option<&mut [f32]>,
    scratch: ForwardScratch<'_>,
) {
    let (b, hs, gh) = (pass.b, pass.h, pass.gh());
    let rows = pass.t * b;
    let p = pass.p;

    // Input projection of all steps: gates = x · W_ihᵀ + bias.
    matmul(
        MatMut::new(&mut gates[..rows * gh], rows, gh),
        Mat::new(&x[..rows * pass.input_size], rows, pass.input_size),
        Mat::new(p.w_ih, gh, pass.input_size).t(),
        Accumulate::Overwrite,
    );
    let bias = &mut scratch.bias[..gh];
    bias.copy_from_slice(p.b_ih);
    match pass.cell {
        // Both biases sit outside every nonlinearity's product: fold them.
        CellKind::Lstm | CellKind::Gru(GruVariant::ResetBefore) => {
            bias.iter_mut().zip(p.b_hh).for_each(|(a, b)| *a += b)
        }
        // b_hn stays inside r ⊙ (W_hn h + b_hn).
        CellKind::Gru(GruVariant::ResetAfter) => bias[..2 * hs]
            .iter_mut()
            .zip(p.b_hh)
            .for_each(|(a, b)| *a += b),
    }
    for row in gates[..rows * gh].chunks_exact_mut(gh) {
        row.iter_mut().zip(bias.iter()).for_each(|(a, b)| *a += b);
    }

    let w_hh = Mat::new(p.w_hh, gh, hs);
    for s in 0..pass.t {
        let t = pass.time(s);
        let g_t = &mut gates[t * b * gh..(t + 1) * b * gh];
        let extra_t = extra
            .as_deref_mut()
            .map(|e| &mut e[t * b * hs..(t + 1) * b * hs]);
        match pass.cell {
            CellKind::Lstm => {
                matmul(
                    MatMut::new(g_t, b, gh),
                    Mat::new(h, b, hs),
                    w_hh.t(),
                    Accumulate::Add,
                );
                let c = c.as_deref_mut().expect("LSTM needs a cell state");
                lstm::forward_gates(g_t, c, h, hs);
                if let Some(e) = extra_t {
                    e.copy_from_slice(c);
                }
            }
            CellKind::Gru(GruVariant::ResetAfter) => {
                matmul(
                    MatMut::new(&mut scratch.hg[..b * gh], b, gh),
                    Mat::new(h, b, hs),
                    w_hh.t(),
                    Accumulate::Overwrite,
                );
                let hn = match extra_t {
                    Some(e) => e,
                    None => &mut scratch.rh[..b * hs],
                };
                gru::forward_gates_reset_after(g_t, scratch.hg, &p.b_hh[2 * hs..], hn, h, hs);
            }
            CellKind::Gru(GruVariant::ResetBefore) => {
                let w_hrz = Mat::new(&p.w_hh[..2 * hs * hs], 2 * hs, hs);
                let w_hn = Mat::new(&p.w_hh[2 * hs * hs..], hs, hs);
                matmul(
                    MatMut::strided(g_t, b, 2 * hs, gh),
                    Mat::new(h, b, hs),
                    w_hrz.t(),
                    Accumulate::Add,
                );
                let rh = match extra_t {
                    Some(e) => e,
                    None => &mut scratch.rh[..b * hs],
                };
                gru::forward_rz_reset_before(g_t, h, rh, hs);
                matmul(
                    MatMut::strided(&mut g_t[2 * hs..], b, hs, gh),
                    Mat::new(rh, b, hs),
                    w_hn.t(),
                    Accumulate::Add,
                );
                gru::forward_n_reset_before(g_t, h, hs);
            }
        }
        // out[t] (this direction's columns) = h_t.
        let start = t * b * pass.out_stride + pass.out_col;
        for (row, hrow) in h.chunks_exact(hs).enumerate() {
            let o = start + row * pass.out_stride;
            out[o..o + hs].copy_from_slice(hrow);
        }
    }
}

/// What the forward pass of one layer-direction left for backward.
pub(crate) struct Saved<'a> {
    /// `x[T·B, I_l]`: the layer input.
    pub x: &'a [f32],
    /// `out[T, B, D·H]`: the layer output (this direction's columns are its `h_t`).
    pub out: &'a [f32],
    /// `h0[B, H]`, `c0[B, H]` (LSTM): the initial state.
    pub h0: &'a [f32],
    pub c0: Option<&'a [f32]>,
    /// `gates[T·B, G·H]`: activations; `extra[T·B, H]`: see [`forward`].
    pub gates: &'a [f32],
    pub extra: &'a [f32],
}

/// Per-pass gradient buffers of the backward loop, allocated once by the caller.
pub(crate) struct BackwardScratch<'a> {
    /// `[T·B, G·H]`: `∂L/∂` of the input-side gate pre-activations, all steps.
    pub dxg: &'a mut [f32],
    /// `[T·B, G·H]`: `∂L/∂` of the recurrent-side pre-activations (GRU "reset after" only;
    /// the other cells share `dxg`).
    pub dhg: &'a mut [f32],
    /// `[B, H]`: `h_{t-1}` gathered contiguous.
    pub h_prev: &'a mut [f32],
    /// `[B, H]`: GRU "reset before" `∂L/∂(r ⊙ h)`.
    pub drh: &'a mut [f32],
}

/// Runs one layer-direction backward over the sequence; the mirror of [`forward`].
///
/// - `dy[T, B, D·H]`: read in this direction's columns, `∂L/∂out`.
/// - `dh[B, H]`: read `∂L/∂h_T` (final state), written `∂L/∂h_0`; `dc[B, H]` likewise (LSTM).
/// - `grads`: accumulated.
/// - `dx[T·B, I_l]`: written (`dx_acc = Overwrite`) or accumulated (`Add`), `∂L/∂x`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    pass: &Pass<'_>,
    saved: &Saved<'_>,
    dy: &[f32],
    dh: &mut [f32],
    mut dc: Option<&mut [f32]>,
    grads: CellGrads<'_>,
    dx: &mut [f32],
    dx_acc: Accumulate,
    scratch: BackwardScratch<'_>,
) {
    let (b, hs, gh, tt) = (pass.b, pass.h, pass.gh(), pass.t);
    let rows = tt * b;
    let p = pass.p;
    let w_hh = Mat::new(p.w_hh, gh, hs);
    let bh = b * hs;
    let reset_after = pass.cell == CellKind::Gru(GruVariant::ResetAfter);

    for s in (0..tt).rev() {
        let t = pass.time(s);
        let prev = if s == 0 { None } else { Some(pass.time(s - 1)) };
        // ∂L/∂h_t = from step t+1 (dh) + from the output at t.
        for (r, drow) in dh.chunks_exact_mut(hs).enumerate() {
            let o = t * b * pass.out_stride + pass.out_col + r * pass.out_stride;
            drow.iter_mut()
                .zip(&dy[o..o + hs])
                .for_each(|(a, d)| *a += d);
        }
        let h_prev: &[f32] = match prev {
            None => saved.h0,
            Some(tp) => {
                for (r, dst) in scratch.h_prev.chunks_exact_mut(hs).enumerate() {
                    let o = tp * b * pass.out_stride + pass.out_col + r * pass.out_stride;
                    dst.copy_from_slice(&saved.out[o..o + hs]);
                }
                &scratch.h_prev[..bh]
            }
        };
        let g_t = &saved.gates[t * b * gh..(t + 1) * b * gh];
        let e_t = &saved.extra[t * bh..(t + 1) * bh];
        let dxg_t = &mut scratch.dxg[t * b * gh..(t + 1) * b * gh];
        match pass.cell {
            CellKind::Lstm => {
                let c_prev = match prev {
                    None => saved.c0.expect("LSTM needs a cell state"),
                    Some(tp) => &saved.extra[tp * bh..(tp + 1) * bh],
                };
                let dc = dc.as_deref_mut().expect("LSTM needs a cell state");
                lstm::backward_gates(g_t, e_t, c_prev, dh, dc, dxg_t, hs);
                matmul(
                    MatMut::new(dh, b, hs),
                    Mat::new(dxg_t, b, gh),
                    w_hh,
                    Accumulate::Overwrite,
                );
            }
            CellKind::Gru(GruVariant::ResetAfter) => {
                let dhg_t = &mut scratch.dhg[t * b * gh..(t + 1) * b * gh];
                gru::backward_gates_reset_after(g_t, e_t, h_prev, dh, dxg_t, dhg_t, hs);
                matmul(
                    MatMut::new(dh, b, hs),
                    Mat::new(dhg_t, b, gh),
                    w_hh,
                    Accumulate::Add,
                );
            }
            CellKind::Gru(GruVariant::ResetBefore) => {
                gru::backward_zn_reset_before(g_t, h_prev, dh, dxg_t, hs);
                let drh = &mut scratch.drh[..bh];
                matmul(
                    MatMut::new(drh, b, hs),
                    Mat::strided(&dxg_t[2 * hs..], b, hs, gh),
                    Mat::new(&p.w_hh[2 * hs * hs..], hs, hs),
                    Accumulate::Overwrite,
                );
                gru::backward_r_reset_before(g_t, h_prev, drh, dh, dxg_t, hs);
                matmul(
                    MatMut::new(dh, b, hs),
                    Mat::strided(dxg_t, b, 2 * hs, gh),
                    Mat::new(&p.w_hh[..2 * hs * hs], 2 * hs, hs),
                    Accumulate::Add,
                );
            }
        }
    }

    let dxg = &scratch.dxg[..rows * gh];
    let dhg: &[f32] = if reset_after {
        &scratch.dhg[..rows * gh]
    } else {
        dxg
    };

    // Weight gradients over all steps at once.
    matmul(
        MatMut::new(grads.dw_ih, gh, pass.input_size),
        Mat::new(dxg, rows, gh).t(),
        Mat::new(&saved.x[..rows * pass.input_size], rows, pass.input_size),
        Accumulate::Add,
    );
    for row in dxg.chunks_exact(gh) {
        grads.db_ih.iter_mut().zip(row).for_each(|(a, d)| *a += d);
    }
    for row in dhg.chunks_exact(gh) {
        grads.db_hh.iter_mut().zip(row).for_each(|(a, d)| *a += d);
    }
    // dW_hh += Σ_t dhg_tᵀ · h_{t-1}. Rows 0..R of the gate blocks use h_{t-1}; for "reset
    // before" the n rows use the cached r ⊙ h_{t-1} instead.
    let h_rows = match pass.cell {
        CellKind::Gru(GruVariant::ResetBefore) => 2 * hs,
        _ => gh,
    };
    let (dw_h, dw_n) = grads.dw_hh.split_at_mut(h_rows * hs);
    // The first processed step reads h0; the others read the output of the step before.
    let (first, rest_start, src_start) = if pass.reverse {
        (tt - 1, 0, 1)
    } else {
        (0, 1, 0)
    };
    matmul(
        MatMut::new(dw_h, h_rows, hs),
        Mat::strided(&dhg[first * b * gh..], b, h_rows, gh).t(),
        Mat::new(saved.h0, b, hs),
        Accumulate::Add,
    );
    if tt > 1 {
        let n = (tt - 1) * b;
        matmul(
            MatMut::new(dw_h, h_rows, hs),
            Mat::strided(&dhg[rest_start * b * gh..], n, h_rows, gh).t(),
            Mat::strided(
                &saved.out[src_start * b * pass.out_stride + pass.out_col..],
                n,
                hs,
                pass.out_stride,
            ),
            Accumulate::Add,
        );
    }
    if h_rows < gh {
        matmul(
            MatMut::new(dw_n, hs, hs),
            Mat::strided(&dxg[2 * hs..], rows, hs, gh).t(),
            Mat::new(&saved.extra[..rows * hs], rows, hs),
            Accumulate::Add,
        );
    }
    // Input gradient of all steps at once.
    matmul(
        MatMut::new(&mut dx[..rows * pass.input_size], rows, pass.input_size),
        Mat::new(dxg, rows, gh),
        Mat::new(p.w_ih, gh, pass.input_size),
        dx_acc,
    );
}

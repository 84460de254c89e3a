//! The sequence loop shared by every cell: one layer, one direction, over a whole sequence.
//!
//! Forward, the way cuDNN does it: one large product for the input projection of all `T` steps,
//! then per step the recurrent product(s) and one fused gate pass ([`super::lstm`], [`super::gru`]).
//! Backward mirrors it: per step the fused gate backward and the recurrent product that carries
//! `∂L/∂h` to the previous step; after the loop, the weight gradients in large products over all
//! `T·B` rows and the input gradient in one more.
//!
//! Each batch row's recurrence depends on that row only, so with several threads and small
//! per-step products the step loops run once per block of rows, each block on its own thread
//! (`row_bounds`); the all-steps products stay whole and split inside the matrix multiply.
//!
//! Buffers are time-major and row-major; this module's doc comments use the letters of
//! [`crate::rnn`]. A layer's output buffer is `[T, B, D·H]`; one direction owns the `H` columns
//! starting at `dir·H`.

use crate::linalg::{matmul, matmul_prepared, threads, Accumulate, Mat, MatMut, Prepared};

use super::config::{CellKind, GruVariant};
use super::params::{CellGrads, CellParams};
use super::{gru, lstm, minimal};

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
    /// The weights packed once for many passes (batch-invariant inference), or `None`: the
    /// input projection then runs as a plain product and `W_hh` is prepared per pass.
    pub packs: Option<&'a PassPacks<'a>>,
}

/// One layer-direction's weights packed once for any number of inference passes of any batch
/// size ([`Prepared::for_any_rows`]): a row's outputs are then the same whoever else is in its
/// batch. What [`crate::rnn::RnnPacks`] holds per layer-direction.
pub(crate) struct PassPacks<'a> {
    /// `W_ihᵀ`, the input projection's operand.
    w_ih: Prepared<'a>,
    /// `W_hhᵀ` whole, or (GRU "reset before") its `r,z` rows; `None` for the minimal cells.
    w_hh: Option<Prepared<'a>>,
    /// GRU "reset before": the `n` rows of `W_hhᵀ`.
    w_hn: Option<Prepared<'a>>,
}

impl<'a> PassPacks<'a> {
    /// Packs the weights of `p` (a `cell` layer-direction of `h` units and `input_size` inputs).
    pub(crate) fn new(cell: CellKind, p: CellParams<'a>, h: usize, input_size: usize) -> Self {
        let gh = cell.gates() * h;
        let w_ih = Prepared::for_any_rows(Mat::new(p.w_ih, gh, input_size).t());
        let rows = |r: std::ops::Range<usize>| {
            Prepared::for_any_rows(Mat::new(&p.w_hh[r.start * h..r.end * h], r.len(), h).t())
        };
        let (w_hh, w_hn) = match cell {
            CellKind::Gru(GruVariant::ResetBefore) => {
                (Some(rows(0..2 * h)), Some(rows(2 * h..3 * h)))
            }
            CellKind::MinGru | CellKind::MinLstm => (None, None),
            _ => (Some(rows(0..gh)), None),
        };
        PassPacks { w_ih, w_hh, w_hn }
    }
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
    c: Option<&mut [f32]>,
    out: &mut [f32],
    gates: &mut [f32],
    extra: Option<&mut [f32]>,
    scratch: ForwardScratch<'_>,
) {
    let (b, hs, gh) = (pass.b, pass.h, pass.gh());
    let rows = pass.t * b;
    let p = pass.p;

    // Input projection of all steps: gates = x · W_ihᵀ + bias.
    let (g_all, x_all) = (
        MatMut::new(&mut gates[..rows * gh], rows, gh),
        Mat::new(&x[..rows * pass.input_size], rows, pass.input_size),
    );
    match pass.packs {
        Some(packs) => matmul_prepared(g_all, x_all, &packs.w_ih, Accumulate::Overwrite),
        None => matmul(
            g_all,
            x_all,
            Mat::new(p.w_ih, gh, pass.input_size).t(),
            Accumulate::Overwrite,
        ),
    }
    let bias = &mut scratch.bias[..gh];
    bias.copy_from_slice(p.b_ih);
    match pass.cell {
        // Both biases sit outside every nonlinearity's product: fold them (the minimal cells
        // have no b_hh).
        CellKind::Lstm
        | CellKind::Gru(GruVariant::ResetBefore)
        | CellKind::MinGru
        | CellKind::MinLstm => bias.iter_mut().zip(p.b_hh).for_each(|(a, b)| *a += b),
        // b_hn stays inside r ⊙ (W_hn h + b_hn).
        CellKind::Gru(GruVariant::ResetAfter) => bias[..2 * hs]
            .iter_mut()
            .zip(p.b_hh)
            .for_each(|(a, b)| *a += b),
    }
    for row in gates[..rows * gh].chunks_exact_mut(gh) {
        row.iter_mut().zip(bias.iter()).for_each(|(a, b)| *a += b);
    }

    // The recurrence of each batch row depends on that row only: with several threads and
    // small per-step products, each thread takes a block of rows through all steps (one fork
    // per pass instead of one per step; see `row_bounds`).
    let bounds = row_bounds(pass.cell, b, gh, hs);
    let mut gates_b = split_time_rows(&mut gates[..rows * gh], b, gh, &bounds);
    let mut out_b = split_time_rows(
        &mut out[..rows * pass.out_stride],
        b,
        pass.out_stride,
        &bounds,
    );
    let mut extra_b = match extra {
        Some(e) => split_time_rows(&mut e[..rows * hs], b, hs, &bounds),
        None => empty_blocks(&bounds),
    };
    let h_b = split_rows(&mut h[..b * hs], hs, &bounds);
    let c_b = match c {
        Some(c) => split_rows(&mut c[..b * hs], hs, &bounds),
        None => empty_rows(&bounds),
    };
    let hg_b = split_rows(scratch.hg, gh, &bounds);
    let rh_b = split_rows(scratch.rh, hs, &bounds);
    let mut blocks: Vec<ForwardRows<'_>> = h_b
        .into_iter()
        .zip(c_b)
        .zip(hg_b.into_iter().zip(rh_b))
        .enumerate()
        .map(|(k, ((h, c), (hg, rh)))| ForwardRows {
            rows: bounds[k + 1] - bounds[k],
            h,
            c,
            gates: std::mem::take(&mut gates_b[k]),
            out: std::mem::take(&mut out_b[k]),
            extra: std::mem::take(&mut extra_b[k]),
            hg,
            rh,
        })
        .collect();
    match blocks.len() {
        1 => forward_rows(pass, &mut blocks[0], threads()),
        _ => rayon::scope(|sc| {
            for blk in blocks.iter_mut() {
                sc.spawn(move |_| forward_rows(pass, blk, 1));
            }
        }),
    }
}

/// One block of batch rows of a forward pass: per step `t`, `gates[t]` is `[R, G·H]`,
/// `out[t]` `[R, D·H]` (this direction's columns written), `extra[t]` `[R, H]` (empty when not
/// cached); `h`, `c` `[R, H]` the running state; `hg[R, G·H]`, `rh[R, H]` scratch.
struct ForwardRows<'a> {
    rows: usize,
    h: &'a mut [f32],
    c: &'a mut [f32],
    gates: Vec<&'a mut [f32]>,
    out: Vec<&'a mut [f32]>,
    extra: Vec<&'a mut [f32]>,
    hg: &'a mut [f32],
    rh: &'a mut [f32],
}

/// Which per-step product a recurrent weight is prepared for.
#[derive(Clone, Copy)]
enum StepProduct {
    /// `h_{t-1} · W_hhᵀ`: the weight used transposed.
    Forward,
    /// `∂gates · W_hh`: the weight used as stored.
    Backward,
}

/// A pass's recurrent weight prepared once for the per-step products of a block of `b` rows:
/// `W_hh` whole, or for GRU "reset before" its `r,z` rows (first) and its `n` rows (second),
/// which multiply different left operands; nothing for the minimal cells, which have none.
fn prepare_w_hh<'a>(
    pass: &Pass<'a>,
    b: usize,
    threads: usize,
    product: StepProduct,
) -> (Option<Prepared<'a>>, Option<Prepared<'a>>) {
    let (hs, w) = (pass.h, pass.p.w_hh);
    let prepare = |rows: std::ops::Range<usize>| {
        let m = Mat::new(&w[rows.start * hs..rows.end * hs], rows.len(), hs);
        let m = match product {
            StepProduct::Forward => m.t(),
            StepProduct::Backward => m,
        };
        Prepared::new(m, b, threads, pass.t)
    };
    match pass.cell {
        CellKind::Gru(GruVariant::ResetBefore) => {
            (Some(prepare(0..2 * hs)), Some(prepare(2 * hs..3 * hs)))
        }
        CellKind::MinGru | CellKind::MinLstm => (None, None),
        _ => (Some(prepare(0..pass.gh())), None),
    }
}

/// The recurrence of one block of rows over all steps: recurrent product(s) and fused gates.
/// The recurrent weights are prepared for the block's products once (`threads`: 1 when the
/// block runs inside a row split, else [`threads`]).
fn forward_rows(pass: &Pass<'_>, blk: &mut ForwardRows<'_>, threads: usize) {
    let (b, hs, gh) = (blk.rows, pass.h, pass.gh());
    let p = pass.p;
    let owned;
    let (w_a, w_n) = match pass.packs {
        Some(packs) => (packs.w_hh.as_ref(), packs.w_hn.as_ref()),
        None => {
            owned = prepare_w_hh(pass, b, threads, StepProduct::Forward);
            (owned.0.as_ref(), owned.1.as_ref())
        }
    };
    let h = &mut *blk.h;
    for s in 0..pass.t {
        let t = pass.time(s);
        let g_t = &mut *blk.gates[t];
        let extra_t = blk.extra.get_mut(t).map(|e| &mut **e);
        match pass.cell {
            CellKind::MinGru | CellKind::MinLstm => {
                let pre = match extra_t {
                    Some(e) => e,
                    None => &mut blk.rh[..b * hs],
                };
                minimal::forward_gates(pass.cell, g_t, pre, h, hs);
            }
            CellKind::Lstm => {
                matmul_prepared(
                    MatMut::new(g_t, b, gh),
                    Mat::new(h, b, hs),
                    w_a.expect("prepared above"),
                    Accumulate::Add,
                );
                let c = &mut *blk.c;
                assert_eq!(c.len(), b * hs, "LSTM needs a cell state");
                lstm::forward_gates(g_t, c, h, hs);
                if let Some(e) = extra_t {
                    e.copy_from_slice(c);
                }
            }
            CellKind::Gru(GruVariant::ResetAfter) => {
                matmul_prepared(
                    MatMut::new(&mut blk.hg[..b * gh], b, gh),
                    Mat::new(h, b, hs),
                    w_a.expect("prepared above"),
                    Accumulate::Overwrite,
                );
                let hn = match extra_t {
                    Some(e) => e,
                    None => &mut blk.rh[..b * hs],
                };
                gru::forward_gates_reset_after(g_t, blk.hg, &p.b_hh[2 * hs..], hn, h, hs);
            }
            CellKind::Gru(GruVariant::ResetBefore) => {
                let w_hn = w_n.expect("prepared above");
                matmul_prepared(
                    MatMut::strided(g_t, b, 2 * hs, gh),
                    Mat::new(h, b, hs),
                    w_a.expect("prepared above"),
                    Accumulate::Add,
                );
                let rh = match extra_t {
                    Some(e) => e,
                    None => &mut blk.rh[..b * hs],
                };
                gru::forward_rz_reset_before(g_t, h, rh, hs);
                matmul_prepared(
                    MatMut::strided(&mut g_t[2 * hs..], b, hs, gh),
                    Mat::new(rh, b, hs),
                    w_hn,
                    Accumulate::Add,
                );
                gru::forward_n_reset_before(g_t, h, hs);
            }
        }
        // out[t] (this direction's columns) = h_t.
        let out_t = &mut *blk.out[t];
        for (row, hrow) in h.chunks_exact(hs).enumerate() {
            let o = row * pass.out_stride + pass.out_col;
            out_t[o..o + hs].copy_from_slice(hrow);
        }
    }
}

/// One block of batch rows of a backward pass: rows `first..first+R` of the batch. Per step
/// `t`, `dxg[t]` and (GRU "reset after") `dhg[t]` are `[R, G·H]`; `dh`, `dc` `[R, H]` the
/// running state gradients; `h_prev[R, H]`, `drh[R, H]` scratch.
struct BackwardRows<'a> {
    first: usize,
    rows: usize,
    dh: &'a mut [f32],
    dc: &'a mut [f32],
    dxg: Vec<&'a mut [f32]>,
    dhg: Vec<&'a mut [f32]>,
    h_prev: &'a mut [f32],
    drh: &'a mut [f32],
}

/// The backward recurrence of one block of rows over all steps, last step first: fused gate
/// backward and the recurrent product(s) carrying `∂L/∂h` to the step before.
fn backward_rows(
    pass: &Pass<'_>,
    saved: &Saved<'_>,
    dy: &[f32],
    blk: &mut BackwardRows<'_>,
    threads: usize,
) {
    let (bb, b, hs, gh, tt) = (pass.b, blk.rows, pass.h, pass.gh(), pass.t);
    let r0 = blk.first;
    let (w_a, w_n) = prepare_w_hh(pass, b, threads, StepProduct::Backward);
    let bh = b * hs;
    let dh = &mut *blk.dh;
    // Rows of this block at step t in a `[T, B, W]` buffer.
    let at = |t: usize, w: usize| (t * bb + r0) * w..(t * bb + r0 + b) * w;
    for s in (0..tt).rev() {
        let t = pass.time(s);
        let prev = if s == 0 { None } else { Some(pass.time(s - 1)) };
        // ∂L/∂h_t = from step t+1 (dh) + from the output at t.
        for (r, drow) in dh.chunks_exact_mut(hs).enumerate() {
            let o = (t * bb + r0 + r) * pass.out_stride + pass.out_col;
            drow.iter_mut()
                .zip(&dy[o..o + hs])
                .for_each(|(a, d)| *a += d);
        }
        let h_prev: &[f32] = match prev {
            None => &saved.h0[r0 * hs..(r0 + b) * hs],
            Some(tp) => {
                for (r, dst) in blk.h_prev.chunks_exact_mut(hs).enumerate() {
                    let o = (tp * bb + r0 + r) * pass.out_stride + pass.out_col;
                    dst.copy_from_slice(&saved.out[o..o + hs]);
                }
                &blk.h_prev[..bh]
            }
        };
        let g_t = &saved.gates[at(t, gh)];
        let e_t = &saved.extra[at(t, hs)];
        let dxg_t = &mut *blk.dxg[t];
        let w_a = w_a.as_ref();
        match pass.cell {
            CellKind::MinGru | CellKind::MinLstm => {
                minimal::backward_gates(pass.cell, g_t, e_t, h_prev, dh, dxg_t, hs);
            }
            CellKind::Lstm => {
                let c_prev = match prev {
                    None => &saved.c0.expect("LSTM needs a cell state")[r0 * hs..(r0 + b) * hs],
                    Some(tp) => &saved.extra[at(tp, hs)],
                };
                let dc = &mut *blk.dc;
                assert_eq!(dc.len(), bh, "LSTM needs a cell state");
                lstm::backward_gates(g_t, e_t, c_prev, dh, dc, dxg_t, hs);
                matmul_prepared(
                    MatMut::new(dh, b, hs),
                    Mat::new(dxg_t, b, gh),
                    w_a.expect("prepared above"),
                    Accumulate::Overwrite,
                );
            }
            CellKind::Gru(GruVariant::ResetAfter) => {
                let dhg_t = &mut *blk.dhg[t];
                gru::backward_gates_reset_after(g_t, e_t, h_prev, dh, dxg_t, dhg_t, hs);
                matmul_prepared(
                    MatMut::new(dh, b, hs),
                    Mat::new(dhg_t, b, gh),
                    w_a.expect("prepared above"),
                    Accumulate::Add,
                );
            }
            CellKind::Gru(GruVariant::ResetBefore) => {
                gru::backward_zn_reset_before(g_t, h_prev, dh, dxg_t, hs);
                let drh = &mut blk.drh[..bh];
                matmul_prepared(
                    MatMut::new(drh, b, hs),
                    Mat::strided(&dxg_t[2 * hs..], b, hs, gh),
                    w_n.as_ref().expect("prepared above"),
                    Accumulate::Overwrite,
                );
                gru::backward_r_reset_before(g_t, h_prev, drh, dh, dxg_t, hs);
                matmul_prepared(
                    MatMut::new(dh, b, hs),
                    Mat::strided(dxg_t, b, 2 * hs, gh),
                    w_a.expect("prepared above"),
                    Accumulate::Add,
                );
            }
        }
    }
}

/// Row bounds `0 = r_0 < r_1 < … < r_n = B` of the blocks the recurrence of a `[B, H]` state
/// with `G·H` gate columns of a `cell` is split into. A per-step product too small to be worth splitting
/// itself ([`crate::linalg::SMALL_PARALLEL_WORK`] multiply-adds) would run on one thread: then
/// each thread ([`crate::linalg::threads`]) takes a block of rows through all steps instead. A
/// larger product keeps the whole batch in one block and splits each product's columns across
/// threads (measured: at H = 650 each thread streaming all of `W_hh` every step is slower).
fn row_bounds(cell: CellKind, b: usize, gh: usize, h: usize) -> Vec<usize> {
    // The minimal cells have no per-step product: their scan always splits by rows.
    let n = if !cell.is_minimal() && b * gh * h >= crate::linalg::SMALL_PARALLEL_WORK {
        1
    } else {
        crate::linalg::threads().min(b).max(1)
    };
    (0..=n).map(|k| k * b / n).collect()
}

/// Cuts a time-major buffer `[T, B, W]` into row blocks: block `k` holds, for every step, its
/// rows `bounds[k]..bounds[k+1]` as one `[R_k, W]` slice.
fn split_time_rows<'a>(
    buf: &'a mut [f32],
    b: usize,
    w: usize,
    bounds: &[usize],
) -> Vec<Vec<&'a mut [f32]>> {
    let mut blocks: Vec<Vec<&'a mut [f32]>> = empty_blocks(bounds);
    if b * w == 0 {
        return blocks;
    }
    for step in buf.chunks_exact_mut(b * w) {
        let mut rest = step;
        for (k, blk) in blocks.iter_mut().enumerate() {
            let (head, tail) = rest.split_at_mut((bounds[k + 1] - bounds[k]) * w);
            blk.push(head);
            rest = tail;
        }
    }
    blocks
}

/// One empty step list per block.
fn empty_blocks<'a>(bounds: &[usize]) -> Vec<Vec<&'a mut [f32]>> {
    (1..bounds.len()).map(|_| Vec::new()).collect()
}

/// Cuts a `[B, W]` buffer into the row blocks of `bounds`; a buffer shorter than `B·W` (an
/// unused scratch) gives empty blocks.
fn split_rows<'a>(buf: &'a mut [f32], w: usize, bounds: &[usize]) -> Vec<&'a mut [f32]> {
    let b = bounds[bounds.len() - 1];
    if buf.len() < b * w {
        return empty_rows(bounds);
    }
    let mut rest = &mut buf[..b * w];
    let mut parts = Vec::with_capacity(bounds.len() - 1);
    for k in 0..bounds.len() - 1 {
        let (head, tail) = rest.split_at_mut((bounds[k + 1] - bounds[k]) * w);
        parts.push(head);
        rest = tail;
    }
    parts
}

/// One empty slice per block.
fn empty_rows<'a>(bounds: &[usize]) -> Vec<&'a mut [f32]> {
    (1..bounds.len()).map(|_| <&mut [f32]>::default()).collect()
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
    dc: Option<&mut [f32]>,
    grads: CellGrads<'_>,
    dx: &mut [f32],
    dx_acc: Accumulate,
    scratch: BackwardScratch<'_>,
) {
    let (b, hs, gh, tt) = (pass.b, pass.h, pass.gh(), pass.t);
    let rows = tt * b;
    let p = pass.p;
    let bh = b * hs;
    let reset_after = pass.cell == CellKind::Gru(GruVariant::ResetAfter);

    let bounds = row_bounds(pass.cell, b, gh, hs);
    let mut dxg_b = split_time_rows(&mut scratch.dxg[..rows * gh], b, gh, &bounds);
    let mut dhg_b = if reset_after {
        split_time_rows(&mut scratch.dhg[..rows * gh], b, gh, &bounds)
    } else {
        empty_blocks(&bounds)
    };
    let dh_b = split_rows(&mut dh[..bh], hs, &bounds);
    let dc_b = match dc {
        Some(dc) => split_rows(&mut dc[..bh], hs, &bounds),
        None => empty_rows(&bounds),
    };
    let hp_b = split_rows(scratch.h_prev, hs, &bounds);
    let drh_b = split_rows(scratch.drh, hs, &bounds);
    let mut blocks: Vec<BackwardRows<'_>> = dh_b
        .into_iter()
        .zip(dc_b)
        .zip(hp_b.into_iter().zip(drh_b))
        .enumerate()
        .map(|(k, ((dh, dc), (h_prev, drh)))| BackwardRows {
            first: bounds[k],
            rows: bounds[k + 1] - bounds[k],
            dh,
            dc,
            dxg: std::mem::take(&mut dxg_b[k]),
            dhg: std::mem::take(&mut dhg_b[k]),
            h_prev,
            drh,
        })
        .collect();
    match blocks.len() {
        1 => backward_rows(pass, saved, dy, &mut blocks[0], threads()),
        _ => rayon::scope(|sc| {
            for blk in blocks.iter_mut() {
                sc.spawn(move |_| backward_rows(pass, saved, dy, blk, 1));
            }
        }),
    }
    drop(blocks);

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
    if !pass.cell.is_minimal() {
        recurrent_weight_grads(pass, saved, dxg, dhg, grads.dw_hh);
    }
    // Input gradient of all steps at once.
    matmul(
        MatMut::new(&mut dx[..rows * pass.input_size], rows, pass.input_size),
        Mat::new(dxg, rows, gh),
        Mat::new(p.w_ih, gh, pass.input_size),
        dx_acc,
    );
}

/// `dW_hh += Σ_t dhg_tᵀ · h_{t-1}` over all steps at once. Rows 0..R of the gate blocks use
/// `h_{t-1}`; for "reset before" the `n` rows use the cached `r ⊙ h_{t-1}` instead.
fn recurrent_weight_grads(
    pass: &Pass<'_>,
    saved: &Saved<'_>,
    dxg: &[f32],
    dhg: &[f32],
    dw_hh: &mut [f32],
) {
    let (b, hs, gh, tt) = (pass.b, pass.h, pass.gh(), pass.t);
    let rows = tt * b;
    let h_rows = match pass.cell {
        CellKind::Gru(GruVariant::ResetBefore) => 2 * hs,
        _ => gh,
    };
    let (dw_h, dw_n) = dw_hh.split_at_mut(h_rows * hs);
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
}

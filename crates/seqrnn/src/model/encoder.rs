//! Padding-exact sequence encoder: an `L`-layer, one- or two-direction LSTM/GRU stack over a
//! batch of sequences of different lengths, padded to the longest, whose results are those of
//! running each sequence alone, unpadded (PyTorch's `pack_padded_sequence`).
//!
//! Inputs are time-major `x[T, B, F]` with the real length of each sequence in `lens[B]`
//! (`1 ≤ len ≤ T`); steps `t ≥ len` are padding. How padding is kept out of every result:
//! - each layer-direction runs as its own one-layer stack of the engine ([`Rnn`]); the forward
//!   direction reads the padded batch as it is (steps after a sequence's end cannot affect
//!   earlier steps), the reverse direction reads every sequence reversed *within its own length*,
//!   so it starts at the sequence's real last step;
//! - outputs at padding steps are zero, and each layer reads the layer below with its padding
//!   zeroed;
//! - final states are taken at each sequence's own last step;
//! - backward ignores output gradients at padding steps (they are zeroed on entry), so the weights
//!   never see them, and writes zero input gradients there.
//!
//! Padding steps of `x` may hold any finite values (a model usually leaves zeros there).
//!
//! Parameters are the engine's block for the whole stack ([`crate::rnn::RnnLayout`] of
//! [`SeqEncoder::config`], PyTorch names `weight_ih_l0 …`, `_reverse` for the second direction),
//! so a model packs them into its own block under a prefix and passes the sub-slice.
//!
//! Dimension letters are the engine's ([`crate::rnn`]); `F` is the input width (`I` of the
//! first layer).

use crate::dropout::RowRng;
use crate::error::{Error, Result};
use crate::linalg::fit;
use crate::rnn::stack::check_lens;
use crate::rnn::{
    Direction, Rnn, RnnCache, RnnConfig, RnnLayout, RnnState, RnnWorkspace, SeqShape,
};

/// A padding-exact (bi)directional encoder: the configuration, one single-layer,
/// single-direction engine stack per layer, and the parameter layout. Parameters, gradients,
/// caches and workspaces are owned by the caller.
#[derive(Clone, Debug)]
pub struct SeqEncoder {
    config: RnnConfig,
    /// One single-layer, single-direction stack per layer (input `I_l`); both directions of a
    /// layer share it (same shapes, different parameter spans).
    layers: Vec<Rnn>,
    layout: RnnLayout,
}

/// What [`SeqEncoder::forward_train`] keeps for [`SeqEncoder::backward`], reused across calls.
#[derive(Debug, Default)]
pub struct EncoderCache {
    /// `T` of the cached pass (0 before the first).
    t: usize,
    /// `lens[B]` of the cached pass.
    lens: Vec<usize>,
    /// `[L·D]`: the engine's cache of each layer-direction (its input in that direction's own
    /// time order, gates, states).
    rnn: Vec<RnnCache>,
}

impl EncoderCache {
    /// `T` of the cached pass (0 before the first).
    pub fn t(&self) -> usize {
        self.t
    }

    /// `lens[B]` of the cached pass.
    pub fn lens(&self) -> &[usize] {
        &self.lens
    }
}

/// Scratch buffers of the forward and backward passes, reused across calls (nothing is
/// allocated once the shapes have been seen).
#[derive(Debug, Default)]
pub struct EncoderWorkspace {
    rnn: RnnWorkspace,
    /// `layer_in[T, B, D·H]`, `layer_out[T, B, D·H]`: the output of the layer below and of the
    /// current layer (forward); `∂` of the current layer's output and input (backward, `[T, B,
    /// I_l]` for the input).
    layer_in: Vec<f32>,
    layer_out: Vec<f32>,
    /// `rev[T, B, I_l]`: a layer's input reversed within each length (forward), or the reverse
    /// direction's input gradient put back in time order (backward).
    rev: Vec<f32>,
    /// `y[T, B, H]`: one direction's output, or its gradient, in its own time order.
    y: Vec<f32>,
    /// `dx_rev[T, B, I_l]`: the reverse direction's input gradient in its own time order.
    dx_rev: Vec<f32>,
}

/// Copies `src[T, B, ·]` columns `src_off..src_off+n` to `dst[T, B, ·]` columns
/// `dst_off..dst_off+n`, reversing each sequence within its own length; steps `t ≥ len` of `dst`
/// are set to zero. Applying it twice restores the real steps.
#[allow(clippy::too_many_arguments)]
fn reverse_within(
    src: &[f32],
    src_w: usize,
    src_off: usize,
    dst: &mut [f32],
    dst_w: usize,
    dst_off: usize,
    n: usize,
    lens: &[usize],
    t_max: usize,
) {
    let b = lens.len();
    for t in 0..t_max {
        for (j, &len) in lens.iter().enumerate() {
            let d = (t * b + j) * dst_w + dst_off;
            if t < len {
                let s = ((len - 1 - t) * b + j) * src_w + src_off;
                dst[d..d + n].copy_from_slice(&src[s..s + n]);
            } else {
                dst[d..d + n].fill(0.0);
            }
        }
    }
}

/// Copies columns `off..off+n` of `wide[T, B, w]` into `narrow[T, B, n]` (or back, `into_wide`).
fn copy_cols(
    wide: &mut [f32],
    w: usize,
    off: usize,
    narrow: &mut [f32],
    n: usize,
    into_wide: bool,
) {
    for (row_w, row_n) in wide.chunks_exact_mut(w).zip(narrow.chunks_exact_mut(n)) {
        if into_wide {
            row_w[off..off + n].copy_from_slice(row_n);
        } else {
            row_n.copy_from_slice(&row_w[off..off + n]);
        }
    }
}

/// Zeroes the padding steps `t ≥ lens[j]` of `x[T, B, f]` (`B = lens.len()`).
pub fn zero_padding(x: &mut [f32], f: usize, lens: &[usize]) {
    let b = lens.len();
    for (k, row) in x.chunks_exact_mut(f).enumerate() {
        if k / b >= lens[k % b] {
            row.fill(0.0);
        }
    }
}

/// A batch of vector sequences padded to the longest, the encoder's input as it is:
/// `x[T, B, F]` time-major (zero past each sequence's end) with `lens[B]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VectorBatch {
    /// `x[T, B, F]`.
    pub x: Vec<f32>,
    /// Real length of each sequence.
    pub lens: Vec<usize>,
    /// `T`.
    pub t: usize,
    /// Width `F` of a step.
    pub f: usize,
}

impl VectorBatch {
    /// Pads `seqs` (each `[len, f]` time-major, `len ≥ 1`) into one batch, reusing `self`'s
    /// buffers.
    pub fn fill<'s>(&mut self, f: usize, seqs: impl Iterator<Item = &'s [f32]> + Clone) {
        self.f = f;
        self.lens.clear();
        self.lens.extend(seqs.clone().map(|s| s.len() / f.max(1)));
        self.t = self.lens.iter().copied().max().unwrap_or(0);
        let b = self.lens.len();
        self.x.clear();
        self.x.resize(self.t * b * f, 0.0);
        for (j, s) in seqs.enumerate() {
            for (t, step) in s.chunks_exact(f.max(1)).enumerate() {
                self.x[(t * b + j) * f..(t * b + j + 1) * f].copy_from_slice(step);
            }
        }
    }

    /// Batch size `B`.
    pub fn b(&self) -> usize {
        self.lens.len()
    }
}

/// Which forward pass the stacks run.
enum Mode<'a> {
    Train {
        caches: &'a mut Vec<RnnCache>,
        rng: &'a mut RowRng,
    },
    Infer,
}

impl SeqEncoder {
    /// An encoder for `config` (input width `F = config.input_size`), after validating it.
    pub fn new(config: RnnConfig) -> Result<Self> {
        config.validate()?;
        let layers = (0..config.num_layers)
            .map(|l| {
                Rnn::new(RnnConfig {
                    input_size: config.layer_input_size(l),
                    num_layers: 1,
                    direction: Direction::Forward,
                    ..config
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SeqEncoder {
            layout: RnnLayout::new(&config),
            config,
            layers,
        })
    }

    /// The configuration of the whole stack (its layout names the parameters).
    pub fn config(&self) -> &RnnConfig {
        &self.config
    }

    /// The parameter layout (the engine's, for [`SeqEncoder::config`]).
    pub fn layout(&self) -> &RnnLayout {
        &self.layout
    }

    /// Length of the parameter block.
    pub fn num_params(&self) -> usize {
        self.layout.len()
    }

    /// Width of each output step, `D·H`.
    pub fn output_size(&self) -> usize {
        self.config.output_size()
    }

    fn check(&self, params: &[f32], x: &[f32], lens: &[usize], t: usize) -> Result<()> {
        if params.len() != self.num_params() {
            return Err(Error::Shape(format!(
                "encoder parameter block has {} values, expected {}",
                params.len(),
                self.num_params()
            )));
        }
        let b = lens.len();
        if b == 0 || t == 0 || lens.iter().any(|&l| l == 0 || l > t) {
            return Err(Error::Shape(
                "a batch needs at least one sequence and every length in 1..=T".into(),
            ));
        }
        let f = self.config.input_size;
        if x.len() != t * b * f {
            return Err(Error::Shape(format!(
                "input x[T, B, F] has {} values, expected {t}·{b}·{f}",
                x.len()
            )));
        }
        Ok(())
    }

    /// Inference pass: nothing cached, no dropout.
    ///
    /// - `params`: read, the encoder's parameter block.
    /// - `x[T, B, F]`: read; `lens[B]`: real lengths, each in `1..=T`.
    /// - `out[T, B, D·H]`: written (resized), the top layer's output per step, `[forward H |
    ///   reverse H]`, zero at padding.
    /// - `h_n[L·D, B, H]`: written (resized), each layer-direction's final hidden state at the
    ///   sequence's own end (forward: after step `len − 1`; reverse: after step 0).
    #[allow(clippy::too_many_arguments)]
    pub fn forward_infer(
        &self,
        params: &[f32],
        x: &[f32],
        lens: &[usize],
        t: usize,
        out: &mut Vec<f32>,
        h_n: &mut Vec<f32>,
        ws: &mut EncoderWorkspace,
    ) -> Result<()> {
        self.check(params, x, lens, t)?;
        self.forward(params, x, lens, t, out, h_n, ws, &mut Mode::Infer)
    }

    /// Training pass: as [`SeqEncoder::forward_infer`], and fills `cache` with what
    /// [`SeqEncoder::backward`] needs. `rng` is handed to the engine, which draws from it only
    /// for dropout between layers (none here: each engine stack has one layer).
    #[allow(clippy::too_many_arguments)]
    pub fn forward_train(
        &self,
        params: &[f32],
        x: &[f32],
        lens: &[usize],
        t: usize,
        out: &mut Vec<f32>,
        h_n: &mut Vec<f32>,
        cache: &mut EncoderCache,
        ws: &mut EncoderWorkspace,
        rng: &mut RowRng,
    ) -> Result<()> {
        self.check(params, x, lens, t)?;
        cache.t = t;
        cache.lens.clear();
        cache.lens.extend_from_slice(lens);
        self.forward(
            params,
            x,
            lens,
            t,
            out,
            h_n,
            ws,
            &mut Mode::Train {
                caches: &mut cache.rnn,
                rng,
            },
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        params: &[f32],
        x: &[f32],
        lens: &[usize],
        t: usize,
        out: &mut Vec<f32>,
        h_n: &mut Vec<f32>,
        ws: &mut EncoderWorkspace,
        mode: &mut Mode<'_>,
    ) -> Result<()> {
        let c = &self.config;
        let (b, h, d) = (lens.len(), c.hidden_size, c.directions());
        let shape = SeqShape { t, b };
        let dh = d * h;
        fit(h_n, c.num_layers * d * b * h);
        for (l, rnn) in self.layers.iter().enumerate() {
            let in_w = c.layer_input_size(l);
            fit(&mut ws.layer_out, t * b * dh);
            fit(&mut ws.y, t * b * h);
            for dir in 0..d {
                let p = &params[self.layout.cell(l, dir).span()];
                let layer_in: &[f32] = if l == 0 { x } else { &ws.layer_in };
                let input: &[f32] = if dir == 0 {
                    layer_in
                } else {
                    fit(&mut ws.rev, t * b * in_w);
                    reverse_within(layer_in, in_w, 0, &mut ws.rev, in_w, 0, in_w, lens, t);
                    &ws.rev
                };
                let mut state = RnnState::zeros(rnn.config(), b);
                match mode {
                    Mode::Train { caches, rng } => {
                        caches.resize_with(c.num_layers * d, RnnCache::default);
                        rnn.forward_train(
                            p,
                            input,
                            shape,
                            &mut state,
                            &mut ws.y,
                            &mut caches[l * d + dir],
                            rng,
                        )?
                    }
                    // Packed weights: each sequence's outputs are the same, to the bit, alone
                    // or in any batch (padding-exact and batch-invariant).
                    Mode::Infer => rnn.forward_infer_packed(
                        &rnn.pack(p)?,
                        input,
                        shape,
                        &mut state,
                        &mut ws.y,
                        &mut ws.rnn,
                    )?,
                }
                // Final state: the output at the sequence's last real step, in this
                // direction's own time order.
                let hn = &mut h_n[(l * d + dir) * b * h..(l * d + dir + 1) * b * h];
                for (j, (row, &len)) in hn.chunks_exact_mut(h).zip(lens).enumerate() {
                    let s = ((len - 1) * b + j) * h;
                    row.copy_from_slice(&ws.y[s..s + h]);
                }
                if dir == 0 {
                    copy_cols(&mut ws.layer_out, dh, 0, &mut ws.y, h, true);
                } else {
                    reverse_within(&ws.y, h, 0, &mut ws.layer_out, dh, h, h, lens, t);
                }
            }
            zero_padding(&mut ws.layer_out, dh, lens);
            std::mem::swap(&mut ws.layer_in, &mut ws.layer_out);
        }
        out.clone_from(&ws.layer_in);
        Ok(())
    }

    /// Backward pass of the last [`SeqEncoder::forward_train`].
    ///
    /// - `params`: read, the same block as the forward pass.
    /// - `grads`: accumulated (`+=`), same layout as `params`.
    /// - `dout[T, B, D·H]`: read, `∂L/∂out`; values at padding steps are ignored.
    /// - `dh_n[L·D, B, H]`: read, `∂L/∂h_n`, or `None` when the loss does not use the final
    ///   states.
    /// - `dx[T, B, F]`: written, `∂L/∂x`, zero at padding steps.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        cache: &EncoderCache,
        dout: &[f32],
        dh_n: Option<&[f32]>,
        dx: &mut [f32],
        ws: &mut EncoderWorkspace,
    ) -> Result<()> {
        let c = &self.config;
        let (t, lens) = (cache.t, &cache.lens[..]);
        let (b, h, d, f) = (lens.len(), c.hidden_size, c.directions(), c.input_size);
        let dh = d * h;
        if t == 0 || cache.rnn.len() != c.num_layers * d {
            return Err(Error::Shape(
                "backward called without a training forward pass".into(),
            ));
        }
        if params.len() != self.num_params() || grads.len() != self.num_params() {
            return Err(Error::Shape(format!(
                "encoder parameter and gradient blocks need {} values, got {} and {}",
                self.num_params(),
                params.len(),
                grads.len()
            )));
        }
        let need = [
            ("output gradient dout[T, B, D·H]", dout.len(), t * b * dh),
            ("input gradient dx[T, B, F]", dx.len(), t * b * f),
            (
                "final-state gradient dh_n[L·D, B, H]",
                dh_n.map_or(0, <[f32]>::len),
                dh_n.map_or(0, |_| c.num_layers * d * b * h),
            ),
        ];
        check_lens(need)?;
        // ws.layer_out: ∂(layer output) [T, B, D·H], zero at padding.
        ws.layer_out.clear();
        ws.layer_out.extend_from_slice(dout);
        zero_padding(&mut ws.layer_out, dh, lens);
        for l in (0..c.num_layers).rev() {
            let rnn = &self.layers[l];
            let in_w = c.layer_input_size(l);
            fit(&mut ws.layer_in, t * b * in_w);
            fit(&mut ws.y, t * b * h);
            fit(&mut ws.dx_rev, t * b * in_w);
            for dir in 0..d {
                if dir == 0 {
                    copy_cols(&mut ws.layer_out, dh, 0, &mut ws.y, h, false);
                } else {
                    reverse_within(&ws.layer_out, dh, h, &mut ws.y, h, 0, h, lens, t);
                }
                if let Some(dh_n) = dh_n {
                    // ∂h_n joins the output gradient at the sequence's last real step (own
                    // time order), the step whose output is the final state.
                    let g = &dh_n[(l * d + dir) * b * h..(l * d + dir + 1) * b * h];
                    for (j, (row, &len)) in g.chunks_exact(h).zip(lens).enumerate() {
                        let s = ((len - 1) * b + j) * h;
                        ws.y[s..s + h]
                            .iter_mut()
                            .zip(row)
                            .for_each(|(a, v)| *a += v);
                    }
                }
                let span = self.layout.cell(l, dir).span();
                let mut dstate = RnnState::zeros(rnn.config(), b);
                let d_in: &mut [f32] = if dir == 0 {
                    &mut ws.layer_in
                } else {
                    &mut ws.dx_rev
                };
                rnn.backward(
                    &params[span.clone()],
                    &mut grads[span],
                    &cache.rnn[l * d + dir],
                    &ws.y,
                    &mut dstate,
                    d_in,
                    &mut ws.rnn,
                )?;
                if dir == 1 {
                    fit(&mut ws.rev, t * b * in_w);
                    reverse_within(&ws.dx_rev, in_w, 0, &mut ws.rev, in_w, 0, in_w, lens, t);
                    ws.layer_in
                        .iter_mut()
                        .zip(&ws.rev)
                        .for_each(|(a, v)| *a += v);
                }
            }
            zero_padding(&mut ws.layer_in, in_w, lens);
            std::mem::swap(&mut ws.layer_in, &mut ws.layer_out);
        }
        dx.copy_from_slice(&ws.layer_out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dropout::rng_from_seed;
    use crate::rnn::{CellKind, GruVariant};
    use rand::RngExt;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() <= 1e-5 * (1.0 + a.abs().max(b.abs()))
    }

    /// Inference gives each sequence, to the bit, the outputs and final states it gets alone:
    /// padding and the other rows change nothing (what serving micro-batches rely on).
    #[test]
    fn inference_gives_a_sequence_the_same_bits_in_any_batch() {
        for (cell, direction) in [
            (CellKind::Lstm, Direction::Bidirectional),
            (CellKind::Gru(GruVariant::ResetAfter), Direction::Forward),
            (
                CellKind::Gru(GruVariant::ResetBefore),
                Direction::Bidirectional,
            ),
        ] {
            let config = RnnConfig {
                cell,
                input_size: 24,
                hidden_size: 40,
                num_layers: 2,
                direction,
            };
            let enc = SeqEncoder::new(config).unwrap();
            let mut rng = rng_from_seed(9);
            let mut draw =
                |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-0.8..0.8)).collect() };
            let (lens, t) = ([7usize, 19, 1, 12, 19, 3, 9, 16, 2], 19);
            let (b, f, dh) = (lens.len(), 24, config.output_size());
            let params = draw(enc.num_params());
            let x = draw(t * b * f);
            let (mut out, mut h_n) = (Vec::new(), Vec::new());
            let mut ws = EncoderWorkspace::default();
            enc.forward_infer(&params, &x, &lens, t, &mut out, &mut h_n, &mut ws)
                .unwrap();
            for (j, &len) in lens.iter().enumerate() {
                let alone_x: Vec<f32> = (0..len)
                    .flat_map(|s| x[(s * b + j) * f..(s * b + j + 1) * f].to_vec())
                    .collect();
                let (mut o1, mut h1) = (Vec::new(), Vec::new());
                enc.forward_infer(&params, &alone_x, &[len], len, &mut o1, &mut h1, &mut ws)
                    .unwrap();
                for s in 0..len {
                    let got = &out[(s * b + j) * dh..(s * b + j + 1) * dh];
                    assert_eq!(
                        got,
                        &o1[s * dh..(s + 1) * dh],
                        "{config:?}: row {j} step {s}"
                    );
                }
                let h = config.hidden_size;
                for slice in 0..config.state_slices() {
                    let got = &h_n[(slice * b + j) * h..(slice * b + j + 1) * h];
                    assert_eq!(got, &h1[slice * h..(slice + 1) * h], "{config:?}: h_n {j}");
                }
            }
        }
    }

    /// A padded batch (garbage at the padding of the input and of the output gradient) against
    /// each sequence run alone, unpadded, through the engine's whole stack: outputs, final
    /// states, input gradients and weight gradients.
    #[test]
    fn padded_batch_equals_each_sequence_alone() {
        let cases = [
            (CellKind::Lstm, Direction::Bidirectional, 2),
            (
                CellKind::Gru(GruVariant::ResetAfter),
                Direction::Bidirectional,
                1,
            ),
            (
                CellKind::Gru(GruVariant::ResetBefore),
                Direction::Forward,
                2,
            ),
            (CellKind::Lstm, Direction::Forward, 1),
        ];
        for (cell, direction, layers) in cases {
            let config = RnnConfig {
                cell,
                input_size: 3,
                hidden_size: 4,
                num_layers: layers,
                direction,
            };
            let enc = SeqEncoder::new(config).unwrap();
            let mut rng = rng_from_seed(7);
            let mut draw =
                |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-0.8..0.8)).collect() };
            let (lens, t) = ([3, 5, 1, 4], 5);
            let (b, f, h, d) = (lens.len(), 3, 4, config.directions());
            let dh = d * h;
            let params = draw(enc.num_params());
            let x = draw(t * b * f);
            let dout = draw(t * b * dh);
            let dh_n = draw(layers * d * b * h);

            let (mut out, mut h_n) = (Vec::new(), Vec::new());
            let mut cache = EncoderCache::default();
            let mut ws = EncoderWorkspace::default();
            let mut rng = RowRng::new(1, 0);
            enc.forward_train(
                &params, &x, &lens, t, &mut out, &mut h_n, &mut cache, &mut ws, &mut rng,
            )
            .unwrap();
            let (mut out2, mut h_n2) = (Vec::new(), Vec::new());
            enc.forward_infer(&params, &x, &lens, t, &mut out2, &mut h_n2, &mut ws)
                .unwrap();
            // Inference multiplies through packed, batch-invariant products; training through
            // the plain ones: the same to rounding.
            for (a, b) in out.iter().chain(&h_n).zip(out2.iter().chain(&h_n2)) {
                assert!(close(*a, *b), "{config:?}: infer vs train, {a} vs {b}");
            }
            assert_eq!((out.len(), h_n.len()), (out2.len(), h_n2.len()));
            let mut grads = vec![0.0; enc.num_params()];
            let mut dx = vec![f32::NAN; t * b * f];
            enc.backward(
                &params,
                &mut grads,
                &cache,
                &dout,
                Some(&dh_n),
                &mut dx,
                &mut ws,
            )
            .unwrap();

            let stack = Rnn::new(config).unwrap();
            let mut want_grads = vec![0.0; enc.num_params()];
            let mut rws = RnnWorkspace::default();
            for (j, &len) in lens.iter().enumerate() {
                let rows = |buf: &[f32], w: usize| -> Vec<f32> {
                    (0..len)
                        .flat_map(|s| buf[(s * b + j) * w..(s * b + j + 1) * w].to_vec())
                        .collect()
                };
                let shape = SeqShape { t: len, b: 1 };
                let mut state = RnnState::zeros(&config, 1);
                let mut y = vec![0.0; len * dh];
                let mut rc = RnnCache::default();
                stack
                    .forward_train(
                        &params,
                        &rows(&x, f),
                        shape,
                        &mut state,
                        &mut y,
                        &mut rc,
                        &mut rng,
                    )
                    .unwrap();
                let got = rows(&out, dh);
                assert!(
                    y.iter().zip(&got).all(|(a, b)| close(*a, *b)),
                    "{config:?} seq {j}"
                );
                for s in len..t {
                    let p = &out[(s * b + j) * dh..(s * b + j + 1) * dh];
                    assert!(p.iter().all(|&v| v == 0.0), "output at padding");
                }
                let mut dstate = RnnState::zeros(&config, 1);
                for k in 0..layers * d {
                    let hn = &h_n[(k * b + j) * h..(k * b + j + 1) * h];
                    let want = &state.h[k * h..(k + 1) * h];
                    assert!(hn.iter().zip(want).all(|(a, b)| close(*a, *b)), "h_n {k}");
                    dstate.h[k * h..(k + 1) * h]
                        .copy_from_slice(&dh_n[(k * b + j) * h..(k * b + j + 1) * h]);
                }
                let mut dxj = vec![0.0; len * f];
                stack
                    .backward(
                        &params,
                        &mut want_grads,
                        &rc,
                        &rows(&dout, dh),
                        &mut dstate,
                        &mut dxj,
                        &mut rws,
                    )
                    .unwrap();
                let got = rows(&dx, f);
                assert!(dxj.iter().zip(&got).all(|(a, b)| close(*a, *b)), "dx {j}");
                for s in len..t {
                    let p = &dx[(s * b + j) * f..(s * b + j + 1) * f];
                    assert!(p.iter().all(|&v| v == 0.0), "dx at padding");
                }
            }
            for (i, (a, w)) in grads.iter().zip(&want_grads).enumerate() {
                assert!(close(*a, *w), "{config:?} grad {i}: {a} vs {w}");
            }
        }
    }
}

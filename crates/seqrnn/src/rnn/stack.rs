//! A stack of recurrent layers: the public forward/backward API over whole sequences.

use crate::dropout::{apply_mask, Dropout, RowRng};
use crate::error::{Error, Result};
use crate::linalg::{fit, Accumulate};

use super::config::{CellKind, GruVariant, RnnConfig};
use super::params::{CellGrads, CellParams, RnnLayout};
use super::sequence::{self, BackwardScratch, ForwardScratch, Pass, PassPacks, Saved};

/// A stack's weights packed once for many inference passes ([`Rnn::pack`],
/// [`Rnn::forward_infer_packed`]): per layer-direction `W_ihᵀ` and `W_hhᵀ` in the product
/// kernels' panel layout, beside the parameter block they came from (its biases are read from
/// there).
pub struct RnnPacks<'p> {
    params: &'p [f32],
    /// Layer-direction `l·D + d`'s packs.
    passes: Vec<PassPacks<'p>>,
}

impl std::fmt::Debug for RnnPacks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RnnPacks")
            .field("passes", &self.passes.len())
            .finish()
    }
}

/// Recurrent state of a stack, or its gradient: `h[L·D, B, H]` and, for LSTM, `c[L·D, B, H]`
/// (empty for GRU). Slice `l·D + d` belongs to layer `l`, direction `d`, as in PyTorch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RnnState {
    /// Hidden state `h[L·D, B, H]`.
    pub h: Vec<f32>,
    /// Cell state `c[L·D, B, H]` (LSTM), empty otherwise.
    pub c: Vec<f32>,
}

impl RnnState {
    /// An all-zero state for batch size `batch`.
    pub fn zeros(config: &RnnConfig, batch: usize) -> Self {
        let n = config.state_slices() * batch * config.hidden_size;
        RnnState {
            h: vec![0.0; n],
            c: if config.cell.has_cell_state() {
                vec![0.0; n]
            } else {
                Vec::new()
            },
        }
    }

    /// Sets every value to zero (e.g. at the start of an epoch).
    pub fn reset(&mut self) {
        self.h.fill(0.0);
        self.c.fill(0.0);
    }
}

/// What a training-mode forward pass keeps for backward: exactly the tensors the backward
/// loop reads, allocated on first use and reused while shapes stay the same.
#[derive(Debug, Default)]
pub struct RnnCache {
    /// Time steps `T` and batch `B` of the cached pass.
    t: usize,
    b: usize,
    /// `x[T·B, I]`: the stack input.
    x: Vec<f32>,
    /// `h0, c0 [L·D, B, H]`: the initial state.
    state0: RnnState,
    /// Per layer `out[T, B, D·H]`: layer outputs (the last is the stack output `y`).
    out: Vec<Vec<f32>>,
    /// Per layer-direction `gates[T·B, G·H]`: gate activations.
    gates: Vec<Vec<f32>>,
    /// Per layer-direction `extra[T·B, H]`: LSTM `c_t`; GRU "reset after" `W_hn h + b_hn`;
    /// GRU "reset before" `r ⊙ h_{t-1}`.
    extra: Vec<Vec<f32>>,
    /// Per layer below the top, when dropout between layers is active: the mask `[T, B, D·H]`
    /// and the dropped output that fed the next layer.
    masks: Vec<Vec<f32>>,
    dropped: Vec<Vec<f32>>,
    /// Whether the cached pass dropped values between layers.
    dropout_active: bool,
    /// Per-step scratch of the forward loop: `[G·H]` bias row, `[B, G·H]` recurrent product.
    bias: Vec<f32>,
    hg: Vec<f32>,
}

/// Scratch buffers for inference and backward passes, allocated on first use and reused.
#[derive(Debug, Default)]
pub struct RnnWorkspace {
    /// `[T·B, G·H]` gates (inference) / `∂` input-side pre-activations (backward).
    gates: Vec<f32>,
    /// `[T·B, G·H]` `∂` recurrent-side pre-activations (GRU "reset after").
    dhg: Vec<f32>,
    /// Two `[T, B, D·H]` buffers: layer outputs (inference) or their gradients (backward).
    ping: Vec<f32>,
    pong: Vec<f32>,
    /// `[G·H]` bias row, `[B, G·H]` recurrent product, `[B, H]` two state-sized temporaries.
    bias: Vec<f32>,
    hg: Vec<f32>,
    tmp_a: Vec<f32>,
    tmp_b: Vec<f32>,
}

/// A stack of `L` recurrent layers, one or two directions each.
///
/// The stack holds only its configuration and parameter layout; parameters and gradients are
/// flat blocks owned by the caller (a model packs them next to its other tensors), laid out by
/// [`RnnLayout`].
#[derive(Clone, Debug)]
pub struct Rnn {
    config: RnnConfig,
    layout: RnnLayout,
    dropout: Dropout,
}

/// Sequence shape `T × B` of one pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqShape {
    /// Time steps `T ≥ 1`.
    pub t: usize,
    /// Batch rows `B ≥ 1`.
    pub b: usize,
}

impl Rnn {
    /// A stack for `config`, after validating it.
    pub fn new(config: RnnConfig) -> Result<Self> {
        config.validate()?;
        Ok(Rnn {
            layout: RnnLayout::new(&config),
            config,
            dropout: Dropout::NONE,
        })
    }

    /// Adds dropout on the outputs of every layer but the last, in training passes only
    /// (PyTorch's `dropout` argument of `nn.LSTM`/`nn.GRU`).
    pub fn with_dropout(mut self, dropout: Dropout) -> Result<Self> {
        dropout.validate()?;
        self.dropout = dropout;
        Ok(self)
    }

    /// Dropout between layers.
    pub fn dropout(&self) -> Dropout {
        self.dropout
    }

    /// The configuration.
    pub fn config(&self) -> &RnnConfig {
        &self.config
    }

    /// Where each tensor lives in the parameter block.
    pub fn layout(&self) -> &RnnLayout {
        &self.layout
    }

    /// Number of parameters (length of the parameter and gradient blocks).
    pub fn num_params(&self) -> usize {
        self.layout.len()
    }

    fn check(&self, params: &[f32], x: &[f32], shape: SeqShape, state: &RnnState) -> Result<()> {
        let cfg = &self.config;
        if shape.t == 0 || shape.b == 0 {
            return Err(Error::Shape(format!(
                "sequence length and batch must be at least 1, got T={} B={}",
                shape.t, shape.b
            )));
        }
        let want = [
            ("parameter block", params.len(), self.num_params()),
            (
                "input x[T, B, I]",
                x.len(),
                shape.t * shape.b * cfg.input_size,
            ),
            (
                "state h[L·D, B, H]",
                state.h.len(),
                cfg.state_slices() * shape.b * cfg.hidden_size,
            ),
            (
                "state c[L·D, B, H]",
                state.c.len(),
                if cfg.cell.has_cell_state() {
                    cfg.state_slices() * shape.b * cfg.hidden_size
                } else {
                    0
                },
            ),
        ];
        check_lens(want)
    }

    fn pass<'p>(&self, params: &'p [f32], layer: usize, dir: usize, shape: SeqShape) -> Pass<'p> {
        let off = self.layout.cell(layer, dir);
        Pass {
            packs: None,
            cell: self.config.cell,
            p: CellParams::new(params, off),
            t: shape.t,
            b: shape.b,
            h: self.config.hidden_size,
            input_size: off.input_size,
            reverse: dir == 1,
            out_stride: self.config.output_size(),
            out_col: dir * self.config.hidden_size,
        }
    }

    /// Inference forward pass: caches nothing, allocates nothing once `ws` has been used with
    /// the same shape.
    ///
    /// - `params`: read, the parameter block.
    /// - `x[T, B, I]`: read.
    /// - `state`: read the initial state, written the final state (carry it to the next window).
    /// - `y[T, B, D·H]`: written, the top layer's output.
    pub fn forward_infer(
        &self,
        params: &[f32],
        x: &[f32],
        shape: SeqShape,
        state: &mut RnnState,
        y: &mut [f32],
        ws: &mut RnnWorkspace,
    ) -> Result<()> {
        self.infer(params, None, x, shape, state, y, ws)
    }

    /// Packs the weights of `params` once for many [`Rnn::forward_infer_packed`] passes.
    ///
    /// # Errors
    /// [`Error::Shape`] when `params` is not this stack's parameter block.
    pub fn pack<'p>(&self, params: &'p [f32]) -> Result<RnnPacks<'p>> {
        check_lens([("parameter block", params.len(), self.num_params())])?;
        let cfg = &self.config;
        let mut passes = Vec::with_capacity(cfg.num_layers * cfg.directions());
        for layer in 0..cfg.num_layers {
            for dir in 0..cfg.directions() {
                let off = self.layout.cell(layer, dir);
                passes.push(PassPacks::new(
                    cfg.cell,
                    CellParams::new(params, off),
                    cfg.hidden_size,
                    off.input_size,
                ));
            }
        }
        Ok(RnnPacks { params, passes })
    }

    /// [`Rnn::forward_infer`] with the weights packed once ([`Rnn::pack`]): faster over many
    /// short passes (generation steps), and batch-invariant: a batch row's outputs and state are
    /// the same, to the bit, as when it runs alone or beside any other rows, on any thread count.
    ///
    /// # Errors
    /// As [`Rnn::forward_infer`].
    pub fn forward_infer_packed(
        &self,
        packs: &RnnPacks<'_>,
        x: &[f32],
        shape: SeqShape,
        state: &mut RnnState,
        y: &mut [f32],
        ws: &mut RnnWorkspace,
    ) -> Result<()> {
        self.infer(packs.params, Some(packs), x, shape, state, y, ws)
    }

    #[allow(clippy::too_many_arguments)]
    fn infer(
        &self,
        params: &[f32],
        packs: Option<&RnnPacks<'_>>,
        x: &[f32],
        shape: SeqShape,
        state: &mut RnnState,
        y: &mut [f32],
        ws: &mut RnnWorkspace,
    ) -> Result<()> {
        self.check(params, x, shape, state)?;
        self.check_len("output y[T, B, D·H]", y.len(), self.out_len(shape))?;
        let cfg = &self.config;
        let (rows, gh, bh) = self.dims(shape);
        fit(&mut ws.gates, rows * gh);
        fit(&mut ws.bias, gh);
        fit(&mut ws.hg, shape.b * gh);
        fit(&mut ws.tmp_a, bh);
        if cfg.num_layers > 1 {
            fit(&mut ws.ping, self.out_len(shape));
            fit(&mut ws.pong, self.out_len(shape));
        }
        let mut ping = std::mem::take(&mut ws.ping);
        let mut pong = std::mem::take(&mut ws.pong);
        for layer in 0..cfg.num_layers {
            // Layer input: x, or the previous layer's output (in `pong`).
            std::mem::swap(&mut ping, &mut pong);
            let input: &[f32] = if layer == 0 { x } else { &ping };
            let out: &mut [f32] = if layer + 1 == cfg.num_layers {
                y
            } else {
                &mut pong
            };
            for dir in 0..cfg.directions() {
                let mut pass = self.pass(params, layer, dir, shape);
                pass.packs = packs.map(|p| &p.passes[layer * cfg.directions() + dir]);
                let slice = (layer * cfg.directions() + dir) * bh..;
                let c = if cfg.cell.has_cell_state() {
                    Some(&mut state.c[slice.clone()][..bh])
                } else {
                    None
                };
                sequence::forward(
                    &pass,
                    input,
                    &mut state.h[slice][..bh],
                    c,
                    out,
                    &mut ws.gates,
                    None,
                    ForwardScratch {
                        bias: &mut ws.bias,
                        hg: &mut ws.hg,
                        rh: &mut ws.tmp_a,
                    },
                );
            }
        }
        ws.ping = ping;
        ws.pong = pong;
        Ok(())
    }

    /// Training forward pass: as [`Rnn::forward_infer`], and fills `cache` with what
    /// [`Rnn::backward`] needs (a copy of `x`, the initial state, every layer's output, gate
    /// activations and the cell-specific extra tensor), and the dropout masks between layers,
    /// drawn from `rng` when the stack has dropout.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_train(
        &self,
        params: &[f32],
        x: &[f32],
        shape: SeqShape,
        state: &mut RnnState,
        y: &mut [f32],
        cache: &mut RnnCache,
        rng: &mut RowRng,
    ) -> Result<()> {
        self.check(params, x, shape, state)?;
        self.check_len("output y[T, B, D·H]", y.len(), self.out_len(shape))?;
        let cfg = &self.config;
        let (rows, gh, bh) = self.dims(shape);
        let nd = cfg.state_slices();
        cache.t = shape.t;
        cache.b = shape.b;
        cache.x.clear();
        cache.x.extend_from_slice(x);
        cache.state0.clone_from(state);
        cache.out.resize_with(cfg.num_layers, Vec::new);
        let drop = self.dropout.is_active() && cfg.num_layers > 1;
        cache.dropout_active = drop;
        if drop {
            cache.masks.resize_with(cfg.num_layers - 1, Vec::new);
            cache.dropped.resize_with(cfg.num_layers - 1, Vec::new);
        }
        cache.gates.resize_with(nd, Vec::new);
        cache.extra.resize_with(nd, Vec::new);
        fit(&mut cache.bias, gh);
        fit(&mut cache.hg, shape.b * gh);
        for layer in 0..cfg.num_layers {
            let (below, here) = cache.out.split_at_mut(layer);
            let input: &[f32] = match layer {
                0 => &cache.x,
                _ if drop => &cache.dropped[layer - 1],
                _ => &below[layer - 1],
            };
            let out = &mut here[0];
            fit(out, self.out_len(shape));
            for dir in 0..cfg.directions() {
                let k = layer * cfg.directions() + dir;
                let pass = self.pass(params, layer, dir, shape);
                fit(&mut cache.gates[k], rows * gh);
                fit(&mut cache.extra[k], rows * cfg.hidden_size);
                let c = if cfg.cell.has_cell_state() {
                    Some(&mut state.c[k * bh..(k + 1) * bh])
                } else {
                    None
                };
                sequence::forward(
                    &pass,
                    input,
                    &mut state.h[k * bh..(k + 1) * bh],
                    c,
                    out,
                    &mut cache.gates[k],
                    Some(&mut cache.extra[k]),
                    ForwardScratch {
                        bias: &mut cache.bias,
                        hg: &mut cache.hg,
                        rh: &mut [],
                    },
                );
            }
            if drop && layer + 1 < cfg.num_layers {
                let dropped = &mut cache.dropped[layer];
                dropped.clear();
                dropped.extend_from_slice(out);
                self.dropout
                    .apply_train(dropped, &mut cache.masks[layer], shape.t, shape.b, rng);
            }
        }
        y.copy_from_slice(&cache.out[cfg.num_layers - 1]);
        Ok(())
    }

    /// Backward pass through time of the last [`Rnn::forward_train`].
    ///
    /// - `params`: read, the same block as the forward pass.
    /// - `grads`: accumulated (`+=`), same layout as `params`.
    /// - `dy[T, B, D·H]`: read, `∂L/∂y`.
    /// - `dstate`: read `∂L/∂` of the final state (zeros if the loss does not use it), written
    ///   `∂L/∂` of the initial state.
    /// - `dx[T, B, I]`: written, `∂L/∂x`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        cache: &RnnCache,
        dy: &[f32],
        dstate: &mut RnnState,
        dx: &mut [f32],
        ws: &mut RnnWorkspace,
    ) -> Result<()> {
        let cfg = &self.config;
        let shape = SeqShape {
            t: cache.t,
            b: cache.b,
        };
        if cache.out.len() != cfg.num_layers || cache.t == 0 {
            return Err(Error::Shape(
                "backward called without a matching training forward pass".into(),
            ));
        }
        self.check(params, &cache.x, shape, dstate)?;
        self.check_len("gradient block", grads.len(), self.num_params())?;
        self.check_len(
            "output gradient dy[T, B, D·H]",
            dy.len(),
            self.out_len(shape),
        )?;
        self.check_len("input gradient dx[T, B, I]", dx.len(), cache.x.len())?;
        let (rows, gh, bh) = self.dims(shape);
        fit(&mut ws.gates, rows * gh);
        if cfg.cell == CellKind::Gru(GruVariant::ResetAfter) {
            fit(&mut ws.dhg, rows * gh);
        }
        fit(&mut ws.tmp_a, bh);
        fit(&mut ws.tmp_b, bh);
        if cfg.num_layers > 1 {
            fit(&mut ws.ping, self.out_len(shape));
            fit(&mut ws.pong, self.out_len(shape));
        }
        let mut ping = std::mem::take(&mut ws.ping);
        let mut pong = std::mem::take(&mut ws.pong);
        for layer in (0..cfg.num_layers).rev() {
            // ∂L/∂(layer output): dy, or what the layer above wrote (into `pong`).
            std::mem::swap(&mut ping, &mut pong);
            let d_out: &[f32] = if layer + 1 == cfg.num_layers {
                dy
            } else {
                &ping
            };
            let d_in: &mut [f32] = if layer == 0 { dx } else { &mut pong };
            let input: &[f32] = match layer {
                0 => &cache.x,
                _ if cache.dropout_active => &cache.dropped[layer - 1],
                _ => &cache.out[layer - 1],
            };
            for dir in 0..cfg.directions() {
                let k = layer * cfg.directions() + dir;
                let pass = self.pass(params, layer, dir, shape);
                let saved = Saved {
                    x: input,
                    out: &cache.out[layer],
                    h0: &cache.state0.h[k * bh..(k + 1) * bh],
                    c0: cfg
                        .cell
                        .has_cell_state()
                        .then(|| &cache.state0.c[k * bh..(k + 1) * bh]),
                    gates: &cache.gates[k],
                    extra: &cache.extra[k],
                };
                let dc = if cfg.cell.has_cell_state() {
                    Some(&mut dstate.c[k * bh..(k + 1) * bh])
                } else {
                    None
                };
                sequence::backward(
                    &pass,
                    &saved,
                    d_out,
                    &mut dstate.h[k * bh..(k + 1) * bh],
                    dc,
                    CellGrads::new(grads, self.layout.cell(layer, dir)),
                    d_in,
                    if dir == 0 {
                        Accumulate::Overwrite
                    } else {
                        Accumulate::Add
                    },
                    BackwardScratch {
                        dxg: &mut ws.gates,
                        dhg: &mut ws.dhg,
                        h_prev: &mut ws.tmp_a,
                        drh: &mut ws.tmp_b,
                    },
                );
            }
            if layer > 0 && cache.dropout_active {
                // ∂L/∂(dropped input) → ∂L/∂(output of the layer below).
                apply_mask(d_in, &cache.masks[layer - 1]);
            }
        }
        ws.ping = ping;
        ws.pong = pong;
        Ok(())
    }

    /// `(T·B, G·H, B·H)`: rows of the all-steps buffers, gate width, state size.
    fn dims(&self, shape: SeqShape) -> (usize, usize, usize) {
        let h = self.config.hidden_size;
        (shape.t * shape.b, self.config.cell.gates() * h, shape.b * h)
    }

    fn out_len(&self, shape: SeqShape) -> usize {
        shape.t * shape.b * self.config.output_size()
    }

    fn check_len(&self, what: &str, got: usize, need: usize) -> Result<()> {
        check_lens([(what, got, need)])
    }
}

/// Checks buffer lengths `(what, got, need)` in order: the first that differs is a shape error
/// `"{what} has {got} values, expected {need}"`.
pub(crate) fn check_lens<'a>(
    want: impl IntoIterator<Item = (&'a str, usize, usize)>,
) -> Result<()> {
    for (what, got, need) in want {
        if got != need {
            return Err(Error::Shape(format!(
                "{what} has {got} values, expected {need}"
            )));
        }
    }
    Ok(())
}

/// Read-only views of a training-mode pass, for looking inside a trained model (gate
/// activations and states per token).
impl RnnCache {
    /// Time steps `T` and batch `B` of the cached pass.
    pub fn shape(&self) -> SeqShape {
        SeqShape {
            t: self.t,
            b: self.b,
        }
    }

    /// Gate activations of layer `layer`, direction `dir` (0 forward, 1 reverse):
    /// `[T·B, G·H]`, row `t·B + b`, columns gate-major in PyTorch order (LSTM i, f, g, o after
    /// their sigmoid/tanh; GRU r, z, n). `None` when the pass did not have that layer/direction.
    pub fn gates(&self, layer: usize, dir: usize, num_dirs: usize) -> Option<&[f32]> {
        self.gates.get(layer * num_dirs + dir).map(Vec::as_slice)
    }

    /// The LSTM cell state `c_t` of layer `layer`, direction `dir`: `[T·B, H]`, row `t·B + b`.
    /// For a GRU this holds the cell's own intermediate instead (see the field docs), so callers
    /// should only read it for LSTM.
    pub fn cell_state(&self, layer: usize, dir: usize, num_dirs: usize) -> Option<&[f32]> {
        self.extra.get(layer * num_dirs + dir).map(Vec::as_slice)
    }

    /// Output of layer `layer` (before dropout): `[T, B, D·H]`, the hidden states `h_t` of both
    /// directions side by side.
    pub fn layer_output(&self, layer: usize) -> Option<&[f32]> {
        self.out.get(layer).map(Vec::as_slice)
    }
}

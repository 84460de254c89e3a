//! A pre-norm residual stack of recurrent blocks (the block the minimal cells are trained in by
//! Feng et al. 2024, a Transformer's block with the recurrent layer in place of attention):
//!
//! ```text
//! for each layer l:  x ← x + drop(RNN_l(LN1_l(x)))          (one-layer LSTM/GRU/minGRU/…, D → D)
//!                    x ← x + drop(W2_l · GELU(W1_l · LN2_l(x) + b1_l) + b2_l)   (when M > 0)
//! y = LN(x)
//! ```
//!
//! over a residual stream of width `D`, time-major `x[T, B, D]` (rows `N = T·B`). GELU is the
//! tanh form (PyTorch's `nn.GELU(approximate="tanh")`); the layer norms are PyTorch's
//! ([`super::norm`]); dropout (standard or locked, [`Dropout`]) acts on each branch's output
//! before it joins the stream.
//!
//! Parameters, one block in this order and with these names, per layer `l`:
//! `blocks.{l}.norm1.weight [D]`, `blocks.{l}.norm1.bias [D]`, the layer's recurrent tensors
//! under PyTorch's `nn.LSTM` names (`rnn.weight_ih_l{l} [G·D, D]`, …, no `weight_hh` for the
//! minimal cells), then with an MLP `blocks.{l}.norm2.weight [D]`, `blocks.{l}.norm2.bias [D]`,
//! `blocks.{l}.mlp.0.weight [M, D]`, `blocks.{l}.mlp.0.bias [M]`, `blocks.{l}.mlp.2.weight
//! [D, M]`, `blocks.{l}.mlp.2.bias [D]` (an `nn.Sequential(Linear, GELU, Linear)`); last
//! `norm.weight [D]`, `norm.bias [D]`.
//!
//! The carried state is the engine's for an `L`-layer stack: `h[L, B, D]` (and `c[L, B, D]` for
//! the LSTM), slice `l` for layer `l`. Backward treats the final state's gradient as zero
//! (truncated backpropagation through time).

use std::ops::Range;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{dense, norm, ParamLayout};
use crate::dropout::{apply_mask, Dropout, RowRng};
use crate::error::{Error, Result};
use crate::linalg::fit;
use crate::rnn::activation::tanh;
use crate::rnn::{
    CellKind, Direction, Init, Rnn, RnnCache, RnnConfig, RnnPacks, RnnState, RnnWorkspace, SeqShape,
};

/// Shape of a [`ResidualStack`]. `validate()` before use.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResidualConfig {
    /// Recurrent cell of every block.
    pub cell: CellKind,
    /// Width `D` of the residual stream (each recurrent layer's input and hidden size).
    pub width: usize,
    /// Blocks `L`.
    pub layers: usize,
    /// Hidden units `M` of each block's MLP; 0: no MLP (and no second norm).
    pub mlp: usize,
    /// Dropout on each branch's output.
    pub dropout: Dropout,
}

impl ResidualConfig {
    /// Checks sizes and dropout.
    pub fn validate(&self) -> Result<()> {
        if self.width == 0 || self.layers == 0 {
            return Err(Error::Config(format!(
                "a residual stack needs a width and a layer count of at least 1, got {} and {}",
                self.width, self.layers
            )));
        }
        self.dropout.validate()
    }

    /// The one-layer recurrent stack of every block.
    fn rnn_config(&self) -> RnnConfig {
        RnnConfig {
            cell: self.cell,
            input_size: self.width,
            hidden_size: self.width,
            num_layers: 1,
            direction: Direction::Forward,
        }
    }
}

/// Where one block's tensors live, relative to the stack's block.
#[derive(Clone, Debug)]
struct BlockLayout {
    norm1: Range<usize>,
    rnn: Range<usize>,
    /// With an MLP: `norm2` (weight then bias), `fc1` (`[M, D]` then `[M]`), `fc2` (`[D, M]`
    /// then `[D]`), each pair contiguous.
    norm2: Range<usize>,
    fc1: Range<usize>,
    fc2: Range<usize>,
}

/// The stack: its configuration, one block's recurrent layer, and where every tensor lives.
#[derive(Clone, Debug)]
pub struct ResidualStack {
    config: ResidualConfig,
    rnn: Rnn,
    blocks: Vec<BlockLayout>,
    /// `norm.weight` then `norm.bias`.
    norm: Range<usize>,
    params: ParamLayout,
}

/// What a block's training pass keeps for backward.
#[derive(Debug, Default)]
struct BlockCache {
    norm1: norm::NormCache,
    rnn: RnnCache,
    /// The recurrent branch's dropout mask `[T, B, D]` (empty without dropout).
    r_mask: Vec<f32>,
    norm2: norm::NormCache,
    /// `v[N, D]`: the second norm's output (the MLP's input).
    v: Vec<f32>,
    /// `a[N, M]`: the first linear layer's output; `act[N, M]` its GELU.
    a: Vec<f32>,
    act: Vec<f32>,
    /// The MLP branch's dropout mask `[T, B, D]` (empty without dropout).
    m_mask: Vec<f32>,
}

/// What [`ResidualStack::forward_train`] keeps for [`ResidualStack::backward`].
#[derive(Debug, Default)]
pub struct ResidualCache {
    shape: Option<SeqShape>,
    blocks: Vec<BlockCache>,
    /// The final norm's `x̂` and `r`.
    norm: norm::NormCache,
}

/// Scratch buffers of the passes, reused across calls.
#[derive(Debug, Default)]
pub struct ResidualWorkspace {
    rnn: RnnWorkspace,
    /// One layer's state `[B, D]` (forward) or its gradient (backward).
    state: RnnState,
    /// `stream[N, D]`: the residual stream (forward) or its gradient (backward).
    stream: Vec<f32>,
    /// `[N, D]` branch input and output (forward), or their gradients (backward).
    u: Vec<f32>,
    r: Vec<f32>,
    /// `[N, M]`: the MLP's hidden layer (inference) or its gradient (backward).
    hidden: Vec<f32>,
}

/// A stack's weights packed once for many inference passes: each block's recurrent layer.
#[derive(Debug)]
pub struct ResidualPacks<'p> {
    params: &'p [f32],
    rnn: Vec<RnnPacks<'p>>,
}

const GELU_K: f32 = 0.797_884_6; // √(2/π)
const GELU_C: f32 = 0.044_715;

/// `GELU(a) = ½ a (1 + tanh(√(2/π) (a + 0.044715 a³)))`.
fn gelu(a: f32) -> f32 {
    0.5 * a * (1.0 + tanh(GELU_K * (a + GELU_C * a * a * a)))
}

/// `GELU'(a)`.
fn dgelu(a: f32) -> f32 {
    let t = tanh(GELU_K * (a + GELU_C * a * a * a));
    0.5 * (1.0 + t) + 0.5 * a * (1.0 - t * t) * GELU_K * (1.0 + 3.0 * GELU_C * a * a)
}

/// Element-wise maps over wide buffers run on every thread, in blocks of this many values.
const CHUNK: usize = 16 * 1024;

/// `out = GELU(a)`.
fn gelu_into(a: &[f32], out: &mut [f32]) {
    out.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK))
        .for_each(|(o, a)| o.iter_mut().zip(a).for_each(|(o, &a)| *o = gelu(a)));
}

/// `d ⊙= GELU'(a)`.
fn dgelu_in_place(d: &mut [f32], a: &[f32]) {
    d.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK))
        .for_each(|(d, a)| d.iter_mut().zip(a).for_each(|(d, &a)| *d *= dgelu(a)));
}

/// `x += y`.
fn add_into(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(x, y)| *x += y);
}

/// Layer `l`'s slice `[B, D]` of a packed state, copied into `one`.
fn take_layer(state: &RnnState, l: usize, n: usize, one: &mut RnnState) {
    one.h.clear();
    one.h.extend_from_slice(&state.h[l * n..(l + 1) * n]);
    one.c.clear();
    if !state.c.is_empty() {
        one.c.extend_from_slice(&state.c[l * n..(l + 1) * n]);
    }
}

/// Writes `one` back as layer `l`'s slice of a packed state.
fn put_layer(state: &mut RnnState, l: usize, n: usize, one: &RnnState) {
    state.h[l * n..(l + 1) * n].copy_from_slice(&one.h);
    if !state.c.is_empty() {
        state.c[l * n..(l + 1) * n].copy_from_slice(&one.c);
    }
}

/// `one` set to a zero `[B, D]` state (`n = B·D` values; `c` only for a cell with one).
fn zero_layer(one: &mut RnnState, n: usize, cell_state: bool) {
    one.h.clear();
    one.h.resize(n, 0.0);
    one.c.clear();
    if cell_state {
        one.c.resize(n, 0.0);
    }
}

/// A weight/bias pair's two halves, `[..k]` and `[k..]`, of a contiguous range.
fn halves<'p>(block: &'p [f32], pair: &Range<usize>, k: usize) -> (&'p [f32], &'p [f32]) {
    block[pair.clone()].split_at(k)
}

/// [`halves`] for gradients.
fn halves_mut<'g>(
    block: &'g mut [f32],
    pair: &Range<usize>,
    k: usize,
) -> (&'g mut [f32], &'g mut [f32]) {
    block[pair.clone()].split_at_mut(k)
}

impl ResidualStack {
    /// A stack for `config`, after validating it.
    pub fn new(config: ResidualConfig) -> Result<Self> {
        config.validate()?;
        let rnn = Rnn::new(config.rnn_config())?;
        let (d, m) = (config.width, config.mlp);
        let mut params = ParamLayout::new();
        let pair = |params: &mut ParamLayout, name: &str, w: Vec<usize>, b: usize| {
            let first = params.push(format!("{name}.weight"), w);
            let second = params.push(format!("{name}.bias"), vec![b]);
            first.start..second.end
        };
        let mut blocks = Vec::with_capacity(config.layers);
        for l in 0..config.layers {
            let norm1 = pair(&mut params, &format!("blocks.{l}.norm1"), vec![d], d);
            let rnn_range = params.push_rnn("rnn", &rnn.layout().numbered_from(l));
            let (mut norm2, mut fc1, mut fc2) = (0..0, 0..0, 0..0);
            if m > 0 {
                norm2 = pair(&mut params, &format!("blocks.{l}.norm2"), vec![d], d);
                fc1 = pair(&mut params, &format!("blocks.{l}.mlp.0"), vec![m, d], m);
                fc2 = pair(&mut params, &format!("blocks.{l}.mlp.2"), vec![d, m], d);
            }
            blocks.push(BlockLayout {
                norm1,
                rnn: rnn_range,
                norm2,
                fc1,
                fc2,
            });
        }
        let norm = pair(&mut params, "norm", vec![d], d);
        Ok(ResidualStack {
            config,
            rnn,
            blocks,
            norm,
            params,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ResidualConfig {
        &self.config
    }

    /// Every tensor of the stack's block, named, relative to the block's start.
    pub fn param_layout(&self) -> &ParamLayout {
        &self.params
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.params.len()
    }

    /// The recurrent layer of every block (one layer, `D → D`).
    pub fn rnn(&self) -> &Rnn {
        &self.rnn
    }

    /// The values of `block` in each layer's recurrent tensors (in [`crate::rnn::RnnLayout`]
    /// order for a one-layer stack).
    pub fn rnn_block<'p>(&self, block: &'p [f32], layer: usize) -> &'p [f32] {
        &block[self.blocks[layer].rnn.clone()]
    }

    /// Initialises `block`: norms `γ = 1`, `β = 0`; recurrent layers and linear layers as
    /// PyTorch's modules draw them (`U(−1/√fan_in, 1/√fan_in)`). The same seed gives the same
    /// values.
    pub fn init(&self, block: &mut [f32], seed: u64) -> Result<()> {
        self.check_block("parameter block", block.len())?;
        let (d, m) = (self.config.width, self.config.mlp);
        let mut rng = crate::dropout::rng_from_seed(seed);
        let norm = |block: &mut [f32], pair: &Range<usize>| {
            let (w, b) = halves_mut(block, pair, d);
            w.fill(1.0);
            b.fill(0.0);
        };
        for (l, bl) in self.blocks.iter().enumerate() {
            norm(block, &bl.norm1);
            let rnn = &mut block[bl.rnn.clone()];
            Init::default().apply(self.rnn.config(), rnn, seed.wrapping_add(1 + l as u64))?;
            if m > 0 {
                norm(block, &bl.norm2);
                let (w, b) = halves_mut(block, &bl.fc1, m * d);
                dense::init(w, b, d, &mut rng);
                let (w, b) = halves_mut(block, &bl.fc2, d * m);
                dense::init(w, b, m, &mut rng);
            }
        }
        norm(block, &self.norm);
        Ok(())
    }

    fn check_block(&self, what: &str, n: usize) -> Result<()> {
        self.params.check_block(what, n)
    }

    fn check(
        &self,
        block: usize,
        x: usize,
        y: usize,
        shape: SeqShape,
        state: &RnnState,
    ) -> Result<()> {
        self.check_block("parameter block", block)?;
        let nd = shape.t * shape.b * self.config.width;
        let ns = self.config.layers * shape.b * self.config.width;
        let nc = if self.config.cell.has_cell_state() {
            ns
        } else {
            0
        };
        if x != nd || y != nd || state.h.len() != ns || state.c.len() != nc {
            return Err(Error::Shape(format!(
                "residual stack: x, y hold {x} and {y} values and the state {} + {}, expected \
                 {nd}, {nd} and {ns} + {nc}",
                state.h.len(),
                state.c.len()
            )));
        }
        Ok(())
    }

    /// Training forward pass.
    ///
    /// - `block`: read, the stack's parameters.
    /// - `x[T, B, D]`: read. `y[T, B, D]`: written, the final norm's output.
    /// - `state`: read the initial state `[L, B, D]`, written the final one.
    /// - `cache`: written, what [`ResidualStack::backward`] reads; `rng`: dropout masks.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_train(
        &self,
        block: &[f32],
        x: &[f32],
        shape: SeqShape,
        state: &mut RnnState,
        y: &mut [f32],
        cache: &mut ResidualCache,
        ws: &mut ResidualWorkspace,
        rng: &mut RowRng,
    ) -> Result<()> {
        self.check(block.len(), x.len(), y.len(), shape, state)?;
        let (d, m) = (self.config.width, self.config.mlp);
        let (n, nb) = (shape.t * shape.b, shape.b * d);
        let drop = self.config.dropout;
        cache.shape = Some(shape);
        cache
            .blocks
            .resize_with(self.config.layers, BlockCache::default);
        ws.stream.clear();
        ws.stream.extend_from_slice(x);
        fit(&mut ws.u, n * d);
        fit(&mut ws.r, n * d);
        for (l, (bl, bc)) in self.blocks.iter().zip(&mut cache.blocks).enumerate() {
            let (g, b) = halves(block, &bl.norm1, d);
            norm::forward_train(&ws.stream, g, b, &mut ws.u, &mut bc.norm1);
            take_layer(state, l, nb, &mut ws.state);
            let w = &block[bl.rnn.clone()];
            self.rnn
                .forward_train(w, &ws.u, shape, &mut ws.state, &mut ws.r, &mut bc.rnn, rng)?;
            put_layer(state, l, nb, &ws.state);
            if drop.is_active() {
                drop.apply_train(&mut ws.r, &mut bc.r_mask, shape.t, shape.b, rng);
            }
            add_into(&mut ws.stream, &ws.r);
            if m == 0 {
                continue;
            }
            fit(&mut bc.v, n * d);
            fit(&mut bc.a, n * m);
            fit(&mut bc.act, n * m);
            let (g, b) = halves(block, &bl.norm2, d);
            norm::forward_train(&ws.stream, g, b, &mut bc.v, &mut bc.norm2);
            let (w1, b1) = halves(block, &bl.fc1, m * d);
            dense::forward(w1, b1, &bc.v, &mut bc.a, n, d, m);
            gelu_into(&bc.a, &mut bc.act);
            let (w2, b2) = halves(block, &bl.fc2, d * m);
            dense::forward(w2, b2, &bc.act, &mut ws.r, n, m, d);
            if drop.is_active() {
                drop.apply_train(&mut ws.r, &mut bc.m_mask, shape.t, shape.b, rng);
            }
            add_into(&mut ws.stream, &ws.r);
        }
        let (g, b) = halves(block, &self.norm, d);
        norm::forward_train(&ws.stream, g, b, y, &mut cache.norm);
        Ok(())
    }

    /// Backward pass of the last [`ResidualStack::forward_train`].
    ///
    /// - `block`: read, the same parameters. `grads`: accumulated (`+=`), the block's layout.
    /// - `dy[T, B, D]`: read, `∂L/∂y`. `dx[T, B, D]`: written, `∂L/∂x`.
    ///
    /// The final state's gradient is zero, and none flows into the initial state.
    pub fn backward(
        &self,
        block: &[f32],
        grads: &mut [f32],
        cache: &ResidualCache,
        dy: &[f32],
        dx: &mut [f32],
        ws: &mut ResidualWorkspace,
    ) -> Result<()> {
        let shape = cache.shape.ok_or_else(|| {
            Error::Shape("backward called without a training forward pass".into())
        })?;
        self.check_block("parameter block", block.len())?;
        self.check_block("gradient block", grads.len())?;
        let (d, m) = (self.config.width, self.config.mlp);
        let n = shape.t * shape.b;
        if dy.len() != n * d || dx.len() != n * d {
            return Err(Error::Shape(format!(
                "residual stack: dy and dx hold {} and {} values, expected {}",
                dy.len(),
                dx.len(),
                n * d
            )));
        }
        // `ws.stream` carries ∂L/∂x of the stream at each point, from the top down.
        ws.stream.clear();
        ws.stream.resize(n * d, 0.0);
        let (g, _) = halves(block, &self.norm, d);
        let (dg, db) = halves_mut(grads, &self.norm, d);
        norm::backward(dy, g, &cache.norm, dg, db, &mut ws.stream);
        fit(&mut ws.u, n * d);
        fit(&mut ws.r, n * d);
        for (bl, bc) in self.blocks.iter().zip(&cache.blocks).rev() {
            if m > 0 {
                self.mlp_backward(block, grads, bl, bc, n, ws);
            }
            ws.r.copy_from_slice(&ws.stream);
            if !bc.r_mask.is_empty() {
                apply_mask(&mut ws.r, &bc.r_mask);
            }
            zero_layer(
                &mut ws.state,
                shape.b * d,
                self.config.cell.has_cell_state(),
            );
            let (w, dw) = (&block[bl.rnn.clone()], &mut grads[bl.rnn.clone()]);
            self.rnn
                .backward(w, dw, &bc.rnn, &ws.r, &mut ws.state, &mut ws.u, &mut ws.rnn)?;
            let (g, _) = halves(block, &bl.norm1, d);
            let (dg, db) = halves_mut(grads, &bl.norm1, d);
            norm::backward(&ws.u, g, &bc.norm1, dg, db, &mut ws.stream);
        }
        dx.copy_from_slice(&ws.stream);
        Ok(())
    }

    /// Backward through one block's MLP branch: `ws.stream` (`∂L/∂` the block's output) gains
    /// the branch's gradient through its norm; the MLP's gradients accumulate into `grads`.
    fn mlp_backward(
        &self,
        block: &[f32],
        grads: &mut [f32],
        bl: &BlockLayout,
        bc: &BlockCache,
        n: usize,
        ws: &mut ResidualWorkspace,
    ) {
        let (d, m) = (self.config.width, self.config.mlp);
        ws.r.copy_from_slice(&ws.stream);
        if !bc.m_mask.is_empty() {
            apply_mask(&mut ws.r, &bc.m_mask);
        }
        fit(&mut ws.hidden, n * m);
        let (w2, _) = halves(block, &bl.fc2, d * m);
        let (dw2, db2) = halves_mut(grads, &bl.fc2, d * m);
        dense::backward(w2, &bc.act, &ws.r, dw2, db2, &mut ws.hidden, n, m, d);
        dgelu_in_place(&mut ws.hidden, &bc.a);
        let (w1, _) = halves(block, &bl.fc1, m * d);
        let (dw1, db1) = halves_mut(grads, &bl.fc1, m * d);
        dense::backward(w1, &bc.v, &ws.hidden, dw1, db1, &mut ws.u, n, d, m);
        let (g, _) = halves(block, &bl.norm2, d);
        let (dg, db) = halves_mut(grads, &bl.norm2, d);
        norm::backward(&ws.u, g, &bc.norm2, dg, db, &mut ws.stream);
    }

    /// Packs each block's recurrent weights once for many [`ResidualStack::forward_infer`]
    /// passes.
    ///
    /// # Errors
    /// [`Error::Shape`] when `block` is not this stack's parameter block.
    pub fn pack<'p>(&self, block: &'p [f32]) -> Result<ResidualPacks<'p>> {
        self.check_block("parameter block", block.len())?;
        let rnn = (self.blocks.iter())
            .map(|bl| self.rnn.pack(&block[bl.rnn.clone()]))
            .collect::<Result<_>>()?;
        Ok(ResidualPacks { params: block, rnn })
    }

    /// Inference pass: as [`ResidualStack::forward_train`] without dropout or cache, through
    /// `packs` when given (then `block` is ignored for the packed one's). Every product is
    /// row-wise, so a batch row's outputs and state are the same, to the bit, alone or beside
    /// other rows when the recurrent layers are packed.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_infer(
        &self,
        block: &[f32],
        packs: Option<&ResidualPacks<'_>>,
        x: &[f32],
        shape: SeqShape,
        state: &mut RnnState,
        y: &mut [f32],
        ws: &mut ResidualWorkspace,
    ) -> Result<()> {
        let block = packs.map_or(block, |p| p.params);
        self.check(block.len(), x.len(), y.len(), shape, state)?;
        let (d, m) = (self.config.width, self.config.mlp);
        let (n, nb) = (shape.t * shape.b, shape.b * d);
        ws.stream.clear();
        ws.stream.extend_from_slice(x);
        fit(&mut ws.u, n * d);
        fit(&mut ws.r, n * d);
        for (l, bl) in self.blocks.iter().enumerate() {
            let (g, b) = halves(block, &bl.norm1, d);
            norm::forward(&ws.stream, g, b, &mut ws.u);
            take_layer(state, l, nb, &mut ws.state);
            match packs {
                Some(p) => self.rnn.forward_infer_packed(
                    &p.rnn[l],
                    &ws.u,
                    shape,
                    &mut ws.state,
                    &mut ws.r,
                    &mut ws.rnn,
                ),
                None => self.rnn.forward_infer(
                    &block[bl.rnn.clone()],
                    &ws.u,
                    shape,
                    &mut ws.state,
                    &mut ws.r,
                    &mut ws.rnn,
                ),
            }?;
            put_layer(state, l, nb, &ws.state);
            add_into(&mut ws.stream, &ws.r);
            if m == 0 {
                continue;
            }
            fit(&mut ws.hidden, n * m);
            let (g, b) = halves(block, &bl.norm2, d);
            norm::forward(&ws.stream, g, b, &mut ws.u);
            let (w1, b1) = halves(block, &bl.fc1, m * d);
            dense::forward_rows(w1, b1, &ws.u, &mut ws.hidden, n, d, m);
            ws.hidden.iter_mut().for_each(|a| *a = gelu(*a));
            let (w2, b2) = halves(block, &bl.fc2, d * m);
            dense::forward_rows(w2, b2, &ws.hidden, &mut ws.r, n, m, d);
            add_into(&mut ws.stream, &ws.r);
        }
        let (g, b) = halves(block, &self.norm, d);
        norm::forward(&ws.stream, g, b, y);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_matches_pytorch_and_its_derivative_finite_differences() {
        // torch.nn.functional.gelu(torch.tensor([-2., -0.5, 0., 1., 3.]), approximate="tanh")
        let want = [-0.045_402_3, -0.154_285_9, 0.0, 0.841_192, 2.996_362_6];
        for (a, w) in [-2.0f32, -0.5, 0.0, 1.0, 3.0].into_iter().zip(want) {
            assert!((gelu(a) - w).abs() < 1e-5, "gelu({a}) = {} vs {w}", gelu(a));
            let h = 1e-3;
            let fd = (gelu(a + h) - gelu(a - h)) / (2.0 * h);
            assert!(
                (fd - dgelu(a)).abs() < 2e-3,
                "gelu'({a}): {fd} vs {}",
                dgelu(a)
            );
        }
    }

    #[test]
    fn names_follow_pytorch_modules() {
        let stack = ResidualStack::new(ResidualConfig {
            cell: CellKind::MinGru,
            width: 4,
            layers: 2,
            mlp: 6,
            dropout: Dropout::NONE,
        })
        .unwrap();
        let names: Vec<_> = (stack.param_layout().entries().iter())
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(
            &names[..4],
            &[
                "blocks.0.norm1.weight",
                "blocks.0.norm1.bias",
                "rnn.weight_ih_l0",
                "rnn.bias_ih_l0"
            ]
        );
        assert_eq!(
            names[4..8],
            [
                "blocks.0.norm2.weight",
                "blocks.0.norm2.bias",
                "blocks.0.mlp.0.weight",
                "blocks.0.mlp.0.bias"
            ]
        );
        assert_eq!(names.last(), Some(&"norm.bias"));
        // Per block: 2·4 norms, minGRU 2·4·4 + 2·4, MLP 6·4 + 6 + 4·6 + 4; then the final norm.
        assert_eq!(stack.num_params(), 2 * (16 + 32 + 8 + 24 + 6 + 24 + 4) + 8);
    }

    use crate::dropout::DropoutKind;
    use crate::model::testing::{check_gradients, FdCheck};

    fn stack(cell: CellKind, mlp: usize, dropout: f32) -> ResidualStack {
        ResidualStack::new(ResidualConfig {
            cell,
            width: 4,
            layers: 2,
            mlp,
            dropout: Dropout {
                p: dropout,
                kind: DropoutKind::Variational,
            },
        })
        .unwrap()
    }

    /// `Σ w ⊙ y` of a training pass from `state0`, the masks drawn from seed 3.
    fn loss(
        s: &ResidualStack,
        block: &[f32],
        x: &[f32],
        state0: &RnnState,
        shape: SeqShape,
    ) -> f64 {
        let (mut cache, mut ws) = (ResidualCache::default(), ResidualWorkspace::default());
        let mut state = state0.clone();
        let mut y = vec![0.0; x.len()];
        let mut rng = RowRng::new(3, 0);
        s.forward_train(
            block, x, shape, &mut state, &mut y, &mut cache, &mut ws, &mut rng,
        )
        .unwrap();
        y.iter()
            .enumerate()
            .map(|(i, &v)| v as f64 * ((i % 7) as f64 - 3.0) * 0.25)
            .sum()
    }

    fn inputs(s: &ResidualStack, shape: SeqShape) -> (Vec<f32>, Vec<f32>, RnnState) {
        let mut block = vec![0.0; s.num_params()];
        s.init(&mut block, 5).unwrap();
        // Norm parameters away from 1 and 0, so that their gradients are exercised.
        for (i, v) in block.iter_mut().enumerate() {
            *v += ((i * 13 % 17) as f32 - 8.0) * 0.02;
        }
        let n = shape.t * shape.b * 4;
        let x = (0..n).map(|i| ((i * 7 % 19) as f32 - 9.0) * 0.15).collect();
        let ns = 2 * shape.b * 4;
        let state = RnnState {
            h: (0..ns).map(|i| ((i % 5) as f32 - 2.0) * 0.2).collect(),
            c: match s.config.cell.has_cell_state() {
                true => (0..ns).map(|i| ((i % 3) as f32 - 1.0) * 0.3).collect(),
                false => Vec::new(),
            },
        };
        (block, x, state)
    }

    #[test]
    fn gradients_match_finite_differences() {
        let shape = SeqShape { t: 3, b: 2 };
        for cell in [CellKind::Lstm, CellKind::MinGru, CellKind::MinLstm] {
            for (mlp, p) in [(6, 0.0), (5, 0.3), (0, 0.0)] {
                let s = stack(cell, mlp, p);
                let (block, x, state0) = inputs(&s, shape);
                let (mut cache, mut ws) = (ResidualCache::default(), ResidualWorkspace::default());
                let mut state = state0.clone();
                let mut y = vec![0.0; x.len()];
                let mut rng = RowRng::new(3, 0);
                s.forward_train(
                    &block, &x, shape, &mut state, &mut y, &mut cache, &mut ws, &mut rng,
                )
                .unwrap();
                let dy: Vec<f32> = (0..y.len())
                    .map(|i| ((i % 7) as f32 - 3.0) * 0.25)
                    .collect();
                let mut grads = vec![0.0; block.len()];
                let mut dx = vec![0.0; x.len()];
                s.backward(&block, &mut grads, &cache, &dy, &mut dx, &mut ws)
                    .unwrap();
                let what = format!("{cell:?} mlp {mlp} dropout {p}");
                // A small step: the minimal cells' `g` has a kink in its derivative at 0 (1
                // above, ¼ below), which a wide step across a pre-activation near 0 straddles.
                let check = FdCheck {
                    eps: 2e-3,
                    ..FdCheck::new(2e-2, 2e-3)
                };
                let gmax = check_gradients(
                    &what,
                    &mut block.clone(),
                    &grads,
                    check,
                    |_| false,
                    |b| loss(&s, b, &x, &state0, shape),
                );
                assert!(gmax > 0.1, "{what}: gradients too small to test ({gmax})");
                check_gradients(
                    &what,
                    &mut x.clone(),
                    &dx,
                    check,
                    |_| false,
                    |x| loss(&s, &block, x, &state0, shape),
                );
                // Accumulates: a second backward doubles the gradients.
                let mut twice = grads.clone();
                s.backward(&block, &mut twice, &cache, &dy, &mut dx, &mut ws)
                    .unwrap();
                assert!(twice
                    .iter()
                    .zip(&grads)
                    .all(|(a, b)| (a - 2.0 * b).abs() <= 1e-6 * b.abs().max(1.0)));
            }
        }
    }

    #[test]
    fn inference_equals_training_without_dropout_and_carries_the_state() {
        let shape = SeqShape { t: 5, b: 3 };
        for cell in [CellKind::Gru(Default::default()), CellKind::MinLstm] {
            let s = stack(cell, 7, 0.0);
            let (block, x, state0) = inputs(&s, shape);
            let (mut cache, mut ws) = (ResidualCache::default(), ResidualWorkspace::default());
            let (mut st_train, mut y_train) = (state0.clone(), vec![0.0; x.len()]);
            let mut rng = RowRng::new(1, 0);
            s.forward_train(
                &block,
                &x,
                shape,
                &mut st_train,
                &mut y_train,
                &mut cache,
                &mut ws,
                &mut rng,
            )
            .unwrap();
            let packs = s.pack(&block).unwrap();
            for p in [None, Some(&packs)] {
                let (mut st, mut y) = (state0.clone(), vec![0.0; x.len()]);
                s.forward_infer(&block, p, &x, shape, &mut st, &mut y, &mut ws)
                    .unwrap();
                for (a, b) in y.iter().zip(&y_train).chain(st.h.iter().zip(&st_train.h)) {
                    assert!((a - b).abs() < 1e-5, "{cell:?}: {a} vs {b}");
                }
            }
            // Two windows in a row, the state carried, equal one window of both.
            let half = 2 * shape.b * 4;
            let (mut st, mut y1, mut y2) =
                (state0.clone(), vec![0.0; half], vec![0.0; x.len() - half]);
            s.forward_infer(
                &block,
                None,
                &x[..half],
                SeqShape { t: 2, b: 3 },
                &mut st,
                &mut y1,
                &mut ws,
            )
            .unwrap();
            s.forward_infer(
                &block,
                None,
                &x[half..],
                SeqShape { t: 3, b: 3 },
                &mut st,
                &mut y2,
                &mut ws,
            )
            .unwrap();
            for (a, b) in y1.iter().chain(&y2).zip(&y_train) {
                assert!((a - b).abs() < 1e-5, "{cell:?} carried: {a} vs {b}");
            }
        }
    }

    #[test]
    fn refuses_mismatched_buffers() {
        let s = stack(CellKind::MinGru, 0, 0.0);
        let shape = SeqShape { t: 2, b: 1 };
        let (block, x, mut state) = inputs(&s, shape);
        let mut y = vec![0.0; x.len() + 1];
        let err = s.forward_infer(
            &block,
            None,
            &x,
            shape,
            &mut state,
            &mut y,
            &mut ResidualWorkspace::default(),
        );
        assert!(err.unwrap_err().to_string().contains("residual stack"));
        assert!(s
            .forward_infer(
                &block[1..],
                None,
                &x,
                shape,
                &mut state,
                &mut y[1..],
                &mut ResidualWorkspace::default()
            )
            .is_err());
    }
}

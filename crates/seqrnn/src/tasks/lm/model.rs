//! Recurrent language model: Embedding(V, E) → dropout → L-layer LSTM/GRU (dropout between
//! layers) → dropout → Linear(H, V), with softmax cross-entropy fused into the output pass.
//!
//! Parameters are one block in PyTorch `word_language_model` order and names: `encoder.weight
//! [V, E]`, `rnn.weight_ih_l0 …`, `decoder.weight [V, H]` (absent from the block when tied to the
//! encoder; written out as a copy), `decoder.bias [V]`. Token buffers are time-major `[T, B]`.
//!
//! The loss is PyTorch's convention: the mean cross-entropy over all `T·B` predictions.
//!
//! The AWD-LSTM regularisers (Merity et al. 2017, [`Regularizers`]) are exact parts of the
//! training pass: DropConnect on every `W_hh` and whole-word embedding dropout (one mask per
//! window), separate (locked) dropouts on the input, between layers and on the output, and the
//! activation penalties AR and TAR on the last layer's output.
//!
//! The last recurrent layer may have its own size (`last_hidden`, AWD-LSTM's 400-unit last layer
//! over 1150-unit layers, so that tied weights need `E = last_hidden` only). The model then runs
//! two stacks, the first `L − 1` layers and the last one, with the between-layer dropout applied
//! between them; the parameters keep one block and PyTorch's `nn.LSTM` names
//! (`rnn.weight_ih_l{L−1}` for the last layer), and the caller's state stays one [`RnnState`],
//! its slices packed in layer order (`[L−1, B, H]` then `[B, H_last]`).

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::dropout::{apply_mask, shared_mask, Dropout, RowRng};
use crate::error::{Error, Result};
use crate::linalg::{fit, Mat, Prepared};
pub use crate::model::embedding::OutputWeights;
use crate::model::embedding::{check_embed, check_vocab};
use crate::model::layout::ParamLayout;
use crate::model::residual::{
    ResidualCache, ResidualConfig, ResidualPacks, ResidualStack, ResidualWorkspace,
};
use crate::model::{embedding, softmax};
use crate::rnn::{
    CellKind, Direction, Rnn, RnnCache, RnnConfig, RnnPacks, RnnState, RnnWorkspace, SeqShape,
};

/// `rows[N, E] ⊙= mask[ids[n]]`: each row scaled by its token's entry of a `[V]` mask.
fn scale_rows(rows: &mut [f32], ids: &[u32], mask: &[f32], e: usize) {
    for (row, &id) in rows.chunks_exact_mut(e).zip(ids) {
        let m = mask[id as usize];
        row.iter_mut().for_each(|v| *v *= m);
    }
}

/// The regularisers of AWD-LSTM (Merity et al. 2017, "Regularizing and Optimizing LSTM
/// Language Models"), each off by default. The dropouts left `None` take the model's
/// `dropout`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Regularizers {
    /// Probability of dropping a whole word, i.e. a row of the embedding table, for one window
    /// (`dropoute`); kept rows are scaled by `1/(1−p)`.
    pub embed_drop: f32,
    /// DropConnect on the recurrent weights `W_hh` of every layer, one mask per window
    /// (`wdrop`); kept weights are scaled by `1/(1−p)`.
    pub weight_drop: f32,
    /// Dropout on the embedding output (`dropouti`).
    pub input: Option<Dropout>,
    /// Dropout between recurrent layers (`dropouth`).
    pub hidden: Option<Dropout>,
    /// Dropout on the last layer's output (`dropout`).
    pub output: Option<Dropout>,
    /// Activation regularisation: `ar · mean(y²)` over the last layer's dropped output.
    pub ar: f32,
    /// Temporal activation regularisation: `tar · mean((h_t − h_{t−1})²)` over the last layer's
    /// output before dropout.
    pub tar: f32,
}

impl Regularizers {
    /// Checks every probability and weight.
    pub fn validate(&self) -> Result<()> {
        for (what, p) in [
            ("embedding dropout", self.embed_drop),
            ("weight drop", self.weight_drop),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(Error::Config(format!("{what} must be in [0, 1), got {p}")));
            }
        }
        for d in [self.input, self.hidden, self.output].into_iter().flatten() {
            d.validate()?;
        }
        for (what, w) in [("AR", self.ar), ("TAR", self.tar)] {
            if !(w.is_finite() && w >= 0.0) {
                return Err(Error::Config(format!(
                    "the {what} weight must be a finite number ≥ 0, got {w}"
                )));
            }
        }
        Ok(())
    }
}

/// Shape and regularisation of a language model. `validate()` before use.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LmConfig {
    /// Vocabulary size `V`.
    pub vocab: usize,
    /// Embedding width `E`.
    pub embed: usize,
    /// Recurrent cell.
    pub cell: CellKind,
    /// Units per layer `H`.
    pub hidden: usize,
    /// Recurrent layers `L`.
    pub layers: usize,
    /// Units of the last recurrent layer when it differs from `hidden` (needs `L ≥ 2`); `None`:
    /// every layer has `hidden` units. The decoder reads this many features, so tied weights
    /// need `embed = last_hidden`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_hidden: Option<usize>,
    /// Dropout on the embedding output, between recurrent layers, and on the last layer's output.
    pub dropout: Dropout,
    /// Output weights own or tied.
    pub output: OutputWeights,
    /// AWD-LSTM regularisers (all off by default).
    #[serde(default)]
    pub reg: Regularizers,
    /// What surrounds each recurrent layer: nothing (a plain stack) or a residual block.
    #[serde(default, skip_serializing_if = "LmBlock::is_plain")]
    pub block: LmBlock,
}

/// What surrounds each recurrent layer of a language model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum LmBlock {
    /// A plain stack: each layer reads the one below (dropout between them).
    #[default]
    Plain,
    /// Pre-norm residual blocks ([`crate::model::residual`]): each layer adds its output to a
    /// residual stream as wide as the embedding, followed by an MLP of `mlp` hidden units (0:
    /// none), and the decoder reads the stream's final layer norm. The between-layer dropout
    /// acts on each branch's output.
    Residual {
        /// Hidden units of each block's MLP (0: no MLP).
        mlp: usize,
    },
}

impl LmBlock {
    /// Whether it is the plain stack (the default, left out of saved configurations).
    pub fn is_plain(&self) -> bool {
        *self == LmBlock::Plain
    }
}

impl Default for LmConfig {
    fn default() -> Self {
        LmConfig {
            vocab: 10_000,
            embed: 200,
            cell: CellKind::Lstm,
            hidden: 200,
            layers: 2,
            last_hidden: None,
            dropout: Dropout::NONE,
            output: OutputWeights::Separate,
            reg: Regularizers::default(),
            block: LmBlock::Plain,
        }
    }
}

impl LmConfig {
    /// Checks sizes, dropout and the tying constraint.
    pub fn validate(&self) -> Result<()> {
        check_vocab(self.vocab)?;
        if self.hidden > 0 {
            check_embed(self.embed)?;
        }
        if let Some(last) = self.last_hidden {
            if last == 0 {
                return Err(Error::Config(
                    "the last layer's size must be at least 1, got 0".into(),
                ));
            }
            if self.layers < 2 {
                return Err(Error::Config(format!(
                    "a last layer of its own size needs at least 2 layers, got {}",
                    self.layers
                )));
            }
        }
        self.rnn_config().validate()?;
        self.dropout.validate()?;
        self.reg.validate()?;
        if self.cell.is_minimal() && self.reg.weight_drop > 0.0 {
            return Err(Error::Config(format!(
                "weight drop acts on the recurrent weights W_hh, which a `{}` model does not have: \
                 leave --weight-drop at 0",
                self.cell.name()
            )));
        }
        self.check_block()?;
        if self.output == OutputWeights::Tied && self.embed != self.out_size() {
            return Err(Error::Config(match self.last_hidden {
                None => format!(
                    "tied output weights need embedding size = hidden size, got {} and {}",
                    self.embed, self.hidden
                ),
                Some(last) => format!(
                    "tied output weights need embedding size = the last layer's size, got {} and {last}",
                    self.embed
                ),
            }));
        }
        Ok(())
    }

    /// What a residual block needs: one stream width, and none of the plain stack's extras.
    fn check_block(&self) -> Result<()> {
        if self.block.is_plain() {
            return Ok(());
        }
        let refuse = |what: &str| {
            Err(Error::Config(format!(
                "residual blocks do not take {what}; leave it out or use the plain stack"
            )))
        };
        if self.embed != self.hidden {
            return Err(Error::Config(format!(
                "residual blocks add each layer's output to a stream as wide as the embedding: \
                 the embedding size must equal the hidden size, got {} and {}",
                self.embed, self.hidden
            )));
        }
        if self.last_hidden.is_some() {
            return refuse("a last layer of its own size (--last-hidden)");
        }
        if self.reg.weight_drop > 0.0 {
            return refuse("weight drop (--weight-drop)");
        }
        if self.reg.tar > 0.0 {
            return refuse("temporal activation regularisation (--tar)");
        }
        Ok(())
    }

    /// The residual stack, for [`LmBlock::Residual`].
    pub fn residual_config(&self) -> Option<ResidualConfig> {
        match self.block {
            LmBlock::Plain => None,
            LmBlock::Residual { mlp } => Some(ResidualConfig {
                cell: self.cell,
                width: self.hidden,
                layers: self.layers,
                mlp,
                dropout: self.hidden_dropout(),
            }),
        }
    }

    /// Features the decoder reads: the last layer's units, `last_hidden` or `hidden`.
    pub fn out_size(&self) -> usize {
        self.last_hidden.unwrap_or(self.hidden)
    }

    /// Dropout on the embedding output.
    pub fn input_dropout(&self) -> Dropout {
        self.reg.input.unwrap_or(self.dropout)
    }

    /// Dropout between recurrent layers.
    pub fn hidden_dropout(&self) -> Dropout {
        self.reg.hidden.unwrap_or(self.dropout)
    }

    /// Dropout on the last layer's output.
    pub fn output_dropout(&self) -> Dropout {
        self.reg.output.unwrap_or(self.dropout)
    }

    /// The recurrent stack's configuration: every layer, or with `last_hidden` every layer but
    /// the last.
    pub fn rnn_config(&self) -> RnnConfig {
        RnnConfig {
            cell: self.cell,
            input_size: self.embed,
            hidden_size: self.hidden,
            num_layers: match self.last_hidden {
                Some(_) => self.layers.saturating_sub(1),
                None => self.layers,
            },
            direction: Direction::Forward,
        }
    }

    /// With `last_hidden`, the last layer as a one-layer stack over the others' output.
    pub fn last_rnn_config(&self) -> Option<RnnConfig> {
        self.last_hidden.map(|last| RnnConfig {
            cell: self.cell,
            input_size: self.hidden,
            hidden_size: last,
            num_layers: 1,
            direction: Direction::Forward,
        })
    }
}

/// How a language model's weights are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LmInit {
    /// Every parameter `U(−s, s)` (Zaremba et al.; the PyTorch peer script's `--init`).
    Uniform(f32),
    /// PyTorch's module defaults: embedding `N(0, 1)`, recurrent and output layers
    /// `U(−1/√H, 1/√H)` (weights and biases).
    PyTorch,
}

impl Default for LmInit {
    fn default() -> Self {
        LmInit::Uniform(0.1)
    }
}

/// Where each tensor of the model lives in its parameter block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LmLayout {
    /// `encoder.weight [V, E]`.
    pub encoder: Range<usize>,
    /// The recurrent block (laid out by [`crate::rnn::RnnLayout`]): the stack's, followed by
    /// the last layer's when it has its own size.
    pub rnn: Range<usize>,
    /// The last layer's part of `rnn`, when it has its own size.
    pub last: Option<Range<usize>>,
    /// `decoder.weight [V, H]`: its own range, or the encoder's when tied.
    pub decoder_weight: Range<usize>,
    /// `decoder.bias [V]`.
    pub decoder_bias: Range<usize>,
    /// Total parameters.
    pub len: usize,
}

pub use crate::model::layout::NamedTensor;

/// A language model: configuration, layout and the recurrent stack. Parameters, gradients and
/// states are owned by the caller.
#[derive(Clone, Debug)]
pub struct LanguageModel {
    config: LmConfig,
    rnn: Rnn,
    /// The last layer, when it has its own size.
    last: Option<Rnn>,
    /// The residual blocks ([`LmBlock::Residual`]), which then hold the recurrent layers in the
    /// recurrent block's place (`rnn` and `last` unused).
    residual: Option<Box<ResidualStack>>,
    /// Every `W_hh` of the recurrent block, relative to its start, in block order.
    w_hh: Vec<Range<usize>>,
    params: ParamLayout,
    layout: LmLayout,
}

/// What a training forward pass keeps for backward.
#[derive(Debug, Default)]
pub struct LmCache {
    shape: Option<SeqShape>,
    /// `inputs[T, B]`: token ids.
    inputs: Vec<u32>,
    /// `emb_mask[V]`: the window's whole-word dropout mask (embedding dropout only).
    emb_mask: Vec<f32>,
    /// `x[T, B, E]`: embedding output after dropout; `x_mask` its dropout mask.
    x: Vec<f32>,
    x_mask: Vec<f32>,
    /// With weight drop: `w[R]`, the recurrent block with every `W_hh` masked, which the
    /// recurrent passes read; `w_mask[Σ G·H·H]` the masks of the `W_hh`s in block order.
    w: Vec<f32>,
    w_mask: Vec<f32>,
    rnn: RnnCache,
    /// With residual blocks, their cache and the scratch of their training pass.
    res: ResidualCache,
    res_ws: ResidualWorkspace,
    /// With a last layer of its own size: `h[T, B, H]`, the stack's output after the
    /// between-layer dropout (the last layer's input), `h_mask` that dropout's mask, `last` the
    /// last layer's cache, and the two stacks' parts of the carried state.
    h: Vec<f32>,
    h_mask: Vec<f32>,
    last: RnnCache,
    state_main: RnnState,
    state_last: RnnState,
    /// `y[T, B, H_out]`: recurrent output after dropout (the decoder input); `y_mask` its mask.
    y: Vec<f32>,
    y_mask: Vec<f32>,
    /// `dlogits[T·B, V]`: gradient of the mean loss w.r.t. the logits (the fused pass's output).
    dlogits: Vec<f32>,
    /// The AR and TAR penalty of the window (not part of the returned cross-entropy).
    penalty: f64,
}

impl LmCache {
    /// The AR + TAR penalty the last training pass added to the mean cross-entropy.
    pub fn penalty(&self) -> f64 {
        self.penalty
    }
}

/// Scratch buffers of evaluation and backward passes, reused across calls.
#[derive(Debug, Default)]
pub struct LmWorkspace {
    rnn: RnnWorkspace,
    /// With residual blocks, their workspace.
    res: ResidualWorkspace,
    x: Vec<f32>,
    y: Vec<f32>,
    logits: Vec<f32>,
    dy: Vec<f32>,
    dx: Vec<f32>,
    /// `[R]` gradient of the dropped recurrent block (weight drop only).
    dw: Vec<f32>,
    /// `∂` of the stack's final state (zeros: truncated BPTT), `[L·D, B, H]`.
    dstate: RnnState,
    /// With a last layer of its own size: its workspace, `h[T, B, H]` the stack's output
    /// (inference) or its gradient (backward), the last layer's `∂` final state, and the two
    /// stacks' parts of the carried state.
    last: RnnWorkspace,
    h: Vec<f32>,
    dstate_last: RnnState,
    state_main: RnnState,
    state_last: RnnState,
}

/// A language model's weights packed once for many inference passes ([`LanguageModel::pack`]):
/// the recurrent stacks' ([`RnnPacks`]) and the decoder's `Wᵀ[H_out, V]`, beside the parameter
/// block they came from. Passes through it ([`LanguageModel::logits_packed`]) are faster over
/// short windows (generation steps) and batch-invariant: a row's logits are the same, to the
/// bit, alone or beside any other rows.
#[derive(Debug)]
pub struct LmPacks<'p> {
    params: &'p [f32],
    /// The plain stack's packs (`None` with residual blocks, which have their own).
    rnn: Option<RnnPacks<'p>>,
    last: Option<RnnPacks<'p>>,
    residual: Option<ResidualPacks<'p>>,
    decoder: Prepared<'p>,
}

/// `state` resized to a zero state of `config` for batch `b`, reusing its buffers.
fn zero_into(state: &mut RnnState, config: &RnnConfig, b: usize) {
    let n = config.state_slices() * b * config.hidden_size;
    state.h.clear();
    state.h.resize(n, 0.0);
    state.c.clear();
    if config.cell.has_cell_state() {
        state.c.resize(n, 0.0);
    }
}

/// Copies `src` into `dst`, reusing `dst`'s buffer.
fn copy_into(dst: &mut Vec<f32>, src: &[f32]) {
    dst.clear();
    dst.extend_from_slice(src);
}

/// Splits a packed state at `at` values into the stack's part and the last layer's.
fn split_state(packed: &RnnState, at: usize, main: &mut RnnState, last: &mut RnnState) {
    copy_into(&mut main.h, &packed.h[..at]);
    copy_into(&mut last.h, &packed.h[at..]);
    main.c.clear();
    last.c.clear();
    if !packed.c.is_empty() {
        main.c.extend_from_slice(&packed.c[..at]);
        last.c.extend_from_slice(&packed.c[at..]);
    }
}

/// Writes the two stacks' states back into the packed state (inverse of [`split_state`]).
fn join_state(main: &RnnState, last: &RnnState, packed: &mut RnnState) {
    let at = main.h.len();
    packed.h[..at].copy_from_slice(&main.h);
    packed.h[at..].copy_from_slice(&last.h);
    if !packed.c.is_empty() {
        packed.c[..at].copy_from_slice(&main.c);
        packed.c[at..].copy_from_slice(&last.c);
    }
}

impl LanguageModel {
    /// A model for `config`, after validating it.
    pub fn new(config: LmConfig) -> Result<Self> {
        config.validate()?;
        let rnn = Rnn::new(config.rnn_config())?.with_dropout(config.hidden_dropout())?;
        let last = config.last_rnn_config().map(Rnn::new).transpose()?;
        let residual = config
            .residual_config()
            .map(ResidualStack::new)
            .transpose()?
            .map(Box::new);
        let (v, e, h) = (config.vocab, config.embed, config.out_size());
        let mut params = ParamLayout::new();
        let encoder = params.push("encoder.weight", vec![v, e]);
        let (mut rnn_range, mut w_hh) = match &residual {
            Some(stack) => (params.append(stack.param_layout()), Vec::new()),
            None => (
                params.push_rnn("rnn", rnn.layout()),
                (rnn.layout().cells().iter())
                    .map(|c| c.w_hh.clone())
                    .collect::<Vec<_>>(),
            ),
        };
        let last_range = last.as_ref().map(|last| {
            let below = rnn.num_params();
            let named = last.layout().numbered_from(config.layers - 1);
            w_hh.extend(
                named
                    .cells()
                    .iter()
                    .map(|c| c.w_hh.start + below..c.w_hh.end + below),
            );
            let range = params.push_rnn("rnn", &named);
            rnn_range.end = range.end;
            range
        });
        let decoder_weight = match config.output {
            OutputWeights::Separate => params.push("decoder.weight", vec![v, h]),
            OutputWeights::Tied => params.alias("decoder.weight", vec![v, h], "encoder.weight"),
        };
        let decoder_bias = params.push("decoder.bias", vec![v]);
        let layout = LmLayout {
            len: params.len(),
            encoder,
            rnn: rnn_range,
            last: last_range,
            decoder_weight,
            decoder_bias,
        };
        Ok(LanguageModel {
            config,
            rnn,
            last,
            residual,
            w_hh,
            params,
            layout,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LmConfig {
        &self.config
    }

    /// The parameter layout.
    pub fn layout(&self) -> &LmLayout {
        &self.layout
    }

    /// Every tensor of the parameter block, with the tied `decoder.weight` as an alias of
    /// `encoder.weight`; it writes and reads the model's files.
    pub fn param_layout(&self) -> &ParamLayout {
        &self.params
    }

    /// Number of parameters (tied weights counted once).
    pub fn num_params(&self) -> usize {
        self.params.len()
    }

    /// The recurrent stack: every layer, or every layer but a last one of its own size.
    pub fn rnn(&self) -> &Rnn {
        &self.rnn
    }

    /// The last layer, when it has its own size (`last_hidden`).
    pub fn last_layer(&self) -> Option<&Rnn> {
        self.last.as_ref()
    }

    /// The residual blocks ([`LmBlock::Residual`]), which then hold every recurrent layer: the
    /// recurrent block (`LmLayout::rnn`) is theirs, and [`LanguageModel::rnn`] only describes
    /// the layers' shape.
    pub fn residual(&self) -> Option<&ResidualStack> {
        self.residual.as_deref()
    }

    /// Width of each `[B, ·]` slice of the carried state, in order: `H` per layer of the stack,
    /// then the last layer's size when it has its own.
    pub fn state_rows(&self) -> Vec<usize> {
        let c = self.rnn.config();
        let mut rows = vec![c.hidden_size; c.state_slices()];
        rows.extend(self.config.last_hidden);
        rows
    }

    /// The stack's and the last layer's parts of the recurrent block `w` (the last empty
    /// without a last layer of its own size).
    fn split_block<'w>(&self, w: &'w [f32]) -> (&'w [f32], &'w [f32]) {
        w.split_at(self.rnn.num_params())
    }

    /// Values in each of `h` and `c` of the carried state for batch `b` (no allocation: it is
    /// checked every window).
    fn state_len(&self, b: usize) -> usize {
        let below = self.rnn.config().state_slices() * self.config.hidden;
        (below + self.config.last_hidden.unwrap_or(0)) * b
    }

    /// Checks that `state` is a packed state of this model for batch `b`.
    fn check_state(&self, state: &RnnState, b: usize) -> Result<()> {
        let n = self.state_len(b);
        let nc = if self.config.cell.has_cell_state() {
            n
        } else {
            0
        };
        if state.h.len() != n || state.c.len() != nc {
            return Err(Error::Shape(format!(
                "the recurrent state holds {} + {} values, expected {n} + {nc} for batch {b}",
                state.h.len(),
                state.c.len()
            )));
        }
        Ok(())
    }

    /// A freshly initialised parameter block; the same seed gives the same values.
    pub fn init_params(&self, init: LmInit, seed: u64) -> Result<Vec<f32>> {
        use rand::RngExt;
        let mut rng = crate::dropout::rng_from_seed(seed);
        let mut p = vec![0.0; self.layout.len];
        match init {
            LmInit::Uniform(s) => {
                if !(s.is_finite() && s > 0.0) {
                    return Err(Error::Config(format!(
                        "initialisation scale must be positive, got {s}"
                    )));
                }
                p.iter_mut().for_each(|v| *v = rng.random_range(-s..=s));
                if let Some(stack) = &self.residual {
                    stack.init(&mut p[self.layout.rnn.clone()], seed.wrapping_add(1))?;
                }
            }
            LmInit::PyTorch if self.residual.is_some() => {
                let table = &mut p[self.layout.encoder.clone()];
                crate::model::embedding::init_normal(table, 1.0, &mut rng);
                if let Some(stack) = &self.residual {
                    stack.init(&mut p[self.layout.rnn.clone()], seed.wrapping_add(1))?;
                }
                self.init_decoder(&mut p, &mut rng);
            }
            LmInit::PyTorch => {
                let table = &mut p[self.layout.encoder.clone()];
                crate::model::embedding::init_normal(table, 1.0, &mut rng);
                let (below, above) = p[self.layout.rnn.clone()].split_at_mut(self.rnn.num_params());
                crate::rnn::Init::default().apply(
                    self.rnn.config(),
                    below,
                    seed.wrapping_add(1),
                )?;
                if let Some(last) = &self.last {
                    crate::rnn::Init::default().apply(
                        last.config(),
                        above,
                        seed.wrapping_add(2),
                    )?;
                }
                self.init_decoder(&mut p, &mut rng);
            }
        }
        Ok(p)
    }

    /// PyTorch's `nn.Linear` draw of the decoder (its weight only when not tied).
    fn init_decoder(&self, p: &mut [f32], rng: &mut crate::dropout::SeqRng) {
        use rand::RngExt;
        let k = 1.0 / (self.config.out_size() as f32).sqrt();
        if self.config.output == OutputWeights::Separate {
            for v in &mut p[self.layout.decoder_weight.clone()] {
                *v = rng.random_range(-k..=k);
            }
        }
        for v in &mut p[self.layout.decoder_bias.clone()] {
            *v = rng.random_range(-k..=k);
        }
    }

    /// A zero recurrent state for batch `b` (with a last layer of its own size, both stacks'
    /// slices packed: `h[L−1, B, H]` then `h[B, H_last]`, and `c` alike).
    pub fn zero_state(&self, b: usize) -> RnnState {
        let n = self.state_len(b);
        RnnState {
            h: vec![0.0; n],
            c: if self.config.cell.has_cell_state() {
                vec![0.0; n]
            } else {
                Vec::new()
            },
        }
    }

    /// Every tensor in PyTorch `state_dict` order with its name. With tied weights
    /// `decoder.weight` is listed with the encoder's range (a copy on export).
    pub fn tensors(&self) -> Vec<NamedTensor> {
        self.params.named()
    }

    /// `out[T·B, E]` = embedding rows of `inputs` (resized to fit).
    fn embed(&self, params: &[f32], inputs: &[u32], out: &mut Vec<f32>) {
        let e = self.config.embed;
        fit(out, inputs.len() * e);
        embedding::forward(&params[self.layout.encoder.clone()], inputs, out, e);
    }

    /// `logits[T·B, V]` = decoder applied to `y[T·B, H_out]` (resized to fit).
    fn decode(&self, params: &[f32], y: &[f32], logits: &mut Vec<f32>) {
        let c = &self.config;
        fit(logits, y.len() / c.out_size() * c.vocab);
        softmax::logits(
            y,
            &params[self.layout.decoder_weight.clone()],
            &params[self.layout.decoder_bias.clone()],
            logits,
            c.out_size(),
        );
    }

    /// `products[T·B, V]` = `y[T·B, H_out] · Wᵀ`, the decoder without its bias (resized to fit).
    fn decode_product(&self, params: &[f32], y: &[f32], products: &mut Vec<f32>) {
        let c = &self.config;
        fit(products, y.len() / c.out_size() * c.vocab);
        softmax::product(
            y,
            &params[self.layout.decoder_weight.clone()],
            products,
            c.vocab,
            c.out_size(),
        );
    }

    fn check_tokens(&self, what: &str, ids: &[u32], shape: SeqShape) -> Result<()> {
        if ids.len() != shape.t * shape.b {
            return Err(Error::Shape(format!(
                "{what} hold {} ids, expected T·B = {}",
                ids.len(),
                shape.t * shape.b
            )));
        }
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= self.config.vocab) {
            return Err(Error::Shape(format!(
                "{what}: token id {bad} is outside the vocabulary of {}",
                self.config.vocab
            )));
        }
        Ok(())
    }

    fn check_params(&self, what: &str, n: usize) -> Result<()> {
        self.params.check_block(what, n)
    }

    /// Training forward pass over one window: returns the summed cross-entropy of its `T·B`
    /// predictions and leaves in `cache` everything backward needs, including the gradient of
    /// the mean loss with respect to the logits (fused softmax pass).
    ///
    /// - `inputs[T, B]`, `targets[T, B]`: read, token ids `< V`.
    /// - `state`: read the initial recurrent state, written the final one.
    /// - `rng`: dropout masks.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_train(
        &self,
        params: &[f32],
        inputs: &[u32],
        targets: &[u32],
        shape: SeqShape,
        state: &mut RnnState,
        cache: &mut LmCache,
        rng: &mut RowRng,
    ) -> Result<f64> {
        self.check_params("parameter block", params.len())?;
        self.check_tokens("inputs", inputs, shape)?;
        self.check_tokens("targets", targets, shape)?;
        let c = &self.config;
        let n = shape.t * shape.b;
        cache.shape = Some(shape);
        cache.inputs.clear();
        cache.inputs.extend_from_slice(inputs);
        self.embed(params, inputs, &mut cache.x);
        if c.reg.embed_drop > 0.0 {
            shared_mask(c.reg.embed_drop, &mut cache.emb_mask, c.vocab, rng);
            scale_rows(&mut cache.x, inputs, &cache.emb_mask, c.embed);
        }
        let input_dropout = c.input_dropout();
        if input_dropout.is_active() {
            input_dropout.apply_train(&mut cache.x, &mut cache.x_mask, shape.t, shape.b, rng);
        }
        self.check_state(state, shape.b)?;
        let dropped = self.drop_weights(params, &mut cache.w, &mut cache.w_mask, rng);
        let weights = match dropped {
            true => &cache.w[..],
            false => &params[self.layout.rnn.clone()],
        };
        let (below, above) = self.split_block(weights);
        fit(&mut cache.y, n * c.out_size());
        match (&self.residual, &self.last) {
            (Some(stack), _) => stack.forward_train(
                weights,
                &cache.x,
                shape,
                state,
                &mut cache.y,
                &mut cache.res,
                &mut cache.res_ws,
                rng,
            )?,
            (None, None) => self.rnn.forward_train(
                below,
                &cache.x,
                shape,
                state,
                &mut cache.y,
                &mut cache.rnn,
                rng,
            )?,
            (None, Some(last)) => {
                let at = self.rnn.config().state_slices() * shape.b * c.hidden;
                split_state(state, at, &mut cache.state_main, &mut cache.state_last);
                fit(&mut cache.h, n * c.hidden);
                self.rnn.forward_train(
                    below,
                    &cache.x,
                    shape,
                    &mut cache.state_main,
                    &mut cache.h,
                    &mut cache.rnn,
                    rng,
                )?;
                // The between-layer dropout, drawn where the one-stack model draws it.
                let hidden = c.hidden_dropout();
                if hidden.is_active() {
                    hidden.apply_train(&mut cache.h, &mut cache.h_mask, shape.t, shape.b, rng);
                }
                last.forward_train(
                    above,
                    &cache.h,
                    shape,
                    &mut cache.state_last,
                    &mut cache.y,
                    &mut cache.last,
                    rng,
                )?;
                join_state(&cache.state_main, &cache.state_last, state);
            }
        }
        let output_dropout = c.output_dropout();
        if output_dropout.is_active() {
            output_dropout.apply_train(&mut cache.y, &mut cache.y_mask, shape.t, shape.b, rng);
        }
        cache.penalty = self.penalty(cache, shape);
        self.decode_product(params, &cache.y, &mut cache.dlogits);
        Ok(softmax::loss_and_grad(
            &mut cache.dlogits,
            &params[self.layout.decoder_bias.clone()],
            targets,
            1.0 / n as f32,
        ))
    }

    /// Weight drop: `w[R]` = the recurrent block with every `W_hh` masked by a fresh
    /// `w_mask`; returns whether it did (false without weight drop: the passes read the
    /// parameters' own block).
    fn drop_weights(
        &self,
        params: &[f32],
        w: &mut Vec<f32>,
        w_mask: &mut Vec<f32>,
        rng: &mut RowRng,
    ) -> bool {
        let p = self.config.reg.weight_drop;
        if p == 0.0 {
            return false;
        }
        let n: usize = self.w_hh.iter().map(Range::len).sum();
        shared_mask(p, w_mask, n, rng);
        w.clear();
        w.extend_from_slice(&params[self.layout.rnn.clone()]);
        let mut at = 0;
        for range in &self.w_hh {
            apply_mask(&mut w[range.clone()], &w_mask[at..at + range.len()]);
            at += range.len();
        }
        true
    }

    /// `ar · mean(y²)` over the dropped output plus `tar · mean((h_t − h_{t−1})²)` over the
    /// last layer's raw output.
    fn penalty(&self, cache: &LmCache, shape: SeqShape) -> f64 {
        let r = &self.config.reg;
        let mut total = 0.0;
        if r.ar > 0.0 {
            let sq: f64 = cache.y.iter().map(|&v| (v as f64) * (v as f64)).sum();
            total += r.ar as f64 * sq / cache.y.len() as f64;
        }
        if r.tar > 0.0 && shape.t > 1 {
            let h = self.last_output(cache);
            let step = shape.b * self.config.out_size();
            let sq: f64 = h[step..]
                .iter()
                .zip(h)
                .map(|(&a, &b)| ((a - b) as f64).powi(2))
                .sum();
            total += r.tar as f64 * sq / (h.len() - step) as f64;
        }
        total
    }

    /// `[T, B, H_out]` output of the last recurrent layer before dropout, from the cache.
    fn last_output<'c>(&self, cache: &'c LmCache) -> &'c [f32] {
        match self.last {
            Some(_) => cache.last.layer_output(0),
            None => cache.rnn.layer_output(self.config.layers - 1),
        }
        .unwrap_or(&[])
    }

    /// Adds the gradient of the AR term (w.r.t. the dropped output) to `dy[T, B, H]`.
    fn ar_backward(&self, cache: &LmCache, dy: &mut [f32]) {
        let ar = self.config.reg.ar;
        if ar > 0.0 {
            let k = 2.0 * ar / cache.y.len() as f32;
            dy.iter_mut().zip(&cache.y).for_each(|(d, &v)| *d += k * v);
        }
    }

    /// Adds the gradient of the TAR term (w.r.t. the raw output) to `dy[T, B, H]`.
    fn tar_backward(&self, cache: &LmCache, shape: SeqShape, dy: &mut [f32]) {
        let tar = self.config.reg.tar;
        if tar == 0.0 || shape.t < 2 {
            return;
        }
        let h = self.last_output(cache);
        let step = shape.b * self.config.out_size();
        let k = 2.0 * tar / (h.len() - step) as f32;
        for i in step..h.len() {
            let g = k * (h[i] - h[i - step]);
            dy[i] += g;
            dy[i - step] -= g;
        }
    }

    /// Backward pass of the last [`LanguageModel::forward_train`]: accumulates the gradient of
    /// the mean loss plus the AR/TAR penalty into `grads` (same layout as the parameters).
    /// Gradients do not flow into the initial state (truncated backpropagation through time).
    pub fn backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        cache: &LmCache,
        ws: &mut LmWorkspace,
    ) -> Result<()> {
        self.check_params("parameter block", params.len())?;
        self.check_params("gradient block", grads.len())?;
        let shape = cache.shape.ok_or_else(|| {
            Error::Shape("backward called without a training forward pass".into())
        })?;
        let c = &self.config;
        let n = shape.t * shape.b;
        let l = &self.layout;
        fit(&mut ws.dy, n * c.out_size());
        {
            // The bias comes after every weight (own or tied), so one split separates them.
            let (weights, bias) = grads.split_at_mut(l.decoder_bias.start);
            let (dw, db) = (&mut weights[l.decoder_weight.clone()], &mut bias[..c.vocab]);
            softmax::backward(
                &cache.dlogits,
                &cache.y,
                &params[l.decoder_weight.clone()],
                dw,
                db,
                &mut ws.dy,
                c.out_size(),
            );
        }
        self.ar_backward(cache, &mut ws.dy);
        if c.output_dropout().is_active() {
            apply_mask(&mut ws.dy, &cache.y_mask);
        }
        self.tar_backward(cache, shape, &mut ws.dy);
        fit(&mut ws.dx, n * c.embed);
        self.rnn_backward(params, grads, cache, ws, shape)?;
        if c.input_dropout().is_active() {
            apply_mask(&mut ws.dx, &cache.x_mask);
        }
        if c.reg.embed_drop > 0.0 {
            scale_rows(&mut ws.dx, &cache.inputs, &cache.emb_mask, c.embed);
        }
        embedding::backward(
            &ws.dx,
            &cache.inputs,
            &mut grads[l.encoder.clone()],
            c.embed,
        );
        Ok(())
    }

    /// Backward through the recurrent layers from `ws.dy` into `ws.dx` and the recurrent
    /// gradients; with weight drop through the masked block, the `W_hh` gradients masked alike.
    fn rnn_backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        cache: &LmCache,
        ws: &mut LmWorkspace,
        shape: SeqShape,
    ) -> Result<()> {
        let l = &self.layout;
        if self.config.reg.weight_drop == 0.0 {
            let (w, dw) = (&params[l.rnn.clone()], &mut grads[l.rnn.clone()]);
            return self.layers_backward(w, dw, cache, ws, shape);
        }
        let mut dw = std::mem::take(&mut ws.dw);
        dw.clear();
        dw.resize(l.rnn.len(), 0.0);
        let done = self.layers_backward(&cache.w, &mut dw, cache, ws, shape);
        let mut at = 0;
        for range in &self.w_hh {
            apply_mask(&mut dw[range.clone()], &cache.w_mask[at..at + range.len()]);
            at += range.len();
        }
        grads[l.rnn.clone()]
            .iter_mut()
            .zip(&dw)
            .for_each(|(g, d)| *g += d);
        ws.dw = dw;
        done
    }

    /// Backward through the stack (and the last layer of its own size): `ws.dy[T, B, H_out]` →
    /// `ws.dx[T, B, E]`, gradients accumulated into `dw` (the recurrent block `w`'s layout).
    /// The final states' gradients are zero (truncated backpropagation through time).
    fn layers_backward(
        &self,
        w: &[f32],
        dw: &mut [f32],
        cache: &LmCache,
        ws: &mut LmWorkspace,
        shape: SeqShape,
    ) -> Result<()> {
        if let Some(stack) = &self.residual {
            return stack.backward(w, dw, &cache.res, &ws.dy, &mut ws.dx, &mut ws.res);
        }
        let (below, above) = self.split_block(w);
        let (dbelow, dabove) = dw.split_at_mut(below.len());
        zero_into(&mut ws.dstate, self.rnn.config(), shape.b);
        let Some(last) = &self.last else {
            return self.rnn.backward(
                below,
                dbelow,
                &cache.rnn,
                &ws.dy,
                &mut ws.dstate,
                &mut ws.dx,
                &mut ws.rnn,
            );
        };
        zero_into(&mut ws.dstate_last, last.config(), shape.b);
        fit(&mut ws.h, shape.t * shape.b * self.config.hidden);
        last.backward(
            above,
            dabove,
            &cache.last,
            &ws.dy,
            &mut ws.dstate_last,
            &mut ws.h,
            &mut ws.last,
        )?;
        if self.config.hidden_dropout().is_active() {
            apply_mask(&mut ws.h, &cache.h_mask);
        }
        self.rnn.backward(
            below,
            dbelow,
            &cache.rnn,
            &ws.h,
            &mut ws.dstate,
            &mut ws.dx,
            &mut ws.rnn,
        )
    }

    /// Inference pass of the embedding and recurrent layers over one window: `ws.y[T·B, H_out]`.
    fn infer_hidden(
        &self,
        params: &[f32],
        packs: Option<&LmPacks<'_>>,
        inputs: &[u32],
        shape: SeqShape,
        state: &mut RnnState,
        ws: &mut LmWorkspace,
    ) -> Result<()> {
        self.check_params("parameter block", params.len())?;
        self.check_tokens("inputs", inputs, shape)?;
        self.check_state(state, shape.b)?;
        let n = shape.t * shape.b;
        self.embed(params, inputs, &mut ws.x);
        fit(&mut ws.y, n * self.config.out_size());
        let block = &params[self.layout.rnn.clone()];
        if let Some(stack) = &self.residual {
            let packs = packs.and_then(|p| p.residual.as_ref());
            return stack.forward_infer(block, packs, &ws.x, shape, state, &mut ws.y, &mut ws.res);
        }
        let (below, above) = self.split_block(block);
        let run = |rnn: &Rnn,
                   block: &[f32],
                   pack: Option<&RnnPacks<'_>>,
                   x: &[f32],
                   state: &mut RnnState,
                   y: &mut [f32],
                   ws: &mut RnnWorkspace| match pack {
            Some(pack) => rnn.forward_infer_packed(pack, x, shape, state, y, ws),
            None => rnn.forward_infer(block, x, shape, state, y, ws),
        };
        let main_packs = packs.and_then(|p| p.rnn.as_ref());
        let Some(last) = &self.last else {
            return run(
                &self.rnn,
                below,
                main_packs,
                &ws.x,
                state,
                &mut ws.y,
                &mut ws.rnn,
            );
        };
        let at = self.rnn.config().state_slices() * shape.b * self.config.hidden;
        split_state(state, at, &mut ws.state_main, &mut ws.state_last);
        fit(&mut ws.h, n * self.config.hidden);
        run(
            &self.rnn,
            below,
            main_packs,
            &ws.x,
            &mut ws.state_main,
            &mut ws.h,
            &mut ws.rnn,
        )?;
        run(
            last,
            above,
            packs.and_then(|p| p.last.as_ref()),
            &ws.h,
            &mut ws.state_last,
            &mut ws.y,
            &mut ws.last,
        )?;
        join_state(&ws.state_main, &ws.state_last, state);
        Ok(())
    }

    /// Inference pass over one window: writes `logits[T·B, V]` into the workspace and returns
    /// them. No dropout, nothing cached.
    pub fn logits<'w>(
        &self,
        params: &[f32],
        inputs: &[u32],
        shape: SeqShape,
        state: &mut RnnState,
        ws: &'w mut LmWorkspace,
    ) -> Result<&'w [f32]> {
        self.infer_hidden(params, None, inputs, shape, state, ws)?;
        self.decode(params, &ws.y, &mut ws.logits);
        Ok(&ws.logits)
    }

    /// Packs `params`' weights once for many [`LanguageModel::logits_packed`] passes.
    ///
    /// # Errors
    /// [`Error::Shape`] when `params` is not this model's parameter block.
    pub fn pack<'p>(&self, params: &'p [f32]) -> Result<LmPacks<'p>> {
        self.check_params("parameter block", params.len())?;
        let block = &params[self.layout.rnn.clone()];
        let (below, above) = self.split_block(block);
        let (rnn, residual) = match &self.residual {
            Some(stack) => (None, Some(stack.pack(block)?)),
            None => (Some(self.rnn.pack(below)?), None),
        };
        let last = self.last.as_ref().map(|l| l.pack(above)).transpose()?;
        let c = &self.config;
        let w = &params[self.layout.decoder_weight.clone()];
        let decoder = Prepared::for_any_rows(Mat::new(w, c.vocab, c.out_size()).t());
        Ok(LmPacks {
            params,
            rnn,
            last,
            residual,
            decoder,
        })
    }

    /// [`LanguageModel::logits`] through weights packed once ([`LanguageModel::pack`]): faster
    /// over short windows, and each batch row's logits and state are the same, to the bit, alone
    /// or beside any other rows (what batched generation needs).
    ///
    /// # Errors
    /// As [`LanguageModel::logits`].
    pub fn logits_packed<'w>(
        &self,
        packs: &LmPacks<'_>,
        inputs: &[u32],
        shape: SeqShape,
        state: &mut RnnState,
        ws: &'w mut LmWorkspace,
    ) -> Result<&'w [f32]> {
        let params = packs.params;
        self.infer_hidden(params, Some(packs), inputs, shape, state, ws)?;
        let c = &self.config;
        fit(&mut ws.logits, ws.y.len() / c.out_size() * c.vocab);
        softmax::logits_prepared(
            &ws.y,
            &packs.decoder,
            &params[self.layout.decoder_bias.clone()],
            &mut ws.logits,
            c.out_size(),
        );
        Ok(&ws.logits)
    }

    /// Widths of the segments of a carried state for batch 1, in order: a state for batch `B`
    /// holds each segment as `[B, width]` (the stack's `L·D` slices of `H`, then the last
    /// layer's, if any). What gathering rows into a batch needs.
    pub fn state_widths(&self) -> Vec<usize> {
        let mut w = vec![self.config.hidden; self.rnn.config().state_slices()];
        w.extend(self.config.last_hidden);
        w
    }

    /// Evaluation over one window: the summed cross-entropy of its `T·B` predictions.
    pub fn eval_loss(
        &self,
        params: &[f32],
        inputs: &[u32],
        targets: &[u32],
        shape: SeqShape,
        state: &mut RnnState,
        ws: &mut LmWorkspace,
    ) -> Result<f64> {
        self.check_tokens("targets", targets, shape)?;
        self.infer_hidden(params, None, inputs, shape, state, ws)?;
        self.decode_product(params, &ws.y, &mut ws.logits);
        Ok(softmax::loss(
            &mut ws.logits,
            &params[self.layout.decoder_bias.clone()],
            targets,
        ))
    }
}

//! Sequence classifier: Embedding(V, E) → L-layer (bi)directional LSTM/GRU → pooling over each
//! sequence's own steps (`last`, `mean`, `max`) → dropout → Linear(D·H, K) → softmax
//! cross-entropy.
//!
//! Batches hold sequences of different lengths, padded to the longest (`ids[T, B]`, time-major,
//! with `lens[B]`), and padding never changes a result:
//! - each layer-direction runs as its own one-layer stack; the forward direction reads the padded
//!   batch as it is (steps after a sequence's end cannot affect earlier steps), the reverse
//!   direction reads every sequence reversed *within its own length* (PyTorch's
//!   `pack_padded_sequence`), so it starts at the sequence's real last token;
//! - pooling reads only steps `t < len` (`last`: the forward direction at `len − 1`, the reverse
//!   direction at step 0, i.e. after reading the whole sequence);
//! - backward feeds zero gradient into padded steps, so the weights never see them.
//!
//! Parameters are one block in PyTorch names: `embedding.weight [V, E]`, `rnn.weight_ih_l0 …`
//! (`_reverse` for the second direction, [`crate::rnn::RnnLayout`] order), `head.weight [K, D·H]`,
//! `head.bias [K]`. The loss is the mean cross-entropy over the batch.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::dropout::{rng_from_seed, Dropout, SeqRng};
use crate::error::{Error, Result};
use crate::linalg::fit;
use crate::model::layout::{NamedTensor, ParamLayout};
use crate::model::{dense, embedding};
use crate::rnn::{
    CellKind, Direction, ForgetBias, Init, InitScheme, Rnn, RnnCache, RnnConfig, RnnLayout,
    RnnState, RnnWorkspace, SeqShape,
};

/// How the recurrent outputs of a sequence become one feature vector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The final state of each direction (forward at the last real step, reverse at step 0).
    Last,
    /// The mean over the real steps.
    Mean,
    /// The element-wise maximum over the real steps.
    #[default]
    Max,
}

impl std::str::FromStr for Pooling {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "last" => Ok(Pooling::Last),
            "mean" => Ok(Pooling::Mean),
            "max" => Ok(Pooling::Max),
            _ => Err(Error::Config(format!(
                "unknown pooling `{s}` (expected last, mean or max)"
            ))),
        }
    }
}

/// Which directions the recurrent layers read (a serialisable [`Direction`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Directions {
    /// Left to right only.
    Forward,
    /// Both ways, outputs concatenated `[forward H | reverse H]`.
    #[default]
    Bidirectional,
}

impl From<Directions> for Direction {
    fn from(d: Directions) -> Direction {
        match d {
            Directions::Forward => Direction::Forward,
            Directions::Bidirectional => Direction::Bidirectional,
        }
    }
}

impl Directions {
    /// Number of directions `D`.
    pub fn count(self) -> usize {
        Direction::from(self).count()
    }
}

/// Shape of a classifier. `validate()` before use.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    /// Vocabulary size `V` (id 0 is padding).
    pub vocab: usize,
    /// Embedding width `E`.
    pub embed: usize,
    /// Recurrent cell.
    pub cell: CellKind,
    /// Units per direction `H`.
    pub hidden: usize,
    /// Recurrent layers `L`.
    pub layers: usize,
    /// One or both directions.
    pub direction: Directions,
    /// Pooling over time.
    pub pooling: Pooling,
    /// Dropout on the embeddings and on the pooled features (training only).
    pub dropout: f32,
    /// Classes `K`.
    pub classes: usize,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        ClassifierConfig {
            vocab: 2,
            embed: 128,
            cell: CellKind::Lstm,
            hidden: 128,
            layers: 1,
            direction: Directions::Bidirectional,
            pooling: Pooling::Max,
            dropout: 0.5,
            classes: 2,
        }
    }
}

impl ClassifierConfig {
    /// Checks sizes and dropout.
    pub fn validate(&self) -> Result<()> {
        if self.vocab < 2 {
            return Err(Error::Config(format!(
                "vocabulary must hold at least 2 tokens, got {}",
                self.vocab
            )));
        }
        if self.classes < 2 {
            return Err(Error::Config(format!(
                "classification needs at least 2 labels, the training data has {}",
                self.classes
            )));
        }
        if self.embed == 0 {
            return Err(Error::Config(
                "embedding size must be at least 1, got 0".into(),
            ));
        }
        Dropout {
            p: self.dropout,
            ..Dropout::NONE
        }
        .validate()?;
        self.rnn_config().validate()
    }

    /// The configuration of the whole stack (its layout names the parameters).
    pub fn rnn_config(&self) -> RnnConfig {
        RnnConfig {
            cell: self.cell,
            input_size: self.embed,
            hidden_size: self.hidden,
            num_layers: self.layers,
            direction: self.direction.into(),
        }
    }

    /// Width of the pooled feature, `D·H`.
    pub fn features(&self) -> usize {
        self.direction.count() * self.hidden
    }
}

/// A batch of token sequences, padded: `ids[T, B]` time-major (padding id 0), `lens[B] ≥ 1`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenBatch {
    /// `ids[T, B]`, `T` = the longest length.
    pub ids: Vec<u32>,
    /// Real length of each sequence.
    pub lens: Vec<usize>,
    /// `T`.
    pub t: usize,
}

impl TokenBatch {
    /// Pads `seqs` (each non-empty) into one batch, reusing `self`'s buffers.
    pub fn fill<'s>(&mut self, seqs: impl Iterator<Item = &'s [u32]> + Clone) {
        self.lens.clear();
        self.lens.extend(seqs.clone().map(<[u32]>::len));
        self.t = self.lens.iter().copied().max().unwrap_or(0);
        let b = self.lens.len();
        self.ids.clear();
        self.ids.resize(self.t * b, 0);
        for (j, s) in seqs.enumerate() {
            for (t, &id) in s.iter().enumerate() {
                self.ids[t * b + j] = id;
            }
        }
    }

    /// Batch size `B`.
    pub fn b(&self) -> usize {
        self.lens.len()
    }
}

/// A classifier: configuration, per-layer stacks, layout. Parameters are owned by the caller.
#[derive(Clone, Debug)]
pub struct Classifier {
    config: ClassifierConfig,
    /// One single-layer, single-direction stack per layer (input `I_l`).
    layers: Vec<Rnn>,
    layout: RnnLayout,
    params: ParamLayout,
    emb: Range<usize>,
    rnn: Range<usize>,
    head_w: Range<usize>,
    head_b: Range<usize>,
}

/// What a training forward pass keeps for backward.
#[derive(Debug, Default)]
pub struct ClassifierCache {
    batch: TokenBatch,
    /// Embedding dropout mask `[T, B, E]`.
    emb_mask: Vec<f32>,
    /// Per layer-direction: the engine's cache.
    rnn: Vec<RnnCache>,
    /// Top layer output `[T, B, D·H]`.
    top: Vec<f32>,
    /// Pooled features `[B, D·H]` after dropout, the mask, and argmax steps for max pooling.
    feat: Vec<f32>,
    feat_mask: Vec<f32>,
    argmax: Vec<u32>,
    /// `∂L/∂logits [B, K]`.
    dlogits: Vec<f32>,
}

/// Scratch buffers, reused across calls.
#[derive(Debug, Default)]
pub struct ClassifierWorkspace {
    rnn: RnnWorkspace,
    a: Vec<f32>,
    b: Vec<f32>,
    rev: Vec<f32>,
    y: Vec<f32>,
    dy: Vec<f32>,
    dx: Vec<f32>,
    dfeat: Vec<f32>,
    layer_in: Vec<f32>,
    layer_out: Vec<f32>,
    feat: Vec<f32>,
    argmax: Vec<u32>,
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

/// Copies columns `off..off+n` of `src[T, B, w]` into `dst[T, B, n]` (or back, `into_wide`).
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

/// Zeroes steps `t ≥ len` of `x[T, B, f]`.
fn zero_padding(x: &mut [f32], f: usize, lens: &[usize]) {
    let b = lens.len();
    for (k, row) in x.chunks_exact_mut(f).enumerate() {
        if k / b >= lens[k % b] {
            row.fill(0.0);
        }
    }
}

/// Which forward pass the stacks run.
enum Mode<'a> {
    Train {
        caches: &'a mut Vec<RnnCache>,
        rng: &'a mut SeqRng,
    },
    Infer,
}

impl Classifier {
    /// A classifier for `config`, after validating it.
    pub fn new(config: ClassifierConfig) -> Result<Self> {
        config.validate()?;
        let full = config.rnn_config();
        let layout = RnnLayout::new(&full);
        let layers = (0..config.layers)
            .map(|l| {
                Rnn::new(RnnConfig {
                    input_size: full.layer_input_size(l),
                    num_layers: 1,
                    direction: Direction::Forward,
                    ..full
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut params = ParamLayout::new();
        let emb = params.push("embedding.weight", vec![config.vocab, config.embed]);
        let rnn = params.push_rnn("rnn", &layout);
        let head_w = params.push("head.weight", vec![config.classes, config.features()]);
        let head_b = params.push("head.bias", vec![config.classes]);
        Ok(Classifier {
            config,
            layers,
            layout,
            params,
            emb,
            rnn,
            head_w,
            head_b,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClassifierConfig {
        &self.config
    }

    /// Every tensor of the parameter block (`embedding.weight`, `rnn.*`, `head.*`); it writes
    /// and reads the model's files.
    pub fn param_layout(&self) -> &ParamLayout {
        &self.params
    }

    /// Length of the parameter block.
    pub fn num_params(&self) -> usize {
        self.params.len()
    }

    /// Initial weights: embedding `N(0, 1)` scaled by 0.1 (padding row zero), recurrent layers
    /// `U(±1/√H)` with LSTM forget-gate bias 1, head as PyTorch's `nn.Linear`.
    pub fn init_params(&self, seed: u64) -> Result<Vec<f32>> {
        use rand::RngExt;
        let mut p = vec![0.0; self.num_params()];
        let mut rng = rng_from_seed(seed);
        let e = self.config.embed;
        for v in &mut p[self.emb.start + e..self.emb.end] {
            let u1: f64 = 1.0 - rng.random::<f64>();
            let u2: f64 = rng.random::<f64>();
            *v = (0.1 * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32;
        }
        Init {
            scheme: InitScheme::PyTorch,
            forget_bias: ForgetBias::One,
        }
        .apply(
            &self.config.rnn_config(),
            &mut p[self.rnn.clone()],
            seed.wrapping_add(1),
        )?;
        let (w, b) = p[self.head_w.start..].split_at_mut(self.head_w.len());
        dense::init(w, b, self.config.features(), &mut rng);
        Ok(p)
    }

    /// Every tensor: name, shape, range in the block.
    pub fn tensors(&self) -> Vec<NamedTensor> {
        self.params.named()
    }

    fn cell_params(&self, layer: usize, dir: usize) -> Range<usize> {
        let s = self.layout.cell(layer, dir).span();
        s.start + self.rnn.start..s.end + self.rnn.start
    }

    fn check(&self, params: &[f32], batch: &TokenBatch) -> Result<()> {
        self.params.check_block("parameter block", params.len())?;
        let b = batch.b();
        if b == 0 || batch.t == 0 || batch.lens.iter().any(|&l| l == 0 || l > batch.t) {
            return Err(Error::Shape(
                "a batch needs at least one sequence and every length in 1..=T".into(),
            ));
        }
        if batch.ids.len() != batch.t * b {
            return Err(Error::Shape(format!(
                "ids[T, B] has {} values, expected {}",
                batch.ids.len(),
                batch.t * b
            )));
        }
        if let Some(id) = batch
            .ids
            .iter()
            .find(|&&id| id as usize >= self.config.vocab)
        {
            return Err(Error::Shape(format!(
                "token id {id} is outside the vocabulary of {}",
                self.config.vocab
            )));
        }
        Ok(())
    }

    /// Runs embedding and stacks; leaves the top output `[T, B, D·H]` in `top`.
    fn encode(
        &self,
        params: &[f32],
        batch: &TokenBatch,
        top: &mut Vec<f32>,
        ws: &mut ClassifierWorkspace,
        mode: &mut Mode<'_>,
        emb_mask: &mut Vec<f32>,
    ) -> Result<()> {
        let c = &self.config;
        let (t, b, h, d) = (batch.t, batch.b(), c.hidden, c.direction.count());
        let shape = SeqShape { t, b };
        let dh = d * h;
        // Embeddings, zero at padding.
        fit(&mut ws.layer_in, t * b * c.embed);
        embedding::forward(
            &params[self.emb.clone()],
            &batch.ids,
            &mut ws.layer_in,
            c.embed,
        );
        zero_padding(&mut ws.layer_in, c.embed, &batch.lens);
        if let Mode::Train { rng, .. } = mode {
            let drop = Dropout {
                p: c.dropout,
                ..Dropout::NONE
            };
            if drop.is_active() {
                drop.apply_train(&mut ws.layer_in, emb_mask, t, b * c.embed, rng);
            }
        }
        for (l, rnn) in self.layers.iter().enumerate() {
            let in_w = if l == 0 { c.embed } else { dh };
            fit(&mut ws.layer_out, t * b * dh);
            fit(&mut ws.y, t * b * h);
            for dir in 0..d {
                let p = &params[self.cell_params(l, dir)];
                let x: &[f32] = if dir == 0 {
                    &ws.layer_in
                } else {
                    fit(&mut ws.rev, t * b * in_w);
                    reverse_within(
                        &ws.layer_in,
                        in_w,
                        0,
                        &mut ws.rev,
                        in_w,
                        0,
                        in_w,
                        &batch.lens,
                        t,
                    );
                    &ws.rev
                };
                let mut state = RnnState::zeros(rnn.config(), b);
                match mode {
                    Mode::Train { caches, rng, .. } => {
                        caches.resize_with(c.layers * d, RnnCache::default);
                        rnn.forward_train(
                            p,
                            x,
                            shape,
                            &mut state,
                            &mut ws.y,
                            &mut caches[l * d + dir],
                            rng,
                        )?
                    }
                    Mode::Infer => {
                        rnn.forward_infer(p, x, shape, &mut state, &mut ws.y, &mut ws.rnn)?
                    }
                }
                if dir == 0 {
                    copy_cols(&mut ws.layer_out, dh, 0, &mut ws.y, h, true);
                } else {
                    reverse_within(&ws.y, h, 0, &mut ws.layer_out, dh, h, h, &batch.lens, t);
                }
            }
            zero_padding(&mut ws.layer_out, dh, &batch.lens);
            std::mem::swap(&mut ws.layer_in, &mut ws.layer_out);
        }
        top.clone_from(&ws.layer_in);
        Ok(())
    }

    /// Pools `top[T, B, D·H]` into `feat[B, D·H]` over each sequence's real steps.
    fn pool(&self, top: &[f32], lens: &[usize], feat: &mut Vec<f32>, argmax: &mut Vec<u32>) {
        let c = &self.config;
        let (b, h, dh) = (lens.len(), c.hidden, c.features());
        fit(feat, b * dh);
        let at = |t: usize, j: usize| (t * b + j) * dh;
        match c.pooling {
            Pooling::Last => {
                for (j, &len) in lens.iter().enumerate() {
                    let f = &mut feat[j * dh..(j + 1) * dh];
                    f[..h].copy_from_slice(&top[at(len - 1, j)..at(len - 1, j) + h]);
                    if dh > h {
                        f[h..].copy_from_slice(&top[at(0, j) + h..at(0, j) + dh]);
                    }
                }
            }
            Pooling::Mean => {
                feat.fill(0.0);
                for (j, &len) in lens.iter().enumerate() {
                    let f = &mut feat[j * dh..(j + 1) * dh];
                    for t in 0..len {
                        f.iter_mut()
                            .zip(&top[at(t, j)..at(t, j) + dh])
                            .for_each(|(a, v)| *a += v);
                    }
                    let inv = 1.0 / len as f32;
                    f.iter_mut().for_each(|a| *a *= inv);
                }
            }
            Pooling::Max => {
                argmax.clear();
                argmax.resize(b * dh, 0);
                for (j, &len) in lens.iter().enumerate() {
                    let f = &mut feat[j * dh..(j + 1) * dh];
                    f.copy_from_slice(&top[at(0, j)..at(0, j) + dh]);
                    let am = &mut argmax[j * dh..(j + 1) * dh];
                    for t in 1..len {
                        for (k, v) in top[at(t, j)..at(t, j) + dh].iter().enumerate() {
                            if *v > f[k] {
                                f[k] = *v;
                                am[k] = t as u32;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Logits `[B, K]` of a batch (inference: no dropout).
    pub fn logits(
        &self,
        params: &[f32],
        batch: &TokenBatch,
        logits: &mut [f32],
        ws: &mut ClassifierWorkspace,
    ) -> Result<()> {
        self.check(params, batch)?;
        let c = &self.config;
        let (b, k) = (batch.b(), c.classes);
        if logits.len() != b * k {
            return Err(Error::Shape(format!(
                "logits[B, K] has {} values, expected {}",
                logits.len(),
                b * k
            )));
        }
        let mut top = std::mem::take(&mut ws.a);
        let mut unused = std::mem::take(&mut ws.b);
        let r = self.encode(params, batch, &mut top, ws, &mut Mode::Infer, &mut unused);
        ws.b = unused;
        r?;
        let (mut feat, mut argmax) = (std::mem::take(&mut ws.feat), std::mem::take(&mut ws.argmax));
        self.pool(&top, &batch.lens, &mut feat, &mut argmax);
        let (w, bias) = (&params[self.head_w.clone()], &params[self.head_b.clone()]);
        dense::forward(w, bias, &feat, logits, b, c.features(), k);
        ws.a = top;
        ws.feat = feat;
        ws.argmax = argmax;
        Ok(())
    }

    /// Training forward pass: returns the mean cross-entropy of `labels[B]` and keeps what
    /// [`Classifier::backward`] needs.
    pub fn forward_train(
        &self,
        params: &[f32],
        batch: &TokenBatch,
        labels: &[u32],
        cache: &mut ClassifierCache,
        ws: &mut ClassifierWorkspace,
        rng: &mut SeqRng,
    ) -> Result<f64> {
        self.check(params, batch)?;
        let c = &self.config;
        let (b, k, f) = (batch.b(), c.classes, c.features());
        if labels.len() != b || labels.iter().any(|&l| l as usize >= k) {
            return Err(Error::Shape(format!(
                "need {b} labels below {k}, got {:?}",
                labels
            )));
        }
        cache.batch.clone_from(batch);
        let mut top = std::mem::take(&mut cache.top);
        let mut emb_mask = std::mem::take(&mut cache.emb_mask);
        let r = self.encode(
            params,
            batch,
            &mut top,
            ws,
            &mut Mode::Train {
                caches: &mut cache.rnn,
                rng,
            },
            &mut emb_mask,
        );
        cache.top = top;
        cache.emb_mask = emb_mask;
        r?;
        self.pool(&cache.top, &batch.lens, &mut cache.feat, &mut cache.argmax);
        let drop = Dropout {
            p: c.dropout,
            ..Dropout::NONE
        };
        if drop.is_active() {
            drop.apply_train(&mut cache.feat, &mut cache.feat_mask, 1, b * f, rng);
        }
        fit(&mut cache.dlogits, b * k);
        let (w, bias) = (&params[self.head_w.clone()], &params[self.head_b.clone()]);
        dense::forward(w, bias, &cache.feat, &mut cache.dlogits, b, f, k);
        // Softmax cross-entropy; the logits become ∂(mean loss)/∂logits in place.
        let mut loss = 0.0f64;
        for (row, &y) in cache.dlogits.chunks_exact_mut(k).zip(labels) {
            let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f64 = row.iter().map(|v| ((v - m) as f64).exp()).sum();
            loss += sum.ln() + (m - row[y as usize]) as f64;
            for (j, v) in row.iter_mut().enumerate() {
                let p = ((*v - m) as f64).exp() / sum;
                *v = ((p - if j == y as usize { 1.0 } else { 0.0 }) / b as f64) as f32;
            }
        }
        Ok(loss / b as f64)
    }

    /// Backward pass of the last [`Classifier::forward_train`]: accumulates (`+=`) into
    /// `grads` (same layout as `params`).
    pub fn backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        cache: &ClassifierCache,
        ws: &mut ClassifierWorkspace,
    ) -> Result<()> {
        if grads.len() != self.num_params() || cache.batch.b() == 0 {
            return Err(Error::Shape(
                "backward needs the gradient block and a training forward pass".into(),
            ));
        }
        let c = &self.config;
        let batch = &cache.batch;
        let (t, b, h, d, k, f) = (
            batch.t,
            batch.b(),
            c.hidden,
            c.direction.count(),
            c.classes,
            c.features(),
        );
        let dh = f;
        // Head.
        fit(&mut ws.dfeat, b * f);
        {
            let w = &params[self.head_w.clone()];
            let (gw, gb) = grads[self.head_w.start..].split_at_mut(self.head_w.len());
            dense::backward(
                w,
                &cache.feat,
                &cache.dlogits,
                gw,
                gb,
                &mut ws.dfeat,
                b,
                f,
                k,
            );
        }
        if !cache.feat_mask.is_empty() && c.dropout > 0.0 {
            crate::dropout::apply_mask(&mut ws.dfeat, &cache.feat_mask);
        }
        // Unpool into ∂top[T, B, D·H] (zero at padding).
        fit(&mut ws.dy, t * b * dh);
        ws.dy.fill(0.0);
        let at = |t: usize, j: usize| (t * b + j) * dh;
        for (j, &len) in batch.lens.iter().enumerate() {
            let g = &ws.dfeat[j * dh..(j + 1) * dh];
            match c.pooling {
                Pooling::Last => {
                    let a = at(len - 1, j);
                    ws.dy[a..a + h].copy_from_slice(&g[..h]);
                    if dh > h {
                        let a = at(0, j);
                        ws.dy[a + h..a + dh].copy_from_slice(&g[h..]);
                    }
                }
                Pooling::Mean => {
                    let inv = 1.0 / len as f32;
                    for s in 0..len {
                        let a = at(s, j);
                        ws.dy[a..a + dh]
                            .iter_mut()
                            .zip(g)
                            .for_each(|(d, v)| *d = v * inv);
                    }
                }
                Pooling::Max => {
                    for (kk, v) in g.iter().enumerate() {
                        let s = cache.argmax[j * dh + kk] as usize;
                        ws.dy[at(s, j) + kk] += v;
                    }
                }
            }
        }
        // Layers, top down: ws.dy holds ∂(layer output) [T, B, D·H].
        for l in (0..c.layers).rev() {
            let rnn = &self.layers[l];
            let in_w = if l == 0 { c.embed } else { dh };
            fit(&mut ws.dx, t * b * in_w);
            fit(&mut ws.y, t * b * h);
            fit(&mut ws.b, t * b * in_w);
            for dir in 0..d {
                if dir == 0 {
                    copy_cols(&mut ws.dy, dh, 0, &mut ws.y, h, false);
                } else {
                    reverse_within(&ws.dy, dh, h, &mut ws.y, h, 0, h, &batch.lens, t);
                }
                let span = self.cell_params(l, dir);
                let mut dstate = RnnState::zeros(rnn.config(), b);
                let out: &mut [f32] = if dir == 0 { &mut ws.dx } else { &mut ws.b };
                rnn.backward(
                    &params[span.clone()],
                    &mut grads[span],
                    &cache.rnn[l * d + dir],
                    &ws.y,
                    &mut dstate,
                    out,
                    &mut ws.rnn,
                )?;
                if dir == 1 {
                    fit(&mut ws.rev, t * b * in_w);
                    reverse_within(&ws.b, in_w, 0, &mut ws.rev, in_w, 0, in_w, &batch.lens, t);
                    ws.dx.iter_mut().zip(&ws.rev).for_each(|(a, v)| *a += v);
                }
            }
            zero_padding(&mut ws.dx, in_w, &batch.lens);
            std::mem::swap(&mut ws.dx, &mut ws.dy);
        }
        // ws.dy: ∂(embedding output after dropout) [T, B, E].
        if c.dropout > 0.0 && !cache.emb_mask.is_empty() {
            crate::dropout::apply_mask(&mut ws.dy, &cache.emb_mask);
        }
        embedding::backward(&ws.dy, &batch.ids, &mut grads[self.emb.clone()], c.embed);
        // The padding row never learns.
        grads[self.emb.start..self.emb.start + c.embed].fill(0.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rnn::GruVariant;
    use rand::RngExt;

    fn cfg(
        cell: CellKind,
        direction: Directions,
        pooling: Pooling,
        layers: usize,
    ) -> ClassifierConfig {
        ClassifierConfig {
            vocab: 12,
            embed: 5,
            cell,
            hidden: 4,
            layers,
            direction,
            pooling,
            dropout: 0.0,
            classes: 3,
        }
    }

    fn batch(seqs: &[&[u32]]) -> TokenBatch {
        let mut b = TokenBatch::default();
        b.fill(seqs.iter().copied());
        b
    }

    #[test]
    fn padding_never_changes_logits() {
        let sent: &[u32] = &[3, 7, 2];
        for c in [
            cfg(CellKind::Lstm, Directions::Bidirectional, Pooling::Last, 2),
            cfg(CellKind::Lstm, Directions::Bidirectional, Pooling::Mean, 1),
            cfg(
                CellKind::Gru(GruVariant::ResetAfter),
                Directions::Bidirectional,
                Pooling::Max,
                2,
            ),
            cfg(
                CellKind::Gru(GruVariant::ResetAfter),
                Directions::Forward,
                Pooling::Last,
                2,
            ),
        ] {
            let m = Classifier::new(c).unwrap();
            let p = m.init_params(4).unwrap();
            let mut ws = ClassifierWorkspace::default();
            let mut alone = vec![0.0; 3];
            m.logits(&p, &batch(&[sent]), &mut alone, &mut ws).unwrap();
            let mut many = vec![0.0; 9];
            m.logits(
                &p,
                &batch(&[&[1, 4, 5, 6, 8, 9, 10], sent, &[11, 2, 3, 4, 5]]),
                &mut many,
                &mut ws,
            )
            .unwrap();
            for (a, b) in alone.iter().zip(&many[3..6]) {
                assert!(
                    (a - b).abs() <= 1e-6 * (1.0 + a.abs()),
                    "{c:?}: {alone:?} vs {many:?}"
                );
            }
        }
    }

    /// Central finite differences of the loss along every parameter.
    #[test]
    fn gradients_match_finite_differences() {
        for c in [
            cfg(CellKind::Lstm, Directions::Bidirectional, Pooling::Last, 2),
            cfg(CellKind::Lstm, Directions::Forward, Pooling::Mean, 1),
            cfg(
                CellKind::Gru(GruVariant::ResetAfter),
                Directions::Bidirectional,
                Pooling::Max,
                1,
            ),
        ] {
            let m = Classifier::new(c).unwrap();
            let mut p = m.init_params(2).unwrap();
            // Larger embeddings so every path carries signal.
            let mut rng = rng_from_seed(3);
            for v in &mut p[5..12 * 5] {
                *v = rng.random_range(-1.0..1.0);
            }
            let bt = batch(&[&[3, 7, 2], &[1, 4, 5, 6, 8], &[9]]);
            let labels = [0, 2, 1];
            let mut cache = ClassifierCache::default();
            let mut ws = ClassifierWorkspace::default();
            m.forward_train(&p, &bt, &labels, &mut cache, &mut ws, &mut rng)
                .unwrap();
            let mut g = vec![0.0; m.num_params()];
            m.backward(&p, &mut g, &cache, &mut ws).unwrap();
            let gmax = g.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            let eps = 1e-2;
            for i in 0..p.len() {
                let keep = p[i];
                p[i] = keep + eps;
                let lp = m
                    .forward_train(&p, &bt, &labels, &mut cache, &mut ws, &mut rng)
                    .unwrap();
                p[i] = keep - eps;
                let lm = m
                    .forward_train(&p, &bt, &labels, &mut cache, &mut ws, &mut rng)
                    .unwrap();
                p[i] = keep;
                let fd = ((lp - lm) / (2.0 * eps as f64)) as f32;
                // The padding row is frozen; max pooling is piecewise, so allow its kinks.
                let want = if i < 5 { 0.0 } else { fd };
                assert!(
                    (want - g[i]).abs() <= 3e-3 * gmax + 1e-4,
                    "{c:?} param {i}: finite difference {fd}, backward {}",
                    g[i]
                );
            }
        }
    }
}

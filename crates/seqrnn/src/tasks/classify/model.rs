//! Sequence classifier: Embedding(V, E) → L-layer (bi)directional LSTM/GRU → pooling over each
//! sequence's own steps (`last`, `mean`, `max`) → dropout → Linear(D·H, K) → softmax
//! cross-entropy.
//!
//! The input is either token ids (embedded) or, for numeric series, vectors of `C` channel
//! values per step that the encoder reads as they are (no embedding; `channels = C` in the
//! configuration, [`Input`]).
//!
//! Batches hold sequences of different lengths, padded to the longest (`ids[T, B]` or
//! `x[T, B, C]`, time-major, with `lens[B]`), and padding never changes a result:
//! - the recurrent layers are a padding-exact [`SeqEncoder`] (each direction reads every sequence
//!   within its own length, as PyTorch's `pack_padded_sequence`);
//! - pooling reads only steps `t < len` (`last`: the forward direction at `len − 1`, the reverse
//!   direction at step 0, i.e. after reading the whole sequence);
//! - backward feeds zero gradient into padded steps, so the weights never see them.
//!
//! Parameters are one block in PyTorch names: `embedding.weight [V, E]` (token input only),
//! `rnn.weight_ih_l0 …`
//! (`_reverse` for the second direction, [`crate::rnn::RnnLayout`] order), `head.weight [K, D·H]`,
//! `head.bias [K]`. The loss is the mean cross-entropy over the batch.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::dropout::{rng_from_seed, RowRng};
use crate::error::{Error, Result};
use crate::linalg::fit;
pub use crate::model::embedding::TokenBatch;
use crate::model::embedding::{check_embed, check_vocab};
pub use crate::model::encoder::VectorBatch;
use crate::model::encoder::{zero_padding, SeqEncoder};
use crate::model::encoder_head::{
    check_encoder, EncoderHead, EncoderHeadCache, EncoderHeadWorkspace,
};
use crate::model::layout::check_backward;
use crate::model::layout::model_accessors;
use crate::model::layout::{NamedTensor, ParamLayout};
pub use crate::model::pooling::Pooling;
use crate::model::{embedding, softmax};
use crate::rnn::{CellKind, Direction, RnnConfig};

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
    /// Channels `C` of a numeric input (its vectors are the encoder's input; `vocab` and
    /// `embed` are 0); 0 for token input.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub channels: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A batch of a classifier's input: token ids, or vectors of channel values.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// Token ids `[T, B]` (a token classifier).
    Tokens(&'a TokenBatch),
    /// Vectors `[T, B, C]` (a classifier with `channels = C`).
    Vectors(&'a VectorBatch),
}

impl<'a> From<&'a TokenBatch> for Input<'a> {
    fn from(b: &'a TokenBatch) -> Self {
        Input::Tokens(b)
    }
}

impl<'a> From<&'a VectorBatch> for Input<'a> {
    fn from(b: &'a VectorBatch) -> Self {
        Input::Vectors(b)
    }
}

impl Input<'_> {
    /// Each sequence's length.
    pub fn lens(&self) -> &[usize] {
        match self {
            Input::Tokens(b) => &b.lens,
            Input::Vectors(b) => &b.lens,
        }
    }

    /// `T`.
    pub fn t(&self) -> usize {
        match self {
            Input::Tokens(b) => b.t,
            Input::Vectors(b) => b.t,
        }
    }

    /// `B`.
    pub fn b(&self) -> usize {
        self.lens().len()
    }
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
            channels: 0,
        }
    }
}

impl ClassifierConfig {
    /// Checks sizes and dropout.
    pub fn validate(&self) -> Result<()> {
        if self.channels > 0 && (self.vocab, self.embed) != (0, 0) {
            return Err(Error::Config(format!(
                "a classifier of {} channels reads no tokens: its vocabulary and embedding \
                 must be 0, got {} and {}",
                self.channels, self.vocab, self.embed
            )));
        }
        if self.channels == 0 {
            check_vocab(self.vocab)?;
            check_embed(self.embed)?;
        }
        if self.classes < 2 {
            return Err(Error::Config(format!(
                "classification needs at least 2 labels, the training data has {}",
                self.classes
            )));
        }
        check_encoder(self.dropout, &self.rnn_config())
    }

    /// The configuration of the whole stack (its layout names the parameters).
    pub fn rnn_config(&self) -> RnnConfig {
        RnnConfig {
            cell: self.cell,
            input_size: self.input_width(),
            hidden_size: self.hidden,
            num_layers: self.layers,
            direction: self.direction.into(),
        }
    }

    /// Width of a step of the encoder's input: the embedding `E`, or the channels `C`.
    pub fn input_width(&self) -> usize {
        match self.channels {
            0 => self.embed,
            c => c,
        }
    }

    /// Whether the input is numeric vectors (`channels > 0`) rather than tokens.
    pub fn reads_vectors(&self) -> bool {
        self.channels > 0
    }

    /// Width of the pooled feature, `D·H`.
    pub fn features(&self) -> usize {
        self.direction.count() * self.hidden
    }
}

/// A classifier: configuration, encoder with its pooled head, layout. Parameters are owned by
/// the caller.
#[derive(Clone, Debug)]
pub struct Classifier {
    config: ClassifierConfig,
    /// Dropout, the recurrent layers (input `E`), pooling, dropout, `head` layer (`rnn.*`,
    /// `head.*`).
    body: EncoderHead,
    params: ParamLayout,
    emb: Range<usize>,
    /// The body's range in the parameter block.
    body_p: Range<usize>,
}

/// What a training forward pass keeps for backward.
#[derive(Debug, Default)]
pub struct ClassifierCache {
    /// Token ids `[T, B]` of the training pass (empty for vectors) and `B`.
    ids: Vec<u32>,
    b: usize,
    /// Dropout masks, encoder cache, pooled features of the training pass.
    body: EncoderHeadCache,
    /// `∂L/∂logits [B, K]`.
    dlogits: Vec<f32>,
}

/// Scratch buffers, reused across calls.
#[derive(Debug, Default)]
pub struct ClassifierWorkspace {
    body: EncoderHeadWorkspace,
    /// The encoder's input `[T, B, E]` or `[T, B, C]` (zero at padding, after dropout in
    /// training).
    emb: Vec<f32>,
}

impl Classifier {
    /// A classifier for `config`, after validating it.
    pub fn new(config: ClassifierConfig) -> Result<Self> {
        config.validate()?;
        let body = EncoderHead::new(config.rnn_config(), config.dropout, config.classes)?
            .pooled(config.pooling);
        let mut params = ParamLayout::new();
        let emb = match config.reads_vectors() {
            true => params.len()..params.len(),
            false => params.push("embedding.weight", vec![config.vocab, config.embed]),
        };
        let body_p = body.push_params(&mut params, "rnn", "head");
        Ok(Classifier {
            config,
            body,
            params,
            emb,
            body_p,
        })
    }

    model_accessors!(ClassifierConfig, "Every tensor of the parameter block (`embedding.weight`, `rnn.*`, `head.*`); it writes and reads the model's files.");

    /// The recurrent layers.
    pub fn encoder(&self) -> &SeqEncoder {
        self.body.encoder()
    }

    /// Initial weights: embedding (if any) `N(0, 1)` scaled by 0.1 (padding row zero), recurrent layers
    /// `U(±1/√H)` with LSTM forget-gate bias 1, head as PyTorch's `nn.Linear`.
    pub fn init_params(&self, seed: u64) -> Result<Vec<f32>> {
        let mut p = vec![0.0; self.num_params()];
        let mut rng = rng_from_seed(seed);
        let e = self.config.embed;
        if !self.config.reads_vectors() {
            embedding::init_normal(&mut p[self.emb.start + e..self.emb.end], 0.1, &mut rng);
        }
        let body = &mut p[self.body_p.clone()];
        self.body.init(body, seed.wrapping_add(1), &mut rng)?;
        Ok(p)
    }

    /// Every tensor: name, shape, range in the block.
    pub fn tensors(&self) -> Vec<NamedTensor> {
        self.params.named()
    }

    fn check(&self, params: &[f32], input: Input<'_>) -> Result<()> {
        self.params.check_block("parameter block", params.len())?;
        let (b, t) = (input.b(), input.t());
        if b == 0 || t == 0 || input.lens().iter().any(|&l| l == 0 || l > t) {
            return Err(Error::Shape(
                "a batch needs at least one sequence and every length in 1..=T".into(),
            ));
        }
        let batch = match (input, self.config.channels) {
            (Input::Tokens(batch), 0) => batch,
            (Input::Vectors(v), c) if c > 0 => {
                if v.f != c || v.x.len() != t * b * c {
                    return Err(Error::Shape(format!(
                        "x[T, B, C] has {} values of width {}, expected [{t}, {b}, {c}]",
                        v.x.len(),
                        v.f
                    )));
                }
                return Ok(());
            }
            (Input::Tokens(_), c) => {
                return Err(Error::Shape(format!(
                    "the classifier reads vectors of {c} channels, not token ids"
                )))
            }
            (Input::Vectors(_), _) => {
                return Err(Error::Shape(
                    "the classifier reads token ids, not vectors".into(),
                ))
            }
        };
        if batch.ids.len() != t * b {
            return Err(Error::Shape(format!(
                "ids[T, B] has {} values, expected {}",
                batch.ids.len(),
                t * b
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

    /// `ws.emb[T, B, E]`: the embeddings of the batch, zero at padding; or a copy of its
    /// vectors `[T, B, C]`.
    fn embed(&self, params: &[f32], input: Input<'_>, ws: &mut ClassifierWorkspace) {
        match input {
            Input::Tokens(batch) => {
                let e = self.config.embed;
                fit(&mut ws.emb, batch.t * batch.b() * e);
                embedding::forward(&params[self.emb.clone()], &batch.ids, &mut ws.emb, e);
                zero_padding(&mut ws.emb, e, &batch.lens);
            }
            Input::Vectors(v) => {
                ws.emb.clear();
                ws.emb.extend_from_slice(&v.x);
                zero_padding(&mut ws.emb, v.f, &v.lens);
            }
        }
    }

    /// Logits `[B, K]` of a batch (inference: no dropout).
    pub fn logits<'b>(
        &self,
        params: &[f32],
        batch: impl Into<Input<'b>>,
        logits: &mut [f32],
        ws: &mut ClassifierWorkspace,
    ) -> Result<()> {
        let batch = batch.into();
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
        self.embed(params, batch, ws);
        let p = &params[self.body_p.clone()];
        let (x, lens) = (&ws.emb, batch.lens());
        self.body
            .forward_infer(p, x, lens, batch.t(), logits, &mut ws.body)
    }

    /// Training forward pass: returns the mean cross-entropy of `labels[B]` and keeps what
    /// [`Classifier::backward`] needs.
    pub fn forward_train<'b>(
        &self,
        params: &[f32],
        batch: impl Into<Input<'b>>,
        labels: &[u32],
        cache: &mut ClassifierCache,
        ws: &mut ClassifierWorkspace,
        rng: &mut RowRng,
    ) -> Result<f64> {
        let batch = batch.into();
        self.check(params, batch)?;
        let c = &self.config;
        let (b, k) = (batch.b(), c.classes);
        if labels.len() != b || labels.iter().any(|&l| l as usize >= k) {
            return Err(Error::Shape(format!(
                "need {b} labels below {k}, got {:?}",
                labels
            )));
        }
        cache.ids.clear();
        if let Input::Tokens(tokens) = batch {
            cache.ids.extend_from_slice(&tokens.ids);
        }
        cache.b = b;
        self.embed(params, batch, ws);
        fit(&mut cache.dlogits, b * k);
        self.body.forward_train(
            &params[self.body_p.clone()],
            &mut ws.emb,
            batch.lens(),
            batch.t(),
            &mut cache.dlogits,
            &mut cache.body,
            &mut ws.body,
            rng,
        )?;
        // Softmax cross-entropy; the logits become ∂(mean loss)/∂logits in place.
        Ok(softmax::mean_cross_entropy_grad(
            &mut cache.dlogits,
            k,
            labels,
        ))
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
        check_backward(grads.len(), self.num_params(), cache.b)?;
        let r = self.body_p.clone();
        let p = &params[r.clone()];
        let demb =
            self.body
                .backward(p, &mut grads[r], &cache.body, &cache.dlogits, &mut ws.body)?;
        if self.config.reads_vectors() {
            return Ok(());
        }
        let (ids, e) = (&cache.ids, self.config.embed);
        embedding::backward(demb, ids, &mut grads[self.emb.clone()], e);
        // The padding row never learns.
        grads[self.emb.start..self.emb.start + e].fill(0.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{check_gradients, FdCheck};
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
            channels: 0,
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
            let masks = || RowRng::new(3, 0);
            m.forward_train(&p, &bt, &labels, &mut cache, &mut ws, &mut masks())
                .unwrap();
            let mut g = vec![0.0; m.num_params()];
            m.backward(&p, &mut g, &cache, &mut ws).unwrap();
            // The padding row is frozen; max pooling is piecewise, so allow its kinks.
            let what = format!("{c:?}");
            check_gradients(
                &what,
                &mut p,
                &g,
                FdCheck::new(3e-3, 1e-4),
                |i| i < 5,
                |p| {
                    m.forward_train(p, &bt, &labels, &mut cache, &mut ws, &mut masks())
                        .unwrap()
                },
            );
        }
    }
}

//! Sequence classifier: Embedding(V, E) → L-layer (bi)directional LSTM/GRU → pooling over each
//! sequence's own steps (`last`, `mean`, `max`) → dropout → Linear(D·H, K) → softmax
//! cross-entropy.
//!
//! Batches hold sequences of different lengths, padded to the longest (`ids[T, B]`, time-major,
//! with `lens[B]`), and padding never changes a result:
//! - the recurrent layers are a padding-exact [`SeqEncoder`] (each direction reads every sequence
//!   within its own length, as PyTorch's `pack_padded_sequence`);
//! - pooling reads only steps `t < len` (`last`: the forward direction at `len − 1`, the reverse
//!   direction at step 0, i.e. after reading the whole sequence);
//! - backward feeds zero gradient into padded steps, so the weights never see them.
//!
//! Parameters are one block in PyTorch names: `embedding.weight [V, E]`, `rnn.weight_ih_l0 …`
//! (`_reverse` for the second direction, [`crate::rnn::RnnLayout`] order), `head.weight [K, D·H]`,
//! `head.bias [K]`. The loss is the mean cross-entropy over the batch.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::dropout::{rng_from_seed, RowRng};
use crate::error::{Error, Result};
use crate::linalg::fit;
pub use crate::model::embedding::TokenBatch;
use crate::model::embedding::{check_embed, check_vocab};
use crate::model::encoder::{zero_padding, EncoderCache, EncoderWorkspace, SeqEncoder};
use crate::model::encoder_head::{check_encoder, init_recurrent, standard_dropout};
use crate::model::layout::check_backward;
use crate::model::layout::{NamedTensor, ParamLayout};
use crate::model::{dense, embedding, softmax};
use crate::rnn::{CellKind, Direction, RnnConfig};

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
        check_vocab(self.vocab)?;
        if self.classes < 2 {
            return Err(Error::Config(format!(
                "classification needs at least 2 labels, the training data has {}",
                self.classes
            )));
        }
        check_embed(self.embed)?;
        check_encoder(self.dropout, &self.rnn_config())
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

/// A classifier: configuration, encoder, layout. Parameters are owned by the caller.
#[derive(Clone, Debug)]
pub struct Classifier {
    config: ClassifierConfig,
    /// The recurrent layers (input `E`).
    encoder: SeqEncoder,
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
    /// The encoder's cache.
    enc: EncoderCache,
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
    enc: EncoderWorkspace,
    /// Embedding output `[T, B, E]` (zero at padding, after dropout in training).
    emb: Vec<f32>,
    /// Top layer output `[T, B, D·H]` (inference).
    top: Vec<f32>,
    /// Final states `[L·D, B, H]` (unused by the head).
    h_n: Vec<f32>,
    /// `∂` top layer output `[T, B, D·H]`, `∂` embedding output `[T, B, E]`.
    dtop: Vec<f32>,
    demb: Vec<f32>,
    dfeat: Vec<f32>,
    feat: Vec<f32>,
    argmax: Vec<u32>,
}

impl Classifier {
    /// A classifier for `config`, after validating it.
    pub fn new(config: ClassifierConfig) -> Result<Self> {
        config.validate()?;
        let encoder = SeqEncoder::new(config.rnn_config())?;
        let mut params = ParamLayout::new();
        let emb = params.push("embedding.weight", vec![config.vocab, config.embed]);
        let rnn = params.push_rnn("rnn", encoder.layout());
        let head_w = params.push("head.weight", vec![config.classes, config.features()]);
        let head_b = params.push("head.bias", vec![config.classes]);
        Ok(Classifier {
            config,
            encoder,
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

    /// The recurrent layers.
    pub fn encoder(&self) -> &SeqEncoder {
        &self.encoder
    }

    /// Length of the parameter block.
    pub fn num_params(&self) -> usize {
        self.params.len()
    }

    /// Initial weights: embedding `N(0, 1)` scaled by 0.1 (padding row zero), recurrent layers
    /// `U(±1/√H)` with LSTM forget-gate bias 1, head as PyTorch's `nn.Linear`.
    pub fn init_params(&self, seed: u64) -> Result<Vec<f32>> {
        let mut p = vec![0.0; self.num_params()];
        let mut rng = rng_from_seed(seed);
        let e = self.config.embed;
        embedding::init_normal(&mut p[self.emb.start + e..self.emb.end], 0.1, &mut rng);
        let rnn = &mut p[self.rnn.clone()];
        init_recurrent(&self.config.rnn_config(), rnn, seed.wrapping_add(1))?;
        let (w, b) = p[self.head_w.start..].split_at_mut(self.head_w.len());
        dense::init(w, b, self.config.features(), &mut rng);
        Ok(p)
    }

    /// Every tensor: name, shape, range in the block.
    pub fn tensors(&self) -> Vec<NamedTensor> {
        self.params.named()
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

    /// `ws.emb[T, B, E]`: the embeddings of the batch, zero at padding.
    fn embed(&self, params: &[f32], batch: &TokenBatch, ws: &mut ClassifierWorkspace) {
        let e = self.config.embed;
        fit(&mut ws.emb, batch.t * batch.b() * e);
        embedding::forward(&params[self.emb.clone()], &batch.ids, &mut ws.emb, e);
        zero_padding(&mut ws.emb, e, &batch.lens);
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
        self.embed(params, batch, ws);
        self.encoder.forward_infer(
            &params[self.rnn.clone()],
            &ws.emb,
            &batch.lens,
            batch.t,
            &mut ws.top,
            &mut ws.h_n,
            &mut ws.enc,
        )?;
        self.pool(&ws.top, &batch.lens, &mut ws.feat, &mut ws.argmax);
        let (w, bias) = (&params[self.head_w.clone()], &params[self.head_b.clone()]);
        dense::forward(w, bias, &ws.feat, logits, b, c.features(), k);
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
        rng: &mut RowRng,
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
        self.embed(params, batch, ws);
        let drop = standard_dropout(c.dropout);
        if drop.is_active() {
            drop.apply_train(&mut ws.emb, &mut cache.emb_mask, batch.t, b, rng);
        }
        self.encoder.forward_train(
            &params[self.rnn.clone()],
            &ws.emb,
            &batch.lens,
            batch.t,
            &mut cache.top,
            &mut ws.h_n,
            &mut cache.enc,
            &mut ws.enc,
            rng,
        )?;
        self.pool(&cache.top, &batch.lens, &mut cache.feat, &mut cache.argmax);
        if drop.is_active() {
            drop.apply_train(&mut cache.feat, &mut cache.feat_mask, 1, b, rng);
        }
        fit(&mut cache.dlogits, b * k);
        let (w, bias) = (&params[self.head_w.clone()], &params[self.head_b.clone()]);
        dense::forward(w, bias, &cache.feat, &mut cache.dlogits, b, f, k);
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
        check_backward(grads.len(), self.num_params(), cache.batch.b())?;
        let c = &self.config;
        let batch = &cache.batch;
        let (t, b, h, k, f) = (batch.t, batch.b(), c.hidden, c.classes, c.features());
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
        fit(&mut ws.dtop, t * b * dh);
        ws.dtop.fill(0.0);
        let at = |t: usize, j: usize| (t * b + j) * dh;
        for (j, &len) in batch.lens.iter().enumerate() {
            let g = &ws.dfeat[j * dh..(j + 1) * dh];
            match c.pooling {
                Pooling::Last => {
                    let a = at(len - 1, j);
                    ws.dtop[a..a + h].copy_from_slice(&g[..h]);
                    if dh > h {
                        let a = at(0, j);
                        ws.dtop[a + h..a + dh].copy_from_slice(&g[h..]);
                    }
                }
                Pooling::Mean => {
                    let inv = 1.0 / len as f32;
                    for s in 0..len {
                        let a = at(s, j);
                        ws.dtop[a..a + dh]
                            .iter_mut()
                            .zip(g)
                            .for_each(|(d, v)| *d = v * inv);
                    }
                }
                Pooling::Max => {
                    for (kk, v) in g.iter().enumerate() {
                        let s = cache.argmax[j * dh + kk] as usize;
                        ws.dtop[at(s, j) + kk] += v;
                    }
                }
            }
        }
        // Recurrent layers: ∂(embedding output after dropout) [T, B, E].
        fit(&mut ws.demb, t * b * c.embed);
        self.encoder.backward(
            &params[self.rnn.clone()],
            &mut grads[self.rnn.clone()],
            &cache.enc,
            &ws.dtop,
            None,
            &mut ws.demb,
            &mut ws.enc,
        )?;
        if c.dropout > 0.0 && !cache.emb_mask.is_empty() {
            crate::dropout::apply_mask(&mut ws.demb, &cache.emb_mask);
        }
        embedding::backward(&ws.demb, &batch.ids, &mut grads[self.emb.clone()], c.embed);
        // The padding row never learns.
        grads[self.emb.start..self.emb.start + c.embed].fill(0.0);
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

//! Acoustic model for speech recognition with CTC (Graves et al. 2006; DeepSpeech 2's recurrent
//! part).
//!
//! ```text
//! log-mel frames f[T, B, F] → stack S frames, keep every S-th step → x[T', B, S·F]
//! → dropout → L-layer bidirectional LSTM/GRU → dropout → Linear(2·H, C) → logits[T', B, C]
//! → CTC loss (training) or greedy / prefix beam search decoding (blank = label 0)
//! ```
//!
//! Frame stacking (`stack = S`) concatenates frames `S·t' .. S·t' + S − 1` into step `t'`
//! (frames past an utterance's end are zero), so `T' = ⌈T / S⌉` and the recurrence runs `S`
//! times fewer steps. The encoder is the padding-exact [`SeqEncoder`](crate::model::SeqEncoder):
//! an utterance alone gets the logits it gets in a padded batch.
//!
//! Parameters are one block in PyTorch names: `rnn.*` (the engine's layout),
//! `output.weight [C, 2·H]`, `output.bias [C]`.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::dropout::{rng_from_seed, RowRng};
use crate::error::{Error, Result};
use crate::linalg::fit;
use crate::model::ctc::{Ctc, CtcWorkspace, GradScale};
use crate::model::encoder_head::{
    check_encoder, EncoderHead, EncoderHeadCache, EncoderHeadWorkspace,
};
use crate::model::layout::check_backward;
use crate::model::layout::model_accessors;
use crate::model::layout::ParamLayout;
use crate::rnn::{CellKind, Direction, RnnConfig};
use crate::tasks::speech::words::{WordCache, WordHead, WordPart, WordWorkspace};

/// Shape of an acoustic model. `validate()` before use.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpeechConfig {
    /// Features per frame `F` (mel bands).
    pub features: usize,
    /// Frames stacked into one recurrent step `S` (1: none).
    pub stack: usize,
    /// Recurrent cell.
    pub cell: CellKind,
    /// Units per direction `H`.
    pub hidden: usize,
    /// Layers `L`.
    pub layers: usize,
    /// Dropout on the encoder's input and output.
    pub dropout: f32,
    /// Output labels `C`, the blank (0) included.
    pub labels: usize,
    /// A whole-utterance word classifier beside CTC ([`super::words`]; `None`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub word_head: Option<WordHead>,
}

impl SpeechConfig {
    /// Checks sizes and dropout.
    pub fn validate(&self) -> Result<()> {
        if self.features == 0 || self.labels < 2 || self.stack == 0 || self.stack > 16 {
            return Err(Error::Config(format!(
                "an acoustic model needs features, 1 to 16 stacked frames and at least one label \
                 besides the blank, got {} features, stack {}, {} labels",
                self.features, self.stack, self.labels
            )));
        }
        if let Some(w) = &self.word_head {
            w.validate()?;
        }
        check_encoder(self.dropout, &self.rnn_config())
    }

    /// The encoder.
    pub fn rnn_config(&self) -> RnnConfig {
        RnnConfig {
            cell: self.cell,
            input_size: self.stack * self.features,
            hidden_size: self.hidden,
            num_layers: self.layers,
            direction: Direction::Bidirectional,
        }
    }

    /// Recurrent steps of an utterance of `frames` frames, `⌈frames / S⌉`.
    pub fn steps(&self, frames: usize) -> usize {
        frames.div_ceil(self.stack)
    }
}

/// A batch of utterances: features `[T, B, F]` time-major (zero past each utterance's end),
/// frame counts, and the label ids of each transcript (no blanks).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpeechBatch {
    /// Features `[T, B, F]`.
    pub feats: Vec<f32>,
    /// Frames of each utterance `[B]`, each in `1..=T`.
    pub frames: Vec<usize>,
    /// `T`.
    pub t: usize,
    /// Label ids of each transcript (each in `1..C`).
    pub targets: Vec<Vec<u32>>,
    /// The word of each utterance for a word head (`[B]`, [`NO_WORD`] for none; empty: none).
    pub words: Vec<u32>,
}

impl SpeechBatch {
    /// Batch size.
    pub fn b(&self) -> usize {
        self.frames.len()
    }
}

/// An acoustic model: configuration, encoder with its output layer, CTC, layout. Parameters
/// are owned by the caller.
#[derive(Clone, Debug)]
pub struct SpeechModel {
    config: SpeechConfig,
    /// Dropout, encoder, dropout, `output` layer (`rnn.*`, `output.*`).
    body: EncoderHead,
    ctc: Ctc,
    /// The word head, its tensors after the body's.
    words: Option<WordPart>,
    params: ParamLayout,
    /// The body's range in the parameter block.
    body_p: Range<usize>,
}

/// What a forward pass keeps: step counts, the body's cache, and the logits (with their
/// gradient once the loss is taken).
#[derive(Debug, Default)]
pub struct SpeechCache {
    /// Recurrent steps of each utterance `[B]` and `T'`.
    lens: Vec<usize>,
    t: usize,
    /// Dropout masks, encoder cache and output of the training pass.
    body: EncoderHeadCache,
    /// Logits `[T', B, C]`.
    pub logits: Vec<f32>,
    /// `∂L/∂logits` `[T', B, C]`.
    dlogits: Vec<f32>,
    /// The word head's pooling and logits (with a word head).
    pub words: WordCache,
}

impl SpeechCache {
    /// Recurrent steps of each utterance of the last pass.
    pub fn steps(&self) -> &[usize] {
        &self.lens
    }

    /// `T'` of the last pass.
    pub fn t(&self) -> usize {
        self.t
    }
}

/// Scratch buffers, reused across calls.
#[derive(Debug, Default)]
pub struct SpeechWorkspace {
    body: EncoderHeadWorkspace,
    ctc: CtcWorkspace,
    words: WordWorkspace,
    /// Stacked encoder input `[T', B, S·F]`.
    x: Vec<f32>,
}

crate::model::trainable::trainable!(SpeechModel, SpeechBatch, SpeechCache, SpeechWorkspace);

impl SpeechModel {
    /// A model for `config`.
    pub fn new(config: SpeechConfig) -> Result<Self> {
        config.validate()?;
        let body = EncoderHead::new(config.rnn_config(), config.dropout, config.labels)?;
        let ctc = Ctc::new(config.labels)?;
        let mut p = ParamLayout::new();
        let body_p = body.push_params(&mut p, "rnn", "output");
        let width = body.encoder().output_size();
        let words = config
            .word_head
            .map(|h| WordPart::new(h, width, &mut p))
            .transpose()?;
        Ok(SpeechModel {
            config,
            body,
            ctc,
            words,
            params: p,
            body_p,
        })
    }

    model_accessors!(SpeechConfig, "Every tensor of the parameter block.");

    /// Initial weights: recurrent layers `U(±1/√H)` with LSTM forget-gate bias 1, the output
    /// layer as `nn.Linear`, then the word head's ([`WordPart::init`]).
    pub fn init_params(&self, seed: u64) -> Result<Vec<f32>> {
        let mut p = vec![0.0; self.num_params()];
        let mut rng = rng_from_seed(seed.wrapping_add(1));
        self.body
            .init(&mut p[self.body_p.clone()], seed, &mut rng)?;
        if let Some(w) = &self.words {
            w.init(&mut p, &mut rng);
        }
        Ok(p)
    }

    fn check(&self, params: &[f32], batch: &SpeechBatch) -> Result<()> {
        self.params.check_block("parameter block", params.len())?;
        let (b, t, f) = (batch.b(), batch.t, self.config.features);
        if b == 0 || t == 0 || batch.frames.iter().any(|&n| n == 0 || n > t) {
            return Err(Error::Shape(
                "a speech batch needs utterances of 1..=T frames".into(),
            ));
        }
        let words_fit = batch.words.is_empty() || batch.words.len() == b;
        if batch.feats.len() != t * b * f || batch.targets.len() != b || !words_fit {
            return Err(Error::Shape(format!(
                "features must be [T, B, F] = [{t}, {b}, {f}] with one transcript per utterance"
            )));
        }
        Ok(())
    }

    /// The stacked encoder input `ws.x[T', B, S·F]` and the step counts.
    fn stack(&self, batch: &SpeechBatch, cache: &mut SpeechCache, ws: &mut SpeechWorkspace) {
        let c = &self.config;
        let (b, f, s) = (batch.b(), c.features, c.stack);
        cache.t = c.steps(batch.t);
        cache.lens.clear();
        cache.lens.extend(batch.frames.iter().map(|&n| c.steps(n)));
        let width = s * f;
        fit(&mut ws.x, cache.t * b * width);
        ws.x.fill(0.0);
        for (j, &frames) in batch.frames.iter().enumerate() {
            for frame in 0..frames {
                let (step, slot) = (frame / s, frame % s);
                let dst = (step * b + j) * width + slot * f;
                let src = (frame * b + j) * f;
                ws.x[dst..dst + f].copy_from_slice(&batch.feats[src..src + f]);
            }
        }
    }

    /// Logits `[T', B, C]` into `cache.logits` (and with a word head its logits into
    /// `cache.words`). With `rng`, a training pass (dropout, caches for backward).
    fn logits(
        &self,
        params: &[f32],
        batch: &SpeechBatch,
        cache: &mut SpeechCache,
        ws: &mut SpeechWorkspace,
        rng: Option<&mut RowRng>,
    ) -> Result<()> {
        self.check(params, batch)?;
        self.stack(batch, cache, ws);
        fit(&mut cache.logits, cache.t * batch.b() * self.config.labels);
        let training = rng.is_some();
        self.body.forward(
            &params[self.body_p.clone()],
            &mut ws.x,
            &cache.lens,
            cache.t,
            &mut cache.logits,
            rng.map(|r| (&mut cache.body, r)),
            &mut ws.body,
        )?;
        if let Some(w) = &self.words {
            let top = self
                .body
                .last_head_input(training.then_some(&cache.body), &ws.body);
            w.forward(params, top, &cache.lens, &mut cache.words)?;
        }
        Ok(())
    }

    /// Training forward pass: returns the CTC negative log-likelihood summed over the batch
    /// (plus the word head's weighted cross-entropy) and keeps, for [`SpeechModel::backward`],
    /// the gradient of `scale ·` that sum.
    ///
    /// # Errors
    /// [`Error::Shape`] for a batch that does not fit; the CTC's error for a transcript that
    /// the utterance's steps cannot hold.
    pub fn forward_train(
        &self,
        params: &[f32],
        batch: &SpeechBatch,
        scale: f32,
        cache: &mut SpeechCache,
        ws: &mut SpeechWorkspace,
        rng: &mut RowRng,
    ) -> Result<f64> {
        self.logits(params, batch, cache, ws, Some(rng))?;
        self.loss(batch, Some(scale), cache, ws)
    }

    /// The summed CTC loss of the cached logits; with `scale`, also `scale ·` its gradient
    /// (into `cache.dlogits`).
    fn loss(
        &self,
        batch: &SpeechBatch,
        scale: Option<f32>,
        cache: &mut SpeechCache,
        ws: &mut SpeechWorkspace,
    ) -> Result<f64> {
        let grad = match scale {
            Some(scale) => {
                fit(&mut cache.dlogits, cache.logits.len());
                cache.dlogits.fill(0.0);
                Some((&mut cache.dlogits[..], GradScale::Uniform(scale)))
            }
            None => None,
        };
        let targets: Vec<&[u32]> = batch.targets.iter().map(Vec::as_slice).collect();
        let ctc = self.ctc.nll(
            &cache.logits,
            cache.t,
            &cache.lens,
            &targets,
            grad,
            &mut ws.ctc,
        )?;
        let words = match &self.words {
            Some(w) => w.loss(&batch.words, scale, &mut cache.words),
            None => 0.0,
        };
        Ok(ctc + words)
    }

    /// The word head, if the model has one.
    pub fn word_part(&self) -> Option<&WordPart> {
        self.words.as_ref()
    }

    /// The summed CTC loss of a batch without dropout (evaluation).
    pub fn eval_loss(
        &self,
        params: &[f32],
        batch: &SpeechBatch,
        cache: &mut SpeechCache,
        ws: &mut SpeechWorkspace,
    ) -> Result<f64> {
        self.logits(params, batch, cache, ws, None)?;
        self.loss(batch, None, cache, ws)
    }

    /// Inference: the logits `[T', B, C]` of a batch in `cache.logits` (transcripts are not
    /// read), with [`SpeechCache::steps`] giving each utterance's steps.
    pub fn forward_infer(
        &self,
        params: &[f32],
        batch: &SpeechBatch,
        cache: &mut SpeechCache,
        ws: &mut SpeechWorkspace,
    ) -> Result<()> {
        self.logits(params, batch, cache, ws, None)
    }

    /// The CTC of the output layer (decoding).
    pub fn ctc(&self) -> &Ctc {
        &self.ctc
    }

    /// Backward pass of the last [`SpeechModel::forward_train`]: accumulates (`+=`) into
    /// `grads`.
    pub fn backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        cache: &SpeechCache,
        ws: &mut SpeechWorkspace,
    ) -> Result<()> {
        check_backward(grads.len(), self.num_params(), cache.lens.len())?;
        let body = &cache.body;
        let dtop = match &self.words {
            Some(w) => {
                let (top, lens) = (self.body.last_head_input(Some(body), &ws.body), &cache.lens);
                w.backward(params, grads, top, lens, &cache.words, &mut ws.words)?;
                Some(&ws.words.dtop[..])
            }
            None => None,
        };
        let r = self.body_p.clone();
        let p = &params[r.clone()];
        self.body
            .backward_with(p, &mut grads[r], body, &cache.dlogits, dtop, &mut ws.body)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{check_gradients, FdCheck};
    use crate::rnn::GruVariant;
    use crate::tasks::speech::words::NO_WORD;
    use rand::RngExt;

    fn cfg(cell: CellKind, stack: usize, layers: usize, dropout: f32) -> SpeechConfig {
        SpeechConfig {
            features: 3,
            stack,
            cell,
            hidden: 3,
            layers,
            dropout,
            labels: 4,
            word_head: None,
        }
    }

    fn with_words(c: SpeechConfig) -> SpeechConfig {
        SpeechConfig {
            word_head: Some(WordHead {
                words: 3,
                weight: 0.7,
            }),
            ..c
        }
    }

    /// Utterances of 7, 4 and 5 frames with transcripts of 2, 1 and 0 labels.
    fn sample(f: usize) -> SpeechBatch {
        let frames = vec![7, 4, 5];
        let (t, b) = (7, 3);
        let mut rng = rng_from_seed(5);
        let mut feats = vec![0.0; t * b * f];
        for (j, &n) in frames.iter().enumerate() {
            for s in 0..n {
                for v in &mut feats[(s * b + j) * f..(s * b + j + 1) * f] {
                    *v = rng.random_range(-1.0..1.0);
                }
            }
        }
        SpeechBatch {
            feats,
            frames,
            t,
            targets: vec![vec![1, 2], vec![3], vec![]],
            words: vec![2, 0, NO_WORD],
        }
    }

    fn one(batch: &SpeechBatch, j: usize) -> SpeechBatch {
        let (b, f) = (batch.b(), batch.feats.len() / (batch.t * batch.b()));
        let n = batch.frames[j];
        let mut feats = Vec::new();
        for s in 0..n {
            feats.extend_from_slice(&batch.feats[(s * b + j) * f..(s * b + j + 1) * f]);
        }
        SpeechBatch {
            feats,
            frames: vec![n],
            t: n,
            targets: vec![batch.targets[j].clone()],
            words: vec![batch.words[j]],
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let gru = CellKind::Gru(GruVariant::ResetAfter);
        for c in [
            cfg(CellKind::Lstm, 1, 1, 0.0),
            cfg(CellKind::Lstm, 2, 2, 0.3),
            cfg(gru, 3, 1, 0.2),
            with_words(cfg(CellKind::Lstm, 1, 1, 0.0)),
            with_words(cfg(gru, 2, 2, 0.3)),
        ] {
            let m = SpeechModel::new(c).unwrap();
            let mut p = m.init_params(2).unwrap();
            let mut rng = rng_from_seed(9);
            p.iter_mut().for_each(|v| *v += rng.random_range(-0.3..0.3));
            let bt = sample(c.features);
            let (mut cache, mut ws) = (SpeechCache::default(), SpeechWorkspace::default());
            let masks = || RowRng::new(1, 0);
            m.forward_train(&p, &bt, 0.5, &mut cache, &mut ws, &mut masks())
                .unwrap();
            let mut g = vec![0.0; m.num_params()];
            m.backward(&p, &mut g, &cache, &mut ws).unwrap();
            let what = format!("{c:?}");
            check_gradients(
                &what,
                &mut p,
                &g,
                FdCheck::new(3e-3, 2e-4),
                |_| false,
                |p| {
                    0.5 * m
                        .forward_train(p, &bt, 0.5, &mut cache, &mut ws, &mut masks())
                        .unwrap()
                },
            );
        }
    }

    #[test]
    fn an_utterance_alone_scores_as_in_a_batch() {
        let c = with_words(cfg(CellKind::Lstm, 2, 2, 0.0));
        let m = SpeechModel::new(c).unwrap();
        let p = m.init_params(4).unwrap();
        let (mut cache, mut ws) = (SpeechCache::default(), SpeechWorkspace::default());
        let all = sample(c.features);
        let whole = m.eval_loss(&p, &all, &mut cache, &mut ws).unwrap();
        let (t, k) = (cache.t(), c.labels);
        assert_eq!((t, cache.steps()), (4, &[4, 2, 3][..]));
        let logits = cache.logits.clone();
        let words = cache.words.logits.clone();
        let mut parts = 0.0;
        for j in 0..3 {
            let u = one(&all, j);
            parts += m.eval_loss(&p, &u, &mut cache, &mut ws).unwrap();
            for (x, y) in words[j * 3..(j + 1) * 3].iter().zip(&cache.words.logits) {
                assert!(
                    (x - y).abs() < 1e-5,
                    "utterance {j} word logits: {x} vs {y}"
                );
            }
            for s in 0..cache.steps()[0] {
                let a = &logits[(s * 3 + j) * k..(s * 3 + j + 1) * k];
                let b = &cache.logits[s * k..(s + 1) * k];
                for (x, y) in a.iter().zip(b) {
                    assert!((x - y).abs() < 1e-5, "utterance {j} step {s}: {x} vs {y}");
                }
            }
        }
        assert!(
            (whole - parts).abs() < 1e-5 * whole.abs(),
            "{whole} vs {parts}"
        );
        let _ = t;
    }

    #[test]
    fn frames_are_stacked_in_order() {
        let c = cfg(CellKind::Lstm, 3, 1, 0.0);
        let m = SpeechModel::new(c).unwrap();
        let bt = SpeechBatch {
            feats: (0..5 * 3).map(|v| v as f32).collect(),
            frames: vec![5],
            t: 5,
            targets: vec![vec![1]],
            words: vec![],
        };
        let (mut cache, mut ws) = (SpeechCache::default(), SpeechWorkspace::default());
        m.stack(&bt, &mut cache, &mut ws);
        assert_eq!(cache.steps(), &[2]);
        let want: Vec<f32> = (0..15).map(|v| v as f32).chain([0.0; 3]).collect();
        assert_eq!(ws.x, want);
    }

    #[test]
    fn impossible_configurations_are_refused() {
        for c in [
            SpeechConfig {
                labels: 1,
                ..cfg(CellKind::Lstm, 1, 1, 0.0)
            },
            cfg(CellKind::Lstm, 0, 1, 0.0),
            cfg(CellKind::Lstm, 1, 0, 0.0),
            cfg(CellKind::Lstm, 1, 1, 1.0),
            SpeechConfig {
                word_head: Some(WordHead {
                    words: 1,
                    weight: 1.0,
                }),
                ..cfg(CellKind::Lstm, 1, 1, 0.0)
            },
            SpeechConfig {
                word_head: Some(WordHead {
                    words: 3,
                    weight: 0.0,
                }),
                ..cfg(CellKind::Lstm, 1, 1, 0.0)
            },
        ] {
            assert!(SpeechModel::new(c).is_err(), "{c:?}");
        }
    }
}

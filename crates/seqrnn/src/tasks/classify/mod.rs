//! Sequence classification: the training task for the shared loop ([`crate::train::fit()`]) with
//! length-bucketed batches, evaluation (accuracy, macro-F1, confusion matrix) and the run
//! configuration.
//!
//! The examples are text (token ids, [`data`]) or numeric series (vectors of channel values per
//! step, read from the UEA/UCR archive's `.ts` files and standardised, [`series`]); both are
//! [`Labelled`] [`Cases`], and the task, the evaluation and the model serve either.

pub mod data;
pub mod export;
pub mod keras;
pub mod model;
pub mod series;
mod trained;
pub use trained::{Prediction, Trained};
mod config;
pub use config::{ClassifyRunConfig, ClassifyRunData, ClassifyTrainConfig};

use std::ops::Range;
use std::path::Path;

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::data::batch::length_buckets;
use crate::dist::Group;
use crate::dropout::{RowRng, SeqRng};
use crate::error::{Error, Result};
use crate::model::softmax;
pub use crate::model::softmax::argmax;
use crate::run::RunDir;
use crate::tasks::classify::data::{Encoded, UNK_ID};
use crate::tasks::classify::model::{
    Classifier, ClassifierCache, ClassifierConfig, ClassifierWorkspace, Input, TokenBatch,
};
use crate::train::fit::FitConfig;
use crate::train::task::{
    validation_share, About, BatchLoss, Buckets, Fingerprint, Identity, LossAverage, Step, Task,
    Validation, Weights,
};

/// Sequences per inference batch.
pub const EVAL_BATCH: usize = 256;

/// Figures of a classifier on a set of examples.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassifyMetrics {
    /// Examples scored.
    pub examples: usize,
    /// Mean cross-entropy (nats).
    pub loss: f64,
    /// Fraction classified correctly.
    pub accuracy: f64,
    /// Unweighted mean over labels of F1 (a label never predicted nor present counts 0).
    pub macro_f1: f64,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

/// Examples a classifier reads, batched by length: token sequences or vector sequences.
pub trait Cases {
    /// The padded batch the classifier reads.
    type Batch: Default;
    /// Whether the examples are tokens (word dropout applies to them).
    const TOKENS: bool;

    /// Number of examples.
    fn count(&self) -> usize;
    /// Steps of every example.
    fn lens(&self) -> Vec<usize>;
    /// Pads the examples `idx` into `batch`.
    fn fill(&self, idx: &[usize], batch: &mut Self::Batch);
    /// The classifier's view of `batch`.
    fn input(batch: &Self::Batch) -> Input<'_>;
    /// Word dropout on a training batch: each real token becomes `<unk>` with probability `p`,
    /// drawn from `masks` (nothing for other examples).
    fn drop_tokens(_batch: &mut Self::Batch, _p: f32, _masks: &mut RowRng) {}
}

/// Examples with a label each: what the task trains on and [`evaluate`] scores.
pub trait Labelled: Cases + Sized {
    /// Label id of each example.
    fn labels(&self) -> &[u32];
    /// Adds the examples and labels to `h` (a resumed run checks them).
    fn fingerprint(&self, h: &mut Fingerprint);
    /// The examples in `range`.
    fn part(&self, range: Range<usize>) -> Self;
}

impl Cases for [Vec<u32>] {
    type Batch = TokenBatch;
    const TOKENS: bool = true;

    fn count(&self) -> usize {
        self.len()
    }

    fn lens(&self) -> Vec<usize> {
        self.iter().map(Vec::len).collect()
    }

    fn fill(&self, idx: &[usize], batch: &mut TokenBatch) {
        batch.fill(idx.iter().map(|&i| self[i].as_slice()));
    }

    fn input(batch: &TokenBatch) -> Input<'_> {
        Input::Tokens(batch)
    }

    fn drop_tokens(batch: &mut TokenBatch, p: f32, masks: &mut RowRng) {
        let b = batch.b();
        let seed = masks.shared.random::<u64>();
        for (j, &len) in batch.lens.iter().enumerate() {
            let mut r = masks.row(seed, j);
            for t in 0..len {
                if r.random::<f32>() < p {
                    batch.ids[t * b + j] = UNK_ID;
                }
            }
        }
    }
}

impl Cases for Encoded {
    type Batch = TokenBatch;
    const TOKENS: bool = true;

    fn count(&self) -> usize {
        self.ids.len()
    }

    fn lens(&self) -> Vec<usize> {
        Cases::lens(&self.ids[..])
    }

    fn fill(&self, idx: &[usize], batch: &mut TokenBatch) {
        Cases::fill(&self.ids[..], idx, batch);
    }

    fn input(batch: &TokenBatch) -> Input<'_> {
        Input::Tokens(batch)
    }

    fn drop_tokens(batch: &mut TokenBatch, p: f32, masks: &mut RowRng) {
        <[Vec<u32>]>::drop_tokens(batch, p, masks);
    }
}

impl Labelled for Encoded {
    fn labels(&self) -> &[u32] {
        &self.labels
    }

    fn fingerprint(&self, h: &mut Fingerprint) {
        for (ids, &label) in self.ids.iter().zip(&self.labels) {
            h.ids(ids).end().ids(&[label]);
        }
    }

    fn part(&self, range: Range<usize>) -> Self {
        Encoded {
            ids: self.ids[range.clone()].to_vec(),
            labels: self.labels[range].to_vec(),
            unknown_tokens: 0,
        }
    }
}

/// Class probabilities `[N, K]` of every sequence, computed in length-sorted batches and
/// returned in the input order.
pub fn probabilities(model: &Classifier, params: &[f32], seqs: &[Vec<u32>]) -> Result<Vec<f32>> {
    probabilities_of(model, params, seqs)
}

/// Class probabilities `[N, K]` of every example of `cases` (tokens or vectors), computed in
/// length-sorted batches and returned in the input order.
pub fn probabilities_of<C: Cases + ?Sized>(
    model: &Classifier,
    params: &[f32],
    cases: &C,
) -> Result<Vec<f32>> {
    let k = model.config().classes;
    let lens = cases.lens();
    let order: Vec<usize> = (0..lens.len()).collect();
    let mut out = vec![0.0; lens.len() * k];
    let mut ws = ClassifierWorkspace::default();
    let mut batch = C::Batch::default();
    let mut logits = Vec::new();
    for idx in length_buckets(&lens, &order, EVAL_BATCH) {
        cases.fill(&idx, &mut batch);
        logits.resize(idx.len() * k, 0.0);
        model.logits(params, C::input(&batch), &mut logits, &mut ws)?;
        for (row, &i) in logits.chunks_exact(k).zip(&idx) {
            softmax::softmax_row(row, &mut out[i * k..(i + 1) * k]);
        }
    }
    Ok(out)
}

/// Scores `params` on `data` (text or series).
pub fn evaluate<D: Labelled>(
    model: &Classifier,
    params: &[f32],
    data: &D,
) -> Result<ClassifyMetrics> {
    let k = model.config().classes;
    let probs = probabilities_of(model, params, data)?;
    let mut confusion = vec![vec![0usize; k]; k];
    let mut loss = 0.0f64;
    for (row, &y) in probs.chunks_exact(k).zip(data.labels()) {
        let pred = argmax(row);
        confusion[y as usize][pred] += 1;
        loss -= (row[y as usize].max(1e-30) as f64).ln();
    }
    let n = data.labels().len();
    let correct: usize = (0..k).map(|i| confusion[i][i]).sum();
    let macro_f1 = (0..k)
        .map(|c| {
            let tp = confusion[c][c] as f64;
            let predicted: usize = (0..k).map(|r| confusion[r][c]).sum();
            let actual: usize = confusion[c].iter().sum();
            if predicted + actual == 0 {
                0.0
            } else {
                2.0 * tp / (predicted + actual) as f64
            }
        })
        .sum::<f64>()
        / k as f64;
    Ok(ClassifyMetrics {
        examples: n,
        loss: loss / n.max(1) as f64,
        accuracy: correct as f64 / n.max(1) as f64,
        macro_f1,
        confusion,
    })
}

/// The classification task for the shared loop: each epoch shuffles the examples, sorts them by
/// length (ties in shuffled order), cuts batches and shuffles the batches; validation by
/// accuracy (ties broken by the lower loss with [`ClassifyTask::with_loss_ties`]).
pub struct ClassifyTask<'a, D: Labelled = Encoded> {
    model: &'a Classifier,
    train: &'a D,
    valid: &'a D,
    word_dropout: f32,
    loss_ties: bool,
    batches: Buckets,
    batch: D::Batch,
    labels: Vec<u32>,
    cache: ClassifierCache,
    ws: ClassifierWorkspace,
}

impl<'a, D: Labelled> ClassifyTask<'a, D> {
    /// A task over `train` and `valid`, `batch` sequences a step.
    ///
    /// # Errors
    /// [`Error::Config`] when `batch` is 0 or a split is empty.
    pub fn new(model: &'a Classifier, train: &'a D, valid: &'a D, batch: usize) -> Result<Self> {
        let batches = Buckets::new(batch)?;
        if train.count() == 0 || valid.count() == 0 {
            return Err(Error::Config(
                "training and validation splits need at least one example".into(),
            ));
        }
        Ok(ClassifyTask {
            model,
            train,
            valid,
            word_dropout: 0.0,
            loss_ties: false,
            batches,
            batch: D::Batch::default(),
            labels: Vec::new(),
            cache: ClassifierCache::default(),
            ws: ClassifierWorkspace::default(),
        })
    }

    /// Word dropout: during training each real token becomes `<unk>` (id
    /// [`crate::tasks::classify::data::UNK_ID`]) with probability `p`, drawn afresh every step.
    ///
    /// # Errors
    /// [`Error::Config`] unless `0 ≤ p < 1`, or for `p > 0` on examples that are not tokens.
    pub fn with_word_dropout(mut self, p: f32) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::Config(format!(
                "word dropout must be in [0, 1), got {p}"
            )));
        }
        if p > 0.0 && !D::TOKENS {
            return Err(Error::Config(
                "word dropout applies to text, not to numeric series".into(),
            ));
        }
        self.word_dropout = p;
        Ok(self)
    }

    /// Validation scores equal accuracies by the lower loss: the score is
    /// `accuracy − 1e-9 · loss`, so on a small validation split, where the accuracy soon stops
    /// moving, the weights still improve while the loss falls.
    pub fn with_loss_ties(mut self) -> Self {
        self.loss_ties = true;
        self
    }

    fn score(&self, accuracy: f64, loss: f64) -> f64 {
        match self.loss_ties {
            true => accuracy - 1e-9 * loss.clamp(0.0, 1e3),
            false => accuracy,
        }
    }
}

impl<D: Labelled> Task for ClassifyTask<'_, D> {
    fn about(&self) -> About<'_> {
        let weights = Weights::new(self.model.param_layout(), CLASSIFY_FORMAT, "a classifier");
        About::new(weights, "accuracy", LossAverage::PerStep)
    }

    fn batch_size(&self) -> usize {
        self.batches.size()
    }

    /// The model and a fingerprint of the encoded training examples (the ranks of a
    /// data-parallel run must agree on them).
    fn identity(&self) -> Identity {
        let mut h = Fingerprint::default();
        self.train.fingerprint(&mut h);
        let train = "the training examples (or the vocabulary and labels that encode them) are \
                     not those the run was trained on";
        h.identity(self.model.config(), train)
    }

    fn start_epoch(&mut self, _epoch: usize, rng: &mut SeqRng) -> usize {
        self.batches.shuffle(&self.train.lens(), rng)
    }

    fn train_step(&mut self, mut step: Step<'_>) -> Result<BatchLoss> {
        let Some((all, idx, mut masks)) = self.batches.rows(&mut step) else {
            return Ok(BatchLoss::NONE);
        };
        let train = self.train;
        train.fill(idx, &mut self.batch);
        if self.word_dropout > 0.0 {
            D::drop_tokens(&mut self.batch, self.word_dropout, &mut masks);
        }
        self.labels.clear();
        self.labels.extend(idx.iter().map(|&i| train.labels()[i]));
        let (params, grads) = (step.params, step.grads);
        let loss = self.model.forward_train(
            params,
            D::input(&self.batch),
            &self.labels,
            &mut self.cache,
            &mut self.ws,
            &mut masks,
        )?;
        self.model
            .backward(params, grads, &self.cache, &mut self.ws)?;
        // The model's loss and gradient are means over this rank's examples; the step's are
        // over the whole batch's.
        Ok(BatchLoss::share_of_mean(loss, grads, idx.len(), all.len()))
    }

    /// Each rank scores its share of the validation examples; losses and hits are summed.
    fn validate(&mut self, params: &[f32], group: &Group) -> Result<Validation> {
        let n = self.valid.labels().len();
        let Some(part) = validation_share(group, n) else {
            let m = evaluate(self.model, params, self.valid)?;
            return Ok(Validation {
                loss: m.loss,
                score: self.score(m.accuracy, m.loss),
            });
        };
        let mine = self.valid.part(part.clone());
        let m = evaluate(self.model, params, &mine)?;
        let k = part.len() as f64;
        let mut sums = [m.loss * k, (m.accuracy * k).round()];
        group.sum_f64(&mut sums);
        let (loss, accuracy) = (sums[0] / n as f64, sums[1] / n as f64);
        Ok(Validation {
            loss,
            score: self.score(accuracy, loss),
        })
    }
}

/// `format` metadata of a classifier's weights file.
pub const CLASSIFY_FORMAT: &str = "seqrnn-classify";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::classify::model::ClassifierConfig;

    /// A small two-class classifier's configuration over `vocab` tokens.
    fn config(vocab: usize) -> ClassifierConfig {
        ClassifierConfig {
            vocab,
            embed: 2,
            hidden: 2,
            classes: 2,
            ..ClassifierConfig::default()
        }
    }

    #[test]
    fn metrics_from_a_known_confusion() {
        // A model whose head ignores the input: bias decides, so every prediction is label 1.
        let cfg = config(4);
        let m = Classifier::new(cfg).unwrap();
        let mut p = m.init_params(1).unwrap();
        let n = p.len();
        let hw = n - 2 - 2 * cfg.features();
        p[hw..n - 2].fill(0.0);
        p[n - 2] = -5.0;
        p[n - 1] = 5.0;
        let data = Encoded {
            ids: vec![vec![2], vec![3, 2], vec![2, 2, 3]],
            labels: vec![1, 0, 1],
            unknown_tokens: 0,
        };
        let r = evaluate(&m, &p, &data).unwrap();
        assert_eq!(r.confusion, vec![vec![0, 1], vec![0, 2]]);
        assert!((r.accuracy - 2.0 / 3.0).abs() < 1e-12);
        // F1: label 0 → 0, label 1 → 2·2/(3+2) = 0.8.
        assert!((r.macro_f1 - 0.4).abs() < 1e-12);
    }

    #[test]
    fn a_run_resumed_on_other_examples_is_refused() {
        let m = Classifier::new(config(10)).unwrap();
        let data = Encoded {
            ids: vec![vec![5, 6], vec![7; 3]],
            labels: vec![0, 1],
            unknown_tokens: 0,
        };
        let other = Encoded {
            labels: vec![1, 0],
            ..data.clone()
        };
        let err = crate::train::fit::resume_refusal(
            "classify",
            &mut ClassifyTask::new(&m, &data, &data, 2).unwrap(),
            &mut ClassifyTask::new(&m, &other, &data, 2).unwrap(),
            &m.init_params(1).unwrap(),
        );
        assert!(
            err.contains("cannot resume: the training examples"),
            "{err}"
        );
    }

    #[test]
    fn word_dropout_replaces_real_tokens_only() {
        let m = Classifier::new(config(10)).unwrap();
        let params = m.init_params(1).unwrap();
        let data = Encoded {
            ids: vec![vec![5; 40], vec![7; 3]],
            labels: vec![0, 1],
            unknown_tokens: 0,
        };
        let mut grads = vec![0.0; m.num_params()];
        let mut rng = crate::dropout::rng_from_seed(3);
        assert!(ClassifyTask::new(&m, &data, &data, 2)
            .unwrap()
            .with_word_dropout(1.0)
            .is_err());
        let mut task = ClassifyTask::new(&m, &data, &data, 2)
            .unwrap()
            .with_word_dropout(0.5)
            .unwrap();
        assert_eq!(task.start_epoch(1, &mut rng), 1);
        task.train_step(Step::sole(0, &params, &mut grads, &mut rng))
            .unwrap();
        let b = &task.batch;
        let col = |j: usize| (0..b.t).map(|t| b.ids[t * 2 + j]).collect::<Vec<u32>>();
        let (long, short) = if b.lens[0] == 40 {
            (col(0), col(1))
        } else {
            (col(1), col(0))
        };
        let dropped = long.iter().filter(|&&id| id == UNK_ID).count();
        assert!((8..=32).contains(&dropped), "{dropped} of 40 dropped");
        assert!(long.iter().all(|&id| id == 5 || id == UNK_ID));
        // Padding stays padding.
        assert!(short[3..].iter().all(|&id| id == 0), "{short:?}");
        assert!(short[..3].iter().all(|&id| id == 7 || id == UNK_ID));
    }
}

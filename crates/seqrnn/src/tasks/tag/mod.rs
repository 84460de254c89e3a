//! Sequence tagging: vocabularies, the training task for the shared loop ([`crate::train::fit()`]),
//! evaluation (token accuracy; entity precision, recall and F1 as `conlleval` counts them) and
//! the run configuration.
//!
//! Entity tags are converted to the training scheme ([`Scheme`], IOBES by default, as Lample et
//! al.) before training, and predictions back to the file's scheme; chunks are the same in every
//! scheme, so entity scores do not depend on it. Labels that are not entity tags (parts of
//! speech) are used as they are.

mod config;
pub mod conll;
mod ensemble;
pub mod entities;
pub mod export;
pub mod model;
pub mod tags;
mod trained;
pub use config::{TagRunConfig, TagTrainConfig};
pub use ensemble::Ensemble;
pub use trained::{Trained, Words};
mod prepare;
pub use prepare::{constraints, encode, is_entity_tagging, to_scheme, EncodedTags, TagVocabs, PAD};

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::batch::length_buckets;
use crate::data::{Vocab, UNK};
use crate::dist::Group;
use crate::dropout::{RowRng, SeqRng};
use crate::error::{Error, Result};
use crate::model::crf::Constraints;
use crate::run::RunDir;
use crate::tasks::tag::conll::Sentence;
use crate::tasks::tag::entities::{score, EntityScores};
use crate::tasks::tag::model::{casing, TagBatch, Tagger, TaggerCache, TaggerWorkspace};
use crate::tasks::tag::tags::{check, convert, split_tag, Scheme};
use crate::train::fit::FitConfig;
use crate::train::task::{
    About, BatchLoss, BucketSteps, Fingerprint, Identity, LossAverage, Scaled, Step, Task,
    Validation, Weights,
};

/// `format` metadata of a tagger's weights file.
pub const TAG_FORMAT: &str = "seqrnn-tag";

/// Sentences per inference batch.
pub const EVAL_BATCH: usize = 128;

/// Predicted label ids of every sentence, in order.
pub fn predict(model: &Tagger, params: &[f32], data: &EncodedTags) -> Result<Vec<Vec<u32>>> {
    let lens: Vec<usize> = data.words.iter().map(Vec::len).collect();
    let order: Vec<usize> = (0..data.len()).collect();
    let mut out = vec![Vec::new(); data.len()];
    let (mut cache, mut ws) = (TaggerCache::default(), TaggerWorkspace::default());
    let (mut batch, mut tags) = (TagBatch::default(), Vec::new());
    for idx in length_buckets(&lens, &order, EVAL_BATCH) {
        data.batch(&idx, &mut batch);
        model.predict(params, &batch, &mut tags, &mut cache, &mut ws)?;
        let b = idx.len();
        for (j, &i) in idx.iter().enumerate() {
            out[i] = (0..lens[i]).map(|s| tags[s * b + j]).collect();
        }
    }
    Ok(out)
}

/// Emissions of every sentence, in order: `[len, K]` row-major each, the per-token scores
/// [`predict`] decodes.
pub fn scores(model: &Tagger, params: &[f32], data: &EncodedTags) -> Result<Vec<Vec<f32>>> {
    let lens: Vec<usize> = data.words.iter().map(Vec::len).collect();
    let order: Vec<usize> = (0..data.len()).collect();
    let k = model.config().tags;
    let mut out = vec![Vec::new(); data.len()];
    let (mut cache, mut ws) = (TaggerCache::default(), TaggerWorkspace::default());
    let (mut batch, mut e) = (TagBatch::default(), Vec::new());
    for idx in length_buckets(&lens, &order, EVAL_BATCH) {
        data.batch(&idx, &mut batch);
        model.scores(params, &batch, &mut e, &mut cache, &mut ws)?;
        let b = idx.len();
        for (j, &i) in idx.iter().enumerate() {
            out[i] = (0..lens[i])
                .flat_map(|s| e[(s * b + j) * k..(s * b + j + 1) * k].iter().copied())
                .collect();
        }
    }
    Ok(out)
}

/// Summed loss and token count of `data` (no dropout).
pub fn loss(model: &Tagger, params: &[f32], data: &EncodedTags) -> Result<(f64, usize)> {
    let lens: Vec<usize> = data.words.iter().map(Vec::len).collect();
    let order: Vec<usize> = (0..data.len()).collect();
    let (mut cache, mut ws, mut batch) = (
        TaggerCache::default(),
        TaggerWorkspace::default(),
        TagBatch::default(),
    );
    let (mut sum, mut n) = (0.0, 0);
    for idx in length_buckets(&lens, &order, EVAL_BATCH) {
        data.batch(&idx, &mut batch);
        sum += model.eval_loss(params, &batch, &mut cache, &mut ws)?;
        n += batch.tokens();
    }
    Ok((sum, n))
}

/// Scores predictions against the gold labels, both as label ids in the training scheme;
/// entity scores are computed on chunks (the same in every scheme).
pub fn evaluate(
    model: &Tagger,
    params: &[f32],
    data: &EncodedTags,
    labels: &Vocab,
) -> Result<EntityScores> {
    Ok(evaluate_with_confusion(model, params, data, labels)?.0)
}

/// As [`evaluate`], with the confusion table of the labels: `confusion[gold][predicted]` token
/// counts, label ids in the training scheme.
pub fn evaluate_with_confusion(
    model: &Tagger,
    params: &[f32],
    data: &EncodedTags,
    labels: &Vocab,
) -> Result<(EntityScores, Vec<Vec<usize>>)> {
    score_ids(&data.labels, &predict(model, params, data)?, labels)
}

/// Entity scores and the confusion table of predicted label ids against gold ones (training
/// scheme, sentence by sentence).
fn score_ids(
    gold: &[Vec<u32>],
    pred: &[Vec<u32>],
    labels: &Vocab,
) -> Result<(EntityScores, Vec<Vec<usize>>)> {
    let name = |ids: &Vec<u32>| -> Vec<String> {
        ids.iter()
            .map(|&i| labels.token(i).unwrap_or("O").to_string())
            .collect()
    };
    let gold_s: Vec<Vec<String>> = gold.iter().map(name).collect();
    let pred_s: Vec<Vec<String>> = pred.iter().map(name).collect();
    let table = confusion(gold, pred, labels.len());
    Ok((score(&gold_s, &pred_s)?, table))
}

/// `confusion[gold][predicted]` token counts of label ids below `k`.
pub fn confusion(gold: &[Vec<u32>], pred: &[Vec<u32>], k: usize) -> Vec<Vec<usize>> {
    let mut t = vec![vec![0usize; k]; k];
    for (g, p) in gold.iter().zip(pred) {
        for (&a, &b) in g.iter().zip(p) {
            t[a as usize][b as usize] += 1;
        }
    }
    t
}

/// The tagging task for the shared loop: length-bucketed batches, shuffled every epoch;
/// validation by entity F1 (entity tags) or token accuracy.
pub struct TagTask<'a> {
    model: &'a Tagger,
    train: &'a EncodedTags,
    valid: &'a EncodedTags,
    labels: &'a Vocab,
    entities: bool,
    /// Probability of replacing a training word seen once by `<unk>` at each step.
    unk_replace: f32,
    /// Whether each word id occurs once in the training data.
    singleton: Vec<bool>,
    steps: BucketSteps<Tagger>,
}

impl<'a> TagTask<'a> {
    /// Lample et al.'s singleton replacement: during training each word seen once in the
    /// training data becomes `<unk>` with probability `p` (drawn afresh every step, per
    /// sentence), so the `<unk>` embedding learns from real contexts. Characters and casing are
    /// kept.
    ///
    /// # Errors
    /// [`Error::Config`] unless `0 ≤ p ≤ 1`.
    pub fn with_unk_replace(mut self, p: f32) -> Result<Self> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::Config(format!(
                "the <unk> replacement probability must be in [0, 1], got {p}"
            )));
        }
        self.unk_replace = p;
        let mut counts = vec![0usize; self.model.config().words];
        for w in self.train.words.iter().flatten() {
            counts[*w as usize] += 1;
        }
        self.singleton = counts.iter().map(|&c| c == 1).collect();
        Ok(self)
    }

    /// A task over `train` and `valid`, `batch` sentences a step; `entities` selects on entity
    /// F1 (else token accuracy).
    ///
    /// # Errors
    /// [`Error::Config`] when `batch` is 0 or a split is empty.
    pub fn new(
        model: &'a Tagger,
        train: &'a EncodedTags,
        valid: &'a EncodedTags,
        labels: &'a Vocab,
        entities: bool,
        batch: usize,
    ) -> Result<Self> {
        if batch == 0 || train.is_empty() || valid.is_empty() {
            return Err(Error::Config(
                "the batch size and both splits need at least one sentence".into(),
            ));
        }
        Ok(TagTask {
            model,
            train,
            valid,
            labels,
            entities,
            unk_replace: 0.0,
            singleton: Vec::new(),
            steps: BucketSteps::new(batch)?,
        })
    }
}

impl Task for TagTask<'_> {
    fn about(&self) -> About<'_> {
        let weights = Weights::new(self.model.param_layout(), TAG_FORMAT, "a tagger");
        let score = if self.entities { "f1" } else { "accuracy" };
        About::new(weights, score, LossAverage::PerExample)
    }

    fn batch_size(&self) -> usize {
        self.steps.size()
    }

    fn identity(&self) -> Identity {
        let mut h = Fingerprint::default();
        for (w, l) in self.train.words.iter().zip(&self.train.labels) {
            h.ids(w).ids(l).end();
        }
        let train = "the training file (or its vocabularies) is not the one the run was trained on";
        h.identity(self.model.config(), train)
    }

    fn start_epoch(&mut self, _epoch: usize, rng: &mut SeqRng) -> usize {
        self.steps.shuffle_seqs(&self.train.words, rng)
    }

    /// The loss is the CRF's negative log-likelihood per token of the global batch.
    fn train_step(&mut self, step: Step<'_>) -> Result<BatchLoss> {
        let (train, unk) = (self.train, (self.unk_replace, self.singleton.as_slice()));
        self.steps.step(self.model, step, |rows, batch, masks| {
            train.batch(rows.mine, batch);
            replace_singletons(batch, unk, masks);
            Scaled {
                scale: 1.0
                    / rows
                        .all
                        .iter()
                        .map(|&i| train.words[i].len())
                        .sum::<usize>() as f32,
                examples: batch.tokens(),
            }
        })
    }

    /// Validation on one process (the scores need every sentence; the ranks of a data-parallel
    /// run each compute them).
    fn validate(&mut self, params: &[f32], _group: &Group) -> Result<Validation> {
        let (sum, n) = loss(self.model, params, self.valid)?;
        let s = evaluate(self.model, params, self.valid, self.labels)?;
        Ok(Validation {
            loss: sum / n.max(1) as f64,
            score: match self.entities {
                true => s.overall.f1,
                false => s.accuracy,
            },
        })
    }
}

/// Replaces each word of `batch` seen once in training (`unk = (p, singleton[word])`) by
/// `<unk>` with probability `p`, drawn per sentence from `masks`; draws nothing when `p` is 0.
fn replace_singletons(batch: &mut TagBatch, (p, singleton): (f32, &[bool]), masks: &mut RowRng) {
    use rand::RngExt;
    if p <= 0.0 {
        return;
    }
    let b = batch.b();
    let seed = masks.shared.random::<u64>();
    for (j, &len) in batch.lens.iter().enumerate() {
        let mut r = masks.row(seed, j);
        for t in 0..len {
            let w = &mut batch.words[t * b + j];
            if singleton[*w as usize] && r.random::<f32>() < p {
                *w = 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(tags: &[&str]) -> Vocab {
        let mut v = Vocab::new();
        for t in tags {
            v.add(t);
        }
        v
    }

    #[test]
    fn constraints_allow_exactly_the_valid_sequences() {
        let v = labels(&["B-PER", "E-PER", "I-PER", "O", "S-PER"]);
        let c = constraints(&v, Some(Scheme::Iobes));
        let id = |t: &str| v.id(t).unwrap() as usize;
        let ok = |a: &str, b: &str| c.transitions[id(a) * 5 + id(b)];
        assert!(ok("B-PER", "I-PER") && ok("B-PER", "E-PER") && ok("I-PER", "E-PER"));
        assert!(ok("E-PER", "O") && ok("S-PER", "B-PER") && ok("O", "S-PER"));
        assert!(!ok("O", "I-PER") && !ok("B-PER", "O") && !ok("E-PER", "E-PER"));
        assert!(!c.start[id("I-PER")] && !c.start[id("E-PER")] && c.start[id("B-PER")]);
        assert!(!c.end[id("B-PER")] && !c.end[id("I-PER")] && c.end[id("E-PER")]);
        // Every allowed sequence of length 3 is a valid IOBES sequence, and the reverse.
        let tags = v.tokens();
        for a in tags {
            for b in tags {
                for d in tags {
                    let seq = [a.as_str(), b, d];
                    let allowed = c.start[id(a)] && ok(a, b) && ok(b, d) && c.end[id(d)];
                    assert_eq!(allowed, check(&seq, Scheme::Iobes).is_ok(), "{seq:?}");
                }
            }
        }
    }

    #[test]
    fn unk_replacement_touches_singletons_only() {
        use crate::rnn::CellKind;
        use crate::tasks::tag::model::{Head, TaggerConfig};
        let cfg = TaggerConfig {
            words: 6,
            chars: 3,
            embed: 2,
            char_embed: 2,
            char_hidden: 0,
            cell: CellKind::Lstm,
            hidden: 2,
            layers: 1,
            dropout: 0.0,
            dropout_kind: Default::default(),
            tags: 2,
            head: Head::Softmax,
        };
        let m = Tagger::new(cfg, Constraints::none(2)).unwrap();
        let p = m.init_params(1).unwrap();
        // Word 5 occurs once, word 4 many times; the short sentence is padded.
        let mut words = vec![4u32; 40];
        words[7] = 5;
        let data = EncodedTags {
            words: vec![words.clone(), vec![4, 4]],
            cases: vec![vec![0; 40], vec![0; 2]],
            chars: vec![vec![vec![2]; 40], vec![vec![2]; 2]],
            labels: vec![vec![0; 40], vec![1; 2]],
        };
        let labels = labels(&["A", "B"]);
        assert!(TagTask::new(&m, &data, &data, &labels, false, 2)
            .unwrap()
            .with_unk_replace(1.5)
            .is_err());
        let mut task = TagTask::new(&m, &data, &data, &labels, false, 2)
            .unwrap()
            .with_unk_replace(1.0)
            .unwrap();
        let mut rng = crate::dropout::rng_from_seed(2);
        task.start_epoch(1, &mut rng);
        let mut g = vec![0.0; m.num_params()];
        task.train_step(Step::sole(0, &p, &mut g, &mut rng))
            .unwrap();
        let b = task.steps.batch();
        let long = usize::from(b.lens[0] != 40);
        let col: Vec<u32> = (0..b.t).map(|t| b.words[t * 2 + long]).collect();
        assert_eq!(col.iter().filter(|&&w| w == 1).count(), 1, "{col:?}");
        assert_eq!(col[7], 1);
        let short: Vec<u32> = (0..b.t).map(|t| b.words[t * 2 + 1 - long]).collect();
        assert_eq!(&short[..2], &[4, 4]);
        assert!(short[2..].iter().all(|&w| w == 0));
    }

    #[test]
    fn confusion_counts_tokens_by_gold_and_predicted_label() {
        let t = confusion(&[vec![0, 1, 1], vec![2]], &[vec![0, 2, 1], vec![2]], 3);
        assert_eq!(t, vec![vec![1, 0, 0], vec![0, 1, 1], vec![0, 0, 1]]);
    }

    #[test]
    fn entity_tags_are_told_from_parts_of_speech() {
        assert!(is_entity_tagging(&[vec!["O", "B-PER", "I-PER"]]));
        assert!(!is_entity_tagging(&[vec!["NOUN", "VERB"]]));
        assert!(!is_entity_tagging(&[vec!["O", "O"]]));
        assert!(!is_entity_tagging(&[vec!["B-NP", "I-NP", "PUNCT"]]));
    }
}

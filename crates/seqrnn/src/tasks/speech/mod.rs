//! Speech recognition with CTC: features of a corpus, the task the shared loop trains, decoding
//! and error rates, and trained runs.
//!
//! Every recording becomes log-mel frames `[frames, F]` normalised per utterance
//! ([`Featurizer`]); transcripts become label ids over the training transcripts' characters
//! ([`Alphabet`], blank = 0). A recording whose steps (frames after stacking) cannot hold its
//! transcript under CTC is refused when the data is read, naming the file. Training batches
//! group utterances of similar length; SpecAugment masks, when asked for, are drawn per
//! utterance and step from the loop's generator, so they do not depend on how a batch is split
//! across processes. Validation scores `1 − WER` of greedy decoding (higher is better), ties
//! broken by the validation loss ([`selection_score`]).

pub mod data;
mod ensemble;
pub mod export;
pub mod model;
mod trained;
pub mod words;
pub use ensemble::Ensemble;
#[cfg(feature = "plots")]
pub use trained::alignment_picture;
pub use trained::Trained;
mod config;
pub use config::{SpeechRunConfig, SpeechRunData, SpeechTrainConfig};
mod prepare;
pub use prepare::{
    prepare, words_of, Alphabet, Featurizer, SpeechData, SpeechSource, TEST_SEED, VALID_SEED,
};

use std::path::{Path, PathBuf};

use rand::RngExt;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::audio::{FeatureConfig, FilterBank, SpecAugment};
use crate::data::batch::length_buckets;
use crate::dist::Group;
use crate::dropout::{RowRng, SeqRng};
use crate::error::{Error, Result};
use crate::model::ctc::{min_frames, CtcWorkspace, Lexicon};
use crate::report::wer::ErrorCounts;
use crate::run::RunDir;
use crate::tasks::speech::data::{
    concatenate, load_fsdd, load_fsdd_part, load_manifest, speed_perturb, Concat, FsddSplit,
    Utterance,
};
use crate::tasks::speech::model::{
    SpeechBatch, SpeechCache, SpeechConfig, SpeechModel, SpeechWorkspace,
};
use crate::tasks::speech::words::NO_WORD;
use crate::train::fit::FitConfig;
use crate::train::task::{
    About, BatchLoss, BucketSteps, Fingerprint, Identity, LossAverage, Scaled, Step, Task,
    Validation, Weights,
};

/// `format` metadata of a speech model's `model.safetensors`.
pub const SPEECH_FORMAT: &str = "seqrnn-speech";

/// How logits become label sequences.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decoding {
    /// The most probable label of every step, repeats merged, blanks dropped.
    #[default]
    Greedy,
    /// CTC prefix beam search of this width.
    Beam(usize),
    /// Prefix beam search of this width that writes only words of the training transcripts.
    Lexicon(usize),
    /// The word head's most probable word (a model with a word head).
    Words,
}

/// Error rates of a transcribed corpus.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpeechScores {
    /// Utterances.
    pub utterances: usize,
    /// Fraction of utterances transcribed exactly.
    pub accuracy: f64,
    /// Word error rate (word edits over reference words).
    pub wer: f64,
    /// Character error rate.
    pub cer: f64,
    /// Mean CTC loss per utterance.
    pub loss: f64,
    /// The transcripts, in order.
    pub hypotheses: Vec<String>,
}

/// Utterances per inference batch.
const EVAL_BATCH: usize = 32;

/// How a model's outputs are read: the decoding and, for [`Decoding::Lexicon`] and
/// [`Decoding::Words`], the words.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    /// The characters.
    pub alphabet: &'a Alphabet,
    /// The decoding.
    pub decoding: Decoding,
    /// The lexicon of [`Decoding::Lexicon`].
    pub lexicon: Option<&'a Lexicon>,
    /// The words of the training transcripts (`words.txt`), the classes of a word head.
    pub words: Option<&'a [String]>,
}

impl Reader<'_> {
    /// Checks that the decoding has what it reads: a lexicon, or a word head and its words.
    fn check(&self, model: &SpeechModel) -> Result<()> {
        let missing = match self.decoding {
            Decoding::Lexicon(_) if self.lexicon.is_none() => {
                "lexicon decoding needs the words of the training transcripts"
            }
            Decoding::Words => match (model.config().word_head, self.words) {
                (Some(h), Some(w)) if w.len() == h.words => return Ok(()),
                (None, _) => "word decoding needs a model with a word head",
                _ => "word decoding needs the word head's words (words.txt)",
            },
            _ => return Ok(()),
        };
        Err(Error::Config(missing.into()))
    }
}

/// Transcribes `data` (length-sorted batches of `EVAL_BATCH`); with `with_loss`, also sums the
/// loss. Returns the hypotheses in order and the summed loss.
///
/// # Errors
/// [`Error::Config`] for [`Decoding::Lexicon`] without a lexicon or [`Decoding::Words`]
/// without a word head and its words; the model's errors.
pub fn transcribe(
    model: &SpeechModel,
    params: &[f32],
    data: &SpeechData,
    reader: &Reader<'_>,
    with_loss: bool,
) -> Result<(Vec<String>, f64)> {
    let alphabet = reader.alphabet;
    reader.check(model)?;
    let order: Vec<usize> = (0..data.len()).collect();
    let batches = length_buckets(&data.frames, &order, EVAL_BATCH);
    let (mut cache, mut ws) = (SpeechCache::default(), SpeechWorkspace::default());
    let mut batch = SpeechBatch::default();
    let mut hyps = vec![String::new(); data.len()];
    let mut total = 0.0;
    let c = model.config().labels;
    let mut ctc_ws = CtcWorkspace::default();
    for idx in &batches {
        data.batch(idx, &mut batch, None);
        match with_loss {
            true => total += model.eval_loss(params, &batch, &mut cache, &mut ws)?,
            false => model.forward_infer(params, &batch, &mut cache, &mut ws)?,
        }
        if let (Decoding::Words, Some(part), Some(words)) =
            (reader.decoding, model.word_part(), reader.words)
        {
            for (&i, best) in idx.iter().zip(part.best(&cache.words)) {
                hyps[i].clone_from(&words[best]);
            }
            continue;
        }
        let (b, t) = (idx.len(), cache.t());
        let mut rows = vec![0.0f32; t * c];
        for (j, &i) in idx.iter().enumerate() {
            let len = cache.steps()[j];
            for s in 0..len {
                rows[s * c..(s + 1) * c]
                    .copy_from_slice(&cache.logits[(s * b + j) * c..(s * b + j + 1) * c]);
            }
            let ctc = model.ctc();
            let x = &rows[..len * c];
            let labels = match (reader.decoding, reader.lexicon) {
                (Decoding::Greedy, _) => ctc.greedy(x, len)?,
                (Decoding::Beam(w), _) => ctc.prefix_beam_search(x, len, w, &mut ctc_ws)?.0,
                (Decoding::Lexicon(w), Some(lex)) => {
                    ctc.lexicon_beam_search(x, len, w, lex, &mut ctc_ws)?.0
                }
                (Decoding::Lexicon(_) | Decoding::Words, _) => {
                    unreachable!("Reader::check refuses a decoding without what it reads")
                }
            };
            hyps[i] = alphabet.decode(&labels);
        }
    }
    Ok((hyps, total))
}

/// Scores `data`: accuracy, WER, CER and mean loss.
pub fn evaluate(
    model: &SpeechModel,
    params: &[f32],
    data: &SpeechData,
    reader: &Reader<'_>,
) -> Result<SpeechScores> {
    let (hyps, total) = transcribe(model, params, data, reader, true)?;
    Ok(scores(hyps, total, data))
}

/// The scores of the transcripts `hyps` of `data`, whose summed loss is `total`.
fn scores(hyps: Vec<String>, total: f64, data: &SpeechData) -> SpeechScores {
    let (mut words, mut chars, mut exact) = (ErrorCounts::default(), ErrorCounts::default(), 0);
    for (h, r) in hyps.iter().zip(&data.transcripts) {
        words += ErrorCounts::words(r, h);
        chars += ErrorCounts::chars(r, h);
        exact += usize::from(h == r);
    }
    let n = data.len().max(1) as f64;
    SpeechScores {
        utterances: data.len(),
        accuracy: exact as f64 / n,
        wer: words.rate().unwrap_or(0.0),
        cer: chars.rate().unwrap_or(0.0),
        loss: total / n,
        hypotheses: hyps,
    }
}

/// The word head's log-probabilities of every utterance of `data` (`[K]` each, in order) and,
/// with `with_loss`, the summed loss (CTC and word head).
///
/// # Errors
/// [`Error::Config`] for a model without a word head; the model's errors.
pub fn word_log_probs(
    model: &SpeechModel,
    params: &[f32],
    data: &SpeechData,
    with_loss: bool,
) -> Result<(Vec<Vec<f32>>, f64)> {
    let Some(part) = model.word_part() else {
        return Err(Error::Config("the model has no word head".into()));
    };
    let order: Vec<usize> = (0..data.len()).collect();
    let (mut cache, mut ws) = (SpeechCache::default(), SpeechWorkspace::default());
    let mut batch = SpeechBatch::default();
    let mut out = vec![Vec::new(); data.len()];
    let mut total = 0.0;
    for idx in length_buckets(&data.frames, &order, EVAL_BATCH) {
        data.batch(&idx, &mut batch, None);
        match with_loss {
            true => total += model.eval_loss(params, &batch, &mut cache, &mut ws)?,
            false => model.forward_infer(params, &batch, &mut cache, &mut ws)?,
        }
        let k = part.words();
        for (&i, row) in idx.iter().zip(cache.words.logits.chunks_exact(k)) {
            out[i] = row.to_vec();
            crate::model::softmax::log_softmax_row(&mut out[i]);
        }
    }
    Ok((out, total))
}

/// The speech task for the shared loop: length-bucketed batches shuffled every epoch, CTC loss
/// per utterance, validation by `1 − WER` of greedy decoding.
pub struct SpeechTask<'a> {
    model: &'a SpeechModel,
    train: &'a SpeechData,
    valid: &'a SpeechData,
    alphabet: &'a Alphabet,
    augment: Option<SpecAugment>,
    steps: BucketSteps<SpeechModel>,
    /// The word head's words (validation then reads the word head).
    words: Option<&'a [String]>,
}

impl<'a> SpeechTask<'a> {
    /// A task over featurised data; `augment` masks training features.
    pub fn new(
        model: &'a SpeechModel,
        train: &'a SpeechData,
        valid: &'a SpeechData,
        alphabet: &'a Alphabet,
        batch_size: usize,
        augment: Option<SpecAugment>,
    ) -> Result<Self> {
        if train.is_empty() || valid.is_empty() || batch_size == 0 {
            return Err(Error::Config(
                "speech training needs training and validation utterances and a batch of at \
                 least 1"
                    .into(),
            ));
        }
        Ok(SpeechTask {
            model,
            train,
            valid,
            alphabet,
            augment,
            steps: BucketSteps::new(batch_size)?,
            words: None,
        })
    }

    /// The same task validating with the word head's most probable word among `words` (a
    /// model with a word head; the training data's [`SpeechData::words`] set from them).
    pub fn with_words(self, words: &'a [String]) -> Self {
        SpeechTask {
            words: Some(words),
            ..self
        }
    }
}

impl Task for SpeechTask<'_> {
    fn about(&self) -> About<'_> {
        let weights = Weights::new(
            self.model.param_layout(),
            SPEECH_FORMAT,
            "an acoustic model",
        );
        About::new(weights, "word_accuracy", LossAverage::PerExample)
    }

    fn batch_size(&self) -> usize {
        self.steps.size()
    }

    fn identity(&self) -> Identity {
        let mut h = Fingerprint::default();
        for (x, y) in self.train.feats.iter().zip(&self.train.targets) {
            h.f32s(x).ids(y);
        }
        let train =
            "the training recordings or transcripts are not the ones the run was trained on";
        h.identity(self.model.config(), train)
    }

    fn start_epoch(&mut self, _epoch: usize, rng: &mut SeqRng) -> usize {
        self.steps.shuffle(&self.train.frames, rng)
    }

    /// The loss is the batch's summed CTC loss over its utterances.
    fn train_step(&mut self, step: Step<'_>) -> Result<BatchLoss> {
        let (train, augment) = (self.train, self.augment.as_ref());
        self.steps.step(self.model, step, |rows, batch, masks| {
            train.batch(rows.mine, batch, augment.map(|a| (a, masks)));
            Scaled {
                scale: 1.0 / rows.all.len() as f32,
                examples: rows.mine.len(),
            }
        })
    }

    /// Validation on one process (every rank decodes the whole validation set): greedy CTC
    /// decoding, or the word head's words.
    fn validate(&mut self, params: &[f32], _group: &Group) -> Result<Validation> {
        let decoding = match (self.words, self.model.word_part()) {
            (Some(_), Some(_)) => Decoding::Words,
            _ => Decoding::Greedy,
        };
        let reader = Reader {
            alphabet: self.alphabet,
            decoding,
            lexicon: None,
            words: self.words,
        };
        let s = evaluate(self.model, params, self.valid, &reader)?;
        Ok(Validation {
            loss: s.loss,
            score: selection_score(s.wer, s.loss),
        })
    }
}

/// The selection score of a validation: `1 − WER`, ties broken by the lower loss (which moves
/// the score by less than `1e-6`, below one word error in a million words). Early in training
/// every output is empty and the WER stays 1 for a while; the loss still tells progress.
pub fn selection_score(wer: f64, loss: f64) -> f64 {
    1.0 - wer - 1e-9 * loss.clamp(0.0, 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_round_trips_and_names_unknown_characters() {
        let a = Alphabet::from_transcripts(["one two", "three"]);
        assert_eq!(a.chars(), " ehnortw");
        assert_eq!(a.labels(), 9);
        let ids = a.encode("two one").unwrap();
        assert_eq!(ids, [7, 8, 5, 1, 5, 4, 2]);
        assert_eq!(a.decode(&ids), "two one");
        assert_eq!(a.decode(&[0, 7, 0, 99, 8]), "tw");
        assert_eq!(a.encode("four"), Err('f'));
        assert_eq!(Alphabet::from_chars(&a.chars()), a);
    }
}

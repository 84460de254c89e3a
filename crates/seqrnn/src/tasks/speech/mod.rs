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
pub mod model;
mod trained;
#[cfg(feature = "plots")]
pub use trained::alignment_picture;
pub use trained::Trained;
mod config;
pub use config::{SpeechRunConfig, SpeechRunData, SpeechTrainConfig};

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
    concatenate, load_fsdd, load_manifest, speed_perturb, Concat, FsddSplit, Utterance,
};
use crate::tasks::speech::model::{
    SpeechBatch, SpeechCache, SpeechConfig, SpeechModel, SpeechWorkspace,
};
use crate::train::fit::FitConfig;
use crate::train::task::{
    model_and_data, BatchLoss, Buckets, LossAverage, Step, Task, Validation, Weights, MODEL_PART,
};

/// `format` metadata of a speech model's `model.safetensors`.
pub const SPEECH_FORMAT: &str = "seqrnn-speech";

/// The characters a model writes: label `1 + i` is `chars[i]`; label 0 is the CTC blank.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alphabet {
    chars: Vec<char>,
}

impl Alphabet {
    /// The characters of `texts`, sorted.
    pub fn from_transcripts<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut chars: Vec<char> = texts.into_iter().flat_map(str::chars).collect();
        chars.sort_unstable();
        chars.dedup();
        Alphabet { chars }
    }

    /// An alphabet of these characters (sorted, without repeats).
    pub fn from_chars(text: &str) -> Self {
        Self::from_transcripts([text])
    }

    /// The characters, in label order.
    pub fn chars(&self) -> String {
        self.chars.iter().collect()
    }

    /// Output labels `C`: the characters and the blank.
    pub fn labels(&self) -> usize {
        self.chars.len() + 1
    }

    /// The labels of a transcript; `Err(c)` names the first character outside the alphabet.
    pub fn encode(&self, text: &str) -> std::result::Result<Vec<u32>, char> {
        text.chars()
            .map(|c| match self.chars.binary_search(&c) {
                Ok(i) => Ok(i as u32 + 1),
                Err(_) => Err(c),
            })
            .collect()
    }

    /// The lexicon of `words` (words with characters outside the alphabet are left out), words
    /// separated by the space when the alphabet has one.
    pub fn lexicon(&self, words: &[String]) -> Lexicon {
        let encoded: Vec<Vec<u32>> = words.iter().filter_map(|w| self.encode(w).ok()).collect();
        let space = self.encode(" ").ok().map(|s| s[0]);
        Lexicon::new(encoded.iter().map(Vec::as_slice), space)
    }

    /// The text of labels (blanks and unknown ids skipped).
    pub fn decode(&self, labels: &[u32]) -> String {
        labels
            .iter()
            .filter_map(|&l| self.chars.get((l as usize).checked_sub(1)?))
            .collect()
    }
}

/// Turns samples into normalised log-mel frames `[frames, F]`.
#[derive(Debug)]
pub struct Featurizer {
    bank: FilterBank,
}

impl Featurizer {
    /// A featurizer for `config` (validated).
    pub fn new(config: &FeatureConfig) -> Result<Self> {
        Ok(Featurizer {
            bank: FilterBank::new(*config)?,
        })
    }

    /// Normalised log-mel frames of `samples` into `out` (`[frames, F]`); returns the frames.
    pub fn features(&mut self, samples: &[f32], out: &mut Vec<f32>) -> usize {
        let frames = self.bank.compute(samples, out);
        crate::data::audio::normalize_utterance(out, self.bank.n_mels());
        frames
    }
}

/// A featurised corpus: frames and labels of every utterance.
#[derive(Clone, Debug, Default)]
pub struct SpeechData {
    /// Features `[frames, F]` of each utterance.
    pub feats: Vec<Vec<f32>>,
    /// Frames of each utterance.
    pub frames: Vec<usize>,
    /// Labels of each transcript.
    pub targets: Vec<Vec<u32>>,
    /// The transcripts.
    pub transcripts: Vec<String>,
    /// Where each utterance came from.
    pub sources: Vec<String>,
    /// `F`.
    pub width: usize,
}

impl SpeechData {
    /// Utterances.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Seconds of audio at `hop_ms` per frame.
    pub fn seconds(&self, hop_ms: f32) -> f64 {
        let hop_ms = hop_ms as f64;
        self.frames.iter().sum::<usize>() as f64 * hop_ms / 1000.0
    }

    /// Rows `idx` as a padded batch; with `augment`, SpecAugment masks drawn from `masks` (one
    /// generator per row, as dropout's).
    pub fn batch(
        &self,
        idx: &[usize],
        out: &mut SpeechBatch,
        augment: Option<(&SpecAugment, &mut RowRng)>,
    ) {
        let (b, f) = (idx.len(), self.width);
        let t = idx.iter().map(|&i| self.frames[i]).max().unwrap_or(0);
        out.t = t;
        out.frames.clear();
        out.frames.extend(idx.iter().map(|&i| self.frames[i]));
        out.targets.clear();
        out.targets
            .extend(idx.iter().map(|&i| self.targets[i].clone()));
        crate::linalg::fit(&mut out.feats, t * b * f);
        out.feats.fill(0.0);
        let mut scratch = Vec::new();
        let seeded = augment.map(|(a, r)| (a, r.shared.random::<u64>(), r));
        for (j, &i) in idx.iter().enumerate() {
            let src: &[f32] = match &seeded {
                Some((a, seed, r)) => {
                    scratch.clone_from(&self.feats[i]);
                    a.apply(&mut scratch, f, &mut r.row(*seed, j));
                    &scratch
                }
                None => &self.feats[i],
            };
            for (s, row) in src.chunks_exact(f).enumerate() {
                out.feats[(s * b + j) * f..(s * b + j + 1) * f].copy_from_slice(row);
            }
        }
    }
}

/// Featurises utterances (in parallel) and encodes their transcripts.
///
/// # Errors
/// [`Error::Data`] naming the recording for a transcript with a character outside `alphabet`,
/// or a recording whose steps cannot hold its transcript under CTC.
pub fn prepare(
    utterances: &[Utterance],
    features: &FeatureConfig,
    alphabet: &Alphabet,
    model: &SpeechConfig,
) -> Result<SpeechData> {
    features.validate()?;
    let feats: Vec<(Vec<f32>, usize)> = utterances
        .par_iter()
        .map_init(
            || Featurizer::new(features),
            |f, u| -> Result<(Vec<f32>, usize)> {
                let f = f.as_mut().map_err(|e| Error::Config(e.to_string()))?;
                let mut out = Vec::new();
                let n = f.features(&u.samples, &mut out);
                Ok((out, n))
            },
        )
        .collect::<Result<_>>()?;
    let mut data = SpeechData {
        width: features.n_mels,
        ..SpeechData::default()
    };
    for (u, (x, frames)) in utterances.iter().zip(feats) {
        let bad = |message: String| Error::Data {
            path: PathBuf::from(&u.source),
            message,
        };
        let target = alphabet.encode(&u.transcript).map_err(|c| {
            bad(format!(
                "the transcript {:?} holds {c:?}, which is not in the alphabet {:?}",
                u.transcript,
                alphabet.chars()
            ))
        })?;
        let (steps, need) = (model.steps(frames), min_frames(&target));
        if frames == 0 || steps < need {
            return Err(bad(format!(
                "the recording is too short for its transcript under CTC: {frames} frames \
                 ({steps} steps after stacking {}), and {:?} needs at least {need} steps",
                model.stack, u.transcript
            )));
        }
        data.feats.push(x);
        data.frames.push(frames);
        data.targets.push(target);
        data.transcripts.push(u.transcript.clone());
        data.sources.push(u.source.clone());
    }
    Ok(data)
}

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
}

/// The words of `transcripts`, sorted, each once: the lexicon of [`Decoding::Lexicon`].
pub fn words_of<'a>(transcripts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut w: Vec<String> = transcripts
        .into_iter()
        .flat_map(str::split_whitespace)
        .map(str::to_owned)
        .collect();
    w.sort_unstable();
    w.dedup();
    w
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

/// How a model's outputs are read: the decoding and, for [`Decoding::Lexicon`], the words.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    /// The characters.
    pub alphabet: &'a Alphabet,
    /// The decoding.
    pub decoding: Decoding,
    /// The lexicon of [`Decoding::Lexicon`].
    pub lexicon: Option<&'a Lexicon>,
}

/// Transcribes `data` (length-sorted batches of `EVAL_BATCH`); with `with_loss`, also sums the
/// CTC loss. Returns the hypotheses in order and the summed loss.
///
/// # Errors
/// [`Error::Config`] for [`Decoding::Lexicon`] without a lexicon; the model's errors.
pub fn transcribe(
    model: &SpeechModel,
    params: &[f32],
    data: &SpeechData,
    reader: &Reader<'_>,
    with_loss: bool,
) -> Result<(Vec<String>, f64)> {
    let alphabet = reader.alphabet;
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
                (Decoding::Lexicon(_), None) => {
                    return Err(Error::Config(
                        "lexicon decoding needs the words of the training transcripts".into(),
                    ))
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
    let (mut words, mut chars, mut exact) = (ErrorCounts::default(), ErrorCounts::default(), 0);
    for (h, r) in hyps.iter().zip(&data.transcripts) {
        words += ErrorCounts::words(r, h);
        chars += ErrorCounts::chars(r, h);
        exact += usize::from(h == r);
    }
    let n = data.len().max(1) as f64;
    Ok(SpeechScores {
        utterances: data.len(),
        accuracy: exact as f64 / n,
        wer: words.rate().unwrap_or(0.0),
        cer: chars.rate().unwrap_or(0.0),
        loss: total / n,
        hypotheses: hyps,
    })
}

/// The speech task for the shared loop: length-bucketed batches shuffled every epoch, CTC loss
/// per utterance, validation by `1 − WER` of greedy decoding.
pub struct SpeechTask<'a> {
    model: &'a SpeechModel,
    train: &'a SpeechData,
    valid: &'a SpeechData,
    alphabet: &'a Alphabet,
    augment: Option<SpecAugment>,
    batches: Buckets,
    batch: SpeechBatch,
    cache: SpeechCache,
    ws: SpeechWorkspace,
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
            batches: Buckets::new(batch_size),
            batch: SpeechBatch::default(),
            cache: SpeechCache::default(),
            ws: SpeechWorkspace::default(),
        })
    }
}

impl Task for SpeechTask<'_> {
    fn weights(&self) -> Weights<'_> {
        Weights::new(
            self.model.param_layout(),
            SPEECH_FORMAT,
            "an acoustic model",
        )
    }

    fn score_name(&self) -> &'static str {
        "word_accuracy"
    }

    fn loss_average(&self) -> LossAverage {
        LossAverage::PerExample
    }

    fn batch_size(&self) -> usize {
        self.batches.size()
    }

    fn identity(&self) -> serde_json::Value {
        let mut h = Vec::new();
        for (x, y) in self.train.feats.iter().zip(&self.train.targets) {
            h.extend(fingerprint_f32_bytes(x));
            h.extend(y.iter().flat_map(|i| i.to_le_bytes()));
        }
        model_and_data(self.model.config(), &h)
    }

    fn identity_keys(&self) -> &'static [(&'static str, &'static str)] {
        &[
            MODEL_PART,
            (
                "train",
                "the training recordings or transcripts are not the ones the run was trained on",
            ),
        ]
    }

    fn start_epoch(&mut self, _epoch: usize, rng: &mut SeqRng) -> usize {
        self.batches.shuffle(&self.train.frames, rng)
    }

    fn train_step(
        &mut self,
        params: &[f32],
        grads: &mut [f32],
        mut step: Step<'_>,
    ) -> Result<BatchLoss> {
        let all = self.batches.get(step.index);
        let Some((idx, mut masks)) = step.rows(all) else {
            return Ok(BatchLoss::NONE);
        };
        let augment = self.augment.as_ref().map(|a| (a, &mut masks));
        self.train.batch(idx, &mut self.batch, augment);
        let loss = self.model.forward_train(
            params,
            &self.batch,
            1.0 / all.len() as f32,
            &mut self.cache,
            &mut self.ws,
            &mut masks,
        )?;
        if loss.is_finite() {
            self.model
                .backward(params, grads, &self.cache, &mut self.ws)?;
        }
        Ok(BatchLoss {
            loss,
            examples: idx.len(),
        })
    }

    /// Validation on one process (every rank decodes the whole validation set).
    fn validate(&mut self, params: &[f32], _group: &Group) -> Result<Validation> {
        let reader = Reader {
            alphabet: self.alphabet,
            decoding: Decoding::Greedy,
            lexicon: None,
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

fn fingerprint_f32_bytes(x: &[f32]) -> impl Iterator<Item = u8> + '_ {
    x.iter().flat_map(|v| v.to_bits().to_le_bytes())
}

/// Where a run's recordings come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpeechSource {
    /// The Free Spoken Digit Dataset's recordings folder (its own split).
    Fsdd(PathBuf),
    /// Manifests of the three parts.
    Manifests {
        /// Training manifest.
        train: PathBuf,
        /// Validation manifest.
        valid: PathBuf,
        /// Test manifest (optional).
        test: Option<PathBuf>,
    },
}

/// Seed of the connected validation utterances: every run builds the same ones.
pub const VALID_SEED: u64 = 0x5eed_0002;
/// Seed of the connected test utterances: every run and `eval` build the same ones.
pub const TEST_SEED: u64 = 0x5eed_0003;

impl SpeechSource {
    /// The utterances of one part at `rate` Hz: the recordings, with speed-perturbed copies
    /// for each factor of `speeds`, joined into connected utterances with `concat` (seeded
    /// `seed`). `Ok(None)` for a test part the manifests do not have.
    ///
    /// # Errors
    /// The readers' errors; [`Error::Config`] for a part without recordings.
    pub fn load(
        &self,
        part: FsddSplit,
        rate: u32,
        concat: Option<&Concat>,
        speeds: &[f32],
        seed: u64,
    ) -> Result<Option<Vec<Utterance>>> {
        let recs = match self {
            SpeechSource::Fsdd(dir) => load_fsdd(dir, part, rate)?,
            SpeechSource::Manifests { train, valid, test } => {
                let path = match (part, test) {
                    (FsddSplit::Train, _) => train,
                    (FsddSplit::Valid, _) => valid,
                    (FsddSplit::Test, Some(t)) => t,
                    (FsddSplit::Test, None) => return Ok(None),
                };
                load_manifest(path, rate)?
            }
        };
        if recs.is_empty() {
            return Err(Error::Config(format!(
                "the {part:?} part holds no recordings"
            )));
        }
        let recs = match speeds.is_empty() {
            true => recs,
            false => speed_perturb(&recs, speeds, rate)?,
        };
        Ok(Some(match concat {
            Some(c) => concatenate(&recs, c, rate, seed)?,
            None => recs,
        }))
    }
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

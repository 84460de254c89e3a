//! Numeric series for classification: the UEA/UCR archive's `.ts` files ([`crate::data::ts`]),
//! each channel standardised with the statistics of the training cases, a stratified seeded
//! validation split of the training file, and the examples the task trains on ([`Series`]).
//!
//! A case becomes a sequence of `C`-channel vectors, `(x − mean) / std` per channel; a missing
//! value is refused or filled ([`FillMissing`]) before standardising. With `stack = S > 1`,
//! `S` consecutive steps are concatenated into one vector of `S·C` values (zero past the case's
//! end), so the encoder reads `⌈len / S⌉` steps that each see a short stretch of the series. The statistics, the fill
//! and the split are saved in the run's `config.json` ([`SeriesInput`]), so evaluation and
//! prediction read new files the same way.

use std::ops::Range;
use std::path::Path;

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::data::ts::{fill_missing, read_ts, ChannelStats, FillMissing, LabelColumn, TsFile};
use crate::data::ts::{TsCase, TsOptions};
use crate::data::Vocab;
use crate::dropout::rng_from_seed;
use crate::error::{Error, Result};
use crate::model::VectorBatch;
use crate::tasks::classify::model::Input;
use crate::tasks::classify::{Cases, Labelled};
use crate::train::task::Fingerprint;

/// How a series classifier reads its files: the training statistics of each channel, the fill
/// of missing values and the validation share of the training file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesInput {
    /// Mean and standard deviation of each channel over the training cases' steps.
    pub stats: ChannelStats,
    /// What a missing value (`?`) becomes.
    pub fill: FillMissing,
    /// The share of the training file held out for validation.
    pub valid_fraction: f64,
    /// Steps concatenated into one encoder step `S` (1: none).
    #[serde(default = "one")]
    pub stack: usize,
}

fn one() -> usize {
    1
}

impl SeriesInput {
    /// Channels `C` of the files.
    pub fn channels(&self) -> usize {
        self.stats.channels()
    }

    /// Width of an encoder step, `S·C`: the model's `channels`.
    pub fn width(&self) -> usize {
        self.stack.max(1) * self.channels()
    }

    /// Reads the `.ts` file at `path` as this input expects it (its channels, its fill).
    ///
    /// # Errors
    /// Those of [`read_ts`].
    pub fn read(&self, path: &Path, labels: LabelColumn) -> Result<TsFile> {
        read_ts(
            path,
            &TsOptions {
                labels,
                dimensions: Some(self.channels()),
                missing: self.fill,
            },
        )
    }

    /// The cases of `file`, filled and standardised, with their label ids in `labels` when
    /// given (every case must then carry one).
    ///
    /// # Errors
    /// [`Error::Data`] naming the file and line of a case without a label, or with a label the
    /// training file did not declare.
    pub fn encode(&self, file: &TsFile, labels: Option<&Vocab>) -> Result<Series> {
        let mut out = Series {
            channels: self.width(),
            ..Series::default()
        };
        for case in &file.cases {
            if let Some(labels) = labels {
                out.labels.push(label_id(file, case, labels)?);
            }
            let mut x = case.values.clone();
            fill_missing(&mut x, &self.stats.mean, self.fill);
            self.stats.apply(&mut x);
            out.x.push(stack_steps(x, self.channels(), self.stack));
        }
        Ok(out)
    }
}

/// `x[len, c]` with every `s` consecutive steps concatenated: `[⌈len / s⌉, s·c]`, zero past
/// the end.
fn stack_steps(x: Vec<f32>, c: usize, s: usize) -> Vec<f32> {
    if s <= 1 {
        return x;
    }
    let steps = (x.len() / c).div_ceil(s);
    let mut out = x;
    out.resize(steps * s * c, 0.0);
    out
}

/// The label id of `case` in `labels`.
fn label_id(file: &TsFile, case: &TsCase, labels: &Vocab) -> Result<u32> {
    let bad = |message: String| Error::Data {
        path: file.path.clone(),
        message: format!("line {}: {message}", case.line),
    };
    let Some(label) = &case.label else {
        return Err(bad("the case has no class label".into()));
    };
    labels.id(label).ok_or_else(|| {
        bad(format!(
            "label `{label}` is not one of the training file's ({})",
            labels.tokens().join(" ")
        ))
    })
}

/// Standardised cases, `x[i]` of `[len, C]` time-major, with their label ids (empty when not
/// labelled).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// Channels `C`.
    pub channels: usize,
    /// Values of each case.
    pub x: Vec<Vec<f32>>,
    /// Label id of each case.
    pub labels: Vec<u32>,
}

impl Series {
    /// The cases `idx`, in that order.
    fn pick(&self, idx: &[usize]) -> Series {
        Series {
            channels: self.channels,
            x: idx.iter().map(|&i| self.x[i].clone()).collect(),
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
        }
    }
}

impl Cases for Series {
    type Batch = VectorBatch;
    const TOKENS: bool = false;

    fn count(&self) -> usize {
        self.x.len()
    }

    fn lens(&self) -> Vec<usize> {
        let c = self.channels.max(1);
        self.x.iter().map(|x| x.len() / c).collect()
    }

    fn fill(&self, idx: &[usize], batch: &mut VectorBatch) {
        batch.fill(self.channels, idx.iter().map(|&i| self.x[i].as_slice()));
    }

    fn input(batch: &VectorBatch) -> Input<'_> {
        Input::Vectors(batch)
    }
}

impl Labelled for Series {
    fn labels(&self) -> &[u32] {
        &self.labels
    }

    fn fingerprint(&self, h: &mut Fingerprint) {
        for (x, &label) in self.x.iter().zip(&self.labels) {
            h.f32s(x).ids(&[label]);
        }
    }

    fn part(&self, range: Range<usize>) -> Self {
        Series {
            channels: self.channels,
            x: self.x[range.clone()].to_vec(),
            labels: self.labels[range].to_vec(),
        }
    }
}

/// Which cases of each label go to validation: a seeded shuffle of each label's cases, of
/// which `round(n · fraction)` (at least 1 when the label has 2 or more cases, always leaving
/// one for training) are held out. Returns the training and validation indices, each in file
/// order.
///
/// # Errors
/// [`Error::Config`] unless `0 < fraction < 1`, or when no case can be held out.
pub fn stratified_split(
    labels: &[u32],
    fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(Error::Config(format!(
            "the validation fraction must be between 0 and 1, got {fraction}"
        )));
    }
    let mut rng = rng_from_seed(seed ^ 0x7661_6c69_6420_7473);
    let classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for c in 0..classes {
        let mut idx: Vec<usize> = (0..labels.len())
            .filter(|&i| labels[i] as usize == c)
            .collect();
        idx.shuffle(&mut rng);
        let n = idx.len();
        let k = ((n as f64 * fraction).round() as usize)
            .clamp(usize::from(n >= 2), n.saturating_sub(1));
        valid.extend_from_slice(&idx[..k]);
        train.extend_from_slice(&idx[k..]);
    }
    if valid.is_empty() {
        return Err(Error::Config(
            "no case can be held out for validation (every label has a single case)".into(),
        ));
    }
    train.sort_unstable();
    valid.sort_unstable();
    Ok((train, valid))
}

/// What [`prepare`] reads.
#[derive(Clone, Copy, Debug)]
pub struct SeriesSource<'a> {
    /// The training file (`X_TRAIN.ts`); validation is taken from it.
    pub train: &'a Path,
    /// The test file, scored with the selected weights.
    pub test: Option<&'a Path>,
    /// Share of the training file held out for validation.
    pub valid_fraction: f64,
    /// What a missing value becomes.
    pub fill: FillMissing,
    /// Seed of the validation split.
    pub seed: u64,
    /// Steps concatenated into one encoder step (1: none).
    pub stack: usize,
}

/// The splits of a series classification, ready to train on.
#[derive(Clone, Debug)]
pub struct SeriesData {
    /// How the files became the model's input (saved with the run).
    pub input: SeriesInput,
    /// The labels `@classLabel` of the training file declares, in its order.
    pub labels: Vocab,
    /// The training cases (the training file less the validation cases).
    pub train: Series,
    /// The validation cases.
    pub valid: Series,
    /// The test cases.
    pub test: Option<Series>,
    /// The training file's `@problemName`.
    pub problem: Option<String>,
    /// Shortest and longest case of the training file.
    pub lengths: (usize, usize),
}

/// Reads the files of `source`: labels from the training file's `@classLabel`, a stratified
/// validation split ([`stratified_split`]), statistics of the remaining training cases, every
/// split filled and standardised with them.
///
/// # Errors
/// Those of [`read_ts`] (naming file and line); [`Error::Data`] for a training file with fewer
/// than 2 declared labels, or a test case whose label the training file does not declare, or
/// whose dimensions differ; those of [`stratified_split`].
pub fn prepare(source: &SeriesSource<'_>) -> Result<SeriesData> {
    if !(1..=64).contains(&source.stack) {
        return Err(Error::Config(format!(
            "steps stacked into one must be 1 to 64, got {}",
            source.stack
        )));
    }
    let options = TsOptions {
        labels: LabelColumn::Required,
        dimensions: None,
        missing: source.fill,
    };
    let file = read_ts(source.train, &options)?;
    if file.class_labels.len() < 2 {
        return Err(Error::Data {
            path: file.path.clone(),
            message: format!(
                "classification needs at least 2 labels, @classLabel declares {}",
                file.class_labels.len()
            ),
        });
    }
    let mut labels = Vocab::new();
    for l in &file.class_labels {
        labels.add(l);
    }
    let ids = file
        .cases
        .iter()
        .map(|c| label_id(&file, c, &labels))
        .collect::<Result<Vec<u32>>>()?;
    let (train_idx, valid_idx) = stratified_split(&ids, source.valid_fraction, source.seed)?;
    let c = file.dimensions;
    let train_values = train_idx.iter().map(|&i| file.cases[i].values.as_slice());
    let input = SeriesInput {
        stats: ChannelStats::fit(train_values, c)?,
        fill: source.fill,
        valid_fraction: source.valid_fraction,
        stack: source.stack,
    };
    let all = input.encode(&file, Some(&labels))?;
    let test = match source.test {
        Some(path) => {
            let test = input.read(path, LabelColumn::Required)?;
            Some(input.encode(&test, Some(&labels))?)
        }
        None => None,
    };
    Ok(SeriesData {
        labels,
        train: all.pick(&train_idx),
        valid: all.pick(&valid_idx),
        test,
        problem: file.problem.clone(),
        lengths: file.length_range(),
        input,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_split_holds_out_each_label_and_is_seeded() {
        let labels = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2];
        let (train, valid) = stratified_split(&labels, 0.4, 3).unwrap();
        assert_eq!(train.len() + valid.len(), labels.len());
        let count = |set: &[usize], l: u32| set.iter().filter(|&&i| labels[i] == l).count();
        assert_eq!(
            (count(&valid, 0), count(&valid, 1), count(&valid, 2)),
            (2, 2, 0)
        );
        assert_eq!(stratified_split(&labels, 0.4, 3).unwrap().1, valid);
        assert!(stratified_split(&labels, 0.0, 3).is_err());
        assert!(stratified_split(&labels, 1.0, 3).is_err());
        assert!(stratified_split(&[0, 1], 0.5, 3).is_err());
        // A label of two cases gives one to validation even at a small fraction.
        let (_, v) = stratified_split(&[0, 0, 1, 1], 0.1, 1).unwrap();
        assert_eq!(v.len(), 2);
    }
}

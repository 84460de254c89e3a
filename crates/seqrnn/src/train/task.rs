//! What a task gives the one training loop ([`crate::train::fit()`]), and what the loop tells
//! whoever watches it.
//!
//! A new task (a tagger, a translator…) implements [`Task`]: it owns its data, model and
//! buffers, cuts each epoch into steps, runs one forward and backward pass per step, scores
//! weights on its validation data and names its tensors. Everything else — optimiser,
//! schedule, clipping, divergence, keep-best, moving average, early stopping, checkpoints,
//! resume, Ctrl-C, metrics — is the loop's.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use crate::dist::Group;
use crate::dropout::{RowRng, SeqRng};
use crate::error::{Error, Result};
use crate::io::tensors::TensorFile;
use crate::model::{ParamLayout, Trainable};
use crate::train::checkpoint::FitEpoch;

/// Loss of one training step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchLoss {
    /// The step's loss as [`About::loss_average`] says it is summed over the epoch (its mean
    /// over the batch, or its sum).
    pub loss: f64,
    /// Examples (sequences, windows, predicted tokens) in the step.
    pub examples: usize,
}

impl BatchLoss {
    /// The step of a rank that holds none of its rows.
    pub const NONE: BatchLoss = BatchLoss {
        loss: 0.0,
        examples: 0,
    };

    /// The step of a rank whose model computed the mean loss `loss` and its gradient `grads`
    /// over its `mine` of the batch's `all` examples: both become this rank's share of the mean
    /// over the whole batch ([`share_of_mean`]).
    pub fn share_of_mean(loss: f64, grads: &mut [f32], mine: usize, all: usize) -> BatchLoss {
        let share = share_of_mean(grads, mine, all);
        BatchLoss {
            loss: loss * share,
            examples: mine,
        }
    }
}

/// Which of the processes of a data-parallel run this one is: rank `index` of `count` (rank 0
/// of 1 on one process). The loop tells each step ([`Step::rank`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rank {
    /// This process's rank, from 0.
    pub index: usize,
    /// Number of processes.
    pub count: usize,
}

impl Rank {
    /// The one process of a run that is not distributed.
    pub const SOLE: Rank = Rank { index: 0, count: 1 };

    /// This process's rank in `group`.
    pub fn of(group: &Group) -> Rank {
        Rank {
            index: group.rank(),
            count: group.size(),
        }
    }

    /// This rank's rows of a batch of `n` rows, possibly none ([`crate::dist::share`]).
    pub fn share(self, n: usize) -> Range<usize> {
        crate::dist::share(n, self.index, self.count)
    }
}

/// One training step, as the loop hands it to [`Task::train_step`].
pub struct Step<'a> {
    /// The step's place in the current epoch, from 0.
    pub index: usize,
    /// Which process this is: in a data-parallel run the step covers this rank's rows only.
    pub rank: Rank,
    /// The loop's generator. Every rank must draw the same from it: a task draws its dropout
    /// masks through [`Step::share`] or [`Step::rows`].
    pub rng: &'a mut SeqRng,
    /// The weights, `[P]` in the task's parameter layout.
    pub params: &'a [f32],
    /// The gradient `dparams[P]`, zeroed by the loop before the step; the task adds (`+=`) to it.
    pub grads: &'a mut [f32],
}

impl<'a> Step<'a> {
    /// Step `index` of a run on one process at weights `params`, its gradient added to `grads`,
    /// drawing from `rng`.
    pub fn sole(
        index: usize,
        params: &'a [f32],
        grads: &'a mut [f32],
        rng: &'a mut SeqRng,
    ) -> Self {
        Step {
            index,
            rank: Rank::SOLE,
            rng,
            params,
            grads,
        }
    }

    /// This rank's rows of the step's global batch of `n` rows, and the step's dropout-mask
    /// generator for them ([`RowRng::for_step`] with the rank's first global row: one draw from
    /// the loop's generator on every rank alike, so the masks do not depend on the rank count).
    pub fn share(&mut self, n: usize) -> (Range<usize>, RowRng) {
        let mine = self.rank.share(n);
        let masks = RowRng::for_step(self.rng, mine.start);
        (mine, masks)
    }

    /// This rank's part of the step's global batch `all` (row indices) and its mask generator,
    /// as [`Step::share`]; `None` when the rank holds no row this step (the draw is made all
    /// the same, so the ranks stay in step).
    pub fn rows<'b>(&mut self, all: &'b [usize]) -> Option<(&'b [usize], RowRng)> {
        let (mine, masks) = self.share(all.len());
        let rows = &all[mine];
        (!rows.is_empty()).then_some((rows, masks))
    }
}

/// Makes the gradient of the mean over this rank's `mine` rows (as the models compute it) that
/// of the mean over the step's `all` rows, this rank's share of it: `grads[P] *= mine / all`.
/// Returns the factor, for the loss.
pub fn share_of_mean(grads: &mut [f32], mine: usize, all: usize) -> f64 {
    let share = mine as f64 / all as f64;
    if mine != all {
        grads.iter_mut().for_each(|g| *g *= share as f32);
    }
    share
}

/// The steps of an epoch for a task whose steps are batches of examples of varied length:
/// batches of at most `size` examples of similar length, cut afresh and shuffled every epoch
/// ([`crate::data::batch::shuffled_buckets`]).
#[derive(Clone, Debug, Default)]
pub struct Buckets {
    size: usize,
    batches: Vec<Vec<usize>>,
}

impl Buckets {
    /// Batches of at most `size` examples.
    ///
    /// # Errors
    /// [`Error::Config`] when `size` is 0.
    pub fn new(size: usize) -> Result<Self> {
        if size == 0 {
            return Err(Error::Config("batch size must be at least 1, got 0".into()));
        }
        Ok(Buckets {
            size,
            batches: Vec::new(),
        })
    }

    /// Examples of a full batch: the global batch a step shares out ([`Task::batch_size`]).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Cuts a new epoch's batches from examples of lengths `lens`; returns how many.
    pub fn shuffle(&mut self, lens: &[usize], rng: &mut SeqRng) -> usize {
        self.batches = crate::data::batch::shuffled_buckets(lens, self.size, rng);
        self.batches.len()
    }

    /// Cuts a new epoch's batches from the examples `seqs` by their lengths; returns how many.
    pub fn shuffle_seqs<T>(&mut self, seqs: &[Vec<T>], rng: &mut SeqRng) -> usize {
        let lens: Vec<usize> = seqs.iter().map(Vec::len).collect();
        self.shuffle(&lens, rng)
    }

    /// Batch `index` of the epoch: its examples' indices.
    pub fn get(&self, index: usize) -> &[usize] {
        &self.batches[index]
    }

    /// The batch of `step` (all its examples), this rank's part of it and the part's mask
    /// generator ([`Step::rows`]); `None` when the rank holds no example this step.
    pub fn rows<'s>(&'s self, step: &mut Step<'_>) -> Option<(&'s [usize], &'s [usize], RowRng)> {
        let all = self.get(step.index);
        step.rows(all).map(|(mine, masks)| (all, mine, masks))
    }
}

/// This rank's share of a step of [`BucketSteps`]: the step's batch (`all`, example indices)
/// and the part of it this rank trains on (`mine`).
#[derive(Clone, Copy, Debug)]
pub struct Rows<'s> {
    /// Every example of the step's global batch.
    pub all: &'s [usize],
    /// This rank's examples.
    pub mine: &'s [usize],
}

/// How a filled batch's loss is scaled and counted ([`BucketSteps::step`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scaled {
    /// Factor on the model's summed loss (`1 / tokens` of the global batch, `1 / sequences`).
    pub scale: f32,
    /// Examples the step reports ([`BatchLoss::examples`]).
    pub examples: usize,
}

/// The steps of a task whose examples are sequences of varied length, trained by a
/// [`Trainable`] model: [`Buckets`] cut afresh every epoch, and the batch, cache and workspace
/// its training passes reuse, allocated once.
pub struct BucketSteps<M: Trainable> {
    buckets: Buckets,
    batch: M::Batch,
    cache: M::Cache,
    ws: M::Workspace,
}

impl<M: Trainable> BucketSteps<M> {
    /// Steps of at most `size` examples.
    ///
    /// # Errors
    /// [`Error::Config`] when `size` is 0.
    pub fn new(size: usize) -> Result<Self> {
        Ok(BucketSteps {
            buckets: Buckets::new(size)?,
            batch: M::Batch::default(),
            cache: M::Cache::default(),
            ws: M::Workspace::default(),
        })
    }

    /// Examples of a full batch ([`Task::batch_size`]).
    pub fn size(&self) -> usize {
        self.buckets.size()
    }

    /// Cuts a new epoch's batches from examples of lengths `lens`; returns how many.
    pub fn shuffle(&mut self, lens: &[usize], rng: &mut SeqRng) -> usize {
        self.buckets.shuffle(lens, rng)
    }

    /// The batch of the last step.
    pub fn batch(&self) -> &M::Batch {
        &self.batch
    }

    /// Cuts a new epoch's batches from the examples `seqs` by their lengths; returns how many.
    pub fn shuffle_seqs<T>(&mut self, seqs: &[Vec<T>], rng: &mut SeqRng) -> usize {
        self.buckets.shuffle_seqs(seqs, rng)
    }

    /// Trains `model` on `step`: `fill` puts this rank's examples into the batch (drawing any
    /// masks of its own from the generator it is given) and says how the loss is scaled; then
    /// the forward pass, and the backward pass where the loss is finite (the loop stops on
    /// one that is not).
    ///
    /// # Errors
    /// The model's, on a batch or weights that do not fit it.
    pub fn step(
        &mut self,
        model: &M,
        mut step: Step<'_>,
        fill: impl FnOnce(Rows<'_>, &mut M::Batch, &mut RowRng) -> Scaled,
    ) -> Result<BatchLoss> {
        let Some((all, mine, mut masks)) = self.buckets.rows(&mut step) else {
            return Ok(BatchLoss::NONE);
        };
        let s = fill(Rows { all, mine }, &mut self.batch, &mut masks);
        let (params, c, ws) = (step.params, &mut self.cache, &mut self.ws);
        let loss = model.forward_train(params, &self.batch, s.scale, c, ws, &mut masks)?;
        if loss.is_finite() {
            model.backward(params, step.grads, c, ws)?;
        }
        Ok(BatchLoss {
            loss,
            examples: s.examples,
        })
    }
}

/// Batch `index` of `items` cut into consecutive batches of `size` (the last one may be
/// shorter): the steps of a task that shuffles its examples and takes them in order.
pub fn batch_at<T>(items: &[T], size: usize, index: usize) -> &[T] {
    let lo = index * size;
    &items[lo..(lo + size).min(items.len())]
}

/// This rank's share of a validation split of `n` examples, whose figures are then summed over
/// `group`; `None` on one process, or where the group has more ranks than examples (every rank
/// then scores the whole split).
pub fn validation_share(group: &Group, n: usize) -> Option<Range<usize>> {
    (group.is_distributed() && n >= group.size()).then(|| Rank::of(group).share(n))
}

/// How the losses of an epoch's steps make its training loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LossAverage {
    /// Each step reports its mean loss; the epoch's is the mean over steps.
    #[default]
    PerStep,
    /// Each step reports its summed loss; the epoch's is the sum over the examples' count
    /// (the language model's cross-entropy per token).
    PerExample,
}

/// How the current weights do on the validation data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Validation {
    /// Mean validation loss (same definition as the training loss).
    pub loss: f64,
    /// The selection score: higher is better (accuracy; minus the MSE; minus the perplexity).
    pub score: f64,
}

/// How a task's weights are named and stored in `model.safetensors`.
#[derive(Clone, Copy, Debug)]
pub struct Weights<'a> {
    /// The model's tensors: names, shapes and places in the parameter block.
    pub layout: &'a ParamLayout,
    /// The file's `format` metadata (`seqrnn-lm`, `seqrnn-forecast`…).
    pub format: &'static str,
    /// The model named in errors ("a classifier").
    pub what: &'static str,
}

impl<'a> Weights<'a> {
    /// Weights laid out by `layout`, stored with `format` metadata, named `what` in errors.
    pub fn new(layout: &'a ParamLayout, format: &'static str, what: &'static str) -> Self {
        Weights {
            layout,
            format,
            what,
        }
    }
}

/// What the loop reports and stores of a task: its weights, its score's name and how its step
/// losses add up.
#[derive(Clone, Copy, Debug)]
pub struct About<'a> {
    /// How the model's weights are named and stored.
    pub weights: Weights<'a>,
    /// Name of the validation score (`valid_<name>` in a supervised `metrics.csv`).
    pub score: &'static str,
    /// How step losses add up to an epoch's training loss.
    pub loss_average: LossAverage,
}

impl<'a> About<'a> {
    /// A task storing `weights`, scored by `score`, whose step losses add up as `loss_average`.
    pub fn new(weights: Weights<'a>, score: &'static str, loss_average: LossAverage) -> Self {
        About {
            weights,
            score,
            loss_average,
        }
    }
}

/// A task the one training loop can train: data, model and loss.
pub trait Task {
    /// Its weights, score and loss average.
    fn about(&self) -> About<'_>;
    /// Length of the parameter (and gradient) block.
    fn num_params(&self) -> usize {
        self.about().weights.layout.len()
    }
    /// Seed of the loop's generator (shuffling, dropout) for a run seeded with `seed`.
    fn generator_seed(&self, seed: u64) -> u64 {
        seed.wrapping_add(7)
    }
    /// Prepares epoch `epoch` (e.g. shuffles with `rng`, resets carried state) and returns its
    /// number of steps.
    fn start_epoch(&mut self, epoch: usize, rng: &mut SeqRng) -> usize;
    /// Rows (sequences, windows, streams) of every step's global batch. In a data-parallel
    /// run the loop shares them out among the ranks ([`Group::rows`]), and refuses a batch
    /// with fewer rows than ranks.
    fn batch_size(&self) -> usize;
    /// This process's rows of every step's batch (all of them on one process), told once
    /// before training to a task that keeps buffers per row from one step to the next (the
    /// language model's columns and their carried state). Nothing by default: a task takes its
    /// rows at each step ([`Step::rows`]).
    fn own_rows(&mut self, _rows: Range<usize>) {}
    /// Forward and backward pass on step `step.index` of the current epoch at `step.params`:
    /// accumulates (`+=`) the gradient of the mean step loss into `step.grads`. A non-finite loss may be returned without a backward pass: the loop stops on it.
    ///
    /// In a data-parallel run the step covers this rank's rows only ([`Step::rows`]), and the
    /// loss, its example count and the gradient are this rank's shares: summed over the ranks
    /// they are those of the whole batch (the mean is taken over the global batch, see
    /// [`share_of_mean`]). Dropout masks come from [`Step::share`] or [`Step::rows`], so they
    /// do not depend on the rank count.
    fn train_step(&mut self, step: Step<'_>) -> Result<BatchLoss>;
    /// Factor on the learning rate of step `index` of the current epoch (e.g. a window's
    /// length over the nominal one, for variable-length BPTT); 1 by default.
    fn lr_scale(&self, _index: usize) -> f64 {
        1.0
    }
    /// Scores `params` on the validation data; called on every rank of `group`, which may each
    /// score a share and sum the figures over the group.
    fn validate(&mut self, params: &[f32], group: &Group) -> Result<Validation>;
    /// The weights as named tensors, for `model.safetensors`.
    fn tensors(&self, params: &[f32]) -> TensorFile {
        let w = self.about().weights;
        w.layout.to_file(params, w.format)
    }
    /// Reads weights written by [`Task::tensors`] back (`path` names the file in errors); 8-bit
    /// weights are refused ([`crate::error::Error::Quantized`]): they are for inference only.
    fn params_from(&self, file: &TensorFile, path: &Path) -> Result<Vec<f32>> {
        if !file.int8.is_empty() {
            return Err(crate::error::Error::Quantized {
                path: path.to_path_buf(),
            });
        }
        let w = self.about().weights;
        w.layout.from_file(file, path, w.what)
    }
    /// State carried from one step to the next inside an epoch (the language model's recurrent
    /// state), by name, for the whole batch (gathered over `group`, on every rank); saved in
    /// mid-epoch checkpoints.
    fn carried(&self, _group: &Group) -> BTreeMap<String, Vec<f32>> {
        BTreeMap::new()
    }
    /// Restores state saved by [`Task::carried`] (for the whole batch: a rank takes its rows)
    /// after [`Task::start_epoch`] on resume.
    fn restore_carried(&mut self, _carried: &BTreeMap<String, Vec<f32>>) -> Result<()> {
        Ok(())
    }
    /// What a checkpoint must match to be resumed with this task. The loop saves its parts in
    /// every checkpoint and refuses to resume one whose parts differ ([`compare_identity`]);
    /// the ranks of a data-parallel run must agree on them.
    fn identity(&self) -> Identity;
    /// A closer look at a saved identity, before the loop compares the parts named by
    /// [`Identity::meanings`]: a task may refuse a part it compares itself with a finer
    /// message (the language model names both architectures). Accepts by default.
    fn check_identity(&self, _saved: &serde_json::Value) -> Result<()> {
        Ok(())
    }
    /// Writes the run's metrics files (`metrics.csv`, a curve) from the rows so far.
    fn write_metrics(&self, run: &crate::run::RunDir, rows: &[FitEpoch]) -> Result<()> {
        let about = self.about();
        crate::train::metrics::write_fit_metrics(&run.metrics_path(), about.score, rows)?;
        #[cfg(feature = "plots")]
        loss_curve(run, about.weights.what, rows)?;
        Ok(())
    }
}

/// What a checkpoint must match to be resumed with a task ([`Task::identity`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// An object of named parts (the model, fingerprints of the training data), saved in every
    /// checkpoint.
    pub parts: serde_json::Value,
    /// The parts compared on resume, each with what a difference means ("the training file is
    /// not the one the run was trained on"), for the refusal `cannot resume: …`.
    pub meanings: Vec<(&'static str, &'static str)>,
}

/// Refuses a resume whose saved identity parts `saved` differ from `mine` under one of its
/// [`Identity::meanings`], naming what the first difference means. Parts the saved identity
/// lacks (a checkpoint of an earlier version) are not compared.
///
/// # Errors
/// [`Error::Config`] naming the first difference.
pub fn compare_identity(mine: &Identity, saved: &serde_json::Value) -> Result<()> {
    for (key, what) in &mine.meanings {
        if saved.get(*key).is_some_and(|v| *v != mine.parts[*key]) {
            return Err(Error::Config(format!("cannot resume: {what}")));
        }
    }
    Ok(())
}

/// The `model` part of an identity and what its difference means, as most tasks word it.
pub const MODEL_PART: (&str, &str) = (
    "model",
    "the checkpoint is from another model configuration than the run's",
);

/// The bytes of a training set, as the identity of most tasks fingerprints them: token ids and
/// features (little-endian), each example's sequences closed by [`Fingerprint::end`] where the
/// task marks them.
#[derive(Clone, Debug, Default)]
pub struct Fingerprint(Vec<u8>);

impl Fingerprint {
    /// Adds the token ids `ids`.
    pub fn ids(&mut self, ids: &[u32]) -> &mut Self {
        self.0.extend(ids.iter().flat_map(|i| i.to_le_bytes()));
        self
    }

    /// Adds the end of a sequence (`u32::MAX`).
    pub fn end(&mut self) -> &mut Self {
        self.ids(&[u32::MAX])
    }

    /// Adds the features `x` (their bits).
    pub fn f32s(&mut self, x: &[f32]) -> &mut Self {
        self.0
            .extend(x.iter().flat_map(|v| v.to_bits().to_le_bytes()));
        self
    }

    /// The identity of most tasks: the model's configuration and a fingerprint of the bytes
    /// added, `{"model": …, "train": "<16 hex digits>"}`, with [`MODEL_PART`] and what a
    /// different training set means (`train`: "the training file is not the one the run was
    /// trained on").
    pub fn identity(&self, model: &impl serde::Serialize, train: &'static str) -> Identity {
        Identity {
            parts: serde_json::json!({
                "model": model,
                "train": format!("{:016x}", crate::dist::fingerprint(&self.0)),
            }),
            meanings: vec![MODEL_PART, ("train", train)],
        }
    }
}

/// `curve.svg` of a supervised run: training and validation loss at every epoch's end.
#[cfg(feature = "plots")]
fn loss_curve(run: &crate::run::RunDir, what: &str, rows: &[FitEpoch]) -> Result<()> {
    use crate::report::plot::{line_chart_svg, Series};
    let ends = || rows.iter().filter(|r| r.epoch_end);
    let points = |loss: fn(&FitEpoch) -> f64| -> Vec<(f64, f64)> {
        ends()
            .map(|r| (r.epoch as f64, loss(r)))
            .filter(|p| p.1.is_finite())
            .collect()
    };
    let (train, valid) = (points(|r| r.train_loss), points(|r| r.valid_loss));
    if train.is_empty() && valid.is_empty() {
        return Ok(());
    }
    line_chart_svg(
        &run.curve_path(),
        &format!("learning curve of {what}"),
        "epoch",
        "loss",
        &Series::train_and_valid(&train, &valid),
    )
}

/// One training step, as reported to [`Progress`].
#[derive(Clone, Debug, PartialEq)]
pub struct StepInfo {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Step within the epoch (1-based).
    pub step: usize,
    /// Steps in this epoch.
    pub steps: usize,
    /// Mean training loss of the epoch so far.
    pub loss: f64,
    /// This step's own loss (per example for [`LossAverage::PerExample`]; over the whole
    /// batch of every rank).
    pub step_loss: f64,
    /// Training examples (tokens, for a language model) per second this epoch.
    pub tokens_per_s: f64,
}

/// Receives the loop's events; the command-line tool draws progress bars from them.
pub trait Progress {
    /// A resumed run goes on from the position `state` (after its checks passed).
    fn resumed(&mut self, _state: &crate::train::checkpoint::FitState) {}
    /// An epoch begins with `steps` steps.
    fn epoch_start(&mut self, _epoch: usize, _steps: usize) {}
    /// A step finished.
    fn step(&mut self, _info: &StepInfo) {}
    /// Validation is running.
    fn validating(&mut self, _epoch: usize) {}
    /// A validation finished (inside an epoch or at its end, see [`FitEpoch::epoch_end`]);
    /// `best` says whether the weights were kept.
    fn validated(&mut self, _row: &FitEpoch, _best: bool) {}
    /// A checkpoint was written after `steps` training steps.
    fn checkpointed(&mut self, _steps: u64) {}
    /// NT-ASGD began averaging the weights after epoch `epoch`.
    fn averaging_started(&mut self, _epoch: usize) {}
    /// Whether the run should stop (e.g. after Ctrl-C). Asked before every step and after
    /// every epoch; when it answers `true` the loop writes a checkpoint and returns with
    /// [`crate::train::RunEnd::Interrupted`].
    fn should_stop(&self) -> bool {
        false
    }
}

/// A [`Progress`] that ignores everything.
pub struct Silent;
impl Progress for Silent {}

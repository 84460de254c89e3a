//! The epoch loop shared by every supervised task (forecasting, classification): Adam with
//! global-norm clipping, per-epoch validation, keep-best weights, checkpoints, a metrics file,
//! early stopping and divergence detection.
//!
//! A task implements [`SupervisedTask`]: it owns its data and model, cuts each epoch into
//! batches, runs one forward and backward pass per batch and scores the current weights on its
//! validation data. [`fit`] does everything else and writes into the run folder:
//!
//! | file | contents |
//! |---|---|
//! | `model.safetensors` | best-on-validation weights, named by the task ([`SupervisedTask::tensors`]) |
//! | `checkpoint.safetensors` | latest weights, Adam moments and the loop state ([`FitState`]) |
//! | `metrics.csv` | `epoch,lr,train_loss,valid_loss,valid_<score>,examples_per_s,seconds,step,epoch_end`, one line per validation |
//!
//! Every file is written atomically.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::dropout::{rng_from_seed, SeqRng};
use crate::error::{Error, Result};
use crate::io::tensors::{Tensor, TensorFile};
use crate::io::write_atomic;
use crate::optim::{clip_grad_norm, grad_norm, Adam, AdamConfig};
use crate::run::{save_tensors_atomic, RunDir};
use crate::train::StepInfo;

/// When training stops before its last epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EarlyStopping {
    /// Run every epoch.
    #[default]
    Off,
    /// Stop after this many epochs in a row without a better validation score.
    Patience(usize),
}

/// Settings of the shared loop. `validate()` before use.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitConfig {
    /// Adam learning rate.
    pub lr: f64,
    /// Learning-rate factor applied after each epoch (1 = constant).
    pub lr_decay: f64,
    /// Adam moments and weight decay.
    pub adam: AdamConfig,
    /// Maximum global gradient norm; `None` for no clipping.
    pub clip: Option<f64>,
    /// Epochs at most.
    pub epochs: usize,
    /// Early stopping on the validation score.
    pub early_stopping: EarlyStopping,
    /// Stop after this many steps in total (smoke tests).
    pub max_steps: Option<u64>,
    /// Seed of the loop's generator (shuffling, dropout).
    pub seed: u64,
    /// Also validate (and keep the best weights) every this many steps inside an epoch;
    /// `None` validates at epoch ends only.
    #[serde(default)]
    pub valid_every: Option<usize>,
    /// Exponential moving average of the weights with this momentum `M` (Keras' `use_ema`,
    /// `ema_momentum`): after step `t` (counted from 1), `ema = m·ema + (1 − m)·params` with
    /// `m = min(M, (1 + t) / (10 + t))`, the warm-up of TensorFlow's `ExponentialMovingAverage`
    /// with `num_updates`, so short runs are not dominated by the initial weights. Validation,
    /// the kept best weights and `model.safetensors` use the average. `None`: the raw weights.
    #[serde(default)]
    pub ema: Option<f64>,
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig {
            lr: 1e-3,
            lr_decay: 1.0,
            adam: AdamConfig::default(),
            clip: Some(5.0),
            epochs: 10,
            early_stopping: EarlyStopping::Off,
            max_steps: None,
            seed: 1,
            valid_every: None,
            ema: None,
        }
    }
}

impl FitConfig {
    /// Checks every setting.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("learning rate must be positive, got {}", self.lr));
        }
        if !(self.lr_decay > 0.0 && self.lr_decay <= 1.0) {
            return bad(format!(
                "learning-rate decay must be in (0, 1], got {}",
                self.lr_decay
            ));
        }
        if let Some(c) = self.clip {
            if !(c.is_finite() && c > 0.0) {
                return bad(format!("clip must be positive, got {c}"));
            }
        }
        if self.epochs == 0 {
            return bad("epochs must be at least 1, got 0".into());
        }
        if self.early_stopping == EarlyStopping::Patience(0) {
            return bad("patience must be at least 1 epoch, got 0".into());
        }
        if self.max_steps == Some(0) {
            return bad("max steps must be at least 1, got 0".into());
        }
        if let Some(m) = self.ema {
            if !(m > 0.0 && m < 1.0) {
                return bad(format!("EMA momentum must be in (0, 1), got {m}"));
            }
        }
        if self.valid_every == Some(0) {
            return bad("validation interval must be at least 1 step, got 0".into());
        }
        self.adam.validate()
    }

    /// Learning rate of epoch `epoch` (1-based): `lr · decay^(epoch − 1)`.
    pub fn lr_at(&self, epoch: usize) -> f64 {
        self.lr * self.lr_decay.powi(epoch.saturating_sub(1) as i32)
    }
}

/// Loss of one training batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchLoss {
    /// Mean loss over the batch (the quantity whose gradient was accumulated).
    pub loss: f64,
    /// Examples in the batch.
    pub examples: usize,
}

/// How the current weights do on the validation data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Validation {
    /// Mean validation loss (same definition as the training loss).
    pub loss: f64,
    /// The selection score: higher is better (accuracy; minus the MSE).
    pub score: f64,
}

/// A supervised task the shared loop can train: data, model and loss.
pub trait SupervisedTask {
    /// Length of the parameter (and gradient) block.
    fn num_params(&self) -> usize;
    /// Name of the validation score in `metrics.csv` (`valid_<name>`), e.g. `accuracy`.
    fn score_name(&self) -> &'static str;
    /// Prepares an epoch (e.g. shuffles batches with `rng`) and returns its number of batches.
    fn start_epoch(&mut self, epoch: usize, rng: &mut SeqRng) -> usize;
    /// Forward and backward pass on batch `index` of the current epoch: accumulates (`+=`) the
    /// gradient of the mean batch loss into `grads[P]` (zeroed by the loop before each step).
    fn train_step(
        &mut self,
        params: &[f32],
        grads: &mut [f32],
        index: usize,
        rng: &mut SeqRng,
    ) -> Result<BatchLoss>;
    /// Scores `params` on the validation data.
    fn validate(&mut self, params: &[f32]) -> Result<Validation>;
    /// The weights as named tensors, for `model.safetensors`.
    fn tensors(&self, params: &[f32]) -> TensorFile;
}

/// One row of a supervised run's `metrics.csv`: one validation, at the end of an epoch or
/// every [`FitConfig::valid_every`] steps inside it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitEpoch {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Steps taken since the start of training when this validation ran.
    pub step: u64,
    /// Whether this validation closed its epoch.
    pub epoch_end: bool,
    /// Learning rate of the epoch.
    pub lr: f64,
    /// Mean training loss over the epoch's batches so far.
    pub train_loss: f64,
    /// Validation loss after the epoch.
    pub valid_loss: f64,
    /// Validation score after the epoch (higher is better).
    pub valid_score: f64,
    /// Training examples per second.
    pub examples_per_s: f64,
    /// Seconds since the start of the epoch, this validation included.
    pub seconds: f64,
}

/// Receives the loop's events; the command-line tool draws progress from them.
pub trait FitProgress {
    /// An epoch begins with `steps` batches.
    fn epoch_start(&mut self, _epoch: usize, _steps: usize) {}
    /// A step finished; `tokens_per_s` holds examples per second and `loss` the epoch's mean.
    fn step(&mut self, _info: &StepInfo) {}
    /// Validation is running.
    fn validating(&mut self, _epoch: usize) {}
    /// A validation finished (mid-epoch or at its end, see [`FitEpoch::epoch_end`]); `best`
    /// says whether the weights were kept.
    fn epoch_end(&mut self, _row: &FitEpoch, _score_name: &str, _best: bool) {}
}

/// A [`FitProgress`] that ignores everything.
pub struct Quiet;
impl FitProgress for Quiet {}

/// The loop's position, stored in `checkpoint.safetensors`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitState {
    /// Epochs finished.
    pub epochs_done: usize,
    /// Steps taken.
    pub steps_done: u64,
    /// Best validation score so far.
    pub best_score: f64,
    /// Epoch of the best score.
    pub best_epoch: usize,
    /// Step count at the best score.
    #[serde(default)]
    pub best_step: u64,
    /// Adam's step count.
    pub adam_step: u64,
    /// Position of the loop's generator (a `u128` in decimal), so a resumed run draws what
    /// the uninterrupted one would have; empty in checkpoints that cannot be resumed.
    #[serde(default)]
    pub rng_word_pos: String,
    /// Position of the generator at the start of each finished epoch: a resume replays each
    /// epoch's preparation ([`SupervisedTask::start_epoch`]) from it, for tasks whose order
    /// carries over from one epoch to the next.
    #[serde(default)]
    pub epoch_rng_pos: Vec<String>,
    /// Whether early stopping or the step limit ended the run.
    #[serde(default)]
    pub stopped_early: bool,
    /// The metrics rows so far.
    #[serde(default)]
    pub history: Vec<FitEpoch>,
}

/// What a supervised checkpoint holds: everything [`fit_resumed`] needs to go on exactly where
/// the run stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct FitCheckpoint {
    /// Latest weights `[P]`.
    pub params: Vec<f32>,
    /// Their moving average `[P]` (empty when the run keeps none).
    pub ema: Vec<f32>,
    /// The best weights so far `[P]`.
    pub best: Vec<f32>,
    /// Adam's moments `[P]` each.
    pub adam_m: Vec<f32>,
    /// Second moment.
    pub adam_v: Vec<f32>,
    /// The loop's position.
    pub state: FitState,
}

/// What [`fit`] produced.
#[derive(Clone, Debug, PartialEq)]
pub struct FitOutcome {
    /// One row per validation.
    pub epochs: Vec<FitEpoch>,
    /// Epochs run (started).
    pub epochs_run: usize,
    /// The best-on-validation weights (also in `model.safetensors`).
    pub best_params: Vec<f32>,
    /// Best validation score and its epoch.
    pub best_score: f64,
    /// Epoch (1-based) of the best score.
    pub best_epoch: usize,
    /// Step count at the best score.
    pub best_step: u64,
    /// Steps taken.
    pub steps: u64,
    /// Whether early stopping or `max_steps` ended the run before its last epoch.
    pub stopped_early: bool,
}

/// Format tag of a supervised checkpoint.
pub const FIT_CHECKPOINT_FORMAT: &str = "seqrnn-fit-checkpoint-1";

/// Trains `params[P]` (initial weights in, last weights out) on `task`, writing
/// `model.safetensors`, `checkpoint.safetensors` and `metrics.csv` into `run` after every epoch.
///
/// # Errors
/// [`Error::Diverged`] when a loss or gradient norm becomes non-finite (the files of the last
/// finished epoch stay as they were); task and I/O errors as they come.
pub fn fit(
    task: &mut dyn SupervisedTask,
    params: &mut [f32],
    cfg: &FitConfig,
    run: &RunDir,
    progress: &mut dyn FitProgress,
) -> Result<FitOutcome> {
    fit_resumed(task, params, cfg, run, progress, None)
}

/// [`fit`], going on from `resume` (a checkpoint of the same run, [`load_fit_checkpoint`]) when
/// given: weights, Adam moments, moving average, best weights, metrics and the generator's
/// position are restored and training starts at the epoch after the checkpoint's, so the
/// result is the one the uninterrupted run would have given (same thread count). `cfg` may
/// allow more epochs than the run first had.
///
/// # Errors
/// As [`fit`]; [`Error::Config`] when `resume` does not fit the task or `cfg` (other
/// parameter count, a moving average kept or not, no generator position), or when the run is
/// already complete for `cfg.epochs`.
pub fn fit_resumed(
    task: &mut dyn SupervisedTask,
    params: &mut [f32],
    cfg: &FitConfig,
    run: &RunDir,
    progress: &mut dyn FitProgress,
    resume: Option<FitCheckpoint>,
) -> Result<FitOutcome> {
    cfg.validate()?;
    let n = task.num_params();
    if params.len() != n {
        return Err(Error::Shape(format!(
            "parameter block has {} values, the task needs {n}",
            params.len()
        )));
    }
    let mut grads = vec![0.0f32; n];
    let mut adam = Adam::new(cfg.adam, n)?;
    let mut rng = rng_from_seed(cfg.seed.wrapping_add(7));
    let mut history: Vec<FitEpoch> = Vec::new();
    let mut best = Best {
        score: f64::NEG_INFINITY,
        epoch: 0,
        step: 0,
        params: params.to_vec(),
    };
    let mut steps = 0u64;
    let mut stopped_early = false;
    let mut epochs_run = 0;
    // The moving average of the weights, when asked for: what is validated and kept.
    let mut ema: Vec<f32> = match cfg.ema {
        Some(_) => params.to_vec(),
        None => Vec::new(),
    };
    let mut first_epoch = 1;
    let mut epoch_starts: Vec<String> = Vec::new();
    if let Some(ck) = resume {
        let bad = |m: String| Err(Error::Config(m));
        let st = ck.state;
        if [&ck.params, &ck.best, &ck.adam_m, &ck.adam_v]
            .iter()
            .any(|v| v.len() != n)
            || !(ck.ema.is_empty() || ck.ema.len() == n)
        {
            return bad(format!(
                "the checkpoint holds {} parameters, the model has {n}",
                ck.params.len()
            ));
        }
        if ck.ema.is_empty() == cfg.ema.is_some() {
            return bad("the checkpoint and the settings disagree on the moving average".into());
        }
        let older = || {
            Error::Config(
                "the checkpoint has no generator position (written by an older seqrnn): it \
                 cannot be resumed exactly"
                    .into(),
            )
        };
        let pos: u128 = st.rng_word_pos.parse().map_err(|_| older())?;
        let epoch_pos = st
            .epoch_rng_pos
            .iter()
            .map(|p| p.parse::<u128>().map_err(|_| older()))
            .collect::<Result<Vec<u128>>>()?;
        if epoch_pos.len() != st.epochs_done {
            return Err(older());
        }
        if st.stopped_early {
            return bad(format!(
                "the run stopped early after epoch {} (early stopping or a step limit): there is \
                 nothing to resume",
                st.epochs_done
            ));
        }
        if st.epochs_done >= cfg.epochs {
            return bad(format!(
                "the run is complete ({} of {} epochs): pass a larger --epochs to train on",
                st.epochs_done, cfg.epochs
            ));
        }
        params.copy_from_slice(&ck.params);
        adam.m = ck.adam_m;
        adam.v = ck.adam_v;
        adam.step = st.adam_step;
        ema = ck.ema;
        best = Best {
            score: st.best_score,
            epoch: st.best_epoch,
            step: st.best_step,
            params: ck.best,
        };
        steps = st.steps_done;
        history = st.history;
        // Replay each finished epoch's preparation (shuffles that carry over), then go on
        // from where the generator stood.
        for (e, &p) in epoch_pos.iter().enumerate() {
            rng.set_word_pos(p);
            task.start_epoch(e + 1, &mut rng);
        }
        epoch_starts = st.epoch_rng_pos;
        rng.set_word_pos(pos);
        first_epoch = st.epochs_done + 1;
        epochs_run = st.epochs_done;
    }
    for epoch in first_epoch..=cfg.epochs {
        epochs_run = epoch;
        let lr = cfg.lr_at(epoch);
        epoch_starts.push(rng.get_word_pos().to_string());
        let batches = task.start_epoch(epoch, &mut rng);
        progress.epoch_start(epoch, batches);
        let t0 = Instant::now();
        let (mut loss_sum, mut seen, mut n_batches) = (0.0f64, 0usize, 0usize);
        let mut train_s = 0.0f64;
        for i in 0..batches {
            let ts = Instant::now();
            grads.fill(0.0);
            let b = task.train_step(params, &mut grads, i, &mut rng)?;
            steps += 1;
            if !b.loss.is_finite() {
                return Err(Error::Diverged {
                    epoch,
                    step: steps,
                    what: format!("the loss is {}", b.loss),
                });
            }
            let norm = match cfg.clip {
                Some(c) => clip_grad_norm(&mut grads, c),
                None => grad_norm(&grads),
            };
            if !norm.is_finite() {
                return Err(Error::Diverged {
                    epoch,
                    step: steps,
                    what: format!("the gradient norm is {norm}"),
                });
            }
            adam.step(params, &grads, lr);
            if let Some(m) = cfg.ema {
                update_ema(&mut ema, params, ema_momentum(m, steps) as f32);
            }
            train_s += ts.elapsed().as_secs_f64();
            loss_sum += b.loss;
            n_batches += 1;
            seen += b.examples;
            progress.step(&StepInfo {
                epoch,
                step: i + 1,
                steps: batches,
                loss: loss_sum / n_batches as f64,
                tokens_per_s: seen as f64 / train_s.max(1e-9),
            });
            if cfg.max_steps.is_some_and(|m| steps >= m) {
                stopped_early = true;
                break;
            }
            let mid = cfg.valid_every.is_some_and(|k| (i + 1) % k == 0) && i + 1 < batches;
            if mid {
                let at = EpochSoFar {
                    epoch,
                    step: steps,
                    epoch_end: false,
                    lr,
                    train_loss: loss_sum / n_batches as f64,
                    examples_per_s: seen as f64 / train_s.max(1e-9),
                    started: t0,
                };
                let scored: &[f32] = if ema.is_empty() { params } else { &ema };
                let (row, improved) =
                    validate_and_keep(task, scored, &at, &mut best, run, progress)?;
                history.push(row.clone());
                write_fit_metrics(&run.metrics_path(), task.score_name(), &history)?;
                progress.epoch_end(&row, task.score_name(), improved);
            }
        }
        let at = EpochSoFar {
            epoch,
            step: steps,
            epoch_end: true,
            lr,
            train_loss: loss_sum / n_batches.max(1) as f64,
            examples_per_s: seen as f64 / train_s.max(1e-9),
            started: t0,
        };
        let scored: &[f32] = if ema.is_empty() { params } else { &ema };
        let (row, improved) = validate_and_keep(task, scored, &at, &mut best, run, progress)?;
        history.push(row.clone());
        let patience_spent = match cfg.early_stopping {
            EarlyStopping::Patience(p) => epoch - best.epoch >= p && epoch < cfg.epochs,
            EarlyStopping::Off => false,
        };
        stopped_early |= patience_spent;
        let state = FitState {
            epochs_done: epoch,
            steps_done: steps,
            best_score: best.score,
            best_epoch: best.epoch,
            best_step: best.step,
            adam_step: adam.step,
            rng_word_pos: rng.get_word_pos().to_string(),
            epoch_rng_pos: epoch_starts.clone(),
            stopped_early,
            history: history.clone(),
        };
        save_fit_checkpoint(
            &run.checkpoint_path(),
            params,
            &ema,
            &best.params,
            &adam,
            &state,
        )?;
        write_fit_metrics(&run.metrics_path(), task.score_name(), &history)?;
        progress.epoch_end(&row, task.score_name(), improved);
        if stopped_early {
            break;
        }
    }
    Ok(FitOutcome {
        epochs: history,
        epochs_run,
        best_params: best.params,
        best_score: best.score,
        best_epoch: best.epoch,
        best_step: best.step,
        steps,
        stopped_early,
    })
}

/// Where an epoch stands when it is validated.
struct EpochSoFar {
    epoch: usize,
    step: u64,
    epoch_end: bool,
    lr: f64,
    train_loss: f64,
    examples_per_s: f64,
    started: Instant,
}

/// Scores `scored[P]` on the validation data, keeps it (and writes `model.safetensors`) when it
/// beats the best so far; returns the metrics row and whether it was kept.
fn validate_and_keep(
    task: &mut dyn SupervisedTask,
    scored: &[f32],
    at: &EpochSoFar,
    best: &mut Best,
    run: &RunDir,
    progress: &mut dyn FitProgress,
) -> Result<(FitEpoch, bool)> {
    progress.validating(at.epoch);
    let v = task.validate(scored)?;
    let row = FitEpoch {
        epoch: at.epoch,
        step: at.step,
        epoch_end: at.epoch_end,
        lr: at.lr,
        train_loss: at.train_loss,
        valid_loss: v.loss,
        valid_score: v.score,
        examples_per_s: at.examples_per_s,
        seconds: at.started.elapsed().as_secs_f64(),
    };
    let improved = best.offer(&v, at.epoch, at.step, scored);
    if improved {
        save_tensors_atomic(&run.model_path(), &task.tensors(scored))?;
    }
    Ok((row, improved))
}

/// Momentum of the moving average after step `t` (from 1): `min(m, (1 + t) / (10 + t))`.
fn ema_momentum(m: f64, t: u64) -> f64 {
    m.min((1.0 + t as f64) / (10.0 + t as f64))
}

/// `ema[P] = m·ema + (1 − m)·params` (written), `params[P]` read.
fn update_ema(ema: &mut [f32], params: &[f32], m: f32) {
    let k = 1.0 - m;
    ema.iter_mut()
        .zip(params)
        .for_each(|(e, p)| *e = m * *e + k * p);
}

/// The best weights seen so far and where they were seen.
struct Best {
    score: f64,
    epoch: usize,
    step: u64,
    params: Vec<f32>,
}

impl Best {
    /// Keeps `params` when `v` beats the best score (or nothing was kept yet); says whether it
    /// did.
    fn offer(&mut self, v: &Validation, epoch: usize, step: u64, params: &[f32]) -> bool {
        let improved = v.score > self.score || self.epoch == 0;
        if improved {
            self.score = v.score;
            self.epoch = epoch;
            self.step = step;
            self.params.copy_from_slice(params);
        }
        improved
    }
}

/// Writes the latest weights, their moving average (`ema`, empty when not kept), the best
/// weights so far, Adam moments and loop state to `path` atomically.
pub fn save_fit_checkpoint(
    path: &Path,
    params: &[f32],
    ema: &[f32],
    best: &[f32],
    adam: &Adam,
    state: &FitState,
) -> Result<()> {
    let flat = |v: &[f32]| Tensor {
        shape: vec![v.len()],
        data: v.to_vec(),
    };
    let mut f = TensorFile::default();
    f.tensors.insert("params".into(), flat(params));
    f.tensors.insert("adam.m".into(), flat(&adam.m));
    f.tensors.insert("adam.v".into(), flat(&adam.v));
    if !ema.is_empty() {
        f.tensors.insert("ema".into(), flat(ema));
    }
    f.tensors.insert("best".into(), flat(best));
    let json = serde_json::to_string(state).map_err(|e| Error::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    f.metadata = BTreeMap::from([
        ("format".into(), FIT_CHECKPOINT_FORMAT.into()),
        ("state".into(), json),
    ]);
    save_tensors_atomic(path, &f)
}

/// Reads a checkpoint written by [`save_fit_checkpoint`] for a model of `n` parameters.
///
/// # Errors
/// [`Error::Format`] naming `path` when it is not a supervised checkpoint, lacks a tensor or its
/// state, or holds another number of parameters; I/O and integrity errors as
/// [`TensorFile::load`] gives them.
pub fn load_fit_checkpoint(path: &Path, n: usize) -> Result<FitCheckpoint> {
    let f = TensorFile::load(path)?;
    let bad = |message: String| Error::Format {
        path: path.to_path_buf(),
        message,
    };
    match f.metadata.get("format").map(String::as_str) {
        Some(FIT_CHECKPOINT_FORMAT) => {}
        Some(other) => {
            return Err(bad(format!(
                "checkpoint format `{other}` is not `{FIT_CHECKPOINT_FORMAT}`"
            )))
        }
        None => return Err(bad("not a seqrnn supervised checkpoint".into())),
    }
    let state: FitState = serde_json::from_str(
        f.metadata
            .get("state")
            .ok_or_else(|| bad("the checkpoint has no loop state".into()))?,
    )
    .map_err(|e| bad(format!("unreadable loop state ({e})")))?;
    let take = |name: &str, required: bool| -> Result<Vec<f32>> {
        match f.get(name) {
            Ok(t) if t.data.len() == n => Ok(t.data.clone()),
            Ok(t) => Err(bad(format!(
                "`{name}` holds {} values, the model has {n} parameters",
                t.data.len()
            ))),
            Err(_) if !required => Ok(Vec::new()),
            Err(m) => Err(bad(m)),
        }
    };
    Ok(FitCheckpoint {
        params: take("params", true)?,
        ema: take("ema", false)?,
        best: take("best", true)?,
        adam_m: take("adam.m", true)?,
        adam_v: take("adam.v", true)?,
        state,
    })
}

/// Writes `metrics.csv`: header `epoch,lr,train_loss,valid_loss,valid_<score_name>,
/// examples_per_s,seconds,step,epoch_end` and one line per validation (shortest round-trip
/// floats; `epoch_end` is 1 for the validation that closed its epoch, 0 inside it), atomically.
pub fn write_fit_metrics(path: &Path, score_name: &str, rows: &[FitEpoch]) -> Result<()> {
    let mut text = format!(
        "epoch,lr,train_loss,valid_loss,valid_{score_name},examples_per_s,seconds,step,epoch_end\n"
    );
    for r in rows {
        let _ = writeln!(
            text,
            "{},{},{},{},{},{},{},{},{}",
            r.epoch,
            r.lr,
            r.train_loss,
            r.valid_loss,
            r.valid_score,
            r.examples_per_s,
            r.seconds,
            r.step,
            u8::from(r.epoch_end)
        );
    }
    write_atomic(path, text.as_bytes())
}

/// Version of the `config.json` written by supervised runs (`seqrnn forecast`, `seqrnn classify`).
pub const TASK_FORMAT_VERSION: u32 = 1;

/// Reads the `config.json` of `run` and checks that it was written by a `task` run
/// (`"forecast"` or `"classify"`) this build can read; returns the parsed JSON.
///
/// # Errors
/// [`Error::Data`] when the folder is missing, [`Error::Io`] when its `config.json` cannot be
/// read; [`Error::Format`] naming what the folder
/// holds instead (a language-model run, another task, a newer format).
pub fn load_task_config(run: &RunDir, task: &str) -> Result<serde_json::Value> {
    let path = run.config_path();
    if !run.dir.is_dir() {
        return Err(Error::Data {
            path: run.dir.clone(),
            message: "run directory not found".into(),
        });
    }
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    let bad = |message: String| Error::Format {
        path: path.clone(),
        message,
    };
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| bad(format!("not a seqrnn run configuration ({e})")))?;
    match v.get("task").and_then(|t| t.as_str()) {
        Some(t) if t == task => {}
        Some(other) => {
            return Err(bad(format!(
                "this is a `{other}` run, not a `{task}` run: use `seqrnn {other} eval` with it"
            )))
        }
        None if v.get("tokens").is_some() => {
            return Err(bad(format!(
                "this is a language-model run, not a `{task}` run: use `seqrnn eval` or `seqrnn generate` with it"
            )))
        }
        None => return Err(bad("not a seqrnn run configuration (no `task`)".into())),
    }
    let format = v.get("format").and_then(|f| f.as_u64()).unwrap_or(0);
    if format == 0 || format > TASK_FORMAT_VERSION as u64 {
        return Err(bad(format!(
            "format {format} is not readable by this build (it reads 1 to {TASK_FORMAT_VERSION})"
        )));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    /// Least squares `min ½‖p − target‖²` as a task, one batch per epoch.
    struct Quadratic {
        target: Vec<f32>,
        blow_up_at: Option<usize>,
        epoch: usize,
        /// Adds generator noise to the gradient (so a resume must restore the generator).
        noisy: bool,
    }

    impl SupervisedTask for Quadratic {
        fn num_params(&self) -> usize {
            self.target.len()
        }
        fn score_name(&self) -> &'static str {
            "neg_loss"
        }
        fn start_epoch(&mut self, epoch: usize, _rng: &mut SeqRng) -> usize {
            self.epoch = epoch;
            2
        }
        fn train_step(
            &mut self,
            params: &[f32],
            grads: &mut [f32],
            _index: usize,
            rng: &mut SeqRng,
        ) -> Result<BatchLoss> {
            let mut loss = 0.0;
            for ((g, p), t) in grads.iter_mut().zip(params).zip(&self.target) {
                *g += p - t;
                if self.noisy {
                    *g += rng.random::<f32>() - 0.5;
                }
                loss += 0.5 * ((p - t) as f64).powi(2);
            }
            if self.blow_up_at == Some(self.epoch) {
                loss = f64::NAN;
            }
            Ok(BatchLoss { loss, examples: 1 })
        }
        fn validate(&mut self, params: &[f32]) -> Result<Validation> {
            let loss: f64 = params
                .iter()
                .zip(&self.target)
                .map(|(p, t)| 0.5 * ((p - t) as f64).powi(2))
                .sum();
            Ok(Validation { loss, score: -loss })
        }
        fn tensors(&self, params: &[f32]) -> TensorFile {
            let mut f = TensorFile::default();
            f.tensors.insert(
                "p".into(),
                Tensor {
                    shape: vec![params.len()],
                    data: params.to_vec(),
                },
            );
            f
        }
    }

    fn tmp(name: &str) -> RunDir {
        let d = std::env::temp_dir().join(format!("seqrnn-fit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        RunDir::new(d)
    }

    #[test]
    fn converges_keeps_best_and_writes_files() {
        let run = tmp("ok");
        let mut task = Quadratic {
            target: vec![0.5, -0.25, 1.0],
            blow_up_at: None,
            epoch: 0,
            noisy: false,
        };
        let mut p = vec![0.0; 3];
        let cfg = FitConfig {
            lr: 0.05,
            epochs: 30,
            ..FitConfig::default()
        };
        let out = fit(&mut task, &mut p, &cfg, &run, &mut Quiet).unwrap();
        assert!(out.best_score > -1e-3, "{}", out.best_score);
        assert_eq!(out.epochs.len(), 30);
        let m = std::fs::read_to_string(run.metrics_path()).unwrap();
        assert!(m.starts_with("epoch,lr,train_loss,valid_loss,valid_neg_loss,"));
        assert_eq!(m.lines().count(), 31);
        let saved = TensorFile::load(&run.model_path()).unwrap();
        assert_eq!(saved.get("p").unwrap().data, out.best_params);
        let ck = TensorFile::load(&run.checkpoint_path()).unwrap();
        assert_eq!(
            ck.metadata.get("format").map(String::as_str),
            Some(FIT_CHECKPOINT_FORMAT)
        );
    }

    #[test]
    fn early_stopping_and_divergence() {
        let run = tmp("stop");
        // Already at the optimum: no epoch improves on the first, so patience 2 stops at 3.
        let mut task = Quadratic {
            target: vec![0.0; 2],
            blow_up_at: None,
            epoch: 0,
            noisy: false,
        };
        let cfg = FitConfig {
            epochs: 10,
            early_stopping: EarlyStopping::Patience(2),
            ..FitConfig::default()
        };
        let out = fit(&mut task, &mut [0.0, 0.0], &cfg, &run, &mut Quiet).unwrap();
        assert!(out.stopped_early);
        assert_eq!(out.epochs.len(), 3);
        let mut task = Quadratic {
            target: vec![1.0; 2],
            blow_up_at: Some(2),
            epoch: 0,
            noisy: false,
        };
        let err = fit(&mut task, &mut [0.0, 0.0], &cfg, &run, &mut Quiet).unwrap_err();
        assert!(matches!(err, Error::Diverged { epoch: 2, .. }), "{err}");
        for bad in [
            FitConfig { lr: 0.0, ..cfg },
            FitConfig { epochs: 0, ..cfg },
            FitConfig {
                early_stopping: EarlyStopping::Patience(0),
                ..cfg
            },
            FitConfig {
                clip: Some(-1.0),
                ..cfg
            },
            FitConfig {
                valid_every: Some(0),
                ..cfg
            },
        ] {
            assert!(bad.validate().is_err());
        }
    }

    #[test]
    fn validation_inside_epochs_keeps_the_best_step() {
        // Two steps an epoch, validation after every step: the first step of each epoch is
        // validated inside it, the second at its end.
        let run = tmp("mid");
        let mut task = Quadratic {
            target: vec![0.5, -0.25],
            blow_up_at: None,
            epoch: 0,
            noisy: false,
        };
        let cfg = FitConfig {
            lr: 0.05,
            epochs: 3,
            valid_every: Some(1),
            ..FitConfig::default()
        };
        let out = fit(&mut task, &mut [0.0, 0.0], &cfg, &run, &mut Quiet).unwrap();
        assert_eq!(out.epochs_run, 3);
        let kinds: Vec<(usize, u64, bool)> = out
            .epochs
            .iter()
            .map(|r| (r.epoch, r.step, r.epoch_end))
            .collect();
        assert_eq!(
            kinds,
            [
                (1, 1, false),
                (1, 2, true),
                (2, 3, false),
                (2, 4, true),
                (3, 5, false),
                (3, 6, true)
            ]
        );
        // Adam keeps walking towards the target: the last step is the best.
        assert_eq!((out.best_epoch, out.best_step), (3, 6));
        let m = std::fs::read_to_string(run.metrics_path()).unwrap();
        assert_eq!(m.lines().count(), 7);
        assert!(m.lines().nth(1).unwrap().ends_with(",1,0"), "{m}");
        assert!(m.lines().nth(2).unwrap().ends_with(",2,1"), "{m}");
        // Scores are strictly better each time, so the kept weights are the last ones.
        let saved = TensorFile::load(&run.model_path()).unwrap();
        assert_eq!(saved.get("p").unwrap().data, out.best_params);
    }

    #[test]
    fn moving_average_is_what_is_scored_and_kept() {
        let run = tmp("ema");
        let target = vec![1.0f32, -1.0];
        let mut task = Quadratic {
            target: target.clone(),
            blow_up_at: None,
            epoch: 0,
            noisy: false,
        };
        let cfg = FitConfig {
            lr: 0.1,
            epochs: 3,
            ema: Some(0.5),
            ..FitConfig::default()
        };
        let mut p = vec![0.0f32; 2];
        let out = fit(&mut task, &mut p, &cfg, &run, &mut Quiet).unwrap();
        // Replay Adam's path to get the average by hand: p after each of the 6 steps.
        let mut raw = vec![0.0f32; 2];
        let mut adam = Adam::new(cfg.adam, 2).unwrap();
        let mut ema = raw.clone();
        for t in 1..=6u64 {
            let g: Vec<f32> = raw.iter().zip(&target).map(|(p, t)| p - t).collect();
            adam.step(&mut raw, &g, 0.1);
            // Warm-up: (1 + t) / (10 + t) stays below 0.5 for these six steps.
            let m = (1.0 + t as f32) / (10.0 + t as f32);
            assert_eq!(ema_momentum(0.5, t) as f32, m);
            update_ema(&mut ema, &raw, m);
        }
        assert_eq!(ema_momentum(0.5, 9), 0.5);
        assert_eq!(p, raw, "the loop's own weights are the raw ones");
        assert_eq!(out.best_params, ema, "the average lags behind and is kept");
        assert_ne!(out.best_params, raw);
        let saved = TensorFile::load(&run.model_path()).unwrap();
        assert_eq!(saved.get("p").unwrap().data, ema);
        let ck = TensorFile::load(&run.checkpoint_path()).unwrap();
        assert_eq!(ck.get("ema").unwrap().data, ema);
        assert!(FitConfig {
            ema: Some(1.0),
            ..cfg
        }
        .validate()
        .is_err());
    }

    #[test]
    fn resumed_run_ends_as_the_uninterrupted_one() {
        let task = || Quadratic {
            target: vec![0.5, -0.25, 2.0],
            blow_up_at: None,
            epoch: 0,
            noisy: true,
        };
        let cfg = FitConfig {
            lr: 0.05,
            epochs: 5,
            valid_every: Some(1),
            ema: Some(0.6),
            seed: 9,
            ..FitConfig::default()
        };
        let whole_run = tmp("whole");
        let mut whole = vec![0.0f32; 3];
        let a = fit(&mut task(), &mut whole, &cfg, &whole_run, &mut Quiet).unwrap();
        // The same run, stopped after 2 epochs and resumed to 5.
        let part_run = tmp("part");
        let mut part = vec![0.0f32; 3];
        let first = FitConfig { epochs: 2, ..cfg };
        fit(&mut task(), &mut part, &first, &part_run, &mut Quiet).unwrap();
        let ck = load_fit_checkpoint(&part_run.checkpoint_path(), 3).unwrap();
        assert_eq!(ck.state.epochs_done, 2);
        let mut again = vec![9.0f32; 3];
        let b = fit_resumed(
            &mut task(),
            &mut again,
            &cfg,
            &part_run,
            &mut Quiet,
            Some(ck),
        )
        .unwrap();
        assert_eq!(again, whole);
        assert_eq!(b.best_params, a.best_params);
        assert_eq!(
            (b.best_epoch, b.best_step, b.steps),
            (a.best_epoch, a.best_step, a.steps)
        );
        assert_eq!(b.epochs.len(), a.epochs.len());
        for (x, y) in a.epochs.iter().zip(&b.epochs) {
            assert_eq!(
                (x.epoch, x.step, x.valid_score),
                (y.epoch, y.step, y.valid_score)
            );
        }
        for f in [whole_run.model_path(), part_run.model_path()] {
            assert_eq!(
                TensorFile::load(&f).unwrap().get("p").unwrap().data,
                a.best_params
            );
        }
        // A complete run, or one checkpoint for another model or settings, is refused.
        let ck = || load_fit_checkpoint(&part_run.checkpoint_path(), 3).unwrap();
        let refuse = |c: &FitConfig, ck: FitCheckpoint, needle: &str| {
            let err = fit_resumed(
                &mut task(),
                &mut [0.0; 3],
                c,
                &part_run,
                &mut Quiet,
                Some(ck),
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains(needle), "{err}");
        };
        refuse(&cfg, ck(), "complete (5 of 5 epochs)");
        refuse(
            &FitConfig {
                epochs: 6,
                ema: None,
                ..cfg
            },
            ck(),
            "moving average",
        );
        let mut old = ck();
        old.state.rng_word_pos.clear();
        refuse(&FitConfig { epochs: 6, ..cfg }, old, "older seqrnn");
        let mut stopped = ck();
        stopped.state.stopped_early = true;
        refuse(
            &FitConfig { epochs: 6, ..cfg },
            stopped,
            "stopped early after epoch 5",
        );
        let err = load_fit_checkpoint(&part_run.checkpoint_path(), 4).unwrap_err();
        assert!(err.to_string().contains("4 parameters"), "{err}");
        let err = load_fit_checkpoint(&part_run.model_path(), 3).unwrap_err();
        assert!(err.to_string().contains("supervised checkpoint"), "{err}");
    }
}

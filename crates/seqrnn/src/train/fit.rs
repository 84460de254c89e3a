//! The one training loop of every task (language models, forecasting, classification, and
//! whatever implements [`Task`]): SGD or Adam, a step-decay learning-rate schedule, global-norm
//! clipping, divergence detection, validation at epoch ends and every N steps, keep-best
//! weights, a moving average of the weights, early stopping, checkpoints at epoch ends and
//! every N steps (with the task's carried state), exact resume, and a stop on request
//! (Ctrl-C) that writes a checkpoint first.
//!
//! [`fit()`] writes into the run folder ([`Run`]):
//!
//! | file | contents |
//! |---|---|
//! | `model.safetensors` | best-on-validation weights, named by the task ([`Task::tensors`]) |
//! | `checkpoint.safetensors` | everything a resume needs ([`crate::train::checkpoint`]) |
//! | `metrics.csv` (and a curve) | one line per validation ([`Task::write_metrics`]) |
//! | `config.json` | the run's settings, written once the first checkpoint is on disk |
//!
//! Every file is written atomically. Resuming from any checkpoint, with the same thread count,
//! ends bit for bit as the uninterrupted run.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::dist::{fingerprint, fingerprint_f32, Group};
use crate::dropout::{rng_from_seed, SeqRng};
use crate::error::{Error, Result};
use crate::io::tensors::TensorFile;
use crate::optim::{clip_grad_norm, grad_norm, sgd_step, Adam, AdamConfig};
use crate::report::metrics::read_timings;
use crate::run::Run;
use crate::train::checkpoint::{
    checkpoint_bytes, checkpoint_from_bytes, load_checkpoint, Checkpoint, FitEpoch, FitState,
    PartialEpoch,
};
use crate::train::task::{
    compare_identity, BatchLoss, LossAverage, Progress, Rank, Step, StepInfo, Task, Validation,
};

/// Steps between two checks that the ranks of a data-parallel run hold the same weights.
pub const REPLICA_CHECK_EVERY: u64 = 50;

/// Which optimiser updates the weights.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// Plain SGD (Zaremba et al.).
    Sgd,
    /// Adam with the given moments and weight decay.
    Adam(AdamConfig),
}

impl Default for Optimizer {
    fn default() -> Self {
        Optimizer::Adam(AdamConfig::default())
    }
}

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

/// Which checkpoints a run keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeepCheckpoints {
    /// Only the latest, `checkpoint.safetensors`.
    #[default]
    Latest,
    /// The latest, and a copy of each epoch's as `checkpoints/epoch-NNN.safetensors`.
    Epochs,
}

/// Settings of the loop. `validate()` before use.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "FitConfigFile")]
pub struct FitConfig {
    /// Initial learning rate.
    pub lr: f64,
    /// Factor applied to the learning rate each epoch after `decay_after` epochs (1 = none).
    pub lr_decay: f64,
    /// Epochs run at the initial learning rate (at least 1).
    pub decay_after: usize,
    /// Optimiser.
    pub optimizer: Optimizer,
    /// Maximum global gradient norm; `None` for no clipping.
    pub clip: Option<f64>,
    /// Epochs at most.
    pub epochs: usize,
    /// Early stopping on the validation score.
    pub early_stopping: EarlyStopping,
    /// Stop after this many steps in total; the epoch is validated and checkpointed, and a
    /// resume goes on from the next epoch.
    pub max_steps: Option<u64>,
    /// Seed of the loop's generator (shuffling, dropout), through [`Task::generator_seed`].
    pub seed: u64,
    /// Also validate (and keep the best weights) every this many steps inside an epoch;
    /// `None` validates at epoch ends only.
    pub valid_every: Option<usize>,
    /// Exponential moving average of the weights with this momentum `M` (Keras' `use_ema`,
    /// `ema_momentum`): after step `t` (counted from 1), `ema = m·ema + (1 − m)·params` with
    /// `m = min(M, (1 + t) / (10 + t))`, the warm-up of TensorFlow's `ExponentialMovingAverage`
    /// with `num_updates`. Validation, the kept best weights and `model.safetensors` use the
    /// average. `None`: the raw weights.
    pub ema: Option<f64>,
    /// Also write a checkpoint every this many steps inside an epoch; `None`: at epoch ends.
    pub checkpoint_every: Option<u64>,
    /// Which checkpoints stay on disk.
    pub keep: KeepCheckpoints,
    /// L2 weight decay of SGD, added to the (clipped) gradient as `wd · params` (PyTorch's
    /// `SGD(weight_decay=…)`); Adam carries its own.
    pub weight_decay: f64,
    /// Non-monotonically triggered averaged SGD (Merity et al. 2017); `None`: plain SGD.
    pub asgd: Option<NtAsgd>,
}

/// Non-monotonically triggered averaged SGD: SGD until an epoch's validation loss is worse than
/// the best of those before the last `nonmono` epochs, then SGD steps with a running uniform
/// average of the weights from that step on. Validation, the kept best weights and
/// `model.safetensors` use the average once it exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NtAsgd {
    /// Epochs of non-monotone patience (AWD-LSTM's `nonmono`, 5).
    pub nonmono: usize,
}

impl NtAsgd {
    /// Whether averaging starts after an epoch whose validation loss is `current`, given the
    /// validation losses of the epochs before it (`previous`, oldest first): there are more
    /// than `nonmono` of them and `current` is above the best of all but the last `nonmono`.
    pub fn triggers(&self, previous: &[f64], current: f64) -> bool {
        previous.len() > self.nonmono
            && previous[..previous.len() - self.nonmono]
                .iter()
                .any(|&best| current > best)
    }
}

/// `FitConfig` as stored in `config.json`, also in the form earlier versions wrote (an `adam`
/// field instead of `optimizer`, fewer fields).
#[derive(Deserialize)]
struct FitConfigFile {
    lr: f64,
    lr_decay: f64,
    #[serde(default = "one")]
    decay_after: usize,
    #[serde(default)]
    optimizer: Option<Optimizer>,
    #[serde(default)]
    adam: Option<AdamConfig>,
    clip: Option<f64>,
    epochs: usize,
    #[serde(default)]
    early_stopping: EarlyStopping,
    #[serde(default)]
    max_steps: Option<u64>,
    seed: u64,
    #[serde(default)]
    valid_every: Option<usize>,
    #[serde(default)]
    ema: Option<f64>,
    #[serde(default)]
    checkpoint_every: Option<u64>,
    #[serde(default)]
    keep: KeepCheckpoints,
    #[serde(default)]
    weight_decay: f64,
    #[serde(default)]
    asgd: Option<NtAsgd>,
}

fn one() -> usize {
    1
}

impl From<FitConfigFile> for FitConfig {
    fn from(f: FitConfigFile) -> Self {
        FitConfig {
            lr: f.lr,
            lr_decay: f.lr_decay,
            decay_after: f.decay_after,
            optimizer: f
                .optimizer
                .or(f.adam.map(Optimizer::Adam))
                .unwrap_or_default(),
            clip: f.clip,
            epochs: f.epochs,
            early_stopping: f.early_stopping,
            max_steps: f.max_steps,
            seed: f.seed,
            valid_every: f.valid_every,
            ema: f.ema,
            checkpoint_every: f.checkpoint_every,
            keep: f.keep,
            weight_decay: f.weight_decay,
            asgd: f.asgd,
        }
    }
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig {
            lr: 1e-3,
            lr_decay: 1.0,
            decay_after: 1,
            optimizer: Optimizer::default(),
            clip: Some(5.0),
            epochs: 10,
            early_stopping: EarlyStopping::Off,
            max_steps: None,
            seed: 1,
            valid_every: None,
            ema: None,
            checkpoint_every: None,
            keep: KeepCheckpoints::Latest,
            weight_decay: 0.0,
            asgd: None,
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
        if self.checkpoint_every == Some(0) {
            return bad("the checkpoint interval must be at least 1 step, got 0".into());
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!(
                "weight decay must be a finite number ≥ 0, got {}",
                self.weight_decay
            ));
        }
        let adam = matches!(self.optimizer, Optimizer::Adam(_));
        if adam && self.weight_decay > 0.0 {
            return bad("with Adam, weight decay is Adam's own setting".into());
        }
        if let Some(a) = self.asgd {
            if a.nonmono == 0 {
                return bad("the NT-ASGD patience (nonmono) must be at least 1 epoch".into());
            }
            if adam {
                return bad("averaged SGD (NT-ASGD) needs the SGD optimiser, not Adam".into());
            }
            if self.ema.is_some() {
                return bad("choose one weight average: NT-ASGD or the moving average".into());
            }
        }
        match self.optimizer {
            Optimizer::Adam(a) => a.validate(),
            Optimizer::Sgd => Ok(()),
        }
    }

    /// Learning rate of epoch `epoch` (1-based): `lr · decay^max(epoch − decay_after, 0)`.
    pub fn lr_at(&self, epoch: usize) -> f64 {
        let n = epoch.saturating_sub(self.decay_after);
        self.lr * self.lr_decay.powi(n as i32)
    }
}

/// How a training run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// Every epoch ran.
    Completed,
    /// Early stopping ended it (the validation score stopped improving).
    EarlyStopped,
    /// [`FitConfig::max_steps`] ended it (the last epoch was cut short).
    MaxSteps,
    /// [`Progress::should_stop`] asked it to stop; a checkpoint holds the position.
    Interrupted,
}

/// What [`fit()`] produced.
#[derive(Clone, Debug, PartialEq)]
pub struct FitOutcome {
    /// One row per validation, including those restored on resume.
    pub epochs: Vec<FitEpoch>,
    /// Epochs run (started).
    pub epochs_run: usize,
    /// The best-on-validation weights (also in `model.safetensors`); empty when the run was
    /// interrupted before its first validation.
    pub best_params: Vec<f32>,
    /// Best validation score.
    pub best_score: f64,
    /// Epoch (1-based) of the best score.
    pub best_epoch: usize,
    /// Step count at the best score.
    pub best_step: u64,
    /// Steps taken.
    pub steps: u64,
    /// How the run ended.
    pub end: RunEnd,
    /// Seconds this process spent summing gradients over the ranks of a data-parallel run
    /// (0 on one process).
    pub allreduce_seconds: f64,
}

impl FitOutcome {
    /// Whether early stopping or the step limit ended the run before its last epoch.
    pub fn stopped_early(&self) -> bool {
        matches!(self.end, RunEnd::EarlyStopped | RunEnd::MaxSteps)
    }
}

/// Trains `params[P]` (initial weights in, last weights out) on `task` into `run`: from
/// scratch for a fresh run, from its checkpoint for a resumed one ([`Run::resume`]; `params`'
/// values are then replaced by the checkpoint's). `cfg` may allow more epochs than the run
/// first had.
///
/// # Errors
/// [`Error::Diverged`] when a loss or gradient norm becomes non-finite (the last checkpoint
/// stays); [`Error::Config`] when the checkpoint does not fit the task or `cfg`, or the run is
/// finished ([`Run::is_finished`]) with no epochs left (an unfinished one whose epochs are all
/// done trains nothing and returns its outcome); task and I/O errors as they come. A fresh run that fails before a checkpoint
/// past its initial one is removed from the folder ([`Run::abandon`]).
pub fn fit(
    task: &mut dyn Task,
    params: &mut [f32],
    cfg: &FitConfig,
    run: &Run,
    progress: &mut dyn Progress,
) -> Result<FitOutcome> {
    cfg.validate()?;
    let n = task.num_params();
    if params.len() != n {
        return Err(Error::Shape(format!(
            "parameter block has {} values, the task needs {n}",
            params.len()
        )));
    }
    let adam = match cfg.optimizer {
        Optimizer::Adam(a) => Some(Adam::new(a, n)?),
        Optimizer::Sgd => None,
    };
    let mut lp = Loop::new(task, cfg, run, progress, params, adam);
    let result = lp.run(params);
    if result.is_err() && lp.saved_steps == 0 {
        run.abandon();
    }
    result
}

/// The loop's working state.
struct Loop<'a> {
    task: &'a mut dyn Task,
    cfg: &'a FitConfig,
    run: &'a Run,
    progress: &'a mut dyn Progress,
    /// `grads[P]`, zeroed before each step.
    grads: Vec<f32>,
    adam: Option<Adam>,
    rng: SeqRng,
    /// Moving average `[P]` of the weights, when kept.
    ema: Option<Vec<f32>>,
    state: FitState,
    history: Vec<FitEpoch>,
    /// The best weights, when this process produced them.
    best: Option<Vec<f32>>,
    /// Steps done when the last checkpoint was written.
    saved_steps: u64,
    /// The processes training together (the run's).
    group: Group,
    /// This process's place in `group`.
    rank: Rank,
    /// Seconds spent in the gradient allreduce.
    allreduce_seconds: f64,
}

/// An epoch in progress.
struct EpochRun {
    epoch: usize,
    lr: f64,
    steps: usize,
    acc: PartialEpoch,
    /// Examples of the steps timed in `acc.train_seconds` (those of this process).
    timed: u64,
    started: Instant,
}

impl EpochRun {
    /// Mean training loss so far.
    fn train_loss(&self, avg: LossAverage) -> f64 {
        match avg {
            LossAverage::PerStep => self.acc.loss_sum / self.acc.step.max(1) as f64,
            LossAverage::PerExample => self.acc.loss_sum / self.acc.examples as f64,
        }
    }
    fn seconds(&self) -> f64 {
        self.acc.seconds + self.started.elapsed().as_secs_f64()
    }
    fn examples_per_s(&self) -> f64 {
        self.timed as f64 / self.acc.train_seconds.max(1e-9)
    }
    /// The position after `step` steps, for a checkpoint.
    fn position(&self) -> PartialEpoch {
        PartialEpoch {
            seconds: self.seconds(),
            ..self.acc.clone()
        }
    }
}

/// What ends an epoch besides its last step.
enum Stop {
    Not,
    MaxSteps,
    Interrupted,
}

impl<'a> Loop<'a> {
    fn new(
        task: &'a mut dyn Task,
        cfg: &'a FitConfig,
        run: &'a Run,
        progress: &'a mut dyn Progress,
        params: &[f32],
        adam: Option<Adam>,
    ) -> Self {
        let rng = rng_from_seed(task.generator_seed(cfg.seed));
        Loop {
            grads: vec![0.0; params.len()],
            adam,
            rng,
            ema: cfg.ema.map(|_| params.to_vec()),
            state: FitState {
                epochs_done: 0,
                steps_done: 0,
                examples_seen: 0,
                best_score: f64::NEG_INFINITY,
                best_epoch: 0,
                best_step: 0,
                adam_step: 0,
                averaging_since: None,
                rng_word_pos: String::new(),
                epoch_rng_pos: Vec::new(),
                stopped_early: false,
                partial: None,
            },
            history: Vec::new(),
            best: None,
            saved_steps: 0,
            group: run.group().clone(),
            rank: Rank::of(run.group()),
            allreduce_seconds: 0.0,
            task,
            cfg,
            run,
            progress,
        }
    }

    fn run(&mut self, params: &mut [f32]) -> Result<FitOutcome> {
        let rows = self
            .group
            .rows(self.task.batch_size(), "the training batch (--batch)");
        self.task.own_rows(self.group.agree(rows)?);
        self.check_same_settings()?;
        let mut resumed = None;
        if self.run.is_fresh() {
            // The initial checkpoint first, then config.json: a killed run is either not a
            // run yet (no config.json) or one that a resume can continue.
            self.save_checkpoint(params, None)?;
            self.run.write_config()?;
        } else {
            let ck = self.read_checkpoint(params.len())?;
            resumed = self.restore(params, ck)?;
            self.run.write_config()?;
            self.progress.resumed(&self.state);
        }
        self.check_replicas(params)?;
        let mut end = RunEnd::Completed;
        let mut epochs_run = self.state.epochs_done;
        // A run that stopped early trains no further (it is resumed only to be finished).
        let last = match self.state.stopped_early {
            true => {
                end = RunEnd::EarlyStopped;
                self.state.epochs_done
            }
            false => self.cfg.epochs,
        };
        for epoch in self.state.epochs_done + 1..=last {
            epochs_run = epoch;
            let mut e = match resumed.take() {
                Some(r) => r,
                None => self.start_epoch(epoch),
            };
            let stop = self.train_epoch(params, &mut e)?;
            if let Stop::Interrupted = stop {
                end = RunEnd::Interrupted;
                break;
            }
            self.end_epoch(params, &e)?;
            if let Stop::MaxSteps = stop {
                end = RunEnd::MaxSteps;
                break;
            }
            if self.state.stopped_early {
                end = RunEnd::EarlyStopped;
                break;
            }
            if epoch < self.cfg.epochs && self.stop_requested() {
                end = RunEnd::Interrupted;
                break;
            }
        }
        // Written again in case a run was stopped between its last checkpoint and these files.
        if !self.history.is_empty() {
            self.write_metrics()?;
        }
        self.outcome(end, epochs_run)
    }

    fn start_epoch(&mut self, epoch: usize) -> EpochRun {
        self.state
            .epoch_rng_pos
            .push(self.rng.get_word_pos().to_string());
        let steps = self.task.start_epoch(epoch, &mut self.rng);
        self.new_epoch_run(epoch, steps, None)
    }

    fn new_epoch_run(&self, epoch: usize, steps: usize, acc: Option<PartialEpoch>) -> EpochRun {
        EpochRun {
            epoch,
            lr: self.cfg.lr_at(epoch),
            steps,
            acc: acc.unwrap_or(PartialEpoch {
                step: 0,
                loss_sum: 0.0,
                examples: 0,
                train_seconds: 0.0,
                seconds: 0.0,
            }),
            timed: 0,
            started: Instant::now(),
        }
    }

    /// Runs the epoch's remaining steps, with validations and checkpoints inside it.
    fn train_epoch(&mut self, params: &mut [f32], e: &mut EpochRun) -> Result<Stop> {
        self.progress.epoch_start(e.epoch, e.steps);
        for i in e.acc.step..e.steps {
            if self.stop_requested() {
                if self.state.steps_done != self.saved_steps {
                    self.save_checkpoint(params, Some(e.position()))?;
                }
                return Ok(Stop::Interrupted);
            }
            self.step(params, e, i)?;
            if self
                .cfg
                .max_steps
                .is_some_and(|m| self.state.steps_done >= m)
            {
                return Ok(Stop::MaxSteps);
            }
            let inside = i + 1 < e.steps;
            if inside && self.cfg.valid_every.is_some_and(|k| (i + 1) % k == 0) {
                let row = self.validate(params, e, false)?;
                self.write_metrics()?;
                self.progress.validated(&row.0, row.1);
            }
            let every = self.cfg.checkpoint_every;
            if inside && every.is_some_and(|k| self.state.steps_done.is_multiple_of(k)) {
                self.save_checkpoint(params, Some(e.position()))?;
            }
        }
        Ok(Stop::Not)
    }

    /// One step: forward and backward (the task's), divergence check, clipping, update.
    fn step(&mut self, params: &mut [f32], e: &mut EpochRun, i: usize) -> Result<()> {
        let t0 = Instant::now();
        self.grads.fill(0.0);
        let step = Step {
            index: i,
            rank: self.rank,
            rng: &mut self.rng,
            params,
            grads: &mut self.grads,
        };
        let b = self.task.train_step(step)?;
        let b = self.reduce_step(b);
        // Every rank sees the same summed loss and gradient: rank 0 tells.
        let diverged = |what: String| {
            self.group.told_by_root(Error::Diverged {
                epoch: e.epoch,
                step: self.state.steps_done + 1,
                what,
            })
        };
        if !b.loss.is_finite() {
            return Err(diverged(format!("the loss is {}", b.loss)));
        }
        let norm = match self.cfg.clip {
            Some(c) => clip_grad_norm(&mut self.grads, c),
            None => grad_norm(&self.grads),
        };
        if !norm.is_finite() {
            return Err(diverged(format!("the gradient norm is {norm}")));
        }
        let lr = e.lr * self.task.lr_scale(i);
        if self.cfg.weight_decay > 0.0 {
            let wd = self.cfg.weight_decay as f32;
            self.grads
                .iter_mut()
                .zip(params.iter())
                .for_each(|(g, p)| *g += wd * p);
        }
        match self.adam.as_mut() {
            Some(a) => a.step(params, &self.grads, lr),
            None => sgd_step(params, &self.grads, lr as f32),
        }
        self.state.steps_done += 1;
        if let (Some(m), Some(ema)) = (self.cfg.ema, self.ema.as_mut()) {
            update_ema(ema, params, ema_momentum(m, self.state.steps_done) as f32);
        }
        if let (Some(since), Some(avg)) = (self.state.averaging_since, self.ema.as_mut()) {
            let k = (self.state.steps_done - since) as f32;
            update_ema(avg, params, 1.0 - 1.0 / k);
        }
        if self.state.steps_done.is_multiple_of(REPLICA_CHECK_EVERY) {
            self.check_replicas(params)?;
        }
        e.acc.train_seconds += t0.elapsed().as_secs_f64();
        e.acc.loss_sum += b.loss;
        e.acc.step += 1;
        e.acc.examples += b.examples as u64;
        e.timed += b.examples as u64;
        self.state.examples_seen += b.examples as u64;
        self.progress.step(&StepInfo {
            epoch: e.epoch,
            step: i + 1,
            steps: e.steps,
            loss: e.train_loss(self.task.about().loss_average),
            step_loss: match self.task.about().loss_average {
                LossAverage::PerStep => b.loss,
                LossAverage::PerExample => b.loss / b.examples.max(1) as f64,
            },
            tokens_per_s: e.examples_per_s(),
        });
        Ok(())
    }

    /// Scores the weights (their average, when kept), keeps them and writes
    /// `model.safetensors` when they beat the best so far; returns the metrics row (also added
    /// to the history) and whether they were kept.
    fn validate(
        &mut self,
        params: &[f32],
        e: &EpochRun,
        epoch_end: bool,
    ) -> Result<(FitEpoch, bool)> {
        self.progress.validating(e.epoch);
        let scored: &[f32] = self.ema.as_deref().unwrap_or(params);
        let v: Validation = self.task.validate(scored, &self.group)?;
        let improved = v.score > self.state.best_score || self.state.best_epoch == 0;
        if improved {
            let path = self.run.dir().model_path();
            self.run.save_tensors(&path, &self.task.tensors(scored))?;
            self.state.best_score = v.score;
            self.state.best_epoch = e.epoch;
            self.state.best_step = self.state.steps_done;
            match self.best.as_mut() {
                Some(b) => b.copy_from_slice(scored),
                None => self.best = Some(scored.to_vec()),
            }
        }
        let row = FitEpoch {
            epoch: e.epoch,
            step: self.state.steps_done,
            epoch_end,
            lr: e.lr,
            train_loss: e.train_loss(self.task.about().loss_average),
            valid_loss: v.loss,
            valid_score: v.score,
            examples_per_s: e.examples_per_s(),
            seconds: e.seconds(),
            examples_seen: self.state.examples_seen,
        };
        self.history.push(row.clone());
        Ok((row, improved))
    }

    /// Validates the finished epoch, decides on early stopping, writes the checkpoint and the
    /// metrics.
    fn end_epoch(&mut self, params: &[f32], e: &EpochRun) -> Result<()> {
        let previous: Vec<f64> = self
            .history
            .iter()
            .filter(|r| r.epoch_end)
            .map(|r| r.valid_loss)
            .collect();
        let (row, improved) = self.validate(params, e, true)?;
        let averaging = self.cfg.asgd.is_some_and(|a| {
            self.state.averaging_since.is_none() && a.triggers(&previous, row.valid_loss)
        });
        if averaging {
            self.state.averaging_since = Some(self.state.steps_done);
            self.ema = Some(params.to_vec());
        }
        if let EarlyStopping::Patience(p) = self.cfg.early_stopping {
            self.state.stopped_early =
                e.epoch - self.state.best_epoch >= p && e.epoch < self.cfg.epochs;
        }
        self.state.epochs_done = e.epoch;
        self.save_checkpoint(params, None)?;
        self.write_metrics()?;
        self.progress.validated(&row, improved);
        if averaging {
            self.progress.averaging_started(e.epoch);
        }
        Ok(())
    }

    /// Writes `checkpoint.safetensors` (and the epoch's copy when kept); `partial` is the
    /// position inside the current epoch, `None` at its end.
    fn save_checkpoint(&mut self, params: &[f32], partial: Option<PartialEpoch>) -> Result<()> {
        let mut state = self.state.clone();
        state.adam_step = self.adam.as_ref().map_or(0, |a| a.step);
        state.rng_word_pos = self.rng.get_word_pos().to_string();
        let carried = match partial {
            Some(_) => self.task.carried(&self.group),
            None => Default::default(),
        };
        if !self.run.is_writer() {
            self.saved_steps = self.state.steps_done;
            return Ok(());
        }
        state.partial = partial;
        let ck = Checkpoint {
            params: params.to_vec(),
            adam: self.adam.as_ref().map(|a| (a.m.clone(), a.v.clone())),
            ema: self.ema.clone(),
            carried,
            state,
            history: self.history.clone(),
            task: self.task.identity().parts,
        };
        let dir = self.run.dir();
        let path = dir.checkpoint_path();
        let bytes = checkpoint_bytes(&ck, &path)?;
        self.run.write(&path, &bytes)?;
        if ck.state.partial.is_none() && self.cfg.keep == KeepCheckpoints::Epochs {
            let kept = dir.epoch_checkpoint_path(ck.state.epochs_done);
            if let Some(folder) = kept.parent() {
                std::fs::create_dir_all(folder).map_err(|source| Error::Io {
                    path: folder.to_path_buf(),
                    cause: source,
                })?;
            }
            self.run.write(&kept, &bytes)?;
        }
        self.saved_steps = self.state.steps_done;
        self.progress.checkpointed(self.state.steps_done);
        Ok(())
    }

    /// Refuses a checkpoint that does not fit the task or the settings, or whose run is over.
    fn check_resumable(&self, ck: &Checkpoint) -> Result<()> {
        let bad = |m: String| Err(Error::Config(format!("cannot resume: {m}")));
        self.task.check_identity(&ck.task)?;
        compare_identity(&self.task.identity(), &ck.task)?;
        match (&self.adam, &ck.adam) {
            (Some(_), None) => {
                return bad("the run uses Adam but the checkpoint holds no Adam moments".into())
            }
            (None, Some(_)) => {
                return bad("the checkpoint holds Adam moments but the run uses SGD".into())
            }
            _ => {}
        }
        let averaging = self.ema.is_some() || ck.state.averaging_since.is_some();
        if ck.ema.is_some() != averaging {
            return bad("the checkpoint and the settings disagree on the moving average".into());
        }
        // A run whose training is over but which has no summary yet was stopped before its
        // final files: it goes on to write them, training nothing.
        let st = &ck.state;
        if st.stopped_early && self.run.is_finished() {
            return bad(format!(
                "the run stopped early after epoch {} (early stopping): there is nothing to resume",
                st.epochs_done
            ));
        }
        let over = match self.run.is_finished() {
            true => st.epochs_done >= self.cfg.epochs,
            false => st.epochs_done > self.cfg.epochs,
        };
        if over {
            return bad(format!(
                "the run is complete ({} of {} epochs): give it more epochs to train on",
                st.epochs_done, self.cfg.epochs
            ));
        }
        Ok(())
    }

    /// Restores the checkpoint `ck` into the loop and `params`; returns the epoch in progress
    /// when the checkpoint was written inside one.
    fn restore(&mut self, params: &mut [f32], ck: Checkpoint) -> Result<Option<EpochRun>> {
        self.check_resumable(&ck)?;
        let refuse = |m: String| Error::Config(format!("cannot resume: {m}"));
        let bad = |m: String| Err(refuse(m));
        let st = &ck.state;
        let pos = |p: &str| {
            p.parse::<u128>().map_err(|_| {
                refuse(format!(
                    "the checkpoint holds an unreadable generator position `{p}`"
                ))
            })
        };
        let begun = st.epochs_done + usize::from(st.partial.is_some());
        if st.epoch_rng_pos.len() != begun {
            return bad("the checkpoint's generator positions do not match its epochs".into());
        }
        // Replay each begun epoch's preparation (shuffles that carry over), then go on from
        // where the generator stood.
        let mut steps = 0;
        for (e, p) in st.epoch_rng_pos.iter().enumerate() {
            self.rng.set_word_pos(pos(p)?);
            steps = self.task.start_epoch(e + 1, &mut self.rng);
        }
        self.rng.set_word_pos(pos(&st.rng_word_pos)?);
        let partial = match &st.partial {
            Some(p) if p.step == 0 || p.step >= steps => {
                return bad(format!(
                    "the checkpoint's position (step {} of epoch {}) does not fit this run's {steps} steps per epoch",
                    p.step,
                    st.epochs_done + 1
                ))
            }
            Some(p) => {
                self.task.restore_carried(&ck.carried)?;
                Some(self.new_epoch_run(st.epochs_done + 1, steps, Some(p.clone())))
            }
            None => None,
        };
        params.copy_from_slice(&ck.params);
        if let (Some(a), Some((m, v))) = (self.adam.as_mut(), ck.adam) {
            a.m = m;
            a.v = v;
            a.step = ck.state.adam_step;
        }
        self.ema = ck.ema;
        self.history = ck.history;
        // Timings are not in checkpoints: take them from the metrics file when it matches.
        let timings = read_timings(&self.run.dir().metrics_path());
        if timings.len() == self.history.len() {
            for (row, (per_s, secs)) in self.history.iter_mut().zip(timings) {
                (row.examples_per_s, row.seconds) = (per_s, secs);
            }
        }
        self.state = ck.state;
        self.state.partial = None;
        self.saved_steps = self.state.steps_done;
        Ok(partial)
    }

    /// The outcome, with the best weights read back from `model.safetensors` when this process
    /// did not produce them.
    fn outcome(&mut self, end: RunEnd, epochs_run: usize) -> Result<FitOutcome> {
        let best_params = match self.best.take() {
            Some(b) => b,
            None if end == RunEnd::Interrupted && self.state.best_epoch == 0 => Vec::new(),
            None => self.read_best()?,
        };
        Ok(FitOutcome {
            epochs: std::mem::take(&mut self.history),
            epochs_run,
            best_params,
            best_score: self.state.best_score,
            best_epoch: self.state.best_epoch,
            best_step: self.state.best_step,
            steps: self.state.steps_done,
            end,
            allreduce_seconds: self.allreduce_seconds,
        })
    }
}

/// What the ranks of a data-parallel run share: every rank computes its share of a step, the
/// gradient block is summed over them, and rank 0 reads and writes the files.
impl Loop<'_> {
    /// Sums the step's gradient block and loss over the ranks (one allreduce of the contiguous
    /// block, one of the two figures); on one process, `b` as it is.
    fn reduce_step(&mut self, b: BatchLoss) -> BatchLoss {
        if !self.group.is_distributed() {
            return b;
        }
        let t0 = Instant::now();
        self.group.sum_f32(&mut self.grads);
        let mut figures = [b.loss, b.examples as f64];
        self.group.sum_f64(&mut figures);
        self.allreduce_seconds += t0.elapsed().as_secs_f64();
        BatchLoss {
            loss: figures[0],
            examples: figures[1] as usize,
        }
    }

    /// Whether the run should stop: asked on every rank, so that all stop at the same step.
    fn stop_requested(&self) -> bool {
        self.group.any(self.progress.should_stop())
    }

    /// Refuses ranks started with other settings, data, model or seqrnn version than rank 0.
    fn check_same_settings(&self) -> Result<()> {
        if !self.group.is_distributed() {
            return Ok(());
        }
        let settings = serde_json::json!({
            "seqrnn": env!("CARGO_PKG_VERSION"),
            "fit": self.cfg,
            "task": self.task.identity().parts,
            "params": self.task.num_params(),
            "fresh": self.run.is_fresh(),
        });
        let digest = fingerprint(settings.to_string().as_bytes());
        match self.group.first_differing(digest) {
            None => Ok(()),
            Some(r) => Err(self.group.told_by_root(Error::Distributed(format!(
                "rank {r} was started with other settings, data or seqrnn version than rank 0: start every rank with the same command, data and binary"
            )))),
        }
    }

    /// Stops when the ranks' weights differ (they take identical steps, so they never should).
    fn check_replicas(&self, params: &[f32]) -> Result<()> {
        if !self.group.is_distributed() {
            return Ok(());
        }
        let digest = fingerprint_f32(params);
        match self.group.first_differing(digest) {
            None => Ok(()),
            Some(r) => Err(self.group.told_by_root(Error::Distributed(format!(
                "after step {} the weights of rank {r} differ from rank 0's: the replicas drifted apart (a different binary, library or CPU on that rank?); the last checkpoint was kept",
                self.state.steps_done
            )))),
        }
    }

    /// The run's checkpoint: read by rank 0 and sent to every rank.
    fn read_checkpoint(&self, n: usize) -> Result<Checkpoint> {
        let path = self.run.dir().checkpoint_path();
        if !self.group.is_distributed() {
            return load_checkpoint(&path, n);
        }
        let bytes = self.read_on_root(&path)?;
        checkpoint_from_bytes(&bytes, n).map_err(|message| Error::Format { path, message })
    }

    /// The best weights from `model.safetensors`: read by rank 0 and sent to every rank.
    fn read_best(&self) -> Result<Vec<f32>> {
        let path = self.run.dir().model_path();
        let bytes = self.read_on_root(&path)?;
        let file = TensorFile::from_bytes(&bytes).map_err(|message| Error::Format {
            path: path.clone(),
            message,
        })?;
        self.task.params_from(&file, &path)
    }

    /// The bytes of the run's file `path`, read by rank 0 and sent to every rank (the other
    /// ranks may not see the run folder).
    fn read_on_root(&self, path: &std::path::Path) -> Result<Vec<u8>> {
        let bytes = match self.group.is_root() {
            true => std::fs::read(path).map_err(|cause| Error::Io {
                path: path.to_path_buf(),
                cause,
            }),
            false => Ok(Vec::new()),
        };
        Ok(self.group.broadcast_bytes(self.group.agree(bytes)?))
    }

    /// Writes the metrics files (rank 0).
    fn write_metrics(&self) -> Result<()> {
        match self.run.is_writer() {
            true => self.task.write_metrics(self.run.dir(), &self.history),
            false => Ok(()),
        }
    }
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

/// Test support for the tasks: trains `task` from `params` for one epoch into a fresh run in a
/// temporary folder named after `name`, then resumes that run with `other` (the same model on
/// other data) for a second epoch; returns the loop's refusal.
#[cfg(test)]
pub(crate) fn resume_refusal(
    name: &str,
    task: &mut dyn Task,
    other: &mut dyn Task,
    params: &[f32],
) -> String {
    let id = std::process::id();
    let dir = std::env::temp_dir().join(format!("seqrnn-resume-{id}-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    let run = Run::create(&dir, &name, crate::run::Existing::Refuse).expect("a fresh run");
    let cfg = FitConfig {
        epochs: 1,
        ..FitConfig::default()
    };
    let silent = &mut crate::train::task::Silent;
    fit(task, &mut params.to_vec(), &cfg, &run, silent).expect("one epoch");
    let resumed = Run::resume(&dir).expect("the run resumes");
    let more = FitConfig { epochs: 2, ..cfg };
    let refused = fit(other, &mut params.to_vec(), &more, &resumed, silent);
    let _ = std::fs::remove_dir_all(&dir);
    refused.expect_err("the other data is refused").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ParamLayout;
    use crate::run::Existing;
    use crate::train::task::{About, BatchLoss, Identity, Silent, Weights};
    use rand::RngExt;

    /// The loop's default settings with learning rate `lr` and `epochs` epochs.
    fn cfg(lr: f64, epochs: usize) -> FitConfig {
        FitConfig {
            lr,
            epochs,
            ..FitConfig::default()
        }
    }

    /// Plain SGD at learning rate 0.1 without clipping, seed 4, for `epochs` epochs.
    fn sgd(epochs: usize) -> FitConfig {
        FitConfig {
            optimizer: Optimizer::Sgd,
            clip: None,
            seed: 4,
            ..cfg(0.1, epochs)
        }
    }

    /// Every change of `base` is refused by [`FitConfig::validate`].
    fn refused(base: &FitConfig, changes: &[fn(&mut FitConfig)]) {
        for change in changes {
            let mut bad = *base;
            change(&mut bad);
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    /// Least squares `min ½‖p − target‖²` as a task, one batch per epoch.
    struct Quadratic {
        target: Vec<f32>,
        blow_up_at: Option<usize>,
        epoch: usize,
        /// Adds generator noise to the gradient (so a resume must restore the generator).
        noisy: bool,
        /// One tensor `p` of the target's length.
        layout: ParamLayout,
    }

    fn layout(n: usize) -> ParamLayout {
        let mut l = ParamLayout::new();
        l.push("p", vec![n]);
        l
    }

    impl Quadratic {
        fn new(target: &[f32]) -> Self {
            Quadratic {
                target: target.to_vec(),
                blow_up_at: None,
                epoch: 0,
                noisy: false,
                layout: layout(target.len()),
            }
        }
    }

    impl Task for Quadratic {
        fn about(&self) -> About<'_> {
            let weights = Weights::new(&self.layout, "quadratic", "a quadratic");
            About::new(weights, "neg_loss", LossAverage::PerStep)
        }
        fn batch_size(&self) -> usize {
            1
        }
        fn identity(&self) -> Identity {
            Identity {
                parts: serde_json::json!({ "target": self.target }),
                meanings: vec![("target", "the target is not the run's")],
            }
        }
        fn start_epoch(&mut self, epoch: usize, _rng: &mut SeqRng) -> usize {
            self.epoch = epoch;
            2
        }
        fn train_step(&mut self, step: Step<'_>) -> Result<BatchLoss> {
            let mut loss = 0.0;
            for ((g, p), t) in step.grads.iter_mut().zip(step.params).zip(&self.target) {
                *g += p - t;
                if self.noisy {
                    *g += step.rng.random::<f32>() - 0.5;
                }
                loss += 0.5 * ((p - t) as f64).powi(2);
            }
            if self.blow_up_at == Some(self.epoch) {
                loss = f64::NAN;
            }
            Ok(BatchLoss { loss, examples: 1 })
        }
        fn validate(&mut self, params: &[f32], _: &crate::dist::Group) -> Result<Validation> {
            let loss: f64 = params
                .iter()
                .zip(&self.target)
                .map(|(p, t)| 0.5 * ((p - t) as f64).powi(2))
                .sum();
            Ok(Validation { loss, score: -loss })
        }
    }

    fn tmp(name: &str) -> Run {
        let d = std::env::temp_dir().join(format!("seqrnn-fit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        Run::create(
            &d,
            &serde_json::json!({"task": "quadratic"}),
            Existing::Refuse,
        )
        .unwrap()
    }

    #[test]
    fn converges_keeps_best_and_writes_files() {
        let run = tmp("ok");
        let mut task = Quadratic::new(&[0.5, -0.25, 1.0]);
        let mut p = vec![0.0; 3];
        let out = fit(&mut task, &mut p, &cfg(0.05, 30), &run, &mut Silent).unwrap();
        assert!(out.best_score > -1e-3, "{}", out.best_score);
        assert_eq!(out.epochs.len(), 30);
        let m = std::fs::read_to_string(run.dir().metrics_path()).unwrap();
        assert!(m.starts_with("epoch,lr,train_loss,valid_loss,valid_neg_loss,"));
        assert_eq!(m.lines().count(), 31);
        let saved = TensorFile::load(&run.dir().model_path()).unwrap();
        assert_eq!(saved.get("p").unwrap().data, out.best_params);
        let ck = TensorFile::load(&run.dir().checkpoint_path()).unwrap();
        assert_eq!(
            ck.metadata.get("format").map(String::as_str),
            Some("seqrnn-checkpoint-3")
        );
        assert!(run.dir().config_path().is_file());
    }

    #[test]
    fn early_stopping_and_divergence() {
        let run = tmp("stop");
        // Already at the optimum: no epoch improves on the first, so patience 2 stops at 3.
        let mut task = Quadratic::new(&[0.0; 2]);
        let cfg = FitConfig {
            early_stopping: EarlyStopping::Patience(2),
            ..cfg(1e-3, 10)
        };
        let out = fit(&mut task, &mut [0.0, 0.0], &cfg, &run, &mut Silent).unwrap();
        assert_eq!(out.end, RunEnd::EarlyStopped);
        assert_eq!(out.epochs.len(), 3);
        let mut task = Quadratic {
            blow_up_at: Some(2),
            ..Quadratic::new(&[1.0; 2])
        };
        let err = fit(&mut task, &mut [0.0, 0.0], &cfg, &run, &mut Silent).unwrap_err();
        assert!(matches!(err, Error::Diverged { epoch: 2, .. }), "{err}");
        refused(
            &cfg,
            &[
                |c| c.lr = 0.0,
                |c| c.epochs = 0,
                |c| c.early_stopping = EarlyStopping::Patience(0),
                |c| c.clip = Some(-1.0),
                |c| c.valid_every = Some(0),
                |c| c.ema = Some(1.0),
            ],
        );
    }

    #[test]
    fn validation_inside_epochs_keeps_the_best_step() {
        // Two steps an epoch, validation after every step: the first step of each epoch is
        // validated inside it, the second at its end.
        let run = tmp("mid");
        let mut task = Quadratic::new(&[0.5, -0.25]);
        let cfg = FitConfig {
            valid_every: Some(1),
            ..cfg(0.05, 3)
        };
        let out = fit(&mut task, &mut [0.0, 0.0], &cfg, &run, &mut Silent).unwrap();
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
        let m = std::fs::read_to_string(run.dir().metrics_path()).unwrap();
        assert_eq!(m.lines().count(), 7);
        assert!(m.lines().nth(1).unwrap().ends_with(",1,0"), "{m}");
        assert!(m.lines().nth(2).unwrap().ends_with(",2,1"), "{m}");
        // Scores are strictly better each time, so the kept weights are the last ones.
        let saved = TensorFile::load(&run.dir().model_path()).unwrap();
        assert_eq!(saved.get("p").unwrap().data, out.best_params);
    }

    #[test]
    fn moving_average_is_what_is_scored_and_kept() {
        let run = tmp("ema");
        let target = vec![1.0f32, -1.0];
        let mut task = Quadratic::new(&target);
        let cfg = FitConfig {
            ema: Some(0.5),
            ..cfg(0.1, 3)
        };
        let mut p = vec![0.0f32; 2];
        let out = fit(&mut task, &mut p, &cfg, &run, &mut Silent).unwrap();
        // Replay Adam's path to get the average by hand: p after each of the 6 steps.
        let mut raw = vec![0.0f32; 2];
        let mut adam = Adam::new(AdamConfig::default(), 2).unwrap();
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
        let saved = TensorFile::load(&run.dir().model_path()).unwrap();
        assert_eq!(saved.get("p").unwrap().data, ema);
        let ck = TensorFile::load(&run.dir().checkpoint_path()).unwrap();
        assert_eq!(ck.get("ema").unwrap().data, ema);
    }

    #[test]
    fn resumed_run_ends_as_the_uninterrupted_one() {
        let task = || Quadratic {
            noisy: true,
            ..Quadratic::new(&[0.5, -0.25, 2.0])
        };
        let cfg = FitConfig {
            valid_every: Some(1),
            ema: Some(0.6),
            seed: 9,
            ..cfg(0.05, 5)
        };
        let whole_run = tmp("whole");
        let mut whole = vec![0.0f32; 3];
        let a = fit(&mut task(), &mut whole, &cfg, &whole_run, &mut Silent).unwrap();
        // The same run, stopped after 2 epochs and resumed to 5.
        let part_run = tmp("part");
        let mut part = vec![0.0f32; 3];
        let first = FitConfig { epochs: 2, ..cfg };
        fit(&mut task(), &mut part, &first, &part_run, &mut Silent).unwrap();
        let ck_path = part_run.dir().checkpoint_path();
        let ck = load_checkpoint(&ck_path, 3).unwrap();
        assert_eq!(ck.state.epochs_done, 2);
        let resumed = Run::resume(&part_run.dir().dir).unwrap();
        let mut again = vec![9.0f32; 3];
        let b = fit(&mut task(), &mut again, &cfg, &resumed, &mut Silent).unwrap();
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
        for f in [whole_run.dir().model_path(), part_run.dir().model_path()] {
            assert_eq!(
                TensorFile::load(&f).unwrap().get("p").unwrap().data,
                a.best_params
            );
        }
        // Stopped after its last checkpoint, before the command wrote its summary: a resume
        // trains nothing and ends as the uninterrupted run.
        let original = std::fs::read(&ck_path).unwrap();
        let ck = || checkpoint_from_bytes(&original, 3).unwrap();
        let put = |ck: &Checkpoint| {
            std::fs::write(&ck_path, checkpoint_bytes(ck, &ck_path).unwrap()).unwrap();
        };
        let unfinished = Run::resume(&part_run.dir().dir).unwrap();
        assert!(!unfinished.is_finished());
        let finish = |c: &FitConfig, ck: &Checkpoint| {
            put(ck);
            let mut p = vec![9.0f32; 3];
            let out = fit(&mut task(), &mut p, c, &unfinished, &mut Silent).unwrap();
            assert_eq!(p, whole);
            assert_eq!(out.best_params, a.best_params);
            assert_eq!(
                (out.best_epoch, out.steps, out.epochs_run, out.epochs.len()),
                (a.best_epoch, a.steps, 5, a.epochs.len())
            );
            out.end
        };
        assert_eq!(finish(&cfg, &ck()), RunEnd::Completed);
        let mut stopped = ck();
        stopped.state.stopped_early = true;
        let more = FitConfig { epochs: 6, ..cfg };
        assert_eq!(finish(&more, &stopped), RunEnd::EarlyStopped);
        // Fewer epochs than it has done are refused.
        put(&ck());
        let fewer = FitConfig { epochs: 4, ..cfg };
        let err = fit(&mut task(), &mut [0.0; 3], &fewer, &unfinished, &mut Silent).unwrap_err();
        assert!(
            err.to_string().contains("complete (5 of 4 epochs)"),
            "{err}"
        );
        // A finished run, or one checkpoint for another model or settings, is refused.
        part_run.finish(&serde_json::json!({})).unwrap();
        let resumed = Run::resume(&part_run.dir().dir).unwrap();
        assert!(resumed.is_finished());
        let refuse = |c: &FitConfig, ck: Checkpoint, needle: &str| {
            put(&ck);
            let err = fit(&mut task(), &mut [0.0; 3], c, &resumed, &mut Silent)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{err}");
        };
        refuse(&cfg, ck(), "complete (5 of 5 epochs)");
        refuse(&FitConfig { ema: None, ..more }, ck(), "moving average");
        let mut old = ck();
        old.state.rng_word_pos = "x".into();
        refuse(&more, old, "unreadable generator position");
        let mut stopped = ck();
        stopped.state.stopped_early = true;
        refuse(&more, stopped, "stopped early after epoch 5");
        let sgd = FitConfig {
            optimizer: Optimizer::Sgd,
            ..more
        };
        refuse(&sgd, ck(), "the run uses SGD");
        // The checkpoint of another task (another target) is refused by the loop itself.
        put(&ck());
        let mut other = Quadratic {
            noisy: true,
            ..Quadratic::new(&[0.5, -0.25, 3.0])
        };
        let err = fit(&mut other, &mut [0.0; 3], &more, &resumed, &mut Silent).unwrap_err();
        let err = err.to_string();
        assert!(
            err.contains("cannot resume: the target is not the run's"),
            "{err}"
        );
        let err = load_checkpoint(&ck_path, 4).unwrap_err();
        assert!(err.to_string().contains("4 parameters"), "{err}");
        let err = load_checkpoint(&part_run.dir().model_path(), 3).unwrap_err();
        assert!(err.to_string().contains("not a seqrnn checkpoint"), "{err}");
    }

    #[test]
    fn a_fresh_run_that_fails_before_its_first_checkpoint_is_removed() {
        let run = tmp("abandon");
        let mut task = Quadratic {
            blow_up_at: Some(1),
            ..Quadratic::new(&[1.0; 2])
        };
        let err = fit(&mut task, &mut [0.0; 2], &cfg(1e-3, 10), &run, &mut Silent);
        assert!(matches!(err, Err(Error::Diverged { step: 1, .. })));
        assert!(!run.dir().config_path().exists());
        assert!(!run.dir().checkpoint_path().exists());
        // The folder is no run: a fresh one may start in it without replacing anything.
        Run::create(&run.dir().dir, &0, Existing::Refuse).unwrap();
    }

    /// Steps of `p ← p − lr·(p − target + noise)`, two per epoch, with validation losses read
    /// from a script; records the weights each step and each validation sees.
    struct Scripted {
        target: Vec<f32>,
        script: Vec<f64>,
        calls: usize,
        stepped: Vec<Vec<f32>>,
        validated: Vec<Vec<f32>>,
        layout: ParamLayout,
    }

    impl Scripted {
        fn new(script: &[f64]) -> Self {
            Scripted {
                target: vec![1.0, -2.0],
                script: script.to_vec(),
                calls: 0,
                stepped: Vec::new(),
                validated: Vec::new(),
                layout: layout(2),
            }
        }
    }

    impl Task for Scripted {
        fn about(&self) -> About<'_> {
            let weights = Weights::new(&self.layout, "scripted", "a scripted task");
            About::new(weights, "neg_loss", LossAverage::PerStep)
        }
        fn batch_size(&self) -> usize {
            1
        }
        fn identity(&self) -> Identity {
            Identity {
                parts: serde_json::Value::Null,
                meanings: Vec::new(),
            }
        }
        fn start_epoch(&mut self, _epoch: usize, _rng: &mut SeqRng) -> usize {
            2
        }
        fn lr_scale(&self, index: usize) -> f64 {
            // The second step of each epoch takes half the learning rate.
            1.0 / (1 + index) as f64
        }
        fn train_step(&mut self, step: Step<'_>) -> Result<BatchLoss> {
            self.stepped.push(step.params.to_vec());
            for ((g, p), t) in step.grads.iter_mut().zip(step.params).zip(&self.target) {
                *g += p - t + step.rng.random::<f32>() - 0.5;
            }
            Ok(BatchLoss {
                loss: 1.0,
                examples: 1,
            })
        }
        fn validate(&mut self, params: &[f32], _: &crate::dist::Group) -> Result<Validation> {
            self.validated.push(params.to_vec());
            let loss = self.script[self.calls];
            self.calls += 1;
            Ok(Validation { loss, score: -loss })
        }
    }

    #[test]
    fn nt_asgd_triggers_on_a_non_monotone_validation_loss() {
        let a = NtAsgd { nonmono: 2 };
        let losses = [5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 2.0];
        let fired: Vec<bool> = (0..losses.len())
            .map(|k| a.triggers(&losses[..k], losses[k]))
            .collect();
        // Epoch 4 (3.5) is worse than epoch 3 but only 1 epoch back; epoch 6 (3.1) is worse
        // than the best (3.0) of the epochs before the last two; epoch 7 (2.0) is not.
        assert_eq!(fired, [false, false, false, false, false, true, false]);
        assert!(!NtAsgd { nonmono: 5 }.triggers(&losses[..6], 3.1));
    }

    #[test]
    fn nt_asgd_validates_and_keeps_the_uniform_average_from_its_trigger() {
        let script = [5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 2.0, 1.0];
        let cfg = FitConfig {
            asgd: Some(NtAsgd { nonmono: 2 }),
            ..sgd(script.len())
        };
        let run = tmp("asgd");
        let mut task = Scripted::new(&script);
        let mut params = vec![0.0f32, 0.0];
        let out = fit(&mut task, &mut params, &cfg, &run, &mut Silent).unwrap();
        // Weights after step s (1-based) are those step s + 1 saw; after the last, `params`.
        let mut after: Vec<Vec<f32>> = task.stepped[1..].to_vec();
        after.push(params.clone());
        // Epochs 1–6 validate the raw weights; averaging starts after step 12.
        for e in 0..6 {
            assert_eq!(task.validated[e], after[2 * e + 1], "epoch {}", e + 1);
        }
        let mean = |from: usize, to: usize| -> Vec<f32> {
            let mut m = vec![0.0f32; 2];
            for (k, w) in after[from..to].iter().enumerate() {
                for (a, b) in m.iter_mut().zip(w) {
                    *a += (b - *a) / (k + 1) as f32;
                }
            }
            m
        };
        assert_eq!(task.validated[6], mean(12, 14), "epoch 7: steps 13–14");
        assert_eq!(task.validated[7], mean(12, 16), "epoch 8: steps 13–16");
        assert_eq!(out.best_epoch, 8);
        assert_eq!(out.best_params, mean(12, 16));
        let ck = load_checkpoint(&run.dir().checkpoint_path(), 2).unwrap();
        assert_eq!(ck.state.averaging_since, Some(12));
        assert_eq!(ck.ema, Some(mean(12, 16)));

        // Stopped after 7 epochs (averaging under way) and resumed: the same run.
        let part_run = tmp("asgd-part");
        let mut part = vec![0.0f32, 0.0];
        let first = FitConfig { epochs: 7, ..cfg };
        fit(
            &mut Scripted::new(&script),
            &mut part,
            &first,
            &part_run,
            &mut Silent,
        )
        .unwrap();
        let resumed = Run::resume(&part_run.dir().dir).unwrap();
        let mut again = Scripted::new(&script[7..]);
        let b = fit(&mut again, &mut part, &cfg, &resumed, &mut Silent).unwrap();
        assert_eq!(part, params);
        assert_eq!(b.best_params, out.best_params);
        assert_eq!(again.validated[0], task.validated[7]);
    }

    #[test]
    fn weight_decay_and_step_scales_enter_the_sgd_update() {
        let cfg = FitConfig {
            weight_decay: 0.5,
            ..sgd(1)
        };
        let mut task = Scripted::new(&[1.0]);
        let mut params = vec![2.0f32, 3.0];
        fit(&mut task, &mut params, &cfg, &tmp("wd"), &mut Silent).unwrap();
        // Replay the two steps with the same noise: g = p − t + u, then p −= lr·s·(g + wd·p).
        let mut rng = rng_from_seed(task.generator_seed(4));
        let mut p = vec![2.0f32, 3.0];
        for scale in [1.0f32, 0.5] {
            for (v, t) in p.iter_mut().zip(&task.target) {
                let g = *v - t + rng.random::<f32>() - 0.5;
                *v -= (0.1 * scale as f64) as f32 * (g + 0.5 * *v);
            }
        }
        assert_eq!(params, p);
        refused(
            &cfg,
            &[
                |c| c.weight_decay = -1.0,
                |c| (c.optimizer, c.weight_decay) = (Optimizer::Adam(AdamConfig::default()), 0.1),
                |c| c.asgd = Some(NtAsgd { nonmono: 0 }),
                |c| (c.asgd, c.ema) = (Some(NtAsgd { nonmono: 3 }), Some(0.9)),
                |c| {
                    c.asgd = Some(NtAsgd { nonmono: 3 });
                    c.optimizer = Optimizer::Adam(AdamConfig::default());
                },
            ],
        );
    }
}

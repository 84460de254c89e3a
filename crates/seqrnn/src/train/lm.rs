//! Training and evaluation of a language model: truncated BPTT over PyTorch-style batches with the
//! recurrent state carried between windows, SGD with global-norm clipping and step decay, or Adam.

use std::time::Instant;

use crate::rnn::RnnState;

use serde::{Deserialize, Serialize};

use crate::data::{Batched, Corpus};
use crate::dropout::{rng_from_seed, SeqRng};
use crate::error::{Error, Result};
use crate::model::{LanguageModel, LmCache, LmWorkspace};
use crate::optim::{clip_grad_norm, sgd_step, Adam, AdamConfig};
use crate::report::metrics::{write_metrics, EpochMetrics};
use crate::report::plot::learning_curve_svg;
use crate::rnn::SeqShape;
use crate::run::{
    checkpoint_bytes, save_model, vocab_fingerprint, Checkpoint, PartialEpoch, ResumeState,
    RunConfig, RunDir,
};

/// Which optimiser updates the weights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// Plain SGD (Zaremba et al.).
    #[default]
    Sgd,
    /// Adam with the given moments.
    Adam(AdamConfig),
}

/// Training settings. Learning rate and clip follow PyTorch's loss convention (mean over all
/// `T·B` predictions): Zaremba et al.'s lr 1 and clip 5 at `bptt = 20` are lr 20 and clip 0.25
/// here. `validate()` before use.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Window length of truncated backpropagation through time.
    pub bptt: usize,
    /// Batch columns `B`.
    pub batch: usize,
    /// Optimiser.
    pub optimizer: Optimizer,
    /// Initial learning rate.
    pub lr: f64,
    /// Maximum global gradient norm; `None` for no clipping.
    pub clip: Option<f64>,
    /// Factor applied to the learning rate each epoch after `decay_after` epochs (1 = none).
    pub lr_decay: f64,
    /// Epochs run at the initial learning rate.
    pub decay_after: usize,
    /// Epochs to run.
    pub epochs: usize,
    /// Stop after this many training steps in total (smoke tests).
    pub max_steps: Option<u64>,
    /// Seed of initialisation and dropout.
    pub seed: u64,
    /// Batch size of validation and test evaluation (1: the split as one stream).
    pub eval_batch: usize,
    /// Also write a checkpoint every this many training steps (besides the end of each epoch);
    /// `None`: at the end of each epoch only.
    #[serde(default)]
    pub checkpoint_every: Option<u64>,
    /// Which checkpoints stay on disk.
    #[serde(default)]
    pub keep: KeepCheckpoints,
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

impl Default for TrainConfig {
    fn default() -> Self {
        Preset::Small.train_config()
    }
}

impl TrainConfig {
    /// Checks every setting.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.bptt == 0 {
            return bad("bptt must be at least 1, got 0".into());
        }
        if self.batch == 0 || self.eval_batch == 0 {
            return bad("batch sizes must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("learning rate must be positive, got {}", self.lr));
        }
        if let Some(c) = self.clip {
            if !(c.is_finite() && c > 0.0) {
                return bad(format!("clip must be positive, got {c}"));
            }
        }
        if !(self.lr_decay > 0.0 && self.lr_decay <= 1.0) {
            return bad(format!(
                "learning-rate decay must be in (0, 1], got {}",
                self.lr_decay
            ));
        }
        if self.epochs == 0 {
            return bad("epochs must be at least 1, got 0".into());
        }
        if self.max_steps == Some(0) {
            return bad("max steps must be at least 1, got 0".into());
        }
        if self.checkpoint_every == Some(0) {
            return bad("the checkpoint interval must be at least 1 step, got 0".into());
        }
        if let Optimizer::Adam(a) = self.optimizer {
            a.validate()?;
        }
        Ok(())
    }

    /// Learning rate of epoch `epoch` (1-based): `lr · decay^max(epoch − decay_after, 0)`.
    pub fn lr_at(&self, epoch: usize) -> f64 {
        let n = epoch.saturating_sub(self.decay_after);
        self.lr * self.lr_decay.powi(n as i32)
    }
}

/// The configurations of Zaremba et al. (2014), "Recurrent Neural Network Regularization".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// 2 × 200, bptt 20, no dropout, 13 epochs (their test perplexity 114.5).
    Small,
    /// 2 × 650, bptt 35, dropout 0.5, 39 epochs (82.7).
    Medium,
    /// 2 × 1500, bptt 35, dropout 0.65, 55 epochs (78.4).
    Large,
}

impl Preset {
    /// `(layers, hidden, init scale, dropout)` of the model.
    pub fn model(self) -> (usize, usize, f32, f32) {
        match self {
            Preset::Small => (2, 200, 0.1, 0.0),
            Preset::Medium => (2, 650, 0.05, 0.5),
            Preset::Large => (2, 1500, 0.04, 0.65),
        }
    }

    /// The training settings, with the paper's lr and clip converted to the mean-loss convention
    /// (`lr × bptt`, `clip / bptt`).
    pub fn train_config(self) -> TrainConfig {
        let (bptt, lr_decay, decay_after, clip, epochs) = match self {
            Preset::Small => (20, 0.5, 4, 5.0, 13),
            Preset::Medium => (35, 1.0 / 1.2, 6, 5.0, 39),
            Preset::Large => (35, 1.0 / 1.15, 14, 10.0, 55),
        };
        TrainConfig {
            bptt,
            batch: 20,
            optimizer: Optimizer::Sgd,
            lr: bptt as f64,
            clip: Some(clip / bptt as f64),
            lr_decay,
            decay_after,
            epochs,
            max_steps: None,
            seed: 1,
            eval_batch: 1,
            checkpoint_every: None,
            keep: KeepCheckpoints::Latest,
        }
    }
}

/// One training step, as reported to [`Progress`].
#[derive(Clone, Debug, PartialEq)]
pub struct StepInfo {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Step within the epoch (1-based) and steps in the epoch.
    pub step: usize,
    /// Steps in this epoch.
    pub steps: usize,
    /// Mean cross-entropy (nats) of the epoch so far.
    pub loss: f64,
    /// Training tokens per second this epoch.
    pub tokens_per_s: f64,
}

/// Receives training events; the command-line tool draws progress bars from them.
pub trait Progress {
    /// An epoch begins with `steps` windows.
    fn epoch_start(&mut self, _epoch: usize, _steps: usize) {}
    /// A step finished.
    fn step(&mut self, _info: &StepInfo) {}
    /// Validation is running.
    fn validating(&mut self, _epoch: usize) {}
    /// An epoch finished.
    fn epoch_end(&mut self, _metrics: &EpochMetrics) {}
    /// A checkpoint was written after `steps` training steps.
    fn checkpointed(&mut self, _steps: u64) {}
    /// Whether the run should stop (e.g. after Ctrl-C). Asked before every step and after every
    /// epoch; when it answers `true` the loop writes a checkpoint and returns with
    /// [`RunEnd::Interrupted`].
    fn should_stop(&self) -> bool {
        false
    }
}

/// A [`Progress`] that ignores everything.
pub struct Silent;
impl Progress for Silent {}

/// What a training run produced.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOutcome {
    /// Per-epoch metrics, including epochs restored on resume.
    pub epochs: Vec<EpochMetrics>,
    /// Best validation perplexity.
    pub best_valid_ppl: f64,
    /// Test perplexity of the best-on-validation weights, if the corpus has a test split.
    pub test_ppl: Option<f64>,
    /// Training steps taken in total.
    pub steps: u64,
    /// How the run ended.
    pub end: RunEnd,
}

/// How a training run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// Every epoch ran.
    Completed,
    /// `max_steps` ended it (the last epoch was cut short).
    MaxSteps,
    /// [`Progress::should_stop`] asked it to stop; a checkpoint holds the position.
    Interrupted,
}

/// Perplexity figures of an evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalResult {
    /// Mean cross-entropy in nats per predicted token.
    pub loss: f64,
    /// `exp(loss)`.
    pub ppl: f64,
    /// Predicted tokens.
    pub tokens: usize,
    /// Tokens per second.
    pub tokens_per_s: f64,
}

/// Evaluates `params` on a token stream cut into `batch` columns (PyTorch batching), windows of
/// `window` steps with the state carried: mean cross-entropy over every predicted token.
pub fn evaluate(
    model: &LanguageModel,
    params: &[f32],
    stream: &[u32],
    batch: usize,
    window: usize,
    ws: &mut LmWorkspace,
) -> Result<EvalResult> {
    let data = Batched::new(stream, batch)?;
    let mut state = model.zero_state(batch);
    let t0 = Instant::now();
    let mut total = 0.0;
    for w in data.windows(window.max(1)) {
        let shape = SeqShape { t: w.len, b: batch };
        total += model.eval_loss(
            params,
            data.inputs(w),
            data.targets(w),
            shape,
            &mut state,
            ws,
        )?;
    }
    let tokens = data.predicted_tokens();
    let loss = total / tokens as f64;
    Ok(EvalResult {
        loss,
        ppl: loss.exp(),
        tokens,
        tokens_per_s: tokens as f64 / t0.elapsed().as_secs_f64(),
    })
}

/// Window length used for evaluation: long windows are faster, and with the state carried the
/// result does not depend on the window length.
pub const EVAL_WINDOW: usize = 128;

/// Adam's first and second moments, in the parameter layout.
pub type AdamMoments = (Vec<f32>, Vec<f32>);

/// Where a run starts: fresh, or from a checkpoint.
pub struct Start {
    /// The run's configuration: stored in every checkpoint and, on a fresh start, written as
    /// `config.json` right after the initial checkpoint (so a folder holding a `config.json`
    /// always holds a checkpoint to resume from).
    pub config: RunConfig,
    /// The checkpoint to continue from, or `None` for a fresh run.
    pub resume: Option<Checkpoint>,
}

/// Buffers of a training step, allocated once per run and reused by every step.
#[derive(Debug)]
pub struct StepBuffers {
    /// `grads[n_params]`: the gradient block (zeroed by each step).
    pub grads: Vec<f32>,
    /// What the forward pass keeps for backward.
    pub cache: LmCache,
    /// Scratch of backward and evaluation passes.
    pub ws: LmWorkspace,
}

impl StepBuffers {
    /// Buffers for `model` (the caches grow on first use).
    pub fn new(model: &LanguageModel) -> Self {
        StepBuffers {
            grads: vec![0.0; model.num_params()],
            cache: LmCache::default(),
            ws: LmWorkspace::default(),
        }
    }
}

/// How a training step updates the weights.
pub struct Update<'a> {
    /// Maximum global gradient norm, if clipping.
    pub clip: Option<f64>,
    /// Learning rate of this step.
    pub lr: f64,
    /// Adam's state, or `None` for plain SGD.
    pub adam: Option<&'a mut Adam>,
}

/// Why a training step failed.
#[derive(Debug)]
pub enum StepError {
    /// The engine refused its inputs.
    Engine(Error),
    /// The loss or the gradient norm is NaN or infinite (the weights were not updated).
    NotFinite(String),
}

/// One step of truncated BPTT: forward over the window (state carried in `state`), backward,
/// clip, update. Returns the summed cross-entropy of the window's `T·B` predictions.
///
/// - `params`: read and updated in place.
/// - `inputs[T, B]`, `targets[T, B]`: read.
/// - `state`: read the initial recurrent state, written the final one.
/// - `bufs.grads`: written with the (clipped) gradient of the mean loss.
#[allow(clippy::too_many_arguments)]
pub fn train_step(
    model: &LanguageModel,
    params: &mut [f32],
    inputs: &[u32],
    targets: &[u32],
    shape: SeqShape,
    state: &mut crate::rnn::RnnState,
    bufs: &mut StepBuffers,
    rng: &mut SeqRng,
    update: Update<'_>,
) -> std::result::Result<f64, StepError> {
    let loss = model
        .forward_train(params, inputs, targets, shape, state, &mut bufs.cache, rng)
        .map_err(StepError::Engine)?;
    if !loss.is_finite() {
        return Err(StepError::NotFinite(format!("the loss is {loss}")));
    }
    bufs.grads.fill(0.0);
    model
        .backward(params, &mut bufs.grads, &bufs.cache, &mut bufs.ws)
        .map_err(StepError::Engine)?;
    let norm = match update.clip {
        Some(c) => clip_grad_norm(&mut bufs.grads, c),
        None => crate::optim::grad_norm(&bufs.grads),
    };
    if !norm.is_finite() {
        return Err(StepError::NotFinite(format!("the gradient norm is {norm}")));
    }
    match update.adam {
        Some(a) => a.step(params, &bufs.grads, update.lr),
        None => sgd_step(params, &bufs.grads, update.lr as f32),
    }
    Ok(loss)
}

/// Counters of a run, as stored in its checkpoints.
struct Counters {
    epochs_done: usize,
    steps_done: u64,
    tokens_seen: u64,
    best: f64,
}

/// Trains `params` on `corpus`, writing into `run` a checkpoint at the end of every epoch and,
/// with [`TrainConfig::checkpoint_every`], every that many steps, plus the best weights and the
/// metrics. `params` holds the initial weights (ignored when resuming: the checkpoint's are
/// used) and ends holding the final ones.
///
/// Resuming from any checkpoint, with the same thread count, reproduces the uninterrupted run
/// bit for bit: the checkpoint holds the weights, Adam's moments and step, the position (epoch,
/// window), the carried recurrent state, the generator position, the learning rate, the partial
/// epoch's loss sums and the metrics so far.
#[allow(clippy::too_many_arguments)]
pub fn train(
    model: &LanguageModel,
    params: &mut [f32],
    corpus: &Corpus,
    cfg: &TrainConfig,
    run: &RunDir,
    title: &str,
    start: Start,
    progress: &mut dyn Progress,
) -> Result<TrainOutcome> {
    cfg.validate()?;
    let train_data = Batched::new(&corpus.train, cfg.batch)?;
    let windows = train_data.windows(cfg.bptt);
    let n = model.num_params();
    if params.len() != n {
        return Err(Error::Shape(format!(
            "parameter block has {} values, expected {n}",
            params.len()
        )));
    }
    let mut bufs = StepBuffers::new(model);
    let mut adam = match cfg.optimizer {
        Optimizer::Adam(a) => Some(Adam::new(a, n)?),
        Optimizer::Sgd => None,
    };
    let vocab = vocab_fingerprint(&corpus.vocab);
    let rng_seed = cfg.seed.wrapping_add(1);
    let mut rng = rng_from_seed(rng_seed);
    let mut c = Counters {
        epochs_done: 0,
        steps_done: 0,
        tokens_seen: 0,
        best: f64::INFINITY,
    };
    let mut history = Vec::new();
    let mut partial: Option<(PartialEpoch, RnnState)> = None;
    let ck_path = run.checkpoint_path();
    let run_config = start.config;
    let snapshot = |c: &Counters,
                    params: &[f32],
                    adam: &Option<Adam>,
                    rng: &SeqRng,
                    history: &[EpochMetrics],
                    partial: Option<(PartialEpoch, &RnnState)>| {
        let (partial, carried) = match partial {
            Some((p, s)) => (Some(p), Some(s.clone())),
            None => (None, None),
        };
        Checkpoint {
            params: params.to_vec(),
            adam: adam.as_ref().map(|a| (a.m.clone(), a.v.clone())),
            carried,
            state: ResumeState {
                epochs_done: c.epochs_done,
                steps_done: c.steps_done,
                tokens_seen: c.tokens_seen,
                best_valid_ppl: c.best,
                adam_step: adam.as_ref().map_or(0, |a| a.step),
                rng_seed,
                rng_word_pos: rng.get_word_pos().to_string(),
                train_tokens: corpus.train.len() as u64,
                partial,
            },
            config: Some(run_config.clone()),
            history: history.to_vec(),
            vocab: Some(vocab.clone()),
        }
    };
    let save = |ck: &Checkpoint, extra: Option<std::path::PathBuf>| -> Result<()> {
        let bytes = checkpoint_bytes(ck).map_err(|message| Error::Format {
            path: ck_path.clone(),
            message,
        })?;
        crate::io::write_atomic(&ck_path, &bytes)?;
        if let Some(p) = extra {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
            crate::io::write_atomic(&p, &bytes)?;
        }
        Ok(())
    };

    match start.resume {
        Some(ck) => {
            check_resume(&ck, model, cfg, corpus, &vocab, windows.len())?;
            params.copy_from_slice(&ck.params);
            let s = ck.state;
            c = Counters {
                epochs_done: s.epochs_done,
                steps_done: s.steps_done,
                tokens_seen: s.tokens_seen,
                best: s.best_valid_ppl,
            };
            rng = restore_rng(&s)?;
            if let (Some(a), Some((m, v))) = (adam.as_mut(), ck.adam) {
                a.m = m;
                a.v = v;
                a.step = s.adam_step;
            }
            history = ck.history;
            history.truncate(c.epochs_done);
            partial = s.partial.zip(ck.carried);
        }
        None => {
            // The initial checkpoint first, then config.json: a killed run is either not a run
            // yet (no config.json) or one that `--resume` can continue.
            run.create()?;
            save(&snapshot(&c, params, &adam, &rng, &history, None), None)?;
            run.save_config(&run_config)?;
            progress.checkpointed(0);
        }
    }

    let mut best_params: Option<Vec<f32>> = None;
    let mut end = RunEnd::Completed;
    'epochs: for epoch in c.epochs_done + 1..=cfg.epochs {
        let (first, lr, mut state, mut loss_sum, mut predicted, secs_before) = match partial.take()
        {
            Some((p, s)) => (p.window, p.lr, s, p.loss_sum, p.predicted, p.seconds),
            None => (
                0,
                cfg.lr_at(epoch),
                model.zero_state(cfg.batch),
                0.0,
                0,
                0.0,
            ),
        };
        progress.epoch_start(epoch, windows.len());
        let t_epoch = Instant::now();
        let elapsed = |t: &Instant| secs_before + t.elapsed().as_secs_f64();
        let mut saved_steps = c.steps_done;
        for (i, &w) in windows.iter().enumerate().skip(first) {
            if progress.should_stop() {
                if c.steps_done != saved_steps {
                    let p = PartialEpoch {
                        window: i,
                        lr,
                        loss_sum,
                        predicted,
                        seconds: elapsed(&t_epoch),
                    };
                    save(
                        &snapshot(&c, params, &adam, &rng, &history, Some((p, &state))),
                        None,
                    )?;
                    progress.checkpointed(c.steps_done);
                }
                end = RunEnd::Interrupted;
                break 'epochs;
            }
            let shape = SeqShape {
                t: w.len,
                b: cfg.batch,
            };
            let loss = train_step(
                model,
                params,
                train_data.inputs(w),
                train_data.targets(w),
                shape,
                &mut state,
                &mut bufs,
                &mut rng,
                Update {
                    clip: cfg.clip,
                    lr,
                    adam: adam.as_mut(),
                },
            )
            .map_err(|e| match e {
                StepError::Engine(e) => e,
                StepError::NotFinite(what) => Error::Diverged {
                    epoch,
                    step: c.steps_done + 1,
                    what,
                },
            })?;
            c.steps_done += 1;
            loss_sum += loss;
            predicted += (shape.t * shape.b) as u64;
            c.tokens_seen += (shape.t * shape.b) as u64;
            progress.step(&StepInfo {
                epoch,
                step: i + 1,
                steps: windows.len(),
                loss: loss_sum / predicted as f64,
                tokens_per_s: predicted as f64 / elapsed(&t_epoch),
            });
            if cfg.max_steps.is_some_and(|m| c.steps_done >= m) {
                end = RunEnd::MaxSteps;
                break;
            }
            if i + 1 < windows.len() && cfg.checkpoint_every.is_some_and(|k| c.steps_done % k == 0)
            {
                let p = PartialEpoch {
                    window: i + 1,
                    lr,
                    loss_sum,
                    predicted,
                    seconds: elapsed(&t_epoch),
                };
                save(
                    &snapshot(&c, params, &adam, &rng, &history, Some((p, &state))),
                    None,
                )?;
                saved_steps = c.steps_done;
                progress.checkpointed(c.steps_done);
            }
        }
        let train_s = elapsed(&t_epoch);
        progress.validating(epoch);
        let valid = evaluate(
            model,
            params,
            &corpus.valid,
            cfg.eval_batch,
            EVAL_WINDOW,
            &mut bufs.ws,
        )?;
        let row = EpochMetrics {
            epoch,
            lr,
            train_ppl: (loss_sum / predicted as f64).exp(),
            valid_ppl: valid.ppl,
            tokens_per_s: predicted as f64 / train_s,
            seconds: elapsed(&t_epoch),
            tokens_seen: c.tokens_seen,
        };
        history.push(row.clone());
        // The best weights are written before the checkpoint that records them as best.
        if valid.ppl < c.best || !run.model_path().is_file() {
            c.best = valid.ppl;
            save_model(&run.model_path(), model, params, &corpus.vocab)?;
            best_params = Some(params.to_vec());
        }
        c.epochs_done = epoch;
        let keep = match cfg.keep {
            KeepCheckpoints::Latest => None,
            KeepCheckpoints::Epochs => Some(run.epoch_checkpoint_path(epoch)),
        };
        save(&snapshot(&c, params, &adam, &rng, &history, None), keep)?;
        progress.checkpointed(c.steps_done);
        write_metrics(&run.metrics_path(), &history)?;
        learning_curve_svg(&run.curve_path(), title, &history)?;
        progress.epoch_end(&row);
        if end == RunEnd::MaxSteps {
            break;
        }
        if epoch < cfg.epochs && progress.should_stop() {
            end = RunEnd::Interrupted;
            break;
        }
    }
    // Written again in case a run was stopped between its last checkpoint and these files.
    if !history.is_empty() {
        write_metrics(&run.metrics_path(), &history)?;
        learning_curve_svg(&run.curve_path(), title, &history)?;
    }
    // Test perplexity of the best-on-validation weights (read back if this process did not
    // produce them, e.g. when resuming after the best epoch).
    let test_ppl = match (&corpus.test, end) {
        (_, RunEnd::Interrupted) | (None, _) => None,
        (Some(test), _) => {
            let best_params = match best_params {
                Some(p) => p,
                None => {
                    let file = crate::io::tensors::TensorFile::load(&run.model_path())?;
                    model
                        .param_layout()
                        .from_file(&file, &run.model_path(), "a model")?
                }
            };
            Some(
                evaluate(
                    model,
                    &best_params,
                    test,
                    cfg.eval_batch,
                    EVAL_WINDOW,
                    &mut bufs.ws,
                )?
                .ppl,
            )
        }
    };
    Ok(TrainOutcome {
        epochs: history,
        best_valid_ppl: c.best,
        test_ppl,
        steps: c.steps_done,
        end,
    })
}

/// Checks that a checkpoint fits the model, settings and corpus it is resumed with.
fn check_resume(
    ck: &Checkpoint,
    model: &LanguageModel,
    cfg: &TrainConfig,
    corpus: &Corpus,
    vocab: &str,
    windows: usize,
) -> Result<()> {
    let bad = |m: String| Err(Error::Config(format!("cannot resume: {m}")));
    if let Some(rc) = &ck.config {
        if rc.model != *model.config() {
            return bad(format!(
                "the checkpoint is from another architecture ({}) than the run's ({})",
                describe(&rc.model),
                describe(model.config())
            ));
        }
    }
    if ck.vocab.as_deref().is_some_and(|v| v != vocab) {
        return bad(
            "the vocabulary (vocab.txt, or the corpus it was built from) does not match the one the checkpoint was trained with"
                .into(),
        );
    }
    let s = &ck.state;
    if s.train_tokens != 0 && s.train_tokens != corpus.train.len() as u64 {
        return bad(format!(
            "the training split has {} tokens but the run was trained on {}: this is not the same corpus",
            corpus.train.len(),
            s.train_tokens
        ));
    }
    match (&cfg.optimizer, &ck.adam) {
        (Optimizer::Adam(_), None) => {
            return bad("the run uses Adam but the checkpoint holds no Adam moments".into())
        }
        (Optimizer::Sgd, Some(_)) => {
            return bad("the checkpoint holds Adam moments but the run uses SGD".into())
        }
        _ => {}
    }
    if let (Some(p), Some(st)) = (&s.partial, &ck.carried) {
        let zero = model.zero_state(cfg.batch);
        if p.window == 0
            || p.window >= windows
            || st.h.len() != zero.h.len()
            || st.c.len() != zero.c.len()
        {
            return bad(format!(
                "the checkpoint's position (window {} of epoch {}, state of {} values) does not fit {} windows of batch {}",
                p.window,
                s.epochs_done + 1,
                st.h.len(),
                windows,
                cfg.batch
            ));
        }
        if !(p.lr.is_finite()
            && p.loss_sum.is_finite()
            && st.h.iter().chain(&st.c).all(|v| v.is_finite()))
        {
            return bad("the checkpoint holds non-finite values".into());
        }
    }
    if s.epochs_done > cfg.epochs {
        return bad(format!(
            "the checkpoint is after epoch {} but the run has {} epochs (pass a larger --epochs)",
            s.epochs_done, cfg.epochs
        ));
    }
    Ok(())
}

fn describe(m: &crate::model::LmConfig) -> String {
    format!(
        "{} {}×{}, embedding {}, vocabulary {}",
        m.cell.name(),
        m.layers,
        m.hidden,
        m.embed,
        m.vocab
    )
}

fn restore_rng(state: &ResumeState) -> Result<SeqRng> {
    let pos: u128 = state.rng_word_pos.parse().map_err(|_| {
        Error::Config(format!(
            "checkpoint holds an unreadable generator position `{}`",
            state.rng_word_pos
        ))
    })?;
    let mut rng = rng_from_seed(state.rng_seed);
    rng.set_word_pos(pos);
    Ok(rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_convert_the_papers_lr_and_clip() {
        let s = Preset::Small.train_config();
        assert_eq!((s.lr, s.clip, s.bptt, s.epochs), (20.0, Some(0.25), 20, 13));
        // Epochs 1–4 at lr 20, then halved each epoch.
        assert_eq!(s.lr_at(4), 20.0);
        assert_eq!(s.lr_at(5), 10.0);
        assert_eq!(s.lr_at(13), 20.0 * 0.5f64.powi(9));
        let m = Preset::Medium.train_config();
        assert_eq!(m.lr, 35.0);
        assert!((m.clip.unwrap() - 5.0 / 35.0).abs() < 1e-12);
        assert!((m.lr_at(8) - 35.0 / 1.44).abs() < 1e-9);
        let l = Preset::Large.train_config();
        assert!((l.clip.unwrap() - 10.0 / 35.0).abs() < 1e-12);
        assert_eq!(Preset::Large.model(), (2, 1500, 0.04, 0.65));
    }

    #[test]
    fn impossible_settings_are_refused() {
        let ok = TrainConfig::default();
        ok.validate().unwrap();
        for bad in [
            TrainConfig { bptt: 0, ..ok },
            TrainConfig { batch: 0, ..ok },
            TrainConfig { lr: 0.0, ..ok },
            TrainConfig { lr: -1.0, ..ok },
            TrainConfig { lr: f64::NAN, ..ok },
            TrainConfig {
                clip: Some(0.0),
                ..ok
            },
            TrainConfig {
                lr_decay: 0.0,
                ..ok
            },
            TrainConfig {
                lr_decay: 1.5,
                ..ok
            },
            TrainConfig { epochs: 0, ..ok },
            TrainConfig {
                max_steps: Some(0),
                ..ok
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}

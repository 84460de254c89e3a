//! Language modelling as a task of the one training loop ([`crate::train::fit()`]): truncated BPTT
//! over PyTorch-style batches with the recurrent state carried between windows (and saved in
//! mid-epoch checkpoints), Zaremba et al.'s presets, perplexity evaluation.

pub mod bench;
#[cfg(feature = "plots")]
pub mod compare;
mod config;
pub mod export;
pub use config::{
    import_state_dict, load_model, save_model, LmRunConfig, LmRunData, TokenKindName, MODEL_FORMAT,
};
pub mod generate;
pub mod inspect;
#[cfg(feature = "plots")]
pub mod inspect_report;
pub mod keras;
pub mod last_token;
pub mod model;
pub use model::{
    LanguageModel, LmBlock, LmCache, LmConfig, LmInit, LmLayout, LmPacks, LmWorkspace,
    OutputWeights, Regularizers,
};
mod trained;
use trained::describe;
pub use trained::{Prompt, Sampling, Split, Trained};

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::data::{Batched, Corpus, TokenKind, Vocab, Window};
use crate::dist::Group;
use crate::dropout::SeqRng;
use crate::dropout::{Dropout, DropoutKind};
use crate::error::{Error, Result};
use crate::io::tensors::TensorFile;
use crate::rnn::{RnnState, SeqShape};
use crate::run::{vocab_fingerprint, Run, RunDir};
use crate::tasks::lm::generate::{Decoding, LmBatch, LmStepper};
use crate::train::checkpoint::FitEpoch;
use crate::train::fit::{
    fit, EarlyStopping, FitConfig, FitOutcome, KeepCheckpoints, NtAsgd, Optimizer, RunEnd,
};
pub use crate::train::metrics::epoch_metrics;
use crate::train::metrics::write_perplexity_metrics;
use crate::train::task::{
    compare_identity, share_of_mean, About, BatchLoss, Identity, LossAverage, Progress, Step, Task,
    Validation, Weights,
};

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
    /// Window lengths of an epoch: all `bptt`, or drawn at random around it.
    #[serde(default)]
    pub windows: WindowLengths,
    /// L2 weight decay of SGD.
    #[serde(default)]
    pub weight_decay: f64,
    /// Non-monotonically triggered averaged SGD; `None`: plain SGD.
    #[serde(default)]
    pub asgd: Option<NtAsgd>,
}

/// How an epoch's training stream is cut into windows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowLengths {
    /// Every window `bptt` steps (the last one shorter), in order.
    #[default]
    Fixed,
    /// AWD-LSTM's random lengths around `bptt` ([`crate::data::Batched::variable_windows`]),
    /// drawn afresh each epoch, with each step's learning rate scaled by its window's length
    /// over `bptt`.
    Variable,
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
        self.fit_config().validate()
    }

    /// Learning rate of epoch `epoch` (1-based): `lr · decay^max(epoch − decay_after, 0)`.
    pub fn lr_at(&self, epoch: usize) -> f64 {
        let n = epoch.saturating_sub(self.decay_after);
        self.lr * self.lr_decay.powi(n as i32)
    }
}

/// Named configurations: Zaremba et al. (2014), "Recurrent Neural Network Regularization"
/// (`small`, `medium`, `large`), and recipes made to finish within a CPU budget (`medium-tied`
/// for Penn Treebank, `shakespeare` for Tiny Shakespeare). Each is measured in `docs/results.md`
/// with its run files in `docs/runs/PRESET/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// 2 × 200, bptt 20, no dropout, 13 epochs (their test perplexity 114.5).
    Small,
    /// 2 × 650, bptt 35, dropout 0.5, 39 epochs (82.7).
    Medium,
    /// 2 × 1500, bptt 35, dropout 0.65, 55 epochs (78.4).
    Large,
    /// `medium` with tied input/output embeddings (Press & Wolf 2017, Inan et al. 2017) and
    /// variational dropout (Gal & Ghahramani 2016), Zaremba's learning-rate decay (×1/1.2 per
    /// epoch after 6, of which the last 20 epochs add little) compressed into 17 epochs
    /// (×0.78 per epoch after 5), validated on 10 streams, so that it fits 3 hours on 2 cores.
    MediumTied,
    /// Character level for Tiny Shakespeare: 2 × 512 LSTM with locked dropout and weight drop,
    /// Adam, within an hour on 2 cores.
    Shakespeare,
}

/// The model side of a [`Preset`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PresetModel {
    /// Word or character tokens.
    pub tokens: TokenKind,
    /// Recurrent layers.
    pub layers: usize,
    /// Units per layer.
    pub hidden: usize,
    /// Embedding width (`None`: the hidden size).
    pub embed: Option<usize>,
    /// Uniform initialisation scale.
    pub init: f32,
    /// Dropout on non-recurrent connections.
    pub dropout: Dropout,
    /// Own or tied output weights.
    pub output: OutputWeights,
    /// AWD-LSTM regularisers.
    pub reg: Regularizers,
}

impl Preset {
    /// The model.
    pub fn model(self) -> PresetModel {
        let zaremba = |hidden, init, p| PresetModel {
            tokens: TokenKind::Word,
            layers: 2,
            hidden,
            embed: None,
            init,
            dropout: Dropout {
                p,
                kind: DropoutKind::Standard,
            },
            output: OutputWeights::Separate,
            reg: Regularizers::default(),
        };
        match self {
            Preset::Small => zaremba(200, 0.1, 0.0),
            Preset::Medium => zaremba(650, 0.05, 0.5),
            Preset::Large => zaremba(1500, 0.04, 0.65),
            Preset::MediumTied => PresetModel {
                dropout: Dropout {
                    p: 0.5,
                    kind: DropoutKind::Variational,
                },
                output: OutputWeights::Tied,
                ..zaremba(650, 0.05, 0.5)
            },
            Preset::Shakespeare => PresetModel {
                tokens: TokenKind::Char,
                embed: Some(128),
                dropout: Dropout {
                    p: 0.25,
                    kind: DropoutKind::Variational,
                },
                reg: Regularizers {
                    weight_drop: 0.25,
                    ..Regularizers::default()
                },
                ..zaremba(512, 0.1, 0.25)
            },
        }
    }

    /// The language model over a vocabulary of `vocab` with `cell`.
    pub fn lm_config(self, vocab: usize, cell: crate::rnn::CellKind) -> LmConfig {
        let m = self.model();
        LmConfig {
            block: Default::default(),
            vocab,
            embed: m.embed.unwrap_or(m.hidden),
            cell,
            hidden: m.hidden,
            layers: m.layers,
            last_hidden: None,
            dropout: m.dropout,
            output: m.output,
            reg: m.reg,
        }
    }

    /// The training settings, with the paper's lr and clip converted to the mean-loss convention
    /// (`lr × bptt`, `clip / bptt`).
    pub fn train_config(self) -> TrainConfig {
        if self == Preset::Shakespeare {
            return TrainConfig {
                bptt: 128,
                batch: 64,
                optimizer: Optimizer::Adam(crate::optim::AdamConfig::default()),
                lr: 2e-3,
                clip: Some(1.0),
                lr_decay: 0.85,
                decay_after: 6,
                epochs: 16,
                eval_batch: 32,
                ..Preset::Small.train_config()
            };
        }
        let (bptt, lr_decay, decay_after, clip, epochs) = match self {
            Preset::Small => (20, 0.5, 4, 5.0, 13),
            Preset::Medium => (35, 1.0 / 1.2, 6, 5.0, 39),
            Preset::MediumTied => (35, 0.78, 5, 5.0, 17),
            Preset::Large | Preset::Shakespeare => (35, 1.0 / 1.15, 14, 10.0, 55),
        };
        TrainConfig {
            bptt,
            batch: 20,
            eval_batch: if self == Preset::MediumTied { 10 } else { 1 },
            optimizer: Optimizer::Sgd,
            lr: bptt as f64,
            clip: Some(clip / bptt as f64),
            lr_decay,
            decay_after,
            epochs,
            max_steps: None,
            seed: 1,
            checkpoint_every: None,
            keep: KeepCheckpoints::Latest,
            windows: WindowLengths::Fixed,
            weight_decay: 0.0,
            asgd: None,
        }
    }
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
    evaluate_in(&Group::single(), model, params, stream, batch, window, ws)
}

/// [`evaluate`] shared by the ranks of `group` (called on every rank): each rank scores its
/// columns and the sums are added; with fewer columns than ranks every rank scores them all.
pub fn evaluate_in(
    group: &Group,
    model: &LanguageModel,
    params: &[f32],
    stream: &[u32],
    batch: usize,
    window: usize,
    ws: &mut LmWorkspace,
) -> Result<EvalResult> {
    let t0 = Instant::now();
    let data = Batched::new(stream, batch)?;
    let split = group.is_distributed() && batch >= group.size();
    let mut sums = match split {
        true => eval_sum(
            model,
            params,
            &data.columns(group.rows(batch, "the evaluation batch")?),
            window,
            ws,
        )?,
        false => eval_sum(model, params, &data, window, ws)?,
    };
    if split {
        group.sum_f64(&mut sums);
    }
    let tokens = data.predicted_tokens();
    let loss = sums[0] / tokens as f64;
    Ok(EvalResult {
        loss,
        ppl: loss.exp(),
        tokens,
        tokens_per_s: tokens as f64 / t0.elapsed().as_secs_f64(),
    })
}

/// Summed cross-entropy over every column of `data` (windows of `window` steps, the state
/// carried), and the number of predicted tokens.
fn eval_sum(
    model: &LanguageModel,
    params: &[f32],
    data: &Batched,
    window: usize,
    ws: &mut LmWorkspace,
) -> Result<[f64; 2]> {
    let mut state = model.zero_state(data.batch());
    let mut total = 0.0;
    for w in data.windows(window.max(1)) {
        let shape = SeqShape {
            t: w.len,
            b: data.batch(),
        };
        total += model.eval_loss(
            params,
            data.inputs(w),
            data.targets(w),
            shape,
            &mut state,
            ws,
        )?;
    }
    Ok([total, data.predicted_tokens() as f64])
}

/// Window length used for evaluation: long windows are faster, and with the state carried the
/// result does not depend on the window length.
pub const EVAL_WINDOW: usize = 128;

impl TrainConfig {
    /// The one loop's settings for these: SGD or Adam with the step-decay schedule, clipping,
    /// checkpoints; no early stopping, moving average or validation inside epochs.
    pub fn fit_config(&self) -> FitConfig {
        FitConfig {
            lr: self.lr,
            lr_decay: self.lr_decay,
            decay_after: self.decay_after,
            optimizer: self.optimizer,
            clip: self.clip,
            epochs: self.epochs,
            early_stopping: EarlyStopping::Off,
            max_steps: self.max_steps,
            seed: self.seed,
            valid_every: None,
            ema: None,
            checkpoint_every: self.checkpoint_every,
            keep: self.keep,
            weight_decay: self.weight_decay,
            asgd: self.asgd,
        }
    }
}

/// Language modelling as a [`Task`] of the one loop: truncated BPTT over the training stream cut
/// into `batch` columns, windows of `bptt` steps in order, the recurrent state carried from one
/// window to the next and reset at each epoch; validation perplexity (score `−ppl`) on the
/// validation stream with the state carried.
pub struct LmTask<'a> {
    model: &'a LanguageModel,
    vocab: &'a Vocab,
    train: Batched,
    /// This rank's columns of `train` (all of them on one process).
    local: Batched,
    /// Which global columns `local` holds.
    columns: std::ops::Range<usize>,
    windows: Vec<Window>,
    /// Nominal window length and how lengths are drawn.
    bptt: usize,
    lengths: WindowLengths,
    valid: &'a [u32],
    eval_batch: usize,
    /// Recurrent state `h, c [L·D, B_local, H]` of this rank's columns, carried between the
    /// windows of an epoch.
    state: RnnState,
    cache: LmCache,
    ws: LmWorkspace,
    /// Heads the learning curve (drawn with the `plots` feature).
    title: String,
}

impl<'a> LmTask<'a> {
    /// The task of training `model` on `corpus` with `cfg`'s window length and batch sizes;
    /// `title` heads the learning curve.
    ///
    /// # Errors
    /// [`Error::Data`]-like errors when a split is too short for its batch.
    pub fn new(
        model: &'a LanguageModel,
        corpus: &'a Corpus,
        cfg: &TrainConfig,
        title: &str,
    ) -> Result<Self> {
        Self::over(
            model,
            &corpus.vocab,
            &corpus.train,
            &corpus.valid,
            cfg,
            title,
        )
    }

    /// As [`LmTask::new`], from the vocabulary and the training and validation streams.
    pub fn over(
        model: &'a LanguageModel,
        vocab: &'a Vocab,
        train: &[u32],
        valid: &'a [u32],
        cfg: &TrainConfig,
        title: &str,
    ) -> Result<Self> {
        cfg.validate()?;
        let train = Batched::new(train, cfg.batch)?;
        Batched::new(valid, cfg.eval_batch)?;
        Ok(LmTask {
            windows: train.windows(cfg.bptt),
            bptt: cfg.bptt,
            lengths: cfg.windows,
            state: model.zero_state(cfg.batch),
            local: train.clone(),
            columns: 0..cfg.batch,
            train,
            model,
            vocab,
            valid,
            eval_batch: cfg.eval_batch,
            cache: LmCache::default(),
            ws: LmWorkspace::default(),
            title: title.to_string(),
        })
    }

    /// Buffers of evaluation passes, to reuse after training.
    pub fn workspace(&mut self) -> &mut LmWorkspace {
        &mut self.ws
    }
}

impl Task for LmTask<'_> {
    fn about(&self) -> About<'_> {
        let weights = Weights::new(self.model.param_layout(), MODEL_FORMAT, "a model");
        About::new(weights, "neg_ppl", LossAverage::PerExample)
    }
    fn generator_seed(&self, seed: u64) -> u64 {
        seed.wrapping_add(1)
    }
    /// The batch's columns (streams).
    fn batch_size(&self) -> usize {
        self.train.batch()
    }
    /// Takes this rank's columns of the training stream, whose recurrent state it carries.
    fn own_rows(&mut self, rows: std::ops::Range<usize>) {
        self.local = self.train.columns(rows.clone());
        self.columns = rows;
        self.state = self.model.zero_state(self.local.batch());
    }
    fn start_epoch(&mut self, _epoch: usize, rng: &mut SeqRng) -> usize {
        self.state = self.model.zero_state(self.local.batch());
        if self.lengths == WindowLengths::Variable {
            self.windows = self.train.variable_windows(self.bptt, rng);
        }
        self.windows.len()
    }
    fn lr_scale(&self, index: usize) -> f64 {
        match self.lengths {
            WindowLengths::Fixed => 1.0,
            WindowLengths::Variable => self.windows[index].len as f64 / self.bptt as f64,
        }
    }
    /// Forward over window `step.index` from the carried state, backward; the loss is the
    /// window's summed cross-entropy over its `T·B` predictions.
    fn train_step(&mut self, mut step: Step<'_>) -> Result<BatchLoss> {
        let w = self.windows[step.index];
        let shape = SeqShape {
            t: w.len,
            b: self.local.batch(),
        };
        let (inputs, targets) = (self.local.inputs(w), self.local.targets(w));
        let (_, mut masks) = step.share(self.train.batch());
        let loss = self.model.forward_train(
            step.params,
            inputs,
            targets,
            shape,
            &mut self.state,
            &mut self.cache,
            &mut masks,
        )?;
        if loss.is_finite() {
            let grads = &mut *step.grads;
            self.model
                .backward(step.params, grads, &self.cache, &mut self.ws)?;
            // The model's gradient is of the mean over this rank's columns; the step's mean is
            // over all the batch's.
            share_of_mean(grads, shape.b, self.train.batch());
        }
        Ok(BatchLoss {
            loss,
            examples: shape.t * shape.b,
        })
    }
    fn validate(&mut self, params: &[f32], group: &Group) -> Result<Validation> {
        let v = evaluate_in(
            group,
            self.model,
            params,
            self.valid,
            self.eval_batch,
            EVAL_WINDOW,
            &mut self.ws,
        )?;
        Ok(Validation {
            loss: v.loss,
            score: -v.ppl,
        })
    }
    /// The weights with the vocabulary's fingerprint in the metadata.
    fn tensors(&self, params: &[f32]) -> TensorFile {
        let mut f = self.model.param_layout().to_file(params, MODEL_FORMAT);
        f.metadata
            .insert("vocab".into(), vocab_fingerprint(self.vocab));
        f
    }
    /// The state of every column: each rank's rows, gathered by a sum over zero-filled blocks.
    fn carried(&self, group: &Group) -> BTreeMap<String, Vec<f32>> {
        let (b, lb) = (self.train.batch(), self.local.batch());
        let rows = self.model.state_rows();
        let whole = |local: &[f32]| {
            if !group.is_distributed() {
                return local.to_vec();
            }
            let mut all = vec![0.0; local.len() / lb * b];
            let (mut at, mut at_local) = (0, 0);
            for &row in &rows {
                let dst = &mut all[at..at + b * row];
                dst[self.columns.start * row..self.columns.end * row]
                    .copy_from_slice(&local[at_local..at_local + lb * row]);
                (at, at_local) = (at + b * row, at_local + lb * row);
            }
            group.sum_f32(&mut all);
            all
        };
        let mut m = BTreeMap::from([("h".to_string(), whole(&self.state.h))]);
        if !self.state.c.is_empty() {
            m.insert("c".into(), whole(&self.state.c));
        }
        m
    }
    /// Takes this rank's columns of the whole batch's state.
    fn restore_carried(&mut self, carried: &BTreeMap<String, Vec<f32>>) -> Result<()> {
        let zero = self.model.zero_state(self.train.batch());
        let get = |name: &str, len: usize| {
            match carried.get(name) {
            Some(v) if v.len() == len && v.iter().all(|x| x.is_finite()) => Ok(v.clone()),
            None if len == 0 => Ok(Vec::new()),
            _ => Err(Error::Config(format!(
                "cannot resume: the checkpoint's carried state `{name}` does not fit batch {} of this model, or holds non-finite values",
                self.train.batch()
            ))),
        }
        };
        let rows = self.model.state_rows();
        let (b, cols) = (self.train.batch(), self.columns.clone());
        let mine = |all: Vec<f32>| -> Vec<f32> {
            let mut out = Vec::with_capacity(all.len() / b.max(1) * cols.len());
            let mut at = 0;
            for &row in &rows {
                if at + b * row > all.len() {
                    break;
                }
                out.extend_from_slice(&all[at + cols.start * row..at + cols.end * row]);
                at += b * row;
            }
            out
        };
        self.state = RnnState {
            h: mine(get("h", zero.h.len())?),
            c: mine(get("c", zero.c.len())?),
        };
        Ok(())
    }
    /// The model, the vocabulary and the training split's length; the loop compares the
    /// vocabulary, [`Task::check_identity`] the rest.
    fn identity(&self) -> Identity {
        Identity {
            parts: serde_json::json!({
                "model": self.model.config(),
                "vocab": vocab_fingerprint(self.vocab),
                "train_tokens": self.train.data().len(),
            }),
            meanings: vec![VOCAB_PART],
        }
    }
    /// Compares the model (read as a configuration, so that one written by an earlier version
    /// still matches), the vocabulary and the training split's length, naming both sides.
    fn check_identity(&self, saved: &serde_json::Value) -> Result<()> {
        let bad = |m: String| Err(Error::Config(format!("cannot resume: {m}")));
        if let Some(m) = saved.get("model") {
            let theirs: LmConfig = match serde_json::from_value(m.clone()) {
                Ok(c) => c,
                Err(e) => return bad(format!("the checkpoint's model is unreadable ({e})")),
            };
            if theirs != *self.model.config() {
                return bad(format!(
                    "the checkpoint is from another architecture ({}) than the run's ({})",
                    describe(&theirs),
                    describe(self.model.config())
                ));
            }
        }
        compare_identity(&self.identity(), saved)?;
        let tokens = saved.get("train_tokens").and_then(|t| t.as_u64());
        if let Some(t) = tokens.filter(|&t| t != self.train.data().len() as u64) {
            return bad(format!(
                "the training split has {} tokens but the run was trained on {t}: this is not the same corpus",
                self.train.data().len()
            ));
        }
        Ok(())
    }
    fn write_metrics(&self, run: &RunDir, rows: &[FitEpoch]) -> Result<()> {
        write_perplexity_metrics(run, &self.title, rows)
    }
}

/// The vocabulary part of a language model's identity and what its difference means.
const VOCAB_PART: (&str, &str) = (
    "vocab",
    "the vocabulary (vocab.txt, or the corpus it was built from) does not match the one the checkpoint was trained with",
);

/// What a language-model training run produced.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOutcome {
    /// The loop's outcome (metrics rows, best weights, steps, how it ended).
    pub fit: FitOutcome,
    /// Best validation perplexity.
    pub best_valid_ppl: f64,
    /// Test perplexity of the best-on-validation weights, if the corpus has a test split and
    /// the run was not interrupted.
    pub test_ppl: Option<f64>,
}

/// Trains `params` (initial weights in, last weights out; a resumed run's come from its
/// checkpoint) on `corpus` into `run` with the one loop ([`fit()`]), then measures the test
/// perplexity of the best-on-validation weights. `title` heads the learning curve.
pub fn train(
    model: &LanguageModel,
    params: &mut [f32],
    corpus: &Corpus,
    cfg: &TrainConfig,
    run: &Run,
    title: &str,
    progress: &mut dyn Progress,
) -> Result<TrainOutcome> {
    let mut task = LmTask::new(model, corpus, cfg, title)?;
    let out = fit(&mut task, params, &cfg.fit_config(), run, progress)?;
    let test_ppl = match (&corpus.test, out.end) {
        (_, RunEnd::Interrupted) | (None, _) => None,
        (Some(test), _) => Some(
            evaluate_in(
                run.group(),
                model,
                &out.best_params,
                test,
                cfg.eval_batch,
                EVAL_WINDOW,
                task.workspace(),
            )?
            .ppl,
        ),
    };
    Ok(TrainOutcome {
        best_valid_ppl: -out.best_score,
        test_ppl,
        fit: out,
    })
}

/// The token ids of `split` of the corpus at `data` under `vocab` (`kind` tokens), and the number
/// of its words not in the vocabulary: what [`Trained::split`] reads, for every kind of trained
/// language model.
///
/// # Errors
/// As [`Trained::split`].
pub(crate) fn read_split(
    vocab: &Vocab,
    kind: TokenKind,
    (data, encoding): (&std::path::Path, crate::data::Encoding),
    split: Split,
) -> Result<(Vec<u32>, usize)> {
    let name = match split {
        Split::Valid => "valid",
        Split::Test => "test",
    };
    match (kind, split) {
        (TokenKind::Word, _) => {
            let file = crate::data::word_split_file(data, name)?;
            crate::data::encode_words(&file, vocab, encoding)
        }
        (TokenKind::Char, Split::Test) => Err(Error::Config(
            "character corpora have no test split: use the validation split".into(),
        )),
        (TokenKind::Char, Split::Valid) => {
            let file = crate::data::char_corpus_file(data);
            let corpus = crate::data::load_char_corpus(&file, encoding)?;
            if corpus.vocab != *vocab {
                return Err(Error::Data {
                    path: file,
                    message: "its characters give a different vocabulary from the model's: \
                              not the text this model was trained on"
                        .into(),
                });
            }
            Ok((corpus.valid, 0))
        }
    }
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
        let lm = Preset::Large.model();
        assert_eq!(
            (lm.layers, lm.hidden, lm.init, lm.dropout.p),
            (2, 1500, 0.04, 0.65)
        );
        let t = Preset::MediumTied.lm_config(10_000, crate::rnn::CellKind::Lstm);
        assert_eq!(
            (t.embed, t.hidden, t.output),
            (650, 650, crate::model::embedding::OutputWeights::Tied)
        );
        assert!(t.validate().is_ok());
        let mt = Preset::MediumTied.train_config();
        assert_eq!((mt.epochs, mt.eval_batch, mt.lr_at(5)), (17, 10, 35.0));
        assert!((mt.lr_at(17) - 35.0 * 0.78f64.powi(17 - 5)).abs() < 1e-12);
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

    /// Stops the loop (as Ctrl-C does) once `after` steps have been taken.
    struct StopAfter {
        after: usize,
        seen: usize,
    }
    impl Progress for StopAfter {
        fn step(&mut self, _: &crate::train::StepInfo) {
            self.seen += 1;
        }
        fn should_stop(&self) -> bool {
            self.seen >= self.after
        }
    }

    #[test]
    fn a_run_stopped_mid_epoch_and_resumed_ends_as_the_uninterrupted_one() {
        use crate::dropout::{Dropout, DropoutKind};
        let model = LmConfig {
            block: Default::default(),
            vocab: 7,
            embed: 6,
            cell: crate::rnn::CellKind::Lstm,
            hidden: 8,
            layers: 2,
            last_hidden: None,
            dropout: Dropout {
                p: 0.2,
                kind: DropoutKind::Standard,
            },
            output: crate::model::embedding::OutputWeights::Separate,
            reg: Default::default(),
        };
        let cfg = TrainConfig {
            bptt: 5,
            batch: 4,
            optimizer: Optimizer::Adam(crate::optim::AdamConfig::default()),
            lr: 0.01,
            lr_decay: 0.7,
            decay_after: 1,
            epochs: 3,
            checkpoint_every: Some(3),
            seed: 4,
            ..TrainConfig::default()
        };
        // Stopped inside the second epoch (20 windows an epoch), between two checkpoints.
        stopped_and_resumed(model, cfg, 27, "plain");
    }

    #[test]
    fn an_awd_run_stopped_mid_epoch_and_resumed_ends_as_the_uninterrupted_one() {
        use crate::dropout::{Dropout, DropoutKind};
        let locked = |p| {
            Some(Dropout {
                p,
                kind: DropoutKind::Variational,
            })
        };
        let model = LmConfig {
            block: Default::default(),
            vocab: 7,
            embed: 8,
            cell: crate::rnn::CellKind::Lstm,
            hidden: 8,
            layers: 2,
            last_hidden: None,
            dropout: Dropout::NONE,
            output: crate::model::embedding::OutputWeights::Tied,
            reg: crate::tasks::lm::Regularizers {
                embed_drop: 0.1,
                weight_drop: 0.3,
                input: locked(0.2),
                hidden: locked(0.1),
                output: locked(0.3),
                ar: 2.0,
                tar: 1.0,
            },
        };
        let cfg = TrainConfig {
            bptt: 5,
            batch: 4,
            optimizer: Optimizer::Sgd,
            lr: 2.0,
            lr_decay: 1.0,
            epochs: 6,
            checkpoint_every: Some(4),
            seed: 4,
            windows: WindowLengths::Variable,
            weight_decay: 1e-3,
            asgd: Some(NtAsgd { nonmono: 1 }),
            ..TrainConfig::default()
        };
        let whole = stopped_and_resumed(model, cfg, 70, "awd");
        let ck =
            crate::train::checkpoint::load_checkpoint(&whole.join("checkpoint.safetensors"), {
                LanguageModel::new(model).unwrap().num_params()
            })
            .unwrap();
        let since = ck.state.averaging_since.expect("NT-ASGD triggered");
        assert!(
            since < 70,
            "averaging began before the stop, at step {since}"
        );
    }

    #[test]
    fn a_run_with_a_smaller_last_layer_stopped_mid_epoch_resumes_exactly() {
        use crate::dropout::{Dropout, DropoutKind};
        let model = LmConfig {
            block: Default::default(),
            vocab: 7,
            embed: 4,
            cell: crate::rnn::CellKind::Lstm,
            hidden: 8,
            layers: 3,
            last_hidden: Some(4),
            dropout: Dropout {
                p: 0.2,
                kind: DropoutKind::Variational,
            },
            output: crate::model::embedding::OutputWeights::Tied,
            reg: crate::tasks::lm::Regularizers {
                weight_drop: 0.3,
                ..Default::default()
            },
        };
        let cfg = TrainConfig {
            bptt: 5,
            batch: 4,
            optimizer: Optimizer::Sgd,
            lr: 2.0,
            lr_decay: 1.0,
            epochs: 3,
            checkpoint_every: Some(3),
            seed: 4,
            ..TrainConfig::default()
        };
        // Stopped inside the second epoch, between two checkpoints: the carried state of both
        // stacks comes back from the checkpoint.
        stopped_and_resumed(model, cfg, 27, "last-layer");
    }

    /// Trains `model` with `cfg` whole, and again stopped after `stop_after` steps and resumed;
    /// asserts the two runs end bit for bit alike and returns the whole run's folder.
    fn stopped_and_resumed(
        model: LmConfig,
        cfg: TrainConfig,
        stop_after: usize,
        name: &str,
    ) -> std::path::PathBuf {
        use crate::run::Existing;
        use crate::train::task::Silent;
        let mut vocab = Vocab::new();
        for t in ["<unk>", "<eos>", "a", "b", "c", "d", "e"] {
            vocab.add(t);
        }
        let stream = |n: usize, k: u32| (0..n as u32).map(|i| (i * k + i / 3) % 7).collect();
        let corpus = Corpus {
            vocab,
            train: stream(400, 5),
            valid: stream(60, 3),
            test: None,
            unknown_in_valid: 0,
            unknown_in_test: 0,
        };
        let model = LanguageModel::new(model).unwrap();
        let init = model
            .init_params(crate::tasks::lm::LmInit::Uniform(0.1), 4)
            .unwrap();
        let dir = |name: &str| {
            let d = std::env::temp_dir().join(format!("seqrnn-lm-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            d
        };
        let fresh = |d: &std::path::Path| Run::create(d, &0, Existing::Refuse).unwrap();
        let (whole_dir, part_dir) = (dir(&format!("{name}-whole")), dir(&format!("{name}-part")));
        let mut whole = init.clone();
        let a = train(
            &model,
            &mut whole,
            &corpus,
            &cfg,
            &fresh(&whole_dir),
            "t",
            &mut Silent,
        )
        .unwrap();
        let mut part = init.clone();
        let mut stop = StopAfter {
            after: stop_after,
            seen: 0,
        };
        let b = train(
            &model,
            &mut part,
            &corpus,
            &cfg,
            &fresh(&part_dir),
            "t",
            &mut stop,
        )
        .unwrap();
        assert_eq!(b.fit.end, RunEnd::Interrupted);
        assert_eq!(b.fit.steps, stop_after as u64);
        let mut again = vec![0.0; init.len()];
        let run = Run::resume(&part_dir).unwrap();
        let c = train(&model, &mut again, &corpus, &cfg, &run, "t", &mut Silent).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&again), bits(&whole));
        assert_eq!(bits(&c.fit.best_params), bits(&a.fit.best_params));
        assert_eq!(c.best_valid_ppl.to_bits(), a.best_valid_ppl.to_bits());
        let rows = |o: &TrainOutcome| {
            let r = o.fit.epochs.iter();
            r.map(|r| {
                (
                    r.epoch,
                    r.step,
                    r.lr,
                    r.train_loss.to_bits(),
                    r.valid_score.to_bits(),
                )
            })
            .collect::<Vec<_>>()
        };
        assert_eq!(rows(&c), rows(&a));
        for f in ["model.safetensors", "checkpoint.safetensors"] {
            assert_eq!(
                std::fs::read(whole_dir.join(f)).unwrap(),
                std::fs::read(part_dir.join(f)).unwrap(),
                "{f}"
            );
        }
        whole_dir
    }
}

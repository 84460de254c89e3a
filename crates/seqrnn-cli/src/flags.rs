//! The flags the training commands share, declared once: the run folder and its checkpoints
//! ([`RunFlags`], every training command), the loop's settings ([`LoopFlags`], which build the
//! one [`FitConfig`]), the recurrent encoder ([`EncoderFlags`]) and the encoding of the text
//! files a command reads ([`EncodingFlag`], every command that reads text files).
//!
//! A command states its own defaults where they differ, on its arguments struct:
//! `#[command(mut_arg("lr", default("0.002")), mut_arg("epochs", epochs(30)))]`.

use std::path::PathBuf;

use clap::{Arg, Args};
use seqrnn::data::Encoding;
use seqrnn::optim::AdamConfig;
use seqrnn::rnn::CellKind;
use seqrnn::train::{EarlyStopping, FitConfig, KeepCheckpoints, Optimizer};

use crate::CellArg;

/// Sets the default of an argument (`#[command(mut_arg(ID, default(VALUE)))]`).
pub fn default(value: &'static str) -> impl FnOnce(Arg) -> Arg {
    move |a| a.default_value(value)
}

/// Sets the help of an argument (`#[command(mut_arg(ID, help(TEXT)))]`), where a command says
/// more of a shared flag; TEXT without the final period, as clap shows a doc comment.
pub fn help(text: &'static str) -> impl FnOnce(Arg) -> Arg {
    move |a| a.help(text)
}

/// Says the command's default epoch count in the help of `--epochs`.
pub fn epochs(default: usize) -> impl FnOnce(Arg) -> Arg {
    move |a| {
        a.help(format!(
            "Epochs at most [default: {default}; with --resume: the run's]"
        ))
    }
}

/// The run folder, how to open it, and its checkpoints: every training command's flags.
#[derive(Args, Debug)]
pub struct RunFlags {
    /// Run directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Go on with the run in --out from its last checkpoint, with the run's own settings (only
    /// --epochs and the checkpoint flags may change them); the data must be the run's.
    #[arg(long)]
    pub resume: bool,
    /// Replace a run already in --out.
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// Also write a checkpoint every N training steps (0: at epoch ends only) [default: 0;
    /// with --resume: the run's].
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<u64>,
    /// Keep each epoch's checkpoint as checkpoints/epoch-NNN.safetensors.
    #[arg(long)]
    pub keep_epoch_checkpoints: bool,
    /// Stop after this many training steps (smoke tests).
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object with the final figures.
    #[arg(long)]
    pub json: bool,
}

impl RunFlags {
    /// The steps between checkpoints inside an epoch: `--checkpoint-every` (0 for none), or
    /// `saved` (a resumed run's) when it is not given.
    pub fn checkpoint_every(&self, saved: Option<u64>) -> Option<u64> {
        match self.checkpoint_every {
            Some(n) => (n > 0).then_some(n),
            None => saved,
        }
    }

    /// Which checkpoints stay: `--keep-epoch-checkpoints`, or `saved` (a resumed run's).
    pub fn keep(&self, saved: KeepCheckpoints) -> KeepCheckpoints {
        match self.keep_epoch_checkpoints {
            true => KeepCheckpoints::Epochs,
            false => saved,
        }
    }
}

/// The settings of the training loop (Adam) shared by the supervised tasks.
#[derive(Args, Debug)]
pub struct LoopFlags {
    /// Epochs at most [with --resume: the run's].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Stop after this many epochs without a better validation score.
    #[arg(long, default_value_t = 3)]
    pub patience: usize,
    /// Examples (sequences, windows, sentences, utterances) per step.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
    /// Learning rate factor per epoch after --decay-after epochs.
    #[arg(long, default_value_t = 1.0)]
    pub lr_decay: f64,
    /// Epochs at the initial learning rate.
    #[arg(long, default_value_t = 1)]
    pub decay_after: usize,
    /// Maximum global gradient norm.
    #[arg(long, default_value_t = 5.0)]
    pub clip: f64,
    /// Decoupled weight decay (AdamW); 0 for plain Adam.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Validate and keep an exponential moving average of the weights with this momentum; 0
    /// for the raw weights.
    #[arg(long, default_value_t = 0.0)]
    pub ema: f64,
    /// Also validate every this many steps inside an epoch (0: at epoch ends only); the
    /// best-scoring weights of any validation are kept.
    #[arg(long, default_value_t = 0)]
    pub valid_every: usize,
    /// Seed of initialisation, shuffling and dropout.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl LoopFlags {
    /// A fresh run's loop settings: these flags, `epochs` when `--epochs` is not given, and the
    /// step limit and checkpoints of `run`.
    pub fn fit_config(&self, run: &RunFlags, epochs: usize) -> FitConfig {
        FitConfig {
            lr: self.lr,
            lr_decay: self.lr_decay,
            decay_after: self.decay_after,
            optimizer: Optimizer::Adam(AdamConfig {
                weight_decay: self.weight_decay,
                ..AdamConfig::default()
            }),
            clip: Some(self.clip),
            epochs: self.epochs.unwrap_or(epochs),
            early_stopping: EarlyStopping::Patience(self.patience),
            max_steps: run.max_steps,
            seed: self.seed,
            valid_every: (self.valid_every > 0).then_some(self.valid_every),
            ema: (self.ema != 0.0).then_some(self.ema),
            checkpoint_every: run.checkpoint_every(None),
            keep: run.keep(KeepCheckpoints::Latest),
            weight_decay: 0.0,
            asgd: None,
        }
    }

    /// A resumed run's loop settings: its own, with `--epochs` and the checkpoint flags when
    /// given.
    pub fn resumed(&self, run: &RunFlags, saved: FitConfig) -> FitConfig {
        FitConfig {
            epochs: self.epochs.unwrap_or(saved.epochs),
            checkpoint_every: run.checkpoint_every(saved.checkpoint_every),
            keep: run.keep(saved.keep),
            ..saved
        }
    }
}

/// The recurrent encoder.
#[derive(Args, Debug)]
pub struct EncoderFlags {
    /// Recurrent cell.
    #[arg(long, value_enum, default_value = "lstm")]
    pub cell: CellArg,
    /// Units per layer (per direction when bidirectional).
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
    /// Recurrent layers.
    #[arg(long, default_value_t = 1)]
    pub layers: usize,
}

impl EncoderFlags {
    /// The cell.
    pub fn cell(&self) -> CellKind {
        self.cell.into()
    }
}

/// The help of `--encoding` for a command that reads standard input.
pub const STDIN_ENCODING: &str =
    "Encoding of standard input, by its WHATWG label (latin1, windows-1252, utf-16le, ...) [default: utf-8]";

/// How dropout masks are drawn over time.
#[derive(Args, Debug, Clone, Copy)]
pub struct VariationalFlag {
    /// One dropout mask per sequence, shared over time (Gal & Ghahramani).
    #[arg(long)]
    pub variational: bool,
}

impl VariationalFlag {
    /// The mask sharing asked for.
    pub fn kind(&self) -> seqrnn::dropout::DropoutKind {
        match self.variational {
            true => seqrnn::dropout::DropoutKind::Variational,
            false => seqrnn::dropout::DropoutKind::Standard,
        }
    }
}

/// The encoding of the text files a command reads.
#[derive(Args, Debug, Clone, Copy)]
pub struct EncodingFlag {
    /// Encoding of the text files, by its WHATWG label: utf-8, latin1 (read as windows-1252),
    /// iso-8859-15, windows-1252, windows-1251, utf-16le, utf-16be, shift_jis, gbk, ...
    /// [default: utf-8; with a trained run: the run's]
    #[arg(long, value_name = "LABEL")]
    pub encoding: Option<Encoding>,
}

impl EncodingFlag {
    /// `--encoding`, or UTF-8.
    pub fn get(&self) -> Encoding {
        self.encoding.unwrap_or_default()
    }

    /// `--encoding`, or `run`'s (a trained run's, a resumed run's).
    pub fn or_run(&self, run: Encoding) -> Encoding {
        self.encoding.unwrap_or(run)
    }
}

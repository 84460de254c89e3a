//! The commands run from another program (the Python package's `seqrnn.train`): the same
//! argument list as on the command line, parsed by the same flags, with the embedding program's
//! stop signal and validation callback instead of this process's Ctrl-C handler and progress bar.

use std::cell::RefCell;
use std::rc::Rc;

use anyhow::Result;
use clap::Parser;
use seqrnn::train::checkpoint::{FitEpoch, FitState};
use seqrnn::train::{Progress, StepInfo};

use crate::progress::{Shown, TrainProgress};

/// What the embedding program gives a command.
pub struct Embedding {
    /// Polled once a training step: `true` stops the training after writing a checkpoint (the
    /// command then fails with an error [`is_interrupted`] recognises).
    pub should_stop: Box<dyn Fn() -> bool>,
    /// Called at each validation with its figures (see [`metrics`]); when given, the command
    /// draws no progress of its own.
    pub validated: Option<Box<dyn FnMut(serde_json::Value)>>,
    /// How to go on after a stop, said in the message printed after the checkpoint (for
    /// example, the call with `resume=True`).
    pub resume_hint: String,
}

thread_local! {
    static EMBEDDING: RefCell<Option<Rc<RefCell<Embedding>>>> = const { RefCell::new(None) };
}

/// Whether a command runs inside [`run`] on this thread.
pub fn active() -> bool {
    EMBEDDING.with(|e| e.borrow().is_some())
}

fn current() -> Option<Rc<RefCell<Embedding>>> {
    EMBEDDING.with(|e| e.borrow().clone())
}

/// Runs the command of `args` (without the program name: `["train", "--out", "runs/x", ...]`)
/// on this thread, as the binary would, but with `embedding`'s stop signal and progress. The
/// caller sets the thread count (the commands' `--threads` does nothing here).
///
/// # Errors
/// Unknown or invalid flags (clap's message), and every error of the command.
pub fn run(args: &[String], embedding: Embedding) -> Result<()> {
    let argv = std::iter::once("seqrnn".to_string()).chain(args.iter().cloned());
    let cli = crate::Cli::try_parse_from(argv).map_err(|e| anyhow::anyhow!("{}", e.render()))?;
    anyhow::ensure!(
        !matches!(cli.command, crate::Command::Bench { .. }),
        "the benchmarks run from the command line only"
    );
    EMBEDDING.with(|e| *e.borrow_mut() = Some(Rc::new(RefCell::new(embedding))));
    let out = crate::run(cli.command);
    EMBEDDING.with(|e| *e.borrow_mut() = None);
    out
}

/// Whether `e` is a training stopped at a checkpoint by [`Embedding::should_stop`].
pub fn is_interrupted(e: &anyhow::Error) -> bool {
    e.is::<crate::Interrupted>()
}

/// Whether `e` comes from a file or folder that does not exist.
pub fn is_not_found(e: &anyhow::Error) -> bool {
    e.chain().any(|c| match c.downcast_ref::<seqrnn::Error>() {
        Some(seqrnn::Error::Io { cause, .. }) => cause.kind() == std::io::ErrorKind::NotFound,
        _ => c
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound),
    })
}

/// `e` as the binary prints it after `error: `, with its advice.
pub fn message(e: &anyhow::Error) -> String {
    format!("{e:#}{}", crate::advice(e))
}

/// The resume hint of the command running on this thread, if it is embedded.
pub(crate) fn resume_hint() -> Option<String> {
    current().map(|e| e.borrow().resume_hint.clone())
}

/// One validation's figures as the callback gets them: `epoch`, `step`, `epoch_end`, `lr`,
/// `train_loss`, `valid_loss`, `valid_score` (higher is better: −perplexity, accuracy, F1,
/// 1 − WER or −MSE), `examples_per_s`, `seconds`, `examples_seen` and `best`.
pub fn metrics(r: &FitEpoch, best: bool) -> serde_json::Value {
    serde_json::json!({
        "epoch": r.epoch,
        "step": r.step,
        "epoch_end": r.epoch_end,
        "lr": r.lr,
        "train_loss": r.train_loss,
        "valid_loss": r.valid_loss,
        "valid_score": r.valid_score,
        "examples_per_s": r.examples_per_s,
        "seconds": r.seconds,
        "examples_seen": r.examples_seen,
        "best": best,
    })
}

/// The progress of an embedded command: the binary's lines (no Ctrl-C handler), or only the
/// callback when there is one; stops when the embedding says so.
pub(crate) struct EmbeddedProgress {
    embedding: Rc<RefCell<Embedding>>,
    shown: Option<TrainProgress>,
}

impl EmbeddedProgress {
    /// The progress of the embedded command on this thread, if there is one.
    pub(crate) fn new(shown: Shown) -> Option<Self> {
        let embedding = current()?;
        let quiet = embedding.borrow().validated.is_some();
        Some(EmbeddedProgress {
            embedding,
            shown: (!quiet).then(|| TrainProgress::without_signals(shown)),
        })
    }
}

impl Progress for EmbeddedProgress {
    fn resumed(&mut self, s: &FitState) {
        if let Some(p) = self.shown.as_mut() {
            p.resumed(s);
        }
    }

    fn epoch_start(&mut self, epoch: usize, steps: usize) {
        if let Some(p) = self.shown.as_mut() {
            p.epoch_start(epoch, steps);
        }
    }

    fn step(&mut self, s: &StepInfo) {
        if let Some(p) = self.shown.as_mut() {
            p.step(s);
        }
    }

    fn validating(&mut self, epoch: usize) {
        if let Some(p) = self.shown.as_mut() {
            p.validating(epoch);
        }
    }

    fn validated(&mut self, r: &FitEpoch, best: bool) {
        if let Some(p) = self.shown.as_mut() {
            p.validated(r, best);
        }
        if let Some(f) = self.embedding.borrow_mut().validated.as_mut() {
            f(metrics(r, best));
        }
    }

    fn averaging_started(&mut self, epoch: usize) {
        if let Some(p) = self.shown.as_mut() {
            p.averaging_started(epoch);
        }
    }

    fn should_stop(&self) -> bool {
        (self.embedding.borrow().should_stop)()
    }
}

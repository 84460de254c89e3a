//! Training progress of every training command: a bar on a terminal, plain lines otherwise, one
//! summary line per validation; Ctrl-C asks the loop to stop after a checkpoint.

use std::io::{IsTerminal, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};

use indicatif::{ProgressBar, ProgressStyle};
use seqrnn::train::checkpoint::{FitEpoch, FitState};
use seqrnn::train::{Progress, StepInfo};

/// Makes Ctrl-C (SIGINT) and SIGTERM set the returned flag instead of ending the process, so
/// that training can write a checkpoint first; a second signal ends the process at once (exit
/// code 130; every file is written atomically, so nothing is left half-written).
pub fn stop_on_ctrl_c() -> Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag as it was before this signal.
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&flag))
            .context("could not install the Ctrl-C handler")?;
        signal_hook::flag::register(sig, Arc::clone(&flag))
            .context("could not install the Ctrl-C handler")?;
    }
    Ok(flag)
}

/// The progress of an MPI rank other than 0: prints nothing, and stops on Ctrl-C or SIGTERM
/// as rank 0 does (the loop stops every rank at the same step).
pub struct RankProgress {
    stop: Arc<AtomicBool>,
}

impl RankProgress {
    pub fn new() -> Result<Self> {
        Ok(RankProgress {
            stop: stop_on_ctrl_c()?,
        })
    }
}

impl Progress for RankProgress {
    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

impl Drop for TrainProgress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// How a task's losses and validation score are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    /// Cross-entropy per token: perplexities, tokens per second.
    Perplexity,
    /// The score is −MSE: `valid mse`.
    NegMse,
    /// The score is an accuracy in [0, 1]: a percentage.
    Accuracy,
    /// The score is an entity F1 in [0, 1]: a percentage.
    F1,
    /// The score is `1 − WER`: the word error rate as a percentage.
    Wer,
}

pub struct TrainProgress {
    bar: Option<ProgressBar>,
    terminal: bool,
    next_line: usize,
    shown: Shown,
    stop: Arc<AtomicBool>,
    told: AtomicBool,
    /// `epoch,step,loss` of every step, appended to the file `SEQRNN_STEP_LOG` names.
    step_log: Option<std::io::BufWriter<std::fs::File>>,
}

/// The step log `SEQRNN_STEP_LOG` asks for (see docs/distributed.md), opened for appending.
fn open_step_log() -> Result<Option<std::io::BufWriter<std::fs::File>>> {
    let Some(path) = std::env::var_os("SEQRNN_STEP_LOG") else {
        return Ok(None);
    };
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("could not open the step log {}", path.to_string_lossy()))?;
    Ok(Some(std::io::BufWriter::new(f)))
}

impl TrainProgress {
    /// Progress showing figures as `shown`; Ctrl-C and SIGTERM stop the loop after a checkpoint.
    pub fn new(shown: Shown) -> Result<Self> {
        Ok(TrainProgress {
            bar: None,
            terminal: std::io::stderr().is_terminal(),
            next_line: 0,
            shown,
            stop: stop_on_ctrl_c()?,
            told: AtomicBool::new(false),
            step_log: open_step_log()?,
        })
    }

    /// Progress without a Ctrl-C handler, for a command run from another program (which
    /// decides when to stop: [`crate::embed`]).
    pub fn without_signals(shown: Shown) -> Self {
        TrainProgress {
            bar: None,
            terminal: std::io::stderr().is_terminal(),
            next_line: 0,
            shown,
            stop: Arc::new(AtomicBool::new(false)),
            told: AtomicBool::new(false),
            step_log: None,
        }
    }

    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        if let Some(f) = self.step_log.as_mut() {
            let _ = std::io::Write::flush(f);
        }
    }

    fn line(&mut self, line: String, keep_bar: bool) {
        match (&self.bar, keep_bar) {
            (Some(b), true) => b.println(line),
            _ => {
                self.finish();
                eprintln!("{line}");
            }
        }
    }

    /// The summary of a validation row.
    fn summary(&self, r: &FitEpoch, best: bool) -> String {
        if self.shown == Shown::Perplexity {
            return format!(
                "epoch {:>3}  lr {:<10.6}  train ppl {:>8.2}  valid ppl {:>8.2}  {:>7.0} tok/s  {:>6.1} s",
                r.epoch,
                r.lr,
                r.train_loss.exp(),
                -r.valid_score,
                r.examples_per_s,
                r.seconds
            );
        }
        let score = match self.shown {
            Shown::Accuracy => format!(
                "valid loss {:.4}  valid accuracy {:.2}%",
                r.valid_loss,
                100.0 * r.valid_score
            ),
            Shown::F1 => format!(
                "valid loss {:.4}  valid F1 {:.2}",
                r.valid_loss,
                100.0 * r.valid_score
            ),
            Shown::Wer => format!(
                "valid loss {:.4}  valid WER {:.2}%",
                r.valid_loss,
                100.0 * (1.0 - r.valid_score)
            ),
            _ => format!("valid mse {:.4}", -r.valid_score),
        };
        let at = match r.epoch_end {
            true => format!("epoch {:>3}", r.epoch),
            false => format!("epoch {:>3} step {}", r.epoch, r.step),
        };
        format!(
            "{at}  lr {:<9.6}  train loss {:.4}  {score}{}  {:>6.0} examples/s  {:>6.1} s",
            r.lr,
            r.train_loss,
            if best { " *" } else { "  " },
            r.examples_per_s,
            r.seconds
        )
    }
}

impl Progress for TrainProgress {
    fn resumed(&mut self, s: &FitState) {
        match &s.partial {
            Some(p) => eprintln!(
                "resuming in epoch {} at step {} ({} steps done)",
                s.epochs_done + 1,
                p.step,
                s.steps_done
            ),
            None => eprintln!(
                "resuming after epoch {} ({} steps done)",
                s.epochs_done, s.steps_done
            ),
        }
    }

    fn epoch_start(&mut self, epoch: usize, steps: usize) {
        self.finish();
        if self.terminal {
            let bar = ProgressBar::new(steps as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "epoch {prefix:>3} {bar:30} {pos}/{len} {msg} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_prefix(epoch.to_string());
            self.bar = Some(bar);
        }
        self.next_line = steps.div_ceil(10).max(1);
    }

    fn step(&mut self, s: &StepInfo) {
        if let Some(f) = self.step_log.as_mut() {
            let _ = writeln!(f, "{},{},{}", s.epoch, s.step, s.step_loss);
        }
        let msg = match self.shown {
            Shown::Perplexity => format!(
                "loss {:.3} ppl {:.1} {:.0} tok/s",
                s.loss,
                s.loss.exp(),
                s.tokens_per_s
            ),
            _ => format!("loss {:.4} {:.0} examples/s", s.loss, s.tokens_per_s),
        };
        if let Some(b) = &self.bar {
            b.set_position(s.step as u64);
            b.set_message(msg);
        } else if s.step >= self.next_line || s.step == s.steps {
            eprintln!("epoch {} step {}/{}: {msg}", s.epoch, s.step, s.steps);
            self.next_line = s.step + s.steps.div_ceil(10).max(1);
        }
    }

    fn validating(&mut self, epoch: usize) {
        if let Some(b) = &self.bar {
            b.set_message(format!("validating epoch {epoch}…"));
        }
    }

    fn validated(&mut self, r: &FitEpoch, best: bool) {
        let line = self.summary(r, best);
        self.line(line, !r.epoch_end);
    }

    fn averaging_started(&mut self, epoch: usize) {
        self.line(
            format!(
                "NT-ASGD: validation stopped improving; averaging the weights from epoch {} on",
                epoch + 1
            ),
            false,
        );
    }

    fn should_stop(&self) -> bool {
        let stop = self.stop.load(Ordering::Relaxed);
        if stop && !self.told.swap(true, Ordering::Relaxed) {
            let msg = "stopping: writing a checkpoint (Ctrl-C again quits at once)";
            match &self.bar {
                Some(b) => b.println(msg),
                None => eprintln!("{msg}"),
            }
        }
        stop
    }
}

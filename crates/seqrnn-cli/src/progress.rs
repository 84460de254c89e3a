//! Training progress: a bar on a terminal, plain lines otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};

use indicatif::{ProgressBar, ProgressStyle};
use seqrnn::report::metrics::EpochMetrics;
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

pub struct TrainProgress {
    bar: Option<ProgressBar>,
    terminal: bool,
    next_line: usize,
    stop: Arc<AtomicBool>,
    told: AtomicBool,
}

impl TrainProgress {
    pub fn new() -> Self {
        TrainProgress {
            bar: None,
            terminal: std::io::stderr().is_terminal(),
            next_line: 0,
            stop: Arc::new(AtomicBool::new(false)),
            told: AtomicBool::new(false),
        }
    }

    /// Stops training when `stop` is set (see [`stop_on_ctrl_c`]).
    pub fn with_stop(self, stop: Arc<AtomicBool>) -> Self {
        TrainProgress { stop, ..self }
    }

    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Progress for TrainProgress {
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
        let msg = format!(
            "loss {:.3} ppl {:.1} {:.0} tok/s",
            s.loss,
            s.loss.exp(),
            s.tokens_per_s
        );
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

    fn should_stop(&self) -> bool {
        let stop = self.stop.load(Ordering::Relaxed);
        if stop && !self.told.swap(true, Ordering::Relaxed) {
            match &self.bar {
                Some(b) => b.println("stopping: writing a checkpoint (Ctrl-C again quits at once)"),
                None => {
                    eprintln!("stopping: writing a checkpoint (Ctrl-C again quits at once)")
                }
            }
        }
        stop
    }

    fn epoch_end(&mut self, m: &EpochMetrics) {
        self.finish();
        eprintln!(
            "epoch {:>3}  lr {:<10.6}  train ppl {:>8.2}  valid ppl {:>8.2}  {:>7.0} tok/s  {:>6.1} s",
            m.epoch, m.lr, m.train_ppl, m.valid_ppl, m.tokens_per_s, m.seconds
        );
    }
}

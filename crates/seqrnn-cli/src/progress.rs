//! Training progress: a bar on a terminal, plain lines otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use seqrnn::report::metrics::EpochMetrics;
use seqrnn::train::{Progress, StepInfo};

pub struct TrainProgress {
    bar: Option<ProgressBar>,
    terminal: bool,
    next_line: usize,
}

impl TrainProgress {
    pub fn new() -> Self {
        TrainProgress {
            bar: None,
            terminal: std::io::stderr().is_terminal(),
            next_line: 0,
        }
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

    fn epoch_end(&mut self, m: &EpochMetrics) {
        self.finish();
        eprintln!(
            "epoch {:>3}  lr {:<10.6}  train ppl {:>8.2}  valid ppl {:>8.2}  {:>7.0} tok/s  {:>6.1} s",
            m.epoch, m.lr, m.train_ppl, m.valid_ppl, m.tokens_per_s, m.seconds
        );
    }
}

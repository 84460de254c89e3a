//! Progress of the supervised commands (`forecast train`, `classify train`): a bar on a terminal,
//! plain lines otherwise, one summary line per epoch.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use seqrnn::run::RunDir;
use seqrnn::train::fit::{
    fit, fit_resumed, FitCheckpoint, FitConfig, FitEpoch, FitOutcome, FitProgress, SupervisedTask,
};
use seqrnn::train::StepInfo;

/// How the validation score is shown at the end of an epoch.
#[derive(Clone, Copy, Debug)]
pub enum ScoreShown {
    /// The score is −MSE: print `valid mse`.
    NegMse,
    /// The score is an accuracy in [0, 1]: print a percentage.
    Accuracy,
}

pub struct FitBar {
    bar: Option<ProgressBar>,
    terminal: bool,
    next_line: usize,
    shown: ScoreShown,
}

impl FitBar {
    pub fn new(shown: ScoreShown) -> Self {
        FitBar {
            bar: None,
            terminal: std::io::stderr().is_terminal(),
            next_line: 0,
            shown,
        }
    }

    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl FitProgress for FitBar {
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
        let msg = format!("loss {:.4} {:.0} examples/s", s.loss, s.tokens_per_s);
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

    fn epoch_end(&mut self, r: &FitEpoch, _score_name: &str, best: bool) {
        let score = match self.shown {
            ScoreShown::NegMse => format!("valid mse {:.4}", -r.valid_score),
            ScoreShown::Accuracy => format!(
                "valid loss {:.4}  valid accuracy {:.2}%",
                r.valid_loss,
                100.0 * r.valid_score
            ),
        };
        let at = if r.epoch_end {
            format!("epoch {:>3}", r.epoch)
        } else {
            format!("epoch {:>3} step {}", r.epoch, r.step)
        };
        let line = format!(
            "{at}  lr {:<9.6}  train loss {:.4}  {score}{}  {:>6.0} examples/s  {:>6.1} s",
            r.lr,
            r.train_loss,
            if best { " *" } else { "  " },
            r.examples_per_s,
            r.seconds
        );
        match (&self.bar, r.epoch_end) {
            (Some(b), false) => b.println(line),
            _ => {
                self.finish();
                eprintln!("{line}");
            }
        }
    }
}

/// Trains `task` with a progress bar, from scratch or on from `resume`. `save_config` writes the
/// run's `config.json` first, except before a resume the loop will refuse (a complete or
/// early-stopped run), so a refused resume leaves the run as it was. A fresh run that fails
/// before its first checkpoint removes its `config.json`, so the folder is not taken for a run.
pub fn train_supervised(
    task: &mut dyn SupervisedTask,
    params: &mut [f32],
    cfg: &FitConfig,
    run: &RunDir,
    shown: ScoreShown,
    resume: Option<FitCheckpoint>,
    save_config: impl FnOnce() -> seqrnn::error::Result<()>,
) -> anyhow::Result<FitOutcome> {
    let mut bar = FitBar::new(shown);
    let fresh = resume.is_none();
    let goes_on = resume
        .as_ref()
        .is_none_or(|ck| ck.state.epochs_done < cfg.epochs && !ck.state.stopped_early);
    if goes_on {
        save_config()?;
    }
    let outcome = match resume {
        Some(ck) => fit_resumed(task, params, cfg, run, &mut bar, Some(ck)),
        None => fit(task, params, cfg, run, &mut bar),
    };
    bar.finish();
    outcome.map_err(|e| {
        if fresh && !run.checkpoint_path().is_file() {
            let _ = std::fs::remove_file(run.config_path());
        }
        e.into()
    })
}

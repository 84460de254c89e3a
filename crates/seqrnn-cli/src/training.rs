//! What every training command does around the library's one loop: open the run folder (fresh,
//! forced or resumed), draw progress, and on Ctrl-C say how to go on.

use std::path::Path;

use anyhow::{bail, Result};
use seqrnn::error::Error;
use seqrnn::run::{Existing, Run};
use seqrnn::train::{FitConfig, FitOutcome, RunEnd, Task};

use crate::progress::{Shown, TrainProgress};

/// The run to go on with (`--resume`), or `None` for a fresh one; refuses both flags at once.
pub fn resumed_run(out: &Path, resume: bool, force: bool) -> Result<Option<Run>> {
    if resume && force {
        bail!("--resume and --force contradict each other: choose one");
    }
    Ok(match resume {
        true => Some(Run::resume(out)?),
        false => None,
    })
}

/// A fresh run in `out` with `config` as its `config.json`, replacing a run there with
/// `--force`.
pub fn new_run(out: &Path, force: bool, config: &impl serde::Serialize) -> Result<Run> {
    let existing = match force {
        true => Existing::Replace,
        false => Existing::Refuse,
    };
    Run::create(out, config, existing).map_err(|e| match e {
        Error::RunExists { .. } => {
            anyhow::anyhow!("{e}: pass --resume to continue it or --force to replace it")
        }
        e => e.into(),
    })
}

/// Trains `task` with a progress bar; see [`seqrnn::train::fit`].
pub fn fit(
    task: &mut dyn Task,
    params: &mut [f32],
    cfg: &FitConfig,
    run: &Run,
    shown: Shown,
) -> Result<FitOutcome> {
    let mut progress = TrainProgress::new(shown)?;
    let out = seqrnn::train::fit(task, params, cfg, run, &mut progress);
    progress.finish();
    let out = out.map_err(|e| resume_advice(e, run))?;
    stop_if_interrupted(out.end, out.steps, run)?;
    Ok(out)
}

/// A checkpoint that cannot be read gets the way out: start again.
pub fn resume_advice(e: Error, run: &Run) -> anyhow::Error {
    match &e {
        Error::Format { path, .. } | Error::Io { path, .. }
            if *path == run.dir().checkpoint_path() =>
        {
            anyhow::Error::new(e).context(
                "cannot resume from the run's checkpoint; start the run again with --force",
            )
        }
        _ => e.into(),
    }
}

/// After Ctrl-C: says where the position is and the command that goes on; exit code 130.
pub fn stop_if_interrupted(end: RunEnd, steps: u64, run: &Run) -> Result<()> {
    if end == RunEnd::Interrupted {
        eprintln!(
            "interrupted after {steps} steps; the checkpoint in {} holds the position. Continue with:\n  {}",
            run.dir().dir.display(),
            resume_command()
        );
        return Err(crate::Interrupted.into());
    }
    Ok(())
}

/// This process's command line with `--resume` (and without `--force`), as it was invoked:
/// through `cargo run` when cargo started it.
fn resume_command() -> String {
    let mut args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--force")
        .collect();
    if !args.iter().any(|a| a == "--resume") {
        args.push("--resume".into());
    }
    let quoted = args.iter().map(|a| {
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c)) {
            format!("'{}'", a.replace('\'', r"'\''"))
        } else {
            a.clone()
        }
    });
    std::iter::once(program().to_string())
        .chain(quoted)
        .collect::<Vec<_>>()
        .join(" ")
}

/// How this program was started: `seqrnn`, or `cargo run --release -p seqrnn-cli --` when cargo
/// started it (as the README does).
pub fn program() -> &'static str {
    let by_cargo = std::env::var("CARGO_PKG_NAME").is_ok_and(|p| p == "seqrnn-cli")
        && std::env::var_os("CARGO").is_some();
    match by_cargo {
        true => "cargo run --release -p seqrnn-cli --",
        false => "seqrnn",
    }
}

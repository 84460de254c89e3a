//! What every training command does around the library's one loop: open the run folder (fresh,
//! forced or resumed), draw progress, and on Ctrl-C say how to go on.

use std::cell::RefCell;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Result};
use seqrnn::dist::Group;
use seqrnn::error::Error;
use seqrnn::run::{Existing, Run, RunConfig, RunKind};
use seqrnn::train::{FitConfig, FitOutcome, Progress, RunEnd, Task};

use crate::flags::RunFlags;
use crate::progress::{RankProgress, Shown, TrainProgress};

thread_local! {
    /// The processes this one trains with (one, or the ranks of an MPI job).
    static GROUP: RefCell<Group> = RefCell::new(Group::single());
}

/// Sets the group of [`group`] (once, in `main`).
pub fn set_group(group: Group) {
    GROUP.with(|g| *g.borrow_mut() = group);
}

/// The processes this one trains with.
pub fn group() -> Group {
    GROUP.with(|g| g.borrow().clone())
}

/// Whether this process prints: on one process, or rank 0 of an MPI job (the other ranks
/// print nothing but errors).
pub fn is_root() -> bool {
    GROUP.with(|g| g.borrow().is_root())
}

/// How many ranks of the job run on this machine (1 outside an MPI job).
pub fn ranks_on_this_machine() -> usize {
    [
        "OMPI_COMM_WORLD_LOCAL_SIZE",
        "MPI_LOCALNRANKS",
        "SLURM_NTASKS_PER_NODE",
    ]
    .iter()
    .find_map(|k| std::env::var(k).ok()?.parse::<usize>().ok())
    .unwrap_or(1)
    .max(1)
}

/// A rank's error: printed unless another rank tells it ([`Error::RankFailed`]), then every
/// rank of the job is ended (MPI_Abort), so none waits on this one.
pub fn fail_rank(group: &Group, e: &anyhow::Error, advice: &str) -> ExitCode {
    let other = e
        .chain()
        .any(|c| matches!(c.downcast_ref::<Error>(), Some(Error::RankFailed { .. })));
    match (other, group.rank()) {
        // Another rank tells the error: give it time to print and end the job.
        (true, _) => std::thread::sleep(std::time::Duration::from_secs(2)),
        (false, 0) => say(&format!("error: {e:#}{advice}")),
        (false, r) => say(&format!("error (rank {r}): {e:#}{advice}")),
    }
    group.abort(1)
}

/// Writes `line` to standard error in one piece, so that the lines of several ranks sharing a
/// terminal do not interleave.
pub fn say(line: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// The run to go on with (`--resume`), or `None` for a fresh one; refuses both flags at once.
pub fn resumed_run(out: &Path, resume: bool, force: bool) -> Result<Option<Run>> {
    if resume && force {
        bail!("--resume and --force contradict each other: choose one");
    }
    Ok(match resume {
        true => Some(Run::resume_in(&group(), out)?),
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
    Run::create_in(&group(), out, config, existing).map_err(|e| match e {
        Error::RunExists { .. } => {
            anyhow::anyhow!("{e}: pass --resume to continue it or --force to replace it")
        }
        e => e.into(),
    })
}

/// A resumed run and its configuration.
pub type Resumed<M, T, D> = (Run, RunConfig<M, T, D>);

/// With `--resume`, the run to go on with and its configuration; `None` for a fresh run.
pub fn resumed<M, T, D>(f: &RunFlags) -> Result<Option<Resumed<M, T, D>>>
where
    RunConfig<M, T, D>: RunKind,
{
    match resumed_run(&f.out, f.resume, f.force)? {
        Some(run) => {
            let config = RunConfig::load(run.dir())?;
            Ok(Some((run, config)))
        }
        None => Ok(None),
    }
}

/// The run to train in: the resumed one, which takes `config`, or a fresh one in `--out`
/// with `config` (see [`new_run`]), into which the writing process puts the task's own files
/// with `write`.
pub fn open_run(
    resumed: Option<Run>,
    f: &RunFlags,
    config: &impl serde::Serialize,
    write: impl FnOnce(&Run) -> Result<()>,
) -> Result<Run> {
    match resumed {
        Some(mut run) => {
            run.set_config(config)?;
            Ok(run)
        }
        None => {
            let run = new_run(&f.out, f.force, config)?;
            if run.is_writer() {
                write(&run)?;
            }
            Ok(run)
        }
    }
}

/// Ends a finished run: `summary` becomes its `summary.json` and is printed with `--json`;
/// otherwise `line` is.
pub fn finish(
    run: &Run,
    summary: &serde_json::Value,
    json: bool,
    line: impl FnOnce() -> String,
) -> Result<()> {
    run.finish(summary)?;
    match json {
        true => println!("{summary}"),
        false => println!("{}", line()),
    }
    Ok(())
}

/// Trains `task` with a progress bar; see [`seqrnn::train::fit`].
pub fn fit(
    task: &mut dyn Task,
    params: &mut [f32],
    cfg: &FitConfig,
    run: &Run,
    shown: Shown,
) -> Result<FitOutcome> {
    let mut progress = progress(shown)?;
    let out = seqrnn::train::fit(task, params, cfg, run, progress.as_mut());
    drop(progress);
    let out = out.map_err(|e| resume_advice(e, run))?;
    stop_if_interrupted(out.end, out.steps, run)?;
    report_allreduce(&out);
    Ok(out)
}

/// Progress bars on rank 0 (and on one process); nothing on the other ranks.
pub fn progress(shown: Shown) -> Result<Box<dyn Progress>> {
    if let Some(p) = crate::embed::EmbeddedProgress::new(shown) {
        return Ok(Box::new(p));
    }
    Ok(match is_root() {
        true => Box::new(TrainProgress::new(shown)?),
        false => Box::new(RankProgress::new()?),
    })
}

/// In a data-parallel run, the time spent summing gradients across ranks (rank 0).
pub fn report_allreduce(out: &FitOutcome) {
    let g = group();
    if g.is_distributed() && g.is_root() && out.steps > 0 {
        eprintln!(
            "{} ranks: gradient allreduce {:.2} ms per step",
            g.size(),
            1e3 * out.allreduce_seconds / out.steps as f64
        );
    }
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
        if is_root() {
            eprintln!(
                "interrupted after {steps} steps; the checkpoint in {} holds the position. Continue with:\n  {}",
                run.dir().dir.display(),
                resume_command()
            );
        }
        return Err(crate::Interrupted.into());
    }
    Ok(())
}

/// This process's command line with `--resume` (and without `--force`), as it was invoked:
/// through `cargo run` when cargo started it, under `mpirun` for a data-parallel run.
fn resume_command() -> String {
    if let Some(hint) = crate::embed::resume_hint() {
        return hint;
    }
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
    // A data-parallel run goes on under mpirun (any rank count the batch allows).
    let g = group();
    let launcher = g
        .is_distributed()
        .then(|| format!("mpirun -np {}", g.size()));
    launcher
        .into_iter()
        .chain(std::iter::once(program().to_string()))
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

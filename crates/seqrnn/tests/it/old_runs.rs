//! The `config.json` files of runs written by earlier versions (`docs/runs/`, the documented
//! trainings) still load with this build's one run configuration: the language model's written
//! before runs named their task, the last-token, tagging, speech and forecasting runs'.

use std::path::{Path, PathBuf};

use seqrnn::run::RunDir;

/// The documented runs: the folders under `docs/runs/` that hold a `config.json`, up to three
/// levels down (an ensemble's members: `tag-conll2003/ensemble/seed-2`).
fn documented_runs() -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        if dir.join("config.json").is_file() {
            out.push(dir.to_path_buf());
        }
        if depth == 0 {
            return;
        }
        for e in std::fs::read_dir(dir).expect("a readable folder") {
            let p = e.expect("a folder entry").path();
            if p.is_dir() {
                walk(&p, depth - 1, out);
            }
        }
    }
    let runs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/runs");
    let mut dirs = Vec::new();
    walk(&runs, 3, &mut dirs);
    dirs.sort();
    dirs
}

#[test]
fn documented_runs_configurations_load() {
    let mut tasks = Vec::new();
    for dir in documented_runs() {
        let task = seqrnn::tasks::task_of(&dir).expect("a known task");
        let run = RunDir::new(&dir);
        let loaded = match task {
            "lm" => seqrnn::lm::LmRunConfig::load(&run).map(|c| c.task),
            "last-token" => seqrnn::last_token::LastTokenRunConfig::load(&run).map(|c| c.task),
            "tag" => seqrnn::tag::TagRunConfig::load(&run).map(|c| c.task),
            "speech" => seqrnn::speech::SpeechRunConfig::load(&run).map(|c| c.task),
            "forecast" => seqrnn::forecast::ForecastRunConfig::load(&run).map(|c| c.task),
            other => panic!("{}: no check for a `{other}` run yet", dir.display()),
        };
        let name = loaded.unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        tasks.push(task);
        // A language model's run written before runs named their task reads as "lm".
        assert!(
            name == task || (name.is_empty() && task == "lm"),
            "{name} {task}"
        );
    }
    tasks.sort_unstable();
    tasks.dedup();
    assert_eq!(tasks, ["forecast", "last-token", "lm", "speech", "tag"]);
}

//! The `config.json` files of runs written by earlier versions (`docs/runs/`, the documented
//! trainings) still load with this build's one run configuration: the language model's written
//! before runs named their task, the last-token, tagging, speech and forecasting runs'.

use std::path::{Path, PathBuf};

use seqrnn::run::RunDir;

/// The documented runs: the folders of `docs/runs/` with a `config.json`, and those one level
/// down (the members of an ensemble).
fn documented_runs() -> Vec<PathBuf> {
    let runs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/runs");
    let list = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .expect("docs/runs is part of the repository")
            .map(|e| e.expect("a folder entry").path())
            .filter(|p| p.is_dir())
            .collect()
    };
    let mut dirs: Vec<PathBuf> = list(&runs)
        .into_iter()
        .flat_map(|p| match p.join("config.json").is_file() {
            true => vec![p],
            false => list(&p),
        })
        .filter(|p| p.join("config.json").is_file())
        .collect();
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

//! Comparison reports: several training runs side by side, as `report.md`, a self-contained
//! `report.html`, `report.json` and two PNG charts of the validation metric.
//!
//! A run is read from its folder ([`load_run`]): `config.json` says what it is, `metrics.csv`
//! gives its per-epoch curve, and an optional `summary.json` ([`RunSummary`], written by
//! `seqrnn compare` after training) holds figures measured once at the end: the test metric,
//! evaluation speed and peak memory. Figures a run did not record can be measured from its saved
//! weights with [`measure_lm`]. [`write_report`] checks that the runs are comparable (same task,
//! same data kind) and writes the report.
//!
//! Language-model runs report perplexity against training tokens seen. Runs of the supervised
//! tasks (a `config.json` with a `task` field, and a `metrics.csv` with `epoch`, `seconds`,
//! `valid_loss` and usually a `valid_<score>` column, higher is better, such as `accuracy` or
//! `neg_mse`) report their validation score against epochs, since their metrics hold no example
//! count.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::TokenKind;
use crate::error::{Error, Result};
use crate::io::tensors::TensorFile;
use crate::io::write_atomic;
use crate::report::metrics::read_metrics;
use crate::report::plot::{line_chart, Series};
use crate::run::{task_of, RunDir, LANGUAGE_MODEL_TASK};
use crate::tasks::lm::{LmRunConfig, TokenKindName};

pub use crate::run::SUMMARY_FILE;

/// Figures of one evaluation of a run's best weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalFigures {
    /// The split evaluated: `test`, or `valid` for corpora without a test split.
    pub split: String,
    /// The metric on that split (perplexity for language models).
    pub value: f64,
    /// Tokens (or examples) evaluated.
    pub count: usize,
    /// Evaluation speed, tokens (or examples) per second.
    pub per_s: f64,
    /// Threads the evaluation ran on.
    pub threads: usize,
    /// Peak resident memory of the process while it loaded the model and the split and
    /// evaluated (Linux only; the peak is reset before loading).
    pub peak_rss_bytes: Option<u64>,
}

/// `summary.json` of a run: figures measured once at the end of training.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Evaluation of the best-on-validation weights.
    pub eval: Option<EvalFigures>,
    /// Peak resident memory of the process during training (Linux only).
    pub train_peak_rss_bytes: Option<u64>,
    /// Threads training ran on.
    pub train_threads: Option<usize>,
    /// Wall-clock seconds of the whole training, validation included.
    pub train_seconds: Option<f64>,
}

impl RunSummary {
    /// Reads `summary.json` of the run in `dir`; `Ok(None)` when the run has none.
    ///
    /// # Errors
    /// [`Error::Io`] when the file exists but cannot be read, [`Error::Format`] when it is
    /// not a summary.
    pub fn load(dir: &Path) -> Result<Option<RunSummary>> {
        let path = dir.join(SUMMARY_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.clone(),
            cause: source,
        })?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Format {
                path,
                message: format!("not a run summary ({e})"),
            })
    }

    /// Writes `summary.json` into `dir`, atomically.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be written.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(SUMMARY_FILE);
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Format {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write_atomic(&path, text.as_bytes())
    }
}

/// The quantity a report compares and how its runs progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Metric {
    /// Name of the validation metric, e.g. `perplexity` or `accuracy`.
    pub name: String,
    /// Whether lower values are better (perplexity, loss) or higher (accuracy).
    pub lower_is_better: bool,
    /// What the x axis of the progress chart counts: `tokens` or `epochs`.
    pub progress: String,
    /// What throughput counts per second: `tokens` or `examples`.
    pub unit: String,
}

/// One validation point of a run's curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CurvePoint {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Training progress: tokens seen (language models) or the epoch.
    pub progress: f64,
    /// Wall-clock seconds from the start of training to the end of this epoch's validation.
    pub seconds: f64,
    /// Validation metric after this epoch.
    pub valid: f64,
    /// Training throughput of this epoch (tokens or examples per second).
    pub train_per_s: f64,
}

/// A run as a report sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReportRun {
    /// Short name (the folder name, made unique within a report).
    pub name: String,
    /// The run folder.
    pub dir: PathBuf,
    /// Task: `lm` or the supervised task's name (`forecast`, `classify`, …).
    pub task: String,
    /// Data kind within the task: `word` or `char` for language models, empty otherwise.
    pub data_kind: String,
    /// Vocabulary size (language models) or 0.
    pub vocab: usize,
    /// The compared metric.
    pub metric: Metric,
    /// Model description, e.g. `LSTM 2×200`.
    pub model: String,
    /// Recurrent cell name, e.g. `lstm`.
    pub cell: String,
    /// Trainable parameters.
    pub params: usize,
    /// The validation curve, one point per epoch.
    pub curve: Vec<CurvePoint>,
    /// The end-of-training summary, if the run has one (or measurements added later).
    pub summary: RunSummary,
}

impl ReportRun {
    /// The best validation point (lowest or highest by the metric), if any is finite.
    pub fn best(&self) -> Option<&CurvePoint> {
        let finite = self.curve.iter().filter(|p| p.valid.is_finite());
        if self.metric.lower_is_better {
            finite.min_by(|a, b| a.valid.total_cmp(&b.valid))
        } else {
            finite.max_by(|a, b| a.valid.total_cmp(&b.valid))
        }
    }

    /// The first point at which the validation metric reaches `target`.
    pub fn reaches(&self, target: f64) -> Option<&CurvePoint> {
        self.curve.iter().find(|p| {
            if self.metric.lower_is_better {
                p.valid <= target
            } else {
                p.valid >= target
            }
        })
    }

    /// Training throughput over the whole run: progress units of all epochs over the summed
    /// time they took at their own rates (language models: tokens per second).
    pub fn train_per_s(&self) -> Option<f64> {
        let mut prev = 0.0;
        let (mut work, mut time) = (0.0, 0.0);
        for p in &self.curve {
            let done = p.progress - prev;
            prev = p.progress;
            if p.train_per_s.is_finite() && p.train_per_s > 0.0 && done > 0.0 {
                work += done;
                time += done / p.train_per_s;
            }
        }
        (time > 0.0 && self.metric.progress == "tokens").then(|| work / time)
    }
}

/// Reads the run in `dir` for a report.
///
/// # Errors
/// - [`Error::Io`] when the folder, its `config.json` or its `metrics.csv` is missing;
/// - [`Error::Format`] when `config.json` is not a seqrnn run configuration;
/// - [`Error::Data`] when `metrics.csv` is unreadable or holds no epoch (for example an
///   imported model that was never trained here).
pub fn load_run(dir: &Path) -> Result<ReportRun> {
    let run = RunDir::new(dir);
    if !dir.is_dir() {
        return Err(Error::Io {
            path: dir.to_path_buf(),
            cause: std::io::Error::new(std::io::ErrorKind::NotFound, "run directory not found"),
        });
    }
    let path = run.config_path();
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        path: path.clone(),
        cause: source,
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Format {
        path: path.clone(),
        message: format!("not a seqrnn run configuration ({e})"),
    })?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    let summary = RunSummary::load(dir)?.unwrap_or_default();
    let mut r = match task_of(&value) {
        Some(LANGUAGE_MODEL_TASK) => load_lm(&run)?,
        Some(task) => load_supervised(&run, task, &value)?,
        None => {
            return Err(Error::Format {
                path,
                message: "not a seqrnn run configuration (neither a language-model run nor a \
                          run with a `task`)"
                    .into(),
            })
        }
    };
    r.name = name;
    r.summary = summary;
    Ok(r)
}

/// A language-model run.
fn load_lm(run: &RunDir) -> Result<ReportRun> {
    let config = LmRunConfig::load(run)?;
    let model = crate::tasks::lm::LanguageModel::new(config.model)?;
    let rows = read_metrics(&run.metrics_path())?;
    if rows.is_empty() {
        return Err(no_epochs(run));
    }
    let mut seconds = 0.0;
    let curve = rows
        .iter()
        .map(|r| {
            seconds += r.seconds;
            CurvePoint {
                epoch: r.epoch,
                progress: r.tokens_seen as f64,
                seconds,
                valid: r.valid_ppl,
                train_per_s: r.tokens_per_s,
            }
        })
        .collect();
    let m = &config.model;
    Ok(ReportRun {
        name: String::new(),
        dir: run.dir.clone(),
        task: "lm".into(),
        data_kind: match config.data.tokens {
            TokenKindName::Word => "word".into(),
            TokenKindName::Char => "char".into(),
        },
        vocab: m.vocab,
        metric: Metric {
            name: "perplexity".into(),
            lower_is_better: true,
            progress: "tokens".into(),
            unit: "tokens".into(),
        },
        model: format!("{} {}×{}", m.cell.name().to_uppercase(), m.layers, m.hidden),
        cell: m.cell.name().into(),
        params: model.num_params(),
        curve,
        summary: RunSummary::default(),
    })
}

fn no_epochs(run: &RunDir) -> Error {
    Error::Data {
        path: run.metrics_path(),
        message: "holds no finished epoch: nothing to compare (was this run trained to the end \
                  of an epoch?)"
            .into(),
    }
}

/// A run of a supervised task (forecasting, classification): its `metrics.csv` read by column
/// name.
fn load_supervised(run: &RunDir, task: &str, config: &serde_json::Value) -> Result<ReportRun> {
    let path = run.metrics_path();
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        path: path.clone(),
        cause: source,
    })?;
    let bad = |message: String| Error::Data {
        path: path.clone(),
        message,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty());
    let header: Vec<&str> = match lines.next() {
        Some((_, h)) => h
            .trim_start_matches('\u{feff}')
            .split(',')
            .map(str::trim)
            .collect(),
        None => return Err(bad("the file is empty".into())),
    };
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (epoch_c, seconds_c) = match (col("epoch"), col("seconds")) {
        (Some(e), Some(s)) => (e, s),
        _ => {
            return Err(bad(format!(
                "the header `{}` lacks an `epoch` or `seconds` column",
                header.join(",")
            )))
        }
    };
    // The task's score if it has one, the validation loss otherwise.
    let score_c = header
        .iter()
        .position(|h| h.starts_with("valid_") && *h != "valid_loss")
        .or_else(|| col("valid_loss"))
        .ok_or_else(|| bad("no `valid_…` column".into()))?;
    let score = header[score_c].trim_start_matches("valid_").to_string();
    // The supervised loop's scores are higher-is-better by convention (accuracy, `neg_mse`);
    // only the loss, used when there is no score, is lower-is-better.
    let lower_is_better = score == "loss";
    let speed_c = col("examples_per_s");
    // Supervised runs may also validate inside an epoch; the curve keeps the epoch ends.
    let end_c = col("epoch_end");
    let mut curve = Vec::new();
    for (n, line) in lines {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != header.len() {
            return Err(bad(format!(
                "line {n} has {} fields, but the header names {} columns",
                fields.len(),
                header.len()
            )));
        }
        if end_c.is_some_and(|c| fields[c] == "0") {
            continue;
        }
        let num = |c: usize| -> Result<f64> {
            fields[c].parse::<f64>().map_err(|_| {
                bad(format!(
                    "line {n}, column `{}`: `{}` is not a number",
                    header[c], fields[c]
                ))
            })
        };
        let epoch = num(epoch_c)?;
        if !(epoch >= 1.0 && epoch.fract() == 0.0) {
            return Err(bad(format!(
                "line {n}: epoch `{}` is not a whole number ≥ 1",
                fields[epoch_c]
            )));
        }
        let prev = curve.last().map_or(0.0, |p: &CurvePoint| p.seconds);
        curve.push(CurvePoint {
            epoch: epoch as usize,
            progress: epoch,
            seconds: prev + num(seconds_c)?,
            valid: num(score_c)?,
            train_per_s: match speed_c {
                Some(c) => num(c)?,
                None => f64::NAN,
            },
        });
    }
    if curve.is_empty() {
        return Err(no_epochs(run));
    }
    // Parameters: the elements of every tensor of the saved weights.
    let params = if run.model_path().is_file() {
        TensorFile::load(&run.model_path())?
            .tensors
            .values()
            .map(|t| t.data.len())
            .sum()
    } else {
        0
    };
    let model_cfg = config.get("model");
    let get = |k: &str| model_cfg.and_then(|m| m.get(k));
    let cell = get("cell")
        .and_then(|c| c.as_str())
        .unwrap_or("?")
        .to_string();
    let layers = get("layers").and_then(|v| v.as_u64());
    let hidden = get("hidden").and_then(|v| v.as_u64());
    let model = match (layers, hidden) {
        (Some(l), Some(h)) => format!("{} {l}×{h}", cell.to_uppercase()),
        _ => cell.to_uppercase(),
    };
    Ok(ReportRun {
        name: String::new(),
        dir: run.dir.clone(),
        task: task.to_string(),
        data_kind: String::new(),
        vocab: 0,
        metric: Metric {
            name: score,
            lower_is_better,
            progress: "epochs".into(),
            unit: "examples".into(),
        },
        model,
        cell,
        params,
        curve,
        summary: RunSummary::default(),
    })
}

/// Asks Linux to restart the peak-memory count (`VmHWM`) of this process from its current
/// resident size; returns whether it could.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Measures a language-model run's best weights (`model.safetensors`) on the corpus at `data`:
/// the test split of a word corpus (`ptb.test.txt` or `test.txt`), or the validation split of a
/// character corpus (which has no test split), read in the run's encoding, as one stream of
/// `batch` columns. Times the evaluation and records the process's peak memory while loading
/// and evaluating.
///
/// # Errors
/// [`Error::Config`] for a run that is not a language model; loading errors of the model or
/// the corpus; [`Error::Data`] when the corpus's characters do not match the model's
/// vocabulary.
pub fn measure_lm(dir: &Path, data_path: &Path, batch: usize) -> Result<EvalFigures> {
    let reset = reset_peak_rss();
    let lm = crate::tasks::lm::Trained::load(dir)?;
    // The test split of a word corpus; a character corpus has only its validation split.
    let (split, name) = match lm.token_kind() {
        TokenKind::Word => (crate::tasks::lm::Split::Test, "test"),
        TokenKind::Char => (crate::tasks::lm::Split::Valid, "valid"),
    };
    let (stream, _) = lm.split(data_path, split, lm.encoding())?;
    let r = lm.perplexity(&stream, batch)?;
    Ok(EvalFigures {
        split: name.into(),
        value: r.ppl,
        count: r.tokens,
        per_s: r.tokens_per_s,
        threads: crate::linalg::threads(),
        peak_rss_bytes: if reset {
            crate::tasks::lm::bench::peak_rss_bytes()
        } else {
            None
        },
    })
}

/// Settings of a report.
#[derive(Clone, Debug, Default)]
pub struct ReportOptions {
    /// Title (default: a description of the compared runs).
    pub title: Option<String>,
    /// Target of the validation metric for the time-to-target columns (default: the weakest
    /// run's best value, so that every run reaches it).
    pub target: Option<f64>,
    /// The command that made the report, shown in it.
    pub command: Option<String>,
    /// Where each run's summary figures came from, shown under the table.
    pub notes: Vec<String>,
}

/// One row of the report table, as written to `report.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReportRow {
    /// Run name.
    pub name: String,
    /// Run folder.
    pub dir: PathBuf,
    /// Model description.
    pub model: String,
    /// Trainable parameters.
    pub params: usize,
    /// Training throughput over the run (tokens per second; language models only).
    pub train_per_s: Option<f64>,
    /// Evaluation throughput (tokens or examples per second), if measured.
    pub eval_per_s: Option<f64>,
    /// Peak memory of training, if recorded.
    pub train_peak_rss_bytes: Option<u64>,
    /// Peak memory of evaluation, if measured.
    pub eval_peak_rss_bytes: Option<u64>,
    /// Best validation metric.
    pub best_valid: f64,
    /// The epoch of the best validation metric.
    pub best_epoch: usize,
    /// The metric of the best weights on the evaluated split, if measured.
    pub eval_value: Option<f64>,
    /// Which split `eval_value` is of.
    pub eval_split: Option<String>,
    /// Wall-clock seconds of training until the target was first reached.
    pub seconds_to_target: Option<f64>,
    /// Progress (tokens or epochs) until the target was first reached.
    pub progress_to_target: Option<f64>,
    /// Epoch at which the target was first reached.
    pub epoch_to_target: Option<usize>,
    /// Epochs run.
    pub epochs: usize,
    /// Wall-clock seconds of the whole run (sum of the epochs).
    pub seconds: f64,
}

/// What [`write_report`] produced.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Title.
    pub title: String,
    /// Task of every run.
    pub task: String,
    /// The compared metric.
    pub metric: Metric,
    /// Target of the time-to-target columns.
    pub target: f64,
    /// One row per run, in the order given.
    pub rows: Vec<ReportRow>,
    /// Files written, relative to the report folder.
    pub files: Vec<String>,
}

/// Checks that `runs` can be compared: at least one, one task, one data kind and vocabulary.
///
/// # Errors
/// [`Error::Config`] naming the first run that differs.
pub fn check_comparable(runs: &[ReportRun]) -> Result<()> {
    let first = runs
        .first()
        .ok_or_else(|| Error::Config("no runs to compare".into()))?;
    for r in &runs[1..] {
        if r.task != first.task {
            return Err(Error::Config(format!(
                "cannot compare runs of different tasks: {} ({}) is a {} run, {} ({}) a {} run",
                first.name,
                first.dir.display(),
                task_label(first),
                r.name,
                r.dir.display(),
                task_label(r)
            )));
        }
        if r.data_kind != first.data_kind || r.vocab != first.vocab {
            return Err(Error::Config(format!(
                "cannot compare runs on different data: {} is {} with a vocabulary of {}, {} is \
                 {} with a vocabulary of {}",
                first.name,
                task_label(first),
                first.vocab,
                r.name,
                task_label(r),
                r.vocab
            )));
        }
        if r.metric.name != first.metric.name {
            return Err(Error::Config(format!(
                "cannot compare runs scored differently: {} reports {}, {} reports {}",
                first.name, first.metric.name, r.name, r.metric.name
            )));
        }
    }
    Ok(())
}

/// A readable task name.
fn task_label(r: &ReportRun) -> String {
    match (r.task.as_str(), r.data_kind.as_str()) {
        ("lm", "word") => "word-level language-model".into(),
        ("lm", "char") => "character-level language-model".into(),
        (t, _) => format!("`{t}`"),
    }
}

/// Gives runs with the same name a numbered suffix.
fn unique_names(runs: &mut [ReportRun]) {
    for i in 1..runs.len() {
        let base = runs[i].name.clone();
        let mut k = 2;
        while runs[..i].iter().any(|r| r.name == runs[i].name) {
            runs[i].name = format!("{base} ({k})");
            k += 1;
        }
    }
}

/// Writes the report on `runs` into the folder `out` (created if needed): `report.md`,
/// `report.html` (charts embedded), `report.json`, `valid-vs-progress.png` and
/// `valid-vs-seconds.png`. Returns what it wrote.
///
/// # Errors
/// [`Error::Config`] for runs that cannot be compared (see [`check_comparable`]); [`Error::Io`]
/// when a file cannot be written.
pub fn write_report(out: &Path, runs: &[ReportRun], opts: &ReportOptions) -> Result<Report> {
    check_comparable(runs)?;
    let mut runs = runs.to_vec();
    unique_names(&mut runs);
    std::fs::create_dir_all(out).map_err(|source| Error::Io {
        path: out.to_path_buf(),
        cause: source,
    })?;
    let first = &runs[0];
    let metric = first.metric.clone();
    let lower = metric.lower_is_better;
    let bests: Vec<f64> = runs
        .iter()
        .map(|r| r.best().map_or(f64::NAN, |p| p.valid))
        .collect();
    let target = match opts.target {
        Some(t) => t,
        None => {
            let finite = bests.iter().copied().filter(|v| v.is_finite());
            let weakest = if lower {
                finite.fold(f64::NEG_INFINITY, f64::max)
            } else {
                finite.fold(f64::INFINITY, f64::min)
            };
            if weakest.is_finite() {
                weakest
            } else {
                f64::NAN
            }
        }
    };
    let rows: Vec<ReportRow> = runs
        .iter()
        .map(|r| {
            let best = r.best();
            let hit = if target.is_finite() {
                r.reaches(target)
            } else {
                None
            };
            let eval = r.summary.eval.as_ref();
            ReportRow {
                name: r.name.clone(),
                dir: r.dir.clone(),
                model: r.model.clone(),
                params: r.params,
                train_per_s: r.train_per_s(),
                eval_per_s: eval.map(|e| e.per_s),
                train_peak_rss_bytes: r.summary.train_peak_rss_bytes,
                eval_peak_rss_bytes: eval.and_then(|e| e.peak_rss_bytes),
                best_valid: best.map_or(f64::NAN, |p| p.valid),
                best_epoch: best.map_or(0, |p| p.epoch),
                eval_value: eval.map(|e| e.value),
                eval_split: eval.map(|e| e.split.clone()),
                seconds_to_target: hit.map(|p| p.seconds),
                progress_to_target: hit.map(|p| p.progress),
                epoch_to_target: hit.map(|p| p.epoch),
                epochs: r.curve.len(),
                seconds: r.curve.last().map_or(0.0, |p| p.seconds),
            }
        })
        .collect();
    let title = opts.title.clone().unwrap_or_else(|| {
        let models: Vec<&str> = runs.iter().map(|r| r.model.as_str()).collect();
        let mut uniq: Vec<&str> = Vec::new();
        for m in models {
            if !uniq.contains(&m) {
                uniq.push(m);
            }
        }
        format!("{}: {}", capitalise(&task_label(first)), uniq.join(" vs "))
    });

    // Charts.
    let progress_points: Vec<Vec<(f64, f64)>> = runs
        .iter()
        .map(|r| {
            r.curve
                .iter()
                .map(|p| (scale_progress(&metric, p.progress), p.valid))
                .collect()
        })
        .collect();
    let time_points: Vec<Vec<(f64, f64)>> = runs
        .iter()
        .map(|r| {
            r.curve
                .iter()
                .map(|p| (p.seconds / 60.0, p.valid))
                .collect()
        })
        .collect();
    let series = |pts: &'_ [Vec<(f64, f64)>]| -> Vec<(String, Vec<(f64, f64)>)> {
        runs.iter()
            .zip(pts)
            .map(|(r, p)| (r.name.clone(), p.clone()))
            .collect()
    };
    let y_label = format!("validation {}", metric.name);
    let progress_label = if metric.progress == "tokens" {
        "training tokens seen (millions)".to_string()
    } else {
        "epoch".to_string()
    };
    let charts = [
        (
            "valid-vs-progress.png",
            format!("Validation {} by training progress", metric.name),
            progress_label,
            series(&progress_points),
        ),
        (
            "valid-vs-seconds.png",
            format!("Validation {} by wall-clock time", metric.name),
            "training time (minutes, validation included)".to_string(),
            series(&time_points),
        ),
    ];
    let mut files = Vec::new();
    let mut images = Vec::new();
    for (file, chart_title, x_label, data) in &charts {
        let named: Vec<Series<'_>> = data
            .iter()
            .map(|(n, p)| Series { name: n, points: p })
            .collect();
        let path = out.join(file);
        line_chart(&path, chart_title, x_label, &y_label, &named)?;
        let bytes = std::fs::read(&path).map_err(|source| Error::Io {
            path: path.clone(),
            cause: source,
        })?;
        images.push((file.to_string(), chart_title.clone(), bytes));
        files.push(file.to_string());
    }

    let report = Report {
        title,
        task: first.task.clone(),
        metric,
        target,
        rows,
        files: Vec::new(),
    };
    let md = markdown(&report, &runs, opts, &images);
    let html = html(&report, &runs, opts, &images);
    write_atomic(&out.join("report.md"), md.as_bytes())?;
    write_atomic(&out.join("report.html"), html.as_bytes())?;
    files.extend([
        "report.md".to_string(),
        "report.html".to_string(),
        "report.json".to_string(),
    ]);
    let report = Report { files, ..report };
    let json = serde_json::to_string_pretty(&report).map_err(|e| Error::Format {
        path: out.join("report.json"),
        message: e.to_string(),
    })?;
    write_atomic(&out.join("report.json"), json.as_bytes())?;
    Ok(report)
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Progress on the chart's x axis: millions of tokens, or epochs.
fn scale_progress(metric: &Metric, v: f64) -> f64 {
    if metric.progress == "tokens" {
        v / 1e6
    } else {
        v
    }
}

/// The table: header cells and one row of cells per run.
fn table(report: &Report) -> (Vec<String>, Vec<Vec<String>>) {
    let m = &report.metric;
    let unit = &m.unit;
    let eval_split = report
        .rows
        .iter()
        .find_map(|r| r.eval_split.clone())
        .unwrap_or_else(|| "test".into());
    let target = fmt_metric(report.target);
    let header = vec![
        "run".to_string(),
        "model".to_string(),
        "parameters".to_string(),
        format!("train {unit}/s"),
        format!("eval {unit}/s"),
        "peak RSS, training".to_string(),
        "peak RSS, evaluation".to_string(),
        format!("best valid {} (epoch)", m.name),
        format!("{eval_split} {}", m.name),
        format!(
            "time to valid {} {} {target}",
            m.name,
            if m.lower_is_better { "≤" } else { "≥" }
        ),
        format!("{} to target", m.progress),
    ];
    let rows = report
        .rows
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.model.clone(),
                group_digits(r.params as f64),
                r.train_per_s.map_or(dash(), group_digits),
                r.eval_per_s.map_or(dash(), group_digits),
                r.train_peak_rss_bytes.map_or(dash(), mib),
                r.eval_peak_rss_bytes.map_or(dash(), mib),
                format!("{} ({})", fmt_metric(r.best_valid), r.best_epoch),
                match (&r.eval_value, &r.eval_split) {
                    (Some(v), Some(s)) if *s == eval_split => fmt_metric(*v),
                    (Some(v), Some(s)) => format!("{} ({s})", fmt_metric(*v)),
                    _ => dash(),
                },
                match (r.seconds_to_target, r.epoch_to_target) {
                    (Some(s), Some(e)) => format!("{} (epoch {e})", duration(s)),
                    _ => "not reached".into(),
                },
                match r.progress_to_target {
                    Some(p) if m.progress == "tokens" => format!("{:.2} M", p / 1e6),
                    Some(p) => format!("{p}"),
                    None => dash(),
                },
            ]
        })
        .collect();
    (header, rows)
}

fn dash() -> String {
    "—".into()
}

fn fmt_metric(v: f64) -> String {
    if !v.is_finite() {
        return dash();
    }
    if v.abs() >= 1000.0 {
        group_digits(v)
    } else {
        format!("{v:.2}")
    }
}

fn mib(b: u64) -> String {
    format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0))
}

/// `12345.6` → `12,346`.
fn group_digits(v: f64) -> String {
    if !v.is_finite() {
        return dash();
    }
    let s = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// `3196.2` → `53 min 16 s`.
fn duration(s: f64) -> String {
    let total = s.round() as u64;
    let (h, m, sec) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h} h {m} min")
    } else if m > 0 {
        format!("{m} min {sec} s")
    } else {
        format!("{:.1} s", s)
    }
}

/// Lines describing where the figures come from.
fn method_notes(report: &Report, runs: &[ReportRun], opts: &ReportOptions) -> Vec<String> {
    let m = &report.metric;
    let mut notes = vec![
        format!(
            "**train {}/s**: {} processed per second of training over the whole run (from \
             `metrics.csv`, validation time excluded).",
            m.unit, m.unit
        ),
        format!(
            "**best valid {}**: the best validation value of any epoch (validation runs once per \
             epoch); **time to target**: wall-clock training time, validation included, until \
             the end of the first epoch whose validation {} reached the target ({}{}).",
            m.name,
            m.name,
            fmt_metric(report.target),
            if opts.target.is_some() {
                ", given"
            } else {
                ", the weakest run's best value, so that every run reaches it"
            }
        ),
    ];
    if runs.iter().any(|r| r.summary.eval.is_some()) {
        notes.push(format!(
            "**{} {}, eval {}/s, peak RSS, evaluation**: the best-on-validation weights \
             evaluated on that split as one stream (batch 1), timed; peak RSS is the process's \
             resident-memory peak while it loaded that model and split and evaluated.",
            report
                .rows
                .iter()
                .find_map(|r| r.eval_split.clone())
                .unwrap_or_else(|| "test".into()),
            m.name,
            m.unit
        ));
    }
    if runs
        .iter()
        .any(|r| r.summary.train_peak_rss_bytes.is_some())
    {
        notes.push(
            "**peak RSS, training**: the process's resident-memory peak during training, \
             recorded at its end in the run's `summary.json`."
                .into(),
        );
    }
    notes.push("**—**: not recorded by the run and not measured.".into());
    notes.extend(opts.notes.iter().cloned());
    notes
}

fn markdown(
    report: &Report,
    runs: &[ReportRun],
    opts: &ReportOptions,
    images: &[(String, String, Vec<u8>)],
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# {}\n", report.title);
    if let Some(c) = &opts.command {
        let _ = writeln!(s, "Made with:\n\n```sh\n{c}\n```\n");
    }
    let (header, rows) = table(report);
    let _ = writeln!(s, "| {} |", header.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(header.len()));
    for r in &rows {
        let cells: Vec<String> = r.iter().map(|c| c.replace('|', "\\|")).collect();
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
    s.push('\n');
    for n in method_notes(report, runs, opts) {
        let _ = writeln!(s, "- {n}");
    }
    s.push_str("\nRuns:\n\n");
    for r in runs {
        let _ = writeln!(s, "- `{}`: `{}`", r.name, r.dir.display());
    }
    s.push('\n');
    for (file, title, _) in images {
        let _ = writeln!(s, "![{title}]({file})\n");
    }
    s
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Markdown emphasis and code of the notes, as HTML.
fn inline_html(s: &str) -> String {
    let mut out = String::new();
    let esc = escape_html(s);
    let mut bold = false;
    let mut code = false;
    let mut rest = esc.as_str();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("**") {
            out.push_str(if bold { "</strong>" } else { "<strong>" });
            bold = !bold;
            rest = r;
        } else if let Some(r) = rest.strip_prefix('`') {
            out.push_str(if code { "</code>" } else { "<code>" });
            code = !code;
            rest = r;
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn html(
    report: &Report,
    runs: &[ReportRun],
    opts: &ReportOptions,
    images: &[(String, String, Vec<u8>)],
) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n\
         <style>\nbody {{ font-family: sans-serif; max-width: 70em; margin: 2em auto; padding: 0 1em; color: #222; }}\n\
         table {{ border-collapse: collapse; margin: 1em 0; }}\n\
         th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }}\n\
         th {{ background: #f3f3f3; }}\ntd:first-child, td:nth-child(2) {{ text-align: left; }}\n\
         pre {{ background: #f6f6f6; padding: 0.6em; overflow-x: auto; }}\nimg {{ max-width: 100%; }}\n\
         </style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape_html(&report.title),
        escape_html(&report.title)
    );
    if let Some(c) = &opts.command {
        let _ = writeln!(s, "<p>Made with:</p>\n<pre>{}</pre>", escape_html(c));
    }
    let (header, rows) = table(report);
    s.push_str("<table>\n<tr>");
    for h in &header {
        let _ = write!(s, "<th>{}</th>", escape_html(h));
    }
    s.push_str("</tr>\n");
    for r in &rows {
        s.push_str("<tr>");
        for c in r {
            let _ = write!(s, "<td>{}</td>", escape_html(c));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n<ul>\n");
    for n in method_notes(report, runs, opts) {
        let _ = writeln!(s, "<li>{}</li>", inline_html(&n));
    }
    s.push_str("</ul>\n<p>Runs:</p>\n<ul>\n");
    for r in runs {
        let _ = writeln!(
            s,
            "<li><code>{}</code>: <code>{}</code></li>",
            escape_html(&r.name),
            escape_html(&r.dir.display().to_string())
        );
    }
    s.push_str("</ul>\n");
    for (_, title, bytes) in images {
        let _ = writeln!(
            s,
            "<p><img alt=\"{}\" src=\"data:image/png;base64,{}\"></p>",
            escape_html(title),
            base64(bytes)
        );
    }
    s.push_str("</body>\n</html>\n");
    s
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_values() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[255, 254, 253]), "//79");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(group_digits(4_653_200.0), "4,653,200");
        assert_eq!(group_digits(999.4), "999");
        assert_eq!(group_digits(-1234.0), "-1,234");
        assert_eq!(duration(3196.2), "53 min 16 s");
        assert_eq!(duration(7300.0), "2 h 1 min");
        assert_eq!(duration(2.25), "2.2 s");
        assert_eq!(fmt_metric(117.655), "117.66");
        assert_eq!(fmt_metric(f64::NAN), "—");
        assert_eq!(
            inline_html("**a** `b<c>`"),
            "<strong>a</strong> <code>b&lt;c&gt;</code>"
        );
    }
}

//! `seqrnn compare`: train several cells on the same data with the same budget, or gather
//! finished runs, and write a comparison report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use clap::Args;
use seqrnn::data::{self, Corpus, TokenKind};
use seqrnn::dropout::DropoutKind;
use seqrnn::lm::compare::{
    load_run, measure_lm, reset_peak_rss, write_report, Report, ReportOptions, ReportRun,
    RunSummary,
};
use seqrnn::lm::TrainConfig;
use seqrnn::lm::{LanguageModel, LmConfig, LmInit, OutputWeights};
use seqrnn::lm::{LmRunConfig, LmRunData};
use seqrnn::rnn::CellKind;
use seqrnn::run::{Existing, Run, RunDir};
use seqrnn::train::{KeepCheckpoints, RunEnd};

use crate::lm::{default_data, load_corpus, LmFlags};
use crate::progress::{Shown, TrainProgress};
use crate::training::stop_if_interrupted;
use crate::CellArg;

/// `seqrnn compare`.
#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Finished run directories to compare, comma-separated; nothing is trained. With --data,
    /// figures the runs did not record (test perplexity, evaluation speed and memory) are
    /// measured on that corpus.
    #[arg(long, value_delimiter = ',')]
    runs: Vec<PathBuf>,
    /// Corpus to train every run on (as for `train`; default: $SEQRNN_DATA/ptb or
    /// tinyshakespeare), or, with --runs, to measure them on.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Report folder: report.md, report.html, report.json, the charts, and runs/ with the
    /// trained runs.
    #[arg(long)]
    out: PathBuf,
    /// Cells to train, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "lstm,gru")]
    cells: Vec<CellArg>,
    /// Units per layer, comma-separated: every cell is trained at every size (default: the
    /// preset's).
    #[arg(long, value_delimiter = ',')]
    hidden: Vec<usize>,
    /// Model and training settings shared by every run (as for `train`).
    #[command(flatten)]
    lm: LmFlags,
    /// Token budget of every run: training stops after this many training tokens (rounded up
    /// to whole steps).
    #[arg(long)]
    max_tokens: Option<u64>,
    /// Wall-clock budget of every run in seconds, checked at the end of each epoch: no epoch
    /// starts after it is spent.
    #[arg(long)]
    max_seconds: Option<f64>,
    /// Threads (default: all cores). Runs train one after another on the same threads.
    #[arg(long)]
    threads: Option<usize>,
    /// Target validation perplexity of the time-to-target column (default: the weakest run's
    /// best, so that every run reaches it).
    #[arg(long)]
    target: Option<f64>,
    /// Report title.
    #[arg(long)]
    title: Option<String>,
    /// Replace runs already in OUT/runs.
    #[arg(long)]
    force: bool,
    /// Print report.json instead of the summary lines.
    #[arg(long)]
    json: bool,
}

/// Flags that only apply when training.
fn training_flags(a: &CompareArgs) -> Vec<&'static str> {
    let mut used = Vec::new();
    let mut flag = |set: bool, name: &'static str| {
        if set {
            used.push(name);
        }
    };
    flag(!a.hidden.is_empty(), "--hidden");
    flag(a.lm.layers.is_some(), "--layers");
    flag(a.lm.last_hidden.is_some(), "--last-hidden");
    flag(a.lm.embed.is_some(), "--embed");
    flag(a.lm.dropout.is_some(), "--dropout");
    flag(a.lm.bptt.is_some(), "--bptt");
    flag(a.lm.batch.is_some(), "--batch");
    flag(a.lm.lr.is_some(), "--lr");
    flag(a.lm.clip.is_some(), "--clip");
    flag(a.lm.lr_decay.is_some(), "--lr-decay");
    flag(a.lm.decay_after.is_some(), "--decay-after");
    flag(a.lm.epochs.is_some(), "--epochs");
    flag(a.max_tokens.is_some(), "--max-tokens");
    flag(a.max_seconds.is_some(), "--max-seconds");
    flag(a.lm.init.is_some(), "--init");
    flag(a.force, "--force");
    used
}

/// The command line as typed, for the report.
fn command_line() -> String {
    std::env::args()
        .enumerate()
        .map(|(i, a)| {
            let a = if i == 0 { "seqrnn".to_string() } else { a };
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c)) {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn compare_cmd(a: CompareArgs) -> Result<()> {
    crate::set_threads(a.threads)?;
    let eval_batch = a.lm.eval_batch.unwrap_or(1);
    ensure!(eval_batch >= 1, "--eval-batch must be at least 1");
    ensure!(
        a.lm.preset != crate::lm::PresetArg::Keras,
        "--preset keras trains the last-token objective, which seqrnn compare does not support: use seqrnn train --preset keras"
    );
    let mut notes = Vec::new();
    let dirs = if a.runs.is_empty() {
        train_runs(&a, &mut notes)?
    } else {
        finished_runs(&a)?
    };

    let mut runs = Vec::new();
    for dir in &dirs {
        let run =
            load_run(dir).with_context(|| format!("cannot read the run {}", dir.display()))?;
        runs.push(run);
    }
    seqrnn::lm::compare::check_comparable(&runs)?;

    // With --runs and --data: measure what the runs did not record.
    if !a.runs.is_empty() {
        if let Some(data_path) = &a.data {
            measure_runs(&mut runs, data_path, eval_batch)?;
            notes.push(format!(
                "Evaluation figures measured by `seqrnn compare` from the saved best weights, \
                 one run after another on {} thread(s); the training figures come from each \
                 run's `metrics.csv`.",
                seqrnn::linalg::threads()
            ));
        }
    }

    let report = write_report(
        &a.out,
        &runs,
        &ReportOptions {
            title: a.title.clone(),
            target: a.target,
            command: Some(command_line()),
            notes,
        },
    )?;
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_summary(&report, &a.out);
    }
    Ok(())
}

/// The run folders of --runs, refusing training flags beside it.
fn finished_runs(a: &CompareArgs) -> Result<Vec<PathBuf>> {
    let flags = training_flags(a);
    ensure!(
        flags.is_empty(),
        "--runs builds the report from finished runs, so {} (training flags) cannot be used \
         with it",
        flags.join(", ")
    );
    ensure!(
        a.runs.len() >= 2,
        "--runs needs at least two run directories, comma-separated"
    );
    Ok(a.runs.clone())
}

/// Measures on `data_path` the evaluation figures of the runs that did not record them.
fn measure_runs(runs: &mut [ReportRun], data_path: &Path, eval_batch: usize) -> Result<()> {
    for run in runs.iter_mut() {
        if run.summary.eval.is_some() {
            continue;
        }
        ensure!(
            run.task == "lm",
            "{}: only language-model runs can be measured here; leave out --data",
            run.dir.display()
        );
        eprintln!("measuring {} on {}", run.name, data_path.display());
        let e = measure_lm(&run.dir, data_path, eval_batch).with_context(|| {
            format!(
                "could not evaluate {} on {}",
                run.dir.display(),
                data_path.display()
            )
        })?;
        run.summary.eval = Some(e);
    }
    Ok(())
}

/// One line per run, and where the report is.
fn print_summary(report: &Report, out: &Path) {
    for r in &report.rows {
        println!(
            "{:<24} {:<12} best valid {} {:.2} (epoch {}){}",
            r.name,
            r.model,
            report.metric.name,
            r.best_valid,
            r.best_epoch,
            match (&r.eval_value, &r.eval_split) {
                (Some(v), Some(s)) => format!(", {s} {v:.2}"),
                _ => String::new(),
            }
        );
    }
    println!("report in {}", out.join("report.md").display());
}

/// Trains every cell × size on the same data with the same settings; returns the run folders.
fn train_runs(a: &CompareArgs, notes: &mut Vec<String>) -> Result<Vec<PathBuf>> {
    let data_path = match &a.data {
        Some(p) => p.clone(),
        None => default_data(a.lm.tokens())?,
    };
    ensure!(!a.cells.is_empty(), "--cells names no cell");
    let corpus = load_corpus(&data_path, a.lm.tokens(), a.lm.encoding.get())?;
    let train_cfg = shared_train_config(a, &corpus)?;
    let plan = plan_runs(a, corpus.vocab.len())?;

    // The test split is evaluated once at the end, timed, rather than inside training.
    let train_corpus = Corpus {
        test: None,
        ..corpus.clone()
    };
    let shared = Shared {
        data_path: &data_path,
        corpus: &corpus,
        train_corpus: &train_corpus,
        train_cfg: &train_cfg,
    };
    let mut dirs = Vec::new();
    for (name, model_cfg) in plan {
        dirs.push(train_planned(a, &shared, &name, model_cfg)?);
    }
    notes.push(format!(
        "Runs trained one after another by `seqrnn compare` with the same settings and seed on \
         {} thread(s){}; each run's `summary.json` holds the figures measured at its end.",
        seqrnn::linalg::threads(),
        match (a.max_tokens, a.max_seconds) {
            (Some(t), Some(s)) => format!(", budget {t} tokens and {s} s each"),
            (Some(t), None) => format!(", budget {t} tokens each"),
            (None, Some(s)) => format!(", budget {s} s each (checked at epoch ends)"),
            (None, None) => String::new(),
        }
    ));
    Ok(dirs)
}

/// The training settings every run shares, with the token budget as a step limit; checked
/// against the corpus.
fn shared_train_config(a: &CompareArgs, corpus: &Corpus) -> Result<TrainConfig> {
    let p = a.lm.preset().train_config();
    let (bptt, batch) = (a.lm.bptt.unwrap_or(p.bptt), a.lm.batch.unwrap_or(p.batch));
    let max_steps = a
        .max_tokens
        .map(|t| t.div_ceil((bptt * batch).max(1) as u64));
    ensure!(
        a.max_seconds.is_none_or(|s| s.is_finite() && s > 0.0),
        "--max-seconds must be positive"
    );
    let train_cfg = a.lm.train_config(max_steps, None, KeepCheckpoints::Latest);
    train_cfg.validate()?;
    data::Batched::new(&corpus.train, train_cfg.batch).context("training split")?;
    data::Batched::new(&corpus.valid, train_cfg.eval_batch).context("validation split")?;
    Ok(train_cfg)
}

/// Every run (name and model), checked before any is trained.
fn plan_runs(a: &CompareArgs, vocab: usize) -> Result<Vec<(String, LmConfig)>> {
    let sizes = if a.hidden.is_empty() {
        vec![a.lm.hidden(None)]
    } else {
        a.hidden.clone()
    };
    let mut plan: Vec<(String, LmConfig)> = Vec::new();
    for &hidden in &sizes {
        for &cell in &a.cells {
            let cell_kind = CellKind::from(cell);
            let model_cfg = a.lm.model_config(
                vocab,
                cell_kind,
                hidden,
                DropoutKind::Standard,
                OutputWeights::Separate,
            );
            model_cfg.validate()?;
            let name = if sizes.len() > 1 {
                format!("{}-{hidden}", cell_kind.name())
            } else {
                cell_kind.name().to_string()
            };
            ensure!(
                !plan.iter().any(|(n, _)| *n == name),
                "{name} is listed twice in --cells/--hidden"
            );
            let dir = a.out.join("runs").join(&name);
            if RunDir::new(&dir).holds_run() && !a.force {
                bail!(
                    "{} already holds a run: pass --force to train it again, or compare the \
                     finished runs with --runs",
                    dir.display()
                );
            }
            plan.push((name, model_cfg));
        }
    }
    Ok(plan)
}

/// What every run of `seqrnn compare` trains on.
struct Shared<'a> {
    /// The corpus folder, for the evaluation at the end.
    data_path: &'a Path,
    /// The corpus.
    corpus: &'a Corpus,
    /// The corpus without its test split, for training.
    train_corpus: &'a Corpus,
    /// The training settings.
    train_cfg: &'a TrainConfig,
}

/// Trains the run `name` in OUT/runs, then measures it and saves its `summary.json`; returns
/// its folder.
fn train_planned(
    a: &CompareArgs,
    s: &Shared<'_>,
    name: &str,
    model_cfg: LmConfig,
) -> Result<PathBuf> {
    let kind: TokenKind = a.lm.tokens().into();
    let dir = a.out.join("runs").join(name);
    let train = serde_json::to_value(s.train_cfg)?;
    let run_config = LmRunConfig::new(
        model_cfg,
        train,
        LmRunData {
            tokens: kind.into(),
            encoding: a.lm.encoding.get(),
        },
    );
    // Checked by plan_runs: a run there is replaced only with --force (its summary.json too).
    let run = Run::create(&dir, &run_config, Existing::Replace)?;
    s.corpus.vocab.save(&run.dir().vocab_path())?;
    let model = LanguageModel::new(model_cfg)?;
    let mut params = model.init_params(LmInit::Uniform(a.lm.init_scale()), a.lm.seed)?;
    let title = format!(
        "{} {}×{}",
        model_cfg.cell.name().to_uppercase(),
        model_cfg.layers,
        model_cfg.hidden
    );
    eprintln!(
        "{name}: {title}, {} parameters, {} thread(s)",
        model.num_params(),
        seqrnn::linalg::threads()
    );
    let reset = reset_peak_rss();
    let t0 = Instant::now();
    train_one(
        &model,
        &mut params,
        s.train_corpus,
        s.train_cfg,
        run,
        &title,
        a.max_seconds,
    )
    .with_context(|| format!("training {name} failed"))?;
    let train_seconds = t0.elapsed().as_secs_f64();
    let train_peak = if reset {
        seqrnn::lm::bench::peak_rss_bytes()
    } else {
        None
    };
    drop(params);
    let eval = if s.corpus.test.is_some() || kind == TokenKind::Char {
        Some(
            measure_lm(&dir, s.data_path, a.lm.eval_batch.unwrap_or(1))
                .with_context(|| format!("could not evaluate {name}"))?,
        )
    } else {
        None
    };
    RunSummary {
        eval,
        train_peak_rss_bytes: train_peak,
        train_threads: Some(seqrnn::linalg::threads()),
        train_seconds: Some(train_seconds),
    }
    .save(&dir)?;
    Ok(dir)
}

/// Trains one run: in one go, or, with a wall-clock budget, one epoch at a time (resuming from
/// the checkpoint) until the budget is spent.
fn train_one(
    model: &LanguageModel,
    params: &mut [f32],
    corpus: &Corpus,
    cfg: &TrainConfig,
    run: Run,
    title: &str,
    max_seconds: Option<f64>,
) -> Result<()> {
    let mut progress = TrainProgress::new(Shown::Perplexity)?;
    let t0 = Instant::now();
    let mut run = run;
    // With a budget, one epoch a call; without, all of them in one.
    let first = match max_seconds {
        Some(_) => 1,
        None => cfg.epochs,
    };
    for epoch in first..=cfg.epochs {
        let one = TrainConfig {
            epochs: epoch,
            ..*cfg
        };
        let r = seqrnn::lm::train(model, params, corpus, &one, &run, title, &mut progress);
        progress.finish();
        let r = r?;
        stop_if_interrupted(r.fit.end, r.fit.steps, &run)?;
        let spent = max_seconds.is_none_or(|b| t0.elapsed().as_secs_f64() >= b);
        if r.fit.end != RunEnd::Completed || spent {
            break;
        }
        run = Run::resume(&run.dir().dir)?;
    }
    Ok(())
}

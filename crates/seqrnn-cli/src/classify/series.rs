//! `seqrnn classify … --train/--test/--input FILE.ts`: classification of numeric series in the
//! UEA/UCR archive's `.ts` format.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use clap::{Args, ValueEnum};
use seqrnn::classify::model::Classifier;
use seqrnn::classify::series::{prepare, SeriesData, SeriesSource};
use seqrnn::classify::{
    ClassifyMetrics, ClassifyRunConfig, ClassifyRunData, ClassifyTask, ClassifyTrainConfig, Trained,
};
use seqrnn::data::ts::FillMissing;
use seqrnn::data::Vocab;

use super::{fit_and_report, settings_from_flags, Resumed, Splits, TrainArgs};
use crate::training;

/// What a missing value (`?`) becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FillArg {
    /// Refuse the file, naming the line.
    Refuse,
    /// The channel's training mean (0 after standardising).
    Mean,
    /// The last observed value of the channel in the case (the next one for a leading gap).
    Previous,
}

impl From<FillArg> for FillMissing {
    fn from(f: FillArg) -> FillMissing {
        match f {
            FillArg::Refuse => FillMissing::Refuse,
            FillArg::Mean => FillMissing::Mean,
            FillArg::Previous => FillMissing::Previous,
        }
    }
}

/// The series flags of `seqrnn classify train`.
#[derive(Args, Debug)]
pub struct SeriesFlags {
    /// Training cases: a `.ts` file of the UEA/UCR archive (numeric series); the validation
    /// cases are held out from it.
    #[arg(long, value_name = "X_TRAIN.ts")]
    pub train: Option<PathBuf>,
    /// Test cases (`.ts`), scored with the selected weights (`test_accuracy`).
    #[arg(long, value_name = "X_TEST.ts", requires = "train")]
    pub test: Option<PathBuf>,
    /// Share of the --train cases held out for validation, stratified by label and drawn
    /// with --seed.
    #[arg(long, default_value_t = 0.2, requires = "train")]
    pub valid_fraction: f64,
    /// What a missing value (`?`) becomes [with --resume: the run's].
    #[arg(long, value_enum, default_value = "refuse", requires = "train")]
    pub fill_missing: FillArg,
    /// Concatenate this many consecutive steps into one step of the encoder (1: none): the
    /// recurrence runs that many times fewer steps over long series.
    #[arg(long, value_name = "S", default_value_t = 1, requires = "train")]
    pub stack: usize,
}

/// `seqrnn classify train --train X_TRAIN.ts [--test X_TEST.ts]`.
pub fn train(a: &TrainArgs, resumed: Option<Resumed>) -> Result<()> {
    let saved = resumed.as_ref().map(|(_, c)| c);
    let saved_input = saved.map(|c| c.data.series.as_ref());
    ensure!(
        saved_input.is_none_or(|s| s.is_some()),
        "the run in {} classifies text: resume it with --data",
        a.run.out.display()
    );
    let saved_input = saved_input.flatten();
    let train_path = a.series.train.as_deref().context("--train is required")?;
    let source = SeriesSource {
        train: train_path,
        test: a.series.test.as_deref(),
        valid_fraction: saved_input.map_or(a.series.valid_fraction, |s| s.valid_fraction),
        fill: saved_input.map_or(a.series.fill_missing.into(), |s| s.fill),
        seed: saved.map_or(a.fit.seed, |c| c.train.fit.seed),
        stack: saved_input.map_or(a.series.stack, |s| s.stack),
    };
    let d = prepare(&source).context("could not read the series")?;
    if let Some((run, c)) = &resumed {
        let labels = Vocab::load(&ClassifyRunConfig::labels_path(run.dir()))?;
        ensure!(
            c.data.series.as_ref() == Some(&d.input) && labels.tokens() == d.labels.tokens(),
            "{} is not the data this run was trained on (its labels or statistics differ)",
            train_path.display()
        );
    }
    let (model_cfg, train_cfg) = match saved {
        Some(c) => {
            let fit = a.fit.resumed(&a.run, c.train.fit);
            (c.model, ClassifyTrainConfig { fit, ..c.train })
        }
        None => settings_from_flags(a, 0, d.labels.len(), d.input.width()),
    };
    let model = Classifier::new(model_cfg)?;
    train_cfg.fit.validate()?;
    let mut task = ClassifyTask::new(&model, &d.train, &d.valid, train_cfg.batch)?.with_loss_ties();
    let params = model.init_params(train_cfg.fit.seed)?;
    let data = ClassifyRunData {
        series: Some(d.input.clone()),
    };
    let config = ClassifyRunConfig::new(model_cfg, train_cfg, data);
    if training::is_root() {
        print_start(&model, &d);
    }
    let run = training::open_run(resumed.map(|(r, _)| r), &a.run, &config, |run| {
        Ok(d.labels.save(&ClassifyRunConfig::labels_path(run.dir()))?)
    })?;
    let splits = Splits {
        labels: &d.labels,
        dev: &d.valid,
        test: d.test.as_ref(),
    };
    let fit = &train_cfg.fit;
    fit_and_report(a, (&model, fit), &mut task, params, &run, splits)
}

/// The line on standard error that says what is trained on what.
fn print_start(model: &Classifier, d: &SeriesData) {
    let name = d.problem.as_deref().unwrap_or("series");
    eprintln!(
        "{name}: {}, {} channel(s){}, lengths {}–{}, {} labels, {} train / {} validation cases{}, {} thread(s)",
        super::model_line(model),
        d.input.channels(),
        match d.input.stack {
            1 => String::new(),
            s => format!(" stacked by {s}"),
        },
        d.lengths.0,
        d.lengths.1,
        d.labels.len(),
        d.train.x.len(),
        d.valid.x.len(),
        d.test
            .as_ref()
            .map(|t| format!(", {} test cases", t.x.len()))
            .unwrap_or_default(),
        seqrnn::linalg::threads()
    );
}

/// `seqrnn classify eval --test X_TEST.ts`: the figures of a series classifier on a file.
pub fn evaluate_file(clf: &Trained, path: &Path) -> Result<ClassifyMetrics> {
    ensure!(
        clf.series().is_some(),
        "the classifier reads text: score it with --data DIR"
    );
    clf.evaluate_series(path)
        .with_context(|| format!("could not score {}", path.display()))
}

/// `seqrnn classify predict --input X.ts`: one predicted label a line, one line per case.
pub fn predict_file(clf: &Trained, path: &Path) -> Result<()> {
    ensure!(
        clf.series().is_some(),
        "the classifier reads text lines from standard input, not --input"
    );
    let predictions = clf
        .predict_series(path)
        .with_context(|| format!("could not classify {}", path.display()))?;
    let mut out = std::io::stdout().lock();
    for p in predictions {
        writeln!(out, "{}", p.label)?;
    }
    Ok(())
}

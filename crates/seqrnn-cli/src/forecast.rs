//! `seqrnn forecast train | eval | predict`: multi-step time-series forecasting from CSV files.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use seqrnn::data::table::Table;
use seqrnn::forecast::model::{Arch, ForecastHead, ForecastLoss, Forecaster, ForecasterConfig};
use seqrnn::forecast::{
    evaluate, forecast_original, Anchor, ColumnSpec, ForecastMetrics, ForecastRunConfig,
    ForecastRunData, ForecastTask, ForecastTrainConfig, Mode, Series, Split, SplitRanges, Trained,
};
use seqrnn::report::plot::{line_chart_svg, Series as ChartSeries};
use seqrnn::train::FitOutcome;

use crate::flags::{default, epochs, EncoderFlags, LoopFlags, RunFlags};
use crate::progress::Shown;
use crate::training;

#[derive(Subcommand, Debug)]
pub enum ForecastCommand {
    /// Train a forecaster on a CSV file.
    Train(Box<TrainArgs>),
    /// Test-split MSE/MAE of a trained forecaster, with the persistence baseline.
    Eval(EvalArgs),
    /// Forecast the steps after the end of a CSV file.
    Predict(PredictArgs),
}

pub fn run(cmd: ForecastCommand) -> Result<()> {
    match cmd {
        ForecastCommand::Train(a) => train_cmd(*a),
        ForecastCommand::Eval(a) => eval_cmd(a),
        ForecastCommand::Predict(a) => predict_cmd(a),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HeadArg {
    /// One dense layer predicts all horizon steps from the final state.
    Dense,
    /// Encoder–decoder: a recurrent layer unrolled over the horizon.
    Decoder,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ArchArg {
    /// A recurrent stack over the window's rows, then --head.
    Rnn,
    /// SegRNN: each column alone, cut into --segment-long segments, a recurrent encoder over
    /// them and the future segments decoded in parallel.
    Segrnn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LossArg {
    /// Mean squared error.
    Mse,
    /// Mean absolute error.
    Mae,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AnchorArg {
    /// Each window relative to its last input row.
    Last,
    /// Standardised values as they are.
    None,
}

/// `seqrnn forecast train`'s epochs when --epochs is not given.
const EPOCHS: usize = 10;

/// `seqrnn forecast train`.
#[derive(Args, Debug)]
#[command(
    mut_arg("epochs", epochs(EPOCHS)),
    mut_arg("lr", default("0.001")),
    mut_arg("clip", default("1.0")),
    mut_arg("hidden", default("64")),
    mut_arg("cell", |a| a
        .default_value_if("arch", "segrnn", "gru")
        .help("Recurrent cell [default: lstm; with --arch segrnn: gru]")
        .hide_default_value(true))
)]
pub struct TrainArgs {
    /// CSV file with a header line.
    #[arg(long)]
    data: PathBuf,
    #[command(flatten)]
    run: RunFlags,
    /// M: all features in and out; S: target in and out; MS: all in, target out.
    #[arg(long, default_value = "M")]
    mode: String,
    /// Target column(s), comma-separated (default: the last feature column).
    #[arg(long, value_delimiter = ',')]
    target: Option<Vec<String>>,
    /// Feature columns, comma-separated (default: every numeric column).
    #[arg(long, value_delimiter = ',')]
    features: Option<Vec<String>>,
    /// Date column, copied into forecasts (default: a text column named `date`, if any).
    #[arg(long)]
    date_column: Option<String>,
    /// Past steps per window.
    #[arg(long, default_value_t = 96)]
    lookback: usize,
    /// Steps to forecast.
    #[arg(long, default_value_t = 24)]
    horizon: usize,
    /// `informer` (8640/2880/2880 rows), three fractions `0.7,0.1,0.2` or three row counts
    /// (default: informer when the file has at least 14,400 rows, else 0.7,0.1,0.2).
    #[arg(long)]
    split: Option<String>,
    /// Window normalisation: `last` subtracts each window's last input row (the model predicts
    /// the change from it), `none` feeds the standardised values as they are.
    #[arg(long, value_enum, default_value = "last")]
    anchor: AnchorArg,
    #[command(flatten)]
    encoder: EncoderFlags,
    /// Output head (--arch rnn).
    #[arg(long, value_enum, default_value = "dense")]
    head: HeadArg,
    /// Architecture.
    #[arg(long, value_enum, default_value = "rnn")]
    arch: ArchArg,
    /// Segment length of --arch segrnn; it must divide --lookback and --horizon.
    #[arg(long, default_value_t = 24)]
    segment: usize,
    /// Dropout before the output layer (--arch segrnn).
    #[arg(long, default_value_t = 0.0)]
    dropout: f32,
    /// Training loss (validation picks the best epoch by MSE either way).
    #[arg(long, value_enum, default_value = "mse")]
    loss: LossArg,
    #[command(flatten)]
    fit: LoopFlags,
}

fn default_split(rows: usize) -> Split {
    if rows >= 14_400 {
        Split::Informer
    } else {
        Split::default()
    }
}

fn load_table(path: &Path) -> Result<Table> {
    Table::load(path).with_context(|| format!("could not read the table {}", path.display()))
}

fn train_cmd(a: TrainArgs) -> Result<()> {
    crate::set_threads(a.run.threads)?;
    let resumed = training::resumed::<_, _, _>(&a.run)?;
    let saved: Option<&ForecastRunConfig> = resumed.as_ref().map(|(_, c)| c);
    let table = load_table(&a.data)?;
    let split = match (saved, &a.split) {
        (Some(c), _) => c.data.split,
        (None, Some(s)) => s.parse()?,
        (None, None) => default_split(table.rows),
    };
    let lookback = saved.map_or(a.lookback, |c| c.model.lookback);
    ensure!(lookback >= 1, "--lookback must be at least 1");
    ensure!(a.horizon >= 1, "--horizon must be at least 1");
    let ranges = split.ranges(table.rows, lookback)?;
    let columns = match saved {
        Some(c) => resumed_columns(&a.data, &table, c, ranges.train.clone())?,
        None => columns_from_flags(&a, &table, ranges.train.clone())?,
    };
    let series = Series::new(&table, &columns)?;
    let (model_cfg, train_cfg) = match saved {
        Some(c) => {
            let fit = a.fit.resumed(&a.run, c.train.fit);
            (c.model, ForecastTrainConfig { fit, ..c.train })
        }
        None => settings_from_flags(&a, &columns),
    };
    let model = Forecaster::new(model_cfg)?;
    train_cfg.fit.validate()?;
    let windows = Windows::new(&ranges, model_cfg.lookback, model_cfg.horizon)?;
    let (train_w, valid_w) = (windows.train.clone(), windows.valid.clone());
    let scaler = &columns.scaler;
    let batch = train_cfg.batch;
    let mut task = ForecastTask::new(&model, &series, scaler, train_w, valid_w, batch)?;
    let mut params = model.init_params(train_cfg.fit.seed)?;
    let data = ForecastRunData {
        columns: columns.clone(),
        split,
    };
    let config = ForecastRunConfig::new(model_cfg, train_cfg, data);
    if training::is_root() {
        print_start(&model, &config, &windows);
    }
    let run = training::open_run(resumed.map(|(r, _)| r), &a.run, &config, |_| Ok(()))?;
    let t0 = std::time::Instant::now();
    let outcome = training::fit(&mut task, &mut params, &train_cfg.fit, &run, Shown::NegMse)?;
    if !run.is_writer() {
        return Ok(());
    }
    let best = &outcome.best_params;
    let test = evaluate(&model, best, &series, scaler, &windows.test)?;
    let secs = t0.elapsed().as_secs_f64();
    let v = result_json(&a, &outcome, &test, secs);
    training::finish(&run, &v, a.run.json, || {
        format!(
            "best validation MSE {:.4} (epoch {}); {}; {} epochs, {secs:.0} s; run in {}",
            -outcome.best_score,
            outcome.best_epoch,
            metrics_line(&test),
            outcome.epochs_run,
            a.run.out.display()
        )
    })
}

/// The columns of a resumed run, checked against the table: the same columns standardised on
/// this table must give the run's statistics.
fn resumed_columns(
    data: &Path,
    table: &Table,
    c: &ForecastRunConfig,
    train_rows: std::ops::Range<usize>,
) -> Result<ColumnSpec> {
    let again = ColumnSpec::choose(
        table,
        c.data.columns.mode,
        Some(&c.data.columns.inputs),
        Some(&c.data.columns.targets),
        c.data.columns.date_column.as_deref(),
        train_rows,
    )?;
    ensure!(
        again.scaler == c.data.columns.scaler,
        "{} is not the table this run was trained on (its training rows differ)",
        data.display()
    );
    Ok(c.data.columns.clone())
}

/// The columns of a fresh run, from --mode, --features, --target, --date-column and --anchor.
fn columns_from_flags(
    a: &TrainArgs,
    table: &Table,
    train_rows: std::ops::Range<usize>,
) -> Result<ColumnSpec> {
    let mode: Mode = a.mode.parse()?;
    let mut columns = ColumnSpec::choose(
        table,
        mode,
        a.features.as_deref(),
        a.target.as_deref(),
        a.date_column.as_deref(),
        train_rows,
    )?;
    columns.anchor = match a.anchor {
        AnchorArg::Last => Anchor::Last,
        AnchorArg::None => Anchor::None,
    };
    Ok(columns)
}

/// The model and training settings of a fresh run, from the flags.
fn settings_from_flags(
    a: &TrainArgs,
    columns: &ColumnSpec,
) -> (ForecasterConfig, ForecastTrainConfig) {
    let model = ForecasterConfig {
        inputs: columns.inputs.len(),
        outputs: columns.targets.len(),
        lookback: a.lookback,
        horizon: a.horizon,
        cell: a.encoder.cell(),
        hidden: a.encoder.hidden,
        layers: a.encoder.layers,
        head: match a.head {
            HeadArg::Dense => ForecastHead::Dense,
            HeadArg::Decoder => ForecastHead::Decoder,
        },
        arch: Arch::Rnn,
        segment: 0,
        dropout: a.dropout,
        loss: match a.loss {
            LossArg::Mse => ForecastLoss::Mse,
            LossArg::Mae => ForecastLoss::Mae,
        },
    };
    let model = match a.arch {
        ArchArg::Rnn => model,
        ArchArg::Segrnn => ForecasterConfig {
            arch: Arch::SegRnn,
            segment: a.segment,
            ..model
        },
    };
    let train = ForecastTrainConfig {
        batch: a.fit.batch,
        fit: a.fit.fit_config(&a.run, EPOCHS),
    };
    (model, train)
}

/// The first rows of the windows of each split.
struct Windows {
    train: Vec<usize>,
    valid: Vec<usize>,
    test: Vec<usize>,
}

impl Windows {
    /// The windows of lookback `l` + horizon `k` in each split; the test split must hold one.
    fn new(ranges: &SplitRanges, l: usize, k: usize) -> Result<Windows> {
        let w = Windows {
            train: Series::windows(ranges.train.clone(), l, k),
            valid: Series::windows(ranges.valid.clone(), l, k),
            test: Series::windows(ranges.test.clone(), l, k),
        };
        ensure!(
            !w.test.is_empty(),
            "the test split (rows {}..{}) is too short for one window of lookback {l} + horizon {k}",
            ranges.test.start,
            ranges.test.end
        );
        Ok(w)
    }
}

/// The line on standard error that says what is trained on what.
fn print_start(model: &Forecaster, config: &ForecastRunConfig, w: &Windows) {
    let (m, columns) = (&config.model, &config.data.columns);
    let arch = match m.arch {
        Arch::Rnn => format!("{:?} head", m.head),
        Arch::SegRnn => format!("SegRNN, segments of {}", m.segment),
    };
    eprintln!(
        "{} {}×{} {arch}, {:?} loss, mode {:?}, anchor {:?}: {} → {} columns, lookback {}, horizon {}, split {}, {} / {} / {} windows, {} parameters, {} thread(s)",
        m.cell.name().to_uppercase(),
        m.layers,
        m.hidden,
        m.loss,
        columns.mode,
        columns.anchor,
        columns.inputs.len(),
        columns.targets.len(),
        m.lookback,
        m.horizon,
        String::from(config.data.split),
        w.train.len(),
        w.valid.len(),
        w.test.len(),
        model.num_params(),
        seqrnn::linalg::threads()
    );
}

/// The run's final figures (its `summary.json`, and what `--json` prints).
fn result_json(
    a: &TrainArgs,
    outcome: &FitOutcome,
    test: &ForecastMetrics,
    secs: f64,
) -> serde_json::Value {
    let mut v = metrics_json(test);
    v["valid_mse"] = serde_json::json!(-outcome.best_score);
    v["best_epoch"] = serde_json::json!(outcome.best_epoch);
    v["epochs"] = serde_json::json!(outcome.epochs_run);
    v["steps"] = serde_json::json!(outcome.steps);
    v["seconds"] = serde_json::json!(secs);
    v["run"] = serde_json::json!(a.run.out);
    v
}

fn metrics_json(m: &ForecastMetrics) -> serde_json::Value {
    serde_json::json!({
        "test_mse": m.mse,
        "test_mae": m.mae,
        "test_mse_original": m.mse_original,
        "test_mae_original": m.mae_original,
        "persistence_mse": m.persistence_mse,
        "persistence_mae": m.persistence_mae,
        "persistence_mse_original": m.persistence_mse_original,
        "persistence_mae_original": m.persistence_mae_original,
        "test_windows": m.windows,
    })
}

fn metrics_line(m: &ForecastMetrics) -> String {
    format!(
        "test MSE {:.4} MAE {:.4} (original units: MSE {:.4} MAE {:.4}); persistence MSE {:.4} MAE {:.4} (original: {:.4} / {:.4}); {} windows",
        m.mse,
        m.mae,
        m.mse_original,
        m.mae_original,
        m.persistence_mse,
        m.persistence_mae,
        m.persistence_mse_original,
        m.persistence_mae_original,
        m.windows
    )
}

/// A trained run: configuration, model and best weights.
fn load_run(dir: &Path) -> Result<Trained> {
    Trained::load(dir).with_context(|| format!("{} is not a usable forecasting run", dir.display()))
}

/// `seqrnn forecast eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Run directory from `seqrnn forecast train`.
    #[arg(long)]
    model: PathBuf,
    /// CSV file with the run's columns.
    #[arg(long)]
    data: PathBuf,
    /// Split (default: the run's).
    #[arg(long)]
    split: Option<String>,
    /// Draw forecast against truth for a few test windows (PNG, or SVG for a .svg path).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Print one JSON object with the figures.
    #[arg(long)]
    json: bool,
}

fn eval_cmd(a: EvalArgs) -> Result<()> {
    let Trained {
        config,
        model,
        params,
    } = load_run(&a.model)?;
    let table = load_table(&a.data)?;
    let split = match &a.split {
        Some(s) => s.parse()?,
        None => config.data.split,
    };
    let cfg = *model.config();
    let ranges = split.ranges(table.rows, cfg.lookback)?;
    let series = Series::new(&table, &config.data.columns)
        .with_context(|| format!("{} lacks a column the model reads", a.data.display()))?;
    let starts = Series::windows(ranges.test.clone(), cfg.lookback, cfg.horizon);
    ensure!(
        !starts.is_empty(),
        "the test split (rows {}..{}) is too short for one window of lookback {} + horizon {}",
        ranges.test.start,
        ranges.test.end,
        cfg.lookback,
        cfg.horizon
    );
    let m = evaluate(
        &model,
        &params,
        &series,
        &config.data.columns.scaler,
        &starts,
    )?;
    if let Some(path) = &a.plot {
        plot_windows(path, &model, &params, &series, &config, &table, &starts)?;
    }
    if a.json {
        println!("{}", metrics_json(&m));
    } else {
        println!("{}", metrics_line(&m));
    }
    Ok(())
}

/// Forecast against truth of the last target for three test windows spread over the split.
fn plot_windows(
    path: &Path,
    model: &Forecaster,
    params: &[f32],
    series: &Series,
    config: &ForecastRunConfig,
    table: &Table,
    starts: &[usize],
) -> Result<()> {
    let cfg = *model.config();
    let (l, k) = (cfg.lookback, cfg.horizon);
    let picks: Vec<usize> = (0..3)
        .map(|i| starts[(starts.len() - 1) * i / 2])
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let fc = forecast_original(model, params, series, &config.data.columns.scaler, &picks)?;
    // The last target: the forecast column proper in the ETT convention (`OT`).
    let c = config.data.columns.targets.len();
    let target = &config.data.columns.targets[c - 1];
    let col = table.column(target)?;
    let context = l.min(2 * k).max(1);
    let mut lines: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for (n, &s) in picks.iter().enumerate() {
        // x: steps from the forecast origin (the window's last input row is 0).
        let origin = (s + l - 1) as f64;
        let truth = (s + l - context..s + l + k)
            .map(|r| (r as f64 - origin, table.get(r, col) as f64))
            .collect();
        let pred = (0..k)
            .map(|step| ((step + 1) as f64, fc[(n * k + step) * c + c - 1]))
            .collect();
        let date = config
            .data
            .columns
            .date_column
            .as_deref()
            .and_then(|d| table.text_column(d))
            .map_or_else(|| format!("row {}", s + l - 1), |v| v[s + l - 1].clone());
        lines.push((format!("truth from {date}"), truth));
        lines.push((format!("forecast from {date}"), pred));
    }
    let series: Vec<ChartSeries> = lines
        .iter()
        .map(|(name, points)| ChartSeries { name, points })
        .collect();
    line_chart_svg(
        path,
        &format!("{target}: {k}-step forecasts on the test split"),
        "steps after the last input row",
        target,
        &series,
    )
    .with_context(|| format!("could not draw {}", path.display()))
}

/// `seqrnn forecast predict`.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Run directory from `seqrnn forecast train`.
    #[arg(long)]
    model: PathBuf,
    /// CSV file with the run's columns; its last `lookback` rows are the input.
    #[arg(long)]
    data: PathBuf,
    /// Where to write the forecasts (CSV).
    #[arg(long)]
    out: PathBuf,
}

fn predict_cmd(a: PredictArgs) -> Result<()> {
    let model = load_run(&a.model)?;
    let table = load_table(&a.data)?;
    let f = model
        .predict(&table)
        .with_context(|| format!("cannot forecast after {}", a.data.display()))?;
    seqrnn::io::write_atomic(&a.out, f.to_csv().as_bytes())
        .with_context(|| format!("could not write {}", a.out.display()))?;
    eprintln!(
        "{} forecasts of {} column(s) after {} written to {}",
        f.values.len(),
        f.columns.len(),
        f.origin,
        a.out.display()
    );
    Ok(())
}

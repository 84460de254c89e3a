//! `seqrnn classify train | eval | predict`: sequence classification of labelled text
//! (`--data DIR`) or of numeric series in the UEA/UCR archive's `.ts` files (`--train`,
//! `--test`, `--input`; [`series`]).

mod series;

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use seqrnn::classify::data::{self as labeled, build_labels, build_vocab, encode_all, Encoded};
use seqrnn::classify::model::{Classifier, ClassifierConfig, Directions, Pooling};
use seqrnn::classify::{
    evaluate, ClassifyMetrics, ClassifyRunConfig, ClassifyRunData, ClassifyTask,
    ClassifyTrainConfig, Labelled, Trained,
};
use seqrnn::data::{Encoding, Vocab};
use seqrnn::run::{Run, RunDir};
use seqrnn::train::{FitConfig, FitOutcome};

use crate::flags::{
    default, epochs, help, EncoderFlags, EncodingFlag, LoopFlags, RunFlags, STDIN_ENCODING,
};
use crate::progress::Shown;
use crate::training;

#[derive(Subcommand, Debug)]
pub enum ClassifyCommand {
    /// Train a classifier on DIR/train.tsv, selecting on DIR/dev.tsv; or on the series of a
    /// `.ts` file (--train), selecting on a share of it.
    Train(Box<TrainArgs>),
    /// Accuracy, macro-F1 and confusion matrix on a split.
    Eval(EvalArgs),
    /// Classify text lines from standard input (label and probability per line), or the cases
    /// of a `.ts` file (--input; one label a line).
    Predict(PredictArgs),
}

pub fn run(cmd: ClassifyCommand) -> Result<()> {
    match cmd {
        ClassifyCommand::Train(a) => train_cmd(*a),
        ClassifyCommand::Eval(a) => eval_cmd(a),
        ClassifyCommand::Predict(a) => predict_cmd(a),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PoolArg {
    /// Final state of each direction.
    Last,
    /// Mean over the real steps.
    Mean,
    /// Maximum over the real steps.
    Max,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
/// The split `eval` scores.
pub enum SplitArg {
    Dev,
    Test,
}

/// `seqrnn classify train`'s epochs when --epochs is not given (text).
const EPOCHS: usize = 6;
/// `seqrnn classify train --train`'s epochs when --epochs is not given (series).
const SERIES_EPOCHS: usize = 150;

/// `seqrnn classify train`.
#[derive(Args, Debug)]
#[command(
    mut_arg("epochs", epochs(EPOCHS)),
    mut_arg("patience", default("2")),
    mut_arg("ema", default("0.999")),
    mut_arg("valid_every", default("300"))
)]
pub struct TrainArgs {
    /// Folder with train.tsv, dev.tsv and test.tsv (`label<TAB>text`, header line).
    #[arg(long, required_unless_present = "train", conflicts_with = "train")]
    data: Option<PathBuf>,
    #[command(flatten)]
    series: series::SeriesFlags,
    #[command(flatten)]
    encoding: EncodingFlag,
    #[command(flatten)]
    run: RunFlags,
    #[command(flatten)]
    encoder: EncoderFlags,
    /// Read each sentence in both directions.
    #[arg(long)]
    bidirectional: bool,
    /// Pooling over time.
    #[arg(long, value_enum, default_value = "max")]
    pool: PoolArg,
    /// Embedding width (text).
    #[arg(long, default_value_t = 128, conflicts_with = "train")]
    embed: usize,
    /// Words seen fewer times in train.tsv become <unk>.
    #[arg(long, default_value_t = 1, conflicts_with = "train")]
    min_freq: usize,
    /// Dropout on the encoder's input (embeddings, or channel values) and on pooled features.
    #[arg(long, default_value_t = 0.5)]
    dropout: f32,
    /// Probability of replacing each training word by <unk> at each step (word dropout).
    #[arg(long, default_value_t = 0.0, conflicts_with = "train")]
    word_dropout: f32,
    /// Start from a finished classification run (one `seqrnn import --keras` made, say): its
    /// model, weights, vocabulary and labels; the data is encoded with them and the model flags
    /// are not read.
    #[arg(long, value_name = "RUN", conflicts_with_all = ["resume", "train"])]
    init_from: Option<PathBuf>,
    #[command(flatten)]
    fit: LoopFlags,
}

fn split_file(dir: &Path, split: &str) -> PathBuf {
    dir.join(format!("{split}.tsv"))
}

/// The examples of `dir/SPLIT.tsv`; the library's errors name the file (and line), so no
/// context is added.
fn load_split(dir: &Path, split: &str, encoding: Encoding) -> Result<Vec<labeled::Example>> {
    Ok(labeled::load_tsv(&split_file(dir, split), encoding)?)
}

fn encode_split(
    dir: &Path,
    split: &str,
    examples: &[labeled::Example],
    vocab: &Vocab,
    labels: &Vocab,
) -> Result<Encoded> {
    Ok(encode_all(
        examples,
        vocab,
        labels,
        &split_file(dir, split),
    )?)
}

/// The splits of `--data`, encoded with the vocabulary and labels of train.tsv.
struct ClassifyData {
    min_freq: usize,
    vocab: Vocab,
    labels: Vocab,
    train: Encoded,
    dev: Encoded,
    test: Option<Encoded>,
}

fn train_cmd(a: TrainArgs) -> Result<()> {
    crate::set_threads(a.run.threads)?;
    let resumed = training::resumed::<_, _, _>(&a.run)?;
    match &a.data {
        Some(data) => train_text(&a, data, resumed),
        None => series::train(&a, resumed),
    }
}

/// A resumed classification run and its configuration.
type Resumed = training::Resumed<ClassifierConfig, ClassifyTrainConfig, ClassifyRunData>;

/// `seqrnn classify train --data DIR`.
fn train_text(a: &TrainArgs, data: &Path, resumed: Option<Resumed>) -> Result<()> {
    let saved: Option<&ClassifyRunConfig> = resumed.as_ref().map(|(_, c)| c);
    ensure!(
        saved.is_none_or(|c| c.data.series.is_none()),
        "the run in {} classifies series: resume it with --train",
        a.run.out.display()
    );
    let min_freq = saved.map_or(a.min_freq, |c| c.train.min_freq);
    let init = match &a.init_from {
        Some(dir) => Some(
            seqrnn::classify::Trained::load(dir)
                .with_context(|| format!("--init-from {}", dir.display()))?,
        ),
        None => None,
    };
    let given = init.as_ref().map(|m| (&m.vocab, &m.labels));
    let encoding = saved.map_or(a.encoding.get(), |c| a.encoding.or_run(c.train.encoding));
    let d = load_data(
        (data, encoding),
        min_freq,
        resumed.as_ref().map(|(r, _)| r.dir()),
        given,
    )?;
    let (model_cfg, train_cfg) = match (saved, &init) {
        (Some(c), _) => {
            let fit = a.fit.resumed(&a.run, c.train.fit);
            let train = ClassifyTrainConfig {
                fit,
                encoding,
                ..c.train
            };
            (c.model, train)
        }
        (None, Some(m)) => (m.config.model, settings_from_flags(a, 0, 0, 0).1),
        (None, None) => settings_from_flags(a, d.vocab.len(), d.labels.len(), 0),
    };
    let model = Classifier::new(model_cfg)?;
    train_cfg.fit.validate()?;
    let mut task = ClassifyTask::new(&model, &d.train, &d.dev, train_cfg.batch)?
        .with_word_dropout(train_cfg.word_dropout)?;
    let params = match &init {
        Some(m) => m.params.to_vec(),
        None => model.init_params(train_cfg.fit.seed)?,
    };
    let config = ClassifyRunConfig::new(model_cfg, train_cfg, ClassifyRunData::default());
    if training::is_root() {
        print_start(&model, &d);
    }
    let run = training::open_run(resumed.map(|(r, _)| r), &a.run, &config, |run| {
        d.vocab.save(&run.dir().vocab_path())?;
        Ok(d.labels.save(&ClassifyRunConfig::labels_path(run.dir()))?)
    })?;
    let splits = Splits {
        labels: &d.labels,
        dev: &d.dev,
        test: d.test.as_ref(),
    };
    let fit = &train_cfg.fit;
    fit_and_report(a, (&model, fit), &mut task, params, &run, splits)
}

/// What the end of training scores: the labels, the validation split and the test split.
struct Splits<'d, D> {
    labels: &'d Vocab,
    dev: &'d D,
    test: Option<&'d D>,
}

/// Trains `task` in `run` with the loop settings of its configuration, then (the writing
/// process) scores the selected weights on the splits, writes `summary.json` and prints.
fn fit_and_report<D: Labelled>(
    a: &TrainArgs,
    (model, fit): (&Classifier, &FitConfig),
    task: &mut ClassifyTask<'_, D>,
    mut params: Vec<f32>,
    run: &Run,
    splits: Splits<'_, D>,
) -> Result<()> {
    let t0 = std::time::Instant::now();
    let outcome = training::fit(task, &mut params, fit, run, Shown::Accuracy)?;
    if !run.is_writer() {
        return Ok(());
    }
    let dev_m = evaluate(model, &outcome.best_params, splits.dev)?;
    let test_m = match splits.test {
        Some(t) => Some(evaluate(model, &outcome.best_params, t)?),
        None => None,
    };
    let secs = t0.elapsed().as_secs_f64();
    let result = TrainResult {
        outcome: &outcome,
        dev: &dev_m,
        test: test_m.as_ref(),
        secs,
    };
    let v = result_json(a, splits.labels, &result);
    run.finish(&v)?;
    print_result(a, &v, splits.labels, &result);
    Ok(())
}

/// Loads the splits, builds the vocabulary and labels from train.tsv (or takes the `given`
/// ones, a run's to start from) and encodes the splits; for a resumed run (its folder
/// `resumed`), checks that they are the run's.
fn load_data(
    (data, encoding): (&Path, Encoding),
    min_freq: usize,
    resumed: Option<&RunDir>,
    given: Option<(&Vocab, &Vocab)>,
) -> Result<ClassifyData> {
    ensure!(min_freq >= 1, "--min-freq must be at least 1");
    let train_ex = load_split(data, "train", encoding)?;
    let dev_ex = load_split(data, "dev", encoding)?;
    let test_ex = if split_file(data, "test").is_file() {
        Some(load_split(data, "test", encoding)?)
    } else {
        None
    };
    let (vocab, labels) = match given {
        Some((v, l)) => (v.clone(), l.clone()),
        None => (build_vocab(&train_ex, min_freq), build_labels(&train_ex)),
    };
    if let Some(dir) = resumed {
        check_same_data(data, dir, &vocab, &labels)?;
    }
    ensure!(
        labels.len() >= 2,
        "classification needs at least 2 labels, {} has {}",
        split_file(data, "train").display(),
        labels.len()
    );
    let train = encode_split(data, "train", &train_ex, &vocab, &labels)?;
    let dev = encode_split(data, "dev", &dev_ex, &vocab, &labels)?;
    let test = match &test_ex {
        Some(t) => Some(encode_split(data, "test", t, &vocab, &labels)?),
        None => None,
    };
    Ok(ClassifyData {
        min_freq,
        vocab,
        labels,
        train,
        dev,
        test,
    })
}

/// A resumed run goes on only with the data it was trained on: the same vocabulary and labels.
fn check_same_data(data: &Path, dir: &RunDir, vocab: &Vocab, labels: &Vocab) -> Result<()> {
    let same =
        |v: &Vocab, path: &Path| -> Result<bool> { Ok(Vocab::load(path)?.tokens() == v.tokens()) };
    ensure!(
        same(vocab, &dir.vocab_path())? && same(labels, &ClassifyRunConfig::labels_path(dir))?,
        "{} is not the data this run was trained on (its vocabulary or labels differ)",
        split_file(data, "train").display()
    );
    Ok(())
}

/// The model and training settings of a fresh run, from the flags: a text classifier over
/// `vocab` tokens, or with `channels > 0` a series classifier of that many channels.
fn settings_from_flags(
    a: &TrainArgs,
    vocab: usize,
    classes: usize,
    channels: usize,
) -> (ClassifierConfig, ClassifyTrainConfig) {
    let series = channels > 0;
    let model = ClassifierConfig {
        vocab,
        embed: if series { 0 } else { a.embed },
        cell: a.encoder.cell(),
        hidden: a.encoder.hidden,
        layers: a.encoder.layers,
        direction: if a.bidirectional {
            Directions::Bidirectional
        } else {
            Directions::Forward
        },
        pooling: match a.pool {
            PoolArg::Last => Pooling::Last,
            PoolArg::Mean => Pooling::Mean,
            PoolArg::Max => Pooling::Max,
        },
        dropout: a.dropout,
        classes,
        channels,
    };
    let train = ClassifyTrainConfig {
        batch: a.fit.batch,
        min_freq: a.min_freq,
        word_dropout: a.word_dropout,
        encoding: a.encoding.get(),
        fit: a
            .fit
            .fit_config(&a.run, if series { SERIES_EPOCHS } else { EPOCHS }),
    };
    (model, train)
}

/// `LSTM 2×64 bidirectional Max pooling: N parameters`: the model, as the start line names it.
fn model_line(model: &Classifier) -> String {
    let c = model.config();
    let both = match c.direction {
        Directions::Bidirectional => " bidirectional",
        _ => "",
    };
    format!(
        "{} {}×{}{both} {:?} pooling: {} parameters",
        c.cell.name().to_uppercase(),
        c.layers,
        c.hidden,
        c.pooling,
        model.num_params()
    )
}

/// The line on standard error that says what is trained on what.
fn print_start(model: &Classifier, d: &ClassifyData) {
    eprintln!(
        "{}, vocabulary {} (min freq {}), {} labels, {} train / {} dev examples ({} dev words unknown), {} thread(s)",
        model_line(model),
        d.vocab.len(),
        d.min_freq,
        d.labels.len(),
        d.train.ids.len(),
        d.dev.ids.len(),
        d.dev.unknown_tokens,
        seqrnn::linalg::threads()
    );
}

/// The figures at the end of training.
struct TrainResult<'a> {
    outcome: &'a FitOutcome,
    dev: &'a ClassifyMetrics,
    test: Option<&'a ClassifyMetrics>,
    secs: f64,
}

/// The run's final figures (its `summary.json`, and what `--json` prints).
fn result_json(a: &TrainArgs, labels: &Vocab, r: &TrainResult<'_>) -> serde_json::Value {
    let (outcome, dev_m, test_m) = (r.outcome, r.dev, r.test);
    serde_json::json!({
        "dev_accuracy": dev_m.accuracy,
        "dev_macro_f1": dev_m.macro_f1,
        "test_accuracy": test_m.map(|m| m.accuracy),
        "test_macro_f1": test_m.map(|m| m.macro_f1),
        "test_confusion": test_m.map(|m| m.confusion.clone()),
        "labels": labels.tokens(),
        "best_epoch": outcome.best_epoch,
        "best_step": outcome.best_step,
        "epochs": outcome.epochs_run,
        "steps": outcome.steps,
        "seconds": r.secs,
        "run": a.run.out,
    })
}

/// The summary line and confusion matrix, or with `--json` one JSON object (`v`, from
/// [`result_json`]).
fn print_result(a: &TrainArgs, v: &serde_json::Value, labels: &Vocab, r: &TrainResult<'_>) {
    let (outcome, dev_m, test_m) = (r.outcome, r.dev, r.test);
    if a.run.json {
        println!("{v}");
        return;
    }
    println!(
        "best dev accuracy {:.2}% (epoch {}), dev macro-F1 {:.4}{}; {} epochs, {:.0} s; run in {}",
        100.0 * dev_m.accuracy,
        outcome.best_epoch,
        dev_m.macro_f1,
        test_m
            .map(|m| format!(
                "; test accuracy {:.2}%, macro-F1 {:.4}",
                100.0 * m.accuracy,
                m.macro_f1
            ))
            .unwrap_or_default(),
        outcome.epochs_run,
        r.secs,
        a.run.out.display()
    );
    if let Some(m) = test_m {
        print!("{}", confusion_text(m, labels));
    }
}

fn confusion_text(m: &ClassifyMetrics, labels: &Vocab) -> String {
    let names = labels.tokens();
    let w = names.iter().map(String::len).max().unwrap_or(1).max(6);
    let mut s = format!("confusion (rows: true, columns: predicted)\n{:>w$}", "");
    for n in names {
        s += &format!(" {n:>w$}");
    }
    s.push('\n');
    for (n, row) in names.iter().zip(&m.confusion) {
        s += &format!("{n:>w$}");
        for v in row {
            s += &format!(" {v:>w$}");
        }
        s.push('\n');
    }
    s
}

/// A trained run: configuration, vocabulary, labels, model, weights.
fn load_run(dir: &Path) -> Result<Trained> {
    Trained::load(dir)
        .with_context(|| format!("{} is not a usable classification run", dir.display()))
}

/// `seqrnn classify eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Run directory from `seqrnn classify train`.
    #[arg(long)]
    model: PathBuf,
    /// Folder with dev.tsv / test.tsv (a text classifier).
    #[arg(long, required_unless_present = "test", conflicts_with = "test")]
    data: Option<PathBuf>,
    /// Split of --data.
    #[arg(long, value_enum, default_value = "test")]
    split: SplitArg,
    #[command(flatten)]
    encoding: EncodingFlag,
    /// A labelled `.ts` file to score (a series classifier).
    #[arg(long, value_name = "X_TEST.ts")]
    test: Option<PathBuf>,
    /// Print one JSON object with the figures.
    #[arg(long)]
    json: bool,
}

fn eval_cmd(a: EvalArgs) -> Result<()> {
    let clf = load_run(&a.model)?;
    let (split, m, unknown) = match (&a.data, &a.test) {
        (Some(data), _) => {
            let split = match a.split {
                SplitArg::Dev => "dev",
                SplitArg::Test => "test",
            };
            let ex = load_split(data, split, a.encoding.or_run(clf.config.train.encoding))?;
            let d = encode_split(data, split, &ex, &clf.vocab, &clf.labels)?;
            let m = evaluate(&clf.model, &clf.params, &d)?;
            (split, m, Some(d.unknown_tokens))
        }
        (None, Some(test)) => ("test", series::evaluate_file(&clf, test)?, None),
        (None, None) => anyhow::bail!("pass --data DIR (text) or --test FILE.ts (series)"),
    };
    let labels = &clf.labels;
    if a.json {
        let mut v = serde_json::json!({
            "split": split,
            "examples": m.examples,
            "loss": m.loss,
            "labels": labels.tokens(),
            "confusion": m.confusion,
        });
        if let Some(n) = unknown {
            v["unknown_tokens"] = serde_json::json!(n);
        }
        v[format!("{split}_accuracy")] = serde_json::json!(m.accuracy);
        v[format!("{split}_macro_f1")] = serde_json::json!(m.macro_f1);
        println!("{v}");
    } else {
        let unknown = unknown.map(|n| format!(" ({n} unknown words)"));
        println!(
            "{split}: accuracy {:.2}%, macro-F1 {:.4}, loss {:.4}, {} examples{}",
            100.0 * m.accuracy,
            m.macro_f1,
            m.loss,
            m.examples,
            unknown.unwrap_or_default()
        );
        print!("{}", confusion_text(&m, labels));
    }
    Ok(())
}

/// `seqrnn classify predict`.
#[derive(Args, Debug)]
#[command(mut_arg("encoding", help(STDIN_ENCODING)))]
pub struct PredictArgs {
    /// Run directory from `seqrnn classify train`.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    encoding: EncodingFlag,
    /// A `.ts` file whose cases a series classifier labels, one label a line (the label column
    /// may be present or absent); without it, text lines are read from standard input.
    #[arg(long, value_name = "X.ts")]
    input: Option<PathBuf>,
}

fn predict_cmd(a: PredictArgs) -> Result<()> {
    let clf = load_run(&a.model)?;
    if let Some(path) = &a.input {
        return series::predict_file(&clf, path);
    }
    ensure!(
        clf.series().is_none(),
        "{} classifies series: give the cases with --input FILE.ts",
        a.model.display()
    );
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut bytes)
        .context("could not read standard input")?;
    let input = a
        .encoding
        .get()
        .decode(bytes, Path::new("standard input"))?;
    let texts: Vec<&str> = input.lines().collect();
    let mut out = std::io::stdout().lock();
    for p in clf.predict(&texts)? {
        writeln!(out, "{}\t{:.4}", p.label, p.probability)?;
    }
    Ok(())
}

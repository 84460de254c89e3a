//! `seqrnn classify train | eval | predict`: sequence classification of labelled text.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use seqrnn::classify::data::{self as labeled, build_labels, build_vocab, encode_all, Encoded};
use seqrnn::classify::model::{Classifier, ClassifierConfig, Directions, Pooling};
use seqrnn::classify::{
    evaluate, ClassifyMetrics, ClassifyRunConfig, ClassifyTask, ClassifyTrainConfig, Trained,
};
use seqrnn::data::{Encoding, Vocab};
use seqrnn::run::{NoData, RunDir};
use seqrnn::train::FitOutcome;

use crate::flags::{
    default, epochs, help, EncoderFlags, EncodingFlag, LoopFlags, RunFlags, STDIN_ENCODING,
};
use crate::progress::Shown;
use crate::training;

#[derive(Subcommand, Debug)]
pub enum ClassifyCommand {
    /// Train a classifier on DIR/train.tsv, selecting on DIR/dev.tsv.
    Train(Box<TrainArgs>),
    /// Accuracy, macro-F1 and confusion matrix on a split.
    Eval(EvalArgs),
    /// Classify text lines from standard input: label and probability per line.
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

/// `seqrnn classify train`'s epochs when --epochs is not given.
const EPOCHS: usize = 6;

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
    #[arg(long)]
    data: PathBuf,
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
    /// Embedding width.
    #[arg(long, default_value_t = 128)]
    embed: usize,
    /// Words seen fewer times in train.tsv become <unk>.
    #[arg(long, default_value_t = 1)]
    min_freq: usize,
    /// Dropout on embeddings and pooled features.
    #[arg(long, default_value_t = 0.5)]
    dropout: f32,
    /// Probability of replacing each training word by <unk> at each step (word dropout).
    #[arg(long, default_value_t = 0.0)]
    word_dropout: f32,
    /// Start from a finished classification run (one `seqrnn import --keras` made, say): its
    /// model, weights, vocabulary and labels; the data is encoded with them and the model flags
    /// are not read.
    #[arg(long, value_name = "RUN", conflicts_with = "resume")]
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
    let saved: Option<&ClassifyRunConfig> = resumed.as_ref().map(|(_, c)| c);
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
        (&a.data, encoding),
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
        (None, Some(m)) => (m.config.model, settings_from_flags(&a, 0, 0).1),
        (None, None) => settings_from_flags(&a, d.vocab.len(), d.labels.len()),
    };
    let model = Classifier::new(model_cfg)?;
    train_cfg.fit.validate()?;
    let mut task = ClassifyTask::new(&model, &d.train, &d.dev, train_cfg.batch)?
        .with_word_dropout(train_cfg.word_dropout)?;
    let mut params = match &init {
        Some(m) => m.params.to_vec(),
        None => model.init_params(train_cfg.fit.seed)?,
    };
    let config = ClassifyRunConfig::new(model_cfg, train_cfg, NoData {});
    if training::is_root() {
        print_start(&model, &d);
    }
    let run = training::open_run(resumed.map(|(r, _)| r), &a.run, &config, |run| {
        d.vocab.save(&run.dir().vocab_path())?;
        Ok(d.labels.save(&ClassifyRunConfig::labels_path(run.dir()))?)
    })?;
    let t0 = std::time::Instant::now();
    let fit = &train_cfg.fit;
    let outcome = training::fit(&mut task, &mut params, fit, &run, Shown::Accuracy)?;
    if !run.is_writer() {
        return Ok(());
    }
    let dev_m = evaluate(&model, &outcome.best_params, &d.dev)?;
    let test_m = match &d.test {
        Some(t) => Some(evaluate(&model, &outcome.best_params, t)?),
        None => None,
    };
    let secs = t0.elapsed().as_secs_f64();
    let result = TrainResult {
        outcome: &outcome,
        dev: &dev_m,
        test: test_m.as_ref(),
        secs,
    };
    let v = result_json(&a, &d.labels, &result);
    run.finish(&v)?;
    print_result(&a, &v, &d.labels, &result);
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

/// The model and training settings of a fresh run, from the flags.
fn settings_from_flags(
    a: &TrainArgs,
    vocab: usize,
    classes: usize,
) -> (ClassifierConfig, ClassifyTrainConfig) {
    let model = ClassifierConfig {
        vocab,
        embed: a.embed,
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
    };
    let train = ClassifyTrainConfig {
        batch: a.fit.batch,
        min_freq: a.min_freq,
        word_dropout: a.word_dropout,
        encoding: a.encoding.get(),
        fit: a.fit.fit_config(&a.run, EPOCHS),
    };
    (model, train)
}

/// The line on standard error that says what is trained on what.
fn print_start(model: &Classifier, d: &ClassifyData) {
    let c = model.config();
    eprintln!(
        "{} {}×{}{} {:?} pooling: {} parameters, vocabulary {} (min freq {}), {} labels, {} train / {} dev examples ({} dev words unknown), {} thread(s)",
        c.cell.name().to_uppercase(),
        c.layers,
        c.hidden,
        if c.direction == Directions::Bidirectional {
            " bidirectional"
        } else {
            ""
        },
        c.pooling,
        model.num_params(),
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
    /// Folder with dev.tsv / test.tsv.
    #[arg(long)]
    data: PathBuf,
    /// Split.
    #[arg(long, value_enum, default_value = "test")]
    split: SplitArg,
    #[command(flatten)]
    encoding: EncodingFlag,
    /// Print one JSON object with the figures.
    #[arg(long)]
    json: bool,
}

fn eval_cmd(a: EvalArgs) -> Result<()> {
    let Trained {
        vocab,
        labels,
        model,
        params,
        config,
    } = load_run(&a.model)?;
    let split = match a.split {
        SplitArg::Dev => "dev",
        SplitArg::Test => "test",
    };
    let ex = load_split(&a.data, split, a.encoding.or_run(config.train.encoding))?;
    let data = encode_split(&a.data, split, &ex, &vocab, &labels)?;
    let m = evaluate(&model, &params, &data)?;
    if a.json {
        let mut v = serde_json::json!({
            "split": split,
            "examples": m.examples,
            "loss": m.loss,
            "labels": labels.tokens(),
            "confusion": m.confusion,
            "unknown_tokens": data.unknown_tokens,
        });
        v[format!("{split}_accuracy")] = serde_json::json!(m.accuracy);
        v[format!("{split}_macro_f1")] = serde_json::json!(m.macro_f1);
        println!("{v}");
    } else {
        println!(
            "{split}: accuracy {:.2}%, macro-F1 {:.4}, loss {:.4}, {} examples ({} unknown words)",
            100.0 * m.accuracy,
            m.macro_f1,
            m.loss,
            m.examples,
            data.unknown_tokens
        );
        print!("{}", confusion_text(&m, &labels));
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
}

fn predict_cmd(a: PredictArgs) -> Result<()> {
    let clf = load_run(&a.model)?;
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

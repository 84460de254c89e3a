//! `seqrnn classify train | eval | predict`: sequence classification of labelled text.

use std::io::{BufRead, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use seqrnn::classify::data::{self as labeled, build_labels, build_vocab, encode_all, Encoded};
use seqrnn::classify::model::{Classifier, ClassifierConfig, Directions, Pooling};
use seqrnn::classify::{
    evaluate, ClassifyMetrics, ClassifyRunConfig, ClassifyTask, ClassifyTrainConfig, Trained,
};
use seqrnn::data::Vocab;
use seqrnn::optim::AdamConfig;
use seqrnn::rnn::CellKind;
use seqrnn::run::{NoData, RunDir};
use seqrnn::train::{EarlyStopping, FitConfig, FitOutcome, Optimizer};

use crate::progress::Shown;
use crate::training::{self, new_run, resumed_run};
use crate::CellArg;

#[derive(Subcommand, Debug)]
pub enum ClassifyCommand {
    /// Train a classifier on DIR/train.tsv, selecting on DIR/dev.tsv.
    Train(TrainArgs),
    /// Accuracy, macro-F1 and confusion matrix on a split.
    Eval(EvalArgs),
    /// Classify text lines from standard input: label and probability per line.
    Predict(PredictArgs),
}

pub fn run(cmd: ClassifyCommand) -> Result<()> {
    match cmd {
        ClassifyCommand::Train(a) => train_cmd(a),
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

/// `seqrnn classify train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Folder with train.tsv, dev.tsv and test.tsv (`label<TAB>text`, header line).
    #[arg(long)]
    data: PathBuf,
    /// Run directory.
    #[arg(long)]
    out: PathBuf,
    /// Recurrent cell.
    #[arg(long, value_enum, default_value = "lstm")]
    cell: CellArg,
    /// Read each sentence in both directions.
    #[arg(long)]
    bidirectional: bool,
    /// Pooling over time.
    #[arg(long, value_enum, default_value = "max")]
    pool: PoolArg,
    /// Recurrent layers.
    #[arg(long, default_value_t = 1)]
    layers: usize,
    /// Units per direction.
    #[arg(long, default_value_t = 128)]
    hidden: usize,
    /// Embedding width.
    #[arg(long, default_value_t = 128)]
    embed: usize,
    /// Words seen fewer times in train.tsv become <unk>.
    #[arg(long, default_value_t = 1)]
    min_freq: usize,
    /// Dropout on embeddings and pooled features.
    #[arg(long, default_value_t = 0.5)]
    dropout: f32,
    /// Epochs at most [default: 6; with --resume: the run's].
    #[arg(long)]
    epochs: Option<usize>,
    /// Stop after this many epochs without a better dev accuracy.
    #[arg(long, default_value_t = 2)]
    patience: usize,
    /// Sequences per step.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Maximum global gradient norm.
    #[arg(long, default_value_t = 5.0)]
    clip: f64,
    /// Probability of replacing each training word by <unk> at each step (word dropout).
    #[arg(long, default_value_t = 0.0)]
    word_dropout: f32,
    /// Decoupled weight decay (AdamW); 0 for plain Adam.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Validate and keep an exponential moving average of the weights with this momentum; 0
    /// for the raw weights.
    #[arg(long, default_value_t = 0.999)]
    ema: f64,
    /// Also score dev.tsv every this many steps inside an epoch (0: at epoch ends only); the
    /// best-scoring weights of any validation are kept.
    #[arg(long, default_value_t = 300)]
    valid_every: usize,
    /// Stop after this many steps (smoke tests).
    #[arg(long)]
    max_steps: Option<u64>,
    /// Seed of initialisation, shuffling and dropout.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Replace a run already in --out.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// Go on with the run in --out from its last checkpoint (end of its last finished epoch),
    /// with the run's own settings; only --epochs may raise the number of epochs. --data must
    /// hold the data the run was trained on.
    #[arg(long)]
    resume: bool,
    /// Print one JSON object with the final figures.
    #[arg(long)]
    json: bool,
}

fn split_file(dir: &Path, split: &str) -> PathBuf {
    dir.join(format!("{split}.tsv"))
}

fn load_split(dir: &Path, split: &str) -> Result<Vec<labeled::Example>> {
    let path = split_file(dir, split);
    labeled::load_tsv(&path).with_context(|| format!("could not load the {split} split"))
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
    crate::set_threads(a.threads)?;
    let resumed = resumed_run(&a.out, a.resume, a.force)?;
    let saved = match &resumed {
        Some(run) => Some(ClassifyRunConfig::load(run.dir())?),
        None => None,
    };
    let min_freq = saved.as_ref().map_or(a.min_freq, |c| c.train.min_freq);
    let d = load_data(&a.data, min_freq, resumed.as_ref().map(|r| r.dir()))?;
    let (model_cfg, train_cfg) = match &saved {
        Some(c) => {
            let mut t = c.train;
            t.fit.epochs = a.epochs.unwrap_or(t.fit.epochs);
            (c.model, t)
        }
        None => settings_from_flags(&a, d.vocab.len(), d.labels.len()),
    };
    let model = Classifier::new(model_cfg)?;
    train_cfg.fit.validate()?;
    let mut task = ClassifyTask::new(&model, &d.train, &d.dev, train_cfg.batch)?
        .with_word_dropout(train_cfg.word_dropout)?;
    let mut params = model.init_params(train_cfg.fit.seed)?;
    let config = ClassifyRunConfig::new(model_cfg, train_cfg, NoData {});
    if training::is_root() {
        print_start(&model, &d);
    }
    let run = match resumed {
        Some(mut run) => {
            run.set_config(&config)?;
            run
        }
        None => {
            let run = new_run(&a.out, a.force, &config)?;
            if run.is_writer() {
                d.vocab.save(&run.dir().vocab_path())?;
                d.labels.save(&ClassifyRunConfig::labels_path(run.dir()))?;
            }
            run
        }
    };
    let t0 = std::time::Instant::now();
    let outcome = training::fit(
        &mut task,
        &mut params,
        &train_cfg.fit,
        &run,
        Shown::Accuracy,
    )?;
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

/// Loads the splits, builds the vocabulary and labels from train.tsv and encodes the splits;
/// for a resumed run (its folder `resumed`), checks that they are the run's.
fn load_data(data: &Path, min_freq: usize, resumed: Option<&RunDir>) -> Result<ClassifyData> {
    ensure!(min_freq >= 1, "--min-freq must be at least 1");
    let train_ex = load_split(data, "train")?;
    let dev_ex = load_split(data, "dev")?;
    let test_ex = if split_file(data, "test").is_file() {
        Some(load_split(data, "test")?)
    } else {
        None
    };
    let vocab = build_vocab(&train_ex, min_freq);
    let labels = build_labels(&train_ex);
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
        cell: CellKind::from(a.cell),
        hidden: a.hidden,
        layers: a.layers,
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
        batch: a.batch,
        min_freq: a.min_freq,
        word_dropout: a.word_dropout,
        fit: FitConfig {
            lr: a.lr,
            clip: Some(a.clip),
            epochs: a.epochs.unwrap_or(6),
            early_stopping: EarlyStopping::Patience(a.patience),
            max_steps: a.max_steps,
            seed: a.seed,
            valid_every: (a.valid_every > 0).then_some(a.valid_every),
            ema: (a.ema != 0.0).then_some(a.ema),
            optimizer: Optimizer::Adam(AdamConfig {
                weight_decay: a.weight_decay,
                ..AdamConfig::default()
            }),
            ..FitConfig::default()
        },
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
        "run": a.out,
    })
}

/// The summary line and confusion matrix, or with `--json` one JSON object (`v`, from
/// [`result_json`]).
fn print_result(a: &TrainArgs, v: &serde_json::Value, labels: &Vocab, r: &TrainResult<'_>) {
    let (outcome, dev_m, test_m) = (r.outcome, r.dev, r.test);
    if a.json {
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
        a.out.display()
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SplitArg {
    Dev,
    Test,
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
        ..
    } = load_run(&a.model)?;
    let split = match a.split {
        SplitArg::Dev => "dev",
        SplitArg::Test => "test",
    };
    let ex = load_split(&a.data, split)?;
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
pub struct PredictArgs {
    /// Run directory from `seqrnn classify train`.
    #[arg(long)]
    model: PathBuf,
}

fn predict_cmd(a: PredictArgs) -> Result<()> {
    let clf = load_run(&a.model)?;
    let mut texts = Vec::new();
    for (no, line) in std::io::stdin().lock().lines().enumerate() {
        texts.push(
            line.with_context(|| format!("standard input, line {}: not UTF-8 text", no + 1))?,
        );
    }
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut out = std::io::stdout().lock();
    for p in clf.predict(&texts)? {
        writeln!(out, "{}\t{:.4}", p.label, p.probability)?;
    }
    Ok(())
}

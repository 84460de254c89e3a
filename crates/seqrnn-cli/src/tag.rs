//! `seqrnn tag train | eval | predict`: a label for every token (BiLSTM, optionally with a CRF).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use seqrnn::data::Vocab;
use seqrnn::optim::AdamConfig;
use seqrnn::rnn::CellKind;
use seqrnn::run::{NoData, RunDir};
use seqrnn::tag::conll::{read_tagged, Columns, Format, ReadConfig, TaggedFile, UdLabel};
use seqrnn::tag::model::{Head, Tagger, TaggerConfig};
use seqrnn::tag::tags::{convert, detect, Scheme};
use seqrnn::tag::{
    constraints, encode, evaluate, evaluate_with_confusion, is_entity_tagging, predict, to_scheme,
    TagRunConfig, TagTask, TagTrainConfig, TagVocabs,
};
use seqrnn::train::{EarlyStopping, FitConfig, KeepCheckpoints, Optimizer};

use crate::progress::Shown;
use crate::training::{self, new_run, resumed_run};
use crate::CellArg;

#[derive(Subcommand, Debug)]
pub enum TagCommand {
    /// Train a tagger on a CoNLL or CoNLL-U file, selecting on a development file.
    Train(Box<TrainArgs>),
    /// Token accuracy and entity precision, recall and F1 of a trained tagger on a file.
    Eval(EvalArgs),
    /// Tag a file: the input written back with a predicted label column.
    Predict(PredictArgs),
}

pub fn run(cmd: TagCommand) -> Result<()> {
    match cmd {
        TagCommand::Train(a) => train_cmd(*a),
        TagCommand::Eval(a) => eval_cmd(a),
        TagCommand::Predict(a) => predict_cmd(a),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Conll,
    Conllu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LabelArg {
    Upos,
    Xpos,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SchemeArg {
    Iob1,
    Iob2,
    Iobes,
}

impl From<SchemeArg> for Scheme {
    fn from(s: SchemeArg) -> Scheme {
        match s {
            SchemeArg::Iob1 => Scheme::Iob1,
            SchemeArg::Iob2 => Scheme::Iob2,
            SchemeArg::Iobes => Scheme::Iobes,
        }
    }
}

/// How the files are read.
#[derive(Args, Debug, Clone, Copy)]
pub struct ReadArgs {
    /// File format.
    #[arg(long, value_enum, default_value = "conll")]
    format: FormatArg,
    /// CoNLL-U label column.
    #[arg(long, value_enum, default_value = "upos")]
    label: LabelArg,
    /// CoNLL word column, 1-based [default: the first].
    #[arg(long)]
    word_column: Option<usize>,
    /// CoNLL label column, 1-based [default: the last].
    #[arg(long)]
    label_column: Option<usize>,
}

impl ReadArgs {
    fn config(&self) -> Result<ReadConfig> {
        let col = |c: Option<usize>, flag: &str| -> Result<Option<usize>> {
            match c {
                Some(0) => anyhow::bail!("{flag} counts from 1"),
                other => Ok(other.map(|c| c - 1)),
            }
        };
        Ok(ReadConfig {
            format: match self.format {
                FormatArg::Conll => Format::Conll,
                FormatArg::Conllu => Format::Conllu,
            },
            columns: Columns {
                word: col(self.word_column, "--word-column")?,
                label: col(self.label_column, "--label-column")?,
            },
            ud_label: match self.label {
                LabelArg::Upos => UdLabel::Upos,
                LabelArg::Xpos => UdLabel::Xpos,
            },
        })
    }
}

/// `seqrnn tag train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Training file.
    #[arg(long)]
    train: PathBuf,
    /// Development file (selects the weights).
    #[arg(long)]
    dev: PathBuf,
    /// Test file (scored at the end).
    #[arg(long)]
    test: Option<PathBuf>,
    #[command(flatten)]
    read: ReadArgs,
    /// The files' tag scheme [default: detected].
    #[arg(long, value_enum)]
    scheme: Option<SchemeArg>,
    /// The scheme the model is trained in.
    #[arg(long, value_enum, default_value = "iobes")]
    train_scheme: SchemeArg,
    /// A linear-chain CRF on top (else a softmax per token).
    #[arg(long)]
    crf: bool,
    /// Run directory.
    #[arg(long)]
    out: PathBuf,
    /// Recurrent cell.
    #[arg(long, value_enum, default_value = "lstm")]
    cell: CellArg,
    /// Word embedding width.
    #[arg(long, default_value_t = 100)]
    embed: usize,
    /// Character embedding width.
    #[arg(long, default_value_t = 50)]
    char_embed: usize,
    /// Character BiLSTM units per direction (0: no character features).
    #[arg(long, default_value_t = 50)]
    char_hidden: usize,
    /// Word-level units per direction.
    #[arg(long, default_value_t = 200)]
    hidden: usize,
    /// Word-level layers.
    #[arg(long, default_value_t = 1)]
    layers: usize,
    /// Dropout on the encoder's input and output.
    #[arg(long, default_value_t = 0.5)]
    dropout: f32,
    /// Lowercased words seen fewer times become <unk>.
    #[arg(long, default_value_t = 1)]
    min_freq: usize,
    /// Replace each training word seen once by <unk> with this probability at every step
    /// (Lample et al.'s singleton replacement).
    #[arg(long, default_value_t = 0.5)]
    unk_replace: f32,
    /// Epochs at most.
    #[arg(long)]
    epochs: Option<usize>,
    /// Stop after this many epochs without a better dev score.
    #[arg(long, default_value_t = 4)]
    patience: usize,
    /// Sentences per step.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Learning rate factor per epoch after --decay-after epochs.
    #[arg(long, default_value_t = 1.0)]
    lr_decay: f64,
    /// Epochs at the initial learning rate.
    #[arg(long, default_value_t = 1)]
    decay_after: usize,
    /// Maximum global gradient norm.
    #[arg(long, default_value_t = 5.0)]
    clip: f64,
    /// Decoupled weight decay (AdamW); 0 for plain Adam.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Validate and keep an exponential moving average of the weights with this momentum; 0
    /// for the raw weights.
    #[arg(long, default_value_t = 0.999)]
    ema: f64,
    /// Also score the dev file every this many steps inside an epoch (0: at epoch ends only);
    /// the best-scoring weights of any validation are kept.
    #[arg(long, default_value_t = 0)]
    valid_every: usize,
    /// Also write a checkpoint every this many steps (0: at epoch ends only).
    #[arg(long, default_value_t = 0)]
    checkpoint_every: u64,
    /// Stop after this many steps (smoke tests).
    #[arg(long)]
    max_steps: Option<u64>,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Replace a run already in --out.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// Go on with the run in --out from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Print one JSON object with the final figures.
    #[arg(long)]
    json: bool,
}

fn read(path: &Path, cfg: &ReadConfig) -> Result<TaggedFile> {
    read_tagged(path, cfg).with_context(|| format!("could not read {}", path.display()))
}

fn labels_of(f: &TaggedFile) -> Vec<Vec<String>> {
    f.sentences.iter().map(|s| s.labels.clone()).collect()
}

fn train_cmd(a: TrainArgs) -> Result<()> {
    crate::set_threads(a.threads)?;
    let resumed = resumed_run(&a.out, a.resume, a.force)?;
    let saved = match &resumed {
        Some(run) => Some(TagRunConfig::load(run.dir())?),
        None => None,
    };
    let read_cfg = match &saved {
        Some(c) => c.train.read,
        None => a.read.config()?,
    };
    let mut train = read(&a.train, &read_cfg)?;
    let mut dev = read(&a.dev, &read_cfg)?;
    let mut test = match &a.test {
        Some(p) => Some(read(p, &read_cfg)?),
        None => None,
    };
    let entities = is_entity_tagging(&labels_of(&train));
    let (file_scheme, train_scheme) = match (&saved, entities) {
        (Some(c), _) => (c.train.file_scheme, c.train.train_scheme),
        (None, true) => (
            Some(
                a.scheme
                    .map_or_else(|| detect(&labels_of(&train)), Scheme::from),
            ),
            Some(Scheme::from(a.train_scheme)),
        ),
        (None, false) => (None, None),
    };
    if let (Some(from), Some(to)) = (file_scheme, train_scheme) {
        to_scheme(&mut train.sentences, from, to, &a.train)?;
        to_scheme(&mut dev.sentences, from, to, &a.dev)?;
        if let (Some(t), Some(p)) = (test.as_mut(), &a.test) {
            to_scheme(&mut t.sentences, from, to, p)?;
        }
    }
    let min_freq = saved.as_ref().map_or(a.min_freq, |c| c.train.min_freq);
    ensure!(min_freq >= 1, "--min-freq must be at least 1");
    let vocabs = TagVocabs::build(&train.sentences, min_freq);
    let enc_train = encode(&train.sentences, &vocabs, &a.train)?;
    let enc_dev = encode(&dev.sentences, &vocabs, &a.dev)?;
    let enc_test = match (&test, &a.test) {
        (Some(t), Some(p)) => Some(encode(&t.sentences, &vocabs, p)?),
        _ => None,
    };
    let (model_cfg, train_cfg) = match &saved {
        Some(c) => {
            let mut t = c.train;
            t.fit.epochs = a.epochs.unwrap_or(t.fit.epochs);
            (c.model, t)
        }
        None => settings(&a, &vocabs, read_cfg, file_scheme, train_scheme),
    };
    let model = Tagger::new(model_cfg, constraints(&vocabs.labels, train_scheme))?;
    train_cfg.fit.validate()?;
    let mut task = TagTask::new(
        &model,
        &enc_train,
        &enc_dev,
        &vocabs.labels,
        entities,
        train_cfg.batch,
    )?
    .with_unk_replace(train_cfg.unk_replace)?;
    let mut params = model.init_params(train_cfg.fit.seed)?;
    let config = TagRunConfig::new(model_cfg, train_cfg, NoData {});
    if training::is_root() {
        eprintln!(
            "{} tagger, {} parameters: {} words, {} characters, {} labels{}; {} train / {} dev sentences, {} thread(s)",
            if model_cfg.head == Head::Crf { "BiLSTM-CRF" } else { "BiLSTM-softmax" },
            model.num_params(),
            vocabs.words.len(),
            vocabs.chars.len(),
            vocabs.labels.len(),
            match (file_scheme, train_scheme) {
                (Some(f), Some(t)) => format!(" (files {f}, trained in {t})"),
                _ => String::new(),
            },
            enc_train.len(),
            enc_dev.len(),
            seqrnn::linalg::threads()
        );
    }
    let run = match resumed {
        Some(mut run) => {
            run.set_config(&config)?;
            run
        }
        None => {
            let run = new_run(&a.out, a.force, &config)?;
            if run.is_writer() {
                for (name, v) in [
                    ("words", &vocabs.words),
                    ("chars", &vocabs.chars),
                    ("labels", &vocabs.labels),
                ] {
                    v.save(&TagRunConfig::vocab_file(run.dir(), name))?;
                }
            }
            run
        }
    };
    let t0 = std::time::Instant::now();
    let shown = match entities {
        true => Shown::F1,
        false => Shown::Accuracy,
    };
    let outcome = training::fit(&mut task, &mut params, &train_cfg.fit, &run, shown)?;
    if !run.is_writer() {
        return Ok(());
    }
    let secs = t0.elapsed().as_secs_f64();
    let best = &outcome.best_params;
    let d = evaluate(&model, best, &enc_dev, &vocabs.labels)?;
    let t = match &enc_test {
        Some(e) => Some(evaluate(&model, best, e, &vocabs.labels)?),
        None => None,
    };
    let mut v = serde_json::json!({
        "dev_accuracy": d.accuracy,
        "test_accuracy": t.as_ref().map(|s| s.accuracy),
        "best_epoch": outcome.best_epoch,
        "epochs": outcome.epochs_run,
        "steps": outcome.steps,
        "seconds": secs,
        "run": a.out,
    });
    if entities {
        v["dev_f1"] = serde_json::json!(d.overall.f1);
        if let Some(s) = &t {
            v["test_f1"] = serde_json::json!(s.overall.f1);
            v["test_precision"] = serde_json::json!(s.overall.precision);
            v["test_recall"] = serde_json::json!(s.overall.recall);
            v["test_per_type"] = serde_json::to_value(&s.per_type)?;
        }
    }
    run.finish(&v)?;
    if a.json {
        println!("{v}");
    } else {
        let mut line = format!("dev accuracy {:.2}%", 100.0 * d.accuracy);
        if entities {
            let _ = write!(line, ", F1 {:.2}", 100.0 * d.overall.f1);
        }
        if let Some(s) = &t {
            let _ = write!(line, "; test accuracy {:.2}%", 100.0 * s.accuracy);
            if entities {
                let _ = write!(
                    line,
                    ", precision {:.2}, recall {:.2}, F1 {:.2}",
                    100.0 * s.overall.precision,
                    100.0 * s.overall.recall,
                    100.0 * s.overall.f1
                );
            }
        }
        println!(
            "{line}; best epoch {}, {} epochs, {secs:.0} s; run in {}",
            outcome.best_epoch,
            outcome.epochs_run,
            a.out.display()
        );
    }
    Ok(())
}

fn settings(
    a: &TrainArgs,
    v: &TagVocabs,
    read: ReadConfig,
    file_scheme: Option<Scheme>,
    train_scheme: Option<Scheme>,
) -> (TaggerConfig, TagTrainConfig) {
    let model = TaggerConfig {
        words: v.words.len(),
        chars: v.chars.len(),
        embed: a.embed,
        char_embed: a.char_embed,
        char_hidden: a.char_hidden,
        cell: CellKind::from(a.cell),
        hidden: a.hidden,
        layers: a.layers,
        dropout: a.dropout,
        tags: v.labels.len(),
        head: if a.crf { Head::Crf } else { Head::Softmax },
    };
    let train = TagTrainConfig {
        batch: a.batch,
        min_freq: a.min_freq,
        unk_replace: a.unk_replace,
        file_scheme,
        train_scheme,
        read,
        fit: FitConfig {
            lr: a.lr,
            lr_decay: a.lr_decay,
            decay_after: a.decay_after,
            clip: Some(a.clip),
            epochs: a.epochs.unwrap_or(30),
            early_stopping: EarlyStopping::Patience(a.patience),
            max_steps: a.max_steps,
            seed: a.seed,
            valid_every: (a.valid_every > 0).then_some(a.valid_every),
            ema: (a.ema != 0.0).then_some(a.ema),
            checkpoint_every: (a.checkpoint_every > 0).then_some(a.checkpoint_every),
            keep: KeepCheckpoints::default(),
            weight_decay: 0.0,
            asgd: None,
            optimizer: Optimizer::Adam(AdamConfig {
                weight_decay: a.weight_decay,
                ..AdamConfig::default()
            }),
        },
    };
    (model, train)
}

/// A trained run: configuration, vocabularies, model, weights.
struct Loaded {
    config: TagRunConfig,
    vocabs: TagVocabs,
    model: Tagger,
    params: Vec<f32>,
}

fn load_run(dir: &Path) -> Result<Loaded> {
    let run = RunDir::new(dir);
    let what = || format!("{} is not a usable tagging run", dir.display());
    let config = TagRunConfig::load(&run).with_context(what)?;
    let load = |name: &str| Vocab::load(&TagRunConfig::vocab_file(&run, name)).with_context(what);
    let vocabs = TagVocabs {
        words: load("words")?,
        chars: load("chars")?,
        labels: load("labels")?,
    };
    let model = Tagger::new(
        config.model,
        constraints(&vocabs.labels, config.train.train_scheme),
    )
    .with_context(what)?;
    ensure!(
        vocabs.words.len() == config.model.words
            && vocabs.chars.len() == config.model.chars
            && vocabs.labels.len() == config.model.tags,
        "{}: words.txt, chars.txt or labels.txt does not match config.json",
        dir.display()
    );
    let file = run.load_weights("tag train").with_context(what)?;
    let params = model
        .param_layout()
        .from_file(&file, &run.model_path(), "a tagger")
        .with_context(what)?;
    Ok(Loaded {
        config,
        vocabs,
        model,
        params,
    })
}

/// `seqrnn tag eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Run directory from `seqrnn tag train`.
    #[arg(long)]
    model: PathBuf,
    /// File to score (the run's format).
    #[arg(long)]
    test: PathBuf,
    /// Threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print one JSON object with the figures.
    #[arg(long)]
    json: bool,
}

fn eval_cmd(a: EvalArgs) -> Result<()> {
    crate::set_threads(a.threads)?;
    let m = load_run(&a.model)?;
    let mut f = read(&a.test, &m.config.train.read)?;
    if let (Some(from), Some(to)) = (m.config.train.file_scheme, m.config.train.train_scheme) {
        to_scheme(&mut f.sentences, from, to, &a.test)?;
    }
    let enc = encode(&f.sentences, &m.vocabs, &a.test)?;
    let (s, table) = evaluate_with_confusion(&m.model, &m.params, &enc, &m.vocabs.labels)?;
    let entities = m.config.train.train_scheme.is_some();
    if a.json {
        let mut v = serde_json::json!({
            "test_accuracy": s.accuracy,
            "tokens": s.tokens,
            "labels": m.vocabs.labels.tokens(),
            "confusion": table,
        });
        if entities {
            v["test_f1"] = serde_json::json!(s.overall.f1);
            v["test_precision"] = serde_json::json!(s.overall.precision);
            v["test_recall"] = serde_json::json!(s.overall.recall);
            v["test_per_type"] = serde_json::to_value(&s.per_type)?;
        }
        println!("{v}");
        return Ok(());
    }
    println!(
        "accuracy {:.2}% over {} tokens",
        100.0 * s.accuracy,
        s.tokens
    );
    print!("{}", confusion_text(&table, m.vocabs.labels.tokens()));
    if entities {
        println!(
            "entities: precision {:.2}, recall {:.2}, F1 {:.2} ({} gold, {} predicted)",
            100.0 * s.overall.precision,
            100.0 * s.overall.recall,
            100.0 * s.overall.f1,
            s.overall.support,
            s.overall.predicted
        );
        for (kind, p) in &s.per_type {
            println!(
                "  {kind:>8}: precision {:6.2}, recall {:6.2}, F1 {:6.2} ({} gold)",
                100.0 * p.precision,
                100.0 * p.recall,
                100.0 * p.f1,
                p.support
            );
        }
    }
    Ok(())
}

/// The confusion table as text: rows the gold label, columns the predicted one.
fn confusion_text(table: &[Vec<usize>], names: &[String]) -> String {
    let w = names.iter().map(String::len).max().unwrap_or(1).max(6);
    let mut s = format!("confusion (rows: gold, columns: predicted)\n{:>w$}", "");
    for n in names {
        let _ = write!(s, " {n:>w$}");
    }
    s.push('\n');
    for (n, row) in names.iter().zip(table) {
        let _ = write!(s, "{n:>w$}");
        for v in row {
            let _ = write!(s, " {v:>w$}");
        }
        s.push('\n');
    }
    s
}

/// `seqrnn tag predict`.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Run directory from `seqrnn tag train`.
    #[arg(long)]
    model: PathBuf,
    /// File to tag (the run's format; its own labels, if any, are kept).
    #[arg(long)]
    input: PathBuf,
    /// Where to write the tagged file.
    #[arg(long)]
    out: PathBuf,
    /// Threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

fn predict_cmd(a: PredictArgs) -> Result<()> {
    crate::set_threads(a.threads)?;
    let m = load_run(&a.model)?;
    let f = read(&a.input, &m.config.train.read)?;
    // Labels are not needed to tag: encode with the first label everywhere.
    let mut sentences = f.sentences.clone();
    let first = m.vocabs.labels.tokens()[0].clone();
    for s in &mut sentences {
        s.labels = vec![first.clone(); s.words.len()];
    }
    let enc = encode(&sentences, &m.vocabs, &a.input)?;
    let pred = predict(&m.model, &m.params, &enc)?;
    let mut lines = f.lines.clone();
    let tsv = m.config.train.read.format == Format::Conllu;
    for (s, ids) in f.sentences.iter().zip(&pred) {
        let mut tags: Vec<String> = ids
            .iter()
            .map(|&i| m.vocabs.labels.tokens()[i as usize].clone())
            .collect();
        if let (Some(file), Some(_)) = (m.config.train.file_scheme, m.config.train.train_scheme) {
            tags = convert(&tags, file);
        }
        for (&line, tag) in s.lines.iter().zip(tags) {
            let l = &mut lines[line - 1];
            l.push(if tsv { '\t' } else { ' ' });
            l.push_str(&tag);
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    seqrnn::io::write_atomic(&a.out, text.as_bytes())
        .with_context(|| format!("could not write {}", a.out.display()))?;
    Ok(())
}

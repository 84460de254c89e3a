//! `seqrnn tag train | eval | predict`: a label for every token (BiLSTM, optionally with a CRF).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use seqrnn::run::NoData;
use seqrnn::tag::conll::{read_tagged, Columns, Format, ReadConfig, TaggedFile, UdLabel};
use seqrnn::tag::entities::EntityScores;
use seqrnn::tag::model::{Head, Tagger, TaggerConfig};
use seqrnn::tag::tags::{detect, Scheme};
use seqrnn::tag::{
    constraints, encode, evaluate, is_entity_tagging, to_scheme, EncodedTags, Ensemble,
    TagRunConfig, TagTask, TagTrainConfig, TagVocabs, Trained,
};
use seqrnn::train::FitOutcome;

use crate::flags::{
    default, epochs, EncoderFlags, EncodingFlag, LoopFlags, RunFlags, VariationalFlag,
};
use crate::progress::Shown;
use crate::training;

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
    #[command(flatten)]
    encoding: EncodingFlag,
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
            encoding: self.encoding.get(),
        })
    }
}

/// `seqrnn tag train`'s epochs when --epochs is not given.
const EPOCHS: usize = 30;

/// `seqrnn tag train`.
#[derive(Args, Debug)]
#[command(
    mut_arg("epochs", epochs(EPOCHS)),
    mut_arg("patience", default("4")),
    mut_arg("batch", default("16")),
    mut_arg("ema", default("0.999")),
    mut_arg("hidden", default("200"))
)]
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
    #[command(flatten)]
    run: RunFlags,
    #[command(flatten)]
    encoder: EncoderFlags,
    /// Word embedding width.
    #[arg(long, default_value_t = 100)]
    embed: usize,
    /// Character embedding width.
    #[arg(long, default_value_t = 50)]
    char_embed: usize,
    /// Character BiLSTM units per direction (0: no character features).
    #[arg(long, default_value_t = 50)]
    char_hidden: usize,
    /// Dropout on the encoder's input and output.
    #[arg(long, default_value_t = 0.5)]
    dropout: f32,
    #[command(flatten)]
    variational: VariationalFlag,
    /// Lowercased words seen fewer times become <unk>.
    #[arg(long, default_value_t = 1)]
    min_freq: usize,
    /// Replace each training word seen once by <unk> with this probability at every step
    /// (Lample et al.'s singleton replacement).
    #[arg(long, default_value_t = 0.5)]
    unk_replace: f32,
    #[command(flatten)]
    fit: LoopFlags,
}

/// The library's errors name the file (and line): no context is added.
fn read(path: &Path, cfg: &ReadConfig) -> Result<TaggedFile> {
    Ok(read_tagged(path, cfg)?)
}

fn labels_of(f: &TaggedFile) -> Vec<Vec<String>> {
    f.sentences.iter().map(|s| s.labels.clone()).collect()
}

/// The files of `tag train`, read in the run's way, in the training scheme and encoded.
struct TagData {
    /// Entity tags (else parts of speech).
    entities: bool,
    read: ReadConfig,
    file_scheme: Option<Scheme>,
    train_scheme: Option<Scheme>,
    vocabs: TagVocabs,
    train: EncodedTags,
    dev: EncodedTags,
    test: Option<EncodedTags>,
}

/// Reads, converts and encodes the files: with the settings of `saved` for a resumed run, else
/// with the flags.
fn load_data(a: &TrainArgs, saved: Option<&TagTrainConfig>) -> Result<TagData> {
    let read_cfg = match saved {
        Some(t) => ReadConfig {
            encoding: a.read.encoding.or_run(t.read.encoding),
            ..t.read
        },
        None => a.read.config()?,
    };
    let mut files = vec![read(&a.train, &read_cfg)?, read(&a.dev, &read_cfg)?];
    let mut paths = vec![&a.train, &a.dev];
    if let Some(p) = &a.test {
        files.push(read(p, &read_cfg)?);
        paths.push(p);
    }
    let entities = is_entity_tagging(&labels_of(&files[0]));
    let (file_scheme, train_scheme) = match (saved, entities) {
        (Some(t), _) => (t.file_scheme, t.train_scheme),
        (None, true) => (
            Some(
                a.scheme
                    .map_or_else(|| detect(&labels_of(&files[0])), Scheme::from),
            ),
            Some(Scheme::from(a.train_scheme)),
        ),
        (None, false) => (None, None),
    };
    if let (Some(from), Some(to)) = (file_scheme, train_scheme) {
        for (f, p) in files.iter_mut().zip(&paths) {
            to_scheme(&mut f.sentences, from, to, p)?;
        }
    }
    let min_freq = saved.map_or(a.min_freq, |t| t.min_freq);
    ensure!(min_freq >= 1, "--min-freq must be at least 1");
    let vocabs = TagVocabs::build(&files[0].sentences, min_freq);
    let mut encoded = files
        .iter()
        .zip(&paths)
        .map(|(f, p)| encode(&f.sentences, &vocabs, p))
        .collect::<seqrnn::error::Result<Vec<_>>>()?
        .into_iter();
    let (train, dev) = (encoded.next(), encoded.next());
    Ok(TagData {
        entities,
        read: read_cfg,
        file_scheme,
        train_scheme,
        train: train.unwrap_or_default(),
        dev: dev.unwrap_or_default(),
        test: encoded.next(),
        vocabs,
    })
}

fn train_cmd(a: TrainArgs) -> Result<()> {
    crate::set_threads(a.run.threads)?;
    let resumed = training::resumed::<_, _, _>(&a.run)?;
    let saved: Option<&TagRunConfig> = resumed.as_ref().map(|(_, c)| c);
    let d = load_data(&a, saved.map(|c| &c.train))?;
    let (model_cfg, train_cfg) = match saved {
        Some(c) => {
            let fit = a.fit.resumed(&a.run, c.train.fit);
            (c.model, TagTrainConfig { fit, ..c.train })
        }
        None => settings(&a, &d),
    };
    let model = Tagger::new(model_cfg, constraints(&d.vocabs.labels, d.train_scheme))?;
    train_cfg.fit.validate()?;
    let labels = &d.vocabs.labels;
    let mut task = TagTask::new(
        &model,
        &d.train,
        &d.dev,
        labels,
        d.entities,
        train_cfg.batch,
    )?
    .with_unk_replace(train_cfg.unk_replace)?;
    let mut params = model.init_params(train_cfg.fit.seed)?;
    let config = TagRunConfig::new(model_cfg, train_cfg, NoData {});
    if training::is_root() {
        print_start(&model, &d);
    }
    let run = training::open_run(resumed.map(|(r, _)| r), &a.run, &config, |run| {
        let v = &d.vocabs;
        for (name, v) in [("words", &v.words), ("chars", &v.chars), ("labels", labels)] {
            v.save(&TagRunConfig::vocab_file(run.dir(), name))?;
        }
        Ok(())
    })?;
    let t0 = std::time::Instant::now();
    let shown = match d.entities {
        true => Shown::F1,
        false => Shown::Accuracy,
    };
    let outcome = training::fit(&mut task, &mut params, &train_cfg.fit, &run, shown)?;
    if !run.is_writer() {
        return Ok(());
    }
    let secs = t0.elapsed().as_secs_f64();
    let best = &outcome.best_params;
    let dev = evaluate(&model, best, &d.dev, labels)?;
    let test = match &d.test {
        Some(e) => Some(evaluate(&model, best, e, labels)?),
        None => None,
    };
    let v = result_json(&a, &d, &outcome, (&dev, test.as_ref()), secs)?;
    training::finish(&run, &v, a.run.json, || {
        let line = result_line(d.entities, &dev, test.as_ref());
        format!(
            "{line}; best epoch {}, {} epochs, {secs:.0} s; run in {}",
            outcome.best_epoch,
            outcome.epochs_run,
            a.run.out.display()
        )
    })
}

/// The line on standard error that says what is trained on what.
fn print_start(model: &Tagger, d: &TagData) {
    eprintln!(
        "{} tagger, {} parameters: {} words, {} characters, {} labels{}; {} train / {} dev sentences, {} thread(s)",
        match model.config().head {
            Head::Crf => "BiLSTM-CRF",
            Head::Softmax => "BiLSTM-softmax",
        },
        model.num_params(),
        d.vocabs.words.len(),
        d.vocabs.chars.len(),
        d.vocabs.labels.len(),
        match (d.file_scheme, d.train_scheme) {
            (Some(f), Some(t)) => format!(" (files {f}, trained in {t})"),
            _ => String::new(),
        },
        d.train.len(),
        d.dev.len(),
        seqrnn::linalg::threads()
    );
}

/// The run's final figures (its `summary.json`, and what `--json` prints) from the dev scores
/// and the test scores when there is a test file.
fn result_json(
    a: &TrainArgs,
    d: &TagData,
    outcome: &FitOutcome,
    (dev, test): (&EntityScores, Option<&EntityScores>),
    secs: f64,
) -> Result<serde_json::Value> {
    let mut v = serde_json::json!({
        "dev_accuracy": dev.accuracy,
        "test_accuracy": test.map(|s| s.accuracy),
        "best_epoch": outcome.best_epoch,
        "epochs": outcome.epochs_run,
        "steps": outcome.steps,
        "seconds": secs,
        "run": a.run.out,
    });
    if d.entities {
        v["dev_f1"] = serde_json::json!(dev.overall.f1);
        if let Some(s) = test {
            v["test_f1"] = serde_json::json!(s.overall.f1);
            v["test_precision"] = serde_json::json!(s.overall.precision);
            v["test_recall"] = serde_json::json!(s.overall.recall);
            v["test_per_type"] = serde_json::to_value(&s.per_type)?;
        }
    }
    Ok(v)
}

/// The dev and test figures of the summary line.
fn result_line(entities: bool, d: &EntityScores, t: Option<&EntityScores>) -> String {
    let mut line = format!("dev accuracy {:.2}%", 100.0 * d.accuracy);
    if entities {
        let _ = write!(line, ", F1 {:.2}", 100.0 * d.overall.f1);
    }
    if let Some(s) = t {
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
    line
}

/// The model and training settings of a fresh run, from the flags.
fn settings(a: &TrainArgs, d: &TagData) -> (TaggerConfig, TagTrainConfig) {
    let v = &d.vocabs;
    let model = TaggerConfig {
        words: v.words.len(),
        chars: v.chars.len(),
        embed: a.embed,
        char_embed: a.char_embed,
        char_hidden: a.char_hidden,
        cell: a.encoder.cell(),
        hidden: a.encoder.hidden,
        layers: a.encoder.layers,
        dropout: a.dropout,
        dropout_kind: a.variational.kind(),
        tags: v.labels.len(),
        head: if a.crf { Head::Crf } else { Head::Softmax },
    };
    let train = TagTrainConfig {
        batch: a.fit.batch,
        min_freq: a.min_freq,
        unk_replace: a.unk_replace,
        file_scheme: d.file_scheme,
        train_scheme: d.train_scheme,
        read: d.read,
        fit: a.fit.fit_config(&a.run, EPOCHS),
    };
    (model, train)
}

/// The trained taggers of `dirs` as one (one run: that tagger), reading files in `encoding`
/// (else as the first run did).
fn load_runs(dirs: &[PathBuf], encoding: EncodingFlag) -> Result<Ensemble> {
    let mut members = Vec::with_capacity(dirs.len());
    for dir in dirs {
        members.push(
            Trained::load(dir)
                .with_context(|| format!("{} is not a usable tagging run", dir.display()))?,
        );
    }
    let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let mut m = Ensemble::named(members, &names)?;
    m.set_encoding(encoding.or_run(m.lead().config.train.read.encoding));
    Ok(m)
}

/// `seqrnn tag eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Run directory from `seqrnn tag train`; repeated, the runs tag as one (their scores
    /// averaged).
    #[arg(long, required = true)]
    model: Vec<PathBuf>,
    /// File to score (the run's format).
    #[arg(long)]
    test: PathBuf,
    #[command(flatten)]
    encoding: EncodingFlag,
    /// Threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print one JSON object with the figures.
    #[arg(long)]
    json: bool,
}

fn eval_cmd(a: EvalArgs) -> Result<()> {
    crate::set_threads(a.threads)?;
    let m = load_runs(&a.model, a.encoding)?;
    let (s, table) = m.evaluate_file(&a.test)?;
    let entities = m.lead().entities();
    if a.json {
        let mut v = serde_json::json!({
            "test_accuracy": s.accuracy,
            "tokens": s.tokens,
            "labels": m.lead().labels(),
            "models": m.members().len(),
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
    print!("{}", confusion_text(&table, m.lead().labels()));
    if entities {
        print_entities(&s);
    }
    Ok(())
}

/// Entity precision, recall and F1, overall and per type.
fn print_entities(s: &EntityScores) {
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
    /// Run directory from `seqrnn tag train`; repeated, the runs tag as one (their scores
    /// averaged).
    #[arg(long, required = true)]
    model: Vec<PathBuf>,
    /// File to tag (the run's format; its own labels, if any, are kept).
    #[arg(long)]
    input: PathBuf,
    #[command(flatten)]
    encoding: EncodingFlag,
    /// Where to write the tagged file (UTF-8).
    #[arg(long)]
    out: PathBuf,
    /// Threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

fn predict_cmd(a: PredictArgs) -> Result<()> {
    crate::set_threads(a.threads)?;
    let m = load_runs(&a.model, a.encoding)?;
    let text = m.tag_file(&a.input)?;
    seqrnn::io::write_atomic(&a.out, text.as_bytes())
        .with_context(|| format!("could not write {}", a.out.display()))?;
    Ok(())
}

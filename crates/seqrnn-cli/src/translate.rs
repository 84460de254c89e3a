//! `seqrnn translate train | eval | run`: encoder–decoder translation with attention.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use seqrnn::data::subword::{Subword, SubwordConfig, SubwordVocab};
use seqrnn::data::Encoding;
use seqrnn::lm::model::OutputWeights;
use seqrnn::model::attention::Score;
use seqrnn::run::{Run, RunDir};
use seqrnn::train::FitOutcome;
use seqrnn::translate::data::{read_split, ParallelText};
use seqrnn::translate::model::{Seq2Seq, Seq2SeqConfig};
use seqrnn::translate::{
    encode_pairs, evaluate, load_vocabs, DecodeConfig, Decoder, EncodedPairs, Trained,
    TranslateMetrics, TranslateRunConfig, TranslateRunData, TranslateTask, TranslateTrainConfig,
};

use crate::flags::{default, epochs, help, EncoderFlags, EncodingFlag, LoopFlags, RunFlags};
use crate::progress::Shown;
use crate::training;

#[derive(Subcommand, Debug)]
pub enum TranslateCommand {
    /// Train an encoder–decoder on DIR/train.SRC and DIR/train.TGT, selecting on the
    /// validation split's perplexity; report BLEU on the validation and test splits.
    Train(Box<TrainArgs>),
    /// BLEU (cased and lowercased), chrF and perplexity of a trained model on a split.
    Eval(EvalArgs),
    /// Translate lines (a file or standard input): one translation a line on standard output.
    Run(RunArgs),
}

pub fn run(cmd: TranslateCommand) -> Result<()> {
    match cmd {
        TranslateCommand::Train(a) => train_cmd(*a),
        TranslateCommand::Eval(a) => eval_cmd(a),
        TranslateCommand::Run(a) => run_cmd(a),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScoreArg {
    /// Luong dot product (needs --dec-hidden = 2 × --hidden).
    Dot,
    /// Luong general (bilinear).
    General,
    /// Bahdanau additive.
    Additive,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TokenizerArg {
    /// Byte-pair encoding.
    Bpe,
    /// Unigram language model.
    Unigram,
    /// Whole words (with --min-freq).
    Word,
}

/// How `eval` and `run` decode (defaults: the run's own settings).
#[derive(Args, Debug, Clone, Copy)]
pub struct DecodeArgs {
    /// Beam size (1: greedy) [default: the run's, 5 unless set at training].
    #[arg(long)]
    beam: Option<usize>,
    /// GNMT length penalty exponent α [default: the run's, 0.6].
    #[arg(long)]
    alpha: Option<f32>,
}

impl DecodeArgs {
    fn apply(&self, mut d: DecodeConfig) -> DecodeConfig {
        d.beam = self.beam.unwrap_or(d.beam);
        d.alpha = self.alpha.unwrap_or(d.alpha);
        d
    }
}

/// The language pair: `--src` and `--tgt` (a command may restate their help), and the files'
/// encoding.
#[derive(Args, Debug)]
struct Langs {
    /// Source language suffix (`de` reads train.de).
    #[arg(long)]
    src: String,
    /// Target language suffix.
    #[arg(long)]
    tgt: String,
    #[command(flatten)]
    encoding: EncodingFlag,
}

impl Langs {
    /// Fails unless the run in `dir`, with data settings `data`, translates this pair.
    fn check_run(&self, dir: &Path, data: &TranslateRunData) -> Result<()> {
        ensure!(
            data.src == self.src && data.tgt == self.tgt,
            "the run in {} translates {} → {}, not {} → {}",
            dir.display(),
            data.src,
            data.tgt,
            self.src,
            self.tgt
        );
        Ok(())
    }
}

/// `seqrnn translate train`'s epochs when --epochs is not given.
const EPOCHS: usize = 12;

/// `seqrnn translate train`.
#[derive(Args, Debug)]
#[command(
    mut_arg("epochs", epochs(EPOCHS)),
    mut_arg("batch", default("64")),
    mut_arg("lr_decay", default("0.5")),
    mut_arg("decay_after", default("4")),
    mut_arg("hidden", default("256"))
)]
pub struct TrainArgs {
    /// Folder with PREFIX.SRC and PREFIX.TGT for the train, validation and test splits.
    #[arg(long)]
    data: PathBuf,
    #[command(flatten)]
    langs: Langs,
    /// File prefix of the training split.
    #[arg(long, default_value = "train")]
    train: String,
    /// File prefix of the validation split.
    #[arg(long, default_value = "val")]
    valid: String,
    /// File prefix of the test split (scored at the end when its files exist).
    #[arg(long, default_value = "test_2016_flickr")]
    test: String,
    #[command(flatten)]
    run: RunFlags,
    #[command(flatten)]
    encoder: EncoderFlags,
    /// Embedding width (both languages).
    #[arg(long, default_value_t = 256)]
    embed: usize,
    /// Decoder units.
    #[arg(long, default_value_t = 512)]
    dec_hidden: usize,
    /// Decoder layers.
    #[arg(long, default_value_t = 1)]
    dec_layers: usize,
    /// Attention score.
    #[arg(long, value_enum, default_value = "general")]
    attention: ScoreArg,
    /// Hidden size of the additive score.
    #[arg(long, default_value_t = 256)]
    attn_hidden: usize,
    /// Dropout on embeddings, between decoder layers and on the attentional state.
    #[arg(long, default_value_t = 0.4)]
    dropout: f32,
    /// Tie the output layer to the target embedding (needs --embed = --dec-hidden).
    #[arg(long)]
    tie: bool,
    /// Vocabulary model (learned from the training split, one per language).
    #[arg(long, value_enum, default_value = "bpe")]
    tokenizer: TokenizerArg,
    /// Vocabulary size per language, special tokens included (at most, for words).
    #[arg(long, default_value_t = 8000)]
    vocab_size: usize,
    /// Words seen fewer times become <unk> (--tokenizer word); pairs seen fewer times are not
    /// merged (bpe).
    #[arg(long, default_value_t = 1)]
    min_freq: u64,
    /// Longest source in pieces: longer training pairs are left out, and `eval`/`run` refuse
    /// longer sentences.
    #[arg(long, default_value_t = 100)]
    max_src_len: usize,
    #[command(flatten)]
    fit: LoopFlags,
    /// How `eval` and `run` decode by default: beam size.
    #[arg(long, default_value_t = 5)]
    beam: usize,
    /// How `eval` and `run` decode by default: GNMT length penalty α.
    #[arg(long, default_value_t = 0.6)]
    alpha: f32,
}

/// Refuses a language suffix that is not a plain name.
fn check_lang(lang: &str, flag: &str) -> Result<()> {
    ensure!(
        !lang.is_empty()
            && lang
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
        "{flag} `{lang}` is not a language suffix (letters, digits, `-` or `_`, e.g. de)"
    );
    Ok(())
}

/// The split `prefix` of `dir` in `langs`, its files in `encoding`.
fn read(
    (dir, prefix): (&Path, &str),
    langs: &Langs,
    encoding: Encoding,
    what: &str,
) -> Result<ParallelText> {
    read_split(dir, prefix, &langs.src, &langs.tgt, encoding)
        .with_context(|| format!("could not read the {what} split"))
}

fn src_file(dir: &Path, prefix: &str, src: &str) -> PathBuf {
    dir.join(format!("{prefix}.{src}"))
}

/// Everything `train` reads: the splits, the vocabularies and the encoded pairs.
struct TranslateData {
    src_vocab: SubwordVocab,
    tgt_vocab: SubwordVocab,
    train: EncodedPairs,
    dropped: usize,
    valid_text: ParallelText,
    valid: EncodedPairs,
    test: Option<(ParallelText, EncodedPairs)>,
}

fn load_data(
    a: &TrainArgs,
    subword: &SubwordConfig,
    max_src_len: usize,
    resumed: Option<&RunDir>,
    encoding: Encoding,
) -> Result<TranslateData> {
    let train_text = read((&a.data, &a.train), &a.langs, encoding, "training")?;
    let valid_text = read((&a.data, &a.valid), &a.langs, encoding, "validation")?;
    let test_text = match src_file(&a.data, &a.test, &a.langs.src).is_file() {
        true => Some(read((&a.data, &a.test), &a.langs, encoding, "test")?),
        false => None,
    };
    let (src_vocab, tgt_vocab) = match resumed {
        Some(run) => {
            let c = TranslateRunConfig::load(run)?;
            load_vocabs(run, &c.model)?
        }
        None => (
            SubwordVocab::learn(subword, &train_text.src)
                .context("could not learn the source vocabulary")?,
            SubwordVocab::learn(subword, &train_text.tgt)
                .context("could not learn the target vocabulary")?,
        ),
    };
    let train_all = encode_pairs(
        &train_text,
        &src_vocab,
        &tgt_vocab,
        None,
        &src_file(&a.data, &a.train, &a.langs.src),
    )?;
    let mut train = EncodedPairs::default();
    let mut dropped = 0;
    for (s, t) in train_all.src.into_iter().zip(train_all.tgt) {
        if s.len() > max_src_len {
            dropped += 1;
            continue;
        }
        train.src.push(s);
        train.tgt.push(t);
    }
    ensure!(
        !train.is_empty(),
        "every training source is longer than --max-src-len {max_src_len}"
    );
    let limit = Seq2Seq::new(Seq2SeqConfig {
        max_src_len,
        src_vocab: src_vocab.len(),
        tgt_vocab: tgt_vocab.len(),
        ..Seq2SeqConfig::default()
    })?;
    let enc = |t: &ParallelText, prefix: &str| {
        encode_pairs(
            t,
            &src_vocab,
            &tgt_vocab,
            Some(&limit),
            &src_file(&a.data, prefix, &a.langs.src),
        )
    };
    let valid = enc(&valid_text, &a.valid)?;
    let test = match test_text {
        Some(t) => {
            let e = enc(&t, &a.test)?;
            Some((t, e))
        }
        None => None,
    };
    Ok(TranslateData {
        src_vocab,
        tgt_vocab,
        train,
        dropped,
        valid_text,
        valid,
        test,
    })
}

fn settings_from_flags(
    a: &TrainArgs,
    src_vocab: usize,
    tgt_vocab: usize,
) -> (Seq2SeqConfig, TranslateTrainConfig) {
    let model = Seq2SeqConfig {
        src_vocab,
        tgt_vocab,
        embed: a.embed,
        cell: a.encoder.cell(),
        enc_hidden: a.encoder.hidden,
        enc_layers: a.encoder.layers,
        dec_hidden: a.dec_hidden,
        dec_layers: a.dec_layers,
        score: match a.attention {
            ScoreArg::Dot => Score::Dot,
            ScoreArg::General => Score::General,
            ScoreArg::Additive => Score::Additive,
        },
        attn_hidden: a.attn_hidden,
        dropout: a.dropout,
        output: if a.tie {
            OutputWeights::Tied
        } else {
            OutputWeights::Separate
        },
        max_src_len: a.max_src_len,
    };
    let train = TranslateTrainConfig {
        batch: a.fit.batch,
        subword: subword_from_flags(a),
        decode: DecodeConfig {
            beam: a.beam,
            alpha: a.alpha,
            ..DecodeConfig::default()
        },
        fit: a.fit.fit_config(&a.run, EPOCHS),
    };
    (model, train)
}

fn subword_from_flags(a: &TrainArgs) -> SubwordConfig {
    SubwordConfig {
        kind: match a.tokenizer {
            TokenizerArg::Bpe => Subword::Bpe,
            TokenizerArg::Unigram => Subword::Unigram,
            TokenizerArg::Word => Subword::Word,
        },
        vocab_size: a.vocab_size,
        min_freq: a.min_freq,
    }
}

fn train_cmd(a: TrainArgs) -> Result<()> {
    check_lang(&a.langs.src, "--src")?;
    check_lang(&a.langs.tgt, "--tgt")?;
    ensure!(
        a.langs.src != a.langs.tgt,
        "--src and --tgt are both `{}`",
        a.langs.src
    );
    crate::set_threads(a.run.threads)?;
    let resumed = training::resumed::<_, _, _>(&a.run)?;
    let saved: Option<&TranslateRunConfig> = resumed.as_ref().map(|(_, c)| c);
    if let Some(c) = saved {
        a.langs.check_run(&a.run.out, &c.data)?;
    }
    let subword = saved.map_or_else(|| subword_from_flags(&a), |c| c.train.subword);
    let max_src_len = saved.map_or(a.max_src_len, |c| c.model.max_src_len);
    let resumed_dir = resumed.as_ref().map(|(r, _)| r.dir());
    let enc = &a.langs.encoding;
    let encoding = saved.map_or(enc.get(), |c| enc.or_run(c.data.encoding));
    let d = load_data(&a, &subword, max_src_len, resumed_dir, encoding)?;
    let (model_cfg, train_cfg) = match saved {
        Some(c) => {
            let fit = a.fit.resumed(&a.run, c.train.fit);
            (c.model, TranslateTrainConfig { fit, ..c.train })
        }
        None => settings_from_flags(&a, d.src_vocab.len(), d.tgt_vocab.len()),
    };
    let model = Seq2Seq::new(model_cfg)?;
    train_cfg.fit.validate()?;
    train_cfg.decode.validate()?;
    let mut task = TranslateTask::new(&model, &d.train, &d.valid, train_cfg.batch)?;
    let mut params = model.init_params(train_cfg.fit.seed)?;
    let langs = TranslateRunData {
        src: a.langs.src.clone(),
        tgt: a.langs.tgt.clone(),
        encoding,
    };
    let config = TranslateRunConfig::new(model_cfg, train_cfg, langs);
    if training::is_root() {
        print_start(&model, &d);
    }
    let run = training::open_run(resumed.map(|(r, _)| r), &a.run, &config, |run| {
        d.src_vocab
            .save(&TranslateRunConfig::src_vocab_path(run.dir()))?;
        Ok(d.tgt_vocab
            .save(&TranslateRunConfig::tgt_vocab_path(run.dir()))?)
    })?;
    let t0 = std::time::Instant::now();
    let fit = &train_cfg.fit;
    let outcome = training::fit(&mut task, &mut params, fit, &run, Shown::Perplexity)?;
    if !run.is_writer() {
        return Ok(());
    }
    let train_secs = t0.elapsed().as_secs_f64();
    report(&a, &run, &model, &d, &outcome, train_cfg.decode, train_secs)
}

/// Scores the best weights on the validation and test splits, writes `summary.json`, and
/// prints the figures.
fn report(
    a: &TrainArgs,
    run: &Run,
    model: &Seq2Seq,
    d: &TranslateData,
    outcome: &FitOutcome,
    decode: DecodeConfig,
    train_secs: f64,
) -> Result<()> {
    let t1 = std::time::Instant::now();
    let score = |(text, data): (&ParallelText, &EncodedPairs)| {
        let best = &outcome.best_params;
        evaluate(model, best, data, &text.tgt, &d.tgt_vocab, decode)
    };
    let valid = score((&d.valid_text, &d.valid))?;
    let test = d.test.as_ref().map(|(t, e)| score((t, e))).transpose()?;
    let eval_secs = t1.elapsed().as_secs_f64();
    let v = serde_json::json!({
        "valid_bleu": valid.bleu,
        "valid_bleu_lc": valid.bleu_lc,
        "valid_perplexity": valid.perplexity,
        "test_bleu": test.as_ref().map(|m| m.bleu),
        "test_bleu_lc": test.as_ref().map(|m| m.bleu_lc),
        "test_chrf": test.as_ref().map(|m| m.chrf),
        "test_perplexity": test.as_ref().map(|m| m.perplexity),
        "beam": decode.beam,
        "best_epoch": outcome.best_epoch,
        "epochs": outcome.epochs_run,
        "steps": outcome.steps,
        "train_seconds": train_secs,
        "eval_seconds": eval_secs,
        "run": a.run.out,
    });
    training::finish(run, &v, a.run.json, || {
        format!(
            "valid BLEU {:.2} (lowercased {:.2}), perplexity {:.2}{}; best epoch {}, {} epochs, {train_secs:.0} s; beam {}; run in {}",
            valid.bleu,
            valid.bleu_lc,
            valid.perplexity,
            test.as_ref()
                .map(|m| format!(
                    "; test BLEU {:.2} (lowercased {:.2}), chrF {:.2}, perplexity {:.2}",
                    m.bleu, m.bleu_lc, m.chrf, m.perplexity
                ))
                .unwrap_or_default(),
            outcome.best_epoch,
            outcome.epochs_run,
            decode.beam,
            a.run.out.display()
        )
    })
}

fn print_start(model: &Seq2Seq, d: &TranslateData) {
    let c = model.config();
    let tokens: usize = d.train.src.iter().map(Vec::len).sum::<usize>() + d.train.target_tokens();
    eprintln!(
        "{} encoder {}×{} bidirectional, decoder {}×{}, {:?} attention: {} parameters; vocabularies {} / {} pieces; {} train pairs ({} source + target pieces{}) / {} valid pairs, {} thread(s)",
        c.cell.name().to_uppercase(),
        c.enc_layers,
        c.enc_hidden,
        c.dec_layers,
        c.dec_hidden,
        c.score,
        model.num_params(),
        d.src_vocab.len(),
        d.tgt_vocab.len(),
        d.train.len(),
        tokens,
        if d.dropped > 0 {
            format!(", {} longer than --max-src-len left out", d.dropped)
        } else {
            String::new()
        },
        d.valid.len(),
        seqrnn::linalg::threads()
    );
}

fn load_run(dir: &Path) -> Result<Trained> {
    Trained::load(dir).with_context(|| format!("{} is not a usable translation run", dir.display()))
}

/// `seqrnn translate eval`.
#[derive(Args, Debug)]
#[command(
    mut_arg("src", help("Source language suffix (must be the run's)")),
    mut_arg("tgt", help("Target language suffix (must be the run's)"))
)]
pub struct EvalArgs {
    /// Run directory from `seqrnn translate train`.
    #[arg(long)]
    model: PathBuf,
    /// Folder with PREFIX.SRC and PREFIX.TGT.
    #[arg(long)]
    data: PathBuf,
    #[command(flatten)]
    langs: Langs,
    /// File prefix of the split to score.
    #[arg(long, default_value = "test_2016_flickr")]
    test: String,
    #[command(flatten)]
    decode: DecodeArgs,
    /// Threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Write the translations to this file, one a line.
    #[arg(long)]
    hyp_out: Option<PathBuf>,
    /// Print one JSON object with the figures.
    #[arg(long)]
    json: bool,
}

fn eval_cmd(a: EvalArgs) -> Result<()> {
    crate::set_threads(a.threads)?;
    let m = load_run(&a.model)?;
    a.langs.check_run(&a.model, &m.config.data)?;
    let encoding = a.langs.encoding.or_run(m.config.data.encoding);
    let text = read((&a.data, &a.test), &a.langs, encoding, "test")?;
    let data = encode_pairs(
        &text,
        &m.src_vocab,
        &m.tgt_vocab,
        Some(&m.model),
        &src_file(&a.data, &a.test, &a.langs.src),
    )?;
    let decode = a.decode.apply(m.config.train.decode);
    let t0 = std::time::Instant::now();
    let r: TranslateMetrics =
        evaluate(&m.model, &m.params, &data, &text.tgt, &m.tgt_vocab, decode)?;
    let secs = t0.elapsed().as_secs_f64();
    if let Some(path) = &a.hyp_out {
        let mut s = r.hypotheses.join("\n");
        s.push('\n');
        seqrnn::io::write_atomic(path, s.as_bytes())?;
    }
    if a.json {
        let v = serde_json::json!({
            "split": a.test,
            "sentences": r.sentences,
            "test_bleu": r.bleu,
            "test_bleu_lc": r.bleu_lc,
            "test_chrf": r.chrf,
            "test_perplexity": r.perplexity,
            "bleu_counts": r.bleu_detail.counts,
            "bleu_totals": r.bleu_detail.totals,
            "brevity_penalty": r.bleu_detail.bp,
            "hyp_len": r.bleu_detail.sys_len,
            "ref_len": r.bleu_detail.ref_len,
            "beam": decode.beam,
            "alpha": decode.alpha,
            "seconds": secs,
            "sentences_per_s": r.sentences as f64 / secs,
        });
        println!("{v}");
    } else {
        println!(
            "{}: BLEU {:.2} (lowercased {:.2}), chrF {:.2}, perplexity {:.2}; {} sentences, beam {}, {:.1} s ({:.1} sentences/s)",
            a.test,
            r.bleu,
            r.bleu_lc,
            r.chrf,
            r.perplexity,
            r.sentences,
            decode.beam,
            secs,
            r.sentences as f64 / secs
        );
    }
    Ok(())
}

/// `seqrnn translate run`.
#[derive(Args, Debug)]
#[command(mut_arg("encoding", help(INPUT_ENCODING)))]
pub struct RunArgs {
    /// Run directory from `seqrnn translate train`.
    #[arg(long)]
    model: PathBuf,
    /// Source sentences, one a line (default: standard input).
    #[arg(long)]
    input: Option<PathBuf>,
    #[command(flatten)]
    encoding: EncodingFlag,
    #[command(flatten)]
    decode: DecodeArgs,
    /// Threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Draw each sentence's attention (source across, translation down) as
    /// DIR/NNNN.png.
    #[arg(long)]
    attention_out: Option<PathBuf>,
}

/// The help of `translate run --encoding`.
const INPUT_ENCODING: &str = "Encoding of --input, by its WHATWG label (latin1, windows-1252, utf-16le, ...) [default: the run's], or of standard input [default: utf-8]";

/// The source sentences of `input` (in `encoding`, else the run's `trained` one), or of
/// standard input (in `encoding`, else UTF-8).
fn read_lines(
    input: Option<&Path>,
    encoding: EncodingFlag,
    trained: Encoding,
) -> Result<Vec<String>> {
    let (text, name) = match input {
        Some(p) => (
            seqrnn::data::read_text(p, encoding.or_run(trained))?,
            p.display().to_string(),
        ),
        None => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .context("could not read standard input")?;
            let name = "standard input";
            (encoding.get().decode(bytes, Path::new(name))?, name.into())
        }
    };
    let mut lines = Vec::new();
    for (no, line) in text.lines().enumerate() {
        let line = line.trim().to_string();
        ensure!(
            !line.is_empty(),
            "{name}, line {}: empty line (one source sentence a line)",
            no + 1
        );
        lines.push(line);
    }
    Ok(lines)
}

fn run_cmd(a: RunArgs) -> Result<()> {
    crate::set_threads(a.threads)?;
    let m = load_run(&a.model)?;
    let lines = read_lines(a.input.as_deref(), a.encoding, m.config.data.encoding)?;
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let sources = m.encode_sources(&refs)?;
    let decode = a.decode.apply(m.config.train.decode);
    let mut dec = Decoder::new(&m.model, &m.params, decode)?;
    dec.keep_attention = a.attention_out.is_some();
    let hyps = dec.translate(&sources)?;
    let mut out = std::io::stdout().lock();
    for h in &hyps {
        writeln!(out, "{}", m.tgt_vocab.decode(&h.tokens)?)?;
    }
    if let Some(dir) = &a.attention_out {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
        for (i, (h, src)) in hyps.iter().zip(&sources).enumerate() {
            let path = dir.join(format!("{:04}.png", i + 1));
            draw_attention(&m, src, h, &path)?;
        }
    }
    Ok(())
}

/// The attention matrix of one translation as a heatmap: source pieces across, output pieces
/// (and `</s>`) down; pieces that continue a word are labelled `##piece`.
fn draw_attention(
    m: &Trained,
    src: &[u32],
    h: &seqrnn::translate::Hypothesis,
    path: &Path,
) -> Result<()> {
    let s = src.len();
    let steps = h.attention.len() / s;
    let values = &h.attention[..steps * s];
    // A piece that starts a word loses its `▁`; one that continues a word is shown `##piece`.
    let shown = |pieces: Vec<String>| -> Vec<String> {
        pieces
            .into_iter()
            .map(|p| match p.strip_prefix('▁') {
                Some(word) => word.to_string(),
                None => format!("##{p}"),
            })
            .collect()
    };
    let cols = shown(m.src_vocab.pieces(src));
    let mut rows = shown(m.tgt_vocab.pieces(&h.tokens));
    rows.truncate(steps);
    if rows.len() < steps {
        rows.push("</s>".into());
    }
    seqrnn::report::heatmap::attention_map(path, values, &cols, &rows)
        .with_context(|| format!("could not draw {}", path.display()))?;
    Ok(())
}

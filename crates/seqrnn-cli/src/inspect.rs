//! `seqrnn inspect`: gate activations and states of one layer of a trained language model over a
//! text, as CSV and pictures, with the units that follow properties of the text and gate
//! saturation.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use clap::Args;
use seqrnn::data::{self, Encoding, TokenKind, Vocab};
use seqrnn::lm::inspect::inspect;
use seqrnn::lm::inspect_report::{write_inspect_report, InspectReport, InspectReportOptions};
use seqrnn::run::{RunDir, LANGUAGE_MODEL_TASK};

use crate::flags::EncodingFlag;

/// `seqrnn inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Run directory of a trained language model.
    #[arg(long)]
    model: PathBuf,
    /// Text file to run the model over.
    #[arg(long)]
    text: PathBuf,
    #[command(flatten)]
    encoding: EncodingFlag,
    /// Output folder for the CSV files, pictures and inspect.md.
    #[arg(long)]
    out: PathBuf,
    /// Layer to inspect, from 0 (default: the last).
    #[arg(long)]
    layer: Option<usize>,
    /// Tokens of the text to read (from its start).
    #[arg(long, default_value_t = 2000)]
    max_tokens: usize,
    /// Tokens shown in the heatmaps (from the start).
    #[arg(long, default_value_t = 120)]
    heatmap_tokens: usize,
    /// Tokens shown in the pictures of single units (from the start).
    #[arg(long, default_value_t = 600)]
    unit_tokens: usize,
    /// Units listed per property and state.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Threads (default: 1).
    #[arg(long)]
    threads: Option<usize>,
}

pub fn inspect_cmd(a: InspectArgs) -> Result<()> {
    crate::set_threads(Some(a.threads.unwrap_or(1)))?;
    ensure!(a.max_tokens >= 2, "--max-tokens must be at least 2");
    ensure!(a.heatmap_tokens >= 1, "--heatmap-tokens must be at least 1");
    ensure!(a.unit_tokens >= 1, "--unit-tokens must be at least 1");
    let run = RunDir::new(&a.model);
    refuse_other_task(&run, &a.model)?;
    let (rc, vocab, model, params) = seqrnn::lm::load_model(&run)
        .with_context(|| format!("cannot load the model in {}", a.model.display()))?;
    let kind: TokenKind = rc.data.tokens.into();
    let layers = model.config().layers;
    let layer = a.layer.unwrap_or(layers - 1);
    let encoding = a.encoding.or_run(rc.data.encoding);
    let tokens = read_tokens((&a.text, encoding), kind, a.max_tokens)?;
    let (ids, unknown) = token_ids(&vocab, &tokens)?;
    if unknown > 0 {
        eprintln!("note: {unknown} tokens of the text are not in the vocabulary and read as <unk>");
    }

    let ins = inspect(&model, &params, &ids, layer)?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let cell = model.config().cell.name().to_uppercase();
    let desc = format!("{cell} {}×{}, layer {layer}", layers, model.config().hidden);
    let report = write_inspect_report(
        &a.out,
        &ins,
        &tokens,
        &InspectReportOptions {
            title: &desc,
            model: &a.model,
            text: &a.text,
            unknown,
            kind,
            heatmap_tokens: a.heatmap_tokens,
            unit_tokens: a.unit_tokens,
            top: a.top,
        },
    )?;
    print_summary(&desc, ins.tokens, &report, &a.out);
    Ok(())
}

/// A run of another task says so, rather than failing to parse.
fn refuse_other_task(run: &RunDir, model: &Path) -> Result<()> {
    if let Ok(text) = std::fs::read_to_string(run.config_path()) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            if let Some(task) = seqrnn::run::task_of(&v).filter(|t| *t != LANGUAGE_MODEL_TASK) {
                bail!(
                    "{} is a `{task}` run: inspect reads language models (runs of `seqrnn train`)",
                    model.display()
                );
            }
        }
    }
    Ok(())
}

/// The first `max_tokens` tokens of the text file `path` in `encoding`.
fn read_tokens(
    (path, encoding): (&Path, Encoding),
    kind: TokenKind,
    max_tokens: usize,
) -> Result<Vec<String>> {
    // The library's errors name the file (and line): the context does not repeat it.
    let text = data::read_text(path, encoding).context("cannot read the text")?;
    let mut tokens = data::tokenize(&text, kind);
    tokens.truncate(max_tokens);
    ensure!(
        !tokens.is_empty(),
        "{} holds no tokens to read",
        path.display()
    );
    Ok(tokens)
}

/// The ids of `tokens`, with those outside the vocabulary read as `<unk>`, and how many those
/// were.
fn token_ids(vocab: &Vocab, tokens: &[String]) -> Result<(Vec<u32>, usize)> {
    let unk = vocab.unk_id();
    let mut unknown = 0usize;
    let mut ids = Vec::with_capacity(tokens.len());
    for t in tokens {
        match vocab.id(t) {
            Some(id) => ids.push(id),
            None => {
                unknown += 1;
                match unk {
                    Some(u) => ids.push(u),
                    None => {
                        bail!("token `{t}` is not in the model's vocabulary, which has no <unk>")
                    }
                }
            }
        }
    }
    Ok((ids, unknown))
}

/// The lines printed after the report is written.
fn print_summary(desc: &str, tokens: usize, report: &InspectReport, out: &Path) {
    println!("{desc}: {tokens} tokens");
    for p in &report.pictures {
        let c = &p.unit;
        println!(
            "  {:<18} {} unit {:<4} r = {:+.3}   {}",
            p.property, c.quantity, c.unit, c.r, p.file
        );
    }
    for s in &report.saturation {
        println!(
            "  {:<18} {:5.1}% below 0.1, {:5.1}% above 0.9",
            s.gate.replace('_', " "),
            100.0 * s.below,
            100.0 * s.above
        );
    }
    println!("written to {}", out.display());
}

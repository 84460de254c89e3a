//! `seqrnn inspect`: gate activations and states of one layer of a trained language model over a
//! text, as CSV and pictures, with the units that follow properties of the text and gate
//! saturation.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use clap::Args;
use seqrnn::data::{self, TokenKind};
use seqrnn::inspect::{correlated_units, inspect, saturation, text_properties, QuantityKind};
use seqrnn::report::heatmap::{heatmap, text_heat, Colormap, Heatmap, TextHeat};
use seqrnn::run::RunDir;

/// `seqrnn inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Run directory of a trained language model.
    #[arg(long)]
    model: PathBuf,
    /// Text file to run the model over (UTF-8).
    #[arg(long)]
    text: PathBuf,
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

/// A name usable in a file name: `position in line` → `position-in-line`.
fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// A CSV field: quoted, with quotes doubled and line breaks written as `\n`.
fn csv_field(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('\r', "\\r")
            .replace('"', "\"\"")
    )
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("could not write {}", path.display()))
}

pub fn inspect_cmd(a: InspectArgs) -> Result<()> {
    crate::set_threads(Some(a.threads.unwrap_or(1)))?;
    ensure!(a.max_tokens >= 2, "--max-tokens must be at least 2");
    ensure!(a.heatmap_tokens >= 1, "--heatmap-tokens must be at least 1");
    ensure!(a.unit_tokens >= 1, "--unit-tokens must be at least 1");
    let run = RunDir::new(&a.model);
    // A run of another task says so, rather than failing to parse.
    if let Ok(text) = std::fs::read_to_string(run.config_path()) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            if let Some(task) = v.get("task").and_then(|t| t.as_str()) {
                bail!(
                    "{} is a `{task}` run: inspect reads language models (runs of `seqrnn train`)",
                    a.model.display()
                );
            }
        }
    }
    let (rc, vocab, model, params) = run
        .load_model()
        .with_context(|| format!("cannot load the model in {}", a.model.display()))?;
    let kind: TokenKind = rc.tokens.into();
    let layers = model.config().layers;
    let layer = a.layer.unwrap_or(layers - 1);

    let bytes =
        std::fs::read(&a.text).with_context(|| format!("cannot read {}", a.text.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", a.text.display()))?;
    let mut tokens = data::tokenize(&text, kind);
    tokens.truncate(a.max_tokens);
    ensure!(
        !tokens.is_empty(),
        "{} holds no tokens to read",
        a.text.display()
    );
    let unk = vocab.unk_id();
    let mut unknown = 0usize;
    let mut ids = Vec::with_capacity(tokens.len());
    for t in &tokens {
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
    if unknown > 0 {
        eprintln!("note: {unknown} tokens of the text are not in the vocabulary and read as <unk>");
    }

    let ins = inspect(&model, &params, &ids, layer)?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let cell = model.config().cell.name().to_uppercase();
    let desc = format!("{cell} {}×{}, layer {layer}", layers, model.config().hidden);
    let mut files = Vec::new();

    // Per-token CSV, one file per quantity.
    for q in &ins.quantities {
        let mut s = String::from("t,token");
        for u in 0..ins.hidden {
            let _ = write!(s, ",u{u}");
        }
        s.push('\n');
        for (t, tok) in tokens.iter().enumerate() {
            let _ = write!(s, "{t},{}", csv_field(tok));
            for v in &q.values[t * ins.hidden..(t + 1) * ins.hidden] {
                let _ = write!(s, ",{v}");
            }
            s.push('\n');
        }
        let name = format!("{}.csv", q.name);
        write(&a.out.join(&name), &s)?;
        files.push(name);
    }

    // Heatmaps of the first tokens.
    let shown = ins.tokens.min(a.heatmap_tokens);
    for q in &ins.quantities {
        let (range, colormap, label) = value_scale(q.name, q.kind, &q.values);
        let name = format!("heatmap-{}.png", q.name);
        heatmap(
            &a.out.join(&name),
            &Heatmap {
                title: &format!("{} — {desc}", q.name.replace('_', " ")),
                values: &q.values[..shown * ins.hidden],
                tokens: shown,
                units: ins.hidden,
                labels: &tokens[..shown],
                range,
                colormap,
                value_label: label,
            },
        )?;
        files.push(name);
    }

    // Units that follow properties of the text.
    let props = text_properties(&tokens, kind);
    let found = correlated_units(&ins, &props, a.top.max(1));
    let mut csv = String::from("property,quantity,unit,r\n");
    for c in &found {
        let _ = writeln!(csv, "{},{},{},{}", c.property, c.quantity, c.unit, c.r);
    }
    write(&a.out.join("units.csv"), &csv)?;
    files.push("units.csv".into());
    let constant: Vec<&str> = props
        .iter()
        .filter(|p| !found.iter().any(|c| c.property == p.name))
        .map(|p| p.name)
        .collect();

    // A picture of the strongest unit of each property.
    let text_shown = ins.tokens.min(a.unit_tokens);
    let mut pictures = Vec::new();
    for p in &props {
        let Some(best) = found
            .iter()
            .filter(|c| c.property == p.name)
            .max_by(|x, y| x.r.abs().total_cmp(&y.r.abs()))
        else {
            continue;
        };
        let Some(q) = ins.get(best.quantity) else {
            continue;
        };
        let values: Vec<f32> = ins.unit(q, best.unit)[..text_shown].to_vec();
        let m = values.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        let name = format!("unit-{}.png", slug(p.name));
        text_heat(
            &a.out.join(&name),
            &TextHeat {
                title: &format!(
                    "{} unit {} ({desc}): r = {:+.2} with {}",
                    best.quantity, best.unit, best.r, p.name
                ),
                tokens: &tokens[..text_shown],
                values: &values,
                range: (-m, m),
                colormap: Colormap::Diverging,
                chars: kind == TokenKind::Char,
            },
        )?;
        files.push(name.clone());
        pictures.push((p.name, best.clone(), name));
    }

    // Saturation.
    let sat = saturation(&ins);
    let mut csv = String::from("gate,unit,below_0.1,above_0.9\n");
    for s in &sat {
        for (u, (b, o)) in s.per_unit.iter().enumerate() {
            let _ = writeln!(csv, "{},{u},{b},{o}", s.gate);
        }
    }
    write(&a.out.join("saturation.csv"), &csv)?;
    files.push("saturation.csv".into());

    // Summary.
    let mut md = format!(
        "# Inside {desc}\n\nModel `{}`, text `{}`: {} tokens read{}.\n\n",
        a.model.display(),
        a.text.display(),
        ins.tokens,
        if unknown > 0 {
            format!(" ({unknown} outside the vocabulary, read as <unk>)")
        } else {
            String::new()
        }
    );
    md.push_str(
        "## Units that follow the text\n\n| property | quantity | unit | r |\n|---|---|---|---|\n",
    );
    for p in &props {
        let mut best: Vec<_> = found.iter().filter(|c| c.property == p.name).collect();
        best.sort_by(|x, y| y.r.abs().total_cmp(&x.r.abs()));
        for c in best.into_iter().take(3) {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:+.3} |",
                c.property, c.quantity, c.unit, c.r
            );
        }
    }
    if !constant.is_empty() {
        let _ = writeln!(
            md,
            "\nNot scored (constant in this text): {}.",
            constant.join(", ")
        );
    }
    md.push_str("\n## Gate saturation\n\n| gate | < 0.1 | > 0.9 | units mostly < 0.1 | units mostly > 0.9 |\n|---|---|---|---|---|\n");
    for s in &sat {
        let left = s.per_unit.iter().filter(|p| p.0 > 0.5).count();
        let right = s.per_unit.iter().filter(|p| p.1 > 0.5).count();
        let _ = writeln!(
            md,
            "| {} | {:.1}% | {:.1}% | {left} | {right} |",
            s.gate.replace('_', " "),
            100.0 * s.below,
            100.0 * s.above
        );
    }
    md.push_str("\n(\"Mostly\": more than half of the tokens.)\n\n## Files\n\n");
    for f in &files {
        let _ = writeln!(md, "- `{f}`");
    }
    write(&a.out.join("inspect.md"), &md)?;

    println!("{desc}: {} tokens", ins.tokens);
    for (prop, c, file) in &pictures {
        println!(
            "  {prop:<18} {} unit {:<4} r = {:+.3}   {}",
            c.quantity, c.unit, c.r, file
        );
    }
    for s in &sat {
        println!(
            "  {:<18} {:5.1}% below 0.1, {:5.1}% above 0.9",
            s.gate.replace('_', " "),
            100.0 * s.below,
            100.0 * s.above
        );
    }
    println!("written to {}", a.out.display());
    Ok(())
}

/// Colour scale of a quantity: gates on [0, 1]; the hidden state on [−1, 1]; the cell state on
/// ± its 90th percentile of magnitude (at least 1), since a few units hold far larger values
/// than the rest.
fn value_scale(
    name: &str,
    kind: QuantityKind,
    values: &[f32],
) -> ((f32, f32), Colormap, &'static str) {
    match kind {
        QuantityKind::Gate => ((0.0, 1.0), Colormap::Sequential, "activation"),
        QuantityKind::State if name == "cell" => {
            let mut mags: Vec<f32> = values.iter().map(|v| v.abs()).collect();
            mags.sort_by(f32::total_cmp);
            let p90 = mags
                .get((mags.len() as f64 * 0.9) as usize)
                .copied()
                .unwrap_or(1.0)
                .max(1.0);
            ((-p90, p90), Colormap::Diverging, "cell state c")
        }
        QuantityKind::State => ((-1.0, 1.0), Colormap::Diverging, "hidden state h"),
    }
}

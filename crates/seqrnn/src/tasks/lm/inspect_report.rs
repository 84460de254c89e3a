//! The report of `seqrnn inspect`: from an [`Inspection`] of one layer over a text, the folder of
//! files that shows it.
//!
//! [`write_inspect_report`] writes, each atomically:
//!
//! - `<quantity>.csv` per gate and state: one row per token (`t`, `token`, `u0`, `u1`, …);
//! - `heatmap-<quantity>.png` per gate and state: units against the first tokens;
//! - `units.csv`: the units that follow properties of the text ([`correlated_units`]);
//! - `unit-<property>.png`: the text shaded by the strongest unit of each property;
//! - `saturation.csv`: per gate and unit, the fractions below 0.1 and above 0.9;
//! - `inspect.md`: a summary of all of them.

use std::fmt::Write as _;
use std::path::Path;

use crate::data::TokenKind;
use crate::error::Result;
use crate::io::write_atomic;
use crate::report::heatmap::{heatmap, text_heat, Colormap, Heatmap, TextHeat};
use crate::tasks::lm::inspect::{
    correlated_units, saturation, text_properties, Inspection, Property, QuantityKind, Saturation,
    UnitCorrelation,
};

/// What the report shows besides the inspection itself.
#[derive(Clone, Debug)]
pub struct InspectReportOptions<'a> {
    /// Description of the inspected layer, used in titles (`LSTM 2×128, layer 1`).
    pub title: &'a str,
    /// The model's run folder, named in the summary.
    pub model: &'a Path,
    /// The text file read, named in the summary.
    pub text: &'a Path,
    /// Tokens of the text outside the vocabulary (read as `<unk>`).
    pub unknown: usize,
    /// Characters or words: picks the text properties and how shaded text is drawn.
    pub kind: TokenKind,
    /// Tokens shown in the heatmaps (from the start; at least 1).
    pub heatmap_tokens: usize,
    /// Tokens shown in the pictures of single units (from the start; at least 1).
    pub unit_tokens: usize,
    /// Units listed per property and state (at least 1 is used).
    pub top: usize,
}

/// The picture of the strongest unit of one property.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitPicture {
    /// The property.
    pub property: &'static str,
    /// The unit and its correlation.
    pub unit: UnitCorrelation,
    /// File name of the picture in the report folder.
    pub file: String,
}

/// What [`write_inspect_report`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct InspectReport {
    /// Names of the files written in the report folder, `inspect.md` last.
    pub files: Vec<String>,
    /// The picture of the strongest unit of each property that varies over the text.
    pub pictures: Vec<UnitPicture>,
    /// Saturation of every gate.
    pub saturation: Vec<Saturation>,
}

/// Writes the report of `ins` (run over `tokens`, the tokens of the text) into the folder
/// `out`, which must exist.
///
/// # Errors
/// [`crate::error::Error::Io`] when a file cannot be written (the file keeps its previous
/// contents); the errors of [`heatmap`] and [`text_heat`].
pub fn write_inspect_report(
    out: &Path,
    ins: &Inspection,
    tokens: &[String],
    o: &InspectReportOptions<'_>,
) -> Result<InspectReport> {
    let mut files = write_quantity_csvs(out, ins, tokens)?;
    files.extend(write_heatmaps(out, ins, tokens, o)?);
    let props = text_properties(tokens, o.kind);
    let found = correlated_units(ins, &props, o.top.max(1));
    write_atomic(&out.join("units.csv"), units_csv(&found).as_bytes())?;
    files.push("units.csv".into());
    let pictures = write_unit_pictures(out, ins, tokens, &props, &found, o)?;
    files.extend(pictures.iter().map(|p| p.file.clone()));
    let sat = saturation(ins);
    write_atomic(&out.join("saturation.csv"), saturation_csv(&sat).as_bytes())?;
    files.push("saturation.csv".into());
    let md = summary_markdown(ins, &props, &found, &sat, &files, o);
    write_atomic(&out.join("inspect.md"), md.as_bytes())?;
    files.push("inspect.md".into());
    Ok(InspectReport {
        files,
        pictures,
        saturation: sat,
    })
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

/// One CSV file per quantity, a row per token; returns the file names.
fn write_quantity_csvs(out: &Path, ins: &Inspection, tokens: &[String]) -> Result<Vec<String>> {
    let mut files = Vec::new();
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
        write_atomic(&out.join(&name), s.as_bytes())?;
        files.push(name);
    }
    Ok(files)
}

/// A heatmap of the first tokens per quantity; returns the file names.
fn write_heatmaps(
    out: &Path,
    ins: &Inspection,
    tokens: &[String],
    o: &InspectReportOptions<'_>,
) -> Result<Vec<String>> {
    let shown = ins.tokens.min(o.heatmap_tokens);
    let mut files = Vec::new();
    for q in &ins.quantities {
        let (range, colormap, label) = value_scale(q.name, q.kind, &q.values);
        let name = format!("heatmap-{}.png", q.name);
        heatmap(
            &out.join(&name),
            &Heatmap {
                title: &format!("{} — {}", q.name.replace('_', " "), o.title),
                values: &q.values[..shown * ins.hidden],
                tokens: shown,
                units: ins.hidden,
                labels: &tokens[..shown],
                range,
                colormap,
                value_label: label,
                row_labels: &[],
                axes: ("token", "unit"),
            },
        )?;
        files.push(name);
    }
    Ok(files)
}

/// `units.csv`: every unit found, with its correlation.
fn units_csv(found: &[UnitCorrelation]) -> String {
    let mut csv = String::from("property,quantity,unit,r\n");
    for c in found {
        let _ = writeln!(csv, "{},{},{},{}", c.property, c.quantity, c.unit, c.r);
    }
    csv
}

/// The text shaded by the strongest unit of each property that has one.
fn write_unit_pictures(
    out: &Path,
    ins: &Inspection,
    tokens: &[String],
    props: &[Property],
    found: &[UnitCorrelation],
    o: &InspectReportOptions<'_>,
) -> Result<Vec<UnitPicture>> {
    let text_shown = ins.tokens.min(o.unit_tokens);
    let mut pictures = Vec::new();
    for p in props {
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
            &out.join(&name),
            &TextHeat {
                title: &format!(
                    "{} unit {} ({}): r = {:+.2} with {}",
                    best.quantity, best.unit, o.title, best.r, p.name
                ),
                tokens: &tokens[..text_shown],
                values: &values,
                range: (-m, m),
                colormap: Colormap::Diverging,
                chars: o.kind == TokenKind::Char,
            },
        )?;
        pictures.push(UnitPicture {
            property: p.name,
            unit: best.clone(),
            file: name,
        });
    }
    Ok(pictures)
}

/// `saturation.csv`: per gate and unit, the fractions below 0.1 and above 0.9.
fn saturation_csv(sat: &[Saturation]) -> String {
    let mut csv = String::from("gate,unit,below_0.1,above_0.9\n");
    for s in sat {
        for (u, (b, o)) in s.per_unit.iter().enumerate() {
            let _ = writeln!(csv, "{},{u},{b},{o}", s.gate);
        }
    }
    csv
}

/// `inspect.md`: what was read, the strongest units per property, gate saturation and the
/// files written.
fn summary_markdown(
    ins: &Inspection,
    props: &[Property],
    found: &[UnitCorrelation],
    sat: &[Saturation],
    files: &[String],
    o: &InspectReportOptions<'_>,
) -> String {
    let mut md = format!(
        "# Inside {}\n\nModel `{}`, text `{}`: {} tokens read{}.\n\n",
        o.title,
        o.model.display(),
        o.text.display(),
        ins.tokens,
        if o.unknown > 0 {
            format!(" ({} outside the vocabulary, read as <unk>)", o.unknown)
        } else {
            String::new()
        }
    );
    units_markdown(&mut md, props, found);
    saturation_markdown(&mut md, sat);
    md.push_str("\n(\"Mostly\": more than half of the tokens.)\n\n## Files\n\n");
    for f in files {
        let _ = writeln!(md, "- `{f}`");
    }
    md
}

/// The table of the three strongest units per property, and the properties not scored.
fn units_markdown(md: &mut String, props: &[Property], found: &[UnitCorrelation]) {
    md.push_str(
        "## Units that follow the text\n\n| property | quantity | unit | r |\n|---|---|---|---|\n",
    );
    for p in props {
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
    let constant: Vec<&str> = props
        .iter()
        .filter(|p| !found.iter().any(|c| c.property == p.name))
        .map(|p| p.name)
        .collect();
    if !constant.is_empty() {
        let _ = writeln!(
            md,
            "\nNot scored (constant in this text): {}.",
            constant.join(", ")
        );
    }
}

/// The table of gate saturation.
fn saturation_markdown(md: &mut String, sat: &[Saturation]) {
    md.push_str("\n## Gate saturation\n\n| gate | < 0.1 | > 0.9 | units mostly < 0.1 | units mostly > 0.9 |\n|---|---|---|---|---|\n");
    for s in sat {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_csv_fields() {
        assert_eq!(slug("position in line"), "position-in-line");
        assert_eq!(csv_field("a\"b\nc"), "\"a\"\"b\\nc\"");
    }

    #[test]
    fn cell_state_scale_is_at_least_one() {
        let (range, colormap, _) = value_scale("cell", QuantityKind::State, &[0.1, -0.2]);
        assert_eq!(range, (-1.0, 1.0));
        assert_eq!(colormap, Colormap::Diverging);
        let (range, ..) = value_scale("input_gate", QuantityKind::Gate, &[0.5]);
        assert_eq!(range, (0.0, 1.0));
    }
}

//! Pictures of activations: a heatmap of units against tokens, and a text whose characters (or
//! words) are shaded by one unit's value, in the manner of Karpathy et al. (2015).
//!
//! Both are SVG documents written as SVG, or rendered to PNG by [`super::raster`] when the path
//! ends in `.png`. For a PNG heatmap the cells are painted straight into the pixels and only the
//! frame, labels and colour bar go through the SVG renderer, which keeps large heatmaps fast.

use std::fmt::Write as _;
use std::path::Path;

use resvg::tiny_skia::{ColorU8, Pixmap};

use super::raster::{self, encode_png, is_png, parse_svg, render_onto};
use super::write_atomic;
use crate::error::{Error, Result};

/// How values map to colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colormap {
    /// Dark blue through green to yellow (viridis), for gates in `[0, 1]`.
    Sequential,
    /// Blue through white to red, for states around 0.
    Diverging,
}

/// Viridis at nine evenly spaced points.
const VIRIDIS: [[u8; 3]; 9] = [
    [68, 1, 84],
    [71, 44, 122],
    [59, 81, 139],
    [44, 113, 142],
    [33, 144, 141],
    [39, 173, 129],
    [92, 200, 99],
    [170, 220, 50],
    [253, 231, 37],
];

/// RdBu reversed (negative blue, positive red) at nine evenly spaced points.
const BLUE_RED: [[u8; 3]; 9] = [
    [33, 102, 172],
    [67, 147, 195],
    [146, 197, 222],
    [209, 229, 240],
    [247, 247, 247],
    [253, 219, 199],
    [244, 165, 130],
    [214, 96, 77],
    [178, 24, 43],
];

impl Colormap {
    /// The colour of `v` on a scale from `lo` to `hi` (values outside are clamped; NaN is grey).
    pub fn color(self, v: f32, lo: f32, hi: f32) -> [u8; 3] {
        if !v.is_finite() {
            return [160, 160, 160];
        }
        let f = if hi > lo {
            ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
        } else {
            0.5
        };
        let table = match self {
            Colormap::Sequential => &VIRIDIS,
            Colormap::Diverging => &BLUE_RED,
        };
        let x = f * (table.len() - 1) as f32;
        let i = (x.floor() as usize).min(table.len() - 2);
        let t = x - i as f32;
        let mut out = [0u8; 3];
        for (k, o) in out.iter_mut().enumerate() {
            let a = f32::from(table[i][k]);
            let b = f32::from(table[i + 1][k]);
            *o = (a + (b - a) * t).round() as u8;
        }
        out
    }
}

fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// How a token is shown in a picture: line breaks as `¶`, tabs as `→`, other control
/// characters as `·`.
pub fn visible_token(t: &str) -> String {
    t.chars()
        .map(|c| match c {
            '\n' => '¶',
            '\t' => '→',
            c if c.is_control() => '·',
            c => c,
        })
        .collect()
}

/// A heatmap of `units` rows by `tokens` columns.
#[derive(Clone, Copy, Debug)]
pub struct Heatmap<'a> {
    /// Title above the map.
    pub title: &'a str,
    /// Values token-major: `values[t · units + u]`.
    pub values: &'a [f32],
    /// Number of tokens (columns).
    pub tokens: usize,
    /// Number of units (rows).
    pub units: usize,
    /// Labels of the columns (the tokens), one per column; shown when they fit.
    pub labels: &'a [String],
    /// Value range of the colour scale.
    pub range: (f32, f32),
    /// Colour scale.
    pub colormap: Colormap,
    /// Name of the values, shown by the colour bar.
    pub value_label: &'a str,
    /// Labels of the rows, one per row (empty: row numbers).
    pub row_labels: &'a [String],
    /// Names of the axes: columns, rows.
    pub axes: (&'a str, &'a str),
}

/// Pixel geometry of a heatmap.
struct Layout {
    cw: u32,
    ch: u32,
    left: u32,
    top: u32,
    width: u32,
    height: u32,
    label_rows: u32,
}

fn layout(h: &Heatmap<'_>, chars: bool) -> Layout {
    // A labelled matrix (attention) gets square cells, larger when there are few.
    let (cw, ch) = match h.row_labels.is_empty() {
        true => (
            (1400 / h.tokens.max(1) as u32).clamp(2, 14),
            (640 / h.units.max(1) as u32).clamp(1, 12),
        ),
        false => {
            let c = (1000 / h.tokens.max(h.units).max(1) as u32).clamp(2, 24);
            (c, c)
        }
    };
    let longest = h
        .labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(1) as u32;
    let label_rows = if cw < 7 {
        24
    } else if chars {
        26
    } else {
        12 + 7 * longest.min(14)
    };
    let left = match h.row_labels.is_empty() {
        true => 70,
        false => {
            let widest = h
                .row_labels
                .iter()
                .map(|l| l.chars().count())
                .max()
                .unwrap_or(1);
            40 + 7 * widest.min(24) as u32
        }
    };
    let top = 48;
    let width = left + cw * h.tokens as u32 + 110;
    let height = top + ch * h.units as u32 + label_rows + 40;
    Layout {
        cw,
        ch,
        left,
        top,
        width,
        height,
        label_rows,
    }
}

/// A round step of at least `min` units between ticks.
fn tick_step(min: f64) -> usize {
    let mut step = 1usize;
    loop {
        for m in [1, 2, 5] {
            if (step * m) as f64 >= min {
                return step * m;
            }
        }
        step *= 10;
    }
}

/// The frame of a heatmap: title, axes, labels and colour bar (the cells are drawn elsewhere).
fn frame_svg(h: &Heatmap<'_>, l: &Layout, cells: &str) -> String {
    let chars = h.labels.iter().all(|s| s.chars().count() <= 1);
    let map_w = l.cw * h.tokens as u32;
    let map_h = l.ch * h.units as u32;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{ht}" viewBox="0 0 {w} {ht}">"#,
        w = l.width,
        ht = l.height
    );
    s.push_str(cells);
    let _ = write!(
        s,
        r#"<text x="{}" y="28" font-family="sans-serif" font-size="18" text-anchor="middle">{}</text>"#,
        l.left + map_w / 2,
        esc(h.title)
    );
    let _ = write!(
        s,
        r##"<rect x="{}" y="{}" width="{map_w}" height="{map_h}" fill="none" stroke="#444" stroke-width="1"/>"##,
        f64::from(l.left) - 0.5,
        f64::from(l.top) - 0.5
    );
    // Units down: ticks at round unit numbers at least 14 px apart.
    let step = match h.row_labels.is_empty() {
        true => tick_step(14.0 / f64::from(l.ch)),
        false => 1,
    };
    for u in (0..h.units).step_by(step) {
        let y = l.top + l.ch * u as u32 + l.ch / 2;
        let text = match h.row_labels.get(u) {
            Some(label) => esc(&visible_token(label)),
            None => u.to_string(),
        };
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" font-family="sans-serif" font-size="11" text-anchor="end">{text}</text>"#,
            l.left - 6,
            y + 4
        );
    }
    let _ = write!(
        s,
        r#"<text transform="translate(18 {}) rotate(-90)" font-family="sans-serif" font-size="13" text-anchor="middle">{}</text>"#,
        l.top + map_h / 2,
        esc(h.axes.1)
    );
    // Tokens across.
    let base = l.top + map_h + 4;
    if l.cw >= 7 {
        for (t, label) in h.labels.iter().take(h.tokens).enumerate() {
            let x = l.left + l.cw * t as u32 + l.cw / 2;
            let text = esc(&visible_token(label));
            if chars {
                let _ = write!(
                    s,
                    r#"<text x="{x}" y="{}" font-family="monospace" font-size="{}" text-anchor="middle">{text}</text>"#,
                    base + 13,
                    (l.cw + 2).min(14)
                );
            } else {
                let _ = write!(
                    s,
                    r#"<text transform="translate({} {}) rotate(-90)" font-family="sans-serif" font-size="{}" text-anchor="end">{text}</text>"#,
                    x + 4,
                    base + 2,
                    l.cw.min(12)
                );
            }
        }
    } else {
        let step = tick_step(40.0 / f64::from(l.cw));
        for t in (0..h.tokens).step_by(step) {
            let x = l.left + l.cw * t as u32 + l.cw / 2;
            let _ = write!(
                s,
                r#"<text x="{x}" y="{}" font-family="sans-serif" font-size="11" text-anchor="middle">{t}</text>"#,
                base + 13
            );
        }
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" font-family="sans-serif" font-size="13" text-anchor="middle">{}</text>"#,
        l.left + map_w / 2,
        base + l.label_rows + 14,
        if l.cw >= 7 {
            h.axes.0.to_string()
        } else {
            format!("{} (position)", h.axes.0)
        }
    );
    // Colour bar.
    let (bx, by, bw, bh) = (l.left + map_w + 24, l.top, 16u32, map_h.clamp(80, 300));
    let steps = 64u32;
    for k in 0..steps {
        let f = 1.0 - (k as f32 + 0.5) / steps as f32;
        let v = h.range.0 + f * (h.range.1 - h.range.0);
        let y0 = f64::from(by) + f64::from(bh) * f64::from(k) / f64::from(steps);
        let _ = write!(
            s,
            r#"<rect x="{bx}" y="{y0:.2}" width="{bw}" height="{:.2}" fill="{}"/>"#,
            f64::from(bh) / f64::from(steps) + 0.3,
            hex(h.colormap.color(v, h.range.0, h.range.1))
        );
    }
    let _ = write!(
        s,
        r##"<rect x="{bx}" y="{by}" width="{bw}" height="{bh}" fill="none" stroke="#444"/>"##
    );
    for (f, v) in [
        (0.0, h.range.1),
        (0.5, (h.range.0 + h.range.1) / 2.0),
        (1.0, h.range.0),
    ] {
        let y = f64::from(by) + f64::from(bh) * f + 4.0;
        let _ = write!(
            s,
            r#"<text x="{}" y="{y:.1}" font-family="sans-serif" font-size="11">{}</text>"#,
            bx + bw + 4,
            fmt_tick(v)
        );
    }
    let _ = write!(
        s,
        r#"<text transform="translate({} {}) rotate(90)" font-family="sans-serif" font-size="12" text-anchor="middle">{}</text>"#,
        bx + bw + 44,
        by + bh / 2,
        esc(h.value_label)
    );
    s.push_str("</svg>");
    s
}

fn fmt_tick(v: f32) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

fn check(h: &Heatmap<'_>, path: &Path) -> Result<()> {
    let bad = |message: String| {
        Err(Error::Data {
            path: path.to_path_buf(),
            message,
        })
    };
    if h.tokens == 0 || h.units == 0 {
        return bad("nothing to draw: no tokens or no units".into());
    }
    if h.values.len() != h.tokens * h.units {
        return bad(format!(
            "{} values for {} tokens × {} units",
            h.values.len(),
            h.tokens,
            h.units
        ));
    }
    if h.tokens > 4000 || h.units > 4096 {
        return bad(format!(
            "{} tokens × {} units is too large a picture (at most 4000 × 4096)",
            h.tokens, h.units
        ));
    }
    Ok(())
}

/// Draws an attention matrix to `path` (PNG or SVG as [`heatmap`]): `weights[R, C]` row-major,
/// one row per output piece (`rows` labels them), one column per source piece (`cols`), on a
/// 0–1 scale.
///
/// # Errors
/// As [`heatmap`]; [`Error::Data`] when the labels do not match the matrix.
pub fn attention_map(path: &Path, weights: &[f32], cols: &[String], rows: &[String]) -> Result<()> {
    let (c, r) = (cols.len(), rows.len());
    if weights.len() != r * c {
        return Err(Error::Data {
            path: path.to_path_buf(),
            message: format!("{} attention weights for {r} × {c} pieces", weights.len()),
        });
    }
    // The heatmap stores columns one after the other.
    let mut values = vec![0.0; r * c];
    for i in 0..r {
        for j in 0..c {
            values[j * r + i] = weights[i * c + j];
        }
    }
    heatmap(
        path,
        &Heatmap {
            title: "attention",
            values: &values,
            tokens: c,
            units: r,
            labels: cols,
            range: (0.0, 1.0),
            colormap: Colormap::Sequential,
            value_label: "weight",
            row_labels: rows,
            axes: ("source", "output"),
        },
    )
}

/// Draws a speech alignment to `path` (PNG or SVG as [`heatmap`]): per-frame label
/// probabilities `probs[frames, C]` (rows labelled `labels`, the blank first) above the
/// log-mel spectrogram `spectrogram[frames, F]` (scaled to 0–1, low bands at the bottom), time
/// across, on one 0–1 scale.
///
/// # Errors
/// As [`heatmap`]; [`Error::Data`] when the sizes disagree.
pub fn alignment_map(
    path: &Path,
    title: &str,
    probs: &[f32],
    labels: &[String],
    spectrogram: &[f32],
    bands: usize,
) -> Result<()> {
    let c = labels.len();
    let frames = probs.len() / c.max(1);
    if c == 0 || bands == 0 || probs.len() != frames * c || spectrogram.len() != frames * bands {
        return Err(Error::Data {
            path: path.to_path_buf(),
            message: format!(
                "{} probabilities and {} spectrogram values for {c} labels and {bands} bands",
                probs.len(),
                spectrogram.len()
            ),
        });
    }
    let (lo, hi) = spectrogram
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let span = (hi - lo).max(1e-6);
    // Each label gets LABEL_ROWS rows, so its name is legible beside the mel bands.
    const LABEL_ROWS: usize = 3;
    let top = c * LABEL_ROWS;
    let units = top + 1 + bands;
    let mut values = vec![0.0; frames * units];
    for t in 0..frames {
        let col = &mut values[t * units..(t + 1) * units];
        for (k, &p) in probs[t * c..(t + 1) * c].iter().enumerate() {
            col[k * LABEL_ROWS..(k + 1) * LABEL_ROWS].fill(p);
        }
        for m in 0..bands {
            col[top + 1 + m] = (spectrogram[t * bands + bands - 1 - m] - lo) / span;
        }
    }
    let mut rows: Vec<String> = labels
        .iter()
        .flat_map(|l| [String::new(), l.clone(), String::new()])
        .collect();
    rows.push(String::new());
    rows.extend((0..bands).map(|m| match m {
        0 => format!("mel {}", bands - 1),
        _ if m == bands - 1 => "mel 0".to_string(),
        _ => String::new(),
    }));
    let cols = vec![String::new(); frames];
    heatmap(
        path,
        &Heatmap {
            title,
            values: &values,
            tokens: frames,
            units,
            labels: &cols,
            range: (0.0, 1.0),
            colormap: Colormap::Sequential,
            value_label: "probability / level",
            row_labels: &rows,
            axes: ("frame", "label · mel band"),
        },
    )
}

/// Draws a heatmap (tokens across, units down) to `path`: PNG when the path ends in `.png`,
/// SVG otherwise. Column labels are drawn when the columns are wide enough (at most about
/// 200 tokens); otherwise token positions are marked.
///
/// # Errors
/// [`Error::Data`] when there is nothing to draw or the sizes disagree; [`Error::Io`] when the
/// file cannot be written.
pub fn heatmap(path: &Path, h: &Heatmap<'_>) -> Result<()> {
    check(h, path)?;
    let chars = h.labels.iter().all(|s| s.chars().count() <= 1);
    let l = layout(h, chars);
    let (lo, hi) = h.range;
    if is_png(path) {
        let svg = frame_svg(h, &l, "");
        let tree = parse_svg(&svg, path)?;
        let mut pixmap = raster::white_pixmap(l.width, l.height, path)?;
        paint_cells(&mut pixmap, h, &l);
        render_onto(&tree, &mut pixmap, 1.0);
        write_atomic(path, &encode_png(&pixmap, path)?)
    } else {
        let mut cells = String::new();
        for u in 0..h.units {
            for t in 0..h.tokens {
                let c = h.colormap.color(h.values[t * h.units + u], lo, hi);
                let _ = write!(
                    cells,
                    r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>"#,
                    l.left + l.cw * t as u32,
                    l.top + l.ch * u as u32,
                    l.cw,
                    l.ch,
                    hex(c)
                );
            }
        }
        write_atomic(path, frame_svg(h, &l, &cells).as_bytes())
    }
}

fn paint_cells(pixmap: &mut Pixmap, h: &Heatmap<'_>, l: &Layout) {
    let width = pixmap.width() as usize;
    let pixels = pixmap.pixels_mut();
    for u in 0..h.units {
        for t in 0..h.tokens {
            let c = h
                .colormap
                .color(h.values[t * h.units + u], h.range.0, h.range.1);
            let px = ColorU8::from_rgba(c[0], c[1], c[2], 255).premultiply();
            for dy in 0..l.ch {
                let y = (l.top + l.ch * u as u32 + dy) as usize;
                let x0 = (l.left + l.cw * t as u32) as usize;
                for p in &mut pixels[y * width + x0..y * width + x0 + l.cw as usize] {
                    *p = px;
                }
            }
        }
    }
}

/// A text shaded by one unit: each token on a background coloured by `values[t]`.
#[derive(Clone, Copy, Debug)]
pub struct TextHeat<'a> {
    /// Title above the text.
    pub title: &'a str,
    /// The tokens in order; `"\n"` (characters) or `"<eos>"` (words) end a line.
    pub tokens: &'a [String],
    /// One value per token.
    pub values: &'a [f32],
    /// Value range of the colour scale.
    pub range: (f32, f32),
    /// Colour scale.
    pub colormap: Colormap,
    /// Whether tokens are characters (drawn touching) or words (drawn with spaces).
    pub chars: bool,
}

/// Draws a text with every token shaded by its value to `path` (PNG for `.png`, SVG
/// otherwise), wrapping lines longer than 100 characters, with a colour scale underneath.
///
/// # Errors
/// [`Error::Data`] when tokens and values differ in number or there are none; [`Error::Io`]
/// when the file cannot be written.
pub fn text_heat(path: &Path, th: &TextHeat<'_>) -> Result<()> {
    if th.tokens.is_empty() || th.tokens.len() != th.values.len() {
        return Err(Error::Data {
            path: path.to_path_buf(),
            message: format!(
                "{} tokens and {} values: nothing to draw",
                th.tokens.len(),
                th.values.len()
            ),
        });
    }
    const FONT: f64 = 15.0;
    const ADV: f64 = 9.03; // DejaVu Sans Mono advance at 15 px
    const LINE: f64 = 21.0;
    const WRAP: usize = 100;
    let (left, top) = (16.0, 44.0);
    // Place tokens: (line, column, text, value).
    let mut placed: Vec<(usize, usize, String, f32)> = Vec::new();
    let (mut line, mut col) = (0usize, 0usize);
    for (tok, &v) in th.tokens.iter().zip(th.values) {
        let newline = tok == "\n" || tok == "<eos>";
        let shown = if newline {
            "¶".to_string()
        } else {
            visible_token(tok)
        };
        let len = shown.chars().count().max(1);
        let gap = usize::from(!th.chars && col > 0);
        if col > 0 && col + gap + len > WRAP {
            line += 1;
            col = 0;
        }
        let start = col + if col > 0 { gap } else { 0 };
        placed.push((line, start, shown, v));
        col = start + len;
        if newline {
            line += 1;
            col = 0;
        }
    }
    let lines = placed.last().map_or(1, |p| p.0 + 1);
    let widest = placed
        .iter()
        .map(|p| p.1 + p.2.chars().count())
        .max()
        .unwrap_or(1);
    // Wide enough for the text and the title (about 9 px a character at 16 px).
    let title_w = 9.0 * th.title.chars().count() as f64;
    let width = (left * 2.0 + (ADV * widest as f64).max(title_w))
        .max(420.0)
        .ceil();
    let text_h = LINE * lines as f64;
    let height = (top + text_h + 70.0).ceil();
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">"#
    );
    let _ = write!(
        s,
        r#"<rect width="{width}" height="{height}" fill="white"/><text x="{left}" y="26" font-family="sans-serif" font-size="16">{}</text>"#,
        esc(th.title)
    );
    let (lo, hi) = th.range;
    for (ln, c, text, v) in &placed {
        let x = left + ADV * *c as f64;
        let y = top + LINE * *ln as f64;
        let w = ADV * text.chars().count().max(1) as f64;
        let color = th.colormap.color(*v, lo, hi);
        let _ = write!(
            s,
            r#"<rect x="{x:.2}" y="{y:.2}" width="{:.2}" height="{LINE}" fill="{}"/>"#,
            w + 0.3,
            hex(color)
        );
        // Dark text on light backgrounds, light on dark.
        let luma =
            0.299 * f64::from(color[0]) + 0.587 * f64::from(color[1]) + 0.114 * f64::from(color[2]);
        let ink = if luma < 110.0 { "#ffffff" } else { "#111111" };
        let _ = write!(
            s,
            r#"<text x="{x:.2}" y="{:.2}" font-family="monospace" font-size="{FONT}" fill="{ink}" xml:space="preserve">{}</text>"#,
            y + LINE * 0.74,
            esc(text)
        );
    }
    // Colour scale.
    let sy = top + text_h + 22.0;
    let sw = 240.0;
    for k in 0..48 {
        let f = (k as f32 + 0.5) / 48.0;
        let v = lo + f * (hi - lo);
        let _ = write!(
            s,
            r#"<rect x="{:.2}" y="{sy:.1}" width="{:.2}" height="12" fill="{}"/>"#,
            left + sw * f64::from(k) / 48.0,
            sw / 48.0 + 0.3,
            hex(th.colormap.color(v, lo, hi))
        );
    }
    let _ = write!(
        s,
        r#"<text x="{left}" y="{:.1}" font-family="sans-serif" font-size="11">{}</text><text x="{:.1}" y="{:.1}" font-family="sans-serif" font-size="11" text-anchor="end">{}</text>"#,
        sy + 26.0,
        fmt_tick(lo),
        left + sw,
        sy + 26.0,
        fmt_tick(hi)
    );
    s.push_str("</svg>");
    if is_png(path) {
        let png = raster::svg_to_png(&s, 1.0, path)?;
        write_atomic(path, &png)
    } else {
        write_atomic(path, s.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("seqrnn-heat-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn colormaps_span_their_ends() {
        assert_eq!(Colormap::Sequential.color(0.0, 0.0, 1.0), VIRIDIS[0]);
        assert_eq!(Colormap::Sequential.color(1.0, 0.0, 1.0), VIRIDIS[8]);
        assert_eq!(Colormap::Diverging.color(0.0, -1.0, 1.0), [247, 247, 247]);
        assert_eq!(Colormap::Diverging.color(-5.0, -1.0, 1.0), BLUE_RED[0]);
        assert_eq!(Colormap::Diverging.color(f32::NAN, -1.0, 1.0), [160; 3]);
    }

    #[test]
    fn heatmaps_and_text_pictures_are_written() {
        let d = temp_dir("draw");
        let (t, u) = (30, 12);
        let values: Vec<f32> = (0..t * u).map(|i| (i % 7) as f32 / 6.0).collect();
        let labels: Vec<String> = "To be, or not\nto be: that is the q"
            .chars()
            .map(String::from)
            .take(t)
            .collect();
        let labels: Vec<String> = labels.into_iter().cycle().take(t).collect();
        let h = Heatmap {
            title: "input gate, layer 0",
            values: &values,
            tokens: t,
            units: u,
            labels: &labels,
            range: (0.0, 1.0),
            colormap: Colormap::Sequential,
            value_label: "activation",
            row_labels: &[],
            axes: ("token", "unit"),
        };
        for name in ["h.png", "h.svg"] {
            heatmap(&d.join(name), &h).unwrap();
        }
        let png = std::fs::read(d.join("h.png")).unwrap();
        assert_eq!(&png[..4], b"\x89PNG");
        let svg = std::fs::read_to_string(d.join("h.svg")).unwrap();
        assert_eq!(svg.matches("<rect").count(), t * u + 64 + 2);
        assert!(svg.contains("¶"), "newline shown");
        // Sizes that disagree.
        let bad = Heatmap { tokens: 31, ..h };
        assert!(heatmap(&d.join("bad.png"), &bad).is_err());
        assert!(!d.join("bad.png").exists());

        let th = TextHeat {
            title: "unit 3",
            tokens: &labels,
            values: &values[..t],
            range: (-1.0, 1.0),
            colormap: Colormap::Diverging,
            chars: true,
        };
        text_heat(&d.join("t.png"), &th).unwrap();
        assert_eq!(&std::fs::read(d.join("t.png")).unwrap()[..4], b"\x89PNG");
        text_heat(&d.join("t.svg"), &th).unwrap();
        let svg = std::fs::read_to_string(d.join("t.svg")).unwrap();
        assert!(svg.contains(">T</text>") && svg.contains("monospace"));
        let short = TextHeat {
            values: &values[..3],
            ..th
        };
        assert!(text_heat(&d.join("x.png"), &short).is_err());
    }
}

//! Line charts as SVG or PNG files: the learning curve of a run and a general chart of named
//! series.
//!
//! Charts are drawn with `plotters` into an in-memory SVG and then written atomically: as that
//! SVG, or, when the path ends in `.png`, rendered to PNG by [`super::raster`] with the fonts
//! bundled in the library. Drawing needs no font library: without the `ttf` feature `plotters`
//! uses its built-in "naive" font, which only estimates text sizes for layout, and its SVG
//! backend writes every caption, tick label and legend entry as an SVG `<text>` element that
//! the viewer (or the PNG renderer) draws.
//!
//! Tick positions and labels are chosen here (round numbers; whole numbers for epochs;
//! 1-2-5 steps per decade on a log axis), so they read well in any range.

use std::path::Path;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;

use super::metrics::EpochMetrics;
use super::raster::write_svg_or_png;
use crate::error::{Error, Result};

/// Width of every chart, in pixels.
const WIDTH: u32 = 800;
/// Height of every chart, in pixels.
const HEIGHT: u32 = 500;
/// A series with at most this many points also gets a marker at each point.
const MARKER_LIMIT: usize = 60;
/// Font size passed to `plotters` for legend entries.
const LEGEND_FONT: f64 = 16.0;

/// Series colours (the "tab10" palette), used in turn.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// One named line of a chart: its points as `(x, y)` pairs, drawn in the order given.
///
/// Points with a NaN or infinite coordinate are left out.
#[derive(Clone, Copy, Debug)]
pub struct Series<'a> {
    /// The name shown in the legend.
    pub name: &'a str,
    /// The points of the line.
    pub points: &'a [(f64, f64)],
}

impl<'a> Series<'a> {
    /// The two lines of a learning curve: `train` and `validation`.
    pub fn train_and_valid(train: &'a [(f64, f64)], valid: &'a [(f64, f64)]) -> [Series<'a>; 2] {
        [
            Series {
                name: "train",
                points: train,
            },
            Series {
                name: "validation",
                points: valid,
            },
        ]
    }
}

/// Draws the learning curve of a run to an SVG file at `path` (a PNG file when `path` ends in
/// `.png`): training and validation perplexity against epoch, with `title` (e.g.
/// `"LSTM 2×200 on PTB"`), axis labels and a legend.
///
/// The perplexity axis is logarithmic when all values are positive and span a factor of 3 or
/// more, linear otherwise. Each epoch gets a marker, so a single epoch is visible too.
/// Non-finite perplexities (a diverged epoch) are left out. The file is written atomically.
///
/// # Errors
/// [`Error::Data`] when `rows` is empty ("no epochs to plot") or holds no finite perplexity;
/// [`Error::Io`] when the file cannot be written.
pub fn learning_curve_svg(path: &Path, title: &str, rows: &[EpochMetrics]) -> Result<()> {
    if rows.is_empty() {
        return Err(Error::Data {
            path: path.to_path_buf(),
            message: "no epochs to plot".to_string(),
        });
    }
    let train: Vec<(f64, f64)> = rows.iter().map(|r| (r.epoch as f64, r.train_ppl)).collect();
    let valid: Vec<(f64, f64)> = rows.iter().map(|r| (r.epoch as f64, r.valid_ppl)).collect();
    let series = Series::train_and_valid(&train, &valid);
    let svg = render(&Chart {
        x_integer: true,
        y_log_if_wide: true,
        ..Chart::lines(path, title, ("epoch", "perplexity"), &series)
    })?;
    write_svg_or_png(path, &svg)
}

/// [`learning_curve_svg`] by a name that fits both formats: SVG, or PNG for a `.png` path.
pub use self::learning_curve_svg as learning_curve;

/// Draws several named series of `(x, y)` points as lines on one chart, saved as an SVG file
/// at `path` (a PNG file when `path` ends in `.png`), with `title`, axis labels `x_label` and
/// `y_label`, and a legend of the series names. Both axes are linear.
///
/// Points with a non-finite coordinate are left out; a series with few points gets a marker
/// at each point. An axis whose values are all equal still gets a non-zero range. The legend
/// goes into the corner of the plot that the lines cross least. The file is written atomically.
///
/// # Errors
/// [`Error::Data`] when no series has a finite point; [`Error::Io`] when the file cannot be
/// written.
pub fn line_chart_svg(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series<'_>],
) -> Result<()> {
    let svg = render(&Chart::lines(path, title, (x_label, y_label), series))?;
    write_svg_or_png(path, &svg)
}

/// [`line_chart_svg`] by a name that fits both formats: SVG, or PNG for a `.png` path.
pub use self::line_chart_svg as line_chart;

/// Everything [`render`] needs to know about a chart.
struct Chart<'c> {
    /// The output file, for error messages.
    path: &'c Path,
    title: &'c str,
    x_label: &'c str,
    y_label: &'c str,
    series: &'c [Series<'c>],
    /// Ticks on the x axis only at whole numbers (epochs).
    x_integer: bool,
    /// Use a log y axis when all y are positive and span a factor of 3 or more.
    y_log_if_wide: bool,
}

impl<'c> Chart<'c> {
    /// Lines on linear axes labelled `(x, y)`.
    fn lines(
        path: &'c Path,
        title: &'c str,
        (x_label, y_label): (&'c str, &'c str),
        series: &'c [Series<'c>],
    ) -> Self {
        Chart {
            path,
            title,
            x_label,
            y_label,
            series,
            x_integer: false,
            y_log_if_wide: false,
        }
    }
}

/// One axis: the drawn range and the ticks, all in plotted (possibly log) coordinates.
///
/// It is also the `plotters` coordinate of that axis: linear in plotted coordinates, with
/// exactly these ticks as its key points.
#[derive(Clone, Debug)]
struct Axis {
    lo: f64,
    hi: f64,
    /// Tick positions and the labels shown for them.
    ticks: Vec<(f64, String)>,
    /// Plotted values are natural logarithms of the data.
    log: bool,
}

impl Axis {
    /// Maps a data value to plotted coordinates.
    fn to_plot(&self, v: f64) -> f64 {
        if self.log {
            v.ln()
        } else {
            v
        }
    }

    /// Position of a plotted value within the drawn range, 0 at `lo` and 1 at `hi`.
    fn fraction(&self, p: f64) -> f64 {
        (p - self.lo) / (self.hi - self.lo)
    }

    /// The label of the tick at plotted position `p`.
    fn label(&self, p: f64) -> String {
        self.ticks
            .iter()
            .find(|(t, _)| *t == p)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| format_value(p, 0.0))
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let f = self.fraction(*value);
        let px = f64::from(limit.0) + f * f64::from(limit.1 - limit.0);
        // Keep far-off values representable; the plotting area clips them.
        px.round().clamp(-1e6, 1e6) as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.iter().map(|t| t.0).collect()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// Draws the chart into an SVG string.
fn render(chart: &Chart<'_>) -> Result<String> {
    let data_err = |message: &str| Error::Data {
        path: chart.path.to_path_buf(),
        message: message.to_string(),
    };
    if chart.series.is_empty() {
        return Err(data_err("no series to plot"));
    }
    let finite: Vec<Vec<(f64, f64)>> = chart
        .series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect()
        })
        .collect();
    let xs: Vec<f64> = finite.iter().flatten().map(|p| p.0).collect();
    let ys: Vec<f64> = finite.iter().flatten().map(|p| p.1).collect();
    if xs.is_empty() {
        return Err(data_err("no finite points to plot"));
    }

    let x_axis = linear_axis(&xs, chart.x_integer, 10, 0.03);
    let (y_min, y_max) = min_max(&ys);
    let y_axis = if chart.y_log_if_wide && y_min > 0.0 && y_max / y_min >= 3.0 {
        log_axis(y_min, y_max)
    } else {
        linear_axis(&ys, false, 8, 0.06)
    };
    let plotted: Vec<Vec<(f64, f64)>> = finite
        .iter()
        .map(|pts| pts.iter().map(|&(x, y)| (x, y_axis.to_plot(y))).collect())
        .collect();

    let y_desc = if y_axis.log {
        format!("{} (log scale)", chart.y_label)
    } else {
        chart.y_label.to_string()
    };

    let mut svg = String::new();
    draw(chart, &x_axis, &y_axis, &y_desc, &plotted, &mut svg).map_err(|e| Error::Io {
        path: chart.path.to_path_buf(),
        cause: std::io::Error::other(format!("could not draw the chart: {e}")),
    })?;
    Ok(svg)
}

/// The `plotters` part of [`render`]: draws axes, lines, markers and legend into `svg`.
fn draw(
    chart: &Chart<'_>,
    x_axis: &Axis,
    y_axis: &Axis,
    y_desc: &str,
    plotted: &[Vec<(f64, f64)>],
    svg: &mut String,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;

    let y_label_width = y_axis
        .ticks
        .iter()
        .map(|t| t.1.chars().count())
        .max()
        .unwrap_or(1) as u32;

    let mut ctx = ChartBuilder::on(&root)
        .caption(chart.title, ("sans-serif", 26))
        .margin(16)
        .margin_right(28)
        .x_label_area_size(50)
        .y_label_area_size(40 + 9 * y_label_width)
        .build_cartesian_2d(x_axis.clone(), y_axis.clone())?;

    let x_fmt = |v: &f64| x_axis.label(*v);
    let y_fmt = |v: &f64| y_axis.label(*v);
    ctx.configure_mesh()
        .x_desc(chart.x_label)
        .y_desc(y_desc)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .bold_line_style(BLACK.mix(0.12))
        .axis_style(BLACK.mix(0.8))
        .draw()?;

    let mut named = 0;
    for (i, (series, points)) in chart.series.iter().zip(plotted).enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let line = ctx.draw_series(LineSeries::new(
            points.iter().copied(),
            color.stroke_width(2),
        ))?;
        if !series.name.is_empty() {
            named += 1;
            line.label(series.name).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
        }
        if points.len() <= MARKER_LIMIT {
            ctx.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
        }
    }

    if named > 0 {
        let (w, h) = ctx.plotting_area().dim_in_pixel();
        let corner = legend_corner(chart.series, plotted, x_axis, y_axis, (w, h));
        ctx.configure_series_labels()
            .position(corner)
            .margin(10)
            .legend_area_size(30)
            .label_font(("sans-serif", LEGEND_FONT))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.5))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// Picks the corner of the plotting area (`w` × `h` pixels) whose legend box the lines cross
/// least, preferring upper right, then upper left, lower right and lower left on ties.
fn legend_corner(
    series: &[Series<'_>],
    plotted: &[Vec<(f64, f64)>],
    x_axis: &Axis,
    y_axis: &Axis,
    (w, h): (u32, u32),
) -> SeriesLabelPosition {
    // The legend box as `plotters` lays it out with its naive font: 0.7 em per byte of text,
    // a 30 px sample area, 10 px margins, and a line height of about 1.25 em; plus its 5 px
    // offset from the plot border and a little slack.
    let em = LEGEND_FONT / 1.24 / 1.24;
    let longest = series.iter().map(|s| s.name.len()).max().unwrap_or(0) as f64;
    let named = series.iter().filter(|s| !s.name.is_empty()).count() as f64;
    let box_w = (em * 0.7 * longest + 30.0 + 20.0 + 15.0) / f64::from(w.max(1));
    let box_h = (named * em * 1.6 + 20.0 + 15.0) / f64::from(h.max(1));

    // Sample each line densely, in fractions of the plot (y up), and count hits per corner.
    let mut hits = [0usize; 4]; // upper right, upper left, lower right, lower left
    let mut count = |fx: f64, fy: f64| {
        let right = fx >= 1.0 - box_w;
        let left = fx <= box_w;
        let upper = fy >= 1.0 - box_h;
        let lower = fy <= box_h;
        hits[0] += usize::from(upper && right);
        hits[1] += usize::from(upper && left);
        hits[2] += usize::from(lower && right);
        hits[3] += usize::from(lower && left);
    };
    for pts in plotted {
        for (k, &(x, y)) in pts.iter().enumerate() {
            let (fx, fy) = (x_axis.fraction(x), y_axis.fraction(y));
            // Markers weigh more than line samples.
            for _ in 0..8 {
                count(fx, fy);
            }
            if let Some(&(x1, y1)) = pts.get(k + 1) {
                let (gx, gy) = (x_axis.fraction(x1), y_axis.fraction(y1));
                for s in 1..32 {
                    let t = f64::from(s) / 32.0;
                    count(fx + (gx - fx) * t, fy + (gy - fy) * t);
                }
            }
        }
    }
    let best = (0..4).min_by_key(|&i| hits[i]).unwrap_or(0);
    [
        SeriesLabelPosition::UpperRight,
        SeriesLabelPosition::UpperLeft,
        SeriesLabelPosition::LowerRight,
        SeriesLabelPosition::LowerLeft,
    ][best]
        .clone()
}

/// Smallest and largest of non-empty finite `v`.
fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// A linear axis over the finite values `v` (not empty): padded by `pad` of the span on
/// each side, widened when all values are equal, with about `target` round-numbered ticks.
fn linear_axis(v: &[f64], integer: bool, target: usize, pad: f64) -> Axis {
    let (mut lo, mut hi) = min_max(v);
    if hi - lo <= f64::EPSILON * lo.abs().max(hi.abs()).max(f64::MIN_POSITIVE) {
        let d = if integer {
            0.5
        } else if lo == 0.0 {
            1.0
        } else {
            lo.abs() * 0.1
        };
        lo -= d;
        hi += d;
    } else {
        let d = (hi - lo) * pad;
        lo -= d;
        hi += d;
    }
    // Huge magnitudes could overflow the span; keep it finite.
    if !(hi - lo).is_finite() {
        lo /= 2.0;
        hi /= 2.0;
    }
    let mut step = nice_step((hi - lo) / target as f64);
    if integer {
        step = step.max(1.0);
    }
    // Tolerate rounding in the divisions: 0.7 / 0.1 is 6.999999999999999.
    let first = (lo / step - 1e-9).ceil();
    let last = (hi / step + 1e-9).floor();
    let count = if last >= first {
        ((last - first) as usize + 1).min(100)
    } else {
        0
    };
    let ticks = (0..count)
        .map(|k| {
            // Keep ticks inside the range; a tiny overshoot is rounding.
            let t = ((first + k as f64) * step).clamp(lo, hi);
            let t = if t.abs() < step * 1e-9 { 0.0 } else { t };
            (t, format_value(t, step))
        })
        .collect();
    Axis {
        lo,
        hi,
        ticks,
        log: false,
    }
}

/// A log axis from `min` to `max` (both positive): ticks at 1, 2 and 5 per decade, or finer
/// (1.5, 3, 4, …) for a short range, or only some powers of ten for a very long one.
fn log_axis(min: f64, max: f64) -> Axis {
    let (lmin, lmax) = (min.ln(), max.ln());
    let pad = (lmax - lmin) * 0.06;
    let (lo, hi) = (lmin - pad, lmax + pad);
    let (vlo, vhi) = (lo.exp(), hi.exp());
    let d0 = vlo.log10().floor() as i32;
    let d1 = vhi.log10().ceil() as i32;
    let candidates = |mantissas: &[f64], every: i32| -> Vec<f64> {
        let mut out = Vec::new();
        for d in d0..=d1 {
            if (d - d0) % every != 0 {
                continue;
            }
            for &m in mantissas {
                let v = m * 10f64.powi(d);
                if v >= vlo && v <= vhi {
                    out.push(v);
                }
            }
        }
        out
    };
    // Finer and finer mantissas until there are enough ticks for a short range.
    let levels: [&[f64]; 3] = [
        &[1.0, 2.0, 5.0],
        &[1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        &[1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
    ];
    let mut values = Vec::new();
    for mantissas in levels {
        values = candidates(mantissas, 1);
        if values.len() >= 4 {
            break;
        }
    }
    if values.len() > 10 {
        let decades = (d1 - d0 + 1).max(1);
        values = candidates(&[1.0], (decades + 7) / 8);
    }
    let ticks = values
        .into_iter()
        .map(|v| {
            // One digit after the leading one, so 1.5 and 2.5 keep their fraction.
            let step = 10f64.powf(v.log10().floor() - 1.0);
            (v.ln(), format_value(v, step))
        })
        .collect();
    Axis {
        lo,
        hi,
        ticks,
        log: true,
    }
}

/// A round step (1, 2 or 5 times a power of ten) no smaller than `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    let f = raw / p;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * p
}

/// Formats a tick value `v` on a grid of spacing `step` (0: unknown) with just enough digits;
/// very large or small magnitudes in scientific notation like `2.5e8`.
fn format_value(v: f64, step: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let mag = v.abs();
    if !(1e-4..1e6).contains(&mag) {
        let digits = if step > 0.0 {
            (mag.log10().floor() - step.log10().floor()).clamp(0.0, 6.0) as usize
        } else {
            3
        };
        let s = format!("{v:.digits$e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.trim_end_matches('0').trim_end_matches('.')
        } else {
            mantissa
        };
        return format!("{mantissa}e{exp}");
    }
    let decimals = if step > 0.0 {
        (-step.log10().floor()).clamp(0.0, 10.0) as usize
    } else {
        3
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn temp_dir() -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("seqrnn-plot-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A plausible PTB learning curve of `n` epochs.
    fn rows(n: usize) -> Vec<EpochMetrics> {
        (1..=n)
            .map(|e| {
                let t = e as f64;
                EpochMetrics {
                    epoch: e,
                    lr: if e > 4 {
                        0.5f64.powi(e as i32 - 4)
                    } else {
                        1.0
                    },
                    train_ppl: 60.0 + 220.0 / t,
                    valid_ppl: 110.0 + 80.0 / t,
                    tokens_per_s: 50_000.0,
                    seconds: 20.0,
                    tokens_seen: 929_589 * e as u64,
                }
            })
            .collect()
    }

    fn check_svg(text: &str) {
        let head = text.trim_start();
        assert!(
            head.starts_with("<svg") || head.starts_with("<?xml"),
            "{head:.80}"
        );
        assert!(text.trim_end().ends_with("</svg>"));
        // Tags balance: every opened element is closed.
        let opens = text.matches("<text").count();
        assert_eq!(opens, text.matches("</text>").count());
        assert!(opens > 5, "expected text elements");
    }

    fn no_tmp_left(dir: &Path) {
        for e in std::fs::read_dir(dir).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            assert!(!name.ends_with(".tmp"), "{name}");
        }
    }

    /// The learning curve of `epochs` epochs of [`rows`] written as `file` in a new folder,
    /// checked with [`check_svg`]: the folder and the SVG text.
    fn curve_svg(file: &str, title: &str, epochs: usize) -> (PathBuf, String) {
        let dir = temp_dir();
        let path = dir.join(file);
        learning_curve_svg(&path, title, &rows(epochs)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        check_svg(&text);
        (dir, text)
    }

    #[test]
    fn learning_curve_of_13_epochs() {
        let (dir, text) = curve_svg("curve.svg", "LSTM 2×200 on PTB & <test>", 13);
        assert!(text.contains("LSTM 2×200 on PTB &amp; &lt;test&gt;"));
        assert!(
            text.contains(">\ntrain\n<") || text.contains(">train<"),
            "legend"
        );
        assert!(text.contains("validation"));
        assert!(text.contains("epoch"));
        assert!(text.contains("perplexity (log scale)"));
        assert!(text.contains("polyline"));
        // Epoch ticks are whole numbers.
        assert!(!text.contains(">\n2.5\n<"));
        no_tmp_left(&dir);
    }

    #[test]
    fn learning_curve_of_one_epoch_has_markers() {
        let (_, text) = curve_svg("one.svg", "one epoch", 1);
        assert!(text.contains("one epoch"));
        assert!(text.contains("train") && text.contains("validation"));
        assert!(
            text.matches("<circle").count() >= 2,
            "markers for one epoch"
        );
    }

    #[test]
    fn no_epochs_is_an_error() {
        let dir = temp_dir();
        let path = dir.join("none.svg");
        match learning_curve_svg(&path, "empty", &[]).unwrap_err() {
            Error::Data { message, .. } => assert_eq!(message, "no epochs to plot"),
            other => panic!("expected Error::Data, got {other:?}"),
        }
        assert!(!path.exists());
    }

    #[test]
    fn non_finite_points_are_skipped() {
        let dir = temp_dir();
        let path = dir.join("nan.svg");
        let mut r = rows(5);
        r[2].valid_ppl = f64::NAN;
        r[3].train_ppl = f64::INFINITY;
        learning_curve_svg(&path, "diverged", &r).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        check_svg(&text);
        assert!(!text.contains("NaN") && !text.contains("inf"));
        // 5 + 5 points, 2 of them skipped.
        assert_eq!(text.matches("<circle").count(), 8);

        let pts = [
            (0.0, f64::NAN),
            (1.0, 2.0),
            (f64::NEG_INFINITY, 1.0),
            (2.0, 3.0),
        ];
        let path = dir.join("general.svg");
        line_chart_svg(
            &path,
            "general",
            "x",
            "y",
            &[Series {
                name: "s",
                points: &pts,
            }],
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("<circle").count(), 2);

        let bad = [(f64::NAN, 1.0)];
        let err = line_chart_svg(
            &path,
            "t",
            "x",
            "y",
            &[Series {
                name: "s",
                points: &bad,
            }],
        )
        .unwrap_err();
        assert!(matches!(err, Error::Data { .. }), "{err:?}");
        let err = line_chart_svg(&path, "t", "x", "y", &[]).unwrap_err();
        assert!(matches!(err, Error::Data { .. }), "{err:?}");
    }

    #[test]
    fn png_paths_give_png_files() {
        let dir = temp_dir();
        let path = dir.join("curve.png");
        learning_curve(&path, "LSTM 2×200", &rows(13)).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        // 800 × 500 pixels.
        assert_eq!(&bytes[16..24], &[0, 0, 3, 32, 0, 0, 1, 244]);
        let a = [(0.0, 1.0), (1.0, 2.0)];
        let path = dir.join("Chart.PNG");
        line_chart(
            &path,
            "t",
            "x",
            "y",
            &[Series {
                name: "s",
                points: &a,
            }],
        )
        .unwrap();
        assert_eq!(&std::fs::read(&path).unwrap()[..4], b"\x89PNG");
        // Errors are the same as for SVG, and nothing is written.
        let empty = dir.join("none.png");
        assert!(learning_curve(&empty, "t", &[]).is_err());
        assert!(!empty.exists());
        no_tmp_left(&dir);
    }

    #[test]
    fn identical_values_get_a_range() {
        let dir = temp_dir();
        let path = dir.join("flat.svg");
        let a = [(1.0, 5.0), (2.0, 5.0), (3.0, 5.0)];
        let b = [(7.0, 0.0)];
        line_chart_svg(
            &path,
            "flat lines",
            "step",
            "value",
            &[
                Series {
                    name: "five",
                    points: &a,
                },
                Series {
                    name: "zero",
                    points: &b,
                },
            ],
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        check_svg(&text);
        for s in ["flat lines", "step", "value", "five", "zero"] {
            assert!(text.contains(s), "{s}");
        }

        for v in [[0.0], [5.0], [-3.0], [1e300]] {
            let ax = linear_axis(&v, false, 8, 0.06);
            assert!(ax.hi > ax.lo && ax.lo <= v[0] && ax.hi >= v[0], "{v:?}");
            assert!(!ax.ticks.is_empty(), "{v:?}");
        }
        let ax = linear_axis(&[3.0], true, 10, 0.03);
        assert!(ax.ticks.iter().any(|t| t.1 == "3"));
    }

    #[test]
    fn tick_labels_are_round() {
        let ax = linear_axis(&[0.1, 0.7], false, 8, 0.0);
        let labels: Vec<&str> = ax.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7"]);
        let ax = linear_axis(&[0.0, 4e8], false, 8, 0.0);
        assert!(ax.ticks.iter().any(|t| t.1 == "2e8"), "{:?}", ax.ticks);
        let ax = log_axis(50.0, 900.0);
        let labels: Vec<&str> = ax.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["50", "100", "200", "500", "1000"]);
        let ax = log_axis(75.0, 280.0);
        let labels: Vec<&str> = ax.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["70", "80", "90", "100", "150", "200", "300"]);
        let ax = log_axis(1.1, 3.5);
        let labels: Vec<&str> = ax.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["1.2", "1.5", "2", "2.5", "3"]);
        assert_eq!(format_value(0.30000000000000004, 0.1), "0.3");
        assert_eq!(format_value(1500.0, 500.0), "1500");
    }
}

//! Training records: per-epoch metrics files and learning-curve plots.
//!
//! - [`bleu`]: corpus BLEU and chrF as sacreBLEU computes them (translation);
//! - [`wer`]: word and character error rates as `jiwer` computes them (speech recognition);
//! - [`metrics`]: the `metrics.csv` of a run, one [`EpochMetrics`] row per finished epoch,
//!   written with [`write_metrics`] and read back with [`read_metrics`];
//! - [`plot`]: charts, the learning curve of one run ([`learning_curve_svg`]) and the
//!   general line chart used for comparisons ([`line_chart_svg`]); SVG, or PNG when the path
//!   ends in `.png`;
//! - [`raster`]: the PNG renderer behind them (SVG drawn by `resvg` with bundled fonts);
//! - [`heatmap`]: heatmaps of activations and text shaded by one unit (`seqrnn inspect`).
//!
//! Reports about one task's runs live with the task (`tasks::lm::compare`,
//! `tasks::lm::inspect_report`, `tasks::tag::entities`).
//!
//! Everything but [`bleu`], [`wer`] and [`metrics`] needs the `plots` feature (on by default).
//!
//! Every file is written atomically (see [`crate::io::write_atomic`]).

pub mod bleu;
#[cfg(feature = "plots")]
pub mod heatmap;
pub mod metrics;
#[cfg(feature = "plots")]
pub mod plot;
#[cfg(feature = "plots")]
pub mod raster;
pub mod wer;

pub use metrics::{read_metrics, write_metrics, EpochMetrics, METRICS_HEADER};
#[cfg(feature = "plots")]
pub use plot::{learning_curve, learning_curve_svg, line_chart, line_chart_svg, Series};

use crate::io::write_atomic;

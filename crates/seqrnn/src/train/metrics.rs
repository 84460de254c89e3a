//! The run's `metrics.csv` from the loop's rows ([`FitEpoch`]): the supervised form
//! ([`write_fit_metrics`]) and the perplexity form of token models
//! ([`write_perplexity_metrics`], [`epoch_metrics`]).

use std::fmt::Write as _;
use std::path::Path;

use crate::error::Result;
use crate::io::write_atomic;
use crate::report::metrics::{write_metrics, EpochMetrics};
use crate::run::RunDir;
use crate::train::checkpoint::FitEpoch;

/// Writes `metrics.csv`: header `epoch,lr,train_loss,valid_loss,valid_<score_name>,
/// examples_per_s,seconds,step,epoch_end` and one line per validation (shortest round-trip
/// floats; `epoch_end` is 1 for the validation that closed its epoch, 0 inside it), atomically.
pub fn write_fit_metrics(path: &Path, score_name: &str, rows: &[FitEpoch]) -> Result<()> {
    let mut text = format!(
        "epoch,lr,train_loss,valid_loss,valid_{score_name},examples_per_s,seconds,step,epoch_end\n"
    );
    for r in rows {
        let _ = writeln!(
            text,
            "{},{},{},{},{},{},{},{},{}",
            r.epoch,
            r.lr,
            r.train_loss,
            r.valid_loss,
            r.valid_score,
            r.examples_per_s,
            r.seconds,
            r.step,
            u8::from(r.epoch_end)
        );
    }
    write_atomic(path, text.as_bytes())
}

/// A language model's `metrics.csv` row from the loop's.
pub fn epoch_metrics(r: &FitEpoch) -> EpochMetrics {
    EpochMetrics {
        epoch: r.epoch,
        lr: r.lr,
        train_ppl: r.train_loss.exp(),
        valid_ppl: -r.valid_score,
        tokens_per_s: r.examples_per_s,
        seconds: r.seconds,
        tokens_seen: r.examples_seen,
    }
}

/// Writes a token model's `metrics.csv` (perplexities, [`epoch_metrics`]) into `run` and, with
/// the `plots` feature, its learning curve headed `title`.
pub fn write_perplexity_metrics(run: &RunDir, title: &str, rows: &[FitEpoch]) -> Result<()> {
    let rows: Vec<EpochMetrics> = rows.iter().map(epoch_metrics).collect();
    write_metrics(&run.metrics_path(), &rows)?;
    #[cfg(feature = "plots")]
    crate::report::plot::learning_curve_svg(&run.curve_path(), title, &rows)?;
    #[cfg(not(feature = "plots"))]
    let _ = title;
    Ok(())
}

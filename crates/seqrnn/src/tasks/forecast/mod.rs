//! Time-series forecasting: column selection (Informer's `M`, `S`, `MS` settings), chronological
//! splits, standardisation with training statistics, sliding windows, the training task for the
//! shared loop ([`crate::train::fit()`]) and evaluation with the persistence baseline.
//!
//! A window starting at row `s` feeds rows `s .. s+L` (all input columns, standardised) and
//! predicts rows `s+L .. s+L+K` of the target columns. A split `[lo, hi)` holds the windows whose
//! rows all fall inside it; validation and test splits start `L` rows before their first target
//! row, so every target row of the split is predicted (Informer's convention).

pub mod export;
pub mod model;
mod trained;
pub use trained::{Forecast, Trained};
mod config;
pub use config::{ForecastRunConfig, ForecastRunData, ForecastTrainConfig};
mod prepare;
pub use prepare::{Anchor, ColumnSpec, Mode, Scaler, Series, Split, SplitRanges};

use std::ops::Range;
use std::path::Path;

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::data::table::Table;
use crate::dist::{fingerprint_f32, Group};
use crate::dropout::SeqRng;
use crate::error::{Error, Result};
use crate::tasks::forecast::model::{ForecastCache, ForecastWorkspace, Forecaster};
use crate::train::task::{
    batch_at, validation_share, About, BatchLoss, Identity, LossAverage, Step, Task, Validation,
    Weights, MODEL_PART,
};

/// Error figures of a set of windows, over every target column and horizon step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ForecastMetrics {
    /// Windows evaluated.
    pub windows: usize,
    /// Mean squared error, standardised scale (the papers' convention).
    pub mse: f64,
    /// Mean absolute error, standardised scale.
    pub mae: f64,
    /// Mean squared error in the original units.
    pub mse_original: f64,
    /// Mean absolute error in the original units.
    pub mae_original: f64,
    /// Persistence baseline (repeat the last input value), standardised MSE.
    pub persistence_mse: f64,
    /// Persistence baseline, standardised MAE.
    pub persistence_mae: f64,
    /// Persistence baseline, MSE in the original units.
    pub persistence_mse_original: f64,
    /// Persistence baseline, MAE in the original units.
    pub persistence_mae_original: f64,
}

/// Windows per inference batch in evaluation.
pub const EVAL_BATCH: usize = 256;

/// Forecasts every window starting at `starts` and compares with the truth and the persistence
/// baseline. `scaler` is the spec's (target `j` is input `series.targets[j]`).
pub fn evaluate(
    model: &Forecaster,
    params: &[f32],
    series: &Series,
    scaler: &Scaler,
    starts: &[usize],
) -> Result<ForecastMetrics> {
    let cfg = *model.config();
    let (l, k, c) = (cfg.lookback, cfg.horizon, series.targets.len());
    let mut m = ForecastMetrics {
        windows: starts.len(),
        ..ForecastMetrics::default()
    };
    predict_windows(model, params, series, starts, |chunk, out, y| {
        for (r, &s) in chunk.iter().enumerate() {
            for step in 0..k {
                for (j, &col) in series.targets.iter().enumerate() {
                    let idx = (r * k + step) * c + j;
                    let a = series.anchor_value(s, l, col);
                    let (p, t) = ((out[idx] + a) as f64, (y[idx] + a) as f64);
                    let last = series.z[(s + l - 1) * series.inputs + col] as f64;
                    let sd = scaler.std[col];
                    m.mse += (p - t).powi(2);
                    m.mae += (p - t).abs();
                    m.mse_original += ((p - t) * sd).powi(2);
                    m.mae_original += ((p - t) * sd).abs();
                    m.persistence_mse += (last - t).powi(2);
                    m.persistence_mae += (last - t).abs();
                    m.persistence_mse_original += ((last - t) * sd).powi(2);
                    m.persistence_mae_original += ((last - t) * sd).abs();
                }
            }
        }
    })?;
    let n = (starts.len() * k * c).max(1) as f64;
    for v in [
        &mut m.mse,
        &mut m.mae,
        &mut m.mse_original,
        &mut m.mae_original,
        &mut m.persistence_mse,
        &mut m.persistence_mae,
        &mut m.persistence_mse_original,
        &mut m.persistence_mae_original,
    ] {
        *v /= n;
    }
    Ok(m)
}

/// Runs `model` over the windows starting at `starts`, [`EVAL_BATCH`] at a time, and hands each
/// batch to `each` with its starts, the predictions `out[b, K, C]` and the truths `y[b, K, C]`
/// (standardised, relative to the anchor).
fn predict_windows(
    model: &Forecaster,
    params: &[f32],
    series: &Series,
    starts: &[usize],
    mut each: impl FnMut(&[usize], &[f32], &[f32]),
) -> Result<()> {
    let cfg = *model.config();
    let (l, k, c) = (cfg.lookback, cfg.horizon, series.targets.len());
    let mut ws = ForecastWorkspace::default();
    let (mut x, mut y, mut out) = (Vec::new(), Vec::new(), Vec::new());
    for chunk in starts.chunks(EVAL_BATCH) {
        let b = chunk.len();
        x.resize(l * b * series.inputs, 0.0);
        y.resize(b * k * c, 0.0);
        out.resize(b * k * c, 0.0);
        series.gather(chunk, l, k, &mut x, &mut y);
        model.predict(params, &x, b, &mut out, &mut ws)?;
        each(chunk, &out, &y);
    }
    Ok(())
}

/// Forecasts for the windows starting at `starts`, in the original units: `[N, K, C]`.
pub fn forecast_original(
    model: &Forecaster,
    params: &[f32],
    series: &Series,
    scaler: &Scaler,
    starts: &[usize],
) -> Result<Vec<f64>> {
    let cfg = *model.config();
    let (l, k, c) = (cfg.lookback, cfg.horizon, series.targets.len());
    let mut all = Vec::with_capacity(starts.len() * k * c);
    predict_windows(model, params, series, starts, |chunk, out, _| {
        for (idx, v) in out.iter().enumerate() {
            let col = series.targets[idx % c];
            let a = series.anchor_value(chunk[idx / (k * c)], l, col);
            all.push(scaler.undo(col, (*v + a) as f64));
        }
    })?;
    Ok(all)
}

/// The forecasting task for the shared loop: shuffled training windows in batches, validation
/// by standardised MSE (score = −MSE).
pub struct ForecastTask<'a> {
    model: &'a Forecaster,
    /// The step's input windows `x[L, B, F]` and targets `y[B, K, C]`.
    x: Vec<f32>,
    y: Vec<f32>,
    cache: ForecastCache,
    ws: ForecastWorkspace,
    series: &'a Series,
    scaler: &'a Scaler,
    /// Window starts of each split (the training ones shuffled every epoch).
    train: Vec<usize>,
    valid: Vec<usize>,
    /// Windows per step.
    batch: usize,
}

impl<'a> ForecastTask<'a> {
    /// A task over the given training and validation window starts, `batch` windows a step.
    ///
    /// # Errors
    /// [`Error::Config`] when either split has no window or `batch` is 0.
    pub fn new(
        model: &'a Forecaster,
        series: &'a Series,
        scaler: &'a Scaler,
        train: Vec<usize>,
        valid: Vec<usize>,
        batch: usize,
    ) -> Result<Self> {
        if batch == 0 {
            return Err(Error::Config("batch size must be at least 1, got 0".into()));
        }
        let cfg = model.config();
        for (name, w) in [("training", &train), ("validation", &valid)] {
            if w.is_empty() {
                return Err(Error::Config(format!(
                    "the {name} split is too short for one window of lookback {} + horizon {}",
                    cfg.lookback, cfg.horizon
                )));
            }
        }
        Ok(ForecastTask {
            model,
            series,
            scaler,
            train,
            valid,
            batch,
            cache: ForecastCache::default(),
            ws: ForecastWorkspace::default(),
            x: Vec::new(),
            y: Vec::new(),
        })
    }
}

impl Task for ForecastTask<'_> {
    fn about(&self) -> About<'_> {
        let weights = Weights::new(self.model.param_layout(), FORECAST_FORMAT, "a forecaster");
        About::new(weights, "neg_mse", LossAverage::PerStep)
    }

    fn batch_size(&self) -> usize {
        self.batch
    }

    /// The model and a fingerprint of the standardised series and the training windows (the
    /// ranks of a data-parallel run must agree on them).
    fn identity(&self) -> Identity {
        // In order: the task shuffles its windows every epoch.
        let mut starts: Vec<f32> = self.train.iter().map(|&s| s as f32).collect();
        starts.sort_by(f32::total_cmp);
        let parts = serde_json::json!({
            "model": self.model.config(),
            "series": format!("{:016x}", fingerprint_f32(&self.series.z)),
            "train_windows": format!("{:016x}", fingerprint_f32(&starts)),
        });
        let series = "the table (or its columns and scaling) is not the one the run was trained on";
        let windows = "the training windows (the split) are not those the run was trained on";
        let meanings = vec![MODEL_PART, ("series", series), ("train_windows", windows)];
        Identity { parts, meanings }
    }

    fn start_epoch(&mut self, _epoch: usize, rng: &mut SeqRng) -> usize {
        self.train.shuffle(rng);
        self.train.len().div_ceil(self.batch)
    }

    fn train_step(&mut self, mut step: Step<'_>) -> Result<BatchLoss> {
        let cfg = *self.model.config();
        let batch = batch_at(&self.train, self.batch, step.index);
        let Some((starts, mut masks)) = step.rows(batch) else {
            return Ok(BatchLoss::NONE);
        };
        let b = starts.len();
        self.x.resize(cfg.lookback * b * self.series.inputs, 0.0);
        self.y.resize(b * cfg.horizon * cfg.outputs, 0.0);
        self.series
            .gather(starts, cfg.lookback, cfg.horizon, &mut self.x, &mut self.y);
        let (params, grads) = (step.params, step.grads);
        let loss =
            self.model
                .forward_train(params, &self.x, &self.y, b, &mut self.cache, &mut masks)?;
        self.model
            .backward(params, grads, &self.cache, &mut self.ws)?;
        // The model's loss and gradient are means over this rank's windows; the step's are over
        // the whole batch's.
        Ok(BatchLoss::share_of_mean(loss, grads, b, batch.len()))
    }

    /// Each rank scores its share of the validation windows; the squared errors are summed.
    fn validate(&mut self, params: &[f32], group: &Group) -> Result<Validation> {
        let n = self.valid.len();
        let mse = match validation_share(group, n) {
            None => evaluate(self.model, params, self.series, self.scaler, &self.valid)?.mse,
            Some(part) => {
                let part = &self.valid[part];
                let m = evaluate(self.model, params, self.series, self.scaler, part)?;
                let mut sums = [m.mse * part.len() as f64];
                group.sum_f64(&mut sums);
                sums[0] / n as f64
            }
        };
        Ok(Validation {
            loss: mse,
            score: -mse,
        })
    }
}

/// `format` metadata of a forecaster's weights file.
pub const FORECAST_FORMAT: &str = "seqrnn-forecast";

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn table() -> Table {
        table_with(|r| 10.0 - 2.0 * r)
    }

    /// Rows 0..20 of columns `a = r` and `b = f(r)`.
    fn table_with(b: impl Fn(f32) -> f32) -> Table {
        let mut text = String::from("date,a,b\n");
        for r in 0..20 {
            text += &format!("d{r},{},{}\n", r as f32, b(r as f32));
        }
        Table::parse(&text, Path::new("t.csv")).unwrap()
    }

    #[test]
    fn a_run_resumed_on_another_table_is_refused() {
        let model = Forecaster::new(crate::tasks::forecast::model::ForecasterConfig {
            lookback: 3,
            horizon: 2,
            hidden: 2,
            ..Default::default()
        })
        .unwrap();
        let tables = [table(), table_with(|r| (r * r) % 7.0)];
        let [first, other] = tables.map(|t| {
            let spec = ColumnSpec::choose(&t, Mode::S, None, None, None, 0..10).unwrap();
            (Series::new(&t, &spec).unwrap(), spec.scaler)
        });
        fn task<'a>(m: &'a Forecaster, (series, scaler): &'a (Series, Scaler)) -> ForecastTask<'a> {
            let windows = |r| Series::windows(r, 3, 2);
            ForecastTask::new(m, series, scaler, windows(0..10), windows(8..20), 2).unwrap()
        }
        let err = crate::train::fit::resume_refusal(
            "forecast",
            &mut task(&model, &first),
            &mut task(&model, &other),
            &model.init_params(1).unwrap(),
        );
        assert!(err.contains("cannot resume: the table"), "{err}");
    }

    #[test]
    fn splits_parse_and_place_windows() {
        assert_eq!("informer".parse::<Split>().unwrap(), Split::Informer);
        assert_eq!("10,4,6".parse::<Split>().unwrap(), Split::Rows([10, 4, 6]));
        let f: Split = "0.5,0.25,0.25".parse().unwrap();
        let r = f.ranges(20, 3).unwrap();
        assert_eq!(
            r,
            SplitRanges {
                train: 0..10,
                valid: 7..15,
                test: 12..20
            }
        );
        let r = Split::Informer.ranges(17_420, 96).unwrap();
        assert_eq!(r.valid, 8544..11520);
        assert_eq!(r.test, 11424..14400);
        for bad in ["", "1,2", "0.5,0.6,0.1", "a,b,c", "0,1,1"] {
            assert!(bad.parse::<Split>().is_err(), "{bad}");
        }
        assert!(Split::Informer.ranges(1000, 96).is_err());
        // Windows whose rows stay inside the range.
        assert_eq!(Series::windows(12..20, 3, 2), vec![12, 13, 14, 15]);
        assert!(Series::windows(0..4, 3, 2).is_empty());
    }

    #[test]
    fn standardisation_round_trip_uses_training_rows_only() {
        let t = table();
        let spec = ColumnSpec::choose(&t, Mode::M, None, None, None, 0..10).unwrap();
        assert_eq!(spec.inputs, ["a", "b"]);
        assert_eq!(spec.date_column.as_deref(), Some("date"));
        // Training rows 0..10 of `a`: mean 4.5, population std √8.25.
        assert!((spec.scaler.mean[0] - 4.5).abs() < 1e-12);
        assert!((spec.scaler.std[0] - 8.25f64.sqrt()).abs() < 1e-12);
        let s = Series::new(&t, &spec).unwrap();
        for r in 0..20 {
            for k in 0..2 {
                let back = spec.scaler.undo(k, s.z[r * 2 + k] as f64);
                assert!((back - t.get(r, k) as f64).abs() < 1e-5);
            }
        }
        let ms = ColumnSpec::choose(&t, Mode::MS, None, Some(&["a".into()]), None, 0..10).unwrap();
        assert_eq!((ms.inputs.len(), ms.target_index()), (2, vec![0]));
        let us = ColumnSpec::choose(&t, Mode::S, None, None, None, 0..10).unwrap();
        assert_eq!(
            (us.inputs.clone(), us.targets.clone()),
            (vec!["b".to_string()], vec!["b".to_string()])
        );
        assert!(ColumnSpec::choose(&t, Mode::M, None, Some(&["z".into()]), None, 0..10).is_err());
        assert!(ColumnSpec::choose(
            &t,
            Mode::MS,
            Some(&["a".into()]),
            Some(&["b".into()]),
            None,
            0..10
        )
        .is_err());
    }

    #[test]
    fn gather_lays_out_windows_and_persistence_is_exact_on_a_constant() {
        let t = table();
        let spec = ColumnSpec::choose(&t, Mode::S, None, Some(&["a".into()]), None, 0..10).unwrap();
        let mut s = Series::new(&t, &spec).unwrap();
        let (mut x, mut y) = (vec![0.0; 3 * 2], vec![0.0; 2 * 2]);
        s.anchor = Anchor::None;
        s.gather(&[0, 5], 3, 2, &mut x, &mut y);
        let z = |r: usize| s.z[r];
        assert_eq!(x, [z(0), z(5), z(1), z(6), z(2), z(7)]);
        assert_eq!(y, [z(3), z(4), z(8), z(9)]);
        // Anchored at each window's last input row.
        s.anchor = Anchor::Last;
        s.gather(&[0, 5], 3, 2, &mut x, &mut y);
        let (a, b) = (z(2), z(7));
        assert_eq!(x, [z(0) - a, z(5) - b, z(1) - a, z(6) - b, 0.0, 0.0]);
        assert_eq!(y, [z(3) - a, z(4) - a, z(8) - b, z(9) - b]);
    }
}

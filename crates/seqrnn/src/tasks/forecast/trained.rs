use super::*;

/// A forecast past the end of a table.
#[derive(Clone, Debug, PartialEq)]
pub struct Forecast {
    /// The last row the forecast starts after: its date, or `row N`.
    pub origin: String,
    /// The forecast columns.
    pub columns: Vec<String>,
    /// `values[step][column]`, in the columns' own units, for steps 1 to the horizon.
    pub values: Vec<Vec<f64>>,
}

impl Forecast {
    /// The forecast as CSV: `origin,step,<columns>`, one line per step.
    pub fn to_csv(&self) -> String {
        use std::fmt::Write as _;
        let mut text = format!("origin,step,{}\n", self.columns.join(","));
        for (step, row) in self.values.iter().enumerate() {
            let _ = write!(text, "{},{}", self.origin, step + 1);
            for v in row {
                let _ = write!(text, ",{v}");
            }
            text.push('\n');
        }
        text
    }
}

/// A trained forecaster, loaded from its run folder (`seqrnn forecast train`), ready to use.
///
/// ```no_run
/// use seqrnn::data::table::Table;
/// let model = seqrnn::forecast::Trained::load("runs/etth1-24")?;
/// let table = Table::load(std::path::Path::new("ETTh1.csv"))?;
/// print!("{}", model.predict(&table)?.to_csv());
/// # Ok::<(), seqrnn::error::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Trained {
    /// The run's configuration (columns, standardisation, model, split).
    pub config: ForecastRunConfig,
    /// The model.
    pub model: Forecaster,
    /// Its best-on-validation weights.
    pub params: crate::model::Weights,
}

impl Trained {
    /// Reads the run in `dir`: configuration and weights.
    ///
    /// # Errors
    /// [`Error::Format`] when the folder is not a forecasting run; [`Error::NoFinishedEpoch`]
    /// for a run stopped before its first epoch ended; I/O errors.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let run = crate::run::RunDir::new(dir.as_ref());
        let config = ForecastRunConfig::load(&run)?;
        let model = Forecaster::new(config.model)?;
        let file = run.load_weights("forecast train")?;
        let params =
            model
                .param_layout()
                .weights_from_file(&file, &run.model_path(), "a forecaster")?;
        Ok(Trained {
            config,
            model,
            params,
        })
    }

    /// Forecasts the horizon after the last row of `table`, from its last `lookback` rows.
    ///
    /// # Errors
    /// [`Error::Config`] when the table is shorter than the lookback or lacks a column the
    /// model reads.
    pub fn predict(&self, table: &Table) -> Result<Forecast> {
        let mut all = self.predict_many(std::slice::from_ref(table))?;
        Ok(all.remove(0))
    }

    /// [`Trained::predict`] for each table, their windows computed as one batch. Each forecast
    /// is the same, to the bit, as the table's alone.
    ///
    /// # Errors
    /// As [`Trained::predict`], for the first table that fails.
    pub fn predict_many(&self, tables: &[Table]) -> Result<Vec<Forecast>> {
        let cfg = *self.model.config();
        let b = tables.len();
        if b == 0 {
            return Ok(Vec::new());
        }
        let columns = &self.config.data.columns;
        let mut series = Vec::with_capacity(b);
        for table in tables {
            if table.rows < cfg.lookback {
                return Err(Error::Config(format!(
                    "the table has {} rows, the model needs the last {} (its lookback)",
                    table.rows, cfg.lookback
                )));
            }
            series.push(Series::new(table, columns)?);
        }
        // x[L, B, I]: each table's last window in its batch row.
        let inputs = series[0].inputs;
        let mut x = vec![0.0; cfg.lookback * b * inputs];
        let mut window = vec![0.0; cfg.lookback * inputs];
        let mut anchors = Vec::with_capacity(b);
        for (r, s) in series.iter().enumerate() {
            anchors.push(s.last_window(cfg.lookback, &mut window));
            for (t, row) in window.chunks_exact(inputs).enumerate() {
                x[(t * b + r) * inputs..(t * b + r + 1) * inputs].copy_from_slice(row);
            }
        }
        let c = columns.targets.len();
        let mut out = vec![0.0; b * cfg.horizon * c];
        self.model
            .predict(&self.params, &x, b, &mut out, &mut Default::default())?;
        let forecasts = tables.iter().zip(&series).zip(&anchors).enumerate();
        Ok(forecasts
            .map(|(r, ((table, s), anchors))| {
                let out = &out[r * cfg.horizon * c..(r + 1) * cfg.horizon * c];
                self.forecast(table, s, anchors, out)
            })
            .collect())
    }

    /// A forecast in the table's units from the model's `out[K, C]` for its window.
    fn forecast(&self, table: &Table, series: &Series, anchors: &[f32], out: &[f32]) -> Forecast {
        let cfg = *self.model.config();
        let columns = &self.config.data.columns;
        let c = columns.targets.len();
        let values = (0..cfg.horizon)
            .map(|step| {
                let row = series.targets.iter().enumerate();
                row.map(|(j, &col)| {
                    columns
                        .scaler
                        .undo(col, (out[step * c + j] + anchors[col]) as f64)
                })
                .collect()
            })
            .collect();
        let origin = columns
            .date_column
            .as_deref()
            .and_then(|d| table.text_column(d))
            .and_then(|v| v.last().cloned())
            .unwrap_or_else(|| format!("row {}", table.rows));
        Forecast {
            origin,
            columns: columns.targets.clone(),
            values,
        }
    }
}

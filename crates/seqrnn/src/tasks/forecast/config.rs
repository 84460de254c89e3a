use super::*;

/// Training settings of a forecasting run beyond the shared loop's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForecastTrainConfig {
    /// Windows per step.
    pub batch: usize,
    /// The shared loop's settings.
    pub fit: crate::train::fit::FitConfig,
}

/// The `config.json` of a forecasting run: everything `eval` and `predict` need besides the
/// weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForecastRunConfig {
    /// Format version ([`crate::run::TASK_FORMAT_VERSION`]).
    pub format: u32,
    /// Always `"forecast"`.
    pub task: String,
    /// Columns and standardisation.
    pub columns: ColumnSpec,
    /// The model.
    pub model: crate::tasks::forecast::model::ForecasterConfig,
    /// The split used in training (the default of `eval`).
    pub split: Split,
    /// Training settings.
    pub train: ForecastTrainConfig,
}

impl ForecastRunConfig {
    /// Task name in `config.json`.
    pub const TASK: &'static str = "forecast";

    /// Writes `config.json` into `run` atomically.
    pub fn save(&self, run: &crate::run::RunDir) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Format {
            path: run.config_path(),
            message: e.to_string(),
        })?;
        crate::io::write_atomic(&run.config_path(), text.as_bytes())
    }

    /// Reads `config.json` of `run`, refusing other kinds of run with a clear message.
    pub fn load(run: &crate::run::RunDir) -> Result<Self> {
        let v = crate::run::load_task_config(run, Self::TASK)?;
        let c: ForecastRunConfig = serde_json::from_value(v).map_err(|e| Error::Format {
            path: run.config_path(),
            message: format!("unreadable forecasting configuration ({e})"),
        })?;
        c.model.validate()?;
        if c.columns.inputs.len() != c.model.inputs
            || c.columns.targets.len() != c.model.outputs
            || c.columns.scaler.mean.len() != c.model.inputs
            || c.columns.scaler.std.len() != c.model.inputs
        {
            return Err(Error::Format {
                path: run.config_path(),
                message: "columns, scaler and model sizes disagree".into(),
            });
        }
        Ok(c)
    }
}

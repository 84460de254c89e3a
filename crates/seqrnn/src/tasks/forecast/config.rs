use std::path::Path;

use super::*;
use crate::run::{RunConfig, RunKind};

/// Training settings of a forecasting run beyond the shared loop's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForecastTrainConfig {
    /// Windows per step.
    pub batch: usize,
    /// The shared loop's settings.
    pub fit: crate::train::fit::FitConfig,
}

/// What a forecasting run keeps of its data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForecastRunData {
    /// Columns and standardisation.
    pub columns: ColumnSpec,
    /// The split used in training (the default of `eval`).
    pub split: Split,
}

/// The `config.json` of a forecasting run: everything `eval` and `predict` need besides the
/// weights.
pub type ForecastRunConfig = RunConfig<
    crate::tasks::forecast::model::ForecasterConfig,
    ForecastTrainConfig,
    ForecastRunData,
>;

impl RunKind for ForecastRunConfig {
    const TASK: &'static str = "forecast";
    const NAME: &'static str = "forecasting";

    /// The model, and the columns and scaler against its sizes.
    fn check(&self, path: &Path) -> Result<()> {
        self.model.validate()?;
        let (c, m) = (&self.data.columns, &self.model);
        if c.inputs.len() != m.inputs
            || c.targets.len() != m.outputs
            || c.scaler.mean.len() != m.inputs
            || c.scaler.std.len() != m.inputs
        {
            return Err(Error::Format {
                path: path.to_path_buf(),
                message: "columns, scaler and model sizes disagree".into(),
            });
        }
        Ok(())
    }
}

use super::*;

/// Training settings of a classification run beyond the shared loop's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifyTrainConfig {
    /// Sequences per step.
    pub batch: usize,
    /// Minimum count of a training word to enter the vocabulary.
    pub min_freq: usize,
    /// Probability of replacing a training token by `<unk>` at each step.
    #[serde(default)]
    pub word_dropout: f32,
    /// The shared loop's settings.
    pub fit: FitConfig,
}

/// The `config.json` of a classification run (`vocab.txt` and `labels.txt` sit beside it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifyRunConfig {
    /// Format version ([`crate::run::TASK_FORMAT_VERSION`]).
    pub format: u32,
    /// Always `"classify"`.
    pub task: String,
    /// The model.
    pub model: ClassifierConfig,
    /// Training settings.
    pub train: ClassifyTrainConfig,
}

impl ClassifyRunConfig {
    /// Task name in `config.json`.
    pub const TASK: &'static str = "classify";

    /// `labels.txt` of a run: one label per line in id order.
    pub fn labels_path(run: &RunDir) -> std::path::PathBuf {
        run.dir.join("labels.txt")
    }

    /// Writes `config.json` into `run` atomically.
    pub fn save(&self, run: &RunDir) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Format {
            path: run.config_path(),
            message: e.to_string(),
        })?;
        crate::io::write_atomic(&run.config_path(), text.as_bytes())
    }

    /// Reads `config.json` of `run`, refusing other kinds of run with a clear message.
    pub fn load(run: &RunDir) -> Result<Self> {
        let v = crate::run::load_task_config(run, Self::TASK)?;
        let c: ClassifyRunConfig = serde_json::from_value(v).map_err(|e| Error::Format {
            path: run.config_path(),
            message: format!("unreadable classification configuration ({e})"),
        })?;
        c.model.validate()?;
        Ok(c)
    }
}

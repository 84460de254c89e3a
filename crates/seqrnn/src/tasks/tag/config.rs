use super::*;

/// Training settings of a tagging run beyond the shared loop's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TagTrainConfig {
    /// Sentences per step.
    pub batch: usize,
    /// Minimum count of a training word (lowercased) to enter the vocabulary.
    pub min_freq: usize,
    /// Probability of replacing a singleton training word by `<unk>` at each step.
    #[serde(default)]
    pub unk_replace: f32,
    /// The training files' scheme (entity tags only).
    pub file_scheme: Option<Scheme>,
    /// The scheme the model is trained in (entity tags only).
    pub train_scheme: Option<Scheme>,
    /// How the files are read.
    pub read: crate::tasks::tag::conll::ReadConfig,
    /// The shared loop's settings.
    pub fit: FitConfig,
}

/// The `config.json` of a tagging run (`words.txt`, `chars.txt`, `labels.txt` beside it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TagRunConfig {
    /// Format version ([`crate::run::TASK_FORMAT_VERSION`]).
    pub format: u32,
    /// Always `"tag"`.
    pub task: String,
    /// The model.
    pub model: crate::tasks::tag::model::TaggerConfig,
    /// Training settings.
    pub train: TagTrainConfig,
}

impl TagRunConfig {
    /// Task name in `config.json`.
    pub const TASK: &'static str = "tag";

    /// A vocabulary file of a run: `words.txt`, `chars.txt` or `labels.txt`.
    pub fn vocab_file(run: &RunDir, name: &str) -> std::path::PathBuf {
        run.dir.join(format!("{name}.txt"))
    }

    /// Writes `config.json` into `run` atomically.
    pub fn save(&self, run: &RunDir) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Format {
            path: run.config_path(),
            message: e.to_string(),
        })?;
        crate::io::write_atomic(&run.config_path(), text.as_bytes())
    }

    /// Reads `config.json` of `run`, refusing other kinds of run.
    pub fn load(run: &RunDir) -> Result<Self> {
        let v = crate::run::load_task_config(run, Self::TASK)?;
        let c: TagRunConfig = serde_json::from_value(v).map_err(|e| Error::Format {
            path: run.config_path(),
            message: format!("unreadable tagging configuration ({e})"),
        })?;
        c.model.validate()?;
        Ok(c)
    }
}

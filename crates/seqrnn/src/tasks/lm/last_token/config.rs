use super::*;

/// Training settings of a last-token run beyond the shared loop's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastTokenTrainConfig {
    /// Window length `N` (words before the predicted one).
    pub window: usize,
    /// Windows per step.
    pub batch: usize,
    /// Windows per evaluation batch.
    pub eval_batch: usize,
    /// Threads the run was started with (results depend on it in the last bits; 0: not
    /// recorded).
    #[serde(default)]
    pub threads: usize,
    /// The shared loop's settings.
    pub fit: FitConfig,
}

/// The `config.json` of a last-token run (`vocab.txt` sits beside it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastTokenRunConfig {
    /// Format version ([`crate::run::TASK_FORMAT_VERSION`]).
    pub format: u32,
    /// Always `"last-token"`.
    pub task: String,
    /// Word or character tokens.
    pub tokens: TokenKindName,
    /// The model.
    pub model: LastTokenConfig,
    /// Training settings.
    pub train: LastTokenTrainConfig,
}

impl LastTokenRunConfig {
    /// Task name in `config.json`.
    pub const TASK: &'static str = "last-token";

    /// Whether `dir` holds a run whose `config.json` names this task (false when it cannot be
    /// read).
    pub fn is_run(dir: &Path) -> bool {
        RunDir::new(dir)
            .read_config_json()
            .is_ok_and(|v| v.get("task").and_then(|t| t.as_str()) == Some(Self::TASK))
    }

    /// Reads `config.json` of `run`, refusing other kinds of run with a clear message.
    pub fn load(run: &RunDir) -> Result<Self> {
        let v = crate::run::load_task_config(run, Self::TASK)?;
        let c: LastTokenRunConfig = serde_json::from_value(v).map_err(|e| Error::Format {
            path: run.config_path(),
            message: format!("unreadable last-token configuration ({e})"),
        })?;
        c.model.validate()?;
        crate::tasks::lm::last_token::data::check_window(c.train.window)?;
        Ok(c)
    }
}

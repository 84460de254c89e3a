use super::*;
use crate::run::{RunConfig, RunKind};
use crate::tasks::lm::LmRunData;

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

/// The `config.json` of a last-token run (`vocab.txt` sits beside it); it keeps the token kind
/// as a language-model run does.
pub type LastTokenRunConfig = RunConfig<LastTokenConfig, LastTokenTrainConfig, LmRunData>;

impl RunKind for LastTokenRunConfig {
    const TASK: &'static str = "last-token";
    const NAME: &'static str = "last-token";

    /// The model and the window.
    fn check(&self, _path: &Path) -> Result<()> {
        self.model.validate()?;
        crate::tasks::lm::last_token::data::check_window(self.train.window)
    }
}

impl LastTokenRunConfig {
    /// Whether `dir` holds a run whose `config.json` names this task (false when it cannot be
    /// read).
    pub fn is_run(dir: &Path) -> bool {
        RunDir::new(dir)
            .read_config_json()
            .is_ok_and(|v| v.get("task").and_then(|t| t.as_str()) == Some(Self::TASK))
    }
}

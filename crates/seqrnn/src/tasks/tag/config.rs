use std::path::Path;

use super::*;
use crate::run::{RunConfig, RunKind};

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
pub type TagRunConfig = RunConfig<crate::tasks::tag::model::TaggerConfig, TagTrainConfig>;

impl RunKind for TagRunConfig {
    const TASK: &'static str = "tag";
    const NAME: &'static str = "tagging";

    fn check(&self, _path: &Path) -> Result<()> {
        self.model.validate()
    }
}

impl TagRunConfig {
    /// A vocabulary file of a run: `words.txt`, `chars.txt` or `labels.txt`.
    pub fn vocab_file(run: &RunDir, name: &str) -> std::path::PathBuf {
        run.dir.join(format!("{name}.txt"))
    }
}

use std::path::Path;

use super::*;
use crate::run::{RunConfig, RunKind};

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
    /// The encoding of the data's files, in which `classify eval` reads them unless told
    /// otherwise (UTF-8 in a run written before runs recorded it).
    #[serde(default)]
    pub encoding: crate::data::Encoding,
    /// The shared loop's settings.
    pub fit: FitConfig,
}

/// The `config.json` of a classification run (`vocab.txt` and `labels.txt` sit beside it).
pub type ClassifyRunConfig = RunConfig<ClassifierConfig, ClassifyTrainConfig>;

impl RunKind for ClassifyRunConfig {
    const TASK: &'static str = "classify";
    const NAME: &'static str = "classification";

    fn check(&self, _path: &Path) -> Result<()> {
        self.model.validate()
    }
}

impl ClassifyRunConfig {
    /// `labels.txt` of a run: one label per line in id order.
    pub fn labels_path(run: &RunDir) -> std::path::PathBuf {
        run.dir.join("labels.txt")
    }
}

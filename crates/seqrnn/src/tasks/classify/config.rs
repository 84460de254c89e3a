use std::path::Path;

use super::*;
use crate::run::{RunConfig, RunKind};
use crate::tasks::classify::series::SeriesInput;

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

/// What a classification run keeps of its data: for numeric series, how their values become
/// the model's input (absent for text, whose `vocab.txt` says it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassifyRunData {
    /// The channels, their training statistics, the missing-value fill and the validation
    /// split of a series classifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<SeriesInput>,
}

/// The `config.json` of a classification run (`labels.txt` and, for text, `vocab.txt` sit
/// beside it).
pub type ClassifyRunConfig = RunConfig<ClassifierConfig, ClassifyTrainConfig, ClassifyRunData>;

impl RunKind for ClassifyRunConfig {
    const TASK: &'static str = "classify";
    const NAME: &'static str = "classification";

    fn check(&self, path: &Path) -> Result<()> {
        self.model.validate()?;
        let channels = self.data.series.as_ref().map(SeriesInput::width);
        if channels.unwrap_or(0) != self.model.channels {
            return Err(Error::Format {
                path: path.to_path_buf(),
                message: format!(
                    "the model reads {} value(s) a step but the series input gives {}",
                    self.model.channels,
                    channels.unwrap_or(0)
                ),
            });
        }
        Ok(())
    }
}

impl ClassifyRunConfig {
    /// `labels.txt` of a run: one label per line in id order.
    pub fn labels_path(run: &RunDir) -> std::path::PathBuf {
        run.dir.join("labels.txt")
    }
}

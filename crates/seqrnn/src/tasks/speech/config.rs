use super::*;
use crate::run::{RunConfig, RunKind};

/// Training settings of a speech run beyond the shared loop's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpeechTrainConfig {
    /// Utterances per step.
    pub batch: usize,
    /// Where the recordings came from.
    pub source: SpeechSource,
    /// Connected utterances built from the recordings (`None`: as recorded).
    pub concat: Option<Concat>,
    /// Speed perturbation factors of the training recordings (empty: none).
    #[serde(default)]
    pub speeds: Vec<f32>,
    /// SpecAugment masks on training features (`None`: none).
    pub augment: Option<SpecAugment>,
    /// Decoding of `eval` and `transcribe`.
    pub decoding: Decoding,
    /// The shared loop's settings.
    pub fit: FitConfig,
}

/// What a speech run keeps of its data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpeechRunData {
    /// The features.
    pub features: FeatureConfig,
    /// The characters of the labels, in order.
    pub alphabet: String,
}

/// The `config.json` of a speech run (`words.txt` sits beside it).
pub type SpeechRunConfig = RunConfig<SpeechConfig, SpeechTrainConfig, SpeechRunData>;

impl RunKind for SpeechRunConfig {
    const TASK: &'static str = "speech";
    const NAME: &'static str = "speech";

    /// The model, the features, and the alphabet against the model's labels.
    fn check(&self, path: &Path) -> Result<()> {
        self.model.validate()?;
        self.data.features.validate()?;
        if Alphabet::from_chars(&self.data.alphabet).labels() != self.model.labels {
            return Err(Error::Format {
                path: path.to_path_buf(),
                message: "the alphabet does not match the model's labels".into(),
            });
        }
        Ok(())
    }
}

impl SpeechRunConfig {
    /// The run's `words.txt`: the words of the training transcripts, one a line.
    pub fn words_path(run: &RunDir) -> PathBuf {
        run.dir.join("words.txt")
    }
}

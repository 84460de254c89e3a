use super::*;

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

/// The `config.json` of a speech run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpeechRunConfig {
    /// Format version ([`crate::run::TASK_FORMAT_VERSION`]).
    pub format: u32,
    /// Always `"speech"`.
    pub task: String,
    /// The model.
    pub model: SpeechConfig,
    /// The features.
    pub features: FeatureConfig,
    /// The characters of the labels, in order.
    pub alphabet: String,
    /// Training settings.
    pub train: SpeechTrainConfig,
}

impl SpeechRunConfig {
    /// Task name in `config.json`.
    pub const TASK: &'static str = "speech";

    /// The run's `words.txt`: the words of the training transcripts, one a line.
    pub fn words_path(run: &RunDir) -> PathBuf {
        run.dir.join("words.txt")
    }

    /// Reads `config.json` of `run`, refusing other kinds of run.
    pub fn load(run: &RunDir) -> Result<Self> {
        let v = crate::run::load_task_config(run, Self::TASK)?;
        let c: SpeechRunConfig = serde_json::from_value(v).map_err(|e| Error::Format {
            path: run.config_path(),
            message: format!("unreadable speech configuration ({e})"),
        })?;
        c.model.validate()?;
        c.features.validate()?;
        if Alphabet::from_chars(&c.alphabet).labels() != c.model.labels {
            return Err(Error::Format {
                path: run.config_path(),
                message: "the alphabet does not match the model's labels".into(),
            });
        }
        Ok(c)
    }
}

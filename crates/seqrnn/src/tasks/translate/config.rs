use super::*;

/// Training settings of a translation run beyond the shared loop's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TranslateTrainConfig {
    /// Sentence pairs per step.
    pub batch: usize,
    /// How both vocabularies were learned.
    pub subword: SubwordConfig,
    /// How `eval` and `run` decode by default.
    pub decode: DecodeConfig,
    /// The shared loop's settings.
    pub fit: FitConfig,
}

/// The `config.json` of a translation run (`src.tokenizer.json` and `tgt.tokenizer.json` sit
/// beside it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TranslateRunConfig {
    /// Format version ([`crate::run::TASK_FORMAT_VERSION`]).
    pub format: u32,
    /// Always `"translate"`.
    pub task: String,
    /// Source language suffix (`de`).
    pub src: String,
    /// Target language suffix (`en`).
    pub tgt: String,
    /// The model.
    pub model: Seq2SeqConfig,
    /// Training settings.
    pub train: TranslateTrainConfig,
}

impl TranslateRunConfig {
    /// Task name in `config.json`.
    pub const TASK: &'static str = "translate";

    /// The source vocabulary file of a run.
    pub fn src_vocab_path(run: &RunDir) -> PathBuf {
        run.dir.join("src.tokenizer.json")
    }

    /// The target vocabulary file of a run.
    pub fn tgt_vocab_path(run: &RunDir) -> PathBuf {
        run.dir.join("tgt.tokenizer.json")
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
        let c: TranslateRunConfig = serde_json::from_value(v).map_err(|e| Error::Format {
            path: run.config_path(),
            message: format!("unreadable translation configuration ({e})"),
        })?;
        c.model.validate()?;
        Ok(c)
    }
}

/// The two vocabularies of a run, checked against its model.
pub fn load_vocabs(run: &RunDir, model: &Seq2SeqConfig) -> Result<(SubwordVocab, SubwordVocab)> {
    let sp = TranslateRunConfig::src_vocab_path(run);
    let tp = TranslateRunConfig::tgt_vocab_path(run);
    let (src, tgt) = (SubwordVocab::load(&sp)?, SubwordVocab::load(&tp)?);
    for (v, want, path) in [(&src, model.src_vocab, &sp), (&tgt, model.tgt_vocab, &tp)] {
        if v.len() != want {
            return Err(Error::Format {
                path: path.clone(),
                message: format!(
                    "the vocabulary has {} pieces but the model in config.json was built for {want}",
                    v.len()
                ),
            });
        }
    }
    Ok((src, tgt))
}

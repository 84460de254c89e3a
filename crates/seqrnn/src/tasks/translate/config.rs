use super::*;
use crate::run::{RunConfig, RunKind};

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
pub type TranslateRunConfig = RunConfig<Seq2SeqConfig, TranslateTrainConfig, TranslateRunData>;

/// What a translation run keeps of its data: the two languages and the files' encoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranslateRunData {
    /// Source language suffix (`de`).
    pub src: String,
    /// Target language suffix (`en`).
    pub tgt: String,
    /// The encoding of the data's files, in which `translate eval` reads them unless told
    /// otherwise (UTF-8 in a run written before runs recorded it).
    #[serde(default)]
    pub encoding: crate::data::Encoding,
}

impl RunKind for TranslateRunConfig {
    const TASK: &'static str = "translate";
    const NAME: &'static str = "translation";

    fn check(&self, _path: &std::path::Path) -> Result<()> {
        self.model.validate()
    }
}

impl TranslateRunConfig {
    /// The source vocabulary file of a run.
    pub fn src_vocab_path(run: &RunDir) -> PathBuf {
        run.dir.join("src.tokenizer.json")
    }

    /// The target vocabulary file of a run.
    pub fn tgt_vocab_path(run: &RunDir) -> PathBuf {
        run.dir.join("tgt.tokenizer.json")
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

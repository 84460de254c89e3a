//! The language model's formats: its run's `config.json` ([`LmRunConfig`]), its weights file
//! ([`save_model`], [`load_model`]) and PyTorch's `word_language_model` weights
//! ([`import_state_dict`]).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::{Encoding, TokenKind, Vocab};
use crate::error::{Error, Result};
use crate::io::tensors::TensorFile;
use crate::rnn::CellKind;
use crate::run::{
    save_tensors_atomic, vocab_fingerprint, RunConfig, RunDir, RunKind, LANGUAGE_MODEL_TASK,
};
use crate::tasks::lm::model::{LanguageModel, LmConfig};

/// What a language-model run keeps of its data: the token kind and the corpus' encoding
/// (`vocab.txt` sits beside it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LmRunData {
    /// Word or character tokens.
    pub tokens: TokenKindName,
    /// The encoding of the corpus' files, in which `seqrnn eval` reads them unless told
    /// otherwise (UTF-8 in a run written before runs recorded it).
    #[serde(default)]
    pub encoding: Encoding,
}

/// The `config.json` of a language-model run (`seqrnn train`, `seqrnn import`); its training
/// settings are free-form JSON, for the record and for resuming. A run written before runs
/// named their task (no `task`, a `tokens`) loads as one.
pub type LmRunConfig = RunConfig<LmConfig, serde_json::Value, LmRunData>;

impl RunKind for LmRunConfig {
    const TASK: &'static str = LANGUAGE_MODEL_TASK;
    const NAME: &'static str = "language-model";

    fn check(&self, _path: &Path) -> Result<()> {
        self.model.validate()
    }

    fn refuse(other: &str) -> String {
        format!(
            "this is a `{other}` run, not a language-model run: use `seqrnn {other} eval` or `seqrnn {other} predict` with it"
        )
    }
}

/// Serialisable token kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKindName {
    /// Whitespace-separated words.
    Word,
    /// Characters.
    Char,
}

impl From<TokenKind> for TokenKindName {
    fn from(k: TokenKind) -> Self {
        match k {
            TokenKind::Word => TokenKindName::Word,
            TokenKind::Char => TokenKindName::Char,
        }
    }
}

impl From<TokenKindName> for TokenKind {
    fn from(k: TokenKindName) -> Self {
        match k {
            TokenKindName::Word => TokenKind::Word,
            TokenKindName::Char => TokenKind::Char,
        }
    }
}

/// `format` metadata of a language model's weights file.
pub const MODEL_FORMAT: &str = "seqrnn-lm";

/// Writes a model's weights to `path` atomically (PyTorch names), with the fingerprint of its
/// vocabulary ([`vocab_fingerprint`]) and a checksum in the metadata.
pub fn save_model(path: &Path, model: &LanguageModel, params: &[f32], vocab: &Vocab) -> Result<()> {
    // PyTorch names; a tied decoder weight is written as a copy of the encoder weight, as
    // PyTorch's `state_dict` holds both.
    let mut f = model.param_layout().to_file(params, MODEL_FORMAT);
    f.metadata.insert("vocab".into(), vocab_fingerprint(vocab));
    save_tensors_atomic(path, &f)
}

/// Builds a language model from a PyTorch `word_language_model` `state_dict`: infers LSTM or
/// GRU, layers and sizes from the tensor shapes and reads the weights, naming any tensor that is
/// missing or misshapen.
pub fn import_state_dict(file: &TensorFile, path: &Path) -> Result<(LanguageModel, Vec<f32>)> {
    let bad = |message: String| Error::Format {
        path: path.to_path_buf(),
        message,
    };
    let shape = |name: &str| -> Result<&[usize]> {
        Ok(&file
            .get(name)
            .map_err(|m| bad(format!("{m}: not a word_language_model state_dict")))?
            .shape)
    };
    let (enc, hh) = (shape("encoder.weight")?, shape("rnn.weight_hh_l0")?);
    if enc.len() != 2 || hh.len() != 2 {
        return Err(bad(format!(
            "encoder.weight {enc:?} and rnn.weight_hh_l0 {hh:?} must be matrices"
        )));
    }
    let (v, e, h) = (enc[0], enc[1], hh[1]);
    let cell = if h > 0 && hh[0] == 4 * h {
        CellKind::Lstm
    } else if h > 0 && hh[0] == 3 * h {
        CellKind::Gru(crate::rnn::GruVariant::ResetAfter)
    } else {
        return Err(bad(format!(
            "rnn.weight_hh_l0 has shape {hh:?}: neither LSTM [4H, H] nor GRU [3H, H]"
        )));
    };
    let layers = (0..)
        .take_while(|l| file.tensors.contains_key(&format!("rnn.weight_ih_l{l}")))
        .count();
    // A last layer of its own size (`rnn.weight_hh_l{L-1}` [G·H', H']).
    let last_hidden = match layers {
        0 | 1 => None,
        _ => {
            let top = shape(&format!("rnn.weight_hh_l{}", layers - 1))?;
            top.get(1).copied().filter(|&n| n != h)
        }
    };
    let config = LmConfig {
        block: Default::default(),
        vocab: v,
        embed: e,
        cell,
        hidden: h,
        layers,
        last_hidden,
        dropout: crate::dropout::Dropout::NONE,
        output: crate::model::embedding::OutputWeights::Separate,
        reg: Default::default(),
    };
    config
        .validate()
        .map_err(|err| bad(format!("the tensors describe an impossible model: {err}")))?;
    // Sizes beyond what memory can hold are refused before any arithmetic can overflow (the
    // tensors themselves are checked one by one below).
    let gates = hh[0] / h;
    let fits = [
        v.checked_mul(e),
        v.checked_mul(h),
        gates.checked_mul(h).and_then(|g| g.checked_mul(e.max(h))),
    ]
    .into_iter()
    .all(|n| n.is_some_and(|n| n <= isize::MAX as usize / 64))
        && layers <= 1 << 16;
    if !fits {
        return Err(bad("the tensors describe a model too large to load".into()));
    }
    let model = LanguageModel::new(config)?;
    let params = model.param_layout().from_file(file, path, "a model")?;
    Ok((model, params))
}

/// Reads the language model of `run`: its configuration, vocabulary and best weights.
///
/// # Errors
/// Those of [`RunConfig::load`]; [`Error::Format`] when `vocab.txt` does not match the model;
/// [`Error::NoFinishedEpoch`] for a run stopped before its first epoch ended; I/O errors.
pub fn load_model(
    run: &RunDir,
) -> Result<(LmRunConfig, Vocab, LanguageModel, crate::model::Weights)> {
    let config = LmRunConfig::load(run)?;
    let vocab = Vocab::load(&run.vocab_path())?;
    if vocab.len() != config.model.vocab {
        return Err(Error::Format {
            path: run.vocab_path(),
            message: format!(
                "holds {} tokens but the model was trained with {}",
                vocab.len(),
                config.model.vocab
            ),
        });
    }
    let model = LanguageModel::new(config.model)?;
    let file = run.load_weights("train")?;
    if file
        .metadata
        .get("vocab")
        .is_some_and(|v| *v != vocab_fingerprint(&vocab))
    {
        return Err(Error::Format {
            path: run.vocab_path(),
            message: "does not match the vocabulary the model was trained with (its tokens or their order differ)".into(),
        });
    }
    let params = model
        .param_layout()
        .weights_from_file(&file, &run.model_path(), "a model")?;
    Ok((config, vocab, model, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> RunDir {
        let d =
            std::env::temp_dir().join(format!("seqrnn-lm-config-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        RunDir::new(d)
    }

    fn model() -> LmConfig {
        LmConfig {
            block: Default::default(),
            vocab: 3,
            embed: 2,
            cell: CellKind::Lstm,
            hidden: 2,
            layers: 1,
            last_hidden: None,
            dropout: crate::dropout::Dropout::NONE,
            output: crate::model::embedding::OutputWeights::Separate,
            reg: Default::default(),
        }
    }

    #[test]
    fn a_run_of_another_task_is_named() {
        let run = tmp("other-task");
        std::fs::write(run.config_path(), r#"{"format": 1, "task": "forecast"}"#).unwrap();
        let e = LmRunConfig::load(&run).unwrap_err().to_string();
        assert!(
            e.contains(
                "this is a `forecast` run, not a language-model run: use `seqrnn forecast eval`"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_run_names_its_task_and_one_of_the_previous_version_still_loads() {
        let run = tmp("legacy");
        let config = LmRunConfig::new(
            model(),
            serde_json::json!({"bptt": 5}),
            LmRunData {
                tokens: TokenKindName::Char,
                encoding: Default::default(),
            },
        );
        config.save(&run).unwrap();
        let text = std::fs::read_to_string(run.config_path()).unwrap();
        assert!(text.contains("\"task\": \"lm\""), "{text}");
        assert_eq!(LmRunConfig::load(&run).unwrap(), config);
        // The previous version wrote no `task`.
        let mut old = serde_json::to_value(&config).unwrap();
        old.as_object_mut().unwrap().remove("task");
        std::fs::write(run.config_path(), old.to_string()).unwrap();
        let back = LmRunConfig::load(&run).unwrap();
        assert_eq!(back, config);
        assert_eq!(back.data.tokens, TokenKindName::Char);
        // A newer format is refused.
        old["format"] = 7.into();
        std::fs::write(run.config_path(), old.to_string()).unwrap();
        let e = LmRunConfig::load(&run).unwrap_err().to_string();
        assert!(e.contains("newer seqrnn (format 7"), "{e}");
    }

    #[test]
    fn a_run_stopped_in_its_first_epoch_has_no_model_to_load() {
        let run = tmp("no-epoch");
        let mut vocab = Vocab::new();
        for t in ["<unk>", "a", "b"] {
            vocab.add(t);
        }
        vocab.save(&run.vocab_path()).unwrap();
        let data = LmRunData {
            tokens: TokenKindName::Word,
            encoding: Default::default(),
        };
        LmRunConfig::new(model(), serde_json::Value::Null, data)
            .save(&run)
            .unwrap();
        std::fs::write(run.checkpoint_path(), b"a checkpoint").unwrap();
        let e = load_model(&run).unwrap_err();
        assert!(
            matches!(e, Error::NoFinishedEpoch { train: "train", .. }),
            "{e}"
        );
        // Once the first epoch has written the weights, they load.
        let lm = LanguageModel::new(model()).unwrap();
        save_model(&run.model_path(), &lm, &vec![0.0; lm.num_params()], &vocab).unwrap();
        assert!(load_model(&run).is_ok());
    }
}

//! A run directory: everything a training run leaves behind, and how to read it back.
//!
//! | file | contents |
//! |---|---|
//! | `config.json` | format version, model and training configuration, token kind |
//! | `vocab.txt` | the vocabulary, one token per line in id order |
//! | `model.safetensors` | the best-on-validation weights, PyTorch `word_language_model` names |
//! | `checkpoint.safetensors` | resume state: latest weights, optimiser moments, position, generator |
//! | `metrics.csv` | one row per epoch |
//! | `curve.svg` | learning curve |
//!
//! Every file is written to a temporary name in the same folder, flushed to disk, and renamed,
//! so a crash never leaves a half-written file under the real name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::{TokenKind, Vocab};
use crate::error::{Error, Result};
use crate::io::tensors::{Tensor, TensorFile};
use crate::io::write_atomic;
use crate::model::{LanguageModel, LmConfig};

/// Version of the run-directory format written by this build.
pub const FORMAT_VERSION: u32 = 1;

/// `config.json` of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Format version ([`FORMAT_VERSION`] when written by this build).
    pub format: u32,
    /// Word or character tokens.
    pub tokens: TokenKindName,
    /// The model.
    pub model: LmConfig,
    /// Training settings as given (free-form, for the record and for resuming).
    #[serde(default)]
    pub train: serde_json::Value,
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

/// Paths of a run directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    /// The folder.
    pub dir: PathBuf,
}

impl RunDir {
    /// A run directory at `dir` (not created).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        RunDir { dir: dir.into() }
    }

    /// `config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    /// `vocab.txt`.
    pub fn vocab_path(&self) -> PathBuf {
        self.dir.join("vocab.txt")
    }
    /// `model.safetensors`.
    pub fn model_path(&self) -> PathBuf {
        self.dir.join("model.safetensors")
    }
    /// `checkpoint.safetensors`.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.dir.join("checkpoint.safetensors")
    }
    /// `metrics.csv`.
    pub fn metrics_path(&self) -> PathBuf {
        self.dir.join("metrics.csv")
    }
    /// `curve.svg`.
    pub fn curve_path(&self) -> PathBuf {
        self.dir.join("curve.svg")
    }

    /// Creates the folder (and parents) if needed.
    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|source| Error::Io {
            path: self.dir.clone(),
            source,
        })
    }

    /// Whether the folder already holds a run (a `config.json`).
    pub fn holds_run(&self) -> bool {
        self.config_path().is_file()
    }

    /// Writes `config.json`.
    pub fn save_config(&self, config: &RunConfig) -> Result<()> {
        let text = serde_json::to_string_pretty(config).map_err(|e| Error::Format {
            path: self.config_path(),
            message: e.to_string(),
        })?;
        write_atomic(&self.config_path(), text.as_bytes())
    }

    /// Reads `config.json`, refusing files from a newer format.
    pub fn load_config(&self) -> Result<RunConfig> {
        let path = self.config_path();
        if !self.dir.is_dir() {
            return Err(Error::Io {
                path: self.dir.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "run directory not found",
                ),
            });
        }
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let config: RunConfig = serde_json::from_str(&text).map_err(|e| Error::Format {
            path: path.clone(),
            message: format!("not a seqrnn run configuration ({e})"),
        })?;
        if config.format > FORMAT_VERSION {
            return Err(Error::Format {
                path,
                message: format!(
                    "written by a newer seqrnn (format {}; this build reads up to {FORMAT_VERSION})",
                    config.format
                ),
            });
        }
        config.model.validate()?;
        Ok(config)
    }

    /// Reads the model, its vocabulary and its best weights.
    pub fn load_model(&self) -> Result<(RunConfig, Vocab, LanguageModel, Vec<f32>)> {
        let config = self.load_config()?;
        let vocab = Vocab::load(&self.vocab_path())?;
        if vocab.len() != config.model.vocab {
            return Err(Error::Format {
                path: self.vocab_path(),
                message: format!(
                    "holds {} tokens but the model was trained with {}",
                    vocab.len(),
                    config.model.vocab
                ),
            });
        }
        let model = LanguageModel::new(config.model)?;
        let file = TensorFile::load(&self.model_path())?;
        let params = params_from_tensors(&model, &file, &self.model_path())?;
        Ok((config, vocab, model, params))
    }
}

/// Converts a model's parameter block into named tensors (PyTorch names; a tied decoder weight is
/// written as a copy of the encoder weight, as PyTorch's `state_dict` holds both).
pub fn tensors_from_params(model: &LanguageModel, params: &[f32]) -> TensorFile {
    let mut f = TensorFile::default();
    for (name, shape, range) in model.tensors() {
        f.tensors.insert(
            name,
            Tensor {
                shape,
                data: params[range].to_vec(),
            },
        );
    }
    f.metadata.insert("format".into(), "seqrnn-lm".into());
    f
}

/// Reads a model's parameter block from named tensors, checking that every tensor is present with
/// the right shape and that the values are finite.
pub fn params_from_tensors(
    model: &LanguageModel,
    file: &TensorFile,
    path: &Path,
) -> Result<Vec<f32>> {
    let bad = |message: String| Error::Format {
        path: path.to_path_buf(),
        message,
    };
    let mut params = vec![0.0; model.num_params()];
    let tied = model.layout().decoder_weight == model.layout().encoder;
    for (name, shape, range) in model.tensors() {
        if tied && name == "decoder.weight" {
            // Same storage as encoder.weight; a file may hold a copy or nothing.
            continue;
        }
        let t = file
            .get(&name)
            .map_err(|m| bad(format!("{m} (not a model of this shape)")))?;
        if t.shape != shape {
            return Err(bad(format!(
                "tensor `{name}` has shape {:?}, the model needs {:?}",
                t.shape, shape
            )));
        }
        if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
            return Err(bad(format!(
                "tensor `{name}` holds a non-finite value at index {i}"
            )));
        }
        params[range].copy_from_slice(&t.data);
    }
    Ok(params)
}

/// Writes named tensors atomically.
pub fn save_tensors_atomic(path: &Path, file: &TensorFile) -> Result<()> {
    let bytes = file.to_bytes().map_err(|message| Error::Format {
        path: path.to_path_buf(),
        message,
    })?;
    write_atomic(path, &bytes)
}

/// Resume state stored in `checkpoint.safetensors` besides the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResumeState {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Training steps completed.
    pub steps_done: u64,
    /// Training tokens seen.
    pub tokens_seen: u64,
    /// Best validation perplexity so far.
    pub best_valid_ppl: f64,
    /// Adam steps taken (0 for SGD).
    pub adam_step: u64,
    /// Random generator: seed and position (as a decimal string).
    pub rng_seed: u64,
    /// Word position of the generator (u128 as decimal text).
    pub rng_word_pos: String,
}

/// Saves a checkpoint: weights (flat), optional Adam moments, and the resume state.
pub fn save_checkpoint(
    path: &Path,
    params: &[f32],
    adam: Option<(&[f32], &[f32])>,
    state: &ResumeState,
) -> Result<()> {
    let mut f = TensorFile::default();
    let flat = |v: &[f32]| Tensor {
        shape: vec![v.len()],
        data: v.to_vec(),
    };
    f.tensors.insert("params".into(), flat(params));
    if let Some((m, v)) = adam {
        f.tensors.insert("adam.m".into(), flat(m));
        f.tensors.insert("adam.v".into(), flat(v));
    }
    let json = serde_json::to_string(state).map_err(|e| Error::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    f.metadata = BTreeMap::from([
        (
            "format".into(),
            format!("seqrnn-checkpoint-{FORMAT_VERSION}"),
        ),
        ("resume".into(), json),
    ]);
    save_tensors_atomic(path, &f)
}

/// What [`load_checkpoint`] returns: weights, Adam moments if saved, and the resume state.
pub type Checkpoint = (Vec<f32>, Option<(Vec<f32>, Vec<f32>)>, ResumeState);

/// Loads a checkpoint written by [`save_checkpoint`] for a model with `n_params` parameters.
pub fn load_checkpoint(path: &Path, n_params: usize) -> Result<Checkpoint> {
    let file = TensorFile::load(path)?;
    let bad = |message: String| Error::Format {
        path: path.to_path_buf(),
        message,
    };
    match file.metadata.get("format").map(String::as_str) {
        Some(f) if f == format!("seqrnn-checkpoint-{FORMAT_VERSION}") => {}
        Some(f) if f.starts_with("seqrnn-checkpoint-") => {
            return Err(bad(format!(
                "checkpoint format `{f}` is not readable by this build"
            )))
        }
        _ => return Err(bad("not a seqrnn checkpoint".into())),
    }
    let state: ResumeState = serde_json::from_str(file.metadata.get("resume").map_or("", |s| s))
        .map_err(|e| bad(format!("resume state unreadable ({e})")))?;
    let take = |name: &str| -> Result<Vec<f32>> {
        let t = file.get(name).map_err(bad)?;
        if t.data.len() != n_params {
            return Err(bad(format!(
                "`{name}` holds {} values but the model has {n_params} parameters (another architecture?)",
                t.data.len()
            )));
        }
        Ok(t.data.clone())
    };
    let params = take("params")?;
    let adam = if file.tensors.contains_key("adam.m") {
        Some((take("adam.m")?, take("adam.v")?))
    } else {
        None
    };
    Ok((params, adam, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("seqrnn-run-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let d = tmp("atomic");
        let p = d.join("a.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
        // A folder that does not exist: an error, nothing written.
        assert!(write_atomic(&d.join("missing/x"), b"x").is_err());
    }

    #[test]
    fn checkpoint_round_trip_and_mismatch() {
        let d = tmp("ckpt");
        let p = d.join("c.safetensors");
        let state = ResumeState {
            epochs_done: 3,
            steps_done: 99,
            tokens_seen: 1234,
            best_valid_ppl: 120.5,
            adam_step: 7,
            rng_seed: 1,
            rng_word_pos: "123456789012345678901234567890".into(),
        };
        let params = vec![1.0, 2.0, 3.0];
        let m = vec![0.1, 0.2, 0.3];
        save_checkpoint(&p, &params, Some((&m, &m)), &state).unwrap();
        let (p2, adam, s2) = load_checkpoint(&p, 3).unwrap();
        assert_eq!(p2, params);
        assert_eq!(adam.unwrap().0, m);
        assert_eq!(s2, state);
        let e = load_checkpoint(&p, 4).unwrap_err().to_string();
        assert!(e.contains("another architecture"), "{e}");
        // Truncated file.
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        assert!(load_checkpoint(&p, 3).is_err());
    }
}

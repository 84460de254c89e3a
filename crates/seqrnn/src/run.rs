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

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::{TokenKind, Vocab};
use crate::error::{Error, Result};
use crate::io::tensors::{Tensor, TensorFile};
use crate::io::write_atomic;
use crate::model::{LanguageModel, LmConfig};
use crate::report::metrics::EpochMetrics;
use crate::rnn::{CellKind, RnnState};

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
    /// `checkpoints/epoch-NNN.safetensors`: the checkpoint of the end of epoch `epoch`, kept
    /// with [`crate::train::lm::KeepCheckpoints::Epochs`].
    pub fn epoch_checkpoint_path(&self, epoch: usize) -> PathBuf {
        self.dir
            .join("checkpoints")
            .join(format!("epoch-{epoch:03}.safetensors"))
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
        if file
            .metadata
            .get("vocab")
            .is_some_and(|v| *v != vocab_fingerprint(&vocab))
        {
            return Err(Error::Format {
                path: self.vocab_path(),
                message: "does not match the vocabulary the model was trained with (its tokens or their order differ)".into(),
            });
        }
        let params = model
            .param_layout()
            .from_file(&file, &self.model_path(), "a model")?;
        Ok((config, vocab, model, params))
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

/// Writes named tensors atomically, with a checksum of the contents in the metadata
/// ([`crate::io::tensors::CHECKSUM_KEY`]) that every load verifies.
pub fn save_tensors_atomic(path: &Path, file: &TensorFile) -> Result<()> {
    let bytes = file.to_bytes_sealed().map_err(|message| Error::Format {
        path: path.to_path_buf(),
        message,
    })?;
    write_atomic(path, &bytes)
}

/// Version of the checkpoint layout written by this build (`format` = `seqrnn-checkpoint-N` in
/// the safetensors metadata). Version 1 held the position at epoch boundaries only; version 2
/// adds the carried recurrent state, the position within an epoch, the run configuration, the
/// metrics so far, a vocabulary fingerprint and a checksum.
pub const CHECKPOINT_VERSION: u32 = 2;

/// Resume state stored in `checkpoint.safetensors` besides the tensors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResumeState {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Training steps completed.
    pub steps_done: u64,
    /// Training tokens seen.
    pub tokens_seen: u64,
    /// Best validation perplexity so far (infinite before the first validation).
    #[serde(with = "exact_f64")]
    pub best_valid_ppl: f64,
    /// Adam steps taken (0 for SGD).
    pub adam_step: u64,
    /// Random generator: seed.
    pub rng_seed: u64,
    /// Word position of the generator (u128 as decimal text).
    pub rng_word_pos: String,
    /// Tokens of the training split the run was trained on (0: not recorded).
    #[serde(default)]
    pub train_tokens: u64,
    /// Where epoch `epochs_done + 1` stands when the checkpoint was written inside it; `None` at
    /// an epoch boundary.
    #[serde(default)]
    pub partial: Option<PartialEpoch>,
}

/// The part of an epoch done when a checkpoint was written between two of its steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartialEpoch {
    /// Windows of the epoch already trained on.
    pub window: usize,
    /// Learning rate of the epoch.
    #[serde(with = "exact_f64")]
    pub lr: f64,
    /// Summed cross-entropy of the windows done (nats).
    #[serde(with = "exact_f64")]
    pub loss_sum: f64,
    /// Predictions (`T·B` per window) the sum covers.
    pub predicted: u64,
    /// Seconds of training spent on the epoch so far.
    #[serde(with = "exact_f64")]
    pub seconds: f64,
}

/// Floats stored as their shortest round-trip decimal text, so that every value (infinities
/// included) reads back bit for bit; plain JSON numbers are accepted too.
mod exact_f64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(f64),
        Text(String),
        Null(()),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Number(v) => Ok(v),
            Repr::Text(t) => t
                .parse()
                .map_err(|_| serde::de::Error::custom(format!("`{t}` is not a number"))),
            Repr::Null(()) => Ok(f64::INFINITY),
        }
    }
}

/// Everything a checkpoint holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The model's weights (flat parameter block).
    pub params: Vec<f32>,
    /// Adam's first and second moments, if the run uses Adam.
    pub adam: Option<(Vec<f32>, Vec<f32>)>,
    /// The recurrent state carried into the next window (mid-epoch checkpoints only).
    pub carried: Option<RnnState>,
    /// Position, counters, generator.
    pub state: ResumeState,
    /// The run's configuration (`config.json`) when the checkpoint was written; `None` in
    /// version 1 checkpoints.
    pub config: Option<RunConfig>,
    /// Metrics of the finished epochs.
    pub history: Vec<EpochMetrics>,
    /// Fingerprint of the vocabulary ([`vocab_fingerprint`]); `None` in version 1 checkpoints.
    pub vocab: Option<String>,
}

/// A fingerprint of a vocabulary (CRC-32 of its tokens in id order), stored in checkpoints so
/// that a `vocab.txt` that was replaced is noticed.
pub fn vocab_fingerprint(vocab: &Vocab) -> String {
    let mut h = crc32fast::Hasher::new();
    for t in vocab.tokens() {
        h.update(t.as_bytes());
        h.update(&[0]);
    }
    format!("crc32:{:08x}:{}", h.finalize(), vocab.len())
}

/// Saves a checkpoint atomically: the tensors (`params`, `adam.m`, `adam.v`, `state.h`,
/// `state.c`), the resume state, configuration, metrics and vocabulary fingerprint in the
/// metadata, and a checksum of it all.
pub fn save_checkpoint(path: &Path, ck: &Checkpoint) -> Result<()> {
    let bytes = checkpoint_bytes(ck).map_err(|message| Error::Format {
        path: path.to_path_buf(),
        message,
    })?;
    write_atomic(path, &bytes)
}

/// The bytes [`save_checkpoint`] writes.
pub fn checkpoint_bytes(ck: &Checkpoint) -> std::result::Result<Vec<u8>, String> {
    let mut f = TensorFile::default();
    let flat = |v: &[f32]| Tensor {
        shape: vec![v.len()],
        data: v.to_vec(),
    };
    f.tensors.insert("params".into(), flat(&ck.params));
    if let Some((m, v)) = &ck.adam {
        f.tensors.insert("adam.m".into(), flat(m));
        f.tensors.insert("adam.v".into(), flat(v));
    }
    if let Some(s) = &ck.carried {
        f.tensors.insert("state.h".into(), flat(&s.h));
        if !s.c.is_empty() {
            f.tensors.insert("state.c".into(), flat(&s.c));
        }
    }
    let json = |r: serde_json::Result<String>| r.map_err(|e| e.to_string());
    f.metadata.insert(
        "format".into(),
        format!("seqrnn-checkpoint-{CHECKPOINT_VERSION}"),
    );
    f.metadata
        .insert("resume".into(), json(serde_json::to_string(&ck.state))?);
    if let Some(c) = &ck.config {
        f.metadata
            .insert("config".into(), json(serde_json::to_string(c))?);
    }
    if let Some(v) = &ck.vocab {
        f.metadata.insert("vocab".into(), v.clone());
    }
    f.metadata
        .insert("metrics".into(), history_text(&ck.history));
    f.to_bytes_sealed()
}

/// The metrics rows as text, one CSV line per epoch in `metrics.csv`'s column order, floats in
/// shortest round-trip form.
fn history_text(rows: &[EpochMetrics]) -> String {
    rows.iter()
        .map(|r| {
            format!(
                "{},{},{},{},{},{},{}\n",
                r.epoch, r.lr, r.train_ppl, r.valid_ppl, r.tokens_per_s, r.seconds, r.tokens_seen
            )
        })
        .collect()
}

fn history_from_text(text: &str) -> std::result::Result<Vec<EpochMetrics>, String> {
    let bad = |i: usize| format!("metrics row {} in the checkpoint is unreadable", i + 1);
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split(',').collect();
            let [epoch, lr, train_ppl, valid_ppl, tokens_per_s, seconds, tokens_seen] = f[..]
            else {
                return Err(bad(i));
            };
            let x = |s: &str| s.parse::<f64>().map_err(|_| bad(i));
            Ok(EpochMetrics {
                epoch: epoch.parse().map_err(|_| bad(i))?,
                lr: x(lr)?,
                train_ppl: x(train_ppl)?,
                valid_ppl: x(valid_ppl)?,
                tokens_per_s: x(tokens_per_s)?,
                seconds: x(seconds)?,
                tokens_seen: tokens_seen.parse().map_err(|_| bad(i))?,
            })
        })
        .collect()
}

/// Loads a checkpoint written by [`save_checkpoint`] (or a version-1 checkpoint) for a model
/// with `n_params` parameters.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Format`] when it is truncated or
/// corrupt (checksum), not a checkpoint, from a newer format, or its tensors do not fit a model
/// of `n_params` parameters.
pub fn load_checkpoint(path: &Path, n_params: usize) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    checkpoint_from_bytes(&bytes, n_params).map_err(|message| Error::Format {
        path: path.to_path_buf(),
        message,
    })
}

/// Parses checkpoint bytes (see [`load_checkpoint`]); the error is a message without the file
/// name.
pub fn checkpoint_from_bytes(
    bytes: &[u8],
    n_params: usize,
) -> std::result::Result<Checkpoint, String> {
    let file = TensorFile::from_bytes(bytes).map_err(|e| {
        if e.contains("checksum") {
            e
        } else {
            format!("{e}; the checkpoint is truncated or corrupt")
        }
    })?;
    let version = match file.metadata.get("format").map(String::as_str) {
        Some(f) => match f.strip_prefix("seqrnn-checkpoint-").map(str::parse::<u32>) {
            Some(Ok(v)) if (1..=CHECKPOINT_VERSION).contains(&v) => v,
            Some(Ok(v)) if v > CHECKPOINT_VERSION => {
                return Err(format!(
                    "written by a newer seqrnn (checkpoint format {v}; this build reads 1 to {CHECKPOINT_VERSION}): update seqrnn to resume it"
                ))
            }
            _ => return Err(format!("not a seqrnn language-model checkpoint (format `{f}`)")),
        },
        None => return Err("not a seqrnn checkpoint (no format in its metadata)".into()),
    };
    if version >= 2 && !file.metadata.contains_key(crate::io::tensors::CHECKSUM_KEY) {
        return Err("the checkpoint carries no checksum; it is corrupt".into());
    }
    let state: ResumeState = serde_json::from_str(file.metadata.get("resume").map_or("", |s| s))
        .map_err(|e| format!("resume state unreadable ({e})"))?;
    let config = match file.metadata.get("config") {
        Some(text) => Some(
            serde_json::from_str::<RunConfig>(text)
                .map_err(|e| format!("run configuration unreadable ({e})"))?,
        ),
        None => None,
    };
    let history = match file.metadata.get("metrics") {
        Some(text) => history_from_text(text)?,
        None => Vec::new(),
    };
    let take = |name: &str| -> std::result::Result<Vec<f32>, String> {
        let t = file.get(name)?;
        if t.data.len() != n_params {
            return Err(format!(
                "`{name}` holds {} values but the model has {n_params} parameters: the checkpoint is from another architecture",
                t.data.len()
            ));
        }
        Ok(t.data.clone())
    };
    let params = take("params")?;
    let adam = if file.tensors.contains_key("adam.m") {
        Some((take("adam.m")?, take("adam.v")?))
    } else {
        None
    };
    let carried = match file.tensors.get("state.h") {
        Some(h) => Some(RnnState {
            h: h.data.clone(),
            c: file
                .tensors
                .get("state.c")
                .map_or_else(Vec::new, |c| c.data.clone()),
        }),
        None => None,
    };
    if state.partial.is_some() != carried.is_some() {
        return Err(
            "the position within the epoch and the carried recurrent state disagree".into(),
        );
    }
    Ok(Checkpoint {
        params,
        adam,
        carried,
        state,
        config,
        history,
        vocab: file.metadata.get("vocab").cloned(),
    })
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
    let config = LmConfig {
        vocab: v,
        embed: e,
        cell,
        hidden: h,
        layers,
        dropout: crate::dropout::Dropout::NONE,
        output: crate::model::OutputWeights::Separate,
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

    fn sample_checkpoint() -> Checkpoint {
        Checkpoint {
            params: vec![1.0, 2.0, 3.0],
            adam: Some((vec![0.1, 0.2, 0.3], vec![0.01, 0.02, 0.03])),
            carried: Some(RnnState {
                h: vec![0.5, -0.5],
                c: vec![0.25, 1e-30],
            }),
            state: ResumeState {
                epochs_done: 3,
                steps_done: 99,
                tokens_seen: 1234,
                best_valid_ppl: 120.5,
                adam_step: 7,
                rng_seed: 1,
                rng_word_pos: "123456789012345678901234567890".into(),
                train_tokens: 500,
                partial: Some(PartialEpoch {
                    window: 4,
                    lr: 0.1 + 0.2,
                    loss_sum: 1.0 / 3.0,
                    predicted: 40,
                    seconds: 1.5,
                }),
            },
            config: None,
            history: vec![EpochMetrics {
                epoch: 1,
                lr: 20.0,
                train_ppl: f64::INFINITY,
                valid_ppl: 1.0 / 7.0,
                tokens_per_s: 1e5,
                seconds: 0.1,
                tokens_seen: 9,
            }],
            vocab: Some("crc32:00000000:3".into()),
        }
    }

    #[test]
    fn checkpoint_round_trip_is_exact() {
        let d = tmp("ckpt");
        let p = d.join("c.safetensors");
        let mut ck = sample_checkpoint();
        save_checkpoint(&p, &ck).unwrap();
        assert_eq!(load_checkpoint(&p, 3).unwrap(), ck);
        // Infinite best perplexity (before the first validation) and no partial epoch.
        ck.state.best_valid_ppl = f64::INFINITY;
        ck.state.partial = None;
        ck.carried = None;
        save_checkpoint(&p, &ck).unwrap();
        assert_eq!(load_checkpoint(&p, 3).unwrap(), ck);
    }

    #[test]
    fn bad_checkpoints_are_named() {
        let d = tmp("ckpt-bad");
        let p = d.join("c.safetensors");
        let ck = sample_checkpoint();
        save_checkpoint(&p, &ck).unwrap();
        let err = |bytes: &[u8], n: usize| checkpoint_from_bytes(bytes, n).unwrap_err();
        let bytes = std::fs::read(&p).unwrap();
        // Another architecture.
        let e = err(&bytes, 4);
        assert!(e.contains("another architecture"), "{e}");
        // Truncated.
        let e = err(&bytes[..bytes.len() / 2], 3);
        assert!(e.contains("truncated or corrupt"), "{e}");
        let e = err(&bytes[..5], 3);
        assert!(e.contains("truncated or corrupt"), "{e}");
        // One flipped bit in the tensor data.
        let mut flipped = bytes.clone();
        let n = flipped.len();
        flipped[n - 9] ^= 4;
        let e = err(&flipped, 3);
        assert!(e.contains("checksum mismatch"), "{e}");
        // A newer format.
        let mut f = TensorFile::from_bytes(&bytes).unwrap();
        f.metadata
            .insert("format".into(), "seqrnn-checkpoint-9".into());
        let e = err(&f.to_bytes_sealed().unwrap(), 3);
        assert!(e.contains("newer seqrnn (checkpoint format 9"), "{e}");
        // A model file instead of a checkpoint.
        f.metadata.insert("format".into(), "seqrnn-lm".into());
        let e = err(&f.to_bytes_sealed().unwrap(), 3);
        assert!(e.contains("not a seqrnn language-model checkpoint"), "{e}");
        // A version-2 checkpoint whose checksum was removed.
        f.metadata
            .insert("format".into(), "seqrnn-checkpoint-2".into());
        f.metadata.remove(crate::io::tensors::CHECKSUM_KEY);
        let e = err(&f.to_bytes().unwrap(), 3);
        assert!(e.contains("no checksum"), "{e}");
    }

    #[test]
    fn a_checkpoint_write_that_fails_midway_keeps_the_previous_checkpoint() {
        let d = tmp("ckpt-full");
        let p = d.join("checkpoint.safetensors");
        let old = sample_checkpoint();
        save_checkpoint(&p, &old).unwrap();
        let mut new = sample_checkpoint();
        new.params = vec![9.0; 3];
        new.state.steps_done = 100;
        let bytes = checkpoint_bytes(&new).unwrap();
        // The disk fills after half of the new checkpoint.
        let e = crate::io::write_atomic_with(&p, |w| {
            w.write_all(&bytes[..bytes.len() / 2])?;
            Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "No space left on device",
            ))
        })
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("the previous checkpoint.safetensors was kept"),
            "{e}"
        );
        assert_eq!(load_checkpoint(&p, 3).unwrap(), old);
        assert!(!d.join("checkpoint.safetensors.tmp").exists());
    }

    #[test]
    fn version_1_checkpoints_still_load() {
        let mut f = TensorFile::default();
        f.tensors.insert(
            "params".into(),
            Tensor {
                shape: vec![2],
                data: vec![1.0, 2.0],
            },
        );
        f.metadata
            .insert("format".into(), "seqrnn-checkpoint-1".into());
        f.metadata.insert(
            "resume".into(),
            r#"{"epochs_done":2,"steps_done":10,"tokens_seen":100,"best_valid_ppl":55.5,"adam_step":0,"rng_seed":2,"rng_word_pos":"640"}"#.into(),
        );
        let ck = checkpoint_from_bytes(&f.to_bytes().unwrap(), 2).unwrap();
        assert_eq!(ck.state.epochs_done, 2);
        assert_eq!(ck.state.best_valid_ppl, 55.5);
        assert!(ck.state.partial.is_none() && ck.carried.is_none() && ck.config.is_none());
    }
}

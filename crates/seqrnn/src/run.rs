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
//! | `summary.json` | the final figures, written by the command once the run is finished ([`Run::finish`]) |
//!
//! Every file is written to a temporary name in the same folder, flushed to disk, and renamed,
//! so a crash never leaves a half-written file under the real name.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::{TokenKind, Vocab};
use crate::dist::Group;
use crate::error::{Error, Result};
use crate::io::tensors::TensorFile;
use crate::io::write_atomic;
use crate::rnn::CellKind;
use crate::tasks::lm::{LanguageModel, LmConfig};

/// File name of a run's end-of-training summary: its presence marks the run as finished.
pub const SUMMARY_FILE: &str = "summary.json";

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
    /// with [`crate::train::KeepCheckpoints::Epochs`].
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
    /// `summary.json` ([`SUMMARY_FILE`]).
    pub fn summary_path(&self) -> PathBuf {
        self.dir.join(SUMMARY_FILE)
    }

    /// Creates the folder (and parents) if needed.
    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|source| Error::Io {
            path: self.dir.clone(),
            cause: source,
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

    /// `config.json` as JSON, whatever kind of run wrote it.
    ///
    /// # Errors
    /// [`Error::Data`] when the folder is missing, [`Error::Io`] when its `config.json` cannot
    /// be read, [`Error::Format`] when it is not JSON.
    pub fn read_config_json(&self) -> Result<serde_json::Value> {
        if !self.dir.is_dir() {
            return Err(Error::Data {
                path: self.dir.clone(),
                message: "run directory not found".into(),
            });
        }
        let path = self.config_path();
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.clone(),
            cause: source,
        })?;
        serde_json::from_str(&text).map_err(|e| Error::Format {
            path,
            message: format!("not a seqrnn run configuration ({e})"),
        })
    }

    /// Reads `config.json`, refusing files from a newer format and runs of other tasks.
    pub fn load_config(&self) -> Result<RunConfig> {
        let path = self.config_path();
        let bad = |message: String| Error::Format {
            path: path.clone(),
            message,
        };
        let value = self.read_config_json()?;
        if let Some(task) = value.get("task").and_then(|t| t.as_str()) {
            return Err(bad(format!(
                "this is a `{task}` run, not a language-model run: use `seqrnn {task} eval` or `seqrnn {task} predict` with it"
            )));
        }
        let config: RunConfig = serde_json::from_value(value)
            .map_err(|e| bad(format!("not a seqrnn run configuration ({e})")))?;
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

    /// Reads the trained weights, `model.safetensors`. A run stopped during its first epoch
    /// holds a checkpoint but no weights yet: that is [`Error::NoFinishedEpoch`], naming `train`,
    /// the subcommand that resumes it (`train`, `forecast train`, `classify train`).
    pub fn load_weights(&self, train: &'static str) -> Result<TensorFile> {
        let path = self.model_path();
        if !path.exists() && self.checkpoint_path().is_file() {
            return Err(Error::NoFinishedEpoch {
                dir: self.dir.clone(),
                train,
            });
        }
        TensorFile::load(&path)
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
        let file = self.load_weights("train")?;
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

/// What [`Run::create`] does with a folder that already holds a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Existing {
    /// Refuse it ([`Error::RunExists`]): nothing is touched.
    #[default]
    Refuse,
    /// Replace it: its files are removed first.
    Replace,
}

/// A run being trained: the folder, whether it starts fresh or goes on, and its `config.json`.
///
/// It keeps a run folder safe for every caller: a fresh run refuses a folder that holds a run
/// (unless told to replace it) and clears what a killed earlier attempt left; `config.json` is
/// written only after the first checkpoint, so a folder with a `config.json` always holds a
/// checkpoint to resume from; a fresh run that fails before its first step is removed again
/// ([`Run::abandon`], called by the training loop), so the same command can be run again.
/// Every file goes through [`Run::write`] or [`Run::save_tensors`], which write atomically.
/// A run is finished once the command has written its `summary.json` ([`Run::finish`]); one
/// killed between its last checkpoint and that file can be resumed to write it.
#[derive(Clone, Debug)]
pub struct Run {
    dir: RunDir,
    fresh: bool,
    /// Whether the folder held a `summary.json` when the run was opened.
    finished: bool,
    config: Vec<u8>,
    /// The processes training it; only rank 0 writes.
    group: Group,
}

impl Run {
    /// A fresh run in `dir` (created if needed) with `config` as its `config.json`.
    ///
    /// # Errors
    /// [`Error::RunExists`] when `dir` holds a run and `existing` is [`Existing::Refuse`];
    /// I/O errors when the folder cannot be created or cleared.
    pub fn create(dir: &Path, config: &impl Serialize, existing: Existing) -> Result<Run> {
        let d = RunDir::new(dir);
        if d.holds_run() && existing == Existing::Refuse {
            return Err(Error::RunExists {
                dir: dir.to_path_buf(),
            });
        }
        d.create()?;
        // A replaced run, or what an attempt killed before its config.json left behind.
        for p in [
            d.config_path(),
            d.checkpoint_path(),
            d.model_path(),
            d.metrics_path(),
            d.curve_path(),
            d.summary_path(),
        ] {
            remove_if_present(&p)?;
        }
        let kept = d.dir.join("checkpoints");
        if kept.is_dir() {
            std::fs::remove_dir_all(&kept).map_err(|source| Error::Io {
                path: kept,
                cause: source,
            })?;
        }
        let mut run = Run {
            dir: d,
            fresh: true,
            finished: false,
            config: Vec::new(),
            group: Group::single(),
        };
        run.set_config(config)?;
        Ok(run)
    }

    /// The run in `dir`, to go on from its checkpoint; its `config.json` is kept until
    /// [`Run::set_config`] replaces it.
    ///
    /// # Errors
    /// [`Error::NoRun`] when `dir` holds no `config.json`, [`Error::NoCheckpoint`] when it holds
    /// no checkpoint.
    pub fn resume(dir: &Path) -> Result<Run> {
        let d = RunDir::new(dir);
        if !d.holds_run() {
            return Err(Error::NoRun {
                dir: dir.to_path_buf(),
            });
        }
        if !d.checkpoint_path().is_file() {
            return Err(Error::NoCheckpoint {
                dir: dir.to_path_buf(),
            });
        }
        let config = std::fs::read(d.config_path()).map_err(|source| Error::Io {
            path: d.config_path(),
            cause: source,
        })?;
        let finished = d.summary_path().is_file();
        Ok(Run {
            dir: d,
            fresh: false,
            finished,
            config,
            group: Group::single(),
        })
    }

    /// [`Run::create`] for the ranks of `group`: rank 0 creates the folder, the others write
    /// nothing. Every rank returns an error when rank 0 fails (the others
    /// [`Error::RankFailed`]).
    pub fn create_in(
        group: &Group,
        dir: &Path,
        config: &impl Serialize,
        existing: Existing,
    ) -> Result<Run> {
        let made = match group.is_root() {
            true => Run::create(dir, config, existing),
            false => Ok(Run {
                dir: RunDir::new(dir),
                fresh: true,
                finished: false,
                config: Vec::new(),
                group: Group::single(),
            }),
        };
        let mut run = group.agree(made)?;
        run.set_config(config)?;
        run.group = group.clone();
        Ok(run)
    }

    /// [`Run::resume`] for the ranks of `group`: rank 0 checks the folder and reads its
    /// `config.json` for every rank (the checkpoint, too, is read by rank 0 alone).
    pub fn resume_in(group: &Group, dir: &Path) -> Result<Run> {
        let found = match group.is_root() {
            true => Run::resume(dir),
            false => Ok(Run {
                dir: RunDir::new(dir),
                fresh: false,
                finished: false,
                config: Vec::new(),
                group: Group::single(),
            }),
        };
        let mut run = group.agree(found)?;
        run.config = group.broadcast_bytes(std::mem::take(&mut run.config));
        run.finished = group.broadcast_u64(u64::from(run.finished)) != 0;
        run.group = group.clone();
        Ok(run)
    }

    /// The processes training the run.
    pub fn group(&self) -> &Group {
        &self.group
    }

    /// Whether this process writes the run's files (rank 0).
    pub fn is_writer(&self) -> bool {
        self.group.is_root()
    }

    /// The folder's paths.
    pub fn dir(&self) -> &RunDir {
        &self.dir
    }

    /// Whether the run starts from scratch (not resumed).
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// Whether the run was finished when it was opened: its `summary.json` was written, so
    /// there is nothing left to resume (unless it is given more epochs).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Marks the run as finished by writing `summary` as its `summary.json` (atomically; on
    /// ranks other than 0, nothing): the last file a command writes, after its final figures.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be written.
    pub fn finish(&self, summary: &serde_json::Value) -> Result<()> {
        self.write(
            &self.dir.summary_path(),
            format!("{summary:#}\n").as_bytes(),
        )
    }

    /// Sets the `config.json` written when training starts (e.g. a resumed run's extended
    /// epoch count).
    pub fn set_config(&mut self, config: &impl Serialize) -> Result<()> {
        let text = serde_json::to_string_pretty(config).map_err(|e| Error::Format {
            path: self.dir.config_path(),
            message: e.to_string(),
        })?;
        self.config = text.into_bytes();
        Ok(())
    }

    /// Writes `bytes` to `path` (a file of the run) atomically; on ranks other than 0, nothing.
    pub fn write(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        match self.is_writer() {
            true => write_atomic(path, bytes),
            false => Ok(()),
        }
    }

    /// Writes named tensors to `path` atomically, sealed with a checksum.
    pub fn save_tensors(&self, path: &Path, file: &TensorFile) -> Result<()> {
        match self.is_writer() {
            true => save_tensors_atomic(path, file),
            false => Ok(()),
        }
    }

    /// Writes `config.json`: called by the training loop once the run has a checkpoint to
    /// resume from.
    pub fn write_config(&self) -> Result<()> {
        self.write(&self.dir.config_path(), &self.config)
    }

    /// Removes a fresh run that made no progress (its `config.json` and checkpoint), so that the
    /// folder is not taken for a run; does nothing to a resumed run.
    pub fn abandon(&self) {
        if self.fresh && self.is_writer() {
            let _ = std::fs::remove_file(self.dir.config_path());
            let _ = std::fs::remove_file(self.dir.checkpoint_path());
        }
    }
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
            path: path.to_path_buf(),
            cause: e,
        }),
        _ => Ok(()),
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

/// A fingerprint of a vocabulary (CRC-32 of its tokens in id order), stored with the weights and
/// in checkpoints so that a `vocab.txt` that was replaced is noticed.
pub fn vocab_fingerprint(vocab: &Vocab) -> String {
    let mut h = crc32fast::Hasher::new();
    for t in vocab.tokens() {
        h.update(t.as_bytes());
        h.update(&[0]);
    }
    format!("crc32:{:08x}:{}", h.finalize(), vocab.len())
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

/// Version of the `config.json` written by supervised runs (`seqrnn forecast`, `seqrnn classify`).
pub const TASK_FORMAT_VERSION: u32 = 1;

/// Reads the `config.json` of `run` and checks that it was written by a `task` run
/// (`"forecast"` or `"classify"`) this build can read; returns the parsed JSON.
///
/// # Errors
/// [`Error::Data`] when the folder is missing, [`Error::Io`] when its `config.json` cannot be
/// read; [`Error::Format`] naming what the folder
/// holds instead (a language-model run, another task, a newer format).
pub fn load_task_config(run: &RunDir, task: &str) -> Result<serde_json::Value> {
    let path = run.config_path();
    let bad = |message: String| Error::Format {
        path: path.clone(),
        message,
    };
    let v = run.read_config_json()?;
    match v.get("task").and_then(|t| t.as_str()) {
        Some(t) if t == task => {}
        Some(other) => {
            return Err(bad(format!(
                "this is a `{other}` run, not a `{task}` run: use `seqrnn {other} eval` with it"
            )))
        }
        None if v.get("tokens").is_some() => {
            return Err(bad(format!(
                "this is a language-model run, not a `{task}` run: use `seqrnn eval` or `seqrnn generate` with it"
            )))
        }
        None => return Err(bad("not a seqrnn run configuration (no `task`)".into())),
    }
    let format = v.get("format").and_then(|f| f.as_u64()).unwrap_or(0);
    if format == 0 || format > TASK_FORMAT_VERSION as u64 {
        return Err(bad(format!(
            "format {format} is not readable by this build (it reads 1 to {TASK_FORMAT_VERSION})"
        )));
    }
    Ok(v)
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
    fn a_run_of_another_task_is_named() {
        let d = tmp("other-task");
        std::fs::write(
            d.join("config.json"),
            r#"{"format": 1, "task": "forecast"}"#,
        )
        .unwrap();
        let e = RunDir::new(&d).load_config().unwrap_err().to_string();
        assert!(
            e.contains("this is a `forecast` run, not a language-model run"),
            "{e}"
        );
    }

    #[test]
    fn a_run_with_a_checkpoint_but_no_weights_says_it_has_no_finished_epoch() {
        let d = tmp("no-epoch");
        let run = RunDir::new(&d);
        // Nothing at all: the operating system's message, once.
        let e = run.load_weights("train").unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
        // A checkpoint but no model.safetensors (stopped during the first epoch).
        std::fs::write(run.checkpoint_path(), b"a checkpoint").unwrap();
        let e = run.load_weights("forecast train").unwrap_err();
        assert!(matches!(e, Error::NoFinishedEpoch { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("has a checkpoint but no finished epoch yet")
                && text.contains("no trained weights")
                && !text.contains('\n'),
            "{text}"
        );
        // The same through load_model, after config.json and vocab.txt.
        let mut vocab = Vocab::new();
        for t in ["<unk>", "a", "b"] {
            vocab.add(t);
        }
        vocab.save(&run.vocab_path()).unwrap();
        let model = LmConfig {
            vocab: 3,
            embed: 2,
            cell: CellKind::Lstm,
            hidden: 2,
            layers: 1,
            last_hidden: None,
            dropout: crate::dropout::Dropout::NONE,
            output: crate::model::embedding::OutputWeights::Separate,
            reg: Default::default(),
        };
        run.save_config(&RunConfig {
            format: FORMAT_VERSION,
            tokens: TokenKindName::Word,
            model,
            train: serde_json::Value::Null,
        })
        .unwrap();
        let e = run.load_model().unwrap_err();
        assert!(
            matches!(e, Error::NoFinishedEpoch { train: "train", .. }),
            "{e}"
        );
        // Once the first epoch has written the weights, they load.
        let lm = LanguageModel::new(model).unwrap();
        save_model(&run.model_path(), &lm, &vec![0.0; lm.num_params()], &vocab).unwrap();
        assert!(run.load_model().is_ok());
    }
}

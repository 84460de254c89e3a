//! A run directory: everything a training run leaves behind, and how to read it back.
//!
//! | file | contents |
//! |---|---|
//! | `config.json` | format version, task, what the task keeps of its data, model and training configuration ([`RunConfig`]) |
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

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::data::Vocab;
use crate::dist::Group;
use crate::error::{Error, Result};
use crate::io::tensors::TensorFile;
use crate::io::write_atomic;

/// File name of a run's end-of-training summary: its presence marks the run as finished.
pub const SUMMARY_FILE: &str = "summary.json";

/// Version of the `config.json` format written by this build.
pub const FORMAT_VERSION: u32 = 1;

/// The `task` of a language-model run (`seqrnn train`). Runs written before every run named
/// its task hold no `task`: they are recognised by their `tokens`.
pub const LANGUAGE_MODEL_TASK: &str = "lm";

/// The `config.json` of a run: the format, the task, what the task keeps of its data (`D`,
/// written beside the other keys), the model (`M`) and the training settings (`T`).
///
/// A task names its own with a type alias (for example `seqrnn::classify::ClassifyRunConfig`)
/// and describes it with [`RunKind`]; [`RunConfig::save`] and [`RunConfig::load`] serve them
/// all.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig<M, T, D = NoData> {
    /// Format version ([`FORMAT_VERSION`] when written by this build).
    pub format: u32,
    /// The task that wrote it ([`RunKind::TASK`]).
    #[serde(default)]
    pub task: String,
    /// What the task keeps of its data.
    #[serde(flatten)]
    pub data: D,
    /// The model.
    pub model: M,
    /// Training settings.
    pub train: T,
    /// How the weights are stored when not in f32: `"int8"` for a run made by `seqrnn
    /// quantize` (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantized: Option<Quantized>,
}

/// The `config.json` key of a quantized run ([`RunConfig::quantized`]).
pub const QUANTIZED_KEY: &str = "quantized";

/// How a quantized run stores its weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantized {
    /// Weight matrices in 8 bits with one scale per output channel (`linalg::int8`), run on
    /// the integer kernels.
    Int8,
}

/// The data of a run whose task keeps nothing of it in `config.json` (its vocabularies sit
/// beside it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoData {}

/// What [`RunConfig::save`] and [`RunConfig::load`] need to know of a task's run
/// configuration.
pub trait RunKind: Serialize + DeserializeOwned {
    /// The `task` in `config.json` (`"classify"`).
    const TASK: &'static str;
    /// The task's name in messages (`"classification"`).
    const NAME: &'static str;

    /// Checks that the configuration is consistent (its model, and its model against its
    /// data); `path` is the `config.json` that errors name.
    ///
    /// # Errors
    /// The model's own validation error, or [`Error::Format`] naming `path`.
    fn check(&self, path: &Path) -> Result<()>;

    /// The message that refuses a run of the task `other` ([`LANGUAGE_MODEL_TASK`] for a
    /// language model), telling which commands use it.
    fn refuse(other: &str) -> String {
        match other {
            LANGUAGE_MODEL_TASK => format!(
                "this is a language-model run, not a `{}` run: use `seqrnn eval` or `seqrnn generate` with it",
                Self::TASK
            ),
            _ => format!(
                "this is a `{other}` run, not a `{}` run: use `seqrnn {other} eval` with it",
                Self::TASK
            ),
        }
    }
}

impl<M, T, D> RunConfig<M, T, D>
where
    Self: RunKind,
{
    /// A configuration of this build's format for the task.
    pub fn new(model: M, train: T, data: D) -> Self {
        RunConfig {
            format: FORMAT_VERSION,
            task: Self::TASK.into(),
            data,
            model,
            train,
            quantized: None,
        }
    }

    /// Writes `config.json` into `run` atomically.
    ///
    /// # Errors
    /// [`Error::Format`] when it cannot be serialised, [`Error::Io`] when it cannot be written.
    pub fn save(&self, run: &RunDir) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Format {
            path: run.config_path(),
            message: e.to_string(),
        })?;
        write_atomic(&run.config_path(), text.as_bytes())
    }

    /// Reads `config.json` of `run` and checks it ([`RunKind::check`]).
    ///
    /// # Errors
    /// [`Error::Data`] when the folder is missing, [`Error::Io`] when its `config.json` cannot
    /// be read; [`Error::Format`] when it is not JSON, names another task ([`RunKind::refuse`]),
    /// has a format this build does not read, or is not a configuration of the task.
    pub fn load(run: &RunDir) -> Result<Self> {
        let path = run.config_path();
        let value = load_task_config(run, Self::TASK, Self::refuse)?;
        let mut config: Self = serde_json::from_value(value).map_err(|e| Error::Format {
            path: path.clone(),
            message: format!("unreadable {} configuration ({e})", Self::NAME),
        })?;
        // A language-model run written before runs named their task.
        config.task = Self::TASK.into();
        config.check(&path)?;
        Ok(config)
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
        if d.read_config_json()?.get(QUANTIZED_KEY).is_some() {
            return Err(Error::Quantized {
                path: dir.to_path_buf(),
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

/// Reads the `config.json` of `run` and checks that it was written by a `task` run this build
/// can read; returns the parsed JSON. A run of another task is refused with `refuse(other)`
/// ([`RunKind::refuse`]); a run that names no task but holds `tokens` is a language-model run
/// written before runs named their task ([`LANGUAGE_MODEL_TASK`]).
///
/// # Errors
/// [`Error::Data`] when the folder is missing, [`Error::Io`] when its `config.json` cannot be
/// read; [`Error::Format`] naming what the folder holds instead (another task, a format this
/// build does not read).
pub fn load_task_config(
    run: &RunDir,
    task: &str,
    refuse: impl Fn(&str) -> String,
) -> Result<serde_json::Value> {
    let path = run.config_path();
    let bad = |message: String| Error::Format {
        path: path.clone(),
        message,
    };
    let v = run.read_config_json()?;
    match task_of(&v) {
        Some(t) if t == task => {}
        Some(other) => return Err(bad(refuse(other))),
        None => return Err(bad("not a seqrnn run configuration (no `task`)".into())),
    }
    match v.get("format").and_then(|f| f.as_u64()).unwrap_or(0) {
        0 => Err(bad(format!(
            "format 0 is not readable by this build (it reads 1 to {FORMAT_VERSION})"
        ))),
        f if f > u64::from(FORMAT_VERSION) => Err(bad(format!(
            "written by a newer seqrnn (format {f}; this build reads up to {FORMAT_VERSION})"
        ))),
        _ => Ok(v),
    }
}

/// The task that wrote a `config.json`: its `task`, or [`LANGUAGE_MODEL_TASK`] for a
/// language-model run written before runs named their task.
pub fn task_of(config: &serde_json::Value) -> Option<&str> {
    match config.get("task").and_then(|t| t.as_str()) {
        Some(t) => Some(t),
        None if config.get("tokens").is_some() => Some(LANGUAGE_MODEL_TASK),
        None => None,
    }
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

    /// A task of the tests: a model size, a step count, a name kept of its data.
    type DemoRunConfig = RunConfig<usize, u32, DemoData>;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct DemoData {
        name: String,
    }

    impl RunKind for DemoRunConfig {
        const TASK: &'static str = "demo";
        const NAME: &'static str = "demonstration";

        fn check(&self, path: &Path) -> Result<()> {
            match self.model {
                0 => Err(Error::Format {
                    path: path.to_path_buf(),
                    message: "an empty model".into(),
                }),
                _ => Ok(()),
            }
        }
    }

    fn demo(name: &str) -> DemoRunConfig {
        RunConfig::new(3, 7, DemoData { name: name.into() })
    }

    fn load_err(run: &RunDir, json: &str) -> String {
        std::fs::write(run.config_path(), json).unwrap();
        DemoRunConfig::load(run).unwrap_err().to_string()
    }

    #[test]
    fn a_configuration_is_saved_flat_and_loaded_back() {
        let run = RunDir::new(tmp("round-trip"));
        let config = demo("a");
        assert_eq!(
            (config.format, config.task.as_str()),
            (FORMAT_VERSION, "demo")
        );
        config.save(&run).unwrap();
        let text = std::fs::read_to_string(run.config_path()).unwrap();
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().split(':').next())
            .filter(|k| k.starts_with('"'))
            .collect();
        assert_eq!(
            keys,
            [
                "\"format\"",
                "\"task\"",
                "\"name\"",
                "\"model\"",
                "\"train\""
            ]
        );
        let back = DemoRunConfig::load(&run).unwrap();
        assert_eq!(back, config);
        assert_eq!(back.data.name, "a");
        // Keys in another order (earlier versions wrote the data among the other keys).
        std::fs::write(
            run.config_path(),
            r#"{"train": 7, "name": "a", "model": 3, "task": "demo", "format": 1}"#,
        )
        .unwrap();
        assert_eq!(DemoRunConfig::load(&run).unwrap(), config);
        // The task's own check runs on load.
        RunConfig { model: 0, ..config }.save(&run).unwrap();
        let e = DemoRunConfig::load(&run).unwrap_err().to_string();
        assert!(e.contains("an empty model"), "{e}");
    }

    #[test]
    fn a_run_of_another_task_is_named() {
        let run = RunDir::new(tmp("other-task"));
        let e = load_err(&run, r#"{"format": 1, "task": "forecast"}"#);
        assert!(
            e.contains("this is a `forecast` run, not a `demo` run: use `seqrnn forecast eval`"),
            "{e}"
        );
        // A language-model run, written before or after runs named their task.
        for json in [
            r#"{"format": 1, "tokens": "word", "model": {}}"#,
            r#"{"format": 1, "task": "lm", "tokens": "word", "model": {}}"#,
        ] {
            let e = load_err(&run, json);
            assert!(
                e.contains("this is a language-model run, not a `demo` run: use `seqrnn eval`"),
                "{e}"
            );
        }
        let e = load_err(&run, r#"{"format": 1}"#);
        assert!(
            e.contains("not a seqrnn run configuration (no `task`)"),
            "{e}"
        );
    }

    #[test]
    fn a_format_this_build_does_not_read_is_refused() {
        let run = RunDir::new(tmp("format"));
        let e = load_err(&run, r#"{"format": 7, "task": "demo"}"#);
        assert!(
            e.contains("written by a newer seqrnn (format 7; this build reads up to 1)"),
            "{e}"
        );
        let e = load_err(&run, r#"{"task": "demo"}"#);
        assert!(e.contains("format 0 is not readable"), "{e}");
        let e = load_err(&run, r#"{"format": 1, "task": "demo", "model": 3}"#);
        assert!(e.contains("unreadable demonstration configuration"), "{e}");
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
    }
}

//! The library's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the library, each with a message meant for a user.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration or hyperparameter that makes no sense.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A buffer or tensor whose size does not match what the operation needs.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A file could not be read or written.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What the operating system said (part of the message, so not also a `source()`:
        /// a chain printer shows it once).
        cause: std::io::Error,
    },
    /// A data file (corpus, vocabulary, table) whose contents cannot be used.
    #[error("{path}: {message}")]
    Data {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it, with a line number where one helps.
        message: String,
    },
    /// A text file read as UTF-8 (the default encoding) that is not: the file may be in
    /// another encoding ([`crate::data::text::Encoding`]).
    #[error("{}: line {line} is not valid UTF-8 (byte offset {offset})", path.display())]
    NotUtf8 {
        /// The file concerned.
        path: PathBuf,
        /// The 1-based line of the first invalid byte.
        line: usize,
        /// The offset of that byte in the file, from 0.
        offset: u64,
    },
    /// Training produced a non-finite loss or gradient.
    #[error("training diverged at epoch {epoch}, step {step}: {what}; the last good checkpoint was kept")]
    Diverged {
        /// Epoch (1-based).
        epoch: usize,
        /// Step within the run (1-based).
        step: u64,
        /// What became non-finite.
        what: String,
    },
    /// A dataset could not be fetched or failed verification.
    #[error("{0}")]
    Download(String),
    /// A fresh run was asked for in a folder that holds one.
    #[error("{} already holds a run", dir.display())]
    RunExists {
        /// The run folder.
        dir: PathBuf,
    },
    /// A resume was asked for in a folder that holds no run.
    #[error("{} holds no run to resume (no config.json, so no checkpoint to continue from)", dir.display())]
    NoRun {
        /// The folder.
        dir: PathBuf,
    },
    /// A quantized run (made by `seqrnn quantize`) given to a command that trains.
    #[error("{} holds an int8-quantized model (made by `seqrnn quantize`), which runs inference only: train or resume the f32 run it was made from", path.display())]
    Quantized {
        /// The run folder or weights file.
        path: PathBuf,
    },
    /// A run folder without a checkpoint to resume from.
    #[error("{} holds no checkpoint.safetensors to resume from: the run stopped before its first checkpoint", dir.display())]
    NoCheckpoint {
        /// The run folder.
        dir: PathBuf,
    },
    /// A run folder holding a checkpoint but no `model.safetensors` yet: training was stopped
    /// during its first epoch, so there are no trained weights to use (the run can be resumed).
    #[error("{}: the run has a checkpoint but no finished epoch yet, so there are no trained weights to use", dir.display())]
    NoFinishedEpoch {
        /// The run folder.
        dir: PathBuf,
        /// The subcommand that trains and resumes it: `train`, `forecast train` or
        /// `classify train`.
        train: &'static str,
    },
    /// Another rank of a data-parallel run failed (and said why); this one stops with it.
    #[error("rank {rank} failed (its message says why)")]
    RankFailed {
        /// The lowest rank that failed.
        rank: usize,
    },
    /// The ranks of a data-parallel run disagree (settings, data, weights).
    #[error("data-parallel training: {0}")]
    Distributed(String),
    /// A safetensors file that cannot be parsed or lacks a tensor.
    #[error("{path}: {message}")]
    Format {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

/// `Result` with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The library's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the library, each with a message meant for a user.
///
/// Each message is complete on its own: [`Error::Io`] shows the operating system's message after
/// the path, and [`source`](std::error::Error::source) is `None` for every variant, so a caller
/// that prints the whole chain (`anyhow`'s `{:#}`) shows each cause once.
#[derive(Debug)]
pub enum Error {
    /// A configuration or hyperparameter that makes no sense.
    Config(String),
    /// A buffer or tensor whose size does not match what the operation needs.
    Shape(String),
    /// A file could not be read or written.
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What the operating system said (part of the message, not a separate
        /// [`source`](std::error::Error::source)).
        source: std::io::Error,
    },
    /// A data file (corpus, vocabulary, table) whose contents cannot be used.
    Data {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it, with a line number where one helps.
        message: String,
    },
    /// Training produced a non-finite loss or gradient.
    Diverged {
        /// Epoch (1-based).
        epoch: usize,
        /// Step within the run (1-based).
        step: u64,
        /// What became non-finite.
        what: String,
    },
    /// A dataset could not be fetched or failed verification.
    Download(String),
    /// A run folder holding a checkpoint but no `model.safetensors` yet: training was stopped
    /// during its first epoch, so there are no trained weights to use (the run can be resumed).
    NoFinishedEpoch {
        /// The run folder.
        dir: PathBuf,
        /// The subcommand that trains and resumes it: `train`, `forecast train` or
        /// `classify train`.
        train: &'static str,
    },
    /// A safetensors file that cannot be parsed or lacks a tensor.
    Format {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Config(m) => write!(f, "invalid configuration: {m}"),
            Error::Shape(m) => write!(f, "shape mismatch: {m}"),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Data { path, message } | Error::Format { path, message } => {
                write!(f, "{}: {message}", path.display())
            }
            Error::Diverged { epoch, step, what } => write!(
                f,
                "training diverged at epoch {epoch}, step {step}: {what}; the last good checkpoint was kept; try a lower learning rate (--lr) or a gradient clip (--clip)"
            ),
            Error::Download(m) => write!(f, "{m}"),
            Error::NoFinishedEpoch { dir, train } => write!(
                f,
                "{0}: the run has a checkpoint but no finished epoch yet, so there are no trained weights to use; continue it with `seqrnn {train} --resume --out {0} ...`",
                dir.display()
            ),
        }
    }
}

// No `source()`: every message already holds its cause (see [`Error`]).
impl std::error::Error for Error {}

/// `Result` with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

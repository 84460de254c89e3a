//! `seqrnn._seqrnn`, the native module of the `seqrnn` Python package: a door onto the
//! `seqrnn` library with no behaviour of its own.
//!
//! - [`layers`]: the engine's recurrent stack as a layer (`seqrnn.LSTM`/`GRU` wrap it).
//! - [`tasks`]: a trained run of any task (`seqrnn.load`).
//! - [`training`]: the training commands, with the command line's flags (`seqrnn.train`).
//!
//! Every computation runs with the interpreter released, on a rayon pool of the threads asked
//! for ([`Threads`]), so two Python threads compute at once.

use std::sync::{Arc, Mutex};

use pyo3::create_exception;
use pyo3::exceptions::{PyFileNotFoundError, PyValueError};
use pyo3::prelude::*;
use rayon::ThreadPool;

mod layers;
mod tasks;
mod training;

create_exception!(
    _seqrnn,
    SeqrnnError,
    PyValueError,
    "A refusal of the seqrnn library (bad input, a run that does not match, impossible settings), with its message."
);

/// The library's error as a Python exception: a missing file is `FileNotFoundError`, any other
/// refusal a [`SeqrnnError`].
pub(crate) fn lib_err(e: seqrnn::Error) -> PyErr {
    match &e {
        seqrnn::Error::Io { cause, .. } if cause.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(e.to_string())
        }
        _ => SeqrnnError::new_err(e.to_string()),
    }
}

/// The threads of the computations: a rayon pool, and the count the matrix products split
/// their work into (`seqrnn::linalg::set_threads`, as the command line's `--threads` sets it).
#[derive(Clone)]
pub(crate) struct Threads(Arc<ThreadPool>);

/// The pool of `seqrnn.set_threads` (by default, one thread a core).
static DEFAULT_THREADS: Mutex<Option<Threads>> = Mutex::new(None);

impl Threads {
    /// A pool of `n` threads.
    fn new(n: usize) -> PyResult<Threads> {
        if n == 0 {
            return Err(PyValueError::new_err("threads must be at least 1"));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("seqrnn-{i}"))
            .build()
            .map_err(|e| SeqrnnError::new_err(format!("could not start {n} threads: {e}")))?;
        Ok(Threads(Arc::new(pool)))
    }

    /// `n` threads, or the default pool when `None`.
    pub(crate) fn get(n: Option<usize>) -> PyResult<Threads> {
        match n {
            Some(n) => Threads::new(n),
            None => {
                let mut d = DEFAULT_THREADS.lock().unwrap_or_else(|p| p.into_inner());
                if d.is_none() {
                    *d = Some(Threads::new(cores())?);
                }
                Ok(d.clone().expect("set above"))
            }
        }
    }

    /// Its thread count.
    pub(crate) fn count(&self) -> usize {
        self.0.current_num_threads()
    }

    /// Runs `f` on the pool with the interpreter released (its products split for this pool:
    /// `seqrnn::linalg::threads`).
    pub(crate) fn run<T: Send>(&self, py: Python<'_>, f: impl FnOnce() -> T + Send) -> T {
        py.detach(|| self.0.install(f))
    }

    /// Starts `f` on the pool and returns at once.
    pub(crate) fn spawn(&self, f: impl FnOnce() + Send + 'static) {
        self.0.spawn(f);
    }
}

/// The cores this process may use.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Sets the threads of every computation that is not given its own (`threads=`): layers, and
/// runs loaded or trained without `threads`. The default is one thread a core.
#[pyfunction]
fn set_threads(n: usize) -> PyResult<()> {
    let t = Threads::new(n)?;
    *DEFAULT_THREADS.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
    Ok(())
}

/// The threads of computations given none of their own (see `set_threads`).
#[pyfunction]
fn get_threads() -> PyResult<usize> {
    Ok(Threads::get(None)?.count())
}

#[pymodule]
fn _seqrnn(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Every computation runs on a pool of its own size (`Threads`): the products use as many
    // threads as the pool they run in has.
    seqrnn::linalg::set_threads(usize::MAX);
    m.add("SeqrnnError", m.py().get_type::<SeqrnnError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(set_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_threads, m)?)?;
    layers::register(m)?;
    tasks::register(m)?;
    training::register(m)?;
    Ok(())
}

//! The training commands from Python (`seqrnn.train`): the command line's arguments, parsed by
//! its own flags (`seqrnn_cli::embed`), run on the pool's threads while the calling thread
//! waits with the interpreter released, and looks for Ctrl-C between waits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::exceptions::{PyFileNotFoundError, PyKeyboardInterrupt};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use seqrnn_cli::embed::{self, Embedding};

use crate::{SeqrnnError, Threads};

/// How often the waiting thread looks for signals.
const POLL: Duration = Duration::from_millis(50);

/// The first Python exception of a run (Ctrl-C, or one the callback raised): it stops the
/// training at a checkpoint and is raised when the command returns.
#[derive(Clone, Default)]
struct Raised {
    stop: Arc<AtomicBool>,
    error: Arc<Mutex<Option<PyErr>>>,
}

impl Raised {
    fn set(&self, e: PyErr) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(e);
        self.stop.store(true, Ordering::Relaxed);
    }

    fn take(&self) -> Option<PyErr> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// A JSON value as the Python object `json.loads` would give.
fn to_py<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(f)) => f.into_pyobject(py)?.into_any(),
            _ => py.None().into_bound(py),
        },
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(a) => {
            let items = a
                .iter()
                .map(|x| to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

/// Runs the command of `args` (the command line's, without the program name) on `threads`
/// threads. `callback(metrics: dict)` is called at each validation instead of the progress
/// lines; Ctrl-C, or an exception of the callback, stops the training after its checkpoint and
/// is raised then (`resume_hint` says how to go on). Errors: `FileNotFoundError` for a missing
/// file, `SeqrnnError` for any other refusal (flags included).
#[pyfunction]
#[pyo3(signature = (args, callback=None, resume_hint=String::new(), threads=None))]
fn run_command(
    py: Python<'_>,
    args: Vec<String>,
    callback: Option<Py<PyAny>>,
    resume_hint: String,
    threads: Option<usize>,
) -> PyResult<()> {
    let threads = Threads::get(threads)?;
    let raised = Raised::default();
    let (tx, rx) = mpsc::channel();
    // Waited on with the interpreter released, so shared with the waiting closure.
    let rx = Mutex::new(rx);
    let r = raised.clone();
    threads.spawn(move || {
        let stop = Arc::clone(&r.stop);
        let validated = callback.map(|cb| {
            let r = r.clone();
            Box::new(move |m: serde_json::Value| {
                Python::attach(|py| {
                    let called = to_py(py, &m).and_then(|d| cb.call1(py, (d,)));
                    if let Err(e) = called {
                        r.set(e);
                    }
                })
            }) as Box<dyn FnMut(serde_json::Value)>
        });
        let embedding = Embedding {
            should_stop: Box::new(move || stop.load(Ordering::Relaxed)),
            validated,
            resume_hint,
        };
        let out = embed::run(&args, embedding).map_err(|e| {
            let interrupted = embed::is_interrupted(&e);
            (interrupted, embed::is_not_found(&e), embed::message(&e))
        });
        let _ = tx.send(out);
    });
    let out = loop {
        let next = py.detach(|| match rx.lock() {
            Ok(r) => r.recv_timeout(POLL),
            Err(_) => Err(mpsc::RecvTimeoutError::Disconnected),
        });
        match next {
            Ok(out) => break out,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(e) = py.check_signals() {
                    raised.set(e);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Err((
                    false,
                    false,
                    "the training thread ended without a result".into(),
                ))
            }
        }
    };
    match (out, raised.take()) {
        (Ok(()), None) => Ok(()),
        (Ok(()), Some(e)) | (Err((true, _, _)), Some(e)) => Err(e),
        (Err((true, _, m)), None) => Err(PyKeyboardInterrupt::new_err(m)),
        (Err((_, true, m)), _) => Err(PyFileNotFoundError::new_err(m)),
        (Err((_, _, m)), _) => Err(SeqrnnError::new_err(m)),
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run_command, m)?)
}

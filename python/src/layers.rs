//! The engine's recurrent stack (`seqrnn::rnn::Rnn`) as `_seqrnn.Rnn`: its parameters in one
//! block in PyTorch's `state_dict` order, and the inference forward pass over whole sequences.
//! `seqrnn.LSTM` and `seqrnn.GRU` (python/seqrnn/_layers.py) give it PyTorch's interface.

use std::sync::Mutex;

use numpy::{
    PyArray1, PyArray3, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray3, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use seqrnn::rnn::{
    CellKind, Direction, GruVariant, Init, Rnn as Stack, RnnConfig, RnnState, RnnWorkspace,
    SeqShape,
};

use crate::{lib_err, Threads};

/// A stack of LSTM or GRU layers: `cell` is `"lstm"`, `"gru"` (PyTorch's reset-after form) or
/// `"gru-reset-before"` (Keras' `reset_after=False`). Weights start as PyTorch's default
/// (`U(−1/√H, 1/√H)`), drawn from `seed`.
#[pyclass(module = "seqrnn._seqrnn", frozen)]
pub struct Rnn {
    stack: Stack,
    /// The parameter block, `state_dict` order (see `tensors`).
    params: Mutex<Vec<f32>>,
    /// Buffers of the forward pass, kept between calls.
    ws: Mutex<RnnWorkspace>,
}

/// The tensors of an `[T, B, D·H]` output and the final state, as numpy arrays.
type Outputs<'py> = (
    Bound<'py, PyArray3<f32>>,
    Bound<'py, PyArray3<f32>>,
    Option<Bound<'py, PyArray3<f32>>>,
);

fn cell_kind(cell: &str) -> PyResult<CellKind> {
    Ok(match cell {
        "lstm" => CellKind::Lstm,
        "gru" => CellKind::Gru(GruVariant::ResetAfter),
        "gru-reset-before" => CellKind::Gru(GruVariant::ResetBefore),
        "mingru" => CellKind::MinGru,
        "minlstm" => CellKind::MinLstm,
        other => {
            return Err(PyValueError::new_err(format!(
                "cell must be \"lstm\", \"gru\", \"gru-reset-before\", \"mingru\" or \"minlstm\", not {other:?}"
            )))
        }
    })
}

/// A state tensor `[L·D, B, H]` given by the caller, or zeros.
fn state_part(
    given: Option<PyReadonlyArray3<'_, f32>>,
    len: usize,
    name: &str,
) -> PyResult<Vec<f32>> {
    match given {
        None => Ok(vec![0.0; len]),
        Some(a) => {
            let v = a.as_slice().map_err(|_| {
                PyValueError::new_err(format!("{name} must be a C-contiguous float32 array"))
            })?;
            if v.len() != len {
                return Err(PyValueError::new_err(format!(
                    "{name} holds {} values, the layer expects {len}",
                    v.len()
                )));
            }
            Ok(v.to_vec())
        }
    }
}

#[pymethods]
impl Rnn {
    #[new]
    #[pyo3(signature = (cell, input_size, hidden_size, num_layers=1, bidirectional=false, seed=0))]
    fn new(
        cell: &str,
        input_size: usize,
        hidden_size: usize,
        num_layers: usize,
        bidirectional: bool,
        seed: u64,
    ) -> PyResult<Self> {
        let config = RnnConfig {
            cell: cell_kind(cell)?,
            input_size,
            hidden_size,
            num_layers,
            direction: match bidirectional {
                true => Direction::Bidirectional,
                false => Direction::Forward,
            },
        };
        let stack = Stack::new(config).map_err(lib_err)?;
        let mut params = vec![0.0; stack.num_params()];
        Init::default()
            .apply(&config, &mut params, seed)
            .map_err(lib_err)?;
        Ok(Rnn {
            stack,
            params: Mutex::new(params),
            ws: Mutex::new(RnnWorkspace::default()),
        })
    }

    /// Every tensor of the block in `state_dict` order: `(name, shape, start, end)`.
    fn tensors(&self) -> Vec<(String, Vec<usize>, usize, usize)> {
        self.stack
            .layout()
            .tensors()
            .into_iter()
            .map(|t| (t.name, t.shape, t.range.start, t.range.end))
            .collect()
    }

    /// The number of parameters.
    #[getter]
    fn num_params(&self) -> usize {
        self.stack.num_params()
    }

    /// A copy of the parameter block.
    fn get_params<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        let p = self.params.lock().unwrap_or_else(|e| e.into_inner());
        PyArray1::from_slice(py, &p)
    }

    /// Replaces the parameter block (float32, `num_params` values, `state_dict` order).
    fn set_params(&self, block: PyReadonlyArray1<'_, f32>) -> PyResult<()> {
        let v = block
            .as_slice()
            .map_err(|_| PyValueError::new_err("the block must be a contiguous float32 array"))?;
        let mut p = self.params.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() != p.len() {
            return Err(PyValueError::new_err(format!(
                "the block holds {} values, the layer has {} parameters",
                v.len(),
                p.len()
            )));
        }
        p.copy_from_slice(v);
        Ok(())
    }

    /// The forward pass over `x[T, B, I]` (C-contiguous float32) from the state `h0` (and
    /// `c0` for an LSTM), `[L·D, B, H]` each, zeros when not given: `(y[T, B, D·H], h_n, c_n)`,
    /// `c_n` `None` for a GRU.
    #[pyo3(signature = (x, h0=None, c0=None))]
    fn forward<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray3<'py, f32>,
        h0: Option<PyReadonlyArray3<'py, f32>>,
        c0: Option<PyReadonlyArray3<'py, f32>>,
    ) -> PyResult<Outputs<'py>> {
        let cfg = *self.stack.config();
        let [t, b, i] = <[usize; 3]>::try_from(x.shape()).expect("a 3-D array");
        if i != cfg.input_size || t == 0 || b == 0 {
            return Err(PyValueError::new_err(format!(
                "x must be [T, B, {}] with T, B ≥ 1, got {:?}",
                cfg.input_size,
                x.shape()
            )));
        }
        let xs = x
            .as_slice()
            .map_err(|_| PyValueError::new_err("x must be a C-contiguous float32 array"))?;
        let slices = cfg.state_slices() * b * cfg.hidden_size;
        let mut state = RnnState {
            h: state_part(h0, slices, "h0")?,
            c: match cfg.cell.has_cell_state() {
                true => state_part(c0, slices, "c0")?,
                false => Vec::new(),
            },
        };
        let mut y = vec![0.0f32; t * b * cfg.output_size()];
        let threads = Threads::get(None)?;
        threads
            .run(py, || {
                let params = self.params.lock().unwrap_or_else(|e| e.into_inner());
                let mut ws = self.ws.lock().unwrap_or_else(|e| e.into_inner());
                let shape = SeqShape { t, b };
                self.stack
                    .forward_infer(&params, xs, shape, &mut state, &mut y, &mut ws)
            })
            .map_err(lib_err)?;
        let dims = [cfg.state_slices(), b, cfg.hidden_size];
        let y = PyArray1::from_vec(py, y).reshape([t, b, cfg.output_size()])?;
        let h = PyArray1::from_vec(py, state.h).reshape(dims)?;
        let c = match cfg.cell.has_cell_state() {
            true => Some(PyArray1::from_vec(py, state.c).reshape(dims)?),
            false => None,
        };
        Ok((y, h, c))
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Rnn>()
}

//! Plain-loop `f64` reference implementation of stacked, optionally bidirectional LSTM and GRU
//! layers, forward and backward: the test oracle for the fast kernels.
//!
//! Everything here is written for clarity, not speed: one batch element and one output element at
//! a time, explicit per-element loops, no blocking, no parallelism, no shared buffers, all in
//! `f64`. The backward pass is explicit backpropagation through time over values saved by the
//! forward pass (it does not use finite differences); the tests at the bottom check it against
//! central differences and against gradients computed by PyTorch.
//!
//! Conventions follow PyTorch exactly:
//!
//! * buffers are time-major and row-major: input `x[T, B, I]`, output `y[T, B, D·H]` (for a
//!   bidirectional stack each time step holds `[forward H | reverse H]`), states
//!   `h0, c0, h_n, c_n` are `[L·D, B, H]` with slice index `layer·D + dir`;
//! * parameters are keyed by PyTorch `state_dict` names (see [`param_shapes`]);
//! * layer `k > 0` reads the whole concatenated output of layer `k − 1`;
//! * the reverse direction runs from `t = T − 1` down to `0`, starting from its own `h0` slice, and
//!   its output for time `t` is stored at time `t`.
//!
//! Cells (`σ` is the logistic sigmoid, `⊙` the element-wise product):
//!
//! * LSTM, gate rows `i, f, g, o`: `i = σ(W_ii x + b_ii + W_hi h + b_hi)`, likewise `f` and `o`,
//!   `g = tanh(…)`, `c' = f ⊙ c + i ⊙ g`, `h' = o ⊙ tanh(c')`;
//! * GRU [`GruVariant::ResetAfter`], gate rows `r, z, n`: `r = σ(W_ir x + b_ir + W_hr h + b_hr)`,
//!   likewise `z`, `n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))`, `h' = (1 − z) ⊙ n + z ⊙ h`;
//! * GRU [`GruVariant::ResetBefore`]: `r`, `z` as above,
//!   `n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn)`, `h' = (1 − z) ⊙ n + z ⊙ h`.

use std::collections::BTreeMap;

use super::config::{CellKind, GruVariant, RnnConfig};

/// Parameters (or their gradients) keyed by PyTorch `state_dict` names, each a row-major buffer.
pub type RefParams = BTreeMap<String, Vec<f64>>;

/// Result of a reference forward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct RefForward {
    /// Output of the last layer, `[T, B, D·H]`.
    pub y: Vec<f64>,
    /// Final hidden state of every layer and direction, `[L·D, B, H]`.
    pub h_n: Vec<f64>,
    /// Final cell state of every layer and direction, `[L·D, B, H]`; LSTM only.
    pub c_n: Option<Vec<f64>>,
}

/// Gradients of a scalar loss with respect to inputs and parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct RefGrads {
    /// Gradient with respect to the input `x`, `[T, B, I]`.
    pub dx: Vec<f64>,
    /// Gradient with respect to the initial hidden state `h0`, `[L·D, B, H]`.
    pub dh0: Vec<f64>,
    /// Gradient with respect to the initial cell state `c0`, `[L·D, B, H]`; LSTM only.
    pub dc0: Option<Vec<f64>>,
    /// Gradient with respect to every parameter, with the same keys and shapes as the parameters.
    pub dparams: RefParams,
}

/// PyTorch name of parameter `base` (`weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`) of layer
/// `layer`, direction `dir` (0 forward, 1 reverse).
fn param_name(base: &str, layer: usize, dir: usize) -> String {
    let suffix = if dir == 0 { "" } else { "_reverse" };
    format!("{base}_l{layer}{suffix}")
}

/// Names and shapes of all parameters, in PyTorch `state_dict` order: layer 0 forward
/// (`weight_ih_l0 [G·H, I]`, `weight_hh_l0 [G·H, H]`, `bias_ih_l0 [G·H]`, `bias_hh_l0 [G·H]`),
/// then layer 0 reverse (suffix `_reverse`) for a bidirectional stack, then layer 1, and so on.
/// Layer `k > 0` has input size `D·H`.
pub fn param_shapes(config: &RnnConfig) -> Vec<(String, Vec<usize>)> {
    let gh = config.cell.gates() * config.hidden_size;
    let mut shapes = Vec::new();
    for layer in 0..config.num_layers {
        for dir in 0..config.directions() {
            let input = config.layer_input_size(layer);
            shapes.push((param_name("weight_ih", layer, dir), vec![gh, input]));
            if config.cell.is_minimal() {
                // No recurrent weights or biases.
                shapes.push((param_name("bias_ih", layer, dir), vec![gh]));
                continue;
            }
            shapes.push((
                param_name("weight_hh", layer, dir),
                vec![gh, config.hidden_size],
            ));
            shapes.push((param_name("bias_ih", layer, dir), vec![gh]));
            shapes.push((param_name("bias_hh", layer, dir), vec![gh]));
        }
    }
    shapes
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// `out[r] += Σ_c w[r, c] · v[c]` for a row-major `w[rows, v.len()]`.
fn add_matvec(w: &[f64], v: &[f64], out: &mut [f64]) {
    let cols = v.len();
    assert_eq!(w.len(), out.len() * cols);
    for (r, o) in out.iter_mut().enumerate() {
        for (c, vc) in v.iter().enumerate() {
            *o += w[r * cols + c] * vc;
        }
    }
}

/// `out[c] += Σ_r w[r, c] · d[r]` for a row-major `w[d.len(), out.len()]`.
fn add_matvec_transposed(w: &[f64], d: &[f64], out: &mut [f64]) {
    let cols = out.len();
    assert_eq!(w.len(), d.len() * cols);
    for (r, dr) in d.iter().enumerate() {
        for (c, o) in out.iter_mut().enumerate() {
            *o += w[r * cols + c] * dr;
        }
    }
}

/// `dw[r, c] += d[r] · v[c]` for a row-major `dw[d.len(), v.len()]`.
fn add_outer(dw: &mut [f64], d: &[f64], v: &[f64]) {
    let cols = v.len();
    assert_eq!(dw.len(), d.len() * cols);
    for (r, dr) in d.iter().enumerate() {
        for (c, vc) in v.iter().enumerate() {
            dw[r * cols + c] += dr * vc;
        }
    }
}

/// `acc[k] += v[k]`.
fn add_into(acc: &mut [f64], v: &[f64]) {
    assert_eq!(acc.len(), v.len());
    for (a, b) in acc.iter_mut().zip(v) {
        *a += b;
    }
}

/// The four parameter tensors of one direction of one layer.
struct DirWeights<'a> {
    w_ih: &'a [f64],
    w_hh: &'a [f64],
    b_ih: &'a [f64],
    b_hh: &'a [f64],
}

impl<'a> DirWeights<'a> {
    fn get(config: &RnnConfig, params: &'a RefParams, layer: usize, dir: usize) -> Self {
        let gh = config.cell.gates() * config.hidden_size;
        let input = config.layer_input_size(layer);
        let fetch = |base: &str, len: usize| -> &'a [f64] {
            let name = param_name(base, layer, dir);
            let value = params
                .get(&name)
                .unwrap_or_else(|| panic!("missing parameter {name}"));
            assert_eq!(value.len(), len, "parameter {name} has the wrong length");
            value
        };
        if config.cell.is_minimal() {
            return DirWeights {
                w_ih: fetch("weight_ih", gh * input),
                w_hh: &[],
                b_ih: fetch("bias_ih", gh),
                b_hh: &[],
            };
        }
        DirWeights {
            w_ih: fetch("weight_ih", gh * input),
            w_hh: fetch("weight_hh", gh * config.hidden_size),
            b_ih: fetch("bias_ih", gh),
            b_hh: fetch("bias_hh", gh),
        }
    }
}

/// Gradient accumulators for the four parameter tensors of one direction of one layer.
struct DirGrads {
    w_ih: Vec<f64>,
    w_hh: Vec<f64>,
    b_ih: Vec<f64>,
    b_hh: Vec<f64>,
}

/// Values saved by the forward pass for one batch element at one time step.
struct StepCache {
    /// Hidden state before the step, `[H]`.
    h_prev: Vec<f64>,
    /// Cell state before the step, `[H]` (LSTM only, empty otherwise).
    c_prev: Vec<f64>,
    /// Gate activations after their nonlinearity, `[G·H]`: `i, f, g, o` or `r, z, n`.
    act: Vec<f64>,
    /// LSTM: `tanh(c')`; GRU reset-after: `W_hn h + b_hn`; GRU reset-before: empty. `[H]`.
    extra: Vec<f64>,
}

/// One cell step for a single batch element. Returns the new `h`, the new `c` (empty for GRU)
/// and what the backward pass needs.
fn cell_step(
    cell: CellKind,
    w: &DirWeights,
    x: &[f64],
    h_prev: &[f64],
    c_prev: &[f64],
) -> (Vec<f64>, Vec<f64>, StepCache) {
    let h = h_prev.len();
    let gh = cell.gates() * h;
    // Input side: b_ih + W_ih x, all gates.
    let mut gi = w.b_ih.to_vec();
    add_matvec(w.w_ih, x, &mut gi);
    match cell {
        CellKind::MinGru | CellKind::MinLstm => {
            let (h_new, act, pre) = minimal_step(cell, &gi, h_prev);
            let cache = StepCache {
                h_prev: h_prev.to_vec(),
                c_prev: Vec::new(),
                act,
                extra: pre,
            };
            (h_new, Vec::new(), cache)
        }
        CellKind::Lstm => {
            let mut a = gi;
            add_into(&mut a, w.b_hh);
            add_matvec(w.w_hh, h_prev, &mut a);
            let mut act = vec![0.0; gh];
            for j in 0..h {
                act[j] = sigmoid(a[j]);
                act[h + j] = sigmoid(a[h + j]);
                act[2 * h + j] = a[2 * h + j].tanh();
                act[3 * h + j] = sigmoid(a[3 * h + j]);
            }
            let mut c_new = vec![0.0; h];
            let mut tanh_c = vec![0.0; h];
            let mut h_new = vec![0.0; h];
            for j in 0..h {
                let (i, f, g, o) = (act[j], act[h + j], act[2 * h + j], act[3 * h + j]);
                c_new[j] = f * c_prev[j] + i * g;
                tanh_c[j] = c_new[j].tanh();
                h_new[j] = o * tanh_c[j];
            }
            let cache = StepCache {
                h_prev: h_prev.to_vec(),
                c_prev: c_prev.to_vec(),
                act,
                extra: tanh_c,
            };
            (h_new, c_new, cache)
        }
        CellKind::Gru(variant) => {
            // Hidden side of r and z: b_h{r,z} + W_h{r,z} h.
            let mut hrz = w.b_hh[..2 * h].to_vec();
            add_matvec(&w.w_hh[..2 * h * h], h_prev, &mut hrz);
            let mut act = vec![0.0; gh];
            for j in 0..2 * h {
                act[j] = sigmoid(gi[j] + hrz[j]);
            }
            let w_hn = &w.w_hh[2 * h * h..];
            let b_hn = &w.b_hh[2 * h..];
            let extra = match variant {
                GruVariant::ResetAfter => {
                    let mut hn = b_hn.to_vec();
                    add_matvec(w_hn, h_prev, &mut hn);
                    for j in 0..h {
                        act[2 * h + j] = (gi[2 * h + j] + act[j] * hn[j]).tanh();
                    }
                    hn
                }
                GruVariant::ResetBefore => {
                    let rh: Vec<f64> = (0..h).map(|j| act[j] * h_prev[j]).collect();
                    let mut an = b_hn.to_vec();
                    add_matvec(w_hn, &rh, &mut an);
                    for j in 0..h {
                        act[2 * h + j] = (gi[2 * h + j] + an[j]).tanh();
                    }
                    Vec::new()
                }
            };
            let h_new: Vec<f64> = (0..h)
                .map(|j| {
                    let (z, n) = (act[h + j], act[2 * h + j]);
                    (1.0 - z) * n + z * h_prev[j]
                })
                .collect();
            let cache = StepCache {
                h_prev: h_prev.to_vec(),
                c_prev: Vec::new(),
                act,
                extra,
            };
            (h_new, Vec::new(), cache)
        }
    }
}

/// The minimal cells' `g`: `v + ½` for `v ≥ 0`, `σ(v)` below; and its derivative.
fn g_min(v: f64) -> (f64, f64) {
    if v >= 0.0 {
        (v + 0.5, 1.0)
    } else {
        let s = sigmoid(v);
        (s, s * (1.0 - s))
    }
}

/// One step of a minimal cell from its input pre-activations `a[G·H]`: the new `h`, the
/// activations (`z, h̃` or `f, i, h̃`) and the candidate's pre-activation.
fn minimal_step(cell: CellKind, a: &[f64], h_prev: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let h = h_prev.len();
    let mut act = vec![0.0; a.len()];
    let pre = a[a.len() - h..].to_vec();
    let mut h_new = vec![0.0; h];
    for j in 0..h {
        let cand = g_min(pre[j]).0;
        act[a.len() - h + j] = cand;
        h_new[j] = match cell {
            CellKind::MinGru => {
                let z = sigmoid(a[j]);
                act[j] = z;
                (1.0 - z) * h_prev[j] + z * cand
            }
            _ => {
                let (f, i) = (sigmoid(a[j]), sigmoid(a[h + j]));
                act[j] = f;
                act[h + j] = i;
                (f * h_prev[j] + i * cand) / (f + i)
            }
        };
    }
    (h_new, act, pre)
}

/// The backward of [`minimal_step`]: `∂L/∂a` into `da` and `∂L/∂h_prev` into `dh_prev` from
/// `dh = ∂L/∂h`, by the chain rule written out per element.
fn minimal_step_backward(
    cell: CellKind,
    sc: &StepCache,
    dh: &[f64],
    da: &mut [f64],
    dh_prev: &mut [f64],
) {
    let h = dh.len();
    let gh = da.len();
    for j in 0..h {
        let (cand, dg) = g_min(sc.extra[j]);
        let hp = sc.h_prev[j];
        match cell {
            CellKind::MinGru => {
                let z = sc.act[j];
                da[j] = dh[j] * (cand - hp) * z * (1.0 - z);
                da[gh - h + j] = dh[j] * z * dg;
                dh_prev[j] = dh[j] * (1.0 - z);
            }
            _ => {
                let (f, i) = (sc.act[j], sc.act[h + j]);
                let s = f + i;
                // ∂h/∂f = (hp·s − (f·hp + i·h̃)) / s² = i (hp − h̃) / s²; ∂h/∂i = f (h̃ − hp) / s².
                da[j] = dh[j] * i * (hp - cand) / (s * s) * f * (1.0 - f);
                da[h + j] = dh[j] * f * (cand - hp) / (s * s) * i * (1.0 - i);
                da[gh - h + j] = dh[j] * i / s * dg;
                dh_prev[j] = dh[j] * f / s;
            }
        }
    }
}

/// Forward pass of one direction of one layer over the whole sequence.
struct DirForward {
    /// Hidden state at every time index, `[T, B, H]` (time index, not processing order).
    out: Vec<f64>,
    /// Final hidden state, `[B, H]`.
    h_last: Vec<f64>,
    /// Final cell state, `[B, H]` (empty for GRU).
    c_last: Vec<f64>,
    /// Saved values, indexed `[time index][batch element]`.
    cache: Vec<Vec<StepCache>>,
}

/// Runs one direction of one layer. `input` is `[T, B, in_size]`, `h0` and `c0` are `[B, H]`
/// (`c0` empty for GRU). `reverse` processes `t = T − 1` down to `0`.
#[allow(clippy::too_many_arguments)]
fn dir_forward(
    cell: CellKind,
    w: &DirWeights,
    input: &[f64],
    in_size: usize,
    t_len: usize,
    batch: usize,
    hidden: usize,
    reverse: bool,
    h0: &[f64],
    c0: &[f64],
) -> DirForward {
    let mut out = vec![0.0; t_len * batch * hidden];
    let mut h_state = h0.to_vec();
    let mut c_state = c0.to_vec();
    let mut cache: Vec<Vec<StepCache>> = (0..t_len).map(|_| Vec::new()).collect();
    for step in 0..t_len {
        let t = if reverse { t_len - 1 - step } else { step };
        let mut step_cache = Vec::with_capacity(batch);
        for bi in 0..batch {
            let x = &input[(t * batch + bi) * in_size..][..in_size];
            let hs = bi * hidden..(bi + 1) * hidden;
            let c_prev: &[f64] = if cell.has_cell_state() {
                &c_state[hs.clone()]
            } else {
                &[]
            };
            let (h_new, c_new, sc) = cell_step(cell, w, x, &h_state[hs.clone()], c_prev);
            out[(t * batch + bi) * hidden..][..hidden].copy_from_slice(&h_new);
            h_state[hs.clone()].copy_from_slice(&h_new);
            if cell.has_cell_state() {
                c_state[hs].copy_from_slice(&c_new);
            }
            step_cache.push(sc);
        }
        cache[t] = step_cache;
    }
    DirForward {
        out,
        h_last: h_state,
        c_last: c_state,
        cache,
    }
}

/// Gradients of one direction of one layer.
struct DirBackward {
    /// Gradient with respect to the layer input, `[T, B, in_size]`.
    d_input: Vec<f64>,
    /// Gradient with respect to the initial hidden state, `[B, H]`.
    dh0: Vec<f64>,
    /// Gradient with respect to the initial cell state, `[B, H]` (empty for GRU).
    dc0: Vec<f64>,
}

/// Backpropagation through time for one direction of one layer. `d_out` is the gradient with
/// respect to this direction's output at every time index, `[T, B, H]`; `dh_last` and `dc_last`
/// are the gradients with respect to the final states, `[B, H]` (`dc_last` empty for GRU).
/// Parameter gradients are accumulated into `grads`.
#[allow(clippy::too_many_arguments)]
fn dir_backward(
    cell: CellKind,
    w: &DirWeights,
    fwd: &DirForward,
    input: &[f64],
    in_size: usize,
    batch: usize,
    hidden: usize,
    reverse: bool,
    d_out: &[f64],
    dh_last: &[f64],
    dc_last: &[f64],
    grads: &mut DirGrads,
) -> DirBackward {
    let t_len = fwd.cache.len();
    let h = hidden;
    let gh = cell.gates() * h;
    let mut d_input = vec![0.0; t_len * batch * in_size];
    // Gradients flowing into the state carried between steps.
    let mut dh_carry = dh_last.to_vec();
    let mut dc_carry = dc_last.to_vec();
    // Walk the steps in the opposite order to the forward pass.
    for step in (0..t_len).rev() {
        let t = if reverse { t_len - 1 - step } else { step };
        for bi in 0..batch {
            let sc = &fwd.cache[t][bi];
            let x = &input[(t * batch + bi) * in_size..][..in_size];
            let hs = bi * h..(bi + 1) * h;
            // Total gradient with respect to this step's output h'.
            let dh: Vec<f64> = (0..h)
                .map(|j| dh_carry[hs.start + j] + d_out[(t * batch + bi) * h + j])
                .collect();
            let act = &sc.act;
            // Gradient with respect to the pre-activations of the input side (b_ih + W_ih x) and
            // of the hidden side (b_hh + W_hh ·), and with respect to h_prev.
            let mut da_ih = vec![0.0; gh];
            let mut da_hh = vec![0.0; gh];
            let mut dh_prev = vec![0.0; h];
            match cell {
                CellKind::MinGru | CellKind::MinLstm => {
                    minimal_step_backward(cell, sc, &dh, &mut da_ih, &mut dh_prev);
                }
                CellKind::Lstm => {
                    let tanh_c = &sc.extra;
                    for j in 0..h {
                        let (i, f, g, o) = (act[j], act[h + j], act[2 * h + j], act[3 * h + j]);
                        let d_o = dh[j] * tanh_c[j];
                        let dc = dc_carry[hs.start + j] + dh[j] * o * (1.0 - tanh_c[j] * tanh_c[j]);
                        let di = dc * g;
                        let df = dc * sc.c_prev[j];
                        let dg = dc * i;
                        dc_carry[hs.start + j] = dc * f;
                        da_ih[j] = di * i * (1.0 - i);
                        da_ih[h + j] = df * f * (1.0 - f);
                        da_ih[2 * h + j] = dg * (1.0 - g * g);
                        da_ih[3 * h + j] = d_o * o * (1.0 - o);
                    }
                    da_hh.copy_from_slice(&da_ih);
                    add_outer(grads.w_hh.as_mut_slice(), &da_hh, &sc.h_prev);
                    add_matvec_transposed(w.w_hh, &da_hh, &mut dh_prev);
                }
                CellKind::Gru(variant) => {
                    // h' = (1 − z) n + z h_prev.
                    let mut dn = vec![0.0; h];
                    for j in 0..h {
                        let (z, n) = (act[h + j], act[2 * h + j]);
                        dn[j] = dh[j] * (1.0 - z);
                        let dz = dh[j] * (sc.h_prev[j] - n);
                        da_ih[h + j] = dz * z * (1.0 - z);
                        da_ih[2 * h + j] = dn[j] * (1.0 - n * n);
                        dh_prev[j] += dh[j] * z;
                    }
                    let mut dr = vec![0.0; h];
                    let (w_hrz, w_hn) = w.w_hh.split_at(2 * h * h);
                    let (dw_hrz, dw_hn) = grads.w_hh.split_at_mut(2 * h * h);
                    match variant {
                        GruVariant::ResetAfter => {
                            // n = tanh(a_in + r ⊙ hn), hn = W_hn h_prev + b_hn.
                            let hn = &sc.extra;
                            for j in 0..h {
                                dr[j] = da_ih[2 * h + j] * hn[j];
                                da_hh[2 * h + j] = da_ih[2 * h + j] * act[j];
                            }
                            add_outer(dw_hn, &da_hh[2 * h..], &sc.h_prev);
                            add_matvec_transposed(w_hn, &da_hh[2 * h..], &mut dh_prev);
                        }
                        GruVariant::ResetBefore => {
                            // n = tanh(a_in + W_hn (r ⊙ h_prev) + b_hn).
                            let rh: Vec<f64> = (0..h).map(|j| act[j] * sc.h_prev[j]).collect();
                            da_hh[2 * h..].copy_from_slice(&da_ih[2 * h..]);
                            add_outer(dw_hn, &da_hh[2 * h..], &rh);
                            let mut drh = vec![0.0; h];
                            add_matvec_transposed(w_hn, &da_hh[2 * h..], &mut drh);
                            for j in 0..h {
                                dr[j] = drh[j] * sc.h_prev[j];
                                dh_prev[j] += drh[j] * act[j];
                            }
                        }
                    }
                    for j in 0..h {
                        let r = act[j];
                        da_ih[j] = dr[j] * r * (1.0 - r);
                    }
                    // r and z: the same pre-activation on both sides, hidden side reads h_prev.
                    da_hh[..2 * h].copy_from_slice(&da_ih[..2 * h]);
                    add_outer(dw_hrz, &da_hh[..2 * h], &sc.h_prev);
                    add_matvec_transposed(w_hrz, &da_hh[..2 * h], &mut dh_prev);
                }
            }
            add_outer(grads.w_ih.as_mut_slice(), &da_ih, x);
            add_into(&mut grads.b_ih, &da_ih);
            add_into(&mut grads.b_hh, &da_hh);
            add_matvec_transposed(
                w.w_ih,
                &da_ih,
                &mut d_input[(t * batch + bi) * in_size..][..in_size],
            );
            dh_carry[hs].copy_from_slice(&dh_prev);
        }
    }
    DirBackward {
        d_input,
        dh0: dh_carry,
        dc0: dc_carry,
    }
}

/// Everything the full forward pass computes, kept for the backward pass.
struct StackForward {
    /// Input of every layer: `inputs[0]` is `x`, `inputs[k]` the output of layer `k − 1`.
    inputs: Vec<Vec<f64>>,
    /// Per-direction results, indexed `layer·D + dir`.
    dirs: Vec<DirForward>,
    /// Public result.
    result: RefForward,
}

/// `[B, H]` slice `s` of an `[L·D, B, H]` state buffer.
fn state_slice(buf: &[f64], s: usize, batch: usize, hidden: usize) -> &[f64] {
    &buf[s * batch * hidden..(s + 1) * batch * hidden]
}

fn check_inputs(config: &RnnConfig, x: &[f64], t: usize, b: usize, h0: &[f64], c0: Option<&[f64]>) {
    assert!(
        t >= 1 && b >= 1,
        "sequence length and batch must be at least 1"
    );
    assert_eq!(x.len(), t * b * config.input_size, "x must be [T, B, I]");
    let state_len = config.state_slices() * b * config.hidden_size;
    assert_eq!(h0.len(), state_len, "h0 must be [L*D, B, H]");
    if config.cell.has_cell_state() {
        let c0 = c0.expect("LSTM needs c0");
        assert_eq!(c0.len(), state_len, "c0 must be [L*D, B, H]");
    } else {
        assert!(c0.is_none(), "GRU takes no c0");
    }
}

fn forward_keep(
    config: &RnnConfig,
    params: &RefParams,
    x: &[f64],
    t: usize,
    b: usize,
    h0: &[f64],
    c0: Option<&[f64]>,
) -> StackForward {
    check_inputs(config, x, t, b, h0, c0);
    let (h, d) = (config.hidden_size, config.directions());
    let has_c = config.cell.has_cell_state();
    let mut inputs = vec![x.to_vec()];
    let mut dirs = Vec::new();
    let mut h_n = vec![0.0; config.state_slices() * b * h];
    let mut c_n = vec![0.0; if has_c { h_n.len() } else { 0 }];
    for layer in 0..config.num_layers {
        let in_size = config.layer_input_size(layer);
        let mut out = vec![0.0; t * b * d * h];
        for dir in 0..d {
            let s = layer * d + dir;
            let w = DirWeights::get(config, params, layer, dir);
            let c0_s = c0.map_or(&[][..], |c| state_slice(c, s, b, h));
            let f = dir_forward(
                config.cell,
                &w,
                &inputs[layer],
                in_size,
                t,
                b,
                h,
                dir == 1,
                state_slice(h0, s, b, h),
                c0_s,
            );
            // Place this direction's features at offset dir·H of each D·H output row.
            for row in 0..t * b {
                out[row * d * h + dir * h..][..h].copy_from_slice(&f.out[row * h..][..h]);
            }
            h_n[s * b * h..(s + 1) * b * h].copy_from_slice(&f.h_last);
            if has_c {
                c_n[s * b * h..(s + 1) * b * h].copy_from_slice(&f.c_last);
            }
            dirs.push(f);
        }
        inputs.push(out);
    }
    let y = inputs.pop().expect("at least one layer");
    StackForward {
        inputs,
        dirs,
        result: RefForward {
            y,
            h_n,
            c_n: has_c.then_some(c_n),
        },
    }
}

/// Forward pass of the whole stack.
///
/// `x` is `[t, b, I]`, `h0` is `[L·D, b, H]`, `c0` is `Some([L·D, b, H])` for LSTM and `None` for
/// GRU. `params` must hold every name of [`param_shapes`] with the right length. Panics on
/// mismatched lengths.
pub fn forward(
    config: &RnnConfig,
    params: &RefParams,
    x: &[f64],
    t: usize,
    b: usize,
    h0: &[f64],
    c0: Option<&[f64]>,
) -> RefForward {
    forward_keep(config, params, x, t, b, h0, c0).result
}

/// Backward pass of the whole stack for the loss
/// `Σ y ⊙ dy + Σ h_n ⊙ dh_n + Σ c_n ⊙ dc_n`, i.e. `dy`, `dh_n`, `dc_n` are the gradients of some
/// loss with respect to `y [t, b, D·H]`, `h_n [L·D, b, H]` and `c_n [L·D, b, H]` (`dc_n` must be
/// `Some` for LSTM; it is ignored for GRU).
///
/// Recomputes the forward pass, then backpropagates through time with plain loops. Panics on
/// mismatched lengths.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    config: &RnnConfig,
    params: &RefParams,
    x: &[f64],
    t: usize,
    b: usize,
    h0: &[f64],
    c0: Option<&[f64]>,
    dy: &[f64],
    dh_n: &[f64],
    dc_n: Option<&[f64]>,
) -> RefGrads {
    let fwd = forward_keep(config, params, x, t, b, h0, c0);
    let (h, d) = (config.hidden_size, config.directions());
    let has_c = config.cell.has_cell_state();
    let state_len = config.state_slices() * b * h;
    assert_eq!(dy.len(), t * b * d * h, "dy must be [T, B, D*H]");
    assert_eq!(dh_n.len(), state_len, "dh_n must be [L*D, B, H]");
    let dc_n = if has_c {
        let dc_n = dc_n.expect("LSTM needs dc_n");
        assert_eq!(dc_n.len(), state_len, "dc_n must be [L*D, B, H]");
        dc_n
    } else {
        &[][..]
    };

    let mut dparams = RefParams::new();
    let mut dh0 = vec![0.0; state_len];
    let mut dc0 = vec![0.0; if has_c { state_len } else { 0 }];
    // Gradient with respect to the output of the layer being processed, [T, B, D·H].
    let mut d_layer_out = dy.to_vec();
    for layer in (0..config.num_layers).rev() {
        let in_size = config.layer_input_size(layer);
        let gh = config.cell.gates() * h;
        let mut d_layer_in = vec![0.0; t * b * in_size];
        for dir in 0..d {
            let s = layer * d + dir;
            let w = DirWeights::get(config, params, layer, dir);
            // This direction's slice of the output gradient.
            let mut d_out = vec![0.0; t * b * h];
            for row in 0..t * b {
                d_out[row * h..][..h].copy_from_slice(&d_layer_out[row * d * h + dir * h..][..h]);
            }
            let mut grads = DirGrads {
                w_ih: vec![0.0; gh * in_size],
                w_hh: vec![0.0; gh * h],
                b_ih: vec![0.0; gh],
                b_hh: vec![0.0; gh],
            };
            let dc_last = if has_c {
                state_slice(dc_n, s, b, h)
            } else {
                &[][..]
            };
            let back = dir_backward(
                config.cell,
                &w,
                &fwd.dirs[s],
                &fwd.inputs[layer],
                in_size,
                b,
                h,
                dir == 1,
                &d_out,
                state_slice(dh_n, s, b, h),
                dc_last,
                &mut grads,
            );
            add_into(&mut d_layer_in, &back.d_input);
            dh0[s * b * h..(s + 1) * b * h].copy_from_slice(&back.dh0);
            if has_c {
                dc0[s * b * h..(s + 1) * b * h].copy_from_slice(&back.dc0);
            }
            dparams.insert(param_name("weight_ih", layer, dir), grads.w_ih);
            dparams.insert(param_name("bias_ih", layer, dir), grads.b_ih);
            if !config.cell.is_minimal() {
                dparams.insert(param_name("weight_hh", layer, dir), grads.w_hh);
                dparams.insert(param_name("bias_hh", layer, dir), grads.b_hh);
            }
        }
        d_layer_out = d_layer_in;
    }
    RefGrads {
        dx: d_layer_out,
        dh0,
        dc0: has_c.then_some(dc0),
        dparams,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rnn::config::Direction;
    use std::collections::HashMap;

    /// Tiny deterministic generator (xorshift64*), values in U(-0.5, 0.5).
    struct Rng(u64);

    impl Rng {
        fn next_f64(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
            (v >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        }

        fn vec(&mut self, n: usize) -> Vec<f64> {
            (0..n).map(|_| self.next_f64()).collect()
        }
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    /// Everything a finite-difference case needs.
    struct Case {
        config: RnnConfig,
        t: usize,
        b: usize,
        params: RefParams,
        x: Vec<f64>,
        h0: Vec<f64>,
        c0: Option<Vec<f64>>,
        dy: Vec<f64>,
        dh_n: Vec<f64>,
        dc_n: Option<Vec<f64>>,
    }

    impl Case {
        fn new(config: RnnConfig, t: usize, b: usize, seed: u64) -> Self {
            let mut rng = Rng(seed);
            let params = param_shapes(&config)
                .into_iter()
                .map(|(name, shape)| {
                    let n = shape.iter().product();
                    (name, rng.vec(n))
                })
                .collect();
            let state = config.state_slices() * b * config.hidden_size;
            let has_c = config.cell.has_cell_state();
            Case {
                config,
                t,
                b,
                params,
                x: rng.vec(t * b * config.input_size),
                h0: rng.vec(state),
                c0: has_c.then(|| rng.vec(state)),
                dy: rng.vec(t * b * config.output_size()),
                dh_n: rng.vec(state),
                dc_n: has_c.then(|| rng.vec(state)),
            }
        }

        fn loss(&self, params: &RefParams, x: &[f64], h0: &[f64], c0: Option<&[f64]>) -> f64 {
            let f = forward(&self.config, params, x, self.t, self.b, h0, c0);
            let mut l = dot(&f.y, &self.dy) + dot(&f.h_n, &self.dh_n);
            if let (Some(c_n), Some(dc_n)) = (&f.c_n, &self.dc_n) {
                l += dot(c_n, dc_n);
            }
            l
        }

        fn grads(&self) -> RefGrads {
            backward(
                &self.config,
                &self.params,
                &self.x,
                self.t,
                self.b,
                &self.h0,
                self.c0.as_deref(),
                &self.dy,
                &self.dh_n,
                self.dc_n.as_deref(),
            )
        }
    }

    const EPS: f64 = 1e-6;
    const TOL: f64 = 1e-7;

    fn assert_close(what: &str, k: usize, analytic: f64, numeric: f64) {
        let err = (analytic - numeric).abs();
        assert!(
            err <= TOL * (1.0 + numeric.abs()),
            "{what}[{k}]: backward {analytic:e}, finite difference {numeric:e}, error {err:e}"
        );
    }

    /// Central difference `(L(+ε) − L(−ε)) / 2ε` of a loss evaluated at a perturbation `±ε`.
    fn central(loss: impl Fn(f64) -> f64) -> f64 {
        (loss(EPS) - loss(-EPS)) / (2.0 * EPS)
    }

    fn finite_difference_check(config: RnnConfig, t: usize, b: usize, seed: u64) {
        let case = Case::new(config, t, b, seed);
        let g = case.grads();
        let c0 = case.c0.as_deref();
        let mut checked = 0;

        for (name, value) in &case.params {
            let dp = &g.dparams[name];
            assert_eq!(dp.len(), value.len(), "{name}");
            for (k, &analytic) in dp.iter().enumerate() {
                let numeric = central(|e| {
                    let mut p = case.params.clone();
                    p.get_mut(name).unwrap()[k] += e;
                    case.loss(&p, &case.x, &case.h0, c0)
                });
                assert_close(name, k, analytic, numeric);
                checked += 1;
            }
        }
        assert_eq!(g.dparams.len(), case.params.len());

        assert_eq!(g.dx.len(), case.x.len());
        for k in 0..case.x.len() {
            let numeric = central(|e| {
                let mut x = case.x.clone();
                x[k] += e;
                case.loss(&case.params, &x, &case.h0, c0)
            });
            assert_close("dx", k, g.dx[k], numeric);
            checked += 1;
        }

        assert_eq!(g.dh0.len(), case.h0.len());
        for k in 0..case.h0.len() {
            let numeric = central(|e| {
                let mut h0 = case.h0.clone();
                h0[k] += e;
                case.loss(&case.params, &case.x, &h0, c0)
            });
            assert_close("dh0", k, g.dh0[k], numeric);
            checked += 1;
        }

        match (&case.c0, &g.dc0) {
            (Some(c0v), Some(dc0)) => {
                assert_eq!(dc0.len(), c0v.len());
                for k in 0..c0v.len() {
                    let numeric = central(|e| {
                        let mut c = c0v.clone();
                        c[k] += e;
                        case.loss(&case.params, &case.x, &case.h0, Some(&c))
                    });
                    assert_close("dc0", k, dc0[k], numeric);
                    checked += 1;
                }
            }
            (None, None) => {}
            _ => panic!("dc0 present exactly when c0 is"),
        }
        assert!(checked > 0);
    }

    const CELLS: [CellKind; 5] = [
        CellKind::Lstm,
        CellKind::Gru(GruVariant::ResetAfter),
        CellKind::Gru(GruVariant::ResetBefore),
        CellKind::MinGru,
        CellKind::MinLstm,
    ];

    #[test]
    fn param_shapes_follow_pytorch_order() {
        let config = RnnConfig {
            cell: CellKind::Gru(GruVariant::ResetAfter),
            input_size: 3,
            hidden_size: 5,
            num_layers: 2,
            direction: Direction::Bidirectional,
        };
        let names: Vec<String> = param_shapes(&config).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "weight_ih_l0",
                "weight_hh_l0",
                "bias_ih_l0",
                "bias_hh_l0",
                "weight_ih_l0_reverse",
                "weight_hh_l0_reverse",
                "bias_ih_l0_reverse",
                "bias_hh_l0_reverse",
                "weight_ih_l1",
                "weight_hh_l1",
                "bias_ih_l1",
                "bias_hh_l1",
                "weight_ih_l1_reverse",
                "weight_hh_l1_reverse",
                "bias_ih_l1_reverse",
                "bias_hh_l1_reverse",
            ]
        );
        let shapes = param_shapes(&config);
        assert_eq!(shapes[0].1, vec![15, 3]);
        assert_eq!(shapes[1].1, vec![15, 5]);
        assert_eq!(shapes[2].1, vec![15]);
        assert_eq!(shapes[8].1, vec![15, 10]);
    }

    #[test]
    fn backward_matches_finite_differences_deep_bidirectional() {
        for (n, cell) in CELLS.into_iter().enumerate() {
            let config = RnnConfig {
                cell,
                input_size: 3,
                hidden_size: 5,
                num_layers: 3,
                direction: Direction::Bidirectional,
            };
            finite_difference_check(config, 7, 2, 0x9E37_79B9_7F4A_7C15 + n as u64);
        }
    }

    #[test]
    fn backward_matches_finite_differences_single_step() {
        for (n, cell) in CELLS.into_iter().enumerate() {
            let config = RnnConfig {
                cell,
                input_size: 3,
                hidden_size: 5,
                num_layers: 1,
                direction: Direction::Forward,
            };
            finite_difference_check(config, 1, 1, 0x1234_5678 + n as u64);
        }
    }

    #[test]
    fn reverse_direction_reads_the_sequence_backwards() {
        // A bidirectional layer's reverse half must equal a forward layer run on the reversed
        // sequence with the reverse parameters, re-reversed in time.
        let (t, b) = (4, 2);
        let bi = RnnConfig {
            cell: CellKind::Lstm,
            input_size: 3,
            hidden_size: 2,
            num_layers: 1,
            direction: Direction::Bidirectional,
        };
        let uni = RnnConfig {
            direction: Direction::Forward,
            ..bi
        };
        let case = Case::new(bi, t, b, 77);
        let f = forward(
            &bi,
            &case.params,
            &case.x,
            t,
            b,
            &case.h0,
            case.c0.as_deref(),
        );
        let mut rev_params = RefParams::new();
        for base in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] {
            rev_params.insert(
                format!("{base}_l0"),
                case.params[&format!("{base}_l0_reverse")].clone(),
            );
        }
        let i = bi.input_size;
        let mut x_rev = vec![0.0; case.x.len()];
        for tt in 0..t {
            x_rev[tt * b * i..(tt + 1) * b * i]
                .copy_from_slice(&case.x[(t - 1 - tt) * b * i..(t - tt) * b * i]);
        }
        let h = bi.hidden_size;
        let c0 = case.c0.as_ref().unwrap();
        let r = forward(
            &uni,
            &rev_params,
            &x_rev,
            t,
            b,
            &case.h0[b * h..],
            Some(&c0[b * h..]),
        );
        for tt in 0..t {
            for bb in 0..b {
                for j in 0..h {
                    let got = f.y[(tt * b + bb) * 2 * h + h + j];
                    let want = r.y[((t - 1 - tt) * b + bb) * h + j];
                    assert!((got - want).abs() < 1e-14);
                }
            }
        }
        assert_eq!(&f.h_n[b * h..], &r.h_n[..]);
        assert_eq!(&f.c_n.unwrap()[b * h..], &r.c_n.unwrap()[..]);
    }

    // ---------------------------------------------------------------- fixtures

    /// A loaded fixture: tensors as `f64` with their shapes, and the header metadata.
    struct Fixture {
        tensors: HashMap<String, (Vec<usize>, Vec<f64>)>,
        meta: HashMap<String, String>,
    }

    impl Fixture {
        /// Loads a fixture, or returns `None` (after saying why) when the file is absent.
        fn load(name: &str) -> Option<Fixture> {
            let path = crate::test_shared::shared(&format!("fixtures/{name}.safetensors"))?;
            let bytes = std::fs::read(&path).expect("readable fixture");
            let st = safetensors::SafeTensors::deserialize(&bytes).expect("valid safetensors");
            let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).expect("header");
            let meta = header.metadata().clone().unwrap_or_default();
            let tensors = st
                .tensors()
                .into_iter()
                .map(|(n, view)| {
                    assert_eq!(view.dtype(), safetensors::Dtype::F64, "{n} is not F64");
                    let data = view
                        .data()
                        .chunks_exact(8)
                        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                        .collect::<Vec<f64>>();
                    assert_eq!(data.len(), view.shape().iter().product::<usize>());
                    (n, (view.shape().to_vec(), data))
                })
                .collect();
            Some(Fixture { tensors, meta })
        }

        fn get(&self, name: &str) -> &[f64] {
            &self
                .tensors
                .get(name)
                .unwrap_or_else(|| panic!("fixture lacks {name}"))
                .1
        }

        fn shape(&self, name: &str) -> &[usize] {
            &self.tensors[name].0
        }

        fn meta_usize(&self, key: &str) -> usize {
            self.meta[key].parse().expect("numeric metadata")
        }
    }

    fn assert_all_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (k, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= tol,
                "{what}[{k}]: reference {g:e}, fixture {w:e}"
            );
        }
    }

    const FIXTURE_TOL: f64 = 1e-9;

    /// Runs a PyTorch fixture (`torch.nn.LSTM` / `torch.nn.GRU`, unidirectional).
    fn check_torch_fixture(name: &str) {
        let Some(fx) = Fixture::load(name) else {
            return;
        };
        let cell = match fx.meta["kind"].as_str() {
            "lstm" => CellKind::Lstm,
            "gru" => CellKind::Gru(GruVariant::ResetAfter),
            other => panic!("unknown kind {other}"),
        };
        let config = RnnConfig {
            cell,
            input_size: fx.meta_usize("input_size"),
            hidden_size: fx.meta_usize("hidden_size"),
            num_layers: fx.meta_usize("num_layers"),
            direction: Direction::Forward,
        };
        let (t, b) = (fx.meta_usize("seq_len"), fx.meta_usize("batch"));
        assert_eq!(fx.shape("x"), [t, b, config.input_size]);
        let shapes = param_shapes(&config);
        let mut params = RefParams::new();
        for (pname, shape) in &shapes {
            assert_eq!(fx.shape(pname), &shape[..], "{pname}");
            params.insert(pname.clone(), fx.get(pname).to_vec());
        }
        let has_c = cell.has_cell_state();
        let c0 = has_c.then(|| fx.get("c0"));
        let f = forward(&config, &params, fx.get("x"), t, b, fx.get("h0"), c0);
        assert_all_close("y", &f.y, fx.get("y"), FIXTURE_TOL);
        assert_all_close("h_n", &f.h_n, fx.get("h_n"), FIXTURE_TOL);
        if has_c {
            assert_all_close("c_n", f.c_n.as_ref().unwrap(), fx.get("c_n"), FIXTURE_TOL);
        } else {
            assert!(f.c_n.is_none());
        }

        let g = backward(
            &config,
            &params,
            fx.get("x"),
            t,
            b,
            fx.get("h0"),
            c0,
            fx.get("grad_y"),
            fx.get("grad_h_n"),
            has_c.then(|| fx.get("grad_c_n")),
        );
        assert_all_close("d.x", &g.dx, fx.get("d.x"), FIXTURE_TOL);
        assert_all_close("d.h0", &g.dh0, fx.get("d.h0"), FIXTURE_TOL);
        if has_c {
            assert_all_close("d.c0", g.dc0.as_ref().unwrap(), fx.get("d.c0"), FIXTURE_TOL);
        }
        for (pname, _) in &shapes {
            let dname = format!("d.{pname}");
            assert_all_close(&dname, &g.dparams[pname], fx.get(&dname), FIXTURE_TOL);
        }
    }

    #[test]
    fn matches_torch_lstm_2layer() {
        check_torch_fixture("torch_lstm_2layer");
    }

    #[test]
    fn matches_torch_gru_2layer() {
        check_torch_fixture("torch_gru_2layer");
    }

    #[test]
    fn matches_torch_lstm_tiny() {
        check_torch_fixture("torch_lstm_tiny");
    }

    #[test]
    fn matches_torch_gru_tiny() {
        check_torch_fixture("torch_gru_tiny");
    }

    /// Keras gate column block (z = 0, r = 1, h = 2) holding PyTorch gate row block `g`
    /// (r = 0, z = 1, n = 2).
    fn keras_block(g: usize) -> usize {
        [1, 0, 2][g]
    }

    /// Keras `[rows, 3H]` matrix (columns z, r, h) → PyTorch `[3H, rows]` (rows r, z, n).
    fn keras_to_torch_weight(k: &[f64], rows: usize, h: usize) -> Vec<f64> {
        let mut w = vec![0.0; 3 * h * rows];
        for g in 0..3 {
            for j in 0..h {
                for c in 0..rows {
                    w[(g * h + j) * rows + c] = k[c * 3 * h + keras_block(g) * h + j];
                }
            }
        }
        w
    }

    /// PyTorch `[3H, rows]` gradient → Keras `[rows, 3H]` layout (the inverse of the above).
    fn torch_to_keras_weight(w: &[f64], rows: usize, h: usize) -> Vec<f64> {
        let mut k = vec![0.0; 3 * h * rows];
        for g in 0..3 {
            for j in 0..h {
                for c in 0..rows {
                    k[c * 3 * h + keras_block(g) * h + j] = w[(g * h + j) * rows + c];
                }
            }
        }
        k
    }

    /// Keras bias `[3H]` (z, r, h) ↔ PyTorch `[3H]` (r, z, n).
    fn keras_to_torch_bias(kb: &[f64], h: usize) -> Vec<f64> {
        keras_to_torch_weight(kb, 1, h)
    }

    fn torch_to_keras_bias(b: &[f64], h: usize) -> Vec<f64> {
        torch_to_keras_weight(b, 1, h)
    }

    #[test]
    fn matches_keras_gru_reset_before() {
        let Some(fx) = Fixture::load("keras_gru_reset_before") else {
            return;
        };
        let (i, h) = (fx.meta_usize("input_size"), fx.meta_usize("hidden_size"));
        let (t, b) = (fx.meta_usize("seq_len"), fx.meta_usize("batch"));
        let config = RnnConfig {
            cell: CellKind::Gru(GruVariant::ResetBefore),
            input_size: i,
            hidden_size: h,
            num_layers: 1,
            direction: Direction::Forward,
        };
        assert_eq!(fx.shape("kernel"), [i, 3 * h]);
        assert_eq!(fx.shape("recurrent_kernel"), [h, 3 * h]);
        assert_eq!(fx.shape("bias"), [3 * h]);
        assert_eq!(fx.shape("h0"), [b, h]);
        let mut params = RefParams::new();
        params.insert(
            "weight_ih_l0".into(),
            keras_to_torch_weight(fx.get("kernel"), i, h),
        );
        params.insert(
            "weight_hh_l0".into(),
            keras_to_torch_weight(fx.get("recurrent_kernel"), h, h),
        );
        params.insert("bias_ih_l0".into(), keras_to_torch_bias(fx.get("bias"), h));
        params.insert("bias_hh_l0".into(), vec![0.0; 3 * h]);

        let f = forward(&config, &params, fx.get("x"), t, b, fx.get("h0"), None);
        assert_all_close("y", &f.y, fx.get("y"), FIXTURE_TOL);
        assert_all_close("h_n", &f.h_n, fx.get("h_n"), FIXTURE_TOL);

        // loss = Σ y ⊙ grad_y only.
        let g = backward(
            &config,
            &params,
            fx.get("x"),
            t,
            b,
            fx.get("h0"),
            None,
            fx.get("grad_y"),
            &vec![0.0; b * h],
            None,
        );
        assert_all_close("d.x", &g.dx, fx.get("d.x"), FIXTURE_TOL);
        assert_all_close("d.h0", &g.dh0, fx.get("d.h0"), FIXTURE_TOL);
        assert_all_close(
            "d.kernel",
            &torch_to_keras_weight(&g.dparams["weight_ih_l0"], i, h),
            fx.get("d.kernel"),
            FIXTURE_TOL,
        );
        assert_all_close(
            "d.recurrent_kernel",
            &torch_to_keras_weight(&g.dparams["weight_hh_l0"], h, h),
            fx.get("d.recurrent_kernel"),
            FIXTURE_TOL,
        );
        assert_all_close(
            "d.bias",
            &torch_to_keras_bias(&g.dparams["bias_ih_l0"], h),
            fx.get("d.bias"),
            FIXTURE_TOL,
        );
        // With reset-before both biases enter the same pre-activation: equal gradients.
        assert_all_close(
            "d.bias_hh_l0",
            &g.dparams["bias_hh_l0"],
            &g.dparams["bias_ih_l0"],
            0.0,
        );
    }
}

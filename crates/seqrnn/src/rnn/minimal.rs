//! Gate kernels of the minimal cells (Feng et al. 2024, "Were RNNs All We Needed?"): the fused
//! element-wise pass of one time step, forward and backward. Their gates depend on the input
//! only, so the shared sequence loop (`super::sequence`) computes every step's pre-activations
//! in one product before the scan, and the scan itself is these kernels alone: no recurrent
//! product.
//!
//! Gate rows: minGRU `z, h` (`[B, 2H]`), minLSTM `f, i, h` (`[B, 3H]`), per batch row.
//!
//! - minGRU: `z = σ(a_z)`, `h̃ = g(a_h)`, `h_t = (1 − z) ⊙ h_{t−1} + z ⊙ h̃`;
//! - minLSTM: `f = σ(a_f)`, `i = σ(a_i)`, `h̃ = g(a_h)`, `h_t = (f ⊙ h_{t−1} + i ⊙ h̃) / (f + i)`;
//!
//! with `g(v) = v + ½` for `v ≥ 0` and `σ(v)` otherwise (continuous, positive, the paper's
//! activation for its log-space form, used here in both forms so that a model trains and
//! generates with the same function).

use super::activation::sigmoid;
use super::config::CellKind;

/// The paper's `g`: `v + ½` for `v ≥ 0`, `σ(v)` below.
pub fn g(v: f32) -> f32 {
    if v >= 0.0 {
        v + 0.5
    } else {
        sigmoid(v)
    }
}

/// `g'(v)`: 1 for `v ≥ 0`, `σ(v)(1 − σ(v))` below.
fn dg(v: f32) -> f32 {
    if v >= 0.0 {
        1.0
    } else {
        let s = sigmoid(v);
        s * (1.0 - s)
    }
}

/// Forward pass of one step.
///
/// - `gates[B, G·H]`: read the pre-activations `W_ih x + b_ih`, written the activations
///   (`z, h̃` or `f, i, h̃`).
/// - `pre_h[B, H]`: written the candidate's pre-activation `a_h` (what backward differentiates
///   `g` at); scratch in inference.
/// - `h[B, H]`: read `h_{t−1}`, written `h_t`.
pub fn forward_gates(
    cell: CellKind,
    gates: &mut [f32],
    pre_h: &mut [f32],
    h: &mut [f32],
    hs: usize,
) {
    let gh = cell.gates() * hs;
    let rows = gates.chunks_exact_mut(gh).zip(pre_h.chunks_exact_mut(hs));
    for ((g_row, pre), h_row) in rows.zip(h.chunks_exact_mut(hs)) {
        match cell {
            CellKind::MinGru => {
                let (z, cand) = g_row.split_at_mut(hs);
                for j in 0..hs {
                    pre[j] = cand[j];
                    z[j] = sigmoid(z[j]);
                    cand[j] = g(cand[j]);
                    h_row[j] = (1.0 - z[j]) * h_row[j] + z[j] * cand[j];
                }
            }
            CellKind::MinLstm => {
                let (f, rest) = g_row.split_at_mut(hs);
                let (i, cand) = rest.split_at_mut(hs);
                for j in 0..hs {
                    pre[j] = cand[j];
                    f[j] = sigmoid(f[j]);
                    i[j] = sigmoid(i[j]);
                    cand[j] = g(cand[j]);
                    h_row[j] = (f[j] * h_row[j] + i[j] * cand[j]) / (f[j] + i[j]);
                }
            }
            _ => unreachable!("not a minimal cell"),
        }
    }
}

/// Backward pass of one step; the mirror of [`forward_gates`].
///
/// - `act[B, G·H]`, `pre_h[B, H]`: read, the step's activations and candidate pre-activation.
/// - `h_prev[B, H]`: read `h_{t−1}`.
/// - `dh[B, H]`: read `∂L/∂h_t`, written `∂L/∂h_{t−1}`.
/// - `dpre[B, G·H]`: written `∂L/∂` of the pre-activations.
pub fn backward_gates(
    cell: CellKind,
    act: &[f32],
    pre_h: &[f32],
    h_prev: &[f32],
    dh: &mut [f32],
    dpre: &mut [f32],
    hs: usize,
) {
    let gh = cell.gates() * hs;
    let rows = act.chunks_exact(gh).zip(pre_h.chunks_exact(hs));
    let grads = dh.chunks_exact_mut(hs).zip(dpre.chunks_exact_mut(gh));
    for (((a, pre), hp), (d, dp)) in rows.zip(h_prev.chunks_exact(hs)).zip(grads) {
        match cell {
            CellKind::MinGru => {
                for j in 0..hs {
                    let (z, cand) = (a[j], a[hs + j]);
                    let dz = d[j] * (cand - hp[j]);
                    dp[j] = dz * z * (1.0 - z);
                    dp[hs + j] = d[j] * z * dg(pre[j]);
                    d[j] *= 1.0 - z;
                }
            }
            CellKind::MinLstm => {
                for j in 0..hs {
                    let (f, i, cand) = (a[j], a[hs + j], a[2 * hs + j]);
                    let s = f + i;
                    // h = f' hp + i' h̃ with f' = f/s, i' = i/s.
                    let (df_n, di_n) = (d[j] * hp[j], d[j] * cand);
                    let df = (df_n - di_n) * i / (s * s);
                    let di = (di_n - df_n) * f / (s * s);
                    dp[j] = df * f * (1.0 - f);
                    dp[hs + j] = di * i * (1.0 - i);
                    dp[2 * hs + j] = d[j] * (i / s) * dg(pre[j]);
                    d[j] *= f / s;
                }
            }
            _ => unreachable!("not a minimal cell"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_is_continuous_and_positive() {
        assert_eq!(g(0.0), 0.5);
        assert!((g(-1e-6) - 0.5).abs() < 1e-6);
        assert_eq!(g(2.0), 2.5);
        assert!(g(-30.0) > 0.0);
    }

    /// The one-step backward against central differences of the forward, both cells.
    #[test]
    fn one_step_gradients_match_finite_differences() {
        for cell in [CellKind::MinGru, CellKind::MinLstm] {
            let (b, hs) = (2, 3);
            let gh = cell.gates() * hs;
            let a0: Vec<f32> = (0..b * gh)
                .map(|k| ((k * 7 % 11) as f32 - 5.0) * 0.3 + 0.05)
                .collect();
            let h0: Vec<f32> = (0..b * hs)
                .map(|k| ((k * 5 % 7) as f32 - 3.0) * 0.2)
                .collect();
            let w: Vec<f32> = (0..b * hs).map(|k| 0.5 + k as f32 * 0.1).collect();
            // loss = Σ w ⊙ h_t
            let loss = |a: &[f32], h: &[f32]| -> f64 {
                let (mut a, mut h, mut pre) = (a.to_vec(), h.to_vec(), vec![0.0; b * hs]);
                forward_gates(cell, &mut a, &mut pre, &mut h, hs);
                h.iter().zip(&w).map(|(x, w)| (x * w) as f64).sum()
            };
            let (mut act, mut h1, mut pre) = (a0.clone(), h0.clone(), vec![0.0; b * hs]);
            forward_gates(cell, &mut act, &mut pre, &mut h1, hs);
            let (mut dh, mut dpre) = (w.clone(), vec![0.0; b * gh]);
            backward_gates(cell, &act, &pre, &h0, &mut dh, &mut dpre, hs);
            let eps = 1e-3;
            for k in 0..b * gh {
                let (mut up, mut down) = (a0.clone(), a0.clone());
                up[k] += eps;
                down[k] -= eps;
                let fd = (loss(&up, &h0) - loss(&down, &h0)) / (2.0 * eps as f64);
                assert!(
                    (fd - dpre[k] as f64).abs() < 2e-3,
                    "{cell:?} pre {k}: {fd} vs {}",
                    dpre[k]
                );
            }
            for k in 0..b * hs {
                let (mut up, mut down) = (h0.clone(), h0.clone());
                up[k] += eps;
                down[k] -= eps;
                let fd = (loss(&a0, &up) - loss(&a0, &down)) / (2.0 * eps as f64);
                assert!(
                    (fd - dh[k] as f64).abs() < 2e-3,
                    "{cell:?} h {k}: {fd} vs {}",
                    dh[k]
                );
            }
        }
    }
}

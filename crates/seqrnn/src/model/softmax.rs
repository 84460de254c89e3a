//! The output layer with softmax cross-entropy fused into one pass over the logits.
//!
//! Forward computes `logits[N, V] = h[N, H] · W[V, H]ᵀ + b` with one product, then per row the
//! log-sum-exp and the loss; in training the same pass overwrites each row with its gradient
//! `scale · (softmax − onehot(target))`, so no probability tensor is ever stored.

use crate::linalg::{matmul, Accumulate, Mat, MatMut};
use crate::rnn::activation::exp;

/// `logits[N, V] = h[N, H] · Wᵀ + b`.
///
/// - `h[N, H]`, `w[V, H]`, `b[V]`: read. `logits[N, V]`: written.
pub fn logits(h: &[f32], w: &[f32], b: &[f32], logits: &mut [f32], hidden: usize) {
    let v = b.len();
    let n = h.len() / hidden;
    matmul(
        MatMut::new(&mut logits[..n * v], n, v),
        Mat::new(h, n, hidden),
        Mat::new(w, v, hidden).t(),
        Accumulate::Overwrite,
    );
    for row in logits[..n * v].chunks_exact_mut(v) {
        row.iter_mut().zip(b).for_each(|(l, b)| *l += b);
    }
}

/// Lanes of the row reductions: eight independent partial maxima and sums let the compiler
/// vectorise them (a single f32 accumulator forces sequential order).
const LANES: usize = 8;

/// Maximum of a row.
fn row_max(row: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for k in 0..LANES {
            acc[k] = acc[k].max(c[k]);
        }
    }
    tail.iter().fold(
        acc.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)),
        |a, &b| a.max(b),
    )
}

/// `Σ_j e^{row_j − m}`, optionally writing each term back into the row.
fn exp_sum<const WRITE: bool>(row: &mut [f32], m: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for k in 0..LANES {
            let e = exp(c[k] - m);
            if WRITE {
                c[k] = e;
            }
            acc[k] += e;
        }
    }
    let mut s: f32 = acc.iter().sum();
    for v in chunks.into_remainder() {
        let e = exp(*v - m);
        if WRITE {
            *v = e;
        }
        s += e;
    }
    s
}

/// `Σ_j e^{row_j − m}` of a read-only row.
fn exp_sum_ro(row: &[f32], m: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for k in 0..LANES {
            acc[k] += exp(c[k] - m);
        }
    }
    acc.iter().sum::<f32>() + tail.iter().map(|&v| exp(v - m)).sum::<f32>()
}

/// Cross-entropy `log Σ_j e^{l_j} − l_target` of one row, without changing it.
pub fn row_loss(row: &[f32], target: usize) -> f64 {
    let m = row_max(row);
    let s = exp_sum_ro(row, m);
    (m as f64 + (s as f64).ln()) - row[target] as f64
}

/// Sum of the cross-entropies of all rows of `logits[N, V]` against `targets[N]`; `logits` is
/// read only (evaluation).
pub fn loss(logits: &[f32], targets: &[u32], vocab: usize) -> f64 {
    logits
        .chunks_exact(vocab)
        .zip(targets)
        .map(|(row, &t)| row_loss(row, t as usize))
        .sum()
}

/// Fused loss and gradient: returns the summed cross-entropy and overwrites every row of
/// `logits[N, V]` with `scale · (softmax(row) − onehot(target))`, the gradient of
/// `scale · Σ loss` with respect to the logits.
pub fn loss_and_grad(logits: &mut [f32], targets: &[u32], vocab: usize, scale: f32) -> f64 {
    let mut total = 0.0f64;
    for (row, &t) in logits.chunks_exact_mut(vocab).zip(targets) {
        let t = t as usize;
        let m = row_max(row);
        let target_logit = row[t];
        let s = exp_sum::<true>(row, m);
        total += (m as f64 + (s as f64).ln()) - target_logit as f64;
        let k = scale / s;
        row.iter_mut().for_each(|p| *p *= k);
        row[t] -= scale;
    }
    total
}

/// Backward of [`logits`] given `dlogits[N, V]`.
///
/// - `dw[V, H]`, `db[V]`: accumulated. `dh[N, H]`: written.
pub fn backward(
    dlogits: &[f32],
    h: &[f32],
    w: &[f32],
    dw: &mut [f32],
    db: &mut [f32],
    dh: &mut [f32],
    hidden: usize,
) {
    let v = db.len();
    let n = h.len() / hidden;
    matmul(
        MatMut::new(dw, v, hidden),
        Mat::new(dlogits, n, v).t(),
        Mat::new(h, n, hidden),
        Accumulate::Add,
    );
    for row in dlogits.chunks_exact(v) {
        db.iter_mut().zip(row).for_each(|(d, g)| *d += g);
    }
    matmul(
        MatMut::new(&mut dh[..n * hidden], n, hidden),
        Mat::new(dlogits, n, v),
        Mat::new(w, v, hidden),
        Accumulate::Overwrite,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fused_gradient_is_softmax_minus_onehot() {
        let mut l = vec![1.0, 2.0, 3.0, -1.0, 0.0, 1000.0];
        let orig = l.clone();
        let total = loss_and_grad(&mut l, &[2, 0], 3, 0.5);
        let lse0 = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
        let want0 = lse0 - 3.0;
        let want1 = 1001.0; // log-sum-exp of the second row is 1000 (others vanish), minus −1
        assert!((total - (want0 + want1)).abs() < 1e-5, "{total}");
        assert!((loss(&orig, &[2, 0], 3) - total).abs() < 1e-9);
        let p: Vec<f64> = [1f64, 2.0, 3.0].iter().map(|x| (x - lse0).exp()).collect();
        for j in 0..3 {
            let want = 0.5 * (p[j] - if j == 2 { 1.0 } else { 0.0 });
            assert!((l[j] as f64 - want).abs() < 1e-7);
        }
        // exp saturates at e^-87.3: vanishing probabilities stay below 1e-37.
        for (g, w) in l[3..].iter().zip([-0.5, 0.0, 0.5]) {
            assert!((g - w).abs() < 1e-37, "{g} vs {w}");
        }
    }
}

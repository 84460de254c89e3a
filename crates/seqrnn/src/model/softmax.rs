//! Softmax and cross-entropy: every model's, in one place.
//!
//! - Vocabulary-sized output layers (the language model): forward computes
//!   `logits[N, V] = h[N, H] · W[V, H]ᵀ + b` with one product, then per row the log-sum-exp and
//!   the loss ([`loss`]); in training the same pass overwrites each row with its gradient
//!   `scale · (softmax − onehot(target))` ([`loss_and_grad`]), so no probability tensor is ever
//!   stored. Rows are split across threads and reduced in eight lanes with the engine's `exp`.
//! - Few-class heads (the classifier): [`mean_cross_entropy_grad`], the mean cross-entropy and
//!   its gradient in f64, one row at a time.
//! - Probabilities and sampling weights of single rows ([`row_max`], [`exp_weights`],
//!   [`softmax_row`]): f32 with the standard library's `exp`, summed in order.
//!
//! The three forms round differently (different `exp`, precision and summation order) and each
//! model's results are pinned to its own, so they are kept apart rather than merged.

use rayon::prelude::*;

use crate::linalg::{matmul, matmul_prepared, Accumulate, Mat, MatMut, Prepared};
use crate::rnn::activation::exp;

/// Rows of `[N, V]` handled by one parallel task of the row passes: the split is fixed, so
/// results do not depend on the thread count.
const ROWS_PER_TASK: usize = 8;

/// Columns of `db[V]` summed by one parallel task of the bias gradient.
const COLS_PER_TASK: usize = 1024;

/// `out[N, V] = h[N, H] · Wᵀ`, the output product without the bias.
///
/// - `h[N, H]`, `w[V, H]`: read. `out[N, V]`: written.
pub fn product(h: &[f32], w: &[f32], out: &mut [f32], vocab: usize, hidden: usize) {
    let n = h.len() / hidden;
    matmul(
        MatMut::new(&mut out[..n * vocab], n, vocab),
        Mat::new(h, n, hidden),
        Mat::new(w, vocab, hidden).t(),
        Accumulate::Overwrite,
    );
}

/// `logits[N, V] = h[N, H] · Wᵀ + b`.
///
/// - `h[N, H]`, `w[V, H]`, `b[V]`: read. `logits[N, V]`: written.
pub fn logits(h: &[f32], w: &[f32], b: &[f32], logits: &mut [f32], hidden: usize) {
    let v = b.len();
    let n = h.len() / hidden;
    product(h, w, logits, v, hidden);
    logits[..n * v]
        .par_chunks_mut(v * ROWS_PER_TASK)
        .for_each(|rows| rows.chunks_exact_mut(v).for_each(|row| add(row, b)));
}

/// [`logits`] with the weight prepared once (`w = Wᵀ[H, V]`, e.g.
/// [`crate::linalg::Prepared::for_any_rows`]): `logits[N, V] = h[N, H] · w + b`.
pub fn logits_prepared(h: &[f32], w: &Prepared<'_>, b: &[f32], logits: &mut [f32], hidden: usize) {
    let v = b.len();
    let n = h.len() / hidden;
    matmul_prepared(
        MatMut::new(&mut logits[..n * v], n, v),
        Mat::new(h, n, hidden),
        w,
        Accumulate::Overwrite,
    );
    logits[..n * v]
        .par_chunks_mut(v * ROWS_PER_TASK)
        .for_each(|rows| rows.chunks_exact_mut(v).for_each(|row| add(row, b)));
}

/// `row += b`.
#[multiversion::multiversion(targets = "simd")]
fn add(row: &mut [f32], b: &[f32]) {
    row.iter_mut().zip(b).for_each(|(l, b)| *l += b);
}

/// Lanes of the row reductions: eight independent partial maxima and sums let the compiler
/// vectorise them (a single f32 accumulator forces sequential order).
const LANES: usize = 8;

/// `row += b` and the maximum of the result, in one pass.
fn add_max(row: &mut [f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { avx2::add_max(row, b) };
    }
    add_max_portable(row, b)
}

/// [`add_max`] for any CPU.
#[multiversion::multiversion(targets = "simd")]
fn add_max_portable(row: &mut [f32], b: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    let mut bc = b.chunks_exact(LANES);
    for (c, b) in (&mut chunks).zip(&mut bc) {
        for k in 0..LANES {
            c[k] += b[k];
            acc[k] = acc[k].max(c[k]);
        }
    }
    let mut m = acc.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    for (v, b) in chunks.into_remainder().iter_mut().zip(bc.remainder()) {
        *v += b;
        m = m.max(*v);
    }
    m
}

/// Overwrites each term of the row with `e^{row_j − m}` and returns their sum: lane `k` of
/// eight partial sums takes the terms `j ≡ k (mod 8)` in order, then the lanes are added in
/// order and the tail after them, the same on every CPU.
fn exp_in_place(row: &mut [f32], m: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { avx2::exp_in_place(row, m) };
    }
    exp_in_place_portable(row, m)
}

/// [`exp_in_place`] for any CPU.
#[multiversion::multiversion(targets = "simd")]
fn exp_in_place_portable(row: &mut [f32], m: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for k in 0..LANES {
            let e = exp(c[k] - m);
            c[k] = e;
            acc[k] += e;
        }
    }
    let mut s: f32 = acc.iter().sum();
    for v in chunks.into_remainder() {
        let e = exp(*v - m);
        *v = e;
        s += e;
    }
    s
}

/// AVX2 forms of the row passes, lane for lane the same arithmetic as the portable ones.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::LANES;
    use crate::rnn::activation::avx2::exp8;

    /// See [`super::add_max`].
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn add_max(row: &mut [f32], b: &[f32]) -> f32 {
        let n = row.len().min(b.len());
        let main = n - n % LANES;
        let mut acc = _mm256_set1_ps(f32::NEG_INFINITY);
        let (r, bp) = (row.as_mut_ptr(), b.as_ptr());
        for j in (0..main).step_by(LANES) {
            // SAFETY: j + 8 ≤ n ≤ both lengths.
            unsafe {
                let v = _mm256_add_ps(_mm256_loadu_ps(r.add(j)), _mm256_loadu_ps(bp.add(j)));
                _mm256_storeu_ps(r.add(j), v);
                acc = _mm256_max_ps(v, acc);
            }
        }
        let mut lanes = [0.0f32; LANES];
        // SAFETY: `lanes` holds eight floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
        let mut m = lanes.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        for j in main..n {
            row[j] += b[j];
            m = m.max(row[j]);
        }
        m
    }

    /// See [`super::exp_in_place`].
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn exp_in_place(row: &mut [f32], m: f32) -> f32 {
        let n = row.len();
        let main = n - n % LANES;
        let mut acc = _mm256_setzero_ps();
        let mv = _mm256_set1_ps(m);
        let r = row.as_mut_ptr();
        for j in (0..main).step_by(LANES) {
            // SAFETY: j + 8 ≤ n.
            unsafe {
                let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(r.add(j)), mv));
                _mm256_storeu_ps(r.add(j), e);
                acc = _mm256_add_ps(acc, e);
            }
        }
        let mut lanes = [0.0f32; LANES];
        // SAFETY: `lanes` holds eight floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
        let mut s: f32 = lanes.iter().sum();
        for v in &mut row[main..] {
            let e = crate::rnn::activation::exp(*v - m);
            *v = e;
            s += e;
        }
        s
    }
}

/// `row *= k`.
#[multiversion::multiversion(targets = "simd")]
fn scale(row: &mut [f32], k: f32) {
    row.iter_mut().for_each(|p| *p *= k);
}

/// Cross-entropy `log Σ_j e^{l_j} − l_target` of one row of logits `l = row + b`; the row is
/// used as scratch (it ends holding `e^{l_j − max l}`).
fn row_loss(row: &mut [f32], b: &[f32], target: usize) -> f64 {
    let m = add_max(row, b);
    let target_logit = row[target];
    let s = exp_in_place(row, m);
    (m as f64 + (s as f64).ln()) - target_logit as f64
}

/// Sums per-task partial results in task order (deterministic for any thread count).
fn ordered_sum(parts: Vec<f64>) -> f64 {
    parts.iter().sum()
}

/// Sum of the cross-entropies of all rows of the logits `products[N, V] + b` against
/// `targets[N]` (evaluation). `products` (the output of [`product`]) is used as scratch.
pub fn loss(products: &mut [f32], b: &[f32], targets: &[u32]) -> f64 {
    let v = b.len();
    ordered_sum(
        products
            .par_chunks_mut(v * ROWS_PER_TASK)
            .zip(targets.par_chunks(ROWS_PER_TASK))
            .map(|(rows, ts)| {
                rows.chunks_exact_mut(v)
                    .zip(ts)
                    .map(|(row, &t)| row_loss(row, b, t as usize))
                    .sum::<f64>()
            })
            .collect(),
    )
}

/// Fused loss and gradient: takes `logits[N, V]` holding the products `h · Wᵀ` (bias not yet
/// added), returns the summed cross-entropy of the logits `products + b` against `targets[N]`,
/// and overwrites every row with `scale · (softmax(row + b) − onehot(target))`, the gradient of
/// `scale · Σ loss` with respect to the logits.
pub fn loss_and_grad(logits: &mut [f32], b: &[f32], targets: &[u32], scale_by: f32) -> f64 {
    let v = b.len();
    ordered_sum(
        logits
            .par_chunks_mut(v * ROWS_PER_TASK)
            .zip(targets.par_chunks(ROWS_PER_TASK))
            .map(|(rows, ts)| {
                let mut total = 0.0f64;
                for (row, &t) in rows.chunks_exact_mut(v).zip(ts) {
                    let t = t as usize;
                    let m = add_max(row, b);
                    let target_logit = row[t];
                    let s = exp_in_place(row, m);
                    total += (m as f64 + (s as f64).ln()) - target_logit as f64;
                    scale(row, scale_by / s);
                    row[t] -= scale_by;
                }
                total
            })
            .collect(),
    )
}

/// `db[V] += Σ_n dlogits[n, :]`, columns split across tasks, rows summed in order.
fn bias_grad(dlogits: &[f32], db: &mut [f32]) {
    let v = db.len();
    db.par_chunks_mut(COLS_PER_TASK)
        .enumerate()
        .for_each(|(k, d)| {
            let lo = k * COLS_PER_TASK;
            for row in dlogits.chunks_exact(v) {
                add(d, &row[lo..lo + d.len()]);
            }
        });
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
    bias_grad(dlogits, db);
    matmul(
        MatMut::new(&mut dh[..n * hidden], n, hidden),
        Mat::new(dlogits, n, v),
        Mat::new(w, v, hidden),
        Accumulate::Overwrite,
    );
}

/// Mean softmax cross-entropy of the rows of `logits[N, K]` against `targets[N]` (each `< K`),
/// computed in f64; overwrites every row with `(softmax(row) − onehot(target)) / N`, the gradient
/// of the mean with respect to the logits. For few classes (a classifier's head).
pub fn mean_cross_entropy_grad(logits: &mut [f32], classes: usize, targets: &[u32]) -> f64 {
    let n = targets.len();
    let mut loss = 0.0f64;
    for (row, &y) in logits.chunks_exact_mut(classes).zip(targets) {
        let m = row_max(row);
        let sum: f64 = row.iter().map(|v| ((v - m) as f64).exp()).sum();
        loss += sum.ln() + (m - row[y as usize]) as f64;
        for (j, v) in row.iter_mut().enumerate() {
            let p = ((*v - m) as f64).exp() / sum;
            *v = ((p - if j == y as usize { 1.0 } else { 0.0 }) / n as f64) as f32;
        }
    }
    loss / n as f64
}

/// The largest value of `row` (`−∞` when empty).
pub fn row_max(row: &[f32]) -> f32 {
    row.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

/// Unnormalised softmax weights `e^{(l_j − m) / temperature}` of the logits `row`, with `m` its
/// maximum ([`row_max`]): the largest weight is 1.
pub fn exp_weights(row: &[f32], m: f32, temperature: f32) -> impl Iterator<Item = f32> + '_ {
    row.iter().map(move |&l| ((l - m) / temperature).exp())
}

/// `out[K] = softmax(row[K])`: [`exp_weights`] at temperature 1 over their sum (in order).
pub fn softmax_row(row: &[f32], out: &mut [f32]) {
    let m = row_max(row);
    let sum: f32 = exp_weights(row, m, 1.0).sum();
    for (o, w) in out.iter_mut().zip(exp_weights(row, m, 1.0)) {
        *o = w / sum;
    }
}

/// `row[K] = log softmax(row[K])` in place: each value less the log-sum-exp of the row.
pub fn log_softmax_row(row: &mut [f32]) {
    let m = row_max(row);
    let lse = m + exp_weights(row, m, 1.0).sum::<f32>().ln();
    row.iter_mut().for_each(|v| *v -= lse);
}

/// The element-wise mean of several models' outputs for the same examples (each a list of
/// per-example rows of equal shapes), added one model at a time: what an ensemble averages.
#[derive(Clone, Debug, Default)]
pub struct RowMean {
    sum: Vec<Vec<f32>>,
    count: usize,
}

impl RowMean {
    /// Adds one model's rows (shaped as the first's).
    pub fn add(&mut self, rows: Vec<Vec<f32>>) {
        match self.count {
            0 => self.sum = rows,
            _ => {
                for (a, b) in self.sum.iter_mut().zip(&rows) {
                    a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                }
            }
        }
        self.count += 1;
    }

    /// The mean of the rows added (none if nothing was).
    pub fn mean(mut self) -> Vec<Vec<f32>> {
        let n = self.count.max(1) as f32;
        self.sum.iter_mut().flatten().for_each(|a| *a /= n);
        self.sum
    }
}

/// Index of the largest value (the first on ties).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_row_passes_equal_the_portable_ones_bit_for_bit() {
        let row: Vec<f32> = (0..1003)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.37)
            .collect();
        let b: Vec<f32> = (0..1003)
            .map(|i| ((i * 13 % 17) as f32 - 8.0) * 0.1)
            .collect();
        let (mut r1, mut r2) = (row.clone(), row);
        let (m1, m2) = (add_max(&mut r1, &b), add_max_portable(&mut r2, &b));
        assert_eq!(m1.to_bits(), m2.to_bits());
        let (s1, s2) = (
            exp_in_place(&mut r1, m1),
            exp_in_place_portable(&mut r2, m2),
        );
        assert_eq!(s1.to_bits(), s2.to_bits());
        assert!(r1.iter().zip(&r2).all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn fused_gradient_is_softmax_minus_onehot() {
        let mut l = vec![1.0, 2.0, 3.0, -1.0, 0.0, 1000.0];
        let orig = l.clone();
        let total = loss_and_grad(&mut l, &[0.0; 3], &[2, 0], 0.5);
        let lse0 = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
        let want0 = lse0 - 3.0;
        let want1 = 1001.0; // log-sum-exp of the second row is 1000 (others vanish), minus −1
        assert!((total - (want0 + want1)).abs() < 1e-5, "{total}");
        assert!((loss(&mut orig.clone(), &[0.0; 3], &[2, 0]) - total).abs() < 1e-9);
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

    #[test]
    fn log_softmax_and_the_mean_of_rows() {
        let mut row = [1.0f32, 2.0, -3.0];
        log_softmax_row(&mut row);
        let z: f64 = [1.0f64, 2.0, -3.0].iter().map(|v| v.exp()).sum::<f64>();
        for (v, x) in row.iter().zip([1.0f64, 2.0, -3.0]) {
            assert!((f64::from(*v) - (x - z.ln())).abs() < 1e-6);
        }
        let mut mean = RowMean::default();
        mean.add(vec![vec![1.0, 2.0], vec![3.0]]);
        mean.add(vec![vec![3.0, -2.0], vec![6.0]]);
        assert_eq!(mean.mean(), vec![vec![2.0, 0.0], vec![4.5]]);
        assert!(RowMean::default().mean().is_empty());
    }

    #[test]
    fn row_forms_agree_with_their_definitions() {
        let row = [1.0f32, -2.0, 0.5, 3.0];
        let mut p = [0.0; 4];
        softmax_row(&row, &mut p);
        let z: f64 = row.iter().map(|&v| (v as f64).exp()).sum();
        for (pj, &v) in p.iter().zip(&row) {
            assert!((*pj as f64 - (v as f64).exp() / z).abs() < 1e-6);
        }
        assert_eq!(row_max(&row), 3.0);
        let w: Vec<f32> = exp_weights(&row, 3.0, 2.0).collect();
        assert_eq!(w[3], 1.0);
        assert!((w[0] - (-1.0f32).exp()).abs() < 1e-7);
        let mut l = [1.0f32, 2.0, 3.0, 0.0, 0.0, 0.0];
        let loss = mean_cross_entropy_grad(&mut l, 3, &[2, 1]);
        let want = ((z_of(&[1.0, 2.0, 3.0]) - 3.0) + 3f64.ln()) / 2.0;
        assert!((loss - want).abs() < 1e-12, "{loss} vs {want}");
        assert!((l[3] - 1.0 / 6.0).abs() < 1e-7 && (l[4] + 1.0 / 3.0).abs() < 1e-7);
    }

    fn z_of(row: &[f64]) -> f64 {
        row.iter().map(|v| v.exp()).sum::<f64>().ln()
    }
}

//! 8-bit integer products for inference: `y[m, n] (=|+=) x[m, k] · Wᵀ` with the weight
//! `W[n, k]` (PyTorch's layout) quantized once to `i8` per output channel and the activations
//! `x` quantized per row at each call to `u8`, multiplied by `rten-gemm`'s integer kernels
//! (`vpdpbusd` with AVX-512 VNNI or AVX-VNNI, `vpmaddubsw` with AVX2, Arm dot products) with
//! `i32` sums, then scaled back to `f32`.
//!
//! - Weight row `j`: `s_j = max_k |W[j, k]| / 127` rounded up to 17 significant bits,
//!   `q[j, k] = round(W[j, k] / s_j)` in `−127..=127`, zero point 0 (a row of zeros gets
//!   `s_j = 1`). With 17 bits in `s_j` and 7 in `q`, the dequantized `s_j · q[j, k]` is exact in
//!   f32, so quantizing dequantized values gives back the same `q` and `s` ([`quantize_in_place`]):
//!   a quantized model's file holds `q` and `s`, and the f32 values read back from it quantize
//!   to exactly the weights that were saved.
//! - Activation row `i`: the range `[lo, hi]` of its values widened to hold 0, `a_i = (hi −
//!   lo) / L`, zero point `z_i = round(−lo / a_i)`, `p[i, k] = clamp(round(x / a_i) + z_i, 0,
//!   L)` with `L = 255`, or `L = 127` on a CPU whose kernel may saturate its 16-bit pair sums
//!   (AVX2 without VNNI: [`rten_gemm::GemmExecutor::may_saturate`]).
//! - `y[i, j] = a_i · s_j · Σ_k (p[i, k] − z_i) · q[j, k]`, the sum exact in `i32`.
//!
//! The sums are integers, so they do not depend on the thread count, the kernel or the other
//! rows; tested against a plain-loop integer oracle.
//!
//! A quantized model's weights stay where every pass reads them, in its f32 parameter block
//! (holding the dequantized values), and [`Int8Weights`] marks which tensors of that block are
//! int8: while it lives, [`super::matmul`] and [`super::Prepared`] send every product `x · Wᵀ`
//! whose `W` is rows of a marked tensor to the integer kernels, with `W` quantized and packed
//! once (at its first product) and kept. Every pass of every model, inference and generation
//! alike, thus runs its products in int8 with no code of its own; a product with another
//! operand (a weight used as stored, an activation) stays f32.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rten_gemm::{GemmExecutor, GemmInputA, GemmInputB, GemmOptions, PackedBMatrix};
use rten_tensor::NdTensorView;

use super::{Accumulate, Mat, MatMut};

thread_local! {
    /// The thread's integer executor (as [`super::packed`]'s float one).
    static EXEC: GemmExecutor<u8, i8, i32> = GemmExecutor::default();
    /// Per-call buffers: the quantized activations, their zero points and scales, the `i32`
    /// sums.
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
}

#[derive(Default)]
struct Buffers {
    p: Vec<u8>,
    zero: Vec<u8>,
    scale: Vec<f32>,
    sums: Vec<i32>,
}

/// A weight `W[n, k]` quantized per output channel (row), packed once for the integer kernels.
pub struct QuantizedWeight {
    /// `q[n, k]`, row-major, as quantized (kept for the oracle and for saving).
    q: Vec<i8>,
    /// `s[n]`: row `j` of `W` is `s_j · q[j, :]`.
    scales: Vec<f32>,
    /// `Σ_k q[j, k]` for each row `j`: the activations' zero points come off the sums as
    /// `z_i · Σ_k q[j, k]`.
    sums: Vec<i32>,
    /// `qᵀ[k, n]` in the kernels' panel layout.
    packed: PackedBMatrix<i8>,
    k: usize,
}

impl QuantizedWeight {
    /// Quantizes `w[n, k]` (rows are output channels).
    pub fn new(w: Mat<'_>) -> Self {
        let (n, k) = (w.rows, w.cols);
        let mut q = Vec::with_capacity(n * k);
        let mut scales = Vec::with_capacity(n);
        let mut sums = Vec::with_capacity(n);
        for j in 0..n {
            let row = (0..k).map(|c| w.data[j * w.rs + c * w.cs]);
            let s = scale_of(row.clone());
            q.extend(row.map(|v| level(v, s)));
            scales.push(s);
            sums.push(q[j * k..].iter().map(|&v| v as i32).sum());
        }
        let qt = NdTensorView::from_data_with_strides([k, n], q.as_slice(), [1, k])
            .expect("a [k, n] view of q[n, k]");
        let packed = EXEC.with(|e| e.prepack_b(qt));
        QuantizedWeight {
            q,
            scales,
            sums,
            packed,
            k,
        }
    }

    /// Output channels `n`.
    pub fn rows(&self) -> usize {
        self.scales.len()
    }

    /// Input features `k`.
    pub fn cols(&self) -> usize {
        self.k
    }

    /// The quantized values `q[n, k]` and the per-row scales `s[n]`.
    pub fn parts(&self) -> (&[i8], &[f32]) {
        (&self.q, &self.scales)
    }
}

/// The scale of a weight row: `max |w| / 127` rounded up to 17 significant bits (so that
/// `scale · q` is exact in f32 for every `|q| ≤ 127`); 1 for a row of zeros.
fn scale_of(row: impl Iterator<Item = f32>) -> f32 {
    let max = row.fold(0.0f32, |m, v| m.max(v.abs()));
    if !(max > 0.0 && max.is_finite()) {
        return 1.0;
    }
    let bits = (max / 127.0).to_bits();
    f32::from_bits(if bits & 0x7f == 0 {
        bits
    } else {
        (bits & !0x7f) + 0x80
    })
}

/// The level `q` of one weight value at scale `s`.
fn level(v: f32, s: f32) -> i8 {
    (v / s).round().clamp(-127.0, 127.0) as i8
}

/// Quantizes the rows of `w[n, k]` (row-major) in place, each to `s_j · q[j, :]` (the values
/// an int8 product uses), and returns the scales `s[n]`. Idempotent: values it wrote quantize
/// to themselves with the same scales.
///
/// # Panics
/// If `k` is 0 or does not divide `w.len()`.
pub fn quantize_in_place(w: &mut [f32], k: usize) -> Vec<f32> {
    assert!(k > 0 && w.len().is_multiple_of(k), "rows of {k} values");
    w.chunks_exact_mut(k)
        .map(|row| {
            let s = scale_of(row.iter().copied());
            row.iter_mut().for_each(|v| *v = s * level(*v, s) as f32);
            s
        })
        .collect()
}

/// The levels `q[n, k]` of rows already quantized with the scales `s[n]` (as
/// [`quantize_in_place`] left them): `round(w / s)`, exact for such values.
///
/// # Panics
/// If `w` does not hold `scales.len()` rows of `k` values.
pub fn levels_of(w: &[f32], k: usize, scales: &[f32]) -> Vec<i8> {
    assert_eq!(w.len(), k * scales.len(), "rows of {k} values");
    w.chunks_exact(k.max(1))
        .zip(scales)
        .flat_map(|(row, &s)| row.iter().map(move |&v| level(v, s)))
        .collect()
}

/// The highest activation level: 255, or 127 where the kernel may saturate.
fn levels() -> f32 {
    if EXEC.with(|e| e.may_saturate()) {
        127.0
    } else {
        255.0
    }
}

/// Quantizes the rows of `x[m, k]` into `b.p[m, k]` with zero points `b.zero[m]` and scales
/// `b.scale[m]` (a value `v` goes to the level `⌊v / a + z + ½⌋`, clamped).
fn quantize_rows(x: Mat<'_>, b: &mut Buffers) {
    let (m, k, top) = (x.rows, x.cols, levels());
    b.p.clear();
    b.zero.clear();
    b.scale.clear();
    for i in 0..m {
        let row = (0..k).map(|c| x.data[i * x.rs + c * x.cs]);
        let (lo, hi) = row
            .clone()
            .fold((0.0f32, 0.0f32), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let a = if hi > lo { (hi - lo) / top } else { 1.0 };
        let z = (-lo / a).round().clamp(0.0, top);
        // Non-negative after the clamp, so `as u8` (truncation) rounds `+ ½` down: no libm call.
        let (inv, shift) = (1.0 / a, z + 0.5);
        b.p.extend(row.map(|v| (v * inv + shift).clamp(0.0, top + 0.49) as u8));
        b.zero.push(z as u8);
        b.scale.push(a);
    }
}

/// The kernel's sums `Σ_k p[i, k] · q[j, k]` of the quantized `x` into `b.sums[m, n]`; the
/// zero points come off in [`matmul_int8`], as `z_i · Σ_k q[j, k]` (the kernels' own
/// zero-point option gave wrong sums on rows with different zero points in `rten-gemm` 0.24
/// and 0.27, checked against the oracle below).
fn kernel_sums(w: &QuantizedWeight, m: usize, b: &mut Buffers) {
    let n = w.rows();
    let p = NdTensorView::from_data([m, w.k], b.p.as_slice());
    if b.sums.len() < m * n {
        b.sums.resize(m * n, 0);
    }
    // The packed tiles even for a single row: measured, `rten-gemm`'s vector-matrix path (B
    // unpacked) generated at H = 650 in 0.68–0.83 ms per token against 0.60–0.65.
    let (a, q) = (GemmInputA::Unpacked(p), GemmInputB::Packed(&w.packed));
    EXEC.with(|e| e.gemm(&mut b.sums[..m * n], a, q, GemmOptions::default()))
        .expect("shapes checked by matmul_int8");
}

/// `C (=|+=) x · Wᵀ` in 8-bit integers: `x[m, k]`, `w` quantized from `W[n, k]`, `c[m, n]`.
/// Panics if the shapes disagree.
pub fn matmul_int8(c: MatMut<'_>, x: Mat<'_>, w: &QuantizedWeight, acc: Accumulate) {
    let (m, n) = (x.rows, w.rows());
    assert_eq!(x.cols, w.k, "inner dimensions differ");
    assert_eq!((c.rows, c.cols), (m, n), "output shape differs");
    if m == 0 || n == 0 {
        return;
    }
    // Blocks of rows, each quantized, multiplied and turned into values while its sums are in
    // cache, on the threads that products may use (each with its own buffers).
    let stride = c.rs.max(n);
    let out = &mut c.data[..(m - 1) * stride + n];
    let block = |(index, out): (usize, &mut [f32])| {
        let first = index * BLOCK_ROWS;
        let x = Mat {
            data: &x.data[first * x.rs..],
            rows: BLOCK_ROWS.min(m - first),
            ..x
        };
        BUFFERS.with(|b| product_block(out, stride, x, w, acc, &mut b.borrow_mut()));
    };
    if m > BLOCK_ROWS && super::threads() > 1 {
        use rayon::prelude::*;
        out.par_chunks_mut(BLOCK_ROWS * stride)
            .enumerate()
            .for_each(block);
    } else {
        out.chunks_mut(BLOCK_ROWS * stride)
            .enumerate()
            .for_each(block);
    }
}

/// One block of [`matmul_int8`]: `out` holds its rows of `C`, `stride` apart.
fn product_block(
    out: &mut [f32],
    stride: usize,
    x: Mat<'_>,
    w: &QuantizedWeight,
    acc: Accumulate,
    b: &mut Buffers,
) {
    let n = w.rows();
    quantize_rows(x, b);
    kernel_sums(w, x.rows, b);
    for (i, dst) in out.chunks_mut(stride).take(x.rows).enumerate() {
        let row = Row {
            a: b.scale[i],
            z: b.zero[i] as i32,
            sums: &b.sums[i * n..(i + 1) * n],
            q_sums: &w.sums,
            scales: &w.scales,
        };
        row.write(&mut dst[..n], acc);
    }
}

/// Rows of `x` quantized and multiplied at a time by [`matmul_int8`].
const BLOCK_ROWS: usize = 32;

/// One output row's integer sums and what turns them into values:
/// `y_j = a · s_j · (sums_j − z · q_sums_j)`.
struct Row<'a> {
    a: f32,
    z: i32,
    sums: &'a [i32],
    q_sums: &'a [i32],
    scales: &'a [f32],
}

impl Row<'_> {
    /// Writes (or adds) the row's values into `dst`, with the widest vectors the CPU has (the
    /// same arithmetic, element by element, on every path).
    fn write(&self, dst: &mut [f32], acc: Accumulate) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F, checked just above.
                return unsafe { self.write_avx512(dst, acc) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, checked just above.
                return unsafe { self.write_avx2(dst, acc) };
            }
        }
        self.write_plain(dst, acc)
    }

    #[inline(always)]
    fn write_plain(&self, dst: &mut [f32], acc: Accumulate) {
        let (a, z, n) = (self.a, self.z, dst.len());
        let (sums, q_sums, scales) = (&self.sums[..n], &self.q_sums[..n], &self.scales[..n]);
        let value = |j: usize| a * scales[j] * (sums[j] - z * q_sums[j]) as f32;
        match acc {
            Accumulate::Overwrite => (0..n).for_each(|j| dst[j] = value(j)),
            Accumulate::Add => (0..n).for_each(|j| dst[j] += value(j)),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn write_avx512(&self, dst: &mut [f32], acc: Accumulate) {
        self.write_plain(dst, acc)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn write_avx2(&self, dst: &mut [f32], acc: Accumulate) {
        self.write_plain(dst, acc)
    }
}

/// One marked tensor `W[n, k]` of an [`Int8Weights`]: its address, shape, and the quantized
/// packs of the row ranges products have used (`(first row, rows)`).
struct Region {
    owner: usize,
    addr: usize,
    n: usize,
    k: usize,
    packs: Mutex<Vec<Pack>>,
}

/// A quantized pack of rows `first..first + rows` of a marked tensor: `((first, rows), pack)`.
type Pack = ((usize, usize), Arc<QuantizedWeight>);

/// Every marked tensor of the process; [`MARKED`] counts them, so that a process with none
/// (every training run) pays one atomic load per product.
static REGIONS: RwLock<Vec<Region>> = RwLock::new(Vec::new());
static MARKED: AtomicUsize = AtomicUsize::new(0);
static OWNERS: AtomicUsize = AtomicUsize::new(1);

/// Marks tensors of an f32 parameter block as int8 for as long as it lives (see the module
/// documentation): the products `x · Wᵀ` with rows of a marked `W` run on the integer kernels.
///
/// The block must hold values quantized by [`quantize_in_place`] (as read back from a quantized
/// model's file) and must neither move nor change while marked: the owner keeps it in a
/// `Vec` it does not grow and drops this before it.
#[derive(Debug)]
pub struct Int8Weights {
    owner: usize,
}

impl Int8Weights {
    /// Marks the tensors `(values, k)` (row-major `W[n, k]`, `n = values.len() / k`).
    ///
    /// # Panics
    /// If a `k` is 0 or does not divide its tensor's length.
    pub fn mark<'a>(tensors: impl IntoIterator<Item = (&'a [f32], usize)>) -> Self {
        let owner = OWNERS.fetch_add(1, Ordering::Relaxed);
        let mut regions = REGIONS.write().unwrap_or_else(|e| e.into_inner());
        for (values, k) in tensors {
            assert!(
                k > 0 && values.len().is_multiple_of(k),
                "rows of {k} values"
            );
            regions.push(Region {
                owner,
                addr: values.as_ptr() as usize,
                n: values.len() / k,
                k,
                packs: Mutex::new(Vec::new()),
            });
            MARKED.fetch_add(1, Ordering::Relaxed);
        }
        Int8Weights { owner }
    }
}

impl Drop for Int8Weights {
    fn drop(&mut self) {
        let mut regions = REGIONS.write().unwrap_or_else(|e| e.into_inner());
        let before = regions.len();
        regions.retain(|r| r.owner != self.owner);
        MARKED.fetch_sub(before - regions.len(), Ordering::Relaxed);
    }
}

/// The quantized, packed weight of a product `x · b` whose `b[k, n']` is `W[r..r+n', :]ᵀ` for a
/// marked `W[·, k]`; `None` for any other `b`.
pub(super) fn marked(b: Mat<'_>) -> Option<Arc<QuantizedWeight>> {
    if MARKED.load(Ordering::Relaxed) == 0 || b.rs != 1 || b.cols == 0 {
        return None;
    }
    let (k, n) = (b.rows, b.cols);
    let addr = b.data.as_ptr() as usize;
    let regions = REGIONS.read().unwrap_or_else(|e| e.into_inner());
    let region = regions.iter().find(|r| {
        let end = r.addr + 4 * r.n * r.k;
        r.k == k
            && b.cs == k
            && (r.addr..end).contains(&addr)
            && (addr - r.addr).is_multiple_of(4 * k)
    })?;
    let first = (addr - region.addr) / (4 * k);
    if first + n > region.n {
        return None;
    }
    let mut packs = region.packs.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, w)) = packs.iter().find(|(key, _)| *key == (first, n)) {
        return Some(w.clone());
    }
    let w = Arc::new(QuantizedWeight::new(Mat::new(&b.data[..n * k], n, k)));
    packs.push(((first, n), w.clone()));
    Some(w)
}

#[cfg(test)]
mod tests {
    use super::super::tests::wavy;
    use super::*;

    /// The integer sums of plain loops over the same quantized values.
    fn oracle(b: &Buffers, w: &QuantizedWeight, m: usize) -> Vec<i32> {
        let (k, n) = (w.cols(), w.rows());
        let (q, _) = w.parts();
        let mut out = vec![0i32; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k)
                    .map(|c| (b.p[i * k + c] as i32 - b.zero[i] as i32) * q[j * k + c] as i32)
                    .sum();
            }
        }
        out
    }

    #[test]
    fn kernel_sums_less_the_zero_points_equal_the_plain_loop_oracle() {
        for &(m, k, n) in &[
            (1, 650, 2600),
            (20, 200, 800),
            (17, 8, 16),
            (7, 33, 96),
            (3, 1, 5),
        ] {
            let (x, w) = (wavy(m, k, 1), wavy(n, k, 2));
            let qw = QuantizedWeight::new(Mat::new(&w, n, k));
            let mut b = Buffers::default();
            quantize_rows(Mat::new(&x, m, k), &mut b);
            kernel_sums(&qw, m, &mut b);
            let corrected: Vec<i32> = (b.sums[..m * n].chunks_exact(n).zip(&b.zero))
                .flat_map(|(row, &z)| row.iter().zip(&qw.sums).map(move |(s, q)| s - z as i32 * q))
                .collect();
            assert_eq!(corrected, oracle(&b, &qw, m), "m={m} k={k} n={n}");
        }
    }

    #[test]
    fn the_product_is_close_to_the_float_one_and_rows_do_not_interact() {
        let (m, k, n) = (20, 650, 2600);
        let (x, w) = (wavy(m, k, 3), wavy(n, k, 4));
        let qw = QuantizedWeight::new(Mat::new(&w, n, k));
        let mut y = vec![0.0; m * n];
        matmul_int8(
            MatMut::new(&mut y, m, n),
            Mat::new(&x, m, k),
            &qw,
            Accumulate::Overwrite,
        );
        let mut want = vec![0.0; m * n];
        let wt = Mat::new(&w, n, k).t();
        super::super::matmul(
            MatMut::new(&mut want, m, n),
            Mat::new(&x, m, k),
            wt,
            Accumulate::Overwrite,
        );
        // Quantization error: a few steps of a_i · s_j · √k at the most.
        let worst = y
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let typical = want.iter().map(|v| v.abs()).sum::<f32>() / want.len() as f32;
        assert!(
            worst < 0.05 * typical.max(1.0),
            "worst {worst}, typical {typical}"
        );
        // Row 4 alone: the same values.
        let mut alone = vec![0.0; n];
        let x4 = &x[4 * k..5 * k];
        matmul_int8(
            MatMut::new(&mut alone, 1, n),
            Mat::new(x4, 1, k),
            &qw,
            Accumulate::Overwrite,
        );
        assert_eq!(alone, y[4 * n..5 * n]);
        // Accumulating adds.
        let mut twice = y.clone();
        matmul_int8(
            MatMut::new(&mut twice, m, n),
            Mat::new(&x, m, k),
            &qw,
            Accumulate::Add,
        );
        for (t, v) in twice.iter().zip(&y) {
            assert_eq!(*t, v + v);
        }
    }

    #[test]
    fn quantized_values_quantize_to_themselves() {
        let (n, k) = (13, 37);
        let mut w = wavy(n, k, 5);
        w[3 * k..4 * k].fill(0.0);
        let original = w.clone();
        let s = quantize_in_place(&mut w, k);
        let direct = QuantizedWeight::new(Mat::new(&original, n, k));
        assert_eq!(s, direct.parts().1);
        assert_eq!(levels_of(&w, k, &s), direct.parts().0);
        let again = w.clone();
        assert_eq!(quantize_in_place(&mut w, k), s);
        assert_eq!(w, again);
        // Within half a step of the original values.
        for ((v, o), s) in w.chunks(k).zip(original.chunks(k)).zip(&s) {
            v.iter()
                .zip(o)
                .for_each(|(v, o)| assert!((v - o).abs() <= 0.5 * s));
        }
    }

    #[test]
    fn marked_weights_run_their_products_in_int8_until_unmarked() {
        let (m, k, n) = (5, 24, 12);
        let x = wavy(m, k, 6);
        let mut w = wavy(n, k, 7);
        quantize_in_place(&mut w, k);
        let product = |w: &[f32], rows: usize| {
            let mut y = vec![0.0; m * rows];
            super::super::matmul(
                MatMut::new(&mut y, m, rows),
                Mat::new(&x, m, k),
                Mat::new(w, rows, k).t(),
                Accumulate::Overwrite,
            );
            y
        };
        let int8 = |w: &[f32], rows: usize| {
            let mut y = vec![0.0; m * rows];
            let q = QuantizedWeight::new(Mat::new(w, rows, k));
            matmul_int8(
                MatMut::new(&mut y, m, rows),
                Mat::new(&x, m, k),
                &q,
                Accumulate::Overwrite,
            );
            y
        };
        let f32_whole = product(&w, n);
        let mark = Int8Weights::mark([(&w[..], k)]);
        assert_eq!(product(&w, n), int8(&w, n));
        assert_ne!(product(&w, n), f32_whole);
        // Rows 4..10 alone, and through a prepared operand.
        let rows = &w[4 * k..10 * k];
        assert_eq!(product(rows, 6), int8(rows, 6));
        let prep = super::super::Prepared::new(Mat::new(rows, 6, k).t(), m, 1, 1);
        let mut y = vec![0.0; m * 6];
        super::super::matmul_prepared(
            MatMut::new(&mut y, m, 6),
            Mat::new(&x, m, k),
            &prep,
            Accumulate::Overwrite,
        );
        assert_eq!(y, int8(rows, 6));
        // A weight used as stored, and a copy, stay f32.
        let copy = w.clone();
        assert_eq!(product(&copy, n), f32_whole);
        drop(mark);
        assert_eq!(product(&w, n), f32_whole);
    }

    #[test]
    fn a_zero_row_quantizes_and_multiplies_to_zero() {
        let w = [0.0f32; 6];
        let qw = QuantizedWeight::new(Mat::new(&w, 2, 3));
        assert_eq!(qw.parts().1, &[1.0, 1.0]);
        let x = [0.0f32; 3];
        let mut y = [5.0f32; 2];
        matmul_int8(
            MatMut::new(&mut y, 1, 2),
            Mat::new(&x, 1, 3),
            &qw,
            Accumulate::Overwrite,
        );
        assert_eq!(y, [0.0, 0.0]);
    }
}

//! Matrix multiplication: the one place the engine calls a matrix-multiply crate.
//!
//! Every product in the engine is `C[m, n] (=|+=) A[m, k] · B[k, n]` on f32 views with arbitrary
//! row and column strides, so a transposed operand (a PyTorch weight `W[G·H, I]` used as `Wᵀ`) or
//! a column slice of a wider buffer (one direction of a bidirectional output) costs no copy.
//!
//! Two well-kept pure-Rust crates do the work, chosen per shape by measurement
//! (`tools/gemm-compare`, table in `docs/performance.md`):
//! - `faer` for products with few rows (`m ≤ 64`: the per-step recurrent products `[B,H]·[H,G·H]`
//!   and `[B,G·H]·[G·H,H]`), where its small-matrix kernels are fastest; single-threaded below
//!   [`SMALL_PARALLEL_WORK`] multiply-adds, where splitting costs more than it saves;
//! - `gemm` (with its AVX-512 `x86-v4` kernels) for everything larger: the all-steps input
//!   projection, the weight gradients and the output layer.
//!
//! The thread count is process-wide ([`set_threads`]); both crates run on rayon's global pool.
//!
//! A recurrent weight multiplies a `[B, ·]` state at every step of a sequence: [`Prepared`]
//! packs it once per pass in the panel layout of `rten-gemm`'s kernels (its prepacked right
//! operand, AVX-512/AVX2/Arm), and [`matmul_prepared`] multiplies each step's state by the packed
//! weight without packing it again. Its values are the same on any thread count and for a row
//! alone as in a batch (tested here).
//!
//! A model quantized to 8 bits marks its int8 weights ([`int8::Int8Weights`]); every product
//! with such a weight then runs on the integer kernels of [`int8`], through [`matmul`] and
//! [`Prepared`] alike.
//!
//! With the `mkl` feature every product goes to Intel oneMKL instead (`cblas_sgemm` on oneMKL's
//! own OpenMP threads), and a [`Prepared`] weight is packed once in oneMKL's internal layout
//! (`cblas_sgemm_pack`/`cblas_sgemm_compute`), as oneDNN does for its recurrent weights. The
//! measurements behind both routes are in `docs/performance.md`. Such a build still takes the
//! pure-Rust route when the environment says `SEQRNN_MATMUL=rust` ([`uses_mkl`]), so that one
//! build can be tested with both.

use std::sync::atomic::{AtomicUsize, Ordering};

static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Whether products go to oneMKL: in a build with the `mkl` feature, unless the environment
/// variable `SEQRNN_MATMUL` is `rust` (read once, at the first product); never otherwise.
pub fn uses_mkl() -> bool {
    #[cfg(feature = "mkl")]
    {
        static MKL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *MKL.get_or_init(|| std::env::var("SEQRNN_MATMUL").map_or(true, |v| v != "rust"))
    }
    #[cfg(not(feature = "mkl"))]
    false
}

/// Products with at most this many rows go to the small-matrix path.
pub const SMALL_ROWS: usize = 64;
/// Small products with fewer multiply-adds (`m·n·k`) than this run on one thread.
pub const SMALL_PARALLEL_WORK: usize = 8_000_000;
/// Large products with fewer multiply-adds than this run on one thread.
pub const LARGE_PARALLEL_WORK: usize = 1_000_000;

/// Sets the number of threads matrix products may use (at least 1). Products use the rayon pool
/// they are called from (the global pool outside any), so values above its size (by default the
/// number of cores) give no further speed-up.
pub fn set_threads(n: usize) {
    THREADS.store(n.max(1), Ordering::Relaxed);
}

/// The number of threads matrix products may use: [`set_threads`]' count, and, for a product
/// computed on a thread of a rayon pool, no more than that pool has. How a computation splits
/// its work (and so its last bits) follows from this count, so a computation run inside a pool
/// (`ThreadPool::install`) splits as that pool's size says, whatever other pools do meanwhile.
pub fn threads() -> usize {
    let n = THREADS.load(Ordering::Relaxed);
    match rayon::current_thread_index() {
        Some(_) => n.min(rayon::current_num_threads()),
        None => n,
    }
}

/// A read-only strided matrix view: element `(i, j)` is `data[i·rs + j·cs]`.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    /// A contiguous row-major `[rows, cols]` matrix.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols)
    }

    /// A row-major `[rows, cols]` matrix whose rows start `row_stride` elements apart.
    pub fn strided(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        let m = Mat {
            data,
            rows,
            cols,
            rs: row_stride,
            cs: 1,
        };
        m.check();
        m
    }

    /// The transpose, as a view of the same memory.
    pub fn t(self) -> Self {
        Mat {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    fn check(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.rs + (self.cols - 1) * self.cs;
            assert!(last < self.data.len(), "matrix view exceeds its buffer");
        }
    }
}

/// A writable strided matrix view, row-major with a row stride.
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    rs: usize,
}

impl<'a> MatMut<'a> {
    /// A contiguous row-major `[rows, cols]` matrix.
    pub fn new(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols)
    }

    /// A row-major `[rows, cols]` matrix whose rows start `row_stride` elements apart.
    pub fn strided(data: &'a mut [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        assert!(
            cols <= row_stride || rows <= 1,
            "row stride below row length"
        );
        if rows > 0 && cols > 0 {
            assert!(
                (rows - 1) * row_stride + cols <= data.len(),
                "matrix view exceeds its buffer"
            );
        }
        MatMut {
            data,
            rows,
            cols,
            rs: row_stride,
        }
    }
}

impl MatMut<'_> {
    /// The same view, borrowed again.
    pub fn reborrow(&mut self) -> MatMut<'_> {
        MatMut {
            data: self.data,
            rows: self.rows,
            cols: self.cols,
            rs: self.rs,
        }
    }
}

/// Resizes a workspace buffer to exactly `n` values; no allocation once it has had that size.
pub(crate) fn fit(v: &mut Vec<f32>, n: usize) {
    if v.len() != n {
        v.resize(n, 0.0);
    }
}

/// Whether a product overwrites or adds to its destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accumulate {
    /// `C = A·B`.
    Overwrite,
    /// `C += A·B`.
    Add,
}

/// `C (=|+=) A · B`.
///
/// Shapes: `a[m, k]`, `b[k, n]`, `c[m, n]`, any strides; `c` must not alias `a` or `b` (guaranteed
/// by the borrow rules). Panics if the inner or outer dimensions disagree.
pub fn matmul(c: MatMut<'_>, a: Mat<'_>, b: Mat<'_>, acc: Accumulate) {
    match int8::marked(b) {
        Some(w) => int8::matmul_int8(c, a, &w, acc),
        None => matmul_inner(c, a, b, acc, threads()),
    }
    clear_upper_vector_state();
}

/// [`matmul`] whose values for a row of `a` do not depend on how many rows `a` has: the same,
/// to the bit, alone or in a batch of any size and company (batch-invariant inference). `b` is
/// packed for this call ([`Prepared::for_any_rows`]), as the plain products pack it inside.
pub fn matmul_rows(c: MatMut<'_>, a: Mat<'_>, b: Mat<'_>, acc: Accumulate) {
    matmul_prepared(c, a, &Prepared::for_any_rows(b), acc);
}

/// Some AVX-512 kernels return with the upper halves of the vector registers dirty; every
/// later non-VEX (SSE) instruction, e.g. in libm's `expf`, then pays a transition penalty
/// (measured here: 1.1 M sigmoids took 195 ms instead of 4 ms). `vzeroupper` clears that state.
#[inline]
fn clear_upper_vector_state() {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU supports AVX, checked just above.
            unsafe { zeroupper() }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn zeroupper() {
    std::arch::x86_64::_mm256_zeroupper();
}

fn matmul_inner(c: MatMut<'_>, a: Mat<'_>, b: Mat<'_>, acc: Accumulate, threads: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions differ");
    assert_eq!((c.rows, c.cols), (m, n), "output shape differs");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if acc == Accumulate::Overwrite {
            for i in 0..m {
                c.data[i * c.rs..i * c.rs + n].fill(0.0);
            }
        }
        return;
    }
    let work = m * n * k;
    #[cfg(feature = "mkl")]
    let mut c = c;
    #[cfg(feature = "mkl")]
    if uses_mkl() && mkl_matmul(&mut c, a, b, acc, threads) {
        return;
    }
    if m <= SMALL_ROWS {
        let par = if threads > 1 && work >= SMALL_PARALLEL_WORK {
            faer::Par::rayon(threads)
        } else {
            faer::Par::Seq
        };
        // SAFETY: every view was bounds-checked against its slice on construction, and `c` is a
        // unique borrow, so it aliases neither operand.
        unsafe {
            let a =
                faer::MatRef::from_raw_parts(a.data.as_ptr(), m, k, a.rs as isize, a.cs as isize);
            let b =
                faer::MatRef::from_raw_parts(b.data.as_ptr(), k, n, b.rs as isize, b.cs as isize);
            let c = faer::MatMut::from_raw_parts_mut(c.data.as_mut_ptr(), m, n, c.rs as isize, 1);
            let accum = match acc {
                Accumulate::Overwrite => faer::Accum::Replace,
                Accumulate::Add => faer::Accum::Add,
            };
            faer::linalg::matmul::matmul(c, accum, a, b, 1.0f32, par);
        }
    } else {
        let par = if threads > 1 && work >= LARGE_PARALLEL_WORK {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        // SAFETY: as above; `gemm` computes dst = alpha·dst + beta·lhs·rhs, reading dst only
        // when asked to accumulate.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                c.data.as_mut_ptr(),
                1,
                c.rs as isize,
                acc == Accumulate::Add,
                a.data.as_ptr(),
                a.cs as isize,
                a.rs as isize,
                b.data.as_ptr(),
                b.cs as isize,
                b.rs as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                par,
            );
        }
    }
}

/// The `mkl` feature's route: one `cblas_sgemm` on `threads` of oneMKL's threads. False when an
/// operand has no unit stride.
#[cfg(feature = "mkl")]
fn mkl_matmul(c: &mut MatMut<'_>, a: Mat<'_>, b: Mat<'_>, acc: Accumulate, threads: usize) -> bool {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let threads = if m * n * k >= LARGE_PARALLEL_WORK {
        threads
    } else {
        1
    };
    // SAFETY: the views were bounds-checked on construction and `c` is a unique borrow.
    unsafe {
        mkl::sgemm(
            mkl::Operands {
                m,
                n,
                k,
                a: (a.data.as_ptr(), a.rs, a.cs),
                c: (c.data.as_mut_ptr(), c.rs),
                add: acc == Accumulate::Add,
                threads,
            },
            (b.data.as_ptr(), b.rs, b.cs),
        )
    }
}

/// The row count of a [`Prepared::for_any_rows`] operand.
const ANY_ROWS: usize = usize::MAX;

/// A right operand is packed for [`matmul_prepared`] only when used at least this many times.
pub const PACK_MIN_USES: usize = 4;

/// The right operand `B[k, n]` of many products `[m, k]·B` of one shape (a recurrent weight,
/// used at every step), prepared once: packed in the panel layout of the product kernels
/// (`rten-gemm`'s prepacked operand; with the `mkl` feature, oneMKL's internal layout, as oneDNN
/// keeps its recurrent weights), or the view itself when used too few times to be worth it.
pub struct Prepared<'a> {
    b: Mat<'a>,
    m: usize,
    threads: usize,
    /// `b` packed (`None`: not worth packing, or strides a kernel cannot read).
    pack: Option<Pack>,
}

impl std::fmt::Debug for Prepared<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("k", &self.b.rows)
            .field("n", &self.b.cols)
            .field("packed", &self.pack.is_some())
            .finish()
    }
}

/// A packed right operand of one of the two routes.
enum Pack {
    /// The pure-Rust route's ([`packed`]).
    Rust(packed::PackedB),
    /// `b = Wᵀ` with `W` marked int8 ([`int8::Int8Weights`]): its quantized pack.
    Int8(std::sync::Arc<int8::QuantizedWeight>),
    /// oneMKL's (`cblas_sgemm_pack`).
    #[cfg(feature = "mkl")]
    Mkl(mkl::PackedB),
}

impl<'a> Prepared<'a> {
    /// Prepares `b` for `uses` products with `m` rows on `threads` threads (1 inside a parallel
    /// split; [`threads`] otherwise). Packing costs about one product, so a `b` used fewer than
    /// [`PACK_MIN_USES`] times is left as it is.
    pub fn new(b: Mat<'a>, m: usize, threads: usize, uses: usize) -> Self {
        let threads = threads.max(1);
        let pack = match int8::marked(b) {
            Some(w) => Some(Pack::Int8(w)),
            None => (uses >= PACK_MIN_USES).then(|| Self::pack(b, m)).flatten(),
        };
        Prepared {
            b,
            m,
            threads,
            pack,
        }
    }

    /// Prepares `b` for products with any number of rows, whose values do not depend on that
    /// number: a row's result is the same alone as in a batch of any size (batch-invariant
    /// inference: a request's answer does not depend on who else was in its batch). Always
    /// `rten-gemm`'s pack (or the int8 pack of a marked weight), even in a build with the `mkl`
    /// feature, whose products promise no such thing.
    pub fn for_any_rows(b: Mat<'a>) -> Self {
        let pack = match int8::marked(b) {
            Some(w) => Some(Pack::Int8(w)),
            None => packed::PackedB::new(b).map(Pack::Rust),
        };
        Prepared {
            b,
            m: ANY_ROWS,
            threads: threads(),
            pack,
        }
    }

    fn pack(b: Mat<'a>, m: usize) -> Option<Pack> {
        #[cfg(feature = "mkl")]
        if uses_mkl() {
            // SAFETY: the view was bounds-checked on construction.
            let pack =
                unsafe { mkl::PackedB::new(m, b.cols, b.rows, (b.data.as_ptr(), b.rs, b.cs)) };
            return pack.map(Pack::Mkl);
        }
        let _ = m;
        packed::PackedB::new(b).map(Pack::Rust)
    }
}

/// `C (=|+=) A · B` with a prepared `B`: [`matmul`]'s contract; `a` must have the `m` rows `b`
/// was prepared for (any number for [`Prepared::for_any_rows`]).
pub fn matmul_prepared(mut c: MatMut<'_>, a: Mat<'_>, b: &Prepared<'_>, acc: Accumulate) {
    if b.m != ANY_ROWS {
        assert_eq!(a.rows, b.m, "rows differ from the prepared product's");
    }
    assert_eq!(a.cols, b.b.rows, "inner dimensions differ");
    assert_eq!((c.rows, c.cols), (a.rows, b.b.cols), "output shape differs");
    let done = match &b.pack {
        None => false,
        Some(Pack::Rust(pack)) => pack.compute(&mut c, a, acc),
        Some(Pack::Int8(w)) => {
            int8::matmul_int8(c.reborrow(), a, w, acc);
            true
        }
        #[cfg(feature = "mkl")]
        // SAFETY: the views were bounds-checked on construction and `c` is a unique borrow.
        Some(Pack::Mkl(pack)) => unsafe {
            pack.compute(mkl::Operands {
                m: a.rows,
                n: b.b.cols,
                k: a.cols,
                a: (a.data.as_ptr(), a.rs, a.cs),
                c: (c.data.as_mut_ptr(), c.rs),
                add: acc == Accumulate::Add,
                threads: b.threads,
            })
        },
    };
    if !done {
        matmul_inner(c.reborrow(), a, b.b, acc, b.threads);
    }
    clear_upper_vector_state();
}

pub mod int8;
mod packed;

#[cfg(feature = "mkl")]
mod mkl;

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(
        m: usize,
        n: usize,
        k: usize,
        a: &dyn Fn(usize, usize) -> f32,
        b: &dyn Fn(usize, usize) -> f32,
    ) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a(i, p) * b(p, j)).sum();
            }
        }
        c
    }

    #[test]
    fn products_match_naive_for_all_layouts_and_paths() {
        for &(m, n, k) in &[
            (3, 5, 7),
            (20, 40, 10),
            (100, 33, 17),
            (1, 1, 1),
            (65, 2, 3),
        ] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32) - 6.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32) - 5.0).collect();
            for &(ta, tb) in &[(false, false), (true, false), (false, true), (true, true)] {
                let av = if ta {
                    Mat::new(&a, k, m).t()
                } else {
                    Mat::new(&a, m, k)
                };
                let bv = if tb {
                    Mat::new(&b, n, k).t()
                } else {
                    Mat::new(&b, k, n)
                };
                let want = naive(
                    m,
                    n,
                    k,
                    &|i, p| if ta { a[p * m + i] } else { a[i * k + p] },
                    &|p, j| {
                        if tb {
                            b[j * k + p]
                        } else {
                            b[p * n + j]
                        }
                    },
                );
                let mut c = vec![1.0; m * n];
                matmul(MatMut::new(&mut c, m, n), av, bv, Accumulate::Overwrite);
                assert_eq!(c, want, "overwrite m={m} n={n} k={k} ta={ta} tb={tb}");
                matmul(MatMut::new(&mut c, m, n), av, bv, Accumulate::Add);
                let twice: Vec<f32> = want.iter().map(|v| 2.0 * v).collect();
                assert_eq!(c, twice, "add m={m} n={n} k={k} ta={ta} tb={tb}");
            }
        }
    }

    #[test]
    fn prepared_products_match_naive_packed_or_not() {
        // Integer-valued operands: every backend's sum is exact, so equality is exact.
        let (m, n, k) = (5, 24, 9);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32) - 6.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32) - 5.0).collect();
        for &tb in &[false, true] {
            let bv = if tb {
                Mat::new(&b, n, k).t()
            } else {
                Mat::new(&b, k, n)
            };
            let want = naive(m, n, k, &|i, p| a[i * k + p], &|p, j| {
                if tb {
                    b[j * k + p]
                } else {
                    b[p * n + j]
                }
            });
            for &(uses, threads) in &[(1, 1), (PACK_MIN_USES, 1), (PACK_MIN_USES, 2)] {
                let w = Prepared::new(bv, m, threads, uses);
                // Written into columns 1..=n of a wider buffer, twice: overwrite, then add.
                let mut c = vec![7.0; m * (n + 2)];
                for acc in [Accumulate::Overwrite, Accumulate::Add] {
                    matmul_prepared(
                        MatMut::strided(&mut c[1..], m, n, n + 2),
                        Mat::new(&a, m, k),
                        &w,
                        acc,
                    );
                }
                for i in 0..m {
                    let row = &c[i * (n + 2)..(i + 1) * (n + 2)];
                    assert_eq!(row[0], 7.0, "column before untouched");
                    assert_eq!(row[n + 1], 7.0, "column after untouched");
                    for j in 0..n {
                        assert_eq!(row[1 + j], 2.0 * want[i * n + j], "tb={tb} uses={uses}");
                    }
                }
            }
        }
    }

    /// `[m, k]` values that are not integers (so that the order of the sums shows in the bits).
    pub(super) fn wavy(m: usize, k: usize, seed: usize) -> Vec<f32> {
        (0..m * k)
            .map(|i| ((i * 37 + seed * 101) % 1009) as f32 / 1009.0 - 0.5)
            .collect()
    }

    /// The packed step product of the engine's shapes (`h · W_hhᵀ`, `∂g · W_hh`) at `threads`.
    fn packed_product(
        a: &[f32],
        w: &[f32],
        m: usize,
        (k, n): (usize, usize),
        threads: usize,
    ) -> Vec<f32> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        pool.install(|| {
            let p = Prepared::new(Mat::new(w, n, k).t(), m, threads, PACK_MIN_USES);
            assert!(p.pack.is_some(), "packed");
            let mut c = wavy(m, n, 3);
            matmul_prepared(
                MatMut::new(&mut c, m, n),
                Mat::new(a, m, k),
                &p,
                Accumulate::Add,
            );
            c
        })
    }

    #[test]
    fn packed_products_are_the_same_on_any_thread_count_and_for_a_row_alone() {
        if uses_mkl() {
            return;
        }
        for &(m, k, n) in &[(20, 650, 2600), (20, 200, 800), (7, 33, 96)] {
            let (a, w) = (wavy(m, k, 1), wavy(n, k, 2));
            let one = packed_product(&a, &w, m, (k, n), 1);
            assert_eq!(
                one,
                packed_product(&a, &w, m, (k, n), 2),
                "1 vs 2 threads, k={k}"
            );
            // Row 5 alone (its own `C` start values) gives its row of the batch's product.
            let c0 = wavy(m, n, 3);
            let alone = {
                let p = Prepared::new(Mat::new(&w, n, k).t(), 1, 1, PACK_MIN_USES);
                let mut c = c0[5 * n..6 * n].to_vec();
                let a5 = &a[5 * k..6 * k];
                matmul_prepared(
                    MatMut::new(&mut c, 1, n),
                    Mat::new(a5, 1, k),
                    &p,
                    Accumulate::Add,
                );
                c
            };
            assert_eq!(alone, one[5 * n..6 * n], "row alone, k={k}");
            // The unpacked route sums in another order: the same to rounding.
            let mut plain = c0.clone();
            let wt = Mat::new(&w, n, k).t();
            matmul(
                MatMut::new(&mut plain, m, n),
                Mat::new(&a, m, k),
                wt,
                Accumulate::Add,
            );
            for (x, y) in one.iter().zip(&plain) {
                assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{x} vs {y}");
            }
        }
    }

    #[test]
    fn any_rows_products_give_a_row_the_same_values_in_every_batch() {
        // Even with the `mkl` feature: this route never goes to oneMKL.
        for &(k, n) in &[(200, 800), (200, 1000), (33, 96)] {
            let w = wavy(n, k, 2);
            let p = Prepared::for_any_rows(Mat::new(&w, n, k).t());
            let a = wavy(64, k, 1);
            let row = |m: usize, at: usize| {
                let mut c = vec![0.0; m * n];
                matmul_prepared(
                    MatMut::new(&mut c, m, n),
                    Mat::new(&a[..m * k], m, k),
                    &p,
                    Accumulate::Overwrite,
                );
                c[at * n..(at + 1) * n].to_vec()
            };
            let alone = {
                let mut c = vec![0.0; n];
                matmul_prepared(
                    MatMut::new(&mut c, 1, n),
                    Mat::new(&a[..k], 1, k),
                    &p,
                    Accumulate::Overwrite,
                );
                c
            };
            for m in [1, 2, 3, 7, 8, 16, 33, 64] {
                assert_eq!(row(m, 0), alone, "row 0 of {m}, k={k}");
            }
            // And to rounding, the plain product.
            let mut plain = vec![0.0; n];
            matmul(
                MatMut::new(&mut plain, 1, n),
                Mat::new(&a[..k], 1, k),
                Mat::new(&w, n, k).t(),
                Accumulate::Overwrite,
            );
            for (x, y) in alone.iter().zip(&plain) {
                assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{x} vs {y}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "rows differ")]
    fn prepared_product_refuses_other_row_count() {
        let b = [1.0; 6];
        let w = Prepared::new(Mat::new(&b, 2, 3), 4, 1, PACK_MIN_USES);
        let a = [1.0; 6];
        let mut c = [0.0; 9];
        matmul_prepared(
            MatMut::new(&mut c, 3, 3),
            Mat::new(&a, 3, 2),
            &w,
            Accumulate::Add,
        );
    }

    #[test]
    fn strided_output_leaves_other_columns_alone() {
        // Write a [2, 2] product into columns 1..3 of a [2, 4] buffer.
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [1.0, 0.0, 0.0, 1.0];
        let mut c = [9.0; 8];
        matmul(
            MatMut::strided(&mut c[1..], 2, 2, 4),
            Mat::new(&a, 2, 2),
            Mat::new(&b, 2, 2),
            Accumulate::Overwrite,
        );
        assert_eq!(c, [9.0, 1.0, 2.0, 9.0, 9.0, 3.0, 4.0, 9.0]);
    }

    #[test]
    #[should_panic(expected = "inner dimensions differ")]
    fn mismatched_inner_dimension_panics() {
        let a = [0.0; 6];
        let mut c = [0.0; 4];
        matmul(
            MatMut::new(&mut c, 2, 2),
            Mat::new(&a, 2, 3),
            Mat::new(&a, 2, 3),
            Accumulate::Add,
        );
    }
}

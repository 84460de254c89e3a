//! Measures candidate f32 matrix-multiply crates on the exact shapes the seqrnn engine runs.
//!
//! Usage: `cargo run --release -- --threads N [--features openblas|mkl]`
//! (`--features mkl` needs `SEQRNN_MKL_DIR`, as printed by `tools/install-mkl.sh`.)
//! (`MATMUL_NUM_THREADS` is set from `--threads` for `matrixmultiply`, which reads it once.)
//!
//! Every product is `C[m,n] = A[m,k] · B[k,n]` in row-major storage, with `B` either stored as
//! `[k,n]` or as its transpose `[n,k]` (the PyTorch weight layout `W[G*H, I]` used as `Wᵀ`).
//! The figure printed is the best of several timed repetitions, in GFLOP/s = 2·m·n·k / s.

use std::time::Instant;

#[derive(Clone, Copy)]
struct Shape {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
    /// `B` is stored as `[n, k]` row-major and used transposed.
    b_transposed: bool,
    /// `A` is stored as `[k, m]` row-major and used transposed.
    a_transposed: bool,
}

fn shapes() -> Vec<Shape> {
    let (b, t, v) = (20, 35, 10_000);
    let mut out = Vec::new();
    for &h in &[200usize, 650] {
        let g = 4 * h;
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        out.push(Shape {
            name: leak(format!("step fwd   [B,H]x[H,4H]      H={h}")),
            m: b,
            k: h,
            n: g,
            b_transposed: true,
            a_transposed: false,
        });
        out.push(Shape {
            name: leak(format!("generate   [1,H]x[H,4H]      H={h}")),
            m: 1,
            k: h,
            n: g,
            b_transposed: true,
            a_transposed: false,
        });
        out.push(Shape {
            name: leak(format!("step fwd   [B,H]x[H,4H] Wᵀ stored H={h}")),
            m: b,
            k: h,
            n: g,
            b_transposed: false,
            a_transposed: false,
        });
        out.push(Shape {
            name: leak(format!("step fwd   [4H,H]x[H,B] W·hᵀ  H={h}")),
            m: g,
            k: h,
            n: b,
            b_transposed: true,
            a_transposed: false,
        });
        out.push(Shape {
            name: leak(format!("step bwd   [B,4H]x[4H,H]     H={h}")),
            m: b,
            k: g,
            n: h,
            b_transposed: false,
            a_transposed: false,
        });
        out.push(Shape {
            name: leak(format!("input proj [TB,I]x[I,4H]     H={h}")),
            m: t * b,
            k: h,
            n: g,
            b_transposed: true,
            a_transposed: false,
        });
        out.push(Shape {
            name: leak(format!("weight grd [4H,TB]x[TB,H]    H={h}")),
            m: g,
            k: t * b,
            n: h,
            b_transposed: false,
            a_transposed: true,
        });
        out.push(Shape {
            name: leak(format!("output     [TB,H]x[H,V]      H={h}")),
            m: t * b,
            k: h,
            n: v,
            b_transposed: true,
            a_transposed: false,
        });
    }
    out
}

/// Row and column strides of a logical `[rows, cols]` matrix stored row-major, possibly transposed.
fn strides(rows: usize, cols: usize, transposed: bool) -> (isize, isize) {
    if transposed {
        // stored as [cols, rows]
        let _ = cols;
        (1, rows as isize)
    } else {
        (cols as isize, 1)
    }
}

trait Backend {
    fn name(&self) -> &'static str;
    fn run(&self, s: &Shape, a: &[f32], b: &[f32], c: &mut [f32]);
}

struct Gemm {
    threads: usize,
}
impl Backend for Gemm {
    fn name(&self) -> &'static str {
        "gemm 0.19 (x86-v4)"
    }
    fn run(&self, s: &Shape, a: &[f32], b: &[f32], c: &mut [f32]) {
        let (ars, acs) = strides(s.m, s.k, s.a_transposed);
        let (brs, bcs) = strides(s.k, s.n, s.b_transposed);
        let par = if self.threads > 1 {
            gemm::Parallelism::Rayon(self.threads)
        } else {
            gemm::Parallelism::None
        };
        unsafe {
            gemm::gemm(
                s.m,
                s.n,
                s.k,
                c.as_mut_ptr(),
                1,
                s.n as isize,
                false,
                a.as_ptr(),
                acs,
                ars,
                b.as_ptr(),
                bcs,
                brs,
                0.0,
                1.0,
                false,
                false,
                false,
                par,
            )
        }
    }
}

struct Faer {
    threads: usize,
}
impl Backend for Faer {
    fn name(&self) -> &'static str {
        "faer 0.24"
    }
    fn run(&self, s: &Shape, a: &[f32], b: &[f32], c: &mut [f32]) {
        use faer::{Accum, MatMut, MatRef, Par};
        let a = if s.a_transposed {
            MatRef::from_row_major_slice(a, s.k, s.m).transpose()
        } else {
            MatRef::from_row_major_slice(a, s.m, s.k)
        };
        let b = if s.b_transposed {
            MatRef::from_row_major_slice(b, s.n, s.k).transpose()
        } else {
            MatRef::from_row_major_slice(b, s.k, s.n)
        };
        let c = MatMut::from_row_major_slice_mut(c, s.m, s.n);
        let par = if self.threads > 1 {
            Par::rayon(self.threads)
        } else {
            Par::Seq
        };
        faer::linalg::matmul::matmul(c, Accum::Replace, a, b, 1.0f32, par);
    }
}

/// rten-gemm: `B` packed by each call, or (`packed`) once per shape on the first, untimed call
/// and then reused, as a recurrent weight is over a sequence.
#[derive(Default)]
struct Rten {
    packed: bool,
    exec: rten_gemm::GemmExecutor<f32>,
    cache: std::cell::RefCell<Option<(&'static str, rten_gemm::PackedBMatrix<f32>)>>,
}
impl Rten {
    fn view<'a>(data: &'a [f32], rows: usize, cols: usize, t: bool) -> rten_tensor::Matrix<'a> {
        Self::view_of(data, rows, cols, t)
    }
    fn view_of<T>(data: &[T], rows: usize, cols: usize, t: bool) -> rten_tensor::Matrix<'_, T> {
        let (rs, cs) = strides(rows, cols, t);
        rten_tensor::NdTensorView::from_data_with_strides(
            [rows, cols],
            data,
            [rs as usize, cs as usize],
        )
        .expect("strided view")
    }
}
impl Backend for Rten {
    fn name(&self) -> &'static str {
        if self.packed {
            "rten-gemm 0.24, B packed"
        } else {
            "rten-gemm 0.24"
        }
    }
    fn run(&self, s: &Shape, a: &[f32], b: &[f32], c: &mut [f32]) {
        use rten_gemm::{GemmInputA, GemmInputB, GemmOptions};
        let a = Self::view(a, s.m, s.k, s.a_transposed);
        let b = Self::view(b, s.k, s.n, s.b_transposed);
        let opts = GemmOptions::default();
        if !self.packed {
            self.exec
                .gemm(c, GemmInputA::Unpacked(a), GemmInputB::Unpacked(b), opts)
                .expect("rten gemm");
            return;
        }
        let mut cache = self.cache.borrow_mut();
        if cache.as_ref().map(|(n, _)| *n) != Some(s.name) {
            *cache = Some((s.name, self.exec.prepack_b(b)));
        }
        let packed = &cache.as_ref().expect("packed above").1;
        self.exec
            .gemm(c, GemmInputA::Unpacked(a), GemmInputB::Packed(packed), opts)
            .expect("rten gemm");
    }
}

/// rten-gemm's integer kernels: `B` quantized to `i8` and packed once (untimed), `A` quantized
/// to `u8` per row at each call (timed, as inference does), `i32` sums; the figure counts the
/// float product's 2·m·n·k operations.
#[derive(Default)]
struct RtenInt8 {
    exec: rten_gemm::GemmExecutor<u8, i8, i32>,
    cache: std::cell::RefCell<Option<(&'static str, rten_gemm::PackedBMatrix<i8>)>>,
    buf: std::cell::RefCell<(Vec<u8>, Vec<i32>)>,
}
impl Backend for RtenInt8 {
    fn name(&self) -> &'static str {
        "rten-gemm 0.24 int8, B packed"
    }
    fn run(&self, s: &Shape, a: &[f32], b: &[f32], _c: &mut [f32]) {
        use rten_gemm::{GemmInputA, GemmInputB, GemmOptions};
        let mut cache = self.cache.borrow_mut();
        if cache.as_ref().map(|(n, _)| *n) != Some(s.name) {
            let q: Vec<i8> = b.iter().map(|v| (v * 254.0).round() as i8).collect();
            let view = Rten::view_of(&q, s.k, s.n, s.b_transposed);
            *cache = Some((s.name, self.exec.prepack_b(view)));
        }
        let packed = &cache.as_ref().expect("packed above").1;
        let mut buf = self.buf.borrow_mut();
        let (p, out) = &mut *buf;
        p.clear();
        let (ars, acs) = strides(s.m, s.k, s.a_transposed);
        for i in 0..s.m {
            let row = (0..s.k).map(|c| a[i * ars as usize + c * acs as usize]);
            let (lo, hi) = row
                .clone()
                .fold((0.0f32, 0.0f32), |(l, h), v| (l.min(v), h.max(v)));
            let sc = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
            let z = (-lo / sc).round();
            p.extend(row.map(|v| ((v / sc).round() + z).clamp(0.0, 255.0) as u8));
        }
        out.resize(s.m * s.n, 0);
        let av = rten_tensor::NdTensorView::from_data([s.m, s.k], p.as_slice());
        self.exec
            .gemm(
                out,
                GemmInputA::Unpacked(av),
                GemmInputB::Packed(packed),
                GemmOptions::default(),
            )
            .expect("rten int8 gemm");
    }
}

struct MatrixMultiply;
impl Backend for MatrixMultiply {
    fn name(&self) -> &'static str {
        "matrixmultiply 0.3"
    }
    fn run(&self, s: &Shape, a: &[f32], b: &[f32], c: &mut [f32]) {
        let (ars, acs) = strides(s.m, s.k, s.a_transposed);
        let (brs, bcs) = strides(s.k, s.n, s.b_transposed);
        unsafe {
            matrixmultiply::sgemm(
                s.m,
                s.k,
                s.n,
                1.0,
                a.as_ptr(),
                ars,
                acs,
                b.as_ptr(),
                brs,
                bcs,
                0.0,
                c.as_mut_ptr(),
                s.n as isize,
                1,
            )
        }
    }
}

#[cfg(feature = "openblas")]
struct OpenBlas;
#[cfg(feature = "openblas")]
#[link(name = "openblas")]
extern "C" {
    fn openblas_set_num_threads(n: std::os::raw::c_int);
}
#[cfg(feature = "openblas")]
impl Backend for OpenBlas {
    fn name(&self) -> &'static str {
        "OpenBLAS 0.3.21 (Debian)"
    }
    fn run(&self, s: &Shape, a: &[f32], b: &[f32], c: &mut [f32]) {
        use cblas_sys::*;
        let ta = if s.a_transposed {
            CBLAS_TRANSPOSE::CblasTrans
        } else {
            CBLAS_TRANSPOSE::CblasNoTrans
        };
        let tb = if s.b_transposed {
            CBLAS_TRANSPOSE::CblasTrans
        } else {
            CBLAS_TRANSPOSE::CblasNoTrans
        };
        let lda = if s.a_transposed { s.m } else { s.k };
        let ldb = if s.b_transposed { s.k } else { s.n };
        unsafe {
            cblas_sgemm(
                CBLAS_LAYOUT::CblasRowMajor,
                ta,
                tb,
                s.m as i32,
                s.n as i32,
                s.k as i32,
                1.0,
                a.as_ptr(),
                lda as i32,
                b.as_ptr(),
                ldb as i32,
                0.0,
                c.as_mut_ptr(),
                s.n as i32,
            )
        }
    }
}

#[cfg(feature = "mkl")]
mod mkl {
    //! oneMKL: `cblas_sgemm`, the same with `B` packed once (`cblas_sgemm_pack`, as a recurrent
    //! weight used at every step), and bf16 operands with f32 results (`cblas_gemm_bf16bf16f32`).
    use super::{Backend, Shape};
    use std::cell::RefCell;
    use std::os::raw::c_int;

    extern "C" {
        fn MKL_Set_Threading_Layer(code: c_int) -> c_int;
        fn MKL_Set_Num_Threads(n: c_int);
        fn cblas_sgemm_pack_get_size(id: c_int, m: c_int, n: c_int, k: c_int) -> usize;
        fn cblas_sgemm_pack(
            layout: c_int,
            id: c_int,
            trans: c_int,
            m: c_int,
            n: c_int,
            k: c_int,
            alpha: f32,
            src: *const f32,
            ld: c_int,
            dest: *mut f32,
        );
        fn cblas_sgemm_compute(
            layout: c_int,
            ta: c_int,
            tb: c_int,
            m: c_int,
            n: c_int,
            k: c_int,
            a: *const f32,
            lda: c_int,
            b: *const f32,
            ldb: c_int,
            beta: f32,
            c: *mut f32,
            ldc: c_int,
        );
        fn cblas_gemm_bf16bf16f32(
            layout: c_int,
            ta: c_int,
            tb: c_int,
            m: c_int,
            n: c_int,
            k: c_int,
            alpha: f32,
            a: *const u16,
            lda: c_int,
            b: *const u16,
            ldb: c_int,
            beta: f32,
            c: *mut f32,
            ldc: c_int,
        );
    }

    const ROW_MAJOR: c_int = 101;
    const NO_TRANS: c_int = 111;
    const TRANS: c_int = 112;
    const PACKED: c_int = 151;
    const B_MATRIX: c_int = 162;

    pub fn set_threads(threads: usize) {
        // SAFETY: oneMKL's set-up calls, before any product.
        unsafe {
            MKL_Set_Threading_Layer(3); // GNU OpenMP, as the engine uses it
            MKL_Set_Num_Threads(threads as c_int);
        }
    }

    fn layout(s: &Shape) -> (c_int, c_int, c_int, c_int) {
        let (ta, lda) = if s.a_transposed {
            (TRANS, s.m)
        } else {
            (NO_TRANS, s.k)
        };
        let (tb, ldb) = if s.b_transposed {
            (TRANS, s.k)
        } else {
            (NO_TRANS, s.n)
        };
        (ta, lda as c_int, tb, ldb as c_int)
    }

    pub struct Plain;
    impl Backend for Plain {
        fn name(&self) -> &'static str {
            "oneMKL 2026.2"
        }
        fn run(&self, s: &Shape, a: &[f32], b: &[f32], c: &mut [f32]) {
            let (ta, lda, tb, ldb) = layout(s);
            // SAFETY: the slices hold the shapes described.
            unsafe {
                cblas_sys::cblas_sgemm(
                    cblas_sys::CBLAS_LAYOUT::CblasRowMajor,
                    if ta == TRANS {
                        cblas_sys::CBLAS_TRANSPOSE::CblasTrans
                    } else {
                        cblas_sys::CBLAS_TRANSPOSE::CblasNoTrans
                    },
                    if tb == TRANS {
                        cblas_sys::CBLAS_TRANSPOSE::CblasTrans
                    } else {
                        cblas_sys::CBLAS_TRANSPOSE::CblasNoTrans
                    },
                    s.m as i32,
                    s.n as i32,
                    s.k as i32,
                    1.0,
                    a.as_ptr(),
                    lda,
                    b.as_ptr(),
                    ldb,
                    0.0,
                    c.as_mut_ptr(),
                    s.n as i32,
                )
            }
        }
    }

    /// `B` packed on the first (untimed) call for a shape, then reused.
    #[derive(Default)]
    pub struct Packed {
        cache: RefCell<Option<(&'static str, Vec<f32>)>>,
    }
    impl Backend for Packed {
        fn name(&self) -> &'static str {
            "oneMKL, B packed"
        }
        fn run(&self, s: &Shape, a: &[f32], b: &[f32], c: &mut [f32]) {
            let (ta, lda, tb, ldb) = layout(s);
            let mut cache = self.cache.borrow_mut();
            if cache.as_ref().map(|(n, _)| *n) != Some(s.name) {
                // SAFETY: the buffer has the size oneMKL asks for.
                let buf = unsafe {
                    let bytes = cblas_sgemm_pack_get_size(
                        B_MATRIX,
                        s.m as c_int,
                        s.n as c_int,
                        s.k as c_int,
                    );
                    let mut buf = vec![0.0f32; bytes.div_ceil(4)];
                    cblas_sgemm_pack(
                        ROW_MAJOR,
                        B_MATRIX,
                        tb,
                        s.m as c_int,
                        s.n as c_int,
                        s.k as c_int,
                        1.0,
                        b.as_ptr(),
                        ldb,
                        buf.as_mut_ptr(),
                    );
                    buf
                };
                *cache = Some((s.name, buf));
            }
            let packed = &cache.as_ref().expect("packed above").1;
            // SAFETY: as above.
            unsafe {
                cblas_sgemm_compute(
                    ROW_MAJOR,
                    ta,
                    PACKED,
                    s.m as c_int,
                    s.n as c_int,
                    s.k as c_int,
                    a.as_ptr(),
                    lda,
                    packed.as_ptr(),
                    ldb,
                    0.0,
                    c.as_mut_ptr(),
                    s.n as c_int,
                );
            }
        }
    }

    /// Operands rounded to bf16 on the first (untimed) call for a shape, then reused.
    #[derive(Default)]
    pub struct Bf16 {
        cache: RefCell<Option<(&'static str, Vec<u16>, Vec<u16>)>>,
    }
    fn to_bf16(x: &[f32]) -> Vec<u16> {
        x.iter().map(|v| (v.to_bits() >> 16) as u16).collect()
    }
    impl Backend for Bf16 {
        fn name(&self) -> &'static str {
            "oneMKL bf16→f32"
        }
        fn run(&self, s: &Shape, a: &[f32], b: &[f32], c: &mut [f32]) {
            let (ta, lda, tb, ldb) = layout(s);
            let mut cache = self.cache.borrow_mut();
            if cache.as_ref().map(|(n, _, _)| *n) != Some(s.name) {
                *cache = Some((s.name, to_bf16(a), to_bf16(b)));
            }
            let (_, a16, b16) = cache.as_ref().expect("converted above");
            // SAFETY: the slices hold the shapes described.
            unsafe {
                cblas_gemm_bf16bf16f32(
                    ROW_MAJOR,
                    ta,
                    tb,
                    s.m as c_int,
                    s.n as c_int,
                    s.k as c_int,
                    1.0,
                    a16.as_ptr(),
                    lda,
                    b16.as_ptr(),
                    ldb,
                    0.0,
                    c.as_mut_ptr(),
                    s.n as c_int,
                );
            }
        }
    }
}

fn fill(n: usize, seed: u32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32) - 0.5
        })
        .collect()
}

fn measure(backend: &dyn Backend, s: &Shape) -> f64 {
    let a = fill(s.m * s.k, 1);
    let b = fill(s.k * s.n, 2);
    let mut c = vec![0.0f32; s.m * s.n];
    let flops = 2.0 * (s.m * s.n * s.k) as f64;
    // Repeat each timing until it covers ~20 ms so small products are timed fairly.
    let reps = ((2.0e-2 * 50e9 / flops).ceil() as usize).max(1);
    backend.run(s, &a, &b, &mut c);
    let mut best = f64::INFINITY;
    for _ in 0..7 {
        let t0 = Instant::now();
        for _ in 0..reps {
            backend.run(s, &a, &b, &mut c);
        }
        best = best.min(t0.elapsed().as_secs_f64() / reps as f64);
    }
    std::hint::black_box(&c);
    flops / best / 1e9
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = args
        .iter()
        .position(|a| a == "--threads")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    // matrixmultiply reads its thread count from the environment once, at its first product.
    std::env::set_var("MATMUL_NUM_THREADS", threads.to_string());
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("rayon pool");
    #[cfg(feature = "openblas")]
    unsafe {
        openblas_set_num_threads(threads as i32)
    };
    #[cfg_attr(not(any(feature = "openblas", feature = "mkl")), allow(unused_mut))]
    let mut backends: Vec<Box<dyn Backend>> = vec![
        Box::new(Gemm { threads }),
        Box::new(Faer { threads }),
        Box::new(MatrixMultiply),
        Box::new(Rten::default()),
        Box::new(Rten {
            packed: true,
            ..Rten::default()
        }),
        Box::new(RtenInt8::default()),
    ];
    #[cfg(feature = "openblas")]
    backends.push(Box::new(OpenBlas));
    #[cfg(feature = "mkl")]
    {
        mkl::set_threads(threads);
        backends.push(Box::new(mkl::Plain));
        backends.push(Box::new(mkl::Packed::default()));
        backends.push(Box::new(mkl::Bf16::default()));
    }
    print!(
        "| shape ({threads} thread{}) |",
        if threads > 1 { "s" } else { "" }
    );
    for b in &backends {
        print!(" {} |", b.name());
    }
    println!();
    print!("|---|");
    for _ in &backends {
        print!("---:|");
    }
    println!();
    for s in shapes() {
        print!("| `{}` |", s.name.trim());
        for b in &backends {
            print!(" {:.1} |", measure(b.as_ref(), &s));
        }
        println!();
    }
}

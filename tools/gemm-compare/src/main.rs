//! Measures candidate f32 matrix-multiply crates on the exact shapes the seqrnn engine runs.
//!
//! Usage: `cargo run --release -- --threads N [--features openblas]`
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
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("rayon pool");
    #[cfg(feature = "openblas")]
    unsafe {
        openblas_set_num_threads(threads as i32)
    };
    let mut backends: Vec<Box<dyn Backend>> = vec![
        Box::new(Gemm { threads }),
        Box::new(Faer { threads }),
        Box::new(MatrixMultiply),
    ];
    #[cfg(feature = "openblas")]
    backends.push(Box::new(OpenBlas));
    print!("| shape ({threads} thread{}) |", if threads > 1 { "s" } else { "" });
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

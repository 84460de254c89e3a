//! The pure-Rust route's packed right operands: `rten-gemm`'s prepacked `B`
//! (`GemmExecutor::prepack_b`), packed once per pass and reused by every step's product.
//!
//! A product's values do not depend on the thread count (the threads share out column blocks;
//! each output sums its `k` terms in the same blocks and order on any count) nor on the other
//! rows of `A` (a row's sums are the same alone as in a batch; tested in `linalg::tests`).

use std::cell::RefCell;

use rten_gemm::{GemmExecutor, GemmInputA, GemmInputB, GemmOptions, PackedBMatrix};
use rten_tensor::{Matrix, NdTensorView};

use super::{Accumulate, Mat, MatMut};

thread_local! {
    /// The thread's executor: the best kernel the CPU has (AVX-512, AVX2 with FMA, Arm NEON),
    /// chosen once per thread (an executor may be shared, not sent), the same on every thread.
    static EXEC: GemmExecutor<f32> = GemmExecutor::default();
}

/// A strided view as `rten-gemm` takes it; `None` for strides it refuses.
fn view<'a>(m: Mat<'a>) -> Option<Matrix<'a>> {
    NdTensorView::from_data_with_strides([m.rows, m.cols], m.data, [m.rs, m.cs]).ok()
}

thread_local! {
    /// The product of a step whose output is a column slice of a wider buffer, before it is
    /// copied (or added) there: `rten-gemm` writes contiguous outputs only.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// A right operand `B[k, n]` packed in `rten-gemm`'s panel layout.
pub(super) struct PackedB(PackedBMatrix<f32>);

impl PackedB {
    /// Packs `b` (one pass over it); `None` when its strides cannot be packed.
    pub(super) fn new(b: Mat<'_>) -> Option<Self> {
        view(b).map(|v| PackedB(EXEC.with(|e| e.prepack_b(v))))
    }

    /// `C (=|+=) A · B` for `a[m, k]`; false (nothing written) when `a`'s strides cannot be
    /// read, so that the caller takes another route.
    pub(super) fn compute(&self, c: &mut MatMut<'_>, a: Mat<'_>, acc: Accumulate) -> bool {
        let Some(a) = view(a) else {
            return false;
        };
        let (m, n) = (c.rows, c.cols);
        let gemm = |out: &mut [f32], beta: f32| {
            let opts = GemmOptions {
                beta,
                ..GemmOptions::default()
            };
            let (a, b) = (GemmInputA::Unpacked(a), GemmInputB::Packed(&self.0));
            EXEC.with(|e| e.gemm(out, a, b, opts).is_ok())
        };
        if c.rs == n {
            let beta = match acc {
                Accumulate::Overwrite => 0.0,
                Accumulate::Add => 1.0,
            };
            return gemm(&mut c.data[..m * n], beta);
        }
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            super::fit(&mut s, m * n);
            if !gemm(&mut s, 0.0) {
                return false;
            }
            for (dst, src) in c.data.chunks_mut(c.rs).zip(s.chunks_exact(n)) {
                match acc {
                    Accumulate::Overwrite => dst[..n].copy_from_slice(src),
                    Accumulate::Add => dst[..n].iter_mut().zip(src).for_each(|(d, v)| *d += v),
                }
            }
            true
        })
    }
}

//! Products through Intel oneMKL (the `mkl` feature): `cblas_sgemm`, and for a recurrent weight
//! used at every step, `cblas_sgemm_pack` once and `cblas_sgemm_compute` per step.
//!
//! oneMKL runs its products on its own OpenMP threads (the GNU OpenMP layer), as many as the
//! engine's thread count allows for that product; a product inside the engine's own parallel
//! split (a block of batch rows of a recurrence) runs on its calling thread only.

use std::os::raw::c_int;
use std::sync::Once;

const CBLAS_ROW_MAJOR: c_int = 101;
const CBLAS_NO_TRANS: c_int = 111;
const CBLAS_TRANS: c_int = 112;
const CBLAS_PACKED: c_int = 151;
const CBLAS_B_MATRIX: c_int = 162;
const MKL_THREADING_GNU: c_int = 3;

extern "C" {
    fn cblas_sgemm(
        layout: c_int,
        trans_a: c_int,
        trans_b: c_int,
        m: c_int,
        n: c_int,
        k: c_int,
        alpha: f32,
        a: *const f32,
        lda: c_int,
        b: *const f32,
        ldb: c_int,
        beta: f32,
        c: *mut f32,
        ldc: c_int,
    );
    fn cblas_sgemm_pack_get_size(identifier: c_int, m: c_int, n: c_int, k: c_int) -> usize;
    fn cblas_sgemm_pack(
        layout: c_int,
        identifier: c_int,
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
        trans_a: c_int,
        trans_b: c_int,
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
    fn MKL_Set_Threading_Layer(code: c_int) -> c_int;
    fn MKL_Set_Num_Threads_Local(n: c_int) -> c_int;
}

/// Selects the threading layer once, before the first product.
fn init() {
    static INIT: Once = Once::new();
    // SAFETY: oneMKL's documented set-up call, made before any product.
    INIT.call_once(|| unsafe {
        MKL_Set_Threading_Layer(MKL_THREADING_GNU);
    });
}

/// A strided read-only matrix: pointer, row stride, column stride.
pub(super) type View = (*const f32, usize, usize);

/// Everything of a product `C[m,n] (=|+=) A[m,k]·B[k,n]` but `B`.
pub(super) struct Operands {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: View,
    /// Row-major `C`: pointer and row stride.
    pub c: (*mut f32, usize),
    pub add: bool,
    pub threads: usize,
}

impl Operands {
    /// Tells oneMKL how many threads this calling thread's next product may use.
    fn set_threads(&self) {
        init();
        // SAFETY: a thread-local setting, valid at any time.
        unsafe {
            MKL_Set_Num_Threads_Local(self.threads.max(1) as c_int);
        }
    }

    fn ldc(&self) -> c_int {
        self.c.1.max(self.n).max(1) as c_int
    }

    fn beta(&self) -> f32 {
        if self.add {
            1.0
        } else {
            0.0
        }
    }
}

/// One operand `[rows, cols]` as BLAS sees it: row-major, possibly transposed, with its leading
/// dimension; `None` when neither stride is 1.
fn operand(v: View, rows: usize, cols: usize) -> Option<(c_int, c_int)> {
    let (_, rs, cs) = v;
    if cs == 1 {
        Some((CBLAS_NO_TRANS, rs.max(cols).max(1) as c_int))
    } else if rs == 1 {
        Some((CBLAS_TRANS, cs.max(rows).max(1) as c_int))
    } else {
        None
    }
}

/// `C (=|+=) A·B`; false (nothing done) when an operand has no unit stride.
///
/// # Safety
/// The pointers must cover the views they describe; `C` must not alias `A` or `B`.
pub(super) unsafe fn sgemm(o: Operands, b: View) -> bool {
    let (Some((ta, lda)), Some((tb, ldb))) = (operand(o.a, o.m, o.k), operand(b, o.k, o.n)) else {
        return false;
    };
    o.set_threads();
    cblas_sgemm(
        CBLAS_ROW_MAJOR,
        ta,
        tb,
        o.m as c_int,
        o.n as c_int,
        o.k as c_int,
        1.0,
        o.a.0,
        lda,
        b.0,
        ldb,
        o.beta(),
        o.c.0,
        o.ldc(),
    );
    true
}

/// A right operand `B[k, n]` in oneMKL's packed layout, for products with `m` rows.
pub(super) struct PackedB {
    buf: Vec<f32>,
    offset: usize,
}

/// Most pack buffers a thread keeps for reuse.
const POOL_SIZE: usize = 8;

thread_local! {
    /// Buffers of dropped packs, reused by the next packs of this thread: a recurrent weight is
    /// packed once per layer pass, so in steady state no pack allocates or touches fresh pages.
    static POOL: std::cell::RefCell<Vec<Vec<f32>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A buffer of exactly `len` floats, from this thread's pool when one is large enough. Its
/// contents are unspecified (oneMKL overwrites them).
fn pooled(len: usize) -> Vec<f32> {
    let reuse = POOL.with(|p| {
        let mut p = p.borrow_mut();
        let i = p.iter().position(|b| b.capacity() >= len)?;
        Some(p.swap_remove(i))
    });
    let mut buf = reuse.unwrap_or_default();
    buf.resize(len, 0.0);
    buf.truncate(len);
    buf
}

impl Drop for PackedB {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        POOL.with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < POOL_SIZE {
                p.push(buf);
            }
        });
    }
}

impl PackedB {
    /// Packs `B[k, n]`; `None` when it has no unit stride or a dimension is zero.
    ///
    /// # Safety
    /// The pointer must cover the view it describes.
    pub(super) unsafe fn new(m: usize, n: usize, k: usize, b: View) -> Option<Self> {
        if m == 0 || n == 0 || k == 0 {
            return None;
        }
        let (tb, ldb) = operand(b, k, n)?;
        init();
        let bytes = cblas_sgemm_pack_get_size(CBLAS_B_MATRIX, m as c_int, n as c_int, k as c_int);
        // 64-byte alignment inside a plain vector.
        let mut buf = pooled(bytes.div_ceil(4) + 16);
        let offset = buf.as_ptr().align_offset(64).min(15);
        cblas_sgemm_pack(
            CBLAS_ROW_MAJOR,
            CBLAS_B_MATRIX,
            tb,
            m as c_int,
            n as c_int,
            k as c_int,
            1.0,
            b.0,
            ldb,
            buf.as_mut_ptr().add(offset),
        );
        Some(PackedB { buf, offset })
    }

    /// `C (=|+=) A·B` with this packed `B`, which must have been packed for `o.m`, `o.n`,
    /// `o.k`; false (nothing done) when `A` has no unit stride.
    ///
    /// # Safety
    /// As [`sgemm`].
    pub(super) unsafe fn compute(&self, o: Operands) -> bool {
        let Some((ta, lda)) = operand(o.a, o.m, o.k) else {
            return false;
        };
        o.set_threads();
        cblas_sgemm_compute(
            CBLAS_ROW_MAJOR,
            ta,
            CBLAS_PACKED,
            o.m as c_int,
            o.n as c_int,
            o.k as c_int,
            o.a.0,
            lda,
            self.buf.as_ptr().add(self.offset),
            o.n.max(1) as c_int,
            o.beta(),
            o.c.0,
            o.ldc(),
        );
        true
    }
}

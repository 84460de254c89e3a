//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

pub mod engine;

#[path = "../../../src/test_shared.rs"]
mod shared_folder;
/// The shared folder's files, or a skip (a failure under `SEQRNN_REQUIRE_SHARED=1`).
#[allow(unused_imports)]
pub(crate) use shared_folder::{shared, skip};

/// `../shared/fixtures` from the project root, or `None` (see [`shared`]) when absent.
pub fn fixtures_dir() -> Option<PathBuf> {
    shared("fixtures")
}

/// Largest absolute difference, with a readable panic message when above `tol`.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: length {} vs {}",
        got.len(),
        want.len()
    );
    let mut worst = (0.0f32, 0usize);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let d = (g - w).abs();
        assert!(!d.is_nan(), "{what}[{i}]: NaN (got {g}, want {w})");
        if d > worst.0 {
            worst = (d, i);
        }
    }
    assert!(
        worst.0 <= tol,
        "{what}: max |diff| {} at [{}] (got {}, want {}) exceeds {tol}",
        worst.0,
        worst.1,
        got[worst.1],
        want[worst.1]
    );
}

/// `Σ a_i·b_i` in f64, in order.
pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(a, b)| *a as f64 * *b as f64).sum()
}

/// Small deterministic generator for test data (xorshift64*), values in `[-s, s)`.
pub struct Gen(u64);

impl Gen {
    pub fn new(seed: u64) -> Self {
        Gen(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
    /// `n` values in `[-s, s)`, rounded to f32 so f32 and f64 code see the same inputs.
    pub fn vec(&mut self, n: usize, s: f64) -> Vec<f32> {
        (0..n)
            .map(|_| ((self.next_f64() * 2.0 - 1.0) * s) as f32)
            .collect()
    }
}

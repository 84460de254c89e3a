//! Dropout on non-recurrent connections, and the random generator every stochastic step uses.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// The random generator of training (dropout masks) and sampling: ChaCha8, seeded, reproducible
/// across platforms.
pub type SeqRng = ChaCha8Rng;

/// A generator seeded from `seed`.
pub fn rng_from_seed(seed: u64) -> SeqRng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// How dropout masks are drawn over a sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DropoutKind {
    /// A fresh mask for every element of every step (Zaremba et al. 2014; PyTorch's `nn.Dropout`
    /// and the `dropout` argument of `nn.LSTM`).
    #[default]
    Standard,
    /// One mask per sequence (batch row) and feature, shared by all steps of a window
    /// (Gal & Ghahramani 2016, "variational" dropout).
    Variational,
}

/// Dropout with drop probability `p` in `[0, 1)`; kept values are scaled by `1/(1−p)` (inverted
/// dropout), so evaluation needs no rescaling.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Dropout {
    /// Probability of zeroing a value.
    pub p: f32,
    /// Mask sharing over time.
    pub kind: DropoutKind,
}

impl Dropout {
    /// No dropout.
    pub const NONE: Dropout = Dropout {
        p: 0.0,
        kind: DropoutKind::Standard,
    };

    /// Checks `0 ≤ p < 1`.
    pub fn validate(&self) -> Result<()> {
        if !(self.p >= 0.0 && self.p < 1.0) {
            return Err(Error::Config(format!(
                "dropout must be in [0, 1), got {}",
                self.p
            )));
        }
        Ok(())
    }

    /// Whether any value can be dropped.
    pub fn is_active(&self) -> bool {
        self.p > 0.0
    }

    /// Fills `mask[T, B, F]` (`t` steps of `row = B·F` values) with 0 or `1/(1−p)`.
    pub fn fill_mask(&self, mask: &mut [f32], t: usize, row: usize, rng: &mut SeqRng) {
        debug_assert_eq!(mask.len(), t * row);
        let keep = 1.0 - self.p;
        let scale = 1.0 / keep;
        let draw = |rng: &mut SeqRng| {
            if rng.random::<f32>() < keep {
                scale
            } else {
                0.0
            }
        };
        match self.kind {
            DropoutKind::Standard => mask.iter_mut().for_each(|m| *m = draw(rng)),
            DropoutKind::Variational => {
                let (first, rest) = mask.split_at_mut(row.min(t * row));
                first.iter_mut().for_each(|m| *m = draw(rng));
                for chunk in rest.chunks_exact_mut(row) {
                    chunk.copy_from_slice(first);
                }
            }
        }
    }
}

impl Dropout {
    /// Training-time dropout of `x[T, B, F]` in place: draws `mask` (resized to match) and
    /// applies it. `row = B·F`.
    pub fn apply_train(
        &self,
        x: &mut [f32],
        mask: &mut Vec<f32>,
        t: usize,
        row: usize,
        rng: &mut SeqRng,
    ) {
        crate::linalg::fit(mask, x.len());
        self.fill_mask(mask, t, row, rng);
        apply_mask(x, mask);
    }
}

/// `x ⊙= mask` (forward) or `dx ⊙= mask` (backward): the same operation.
pub fn apply_mask(x: &mut [f32], mask: &[f32]) {
    x.iter_mut().zip(mask).for_each(|(v, m)| *v *= m);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_expected_fraction_and_scale() {
        let d = Dropout {
            p: 0.25,
            kind: DropoutKind::Standard,
        };
        let mut m = vec![0.0; 40_000];
        d.fill_mask(&mut m, 100, 400, &mut rng_from_seed(3));
        let kept = m.iter().filter(|&&v| v != 0.0).count() as f64 / m.len() as f64;
        assert!((kept - 0.75).abs() < 0.01, "{kept}");
        assert!(m.iter().all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-6));
        // Mean of the mask is 1: dropout does not change expectations.
        let mean = m.iter().map(|&v| v as f64).sum::<f64>() / m.len() as f64;
        assert!((mean - 1.0).abs() < 0.02);
    }

    #[test]
    fn variational_masks_repeat_over_time() {
        let d = Dropout {
            p: 0.5,
            kind: DropoutKind::Variational,
        };
        let mut m = vec![0.0; 5 * 12];
        d.fill_mask(&mut m, 5, 12, &mut rng_from_seed(1));
        for t in 1..5 {
            assert_eq!(m[..12], m[t * 12..(t + 1) * 12]);
        }
        assert!(m[..12].contains(&0.0) && m[..12].contains(&2.0));
    }

    #[test]
    fn probability_is_validated() {
        for p in [-0.1, 1.0, 1.5, f32::NAN] {
            assert!(Dropout { p, ..Dropout::NONE }.validate().is_err(), "{p}");
        }
        assert!(Dropout {
            p: 0.0,
            ..Dropout::NONE
        }
        .validate()
        .is_ok());
        assert!(Dropout {
            p: 0.65,
            ..Dropout::NONE
        }
        .validate()
        .is_ok());
    }
}

//! Dropout on non-recurrent connections, and the random generator every stochastic step uses.

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// The random generator of training (dropout masks) and sampling: ChaCha8, seeded, reproducible
/// across platforms.
pub type SeqRng = ChaCha8Rng;

/// A generator seeded from `seed`.
pub fn rng_from_seed(seed: u64) -> SeqRng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A seed drawn from the process's randomness and the clock, different at each call: for a
/// request that names no seed (the seed itself makes the draws reproducible).
pub fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
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

    /// Fills `mask[T, B, F]` with 0 or `1/(1−p)`. Row `b` of the batch is global row
    /// `rng.first_row + b`, and its values come from a generator of its own (see [`RowRng`]),
    /// so a batch split across processes gets the masks one process would draw.
    pub fn fill_mask(&self, mask: &mut [f32], t: usize, b: usize, f: usize, rng: &mut RowRng) {
        debug_assert_eq!(mask.len(), t * b * f);
        let keep = 1.0 - self.p;
        let scale = 1.0 / keep;
        let draw = |r: &mut SeqRng| if r.random::<f32>() < keep { scale } else { 0.0 };
        let seed = rng.shared.next_u64();
        for row in 0..b {
            let mut r = rng.row(seed, row);
            let at = |s: usize| s * b * f + row * f;
            match self.kind {
                DropoutKind::Standard => {
                    for s in 0..t {
                        mask[at(s)..at(s) + f]
                            .iter_mut()
                            .for_each(|m| *m = draw(&mut r));
                    }
                }
                DropoutKind::Variational if t > 0 => {
                    mask[at(0)..at(0) + f]
                        .iter_mut()
                        .for_each(|m| *m = draw(&mut r));
                    for s in 1..t {
                        mask.copy_within(at(0)..at(0) + f, at(s));
                    }
                }
                DropoutKind::Variational => {}
            }
        }
    }
}

impl Dropout {
    /// Training-time dropout of `x[T, B, F]` in place: draws `mask` (resized to match) and
    /// applies it.
    pub fn apply_train(
        &self,
        x: &mut [f32],
        mask: &mut Vec<f32>,
        t: usize,
        b: usize,
        rng: &mut RowRng,
    ) {
        crate::linalg::fit(mask, x.len());
        let f = x.len().checked_div(t * b).unwrap_or(0);
        self.fill_mask(mask, t, b, f, rng);
        apply_mask(x, mask);
    }
}

/// The generator of one training step's dropout masks, for rows `first_row..` of its global
/// batch.
///
/// Every mask takes one seed from `shared`, the same on every process of a data-parallel run;
/// global row `r` of the mask is then drawn from that seed's ChaCha8 stream `r`. The masks of
/// a row therefore do not depend on how the batch is split across processes.
#[derive(Clone, Debug)]
pub struct RowRng {
    /// Source of each mask's seed.
    pub shared: SeqRng,
    /// Global index of the step's first local batch row.
    pub first_row: usize,
}

impl RowRng {
    /// Masks for global rows `first_row..`, seeded from `seed`.
    pub fn new(seed: u64, first_row: usize) -> Self {
        RowRng {
            shared: rng_from_seed(seed),
            first_row,
        }
    }

    /// The generator of local row `row` for a draw seeded `seed` (taken from `shared`): stream
    /// `first_row + row` of that seed.
    pub fn row(&self, seed: u64, row: usize) -> SeqRng {
        let mut r = rng_from_seed(seed);
        r.set_stream((self.first_row + row) as u64);
        r
    }

    /// The step generator of a process holding rows `first_row..`: one draw from the loop's
    /// generator, so every process advances it alike.
    pub fn for_step(loop_rng: &mut SeqRng, first_row: usize) -> Self {
        Self::new(loop_rng.next_u64(), first_row)
    }
}

/// Fills `mask[n]` with 0 or `1/(1−p)`, one mask for the whole step (every batch row and process
/// alike): its seed is one draw from `rng.shared`. Used where a mask applies to weights rather
/// than activations: DropConnect on `W_hh` and embedding (whole-word) dropout.
pub fn shared_mask(p: f32, mask: &mut Vec<f32>, n: usize, rng: &mut RowRng) {
    crate::linalg::fit(mask, n);
    let keep = 1.0 - p;
    let scale = 1.0 / keep;
    let mut r = rng_from_seed(rng.shared.next_u64());
    mask.iter_mut()
        .for_each(|m| *m = if r.random::<f32>() < keep { scale } else { 0.0 });
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
        d.fill_mask(&mut m, 100, 4, 100, &mut RowRng::new(3, 0));
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
        d.fill_mask(&mut m, 5, 3, 4, &mut RowRng::new(1, 0));
        for t in 1..5 {
            assert_eq!(m[..12], m[t * 12..(t + 1) * 12]);
        }
        assert!(m[..12].contains(&0.0) && m[..12].contains(&2.0));
    }

    #[test]
    fn masks_of_a_row_do_not_depend_on_how_the_batch_is_split() {
        for kind in [DropoutKind::Standard, DropoutKind::Variational] {
            let d = Dropout { p: 0.5, kind };
            let (t, b, f) = (3, 5, 4);
            let mut whole = vec![0.0; t * b * f];
            d.fill_mask(&mut whole, t, b, f, &mut RowRng::new(9, 0));
            assert!(whole.contains(&0.0) && whole.contains(&2.0));
            for first in [1, 2, 4] {
                let n = b - first;
                let mut part = vec![0.0; t * n * f];
                d.fill_mask(&mut part, t, n, f, &mut RowRng::new(9, first));
                for s in 0..t {
                    for r in 0..n {
                        let w = &whole[(s * b + first + r) * f..][..f];
                        assert_eq!(w, &part[(s * n + r) * f..][..f], "{kind:?} {first} {s} {r}");
                    }
                }
            }
        }
    }

    #[test]
    fn shared_masks_are_one_draw_for_every_process() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        shared_mask(0.4, &mut a, 10_000, &mut RowRng::new(5, 0));
        shared_mask(0.4, &mut b, 10_000, &mut RowRng::new(5, 7));
        assert_eq!(
            a, b,
            "the first row of a shard does not change a shared mask"
        );
        let kept = a.iter().filter(|&&v| v != 0.0).count() as f64 / 1e4;
        assert!((kept - 0.6).abs() < 0.02, "{kept}");
        assert!(a.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.6).abs() < 1e-6));
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

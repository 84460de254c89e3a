//! Parameter initialisers for a recurrent stack.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::config::{CellKind, RnnConfig};
use super::params::RnnLayout;
use crate::error::{Error, Result};

/// How weights and biases are drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum InitScheme {
    /// PyTorch's default: every weight and bias `U(−1/√H, 1/√H)`.
    #[default]
    PyTorch,
    /// Every weight and bias `U(−s, s)` (Zaremba et al. 2014 use 0.1, 0.05, 0.04).
    Uniform(f32),
    /// Keras's default: input weights Glorot-uniform `U(±√(6/(I_l + G·H)))`, recurrent weights
    /// orthogonal (the `[H, G·H]` Keras matrix has orthonormal rows, so PyTorch's `W_hh[G·H, H]`
    /// has orthonormal columns), biases zero.
    Keras,
}

/// Whether the LSTM forget-gate bias is overridden after drawing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ForgetBias {
    /// Keep what the scheme drew.
    #[default]
    Unchanged,
    /// Forget-gate bias 1.0 (Jozefowicz et al. 2015, Keras `unit_forget_bias`): `bias_ih` rows
    /// `H..2H` are set to 1 and `bias_hh` rows `H..2H` to 0, so their sum is 1. No effect on GRU.
    One,
}

/// An initialiser: scheme plus forget-gate bias rule. `validate()` before use.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Init {
    /// How values are drawn.
    pub scheme: InitScheme,
    /// LSTM forget-gate bias rule.
    pub forget_bias: ForgetBias,
}

impl Init {
    /// Checks the scheme's parameters.
    pub fn validate(&self) -> Result<()> {
        if let InitScheme::Uniform(s) = self.scheme {
            if !(s.is_finite() && s > 0.0) {
                return Err(Error::Config(format!(
                    "uniform initialisation scale must be positive and finite, got {s}"
                )));
            }
        }
        Ok(())
    }

    /// Fills `params` (laid out by [`RnnLayout::new`] for `config`) from a generator seeded
    /// with `seed`: the same seed gives the same values.
    pub fn apply(&self, config: &RnnConfig, params: &mut [f32], seed: u64) -> Result<()> {
        self.validate()?;
        let layout = RnnLayout::new(config);
        if params.len() != layout.len() {
            return Err(Error::Shape(format!(
                "parameter block has {} values, expected {}",
                params.len(),
                layout.len()
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let h = config.hidden_size;
        let gh = config.cell.gates() * h;
        for cell in layout.cells() {
            match self.scheme {
                InitScheme::PyTorch | InitScheme::Uniform(_) => {
                    let s = match self.scheme {
                        InitScheme::Uniform(s) => s,
                        _ => 1.0 / (h as f32).sqrt(),
                    };
                    for v in &mut params[cell.span()] {
                        *v = rng.random_range(-s..=s);
                    }
                }
                InitScheme::Keras => {
                    let limit = (6.0 / (cell.input_size + gh) as f32).sqrt();
                    for v in &mut params[cell.w_ih.clone()] {
                        *v = rng.random_range(-limit..=limit);
                    }
                    if !cell.w_hh.is_empty() {
                        orthonormal_columns(&mut params[cell.w_hh.clone()], gh, h, &mut rng);
                    }
                    params[cell.b_ih.clone()].fill(0.0);
                    params[cell.b_hh.clone()].fill(0.0);
                }
            }
            if self.forget_bias == ForgetBias::One && config.cell == CellKind::Lstm {
                params[cell.b_ih.start + h..cell.b_ih.start + 2 * h].fill(1.0);
                params[cell.b_hh.start + h..cell.b_hh.start + 2 * h].fill(0.0);
            }
        }
        Ok(())
    }
}

/// Fills `w[rows, cols]` (`rows ≥ cols`) with a random matrix whose columns are orthonormal:
/// Gram–Schmidt (applied twice, in f64) on standard normal columns.
fn orthonormal_columns(w: &mut [f32], rows: usize, cols: usize, rng: &mut ChaCha8Rng) {
    let mut q = vec![0.0f64; rows * cols]; // column-major: column j at q[j*rows..]
    for v in q.iter_mut() {
        *v = standard_normal(rng);
    }
    for j in 0..cols {
        let (done, rest) = q.split_at_mut(j * rows);
        let col = &mut rest[..rows];
        for _ in 0..2 {
            for k in 0..j {
                let prev = &done[k * rows..(k + 1) * rows];
                let dot: f64 = prev.iter().zip(col.iter()).map(|(a, b)| a * b).sum();
                col.iter_mut().zip(prev).for_each(|(c, p)| *c -= dot * p);
            }
        }
        let norm = col.iter().map(|v| v * v).sum::<f64>().sqrt();
        col.iter_mut().for_each(|v| *v /= norm);
    }
    for r in 0..rows {
        for c in 0..cols {
            w[r * cols + c] = q[c * rows + r] as f32;
        }
    }
}

/// One draw of N(0, 1) by the Box–Muller transform.
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rnn::{Direction, GruVariant};

    fn cfg(cell: CellKind) -> RnnConfig {
        RnnConfig {
            cell,
            input_size: 6,
            hidden_size: 8,
            num_layers: 2,
            direction: Direction::Bidirectional,
        }
    }

    #[test]
    fn pytorch_default_bounds_and_determinism() {
        let c = cfg(CellKind::Lstm);
        let n = RnnLayout::new(&c).len();
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        Init::default().apply(&c, &mut a, 7).unwrap();
        Init::default().apply(&c, &mut b, 7).unwrap();
        assert_eq!(a, b);
        let bound = 1.0 / 8f32.sqrt();
        assert!(a.iter().all(|v| v.abs() <= bound));
        // Spread: a uniform sample of this size fills most of the interval.
        let max = a.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(max > 0.95 * bound);
    }

    #[test]
    fn keras_recurrent_weights_have_orthonormal_columns_and_forget_bias_one() {
        let c = cfg(CellKind::Lstm);
        let layout = RnnLayout::new(&c);
        let mut p = vec![0.0; layout.len()];
        Init {
            scheme: InitScheme::Keras,
            forget_bias: ForgetBias::One,
        }
        .apply(&c, &mut p, 1)
        .unwrap();
        let (gh, h) = (32, 8);
        for cell in layout.cells() {
            let w = &p[cell.w_hh.clone()];
            for a in 0..h {
                for b in 0..h {
                    let dot: f32 = (0..gh).map(|r| w[r * h + a] * w[r * h + b]).sum();
                    let want = if a == b { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-5, "column {a}·{b} = {dot}");
                }
            }
            let bih = &p[cell.b_ih.clone()];
            let bhh = &p[cell.b_hh.clone()];
            for j in 0..gh {
                let want = if (h..2 * h).contains(&j) { 1.0 } else { 0.0 };
                assert_eq!(bih[j] + bhh[j], want);
            }
        }
    }

    #[test]
    fn uniform_scale_is_validated() {
        let c = cfg(CellKind::Gru(GruVariant::ResetAfter));
        let mut p = vec![0.0; RnnLayout::new(&c).len()];
        for s in [0.0, -0.1, f32::NAN] {
            let init = Init {
                scheme: InitScheme::Uniform(s),
                ..Init::default()
            };
            assert!(init.apply(&c, &mut p, 0).is_err());
        }
        let init = Init {
            scheme: InitScheme::Uniform(0.05),
            ..Init::default()
        };
        init.apply(&c, &mut p, 0).unwrap();
        assert!(p.iter().all(|v| v.abs() <= 0.05));
    }
}

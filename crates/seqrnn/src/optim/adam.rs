//! Adam (Kingma & Ba 2015), PyTorch's formulation (bias-corrected, `eps` added after the square
//! root), with optional decoupled weight decay (AdamW).

use crate::error::{Error, Result};

/// Adam hyperparameters. `validate()` before use.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamConfig {
    /// Exponential decay of the first moment.
    pub beta1: f64,
    /// Exponential decay of the second moment.
    pub beta2: f64,
    /// Added to the root of the second moment.
    pub eps: f64,
    /// Decoupled weight decay (AdamW); 0 for plain Adam.
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

impl AdamConfig {
    /// Checks `0 ≤ β < 1`, `eps > 0`, `weight_decay ≥ 0`.
    pub fn validate(&self) -> Result<()> {
        for (name, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::Config(format!(
                    "Adam {name} must be in [0, 1), got {b}"
                )));
            }
        }
        if self.eps.is_nan() || self.eps <= 0.0 {
            return Err(Error::Config(format!(
                "Adam eps must be positive, got {}",
                self.eps
            )));
        }
        if self.weight_decay.is_nan() || self.weight_decay < 0.0 {
            return Err(Error::Config(format!(
                "weight decay must be at least 0, got {}",
                self.weight_decay
            )));
        }
        Ok(())
    }
}

/// Adam state: first and second moments `m, v [P]` and the step count.
#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    /// Hyperparameters.
    pub config: AdamConfig,
    /// First moment, same layout as the parameters.
    pub m: Vec<f32>,
    /// Second moment.
    pub v: Vec<f32>,
    /// Steps taken.
    pub step: u64,
}

impl Adam {
    /// Fresh state for `n` parameters.
    pub fn new(config: AdamConfig, n: usize) -> Result<Self> {
        config.validate()?;
        Ok(Adam {
            config,
            m: vec![0.0; n],
            v: vec![0.0; n],
            step: 0,
        })
    }

    /// One update with learning rate `lr`.
    ///
    /// - `params[P]`: updated. `grads[P]`: read. `m, v`: updated.
    pub fn step(&mut self, params: &mut [f32], grads: &[f32], lr: f64) {
        self.step += 1;
        let c = self.config;
        let bc1 = 1.0 - c.beta1.powi(self.step as i32);
        let bc2 = 1.0 - c.beta2.powi(self.step as i32);
        let (b1, b2) = (c.beta1 as f32, c.beta2 as f32);
        let step_size = (lr / bc1) as f32;
        let inv_sqrt_bc2 = (1.0 / bc2.sqrt()) as f32;
        let eps = c.eps as f32;
        let decay = (1.0 - lr * c.weight_decay) as f32;
        adam_update(
            params,
            grads,
            &mut self.m,
            &mut self.v,
            AdamStep {
                b1,
                b2,
                step_size,
                inv_sqrt_bc2,
                eps,
                decay: (c.weight_decay > 0.0).then_some(decay),
            },
        );
    }
}

/// Scalars of one Adam update.
#[derive(Clone, Copy)]
struct AdamStep {
    b1: f32,
    b2: f32,
    step_size: f32,
    inv_sqrt_bc2: f32,
    eps: f32,
    /// Decoupled weight-decay factor, if any.
    decay: Option<f32>,
}

/// The element-wise Adam update: `params`, `m`, `v` updated, `grads` read, all `[P]`.
#[multiversion::multiversion(targets = "simd")]
fn adam_update(params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32], s: AdamStep) {
    for (((p, &g), m), v) in params
        .iter_mut()
        .zip(grads)
        .zip(m.iter_mut())
        .zip(v.iter_mut())
    {
        *m = s.b1 * *m + (1.0 - s.b1) * g;
        *v = s.b2 * *v + (1.0 - s.b2) * g * g;
        if let Some(d) = s.decay {
            *p *= d;
        }
        *p -= s.step_size * *m / (v.sqrt() * s.inv_sqrt_bc2 + s.eps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_each_parameter_by_lr() {
        // With bias correction the first step is lr · g/|g| (up to eps).
        let mut a = Adam::new(AdamConfig::default(), 3).unwrap();
        let mut p = [1.0f32, 1.0, 1.0];
        a.step(&mut p, &[0.5, -2.0, 1e-3], 0.01);
        for (got, want) in p.iter().zip([0.99, 1.01, 0.99]) {
            assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        }
    }

    #[test]
    fn matches_hand_computed_second_step() {
        let mut a = Adam::new(AdamConfig::default(), 1).unwrap();
        let mut p = [0.0f32];
        a.step(&mut p, &[1.0], 0.1);
        a.step(&mut p, &[0.5], 0.1);
        // m = 0.1·0.9 + 0.05 = 0.14, v = 0.999·0.001 + 0.001·0.25 = 0.001249
        let m_hat = 0.14 / (1.0 - 0.81);
        let v_hat = 0.001249 / (1.0 - 0.998001);
        let want = -0.1 - 0.1 * m_hat / (f64::sqrt(v_hat) + 1e-8);
        assert!((p[0] as f64 - want).abs() < 1e-5, "{} vs {want}", p[0]);
    }

    #[test]
    fn bad_hyperparameters_are_refused() {
        for c in [
            AdamConfig {
                beta1: 1.0,
                ..AdamConfig::default()
            },
            AdamConfig {
                beta2: -0.1,
                ..AdamConfig::default()
            },
            AdamConfig {
                eps: 0.0,
                ..AdamConfig::default()
            },
            AdamConfig {
                weight_decay: -1.0,
                ..AdamConfig::default()
            },
        ] {
            assert!(Adam::new(c, 1).is_err());
        }
    }
}

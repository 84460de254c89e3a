//! Generation from any model that gives next-step logits ([`NextToken`]; the language model's
//! is [`LmStepper`]): greedy decoding or sampling with temperature, top-k and nucleus (top-p)
//! truncation.

use rand::RngExt;

use crate::dropout::{rng_from_seed, SeqRng};
use crate::error::{Error, Result};
use crate::model::softmax::{exp_weights, row_max};
use crate::rnn::{RnnState, SeqShape};
use crate::tasks::lm::{LanguageModel, LmWorkspace};

/// How the next token is chosen from the model's distribution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decoding {
    /// Always the most probable token.
    Greedy,
    /// A draw from `softmax(logits / temperature)`, restricted to the `top_k` most probable
    /// tokens and/or to the smallest set whose probability reaches `top_p`.
    Sample {
        /// Divides the logits; below 1 sharpens, above 1 flattens. Must be positive.
        temperature: f32,
        /// Keep only this many most probable tokens.
        top_k: Option<usize>,
        /// Keep the smallest set of most probable tokens with total probability ≥ `top_p`, in `(0, 1]`.
        top_p: Option<f32>,
    },
}

impl Default for Decoding {
    fn default() -> Self {
        Decoding::Sample {
            temperature: 1.0,
            top_k: None,
            top_p: None,
        }
    }
}

impl Decoding {
    /// Checks the sampling parameters.
    pub fn validate(&self) -> Result<()> {
        if let Decoding::Sample {
            temperature,
            top_k,
            top_p,
        } = *self
        {
            if !(temperature.is_finite() && temperature > 0.0) {
                return Err(Error::Config(format!(
                    "temperature must be positive, got {temperature}"
                )));
            }
            if top_k == Some(0) {
                return Err(Error::Config("top-k must be at least 1, got 0".into()));
            }
            if let Some(p) = top_p {
                if !(p > 0.0 && p <= 1.0) {
                    return Err(Error::Config(format!("top-p must be in (0, 1], got {p}")));
                }
            }
        }
        Ok(())
    }
}

/// Chooses a token from one row of logits. `scratch` is reused between calls.
pub fn choose(
    logits: &[f32],
    decoding: Decoding,
    rng: &mut SeqRng,
    scratch: &mut Vec<(f32, u32)>,
) -> u32 {
    let argmax = || {
        logits
            .iter()
            .enumerate()
            .fold((0usize, f32::NEG_INFINITY), |best, (i, &l)| {
                if l > best.1 {
                    (i, l)
                } else {
                    best
                }
            })
            .0 as u32
    };
    let Decoding::Sample {
        temperature,
        top_k,
        top_p,
    } = decoding
    else {
        return argmax();
    };
    let m = row_max(logits);
    scratch.clear();
    scratch.extend(
        exp_weights(logits, m, temperature)
            .enumerate()
            .map(|(i, w)| (w, i as u32)),
    );
    if top_k.is_some() || top_p.is_some() {
        scratch.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        if let Some(k) = top_k {
            scratch.truncate(k.max(1));
        }
        if let Some(p) = top_p {
            let total: f32 = scratch.iter().map(|e| e.0).sum();
            let mut acc = 0.0;
            let keep = scratch
                .iter()
                .position(|e| {
                    acc += e.0;
                    acc >= p * total
                })
                .map_or(scratch.len(), |i| i + 1);
            scratch.truncate(keep);
        }
    }
    let total: f32 = scratch.iter().map(|e| e.0).sum();
    let mut r = rng.random::<f32>() * total;
    for &(w, id) in scratch.iter() {
        if r < w {
            return id;
        }
        r -= w;
    }
    scratch.last().map_or_else(argmax, |e| e.1)
}

/// A model that predicts the next token one step at a time: what [`generate`] needs.
///
/// Implementations keep their recurrent state between calls and, once warmed up, should not
/// allocate per step.
pub trait NextToken {
    /// Width of a row of logits (the vocabulary size `V`).
    fn vocab(&self) -> usize;

    /// Starts afresh (zero state) and reads `prompt` (at least one token); writes the logits of
    /// the token that follows it into `logits[V]`.
    fn prime(&mut self, prompt: &[u32], logits: &mut [f32]) -> Result<()>;

    /// Reads one more token; writes the logits of the token that follows it into `logits[V]`.
    fn step(&mut self, token: u32, logits: &mut [f32]) -> Result<()>;
}

/// A [`LanguageModel`] with its parameters, recurrent state (batch 1) and workspace, stepping
/// one token at a time.
#[derive(Debug)]
pub struct LmStepper<'m> {
    model: &'m LanguageModel,
    params: &'m [f32],
    state: RnnState,
    ws: LmWorkspace,
}

impl<'m> LmStepper<'m> {
    /// A stepper for `model` with `params`, at a zero state.
    pub fn new(model: &'m LanguageModel, params: &'m [f32]) -> Self {
        LmStepper {
            model,
            params,
            state: model.zero_state(1),
            ws: LmWorkspace::default(),
        }
    }
}

impl NextToken for LmStepper<'_> {
    fn vocab(&self) -> usize {
        self.model.config().vocab
    }

    /// The whole prompt runs as one window; the logits of its last step are kept.
    fn prime(&mut self, prompt: &[u32], logits: &mut [f32]) -> Result<()> {
        self.state.reset();
        let v = self.vocab();
        let shape = SeqShape {
            t: prompt.len(),
            b: 1,
        };
        let all = self
            .model
            .logits(self.params, prompt, shape, &mut self.state, &mut self.ws)?;
        logits.copy_from_slice(&all[all.len() - v..]);
        Ok(())
    }

    fn step(&mut self, token: u32, logits: &mut [f32]) -> Result<()> {
        let shape = SeqShape { t: 1, b: 1 };
        let out = self
            .model
            .logits(self.params, &[token], shape, &mut self.state, &mut self.ws)?;
        logits.copy_from_slice(out);
        Ok(())
    }
}

/// Primes `model` with `prompt` (at least one token) and then generates `n` tokens, feeding
/// each back in. The same seed gives the same tokens.
pub fn generate<M: NextToken + ?Sized>(
    model: &mut M,
    prompt: &[u32],
    n: usize,
    decoding: Decoding,
    seed: u64,
) -> Result<Vec<u32>> {
    generate_each(model, prompt, n, decoding, seed, |_| true)
}

/// [`generate`], handing each token to `each` as soon as it is chosen; generation stops early
/// when `each` returns `false` (a reader that went away). The tokens are those of [`generate`]
/// with the same arguments, as many as were generated.
pub fn generate_each<M: NextToken + ?Sized>(
    model: &mut M,
    prompt: &[u32],
    n: usize,
    decoding: Decoding,
    seed: u64,
    mut each: impl FnMut(u32) -> bool,
) -> Result<Vec<u32>> {
    decoding.validate()?;
    if prompt.is_empty() {
        return Err(Error::Config(
            "generation needs at least one prompt token".into(),
        ));
    }
    let mut rng = rng_from_seed(seed);
    let v = model.vocab();
    let mut scratch = Vec::with_capacity(v);
    let mut logits = vec![0.0; v];
    model.prime(prompt, &mut logits)?;
    let mut next = choose(&logits, decoding, &mut rng, &mut scratch);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(next);
        if !each(next) || i + 1 == n {
            break;
        }
        model.step(next, &mut logits)?;
        next = choose(&logits, decoding, &mut rng, &mut scratch);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_largest_and_top_k_one_agrees() {
        let l = [0.1, 3.0, -2.0, 2.9];
        let mut rng = rng_from_seed(0);
        let mut s = Vec::new();
        assert_eq!(choose(&l, Decoding::Greedy, &mut rng, &mut s), 1);
        let top1 = Decoding::Sample {
            temperature: 1.0,
            top_k: Some(1),
            top_p: None,
        };
        for _ in 0..20 {
            assert_eq!(choose(&l, top1, &mut rng, &mut s), 1);
        }
    }

    #[test]
    fn sampling_follows_the_distribution_and_top_p_truncates() {
        // Probabilities ∝ e^0, e^ln3 → 0.25, 0.75.
        let l = [0.0, 3f32.ln()];
        let mut rng = rng_from_seed(1);
        let mut s = Vec::new();
        let d = Decoding::default();
        let ones = (0..20_000)
            .filter(|_| choose(&l, d, &mut rng, &mut s) == 1)
            .count();
        assert!((ones as f64 / 20_000.0 - 0.75).abs() < 0.015, "{ones}");
        let nucleus = Decoding::Sample {
            temperature: 1.0,
            top_k: None,
            top_p: Some(0.7),
        };
        assert!((0..200).all(|_| choose(&l, nucleus, &mut rng, &mut s) == 1));
        // A low temperature concentrates the mass on the best token.
        let cold = Decoding::Sample {
            temperature: 0.05,
            top_k: None,
            top_p: None,
        };
        assert!((0..200).all(|_| choose(&l, cold, &mut rng, &mut s) == 1));
    }

    #[test]
    fn bad_parameters_are_refused() {
        for d in [
            Decoding::Sample {
                temperature: 0.0,
                top_k: None,
                top_p: None,
            },
            Decoding::Sample {
                temperature: -1.0,
                top_k: None,
                top_p: None,
            },
            Decoding::Sample {
                temperature: 1.0,
                top_k: Some(0),
                top_p: None,
            },
            Decoding::Sample {
                temperature: 1.0,
                top_k: None,
                top_p: Some(0.0),
            },
            Decoding::Sample {
                temperature: 1.0,
                top_k: None,
                top_p: Some(1.5),
            },
        ] {
            assert!(d.validate().is_err(), "{d:?}");
        }
    }

    /// Logits that favour `(last · 7 + 3) mod V`, a little noise from the step count.
    struct Toy {
        last: u32,
        steps: u32,
    }

    impl NextToken for Toy {
        fn vocab(&self) -> usize {
            11
        }

        fn prime(&mut self, prompt: &[u32], logits: &mut [f32]) -> Result<()> {
            self.step(*prompt.last().expect("a prompt"), logits)
        }

        fn step(&mut self, token: u32, logits: &mut [f32]) -> Result<()> {
            self.last = token;
            self.steps += 1;
            for (i, l) in logits.iter_mut().enumerate() {
                *l = ((i as u32 * 5 + self.steps) % 3) as f32 * 0.5;
            }
            logits[((token * 7 + 3) % 11) as usize] += 2.0;
            Ok(())
        }
    }

    #[test]
    fn each_token_is_handed_over_in_order_and_a_stop_ends_early() {
        let toy = || Toy { last: 0, steps: 0 };
        let d = Decoding::default();
        let all = generate(&mut toy(), &[1, 2], 20, d, 5).unwrap();
        let mut seen = Vec::new();
        let same = generate_each(&mut toy(), &[1, 2], 20, d, 5, |t| {
            seen.push(t);
            true
        })
        .unwrap();
        assert_eq!((&same, &seen), (&all, &all));
        let mut stepper = toy();
        let first = generate_each(&mut stepper, &[1, 2], 20, d, 5, |_| false).unwrap();
        assert_eq!(first, all[..1]);
        assert_eq!(stepper.steps, 1, "no step after the reader went away");
        let none = generate(&mut toy(), &[1, 2], 0, d, 5).unwrap();
        assert!(none.is_empty());
    }
}

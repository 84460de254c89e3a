//! Pooling over time: the per-step outputs `top[T, B, D·H]` of a padding-exact encoder become
//! one feature vector `feat[B, D·H]` per sequence, reading only each sequence's real steps.
//!
//! `D·H` holds the forward direction's `H` values, then (bidirectional) the reverse direction's.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::linalg::fit;

/// How the recurrent outputs of a sequence become one feature vector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The final state of each direction (forward at the last real step, reverse at step 0).
    Last,
    /// The mean over the real steps.
    Mean,
    /// The element-wise maximum over the real steps.
    #[default]
    Max,
}

impl std::str::FromStr for Pooling {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "last" => Ok(Pooling::Last),
            "mean" => Ok(Pooling::Mean),
            "max" => Ok(Pooling::Max),
            _ => Err(Error::Config(format!(
                "unknown pooling `{s}` (expected last, mean or max)"
            ))),
        }
    }
}

impl Pooling {
    /// Forward: pools `top[T, B, D·H]` into `feat[B, D·H]` (resized) over each sequence's real
    /// steps `lens[B]`; `h` is one direction's width `H`. For [`Pooling::Max`], `argmax[B, D·H]`
    /// (resized) receives the step of each maximum (the first one on ties).
    pub fn forward(
        self,
        top: &[f32],
        lens: &[usize],
        h: usize,
        dh: usize,
        feat: &mut Vec<f32>,
        argmax: &mut Vec<u32>,
    ) {
        let b = lens.len();
        fit(feat, b * dh);
        let at = |t: usize, j: usize| (t * b + j) * dh;
        match self {
            Pooling::Last => {
                for (j, &len) in lens.iter().enumerate() {
                    let f = &mut feat[j * dh..(j + 1) * dh];
                    f[..h].copy_from_slice(&top[at(len - 1, j)..at(len - 1, j) + h]);
                    if dh > h {
                        f[h..].copy_from_slice(&top[at(0, j) + h..at(0, j) + dh]);
                    }
                }
            }
            Pooling::Mean => {
                feat.fill(0.0);
                for (j, &len) in lens.iter().enumerate() {
                    let f = &mut feat[j * dh..(j + 1) * dh];
                    for t in 0..len {
                        f.iter_mut()
                            .zip(&top[at(t, j)..at(t, j) + dh])
                            .for_each(|(a, v)| *a += v);
                    }
                    let inv = 1.0 / len as f32;
                    f.iter_mut().for_each(|a| *a *= inv);
                }
            }
            Pooling::Max => {
                argmax.clear();
                argmax.resize(b * dh, 0);
                for (j, &len) in lens.iter().enumerate() {
                    let f = &mut feat[j * dh..(j + 1) * dh];
                    f.copy_from_slice(&top[at(0, j)..at(0, j) + dh]);
                    let am = &mut argmax[j * dh..(j + 1) * dh];
                    for t in 1..len {
                        for (k, v) in top[at(t, j)..at(t, j) + dh].iter().enumerate() {
                            if *v > f[k] {
                                f[k] = *v;
                                am[k] = t as u32;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Backward of [`Pooling::forward`]: `dtop[T, B, D·H]` (resized to `t` steps, written) from
    /// `dfeat[B, D·H]`, zero at padding and at steps the pooling did not read. `argmax` is the
    /// forward pass's.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        self,
        dfeat: &[f32],
        lens: &[usize],
        t: usize,
        h: usize,
        dh: usize,
        argmax: &[u32],
        dtop: &mut Vec<f32>,
    ) {
        let b = lens.len();
        fit(dtop, t * b * dh);
        dtop.fill(0.0);
        let at = |t: usize, j: usize| (t * b + j) * dh;
        for (j, &len) in lens.iter().enumerate() {
            let g = &dfeat[j * dh..(j + 1) * dh];
            match self {
                Pooling::Last => {
                    let a = at(len - 1, j);
                    dtop[a..a + h].copy_from_slice(&g[..h]);
                    if dh > h {
                        let a = at(0, j);
                        dtop[a + h..a + dh].copy_from_slice(&g[h..]);
                    }
                }
                Pooling::Mean => {
                    let inv = 1.0 / len as f32;
                    for s in 0..len {
                        let a = at(s, j);
                        dtop[a..a + dh]
                            .iter_mut()
                            .zip(g)
                            .for_each(|(d, v)| *d = v * inv);
                    }
                }
                Pooling::Max => {
                    for (kk, v) in g.iter().enumerate() {
                        let s = argmax[j * dh + kk] as usize;
                        dtop[at(s, j) + kk] += v;
                    }
                }
            }
        }
    }
}

//! Token embedding: a lookup table `W[V, E]`, forward gather and backward scatter-add.

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::dropout::SeqRng;
use crate::error::{Error, Result};

/// Forward: `out[n] = table[ids[n]]` for every token.
///
/// - `table[V, E]`: read. `ids[N]`: read, each `< V` (checked by the caller).
/// - `out[N, E]`: written.
pub fn forward(table: &[f32], ids: &[u32], out: &mut [f32], embed: usize) {
    for (row, &id) in out.chunks_exact_mut(embed).zip(ids) {
        let i = id as usize * embed;
        row.copy_from_slice(&table[i..i + embed]);
    }
}

/// Backward: `dtable[ids[n]] += dout[n]`.
///
/// - `dout[N, E]`: read. `ids[N]`: read.
/// - `dtable[V, E]`: accumulated.
pub fn backward(dout: &[f32], ids: &[u32], dtable: &mut [f32], embed: usize) {
    for (row, &id) in dout.chunks_exact(embed).zip(ids) {
        let i = id as usize * embed;
        dtable[i..i + embed]
            .iter_mut()
            .zip(row)
            .for_each(|(d, g)| *d += g);
    }
}

/// Draws every value of `values` (embedding rows) from `N(0, std²)` by the Box–Muller transform,
/// one pair of uniforms per value (PyTorch's `nn.Embedding` draws `N(0, 1)`).
pub(crate) fn init_normal(values: &mut [f32], std: f64, rng: &mut SeqRng) {
    for v in values {
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        *v = (std * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32;
    }
}

/// Refuses a vocabulary of fewer than 2 tokens (a token model's configuration check).
pub(crate) fn check_vocab(vocab: usize) -> Result<()> {
    if vocab < 2 {
        return Err(Error::Config(format!(
            "vocabulary must hold at least 2 tokens, got {vocab}"
        )));
    }
    Ok(())
}

/// Refuses an embedding width of 0 (a token model's configuration check).
pub(crate) fn check_embed(embed: usize) -> Result<()> {
    if embed == 0 {
        return Err(Error::Config(
            "embedding size must be at least 1, got 0".into(),
        ));
    }
    Ok(())
}

/// Whether the output layer has its own weights or reuses the embedding's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputWeights {
    /// `decoder.weight` is a separate `[V, H]` tensor.
    #[default]
    Separate,
    /// `decoder.weight` is `encoder.weight` (Press & Wolf 2017, Inan et al. 2017); needs `E = H`.
    Tied,
}

/// A batch of token sequences, padded: `ids[T, B]` time-major (padding id 0), `lens[B] ≥ 1`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenBatch {
    /// `ids[T, B]`, `T` = the longest length.
    pub ids: Vec<u32>,
    /// Real length of each sequence.
    pub lens: Vec<usize>,
    /// `T`.
    pub t: usize,
}

impl TokenBatch {
    /// Pads `seqs` (each non-empty) into one batch, reusing `self`'s buffers.
    pub fn fill<'s>(&mut self, seqs: impl Iterator<Item = &'s [u32]> + Clone) {
        self.lens.clear();
        self.lens.extend(seqs.clone().map(<[u32]>::len));
        self.t = self.lens.iter().copied().max().unwrap_or(0);
        let b = self.lens.len();
        self.ids.clear();
        self.ids.resize(self.t * b, 0);
        for (j, s) in seqs.enumerate() {
            for (t, &id) in s.iter().enumerate() {
                self.ids[t * b + j] = id;
            }
        }
    }

    /// Batch size `B`.
    pub fn b(&self) -> usize {
        self.lens.len()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn gather_and_scatter_add_repeated_ids() {
        let table = [0.0, 1.0, 10.0, 11.0, 20.0, 21.0];
        let ids = [2, 0, 2];
        let mut out = [0.0; 6];
        super::forward(&table, &ids, &mut out, 2);
        assert_eq!(out, [20.0, 21.0, 0.0, 1.0, 20.0, 21.0]);
        let mut d = [0.0; 6];
        super::backward(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &ids, &mut d, 2);
        assert_eq!(d, [3.0, 4.0, 0.0, 0.0, 6.0, 8.0]);
    }
}

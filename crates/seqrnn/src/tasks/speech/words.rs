//! The word head of an acoustic model: a whole-utterance classifier beside CTC, for isolated
//! words.
//!
//! ```text
//! encoder output top[T', B, D] (after the output dropout, D = 2·H)
//! → attention pooling with one learned query q[D]: e[t] = q · top[t], α = softmax over the
//!   real steps, pooled[B, D] = Σ_t α[t] top[t]
//! → Linear(D, K) → word logits z[B, K] → cross-entropy against the utterance's word
//! ```
//!
//! The pooling is [`Attention`] with the dot score and one query step (Raffel & Ellis 2015's
//! feed-forward attention with a linear score); padding steps get weight 0. Its loss,
//! `weight · Σ_b CE(z_b, y_b)`, is added to the CTC loss; an utterance whose transcript is not
//! one of the `K` words ([`NO_WORD`]) adds nothing. Parameters, after the CTC model's:
//! `words.query [D]`, `words.weight [K, D]`, `words.bias [K]`; the query starts at zero
//! (mean pooling) and the linear layer as `nn.Linear`.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::dropout::SeqRng;
use crate::error::{Error, Result};
use crate::linalg::fit;
use crate::model::attention::{Attention, AttnCache, AttnGrads, AttnShape, AttnWorkspace, Score};
use crate::model::dense;
use crate::model::layout::ParamLayout;

/// The class of an utterance whose transcript is not one of the head's words.
pub const NO_WORD: u32 = u32::MAX;

/// Shape and loss weight of a word head. `validate()` before use.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct WordHead {
    /// Words `K`, in the order of the run's `words.txt`.
    pub words: usize,
    /// Weight of its cross-entropy beside the CTC loss.
    pub weight: f32,
}

impl WordHead {
    /// At least two words and a finite positive weight.
    pub fn validate(&self) -> Result<()> {
        if self.words < 2 || !(self.weight.is_finite() && self.weight > 0.0) {
            return Err(Error::Config(format!(
                "a word head needs at least 2 words and a positive weight, got {} words and \
                 weight {}",
                self.words, self.weight
            )));
        }
        Ok(())
    }
}

/// The head over an encoder output of width `D`: its pooling, sizes and parameter ranges
/// (within the model's block).
#[derive(Clone, Debug)]
pub struct WordPart {
    head: WordHead,
    attn: Attention,
    width: usize,
    query: Range<usize>,
    w: Range<usize>,
    b: Range<usize>,
}

/// What [`WordPart::forward`] keeps: the repeated query, the pooling's weights, the pooled
/// vectors and the word logits (with their gradient after a training loss).
#[derive(Debug, Default)]
pub struct WordCache {
    /// The query repeated per utterance `[1, B, D]`.
    q: Vec<f32>,
    attn: AttnCache,
    /// `pooled[B, D]`.
    pooled: Vec<f32>,
    /// Word logits `z[B, K]`.
    pub logits: Vec<f32>,
    /// `∂L/∂z[B, K]`.
    dlogits: Vec<f32>,
}

/// Scratch of [`WordPart::backward`].
#[derive(Debug, Default)]
pub struct WordWorkspace {
    attn: AttnWorkspace,
    /// `∂pooled[B, D]`, `∂q[1, B, D]`, and `∂top[T', B, D]` (the gradient it hands back).
    dpooled: Vec<f32>,
    dq: Vec<f32>,
    /// `∂top[T', B, D]`.
    pub dtop: Vec<f32>,
}

impl WordPart {
    /// Appends the head's tensors to `p` over an encoder output of width `width`.
    pub fn new(head: WordHead, width: usize, p: &mut ParamLayout) -> Result<Self> {
        head.validate()?;
        let attn = Attention::new(Score::Dot, width, width, 0)?;
        let query = p.push("words.query", vec![width]);
        let w = p.push("words.weight", vec![head.words, width]);
        let b = p.push("words.bias", vec![head.words]);
        Ok(WordPart {
            head,
            attn,
            width,
            query,
            w,
            b,
        })
    }

    /// Initial values: the query 0, the linear layer as `nn.Linear`.
    pub fn init(&self, params: &mut [f32], rng: &mut SeqRng) {
        params[self.query.clone()].fill(0.0);
        let (lo, hi) = params.split_at_mut(self.b.start);
        dense::init(
            &mut lo[self.w.clone()],
            &mut hi[..self.b.len()],
            self.width,
            rng,
        );
    }

    /// `T'` of an encoder output `top[T', B, D]` of `b` utterances.
    fn steps(&self, top: &[f32], b: usize) -> usize {
        top.len() / (b * self.width).max(1)
    }

    /// Forward: `cache.logits[B, K]` from `top[T', B, D]` with real steps `lens[B]`.
    pub fn forward(
        &self,
        params: &[f32],
        top: &[f32],
        lens: &[usize],
        cache: &mut WordCache,
    ) -> Result<()> {
        let (b, d, k) = (lens.len(), self.width, self.head.words);
        let t = self.steps(top, b);
        fit(&mut cache.q, b * d);
        for row in cache.q.chunks_exact_mut(d) {
            row.copy_from_slice(&params[self.query.clone()]);
        }
        let shape = AttnShape { t: 1, s: t, lens };
        self.attn.forward(
            &[],
            &cache.q,
            top,
            &shape,
            &mut cache.pooled,
            &mut cache.attn,
        )?;
        fit(&mut cache.logits, b * k);
        let (w, bias) = (&params[self.w.clone()], &params[self.b.clone()]);
        dense::forward_rows(w, bias, &cache.pooled, &mut cache.logits, b, d, k);
        Ok(())
    }

    /// `weight ·` the summed cross-entropy of `cache.logits` against `words[B]` (utterances of
    /// [`NO_WORD`] left out); with `scale`, also `scale ·` its gradient into the cache.
    pub fn loss(&self, words: &[u32], scale: Option<f32>, cache: &mut WordCache) -> f64 {
        let k = self.head.words;
        let weight = self.head.weight as f64;
        fit(&mut cache.dlogits, cache.logits.len());
        if scale.is_some() {
            cache.dlogits.fill(0.0);
        }
        let mut total = 0.0;
        let rows = cache
            .logits
            .chunks_exact(k)
            .zip(cache.dlogits.chunks_exact_mut(k));
        for ((z, dz), &y) in rows.zip(words) {
            if y as usize >= k {
                continue;
            }
            let m = crate::model::softmax::row_max(z);
            let sum: f64 = z.iter().map(|v| ((v - m) as f64).exp()).sum();
            total += weight * (sum.ln() + (m - z[y as usize]) as f64);
            if let Some(s) = scale {
                let g = weight * s as f64;
                for (j, (d, v)) in dz.iter_mut().zip(z).enumerate() {
                    let p = ((v - m) as f64).exp() / sum;
                    *d = (g * (p - f64::from(u8::from(j == y as usize)))) as f32;
                }
            }
        }
        total
    }

    /// Backward of the last [`WordPart::forward`] and [`WordPart::loss`] with a scale:
    /// accumulates (`+=`) the head's gradients into `grads` (the model's block) and writes
    /// `ws.dtop[T', B, D]`, the gradient of `top`.
    pub fn backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        top: &[f32],
        lens: &[usize],
        cache: &WordCache,
        ws: &mut WordWorkspace,
    ) -> Result<()> {
        let (b, d, k) = (lens.len(), self.width, self.head.words);
        let t = self.steps(top, b);
        fit(&mut ws.dpooled, b * d);
        {
            let (lo, hi) = grads.split_at_mut(self.b.start);
            let (gw, gb) = (&mut lo[self.w.clone()], &mut hi[..self.b.len()]);
            let w = &params[self.w.clone()];
            dense::backward(
                w,
                &cache.pooled,
                &cache.dlogits,
                gw,
                gb,
                &mut ws.dpooled,
                b,
                d,
                k,
            );
        }
        fit(&mut ws.dq, b * d);
        ws.dq.fill(0.0);
        fit(&mut ws.dtop, t * b * d);
        ws.dtop.fill(0.0);
        let shape = AttnShape { t: 1, s: t, lens };
        let grads_attn = AttnGrads {
            dq: &mut ws.dq,
            dk: &mut ws.dtop,
            dw: &mut [],
        };
        self.attn.backward(
            &[],
            &cache.q,
            top,
            &shape,
            &cache.attn,
            &ws.dpooled,
            grads_attn,
            &mut ws.attn,
        )?;
        let dquery = &mut grads[self.query.clone()];
        for row in ws.dq.chunks_exact(d) {
            dquery.iter_mut().zip(row).for_each(|(g, v)| *g += v);
        }
        Ok(())
    }

    /// The number of words `K`.
    pub fn words(&self) -> usize {
        self.head.words
    }

    /// The most probable word of each utterance of the last forward pass.
    pub fn best(&self, cache: &WordCache) -> Vec<usize> {
        cache
            .logits
            .chunks_exact(self.head.words)
            .map(crate::model::softmax::argmax)
            .collect()
    }
}

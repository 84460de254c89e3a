//! Luong attention over padded encoder states: every decoder step scores every real source
//! position, takes the softmax, and returns the weighted sum of the encoder states (the
//! context).
//!
//! Shapes (time-major, as the engine): queries `q[T, B, Hq]` (decoder states), keys
//! `k[S, B, Hk]` (encoder states, also the values), source lengths `lens[B]`, context
//! `ctx[T, B, Hk]`. Scores (Luong et al. 2015):
//!
//! - [`Score::Dot`]: `e[t, b, s] = q[t, b] · k[s, b]` (needs `Hq = Hk`; no parameters);
//! - [`Score::General`]: `e[t, b, s] = q[t, b] · (W k[s, b])` with `W[Hq, Hk]` (PyTorch's
//!   `nn.Linear(Hk, Hq, bias=False)` weight);
//! - [`Score::Additive`] (Bahdanau et al. 2015): `e[t, b, s] = v · tanh(W [q[t, b]; k[s, b]] + c)`
//!   with `W[A, Hq + Hk]`, `c[A]`, `v[A]` (PyTorch's `nn.Linear(Hq + Hk, A)` over the
//!   concatenation, then `nn.Linear(A, 1, bias=False)`), A = [`Attention::hidden`].
//!
//! Positions `s ≥ lens[b]` are masked exactly: their weight is 0 and they receive no gradient,
//! so a sentence scores the same alone as padded in a batch. The matrix products go through
//! [`crate::linalg`], one per batch row over strided views of the time-major buffers.

use crate::error::{Error, Result};
use crate::linalg::{fit, matmul, matmul_rows, Accumulate, Mat, MatMut};

/// How a query scores a key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Score {
    /// `q · k`.
    Dot,
    /// `q · (W k)`.
    #[default]
    General,
    /// `v · tanh(W [q; k] + c)`.
    Additive,
}

/// An attention layer: sizes and scoring. Its parameters (`W[Hq, Hk]` for
/// [`Score::General`], none for [`Score::Dot`]) are a block the caller owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attention {
    /// Scoring function.
    pub score: Score,
    /// Query (decoder state) size `Hq`.
    pub query: usize,
    /// Key and value (encoder state) size `Hk`.
    pub key: usize,
    /// Size `A` of the additive score's hidden layer (0 for the others).
    pub hidden: usize,
}

/// The batch a pass runs on: `t` decoder steps, `s` source positions, one length per row.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape<'a> {
    /// Decoder steps `T`.
    pub t: usize,
    /// Source positions `S` (the longest source).
    pub s: usize,
    /// Real source length of each batch row, `1 ≤ lens[b] ≤ S`.
    pub lens: &'a [usize],
}

/// What [`Attention::forward`] keeps for [`Attention::backward`].
#[derive(Clone, Debug, Default)]
pub struct AttnCache {
    /// Attention weights `a[B, T, S]` (batch-major: row `b` is a `[T, S]` matrix); 0 on padding.
    pub weights: Vec<f32>,
    /// [`Score::General`]: `W k` as `[S, B, Hq]`. [`Score::Additive`]: `W_q q + c` as
    /// `[T, B, A]` followed by `W_k k` as `[S, B, A]`.
    pub proj: Vec<f32>,
    /// `tanh(W [q; k] + c)` as `[B, T, S, A]` ([`Score::Additive`] only; 0 on padding).
    pub hidden: Vec<f32>,
}

/// Buffers of [`Attention::backward`], allocated once and reused.
#[derive(Clone, Debug, Default)]
pub struct AttnWorkspace {
    /// `∂L/∂a`, then `∂L/∂e`: `[B, T, S]`.
    de: Vec<f32>,
    /// `∂L/∂(W k)`: `[S, B, Hq]`; for the additive score `∂L/∂(W_k k)`, `[S, B, A]`.
    dproj: Vec<f32>,
    /// For the additive score, `∂L/∂(W_q q + c)`: `[T, B, A]`.
    dqproj: Vec<f32>,
}

impl Attention {
    /// An attention layer; [`Score::Dot`] needs equal sizes, [`Score::Additive`] a hidden size
    /// `hidden` (ignored by the others).
    ///
    /// # Errors
    /// [`Error::Config`] for a zero size or a dot product of unequal sizes.
    pub fn new(score: Score, query: usize, key: usize, hidden: usize) -> Result<Self> {
        if query == 0 || key == 0 || (score == Score::Additive && hidden == 0) {
            return Err(Error::Config("attention sizes must be at least 1".into()));
        }
        let hidden = if score == Score::Additive { hidden } else { 0 };
        if score == Score::Dot && query != key {
            return Err(Error::Config(format!(
                "dot attention needs the decoder size ({query}) to equal the encoder output size ({key}); use general attention"
            )));
        }
        Ok(Attention {
            score,
            query,
            key,
            hidden,
        })
    }

    /// Length of the parameter block: 0 for [`Score::Dot`], `Hq·Hk` for [`Score::General`],
    /// `A·(Hq + Hk) + 2A` for [`Score::Additive`] (`W`, then `c`, then `v`).
    pub fn num_params(&self) -> usize {
        match self.score {
            Score::Dot => 0,
            Score::General => self.query * self.key,
            Score::Additive => self.hidden * (self.query + self.key + 2),
        }
    }

    fn check(&self, w: &[f32], q: &[f32], k: &[f32], sh: &AttnShape<'_>) -> Result<()> {
        let b = sh.lens.len();
        let bad = |m: String| Err(Error::Shape(m));
        if w.len() != self.num_params() {
            return bad(format!(
                "attention parameters: {} values, need {}",
                w.len(),
                self.num_params()
            ));
        }
        if q.len() != sh.t * b * self.query || k.len() != sh.s * b * self.key {
            return bad(format!(
                "attention inputs: q has {}, k has {} values for T={}, S={}, B={b}",
                q.len(),
                k.len(),
                sh.t,
                sh.s
            ));
        }
        if let Some(l) = sh.lens.iter().find(|&&l| l == 0 || l > sh.s) {
            return bad(format!("source length {l} outside 1..={}", sh.s));
        }
        Ok(())
    }

    /// Forward pass: `ctx[T, B, Hk]` (written) from `q[T, B, Hq]` and `k[S, B, Hk]`, keeping the
    /// weights (and `W k`) in `cache`. `w` is the parameter block.
    ///
    /// # Errors
    /// [`Error::Shape`] when a buffer or length does not fit `shape`.
    pub fn forward(
        &self,
        w: &[f32],
        q: &[f32],
        k: &[f32],
        shape: &AttnShape<'_>,
        ctx: &mut Vec<f32>,
        cache: &mut AttnCache,
    ) -> Result<()> {
        self.check(w, q, k, shape)?;
        let (t, s, b) = (shape.t, shape.s, shape.lens.len());
        let hk = self.key;
        fit(&mut cache.weights, b * t * s);
        match self.score {
            Score::Additive => self.additive_scores(w, q, k, shape, cache),
            _ => self.bilinear_scores(w, q, k, shape, cache),
        }
        fit(ctx, t * b * hk);
        for (r, &len) in shape.lens.iter().enumerate() {
            let a = &mut cache.weights[r * t * s..(r + 1) * t * s];
            for row in a.chunks_exact_mut(s) {
                softmax_prefix(row, len);
            }
            // ctx_r[T, Hk] = a_r[T, len] · k_r[len, Hk]
            matmul(
                MatMut::strided(&mut ctx[r * hk..], t, hk, b * hk),
                Mat::strided(a, t, len, s),
                Mat::strided(&k[r * hk..], len, hk, b * hk),
                Accumulate::Overwrite,
            );
        }
        Ok(())
    }

    /// Backward pass of the last [`Attention::forward`] on the same `q`, `k` and `shape`:
    /// from `dctx[T, B, Hk]`, accumulates (`+=`) `dq[T, B, Hq]`, `dk[S, B, Hk]` and `dw` (the
    /// parameter block's gradient).
    ///
    /// # Errors
    /// [`Error::Shape`] when a buffer does not fit.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        w: &[f32],
        q: &[f32],
        k: &[f32],
        shape: &AttnShape<'_>,
        cache: &AttnCache,
        dctx: &[f32],
        grads: AttnGrads<'_>,
        ws: &mut AttnWorkspace,
    ) -> Result<()> {
        self.check(w, q, k, shape)?;
        let (t, s, b) = (shape.t, shape.s, shape.lens.len());
        let hk = self.key;
        let AttnGrads { dq, dk, dw } = grads;
        if dctx.len() != t * b * hk
            || dq.len() != q.len()
            || dk.len() != k.len()
            || dw.len() != w.len()
        {
            return Err(Error::Shape("attention gradient buffers do not fit".into()));
        }
        fit(&mut ws.de, b * t * s);
        for (r, &len) in shape.lens.iter().enumerate() {
            let a = &cache.weights[r * t * s..(r + 1) * t * s];
            let de = &mut ws.de[r * t * s..(r + 1) * t * s];
            let dctx_r = Mat::strided(&dctx[r * hk..], t, hk, b * hk);
            // da[T, len] = dctx_r[T, Hk] · k_r[len, Hk]ᵀ
            matmul(
                MatMut::strided(de, t, len, s),
                dctx_r,
                Mat::strided(&k[r * hk..], len, hk, b * hk).t(),
                Accumulate::Overwrite,
            );
            // de = a ⊙ (da − Σ_s a·da), row by row
            for (d, a) in de.chunks_exact_mut(s).zip(a.chunks_exact(s)) {
                let dot: f64 = (0..len).map(|j| (a[j] * d[j]) as f64).sum();
                for j in 0..len {
                    d[j] = a[j] * (d[j] - dot as f32);
                }
            }
            // dk_r[len, Hk] += a_r[T, len]ᵀ · dctx_r[T, Hk]  (the values)
            matmul(
                MatMut::strided(&mut dk[r * hk..], len, hk, b * hk),
                Mat::strided(a, t, len, s).t(),
                dctx_r,
                Accumulate::Add,
            );
        }
        let grads = AttnGrads { dq, dk, dw };
        match self.score {
            Score::Additive => self.additive_backward(w, q, k, shape, cache, grads, ws),
            _ => self.bilinear_backward(w, q, k, shape, cache, grads, ws),
        }
        Ok(())
    }

    /// Raw scores `e` of [`Score::Dot`] and [`Score::General`] into `cache.weights` (real
    /// positions).
    fn bilinear_scores(
        &self,
        w: &[f32],
        q: &[f32],
        k: &[f32],
        sh: &AttnShape<'_>,
        cache: &mut AttnCache,
    ) {
        let (t, s, b) = (sh.t, sh.s, sh.lens.len());
        let (hq, hk) = (self.query, self.key);
        if self.score == Score::General {
            fit(&mut cache.proj, s * b * hq);
            matmul(
                MatMut::new(&mut cache.proj, s * b, hq),
                Mat::new(k, s * b, hk),
                Mat::new(w, hq, hk).t(),
                Accumulate::Overwrite,
            );
        }
        let keys: &[f32] = if self.score == Score::General {
            &cache.proj
        } else {
            k
        };
        for (r, &len) in sh.lens.iter().enumerate() {
            // e[T, len] = q_r[T, Hq] · keys_r[len, Hq]ᵀ
            matmul(
                MatMut::strided(&mut cache.weights[r * t * s..], t, len, s),
                Mat::strided(&q[r * hq..], t, hq, b * hq),
                Mat::strided(&keys[r * hq..], len, hq, b * hq).t(),
                Accumulate::Overwrite,
            );
        }
    }

    /// From `ws.de = ∂L/∂e`: the bilinear scores' share of `dq`, `dk` and `dW`.
    #[allow(clippy::too_many_arguments)]
    fn bilinear_backward(
        &self,
        w: &[f32],
        q: &[f32],
        k: &[f32],
        sh: &AttnShape<'_>,
        cache: &AttnCache,
        grads: AttnGrads<'_>,
        ws: &mut AttnWorkspace,
    ) {
        let (t, s, b) = (sh.t, sh.s, sh.lens.len());
        let (hq, hk) = (self.query, self.key);
        let AttnGrads { dq, dk, dw } = grads;
        let keys: &[f32] = if self.score == Score::General {
            &cache.proj
        } else {
            k
        };
        fit(&mut ws.dproj, s * b * hq);
        ws.dproj.fill(0.0);
        for (r, &len) in sh.lens.iter().enumerate() {
            let de = &ws.de[r * t * s..(r + 1) * t * s];
            // dq_r[T, Hq] += de[T, len] · keys_r[len, Hq]
            matmul(
                MatMut::strided(&mut dq[r * hq..], t, hq, b * hq),
                Mat::strided(de, t, len, s),
                Mat::strided(&keys[r * hq..], len, hq, b * hq),
                Accumulate::Add,
            );
            // dkeys_r[len, Hq] = de[T, len]ᵀ · q_r[T, Hq]
            matmul(
                MatMut::strided(&mut ws.dproj[r * hq..], len, hq, b * hq),
                Mat::strided(de, t, len, s).t(),
                Mat::strided(&q[r * hq..], t, hq, b * hq),
                Accumulate::Overwrite,
            );
        }
        match self.score {
            Score::Dot => dk.iter_mut().zip(&ws.dproj).for_each(|(d, p)| *d += p),
            // General (the additive score has its own backward).
            _ => {
                // proj = k Wᵀ: dk += dproj · W, dW += dprojᵀ · k
                matmul(
                    MatMut::new(dk, s * b, hk),
                    Mat::new(&ws.dproj, s * b, hq),
                    Mat::new(w, hq, hk),
                    Accumulate::Add,
                );
                matmul(
                    MatMut::new(dw, hq, hk),
                    Mat::new(&ws.dproj, s * b, hq).t(),
                    Mat::new(k, s * b, hk),
                    Accumulate::Add,
                );
            }
        }
    }
}

/// Bahdanau's additive score: `e = v · tanh(W_q q + W_k k + c)` with `W = [W_q W_k]`.
impl Attention {
    /// The parameter block's parts: `W[A, Hq + Hk]`, `c[A]`, `v[A]`.
    fn additive_parts<'w>(&self, w: &'w [f32]) -> (&'w [f32], &'w [f32], &'w [f32]) {
        let a = self.hidden;
        let (wm, rest) = w.split_at(a * (self.query + self.key));
        let (c, v) = rest.split_at(a);
        (wm, c, v)
    }

    /// Raw additive scores into `cache.weights` (real positions) and `tanh(…)` into
    /// `cache.hidden`; `W_q q + c` goes through `cache.proj`, `W_k k` through the end of it.
    fn additive_scores(
        &self,
        w: &[f32],
        q: &[f32],
        k: &[f32],
        sh: &AttnShape<'_>,
        cache: &mut AttnCache,
    ) {
        let (t, s, b) = (sh.t, sh.s, sh.lens.len());
        let (hq, hk, a) = (self.query, self.key, self.hidden);
        let (wm, c, v) = self.additive_parts(w);
        fit(&mut cache.proj, (t + s) * b * a);
        let (pq, pk) = cache.proj.split_at_mut(t * b * a);
        // pq[T·B, A] = q · W_qᵀ + c; pk[S·B, A] = k · W_kᵀ (batch-invariant products: a
        // decoding step's scores do not depend on the other rows)
        matmul_rows(
            MatMut::new(pq, t * b, a),
            Mat::new(q, t * b, hq),
            Mat::strided(wm, a, hq, hq + hk).t(),
            Accumulate::Overwrite,
        );
        pq.chunks_exact_mut(a)
            .for_each(|row| row.iter_mut().zip(c).for_each(|(x, c)| *x += c));
        matmul_rows(
            MatMut::new(pk, s * b, a),
            Mat::new(k, s * b, hk),
            Mat::strided(&wm[hq..], a, hk, hq + hk).t(),
            Accumulate::Overwrite,
        );
        fit(&mut cache.hidden, b * t * s * a);
        cache.hidden.fill(0.0);
        for (r, &len) in sh.lens.iter().enumerate() {
            for ti in 0..t {
                let qrow = &pq[(ti * b + r) * a..][..a];
                for si in 0..len {
                    let krow = &pk[(si * b + r) * a..][..a];
                    let at = ((r * t + ti) * s + si) * a;
                    let u = &mut cache.hidden[at..at + a];
                    let mut e = 0.0f64;
                    for j in 0..a {
                        u[j] = (qrow[j] + krow[j]).tanh();
                        e += (v[j] * u[j]) as f64;
                    }
                    cache.weights[(r * t + ti) * s + si] = e as f32;
                }
            }
        }
    }

    /// From `ws.de = ∂L/∂e`: the additive score's share of `dq`, `dk`, `dW`, `dc` and `dv`.
    #[allow(clippy::too_many_arguments)]
    fn additive_backward(
        &self,
        w: &[f32],
        q: &[f32],
        k: &[f32],
        sh: &AttnShape<'_>,
        cache: &AttnCache,
        grads: AttnGrads<'_>,
        ws: &mut AttnWorkspace,
    ) {
        let (t, s, b) = (sh.t, sh.s, sh.lens.len());
        let (hq, hk, a) = (self.query, self.key, self.hidden);
        let (wm, _, v) = self.additive_parts(w);
        let AttnGrads { dq, dk, dw } = grads;
        let (dwm, rest) = dw.split_at_mut(a * (hq + hk));
        let (dc, dv) = rest.split_at_mut(a);
        fit(&mut ws.dqproj, t * b * a);
        fit(&mut ws.dproj, s * b * a);
        ws.dqproj.fill(0.0);
        ws.dproj.fill(0.0);
        for (r, &len) in sh.lens.iter().enumerate() {
            for ti in 0..t {
                for si in 0..len {
                    let g = ws.de[(r * t + ti) * s + si];
                    let u = &cache.hidden[((r * t + ti) * s + si) * a..][..a];
                    let dpq = &mut ws.dqproj[(ti * b + r) * a..][..a];
                    for j in 0..a {
                        dv[j] += g * u[j];
                        let dz = g * v[j] * (1.0 - u[j] * u[j]);
                        dpq[j] += dz;
                        ws.dproj[(si * b + r) * a + j] += dz;
                    }
                }
            }
        }
        for row in ws.dqproj.chunks_exact(a) {
            dc.iter_mut().zip(row).for_each(|(d, x)| *d += x);
        }
        // dq += dpq · W_q, dW_q += dpqᵀ · q; dk += dpk · W_k, dW_k += dpkᵀ · k
        let parts = [(&ws.dqproj, q, 0, hq, t), (&ws.dproj, k, hq, hk, s)];
        let (dq_all, dk_all) = (dq, dk);
        for (i, (dp, x, off, h, n)) in parts.into_iter().enumerate() {
            let dx: &mut [f32] = if i == 0 { &mut *dq_all } else { &mut *dk_all };
            matmul(
                MatMut::new(dx, n * b, h),
                Mat::new(dp, n * b, a),
                Mat::strided(&wm[off..], a, h, hq + hk),
                Accumulate::Add,
            );
            matmul(
                MatMut::strided(&mut dwm[off..], a, h, hq + hk),
                Mat::new(dp, n * b, a).t(),
                Mat::new(x, n * b, h),
                Accumulate::Add,
            );
        }
    }
}

/// Gradient buffers of [`Attention::backward`], accumulated into.
pub struct AttnGrads<'a> {
    /// `dq[T, B, Hq]`.
    pub dq: &'a mut [f32],
    /// `dk[S, B, Hk]`.
    pub dk: &'a mut [f32],
    /// The parameter block's gradient (`dW[Hq, Hk]`, or empty).
    pub dw: &'a mut [f32],
}

/// Softmax over `row[..len]` in place (f64 sums); `row[len..]` set to 0.
fn softmax_prefix(row: &mut [f32], len: usize) {
    let (real, pad) = row.split_at_mut(len);
    let max = real.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0f64;
    for v in real.iter_mut() {
        *v = (*v - max).exp();
        sum += *v as f64;
    }
    let inv = (1.0 / sum) as f32;
    real.iter_mut().for_each(|v| *v *= inv);
    pad.fill(0.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dropout::rng_from_seed;
    use rand::RngExt;

    fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
        let mut r = rng_from_seed(seed);
        (0..n).map(|_| r.random_range(-1.0..1.0)).collect()
    }

    /// `L = Σ ctx ⊙ R` for a fixed random `R`.
    fn loss(
        att: &Attention,
        w: &[f32],
        q: &[f32],
        k: &[f32],
        sh: &AttnShape<'_>,
        r: &[f32],
    ) -> f64 {
        let mut ctx = Vec::new();
        att.forward(w, q, k, sh, &mut ctx, &mut AttnCache::default())
            .unwrap();
        ctx.iter()
            .zip(r)
            .map(|(c, r)| (*c as f64) * (*r as f64))
            .sum()
    }

    #[test]
    fn gradients_match_finite_differences_with_padding() {
        for score in [Score::Dot, Score::General, Score::Additive] {
            let (hq, hk) = match score {
                Score::Dot => (4, 4),
                _ => (3, 5),
            };
            let att = Attention::new(score, hq, hk, 3).unwrap();
            let lens = [4, 2, 3];
            let sh = AttnShape {
                t: 3,
                s: 4,
                lens: &lens,
            };
            let b = lens.len();
            let w = rand_vec(att.num_params(), 1);
            let q = rand_vec(sh.t * b * hq, 2);
            let k = rand_vec(sh.s * b * hk, 3);
            let r = rand_vec(sh.t * b * hk, 4);
            let (mut ctx, mut cache) = (Vec::new(), AttnCache::default());
            att.forward(&w, &q, &k, &sh, &mut ctx, &mut cache).unwrap();
            let (mut dq, mut dk, mut dw) =
                (vec![0.0; q.len()], vec![0.0; k.len()], vec![0.0; w.len()]);
            let grads = AttnGrads {
                dq: &mut dq,
                dk: &mut dk,
                dw: &mut dw,
            };
            att.backward(
                &w,
                &q,
                &k,
                &sh,
                &cache,
                &r,
                grads,
                &mut AttnWorkspace::default(),
            )
            .unwrap();
            let eps = 1e-2f32;
            let fd = |which: usize, i: usize| {
                let eval = |d: f32| {
                    let (mut w3, mut q3, mut k3) = (w.clone(), q.clone(), k.clone());
                    match which {
                        0 => q3[i] += d,
                        1 => k3[i] += d,
                        _ => w3[i] += d,
                    }
                    loss(&att, &w3, &q3, &k3, &sh, &r)
                };
                (eval(eps) - eval(-eps)) / (2.0 * eps as f64)
            };
            for (which, analytic) in [(0, &dq), (1, &dk), (2, &dw)] {
                for (i, &a) in analytic.iter().enumerate() {
                    let n = fd(which, i);
                    assert!(
                        (a as f64 - n).abs() < 2e-3,
                        "{score:?} {which} {i}: {a} vs {n}"
                    );
                }
            }
            // Padded source positions get no weight and no gradient.
            for (rb, &len) in lens.iter().enumerate() {
                for s in len..sh.s {
                    assert!(dk[(s * b + rb) * hk..][..hk].iter().all(|&v| v == 0.0));
                    for t in 0..sh.t {
                        assert_eq!(cache.weights[(rb * sh.t + t) * sh.s + s], 0.0);
                    }
                }
            }
        }
    }

    #[test]
    fn a_sentence_alone_scores_as_padded_in_a_batch() {
        for score in [Score::General, Score::Additive] {
            let att = Attention::new(score, 3, 2, 4).unwrap();
            let w = rand_vec(att.num_params(), 5);
            let (t, s) = (2, 5);
            let lens = [5, 2];
            let q = rand_vec(t * 2 * 3, 6);
            let k = rand_vec(s * 2 * 2, 7);
            let mut ctx = Vec::new();
            let sh = AttnShape { t, s, lens: &lens };
            att.forward(&w, &q, &k, &sh, &mut ctx, &mut AttnCache::default())
                .unwrap();
            // Row 1 alone: its 2 real positions, no padding.
            let q1: Vec<f32> = (0..t)
                .flat_map(|i| q[(i * 2 + 1) * 3..][..3].to_vec())
                .collect();
            let k1: Vec<f32> = (0..2)
                .flat_map(|i| k[(i * 2 + 1) * 2..][..2].to_vec())
                .collect();
            let mut alone = Vec::new();
            let sh1 = AttnShape {
                t,
                s: 2,
                lens: &[2],
            };
            att.forward(&w, &q1, &k1, &sh1, &mut alone, &mut AttnCache::default())
                .unwrap();
            for i in 0..t {
                assert_eq!(&ctx[(i * 2 + 1) * 2..][..2], &alone[i * 2..][..2]);
            }
        }
    }

    #[test]
    fn impossible_sizes_are_refused() {
        assert!(Attention::new(Score::Dot, 3, 4, 0).is_err());
        assert!(Attention::new(Score::General, 0, 4, 0).is_err());
        assert!(Attention::new(Score::Additive, 3, 4, 0).is_err());
        let att = Attention::new(Score::Dot, 2, 2, 0).unwrap();
        let sh = AttnShape {
            t: 1,
            s: 2,
            lens: &[3],
        };
        let e = att
            .forward(
                &[],
                &[0.0; 2],
                &[0.0; 4],
                &sh,
                &mut Vec::new(),
                &mut AttnCache::default(),
            )
            .unwrap_err();
        assert!(
            e.to_string().contains("source length 3 outside 1..=2"),
            "{e}"
        );
    }
}

//! Sequence tagger: a label for every token (Huang et al. 2015; Lample et al. 2016).
//!
//! ```text
//! word ids[T, B] (lowercased) → Embedding(V, E)          ┐
//! casing[T, B] → one-hot [C = 4]                           ├ concat → dropout → L-layer
//! chars of each word → Embedding(Vc, Ec) → BiLSTM → [h→; h←] (2·Hc) ┘   bidirectional LSTM/GRU
//! → dropout → Linear(2·H, K) → emissions e[T, B, K] → softmax per token, or a linear-chain CRF
//! ```
//!
//! The word-level encoder and the character encoder are padding-exact [`SeqEncoder`]s: a
//! sentence alone is tagged as in a padded batch, and a word's character features do not depend
//! on the other words of the batch. The loss is the mean over the batch's real tokens
//! ([`Head::Softmax`]) or the CRF's negative log-likelihood summed over sentences and divided by
//! the batch's real tokens ([`Head::Crf`]), so both report per-token figures.
//!
//! Parameters are one block in PyTorch names: `word_embedding.weight [V, E]`,
//! `char_embedding.weight [Vc, Ec]`, `char_rnn.*`, `rnn.*`, `emissions.weight [K, 2·H]`,
//! `emissions.bias [K]`, and for the CRF `crf.transitions [K, K]`, `crf.start [K]`,
//! `crf.end [K]`.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::dropout::{rng_from_seed, DropoutKind, RowRng};
use crate::error::{Error, Result};
use crate::linalg::fit;
use crate::model::crf::{Constraints, Crf, CrfWorkspace};
use crate::model::embedding;
use crate::model::embedding::check_embed;
use crate::model::encoder::{zero_padding, EncoderCache, EncoderWorkspace, SeqEncoder};
use crate::model::encoder_head::{
    check_encoder, init_recurrent, EncoderHead, EncoderHeadCache, EncoderHeadWorkspace,
};
use crate::model::layout::check_backward;
use crate::model::layout::model_accessors;
use crate::model::layout::ParamLayout;
use crate::rnn::{CellKind, Direction, RnnConfig};

/// Width of the casing feature: all lower case, all upper case, capitalised, other.
pub const CASES: usize = 4;

/// The casing class of a word (an index below [`CASES`]).
pub fn casing(word: &str) -> u32 {
    let letters: Vec<char> = word.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.is_empty() {
        return 3;
    }
    if letters.iter().all(|c| c.is_lowercase()) {
        0
    } else if letters.iter().all(|c| c.is_uppercase()) {
        1
    } else if word.chars().next().is_some_and(char::is_uppercase) {
        2
    } else {
        3
    }
}

/// What turns emissions into tags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Head {
    /// An independent softmax per token.
    Softmax,
    /// A linear-chain CRF (Viterbi decoding).
    #[default]
    Crf,
}

/// Shape of a tagger. `validate()` before use.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaggerConfig {
    /// Word vocabulary `V` (id 0 padding, 1 unknown).
    pub words: usize,
    /// Character vocabulary `Vc` (id 0 padding, 1 unknown); unused when `char_hidden` is 0.
    pub chars: usize,
    /// Word embedding width `E`.
    pub embed: usize,
    /// Character embedding width `Ec`.
    pub char_embed: usize,
    /// Character BiLSTM units per direction `Hc` (0: no character features).
    pub char_hidden: usize,
    /// Recurrent cell (both encoders).
    pub cell: CellKind,
    /// Word-level units per direction `H`.
    pub hidden: usize,
    /// Word-level layers `L`.
    pub layers: usize,
    /// Dropout on the encoder's input and output.
    pub dropout: f32,
    /// How its masks are drawn over a sentence (standard in runs written before this field).
    #[serde(default)]
    pub dropout_kind: DropoutKind,
    /// Tags `K`.
    pub tags: usize,
    /// Softmax or CRF.
    pub head: Head,
}

impl TaggerConfig {
    /// Checks sizes and dropout.
    pub fn validate(&self) -> Result<()> {
        if self.words < 2 || self.tags < 2 || (self.char_hidden > 0 && self.chars < 2) {
            return Err(Error::Config(format!(
                "a tagger needs at least 2 words, 2 characters and 2 tags, got {}, {} and {}",
                self.words, self.chars, self.tags
            )));
        }
        check_embed(self.embed)?;
        if self.char_hidden > 0 {
            check_embed(self.char_embed)?;
        }
        check_encoder(self.dropout, &self.rnn_config())
    }

    /// Width of the word-level encoder's input: `E + 4 + 2·Hc`.
    pub fn input(&self) -> usize {
        self.embed + CASES + 2 * self.char_hidden
    }

    /// The word-level encoder.
    pub fn rnn_config(&self) -> RnnConfig {
        RnnConfig {
            cell: self.cell,
            input_size: self.input(),
            hidden_size: self.hidden,
            num_layers: self.layers,
            direction: Direction::Bidirectional,
        }
    }

    /// The character encoder (one bidirectional layer).
    pub fn char_config(&self) -> RnnConfig {
        RnnConfig {
            cell: self.cell,
            input_size: self.char_embed.max(1),
            hidden_size: self.char_hidden.max(1),
            num_layers: 1,
            direction: Direction::Bidirectional,
        }
    }
}

/// A batch of sentences: word ids, casing and gold tags `[T, B]` (time-major), the characters of
/// every real token, and lengths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagBatch {
    /// Word ids `[T, B]` (0 at padding).
    pub words: Vec<u32>,
    /// Casing classes `[T, B]`.
    pub cases: Vec<u32>,
    /// Gold tags `[T, B]` (0 at padding; ignored without a loss).
    pub tags: Vec<u32>,
    /// Sentence lengths `[B]`.
    pub lens: Vec<usize>,
    /// `T`.
    pub t: usize,
    /// Character ids of every real token, time-major token order (`t`, then `b`), each word's
    /// characters in order.
    pub chars: Vec<Vec<u32>>,
}

impl TagBatch {
    /// Batch size.
    pub fn b(&self) -> usize {
        self.lens.len()
    }

    /// Real tokens.
    pub fn tokens(&self) -> usize {
        self.lens.iter().sum()
    }

    /// Flat indices `t·B + b` of the real tokens, in the order of [`TagBatch::chars`].
    pub fn real(&self) -> impl Iterator<Item = usize> + '_ {
        let b = self.b();
        (0..self.t).flat_map(move |t| {
            (0..b)
                .filter(move |&j| t < self.lens[j])
                .map(move |j| t * b + j)
        })
    }
}

/// A tagger: configuration, encoders, CRF, layout. Parameters are owned by the caller.
#[derive(Clone, Debug)]
pub struct Tagger {
    config: TaggerConfig,
    /// Dropout, word-level encoder, dropout, `emissions` layer (`rnn.*`, `emissions.*`).
    body: EncoderHead,
    char_encoder: Option<SeqEncoder>,
    crf: Option<Crf>,
    params: ParamLayout,
    word_emb: Range<usize>,
    char_emb: Range<usize>,
    char_rnn: Range<usize>,
    /// The body's range in the parameter block.
    body_p: Range<usize>,
    crf_p: Range<usize>,
}

/// What a training forward pass keeps for backward.
#[derive(Debug, Default)]
pub struct TaggerCache {
    batch: TagBatch,
    /// Character batch: ids `[Lc, N]`, lengths `[N]`, encoder cache.
    char_ids: Vec<u32>,
    char_lens: Vec<usize>,
    char_t: usize,
    char_enc: EncoderCache,
    /// Dropout masks, word-level encoder cache and output of the training pass.
    body: EncoderHeadCache,
    /// Emissions `[T, B, K]`; for the softmax head, `∂L/∂emissions` once the loss is taken.
    emissions: Vec<f32>,
    /// `∂L/∂emissions` of the CRF head.
    demissions: Vec<f32>,
    /// `∂L/∂crf` parameters.
    dcrf: Vec<f32>,
}

/// Scratch buffers, reused across calls.
#[derive(Debug, Default)]
pub struct TaggerWorkspace {
    body: EncoderHeadWorkspace,
    char_ws: EncoderWorkspace,
    crf: CrfWorkspace,
    /// Encoder input `[T, B, I]`.
    x: Vec<f32>,
    char_x: Vec<f32>,
    char_out: Vec<f32>,
    char_hn: Vec<f32>,
    dchar_out: Vec<f32>,
    dchar_hn: Vec<f32>,
    dchar_x: Vec<f32>,
}

crate::model::trainable::trainable!(Tagger, TagBatch, TaggerCache, TaggerWorkspace);

impl Tagger {
    /// A tagger for `config` with CRF `constraints` (sized `K`; ignored by the softmax head).
    pub fn new(config: TaggerConfig, constraints: Constraints) -> Result<Self> {
        config.validate()?;
        let c = &config;
        let body =
            EncoderHead::new(c.rnn_config(), c.dropout, c.tags)?.with_dropout_kind(c.dropout_kind);
        let char_encoder = match c.char_hidden {
            0 => None,
            _ => Some(SeqEncoder::new(c.char_config())?),
        };
        let crf = match c.head {
            Head::Crf => Some(Crf::new(c.tags, constraints)?),
            Head::Softmax => None,
        };
        let mut p = ParamLayout::new();
        let word_emb = p.push("word_embedding.weight", vec![c.words, c.embed]);
        let (char_emb, char_rnn) = match &char_encoder {
            Some(e) => (
                p.push("char_embedding.weight", vec![c.chars, c.char_embed]),
                p.push_rnn("char_rnn", e.layout()),
            ),
            None => (p.len()..p.len(), p.len()..p.len()),
        };
        let body_p = body.push_params(&mut p, "rnn", "emissions");
        let crf_p = match c.head {
            Head::Crf => {
                let a = p.push("crf.transitions", vec![c.tags, c.tags]);
                p.push("crf.start", vec![c.tags]);
                let e = p.push("crf.end", vec![c.tags]);
                a.start..e.end
            }
            Head::Softmax => p.len()..p.len(),
        };
        Ok(Tagger {
            config,
            body,
            char_encoder,
            crf,
            params: p,
            word_emb,
            char_emb,
            char_rnn,
            body_p,
            crf_p,
        })
    }

    model_accessors!(TaggerConfig, "Every tensor of the parameter block.");

    /// Initial weights: embeddings `N(0, 0.1²)` (padding rows zero), recurrent layers
    /// `U(±1/√H)` with LSTM forget-gate bias 1, the emission layer as `nn.Linear`, CRF scores 0.
    pub fn init_params(&self, seed: u64) -> Result<Vec<f32>> {
        let c = &self.config;
        let mut p = vec![0.0; self.num_params()];
        let mut rng = rng_from_seed(seed);
        for (r, e) in [(&self.word_emb, c.embed), (&self.char_emb, c.char_embed)] {
            if r.is_empty() {
                continue;
            }
            embedding::init_normal(&mut p[r.start + e..r.end], 0.1, &mut rng);
        }
        if self.char_encoder.is_some() {
            let char_rnn = &mut p[self.char_rnn.clone()];
            init_recurrent(&c.char_config(), char_rnn, seed.wrapping_add(2))?;
        }
        let body = &mut p[self.body_p.clone()];
        self.body.init(body, seed.wrapping_add(1), &mut rng)?;
        Ok(p)
    }

    fn check(&self, params: &[f32], batch: &TagBatch) -> Result<()> {
        self.params.check_block("parameter block", params.len())?;
        let (b, t) = (batch.b(), batch.t);
        let bad = |m: &str| Err(Error::Shape(m.to_string()));
        if b == 0 || t == 0 || batch.lens.iter().any(|&l| l == 0 || l > t) {
            return bad("a tag batch needs sentences of 1..=T tokens");
        }
        if batch.words.len() != t * b || batch.cases.len() != t * b || batch.tags.len() != t * b {
            return bad("word, casing and tag ids must be [T, B]");
        }
        let c = &self.config;
        if batch.words.iter().any(|&w| w as usize >= c.words)
            || batch.cases.iter().any(|&w| w as usize >= CASES)
            || batch.tags.iter().any(|&w| w as usize >= c.tags)
        {
            return bad("a word, casing or tag id is out of range");
        }
        if self.char_encoder.is_some()
            && (batch.chars.len() != batch.tokens()
                || batch
                    .chars
                    .iter()
                    .any(|w| w.is_empty() || w.iter().any(|&ch| ch as usize >= c.chars)))
        {
            return bad("every real token needs one or more characters in the vocabulary");
        }
        Ok(())
    }

    /// The encoder input `ws.x[T, B, I]`: word embedding, casing one-hot, character features.
    fn input(
        &self,
        params: &[f32],
        batch: &TagBatch,
        cache: &mut TaggerCache,
        ws: &mut TaggerWorkspace,
        rng: Option<&mut RowRng>,
    ) -> Result<()> {
        let c = &self.config;
        let (b, t, e, i_w) = (batch.b(), batch.t, c.embed, c.input());
        fit(&mut ws.x, t * b * i_w);
        ws.x.fill(0.0);
        for (n, row) in ws.x.chunks_exact_mut(i_w).enumerate() {
            let w = batch.words[n] as usize;
            row[..e].copy_from_slice(&params[self.word_emb.start + w * e..][..e]);
            row[e + batch.cases[n] as usize] = 1.0;
        }
        if let Some(ce) = &self.char_encoder {
            let (ec, hc) = (c.char_embed, c.char_hidden);
            let n = batch.tokens();
            cache.char_t = batch.chars.iter().map(Vec::len).max().unwrap_or(1);
            let lt = cache.char_t;
            cache.char_lens.clear();
            cache.char_lens.extend(batch.chars.iter().map(Vec::len));
            cache.char_ids.clear();
            cache.char_ids.resize(lt * n, 0);
            for (j, w) in batch.chars.iter().enumerate() {
                for (s, &ch) in w.iter().enumerate() {
                    cache.char_ids[s * n + j] = ch;
                }
            }
            fit(&mut ws.char_x, lt * n * ec);
            embedding::forward(
                &params[self.char_emb.clone()],
                &cache.char_ids,
                &mut ws.char_x,
                ec,
            );
            zero_padding(&mut ws.char_x, ec, &cache.char_lens);
            let p = &params[self.char_rnn.clone()];
            match rng {
                Some(r) => ce.forward_train(
                    p,
                    &ws.char_x,
                    &cache.char_lens,
                    lt,
                    &mut ws.char_out,
                    &mut ws.char_hn,
                    &mut cache.char_enc,
                    &mut ws.char_ws,
                    r,
                )?,
                None => ce.forward_infer(
                    p,
                    &ws.char_x,
                    &cache.char_lens,
                    lt,
                    &mut ws.char_out,
                    &mut ws.char_hn,
                    &mut ws.char_ws,
                )?,
            }
            // h_n[2, N, Hc]: the forward state, then the reverse one, into the token's row.
            for (k, flat) in batch.real().enumerate() {
                let row = &mut ws.x[flat * i_w + e + CASES..(flat + 1) * i_w];
                row[..hc].copy_from_slice(&ws.char_hn[k * hc..(k + 1) * hc]);
                row[hc..].copy_from_slice(&ws.char_hn[(n + k) * hc..(n + k + 1) * hc]);
            }
        }
        zero_padding(&mut ws.x, i_w, &batch.lens);
        Ok(())
    }

    /// Emissions `[T, B, K]` into `cache.emissions`: the shared forward pass. With `rng`, a
    /// training pass (dropout, caches for backward).
    fn emissions(
        &self,
        params: &[f32],
        batch: &TagBatch,
        cache: &mut TaggerCache,
        ws: &mut TaggerWorkspace,
        mut rng: Option<&mut RowRng>,
    ) -> Result<()> {
        self.check(params, batch)?;
        cache.batch.clone_from(batch);
        self.input(params, batch, cache, ws, rng.as_deref_mut())?;
        fit(&mut cache.emissions, batch.t * batch.b() * self.config.tags);
        self.body.forward(
            &params[self.body_p.clone()],
            &mut ws.x,
            &batch.lens,
            batch.t,
            &mut cache.emissions,
            rng.map(|r| (&mut cache.body, r)),
            &mut ws.body,
        )
    }

    /// Training forward pass: returns the summed loss over the batch (per-token cross-entropy,
    /// or the CRF's negative log-likelihood per sentence) and keeps, for [`Tagger::backward`],
    /// the gradient of `scale ·` that sum.
    pub fn forward_train(
        &self,
        params: &[f32],
        batch: &TagBatch,
        scale: f32,
        cache: &mut TaggerCache,
        ws: &mut TaggerWorkspace,
        rng: &mut RowRng,
    ) -> Result<f64> {
        self.emissions(params, batch, cache, ws, Some(rng))?;
        self.loss(params, scale, cache, ws)
    }

    /// The summed loss of the cached emissions; with a nonzero `scale`, also its gradient.
    fn loss(
        &self,
        params: &[f32],
        scale: f32,
        cache: &mut TaggerCache,
        ws: &mut TaggerWorkspace,
    ) -> Result<f64> {
        let batch = &cache.batch;
        let (b, t, k) = (batch.b(), batch.t, self.config.tags);
        match &self.crf {
            Some(crf) => {
                fit(&mut cache.demissions, t * b * k);
                cache.demissions.fill(0.0);
                fit(&mut cache.dcrf, crf.num_params());
                cache.dcrf.fill(0.0);
                crf.nll(
                    &params[self.crf_p.clone()],
                    &cache.emissions,
                    &batch.tags,
                    &batch.lens,
                    t,
                    Some((&mut cache.demissions, &mut cache.dcrf, scale)),
                    &mut ws.crf,
                )
            }
            None => {
                fit(&mut cache.demissions, t * b * k);
                cache.demissions.fill(0.0);
                let mut total = 0.0f64;
                for flat in batch.real() {
                    let row = &cache.emissions[flat * k..(flat + 1) * k];
                    let m = crate::model::softmax::row_max(row);
                    let sum: f64 = row.iter().map(|v| ((v - m) as f64).exp()).sum();
                    let y = batch.tags[flat] as usize;
                    total += sum.ln() + (m - row[y]) as f64;
                    let d = &mut cache.demissions[flat * k..(flat + 1) * k];
                    for (j, v) in row.iter().enumerate() {
                        let p = ((v - m) as f64).exp() / sum;
                        d[j] = (scale as f64 * (p - f64::from(u8::from(j == y)))) as f32;
                    }
                }
                Ok(total)
            }
        }
    }

    /// Backward pass of the last [`Tagger::forward_train`]: accumulates (`+=`) into `grads`.
    pub fn backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        cache: &TaggerCache,
        ws: &mut TaggerWorkspace,
    ) -> Result<()> {
        check_backward(grads.len(), self.num_params(), cache.batch.b())?;
        let c = &self.config;
        let batch = &cache.batch;
        let (i_w, e) = (c.input(), c.embed);
        if self.crf.is_some() {
            grads[self.crf_p.clone()]
                .iter_mut()
                .zip(&cache.dcrf)
                .for_each(|(g, d)| *g += d);
        }
        let r = self.body_p.clone();
        let p = &params[r.clone()];
        let demissions = &cache.demissions;
        let dx = self
            .body
            .backward(p, &mut grads[r], &cache.body, demissions, &mut ws.body)?;
        // Word embeddings (the padding row never learns).
        for (n, row) in dx.chunks_exact(i_w).enumerate() {
            let w = batch.words[n] as usize;
            if w == 0 {
                continue;
            }
            grads[self.word_emb.start + w * e..][..e]
                .iter_mut()
                .zip(&row[..e])
                .for_each(|(g, d)| *g += d);
        }
        if let Some(ce) = &self.char_encoder {
            let (ec, hc, n, lt) = (c.char_embed, c.char_hidden, batch.tokens(), cache.char_t);
            fit(&mut ws.dchar_hn, 2 * n * hc);
            for (kk, flat) in batch.real().enumerate() {
                let row = &dx[flat * i_w + e + CASES..(flat + 1) * i_w];
                ws.dchar_hn[kk * hc..(kk + 1) * hc].copy_from_slice(&row[..hc]);
                ws.dchar_hn[(n + kk) * hc..(n + kk + 1) * hc].copy_from_slice(&row[hc..]);
            }
            fit(&mut ws.dchar_out, lt * n * 2 * hc);
            ws.dchar_out.fill(0.0);
            fit(&mut ws.dchar_x, lt * n * ec);
            ce.backward(
                &params[self.char_rnn.clone()],
                &mut grads[self.char_rnn.clone()],
                &cache.char_enc,
                &ws.dchar_out,
                Some(&ws.dchar_hn),
                &mut ws.dchar_x,
                &mut ws.char_ws,
            )?;
            embedding::backward(
                &ws.dchar_x,
                &cache.char_ids,
                &mut grads[self.char_emb.clone()],
                ec,
            );
            grads[self.char_emb.start..self.char_emb.start + ec].fill(0.0);
        }
        Ok(())
    }

    /// The predicted tags `[T, B]` of a batch (inference, no dropout): the CRF's Viterbi path, or
    /// each token's most probable tag. Padding steps hold 0.
    pub fn predict(
        &self,
        params: &[f32],
        batch: &TagBatch,
        out: &mut Vec<u32>,
        cache: &mut TaggerCache,
        ws: &mut TaggerWorkspace,
    ) -> Result<()> {
        self.emissions(params, batch, cache, ws, None)?;
        let crf = self.crf_params(params);
        self.decode(
            crf,
            &cache.emissions,
            &batch.lens,
            batch.t,
            out,
            &mut ws.crf,
        )
    }

    /// The tags `out[T, B]` (resized; padding steps 0) that emissions `e[T, B, K]` of rows of
    /// `lens` decode to: the Viterbi path under the CRF block `crf` (see
    /// [`Tagger::crf_params`]), or each token's highest score for the softmax head (`crf`
    /// unused).
    ///
    /// # Errors
    /// [`Error::Shape`] for buffers that do not fit.
    pub fn decode(
        &self,
        crf: &[f32],
        e: &[f32],
        lens: &[usize],
        t: usize,
        out: &mut Vec<u32>,
        ws: &mut CrfWorkspace,
    ) -> Result<()> {
        let (b, k) = (lens.len(), self.config.tags);
        if e.len() != t * b * k || lens.iter().any(|&l| l > t) {
            return Err(Error::Shape(format!(
                "emissions: {} values for {b} rows of at most {t} steps and {k} tags",
                e.len()
            )));
        }
        out.clear();
        out.resize(t * b, 0);
        match &self.crf {
            Some(head) => head.viterbi(crf, e, lens, t, out, ws),
            None => {
                for (j, &len) in lens.iter().enumerate() {
                    for s in 0..len {
                        let flat = s * b + j;
                        let row = &e[flat * k..(flat + 1) * k];
                        out[flat] = crate::model::softmax::argmax(row) as u32;
                    }
                }
                Ok(())
            }
        }
    }

    /// The CRF's block of `params` (`crf.transitions`, `crf.start`, `crf.end`, in that order);
    /// empty for the softmax head.
    pub fn crf_params<'a>(&self, params: &'a [f32]) -> &'a [f32] {
        &params[self.crf_p.clone()]
    }

    /// Emissions `[T, B, K]` of a batch without dropout into `out` (resized): the per-token
    /// scores that [`Tagger::predict`] decodes.
    pub fn scores(
        &self,
        params: &[f32],
        batch: &TagBatch,
        out: &mut Vec<f32>,
        cache: &mut TaggerCache,
        ws: &mut TaggerWorkspace,
    ) -> Result<()> {
        self.emissions(params, batch, cache, ws, None)?;
        out.clone_from(&cache.emissions);
        Ok(())
    }

    /// The CRF head, if the tagger has one.
    pub fn crf(&self) -> Option<&Crf> {
        self.crf.as_ref()
    }

    /// The summed loss of a batch without dropout (evaluation).
    pub fn eval_loss(
        &self,
        params: &[f32],
        batch: &TagBatch,
        cache: &mut TaggerCache,
        ws: &mut TaggerWorkspace,
    ) -> Result<f64> {
        self.emissions(params, batch, cache, ws, None)?;
        self.loss(params, 0.0, cache, ws)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{check_gradients, FdCheck};
    use crate::rnn::GruVariant;
    use rand::RngExt;

    fn cfg(head: Head, char_hidden: usize, cell: CellKind, layers: usize) -> TaggerConfig {
        TaggerConfig {
            words: 9,
            chars: 7,
            embed: 3,
            char_embed: 2,
            char_hidden,
            cell,
            hidden: 3,
            layers,
            dropout: 0.0,
            dropout_kind: DropoutKind::Standard,
            tags: 3,
            head,
        }
    }

    fn batch(sents: &[&[(u32, u32, &[u32])]], tags: &[&[u32]]) -> TagBatch {
        let b = sents.len();
        let t = sents.iter().map(|s| s.len()).max().unwrap();
        let mut out = TagBatch {
            words: vec![0; t * b],
            cases: vec![0; t * b],
            tags: vec![0; t * b],
            lens: sents.iter().map(|s| s.len()).collect(),
            t,
            chars: Vec::new(),
        };
        for (j, s) in sents.iter().enumerate() {
            for (i, &(w, case, _)) in s.iter().enumerate() {
                out.words[i * b + j] = w;
                out.cases[i * b + j] = case;
                out.tags[i * b + j] = tags[j][i];
            }
        }
        for flat in out.real().collect::<Vec<_>>() {
            let (i, j) = (flat / b, flat % b);
            out.chars.push(sents[j][i].2.to_vec());
        }
        out
    }

    fn sample() -> TagBatch {
        batch(
            &[
                &[(2, 0, &[2, 3]), (5, 2, &[4, 5, 6]), (3, 1, &[2])],
                &[(7, 3, &[6, 6, 5, 4])],
                &[(4, 0, &[3, 2]), (1, 0, &[5])],
            ],
            &[&[0, 1, 2], &[1], &[0, 1]],
        )
    }

    /// IOB2 over O, B, I: I never starts a sentence nor follows O.
    fn constraints() -> Constraints {
        let mut c = Constraints::none(3);
        c.start[2] = false;
        c.transitions[2] = false;
        c
    }

    #[test]
    fn gradients_match_finite_differences() {
        let gru = CellKind::Gru(GruVariant::ResetAfter);
        for c in [
            cfg(Head::Crf, 2, CellKind::Lstm, 1),
            cfg(Head::Softmax, 2, gru, 2),
            cfg(Head::Crf, 0, CellKind::Lstm, 2),
            TaggerConfig {
                dropout: 0.3,
                dropout_kind: DropoutKind::Variational,
                ..cfg(Head::Crf, 2, CellKind::Lstm, 1)
            },
        ] {
            let m = Tagger::new(c, constraints()).unwrap();
            let mut p = m.init_params(2).unwrap();
            let mut rng = rng_from_seed(9);
            for v in p.iter_mut() {
                *v += rng.random_range(-0.3..0.3);
            }
            // Padding rows stay zero.
            p[..c.embed].fill(0.0);
            if c.char_hidden > 0 {
                p[m.char_emb.start..m.char_emb.start + c.char_embed].fill(0.0);
            }
            let bt = sample();
            let (mut cache, mut ws) = (TaggerCache::default(), TaggerWorkspace::default());
            let masks = || RowRng::new(1, 0);
            m.forward_train(&p, &bt, 0.5, &mut cache, &mut ws, &mut masks())
                .unwrap();
            let mut g = vec![0.0; m.num_params()];
            m.backward(&p, &mut g, &cache, &mut ws).unwrap();
            let frozen = |i: usize| {
                i < c.embed
                    || (c.char_hidden > 0
                        && (m.char_emb.start..m.char_emb.start + c.char_embed).contains(&i))
            };
            let what = format!("{c:?}");
            check_gradients(&what, &mut p, &g, FdCheck::new(3e-3, 2e-4), frozen, |p| {
                0.5 * m
                    .forward_train(p, &bt, 0.5, &mut cache, &mut ws, &mut masks())
                    .unwrap()
            });
        }
    }

    #[test]
    fn variational_dropout_shares_each_sentences_mask_over_its_words() {
        let c = TaggerConfig {
            dropout: 0.5,
            ..cfg(Head::Softmax, 2, CellKind::Lstm, 1)
        };
        let bt = sample();
        let mut losses = Vec::new();
        for kind in [DropoutKind::Standard, DropoutKind::Variational] {
            let m = Tagger::new(
                TaggerConfig {
                    dropout_kind: kind,
                    ..c
                },
                constraints(),
            )
            .unwrap();
            let p = m.init_params(2).unwrap();
            let (mut cache, mut ws) = (TaggerCache::default(), TaggerWorkspace::default());
            let loss = m
                .forward_train(&p, &bt, 1.0, &mut cache, &mut ws, &mut RowRng::new(1, 0))
                .unwrap();
            losses.push(loss);
            let (b, i) = (bt.b(), c.input());
            let mask = &cache.body.input_mask();
            for j in 0..b {
                let row = |s: usize| &mask[(s * b + j) * i..(s * b + j + 1) * i];
                let shared = (1..bt.t).all(|s| row(s) == row(0));
                assert_eq!(shared, kind == DropoutKind::Variational, "{kind:?} row {j}");
            }
        }
        assert_ne!(losses[0], losses[1]);
    }

    #[test]
    fn a_sentence_alone_is_tagged_as_in_a_batch() {
        let c = cfg(Head::Crf, 2, CellKind::Lstm, 2);
        let m = Tagger::new(c, constraints()).unwrap();
        let mut p = m.init_params(4).unwrap();
        let mut rng = rng_from_seed(3);
        p.iter_mut().for_each(|v| *v += rng.random_range(-0.5..0.5));
        let (mut cache, mut ws) = (TaggerCache::default(), TaggerWorkspace::default());
        let all = sample();
        let mut tags = Vec::new();
        m.predict(&p, &all, &mut tags, &mut cache, &mut ws).unwrap();
        let whole = m.eval_loss(&p, &all, &mut cache, &mut ws).unwrap();
        let one = batch(&[&[(7, 3, &[6, 6, 5, 4])]], &[&[1]]);
        let mut alone = Vec::new();
        m.predict(&p, &one, &mut alone, &mut cache, &mut ws)
            .unwrap();
        assert_eq!(alone[0], tags[1]);
        let parts: f64 = [
            batch(
                &[&[(2, 0, &[2, 3]), (5, 2, &[4, 5, 6]), (3, 1, &[2])]],
                &[&[0, 1, 2]],
            ),
            one,
            batch(&[&[(4, 0, &[3, 2]), (1, 0, &[5])]], &[&[0, 1]]),
        ]
        .iter()
        .map(|bt| m.eval_loss(&p, bt, &mut cache, &mut ws).unwrap())
        .sum();
        assert!(
            (whole - parts).abs() < 1e-4 * whole.abs(),
            "{whole} vs {parts}"
        );
    }

    #[test]
    fn casing_classes() {
        assert_eq!(
            ["word", "WORD", "Word", "wOrd", "1996", "U.S."].map(casing),
            [0, 1, 2, 3, 3, 1]
        );
    }
}

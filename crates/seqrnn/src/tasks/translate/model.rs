//! Encoder–decoder with attention (Luong et al. 2015): a bidirectional LSTM/GRU reads the
//! source, a unidirectional LSTM/GRU writes the target, and every decoder step attends over the
//! encoder states.
//!
//! ```text
//! src ids[S, B] → Embedding(Vs, E) → dropout → L_e-layer bidirectional RNN → enc[S, B, 2·He]
//! final states of the top layer [h→; h←] → tanh(Linear(2·He, Hd)) → h0 of every decoder layer
//! tgt_in ids[T, B] (<s> y) → Embedding(Vt, E) → dropout → L_d-layer RNN (h0, c0 = 0) → dec[T, B, Hd]
//! ctx[T, B, 2·He] = attention(query dec, keys enc, source lengths)
//! hid = tanh(Linear([ctx; dec], Hd)) → dropout → Linear(Hd, Vt) → softmax over tgt_out (y </s>)
//! ```
//!
//! The attention sits *after* the decoder RNN and does not feed back into it (Luong's model
//! without input feeding), so teacher-forced training runs the decoder over the whole target
//! sequence with the fused engine; inference runs it one step at a time ([`Seq2Seq::step`]).
//! Scores are dot, general or additive ([`Score`]).
//!
//! Padding is exact on both sides: the encoder is a [`SeqEncoder`], attention masks source
//! positions past each length, and the loss counts target steps `t < tgt_lens[b]` only (a
//! decoder step never depends on later ones, so padding after a target's end changes nothing).
//!
//! Parameters are one block in PyTorch names: `encoder.embedding.weight [Vs, E]`,
//! `encoder.rnn.*`, `bridge.weight [Hd, 2·He]`, `bridge.bias [Hd]`,
//! `decoder.embedding.weight [Vt, E]`, `decoder.rnn.*`, `attention.*`, `combine.weight
//! [Hd, 2·He + Hd]`, `combine.bias [Hd]`, `output.weight [Vt, Hd]` (an alias of the decoder
//! embedding when tied), `output.bias [Vt]`.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::data::subword::{BOS, EOS, PAD};
use crate::dropout::{apply_mask, rng_from_seed, Dropout, RowRng};
use crate::error::{Error, Result};
use crate::linalg::{fit, matmul_rows, Accumulate, Mat, MatMut, Prepared};
use crate::model::attention::{Attention, AttnCache, AttnGrads, AttnShape, AttnWorkspace, Score};
use crate::model::embedding::TokenBatch;
use crate::model::embedding::{check_embed, OutputWeights};
use crate::model::encoder::{zero_padding, EncoderCache, EncoderWorkspace, SeqEncoder};
use crate::model::encoder_head::{init_recurrent, standard_dropout};
use crate::model::layout::check_backward;
use crate::model::layout::model_accessors;
use crate::model::layout::{NamedTensor, ParamLayout};
use crate::model::{dense, embedding, softmax};
use crate::rnn::{
    CellKind, Direction, Rnn, RnnCache, RnnConfig, RnnPacks, RnnState, RnnWorkspace, SeqShape,
};

/// Shape of a translation model. `validate()` before use.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Seq2SeqConfig {
    /// Source vocabulary `Vs` (ids 0–3 are `<pad> <unk> <s> </s>`).
    pub src_vocab: usize,
    /// Target vocabulary `Vt`.
    pub tgt_vocab: usize,
    /// Embedding width `E` (both sides).
    pub embed: usize,
    /// Recurrent cell (both sides).
    pub cell: CellKind,
    /// Encoder units per direction `He`.
    pub enc_hidden: usize,
    /// Encoder layers `L_e`.
    pub enc_layers: usize,
    /// Decoder units `Hd`.
    pub dec_hidden: usize,
    /// Decoder layers `L_d`.
    pub dec_layers: usize,
    /// Attention score.
    pub score: Score,
    /// Hidden size `A` of the additive score (ignored by the others).
    pub attn_hidden: usize,
    /// Dropout on both embeddings, between decoder layers and on the attentional state.
    pub dropout: f32,
    /// Whether `output.weight` is the decoder embedding (needs `E = Hd`).
    pub output: OutputWeights,
    /// Longest source (in pieces) the model accepts.
    pub max_src_len: usize,
}

impl Default for Seq2SeqConfig {
    fn default() -> Self {
        Seq2SeqConfig {
            src_vocab: 8000,
            tgt_vocab: 8000,
            embed: 256,
            cell: CellKind::Lstm,
            enc_hidden: 256,
            enc_layers: 1,
            dec_hidden: 512,
            dec_layers: 1,
            score: Score::General,
            attn_hidden: 256,
            dropout: 0.3,
            output: OutputWeights::Separate,
            max_src_len: 200,
        }
    }
}

impl Seq2SeqConfig {
    /// Checks sizes, dropout and the constraints between them.
    pub fn validate(&self) -> Result<()> {
        if self.src_vocab < 5 || self.tgt_vocab < 5 {
            return Err(Error::Config(format!(
                "vocabularies need the 4 special tokens and at least one piece, got {} and {}",
                self.src_vocab, self.tgt_vocab
            )));
        }
        check_embed(self.embed)?;
        if self.max_src_len == 0 {
            return Err(Error::Config(
                "the longest source must be at least 1".into(),
            ));
        }
        standard_dropout(self.dropout).validate()?;
        if self.output == OutputWeights::Tied && self.embed != self.dec_hidden {
            return Err(Error::Config(format!(
                "a tied output layer needs the embedding size ({}) to equal the decoder size ({})",
                self.embed, self.dec_hidden
            )));
        }
        self.encoder_config().validate()?;
        self.decoder_config().validate()?;
        Attention::new(self.score, self.dec_hidden, self.keys(), self.attn_hidden)?;
        Ok(())
    }

    /// The encoder stack (bidirectional).
    pub fn encoder_config(&self) -> RnnConfig {
        RnnConfig {
            cell: self.cell,
            input_size: self.embed,
            hidden_size: self.enc_hidden,
            num_layers: self.enc_layers,
            direction: Direction::Bidirectional,
        }
    }

    /// The decoder stack.
    pub fn decoder_config(&self) -> RnnConfig {
        RnnConfig {
            cell: self.cell,
            input_size: self.embed,
            hidden_size: self.dec_hidden,
            num_layers: self.dec_layers,
            direction: Direction::Forward,
        }
    }

    /// Width of an encoder state, `2·He`.
    pub fn keys(&self) -> usize {
        2 * self.enc_hidden
    }
}

/// A batch of sentence pairs, padded: the source as a [`TokenBatch`] (`ids[S, B]`), the target as
/// decoder inputs `<s> y` and outputs `y </s>` (`[T, B]`, padding id 0).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PairBatch {
    /// Source ids and lengths.
    pub src: TokenBatch,
    /// Decoder inputs `tgt_in[T, B]`.
    pub tgt_in: Vec<u32>,
    /// Targets `tgt_out[T, B]`.
    pub tgt_out: Vec<u32>,
    /// `|y| + 1` per row.
    pub tgt_lens: Vec<usize>,
    /// `T`, the longest `tgt_lens`.
    pub t: usize,
}

impl PairBatch {
    /// Pads `pairs` (source and target pieces, without special tokens; sources non-empty)
    /// into one batch, reusing `self`'s buffers.
    pub fn fill<'s>(&mut self, pairs: impl Iterator<Item = (&'s [u32], &'s [u32])> + Clone) {
        self.src.fill(pairs.clone().map(|p| p.0));
        self.tgt_lens.clear();
        self.tgt_lens.extend(pairs.clone().map(|p| p.1.len() + 1));
        self.t = self.tgt_lens.iter().copied().max().unwrap_or(0);
        let b = self.tgt_lens.len();
        self.tgt_in.clear();
        self.tgt_in.resize(self.t * b, PAD);
        self.tgt_out.clear();
        self.tgt_out.resize(self.t * b, PAD);
        for (j, (_, y)) in pairs.enumerate() {
            self.tgt_in[j] = BOS;
            for (t, &id) in y.iter().enumerate() {
                self.tgt_in[(t + 1) * b + j] = id;
                self.tgt_out[t * b + j] = id;
            }
            self.tgt_out[y.len() * b + j] = EOS;
        }
    }

    /// Batch size `B`.
    pub fn b(&self) -> usize {
        self.tgt_lens.len()
    }

    /// Number of target tokens (`</s>` included): the loss's count.
    pub fn tokens(&self) -> usize {
        self.tgt_lens.iter().sum()
    }
}

/// An encoder–decoder: configuration, stacks, attention and the parameter layout. Parameters are
/// owned by the caller.
#[derive(Clone, Debug)]
pub struct Seq2Seq {
    config: Seq2SeqConfig,
    encoder: SeqEncoder,
    decoder: Rnn,
    attn: Attention,
    params: ParamLayout,
    r: Ranges,
}

/// Where each tensor sits in the block.
#[derive(Clone, Debug)]
struct Ranges {
    src_emb: Range<usize>,
    enc: Range<usize>,
    bridge_w: Range<usize>,
    bridge_b: Range<usize>,
    tgt_emb: Range<usize>,
    dec: Range<usize>,
    attn: Range<usize>,
    comb_w: Range<usize>,
    comb_b: Range<usize>,
    out_w: Range<usize>,
    out_b: Range<usize>,
}

/// What a training forward pass keeps for backward.
#[derive(Debug, Default)]
pub struct Seq2SeqCache {
    batch: PairBatch,
    /// Embedding dropout masks `[S, B, E]`, `[T, B, E]` (empty without dropout).
    src_mask: Vec<f32>,
    tgt_mask: Vec<f32>,
    enc: EncoderCache,
    /// Encoder output `[S, B, 2·He]` (zero at padding).
    enc_out: Vec<f32>,
    /// Bridge input `z[B, 2·He]` (top layer's final states) and output `h0[B, Hd]`.
    z: Vec<f32>,
    h0: Vec<f32>,
    dec: RnnCache,
    /// Decoder output `[T, B, Hd]`.
    dec_out: Vec<f32>,
    attn: AttnCache,
    /// Context `[T, B, 2·He]`.
    ctx: Vec<f32>,
    /// Flat index `t·B + b` of every real target step, in order; `N` entries.
    rows: Vec<usize>,
    /// `targets[N]`.
    targets: Vec<u32>,
    /// `[ctx; dec]` of the real steps `[N, 2·He + Hd]`, `tanh` output `hid[N, Hd]`, its dropout
    /// mask and the dropped values fed to the output layer.
    cat: Vec<f32>,
    hid: Vec<f32>,
    hid_mask: Vec<f32>,
    hid_drop: Vec<f32>,
    /// `∂L/∂logits [N, Vt]`.
    dlogits: Vec<f32>,
}

/// Scratch buffers, reused across calls.
#[derive(Debug, Default)]
pub struct Seq2SeqWorkspace {
    enc: EncoderWorkspace,
    rnn: RnnWorkspace,
    attn: AttnWorkspace,
    /// Embeddings `[S, B, E]`, `[T, B, E]`; final encoder states `[L_e·2, B, He]`.
    emb_s: Vec<f32>,
    emb_t: Vec<f32>,
    h_n: Vec<f32>,
    /// Backward: `∂hid [N, Hd]`, `∂cat [N, 2·He + Hd]`, `∂ctx`, `∂dec`, `∂enc`, `∂z`, `∂h0`,
    /// `∂h_n`, the embedding gradients, full-layout dropout mask.
    dhid: Vec<f32>,
    dcat: Vec<f32>,
    dctx: Vec<f32>,
    ddec: Vec<f32>,
    denc: Vec<f32>,
    dz: Vec<f32>,
    dh0: Vec<f32>,
    dh_n: Vec<f32>,
    demb_s: Vec<f32>,
    demb_t: Vec<f32>,
    mask_full: Vec<f32>,
    /// Inference step: query projected through the general score's `W` `[B, 2·He]`.
    q_proj: Vec<f32>,
}

/// The encoder's result for a batch of sources, the start of decoding.
#[derive(Clone, Debug, Default)]
pub struct EncodedSource {
    /// Encoder states `[S, B, 2·He]` (zero at padding).
    pub states: Vec<f32>,
    /// Source lengths `[B]`.
    pub lens: Vec<usize>,
    /// `S`.
    pub s: usize,
    /// Initial decoder hidden state `[B, Hd]` (every layer starts from it).
    pub h0: Vec<f32>,
}

impl EncodedSource {
    /// Batch size.
    pub fn b(&self) -> usize {
        self.lens.len()
    }

    /// A copy holding rows `rows` (in that order, repeats allowed): the batch a beam search
    /// runs on.
    pub fn select(&self, rows: &[usize], out: &mut EncodedSource) {
        let b = self.b();
        let k = self.states.len() / (self.s * b).max(1);
        let hd = self.h0.len() / b.max(1);
        let nb = rows.len();
        out.s = self.s;
        out.lens.clear();
        out.lens.extend(rows.iter().map(|&r| self.lens[r]));
        fit(&mut out.states, self.s * nb * k);
        for s in 0..self.s {
            for (j, &r) in rows.iter().enumerate() {
                let src = (s * b + r) * k;
                out.states[(s * nb + j) * k..(s * nb + j + 1) * k]
                    .copy_from_slice(&self.states[src..src + k]);
            }
        }
        fit(&mut out.h0, nb * hd);
        for (j, &r) in rows.iter().enumerate() {
            out.h0[j * hd..(j + 1) * hd].copy_from_slice(&self.h0[r * hd..(r + 1) * hd]);
        }
    }
}

/// Disjoint mutable views of two ranges of `v` (`a` before `b`).
fn two_mut(v: &mut [f32], a: Range<usize>, b: Range<usize>) -> (&mut [f32], &mut [f32]) {
    debug_assert!(a.end <= b.start);
    let (lo, hi) = v.split_at_mut(b.start);
    (&mut lo[a], &mut hi[..b.end - b.start])
}

/// `x = tanh(x)` element-wise.
fn tanh_in_place(x: &mut [f32]) {
    x.iter_mut()
        .for_each(|v| *v = crate::rnn::activation::tanh(*v));
}

/// `d *= 1 − y²` (backward of `y = tanh(·)`).
fn tanh_backward(d: &mut [f32], y: &[f32]) {
    d.iter_mut().zip(y).for_each(|(g, y)| *g *= 1.0 - y * y);
}

crate::model::trainable::trainable!(Seq2Seq, PairBatch, Seq2SeqCache, Seq2SeqWorkspace);

impl Seq2Seq {
    /// A model for `config`, after validating it.
    pub fn new(config: Seq2SeqConfig) -> Result<Self> {
        config.validate()?;
        let c = &config;
        let encoder = SeqEncoder::new(c.encoder_config())?;
        let decoder = Rnn::new(c.decoder_config())?.with_dropout(standard_dropout(c.dropout))?;
        let attn = Attention::new(c.score, c.dec_hidden, c.keys(), c.attn_hidden)?;
        let (hd, k) = (c.dec_hidden, c.keys());
        let mut p = ParamLayout::new();
        let src_emb = p.push("encoder.embedding.weight", vec![c.src_vocab, c.embed]);
        let enc = p.push_rnn("encoder.rnn", encoder.layout());
        let bridge_w = p.push("bridge.weight", vec![hd, k]);
        let bridge_b = p.push("bridge.bias", vec![hd]);
        let tgt_emb = p.push("decoder.embedding.weight", vec![c.tgt_vocab, c.embed]);
        let dec = p.push_rnn("decoder.rnn", decoder.layout());
        let attn_r = match c.score {
            Score::Dot => p.len()..p.len(),
            Score::General => p.push("attention.weight", vec![hd, k]),
            Score::Additive => {
                let a = c.attn_hidden;
                let w = p.push("attention.weight", vec![a, hd + k]);
                p.push("attention.bias", vec![a]);
                let v = p.push("attention.v", vec![1, a]);
                w.start..v.end
            }
        };
        let comb_w = p.push("combine.weight", vec![hd, k + hd]);
        let comb_b = p.push("combine.bias", vec![hd]);
        let out_w = match c.output {
            OutputWeights::Separate => p.push("output.weight", vec![c.tgt_vocab, hd]),
            OutputWeights::Tied => p.alias(
                "output.weight",
                vec![c.tgt_vocab, hd],
                "decoder.embedding.weight",
            ),
        };
        let out_b = p.push("output.bias", vec![c.tgt_vocab]);
        Ok(Seq2Seq {
            config,
            encoder,
            decoder,
            attn,
            params: p,
            r: Ranges {
                src_emb,
                enc,
                bridge_w,
                bridge_b,
                tgt_emb,
                dec,
                attn: attn_r,
                comb_w,
                comb_b,
                out_w,
                out_b,
            },
        })
    }

    model_accessors!(
        Seq2SeqConfig,
        "Every tensor of the parameter block; it writes and reads the model's files."
    );

    /// Every tensor: name, shape, range in the block.
    pub fn tensors(&self) -> Vec<NamedTensor> {
        self.params.named()
    }

    /// Initial weights: embeddings `N(0, 0.1²)` (padding rows zero), recurrent layers
    /// `U(±1/√H)` with LSTM forget-gate bias 1, linear layers as PyTorch's `nn.Linear`,
    /// attention `U(±1/√fan_in)`.
    pub fn init_params(&self, seed: u64) -> Result<Vec<f32>> {
        use rand::RngExt;
        let c = &self.config;
        let mut p = vec![0.0; self.num_params()];
        let mut rng = rng_from_seed(seed);
        for r in [&self.r.src_emb, &self.r.tgt_emb] {
            embedding::init_normal(&mut p[r.start + c.embed..r.end], 0.1, &mut rng);
        }
        let enc = &mut p[self.r.enc.clone()];
        init_recurrent(&c.encoder_config(), enc, seed.wrapping_add(1))?;
        let dec = &mut p[self.r.dec.clone()];
        init_recurrent(&c.decoder_config(), dec, seed.wrapping_add(2))?;
        let (k, hd) = (c.keys(), c.dec_hidden);
        let (w, b) = p[self.r.bridge_w.start..self.r.bridge_b.end].split_at_mut(hd * k);
        dense::init(w, b, k, &mut rng);
        let fan = match c.score {
            Score::Additive => hd + k,
            _ => k,
        };
        let s = 1.0 / (fan as f32).sqrt();
        for v in &mut p[self.r.attn.clone()] {
            *v = rng.random_range(-s..=s);
        }
        let (w, b) = p[self.r.comb_w.start..self.r.comb_b.end].split_at_mut(hd * (k + hd));
        dense::init(w, b, k + hd, &mut rng);
        if c.output == OutputWeights::Separate {
            let s = 1.0 / (hd as f32).sqrt();
            for v in &mut p[self.r.out_w.clone()] {
                *v = rng.random_range(-s..=s);
            }
        }
        let s = 1.0 / (hd as f32).sqrt();
        for v in &mut p[self.r.out_b.clone()] {
            *v = rng.random_range(-s..=s);
        }
        Ok(p)
    }

    /// Refuses a source longer than [`Seq2SeqConfig::max_src_len`] (`line` names it).
    pub fn check_source_len(&self, len: usize, line: usize) -> Result<()> {
        if len > self.config.max_src_len {
            return Err(Error::Config(format!(
                "source sentence {line} has {len} pieces, more than the model's limit of {} (--max-src-len at training)",
                self.config.max_src_len
            )));
        }
        Ok(())
    }

    fn check_ids(ids: &[u32], vocab: usize, side: &str) -> Result<()> {
        match ids.iter().find(|&&i| i as usize >= vocab) {
            Some(i) => Err(Error::Shape(format!(
                "{side} id {i} is outside the vocabulary of {vocab}"
            ))),
            None => Ok(()),
        }
    }

    fn check_batch(&self, params: &[f32], batch: &PairBatch) -> Result<()> {
        self.params.check_block("parameter block", params.len())?;
        let (src, b) = (&batch.src, batch.b());
        if b == 0
            || src.b() != b
            || src.t == 0
            || src.lens.iter().any(|&l| l == 0 || l > src.t)
            || batch.tgt_lens.iter().any(|&l| l == 0 || l > batch.t)
            || batch.tgt_in.len() != batch.t * b
            || batch.tgt_out.len() != batch.t * b
            || src.ids.len() != src.t * b
        {
            return Err(Error::Shape(
                "a pair batch needs matching source and target rows, lengths in 1..=T".into(),
            ));
        }
        Self::check_ids(&src.ids, self.config.src_vocab, "source")?;
        Self::check_ids(&batch.tgt_in, self.config.tgt_vocab, "target")?;
        Self::check_ids(&batch.tgt_out, self.config.tgt_vocab, "target")
    }

    fn dropout(&self) -> Dropout {
        standard_dropout(self.config.dropout)
    }

    /// Bridge: `z[B, 2·He]` from the top layer's final states `h_n[L_e·2, B, He]`, then
    /// `h0 = tanh(W z + b)`.
    fn bridge(&self, params: &[f32], h_n: &[f32], b: usize, z: &mut Vec<f32>, h0: &mut Vec<f32>) {
        let c = &self.config;
        let (he, k, hd) = (c.enc_hidden, c.keys(), c.dec_hidden);
        let top = (c.enc_layers - 1) * 2;
        fit(z, b * k);
        for j in 0..b {
            for dir in 0..2 {
                let src = ((top + dir) * b + j) * he;
                z[j * k + dir * he..j * k + (dir + 1) * he].copy_from_slice(&h_n[src..src + he]);
            }
        }
        fit(h0, b * hd);
        dense::forward_rows(
            &params[self.r.bridge_w.clone()],
            &params[self.r.bridge_b.clone()],
            z,
            h0,
            b,
            k,
            hd,
        );
        tanh_in_place(h0);
    }

    /// The decoder's initial state: `h0[B, Hd]` in every layer, zero cell state.
    pub fn initial_state(&self, h0: &[f32]) -> RnnState {
        let b = h0.len() / self.config.dec_hidden;
        let mut st = RnnState::zeros(self.decoder.config(), b);
        for layer in st.h.chunks_exact_mut(h0.len()) {
            layer.copy_from_slice(h0);
        }
        st
    }

    /// Writes `[ctx; dec]` of rows `rows` into `cat[N, 2·He + Hd]`.
    fn gather_cat(&self, ctx: &[f32], dec: &[f32], rows: &[usize], cat: &mut Vec<f32>) {
        let (k, hd) = (self.config.keys(), self.config.dec_hidden);
        let w = k + hd;
        fit(cat, rows.len() * w);
        for (n, &r) in rows.iter().enumerate() {
            cat[n * w..n * w + k].copy_from_slice(&ctx[r * k..(r + 1) * k]);
            cat[n * w + k..(n + 1) * w].copy_from_slice(&dec[r * hd..(r + 1) * hd]);
        }
    }

    /// `hid[N, Hd] = tanh(W_c cat + b_c)`.
    fn combine(&self, params: &[f32], cat: &[f32], hid: &mut Vec<f32>) {
        let (k, hd) = (self.config.keys(), self.config.dec_hidden);
        let n = cat.len() / (k + hd);
        fit(hid, n * hd);
        dense::forward_rows(
            &params[self.r.comb_w.clone()],
            &params[self.r.comb_b.clone()],
            cat,
            hid,
            n,
            k + hd,
            hd,
        );
        tanh_in_place(hid);
    }

    /// Teacher-forced forward pass up to the attentional states of the real target steps
    /// (`cache.hid`, after dropout in `cache.hid_drop`), filling `cache`. With `rng`, a
    /// training pass (dropout); without, an evaluation pass.
    fn forward_states(
        &self,
        params: &[f32],
        batch: &PairBatch,
        cache: &mut Seq2SeqCache,
        ws: &mut Seq2SeqWorkspace,
        mut rng: Option<&mut RowRng>,
    ) -> Result<()> {
        self.check_batch(params, batch)?;
        let c = &self.config;
        let (b, s, t, e, hd) = (batch.b(), batch.src.t, batch.t, c.embed, c.dec_hidden);
        cache.batch.clone_from(batch);
        let drop = self.dropout();
        let train = rng.is_some() && drop.is_active();
        // Encoder.
        fit(&mut ws.emb_s, s * b * e);
        embedding::forward(
            &params[self.r.src_emb.clone()],
            &batch.src.ids,
            &mut ws.emb_s,
            e,
        );
        zero_padding(&mut ws.emb_s, e, &batch.src.lens);
        if let (true, Some(r)) = (train, rng.as_deref_mut()) {
            drop.apply_train(&mut ws.emb_s, &mut cache.src_mask, s, b, r);
        }
        let mut no_masks = RowRng::new(0, 0);
        self.encoder.forward_train(
            &params[self.r.enc.clone()],
            &ws.emb_s,
            &batch.src.lens,
            s,
            &mut cache.enc_out,
            &mut ws.h_n,
            &mut cache.enc,
            &mut ws.enc,
            rng.as_deref_mut().unwrap_or(&mut no_masks),
        )?;
        self.bridge(params, &ws.h_n, b, &mut cache.z, &mut cache.h0);
        // Decoder over the whole target.
        fit(&mut ws.emb_t, t * b * e);
        embedding::forward(
            &params[self.r.tgt_emb.clone()],
            &batch.tgt_in,
            &mut ws.emb_t,
            e,
        );
        if let (true, Some(r)) = (train, rng.as_deref_mut()) {
            drop.apply_train(&mut ws.emb_t, &mut cache.tgt_mask, t, b, r);
        }
        let mut state = self.initial_state(&cache.h0);
        fit(&mut cache.dec_out, t * b * hd);
        let shape = SeqShape { t, b };
        let p_dec = &params[self.r.dec.clone()];
        match rng.as_deref_mut() {
            Some(r) => self.decoder.forward_train(
                p_dec,
                &ws.emb_t,
                shape,
                &mut state,
                &mut cache.dec_out,
                &mut cache.dec,
                r,
            )?,
            None => self.decoder.forward_infer(
                p_dec,
                &ws.emb_t,
                shape,
                &mut state,
                &mut cache.dec_out,
                &mut ws.rnn,
            )?,
        }
        // Attention.
        let ashape = AttnShape {
            t,
            s,
            lens: &batch.src.lens,
        };
        self.attn.forward(
            &params[self.r.attn.clone()],
            &cache.dec_out,
            &cache.enc_out,
            &ashape,
            &mut cache.ctx,
            &mut cache.attn,
        )?;
        // Real target steps only from here on.
        cache.rows.clear();
        cache.targets.clear();
        for tt in 0..t {
            for (j, &len) in batch.tgt_lens.iter().enumerate() {
                if tt < len {
                    cache.rows.push(tt * b + j);
                    cache.targets.push(batch.tgt_out[tt * b + j]);
                }
            }
        }
        self.gather_cat(&cache.ctx, &cache.dec_out, &cache.rows, &mut cache.cat);
        self.combine(params, &cache.cat, &mut cache.hid);
        cache.hid_drop.clone_from(&cache.hid);
        cache.hid_mask.clear();
        if let (true, Some(r)) = (train, rng) {
            fit(&mut ws.mask_full, t * b * hd);
            drop.fill_mask(&mut ws.mask_full, t, b, hd, r);
            fit(&mut cache.hid_mask, cache.rows.len() * hd);
            for (n, &row) in cache.rows.iter().enumerate() {
                cache.hid_mask[n * hd..(n + 1) * hd]
                    .copy_from_slice(&ws.mask_full[row * hd..(row + 1) * hd]);
            }
            apply_mask(&mut cache.hid_drop, &cache.hid_mask);
        }
        Ok(())
    }

    /// Training forward pass: returns the *summed* cross-entropy over the batch's target tokens
    /// (`</s>` included) and keeps, for [`Seq2Seq::backward`], the gradient of
    /// `scale · Σ loss` (`scale = 1 / tokens` for the mean).
    pub fn forward_train(
        &self,
        params: &[f32],
        batch: &PairBatch,
        scale: f32,
        cache: &mut Seq2SeqCache,
        ws: &mut Seq2SeqWorkspace,
        rng: &mut RowRng,
    ) -> Result<f64> {
        self.forward_states(params, batch, cache, ws, Some(rng))?;
        let (v, hd) = (self.config.tgt_vocab, self.config.dec_hidden);
        fit(&mut cache.dlogits, cache.rows.len() * v);
        softmax::product(
            &cache.hid_drop,
            &params[self.r.out_w.clone()],
            &mut cache.dlogits,
            v,
            hd,
        );
        Ok(softmax::loss_and_grad(
            &mut cache.dlogits,
            &params[self.r.out_b.clone()],
            &cache.targets,
            scale,
        ))
    }

    /// Summed cross-entropy of a batch's target tokens, and their count (no dropout).
    pub fn eval_loss(
        &self,
        params: &[f32],
        batch: &PairBatch,
        cache: &mut Seq2SeqCache,
        ws: &mut Seq2SeqWorkspace,
    ) -> Result<(f64, usize)> {
        self.forward_states(params, batch, cache, ws, None)?;
        let (v, hd) = (self.config.tgt_vocab, self.config.dec_hidden);
        fit(&mut cache.dlogits, cache.rows.len() * v);
        softmax::product(
            &cache.hid,
            &params[self.r.out_w.clone()],
            &mut cache.dlogits,
            v,
            hd,
        );
        let loss = softmax::loss(
            &mut cache.dlogits,
            &params[self.r.out_b.clone()],
            &cache.targets,
        );
        Ok((loss, cache.rows.len()))
    }

    /// Backward pass of the last [`Seq2Seq::forward_train`]: accumulates (`+=`) into `grads`
    /// (same layout as `params`).
    pub fn backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        cache: &Seq2SeqCache,
        ws: &mut Seq2SeqWorkspace,
    ) -> Result<()> {
        check_backward(grads.len(), self.num_params(), cache.batch.b())?;
        let c = &self.config;
        let batch = &cache.batch;
        let (b, s, t, e) = (batch.b(), batch.src.t, batch.t, c.embed);
        let (k, hd, n) = (c.keys(), c.dec_hidden, cache.rows.len());
        // Output layer.
        fit(&mut ws.dhid, n * hd);
        {
            let (dw, db) = two_mut(grads, self.r.out_w.clone(), self.r.out_b.clone());
            softmax::backward(
                &cache.dlogits,
                &cache.hid_drop,
                &params[self.r.out_w.clone()],
                dw,
                db,
                &mut ws.dhid,
                hd,
            );
        }
        if !cache.hid_mask.is_empty() {
            apply_mask(&mut ws.dhid, &cache.hid_mask);
        }
        tanh_backward(&mut ws.dhid, &cache.hid);
        // Combine layer, then scatter ∂[ctx; dec] back to the time-major layout.
        fit(&mut ws.dcat, n * (k + hd));
        {
            let (dw, db) = two_mut(grads, self.r.comb_w.clone(), self.r.comb_b.clone());
            dense::backward(
                &params[self.r.comb_w.clone()],
                &cache.cat,
                &ws.dhid,
                dw,
                db,
                &mut ws.dcat,
                n,
                k + hd,
                hd,
            );
        }
        fit(&mut ws.dctx, t * b * k);
        ws.dctx.fill(0.0);
        fit(&mut ws.ddec, t * b * hd);
        ws.ddec.fill(0.0);
        let w = k + hd;
        for (i, &r) in cache.rows.iter().enumerate() {
            ws.dctx[r * k..(r + 1) * k].copy_from_slice(&ws.dcat[i * w..i * w + k]);
            ws.ddec[r * hd..(r + 1) * hd].copy_from_slice(&ws.dcat[i * w + k..(i + 1) * w]);
        }
        // Attention: into ∂dec and ∂enc.
        fit(&mut ws.denc, s * b * k);
        ws.denc.fill(0.0);
        let ashape = AttnShape {
            t,
            s,
            lens: &batch.src.lens,
        };
        self.attn.backward(
            &params[self.r.attn.clone()],
            &cache.dec_out,
            &cache.enc_out,
            &ashape,
            &cache.attn,
            &ws.dctx,
            AttnGrads {
                dq: &mut ws.ddec,
                dk: &mut ws.denc,
                dw: &mut grads[self.r.attn.clone()],
            },
            &mut ws.attn,
        )?;
        // Decoder: ∂ target embeddings and ∂ initial state.
        let mut dstate = RnnState::zeros(self.decoder.config(), b);
        fit(&mut ws.demb_t, t * b * e);
        self.decoder.backward(
            &params[self.r.dec.clone()],
            &mut grads[self.r.dec.clone()],
            &cache.dec,
            &ws.ddec,
            &mut dstate,
            &mut ws.demb_t,
            &mut ws.rnn,
        )?;
        // Bridge: every decoder layer started from h0.
        fit(&mut ws.dh0, b * hd);
        ws.dh0.fill(0.0);
        for layer in dstate.h.chunks_exact(b * hd) {
            ws.dh0.iter_mut().zip(layer).for_each(|(a, v)| *a += v);
        }
        tanh_backward(&mut ws.dh0, &cache.h0);
        fit(&mut ws.dz, b * k);
        {
            let (dw, db) = two_mut(grads, self.r.bridge_w.clone(), self.r.bridge_b.clone());
            dense::backward(
                &params[self.r.bridge_w.clone()],
                &cache.z,
                &ws.dh0,
                dw,
                db,
                &mut ws.dz,
                b,
                k,
                hd,
            );
        }
        let he = c.enc_hidden;
        let top = (c.enc_layers - 1) * 2;
        fit(&mut ws.dh_n, c.enc_layers * 2 * b * he);
        ws.dh_n.fill(0.0);
        for j in 0..b {
            for dir in 0..2 {
                let dst = ((top + dir) * b + j) * he;
                ws.dh_n[dst..dst + he]
                    .copy_from_slice(&ws.dz[j * k + dir * he..j * k + (dir + 1) * he]);
            }
        }
        // Encoder.
        fit(&mut ws.demb_s, s * b * e);
        self.encoder.backward(
            &params[self.r.enc.clone()],
            &mut grads[self.r.enc.clone()],
            &cache.enc,
            &ws.denc,
            Some(&ws.dh_n),
            &mut ws.demb_s,
            &mut ws.enc,
        )?;
        if !cache.src_mask.is_empty() && c.dropout > 0.0 {
            apply_mask(&mut ws.demb_s, &cache.src_mask);
            apply_mask(&mut ws.demb_t, &cache.tgt_mask);
        }
        embedding::backward(
            &ws.demb_s,
            &batch.src.ids,
            &mut grads[self.r.src_emb.clone()],
            e,
        );
        embedding::backward(
            &ws.demb_t,
            &batch.tgt_in,
            &mut grads[self.r.tgt_emb.clone()],
            e,
        );
        // Padding rows never learn.
        grads[self.r.src_emb.start..self.r.src_emb.start + e].fill(0.0);
        grads[self.r.tgt_emb.start..self.r.tgt_emb.start + e].fill(0.0);
        Ok(())
    }

    /// Encodes a batch of sources (inference) into `out`.
    pub fn encode(
        &self,
        params: &[f32],
        src: &TokenBatch,
        out: &mut EncodedSource,
        ws: &mut Seq2SeqWorkspace,
    ) -> Result<()> {
        self.params.check_block("parameter block", params.len())?;
        Self::check_ids(&src.ids, self.config.src_vocab, "source")?;
        let (b, s, e) = (src.b(), src.t, self.config.embed);
        fit(&mut ws.emb_s, s * b * e);
        embedding::forward(&params[self.r.src_emb.clone()], &src.ids, &mut ws.emb_s, e);
        zero_padding(&mut ws.emb_s, e, &src.lens);
        self.encoder.forward_infer(
            &params[self.r.enc.clone()],
            &ws.emb_s,
            &src.lens,
            s,
            &mut out.states,
            &mut ws.h_n,
            &mut ws.enc,
        )?;
        out.lens.clone_from(&src.lens);
        out.s = s;
        let mut z = std::mem::take(&mut ws.dz);
        self.bridge(params, &ws.h_n, b, &mut z, &mut out.h0);
        ws.dz = z;
        Ok(())
    }

    /// One decoder step for `B'` hypotheses (inference): reads the previous tokens `prev[B']`,
    /// advances `state`, writes the next-token logits `logits[B', Vt]` and the attention
    /// weights `[B', S]` into `weights`. `src` holds one row per hypothesis
    /// ([`EncodedSource::select`]).
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &self,
        packs: &DecoderPacks<'_>,
        src: &EncodedSource,
        prev: &[u32],
        state: &mut RnnState,
        logits: &mut Vec<f32>,
        weights: &mut AttnCache,
        step: &mut StepBuffers,
        ws: &mut Seq2SeqWorkspace,
    ) -> Result<()> {
        let params = packs.params;
        let c = &self.config;
        let (b, e, hd, k, v) = (prev.len(), c.embed, c.dec_hidden, c.keys(), c.tgt_vocab);
        if src.b() != b {
            return Err(Error::Shape(format!(
                "{b} hypotheses for {} encoded sources",
                src.b()
            )));
        }
        Self::check_ids(prev, v, "target")?;
        fit(&mut ws.emb_t, b * e);
        embedding::forward(&params[self.r.tgt_emb.clone()], prev, &mut ws.emb_t, e);
        fit(&mut step.dec, b * hd);
        self.decoder.forward_infer_packed(
            &packs.rnn,
            &ws.emb_t,
            SeqShape { t: 1, b },
            state,
            &mut step.dec,
            &mut ws.rnn,
        )?;
        let shape = AttnShape {
            t: 1,
            s: src.s,
            lens: &src.lens,
        };
        if c.score == Score::General {
            // q · (W k) = (Wᵀ q) · k: one [B, Hd]·[Hd, 2·He] product instead of projecting
            // every key at every step.
            fit(&mut ws.q_proj, b * k);
            matmul_rows(
                MatMut::new(&mut ws.q_proj, b, k),
                Mat::new(&step.dec, b, hd),
                Mat::new(&params[self.r.attn.clone()], hd, k),
                Accumulate::Overwrite,
            );
            let dot = Attention::new(Score::Dot, k, k, 0)?;
            dot.forward(&[], &ws.q_proj, &src.states, &shape, &mut step.ctx, weights)?;
        } else {
            self.attn.forward(
                &params[self.r.attn.clone()],
                &step.dec,
                &src.states,
                &shape,
                &mut step.ctx,
                weights,
            )?;
        }
        step.rows.clear();
        step.rows.extend(0..b);
        self.gather_cat(&step.ctx, &step.dec, &step.rows, &mut step.cat);
        self.combine(params, &step.cat, &mut step.hid);
        fit(logits, b * v);
        softmax::logits_prepared(
            &step.hid,
            &packs.out,
            &params[self.r.out_b.clone()],
            logits,
            hd,
        );
        Ok(())
    }

    /// The decoder's weights packed once for the steps of a search ([`Seq2Seq::step`]).
    ///
    /// # Errors
    /// [`Error::Shape`] when `params` is not this model's parameter block.
    pub fn pack_decoder<'p>(&self, params: &'p [f32]) -> Result<DecoderPacks<'p>> {
        self.param_layout()
            .check_block("parameter block", params.len())?;
        let c = &self.config;
        let w = &params[self.r.out_w.clone()];
        Ok(DecoderPacks {
            params,
            rnn: self.decoder.pack(&params[self.r.dec.clone()])?,
            out: Prepared::for_any_rows(Mat::new(w, c.tgt_vocab, c.dec_hidden).t()),
        })
    }
}

/// A translation model's decoder weights packed once for many steps
/// ([`Seq2Seq::pack_decoder`]), beside the parameter block they came from: the recurrent
/// stack's and the output layer's. Every inference product of a step is batch-invariant, so a
/// hypothesis' scores are the same, to the bit, whatever else is in the batch.
#[derive(Debug)]
pub struct DecoderPacks<'p> {
    params: &'p [f32],
    rnn: RnnPacks<'p>,
    out: Prepared<'p>,
}

/// Buffers of [`Seq2Seq::step`], reused across steps.
#[derive(Debug, Default)]
pub struct StepBuffers {
    dec: Vec<f32>,
    ctx: Vec<f32>,
    cat: Vec<f32>,
    hid: Vec<f32>,
    rows: Vec<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{check_gradients, FdCheck};
    use crate::rnn::GruVariant;
    use rand::RngExt;

    fn cfg(cell: CellKind, score: Score, layers: usize, output: OutputWeights) -> Seq2SeqConfig {
        Seq2SeqConfig {
            src_vocab: 9,
            tgt_vocab: 8,
            embed: 4,
            cell,
            enc_hidden: 3,
            enc_layers: layers,
            dec_hidden: if score == Score::Dot { 6 } else { 4 },
            dec_layers: layers,
            score,
            attn_hidden: 3,
            dropout: 0.0,
            output,
            max_src_len: 50,
        }
    }

    fn batch(pairs: &[(&[u32], &[u32])]) -> PairBatch {
        let mut b = PairBatch::default();
        b.fill(pairs.iter().copied());
        b
    }

    fn configs() -> Vec<Seq2SeqConfig> {
        vec![
            cfg(CellKind::Lstm, Score::General, 2, OutputWeights::Separate),
            cfg(CellKind::Lstm, Score::Dot, 1, OutputWeights::Separate),
            cfg(
                CellKind::Gru(GruVariant::ResetAfter),
                Score::Additive,
                1,
                OutputWeights::Separate,
            ),
            cfg(CellKind::Lstm, Score::General, 1, OutputWeights::Tied),
        ]
    }

    fn params(m: &Seq2Seq, seed: u64) -> Vec<f32> {
        let mut p = m.init_params(seed).unwrap();
        // Larger embeddings so every path carries signal.
        let mut rng = rng_from_seed(seed + 10);
        let e = m.config.embed;
        for r in [m.r.src_emb.clone(), m.r.tgt_emb.clone()] {
            for v in &mut p[r.start + e..r.end] {
                *v = rng.random_range(-1.0..1.0);
            }
        }
        p
    }

    #[test]
    fn batches_put_bos_and_eos_around_targets() {
        let b = batch(&[(&[5, 6], &[7]), (&[4], &[5, 6, 7])]);
        assert_eq!((b.t, b.tgt_lens.clone(), b.tokens()), (4, vec![2, 4], 6));
        assert_eq!(b.tgt_in, vec![BOS, BOS, 7, 5, 0, 6, 0, 7]);
        assert_eq!(b.tgt_out, vec![7, 5, EOS, 6, 0, 7, 0, EOS]);
    }

    /// Central finite differences of the summed loss along every parameter.
    #[test]
    fn gradients_match_finite_differences() {
        let bt = batch(&[
            (&[5, 6, 7], &[4, 5]),
            (&[8], &[6, 7, 4, 5]),
            (&[4, 4], &[7]),
        ]);
        for c in configs() {
            let m = Seq2Seq::new(c).unwrap();
            let mut p = params(&m, 2);
            let mut cache = Seq2SeqCache::default();
            let mut ws = Seq2SeqWorkspace::default();
            let masks = || RowRng::new(3, 0);
            let loss0 = m
                .forward_train(&p, &bt, 1.0, &mut cache, &mut ws, &mut masks())
                .unwrap();
            assert!(loss0.is_finite());
            let mut g = vec![0.0; m.num_params()];
            m.backward(&p, &mut g, &cache, &mut ws).unwrap();
            let e = c.embed;
            let frozen = |i: usize| {
                (m.r.src_emb.start..m.r.src_emb.start + e).contains(&i)
                    || (m.r.tgt_emb.start..m.r.tgt_emb.start + e).contains(&i)
            };
            let what = format!("{c:?}");
            check_gradients(&what, &mut p, &g, FdCheck::new(2e-3, 2e-4), frozen, |p| {
                m.forward_train(p, &bt, 1.0, &mut cache, &mut ws, &mut masks())
                    .unwrap()
            });
        }
    }

    #[test]
    fn dropout_masks_are_applied_and_undone_in_backward() {
        // With dropout, the gradient still matches finite differences under fixed masks.
        let mut c = cfg(CellKind::Lstm, Score::General, 2, OutputWeights::Separate);
        c.dropout = 0.3;
        let m = Seq2Seq::new(c).unwrap();
        let mut p = params(&m, 5);
        let bt = batch(&[(&[5, 6, 7], &[4, 5]), (&[8], &[6, 7, 4, 5])]);
        let mut cache = Seq2SeqCache::default();
        let mut ws = Seq2SeqWorkspace::default();
        let masks = || RowRng::new(9, 0);
        m.forward_train(&p, &bt, 0.5, &mut cache, &mut ws, &mut masks())
            .unwrap();
        assert!(cache.hid_mask.contains(&0.0));
        let mut g = vec![0.0; m.num_params()];
        m.backward(&p, &mut g, &cache, &mut ws).unwrap();
        let check = FdCheck {
            stride: 7,
            ..FdCheck::new(3e-3, 2e-4)
        };
        check_gradients(
            "dropout",
            &mut p,
            &g,
            check,
            |_| false,
            |p| {
                0.5 * m
                    .forward_train(p, &bt, 0.5, &mut cache, &mut ws, &mut masks())
                    .unwrap()
            },
        );
    }

    /// The step-by-step path gives the teacher-forced logits, and a sentence alone scores as
    /// the same sentence padded in a batch.
    #[test]
    fn stepping_matches_teacher_forcing_and_padding_is_exact() {
        for c in configs() {
            let m = Seq2Seq::new(c).unwrap();
            let p = params(&m, 4);
            let (v, b) = (c.tgt_vocab, 3);
            let pairs: [(&[u32], &[u32]); 3] = [
                (&[5, 6, 7, 8], &[4, 5, 6]),
                (&[8], &[6]),
                (&[4, 7], &[7, 7]),
            ];
            let bt = batch(&pairs);
            let mut cache = Seq2SeqCache::default();
            let mut ws = Seq2SeqWorkspace::default();
            let (sum, n) = m.eval_loss(&p, &bt, &mut cache, &mut ws).unwrap();
            assert_eq!(n, 9);
            // Alone.
            let mut alone = 0.0;
            for pair in pairs {
                alone += m
                    .eval_loss(&p, &batch(&[pair]), &mut cache, &mut ws)
                    .unwrap()
                    .0;
            }
            assert!(
                (sum - alone).abs() < 1e-4 * sum.abs(),
                "{c:?}: {sum} vs {alone}"
            );
            // Step by step, the teacher's tokens fed back.
            let mut enc = EncodedSource::default();
            m.encode(&p, &bt.src, &mut enc, &mut ws).unwrap();
            let mut state = m.initial_state(&enc.h0);
            let (mut logits, mut w, mut sb) =
                (Vec::new(), AttnCache::default(), StepBuffers::default());
            let mut stepped = 0.0f64;
            let packs = m.pack_decoder(&p).unwrap();
            for t in 0..bt.t {
                let prev = &bt.tgt_in[t * b..(t + 1) * b];
                m.step(
                    &packs,
                    &enc,
                    prev,
                    &mut state,
                    &mut logits,
                    &mut w,
                    &mut sb,
                    &mut ws,
                )
                .unwrap();
                for j in 0..b {
                    if t < bt.tgt_lens[j] {
                        let row = &logits[j * v..(j + 1) * v];
                        let mx = softmax::row_max(row);
                        let lse: f64 = row
                            .iter()
                            .map(|x| ((x - mx) as f64).exp())
                            .sum::<f64>()
                            .ln();
                        stepped += lse + (mx - row[bt.tgt_out[t * b + j] as usize]) as f64;
                    }
                }
                let wsum: f32 = w.weights[..enc.s].iter().sum();
                assert!((wsum - 1.0).abs() < 1e-5);
            }
            assert!(
                (sum - stepped).abs() < 1e-4 * sum.abs(),
                "{c:?}: {sum} vs {stepped}"
            );
        }
    }

    #[test]
    fn bad_configurations_and_batches_are_refused() {
        let mut c = cfg(CellKind::Lstm, Score::General, 1, OutputWeights::Tied);
        c.dec_hidden = 5;
        assert!(Seq2Seq::new(c).unwrap_err().to_string().contains("tied"));
        let mut c = cfg(CellKind::Lstm, Score::Dot, 1, OutputWeights::Separate);
        c.dec_hidden = 5;
        assert!(Seq2Seq::new(c)
            .unwrap_err()
            .to_string()
            .contains("dot attention"));
        let m = Seq2Seq::new(cfg(
            CellKind::Lstm,
            Score::General,
            1,
            OutputWeights::Separate,
        ))
        .unwrap();
        let p = m.init_params(1).unwrap();
        let bt = batch(&[(&[5, 60], &[4])]);
        let (mut cache, mut ws) = (Seq2SeqCache::default(), Seq2SeqWorkspace::default());
        let e = m
            .eval_loss(&p, &bt, &mut cache, &mut ws)
            .unwrap_err()
            .to_string();
        assert!(e.contains("source id 60"), "{e}");
        assert!(m
            .check_source_len(51, 7)
            .unwrap_err()
            .to_string()
            .contains("sentence 7 has 51"));
    }
}

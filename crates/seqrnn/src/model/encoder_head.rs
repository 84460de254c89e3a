//! An encoder with a dense head: the shared body of the sequence labellers (tagger, acoustic
//! model) and of the sequence classifier.
//!
//! ```text
//! x[T, B, F] → dropout → padding-exact (bi)directional LSTM/GRU ([`SeqEncoder`]) → top[T, B, D·H]
//! → [pooling over time → feat[B, D·H]] → dropout → Linear(D·H, K) → out[N, K]
//! ```
//!
//! Without pooling the head reads every step (`N = T·B`); with [`Pooling`] it reads one vector
//! per sequence (`N = B`). Both dropouts are standard (a fresh mask per element) or, with
//! [`EncoderHead::with_dropout_kind`], variational (one mask per sequence shared by its steps),
//! drawn in that order in training and absent in inference. Parameters are the encoder's block followed by the
//! dense layer's `weight [K, D·H]` and `bias [K]` ([`EncoderHead::push_params`] names them into a
//! model's layout); every pass reads and writes that sub-block only. Per-step outputs at padding
//! steps hold the bias (the caller's loss ignores them); the gradient of the input is zero there.

use std::ops::Range;

use crate::dropout::{apply_mask, Dropout, RowRng, SeqRng};
use crate::error::{Error, Result};
use crate::linalg::fit;
use crate::model::dense;
use crate::model::encoder::{EncoderCache, EncoderWorkspace, SeqEncoder};
use crate::model::layout::ParamLayout;
use crate::model::pooling::Pooling;
use crate::rnn::{ForgetBias, Init, InitScheme, RnnConfig};

/// A dense layer's forward ([`dense::forward`] or [`dense::forward_rows`]).
type DenseForward = fn(&[f32], &[f32], &[f32], &mut [f32], usize, usize, usize);
/// Standard dropout with drop probability `p`.
pub(crate) fn standard_dropout(p: f32) -> Dropout {
    Dropout { p, ..Dropout::NONE }
}

/// Checks an encoder's dropout (`0 ≤ p < 1`) and its recurrent configuration (a model
/// configuration's check).
pub(crate) fn check_encoder(dropout: f32, rnn: &RnnConfig) -> Result<()> {
    standard_dropout(dropout).validate()?;
    rnn.validate()
}

/// The models' recurrent initialisation: `U(±1/√H)` (PyTorch) with the LSTM forget-gate bias 1,
/// drawn from `seed`.
pub(crate) fn init_recurrent(config: &RnnConfig, params: &mut [f32], seed: u64) -> Result<()> {
    Init {
        scheme: InitScheme::PyTorch,
        forget_bias: ForgetBias::One,
    }
    .apply(config, params, seed)
}

/// The block: encoder, pooling, dropout, output width and the ranges of its sub-block.
/// Parameters, gradients, caches and workspaces are owned by the caller.
#[derive(Clone, Debug)]
pub struct EncoderHead {
    encoder: SeqEncoder,
    /// Pooling over time before the head (`None`: the head reads every step).
    pool: Option<Pooling>,
    drop: Dropout,
    /// Output width `K`.
    outputs: usize,
    /// Ranges within the block: the encoder, `weight [K, D·H]`, `bias [K]`.
    rnn: Range<usize>,
    w: Range<usize>,
    b: Range<usize>,
}

/// What [`EncoderHead::forward_train`] keeps for [`EncoderHead::backward`].
#[derive(Debug, Default)]
pub struct EncoderHeadCache {
    /// Input dropout mask `[T, B, F]` (empty without dropout).
    x_mask: Vec<f32>,
    enc: EncoderCache,
    /// Encoder output `top[T, B, D·H]`; without pooling, after dropout (the head's input).
    top: Vec<f32>,
    /// With pooling: pooled features `[B, D·H]` after dropout (the head's input), and for max
    /// pooling the step of each maximum `[B, D·H]`.
    feat: Vec<f32>,
    argmax: Vec<u32>,
    /// Dropout mask of the head's input (empty without dropout).
    mask: Vec<f32>,
}

/// Scratch buffers, reused across calls.
#[derive(Debug, Default)]
pub struct EncoderHeadWorkspace {
    enc: EncoderWorkspace,
    /// Final states `[L·D, B, H]` (unused by the head).
    h_n: Vec<f32>,
    /// Encoder output `[T, B, D·H]`, pooled features `[B, D·H]` and max-pooling steps
    /// (inference).
    top: Vec<f32>,
    feat: Vec<f32>,
    argmax: Vec<u32>,
    /// `∂top[T, B, D·H]` and, with pooling, `∂feat[B, D·H]` (backward).
    dtop: Vec<f32>,
    dfeat: Vec<f32>,
    /// `∂x[T, B, F]` (backward): the gradient of the input before dropout.
    dx: Vec<f32>,
}

impl EncoderHeadCache {
    /// The dropout mask of the encoder's input `[T, B, F]` (empty without dropout).
    pub fn input_mask(&self) -> &[f32] {
        &self.x_mask
    }
}

impl EncoderHead {
    /// A block over the encoder `config` (input `F`), with dropout `p` on the encoder's input
    /// and on the head's input, and `outputs` (`K`) values per head row; the head reads every
    /// step ([`EncoderHead::pooled`] changes that).
    pub fn new(config: RnnConfig, dropout: f32, outputs: usize) -> Result<Self> {
        let encoder = SeqEncoder::new(config)?;
        let rnn = 0..encoder.num_params();
        let w = rnn.end..rnn.end + outputs * encoder.output_size();
        let b = w.end..w.end + outputs;
        Ok(EncoderHead {
            encoder,
            pool: None,
            drop: standard_dropout(dropout),
            outputs,
            rnn,
            w,
            b,
        })
    }

    /// The same block with its dropout masks drawn as `kind` says (standard by default).
    pub fn with_dropout_kind(mut self, kind: crate::dropout::DropoutKind) -> Self {
        self.drop.kind = kind;
        self
    }

    /// The same block with the head reading one pooled vector per sequence.
    pub fn pooled(self, pooling: Pooling) -> Self {
        EncoderHead {
            pool: Some(pooling),
            ..self
        }
    }

    /// The head's input of the last training pass (`cache`) or, without one, of the last
    /// inference pass (`ws`): `top[T, B, D·H]`, or with pooling `feat[B, D·H]`; after dropout
    /// in training.
    pub fn last_head_input<'a>(
        &self,
        cache: Option<&'a EncoderHeadCache>,
        ws: &'a EncoderHeadWorkspace,
    ) -> &'a [f32] {
        match (self.pool, cache) {
            (None, Some(c)) => &c.top,
            (Some(_), Some(c)) => &c.feat,
            (None, None) => &ws.top,
            (Some(_), None) => &ws.feat,
        }
    }

    /// The encoder.
    pub fn encoder(&self) -> &SeqEncoder {
        &self.encoder
    }

    /// Rows `N` of the output for a batch of `b` sequences padded to `t` steps: `T·B`, or `B`
    /// with pooling.
    pub fn rows(&self, t: usize, b: usize) -> usize {
        match self.pool {
            Some(_) => b,
            None => t * b,
        }
    }

    /// Appends the block's tensors to a model's layout: the encoder under `rnn` (`rnn.*`),
    /// then `{dense}.weight [K, D·H]`, `{dense}.bias [K]`. Returns the block's range.
    pub fn push_params(&self, p: &mut ParamLayout, rnn: &str, dense: &str) -> Range<usize> {
        let start = p.len();
        p.push_rnn(rnn, self.encoder.layout());
        let k = self.outputs;
        p.push(
            format!("{dense}.weight"),
            vec![k, self.encoder.output_size()],
        );
        let end = p.push(format!("{dense}.bias"), vec![k]).end;
        start..end
    }

    /// Length of the block.
    pub fn num_params(&self) -> usize {
        self.b.end
    }

    /// Initial weights of the block `params`: the encoder `U(±1/√H)` (LSTM forget-gate bias 1)
    /// from `rnn_seed`, then the dense layer as `nn.Linear` from `rng`.
    pub fn init(&self, params: &mut [f32], rnn_seed: u64, rng: &mut SeqRng) -> Result<()> {
        init_recurrent(
            self.encoder.config(),
            &mut params[self.rnn.clone()],
            rnn_seed,
        )?;
        let (w, b) = params[self.w.start..].split_at_mut(self.w.len());
        dense::init(w, b, self.encoder.output_size(), rng);
        Ok(())
    }

    /// `out[N, K] = y[N, D·H] · Wᵀ + b`, the head on its input rows `y`.
    /// `out = y · Wᵀ + b` through `forward` ([`dense::forward`] in training,
    /// [`dense::forward_rows`] in inference).
    fn dense(
        &self,
        params: &[f32],
        y: &[f32],
        out: &mut [f32],
        forward: DenseForward,
    ) -> Result<()> {
        let (f, k) = (self.encoder.output_size(), self.outputs);
        let n = y.len() / f;
        if out.len() != n * k {
            return Err(Error::Shape(format!(
                "output out[N, K] has {} values, expected {n}·{k}",
                out.len()
            )));
        }
        let (w, b) = (&params[self.w.clone()], &params[self.b.clone()]);
        forward(w, b, y, out, n, f, k);
        Ok(())
    }

    /// The head's input and its steps per sequence: the encoder output `top[T, B, D·H]` itself
    /// (`T` steps), or its pooling into `feat[B, D·H]` (one step; `argmax` for max pooling).
    fn head_input<'a>(
        &self,
        top: &'a mut Vec<f32>,
        lens: &[usize],
        t: usize,
        feat: &'a mut Vec<f32>,
        argmax: &mut Vec<u32>,
    ) -> (&'a mut Vec<f32>, usize) {
        match self.pool {
            Some(pool) => {
                let (h, dh) = (
                    self.encoder.config().hidden_size,
                    self.encoder.output_size(),
                );
                pool.forward(top, lens, h, dh, feat, argmax);
                (feat, 1)
            }
            None => (top, t),
        }
    }

    /// Inference pass: no dropout, nothing cached.
    ///
    /// - `params`: read, the block. `x[T, B, F]`: read; `lens[B]`: real lengths in `1..=T`.
    /// - `out[N, K]`: written, `N` = [`EncoderHead::rows`].
    pub fn forward_infer(
        &self,
        params: &[f32],
        x: &[f32],
        lens: &[usize],
        t: usize,
        out: &mut [f32],
        ws: &mut EncoderHeadWorkspace,
    ) -> Result<()> {
        let p = &params[self.rnn.clone()];
        let (top, h_n) = (&mut ws.top, &mut ws.h_n);
        self.encoder
            .forward_infer(p, x, lens, t, top, h_n, &mut ws.enc)?;
        let (y, _) = self.head_input(&mut ws.top, lens, t, &mut ws.feat, &mut ws.argmax);
        self.dense(params, y, out, dense::forward_rows)
    }

    /// Training pass: as [`EncoderHead::forward_infer`] with dropout masks from `rng` (the
    /// input first, then the head's input), and fills `cache` for [`EncoderHead::backward`].
    ///
    /// - `x[T, B, F]`: read, and overwritten by its dropped-out values.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_train(
        &self,
        params: &[f32],
        x: &mut [f32],
        lens: &[usize],
        t: usize,
        out: &mut [f32],
        cache: &mut EncoderHeadCache,
        ws: &mut EncoderHeadWorkspace,
        rng: &mut RowRng,
    ) -> Result<()> {
        let b = lens.len();
        cache.x_mask.clear();
        cache.mask.clear();
        if self.drop.is_active() {
            self.drop.apply_train(x, &mut cache.x_mask, t, b, rng);
        }
        self.encoder.forward_train(
            &params[self.rnn.clone()],
            x,
            lens,
            t,
            &mut cache.top,
            &mut ws.h_n,
            &mut cache.enc,
            &mut ws.enc,
            rng,
        )?;
        let (top, feat) = (&mut cache.top, &mut cache.feat);
        let (y, steps) = self.head_input(top, lens, t, feat, &mut cache.argmax);
        if self.drop.is_active() {
            self.drop.apply_train(y, &mut cache.mask, steps, b, rng);
        }
        self.dense(params, y, out, dense::forward)
    }

    /// [`EncoderHead::forward_train`] with `train = Some((cache, rng))`, else
    /// [`EncoderHead::forward_infer`] (`x` is then only read).
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        params: &[f32],
        x: &mut [f32],
        lens: &[usize],
        t: usize,
        out: &mut [f32],
        train: Option<(&mut EncoderHeadCache, &mut RowRng)>,
        ws: &mut EncoderHeadWorkspace,
    ) -> Result<()> {
        match train {
            Some((cache, rng)) => self.forward_train(params, x, lens, t, out, cache, ws, rng),
            None => self.forward_infer(params, x, lens, t, out, ws),
        }
    }

    /// Backward pass of the last [`EncoderHead::forward_train`]; returns `∂x[T, B, F]` (the
    /// input before dropout, zero at padding), kept in `ws`.
    ///
    /// - `params`: read, the block. `grads`: accumulated (`+=`), the block's gradient.
    /// - `dout[N, K]`: read, `∂L/∂out`.
    pub fn backward<'w>(
        &self,
        params: &[f32],
        grads: &mut [f32],
        cache: &EncoderHeadCache,
        dout: &[f32],
        ws: &'w mut EncoderHeadWorkspace,
    ) -> Result<&'w [f32]> {
        self.backward_with(params, grads, cache, dout, None, ws)
    }

    /// [`EncoderHead::backward`] when a second reader of the head's input
    /// ([`EncoderHead::last_head_input`]) adds its gradient `dextra[N, D·H]` to the head's.
    pub fn backward_with<'w>(
        &self,
        params: &[f32],
        grads: &mut [f32],
        cache: &EncoderHeadCache,
        dout: &[f32],
        dextra: Option<&[f32]>,
        ws: &'w mut EncoderHeadWorkspace,
    ) -> Result<&'w [f32]> {
        let (h, f, k) = (
            self.encoder.config().hidden_size,
            self.encoder.output_size(),
            self.outputs,
        );
        let (t, lens) = (cache.enc.t(), cache.enc.lens());
        let (y, dy) = match self.pool {
            Some(_) => (&cache.feat, &mut ws.dfeat),
            None => (&cache.top, &mut ws.dtop),
        };
        let n = self.rows(t, lens.len());
        fit(dy, n * f);
        {
            let (lo, hi) = grads.split_at_mut(self.b.start);
            let (gw, gb) = (&mut lo[self.w.clone()], &mut hi[..self.b.len()]);
            dense::backward(&params[self.w.clone()], y, dout, gw, gb, dy, n, f, k);
        }
        if let Some(extra) = dextra {
            if extra.len() != dy.len() {
                return Err(Error::Shape(format!(
                    "the extra gradient of the head's input has {} values, expected {}",
                    extra.len(),
                    dy.len()
                )));
            }
            dy.iter_mut().zip(extra).for_each(|(d, e)| *d += e);
        }
        if !cache.mask.is_empty() {
            apply_mask(dy, &cache.mask);
        }
        if let Some(pool) = self.pool {
            pool.backward(&ws.dfeat, lens, t, h, f, &cache.argmax, &mut ws.dtop);
        }
        fit(
            &mut ws.dx,
            t * lens.len() * self.encoder.config().input_size,
        );
        self.encoder.backward(
            &params[self.rnn.clone()],
            &mut grads[self.rnn.clone()],
            &cache.enc,
            &ws.dtop,
            None,
            &mut ws.dx,
            &mut ws.enc,
        )?;
        if !cache.x_mask.is_empty() {
            apply_mask(&mut ws.dx, &cache.x_mask);
        }
        Ok(&ws.dx)
    }
}

//! Direct multi-step forecaster: a window of `L` past steps of `I` (standardised) features runs
//! through an LSTM/GRU stack; from its final output the model predicts the next `K` steps of `C`
//! target columns at once.
//!
//! Two heads ([`ForecastHead`]):
//! - `Dense`: one linear layer `head.weight [K·C, H]`, `head.bias [K·C]` on the final output
//!   `h_L [B, H]` gives all `K·C` values;
//! - `Decoder`: a one-layer recurrent decoder (`decoder.weight_ih_l0 …`, same cell, `H` units)
//!   is unrolled over the `K` horizon steps with `h_L` as its input at every step (an
//!   encoder–decoder with a repeated context), then `head.weight [C, H]`, `head.bias [C]` per step.
//!
//! That is [`Arch::Rnn`]; [`Arch::SegRnn`] (the `segrnn` submodule) is SegRNN: segments of each
//! column embedded, a recurrent encoder over them and the future segments decoded in parallel.
//! Both train on [`ForecastLoss`] (MSE or MAE).
//!
//! Parameters are one block: `rnn.*` (PyTorch names, [`crate::rnn::RnnLayout`]), then
//! `decoder.*` when present, then `head.weight`, `head.bias`. Inputs are time-major
//! `x[L, B, I]`, forecasts and targets batch-major `y[B, K, C]`. The loss is over all `B·K·C`
//! values.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::dropout::{rng_from_seed, RowRng};
use crate::error::{Error, Result};
use crate::linalg::fit;
use crate::model::dense;
use crate::model::encoder_head::init_recurrent;
use crate::model::layout::check_backward;
use crate::model::layout::model_accessors;
use crate::model::layout::{NamedTensor, ParamLayout};
use crate::rnn::{CellKind, Direction, Rnn, RnnCache, RnnConfig, RnnState, RnnWorkspace, SeqShape};

mod segrnn;

/// How the horizon is produced from the encoder's final output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForecastHead {
    /// One dense layer for all `K` steps.
    #[default]
    Dense,
    /// A recurrent decoder unrolled over the horizon, then a dense layer per step.
    Decoder,
}

/// The forecaster's architecture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// A recurrent stack over the window's rows, then a [`ForecastHead`].
    #[default]
    Rnn,
    /// SegRNN (Lin et al. 2023): channel-independent, the lookback cut into segments, a
    /// one-layer recurrent encoder over them and parallel decoding of the future segments.
    #[serde(rename = "segrnn")]
    SegRnn,
}

/// The training loss, over every forecast value (standardised scale).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForecastLoss {
    /// Mean squared error.
    #[default]
    Mse,
    /// Mean absolute error (SegRNN's training loss).
    Mae,
}

impl ForecastLoss {
    /// The loss of error `e = prediction − truth` and its derivative, each divided by `n`.
    fn value_and_grad(self, e: f32, n: usize) -> (f64, f32) {
        match self {
            ForecastLoss::Mse => ((e as f64).powi(2), 2.0 * e / n as f32),
            ForecastLoss::Mae => {
                let g = if e > 0.0 {
                    1.0
                } else if e < 0.0 {
                    -1.0
                } else {
                    0.0
                };
                ((e as f64).abs(), g / n as f32)
            }
        }
    }
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Shape of a forecaster. `validate()` before use.
///
/// The fields after `head` were added with [`Arch::SegRnn`]; at their defaults they are not
/// written, so the configuration of a recurrent forecaster reads as before.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForecasterConfig {
    /// Input features per step `I`.
    pub inputs: usize,
    /// Forecast columns `C`.
    pub outputs: usize,
    /// Past steps per window `L`.
    pub lookback: usize,
    /// Steps forecast `K`.
    pub horizon: usize,
    /// Recurrent cell.
    pub cell: CellKind,
    /// Units per layer `H`.
    pub hidden: usize,
    /// Encoder layers.
    pub layers: usize,
    /// Output head ([`Arch::Rnn`]).
    pub head: ForecastHead,
    /// Architecture.
    #[serde(default, skip_serializing_if = "is_default")]
    pub arch: Arch,
    /// Segment length `W` ([`Arch::SegRnn`]; 0 otherwise).
    #[serde(default, skip_serializing_if = "is_default")]
    pub segment: usize,
    /// Dropout before the output layer ([`Arch::SegRnn`]).
    #[serde(default, skip_serializing_if = "is_default")]
    pub dropout: f32,
    /// Training loss.
    #[serde(default, skip_serializing_if = "is_default")]
    pub loss: ForecastLoss,
}

impl Default for ForecasterConfig {
    fn default() -> Self {
        ForecasterConfig {
            inputs: 1,
            outputs: 1,
            lookback: 96,
            horizon: 24,
            cell: CellKind::Lstm,
            hidden: 64,
            layers: 1,
            head: ForecastHead::Dense,
            arch: Arch::Rnn,
            segment: 0,
            dropout: 0.0,
            loss: ForecastLoss::Mse,
        }
    }
}

impl ForecasterConfig {
    /// Checks that every size is positive.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("input features", self.inputs),
            ("forecast columns", self.outputs),
            ("lookback", self.lookback),
            ("horizon", self.horizon),
            ("hidden size", self.hidden),
            ("number of layers", self.layers),
        ] {
            if v == 0 {
                return Err(Error::Config(format!("{name} must be at least 1, got 0")));
            }
        }
        crate::dropout::Dropout {
            p: self.dropout,
            ..Default::default()
        }
        .validate()?;
        match self.arch {
            Arch::Rnn if self.dropout > 0.0 => Err(Error::Config(
                "dropout before the output layer is SegRNN's (--arch segrnn)".into(),
            )),
            Arch::Rnn => Ok(()),
            Arch::SegRnn => self.validate_segrnn(),
        }
    }

    /// The encoder stack's configuration.
    pub fn encoder(&self) -> RnnConfig {
        RnnConfig {
            cell: self.cell,
            input_size: self.inputs,
            hidden_size: self.hidden,
            num_layers: self.layers,
            direction: Direction::Forward,
        }
    }

    /// The recurrent decoder's configuration (with [`ForecastHead::Decoder`]).
    pub fn decoder(&self) -> RnnConfig {
        RnnConfig {
            cell: self.cell,
            input_size: self.hidden,
            hidden_size: self.hidden,
            num_layers: 1,
            direction: Direction::Forward,
        }
    }

    /// Rows of `head.weight`: `K·C` (dense head) or `C` (decoder).
    fn head_rows(&self) -> usize {
        match self.head {
            ForecastHead::Dense => self.horizon * self.outputs,
            ForecastHead::Decoder => self.outputs,
        }
    }
}

/// A forecaster: configuration, stacks and layout; parameters are owned by the caller.
#[derive(Clone, Debug)]
pub struct Forecaster {
    config: ForecasterConfig,
    encoder: Rnn,
    decoder: Option<Rnn>,
    params: ParamLayout,
    rnn: Range<usize>,
    dec: Range<usize>,
    head_w: Range<usize>,
    head_b: Range<usize>,
    /// The segment embedding and decoder inputs of [`Arch::SegRnn`] (whose encoder and decoder
    /// share `encoder`, and whose output layer is `head.*`).
    seg: Option<segrnn::SegParams>,
}

/// What a training forward pass keeps for backward, reused across calls.
#[derive(Debug, Default)]
pub struct ForecastCache {
    b: usize,
    enc: RnnCache,
    dec: RnnCache,
    /// `y_enc[L, B, H]`.
    y_enc: Vec<f32>,
    /// Decoder input `[K, B, H]` and output `[K, B, H]`.
    xd: Vec<f32>,
    yd: Vec<f32>,
    /// `∂L/∂out` in the head's row order: `[B, K·C]` (dense) or `[K·B, C]` (decoder).
    dout: Vec<f32>,
    /// [`Arch::SegRnn`]'s cache.
    seg: segrnn::SegCache,
}

/// Scratch of inference and backward passes.
#[derive(Debug, Default)]
pub struct ForecastWorkspace {
    rnn: RnnWorkspace,
    y_enc: Vec<f32>,
    xd: Vec<f32>,
    yd: Vec<f32>,
    out: Vec<f32>,
    dy: Vec<f32>,
    dh: Vec<f32>,
    dx: Vec<f32>,
    dxd: Vec<f32>,
    /// [`Arch::SegRnn`]'s scratch.
    seg: segrnn::SegWorkspace,
}

impl Forecaster {
    /// A forecaster for `config`, after validating it.
    pub fn new(config: ForecasterConfig) -> Result<Self> {
        config.validate()?;
        if config.arch == Arch::SegRnn {
            return Self::new_segrnn(config);
        }
        let encoder = Rnn::new(config.encoder())?;
        let decoder = match config.head {
            ForecastHead::Dense => None,
            ForecastHead::Decoder => Some(Rnn::new(config.decoder())?),
        };
        let mut params = ParamLayout::new();
        let rnn = params.push_rnn("rnn", encoder.layout());
        let dec = match &decoder {
            Some(d) => params.push_rnn("decoder", d.layout()),
            None => rnn.end..rnn.end,
        };
        let rows = config.head_rows();
        let head_w = params.push("head.weight", vec![rows, config.hidden]);
        let head_b = params.push("head.bias", vec![rows]);
        Ok(Forecaster {
            config,
            encoder,
            decoder,
            params,
            rnn,
            dec,
            head_w,
            head_b,
            seg: None,
        })
    }

    model_accessors!(ForecasterConfig, "Every tensor of the parameter block (`rnn.*`, `decoder.*`, `head.*`); it writes and reads the model's files.");

    /// Initial weights: recurrent layers `U(±1/√H)` with the LSTM forget-gate bias 1, heads as
    /// PyTorch's `nn.Linear`. The same seed gives the same values.
    pub fn init_params(&self, seed: u64) -> Result<Vec<f32>> {
        if let Some(seg) = &self.seg {
            return self.init_segrnn(seg, seed);
        }
        let mut p = vec![0.0; self.num_params()];
        init_recurrent(self.encoder.config(), &mut p[self.rnn.clone()], seed)?;
        if let Some(d) = &self.decoder {
            init_recurrent(d.config(), &mut p[self.dec.clone()], seed.wrapping_add(1))?;
        }
        let mut rng = rng_from_seed(seed.wrapping_add(2));
        let (w, b) = p[self.head_w.start..].split_at_mut(self.head_w.len());
        dense::init(w, b, self.config.hidden, &mut rng);
        Ok(p)
    }

    /// Every tensor: name, shape, range in the block (`rnn.*`, `decoder.*`, `head.*`; for
    /// SegRNN `embed.*`, `rnn.*`, `position`, `channel`, `head.*`).
    pub fn tensors(&self) -> Vec<NamedTensor> {
        self.params.named()
    }

    fn check(&self, params: &[f32], x: &[f32], b: usize) -> Result<()> {
        let c = &self.config;
        self.params.check_block("parameter block", params.len())?;
        if b == 0 || x.len() != c.lookback * b * c.inputs {
            return Err(Error::Shape(format!(
                "input x[L, B, I] has {} values, expected {}·{b}·{}",
                x.len(),
                c.lookback,
                c.inputs
            )));
        }
        Ok(())
    }

    /// Runs the head on the encoder output `y_enc[L, B, H]`; writes `out` in head row order.
    #[allow(clippy::too_many_arguments)]
    fn head_forward(
        &self,
        params: &[f32],
        y_enc: &[f32],
        b: usize,
        xd: &mut Vec<f32>,
        yd: &mut Vec<f32>,
        out: &mut Vec<f32>,
        dec_pass: DecoderPass<'_>,
    ) -> Result<()> {
        let c = &self.config;
        let h = c.hidden;
        let last = &y_enc[(c.lookback - 1) * b * h..];
        let (w, bias) = (&params[self.head_w.clone()], &params[self.head_b.clone()]);
        // Inference is batch-invariant: a window's forecast is the same, to the bit, whatever
        // other windows share its batch.
        let dense_forward = match dec_pass {
            DecoderPass::Train(..) => dense::forward,
            DecoderPass::Infer(_) => dense::forward_rows,
        };
        match &self.decoder {
            None => {
                fit(out, b * c.horizon * c.outputs);
                dense_forward(w, bias, last, out, b, h, c.horizon * c.outputs);
            }
            Some(d) => {
                fit(xd, c.horizon * b * h);
                for step in xd.chunks_exact_mut(b * h) {
                    step.copy_from_slice(last);
                }
                fit(yd, c.horizon * b * h);
                let shape = SeqShape { t: c.horizon, b };
                let mut state = RnnState::zeros(d.config(), b);
                let dp = &params[self.dec.clone()];
                match dec_pass {
                    DecoderPass::Train(cache, rng) => {
                        d.forward_train(dp, xd, shape, &mut state, yd, cache, rng)?
                    }
                    DecoderPass::Infer(ws) => {
                        d.forward_infer_packed(&d.pack(dp)?, xd, shape, &mut state, yd, ws)?
                    }
                }
                fit(out, c.horizon * b * c.outputs);
                dense_forward(w, bias, yd, out, c.horizon * b, h, c.outputs);
            }
        }
        Ok(())
    }

    /// Index into head-order output of batch row `r`, step `s`, column `j`.
    fn head_index(&self, b: usize, r: usize, s: usize, j: usize) -> usize {
        let c = &self.config;
        match self.config.head {
            ForecastHead::Dense => (r * c.horizon + s) * c.outputs + j,
            ForecastHead::Decoder => (s * b + r) * c.outputs + j,
        }
    }

    /// Forecasts: `x[L, B, I]` in, `y[B, K, C]` out.
    pub fn predict(
        &self,
        params: &[f32],
        x: &[f32],
        b: usize,
        y: &mut [f32],
        ws: &mut ForecastWorkspace,
    ) -> Result<()> {
        self.check(params, x, b)?;
        let c = self.config;
        if y.len() != b * c.horizon * c.outputs {
            return Err(Error::Shape(format!(
                "forecast y[B, K, C] has {} values, expected {}",
                y.len(),
                b * c.horizon * c.outputs
            )));
        }
        if let Some(seg) = &self.seg {
            return self.predict_segrnn(seg, params, x, b, y, &mut ws.seg);
        }
        fit(&mut ws.y_enc, c.lookback * b * c.hidden);
        let mut state = RnnState::zeros(self.encoder.config(), b);
        self.encoder.forward_infer_packed(
            &self.encoder.pack(&params[self.rnn.clone()])?,
            x,
            SeqShape { t: c.lookback, b },
            &mut state,
            &mut ws.y_enc,
            &mut ws.rnn,
        )?;
        let mut rnn_ws = std::mem::take(&mut ws.rnn);
        let r = self.head_forward(
            params,
            &ws.y_enc,
            b,
            &mut ws.xd,
            &mut ws.yd,
            &mut ws.out,
            DecoderPass::Infer(&mut rnn_ws),
        );
        ws.rnn = rnn_ws;
        r?;
        for r in 0..b {
            for s in 0..c.horizon {
                for j in 0..c.outputs {
                    y[(r * c.horizon + s) * c.outputs + j] = ws.out[self.head_index(b, r, s, j)];
                }
            }
        }
        Ok(())
    }

    /// Training forward pass: returns the loss ([`ForecastLoss`]) against `target[B, K, C]` and
    /// keeps in `cache` what [`Forecaster::backward`] needs. `rng` draws the dropout masks
    /// (SegRNN's; the recurrent architecture has none).
    pub fn forward_train(
        &self,
        params: &[f32],
        x: &[f32],
        target: &[f32],
        b: usize,
        cache: &mut ForecastCache,
        rng: &mut RowRng,
    ) -> Result<f64> {
        self.check(params, x, b)?;
        let c = self.config;
        let n = b * c.horizon * c.outputs;
        if target.len() != n {
            return Err(Error::Shape(format!(
                "target y[B, K, C] has {} values, expected {n}",
                target.len()
            )));
        }
        if let Some(seg) = &self.seg {
            return self.forward_segrnn(seg, params, x, target, b, &mut cache.seg, rng);
        }
        cache.b = b;
        fit(&mut cache.y_enc, c.lookback * b * c.hidden);
        let mut state = RnnState::zeros(self.encoder.config(), b);
        self.encoder.forward_train(
            &params[self.rnn.clone()],
            x,
            SeqShape { t: c.lookback, b },
            &mut state,
            &mut cache.y_enc,
            &mut cache.enc,
            rng,
        )?;
        let mut out = std::mem::take(&mut cache.dout);
        let r = self.head_forward(
            params,
            &cache.y_enc,
            b,
            &mut cache.xd,
            &mut cache.yd,
            &mut out,
            DecoderPass::Train(&mut cache.dec, rng),
        );
        cache.dout = out;
        r?;
        // Loss, and its gradient written over the output in head order.
        let mut loss = 0.0f64;
        for r in 0..b {
            for s in 0..c.horizon {
                for j in 0..c.outputs {
                    let k = self.head_index(b, r, s, j);
                    let e = cache.dout[k] - target[(r * c.horizon + s) * c.outputs + j];
                    let (l, g) = c.loss.value_and_grad(e, n);
                    loss += l;
                    cache.dout[k] = g;
                }
            }
        }
        Ok(loss / n as f64)
    }

    /// Backward pass of the last [`Forecaster::forward_train`]: accumulates (`+=`) the gradient
    /// of the loss into `grads` (same layout as `params`).
    pub fn backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        cache: &ForecastCache,
        ws: &mut ForecastWorkspace,
    ) -> Result<()> {
        if let Some(seg) = &self.seg {
            return self.backward_segrnn(seg, params, grads, &cache.seg, &mut ws.seg);
        }
        let c = self.config;
        let (b, h) = (cache.b, c.hidden);
        check_backward(grads.len(), self.num_params(), b)?;
        let w = &params[self.head_w.clone()];
        let (g_rest, g_head) = grads.split_at_mut(self.head_w.start);
        let (gw, gb) = g_head.split_at_mut(self.head_w.len());
        fit(&mut ws.dh, b * h);
        let last = &cache.y_enc[(c.lookback - 1) * b * h..];
        match &self.decoder {
            None => {
                let o = c.horizon * c.outputs;
                dense::backward(w, last, &cache.dout, gw, gb, &mut ws.dh, b, h, o);
            }
            Some(d) => {
                let rows = c.horizon * b;
                fit(&mut ws.dy, rows * h);
                dense::backward(
                    w,
                    &cache.yd,
                    &cache.dout,
                    gw,
                    gb,
                    &mut ws.dy,
                    rows,
                    h,
                    c.outputs,
                );
                fit(&mut ws.dxd, rows * h);
                let mut dstate = RnnState::zeros(d.config(), b);
                d.backward(
                    &params[self.dec.clone()],
                    &mut g_rest[self.dec.clone()],
                    &cache.dec,
                    &ws.dy,
                    &mut dstate,
                    &mut ws.dxd,
                    &mut ws.rnn,
                )?;
                ws.dh.fill(0.0);
                for step in ws.dxd.chunks_exact(b * h) {
                    ws.dh.iter_mut().zip(step).for_each(|(a, g)| *a += g);
                }
            }
        }
        // ∂L/∂y_enc: only the last step is used.
        fit(&mut ws.dy, c.lookback * b * h);
        ws.dy.fill(0.0);
        ws.dy[(c.lookback - 1) * b * h..].copy_from_slice(&ws.dh);
        fit(&mut ws.dx, c.lookback * b * c.inputs);
        let mut dstate = RnnState::zeros(self.encoder.config(), b);
        self.encoder.backward(
            &params[self.rnn.clone()],
            &mut g_rest[self.rnn.clone()],
            &cache.enc,
            &ws.dy,
            &mut dstate,
            &mut ws.dx,
            &mut ws.rnn,
        )
    }
}

/// Which forward pass the decoder runs.
enum DecoderPass<'a> {
    Train(&'a mut RnnCache, &'a mut RowRng),
    Infer(&'a mut RnnWorkspace),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{check_gradients, FdCheck};
    use crate::rnn::GruVariant;
    use rand::RngExt;

    /// Central finite differences of the loss along every parameter (f32, so a loose check
    /// relative to the gradient's size) for both heads and both cells.
    #[test]
    fn gradients_match_finite_differences() {
        for (head, cell) in [
            (ForecastHead::Dense, CellKind::Lstm),
            (ForecastHead::Decoder, CellKind::Gru(GruVariant::ResetAfter)),
            (ForecastHead::Decoder, CellKind::Lstm),
        ] {
            let cfg = ForecasterConfig {
                inputs: 3,
                outputs: 2,
                lookback: 5,
                horizon: 3,
                cell,
                hidden: 4,
                layers: 2,
                head,
                ..Default::default()
            };
            let m = Forecaster::new(cfg).unwrap();
            let mut p = m.init_params(3).unwrap();
            let b = 2;
            let mut rng = rng_from_seed(9);
            let x: Vec<f32> = (0..5 * b * 3)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let y: Vec<f32> = (0..b * 3 * 2)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let mut cache = ForecastCache::default();
            let mut ws = ForecastWorkspace::default();
            let loss = m
                .forward_train(&p, &x, &y, b, &mut cache, &mut RowRng::new(9, 0))
                .unwrap();
            let mut g = vec![0.0; m.num_params()];
            m.backward(&p, &mut g, &cache, &mut ws).unwrap();
            // predict agrees with the training forward pass.
            let mut out = vec![0.0; y.len()];
            m.predict(&p, &x, b, &mut out, &mut ws).unwrap();
            let mse: f64 = out
                .iter()
                .zip(&y)
                .map(|(a, t)| ((a - t) as f64).powi(2))
                .sum::<f64>()
                / y.len() as f64;
            assert!((mse - loss).abs() < 1e-6, "{mse} vs {loss}");
            let what = format!("{head:?} {cell:?}");
            check_gradients(
                &what,
                &mut p,
                &g,
                FdCheck::new(2e-3, 1e-4),
                |_| false,
                |p| {
                    m.forward_train(p, &x, &y, b, &mut cache, &mut RowRng::new(9, 0))
                        .unwrap()
                },
            );
        }
    }

    #[test]
    fn wrong_sizes_are_errors() {
        let m = Forecaster::new(ForecasterConfig::default()).unwrap();
        let p = m.init_params(1).unwrap();
        let mut ws = ForecastWorkspace::default();
        assert!(m
            .predict(&p, &[0.0; 3], 1, &mut [0.0; 24], &mut ws)
            .is_err());
        assert!(Forecaster::new(ForecasterConfig {
            horizon: 0,
            ..ForecasterConfig::default()
        })
        .is_err());
    }
}

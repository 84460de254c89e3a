//! SegRNN (Lin et al. 2023, "Segment Recurrent Neural Network for Long-Term Time Series
//! Forecasting"), [`Arch::SegRnn`]: the forecaster's second architecture.
//!
//! Sizes: `B` windows, `C` channels (inputs = outputs), lookback `L`, horizon `K`, segment
//! length `W`, `N = L/W` input segments, `M = K/W` future segments, `D` units. Each channel of
//! each window is its own sequence (row `r·C + c` of `B·C`):
//! - segment embedding `e[N, B·C, D] = ReLU(seg[N, B·C, W] · embed.weight[D, W]ᵀ + embed.bias)`,
//!   `seg[n, r·C + c, w] = x[n·W + w, r, c]`;
//! - encoder: the one-layer recurrent `rnn.*` over the `N` segments from a zero state, final
//!   state `h[B·C, D]` (and `c` for the LSTM);
//! - parallel decoding: row `(r·C + c)·M + m` of `B·C·M` gets the input
//!   `[position[m, D/2], channel[c, D/2]]` and the initial state `h[r·C + c]`; one step of the
//!   same `rnn.*` gives `hy[B·C·M, D]`;
//! - dropout on `hy`, then `out[B·C·M, W] = hy · head.weight[W, D]ᵀ + head.bias`: the `W` values
//!   of segment `m` of channel `c` of window `r`, i.e. `y[r, m·W + w, c]`.

use super::*;
use crate::dropout::{apply_mask, Dropout};
use crate::model::embedding::init_normal;

/// The ranges of SegRNN's own tensors in the parameter block.
#[derive(Clone, Debug)]
pub(super) struct SegParams {
    /// `embed.weight [D, W]`, `embed.bias [D]`.
    embed_w: Range<usize>,
    embed_b: Range<usize>,
    /// `position [M, D/2]`, `channel [C, D/2]`: the decoder's input embeddings.
    pos: Range<usize>,
    chan: Range<usize>,
}

/// What SegRNN's training forward pass keeps for backward.
#[derive(Debug, Default)]
pub(super) struct SegCache {
    b: usize,
    /// `seg[N, B·C, W]`: the segments (the embedding's input).
    seg: Vec<f32>,
    /// `e[N, B·C, D]`: the embeddings after ReLU (their sign is ReLU's derivative).
    emb: Vec<f32>,
    enc: RnnCache,
    dec: RnnCache,
    /// `hy[B·C·M, D]`: the decoder output after dropout (the output layer's input).
    hy: Vec<f32>,
    /// `mask[B·C·M, D]`: the dropout mask (empty without dropout).
    mask: Vec<f32>,
    /// `dout[B·C·M, W]`: `∂L/∂out`.
    dout: Vec<f32>,
    /// Scratch of the forward pass: encoder output `[N, B·C, D]`, decoder input `[B·C·M, D]`.
    y_enc: Vec<f32>,
    xd: Vec<f32>,
}

/// SegRNN's scratch for inference and backward.
#[derive(Debug, Default)]
pub(super) struct SegWorkspace {
    rnn: RnnWorkspace,
    /// Inference: `seg`, `emb`, `y_enc`, `xd`, `hy`, `out` as in [`SegCache`].
    seg: Vec<f32>,
    emb: Vec<f32>,
    y_enc: Vec<f32>,
    xd: Vec<f32>,
    hy: Vec<f32>,
    out: Vec<f32>,
    /// Backward: `dhy[B·C·M, D]`, `dxd[B·C·M, D]`, `dy_enc[N, B·C, D]`, `demb[N, B·C, D]`.
    dhy: Vec<f32>,
    dxd: Vec<f32>,
    dy_enc: Vec<f32>,
    demb: Vec<f32>,
}

/// SegRNN's sizes of one batch.
#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    c: usize,
    n: usize,
    m: usize,
    w: usize,
    d: usize,
}

impl Dims {
    /// Channel sequences `B·C`.
    fn bc(&self) -> usize {
        self.b * self.c
    }
    /// Decoder rows `B·C·M`.
    fn rows(&self) -> usize {
        self.b * self.c * self.m
    }
}

impl ForecasterConfig {
    /// SegRNN's sizes: segments dividing the lookback and horizon, an even width, one layer
    /// and as many forecast columns as inputs (each channel forecasts itself).
    pub(super) fn validate_segrnn(&self) -> Result<()> {
        let w = self.segment;
        let bad = |m: String| Err(Error::Config(m));
        if w == 0 {
            return bad("the segment length must be at least 1, got 0".into());
        }
        if !self.lookback.is_multiple_of(w) {
            return bad(format!(
                "SegRNN needs the lookback ({}) to be a multiple of the segment length ({w})",
                self.lookback
            ));
        }
        if !self.horizon.is_multiple_of(w) {
            return bad(format!(
                "SegRNN needs the horizon ({}) to be a multiple of the segment length ({w})",
                self.horizon
            ));
        }
        if !self.hidden.is_multiple_of(2) {
            return bad(format!(
                "SegRNN needs an even hidden size (half position, half channel embedding), got {}",
                self.hidden
            ));
        }
        if self.layers != 1 {
            return bad(format!(
                "SegRNN has one recurrent layer, got {}",
                self.layers
            ));
        }
        if self.head != ForecastHead::Dense {
            return bad("the decoder head is the recurrent architecture's (SegRNN decodes the segments itself)".into());
        }
        if self.inputs != self.outputs {
            return bad(format!(
                "SegRNN forecasts each input column from its own past: it needs as many forecast columns as inputs (mode M or S), got {} inputs and {} forecast columns",
                self.inputs, self.outputs
            ));
        }
        Ok(())
    }

    /// SegRNN's recurrent layer, encoder and decoder alike: `D → D`.
    fn segrnn_rnn(&self) -> RnnConfig {
        RnnConfig {
            cell: self.cell,
            input_size: self.hidden,
            hidden_size: self.hidden,
            num_layers: 1,
            direction: Direction::Forward,
        }
    }

    fn dims(&self, b: usize) -> Dims {
        Dims {
            b,
            c: self.outputs,
            n: self.lookback / self.segment,
            m: self.horizon / self.segment,
            w: self.segment,
            d: self.hidden,
        }
    }
}

/// Which recurrent passes SegRNN runs.
enum SegPass<'a> {
    Train(&'a mut SegCache, &'a mut RowRng),
    Infer(&'a mut SegWorkspace),
}

impl Forecaster {
    /// The layout: `embed.*`, `rnn.*`, `position`, `channel`, `head.*`.
    pub(super) fn new_segrnn(config: ForecasterConfig) -> Result<Self> {
        let (w, d) = (config.segment, config.hidden);
        let encoder = Rnn::new(config.segrnn_rnn())?;
        let mut params = ParamLayout::new();
        let embed_w = params.push("embed.weight", vec![d, w]);
        let embed_b = params.push("embed.bias", vec![d]);
        let rnn = params.push_rnn("rnn", encoder.layout());
        let pos = params.push("position", vec![config.horizon / w, d / 2]);
        let chan = params.push("channel", vec![config.outputs, d / 2]);
        let head_w = params.push("head.weight", vec![w, d]);
        let head_b = params.push("head.bias", vec![w]);
        Ok(Forecaster {
            config,
            encoder,
            decoder: None,
            params,
            dec: rnn.end..rnn.end,
            rnn,
            head_w,
            head_b,
            seg: Some(SegParams {
                embed_w,
                embed_b,
                pos,
                chan,
            }),
        })
    }

    /// Linear layers as PyTorch's `nn.Linear`, the recurrent layer `U(±1/√D)` (forget-gate bias
    /// 1), the position and channel embeddings `N(0, 1)` (`torch.randn`).
    pub(super) fn init_segrnn(&self, seg: &SegParams, seed: u64) -> Result<Vec<f32>> {
        let (w, d) = (self.config.segment, self.config.hidden);
        let mut p = vec![0.0; self.num_params()];
        init_recurrent(self.encoder.config(), &mut p[self.rnn.clone()], seed)?;
        let mut rng = rng_from_seed(seed.wrapping_add(2));
        let (ew, eb) = p[seg.embed_w.start..seg.embed_b.end].split_at_mut(seg.embed_w.len());
        dense::init(ew, eb, w, &mut rng);
        init_normal(&mut p[seg.pos.start..seg.chan.end], 1.0, &mut rng);
        let (hw, hb) = p[self.head_w.start..self.head_b.end].split_at_mut(self.head_w.len());
        dense::init(hw, hb, d, &mut rng);
        Ok(p)
    }

    /// Forecasts `y[B, K, C]` from `x[L, B, C]`.
    pub(super) fn predict_segrnn(
        &self,
        seg: &SegParams,
        params: &[f32],
        x: &[f32],
        b: usize,
        y: &mut [f32],
        ws: &mut SegWorkspace,
    ) -> Result<()> {
        let mut out = std::mem::take(&mut ws.out);
        let r = self.segrnn_forward(seg, params, x, b, &mut out, SegPass::Infer(ws));
        self.segments_to_rows(&out, b, y);
        ws.out = out;
        r
    }

    /// Training forward pass: the loss against `target[B, K, C]`; keeps what backward reads.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn forward_segrnn(
        &self,
        seg: &SegParams,
        params: &[f32],
        x: &[f32],
        target: &[f32],
        b: usize,
        cache: &mut SegCache,
        rng: &mut RowRng,
    ) -> Result<f64> {
        let mut out = std::mem::take(&mut cache.dout);
        let r = self.segrnn_forward(seg, params, x, b, &mut out, SegPass::Train(cache, rng));
        cache.dout = out;
        r?;
        cache.b = b;
        let dm = self.config.dims(b);
        let n = b * self.config.horizon * dm.c;
        // The loss, and its gradient written over the output.
        let mut loss = 0.0;
        for (i, v) in cache.dout.iter_mut().enumerate() {
            let e = *v - target[self.row_index(dm, i)];
            let (l, g) = self.config.loss.value_and_grad(e, n);
            loss += l;
            *v = g;
        }
        Ok(loss / n as f64)
    }

    /// Index in `y[B, K, C]` of value `i` of `out[B·C·M, W]`.
    fn row_index(&self, dm: Dims, i: usize) -> usize {
        let (row, w) = (i / dm.w, i % dm.w);
        let (bc, m) = (row / dm.m, row % dm.m);
        let (r, c) = (bc / dm.c, bc % dm.c);
        (r * self.config.horizon + m * dm.w + w) * dm.c + c
    }

    /// `y[B, K, C]` from `out[B·C·M, W]`.
    fn segments_to_rows(&self, out: &[f32], b: usize, y: &mut [f32]) {
        let dm = self.config.dims(b);
        for (i, v) in out.iter().enumerate() {
            y[self.row_index(dm, i)] = *v;
        }
    }

    /// The forward pass to `out[B·C·M, W]`, with a cache (training) or without (inference).
    fn segrnn_forward(
        &self,
        seg: &SegParams,
        params: &[f32],
        x: &[f32],
        b: usize,
        out: &mut Vec<f32>,
        pass: SegPass<'_>,
    ) -> Result<()> {
        let dm = self.config.dims(b);
        let (bc, rows, d, w) = (dm.bc(), dm.rows(), dm.d, dm.w);
        let rnn_p = &params[self.rnn.clone()];
        let (ew, eb) = (&params[seg.embed_w.clone()], &params[seg.embed_b.clone()]);
        let (hw, hb) = (&params[self.head_w.clone()], &params[self.head_b.clone()]);
        let rnn = &self.encoder;
        fit(out, rows * w);
        match pass {
            SegPass::Train(cache, rng) => {
                segments(x, dm, &mut cache.seg);
                fit(&mut cache.emb, dm.n * bc * d);
                dense::forward(ew, eb, &cache.seg, &mut cache.emb, dm.n * bc, w, d);
                relu(&mut cache.emb);
                fit(&mut cache.y_enc, dm.n * bc * d);
                let mut state = RnnState::zeros(rnn.config(), bc);
                let shape = SeqShape { t: dm.n, b: bc };
                let y_enc = &mut cache.y_enc;
                rnn.forward_train(
                    rnn_p,
                    &cache.emb,
                    shape,
                    &mut state,
                    y_enc,
                    &mut cache.enc,
                    rng,
                )?;
                let mut dstate = repeat_state(&state, dm);
                decoder_inputs(params, seg, dm, &mut cache.xd);
                fit(&mut cache.hy, rows * d);
                let shape = SeqShape { t: 1, b: rows };
                let (xd, hy) = (&cache.xd, &mut cache.hy);
                rnn.forward_train(rnn_p, xd, shape, &mut dstate, hy, &mut cache.dec, rng)?;
                let drop = Dropout {
                    p: self.config.dropout,
                    ..Default::default()
                };
                if drop.is_active() {
                    // One mask row per window, so a split batch draws what one process would.
                    drop.apply_train(&mut cache.hy, &mut cache.mask, 1, b, rng);
                } else {
                    cache.mask.clear();
                }
                dense::forward(hw, hb, &cache.hy, out, rows, d, w);
            }
            SegPass::Infer(ws) => {
                let packs = rnn.pack(rnn_p)?;
                segments(x, dm, &mut ws.seg);
                fit(&mut ws.emb, dm.n * bc * d);
                dense::forward_rows(ew, eb, &ws.seg, &mut ws.emb, dm.n * bc, w, d);
                relu(&mut ws.emb);
                fit(&mut ws.y_enc, dm.n * bc * d);
                let mut state = RnnState::zeros(rnn.config(), bc);
                let shape = SeqShape { t: dm.n, b: bc };
                let (emb, y_enc) = (&ws.emb, &mut ws.y_enc);
                rnn.forward_infer_packed(&packs, emb, shape, &mut state, y_enc, &mut ws.rnn)?;
                let mut dstate = repeat_state(&state, dm);
                decoder_inputs(params, seg, dm, &mut ws.xd);
                fit(&mut ws.hy, rows * d);
                let shape = SeqShape { t: 1, b: rows };
                let (xd, hy) = (&ws.xd, &mut ws.hy);
                rnn.forward_infer_packed(&packs, xd, shape, &mut dstate, hy, &mut ws.rnn)?;
                dense::forward_rows(hw, hb, &ws.hy, out, rows, d, w);
            }
        }
        Ok(())
    }

    /// Backward of [`Forecaster::forward_segrnn`]: accumulates (`+=`) into `grads`.
    pub(super) fn backward_segrnn(
        &self,
        seg: &SegParams,
        params: &[f32],
        grads: &mut [f32],
        cache: &SegCache,
        ws: &mut SegWorkspace,
    ) -> Result<()> {
        check_backward(grads.len(), self.num_params(), cache.b)?;
        let dm = self.config.dims(cache.b);
        let (bc, rows, d, w, half) = (dm.bc(), dm.rows(), dm.d, dm.w, dm.d / 2);
        let rnn = &self.encoder;
        let rnn_p = &params[self.rnn.clone()];
        // Output layer, then dropout.
        fit(&mut ws.dhy, rows * d);
        let (gw, gb) = grads[self.head_w.start..self.head_b.end].split_at_mut(self.head_w.len());
        let hw = &params[self.head_w.clone()];
        dense::backward(hw, &cache.hy, &cache.dout, gw, gb, &mut ws.dhy, rows, d, w);
        if !cache.mask.is_empty() {
            apply_mask(&mut ws.dhy, &cache.mask);
        }
        // The decoder step: into its inputs (position, channel) and its initial state.
        fit(&mut ws.dxd, rows * d);
        let mut dstate = RnnState::zeros(rnn.config(), rows);
        let g_rnn = &mut grads[self.rnn.clone()];
        rnn.backward(
            rnn_p,
            g_rnn,
            &cache.dec,
            &ws.dhy,
            &mut dstate,
            &mut ws.dxd,
            &mut ws.rnn,
        )?;
        for (row, g) in ws.dxd.chunks_exact(d).enumerate() {
            let (m, c) = (row % dm.m, (row / dm.m) % dm.c);
            let gp = &mut grads[seg.pos.start + m * half..][..half];
            gp.iter_mut().zip(&g[..half]).for_each(|(a, v)| *a += v);
            let gc = &mut grads[seg.chan.start + c * half..][..half];
            gc.iter_mut().zip(&g[half..]).for_each(|(a, v)| *a += v);
        }
        // Every future segment's initial state is the encoder's final state.
        let mut denc = RnnState::zeros(rnn.config(), bc);
        sum_repeats(&dstate.h, &mut denc.h, dm);
        sum_repeats(&dstate.c, &mut denc.c, dm);
        fit(&mut ws.dy_enc, dm.n * bc * d);
        ws.dy_enc.fill(0.0);
        fit(&mut ws.demb, dm.n * bc * d);
        let g_rnn = &mut grads[self.rnn.clone()];
        let (dy, demb) = (&ws.dy_enc, &mut ws.demb);
        rnn.backward(rnn_p, g_rnn, &cache.enc, dy, &mut denc, demb, &mut ws.rnn)?;
        // ReLU, then the segment embedding.
        for (g, e) in ws.demb.iter_mut().zip(&cache.emb) {
            if *e <= 0.0 {
                *g = 0.0;
            }
        }
        let (gw, gb) = grads[seg.embed_w.start..seg.embed_b.end].split_at_mut(seg.embed_w.len());
        let ew = &params[seg.embed_w.clone()];
        dense::backward(ew, &cache.seg, &ws.demb, gw, gb, &mut [], dm.n * bc, w, d);
        Ok(())
    }
}

/// `seg[N, B·C, W]` from `x[L, B, C]`: `seg[n, r·C + c, w] = x[n·W + w, r, c]`.
fn segments(x: &[f32], dm: Dims, seg: &mut Vec<f32>) {
    let bc = dm.bc();
    fit(seg, dm.n * bc * dm.w);
    for (i, v) in seg.iter_mut().enumerate() {
        let (row, w) = (i / dm.w, i % dm.w);
        let (n, j) = (row / bc, row % bc);
        *v = x[(n * dm.w + w) * bc + j];
    }
}

fn relu(v: &mut [f32]) {
    v.iter_mut().for_each(|a| *a = a.max(0.0));
}

/// The decoder's initial state `[1, B·C·M, D]`: row `j·M + m` is the encoder's final row `j`.
fn repeat_state(enc: &RnnState, dm: Dims) -> RnnState {
    let d = dm.d;
    let repeat = |v: &[f32]| -> Vec<f32> {
        let mut out = Vec::with_capacity(v.len() * dm.m);
        for row in v.chunks_exact(d) {
            for _ in 0..dm.m {
                out.extend_from_slice(row);
            }
        }
        out
    };
    RnnState {
        h: repeat(&enc.h),
        c: repeat(&enc.c),
    }
}

/// Backward of [`repeat_state`] for one tensor: `out[j] = Σ_m g[j·M + m]`.
fn sum_repeats(g: &[f32], out: &mut [f32], dm: Dims) {
    let d = dm.d;
    for (j, o) in out.chunks_exact_mut(d).enumerate() {
        o.fill(0.0);
        for m in 0..dm.m {
            let src = &g[(j * dm.m + m) * d..][..d];
            o.iter_mut().zip(src).for_each(|(a, v)| *a += v);
        }
    }
}

/// The decoder inputs `xd[B·C·M, D]`: row `(r·C + c)·M + m` is `[position[m], channel[c]]`.
fn decoder_inputs(params: &[f32], seg: &SegParams, dm: Dims, xd: &mut Vec<f32>) {
    let half = dm.d / 2;
    let (pos, chan) = (&params[seg.pos.clone()], &params[seg.chan.clone()]);
    fit(xd, dm.rows() * dm.d);
    for (row, v) in xd.chunks_exact_mut(dm.d).enumerate() {
        let (m, c) = (row % dm.m, (row / dm.m) % dm.c);
        v[..half].copy_from_slice(&pos[m * half..][..half]);
        v[half..].copy_from_slice(&chan[c * half..][..half]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{check_gradients, FdCheck};
    use crate::rnn::GruVariant;
    use rand::RngExt;

    fn config(cell: CellKind, loss: ForecastLoss) -> ForecasterConfig {
        ForecasterConfig {
            inputs: 2,
            outputs: 2,
            lookback: 6,
            horizon: 4,
            cell,
            hidden: 4,
            layers: 1,
            head: ForecastHead::Dense,
            arch: Arch::SegRnn,
            segment: 2,
            dropout: 0.0,
            loss,
        }
    }

    /// Central finite differences of the whole model's loss along every parameter, for the
    /// GRU and LSTM cells and both losses, with and without dropout; `predict` agrees with the
    /// training pass.
    #[test]
    fn gradients_match_finite_differences() {
        for (cell, loss, dropout) in [
            (
                CellKind::Gru(GruVariant::ResetAfter),
                ForecastLoss::Mse,
                0.0,
            ),
            (CellKind::Lstm, ForecastLoss::Mse, 0.3),
            (
                CellKind::Gru(GruVariant::ResetAfter),
                ForecastLoss::Mae,
                0.0,
            ),
        ] {
            let cfg = ForecasterConfig {
                dropout,
                ..config(cell, loss)
            };
            let m = Forecaster::new(cfg).unwrap();
            assert_eq!(
                m.num_params(),
                4 * 2 + 4 + m.encoder.num_params() + 2 * 2 + 2 * 2 + 2 * 4 + 2
            );
            let mut p = m.init_params(3).unwrap();
            let b = 3;
            let mut rng = rng_from_seed(5);
            let x: Vec<f32> = (0..6 * b * 2)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let y: Vec<f32> = (0..b * 4 * 2)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let mut cache = ForecastCache::default();
            let mut ws = ForecastWorkspace::default();
            let loss_v = m
                .forward_train(&p, &x, &y, b, &mut cache, &mut RowRng::new(9, 0))
                .unwrap();
            let mut g = vec![0.0; m.num_params()];
            m.backward(&p, &mut g, &cache, &mut ws).unwrap();
            if dropout == 0.0 {
                let mut out = vec![0.0; y.len()];
                m.predict(&p, &x, b, &mut out, &mut ws).unwrap();
                let want: f64 = out
                    .iter()
                    .zip(&y)
                    .map(|(a, t)| match loss {
                        ForecastLoss::Mse => ((a - t) as f64).powi(2),
                        ForecastLoss::Mae => ((a - t) as f64).abs(),
                    })
                    .sum::<f64>()
                    / y.len() as f64;
                assert!((want - loss_v).abs() < 1e-6, "{want} vs {loss_v}");
            }
            // Every tensor gets a gradient.
            for (name, _, r) in m.tensors() {
                assert!(g[r].iter().any(|v| *v != 0.0), "{name}");
            }
            let what = format!("SegRNN {cell:?} {loss:?} dropout {dropout}");
            check_gradients(
                &what,
                &mut p,
                &g,
                FdCheck {
                    eps: 1e-3,
                    ..FdCheck::new(2e-2, 2e-4)
                },
                |_| false,
                |p| {
                    m.forward_train(p, &x, &y, b, &mut cache, &mut RowRng::new(9, 0))
                        .unwrap()
                },
            );
        }
    }

    /// Hand-made weights: zero recurrent weights and biases make every decoder output 0, so the
    /// forecast is the output bias, laid out as `y[B, K, C]` segment by segment.
    #[test]
    fn forecast_layout_by_hand() {
        let m = Forecaster::new(config(
            CellKind::Gru(GruVariant::ResetAfter),
            ForecastLoss::Mse,
        ))
        .unwrap();
        let mut p = vec![0.0; m.num_params()];
        p[m.head_b.clone()].copy_from_slice(&[1.0, 2.0]);
        let b = 2;
        let x = vec![0.5; 6 * b * 2];
        let mut y = vec![0.0; b * 4 * 2];
        m.predict(&p, &x, b, &mut y, &mut ForecastWorkspace::default())
            .unwrap();
        // Steps 0..4 of each channel: segment 0 (1, 2), segment 1 (1, 2).
        let one = [1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0];
        assert_eq!(y, [one, one].concat());
        // The segments: seg[n, r·C + c, w] = x[n·W + w, r, c].
        let dm = m.config().dims(2);
        let x: Vec<f32> = (0..24).map(|v| v as f32).collect();
        let mut seg = Vec::new();
        segments(&x, dm, &mut seg);
        // n = 1, row r = 1, c = 0: x[2, 1, 0] = 10 and x[3, 1, 0] = 14.
        assert_eq!(&seg[(4 + 2) * 2..][..2], &[10.0, 14.0]);
    }

    /// A window's forecast is the same, to the bit, alone or in a batch.
    #[test]
    fn forecasts_do_not_depend_on_the_batch() {
        let m = Forecaster::new(config(CellKind::Lstm, ForecastLoss::Mse)).unwrap();
        let p = m.init_params(4).unwrap();
        let b = 5;
        let mut rng = rng_from_seed(2);
        let x: Vec<f32> = (0..6 * b * 2)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let mut ws = ForecastWorkspace::default();
        let mut all = vec![0.0; b * 4 * 2];
        m.predict(&p, &x, b, &mut all, &mut ws).unwrap();
        for r in 0..b {
            // x[L, 1, C] of window r alone.
            let one: Vec<f32> = (0..6)
                .flat_map(|t| x[(t * b + r) * 2..][..2].to_vec())
                .collect();
            let mut y = vec![0.0; 4 * 2];
            m.predict(&p, &one, 1, &mut y, &mut ws).unwrap();
            assert_eq!(y, all[r * 8..(r + 1) * 8], "window {r}");
        }
    }

    #[test]
    fn sizes_segments_do_not_divide_are_refused() {
        let ok = config(CellKind::Lstm, ForecastLoss::Mse);
        assert!(Forecaster::new(ok).is_ok());
        for (cfg, needle) in [
            (
                ForecasterConfig { lookback: 7, ..ok },
                "lookback (7) to be a multiple of the segment length (2)",
            ),
            (
                ForecasterConfig { horizon: 5, ..ok },
                "horizon (5) to be a multiple of the segment length (2)",
            ),
            (ForecasterConfig { hidden: 5, ..ok }, "even hidden size"),
            (
                ForecasterConfig { segment: 0, ..ok },
                "segment length must be at least 1",
            ),
            (
                ForecasterConfig { outputs: 1, ..ok },
                "as many forecast columns as inputs",
            ),
            (ForecasterConfig { layers: 2, ..ok }, "one recurrent layer"),
            (ForecasterConfig { dropout: 1.0, ..ok }, "dropout"),
        ] {
            let err = Forecaster::new(cfg).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }

    /// The configuration of a recurrent forecaster is written as before SegRNN, and an old one
    /// reads as [`Arch::Rnn`].
    #[test]
    fn old_configurations_read_as_rnn() {
        let old = ForecasterConfig::default();
        let text = serde_json::to_string(&old).unwrap();
        for field in ["arch", "segment", "dropout", "loss"] {
            assert!(!text.contains(field), "{text}");
        }
        let back: ForecasterConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back, old);
        let seg = config(CellKind::Lstm, ForecastLoss::Mae);
        let text = serde_json::to_string(&seg).unwrap();
        assert!(text.contains("\"arch\":\"segrnn\""), "{text}");
        assert!(text.contains("\"loss\":\"mae\""), "{text}");
        assert_eq!(
            serde_json::from_str::<ForecasterConfig>(&text).unwrap(),
            seg
        );
    }
}

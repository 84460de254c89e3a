//! Last-token language model, the formulation of the Keras text-generation tutorials:
//! Embedding(V, E) → L-layer LSTM/GRU (every layer but the last returns its whole sequence,
//! followed by dropout) → the last layer's final state → dropout → Linear(H, V) → softmax
//! cross-entropy against the one word that follows the window.
//!
//! With `L = 2` this is Keras'
//! `Sequential([Embedding, LSTM(return_sequences=True), Dropout, LSTM, Dropout, Dense(softmax)])`.
//! Every window starts from a zero state (nothing is carried between windows).
//!
//! Parameters are one block in PyTorch names, as the classifier's: `embedding.weight [V, E]`,
//! `rnn.weight_ih_l0 …` ([`crate::rnn::RnnLayout`] order), `head.weight [V, H]`, `head.bias [V]`.
//! Token buffers are time-major `ids[T, B]` (window `j` is column `j`). The training loss is the
//! mean cross-entropy over the batch's windows.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::dropout::{apply_mask, rng_from_seed, Dropout, RowRng};
use crate::error::{Error, Result};
use crate::linalg::fit;
use crate::model::embedding::{check_embed, check_vocab};
use crate::model::encoder_head::{check_encoder, standard_dropout};
use crate::model::layout::model_accessors;
use crate::model::layout::ParamLayout;
use crate::model::{embedding, softmax};
use crate::rnn::{
    CellKind, Direction, ForgetBias, Init, InitScheme, Rnn, RnnCache, RnnConfig, RnnState,
    RnnWorkspace, SeqShape,
};

/// Shape and dropout of a last-token model. `validate()` before use.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastTokenConfig {
    /// Vocabulary size `V` (inputs and predicted words).
    pub vocab: usize,
    /// Embedding width `E`.
    pub embed: usize,
    /// Recurrent cell.
    pub cell: CellKind,
    /// Units per layer `H`.
    pub hidden: usize,
    /// Recurrent layers `L` (at least 1).
    pub layers: usize,
    /// Dropout after every recurrent layer: on the sequence output of each layer below the top
    /// and on the top layer's final state (training only; Keras' `Dropout` layers).
    pub dropout: f32,
}

impl Default for LastTokenConfig {
    fn default() -> Self {
        LastTokenConfig {
            vocab: 10_000,
            embed: 200,
            cell: CellKind::Lstm,
            hidden: 200,
            layers: 2,
            dropout: 0.2,
        }
    }
}

impl LastTokenConfig {
    /// The recurrent stack's configuration (one direction).
    pub fn rnn_config(&self) -> RnnConfig {
        RnnConfig {
            direction: Direction::Forward,
            cell: self.cell,
            input_size: self.embed,
            hidden_size: self.hidden,
            num_layers: self.layers,
        }
    }

    /// Checks sizes and dropout.
    pub fn validate(&self) -> Result<()> {
        check_vocab(self.vocab)?;
        check_embed(self.embed)?;
        check_encoder(self.dropout, &self.rnn_config())
    }

    fn drop(&self) -> Dropout {
        standard_dropout(self.dropout)
    }
}

/// A last-token model: configuration, recurrent stack and layout. Parameters, gradients,
/// caches and workspaces are owned by the caller.
#[derive(Clone, Debug)]
pub struct LastTokenModel {
    config: LastTokenConfig,
    rnn: Rnn,
    params: ParamLayout,
    emb: Range<usize>,
    rnn_range: Range<usize>,
    head_w: Range<usize>,
    head_b: Range<usize>,
}

/// What a training forward pass keeps for backward.
#[derive(Debug, Default)]
pub struct LastTokenCache {
    /// Window length `T` and batch `B` of the cached pass (0 before the first).
    t: usize,
    b: usize,
    /// `ids[T, B]`.
    ids: Vec<u32>,
    rnn: RnnCache,
    /// Final states `[B, H]` after dropout (the head's input) and the dropout mask.
    feat: Vec<f32>,
    feat_mask: Vec<f32>,
    /// `∂(mean loss)/∂logits [B, V]`.
    dlogits: Vec<f32>,
}

/// Scratch buffers, reused across calls (nothing is allocated once the shapes have been seen).
#[derive(Debug, Default)]
pub struct LastTokenWorkspace {
    rnn: RnnWorkspace,
    /// Zero initial state (forward) and its gradient (backward), for the last batch size.
    state: RnnState,
    dstate: RnnState,
    /// `x[T, B, E]` embeddings; `dx[T, B, E]` their gradient.
    x: Vec<f32>,
    dx: Vec<f32>,
    /// `y[T, B, H]` top layer output; `dy[T, B, H]` its gradient (non-zero at `T − 1` only).
    y: Vec<f32>,
    dy: Vec<f32>,
    /// Final states `[B, H]` (inference) and their gradient.
    feat: Vec<f32>,
    dfeat: Vec<f32>,
    /// Logits `[B, V]` (evaluation).
    logits: Vec<f32>,
}

impl LastTokenWorkspace {
    /// Sets `state` to zeros for batch `b` (reallocating only when `b` changes).
    fn zero_state(&mut self, config: &RnnConfig, b: usize) {
        let n = config.state_slices() * b * config.hidden_size;
        if self.state.h.len() != n {
            self.state = RnnState::zeros(config, b);
            self.dstate = RnnState::zeros(config, b);
        } else {
            self.state.reset();
            self.dstate.reset();
        }
    }
}

impl LastTokenModel {
    /// A model for `config`, after validating it.
    pub fn new(config: LastTokenConfig) -> Result<Self> {
        config.validate()?;
        let rnn = Rnn::new(config.rnn_config())?.with_dropout(config.drop())?;
        let mut params = ParamLayout::new();
        let emb = params.push("embedding.weight", vec![config.vocab, config.embed]);
        let rnn_range = params.push_rnn("rnn", rnn.layout());
        let head_w = params.push("head.weight", vec![config.vocab, config.hidden]);
        let head_b = params.push("head.bias", vec![config.vocab]);
        Ok(LastTokenModel {
            config,
            rnn,
            params,
            emb,
            rnn_range,
            head_w,
            head_b,
        })
    }

    model_accessors!(
        LastTokenConfig,
        "Every tensor of the parameter block; it writes and reads the model's files."
    );

    /// Ranges of `embedding.weight`, the recurrent block, `head.weight` and `head.bias` in the
    /// parameter block.
    pub fn ranges(&self) -> [Range<usize>; 4] {
        [
            self.emb.clone(),
            self.rnn_range.clone(),
            self.head_w.clone(),
            self.head_b.clone(),
        ]
    }

    /// Keras' default initial weights: embedding `U(±0.05)`, recurrent layers Glorot-uniform
    /// input weights, orthogonal recurrent weights, zero biases (LSTM forget-gate bias 1), head
    /// Glorot-uniform `U(±√(6/(H + V)))` with zero bias.
    pub fn init_params(&self, seed: u64) -> Result<Vec<f32>> {
        use rand::RngExt;
        let mut p = vec![0.0; self.num_params()];
        let mut rng = rng_from_seed(seed);
        for v in &mut p[self.emb.clone()] {
            *v = rng.random_range(-0.05..=0.05);
        }
        Init {
            scheme: InitScheme::Keras,
            forget_bias: ForgetBias::One,
        }
        .apply(
            &self.config.rnn_config(),
            &mut p[self.rnn_range.clone()],
            seed.wrapping_add(1),
        )?;
        let limit = (6.0 / (self.config.hidden + self.config.vocab) as f32).sqrt();
        for v in &mut p[self.head_w.clone()] {
            *v = rng.random_range(-limit..=limit);
        }
        Ok(p)
    }

    fn check(&self, params: &[f32], ids: &[u32], t: usize, b: usize) -> Result<()> {
        self.params.check_block("parameter block", params.len())?;
        if t == 0 || b == 0 || ids.len() != t * b {
            return Err(Error::Shape(format!(
                "windows ids[T, B] need T ≥ 1, B ≥ 1 and T·B values, got T = {t}, B = {b} and {} values",
                ids.len()
            )));
        }
        if let Some(id) = ids.iter().find(|&&id| id as usize >= self.config.vocab) {
            return Err(Error::Shape(format!(
                "token id {id} is outside the vocabulary of {}",
                self.config.vocab
            )));
        }
        Ok(())
    }

    fn check_targets(&self, targets: &[u32], b: usize) -> Result<()> {
        if targets.len() != b || targets.iter().any(|&y| y as usize >= self.config.vocab) {
            return Err(Error::Shape(format!(
                "need {b} target ids below {}, got {} values",
                self.config.vocab,
                targets.len()
            )));
        }
        Ok(())
    }

    /// `ws.x[T, B, E]`: the embeddings of `ids`.
    fn embed(&self, params: &[f32], ids: &[u32], ws: &mut LastTokenWorkspace) {
        let e = self.config.embed;
        fit(&mut ws.x, ids.len() * e);
        embedding::forward(&params[self.emb.clone()], ids, &mut ws.x, e);
    }

    /// Copies step `T − 1` of `y[T, B, H]` into `feat[B, H]`.
    fn last_step(y: &[f32], t: usize, b: usize, h: usize, feat: &mut Vec<f32>) {
        fit(feat, b * h);
        feat.copy_from_slice(&y[(t - 1) * b * h..t * b * h]);
    }

    /// Inference: the logits `[B, V]` of the word after each of the `B` windows `ids[T, B]`,
    /// written into `ws` and returned.
    pub fn logits<'w>(
        &self,
        params: &[f32],
        ids: &[u32],
        t: usize,
        b: usize,
        ws: &'w mut LastTokenWorkspace,
    ) -> Result<&'w mut [f32]> {
        self.check(params, ids, t, b)?;
        let (h, v) = (self.config.hidden, self.config.vocab);
        self.infer_last_state(params, ids, t, b, ws)?;
        fit(&mut ws.logits, b * v);
        softmax::logits(
            &ws.feat,
            &params[self.head_w.clone()],
            &params[self.head_b.clone()],
            &mut ws.logits,
            h,
        );
        Ok(&mut ws.logits)
    }

    /// Inference up to the head's input: `ws.feat[B, H]`, the last layer's final state for
    /// each window of `ids[T, B]` from a zero state.
    fn infer_last_state(
        &self,
        params: &[f32],
        ids: &[u32],
        t: usize,
        b: usize,
        ws: &mut LastTokenWorkspace,
    ) -> Result<()> {
        self.run_stack(params, ids, t, b, ws, None)?;
        Self::last_step(&ws.y, t, b, self.config.hidden, &mut ws.feat);
        Ok(())
    }

    /// Embeds the windows `ids[T, B]` and runs the stack from a zero state into
    /// `ws.y[T, B, H]`: a training pass with `train = Some((cache, rng))` (dropout between
    /// layers, `cache` filled for backward), else an inference pass.
    fn run_stack(
        &self,
        params: &[f32],
        ids: &[u32],
        t: usize,
        b: usize,
        ws: &mut LastTokenWorkspace,
        train: Option<(&mut RnnCache, &mut RowRng)>,
    ) -> Result<()> {
        self.embed(params, ids, ws);
        ws.zero_state(self.rnn.config(), b);
        fit(&mut ws.y, t * b * self.config.hidden);
        let (p, shape) = (&params[self.rnn_range.clone()], SeqShape { t, b });
        let (x, state, y) = (&ws.x, &mut ws.state, &mut ws.y);
        match train {
            Some((cache, rng)) => self.rnn.forward_train(p, x, shape, state, y, cache, rng),
            None => self.rnn.forward_infer(p, x, shape, state, y, &mut ws.rnn),
        }
    }

    /// Evaluation: the summed cross-entropy (nats) of `targets[B]` given the windows
    /// `ids[T, B]`.
    pub fn eval_loss(
        &self,
        params: &[f32],
        ids: &[u32],
        t: usize,
        b: usize,
        targets: &[u32],
        ws: &mut LastTokenWorkspace,
    ) -> Result<f64> {
        self.check(params, ids, t, b)?;
        self.check_targets(targets, b)?;
        let (h, v) = (self.config.hidden, self.config.vocab);
        self.infer_last_state(params, ids, t, b, ws)?;
        fit(&mut ws.logits, b * v);
        softmax::product(&ws.feat, &params[self.head_w.clone()], &mut ws.logits, v, h);
        Ok(softmax::loss(
            &mut ws.logits,
            &params[self.head_b.clone()],
            targets,
        ))
    }

    /// Training forward pass over the windows `ids[T, B]` with dropout masks from `rng`:
    /// returns the summed cross-entropy of `targets[B]` and keeps what
    /// [`LastTokenModel::backward`] needs (the gradient of the *mean* over the `B` windows).
    #[allow(clippy::too_many_arguments)]
    pub fn forward_train(
        &self,
        params: &[f32],
        ids: &[u32],
        t: usize,
        b: usize,
        targets: &[u32],
        cache: &mut LastTokenCache,
        ws: &mut LastTokenWorkspace,
        rng: &mut RowRng,
    ) -> Result<f64> {
        self.check(params, ids, t, b)?;
        self.check_targets(targets, b)?;
        let (h, v) = (self.config.hidden, self.config.vocab);
        cache.t = t;
        cache.b = b;
        cache.ids.clear();
        cache.ids.extend_from_slice(ids);
        self.run_stack(params, ids, t, b, ws, Some((&mut cache.rnn, &mut *rng)))?;
        Self::last_step(&ws.y, t, b, h, &mut cache.feat);
        let drop = self.config.drop();
        if drop.is_active() {
            drop.apply_train(&mut cache.feat, &mut cache.feat_mask, 1, b, rng);
        }
        fit(&mut cache.dlogits, b * v);
        softmax::product(
            &cache.feat,
            &params[self.head_w.clone()],
            &mut cache.dlogits,
            v,
            h,
        );
        Ok(softmax::loss_and_grad(
            &mut cache.dlogits,
            &params[self.head_b.clone()],
            targets,
            1.0 / b as f32,
        ))
    }

    /// Backward pass of the last [`LastTokenModel::forward_train`]: accumulates (`+=`) the
    /// gradient of the mean loss into `grads` (same layout as `params`).
    pub fn backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        cache: &LastTokenCache,
        ws: &mut LastTokenWorkspace,
    ) -> Result<()> {
        crate::model::layout::check_backward(grads.len(), self.num_params(), cache.b)?;
        let (t, b, h, e) = (cache.t, cache.b, self.config.hidden, self.config.embed);
        fit(&mut ws.dfeat, b * h);
        {
            let (gw, gb) =
                grads[self.head_w.start..self.head_b.end].split_at_mut(self.head_w.len());
            softmax::backward(
                &cache.dlogits,
                &cache.feat,
                &params[self.head_w.clone()],
                gw,
                gb,
                &mut ws.dfeat,
                h,
            );
        }
        if self.config.drop().is_active() {
            apply_mask(&mut ws.dfeat, &cache.feat_mask);
        }
        fit(&mut ws.dy, t * b * h);
        ws.dy.fill(0.0);
        ws.dy[(t - 1) * b * h..].copy_from_slice(&ws.dfeat);
        ws.zero_state(self.rnn.config(), b);
        fit(&mut ws.dx, t * b * e);
        self.rnn.backward(
            &params[self.rnn_range.clone()],
            &mut grads[self.rnn_range.clone()],
            &cache.rnn,
            &ws.dy,
            &mut ws.dstate,
            &mut ws.dx,
            &mut ws.rnn,
        )?;
        embedding::backward(&ws.dx, &cache.ids, &mut grads[self.emb.clone()], e);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{check_gradients, FdCheck};
    use crate::rnn::GruVariant;
    use rand::RngExt;

    fn cfg(cell: CellKind, layers: usize, dropout: f32) -> LastTokenConfig {
        LastTokenConfig {
            vocab: 11,
            embed: 5,
            cell,
            hidden: 4,
            layers,
            dropout,
        }
    }

    /// Windows `[T = 3, B = 3]`, time-major, and their targets.
    const IDS: [u32; 9] = [3, 1, 0, 7, 4, 10, 2, 5, 9];
    const TARGETS: [u32; 3] = [6, 0, 10];

    /// Central finite differences of the mean loss along every parameter, with dropout active
    /// (the same masks in every pass).
    #[test]
    fn gradients_match_finite_differences() {
        for c in [
            cfg(CellKind::Lstm, 2, 0.3),
            cfg(CellKind::Gru(GruVariant::ResetAfter), 2, 0.0),
            cfg(CellKind::Gru(GruVariant::ResetBefore), 1, 0.5),
        ] {
            let m = LastTokenModel::new(c).unwrap();
            let mut p = m.init_params(2).unwrap();
            // Larger embeddings so every path carries signal.
            let mut rng = rng_from_seed(3);
            for v in &mut p[m.ranges()[0].clone()] {
                *v = rng.random_range(-1.0..1.0);
            }
            let mut cache = LastTokenCache::default();
            let mut ws = LastTokenWorkspace::default();
            let masks = || RowRng::new(5, 0);
            let mut loss = |p: &[f32], cache: &mut LastTokenCache| {
                m.forward_train(p, &IDS, 3, 3, &TARGETS, cache, &mut ws, &mut masks())
                    .unwrap()
                    / 3.0
            };
            loss(&p, &mut cache);
            let mut g = vec![0.0; m.num_params()];
            m.backward(&p, &mut g, &cache, &mut LastTokenWorkspace::default())
                .unwrap();
            let what = format!("{c:?}");
            let gmax = check_gradients(
                &what,
                &mut p,
                &g,
                FdCheck::new(3e-3, 1e-4),
                |_| false,
                |p| loss(p, &mut cache),
            );
            assert!(gmax > 1e-3);
        }
    }

    /// Without dropout the training loss is the evaluation loss, and the logits give it too.
    #[test]
    fn training_evaluation_and_logits_agree() {
        let m = LastTokenModel::new(cfg(CellKind::Lstm, 2, 0.0)).unwrap();
        let p = m.init_params(4).unwrap();
        let mut ws = LastTokenWorkspace::default();
        let train = m
            .forward_train(
                &p,
                &IDS,
                3,
                3,
                &TARGETS,
                &mut LastTokenCache::default(),
                &mut ws,
                &mut RowRng::new(1, 0),
            )
            .unwrap();
        let eval = m.eval_loss(&p, &IDS, 3, 3, &TARGETS, &mut ws).unwrap();
        assert!((train - eval).abs() < 1e-5, "{train} vs {eval}");
        let logits = m.logits(&p, &IDS, 3, 3, &mut ws).unwrap().to_vec();
        let mut by_hand = 0.0f64;
        for (row, &y) in logits.chunks_exact(11).zip(&TARGETS) {
            let mx = softmax::row_max(row);
            let s: f64 = row.iter().map(|v| ((v - mx) as f64).exp()).sum();
            by_hand += s.ln() + (mx - row[y as usize]) as f64;
        }
        assert!((by_hand - eval).abs() < 1e-4, "{by_hand} vs {eval}");
        // Each window alone gives the batch's figure: windows do not see each other.
        let alone = m.eval_loss(&p, &[0, 10, 9], 3, 1, &[10], &mut ws).unwrap();
        let mut third = m.logits(&p, &IDS, 3, 3, &mut ws).unwrap()[22..33].to_vec();
        let mx = softmax::row_max(&third);
        third.iter_mut().for_each(|v| *v -= mx);
        let s: f64 = third.iter().map(|v| (*v as f64).exp()).sum();
        assert!((alone - (s.ln() - third[10] as f64)).abs() < 1e-4);
    }

    #[test]
    fn bad_shapes_and_ids_are_refused() {
        let m = LastTokenModel::new(cfg(CellKind::Lstm, 1, 0.0)).unwrap();
        let p = m.init_params(1).unwrap();
        let mut ws = LastTokenWorkspace::default();
        assert!(m.eval_loss(&p, &[1, 2], 3, 1, &[1], &mut ws).is_err());
        assert!(m.eval_loss(&p, &[1, 11, 2], 3, 1, &[1], &mut ws).is_err());
        assert!(m.eval_loss(&p, &[1, 2, 3], 3, 1, &[11], &mut ws).is_err());
        assert!(m
            .eval_loss(&p[1..], &[1, 2, 3], 3, 1, &[1], &mut ws)
            .is_err());
        let mut g = vec![0.0; m.num_params()];
        assert!(m
            .backward(&p, &mut g, &LastTokenCache::default(), &mut ws)
            .is_err());
        assert!(LastTokenModel::new(cfg(CellKind::Lstm, 0, 0.0)).is_err());
        assert!(LastTokenModel::new(cfg(CellKind::Lstm, 1, 1.0)).is_err());
    }
}

//! Last-token language modelling (the Keras tutorials' formulation) for the shared loop
//! ([`crate::train::fit()`]): every position of the training stream is one example (a window of
//! `N` words and the word after it), the examples are shuffled each epoch and cut into
//! mini-batches, and the model ([`LastTokenModel`]) predicts the one word after each window
//! from a zero state.
//!
//! Evaluation predicts every token of a stream but the first once, from the `N` tokens before
//! it (the first `N − 1` predicted tokens from the fewer tokens before them, also from a zero
//! state), so its per-word perplexity counts the same tokens as the language model's
//! ([`crate::tasks::lm::evaluate`] with one column).

pub mod data;
pub mod keras;
pub mod model;
mod trained;
pub use trained::Trained;
mod config;
pub use config::{LastTokenRunConfig, LastTokenTrainConfig};

use std::path::Path;
use std::time::Instant;

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::data::{TokenKind, Vocab};
use crate::dist::Group;
use crate::dropout::SeqRng;
use crate::error::{Error, Result};
use crate::run::RunDir;
use crate::tasks::lm::last_token::data::{eval_groups, fill_windows, Windows};
use crate::tasks::lm::last_token::model::{
    LastTokenCache, LastTokenConfig, LastTokenModel, LastTokenWorkspace,
};
use crate::tasks::lm::{EvalResult, Split};
use crate::train::fit::FitConfig;
use crate::train::task::{
    batch_at, share_of_mean, About, BatchLoss, Fingerprint, Identity, LossAverage, Step, Task,
    Validation, Weights,
};

/// Windows per evaluation batch.
pub const EVAL_BATCH: usize = 256;

/// Scratch of an evaluation, reused across calls.
#[derive(Debug, Default)]
pub struct EvalWorkspace {
    model: LastTokenWorkspace,
    starts: Vec<usize>,
    ids: Vec<u32>,
    targets: Vec<u32>,
}

/// Per-word perplexity of `params` on `stream`: every token but the first predicted once from
/// the (at most) `window` tokens before it, in batches of `batch` windows.
///
/// # Errors
/// [`Error::Config`] when `window` or `batch` is 0 or the stream holds fewer than 2 tokens.
pub fn evaluate(
    model: &LastTokenModel,
    params: &[f32],
    stream: &[u32],
    window: usize,
    batch: usize,
    ws: &mut EvalWorkspace,
) -> Result<EvalResult> {
    crate::tasks::lm::last_token::data::check_window(window)?;
    if batch == 0 {
        return Err(Error::Config(
            "evaluation batch must be at least 1, got 0".into(),
        ));
    }
    if stream.len() < 2 {
        return Err(Error::Config(format!(
            "perplexity needs at least 2 tokens, the stream has {}",
            stream.len()
        )));
    }
    let t0 = Instant::now();
    let mut total = 0.0;
    for (t, starts) in eval_groups(stream.len(), window, batch) {
        ws.starts.clear();
        ws.starts.extend(starts);
        fill_windows(stream, t, &ws.starts, &mut ws.ids, &mut ws.targets);
        total += model.eval_loss(
            params,
            &ws.ids,
            t,
            ws.starts.len(),
            &ws.targets,
            &mut ws.model,
        )?;
    }
    let tokens = stream.len() - 1;
    let loss = total / tokens as f64;
    Ok(EvalResult {
        loss,
        ppl: loss.exp(),
        tokens,
        tokens_per_s: tokens as f64 / t0.elapsed().as_secs_f64().max(1e-9),
    })
}

/// The last-token task for the shared loop.
pub struct LastTokenTask<'a> {
    model: &'a LastTokenModel,
    train: Windows<'a>,
    valid: &'a [u32],
    batch: usize,
    eval_batch: usize,
    /// This epoch's example order (window starts).
    order: Vec<usize>,
    ids: Vec<u32>,
    targets: Vec<u32>,
    cache: LastTokenCache,
    ws: LastTokenWorkspace,
    eval_ws: EvalWorkspace,
}

impl<'a> LastTokenTask<'a> {
    /// A task over the windows of `window` tokens of `train`, validated on `valid`, `batch`
    /// windows a step (`eval_batch` in evaluation).
    ///
    /// # Errors
    /// [`Error::Config`] when a batch size or the window is 0, the training split holds no
    /// window and a word after it, or the validation split has fewer than 2 tokens.
    pub fn new(
        model: &'a LastTokenModel,
        train: &'a [u32],
        valid: &'a [u32],
        window: usize,
        batch: usize,
        eval_batch: usize,
    ) -> Result<Self> {
        if batch == 0 || eval_batch == 0 {
            return Err(Error::Config("batch size must be at least 1, got 0".into()));
        }
        let train = Windows::new(train, window, "the training split")?;
        if valid.len() < 2 {
            return Err(Error::Config(format!(
                "the validation split needs at least 2 tokens, it has {}",
                valid.len()
            )));
        }
        Ok(LastTokenTask {
            model,
            train,
            valid,
            batch,
            eval_batch,
            order: Vec::new(),
            ids: Vec::new(),
            targets: Vec::new(),
            cache: LastTokenCache::default(),
            ws: LastTokenWorkspace::default(),
            eval_ws: EvalWorkspace::default(),
        })
    }
}

impl Task for LastTokenTask<'_> {
    /// The epoch's training loss is the cross-entropy per predicted word.
    fn about(&self) -> About<'_> {
        let layout = self.model.param_layout();
        let weights = Weights::new(layout, LAST_TOKEN_FORMAT, "a last-token language model");
        About::new(weights, "neg_ppl", LossAverage::PerExample)
    }

    fn batch_size(&self) -> usize {
        self.batch
    }

    /// The model, the window and a fingerprint of the training stream.
    fn identity(&self) -> Identity {
        let train = "the training split is not the one the run was trained on";
        let mut id = Fingerprint::default()
            .ids(self.train.stream())
            .identity(self.model.config(), train);
        id.parts["window"] = self.train.window().into();
        id.meanings = vec![
            ("model", "the model differs from the run's"),
            ("window", "the window differs from the run's"),
            ("train", train),
        ];
        id
    }

    fn start_epoch(&mut self, _epoch: usize, rng: &mut SeqRng) -> usize {
        self.order.clear();
        self.order.extend(0..self.train.len());
        self.order.shuffle(rng);
        self.order.len().div_ceil(self.batch)
    }

    fn train_step(&mut self, mut step: Step<'_>) -> Result<BatchLoss> {
        let all = batch_at(&self.order, self.batch, step.index);
        let Some((starts, mut masks)) = step.rows(all) else {
            return Ok(BatchLoss::NONE);
        };
        self.train.fill(starts, &mut self.ids, &mut self.targets);
        let b = starts.len();
        let loss = self.model.forward_train(
            step.params,
            &self.ids,
            self.train.window(),
            b,
            &self.targets,
            &mut self.cache,
            &mut self.ws,
            &mut masks,
        )?;
        if !loss.is_finite() {
            return Ok(BatchLoss { loss, examples: b });
        }
        self.model
            .backward(step.params, step.grads, &self.cache, &mut self.ws)?;
        // The model's gradient is the mean over this rank's windows; the step's is over the
        // whole batch's.
        share_of_mean(step.grads, b, all.len());
        Ok(BatchLoss { loss, examples: b })
    }

    /// Per-word perplexity of the validation split (every rank scores all of it).
    fn validate(&mut self, params: &[f32], _group: &Group) -> Result<Validation> {
        let r = evaluate(
            self.model,
            params,
            self.valid,
            self.train.window(),
            self.eval_batch,
            &mut self.eval_ws,
        )?;
        Ok(Validation {
            loss: r.loss,
            score: -r.ppl,
        })
    }
}

/// `format` metadata of a last-token model's weights file.
pub const LAST_TOKEN_FORMAT: &str = "seqrnn-last-token";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rnn::CellKind;

    fn model() -> LastTokenModel {
        LastTokenModel::new(LastTokenConfig {
            vocab: 7,
            embed: 3,
            cell: CellKind::Lstm,
            hidden: 4,
            layers: 2,
            dropout: 0.0,
        })
        .unwrap()
    }

    /// Evaluation is the mean over the tokens of each one's loss computed alone, from the
    /// window before it (shorter at the start), whatever the batch.
    #[test]
    fn evaluation_scores_each_token_from_its_window() {
        let m = model();
        let p = m.init_params(3).unwrap();
        let stream = [1u32, 4, 2, 6, 0, 3, 3, 5, 1];
        let window = 3;
        let mut ws = LastTokenWorkspace::default();
        let mut by_hand = 0.0;
        for i in 1..stream.len() {
            let ctx = &stream[i.saturating_sub(window)..i];
            by_hand += m
                .eval_loss(&p, ctx, ctx.len(), 1, &stream[i..=i], &mut ws)
                .unwrap();
        }
        by_hand /= (stream.len() - 1) as f64;
        for batch in [1, 2, 5, 100] {
            let r = evaluate(
                &m,
                &p,
                &stream,
                window,
                batch,
                &mut EvalWorkspace::default(),
            )
            .unwrap();
            assert_eq!(r.tokens, 8);
            assert!((r.loss - by_hand).abs() < 1e-6, "batch {batch}");
            assert!((r.ppl - by_hand.exp()).abs() < 1e-5);
        }
        assert!(evaluate(&m, &p, &stream[..1], 3, 1, &mut EvalWorkspace::default()).is_err());
        assert!(evaluate(&m, &p, &stream, 0, 1, &mut EvalWorkspace::default()).is_err());
    }

    /// An epoch visits every window once, in an order drawn from the loop's generator; the step
    /// loss is the summed cross-entropy of the batch's windows.
    #[test]
    fn epochs_shuffle_every_window_into_batches() {
        let m = model();
        let p = m.init_params(3).unwrap();
        let train: Vec<u32> = (0..23).map(|i| (i * 5 % 7) as u32).collect();
        let valid = [1u32, 2, 3];
        let mut task = LastTokenTask::new(&m, &train, &valid, 4, 6, 8).unwrap();
        let mut rng = crate::dropout::rng_from_seed(1);
        assert_eq!(task.start_epoch(1, &mut rng), 4);
        let mut seen = task.order.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..19).collect::<Vec<_>>());
        let first = task.order.clone();
        task.start_epoch(2, &mut rng);
        assert_ne!(task.order, first);
        let mut g = vec![0.0; m.num_params()];
        let last = task
            .train_step(Step::sole(3, &p, &mut g, &mut rng))
            .unwrap();
        assert_eq!(last.examples, 1);
        let s = task.order[18];
        let mut ws = LastTokenWorkspace::default();
        let alone = m
            .eval_loss(&p, &train[s..s + 4], 4, 1, &train[s + 4..=s + 4], &mut ws)
            .unwrap();
        assert!((last.loss - alone).abs() < 1e-6);
        assert!(g.iter().any(|v| *v != 0.0));
        let v = task.validate(&p, &Group::single()).unwrap();
        assert!((v.score + v.loss.exp()).abs() < 1e-9);
    }

    #[test]
    fn refuses_unusable_splits() {
        let m = model();
        let e = |r: Result<LastTokenTask>| r.err().unwrap().to_string();
        let s = [1u32, 2, 3, 4];
        assert!(e(LastTokenTask::new(&m, &s, &s, 4, 2, 2)).contains("more than 4 tokens"));
        assert!(e(LastTokenTask::new(&m, &s, &s, 0, 2, 2)).contains("at least 1 token"));
        assert!(e(LastTokenTask::new(&m, &s, &s[..1], 2, 2, 2)).contains("validation"));
        assert!(e(LastTokenTask::new(&m, &s, &s, 2, 0, 2)).contains("batch"));
    }
}

//! Throughput measurements of the engine, shared by the `seqrnn bench` command and the docs.

use std::time::Instant;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::{Batched, Vocab};
use crate::error::Result;
use crate::optim::{clip_grad_norm, sgd_step};
use crate::rnn::{CellKind, Init, Rnn, RnnCache, RnnConfig, RnnState, RnnWorkspace, SeqShape};
use crate::tasks::lm::LmTask;
use crate::tasks::lm::TrainConfig;
use crate::tasks::lm::{LanguageModel, LmConfig, LmInit, LmWorkspace};
use crate::train::{Step, Task};

/// Figures of one layer benchmark.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerBench {
    /// Median seconds of one forward pass (inference mode) over a `T × B` sequence.
    pub forward_s: f64,
    /// Median seconds of one training forward plus backward pass.
    pub forward_backward_s: f64,
    /// Floating-point operations of one forward pass, see [`forward_flops`].
    pub forward_flops: f64,
    /// Tokens (`T·B`) per pass.
    pub tokens: usize,
    /// Timed repetitions of each pass.
    pub iterations: usize,
}

impl LayerBench {
    /// Forward tokens per second.
    pub fn forward_tokens_per_s(&self) -> f64 {
        self.tokens as f64 / self.forward_s
    }
    /// Training (forward + backward) tokens per second.
    pub fn train_tokens_per_s(&self) -> f64 {
        self.tokens as f64 / self.forward_backward_s
    }
    /// Achieved forward GFLOP/s.
    pub fn forward_gflops(&self) -> f64 {
        self.forward_flops / self.forward_s / 1e9
    }
    /// Achieved forward + backward GFLOP/s, counting backward as twice the forward.
    pub fn train_gflops(&self) -> f64 {
        3.0 * self.forward_flops / self.forward_backward_s / 1e9
    }
}

/// FLOPs of one forward pass of a stack over `T·B` tokens: the matrix products only,
/// `2 · T·B · Σ_{layers, directions} G·H·(I_l + H)` (the minimal cells have no recurrent
/// product: `G·H·I_l`). Backward is counted as twice this (the input/state gradient products
/// and the weight gradient products each repeat the forward's).
pub fn forward_flops(config: &RnnConfig, shape: SeqShape) -> f64 {
    let gh = (config.cell.gates() * config.hidden_size) as f64;
    let recurrent = match config.cell.is_minimal() {
        true => 0,
        false => config.hidden_size,
    };
    let per_token: f64 = (0..config.num_layers)
        .map(|l| config.directions() as f64 * gh * (config.layer_input_size(l) + recurrent) as f64)
        .sum();
    2.0 * (shape.t * shape.b) as f64 * per_token
}

/// Times forward (inference) and forward + backward (training) passes of a stack with random
/// weights and inputs: `warmup` untimed passes, then the median of `iterations` timed ones.
pub fn layer(
    config: RnnConfig,
    shape: SeqShape,
    iterations: usize,
    warmup: usize,
) -> Result<LayerBench> {
    let rnn = Rnn::new(config)?;
    let mut params = vec![0.0; rnn.num_params()];
    Init::default().apply(&config, &mut params, 1)?;
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut random =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
    let x = random(shape.t * shape.b * config.input_size);
    let dy = random(shape.t * shape.b * config.output_size());
    let mut y = vec![0.0; dy.len()];
    let mut dx = vec![0.0; x.len()];
    let mut grads = vec![0.0; rnn.num_params()];
    let mut cache = RnnCache::default();
    let mut ws = RnnWorkspace::default();
    let zero = RnnState::zeros(&config, shape.b);
    let mut drop_rng = crate::dropout::RowRng::new(3, 0);

    let time = |f: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
        for _ in 0..warmup {
            f()?;
        }
        let mut t = Vec::with_capacity(iterations);
        for _ in 0..iterations.max(1) {
            let t0 = Instant::now();
            f()?;
            t.push(t0.elapsed().as_secs_f64());
        }
        t.sort_by(f64::total_cmp);
        Ok(t[t.len() / 2])
    };
    let forward_s = time(&mut || {
        let mut state = zero.clone();
        rnn.forward_infer(&params, &x, shape, &mut state, &mut y, &mut ws)
    })?;
    let forward_backward_s = time(&mut || {
        let mut state = zero.clone();
        rnn.forward_train(
            &params,
            &x,
            shape,
            &mut state,
            &mut y,
            &mut cache,
            &mut drop_rng,
        )?;
        let mut dstate = RnnState::zeros(&config, shape.b);
        rnn.backward(
            &params,
            &mut grads,
            &cache,
            &dy,
            &mut dstate,
            &mut dx,
            &mut ws,
        )
    })?;
    Ok(LayerBench {
        forward_s,
        forward_backward_s,
        forward_flops: forward_flops(&config, shape),
        tokens: shape.t * shape.b,
        iterations: iterations.max(1),
    })
}

/// Settings of a language-model training benchmark ([`lm`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LmBenchConfig {
    /// Recurrent cell.
    pub cell: CellKind,
    /// Units per layer `H` (the embedding has `H` columns too, as in PyTorch's example).
    pub hidden: usize,
    /// Stacked layers `L`.
    pub layers: usize,
    /// Batch columns `B`.
    pub batch: usize,
    /// Window length `T` of truncated BPTT (training and evaluation).
    pub bptt: usize,
    /// Vocabulary size `V`.
    pub vocab: usize,
    /// Timed training steps, and timed evaluation windows.
    pub steps: usize,
    /// Untimed steps before timing.
    pub warmup: usize,
    /// Also time evaluation and generation with the weights quantized to int8 (as `seqrnn
    /// quantize` stores them), after the f32 figures.
    pub int8: bool,
}

impl Default for LmBenchConfig {
    fn default() -> Self {
        LmBenchConfig {
            cell: CellKind::Lstm,
            hidden: 200,
            layers: 2,
            batch: 20,
            bptt: 35,
            vocab: 10_000,
            steps: 100,
            warmup: 5,
            int8: false,
        }
    }
}

impl LmBenchConfig {
    /// Refuses sizes of zero.
    pub fn validate(&self) -> Result<()> {
        for (what, v) in [
            ("hidden", self.hidden),
            ("layers", self.layers),
            ("batch", self.batch),
            ("bptt", self.bptt),
            ("vocab", self.vocab),
            ("steps", self.steps),
        ] {
            if v == 0 {
                return Err(crate::error::Error::Config(format!(
                    "{what} must be at least 1"
                )));
            }
        }
        Ok(())
    }

    /// The model benchmarked: no dropout, separate decoder weights.
    pub fn model_config(&self) -> LmConfig {
        LmConfig {
            block: Default::default(),
            cell: self.cell,
            vocab: self.vocab,
            embed: self.hidden,
            hidden: self.hidden,
            layers: self.layers,
            last_hidden: None,
            dropout: crate::dropout::Dropout::NONE,
            output: crate::model::embedding::OutputWeights::Separate,
            reg: Default::default(),
        }
    }
}

/// Figures of one language-model benchmark.
#[derive(Clone, Debug, PartialEq)]
pub struct LmBench {
    /// Trained tokens per second: forward, backward, clipping and SGD update of `T·B` tokens.
    pub train_tokens_per_s: f64,
    /// FLOPs of the forward pass per token: `2 · (Σ_l G·H·(I_l + H) + H·V)`; training counts
    /// three times this.
    pub forward_flops_per_token: f64,
    /// Achieved GFLOP/s of training and of evaluation.
    pub train_gflops: f64,
    /// Achieved GFLOP/s of evaluation.
    pub eval_gflops: f64,
    /// GFLOP/s of a large square matrix product (`1024³`) with the same threads: the practical
    /// peak of this machine.
    pub gemm_peak_gflops: f64,
    /// Parameters of the model.
    pub params: usize,
    /// The f32 evaluation and generation figures.
    pub f32: Inference,
    /// The same with int8 weights, when asked for ([`LmBenchConfig::int8`]).
    pub int8: Option<Inference>,
}

/// Inference figures of a language model ([`inference`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Inference {
    /// Evaluated tokens per second (forward and loss, no caching, state carried).
    pub eval_tokens_per_s: f64,
    /// Mean cross-entropy of the timed windows, nats per token.
    pub eval_loss: f64,
    /// Milliseconds per generated token at batch 1, sampling at temperature 0.8, over
    /// [`GENERATE_TOKENS`] tokens.
    pub generate_ms_per_token: f64,
}

/// Times `steps` evaluation windows `shape` of `stream` (after `warmup` untimed ones, the state
/// carried from window to window), then [`GENERATE_TOKENS`] tokens of generation at batch 1.
/// `params` may be int8 weights ([`crate::model::Weights`]): every product with them runs on the
/// integer kernels.
///
/// # Errors
/// [`crate::error::Error::Config`] when `stream` holds fewer than `(warmup + steps)` windows; the
/// model's shape errors.
pub fn inference(
    model: &LanguageModel,
    params: &[f32],
    stream: &[u32],
    shape: SeqShape,
    steps: usize,
    warmup: usize,
) -> Result<Inference> {
    let data = Batched::new(stream, shape.b)?;
    let all = data.windows(shape.t);
    if all.len() < warmup + steps {
        return Err(crate::error::Error::Config(format!(
            "{} windows of {}×{} tokens need a longer stream",
            warmup + steps,
            shape.t,
            shape.b
        )));
    }
    let mut ws = LmWorkspace::default();
    let mut state = model.zero_state(shape.b);
    let mut eval = |w| {
        let (x, y) = (data.inputs(w), data.targets(w));
        model.eval_loss(params, x, y, shape, &mut state, &mut ws)
    };
    for &w in all.iter().take(warmup) {
        eval(w)?;
    }
    let t0 = Instant::now();
    let mut loss = 0.0;
    for &w in all.iter().skip(warmup).take(steps) {
        loss += eval(w)?;
    }
    let eval_s = t0.elapsed().as_secs_f64();
    let decoding = crate::tasks::lm::generate::Decoding::Sample {
        temperature: 0.8,
        top_k: None,
        top_p: None,
    };
    // `n` tokens from a prompt of token 0 at batch 1, drawn with `seed`.
    let generate = |n, seed| {
        crate::tasks::lm::generate::generate(
            &mut crate::tasks::lm::generate::LmStepper::new(model, params)?,
            &[0],
            n,
            decoding,
            seed,
        )
    };
    generate(20, 6)?;
    let t0 = Instant::now();
    generate(GENERATE_TOKENS, 7)?;
    Ok(Inference {
        eval_tokens_per_s: (steps * shape.t * shape.b) as f64 / eval_s,
        eval_loss: loss / (steps * shape.t * shape.b) as f64,
        generate_ms_per_token: t0.elapsed().as_secs_f64() * 1e3 / GENERATE_TOKENS as f64,
    })
}

/// A random token stream over `vocab` tokens for `windows` windows `shape` (and one more token
/// per column for the last targets).
fn random_stream(vocab: usize, windows: usize, shape: SeqShape) -> Vec<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    (0..windows * shape.t * shape.b + shape.b)
        .map(|_| rng.random_range(0..vocab as u32))
        .collect()
}

/// Figures of a trained run's inference ([`run`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RunBench {
    /// Whether the run's weights are int8 (`seqrnn quantize`).
    pub int8: bool,
    /// Parameters of the model.
    pub params: usize,
    /// Evaluation (on random tokens of its vocabulary) and generation.
    pub inference: Inference,
}

/// Times the inference of the trained language model in `dir`, f32 or int8, as [`inference`]
/// on a random token stream of its vocabulary in windows `shape`.
///
/// # Errors
/// Those of [`crate::lm::Trained::load`] (a run of another task is refused) and [`inference`].
pub fn run(
    dir: &std::path::Path,
    shape: SeqShape,
    steps: usize,
    warmup: usize,
) -> Result<RunBench> {
    let m = crate::tasks::lm::Trained::load(dir)?;
    let stream = random_stream(m.model.config().vocab, steps + warmup, shape);
    let inference = inference(&m.model, &m.params, &stream, shape, steps, warmup)?;
    Ok(RunBench {
        int8: m.params.is_int8(),
        params: m.params.len(),
        inference,
    })
}

/// Runs real training steps ([`LmTask`]'s forward and backward, clipping at
/// 0.25, SGD) and evaluation windows of a language model on a random token stream, timing
/// `steps` of each after `warmup` untimed ones, then [`GENERATE_TOKENS`] tokens of generation at
/// batch 1, plus a `1024³` product as the peak reference.
pub fn lm(cfg: LmBenchConfig) -> Result<LmBench> {
    cfg.validate()?;
    let model = LanguageModel::new(cfg.model_config())?;
    let mut params = model.init_params(LmInit::Uniform(0.1), 1)?;
    let (t, b) = (cfg.bptt, cfg.batch);
    let shape = SeqShape { t, b };
    let stream = random_stream(cfg.vocab, cfg.steps + cfg.warmup, shape);
    let mut vocab = Vocab::new();
    for i in 0..cfg.vocab {
        vocab.add(&i.to_string());
    }
    let train_cfg = TrainConfig {
        bptt: t,
        batch: b,
        ..TrainConfig::default()
    };
    let mut task = LmTask::over(&model, &vocab, &stream, &stream, &train_cfg, "bench")?;
    let mut grads = vec![0.0; model.num_params()];
    let mut drop_rng = crate::dropout::rng_from_seed(5);
    // The loop's step with clipping at 0.25 and SGD at lr 1.
    let mut step = |params: &mut [f32], i: usize| -> Result<()> {
        grads.fill(0.0);
        task.train_step(Step::sole(i, params, &mut grads, &mut drop_rng))?;
        clip_grad_norm(&mut grads, 0.25);
        sgd_step(params, &grads, 1.0);
        Ok(())
    };
    for i in 0..cfg.warmup {
        step(&mut params, i)?;
    }
    let t0 = Instant::now();
    for i in cfg.warmup..cfg.warmup + cfg.steps {
        step(&mut params, i)?;
    }
    let train_s = t0.elapsed().as_secs_f64();
    let f32 = inference(&model, &params, &stream, shape, cfg.steps, cfg.warmup)?;
    let int8 = match cfg.int8 {
        true => {
            let weights = model.param_layout().quantize(params);
            Some(inference(
                &model, &weights, &stream, shape, cfg.steps, cfg.warmup,
            )?)
        }
        false => None,
    };
    let tokens = (cfg.steps * t * b) as f64;
    let rc = model.rnn().config();
    let flops = forward_flops(rc, SeqShape { t: 1, b: 1 }) + 2.0 * (cfg.hidden * cfg.vocab) as f64;
    let train_tokens_per_s = tokens / train_s;
    Ok(LmBench {
        train_tokens_per_s,
        forward_flops_per_token: flops,
        train_gflops: 3.0 * flops * train_tokens_per_s / 1e9,
        eval_gflops: flops * f32.eval_tokens_per_s / 1e9,
        gemm_peak_gflops: gemm_peak_gflops(),
        params: model.num_params(),
        f32,
        int8,
    })
}

/// Tokens generated by the timed generation run of [`lm`].
pub const GENERATE_TOKENS: usize = 500;

/// GFLOP/s of the best of five `1024 × 1024 × 1024` products through [`crate::linalg::matmul`].
pub fn gemm_peak_gflops() -> f64 {
    use crate::linalg::{matmul, Accumulate, Mat, MatMut};
    let n = 1024;
    let a = vec![0.5f32; n * n];
    let b = vec![0.25f32; n * n];
    let mut c = vec![0.0f32; n * n];
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t0 = Instant::now();
        matmul(
            MatMut::new(&mut c, n, n),
            Mat::new(&a, n, n),
            Mat::new(&b, n, n),
            Accumulate::Overwrite,
        );
        best = best.min(t0.elapsed().as_secs_f64());
    }
    2.0 * (n * n * n) as f64 / best / 1e9
}

/// Peak resident memory of this process in bytes (Linux `VmHWM`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rnn::{CellKind, Direction};

    #[test]
    fn flop_formula_matches_hand_count() {
        // LSTM 2 × 200, I = 200: per token 2 · 2 · 800 · 400 = 1.28 MFLOP.
        let c = RnnConfig {
            cell: CellKind::Lstm,
            input_size: 200,
            hidden_size: 200,
            num_layers: 2,
            direction: Direction::Forward,
        };
        assert_eq!(forward_flops(&c, SeqShape { t: 1, b: 1 }), 1_280_000.0);
        let b = forward_flops(
            &RnnConfig {
                direction: Direction::Bidirectional,
                ..c
            },
            SeqShape { t: 1, b: 1 },
        );
        // Second layer of a bidirectional stack reads 2H inputs.
        assert_eq!(b, 2.0 * 2.0 * 800.0 * (400.0 + 600.0));
    }

    #[test]
    fn lm_bench_runs_real_steps_on_a_tiny_model() {
        let cfg = LmBenchConfig {
            hidden: 8,
            layers: 1,
            batch: 2,
            bptt: 3,
            vocab: 50,
            steps: 2,
            warmup: 1,
            int8: true,
            ..Default::default()
        };
        let r = lm(cfg).unwrap();
        let q = r.int8.unwrap();
        // Three steps from weights near zero leave the loss near the uniform ln 50, and int8
        // within a hundredth of f32.
        assert!((r.f32.eval_loss - 50f64.ln()).abs() < 0.5, "{r:?}");
        assert!((q.eval_loss - r.f32.eval_loss).abs() < 0.01, "{r:?}");
        // Forward FLOPs per token: 2 · (4·8·(8 + 8) + 8·50).
        assert_eq!(r.forward_flops_per_token, 2.0 * (512.0 + 400.0));
        assert_eq!(r.params, 50 * 8 + 4 * 8 * 16 + 2 * 4 * 8 + 50 * 8 + 50);
        for v in [
            r.train_tokens_per_s,
            r.f32.eval_tokens_per_s,
            r.f32.generate_ms_per_token,
            q.eval_tokens_per_s,
            q.generate_ms_per_token,
            r.gemm_peak_gflops,
        ] {
            assert!(v.is_finite() && v > 0.0, "{r:?}");
        }
        assert!(lm(LmBenchConfig { steps: 0, ..cfg }).is_err());
        assert!(lm(LmBenchConfig { vocab: 0, ..cfg }).is_err());
    }

    #[test]
    fn layer_bench_runs_and_reports_positive_figures() {
        let c = RnnConfig {
            cell: CellKind::Lstm,
            input_size: 4,
            hidden_size: 8,
            num_layers: 1,
            direction: Direction::Forward,
        };
        let r = layer(c, SeqShape { t: 3, b: 2 }, 3, 1).unwrap();
        assert!(r.forward_s > 0.0 && r.forward_backward_s > 0.0);
        assert_eq!(r.tokens, 6);
        assert!(r.train_tokens_per_s().is_finite());
        assert!(peak_rss_bytes().unwrap_or(1) > 0);
    }
}

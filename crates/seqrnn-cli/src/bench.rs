//! `seqrnn bench …`: throughput figures.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use seqrnn::lm::bench::{Inference, LayerBench, LmBench, LmBenchConfig};
use seqrnn::rnn::{Direction, RnnConfig, SeqShape};

use crate::CellArg;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Forward and forward+backward passes of a recurrent stack with random weights.
    Layer(LayerArgs),
    /// Training and evaluation steps of a word-level language model (embedding, recurrent
    /// stack, softmax over the vocabulary) on random tokens.
    Lm(LmArgs),
    /// Evaluation and batch-1 generation of a trained language-model run, f32 or int8
    /// (`seqrnn quantize`), on random tokens of its vocabulary.
    Run(RunArgs),
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The trained language-model run.
    #[arg(long)]
    model: std::path::PathBuf,
    /// Batch columns B of the evaluation windows.
    #[arg(long, default_value_t = 20)]
    batch: usize,
    /// Window length T.
    #[arg(long, default_value_t = 35)]
    bptt: usize,
    /// Threads for matrix products (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Timed evaluation windows.
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct LmArgs {
    /// Cell type.
    #[arg(long, value_enum, default_value = "lstm")]
    cell: CellArg,
    /// Units per layer H (and embedding width).
    #[arg(long, default_value_t = 200)]
    hidden: usize,
    /// Stacked layers.
    #[arg(long, default_value_t = 2)]
    layers: usize,
    /// Batch columns B.
    #[arg(long, default_value_t = 20)]
    batch: usize,
    /// Window length T of truncated BPTT.
    #[arg(long, default_value_t = 35)]
    bptt: usize,
    /// Vocabulary size V.
    #[arg(long, default_value_t = 10_000)]
    vocab: usize,
    /// Threads for matrix products (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Timed training steps and evaluation windows.
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Also time evaluation and generation with the weights in int8 (as `seqrnn quantize`
    /// stores them).
    #[arg(long)]
    int8: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct LayerArgs {
    /// Cell type.
    #[arg(long, value_enum, default_value = "lstm")]
    cell: CellArg,
    /// Units per layer (and input features), H.
    #[arg(long, default_value_t = 200)]
    hidden: usize,
    /// Input features per step, I (default: H).
    #[arg(long)]
    input: Option<usize>,
    /// Batch rows, B.
    #[arg(long, default_value_t = 20)]
    batch: usize,
    /// Sequence length, T.
    #[arg(long, default_value_t = 35)]
    seq: usize,
    /// Stacked layers, L.
    #[arg(long, default_value_t = 2)]
    layers: usize,
    /// Run both directions.
    #[arg(long)]
    bidirectional: bool,
    /// Threads for matrix products (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Timed repetitions of each pass (the median is reported).
    #[arg(long, default_value_t = 30)]
    iterations: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Layer(a) => layer(a),
        BenchCommand::Lm(a) => lm(a),
        BenchCommand::Run(a) => run_bench(a),
    }
}

fn lm(a: LmArgs) -> Result<()> {
    crate::set_threads(a.threads)?;
    let cfg = LmBenchConfig {
        cell: a.cell.into(),
        hidden: a.hidden,
        layers: a.layers,
        batch: a.batch,
        bptt: a.bptt,
        vocab: a.vocab,
        steps: a.steps,
        int8: a.int8,
        ..Default::default()
    };
    let r = seqrnn::lm::bench::lm(cfg)?;
    let peak = seqrnn::lm::bench::peak_rss_bytes().map(|b| b as f64 / (1 << 20) as f64);
    if a.json {
        print_lm_json(&cfg, &r, peak);
    } else {
        print_lm_text(&cfg, &r, peak);
    }
    Ok(())
}

/// The figures of `seqrnn bench lm --json`: one JSON object.
fn print_lm_json(cfg: &LmBenchConfig, r: &LmBench, peak: Option<f64>) {
    let v = serde_json::json!({
        "cell": cfg.cell.name(),
        "hidden": cfg.hidden,
        "layers": cfg.layers,
        "batch": cfg.batch,
        "bptt": cfg.bptt,
        "vocab": cfg.vocab,
        "threads": seqrnn::linalg::threads(),
        "steps": cfg.steps,
        "params": r.params,
        "train_tokens_per_s": r.train_tokens_per_s,
        "eval_tokens_per_s": r.f32.eval_tokens_per_s,
        "train_gflops": r.train_gflops,
        "eval_gflops": r.eval_gflops,
        "gemm_peak_gflops": r.gemm_peak_gflops,
        "train_fraction_of_peak": r.train_gflops / r.gemm_peak_gflops,
        "generate_ms_per_token": r.f32.generate_ms_per_token,
        "int8": r.int8.map(inference_json),
        "peak_rss_mib": peak,
    });
    println!("{v}");
}

/// The figures of `seqrnn bench lm`: what was measured, then one line per figure.
fn print_lm_text(cfg: &LmBenchConfig, r: &LmBench, peak: Option<f64>) {
    let threads = seqrnn::linalg::threads();
    println!(
        "{} LM {}×{}, V={}, T={} B={}, {} thread{}, {} timed steps, {} parameters",
        cfg.cell.name(),
        cfg.layers,
        cfg.hidden,
        cfg.vocab,
        cfg.bptt,
        cfg.batch,
        threads,
        if threads == 1 { "" } else { "s" },
        cfg.steps,
        r.params
    );
    println!(
        "  train  {:>9.0} tokens/s  {:6.1} GFLOP/s  {:4.1}% of peak",
        r.train_tokens_per_s,
        r.train_gflops,
        100.0 * r.train_gflops / r.gemm_peak_gflops
    );
    println!(
        "  eval   {:>9.0} tokens/s  {:6.1} GFLOP/s  {:4.1}% of peak",
        r.f32.eval_tokens_per_s,
        r.eval_gflops,
        100.0 * r.eval_gflops / r.gemm_peak_gflops
    );
    println!(
        "  generate {:.3} ms/token at batch 1 (sampling at temperature 0.8)",
        r.f32.generate_ms_per_token
    );
    if let Some(q) = r.int8 {
        print_int8(&r.f32, &q);
    }
    println!(
        "  peak: 1024³ matrix product {:.1} GFLOP/s; FLOPs per token forward {:.2} M, training 3×",
        r.gemm_peak_gflops,
        r.forward_flops_per_token / 1e6
    );
    if let Some(p) = peak {
        println!("  peak resident memory {p:.1} MiB");
    }
}

/// The int8 figures beside the f32 ones.
fn print_int8(f: &Inference, q: &Inference) {
    println!(
        "  int8 eval   {:>9.0} tokens/s ({:.2}× f32), loss {:.4} (f32 {:.4})",
        q.eval_tokens_per_s,
        q.eval_tokens_per_s / f.eval_tokens_per_s,
        q.eval_loss,
        f.eval_loss
    );
    println!(
        "  int8 generate {:.3} ms/token ({:.2}× f32)",
        q.generate_ms_per_token,
        f.generate_ms_per_token / q.generate_ms_per_token
    );
}

/// Inference figures as JSON.
fn inference_json(r: Inference) -> serde_json::Value {
    serde_json::json!({
        "eval_tokens_per_s": r.eval_tokens_per_s,
        "eval_loss": r.eval_loss,
        "generate_ms_per_token": r.generate_ms_per_token,
    })
}

fn run_bench(a: RunArgs) -> Result<()> {
    crate::set_threads(a.threads)?;
    anyhow::ensure!(
        a.batch >= 1 && a.bptt >= 1 && a.steps >= 1,
        "--batch, --bptt and --steps must be at least 1"
    );
    let shape = SeqShape {
        t: a.bptt,
        b: a.batch,
    };
    let r = seqrnn::lm::bench::run(&a.model, shape, a.steps, 5)
        .with_context(|| format!("cannot benchmark {}", a.model.display()))?;
    let threads = seqrnn::linalg::threads();
    let weights = if r.int8 { "int8" } else { "f32" };
    if a.json {
        let mut v = inference_json(r.inference);
        v["model"] = serde_json::json!(a.model);
        v["weights"] = serde_json::json!(weights);
        v["params"] = serde_json::json!(r.params);
        v["batch"] = serde_json::json!(a.batch);
        v["bptt"] = serde_json::json!(a.bptt);
        v["threads"] = serde_json::json!(threads);
        println!("{v}");
        return Ok(());
    }
    let i = r.inference;
    println!(
        "{} ({weights}, {} parameters), T={} B={}, {threads} thread(s), {} timed windows of random tokens",
        a.model.display(),
        r.params,
        a.bptt,
        a.batch,
        a.steps
    );
    println!(
        "  eval   {:>9.0} tokens/s, loss {:.4}",
        i.eval_tokens_per_s, i.eval_loss
    );
    println!(
        "  generate {:.3} ms/token at batch 1 (sampling at temperature 0.8)",
        i.generate_ms_per_token
    );
    Ok(())
}

fn layer(a: LayerArgs) -> Result<()> {
    crate::set_threads(a.threads)?;
    anyhow::ensure!(a.iterations >= 1, "--iterations must be at least 1");
    let config = RnnConfig {
        cell: a.cell.into(),
        input_size: a.input.unwrap_or(a.hidden),
        hidden_size: a.hidden,
        num_layers: a.layers,
        direction: if a.bidirectional {
            Direction::Bidirectional
        } else {
            Direction::Forward
        },
    };
    config.validate()?;
    anyhow::ensure!(
        a.batch >= 1 && a.seq >= 1,
        "--batch and --seq must be at least 1"
    );
    let shape = SeqShape {
        t: a.seq,
        b: a.batch,
    };
    let r = seqrnn::lm::bench::layer(config, shape, a.iterations, 3)?;
    let peak = seqrnn::lm::bench::peak_rss_bytes();
    if a.json {
        print_layer_json(&config, shape, &r, peak);
    } else {
        print_layer_text(&config, shape, &r, peak);
    }
    Ok(())
}

/// The figures of `seqrnn bench layer --json`: one JSON object.
fn print_layer_json(config: &RnnConfig, shape: SeqShape, r: &LayerBench, peak: Option<u64>) {
    let v = serde_json::json!({
        "cell": config.cell.name(),
        "hidden": config.hidden_size,
        "input": config.input_size,
        "layers": config.num_layers,
        "directions": config.directions(),
        "batch": shape.b,
        "seq": shape.t,
        "threads": seqrnn::linalg::threads(),
        "forward_ms": r.forward_s * 1e3,
        "forward_backward_ms": r.forward_backward_s * 1e3,
        "forward_tokens_per_s": r.forward_tokens_per_s(),
        "train_tokens_per_s": r.train_tokens_per_s(),
        "forward_gflops": r.forward_gflops(),
        "train_gflops": r.train_gflops(),
        "peak_rss_mib": peak.map(|b| b as f64 / (1 << 20) as f64),
    });
    println!("{v}");
}

/// The figures of `seqrnn bench layer`: what was measured, then one line per pass.
fn print_layer_text(config: &RnnConfig, shape: SeqShape, r: &LayerBench, peak: Option<u64>) {
    let threads = seqrnn::linalg::threads();
    println!(
        "{} {}×{} (I={}, {}), T={} B={}, {} thread{}, median of {} runs",
        config.cell.name(),
        config.num_layers,
        config.hidden_size,
        config.input_size,
        if config.direction == Direction::Bidirectional {
            "bidirectional"
        } else {
            "one direction"
        },
        shape.t,
        shape.b,
        threads,
        if threads == 1 { "" } else { "s" },
        r.iterations
    );
    println!(
        "  forward           {:8.3} ms/seq  {:>10.0} tokens/s  {:6.1} GFLOP/s",
        r.forward_s * 1e3,
        r.forward_tokens_per_s(),
        r.forward_gflops()
    );
    println!(
        "  forward+backward  {:8.3} ms/seq  {:>10.0} tokens/s  {:6.1} GFLOP/s",
        r.forward_backward_s * 1e3,
        r.train_tokens_per_s(),
        r.train_gflops()
    );
    println!(
        "  FLOPs: forward 2·T·B·Σ G·H·(I_l+H) = {:.1} MFLOP, backward counted as 2× forward",
        r.forward_flops / 1e6
    );
    if let Some(p) = peak {
        println!(
            "  peak resident memory {:.1} MiB",
            p as f64 / (1 << 20) as f64
        );
    }
}

//! `seqrnn bench …`: throughput figures.

use anyhow::Result;
use clap::{Args, Subcommand};
use seqrnn::rnn::{Direction, RnnConfig, SeqShape};

use crate::CellArg;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Forward and forward+backward passes of a recurrent stack with random weights.
    Layer(LayerArgs),
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
    }
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
    let r = seqrnn::bench::layer(config, shape, a.iterations, 3)?;
    let threads = seqrnn::linalg::threads();
    let peak = seqrnn::bench::peak_rss_bytes();
    if a.json {
        let v = serde_json::json!({
            "cell": config.cell.name(),
            "hidden": config.hidden_size,
            "input": config.input_size,
            "layers": config.num_layers,
            "directions": config.directions(),
            "batch": shape.b,
            "seq": shape.t,
            "threads": threads,
            "forward_ms": r.forward_s * 1e3,
            "forward_backward_ms": r.forward_backward_s * 1e3,
            "forward_tokens_per_s": r.forward_tokens_per_s(),
            "train_tokens_per_s": r.train_tokens_per_s(),
            "forward_gflops": r.forward_gflops(),
            "train_gflops": r.train_gflops(),
            "peak_rss_mib": peak.map(|b| b as f64 / (1 << 20) as f64),
        });
        println!("{v}");
    } else {
        println!(
            "{} {}×{} (I={}, {}), T={} B={}, {} thread{}, median of {} runs",
            config.cell.name(),
            config.num_layers,
            config.hidden_size,
            config.input_size,
            if a.bidirectional {
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
    Ok(())
}

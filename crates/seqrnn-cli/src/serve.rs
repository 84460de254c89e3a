//! `seqrnn serve`: trained runs behind an HTTP API (the `seqrnn-serve` crate).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

/// `seqrnn serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// A run to serve, as NAME=RUN (repeat for more): its routes are /v1/models/NAME/...
    #[arg(long = "model", value_name = "NAME=RUN", required = true, value_parser = model_arg)]
    models: Vec<(String, PathBuf)>,
    /// The address to listen on (127.0.0.1: this machine only).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The port (0: any free one, printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Every route but /health needs `Authorization: Bearer KEY`.
    #[arg(long, value_name = "KEY")]
    api_key: Option<String>,
    /// Threads of the computations (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Generations one language model runs together in its batch (continuous batching), and
    /// inputs a classifier, tagger or speech model computes together (micro-batches); more wait.
    #[arg(long, default_value_t = 32)]
    max_batch: usize,
    /// Milliseconds a micro-batch waits for more requests after its first (0: it takes only
    /// those already waiting, so a lone request never waits).
    #[arg(long, default_value_t = 0.0)]
    batch_window_ms: f64,
    /// Requests computed or waiting at once; more are answered 503.
    #[arg(long, default_value_t = 256)]
    max_queue: usize,
    /// The most tokens one generation request may ask for.
    #[arg(long, default_value_t = 1024)]
    max_tokens: usize,
    /// Seconds before a request is answered 504.
    #[arg(long, default_value_t = 60.0)]
    timeout_s: f64,
}

fn model_arg(s: &str) -> std::result::Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, run)) if !name.is_empty() && !run.is_empty() => {
            Ok((name.to_string(), PathBuf::from(run)))
        }
        _ => Err(format!("expected NAME=RUN, got {s:?}")),
    }
}

pub fn serve_cmd(a: ServeArgs) -> Result<()> {
    anyhow::ensure!(
        a.timeout_s.is_finite() && a.timeout_s > 0.0,
        "--timeout-s must be a positive number of seconds"
    );
    anyhow::ensure!(
        a.batch_window_ms.is_finite() && (0.0..=1000.0).contains(&a.batch_window_ms),
        "--batch-window-ms must be between 0 and 1000"
    );
    let defaults = seqrnn_serve::ServeConfig::default();
    let config = seqrnn_serve::ServeConfig {
        models: a.models,
        host: a.host,
        port: a.port,
        api_key: a.api_key,
        threads: a.threads.unwrap_or(defaults.threads),
        max_batch: a.max_batch,
        batch_window: Duration::from_secs_f64(a.batch_window_ms / 1000.0),
        max_queue: a.max_queue,
        max_tokens: a.max_tokens,
        timeout: Duration::from_secs_f64(a.timeout_s),
        ..defaults
    };
    seqrnn_serve::run(config, |addr| {
        use std::io::Write as _;
        println!("listening on http://{addr}");
        let _ = std::io::stdout().flush();
    })
    .context("seqrnn serve")?;
    eprintln!("stopped: every request in flight was answered");
    Ok(())
}

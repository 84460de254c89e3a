//! `seqrnn serve`: trained runs of every task behind an HTTP JSON API, on tokio and axum.
//!
//! - [`ServeConfig`]: what the command line gives (`validate()` before use).
//! - [`run`]: loads every run once (`seqrnn::load`), binds, serves until SIGINT or SIGTERM, and
//!   then finishes the requests in flight.
//! - `api`: the request bodies' fields and the one error format,
//!   `{"error": {"message", "field"}}`.
//! - `routes`: one handler a route; each calls what the task's `Trained` offers, on a rayon
//!   pool, with a bounded queue and a timeout.
//! - `batcher`: continuous batching of generation, one batch a language model.
//! - `gather`: micro-batches of classification, tagging and transcription requests.
//! - `metrics`: `GET /metrics` in Prometheus' text format.
//!
//! The server reads no file named in a request: everything it reads comes in the body.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod api;
mod batcher;
mod gather;
mod metrics;
mod routes;

/// The server's settings.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The runs served, by name: `(name, run folder)`.
    pub models: Vec<(String, PathBuf)>,
    /// The address to bind (default 127.0.0.1: this machine only).
    pub host: String,
    /// The port (0: a free one, printed).
    pub port: u16,
    /// When set, every route but `/health` needs `Authorization: Bearer KEY`.
    pub api_key: Option<String>,
    /// Threads of the computations.
    pub threads: usize,
    /// Generations a language model runs together in one batch (continuous batching), and
    /// inputs a classifier, tagger or speech model computes together (micro-batches).
    pub max_batch: usize,
    /// How long a micro-batch waits for more requests after its first (zero: it takes only
    /// those already waiting).
    pub batch_window: Duration,
    /// Requests computed or waiting at once; more are answered 503.
    pub max_queue: usize,
    /// The most tokens one generation request may ask for.
    pub max_tokens: usize,
    /// A request not answered in this time is answered 504.
    pub timeout: Duration,
    /// The largest JSON or CSV body (bytes).
    pub body_limit: usize,
    /// The largest WAV body (bytes).
    pub wav_limit: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            models: Vec::new(),
            host: "127.0.0.1".into(),
            port: 8080,
            api_key: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_batch: 32,
            batch_window: Duration::ZERO,
            max_queue: 256,
            max_tokens: 1024,
            timeout: Duration::from_secs(60),
            body_limit: 1 << 20,
            wav_limit: 16 << 20,
        }
    }
}

impl ServeConfig {
    /// Refuses settings the server cannot work with.
    ///
    /// # Errors
    /// [`ServeError::Config`] naming the setting.
    pub fn validate(&self) -> Result<(), ServeError> {
        let bad = |m: String| Err(ServeError::Config(m));
        if self.models.is_empty() {
            return bad("no model to serve: give --model NAME=RUN".into());
        }
        for (i, (name, _)) in self.models.iter().enumerate() {
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                return bad(format!(
                    "model name {name:?}: use letters, digits, '-', '_' and '.'"
                ));
            }
            if self.models[..i].iter().any(|(n, _)| n == name) {
                return bad(format!("model name {name:?} is given twice"));
            }
        }
        if [
            self.threads,
            self.max_batch,
            self.max_queue,
            self.max_tokens,
        ]
        .contains(&0)
        {
            return bad(
                "--threads, --max-batch, --max-queue and --max-tokens must be at least 1".into(),
            );
        }
        if self.timeout.is_zero() {
            return bad("--timeout-s must be positive".into());
        }
        if self.api_key.as_deref() == Some("") {
            return bad("--api-key is empty".into());
        }
        Ok(())
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Impossible settings.
    #[error("{0}")]
    Config(String),
    /// A run that could not be loaded.
    #[error("model {name}: {source}")]
    Load {
        /// The model's name.
        name: String,
        /// The library's error.
        source: seqrnn::Error,
    },
    /// The address could not be bound, or serving failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Serves `config`'s models until SIGINT or SIGTERM, then finishes the requests in flight and
/// returns. `listening` is called with the bound address once the server accepts requests.
///
/// # Errors
/// [`ServeError`] for bad settings, a run that does not load, an address that cannot be bound.
pub fn run(config: ServeConfig, listening: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    config.validate()?;
    let state = Arc::new(routes::State::load(&config)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| ServeError::Io {
            what: "could not start the server's runtime".into(),
            source,
        })?;
    runtime.block_on(async move {
        let addr = format!("{}:{}", config.host, config.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|source| ServeError::Io {
                what: format!("could not listen on {addr}"),
                source,
            })?;
        let bound = listener.local_addr().map_err(|source| ServeError::Io {
            what: "no local address".into(),
            source,
        })?;
        listening(bound);
        axum::serve(listener, routes::router(state))
            .with_graceful_shutdown(stop_signal())
            .await
            .map_err(|source| ServeError::Io {
                what: "serving failed".into(),
                source,
            })
    })
}

/// Resolves at the first SIGINT or SIGTERM.
async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

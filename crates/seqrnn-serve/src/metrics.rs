//! The server's metrics, in Prometheus' text format at `GET /metrics`: requests by route and
//! status, request latency by route, the computations queued or running, batch sizes and the
//! tokens generated.

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteStatus {
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Route {
    pub route: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

pub struct Metrics {
    registry: Mutex<Registry>,
    pub requests: Family<RouteStatus, Counter>,
    pub latency: Family<Route, Histogram, fn() -> Histogram>,
    pub queue_depth: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub batch_size: Histogram,
    pub generation_batch: Histogram,
    pub tokens: Counter<u64, AtomicU64>,
}

impl Metrics {
    pub fn new() -> Self {
        let requests = Family::<RouteStatus, Counter>::default();
        let latency =
            Family::<Route, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let queue_depth = Gauge::default();
        let batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 8));
        let generation_batch = Histogram::new(exponential_buckets(1.0, 2.0, 9));
        let tokens = Counter::default();
        let mut r = Registry::with_prefix("seqrnn");
        r.register(
            "requests",
            "Requests answered, by route and status code",
            requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time from a request's arrival to its answer (for a stream, to its first bytes)",
            latency.clone(),
        );
        r.register(
            "queue_depth",
            "Computations running or waiting for a thread",
            queue_depth.clone(),
        );
        r.register(
            "batch_size",
            "Inputs computed together in one call of a model",
            batch_size.clone(),
        );
        r.register(
            "generation_batch_size",
            "Generations advanced together in one step of a language model's batch",
            generation_batch.clone(),
        );
        r.register("generated_tokens", "Tokens generated", tokens.clone());
        Metrics {
            registry: Mutex::new(r),
            requests,
            latency,
            queue_depth,
            batch_size,
            generation_batch,
            tokens,
        }
    }

    /// Every metric, in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let r = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        out
    }
}

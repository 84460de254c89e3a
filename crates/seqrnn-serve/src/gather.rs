//! Micro-batches for the tasks answered in one call (classification, tagging, transcription):
//! one thread a model takes every request waiting for it (and, with a window, those arriving
//! within it, up to a number of inputs), computes their inputs in one library call on the
//! server's pool, and answers each request its own part.
//!
//! Under load, requests arriving while a batch computes form the next one, so batches grow with
//! the traffic and a lone request never waits for company (with the default window of 0).
//!
//! An answer does not depend on its company: the library's inference gives each input, to the
//! bit, what it gives that input alone (packed, batch-invariant products; padding-exact
//! encoders). A batch that fails (one input the library refuses) is computed again request by
//! request, so that each request gets its own answer or error.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use prometheus_client::metrics::histogram::Histogram;
use seqrnn::Loaded;
use tokio::sync::oneshot;

use crate::api::{ApiError, ApiResult};

/// The library call of a task: a model and inputs to one output per input.
pub(crate) type Compute<I, O> = fn(&Loaded, Vec<I>) -> ApiResult<Vec<O>>;

/// A request waiting for its batch.
struct Request<I, O> {
    inputs: Vec<I>,
    reply: oneshot::Sender<ApiResult<Vec<O>>>,
    /// Held until the request is answered (its place in the server's queue).
    _slot: Box<dyn Send>,
}

/// How a model's requests are gathered.
#[derive(Clone)]
pub(crate) struct GatherConfig {
    /// Inputs computed together at most.
    pub max_inputs: usize,
    /// How long a batch waits for more requests after its first (0: takes only those waiting).
    pub window: Duration,
    /// Inputs per batch, observed.
    pub batch_size: Histogram,
}

/// The micro-batch thread of one model and one task.
pub(crate) struct Gather<I, O> {
    requests: Sender<Request<I, O>>,
}

impl<I: Clone + Send + 'static, O: Send + 'static> Gather<I, O> {
    /// Starts the thread that batches `model`'s requests through `compute` on `pool`.
    pub(crate) fn start(
        name: &str,
        model: &Arc<Loaded>,
        pool: &Arc<rayon::ThreadPool>,
        config: GatherConfig,
        compute: Compute<I, O>,
    ) -> std::io::Result<Self> {
        let (requests, rx) = mpsc::channel();
        let (model, pool) = (Arc::clone(model), Arc::clone(pool));
        std::thread::Builder::new()
            .name(format!("seqrnn-gather-{name}"))
            .spawn(move || {
                while let Some(batch) = next_batch(&rx, &config) {
                    let n: usize = batch.iter().map(|r| r.inputs.len()).sum();
                    config.batch_size.observe(n as f64);
                    pool.install(|| answer(batch, |inputs| compute(&model, inputs)));
                }
            })?;
        Ok(Gather { requests })
    }

    /// Computes `inputs` in the next batch, holding `slot` until answered.
    pub(crate) async fn call(&self, inputs: Vec<I>, slot: Box<dyn Send>) -> ApiResult<Vec<O>> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            inputs,
            reply,
            _slot: slot,
        };
        if self.requests.send(request).is_err() {
            return Err(stopped());
        }
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

fn stopped() -> ApiError {
    ApiError::status(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the model's batch has stopped",
    )
}

/// The next batch: the first request to come, every one already waiting, and those arriving
/// within the window, up to `max_inputs` inputs (a request is never split). `None` once the
/// server is gone.
fn next_batch<I, O>(rx: &Receiver<Request<I, O>>, c: &GatherConfig) -> Option<Vec<Request<I, O>>> {
    let first = rx.recv().ok()?;
    let mut n = first.inputs.len();
    let mut batch = vec![first];
    let until = Instant::now() + c.window;
    while n < c.max_inputs {
        let wait = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(r) => {
                n += r.inputs.len();
                batch.push(r);
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
        }
    }
    Some(batch)
}

/// Computes a batch in one call of `compute` and answers each request its part; when the call
/// fails, each request alone. A panic answers 500.
fn answer<I: Clone, O>(batch: Vec<Request<I, O>>, compute: impl Fn(Vec<I>) -> ApiResult<Vec<O>>) {
    let run = |inputs: Vec<I>| {
        std::panic::catch_unwind(AssertUnwindSafe(|| compute(inputs))).unwrap_or_else(|_| {
            Err(ApiError::status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the computation failed",
            ))
        })
    };
    if batch.len() > 1 {
        let all: Vec<I> = batch
            .iter()
            .flat_map(|r| r.inputs.iter().cloned())
            .collect();
        let n = all.len();
        match run(all) {
            Ok(mut outs) if outs.len() == n => {
                for r in batch.into_iter().rev() {
                    let part = outs.split_off(outs.len() - r.inputs.len());
                    let _ = r.reply.send(Ok(part));
                }
                return;
            }
            _ => {}
        }
    }
    for r in batch {
        let out = run(r.inputs);
        let _ = r.reply.send(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(inputs: Vec<i32>) -> (Request<i32, i32>, oneshot::Receiver<ApiResult<Vec<i32>>>) {
        let (reply, rx) = oneshot::channel();
        let slot: Box<dyn Send> = Box::new(());
        (
            Request {
                inputs,
                reply,
                _slot: slot,
            },
            rx,
        )
    }

    /// Doubles every input; refuses a negative one (the whole call fails).
    fn double(inputs: Vec<i32>) -> ApiResult<Vec<i32>> {
        match inputs.iter().any(|&x| x < 0) {
            true => Err(ApiError::bad(Some("inputs"), "negative")),
            false => Ok(inputs.iter().map(|x| 2 * x).collect()),
        }
    }

    #[test]
    fn each_request_gets_its_part_and_a_refused_one_fails_alone() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let counted = |inputs: Vec<i32>| {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            double(inputs)
        };
        let (a, ra) = request(vec![1, 2]);
        let (b, rb) = request(vec![3]);
        let (c, rc) = request(vec![]);
        answer(vec![a, b, c], counted);
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::Relaxed),
            1,
            "one call"
        );
        assert_eq!(ra.blocking_recv().unwrap().unwrap(), [2, 4]);
        assert_eq!(rb.blocking_recv().unwrap().unwrap(), [6]);
        assert!(rc.blocking_recv().unwrap().unwrap().is_empty());

        let (a, ra) = request(vec![1]);
        let (b, rb) = request(vec![-1, 5]);
        let (c, rc) = request(vec![7]);
        answer(vec![a, b, c], double);
        assert_eq!(ra.blocking_recv().unwrap().unwrap(), [2]);
        assert!(rb.blocking_recv().unwrap().is_err());
        assert_eq!(rc.blocking_recv().unwrap().unwrap(), [14]);

        let (a, ra) = request(vec![1]);
        answer(vec![a], |_: Vec<i32>| -> ApiResult<Vec<i32>> {
            panic!("boom")
        });
        let e = ra.blocking_recv().unwrap().unwrap_err();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn a_batch_takes_what_waits_up_to_its_size() {
        let (tx, rx) = mpsc::channel();
        let mut replies = Vec::new();
        for n in [2, 3, 1, 4] {
            let (r, rr) = request(vec![0; n]);
            tx.send(r).unwrap();
            replies.push(rr);
        }
        let c = GatherConfig {
            max_inputs: 5,
            window: Duration::ZERO,
            batch_size: Histogram::new([1.0]),
        };
        let sizes =
            |b: Vec<Request<i32, i32>>| b.iter().map(|r| r.inputs.len()).collect::<Vec<_>>();
        // 2 + 3 reaches 5; then 1 + 4 (a request is never split).
        assert_eq!(sizes(next_batch(&rx, &c).unwrap()), [2, 3]);
        assert_eq!(sizes(next_batch(&rx, &c).unwrap()), [1, 4]);
        drop(tx);
        assert!(next_batch(&rx, &c).is_none());
    }
}

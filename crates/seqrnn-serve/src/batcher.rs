//! Continuous batching of generation: one thread a language model runs every generation in
//! flight as one batch, a step at a time ([`seqrnn::lm::generate::LmBatch`]). Between steps,
//! new requests join (each primed alone on its prompt) and finished or abandoned ones leave, so
//! a request never waits for another to end, and a client that goes away frees its row at the
//! next step.
//!
//! A reader slower than the generation holds its row back: at most [`AHEAD`] tokens wait for it,
//! and until it takes them its row sits out of the steps (the others go on).
//!
//! A generation's tokens do not depend on who else is in the batch: the library's batch steps
//! give each row, to the bit, the logits it gets alone, and each row draws from its own seeded
//! sampler ([`seqrnn::lm::generate::BatchRow`]). They are `seqrnn generate`'s with the same seed.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::histogram::Histogram;
use rayon::prelude::*;
use seqrnn::lm::generate::{BatchRow, LmBatch};
use seqrnn::lm::Sampling;
use seqrnn::rnn::RnnState;
use seqrnn::Loaded;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::Sender as TokenSender;

/// Tokens a generation may run ahead of its reader ([`channel`]'s capacity).
pub(crate) const AHEAD: usize = 64;

/// The channel of a generation's tokens.
pub(crate) fn channel() -> (TokenSender<Piece>, tokio::sync::mpsc::Receiver<Piece>) {
    tokio::sync::mpsc::channel(AHEAD)
}

/// What a generation sends its request, token by token; the channel closes at its end.
#[derive(Debug)]
pub(crate) enum Piece {
    /// The next token.
    Token(u32),
    /// The generation failed (the library's message); nothing follows.
    Failed(String),
}

/// A generation request, as the batch takes it.
pub(crate) struct Job {
    /// The tokens read first (never empty: the model's prompt tokens).
    pub prompt: Vec<u32>,
    /// Tokens to generate.
    pub tokens: usize,
    /// Decoding and seed.
    pub sampling: Sampling,
    /// Where the tokens go ([`channel`]); a closed channel (the client went away) ends the
    /// generation.
    pub out: TokenSender<Piece>,
    /// Held until the generation leaves the batch (its place in the server's queue).
    pub slot: Box<dyn Send>,
}

/// The batch thread of one every-step language model.
pub(crate) struct Batcher {
    jobs: Sender<Job>,
}

impl Batcher {
    /// Starts the batch thread of `model`, running at most `max_batch` generations together and
    /// computing on `pool`; `None` for a model that is not an every-step language model.
    pub(crate) fn start(
        name: &str,
        model: &Arc<Loaded>,
        pool: &Arc<rayon::ThreadPool>,
        max_batch: usize,
        batch_size: Histogram,
    ) -> std::io::Result<Option<Batcher>> {
        if model.as_lm().is_none() {
            return Ok(None);
        }
        let (jobs, rx) = mpsc::channel();
        let (model, pool) = (Arc::clone(model), Arc::clone(pool));
        std::thread::Builder::new()
            .name(format!("seqrnn-batch-{name}"))
            .spawn(move || {
                if let Some(lm) = model.as_lm() {
                    let steps = Steps {
                        pool: &pool,
                        max_batch,
                        batch_size,
                    };
                    steps.run(lm, rx);
                }
            })?;
        Ok(Some(Batcher { jobs }))
    }

    /// Hands `job` to the batch; gives it back if the batch thread has ended.
    pub(crate) fn submit(&self, job: Job) -> Result<(), Job> {
        self.jobs.send(job).map_err(|e| e.0)
    }
}

/// A generation in the batch.
struct Live {
    row: BatchRow,
    /// The token the next step reads (the last one chosen).
    next: u32,
    /// Tokens still to choose.
    left: usize,
    /// A token chosen but not yet taken by the reader (its channel was full).
    pending: Option<u32>,
    out: TokenSender<Piece>,
    _slot: Box<dyn Send>,
}

impl Live {
    /// Sends `token` (or keeps it until the reader has room).
    fn send(&mut self, token: u32) {
        self.next = token;
        self.left -= 1;
        self.pending = Some(token);
        self.flush();
    }

    /// Hands the pending token over if the reader has room; a closed channel ends the
    /// generation.
    fn flush(&mut self) {
        let Some(token) = self.pending else { return };
        match self.out.try_send(Piece::Token(token)) {
            Ok(()) => self.pending = None,
            Err(TrySendError::Full(_)) => {}
            Err(TrySendError::Closed(_)) => {
                self.pending = None;
                self.left = 0;
            }
        }
    }

    /// Still has tokens to choose or hand over, to a reader still there.
    fn running(&self) -> bool {
        (self.left > 0 || self.pending.is_some()) && !self.out.is_closed()
    }

    /// Takes part in the next step.
    fn ready(&self) -> bool {
        self.left > 0 && self.pending.is_none()
    }
}

/// The batch loop's settings.
struct Steps<'a> {
    pool: &'a rayon::ThreadPool,
    max_batch: usize,
    batch_size: Histogram,
}

impl Steps<'_> {
    /// Runs until the server drops its [`Batcher`] and the last generation ends.
    fn run(&self, lm: &seqrnn::lm::Trained, jobs: Receiver<Job>) {
        let mut batch = match self.pool.install(|| lm.batch()) {
            Ok(b) => b,
            Err(e) => {
                for job in jobs {
                    let _ = job.out.try_send(Piece::Failed(e.to_string()));
                }
                return;
            }
        };
        let v = batch.vocab();
        let mut live: Vec<Live> = Vec::with_capacity(self.max_batch);
        let mut logits = Vec::with_capacity(self.max_batch * v);
        loop {
            live.iter_mut().for_each(Live::flush);
            live.retain(Live::running);
            if live.is_empty() {
                match jobs.recv() {
                    Ok(job) => self.admit(&mut batch, job, &mut live),
                    Err(_) => return,
                }
            }
            while live.len() < self.max_batch {
                match jobs.try_recv() {
                    Ok(job) => self.admit(&mut batch, job, &mut live),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            if !live.iter().any(Live::ready) {
                // Every row waits on its reader: wait a little (or for a new request).
                match jobs.recv_timeout(Duration::from_millis(1)) {
                    Ok(job) => self.admit(&mut batch, job, &mut live),
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
                }
                continue;
            }
            self.step(&mut batch, &mut live, &mut logits);
        }
    }

    /// One step of the ready rows: their next tokens chosen and sent.
    fn step(&self, batch: &mut LmBatch<'_>, live: &mut [Live], logits: &mut Vec<f32>) {
        let v = batch.vocab();
        let mut ready: Vec<&mut Live> = live.iter_mut().filter(|l| l.ready()).collect();
        self.batch_size.observe(ready.len() as f64);
        let mut rows: Vec<(u32, &mut RnnState)> = ready
            .iter_mut()
            .map(|l| (l.next, &mut l.row.state))
            .collect();
        logits.resize(rows.len() * v, 0.0);
        let stepped = self.pool.install(|| {
            std::panic::catch_unwind(AssertUnwindSafe(|| batch.step(&mut rows, logits)))
        });
        drop(rows);
        let failure = match stepped {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("the generation step failed".to_string()),
        };
        if let Some(msg) = failure {
            for l in ready {
                let _ = l.out.try_send(Piece::Failed(msg.clone()));
                l.left = 0;
            }
            return;
        }
        // Each row draws from its own sampler: in parallel, and the same as one by one.
        let chosen: Vec<u32> = self.pool.install(|| {
            ready
                .par_iter_mut()
                .zip(logits.par_chunks_exact(v))
                .map(|(l, row)| l.row.choose(row))
                .collect()
        });
        for (l, token) in ready.into_iter().zip(chosen) {
            l.send(token);
        }
    }

    /// Primes `job` alone and sends its first token; it joins `live` if it wants more.
    fn admit(&self, batch: &mut LmBatch<'_>, job: Job, live: &mut Vec<Live>) {
        if job.tokens == 0 || job.out.is_closed() {
            return;
        }
        let Sampling { decoding, seed } = job.sampling;
        let started = self.pool.install(|| {
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                BatchRow::start(batch, &job.prompt, decoding, seed)
            }))
        });
        let (row, first) = match started {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                let _ = job.out.try_send(Piece::Failed(e.to_string()));
                return;
            }
            Err(_) => {
                let _ = job
                    .out
                    .try_send(Piece::Failed("the generation failed".into()));
                return;
            }
        };
        let mut l = Live {
            row,
            next: first,
            left: job.tokens,
            pending: None,
            out: job.out,
            _slot: job.slot,
        };
        l.send(first);
        live.push(l);
    }
}

//! The library's integration tests, one module a theme, in one test binary (one link of the
//! library and its dependencies instead of one a file); `common` holds the helpers they share.
//! `tests/threaded.rs` stays a binary of its own: it changes the process-wide thread count.
//!
//! Run one module's tests with `cargo test -p seqrnn --test it MODULE::`.

mod common;

mod batched;
mod bleu;
mod classify;
mod data;
mod entities;
mod export;
mod forecast;
mod fuzz_regressions;
mod gradients;
mod keras_import;
mod layers;
mod lm_parity;
mod old_runs;
mod parity;
mod regularizers;
/// The comparison reports: only with the `plots` feature.
#[cfg(feature = "plots")]
mod report;
mod series;

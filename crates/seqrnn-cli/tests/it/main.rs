//! The command-line tests, one module a command or theme, in one test binary (one link of the
//! library and its dependencies instead of one a file). Each module runs the built `seqrnn`
//! binary as a user does; `common` holds the helpers they share.
//!
//! Run one module's tests with `cargo test -p seqrnn-cli --test it MODULE::`.

mod common;

mod classify;
mod classify_ts;
mod cli;
mod compare;
/// Under `mpirun -np 2`: only with the `mpi` feature.
#[cfg(feature = "mpi")]
mod distributed;
mod encoding;
mod forecast;
mod inspect;
mod keras;
mod last_token;
mod lm;
mod reliability;
/// The HTTP server: with the `serve` feature (on by default).
#[cfg(feature = "serve")]
mod serve;
mod speech;
mod tag;
mod translate;

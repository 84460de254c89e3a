//! # seqrnn
//!
//! Fused LSTM and GRU layers with hand-written forward and backward passes over whole sequences,
//! in PyTorch's weight layout, and the sequence models built on them.
//!
//! The engine lives in [`rnn`]; matrix products go through [`linalg`].

pub mod bench;
pub mod data;
pub mod dropout;
pub mod error;
pub mod generate;
pub mod io;
pub mod linalg;
pub mod model;
pub mod optim;
pub mod report;
pub mod rnn;
pub mod run;
pub mod train;

pub use error::{Error, Result};

//! # seqrnn
//!
//! Fused LSTM and GRU layers with hand-written forward and backward passes over whole sequences,
//! in PyTorch's weight layout, and the sequence models built on them.
//!
//! The engine lives in [`rnn`]; matrix products go through [`linalg`]; the language model built
//! on it in [`model`], its training in [`train`].
//!
//! ```
//! use seqrnn::rnn::{CellKind, Direction, Init, Rnn, RnnCache, RnnConfig, RnnState, RnnWorkspace, SeqShape};
//!
//! let config = RnnConfig { cell: CellKind::Lstm, input_size: 32, hidden_size: 64, num_layers: 2,
//!                          direction: Direction::Forward };
//! let rnn = Rnn::new(config)?;
//! let mut params = vec![0.0; rnn.num_params()];          // PyTorch state_dict order, one block
//! Init::default().apply(&config, &mut params, 42)?;
//! let shape = SeqShape { t: 35, b: 20 };
//! let x = vec![0.1; shape.t * shape.b * 32];             // x[T, B, I], time-major
//! let mut state = RnnState::zeros(&config, shape.b);     // h, c [L·D, B, H]; carried across windows
//! let mut y = vec![0.0; shape.t * shape.b * 64];         // y[T, B, D·H]
//! let mut cache = RnnCache::default();
//! let mut rng = seqrnn::dropout::rng_from_seed(1);        // dropout masks, if any
//! rnn.forward_train(&params, &x, shape, &mut state, &mut y, &mut cache, &mut rng)?;
//! let (mut grads, mut dx) = (vec![0.0; rnn.num_params()], vec![0.0; x.len()]);
//! let mut dstate = RnnState::zeros(&config, shape.b);    // ∂L/∂ final state in, ∂L/∂ initial out
//! let dy = y.clone();                                    // ∂L/∂y of L = ½‖y‖²
//! rnn.backward(&params, &mut grads, &cache, &dy, &mut dstate, &mut dx,
//!              &mut RnnWorkspace::default())?;
//! assert!(grads.iter().any(|g| *g != 0.0));
//! # Ok::<(), seqrnn::Error>(())
//! ```

pub mod bench;
pub mod data;
pub mod dropout;
pub mod error;
pub mod generate;
pub mod inspect;
pub mod io;
pub mod linalg;
pub mod model;
pub mod optim;
pub mod report;
pub mod rnn;
pub mod run;
pub mod train;

pub use error::{Error, Result};
/// Classification: train ([`train::classify`]), load a trained run and use it
/// ([`classify::Trained`]).
pub use train::classify;
/// Forecasting: train ([`train::forecast`]), load a trained run and use it
/// ([`forecast::Trained`]).
pub use train::forecast;
/// Language models: train ([`train::lm`]), load a trained run and use it ([`lm::Trained`]).
pub use train::lm;

#[cfg(test)]
mod test_shared;

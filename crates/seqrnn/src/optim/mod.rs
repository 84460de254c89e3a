//! Optimisers and gradient clipping over flat parameter and gradient blocks.
//!
//! Every model keeps its parameters in one contiguous `f32` block with a gradient block of the
//! same layout, so each of these is a single loop.

pub mod adam;
pub mod clip;
pub mod sgd;

pub use adam::{Adam, AdamConfig};
pub use clip::{clip_grad_norm, grad_norm};
pub use sgd::sgd_step;

//! The recurrent engine: fused LSTM and GRU layers, stacked and optionally bidirectional, with
//! hand-written forward and backward passes over whole sequences.
//!
//! # Dimension letters
//! Used in every shape in this module's documentation:
//!
//! | letter | meaning |
//! |---|---|
//! | `T` | time steps of a sequence (window) |
//! | `B` | batch rows (independent sequences processed together) |
//! | `I` | input features per step of the stack (`I_l` for layer `l`: `I`, then `D·H`) |
//! | `H` | units per direction of every layer |
//! | `G` | gates per cell: 4 for LSTM (`i, f, g, o`), 3 for GRU (`r, z, n`) |
//! | `L` | stacked layers |
//! | `D` | directions: 1, or 2 when bidirectional |
//! | `V` | vocabulary size (language models) |
//!
//! All buffers are row-major `f32` and time-major: input `x[T, B, I]`, output `y[T, B, D·H]`
//! (for two directions each step holds `[forward H | reverse H]`), states `[L·D, B, H]`.
//!
//! # Weights
//! PyTorch's layout and names, so a `state_dict` maps one-to-one: per layer `l` and direction
//! (suffix `_reverse` for the second) `weight_ih_l{l}[G·H, I_l]`, `weight_hh_l{l}[G·H, H]`,
//! `bias_ih_l{l}[G·H]`, `bias_hh_l{l}[G·H]`, packed in one block ([`RnnLayout`]).
//!
//! # Equations
//! LSTM: `i = σ(W_ii x + b_ii + W_hi h + b_hi)`, `f`, `o` likewise, `g = tanh(…)`;
//! `c' = f ⊙ c + i ⊙ g`, `h' = o ⊙ tanh(c')`.
//!
//! GRU: `r = σ(W_ir x + b_ir + W_hr h + b_hr)`, `z` likewise, and `h' = (1 − z) ⊙ n + z ⊙ h` with
//! - "reset after" (PyTorch, cuDNN, Keras default): `n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))`;
//! - "reset before" (Cho et al. 2014, Keras `reset_after=False`):
//!   `n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn)`.
//!
//! Textbooks that write `h' = (1 − z) ⊙ h + z ⊙ ñ` use the same family with `z ↦ 1 − z`, i.e.
//! negate that gate's weights and biases (`σ(−a) = 1 − σ(a)`).
//!
//! # Passes
//! [`Rnn::forward_train`] caches what backward needs in an [`RnnCache`];
//! [`Rnn::forward_infer`] caches nothing; [`Rnn::backward`] accumulates weight gradients and
//! writes input and initial-state gradients. Each layer-direction runs the shared loop of
//! `sequence` with the gate kernels of [`lstm`] or [`gru`]; [`mod@reference`] is a plain-loop f64
//! implementation used as the test oracle.

pub(crate) mod activation;
pub mod config;
pub mod gru;
pub mod init;
pub mod lstm;
pub mod minimal;
pub mod params;
pub mod reference;
pub(crate) mod sequence;
pub mod stack;

pub use config::{CellKind, Direction, GruVariant, RnnConfig};
pub use init::{ForgetBias, Init, InitScheme};
pub use params::{CellGrads, CellOffsets, CellParams, RnnLayout, TensorInfo};
pub use stack::{Rnn, RnnCache, RnnPacks, RnnState, RnnWorkspace, SeqShape};

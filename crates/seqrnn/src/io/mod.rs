//! Reading and writing model files.

pub mod atomic;
pub mod keras;
pub mod onnx;
pub mod tensors;

pub use atomic::{write_atomic, write_atomic_with};

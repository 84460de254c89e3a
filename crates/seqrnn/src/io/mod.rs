//! Reading and writing model files.

pub mod atomic;
pub mod tensors;

pub use atomic::{write_atomic, write_atomic_with};

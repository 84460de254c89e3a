//! Reading and writing model files.

pub mod tensors;

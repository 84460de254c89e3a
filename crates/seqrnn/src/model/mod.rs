//! Models built on the recurrent engine.

pub mod embedding;
pub mod lm;
pub mod softmax;

pub use lm::{LanguageModel, LmCache, LmConfig, LmInit, LmLayout, LmWorkspace, OutputWeights};

//! Models built on the recurrent engine.

pub mod classifier;
pub mod dense;
pub mod embedding;
pub mod forecaster;
pub mod layout;
pub mod lm;
pub mod softmax;

pub use layout::{NamedTensor, ParamEntry, ParamLayout};
pub use lm::{LanguageModel, LmCache, LmConfig, LmInit, LmLayout, LmWorkspace, OutputWeights};

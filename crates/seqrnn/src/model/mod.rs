//! Models built on the recurrent engine.

pub mod attention;
pub mod classifier;
pub mod crf;
pub mod ctc;
pub mod dense;
pub mod embedding;
pub mod encoder;
pub mod forecaster;
pub mod last_token;
pub mod layout;
pub mod lm;
pub mod seq2seq;
pub mod softmax;
pub mod speech;
pub mod tagger;

pub use encoder::{EncoderCache, EncoderWorkspace, SeqEncoder};
pub use layout::{NamedTensor, ParamEntry, ParamLayout};
pub use lm::{
    LanguageModel, LmCache, LmConfig, LmInit, LmLayout, LmWorkspace, OutputWeights, Regularizers,
};

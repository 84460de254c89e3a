//! Models built on the recurrent engine.

pub mod attention;
pub mod crf;
pub mod ctc;
pub mod dense;
pub mod embedding;
pub mod encoder;
pub mod layout;
pub mod softmax;

pub use encoder::{EncoderCache, EncoderWorkspace, SeqEncoder};
pub use layout::{NamedTensor, ParamEntry, ParamLayout};

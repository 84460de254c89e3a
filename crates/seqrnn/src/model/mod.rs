//! The network pieces the tasks' models are built from, on the recurrent engine: each knows
//! no task. The models themselves live in their task's folder (`tasks::<task>::model`).

pub mod attention;
pub mod crf;
pub mod ctc;
pub mod dense;
pub mod embedding;
pub mod encoder;
pub mod encoder_head;
pub mod keras;
pub mod layout;
pub mod norm;
pub mod onnx;
pub mod pooling;
pub mod residual;
pub mod softmax;
#[cfg(test)]
pub(crate) mod testing;
pub mod trainable;

pub use encoder::{EncoderCache, EncoderWorkspace, SeqEncoder, VectorBatch};
pub use encoder_head::{EncoderHead, EncoderHeadCache, EncoderHeadWorkspace};
pub use layout::{NamedTensor, ParamEntry, ParamLayout, Weights};
pub use trainable::Trainable;

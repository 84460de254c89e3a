//! An every-step language model from a Keras model whose last recurrent layer returns its
//! sequences (`seqrnn import --keras`; the mapping is [`crate::model::keras`]'s).

use crate::dropout::Dropout;
use crate::error::Result;
use crate::model::embedding::OutputWeights;
use crate::model::keras::KerasStack;
use crate::tasks::lm::model::{LanguageModel, LmConfig};

/// The language model of `stack` and its parameters: a last layer of its own width becomes
/// [`LmConfig::last_hidden`]; no dropout (set it when training further).
///
/// # Errors
/// [`crate::error::Error::Format`] when the model masks id 0, its Dense layer does not predict
/// the vocabulary, or its stack mixes cells or widths below the last layer.
pub fn from_keras(stack: &KerasStack) -> Result<(LanguageModel, Vec<f32>)> {
    stack.check_language_model()?;
    let (cell, hidden, last_hidden) = stack.stack()?;
    let config = LmConfig {
        block: Default::default(),
        vocab: stack.vocab(),
        embed: stack.embed(),
        cell,
        hidden,
        layers: stack.rnns.len(),
        last_hidden,
        dropout: Dropout::NONE,
        output: OutputWeights::Separate,
        reg: Default::default(),
    };
    let model = LanguageModel::new(config)?;
    let params = stack.params(model.param_layout(), "encoder.weight", "decoder")?;
    Ok((model, params))
}

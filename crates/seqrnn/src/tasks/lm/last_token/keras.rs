//! A last-token language model from a Keras model whose last recurrent layer returns only its
//! final state (`seqrnn import --keras`; the mapping is [`crate::model::keras`]'s).

use crate::data::Vocab;
use crate::error::Result;
use crate::model::keras::KerasStack;
use crate::run::{save_tensors_atomic, vocab_fingerprint, RunDir};
use crate::tasks::lm::last_token::model::{LastTokenConfig, LastTokenModel};
use crate::tasks::lm::last_token::{
    LastTokenRunConfig, LastTokenTrainConfig, EVAL_BATCH, LAST_TOKEN_FORMAT,
};
use crate::tasks::lm::LmRunData;
use crate::train::fit::FitConfig;

/// The window of a model whose Keras `Input` gave no sequence length.
pub const DEFAULT_WINDOW: usize = 20;

/// The last-token model of `stack`, its parameters and its window (the Keras input length,
/// [`DEFAULT_WINDOW`] when the model has none); the dropout is the model's largest rate.
///
/// # Errors
/// [`crate::error::Error::Format`] when the model masks id 0, its Dense layer does not predict
/// the vocabulary, or its layers differ in cell or width.
pub fn from_keras(stack: &KerasStack) -> Result<(LastTokenModel, Vec<f32>, usize)> {
    stack.check_language_model()?;
    let (cell, hidden) = stack.uniform("last-token model")?;
    let config = LastTokenConfig {
        vocab: stack.vocab(),
        embed: stack.embed(),
        cell,
        hidden,
        layers: stack.rnns.len(),
        dropout: stack.dropout,
    };
    let model = LastTokenModel::new(config)?;
    let params = stack.params(model.param_layout(), "embedding.weight", "head")?;
    let window = stack.input_length.unwrap_or(DEFAULT_WINDOW).max(1);
    Ok((model, params, window))
}

/// Writes an imported model as a last-token run in `out` (which exists): weights,
/// `config.json` with the window and default training settings. `vocab.txt` is the caller's.
///
/// # Errors
/// I/O errors.
pub fn save_imported(
    out: &RunDir,
    model: &LastTokenModel,
    params: &[f32],
    window: usize,
    vocab: &Vocab,
    data: LmRunData,
) -> Result<()> {
    let mut file = model.param_layout().to_file(params, LAST_TOKEN_FORMAT);
    file.metadata
        .insert("vocab".into(), vocab_fingerprint(vocab));
    save_tensors_atomic(&out.model_path(), &file)?;
    let train = LastTokenTrainConfig {
        window,
        batch: 128,
        eval_batch: EVAL_BATCH,
        threads: 0,
        fit: FitConfig::default(),
    };
    LastTokenRunConfig::new(*model.config(), train, data).save(out)
}

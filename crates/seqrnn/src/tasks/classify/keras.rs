//! A text classifier from a Keras `Sequential` classifier (`seqrnn import --keras --labels`;
//! the mapping is [`crate::model::keras`]'s).
//!
//! Keras' `Embedding(mask_zero=True)` skips the padding (id 0) of post-padded texts, so its
//! last recurrent layer's final state is the state after each text's own last token: seqrnn's
//! padding-exact classifier with `last` pooling, forward only. Without `mask_zero` Keras reads
//! the padding as tokens, which seqrnn never does: such a model is refused.

use crate::data::Vocab;
use crate::error::Result;
use crate::model::keras::KerasStack;
use crate::run::{save_tensors_atomic, RunDir};
use crate::tasks::classify::model::{Classifier, ClassifierConfig, Directions, Pooling};
use crate::tasks::classify::{ClassifyRunConfig, ClassifyTrainConfig, CLASSIFY_FORMAT};
use crate::train::fit::FitConfig;

/// The classifier of `stack` for `classes` labels and its parameters; the dropout is the
/// model's largest rate.
///
/// # Errors
/// [`crate::error::Error::Format`] when the last recurrent layer returns its sequences, the
/// Embedding does not mask padding, the Dense layer's width is not `classes`, or the layers
/// differ in cell or width.
pub fn from_keras(stack: &KerasStack, classes: usize) -> Result<(Classifier, Vec<f32>)> {
    if stack.returns_sequences() {
        return Err(stack.refuse("the last recurrent layer returns its sequences (return_sequences=True): a classifier reads its final state"));
    }
    if !stack.mask_zero {
        return Err(stack.refuse("the Embedding does not mask padding (mask_zero=False), so Keras reads padding ids as tokens; seqrnn's classifier reads each text within its own length (id 0 is padding): save the model with mask_zero=True"));
    }
    if stack.classes() != classes {
        return Err(stack.refuse(format!(
            "the Dense layer has {} units but the labels name {classes} classes",
            stack.classes()
        )));
    }
    let (cell, hidden) = stack.uniform("classifier")?;
    let config = ClassifierConfig {
        vocab: stack.vocab(),
        embed: stack.embed(),
        cell,
        hidden,
        layers: stack.rnns.len(),
        direction: Directions::Forward,
        pooling: Pooling::Last,
        dropout: stack.dropout,
        classes,
        channels: 0,
    };
    let model = Classifier::new(config)?;
    let params = stack.params(model.param_layout(), "embedding.weight", "head")?;
    Ok((model, params))
}

/// Writes an imported classifier as a run in `out` (which exists): weights, `labels.txt`,
/// `config.json` with default training settings. `vocab.txt` is the caller's.
///
/// # Errors
/// I/O errors.
pub fn save_imported(
    out: &RunDir,
    model: &Classifier,
    params: &[f32],
    labels: &Vocab,
) -> Result<()> {
    labels.save(&ClassifyRunConfig::labels_path(out))?;
    let file = model.param_layout().to_file(params, CLASSIFY_FORMAT);
    save_tensors_atomic(&out.model_path(), &file)?;
    let train = ClassifyTrainConfig {
        batch: 32,
        min_freq: 1,
        word_dropout: 0.0,
        encoding: Default::default(),
        fit: FitConfig::default(),
    };
    ClassifyRunConfig::new(*model.config(), train, Default::default()).save(out)
}

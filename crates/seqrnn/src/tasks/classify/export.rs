//! ONNX export of a classifier (`seqrnn export --format onnx`): `model.onnx` and
//! `preprocess.json` (the vocabulary, the labels and how text becomes ids).
//!
//! The graph (`T` steps, `B` texts, `K` labels):
//! - inputs `input_ids` int64 `[T, B]` (each text's ids down a column, padded with id 0 past
//!   its end), `lengths` int64 `[B]` (each in `1..=T`);
//! - `Gather` of the embedding; the (bi)directional recurrent layers with `sequence_lens`, so
//!   each direction reads a text within its own length, as the padding-exact encoder does; the
//!   pooling over real steps (`last`: the final states, `mean`, `max`: masked); `MatMul` +
//!   `Add` head; `Softmax`;
//! - output `probabilities` `[B, K]`.

use std::path::Path;

use serde_json::json;

use crate::error::Result;
use crate::io::onnx::{self, Attr, Dim, Graph, FLOAT, INT64};
use crate::model::onnx::{
    dense, embedding, lengths_and_mask, padded_encoder, pool, rnn_block, tensor,
};
use crate::tasks::classify::Trained;

/// Writes `dir/model.onnx` and `dir/preprocess.json` for `clf` at operator set `opset`.
///
/// # Errors
/// [`crate::error::Error::Config`] for an operator set out of range or a series classifier;
/// I/O errors.
pub fn export_onnx(clf: &Trained, dir: &Path, opset: i64) -> Result<()> {
    onnx::check_opset(opset)?;
    if clf.series().is_some() {
        return Err(crate::error::Error::Config(
            "ONNX export reads token ids; a series classifier (.ts input) does not export yet"
                .into(),
        ));
    }
    let c = clf.model.config();
    let (layout, p) = (clf.model.param_layout(), &clf.params[..]);
    let mut g = Graph::new(
        "seqrnn_classify",
        "seqrnn text classifier: label probabilities",
    );
    let ids = [Dim::Named("T"), Dim::Named("B")];
    g.input(
        "input_ids",
        INT64,
        &ids,
        "token ids [T, B], 0 past each text's end",
    );
    g.input(
        "lengths",
        INT64,
        &[Dim::Named("B")],
        "each text's length [B]",
    );
    let table = tensor(layout, p, "embedding.weight");
    embedding(
        &mut g,
        "embedding.weight",
        table,
        c.embed,
        "input_ids",
        "x0",
    );
    lengths_and_mask(&mut g, "lengths", "input_ids");
    let config = c.rnn_config();
    let block = rnn_block(layout, p, "rnn");
    let out = padded_encoder(&mut g, "rnn", &config, block, "x0", "lens32");
    let last = &out.h_n[c.layers - 1];
    pool(&mut g, c.pooling, &out.top, last, "lengths", "pooled");
    let (w, b) = (
        tensor(layout, p, "head.weight"),
        tensor(layout, p, "head.bias"),
    );
    dense(&mut g, "head", w, b, "pooled", "logits");
    g.node(
        "Softmax",
        &["logits"],
        &["probabilities"],
        &[("axis", Attr::Int(-1))],
    );
    let probs = [Dim::Named("B"), Dim::Fixed(c.classes)];
    g.output("probabilities", FLOAT, &probs, "label probabilities [B, K]");
    let pre = json!({
        "task": "classify",
        "vocab": clf.vocab.tokens(),
        "labels": clf.labels.tokens(),
        "pad": 0,
        "unk": crate::data::UNK,
        "text": "whitespace-separated words; words not in the vocabulary as <unk>; an empty text as one <unk>",
        "inputs": {"input_ids": "int64 [T, B], id 0 past each text's end", "lengths": "int64 [B], each in 1..=T"},
        "outputs": {"probabilities": format!("float32 [B, {}]", c.classes)},
        "pooling": c.pooling,
        "cell": c.cell,
    });
    let model = g.model(opset, "seqrnn text classifier");
    onnx::save_export(dir, vec![("model.onnx", model)], &pre)
}

//! ONNX export of a tagger (`seqrnn export --format onnx`): `model.onnx` (per-token scores),
//! `crf.json` (the CRF's transition scores, for a CRF head) and `preprocess.json` (the word,
//! character and label vocabularies and how a sentence becomes ids).
//!
//! The graph (`T` words, `B` sentences, `C` characters in the longest word, `K` labels):
//! - inputs `word_ids` int64 `[T, B]` (lowercased words; 0 past each sentence's end),
//!   `casing` int64 `[T, B]` (0 lower, 1 upper, 2 capitalised, 3 other), `lengths` int64
//!   `[B]`; with character features `char_ids` int64 `[C, T, B]` (each word's characters down
//!   the first axis, 0 past its end) and `char_lengths` int64 `[T, B]` (1 at padding words);
//! - the word embedding, the casing one-hot and the character BiLSTM's final states
//!   concatenated; the bidirectional word encoder with `sequence_lens`; the emissions layer;
//! - output `scores` float32 `[T, B, K]`. The tags: the argmax per token (softmax head), or
//!   the Viterbi path under `crf.json` (CRF head), reading steps `t < length` only.

use std::path::Path;

use serde_json::json;

use crate::error::Result;
use crate::io::onnx::{self, Attr, Dim, Graph, FLOAT, INT64};
use crate::model::onnx::{dense, embedding, padded_encoder, rnn_block, states_as_rows, tensor};
use crate::tasks::tag::model::CASES;
use crate::tasks::tag::Trained;

/// Writes `dir/model.onnx`, `dir/preprocess.json` and (CRF head) `dir/crf.json` for `tagger`
/// at operator set `opset`.
///
/// # Errors
/// [`crate::error::Error::Config`] for an operator set out of range; I/O errors.
pub fn export_onnx(tagger: &Trained, dir: &Path, opset: i64) -> Result<()> {
    onnx::check_opset(opset)?;
    let c = tagger.model.config();
    let (layout, p) = (tagger.model.param_layout(), &tagger.params[..]);
    let mut g = Graph::new("seqrnn_tag", "seqrnn tagger: per-token label scores");
    let tb = [Dim::Named("T"), Dim::Named("B")];
    g.input(
        "word_ids",
        INT64,
        &tb,
        "lowercased word ids [T, B], 0 past each sentence's end",
    );
    g.input("casing", INT64, &tb, "casing class of each word [T, B]");
    g.input(
        "lengths",
        INT64,
        &[Dim::Named("B")],
        "each sentence's length [B]",
    );
    let table = tensor(layout, p, "word_embedding.weight");
    embedding(
        &mut g,
        "word_embedding.weight",
        table,
        c.embed,
        "word_ids",
        "words",
    );
    let eye: Vec<f32> = (0..CASES * CASES)
        .map(|k| f32::from(u8::from(k / CASES == k % CASES)))
        .collect();
    embedding(&mut g, "casing.one_hot", &eye, CASES, "casing", "cases");
    let mut parts = vec!["words", "cases"];
    if c.char_hidden > 0 {
        char_features(tagger, &mut g);
        parts.push("chars");
    }
    g.node("Concat", &parts, &["x"], &[("axis", Attr::Int(2))]);
    g.node("Cast", &["lengths"], &["lens32"], &[("to", Attr::Int(6))]);
    let config = c.rnn_config();
    let block = rnn_block(layout, p, "rnn");
    let out = padded_encoder(&mut g, "rnn", &config, block, "x", "lens32");
    let (w, b) = (
        tensor(layout, p, "emissions.weight"),
        tensor(layout, p, "emissions.bias"),
    );
    dense(&mut g, "emissions", w, b, &out.top, "scores");
    let scores = [Dim::Named("T"), Dim::Named("B"), Dim::Fixed(c.tags)];
    g.output("scores", FLOAT, &scores, "per-token label scores [T, B, K]");
    let model = g.model(opset, "seqrnn tagger");
    onnx::save_export(dir, vec![("model.onnx", model)], &preprocess(tagger))?;
    match crf_json(tagger) {
        Some(crf) => onnx::write_json(&dir.join("crf.json"), &crf),
        None => Ok(()),
    }
}

/// The character BiLSTM over every word: `chars [T, B, 2·Hc]`, its final states.
fn char_features(tagger: &Trained, g: &mut Graph) {
    let c = tagger.model.config();
    let (layout, p) = (tagger.model.param_layout(), &tagger.params[..]);
    let cb = [Dim::Named("C"), Dim::Named("T"), Dim::Named("B")];
    g.input(
        "char_ids",
        INT64,
        &cb,
        "characters of each word [C, T, B], 0 past its end",
    );
    let tb = [Dim::Named("T"), Dim::Named("B")];
    g.input(
        "char_lengths",
        INT64,
        &tb,
        "characters in each word [T, B], 1 at padding",
    );
    g.ints("flat.ids", &[0, -1]);
    g.ints("flat.lens", &[-1]);
    g.node("Reshape", &["char_ids", "flat.ids"], &["char_flat"], &[]);
    g.node(
        "Reshape",
        &["char_lengths", "flat.lens"],
        &["char_lens"],
        &[],
    );
    g.node(
        "Cast",
        &["char_lens"],
        &["char_lens32"],
        &[("to", Attr::Int(6))],
    );
    let table = tensor(layout, p, "char_embedding.weight");
    embedding(
        g,
        "char_embedding.weight",
        table,
        c.char_embed,
        "char_flat",
        "char_x",
    );
    let config = c.char_config();
    let block = rnn_block(layout, p, "char_rnn");
    let out = padded_encoder(g, "char_rnn", &config, block, "char_x", "char_lens32");
    states_as_rows(g, &out.h_n[0], "char_rows");
    g.node("Shape", &["word_ids"], &["tb.shape"], &[]);
    g.ints("char.width", &[2 * c.char_hidden as i64]);
    g.node(
        "Concat",
        &["tb.shape", "char.width"],
        &["chars.shape"],
        &[("axis", Attr::Int(0))],
    );
    g.node("Reshape", &["char_rows", "chars.shape"], &["chars"], &[]);
}

/// `crf.json`: the labels and the transition, start and end scores (`null`: not allowed).
fn crf_json(tagger: &Trained) -> Option<serde_json::Value> {
    let crf = tagger.model.crf()?;
    let (layout, p) = (tagger.model.param_layout(), &tagger.params[..]);
    let k = tagger.model.config().tags;
    let allowed = crf.constraints();
    let scores = |name: &str, ok: &[bool]| -> Vec<Option<f32>> {
        let v = tensor(layout, p, name);
        v.iter().zip(ok).map(|(&x, &ok)| ok.then_some(x)).collect()
    };
    let t = scores("crf.transitions", &allowed.transitions);
    Some(json!({
        "labels": tagger.labels(),
        "transitions": t.chunks(k).collect::<Vec<_>>(),
        "start": scores("crf.start", &allowed.start),
        "end": scores("crf.end", &allowed.end),
        "score": "start[y0] + Σ_t scores[t, y_t] + Σ_{t>0} transitions[y_{t−1}][y_t] + end[y_last]; null: a transition, first or last label never allowed",
    }))
}

/// `preprocess.json`: vocabularies and how a sentence becomes the graph's inputs.
fn preprocess(tagger: &Trained) -> serde_json::Value {
    let c = tagger.model.config();
    let v = &tagger.vocabs;
    json!({
        "task": "tag",
        "words": v.words.tokens(),
        "chars": v.chars.tokens(),
        "labels": tagger.labels(),
        "pad": 0,
        "unk": 1,
        "text": "a sentence is a list of words; word ids: the lowercased word's id in `words` (1 if absent); characters: each character's id in `chars` (1 if absent)",
        "casing": "of the word's letters: 0 all lowercase, 1 all uppercase, 2 first character uppercase, 3 otherwise (also no letters)",
        "head": c.head,
        "label_scheme": tagger.config.train.train_scheme,
        "file_scheme": tagger.config.train.file_scheme,
        "char_features": c.char_hidden > 0,
        "inputs": {
            "word_ids": "int64 [T, B]", "casing": "int64 [T, B]", "lengths": "int64 [B]",
            "char_ids": "int64 [C, T, B] (with char_features)",
            "char_lengths": "int64 [T, B] (with char_features; 1 at padding)"
        },
        "outputs": {"scores": format!("float32 [T, B, {}]", c.tags)},
    })
}

//! ONNX export of a translation model (`seqrnn export --format onnx`): `encoder.onnx`, a
//! one-step `decoder.onnx` that a greedy or beam-search loop drives, the two vocabularies
//! (`source.tokenizer.json`, `target.tokenizer.json`, Hugging Face `tokenizers` files) and
//! `preprocess.json`.
//!
//! `encoder.onnx` (`S` pieces, `B` sentences):
//! - inputs `src_ids` int64 `[S, B]` (each sentence's pieces down a column, 0 past its end),
//!   `src_lengths` int64 `[B]`;
//! - outputs `memory` float32 `[S, B, 2·He]` (the encoder states the attention reads), `h0`
//!   float32 `[L_d, B, Hd]` (the bridge of the top layer's final states, in every decoder
//!   layer) and, for an LSTM, `c0` (zeros).
//!
//! `decoder.onnx` (one step for `B` rows, beams included):
//! - inputs `prev_ids` int64 `[B]` (`<s>` = 2 at the first step), `h` (and `c`) float32
//!   `[L_d, B, Hd]`, `memory` `[S, B, 2·He]`, `src_lengths` `[B]`;
//! - the decoder layers on the one step; the attention over the real source positions (dot,
//!   general or additive scores, softmax); `tanh(combine [context; state])`; the output layer;
//! - outputs `logits` float32 `[B, Vt]`, `hn` (and `cn`), `attention` float32 `[B, S]`.

use std::path::Path;

use serde_json::json;

use crate::data::subword::{BOS, EOS, PAD};
use crate::error::Result;
use crate::io::onnx::{self, Attr, Dim, Graph, FLOAT, INT64};
use crate::model::attention::Score;
use crate::model::onnx::{
    dense, embedding, padded_encoder, rnn_block, squeeze, states_as_rows, tensor, unsqueeze,
    Initial, Stack,
};
use crate::tasks::translate::Trained;

/// Writes `encoder.onnx`, `decoder.onnx`, the tokenizer files and `preprocess.json` for `mt`
/// into `dir`, at operator set `opset`.
///
/// # Errors
/// [`crate::error::Error::Config`] for an operator set out of range; I/O errors.
pub fn export_onnx(mt: &Trained, dir: &Path, opset: i64) -> Result<()> {
    onnx::check_opset(opset)?;
    let encoder = encoder_graph(mt).model(opset, "seqrnn translation encoder");
    let decoder = decoder_graph(mt).model(opset, "seqrnn translation decoder step");
    let models = vec![("encoder.onnx", encoder), ("decoder.onnx", decoder)];
    onnx::save_export(dir, models, &preprocess(mt))?;
    mt.src_vocab.save(&dir.join("source.tokenizer.json"))?;
    mt.tgt_vocab.save(&dir.join("target.tokenizer.json"))
}

/// The decoder state's dims, `[L_d, B, Hd]`.
fn state_dims(mt: &Trained) -> [Dim; 3] {
    let c = mt.model.config();
    [
        Dim::Fixed(c.dec_layers),
        Dim::Named("B"),
        Dim::Fixed(c.dec_hidden),
    ]
}

/// `encoder.onnx`: sources to `memory`, `h0` (and `c0`).
fn encoder_graph(mt: &Trained) -> Graph {
    let c = mt.model.config();
    let (layout, p) = (mt.model.param_layout(), &mt.params[..]);
    let mut g = Graph::new("seqrnn_translate_encoder", "seqrnn translation encoder");
    let sb = [Dim::Named("S"), Dim::Named("B")];
    g.input(
        "src_ids",
        INT64,
        &sb,
        "source piece ids [S, B], 0 past each sentence's end",
    );
    g.input(
        "src_lengths",
        INT64,
        &[Dim::Named("B")],
        "each source's pieces [B]",
    );
    let table = tensor(layout, p, "encoder.embedding.weight");
    embedding(
        &mut g,
        "encoder.embedding.weight",
        table,
        c.embed,
        "src_ids",
        "x0",
    );
    g.node(
        "Cast",
        &["src_lengths"],
        &["lens32"],
        &[("to", Attr::Int(6))],
    );
    let config = c.encoder_config();
    let block = rnn_block(layout, p, "encoder.rnn");
    let out = padded_encoder(&mut g, "encoder.rnn", &config, block, "x0", "lens32");
    g.node("Identity", &[&out.top], &["memory"], &[]);
    states_as_rows(&mut g, &out.h_n[c.enc_layers - 1], "final");
    let (w, b) = (
        tensor(layout, p, "bridge.weight"),
        tensor(layout, p, "bridge.bias"),
    );
    dense(&mut g, "bridge", w, b, "final", "bridged");
    g.node("Tanh", &["bridged"], &["h0.row"], &[]);
    unsqueeze(&mut g, "h0.row", 0, "h0.one");
    g.ints("layers", &[c.dec_layers as i64, 1, 1]);
    g.node("Expand", &["h0.one", "layers"], &["h0"], &[]);
    let keys = [Dim::Named("S"), Dim::Named("B"), Dim::Fixed(c.keys())];
    g.output("memory", FLOAT, &keys, "encoder states [S, B, 2·He]");
    g.output(
        "h0",
        FLOAT,
        &state_dims(mt),
        "the decoder's initial hidden state",
    );
    if c.cell.has_cell_state() {
        g.node("Sub", &["h0", "h0"], &["c0"], &[]);
        g.output(
            "c0",
            FLOAT,
            &state_dims(mt),
            "the decoder's initial cell state",
        );
    }
    g
}

/// `decoder.onnx`: one step.
fn decoder_graph(mt: &Trained) -> Graph {
    let c = mt.model.config();
    let (layout, p) = (mt.model.param_layout(), &mt.params[..]);
    let lstm = c.cell.has_cell_state();
    let mut g = Graph::new(
        "seqrnn_translate_decoder",
        "seqrnn translation decoder step",
    );
    g.input(
        "prev_ids",
        INT64,
        &[Dim::Named("B")],
        "the previous pieces [B]",
    );
    g.input(
        "h",
        FLOAT,
        &state_dims(mt),
        "decoder hidden state [L_d, B, Hd]",
    );
    if lstm {
        g.input(
            "c",
            FLOAT,
            &state_dims(mt),
            "decoder cell state [L_d, B, Hd]",
        );
    }
    let keys = [Dim::Named("S"), Dim::Named("B"), Dim::Fixed(c.keys())];
    g.input("memory", FLOAT, &keys, "encoder states [S, B, 2·He]");
    g.input(
        "src_lengths",
        INT64,
        &[Dim::Named("B")],
        "each source's pieces [B]",
    );
    let table = tensor(layout, p, "decoder.embedding.weight");
    embedding(
        &mut g,
        "decoder.embedding.weight",
        table,
        c.embed,
        "prev_ids",
        "emb",
    );
    unsqueeze(&mut g, "emb", 0, "x0");
    let config = c.decoder_config();
    let out = Stack {
        prefix: "decoder.rnn",
        config: &config,
        block: rnn_block(layout, p, "decoder.rnn"),
        x: "x0",
        lens: None,
        initial: Initial::Stacked {
            h0: "h",
            c0: lstm.then_some("c"),
        },
    }
    .add(&mut g);
    squeeze(&mut g, &out.top, 0, "dec");
    attention(mt, &mut g);
    g.node(
        "Concat",
        &["context", "dec"],
        &["cat"],
        &[("axis", Attr::Int(1))],
    );
    let (w, b) = (
        tensor(layout, p, "combine.weight"),
        tensor(layout, p, "combine.bias"),
    );
    dense(&mut g, "combine", w, b, "cat", "combined");
    g.node("Tanh", &["combined"], &["hid"], &[]);
    let (w, b) = (
        tensor(layout, p, "output.weight"),
        tensor(layout, p, "output.bias"),
    );
    dense(&mut g, "output", w, b, "hid", "logits");
    g.output(
        "logits",
        FLOAT,
        &[Dim::Named("B"), Dim::Fixed(c.tgt_vocab)],
        "next-piece logits [B, Vt]",
    );
    let parts: Vec<&str> = out.h_n.iter().map(String::as_str).collect();
    g.node("Concat", &parts, &["hn"], &[("axis", Attr::Int(0))]);
    g.output("hn", FLOAT, &state_dims(mt), "hidden state after the step");
    if lstm {
        let parts: Vec<&str> = out.c_n.iter().map(String::as_str).collect();
        g.node("Concat", &parts, &["cn"], &[("axis", Attr::Int(0))]);
        g.output("cn", FLOAT, &state_dims(mt), "cell state after the step");
    }
    let weights = [Dim::Named("B"), Dim::Named("S")];
    g.output("attention", FLOAT, &weights, "attention weights [B, S]");
    g
}

/// Scores of `dec [B, Hd]` against `memory`, masked past each source's length, softmax:
/// `attention [B, S]` and `context [B, 2·He]`.
fn attention(mt: &Trained, g: &mut Graph) {
    let c = mt.model.config();
    let (layout, p) = (mt.model.param_layout(), &mt.params[..]);
    let (hd, k) = (c.dec_hidden, c.keys());
    let perm = ("perm", Attr::Ints(vec![1, 0, 2]));
    g.node("Transpose", &["memory"], &["keys"], &[perm]);
    match c.score {
        Score::Dot | Score::General => {
            let q = if c.score == Score::General {
                g.weight(
                    "attention.weight",
                    &[hd, k],
                    tensor(layout, p, "attention.weight"),
                );
                g.node("MatMul", &["dec", "attention.weight"], &["query"], &[]);
                "query"
            } else {
                "dec"
            };
            unsqueeze(g, q, 2, "query.col");
            g.node("MatMul", &["keys", "query.col"], &["scores.col"], &[]);
        }
        Score::Additive => {
            let w = tensor(layout, p, "attention.weight");
            let a = w.len() / (hd + k);
            let (wq, wk): (Vec<f32>, Vec<f32>) = (
                w.chunks_exact(hd + k)
                    .flat_map(|r| r[..hd].to_vec())
                    .collect(),
                w.chunks_exact(hd + k)
                    .flat_map(|r| r[hd..].to_vec())
                    .collect(),
            );
            dense(
                g,
                "attention.query",
                &wq,
                tensor(layout, p, "attention.bias"),
                "dec",
                "pq",
            );
            let t = crate::model::onnx::transposed(&wk, a, k);
            g.weight("attention.key_t", &[k, a], &t);
            g.node("MatMul", &["keys", "attention.key_t"], &["pk"], &[]);
            unsqueeze(g, "pq", 1, "pq.row");
            g.node("Add", &["pk", "pq.row"], &["pre"], &[]);
            g.node("Tanh", &["pre"], &["hidden"], &[]);
            let v = tensor(layout, p, "attention.v");
            g.weight("attention.v_t", &[a, 1], v);
            g.node("MatMul", &["hidden", "attention.v_t"], &["scores.col"], &[]);
        }
    }
    squeeze(g, "scores.col", 2, "scores");
    source_mask(g);
    g.weight("mask.floor", &[1], &[f32::MIN]);
    g.node(
        "Where",
        &["src.mask", "scores", "mask.floor"],
        &["masked"],
        &[],
    );
    g.node(
        "Softmax",
        &["masked"],
        &["attention"],
        &[("axis", Attr::Int(-1))],
    );
    unsqueeze(g, "attention", 1, "attention.row");
    g.node("MatMul", &["attention.row", "keys"], &["context.row"], &[]);
    squeeze(g, "context.row", 1, "context");
}

/// `src.mask [B, S]`: true at each source's real positions.
fn source_mask(g: &mut Graph) {
    g.node("Shape", &["memory"], &["memory.shape"], &[]);
    g.ints("first", &[0]);
    g.node("Gather", &["memory.shape", "first"], &["s.one"], &[]);
    squeeze(g, "s.one", 0, "s");
    g.ints("zero.one", &[0]);
    g.ints("one.one", &[1]);
    squeeze(g, "zero.one", 0, "zero");
    squeeze(g, "one.one", 0, "one");
    g.node("Range", &["zero", "s", "one"], &["positions"], &[]);
    unsqueeze(g, "positions", 0, "positions.row");
    unsqueeze(g, "src_lengths", 1, "lengths.col");
    g.node(
        "Less",
        &["positions.row", "lengths.col"],
        &["src.mask"],
        &[],
    );
}

/// `preprocess.json`: the vocabularies' files, the special pieces and the decoding settings.
fn preprocess(mt: &Trained) -> serde_json::Value {
    let c = mt.model.config();
    json!({
        "task": "translate",
        "source_tokenizer": "source.tokenizer.json",
        "target_tokenizer": "target.tokenizer.json",
        "text": "source: the source tokenizer's ids of the sentence (no special pieces added); target: pieces until </s>, decoded by the target tokenizer",
        "pad": PAD,
        "bos": BOS,
        "eos": EOS,
        "max_src_len": c.max_src_len,
        "decode": mt.config.train.decode,
        "score": c.score,
        "cell": c.cell,
        "decoder_layers": c.dec_layers,
        "decoder_hidden": c.dec_hidden,
        "encoder": {
            "inputs": {"src_ids": "int64 [S, B]", "src_lengths": "int64 [B]"},
            "outputs": {"memory": format!("float32 [S, B, {}]", c.keys()), "h0": "float32 [L_d, B, Hd]", "c0": "float32 [L_d, B, Hd] (LSTM)"},
        },
        "decoder": {
            "inputs": {"prev_ids": "int64 [B]", "h": "float32 [L_d, B, Hd]", "c": "(LSTM)", "memory": "float32 [S, B, 2·He]", "src_lengths": "int64 [B]"},
            "outputs": {"logits": format!("float32 [B, {}]", c.tgt_vocab), "hn": "float32 [L_d, B, Hd]", "cn": "(LSTM)", "attention": "float32 [B, S]"},
        },
    })
}

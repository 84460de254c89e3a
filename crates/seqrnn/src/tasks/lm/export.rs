//! ONNX export of an every-step language model (`seqrnn export --format onnx`): `model.onnx`
//! on ONNX's own `LSTM` / `GRU` operators, so that runtimes use their fused kernels, and
//! `preprocess.json` with what the graph expects (the vocabulary and how text becomes ids).
//!
//! The graph (`T` steps, `B` streams, `L` layers of `H` units, `V` words):
//! - inputs `input_ids` int64 `[T, B]`, `h0` float `[L, B, H]` (and `c0` for an LSTM);
//! - `Gather` of the embedding; per layer a `Slice` of the state, the recurrent operator and a
//!   `Squeeze` of its direction axis; `Concat` of the final states; `MatMul` + `Add` decoder;
//! - outputs `logits` `[T, B, V]`, `hn` (and `cn`) `[L, B, H]`, to carry into the next window
//!   as `seqrnn eval` does.
//!
//! Weight layouts: PyTorch's LSTM gate rows `i, f, g, o` become ONNX's `i, o, f, c`; the GRU's
//! `r, z, n` become `z, r, h`; `B = [W_b, R_b]`. PyTorch's GRU ("reset after") is
//! `linear_before_reset = 1`; the "reset before" variant is `linear_before_reset = 0`.

use std::path::Path;

use serde_json::json;

use crate::error::Result;
use crate::io::onnx::{self, Attr, Dim, Graph, FLOAT, INT64};
use crate::model::onnx::{dense, embedding, residual, squeeze, Initial, Stack};
use crate::tasks::lm::last_token::Trained as LastToken;
use crate::tasks::lm::Trained;

/// Writes `dir/model.onnx` and `dir/preprocess.json` for `lm` at operator set `opset`.
///
/// # Errors
/// [`crate::error::Error::Config`] for an operator set out of range; I/O errors.
pub fn export_onnx(lm: &Trained, dir: &Path, opset: i64) -> Result<()> {
    onnx::check_opset(opset)?;
    let mut g = Graph::new(
        "seqrnn_lm",
        "seqrnn language model: next-token logits per step",
    );
    inputs_and_embedding(lm, &mut g);
    let (hn, cn) = recurrent_layers(lm, &mut g);
    decoder_and_outputs(lm, &mut g, &hn, &cn);
    let model = g.model(opset, "seqrnn language model");
    onnx::save_export(dir, vec![("model.onnx", model)], &preprocess(lm))
}

/// A state input and its output.
struct StateValue {
    /// Input name (`h0`, `c0_1`, …).
    input: String,
    /// Output name (`hn`, `cn_1`, …).
    output: String,
    /// `[rows, B, width]`.
    rows: usize,
    width: usize,
    /// The layer of a per-layer state; `None` for all layers in one.
    layer: Option<usize>,
    /// A cell state (LSTM).
    cell: bool,
}

/// The state inputs and outputs: one `[L, B, H]` pair when every layer has the same width,
/// else one `[1, B, H_l]` pair per layer (`h0_0`, `c0_0`, …; `hn_0`, `cn_0`, …).
fn state_values(lm: &Trained) -> Vec<StateValue> {
    let c = lm.model.config();
    let kinds: &[bool] = if c.cell.has_cell_state() {
        &[false, true]
    } else {
        &[false]
    };
    let name = |cell: bool| if cell { "c" } else { "h" };
    let mut out = Vec::new();
    for l in 0..c.last_hidden.map_or(1, |_| c.layers) {
        for &cell in kinds {
            let k = name(cell);
            out.push(match c.last_hidden {
                None => StateValue {
                    input: format!("{k}0"),
                    output: format!("{k}n"),
                    rows: c.layers,
                    width: c.hidden,
                    layer: None,
                    cell,
                },
                Some(last) => StateValue {
                    input: format!("{k}0_{l}"),
                    output: format!("{k}n_{l}"),
                    rows: 1,
                    width: if l + 1 == c.layers { last } else { c.hidden },
                    layer: Some(l),
                    cell,
                },
            });
        }
    }
    out
}

/// The inputs (`input_ids` and the states) and the embedding lookup into `x0`.
fn inputs_and_embedding(lm: &Trained, g: &mut Graph) {
    let c = lm.model.config();
    let ids = [Dim::Named("T"), Dim::Named("B")];
    g.input("input_ids", INT64, &ids, "token ids [T, B]");
    for s in state_values(lm) {
        let dims = [Dim::Fixed(s.rows), Dim::Named("B"), Dim::Fixed(s.width)];
        g.input(
            &s.input,
            FLOAT,
            &dims,
            "state [layers, B, H] (zeros to start)",
        );
    }
    let emb = &lm.params[lm.model.layout().encoder.clone()];
    embedding(g, "encoder.weight", emb, c.embed, "input_ids", "x0");
}

/// The recurrent layers (the stack, then a last layer of its own width), from `x0` to the top
/// layer's output `top`; the final states' names, per layer.
fn recurrent_layers(lm: &Trained, g: &mut Graph) -> (Vec<String>, Vec<String>) {
    let c = lm.model.config();
    let lstm = c.cell.has_cell_state();
    let layout = lm.model.layout();
    if let Some(stack) = lm.model.residual() {
        let block = &lm.params[layout.rnn.clone()];
        let out = residual(g, stack, block, "x0", "h0", lstm.then_some("c0"));
        g.node("Identity", &[&out.top], &["top"], &[]);
        return (out.h_n, out.c_n);
    }
    let per_layer = c.last_hidden.is_some();
    let main = Stack {
        prefix: "rnn",
        config: lm.model.rnn().config(),
        block: &lm.params
            [layout.rnn.start..layout.last.as_ref().map_or(layout.rnn.end, |r| r.start)],
        x: "x0",
        lens: None,
        initial: Initial::Stacked {
            h0: if per_layer { "h0_all" } else { "h0" },
            c0: lstm.then_some(if per_layer { "c0_all" } else { "c0" }),
        },
    };
    if per_layer {
        // The stack's layers read rows of one [L − 1, B, H] state built from the inputs.
        concat_inputs(g, "h", c.layers - 1);
        if lstm {
            concat_inputs(g, "c", c.layers - 1);
        }
    }
    let mut out = main.add(g);
    if let (Some(last), Some(range)) = (lm.model.last_layer(), layout.last.clone()) {
        let l = c.layers - 1;
        let (h0, c0) = (format!("h0_{l}"), format!("c0_{l}"));
        let top = Stack {
            prefix: "last",
            config: last.config(),
            block: &lm.params[range],
            x: &out.top,
            lens: None,
            initial: Initial::Stacked {
                h0: &h0,
                c0: lstm.then_some(c0.as_str()),
            },
        }
        .add(g);
        out.top = top.top;
        out.h_n.extend(top.h_n);
        out.c_n.extend(top.c_n);
    }
    g.node("Identity", &[&out.top], &["top"], &[]);
    (out.h_n, out.c_n)
}

/// `{k}0_all [n, B, H]`: the first `n` per-layer inputs `{k}0_0 …` stacked.
fn concat_inputs(g: &mut Graph, k: &str, n: usize) {
    let names: Vec<String> = (0..n).map(|l| format!("{k}0_{l}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let all = format!("{k}0_all");
    if names.is_empty() {
        return;
    }
    g.node("Concat", &names, &[&all], &[("axis", Attr::Int(0))]);
}

/// The decoder `logits = top · Wᵀ + b` and the outputs: `logits`, then the final states (one
/// `Concat` of the layers' states, or each layer's own).
fn decoder_and_outputs(lm: &Trained, g: &mut Graph, hn: &[String], cn: &[String]) {
    let c = lm.model.config();
    let layout = lm.model.layout();
    let w = &lm.params[layout.decoder_weight.clone()];
    let b = &lm.params[layout.decoder_bias.clone()];
    dense(g, "decoder", w, b, "top", "logits");
    let logits = [Dim::Named("T"), Dim::Named("B"), Dim::Fixed(c.vocab)];
    g.output("logits", FLOAT, &logits, "next-token logits [T, B, V]");
    for s in state_values(lm) {
        let states = if s.cell { cn } else { hn };
        match s.layer {
            Some(l) => g.node("Identity", &[&states[l]], &[&s.output], &[]),
            None => {
                let parts: Vec<&str> = states.iter().map(String::as_str).collect();
                g.node("Concat", &parts, &[&s.output], &[("axis", Attr::Int(0))]);
            }
        }
        let dims = [Dim::Fixed(s.rows), Dim::Named("B"), Dim::Fixed(s.width)];
        g.output(&s.output, FLOAT, &dims, "state after the last step");
    }
}

/// `preprocess.json`: the vocabulary and how text becomes ids, the shapes.
fn preprocess(lm: &Trained) -> serde_json::Value {
    let c = lm.model.config();
    let (mut inputs, mut outputs) = (serde_json::Map::new(), serde_json::Map::new());
    inputs.insert("input_ids".into(), json!("int64 [T, B]"));
    outputs.insert(
        "logits".into(),
        json!(format!("float32 [T, B, {}]", c.vocab)),
    );
    for s in state_values(lm) {
        let shape = json!(format!("float32 [{}, B, {}]", s.rows, s.width));
        inputs.insert(s.input, shape.clone());
        outputs.insert(s.output, shape);
    }
    json!({
        "task": "lm",
        "tokens": lm.config.data.tokens,
        "vocab": lm.vocab.tokens(),
        "eos": crate::data::EOS,
        "unk": crate::data::UNK,
        "text": text_rule(lm.token_kind()),
        "inputs": inputs,
        "outputs": outputs,
        "layers": c.layers,
        "hidden": c.hidden,
        "cell": c.cell,
    })
}

/// How text becomes ids, for `preprocess.json`.
fn text_rule(kind: crate::data::TokenKind) -> &'static str {
    match kind {
        crate::data::TokenKind::Word => {
            "each line's whitespace-separated words, then <eos>; words not in the vocabulary as <unk>"
        }
        crate::data::TokenKind::Char => "every character, line breaks included",
    }
}

/// Writes `dir/model.onnx` and `dir/preprocess.json` for a last-token model: `input_ids`
/// int64 `[N, B]` (a window of `N` tokens per column, read from a zero state) → `logits`
/// `[B, V]` of the token after each window.
///
/// # Errors
/// [`crate::error::Error::Config`] for an operator set out of range; I/O errors.
pub fn export_last_token(lm: &LastToken, dir: &Path, opset: i64) -> Result<()> {
    onnx::check_opset(opset)?;
    let c = lm.model.config();
    let [emb, rnn, head_w, head_b] = lm.model.ranges();
    let mut g = Graph::new(
        "seqrnn_last_token",
        "seqrnn last-token language model: the next token's logits after each window",
    );
    let ids = [Dim::Named("N"), Dim::Named("B")];
    g.input(
        "input_ids",
        INT64,
        &ids,
        "windows of token ids [N, B], one per column",
    );
    embedding(
        &mut g,
        "embedding.weight",
        &lm.params[emb],
        c.embed,
        "input_ids",
        "x0",
    );
    let config = c.rnn_config();
    let out = Stack {
        prefix: "rnn",
        config: &config,
        block: &lm.params[rnn],
        x: "x0",
        lens: None,
        initial: Initial::Zeros,
    }
    .add(&mut g);
    let top = &out.h_n[c.layers - 1];
    squeeze(&mut g, top, 0, "final");
    dense(
        &mut g,
        "head",
        &lm.params[head_w],
        &lm.params[head_b],
        "final",
        "logits",
    );
    let logits = [Dim::Named("B"), Dim::Fixed(c.vocab)];
    g.output(
        "logits",
        FLOAT,
        &logits,
        "logits of the token after each window [B, V]",
    );
    let pre = json!({
        "task": "last-token",
        "tokens": lm.config.data.tokens,
        "vocab": lm.vocab.tokens(),
        "eos": crate::data::EOS,
        "unk": crate::data::UNK,
        "text": text_rule(lm.config.data.tokens.into()),
        "window": lm.config.train.window,
        "inputs": {"input_ids": "int64 [N, B]: N tokens per window (the model was trained with N = window), from a zero state"},
        "outputs": {"logits": format!("float32 [B, {}]", c.vocab)},
        "layers": c.layers,
        "hidden": c.hidden,
        "cell": c.cell,
    });
    let model = g.model(opset, "seqrnn last-token language model");
    onnx::save_export(dir, vec![("model.onnx", model)], &pre)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exported_model_reads_back_with_its_graph() {
        let dir = std::env::temp_dir().join(format!("seqrnn-onnx-{}", std::process::id()));
        let run = crate::tasks::tiny::lm(&dir).unwrap();
        let lm = Trained::load(&run).unwrap();
        let out = dir.join("onnx");
        export_onnx(&lm, &out, onnx::DEFAULT_OPSET).unwrap();
        let m = onnx::read(&out.join("model.onnx")).unwrap();
        assert_eq!(m.ir_version, onnx::IR_VERSION);
        assert_eq!(m.opset_import[0].version, onnx::DEFAULT_OPSET);
        let g = m.graph.unwrap();
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        let rec = if lm.model.config().cell.has_cell_state() {
            "LSTM"
        } else {
            "GRU"
        };
        assert_eq!(
            ops.iter().filter(|o| **o == rec).count(),
            lm.model.config().layers
        );
        assert!(ops.contains(&"MatMul") && ops.contains(&"Add"));
        let inputs: Vec<&str> = g.input.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(&inputs[..2], ["input_ids", "h0"]);
        // The embedding went in as it is, little-endian.
        let emb = g
            .initializer
            .iter()
            .find(|t| t.name == "encoder.weight")
            .unwrap();
        let first = f32::from_le_bytes(emb.raw_data[..4].try_into().unwrap());
        assert_eq!(first, lm.params[lm.model.layout().encoder.start]);
        let pre: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("preprocess.json")).unwrap())
                .unwrap();
        assert_eq!(pre["vocab"].as_array().unwrap().len(), lm.vocab.len());
        assert!(export_onnx(&lm, &out, 12).is_err(), "opset 12 is refused");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

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

use crate::error::{Error, Result};
use crate::io::onnx::{self, Attr, Dim, Graph, FLOAT, INT64};
use crate::rnn::{CellKind, CellParams, GruVariant};
use crate::tasks::lm::Trained;

/// Blocks of PyTorch's gate rows in ONNX's order: LSTM `i, f, g, o` → `i, o, f, c`; GRU
/// `r, z, n` → `z, r, h`.
fn onnx_gate_order(cell: CellKind) -> &'static [usize] {
    match cell {
        CellKind::Lstm => &[0, 3, 1, 2],
        CellKind::Gru(_) => &[1, 0, 2],
    }
}

/// `w`'s row blocks of `rows` rows each, in `order`.
fn reorder(w: &[f32], rows: usize, cols: usize, order: &[usize]) -> Vec<f32> {
    order
        .iter()
        .flat_map(|&g| w[g * rows * cols..(g + 1) * rows * cols].iter().copied())
        .collect()
}

/// Writes `dir/model.onnx` and `dir/preprocess.json` for `lm` at operator set `opset`.
///
/// # Errors
/// [`Error::Config`] for an operator set out of range or a model the export does not map yet
/// (a last layer of its own width); I/O errors.
pub fn export_onnx(lm: &Trained, dir: &Path, opset: i64) -> Result<()> {
    onnx::check_opset(opset)?;
    if lm.model.last_layer().is_some() {
        return Err(Error::Config(
            "ONNX export of a model whose last layer has its own width is not built yet".into(),
        ));
    }
    let mut g = Graph::new(
        "seqrnn_lm",
        "seqrnn language model: next-token logits per step",
    );
    inputs_and_embedding(lm, &mut g);
    recurrent_layers(lm, &mut g);
    decoder_and_outputs(lm, &mut g);
    std::fs::create_dir_all(dir).map_err(|cause| Error::Io {
        path: dir.to_path_buf(),
        cause,
    })?;
    onnx::write(
        &g.model(opset, "seqrnn language model"),
        &dir.join("model.onnx"),
    )?;
    let text =
        serde_json::to_string_pretty(&preprocess(lm)).map_err(|e| Error::Config(e.to_string()))?;
    crate::io::write_atomic(&dir.join("preprocess.json"), text.as_bytes())
}

/// `[L, B, H]`, the shape of a state input or output.
fn state_dims(lm: &Trained) -> [Dim; 3] {
    let c = lm.model.config();
    [Dim::Fixed(c.layers), Dim::Named("B"), Dim::Fixed(c.hidden)]
}

/// The inputs (`input_ids`, `h0`, `c0` for an LSTM), the embedding lookup into `x0` and the
/// constant axes the layers use.
fn inputs_and_embedding(lm: &Trained, g: &mut Graph) {
    let c = lm.model.config();
    let state = state_dims(lm);
    let ids = [Dim::Named("T"), Dim::Named("B")];
    g.input("input_ids", INT64, &ids, "token ids [T, B]");
    g.input(
        "h0",
        FLOAT,
        &state,
        "hidden state [L, B, H] (zeros to start)",
    );
    if c.cell.has_cell_state() {
        g.input("c0", FLOAT, &state, "cell state [L, B, H] (zeros to start)");
    }
    let emb = &lm.params[lm.model.layout().encoder.clone()];
    g.weight("encoder.weight", &[c.vocab, c.embed], emb);
    g.node(
        "Gather",
        &["encoder.weight", "input_ids"],
        &["x0"],
        &[("axis", Attr::Int(0))],
    );
    g.ints("axes0", &[0]);
    g.ints("axes1", &[1]);
}

/// Per layer `l`: its weights in ONNX's layout, a `Slice` of the state, the recurrent operator
/// (`x{l}` to `x{l+1}`, final states `hn_{l}`, `cn_{l}`), a `Squeeze`; then the final states'
/// `Concat` into `hn` (and `cn`).
fn recurrent_layers(lm: &Trained, g: &mut Graph) {
    let c = lm.model.config();
    let (h, cell) = (c.hidden, c.cell);
    let lstm = cell.has_cell_state();
    let block = &lm.params[lm.model.layout().rnn.clone()];
    let (gates, order) = (cell.gates(), onnx_gate_order(cell));
    let (mut hn, mut cn) = (Vec::new(), Vec::new());
    for l in 0..c.layers {
        let off = lm.model.rnn().layout().cell(l, 0);
        let cp = CellParams::new(block, off);
        let i_l = off.input_size;
        let (w, r, bb) = (format!("W{l}"), format!("R{l}"), format!("B{l}"));
        g.weight(&w, &[1, gates * h, i_l], &reorder(cp.w_ih, h, i_l, order));
        g.weight(&r, &[1, gates * h, h], &reorder(cp.w_hh, h, h, order));
        let mut bias = reorder(cp.b_ih, h, 1, order);
        bias.extend(reorder(cp.b_hh, h, 1, order));
        g.weight(&bb, &[1, 2 * gates * h], &bias);
        let (from, to) = (format!("from{l}"), format!("to{l}"));
        g.ints(&from, &[l as i64]);
        g.ints(&to, &[l as i64 + 1]);
        let (h0, c0) = (format!("h0_{l}"), format!("c0_{l}"));
        g.node("Slice", &["h0", &from, &to, "axes0"], &[&h0], &[]);
        let (x, y) = (format!("x{l}"), format!("y{l}"));
        let (yh, yc) = (format!("hn_{l}"), format!("cn_{l}"));
        let size = ("hidden_size", Attr::Int(h as i64));
        if lstm {
            g.node("Slice", &["c0", &from, &to, "axes0"], &[&c0], &[]);
            let inputs = [x.as_str(), &w, &r, &bb, "", &h0, &c0];
            g.node("LSTM", &inputs, &[&y, &yh, &yc], &[size]);
            cn.push(yc);
        } else {
            let reset_after = i64::from(cell == CellKind::Gru(GruVariant::ResetAfter));
            let attrs = [size, ("linear_before_reset", Attr::Int(reset_after))];
            g.node(
                "GRU",
                &[x.as_str(), &w, &r, &bb, "", &h0],
                &[&y, &yh],
                &attrs,
            );
        }
        hn.push(yh);
        g.node("Squeeze", &[&y, "axes1"], &[&format!("x{}", l + 1)], &[]);
    }
    let hn: Vec<&str> = hn.iter().map(String::as_str).collect();
    g.node("Concat", &hn, &["hn"], &[("axis", Attr::Int(0))]);
    if lstm {
        let cn: Vec<&str> = cn.iter().map(String::as_str).collect();
        g.node("Concat", &cn, &["cn"], &[("axis", Attr::Int(0))]);
    }
}

/// `logits = x_L · Wᵀ + b` (`Wᵀ [H, V]` stored transposed) and the graph's outputs.
fn decoder_and_outputs(lm: &Trained, g: &mut Graph) {
    let c = lm.model.config();
    let (v, h) = (c.vocab, c.hidden);
    let layout = lm.model.layout();
    let w = &lm.params[layout.decoder_weight.clone()];
    let mut wt = vec![0.0; h * v];
    for (j, row) in w.chunks_exact(h).enumerate() {
        for (k, &x) in row.iter().enumerate() {
            wt[k * v + j] = x;
        }
    }
    g.weight("decoder.weight_t", &[h, v], &wt);
    g.weight(
        "decoder.bias",
        &[v],
        &lm.params[layout.decoder_bias.clone()],
    );
    let top = format!("x{}", c.layers);
    g.node("MatMul", &[&top, "decoder.weight_t"], &["decoded"], &[]);
    g.node("Add", &["decoded", "decoder.bias"], &["logits"], &[]);
    let logits = [Dim::Named("T"), Dim::Named("B"), Dim::Fixed(v)];
    let state = state_dims(lm);
    g.output("logits", FLOAT, &logits, "next-token logits [T, B, V]");
    g.output(
        "hn",
        FLOAT,
        &state,
        "hidden state after the last step [L, B, H]",
    );
    if c.cell.has_cell_state() {
        g.output(
            "cn",
            FLOAT,
            &state,
            "cell state after the last step [L, B, H]",
        );
    }
}

/// `preprocess.json`: the vocabulary and how text becomes ids, the shapes.
fn preprocess(lm: &Trained) -> serde_json::Value {
    let c = lm.model.config();
    let lstm = c.cell.has_cell_state();
    let text = match lm.token_kind() {
        crate::data::TokenKind::Word => {
            "each line's whitespace-separated words, then <eos>; words not in the vocabulary as <unk>"
        }
        crate::data::TokenKind::Char => "every character, line breaks included",
    };
    let cell_state = if lstm {
        "float32 [L, B, H]"
    } else {
        "absent (GRU)"
    };
    json!({
        "task": "lm",
        "tokens": lm.config.data.tokens,
        "vocab": lm.vocab.tokens(),
        "eos": crate::data::EOS,
        "unk": crate::data::UNK,
        "text": text,
        "inputs": {"input_ids": "int64 [T, B]", "h0": "float32 [L, B, H]", "c0": cell_state},
        "outputs": {"logits": "float32 [T, B, V]", "hn": "float32 [L, B, H]", "cn": cell_state},
        "layers": c.layers,
        "hidden": c.hidden,
        "cell": c.cell,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_blocks_take_onnx_order() {
        // Four blocks of one row each: i f g o → i o f g.
        let w = [0.0, 1.0, 2.0, 3.0];
        assert_eq!(
            reorder(&w, 1, 1, onnx_gate_order(CellKind::Lstm)),
            [0.0, 3.0, 1.0, 2.0]
        );
        let gru = CellKind::Gru(GruVariant::ResetAfter);
        assert_eq!(
            reorder(&w[..3], 1, 1, onnx_gate_order(gru)),
            [1.0, 0.0, 2.0]
        );
    }

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
        assert_eq!(ops.last(), Some(&"Add"));
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

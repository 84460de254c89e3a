//! ONNX export of a forecaster (`seqrnn export --format onnx`): `model.onnx`, which reads a
//! window in the data's own units and gives the forecast in them, and `preprocess.json` (the
//! columns, in order, and the scaling the graph applies).
//!
//! The graph (`L` lookback steps, `B` windows, `I` input columns, `K` steps, `C` columns):
//! - input `window` float32 `[L, B, I]`: each window's last `L` rows, the run's input columns
//!   in order;
//! - standardisation `(x − mean) / std` per column; with the `last` anchor, each window minus
//!   its last row; the recurrent encoder; the dense head (reshaped to `[B, K, C]`) or the
//!   recurrent decoder unrolled over `K` steps on the repeated final output; the anchor added
//!   back; `· std + mean` of the forecast columns;
//! - output `forecast` float32 `[B, K, C]`, in the data's units.

use std::path::Path;

use serde_json::json;

use crate::error::{Error, Result};
use crate::io::onnx::{self, Attr, Dim, Graph, FLOAT};
use crate::model::onnx::{dense, rnn_block, squeeze, tensor, unsqueeze, Initial, Stack};
use crate::tasks::forecast::model::{Arch, ForecastHead};
use crate::tasks::forecast::prepare::Anchor;
use crate::tasks::forecast::Trained;

/// Writes `dir/model.onnx` and `dir/preprocess.json` for `fc` at operator set `opset`.
///
/// # Errors
/// [`Error::Config`] for an operator set out of range or a SegRNN forecaster (not exported
/// yet); I/O errors.
pub fn export_onnx(fc: &Trained, dir: &Path, opset: i64) -> Result<()> {
    onnx::check_opset(opset)?;
    if fc.model.config().arch != Arch::Rnn {
        return Err(Error::Config(
            "ONNX export of a SegRNN forecaster (--arch segrnn) is not supported yet".into(),
        ));
    }
    let spec = &fc.config.data.columns;
    let targets: Vec<i64> = spec
        .targets
        .iter()
        .map(|t| spec.inputs.iter().position(|i| i == t).map(|k| k as i64))
        .collect::<Option<_>>()
        .ok_or_else(|| Error::Config("a forecast column is not an input column".into()))?;
    let mut g = Graph::new(
        "seqrnn_forecast",
        "seqrnn forecaster: the next steps after each window",
    );
    let c = fc.model.config();
    let window = [
        Dim::Fixed(c.lookback),
        Dim::Named("B"),
        Dim::Fixed(c.inputs),
    ];
    g.input(
        "window",
        FLOAT,
        &window,
        "the last L rows of each window [L, B, I], data units",
    );
    scale_in(fc, &mut g);
    let last = encode(fc, &mut g);
    head(fc, &mut g, &last);
    scale_out(fc, &mut g, &targets);
    let out = [
        Dim::Named("B"),
        Dim::Fixed(c.horizon),
        Dim::Fixed(c.outputs),
    ];
    g.output(
        "forecast",
        FLOAT,
        &out,
        "the forecast [B, K, C], data units",
    );
    let model = g.model(opset, "seqrnn forecaster");
    onnx::save_export(dir, vec![("model.onnx", model)], &preprocess(fc))
}

/// `window` standardised, minus its anchor: `x [L, B, I]`; the anchor `anchor [1, B, I]`.
fn scale_in(fc: &Trained, g: &mut Graph) {
    let s = &fc.config.data.columns.scaler;
    let i = s.mean.len();
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
    g.weight("scale.mean", &[i], &f32s(&s.mean));
    g.weight("scale.std", &[i], &f32s(&s.std));
    g.node("Sub", &["window", "scale.mean"], &["centred"], &[]);
    g.node("Div", &["centred", "scale.std"], &["z"], &[]);
    match fc.config.data.columns.anchor {
        Anchor::None => {
            g.weight("anchor", &[1, 1, i], &vec![0.0; i]);
            g.node("Identity", &["z"], &["x"], &[]);
        }
        Anchor::Last => {
            g.ints("anchor.from", &[-1]);
            g.ints("anchor.to", &[i64::MAX]);
            g.ints("anchor.axis", &[0]);
            let inputs = ["z", "anchor.from", "anchor.to", "anchor.axis"];
            g.node("Slice", &inputs, &["anchor"], &[]);
            g.node("Sub", &["z", "anchor"], &["x"], &[]);
        }
    }
}

/// The encoder over `x`; the name of its top layer's final output `[B, H]`.
fn encode(fc: &Trained, g: &mut Graph) -> String {
    let c = fc.model.config();
    let config = c.encoder();
    let (layout, p) = (fc.model.param_layout(), &fc.params[..]);
    let out = Stack {
        prefix: "rnn",
        config: &config,
        block: rnn_block(layout, p, "rnn"),
        x: "x",
        lens: None,
        initial: Initial::Zeros,
    }
    .add(g);
    squeeze(g, &out.h_n[c.layers - 1], 0, "final");
    "final".into()
}

/// The head, from the final output `last [B, H]` to `out [B, K, C]` (standardised, relative
/// to the anchor).
fn head(fc: &Trained, g: &mut Graph, last: &str) {
    let c = fc.model.config();
    let (layout, p) = (fc.model.param_layout(), &fc.params[..]);
    let (w, b) = (
        tensor(layout, p, "head.weight"),
        tensor(layout, p, "head.bias"),
    );
    g.ints("out.shape", &[0, c.horizon as i64, c.outputs as i64]);
    match c.head {
        ForecastHead::Dense => {
            dense(g, "head", w, b, last, "flat");
            g.node("Reshape", &["flat", "out.shape"], &["out"], &[]);
        }
        ForecastHead::Decoder => {
            unsqueeze(g, last, 0, "context");
            g.ints("repeat", &[c.horizon as i64, 1, 1]);
            g.node("Expand", &["context", "repeat"], &["xd"], &[]);
            let config = c.decoder();
            let dec = Stack {
                prefix: "decoder",
                config: &config,
                block: rnn_block(layout, p, "decoder"),
                x: "xd",
                lens: None,
                initial: Initial::Zeros,
            }
            .add(g);
            dense(g, "head", w, b, &dec.top, "steps");
            let perm = ("perm", Attr::Ints(vec![1, 0, 2]));
            g.node("Transpose", &["steps"], &["out"], &[perm]);
        }
    }
}

/// `out [B, K, C]` plus the forecast columns' anchors, in the data's units: `forecast`.
fn scale_out(fc: &Trained, g: &mut Graph, targets: &[i64]) {
    let s = &fc.config.data.columns.scaler;
    let pick = |v: &[f64]| -> Vec<f32> { targets.iter().map(|&k| v[k as usize] as f32).collect() };
    let n = targets.len();
    g.ints("targets", targets);
    g.node(
        "Gather",
        &["anchor", "targets"],
        &["anchor.t"],
        &[("axis", Attr::Int(2))],
    );
    let perm = ("perm", Attr::Ints(vec![1, 0, 2]));
    g.node("Transpose", &["anchor.t"], &["anchor.b"], &[perm]);
    g.node("Add", &["out", "anchor.b"], &["anchored"], &[]);
    g.weight("unscale.std", &[n], &pick(&s.std));
    g.weight("unscale.mean", &[n], &pick(&s.mean));
    g.node("Mul", &["anchored", "unscale.std"], &["spread"], &[]);
    g.node("Add", &["spread", "unscale.mean"], &["forecast"], &[]);
}

/// `preprocess.json`: the columns in order and the scaling inside the graph.
fn preprocess(fc: &Trained) -> serde_json::Value {
    let c = fc.model.config();
    let spec = &fc.config.data.columns;
    json!({
        "task": "forecast",
        "input_columns": spec.inputs,
        "forecast_columns": spec.targets,
        "date_column": spec.date_column,
        "lookback": c.lookback,
        "horizon": c.horizon,
        "scaler": {"mean": spec.scaler.mean, "std": spec.scaler.std},
        "anchor": spec.anchor,
        "text": "window: each window's last `lookback` rows of the input columns, in data units; the graph standardises, anchors and scales back",
        "inputs": {"window": format!("float32 [{}, B, {}]", c.lookback, c.inputs)},
        "outputs": {"forecast": format!("float32 [B, {}, {}]", c.horizon, c.outputs)},
        "cell": c.cell,
        "head": c.head,
    })
}

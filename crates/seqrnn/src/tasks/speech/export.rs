//! ONNX export of an acoustic model (`seqrnn export --format onnx`): `model.onnx` and
//! `preprocess.json` (the feature settings, the alphabet and the decoding).
//!
//! The graph (`T` frames, `B` utterances, `F` mel bands, `S` stacked frames, `C` labels):
//! - inputs `features` float32 `[T, B, F]` (each utterance's normalised log-mel frames down
//!   the first axis, 0 past its end), `lengths` int64 `[B]` (frames);
//! - frame stacking (`T` padded to a multiple of `S`, `S` frames per step), the bidirectional
//!   encoder with `sequence_lens = ⌈lengths / S⌉`, the output layer, `LogSoftmax`;
//! - outputs `log_probs` float32 `[T', B, C]` (label 0 the CTC blank, then the alphabet) and
//!   `steps` int64 `[B]`, each utterance's real steps.

use std::path::Path;

use serde_json::json;

use crate::error::Result;
use crate::io::onnx::{self, Attr, Dim, Graph, FLOAT, INT64};
use crate::model::onnx::{dense, padded_encoder, rnn_block, tensor};
use crate::tasks::speech::Trained;

/// Writes `dir/model.onnx` and `dir/preprocess.json` for `am` at operator set `opset`.
///
/// # Errors
/// [`crate::error::Error::Config`] for an operator set out of range; I/O errors.
pub fn export_onnx(am: &Trained, dir: &Path, opset: i64) -> Result<()> {
    onnx::check_opset(opset)?;
    let c = am.model.config();
    if c.word_head.is_some() {
        return Err(crate::error::Error::Config(
            "ONNX export of an acoustic model with a word head is not supported yet".into(),
        ));
    }
    if am.config.data.features.deltas > 0 {
        return Err(crate::error::Error::Config(
            "ONNX export of an acoustic model with delta features is not supported yet".into(),
        ));
    }
    let (layout, p) = (am.model.param_layout(), &am.params[..]);
    let mut g = Graph::new(
        "seqrnn_speech",
        "seqrnn acoustic model: per-step label log-probabilities",
    );
    let feats = [Dim::Named("T"), Dim::Named("B"), Dim::Fixed(c.features)];
    g.input(
        "features",
        FLOAT,
        &feats,
        "normalised log-mel frames [T, B, F]",
    );
    g.input(
        "lengths",
        INT64,
        &[Dim::Named("B")],
        "each utterance's frames [B]",
    );
    stack_frames(am, &mut g);
    let config = c.rnn_config();
    let block = rnn_block(layout, p, "rnn");
    let out = padded_encoder(&mut g, "rnn", &config, block, "x", "steps32");
    let (w, b) = (
        tensor(layout, p, "output.weight"),
        tensor(layout, p, "output.bias"),
    );
    dense(&mut g, "output", w, b, &out.top, "logits");
    g.node(
        "LogSoftmax",
        &["logits"],
        &["log_probs"],
        &[("axis", Attr::Int(-1))],
    );
    let lp = [Dim::Named("T'"), Dim::Named("B"), Dim::Fixed(c.labels)];
    g.output(
        "log_probs",
        FLOAT,
        &lp,
        "per-step label log-probabilities [T', B, C]",
    );
    g.output(
        "steps",
        INT64,
        &[Dim::Named("B")],
        "each utterance's steps [B]",
    );
    let model = g.model(opset, "seqrnn acoustic model");
    onnx::save_export(dir, vec![("model.onnx", model)], &preprocess(am))
}

/// `features [T, B, F]` → `x [T', B, S·F]` (frames `S·t' .. S·t' + S − 1` in step `t'`), and
/// the steps `steps` (int64) and `steps32` (int32) of each utterance.
fn stack_frames(am: &Trained, g: &mut Graph) {
    let s = am.model.config().stack as i64;
    g.ints("stack", &[s]);
    g.ints("stack.less1", &[s - 1]);
    // Pad T up to a multiple of S: pads = [0, 0, 0, (S − T mod S) mod S, 0, 0].
    g.node("Shape", &["features"], &["feat.shape"], &[]);
    g.ints("first", &[0]);
    g.node(
        "Gather",
        &["feat.shape", "first"],
        &["t"],
        &[("axis", Attr::Int(0))],
    );
    g.node("Mod", &["t", "stack"], &["t.rem"], &[]);
    g.node("Sub", &["stack", "t.rem"], &["t.short"], &[]);
    g.node("Mod", &["t.short", "stack"], &["t.pad"], &[]);
    g.ints("pads.before", &[0, 0, 0]);
    g.ints("pads.rest", &[0, 0]);
    let parts = ["pads.before", "t.pad", "pads.rest"];
    g.node("Concat", &parts, &["pads"], &[("axis", Attr::Int(0))]);
    g.node("Pad", &["features", "pads"], &["padded"], &[]);
    // [T', S, B, F] → [T', B, S, F] → [T', B, S·F].
    g.ints("split.lead", &[-1, s]);
    g.ints("bf.from", &[1]);
    g.ints("bf.to", &[3]);
    g.node("Slice", &["feat.shape", "bf.from", "bf.to"], &["bf"], &[]);
    let parts = ["split.lead", "bf"];
    g.node("Concat", &parts, &["split.dims"], &[("axis", Attr::Int(0))]);
    g.node("Reshape", &["padded", "split.dims"], &["split"], &[]);
    let perm = ("perm", Attr::Ints(vec![0, 2, 1, 3]));
    g.node("Transpose", &["split"], &["steps.major"], &[perm]);
    g.ints("merge.dims", &[0, 0, -1]);
    g.node("Reshape", &["steps.major", "merge.dims"], &["x"], &[]);
    // ⌈len / S⌉ = (len + S − 1) div S.
    g.node("Add", &["lengths", "stack.less1"], &["len.up"], &[]);
    g.node("Div", &["len.up", "stack"], &["steps"], &[]);
    g.node("Cast", &["steps"], &["steps32"], &[("to", Attr::Int(6))]);
}

/// `preprocess.json`: how a recording becomes `features`, and how `log_probs` become text.
fn preprocess(am: &Trained) -> serde_json::Value {
    let c = am.model.config();
    json!({
        "task": "speech",
        "features": am.config.data.features,
        "features_rule": "torchaudio.transforms.MelSpectrogram(sample_rate, n_fft, win_length = win, hop_length = hop, f_min, f_max, n_mels, center = False, power = 2, mel_scale = 'htk', norm = None) with a periodic Hann window, then ln(mel + 1e-6); frames [T, n_mels]",
        "normalisation": "per utterance: each mel band minus its mean over the frames, divided by its population standard deviation (at least 1e-5)",
        "stack": c.stack,
        "alphabet": am.alphabet.chars(),
        "blank": 0,
        "labels": "0 the CTC blank, then label k + 1 the alphabet's k-th character",
        "decoding": am.config.train.decoding,
        "inputs": {"features": format!("float32 [T, B, {}]", c.features), "lengths": "int64 [B], frames"},
        "outputs": {"log_probs": format!("float32 [T', B, {}]", c.labels), "steps": "int64 [B]"},
        "cell": c.cell,
    })
}

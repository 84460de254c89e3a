//! A Keras model of the recurrent family that seqrnn imports, in PyTorch's layout:
//!
//! ```text
//! Embedding → LSTM/GRU (stacked) → Dropout → … → Dense(softmax)
//! ```
//!
//! [`KerasStack::of`] takes the layers read by [`crate::io::keras::read_keras`], refuses any
//! layer in a place the family has none (naming it), and converts the weights:
//! `weight_ih = kernelᵀ`, `weight_hh = recurrent_kernelᵀ`; LSTM gates i, f, c, o are PyTorch's
//! i, f, g, o and the one bias is `bias_ih` (`bias_hh = 0`); GRU gates z, r, h become r, z, n
//! (the first two blocks swapped); `reset_after=True` keeps `bias[0]` as `bias_ih` and
//! `bias[1]` as `bias_hh` ([`GruVariant::ResetAfter`]); `reset_after=False` is
//! [`GruVariant::ResetBefore`] (`n = tanh(W_in x + b_in + W_hn (r ⊙ h))`, Keras' formula) with its
//! bias as `bias_ih` and `bias_hh = 0`; the Dense `kernel [H, K]` becomes the output weight
//! `[K, H]`. The tasks build their models from it (`from_keras` in each task's `keras` module).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::keras::{KerasLayer, KerasModel};
use crate::io::tensors::{Tensor, TensorFile};
use crate::model::layout::ParamLayout;
use crate::rnn::{CellKind, GruVariant};

/// One recurrent layer in PyTorch's layout.
#[derive(Clone, Debug)]
pub struct KerasRecurrent {
    /// The layer's Keras name.
    pub name: String,
    /// Its cell.
    pub cell: CellKind,
    /// Its units `H`.
    pub units: usize,
    /// Whether it returns every step's output (`return_sequences=True`).
    pub return_sequences: bool,
    /// `weight_ih [G·H, I]`, `weight_hh [G·H, H]`, `bias_ih [G·H]`, `bias_hh [G·H]`.
    pub weights: [Tensor; 4],
}

/// A Keras model of the family: embedding, recurrent stack, output layer.
#[derive(Clone, Debug)]
pub struct KerasStack {
    /// The archive it was read from (named in errors).
    pub path: PathBuf,
    /// The Keras input length, when the model's `Input` gave one.
    pub input_length: Option<usize>,
    /// Embedding weight `[V, E]`.
    pub embedding: Tensor,
    /// Whether the Embedding masks id 0 (`mask_zero=True`).
    pub mask_zero: bool,
    /// The recurrent layers, input first (at least one).
    pub rnns: Vec<KerasRecurrent>,
    /// The largest Dropout rate of the model (0 without Dropout layers).
    pub dropout: f32,
    /// Output weight `[K, H]` and bias `[K]`.
    pub head: (Tensor, Tensor),
}

impl KerasStack {
    /// The family's parts of `model`, read from `path`.
    ///
    /// # Errors
    /// [`Error::Format`] naming a layer in a place the family has none, a setting not mapped
    /// (activations other than Keras' defaults, `go_backwards`, `return_state`, a Dense layer
    /// without softmax) or weights of unexpected shapes.
    pub fn of(model: &KerasModel, path: &Path) -> Result<KerasStack> {
        Self::parts(model)
            .map_err(|message| Error::Format {
                path: path.to_path_buf(),
                message,
            })
            .map(|mut s| {
                s.path = path.to_path_buf();
                s.input_length = model.input_length;
                s
            })
    }

    fn parts(model: &KerasModel) -> std::result::Result<KerasStack, String> {
        let mut layers = model.layers.iter();
        let first = layers.next().ok_or("the model has no layers")?;
        if first.class_name != "Embedding" {
            return Err(misplaced(first, "the first layer must be an Embedding"));
        }
        let (embedding, mask_zero) = embedding(first)?;
        let (mut rnns, mut dropout, mut head) = (Vec::new(), 0.0f32, None);
        let mut width = embedding.shape[1];
        for layer in layers {
            if head.is_some() {
                return Err(misplaced(layer, "the Dense layer must be the last"));
            }
            match layer.class_name.as_str() {
                "LSTM" | "GRU" => {
                    let r = recurrent(layer, width)?;
                    width = r.units;
                    rnns.push(r);
                }
                "Dropout" => {
                    let rate = layer
                        .setting("rate")
                        .and_then(|v| v.as_f64())
                        .unwrap_or(0.0);
                    dropout = dropout.max(rate as f32);
                }
                "Dense" if !rnns.is_empty() => head = Some(dense(layer, width)?),
                _ => {
                    return Err(misplaced(
                        layer,
                        "expected LSTM or GRU layers after the Embedding",
                    ))
                }
            }
        }
        let head = head.ok_or("the model does not end in a Dense softmax layer")?;
        let below = &rnns[..rnns.len() - 1];
        if let Some(r) = below.iter().find(|r| !r.return_sequences) {
            return Err(format!(
                "layer `{}` returns only its final state, yet a recurrent layer reads it",
                r.name
            ));
        }
        Ok(KerasStack {
            path: PathBuf::new(),
            input_length: None,
            embedding,
            mask_zero,
            rnns,
            dropout,
            head,
        })
    }

    /// An error about this model: [`Error::Format`] naming its archive.
    pub fn refuse(&self, message: impl Into<String>) -> Error {
        Error::Format {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    /// Whether the last recurrent layer returns its sequences.
    pub fn returns_sequences(&self) -> bool {
        self.rnns.last().is_some_and(|r| r.return_sequences)
    }

    /// Vocabulary size `V` (the Embedding's rows).
    pub fn vocab(&self) -> usize {
        self.embedding.shape[0]
    }

    /// Embedding width `E`.
    pub fn embed(&self) -> usize {
        self.embedding.shape[1]
    }

    /// Output width `K` (the Dense layer's units).
    pub fn classes(&self) -> usize {
        self.head.0.shape[0]
    }

    /// The stack's one cell kind, its width and the last layer's width when it differs.
    ///
    /// # Errors
    /// [`Error::Format`] when the layers mix cells, or a layer below the last differs in width.
    pub fn stack(&self) -> Result<(CellKind, usize, Option<usize>)> {
        let Some(first) = self.rnns.first() else {
            return Err(self.refuse("the model has no recurrent layer"));
        };
        if let Some(other) = self.rnns.iter().find(|r| r.cell != first.cell) {
            return Err(self.refuse(format!(
                "layers `{}` ({}) and `{}` ({}) differ in cell: a seqrnn stack has one cell kind",
                first.name,
                first.cell.name(),
                other.name,
                other.cell.name()
            )));
        }
        let below = &self.rnns[..self.rnns.len() - 1];
        if let Some(other) = below.iter().find(|r| r.units != first.units) {
            return Err(self.refuse(format!(
                "layers `{}` and `{}` differ in width ({} and {}): only the last layer may have a width of its own",
                first.name, other.name, first.units, other.units
            )));
        }
        let top = self.rnns[self.rnns.len() - 1].units;
        let last = (self.rnns.len() > 1 && top != first.units).then_some(top);
        Ok((first.cell, first.units, last))
    }

    /// The stack's cell and its one width (what a `what` without a last layer of its own
    /// width needs).
    ///
    /// # Errors
    /// Those of [`KerasStack::stack`]; [`Error::Format`] when the last layer's width differs.
    pub fn uniform(&self, what: &str) -> Result<(CellKind, usize)> {
        match self.stack()? {
            (cell, hidden, None) => Ok((cell, hidden)),
            (_, hidden, Some(last)) => Err(self.refuse(format!(
                "the last recurrent layer has {last} units, the others {hidden}: a {what} has one width"
            ))),
        }
    }

    /// The tensors under PyTorch names: `emb`, `rnn.weight_ih_l0 …`, `HEAD.weight`,
    /// `HEAD.bias`.
    pub fn tensors(&self, emb: &str, head: &str) -> TensorFile {
        let mut file = TensorFile::default();
        file.tensors.insert(emb.into(), self.embedding.clone());
        for (l, r) in self.rnns.iter().enumerate() {
            for (kind, t) in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
                .iter()
                .zip(&r.weights)
            {
                file.tensors.insert(format!("rnn.{kind}_l{l}"), t.clone());
            }
        }
        file.tensors
            .insert(format!("{head}.weight"), self.head.0.clone());
        file.tensors
            .insert(format!("{head}.bias"), self.head.1.clone());
        file
    }

    /// Checks what a language model needs: no masking, a Dense layer over the vocabulary.
    ///
    /// # Errors
    /// [`Error::Format`] saying which.
    pub fn check_language_model(&self) -> Result<()> {
        if self.mask_zero {
            return Err(self.refuse("the Embedding masks id 0 (mask_zero=True): a language model reads every id; import it with --labels as a classifier, or save it without mask_zero"));
        }
        if self.classes() != self.vocab() {
            return Err(self.refuse(format!(
                "the Dense layer has {} units but the Embedding {} rows: a language model predicts its own vocabulary (a classifier needs --labels)",
                self.classes(),
                self.vocab()
            )));
        }
        Ok(())
    }

    /// The parameter block of `layout` from [`KerasStack::tensors`]`(emb, head)`.
    ///
    /// # Errors
    /// [`Error::Format`] when a tensor is missing or misshapen for the layout.
    pub fn params(&self, layout: &ParamLayout, emb: &str, head: &str) -> Result<Vec<f32>> {
        layout.from_file(
            &self.tensors(emb, head),
            &self.path,
            "a model of this shape",
        )
    }
}

fn misplaced(layer: &KerasLayer, why: &str) -> String {
    format!(
        "layer `{}` ({}) cannot be mapped here: {why}",
        layer.name, layer.class_name
    )
}

/// The weights `[V, E]` of an Embedding and its `mask_zero`.
fn embedding(layer: &KerasLayer) -> std::result::Result<(Tensor, bool), String> {
    match layer.weights.as_slice() {
        [w] if w.shape.len() == 2 => Ok((w.clone(), layer.flag("mask_zero", false))),
        _ => Err(format!("Embedding `{}` has no [V, E] weight", layer.name)),
    }
}

/// The Dense layer's `[K, H]` weight and `[K]` bias (zeros without `use_bias`).
fn dense(layer: &KerasLayer, input: usize) -> std::result::Result<(Tensor, Tensor), String> {
    let activation = layer.text("activation").unwrap_or("linear");
    if activation != "softmax" {
        return Err(misplaced(
            layer,
            &format!("its activation is `{activation}`, not softmax"),
        ));
    }
    let (kernel, bias) = match layer.weights.as_slice() {
        [k, b] => (k, Some(b)),
        [k] => (k, None),
        _ => return Err(format!("Dense `{}` has no kernel", layer.name)),
    };
    if kernel.shape.len() != 2 || kernel.shape[0] != input {
        return Err(format!(
            "Dense `{}` has a kernel of shape {:?}, the layer below gives {input}",
            layer.name, kernel.shape
        ));
    }
    let k = kernel.shape[1];
    let bias = bias.cloned().unwrap_or(Tensor {
        shape: vec![k],
        data: vec![0.0; k],
    });
    if bias.shape != [k] {
        return Err(format!(
            "Dense `{}` has a bias of shape {:?}",
            layer.name, bias.shape
        ));
    }
    Ok((transpose(kernel), bias))
}

/// An LSTM or GRU layer reading `input` features, its weights in PyTorch's layout.
fn recurrent(layer: &KerasLayer, input: usize) -> std::result::Result<KerasRecurrent, String> {
    for (key, want) in [("activation", "tanh"), ("recurrent_activation", "sigmoid")] {
        let got = layer.text(key).unwrap_or(want);
        if got != want {
            return Err(misplaced(
                layer,
                &format!("its {key} is `{got}`, seqrnn's is `{want}`"),
            ));
        }
    }
    for key in ["go_backwards", "return_state"] {
        if layer.flag(key, false) {
            return Err(misplaced(layer, &format!("{key}=True is not mapped")));
        }
    }
    let lstm = layer.class_name == "LSTM";
    let reset_after = !lstm && layer.flag("reset_after", true);
    let cell = match (lstm, reset_after) {
        (true, _) => CellKind::Lstm,
        (false, true) => CellKind::Gru(GruVariant::ResetAfter),
        (false, false) => CellKind::Gru(GruVariant::ResetBefore),
    };
    let g = if lstm { 4 } else { 3 };
    let [kernel, rec, bias @ ..] = layer.weights.as_slice() else {
        return Err(format!(
            "{} `{}` lacks its kernels",
            layer.class_name, layer.name
        ));
    };
    let h = rec.shape.first().copied().unwrap_or(0);
    if h == 0 || kernel.shape != [input, g * h] || rec.shape != [h, g * h] {
        return Err(format!(
            "{} `{}` has kernels {:?} and {:?}; reading {input} features it needs [{input}, {g}·H] and [H, {g}·H]",
            layer.class_name, layer.name, kernel.shape, rec.shape
        ));
    }
    let zeros = || Tensor {
        shape: vec![g * h],
        data: vec![0.0; g * h],
    };
    let (b_ih, b_hh) = match bias {
        [] => (zeros(), zeros()),
        [b] if b.shape == [g * h] => (b.clone(), zeros()),
        [b] if reset_after && b.shape == [2, g * h] => {
            let (x, r) = b.data.split_at(g * h);
            (vector(x), vector(r))
        }
        _ => {
            return Err(format!(
                "{} `{}` has an unexpected bias",
                layer.class_name, layer.name
            ))
        }
    };
    let mut weights = [transpose(kernel), transpose(rec), b_ih, b_hh];
    if !lstm {
        // Keras' z, r, h → PyTorch's r, z, n.
        for t in &mut weights {
            swap_first_blocks(t, h);
        }
    }
    Ok(KerasRecurrent {
        name: layer.name.clone(),
        cell,
        units: h,
        return_sequences: layer.flag("return_sequences", false),
        weights,
    })
}

fn vector(data: &[f32]) -> Tensor {
    Tensor {
        shape: vec![data.len()],
        data: data.to_vec(),
    }
}

/// The transpose of a matrix `[R, C]`.
fn transpose(t: &Tensor) -> Tensor {
    let (r, c) = (t.shape[0], t.shape[1]);
    let mut data = vec![0.0; r * c];
    for i in 0..r {
        for j in 0..c {
            data[j * r + i] = t.data[i * c + j];
        }
    }
    Tensor {
        shape: vec![c, r],
        data,
    }
}

/// Swaps the first two blocks of `h` rows (of a matrix `[3H, C]` or vector `[3H]`).
fn swap_first_blocks(t: &mut Tensor, h: usize) {
    let row = t.data.len() / t.shape[0];
    let (first, rest) = t.data.split_at_mut(h * row);
    first.swap_with_slice(&mut rest[..h * row]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor {
            shape: shape.to_vec(),
            data: (0..n).map(|i| i as f32 / 10.0).collect(),
        }
    }

    fn layer(class: &str, config: serde_json::Value, weights: Vec<Tensor>) -> KerasLayer {
        KerasLayer {
            class_name: class.into(),
            name: format!("my_{}", class.to_lowercase()),
            config,
            weights,
        }
    }

    /// Embedding(3, 2) → LSTM(1, `rnn` settings) → Dense(3, `dense` settings), no biases.
    fn model(rnn: serde_json::Value, dense: serde_json::Value) -> KerasModel {
        KerasModel {
            input_length: Some(4),
            layers: vec![
                layer("Embedding", serde_json::json!({}), vec![t(&[3, 2])]),
                layer("LSTM", rnn, vec![t(&[2, 4]), t(&[1, 4])]),
                layer("Dense", dense, vec![t(&[1, 3])]),
            ],
        }
    }

    #[test]
    fn layers_without_bias_get_zero_biases() {
        let softmax = serde_json::json!({"activation": "softmax", "use_bias": false});
        let m = model(serde_json::json!({"use_bias": false}), softmax);
        let s = KerasStack::of(&m, Path::new("m.keras")).unwrap();
        let [w_ih, w_hh, b_ih, b_hh] = &s.rnns[0].weights;
        assert_eq!(
            (w_ih.shape.as_slice(), w_hh.shape.as_slice()),
            (&[4, 2][..], &[4, 1][..])
        );
        assert!(b_ih.data.iter().chain(&b_hh.data).all(|&b| b == 0.0));
        assert_eq!(s.head.0.shape, [3, 1]);
        assert_eq!(s.head.1.data, [0.0; 3]);
        assert_eq!((s.vocab(), s.embed(), s.classes()), (3, 2, 3));
        assert_eq!(s.input_length, Some(4));
    }

    #[test]
    fn settings_outside_the_family_are_refused_by_name() {
        let softmax = serde_json::json!({"activation": "softmax"});
        for (rnn, dense, needle) in [
            (
                serde_json::json!({"activation": "relu"}),
                softmax.clone(),
                "activation is `relu`",
            ),
            (
                serde_json::json!({"go_backwards": true}),
                softmax.clone(),
                "go_backwards",
            ),
            (
                serde_json::json!({"return_state": true}),
                softmax.clone(),
                "return_state",
            ),
            (
                serde_json::json!({}),
                serde_json::json!({"activation": "linear"}),
                "not softmax",
            ),
        ] {
            let e = KerasStack::of(&model(rnn, dense), Path::new("m.keras")).unwrap_err();
            assert!(e.to_string().contains(needle), "{e}");
            assert!(e.to_string().contains("`my_"), "{e}");
        }
    }

    #[test]
    fn gru_blocks_are_reordered_and_kernels_transposed() {
        let k = Tensor {
            shape: vec![2, 3],
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        let mut t = transpose(&k);
        assert_eq!(t.shape, [3, 2]);
        assert_eq!(t.data, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        swap_first_blocks(&mut t, 1);
        assert_eq!(t.data, [2.0, 5.0, 1.0, 4.0, 3.0, 6.0]);
        let mut b = vector(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        swap_first_blocks(&mut b, 2);
        assert_eq!(b.data, [3.0, 4.0, 1.0, 2.0, 5.0, 6.0]);
    }
}

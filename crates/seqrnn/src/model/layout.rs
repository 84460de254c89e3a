//! The parameter layout of a model: every tensor of its flat parameter block listed once, with
//! its PyTorch name, shape and range in the block, and the one reader and writer of model files.
//!
//! A model builds its layout by appending tensors in `state_dict` order
//! ([`ParamLayout::push`], [`ParamLayout::push_rnn`]); each append returns the tensor's range, so
//! the model's forward and backward passes slice the block with the same numbers that name the
//! tensors in its files. A tensor that shares another's storage (a language model's tied output
//! weight) is an alias ([`ParamLayout::alias`]): listed with the other's range, written out as a
//! copy, and never read back.

use std::ops::Range;
use std::path::Path;

use crate::error::{Error, Result};
use crate::io::tensors::{Tensor, TensorFile};
use crate::linalg::int8::Int8Weights;
use crate::rnn::RnnLayout;

/// A named tensor of a model: PyTorch name, shape, range in the parameter block.
pub type NamedTensor = (String, Vec<usize>, Range<usize>);

/// One tensor of a [`ParamLayout`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamEntry {
    /// PyTorch `state_dict` name, e.g. `rnn.weight_hh_l0`.
    pub name: String,
    /// Shape, row-major.
    pub shape: Vec<usize>,
    /// Position in the parameter block.
    pub range: Range<usize>,
    /// For an alias, the index (in [`ParamLayout::entries`]) of the tensor whose storage it
    /// shares; `None` for a tensor with its own range.
    pub alias_of: Option<usize>,
}

/// The tensors of a flat parameter block, in `state_dict` order, and the block's length.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParamLayout {
    entries: Vec<ParamEntry>,
    len: usize,
}

impl ParamLayout {
    /// An empty layout (a block of length 0) to append tensors to.
    pub fn new() -> Self {
        ParamLayout::default()
    }

    /// Appends a tensor `name` of `shape` after everything so far; returns its range.
    pub fn push(&mut self, name: impl Into<String>, shape: Vec<usize>) -> Range<usize> {
        let range = self.len..self.len + shape.iter().product::<usize>();
        self.len = range.end;
        self.entries.push(ParamEntry {
            name: name.into(),
            shape,
            range: range.clone(),
            alias_of: None,
        });
        range
    }

    /// Appends a recurrent stack's whole block ([`RnnLayout`] order), each tensor named
    /// `{prefix}.{name}` (e.g. `rnn.weight_ih_l0`); returns the range of the whole block.
    pub fn push_rnn(&mut self, prefix: &str, layout: &RnnLayout) -> Range<usize> {
        let base = self.len;
        for t in layout.tensors() {
            self.entries.push(ParamEntry {
                name: format!("{prefix}.{}", t.name),
                shape: t.shape,
                range: base + t.range.start..base + t.range.end,
                alias_of: None,
            });
        }
        self.len = base + layout.len();
        base..self.len
    }

    /// Appends every tensor of `other` (a part's own layout, e.g. a
    /// [`crate::model::residual::ResidualStack`]'s) after everything so far, names unchanged;
    /// returns the range of the whole part. `other` must hold no aliases.
    pub fn append(&mut self, other: &ParamLayout) -> Range<usize> {
        let base = self.len;
        for e in &other.entries {
            debug_assert!(e.alias_of.is_none());
            self.entries.push(ParamEntry {
                range: base + e.range.start..base + e.range.end,
                ..e.clone()
            });
        }
        self.len = base + other.len;
        base..self.len
    }

    /// Lists `name` as another name of the tensor `of` (already in the layout, same number of
    /// values): it takes no room in the block, is written out as a copy of `of` and is skipped
    /// when reading. Returns the shared range.
    ///
    /// # Panics
    /// If `of` is not in the layout (a bug in the model that builds it).
    pub fn alias(&mut self, name: impl Into<String>, shape: Vec<usize>, of: &str) -> Range<usize> {
        let target = self
            .entries
            .iter()
            .position(|e| e.name == of)
            .unwrap_or_else(|| panic!("alias of `{of}`, which is not in the layout"));
        let range = self.entries[target].range.clone();
        debug_assert_eq!(shape.iter().product::<usize>(), range.len());
        self.entries.push(ParamEntry {
            name: name.into(),
            shape,
            range: range.clone(),
            alias_of: Some(target),
        });
        range
    }

    /// Length of the parameter block (aliases counted once).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the block is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every tensor, aliases included, in `state_dict` order.
    pub fn entries(&self) -> &[ParamEntry] {
        &self.entries
    }

    /// The tensor named `name`.
    pub fn get(&self, name: &str) -> Option<&ParamEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Every tensor as `(name, shape, range)`, aliases included (with the shared range).
    pub fn named(&self) -> Vec<NamedTensor> {
        self.entries
            .iter()
            .map(|e| (e.name.clone(), e.shape.clone(), e.range.clone()))
            .collect()
    }

    /// [`Error::Shape`] unless a block of `n` values fits this layout; `what` names the block in
    /// the message ("parameter block", "gradient block").
    pub fn check_block(&self, what: &str, n: usize) -> Result<()> {
        if n != self.len {
            return Err(Error::Shape(format!(
                "{what} has {n} values, expected {}",
                self.len
            )));
        }
        Ok(())
    }

    /// The block `params` as named tensors (aliases as copies), with `format` under the
    /// metadata key `format`.
    pub fn to_file(&self, params: &[f32], format: &str) -> TensorFile {
        let mut f = TensorFile::default();
        for e in &self.entries {
            f.tensors.insert(
                e.name.clone(),
                Tensor {
                    shape: e.shape.clone(),
                    data: params[e.range.clone()].to_vec(),
                },
            );
        }
        f.metadata.insert("format".into(), format.into());
        f
    }

    /// Reads a parameter block back from `file` (as written by [`ParamLayout::to_file`]). Every
    /// tensor but the aliases must be there with its shape and finite values; all are checked
    /// before the block is allocated. Aliases may be absent or present (their values are not
    /// read). Errors are [`Error::Format`] on `path`; `what` names the model in them
    /// ("a model", "a classifier").
    pub fn from_file(&self, file: &TensorFile, path: &Path, what: &str) -> Result<Vec<f32>> {
        let bad = |message: String| Error::Format {
            path: path.to_path_buf(),
            message,
        };
        let own = || self.entries.iter().filter(|e| e.alias_of.is_none());
        for e in own() {
            let t = file
                .get(&e.name)
                .map_err(|m| bad(format!("{m} (not {what} of this shape)")))?;
            if t.shape != e.shape {
                return Err(bad(format!(
                    "tensor `{}` has shape {:?}, the model needs {:?}",
                    e.name, t.shape, e.shape
                )));
            }
            if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
                return Err(bad(format!(
                    "tensor `{}` holds a non-finite value at index {i}",
                    e.name
                )));
            }
        }
        let mut params = vec![0.0; self.len];
        for e in own() {
            if let Ok(t) = file.get(&e.name) {
                params[e.range.clone()].copy_from_slice(&t.data);
            }
        }
        Ok(params)
    }

    /// The int8 form of `params` that `seqrnn quantize` writes, in memory: every weight matrix
    /// ([`is_quantized_weight`]) quantized in place and marked, as a quantized run loads.
    pub fn quantize(&self, mut params: Vec<f32>) -> Weights {
        let int8: Vec<_> = (self.entries.iter())
            .filter(|e| e.alias_of.is_none() && is_quantized_weight(&e.name, &e.shape))
            .map(|e| (e.range.clone(), e.shape[1]))
            .collect();
        for (range, k) in &int8 {
            crate::linalg::int8::quantize_in_place(&mut params[range.clone()], *k);
        }
        Weights::int8(params, int8)
    }

    /// [`ParamLayout::from_file`] for inference: the tensors the file stores in 8 bits
    /// ([`TensorFile::int8`], written by `seqrnn quantize`) run their products in int8.
    pub fn weights_from_file(&self, file: &TensorFile, path: &Path, what: &str) -> Result<Weights> {
        let params = self.from_file(file, path, what)?;
        let int8 = self
            .entries
            .iter()
            .filter(|e| e.alias_of.is_none() && e.shape.len() == 2 && file.int8.contains(&e.name))
            .map(|e| (e.range.clone(), e.shape[1]))
            .filter(|(_, k)| *k > 0)
            .collect();
        Ok(Weights::int8(params, int8))
    }
}

/// Whether a tensor of a model is a weight matrix that quantization (`seqrnn quantize`,
/// [`ParamLayout::quantize`]) stores in 8 bits: every 2-D tensor named `….weight` or
/// `….weight_*` (PyTorch's names of the input, recurrent, output and embedding matrices);
/// transition scores, attention vectors and biases stay f32.
pub fn is_quantized_weight(name: &str, shape: &[usize]) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    shape.len() == 2 && shape[1] > 0 && (last == "weight" || last.starts_with("weight_"))
}

/// A trained model's parameter block as read from its file: the f32 values every pass reads,
/// and for a quantized model ([`ParamLayout::weights_from_file`] of a file with 8-bit tensors)
/// the mark that runs the products with those tensors on the integer kernels
/// ([`crate::linalg::int8::Int8Weights`]). It derefs to the values and cannot change them, so
/// the marked tensors stay where and what they were when marked.
pub struct Weights {
    values: Vec<f32>,
    /// The 8-bit tensors: their ranges in `values` and row lengths.
    tensors: Vec<(Range<usize>, usize)>,
    /// Their mark, dropped with the values.
    mark: Option<Int8Weights>,
}

impl Weights {
    /// f32 weights: every product in f32.
    pub fn new(values: Vec<f32>) -> Self {
        Weights {
            values,
            tensors: Vec::new(),
            mark: None,
        }
    }

    /// Weights whose tensors `(range, row length)` hold 8-bit values (quantized by
    /// `linalg::int8::quantize_in_place`) and run their products in int8.
    ///
    /// # Panics
    /// If a range lies outside `values` or a row length does not divide it.
    pub fn int8(values: Vec<f32>, tensors: Vec<(Range<usize>, usize)>) -> Self {
        let mark = (!tensors.is_empty())
            .then(|| Int8Weights::mark(tensors.iter().map(|(r, k)| (&values[r.clone()], *k))));
        Weights {
            values,
            tensors,
            mark,
        }
    }

    /// Whether some tensors are 8-bit.
    pub fn is_int8(&self) -> bool {
        self.mark.is_some()
    }
}

impl std::ops::Deref for Weights {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        &self.values
    }
}

impl Clone for Weights {
    fn clone(&self) -> Self {
        Weights::int8(self.values.clone(), self.tensors.clone())
    }
}

impl std::fmt::Debug for Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Weights")
            .field("values", &self.values.len())
            .field("int8_tensors", &self.tensors.len())
            .finish()
    }
}

impl From<Vec<f32>> for Weights {
    fn from(values: Vec<f32>) -> Self {
        Weights::new(values)
    }
}

/// Refuses a backward pass without a gradient block of `params` values or without a training
/// forward pass before it (`batch` examples cached, 0 before the first).
pub(crate) fn check_backward(grads: usize, params: usize, batch: usize) -> Result<()> {
    if grads != params || batch == 0 {
        return Err(Error::Shape(
            "backward needs the gradient block and a training forward pass".into(),
        ));
    }
    Ok(())
}

/// A task model's three accessors, the same in every model that holds its configuration in
/// `config` and its [`ParamLayout`] in `params`: `config()`, `param_layout()` (documented by
/// the given text) and `num_params()`. Used inside the model's `impl` block:
/// `model_accessors!(ClassifierConfig, "Every tensor of the parameter block.");`.
macro_rules! model_accessors {
    ($config:ty, $layout_doc:literal) => {
        /// The configuration.
        pub fn config(&self) -> &$config {
            &self.config
        }

        #[doc = $layout_doc]
        pub fn param_layout(&self) -> &crate::model::layout::ParamLayout {
            &self.params
        }

        /// Length of the parameter block.
        pub fn num_params(&self) -> usize {
            self.params.len()
        }
    };
}
pub(crate) use model_accessors;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rnn::{CellKind, Direction, RnnConfig};

    fn sample() -> ParamLayout {
        let mut l = ParamLayout::new();
        assert_eq!(l.push("embedding.weight", vec![3, 2]), 0..6);
        let rnn = RnnLayout::new(&RnnConfig {
            cell: CellKind::Lstm,
            input_size: 2,
            hidden_size: 2,
            num_layers: 1,
            direction: Direction::Forward,
        });
        assert_eq!(l.push_rnn("rnn", &rnn), 6..6 + rnn.len());
        assert_eq!(
            l.alias("decoder.weight", vec![3, 2], "embedding.weight"),
            0..6
        );
        l.push("decoder.bias", vec![3]);
        l
    }

    #[test]
    fn ranges_are_contiguous_and_aliases_take_no_room() {
        let l = sample();
        let names: Vec<&str> = l.entries().iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "embedding.weight",
                "rnn.weight_ih_l0",
                "rnn.weight_hh_l0",
                "rnn.bias_ih_l0",
                "rnn.bias_hh_l0",
                "decoder.weight",
                "decoder.bias"
            ]
        );
        assert_eq!(l.len(), 6 + 16 + 16 + 8 + 8 + 3);
        assert_eq!(l.get("decoder.bias").unwrap().range, 54..57);
        assert!(l.check_block("parameter block", 57).is_ok());
        let e = l.check_block("gradient block", 5).unwrap_err().to_string();
        assert!(
            e.contains("gradient block has 5 values, expected 57"),
            "{e}"
        );
    }

    #[test]
    fn file_round_trip_and_every_check() {
        let l = sample();
        let p: Vec<f32> = (0..l.len()).map(|i| i as f32 * 0.5).collect();
        let f = l.to_file(&p, "test");
        assert_eq!(f.metadata["format"], "test");
        assert_eq!(f.tensors["decoder.weight"].data, p[0..6]);
        let path = Path::new("x.safetensors");
        assert_eq!(l.from_file(&f, path, "a model").unwrap(), p);
        // The alias may be absent, or hold anything.
        let mut g = f.clone();
        g.tensors.remove("decoder.weight");
        assert_eq!(l.from_file(&g, path, "a model").unwrap(), p);
        let msg = |g: &TensorFile| l.from_file(g, path, "a model").unwrap_err().to_string();
        let mut g = f.clone();
        g.tensors.remove("decoder.bias");
        assert!(msg(&g).contains("missing tensor `decoder.bias` (not a model of this shape)"));
        let mut g = f.clone();
        g.tensors.get_mut("decoder.bias").unwrap().shape = vec![1, 3];
        assert!(msg(&g).contains("tensor `decoder.bias` has shape [1, 3], the model needs [3]"));
        let mut g = f;
        g.tensors.get_mut("rnn.bias_hh_l0").unwrap().data[2] = f32::INFINITY;
        assert!(msg(&g).contains("tensor `rnn.bias_hh_l0` holds a non-finite value at index 2"));
    }
}

//! Keras 3 `.keras` archives: a zip holding `config.json` (the model's layers and their
//! settings) and `model.weights.h5` (their weights, written by h5py). [`read_keras`] reads one
//! into a [`KerasModel`], a plain description of its layers in order with their configuration and
//! weights, knowing nothing of what they will become.
//!
//! Only `Sequential` models of the layer classes in [`LAYER_CLASSES`] are read; any other layer
//! is refused with its name and class. The weights of the `n`-th layer are found where Keras'
//! `saving_lib` puts them: under `layers/<snake_case(class)>[_<k>]/vars/<i>` (recurrent layers:
//! `…/cell/vars/<i>`), `k` counting earlier layers of the same class, `i` in the order of the
//! layer's variables (`kernel`, `recurrent_kernel`, `bias`; `embeddings`; `kernel`, `bias`).
//! The HDF5 file is decoded by `hdf5-pure`, a pure-Rust reader (no libhdf5).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::io::tensors::Tensor;

/// The layer classes [`read_keras`] reads; any other is refused by name.
pub const LAYER_CLASSES: [&str; 5] = ["Embedding", "LSTM", "GRU", "Dropout", "Dense"];

/// Largest archive member read (1 GiB): a larger one is refused before it is inflated.
const MAX_MEMBER: u64 = 1 << 30;

/// Most values of one weight (2²⁸, 1 GiB of f32): a larger declared shape is refused before
/// anything is read.
const MAX_VALUES: usize = 1 << 28;

/// A Keras `Sequential` model: its layers in order (the `InputLayer` left out).
#[derive(Clone, Debug, PartialEq)]
pub struct KerasModel {
    /// The sequence length of the model's `Input`, when it was given one.
    pub input_length: Option<usize>,
    /// The layers, input first.
    pub layers: Vec<KerasLayer>,
}

/// One layer of a [`KerasModel`].
#[derive(Clone, Debug, PartialEq)]
pub struct KerasLayer {
    /// Its Keras class (one of [`LAYER_CLASSES`]).
    pub class_name: String,
    /// Its name in the model (`config.name`).
    pub name: String,
    /// Its `config` object from `config.json`.
    pub config: Value,
    /// Its weights in the order Keras keeps them, as stored (`kernel [I, G·H]`, …).
    pub weights: Vec<Tensor>,
}

impl KerasLayer {
    /// The setting `key` of the layer's configuration, if present.
    pub fn setting(&self, key: &str) -> Option<&Value> {
        self.config.get(key)
    }

    /// The boolean setting `key` (`default` when absent or not a boolean).
    pub fn flag(&self, key: &str, default: bool) -> bool {
        self.setting(key)
            .and_then(Value::as_bool)
            .unwrap_or(default)
    }

    /// The string setting `key`, if present.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.setting(key).and_then(Value::as_str)
    }
}

/// Reads the Keras 3 archive at `path`: the layers of its `config.json` and their weights from
/// its `model.weights.h5`.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Format`] when it is not a zip archive,
/// lacks `config.json` or `model.weights.h5`, describes a model that is not `Sequential`, holds a
/// layer outside [`LAYER_CLASSES`] (naming it and its class), or its weights file is not HDF5 or
/// lacks a layer's weights.
pub fn read_keras(path: &Path) -> Result<KerasModel> {
    let bad = |message: String| Error::Format {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| bad(format!("not a .keras archive (a zip file): {e}")))?;
    let config = member(&mut zip, "config.json", path)?;
    let config: Value = serde_json::from_slice(&config)
        .map_err(|e| bad(format!("config.json is not JSON: {e}")))?;
    let (input_length, layers) = sequential_layers(&config).map_err(bad)?;
    let weights = member(&mut zip, "model.weights.h5", path)?;
    let h5 = Weights::open(weights, path)?;
    let mut seen = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(layers.len());
    for (class_name, name, config) in layers {
        let base = snake_case(&class_name);
        let count: &mut usize = seen.entry(base.clone()).or_default();
        let group = match *count {
            0 => format!("layers/{base}"),
            k => format!("layers/{base}_{k}"),
        };
        *count += 1;
        let vars = match class_name.as_str() {
            "LSTM" | "GRU" => format!("{group}/cell/vars"),
            _ => format!("{group}/vars"),
        };
        let weights = h5.tensors(&vars)?;
        out.push(KerasLayer {
            class_name,
            name,
            config,
            weights,
        });
    }
    Ok(KerasModel {
        input_length,
        layers: out,
    })
}

/// The archive member `name`, whole (at most [`MAX_MEMBER`] bytes).
fn member<R: std::io::Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    path: &Path,
) -> Result<Vec<u8>> {
    let bad = |message: String| Error::Format {
        path: path.to_path_buf(),
        message,
    };
    let entry = zip.by_name(name).map_err(|e| {
        bad(format!(
            "no {name} in the archive ({e}): not a Keras 3 .keras file"
        ))
    })?;
    if entry.size() > MAX_MEMBER {
        return Err(bad(format!("{name} is larger than 1 GiB")));
    }
    // The declared size reserves at most 64 MiB up front; the rest grows as it is read.
    let mut bytes = Vec::with_capacity(entry.size().min(1 << 26) as usize);
    entry
        .take(MAX_MEMBER)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(format!("{name} cannot be read from the archive: {e}")))?;
    Ok(bytes)
}

/// One layer of `config.json`: class, name, configuration.
type LayerEntry = (String, String, Value);

/// The input length and the layers (but the `InputLayer`) of a `Sequential` model's
/// configuration; refuses any other model and any layer outside [`LAYER_CLASSES`].
fn sequential_layers(
    config: &Value,
) -> std::result::Result<(Option<usize>, Vec<LayerEntry>), String> {
    let class = config
        .get("class_name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    if class != "Sequential" {
        return Err(format!(
            "the model is a `{class}`: only `Sequential` models can be imported"
        ));
    }
    let layers = config
        .pointer("/config/layers")
        .and_then(Value::as_array)
        .ok_or("config.json lists no layers")?;
    let mut input_length = None;
    let mut out = Vec::new();
    for layer in layers {
        let class = layer
            .get("class_name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let inner = layer.get("config").cloned().unwrap_or(Value::Null);
        let name = inner
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        if class == "InputLayer" {
            input_length = (inner.pointer("/batch_shape/1").and_then(Value::as_u64))
                .and_then(|n| usize::try_from(n).ok());
            continue;
        }
        if !LAYER_CLASSES.contains(&class) {
            return Err(format!(
                "layer `{name}` ({class}) has no seqrnn counterpart: the layers mapped are {}",
                LAYER_CLASSES.join(", ")
            ));
        }
        out.push((class.to_string(), name, inner));
    }
    Ok((input_length, out))
}

/// Keras' `naming.to_snake_case` of a class name (`LSTM` → `lstm`, `InputLayer` →
/// `input_layer`, `Conv1D` → `conv1d`).
fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    // `(.)([A-Z][a-z]+)` → `\1_\2`, then `([a-z])([A-Z])` → `\1_\2`.
    let mut first = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let starts_word = i > 0
            && c.is_ascii_uppercase()
            && chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
        if starts_word {
            first.push('_');
        }
        first.push(c);
    }
    let chars: Vec<char> = first.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if i > 0 && c.is_ascii_uppercase() && chars[i - 1].is_ascii_lowercase() {
            out.push('_');
        }
        out.push(c);
    }
    out.to_lowercase()
}

/// `model.weights.h5`, opened.
struct Weights {
    file: hdf5_pure::File,
    path: PathBuf,
}

impl Weights {
    fn open(bytes: Vec<u8>, path: &Path) -> Result<Self> {
        let file = guarded(|| hdf5_pure::File::from_bytes(bytes)).map_err(|e| Error::Format {
            path: path.to_path_buf(),
            message: format!("model.weights.h5 is not an HDF5 file: {e}"),
        })?;
        Ok(Weights {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The datasets `0, 1, …` of the group `vars`, in numeric order.
    fn tensors(&self, vars: &str) -> Result<Vec<Tensor>> {
        let bad = |message: String| Error::Format {
            path: self.path.clone(),
            message: format!("model.weights.h5: {message}"),
        };
        let names = guarded(|| self.file.group(vars).and_then(|g| g.datasets()))
            .map_err(|e| bad(format!("no group `{vars}` ({e})")))?;
        let mut numbered: Vec<(usize, String)> = names
            .into_iter()
            .filter_map(|n| n.parse().ok().map(|i| (i, n)))
            .collect();
        numbered.sort();
        (numbered.iter())
            .map(|(_, name)| self.tensor(&format!("{vars}/{name}")))
            .collect()
    }

    /// The dataset `at` as f32 values, its size checked before it is read.
    fn tensor(&self, at: &str) -> Result<Tensor> {
        let bad = |message: String| Error::Format {
            path: self.path.clone(),
            message: format!("model.weights.h5: `{at}` {message}"),
        };
        let ds =
            guarded(|| self.file.dataset(at)).map_err(|e| bad(format!("cannot be read ({e})")))?;
        let dims = guarded(|| ds.shape()).map_err(|e| bad(format!("has no shape ({e})")))?;
        let shape: Vec<usize> = (dims.iter())
            .map(|&d| usize::try_from(d).unwrap_or(usize::MAX))
            .collect();
        let size = (shape.iter())
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .filter(|&n| n <= MAX_VALUES)
            .ok_or_else(|| bad(format!("has shape {shape:?}, larger than a weight can be")))?;
        let data = guarded(|| ds.read_f32()).map_err(|e| bad(format!("cannot be read ({e})")))?;
        if data.len() != size {
            return Err(bad(format!(
                "holds {} values for shape {shape:?}",
                data.len()
            )));
        }
        Ok(Tensor { shape, data })
    }
}

/// Runs an HDF5 read, turning a panic of the decoder on a malformed file into an error.
fn guarded<T>(
    read: impl FnOnce() -> std::result::Result<T, hdf5_pure::Error>,
) -> std::result::Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)) {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("the HDF5 decoder failed on malformed data".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_become_keras_group_names() {
        for (class, snake) in [
            ("LSTM", "lstm"),
            ("GRU", "gru"),
            ("Dense", "dense"),
            ("InputLayer", "input_layer"),
            ("Conv1D", "conv1d"),
            ("Bidirectional", "bidirectional"),
            ("SimpleRNN", "simple_rnn"),
        ] {
            assert_eq!(snake_case(class), snake, "{class}");
        }
    }

    #[test]
    fn other_models_and_layers_are_refused_by_name() {
        let functional = serde_json::json!({"class_name": "Functional", "config": {}});
        let e = sequential_layers(&functional).unwrap_err();
        assert!(e.contains("`Functional`"), "{e}");
        let conv = serde_json::json!({"class_name": "Sequential", "config": {"layers": [
            {"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [null, 7]}},
            {"class_name": "Embedding", "config": {"name": "emb"}},
            {"class_name": "Conv1D", "config": {"name": "conv"}},
        ]}});
        let e = sequential_layers(&conv).unwrap_err();
        assert!(e.contains("layer `conv` (Conv1D)"), "{e}");
    }
}

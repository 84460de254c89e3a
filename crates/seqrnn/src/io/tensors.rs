//! Named f32 tensors in the safetensors format (PyTorch's `state_dict` names).
//!
//! A quantized model's weight matrices are stored in 8 bits: the tensor `NAME` as `I8` levels
//! `q[n, k]` and beside it `NAME.scale`, `F32` `[n]`, one scale per row (output channel), so
//! that row `j` is `scale[j] · q[j, :]` (the layout of `linalg::int8`). Read back, such a
//! tensor holds those products as f32 and is listed in [`TensorFile::int8`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{Error, Result};

/// One tensor: shape and row-major values.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values, row-major.
    pub data: Vec<f32>,
}

/// Metadata key of the checksum that [`TensorFile::seal`] stores and [`TensorFile::from_bytes`]
/// verifies: `crc32:` and eight hex digits.
pub const CHECKSUM_KEY: &str = "checksum";

/// The largest header safetensors readers accept (the `safetensors` crate's limit).
const MAX_HEADER: usize = 100_000_000;

/// The contents of a safetensors file: tensors by name and the free-form metadata.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TensorFile {
    /// Tensors by name, converted to f32.
    pub tensors: BTreeMap<String, Tensor>,
    /// The header's `__metadata__` entries.
    pub metadata: BTreeMap<String, String>,
    /// The tensors stored in 8 bits, each with its row scales in the tensor `NAME.scale`
    /// ([`SCALE_SUFFIX`]); in [`TensorFile::tensors`] they hold the dequantized values.
    pub int8: BTreeSet<String>,
}

/// The suffix of the tensor that holds the row scales of an 8-bit tensor.
pub const SCALE_SUFFIX: &str = ".scale";

impl TensorFile {
    /// Reads a safetensors file; `F32`, `F64`, `F16`, `BF16`, `I64` and `I32` tensors are
    /// converted to f32 (integers are exact up to 2^24, enough for token ids).
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            cause: source,
        })?;
        Self::from_bytes(&bytes).map_err(|message| Error::Format {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses safetensors bytes and verifies the checksum if the file carries one; the error is
    /// a message without the file name.
    pub fn from_bytes(bytes: &[u8]) -> std::result::Result<Self, String> {
        let file = Self::from_bytes_unverified(bytes)?;
        file.verify()?;
        Ok(file)
    }

    /// Parses safetensors bytes without verifying the checksum (for tools that repair or
    /// inspect damaged files, and for fuzzing the layers behind the checksum).
    pub fn from_bytes_unverified(bytes: &[u8]) -> std::result::Result<Self, String> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| format!("not a valid safetensors file ({e})"))?;
        let (_, meta) = SafeTensors::read_metadata(bytes)
            .map_err(|e| format!("not a valid safetensors file ({e})"))?;
        let mut tensors = BTreeMap::new();
        let mut int8 = BTreeSet::new();
        for (name, view) in st.iter() {
            let data = to_f32(&view).map_err(|e| format!("tensor `{name}`: {e}"))?;
            if view.dtype() == Dtype::I8 {
                int8.insert(name.to_string());
            }
            tensors.insert(
                name.to_string(),
                Tensor {
                    shape: view.shape().to_vec(),
                    data,
                },
            );
        }
        for name in &int8 {
            dequantize(&mut tensors, name)?;
        }
        let metadata = meta
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        Ok(TensorFile {
            tensors,
            metadata,
            int8,
        })
    }

    /// CRC-32 of the contents, as stored under [`CHECKSUM_KEY`]: every tensor's name, shape and
    /// f32 little-endian values in name order, then every metadata entry but the checksum.
    pub fn checksum(&self) -> String {
        let mut h = crc32fast::Hasher::new();
        let mut buf = Vec::with_capacity(4 * 4096);
        for (name, t) in &self.tensors {
            h.update(name.as_bytes());
            h.update(&[0]);
            h.update(&(t.shape.len() as u64).to_le_bytes());
            for &d in &t.shape {
                h.update(&(d as u64).to_le_bytes());
            }
            for chunk in t.data.chunks(4096) {
                buf.clear();
                buf.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
                h.update(&buf);
            }
        }
        for (k, v) in &self.metadata {
            if k != CHECKSUM_KEY {
                h.update(k.as_bytes());
                h.update(&[0]);
                h.update(v.as_bytes());
                h.update(&[0]);
            }
        }
        format!("crc32:{:08x}", h.finalize())
    }

    /// Stores the [`checksum`](Self::checksum) of the contents in the metadata.
    pub fn seal(&mut self) {
        let sum = self.checksum();
        self.metadata.insert(CHECKSUM_KEY.into(), sum);
    }

    /// Checks the stored checksum, if there is one (files from other tools have none).
    pub fn verify(&self) -> std::result::Result<(), String> {
        match self.metadata.get(CHECKSUM_KEY) {
            None => Ok(()),
            Some(stored) => {
                let actual = self.checksum();
                if *stored == actual {
                    Ok(())
                } else {
                    Err(format!(
                        "checksum mismatch: the file is corrupt (it records {stored}, its contents give {actual})"
                    ))
                }
            }
        }
    }

    /// The tensor called `name`, or an error naming what is missing.
    pub fn get(&self, name: &str) -> std::result::Result<&Tensor, String> {
        self.tensors
            .get(name)
            .ok_or_else(|| format!("missing tensor `{name}`"))
    }

    /// Marks the 2-D tensor `name` to be stored in 8 bits: its rows are quantized in place
    /// (`linalg::int8::quantize_in_place`) and their scales added as `NAME.scale`. Marking it
    /// again changes nothing (quantized values quantize to themselves).
    ///
    /// # Errors
    /// A message when there is no such tensor or it is not 2-D.
    pub fn quantize(&mut self, name: &str) -> std::result::Result<(), String> {
        let t = self
            .tensors
            .get_mut(name)
            .ok_or_else(|| format!("missing tensor `{name}`"))?;
        let &[n, k] = t.shape.as_slice() else {
            return Err(format!("tensor `{name}` is not a matrix"));
        };
        if k == 0 {
            return Err(format!("tensor `{name}` has empty rows"));
        }
        let scales = crate::linalg::int8::quantize_in_place(&mut t.data, k);
        self.tensors.insert(
            format!("{name}{SCALE_SUFFIX}"),
            Tensor {
                shape: vec![n],
                data: scales,
            },
        );
        self.int8.insert(name.to_string());
        Ok(())
    }

    /// Writes the tensors (f32, and 8 bits for [`TensorFile::int8`]) with the metadata, atomically (see [`crate::io::write_atomic`]).
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes().map_err(|message| Error::Format {
            path: path.to_path_buf(),
            message,
        })?;
        crate::io::write_atomic(path, &bytes)
    }

    /// Serialises the tensors as f32 safetensors bytes.
    pub fn to_bytes(&self) -> std::result::Result<Vec<u8>, String> {
        self.serialize(None)
    }

    /// Serialises the tensors as f32 safetensors bytes with the [`checksum`](Self::checksum) of
    /// the contents added to the metadata (the tensors are not copied).
    pub fn to_bytes_sealed(&self) -> std::result::Result<Vec<u8>, String> {
        self.serialize(Some(self.checksum()))
    }

    /// The safetensors layout, written here rather than by the `safetensors` crate so that the
    /// same contents always give the same bytes (the crate keeps the metadata in a `HashMap`,
    /// whose order changes from one process to the next): the header lists `__metadata__` first
    /// with its entries in key order, then the tensors in name order, each `{"dtype":"F32",
    /// "shape":[…],"data_offsets":[start,end]}`, padded with spaces to a multiple of 8 bytes;
    /// the values follow in the same order. Any safetensors reader accepts it, and files written
    /// before (in another header order) read and verify as they did.
    fn serialize(&self, checksum: Option<String>) -> std::result::Result<Vec<u8>, String> {
        let mut meta: BTreeMap<&str, &str> = self
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Some(sum) = &checksum {
            meta.insert(CHECKSUM_KEY, sum);
        }
        let quote = |s: &str| serde_json::to_string(s).map_err(|e| e.to_string());
        let mut header = String::from("{");
        if !meta.is_empty() {
            header.push_str("\"__metadata__\":{");
            for (i, (k, v)) in meta.iter().enumerate() {
                if i > 0 {
                    header.push(',');
                }
                header.push_str(&quote(k)?);
                header.push(':');
                header.push_str(&quote(v)?);
            }
            header.push('}');
        }
        let mut offset = 0usize;
        let mut levels = BTreeMap::new();
        for (i, (name, t)) in self.tensors.iter().enumerate() {
            let n = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            if n != Some(t.data.len()) {
                return Err(format!(
                    "tensor `{name}`: shape {:?} does not hold {} values",
                    t.shape,
                    t.data.len()
                ));
            }
            let (dtype, bytes) = match self.int8.contains(name) {
                true => {
                    levels.insert(name.as_str(), self.levels(name, t)?);
                    ("I8", t.data.len())
                }
                false => ("F32", 4 * t.data.len()),
            };
            let end = offset + bytes;
            if i > 0 || !meta.is_empty() {
                header.push(',');
            }
            let shape: Vec<String> = t.shape.iter().map(usize::to_string).collect();
            let _ = write!(
                header,
                "{}:{{\"dtype\":\"{dtype}\",\"shape\":[{}],\"data_offsets\":[{offset},{end}]}}",
                quote(name)?,
                shape.join(",")
            );
            offset = end;
        }
        header.push('}');
        while header.len() % 8 != 0 {
            header.push(' ');
        }
        if header.len() > MAX_HEADER {
            return Err(format!(
                "the header is {} bytes, more than safetensors readers accept ({MAX_HEADER})",
                header.len()
            ));
        }
        let mut bytes = Vec::with_capacity(8 + header.len() + offset);
        bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        for (name, t) in &self.tensors {
            match levels.get(name.as_str()) {
                Some(q) => bytes.extend(q.iter().map(|&v| v as u8)),
                None => bytes.extend(t.data.iter().flat_map(|v| v.to_le_bytes())),
            }
        }
        Ok(bytes)
    }

    /// The 8-bit levels of the int8 tensor `name` from its values and scales.
    fn levels(&self, name: &str, t: &Tensor) -> std::result::Result<Vec<i8>, String> {
        let scales = row_scales(&self.tensors, name, t)?;
        let k = t.data.len() / scales.len().max(1);
        let q = crate::linalg::int8::levels_of(&t.data, k, scales);
        let exact = q
            .chunks_exact(k.max(1))
            .zip(t.data.chunks_exact(k.max(1)))
            .zip(scales)
            .all(|((q, v), &s)| q.iter().zip(v).all(|(&q, &v)| s * q as f32 == v));
        match exact {
            true => Ok(q),
            false => Err(format!(
                "tensor `{name}` changed after it was quantized: its values are not its scales times 8-bit levels"
            )),
        }
    }
}

/// Replaces the levels of the 8-bit tensor `name` in `tensors` by its values, `scale · q` per row.
fn dequantize(
    tensors: &mut BTreeMap<String, Tensor>,
    name: &str,
) -> std::result::Result<(), String> {
    let t = tensors
        .get(name)
        .ok_or_else(|| format!("missing tensor `{name}`"))?;
    let scales = row_scales(tensors, name, t)?.to_vec();
    let t = tensors.get_mut(name).expect("found above");
    let k = t.data.len() / scales.len().max(1);
    for (row, s) in t.data.chunks_exact_mut(k.max(1)).zip(scales) {
        row.iter_mut().for_each(|v| *v *= s);
    }
    Ok(())
}

/// The row scales of the 8-bit tensor `name` (`NAME.scale`, one per row of the 2-D `t`).
fn row_scales<'a>(
    tensors: &'a BTreeMap<String, Tensor>,
    name: &str,
    t: &Tensor,
) -> std::result::Result<&'a [f32], String> {
    let scale = format!("{name}{SCALE_SUFFIX}");
    let s = tensors
        .get(&scale)
        .ok_or_else(|| format!("8-bit tensor `{name}` has no scales `{scale}`"))?;
    match t.shape.as_slice() {
        &[n, _] if s.shape == [n] && s.data.iter().all(|v| v.is_finite() && *v > 0.0) => {
            Ok(&s.data)
        }
        _ => Err(format!(
            "8-bit tensor `{name}` of shape {:?} needs positive finite scales `{scale}` of shape [rows], not {:?}",
            t.shape, s.shape
        )),
    }
}

fn to_f32(view: &TensorView<'_>) -> std::result::Result<Vec<f32>, String> {
    let d = view.data();
    Ok(match view.dtype() {
        Dtype::F32 => d
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => d
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        Dtype::BF16 => d
            .chunks_exact(2)
            .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
            .collect(),
        Dtype::F16 => d
            .chunks_exact(2)
            .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        // Token ids and labels: exact in f32 up to 2^24.
        Dtype::I64 => d
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        // The levels of an 8-bit tensor, scaled by the caller.
        Dtype::I8 => d.iter().map(|&c| c as i8 as f32).collect(),
        Dtype::I32 => d
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
            .collect(),
        other => {
            return Err(format!(
                "unsupported element type {other:?} (need a float or integer type)"
            ))
        }
    })
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as i32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // subnormal: value = m · 2^-24
            return f32::from_bits(sign)
                + (m as f32) * 2f32.powi(-24) * if sign != 0 { -1.0 } else { 1.0 };
        }
        (31, 0) => sign | 0x7f80_0000,
        (31, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | (((e - 15 + 127) as u32) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_names_shapes_values_and_metadata() {
        let mut f = TensorFile::default();
        f.tensors.insert(
            "weight_ih_l0".into(),
            Tensor {
                shape: vec![2, 3],
                data: vec![1.0, -2.5, 3.25, 0.0, 1e-8, -7.0],
            },
        );
        f.tensors.insert(
            "bias".into(),
            Tensor {
                shape: vec![1],
                data: vec![0.5],
            },
        );
        f.metadata.insert("cell".into(), "lstm".into());
        let g = TensorFile::from_bytes(&f.to_bytes().unwrap()).unwrap();
        assert_eq!(f, g);
        assert!(g.get("nope").unwrap_err().contains("missing tensor `nope`"));
    }

    #[test]
    fn int8_tensors_are_stored_in_a_byte_a_value_and_read_back_exactly() {
        let mut f = TensorFile::default();
        let w: Vec<f32> = (0..40)
            .map(|i| ((i * 7919) % 23) as f32 / 7.0 - 1.5)
            .collect();
        f.tensors.insert(
            "rnn.weight_ih_l0".into(),
            Tensor {
                shape: vec![4, 10],
                data: w.clone(),
            },
        );
        f.tensors.insert(
            "rnn.bias_ih_l0".into(),
            Tensor {
                shape: vec![4],
                data: vec![0.5; 4],
            },
        );
        f.quantize("rnn.weight_ih_l0").unwrap();
        let bytes = f.to_bytes_sealed().unwrap();
        // After the header: 40 levels in a byte each, 4 scales and 4 biases in f32.
        let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(bytes.len() - 8 - header, 40 + 16 + 16);
        let g = TensorFile::from_bytes(&bytes).unwrap();
        assert_eq!(g.int8, f.int8);
        assert_eq!(g.tensors, f.tensors);
        let q = &g.tensors["rnn.weight_ih_l0"].data;
        let s = &g.tensors["rnn.weight_ih_l0.scale"].data;
        assert!(q
            .iter()
            .zip(&w)
            .all(|(q, w)| (q - w).abs() <= 0.5 * s[0].max(s[3])));
        // Marking again changes nothing.
        let mut h = g.clone();
        h.quantize("rnn.weight_ih_l0").unwrap();
        assert_eq!(h, g);
        assert!(f
            .quantize("rnn.bias_ih_l0")
            .unwrap_err()
            .contains("not a matrix"));
        // Values changed after quantizing, or scales lost, are refused.
        let mut changed = g.clone();
        changed.tensors.get_mut("rnn.weight_ih_l0").unwrap().data[0] += 1e-3;
        assert!(changed.to_bytes().unwrap_err().contains("changed after"));
        let mut lost = g.clone();
        lost.tensors.remove("rnn.weight_ih_l0.scale");
        assert!(lost.to_bytes().unwrap_err().contains("no scales"));
    }

    #[test]
    fn garbage_and_truncated_files_are_refused() {
        assert!(TensorFile::from_bytes(b"").is_err());
        assert!(TensorFile::from_bytes(b"\x10\0\0\0\0\0\0\0{not json}     ").is_err());
        let mut f = TensorFile::default();
        f.tensors.insert(
            "w".into(),
            Tensor {
                shape: vec![4],
                data: vec![1.0; 4],
            },
        );
        let bytes = f.to_bytes().unwrap();
        assert!(TensorFile::from_bytes(&bytes[..bytes.len() - 3]).is_err());
    }

    #[test]
    fn a_sealed_file_detects_a_flipped_bit() {
        let mut f = TensorFile::default();
        f.tensors.insert(
            "w".into(),
            Tensor {
                shape: vec![3],
                data: vec![1.0, 2.0, 3.0],
            },
        );
        f.metadata.insert("format".into(), "x".into());
        f.seal();
        let bytes = f.to_bytes().unwrap();
        assert_eq!(TensorFile::from_bytes(&bytes).unwrap(), f);
        // Flip one bit of the last value (the data is at the end of the file).
        let mut bad = bytes.clone();
        let n = bad.len();
        bad[n - 2] ^= 0x10;
        let e = TensorFile::from_bytes(&bad).unwrap_err();
        assert!(e.contains("checksum mismatch"), "{e}");
        // A changed metadata entry is caught as well.
        let mut g = f.clone();
        g.metadata.insert("format".into(), "y".into());
        assert!(g.verify().is_err());
    }

    /// A file with tensors and several metadata entries (inserted out of key order).
    fn sample_file() -> TensorFile {
        let mut f = TensorFile::default();
        for (name, n) in [("rnn.weight_hh_l0", 6), ("encoder.weight", 4), ("bias", 1)] {
            f.tensors.insert(
                name.into(),
                Tensor {
                    shape: if n == 6 { vec![3, 2] } else { vec![n] },
                    data: (0..n).map(|i| i as f32 * 0.25 - 1.0).collect(),
                },
            );
        }
        for (k, v) in [
            ("vocab", "crc32:0badf00d:50"),
            ("format", "seqrnn-lm"),
            ("resume", r#"{"a":1,"b":"x\"y"}"#),
            ("metrics", "1,20,300.5,280.25\n"),
            ("config", "{}"),
            ("zeta", "é ünïcode"),
        ] {
            f.metadata.insert(k.into(), v.into());
        }
        f
    }

    #[test]
    fn the_same_contents_always_give_the_same_bytes() {
        let f = sample_file();
        let sealed = f.to_bytes_sealed().unwrap();
        assert_eq!(sealed, f.to_bytes_sealed().unwrap());
        // A separate instance built in another insertion order, sealed in place.
        let mut g = TensorFile::default();
        for (k, v) in f.metadata.iter().rev() {
            g.metadata.insert(k.clone(), v.clone());
        }
        for (k, t) in f.tensors.iter().rev() {
            g.tensors.insert(k.clone(), t.clone());
        }
        g.seal();
        assert_eq!(g.to_bytes().unwrap(), sealed);
        assert_eq!(f.to_bytes().unwrap(), f.clone().to_bytes().unwrap());
        // And it reads back, checksum verified, as what was written.
        assert_eq!(TensorFile::from_bytes(&sealed).unwrap(), g);
        let (n, meta) = SafeTensors::read_metadata(&sealed).unwrap();
        assert_eq!((8 + n) % 8, 0);
        assert_eq!(meta.metadata().as_ref().unwrap().len(), 7);
    }

    /// `f` written by the `safetensors` crate, with its metadata (in the order a `HashMap` gives)
    /// or without.
    fn crate_serialize(f: &TensorFile, with_metadata: bool) -> Vec<u8> {
        let raw: Vec<(String, Vec<usize>, Vec<u8>)> = f
            .tensors
            .iter()
            .map(|(n, t)| {
                let b = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
                (n.clone(), t.shape.clone(), b)
            })
            .collect();
        let views = raw.iter().map(|(n, s, b)| {
            (
                n.as_str(),
                TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
            )
        });
        let meta: Option<std::collections::HashMap<String, String>> =
            with_metadata.then(|| f.metadata.clone().into_iter().collect());
        safetensors::serialize(views, meta).unwrap()
    }

    #[test]
    fn the_header_is_the_safetensors_layout() {
        // With at most one metadata entry the `safetensors` crate's order is fixed: both
        // writers give the same bytes.
        let mut f = sample_file();
        f.metadata.retain(|k, _| k == "resume");
        let theirs = crate_serialize(&f, true);
        assert_eq!(f.to_bytes().unwrap(), theirs);
        let theirs = crate_serialize(&f, false);
        f.metadata.clear();
        assert_eq!(f.to_bytes().unwrap(), theirs);
        assert_eq!(
            TensorFile::default().to_bytes().unwrap(),
            safetensors::serialize(Vec::<(&str, TensorView<'_>)>::new(), None).unwrap()
        );
    }

    #[test]
    fn files_written_in_another_header_order_still_load_and_verify() {
        // Earlier versions wrote the metadata in whatever order a `HashMap` gave; the
        // checksum covers the entries in key order, so any order verifies.
        let mut f = sample_file();
        f.seal();
        let old = crate_serialize(&f, true);
        assert_eq!(TensorFile::from_bytes(&old).unwrap(), f);
        // The header, reversed by hand, reads the same too.
        let (n, _) = SafeTensors::read_metadata(&old).unwrap();
        let header: serde_json::Value = serde_json::from_slice(&old[8..8 + n]).unwrap();
        let mut text = String::from("{");
        let obj = header.as_object().unwrap();
        for (i, (k, v)) in obj.iter().rev().enumerate() {
            let v = if k == "__metadata__" {
                let m = v.as_object().unwrap();
                let entries: Vec<String> = m
                    .iter()
                    .rev()
                    .map(|(a, b)| format!("{}:{}", serde_json::json!(a), b))
                    .collect();
                format!("{{{}}}", entries.join(","))
            } else {
                v.to_string()
            };
            if i > 0 {
                text.push(',');
            }
            let _ = write!(text, "{}:{v}", serde_json::json!(k));
        }
        text.push('}');
        while text.len() % 8 != 0 {
            text.push(' ');
        }
        let mut reversed = (text.len() as u64).to_le_bytes().to_vec();
        reversed.extend_from_slice(text.as_bytes());
        reversed.extend_from_slice(&old[8 + n..]);
        assert_ne!(reversed, f.to_bytes().unwrap());
        assert_eq!(TensorFile::from_bytes(&reversed).unwrap(), f);
    }

    #[test]
    fn a_shape_that_does_not_fit_the_values_is_refused() {
        let mut f = TensorFile::default();
        f.tensors.insert(
            "w".into(),
            Tensor {
                shape: vec![2, 2],
                data: vec![1.0; 3],
            },
        );
        let e = f.to_bytes().unwrap_err();
        assert!(e.contains("tensor `w`"), "{e}");
    }

    #[test]
    fn half_precision_converts() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(f16_to_f32(0x7c00).is_infinite());
    }
}

//! The one checkpoint format of every training run (`checkpoint.safetensors`, format
//! `seqrnn-checkpoint-3`): everything [`crate::train::fit()`] needs to go on exactly where a run
//! stopped, at an epoch boundary or between two steps.
//!
//! | tensor | shape | contents |
//! |---|---|---|
//! | `params` | `[P]` | latest weights |
//! | `adam.m`, `adam.v` | `[P]` each | Adam's moments (runs trained with Adam) |
//! | `ema` | `[P]` | moving average of the weights (runs that keep one) |
//! | `carried.NAME` | any | state the task carries between steps inside an epoch (the language model's `h`, `c`), mid-epoch checkpoints only |
//!
//! | metadata | contents |
//! |---|---|
//! | `format` | `seqrnn-checkpoint-3` |
//! | `resume` | the loop's position, [`FitState`], as JSON |
//! | `metrics` | the metrics rows so far, [`FitEpoch`], as JSON (without timings) |
//! | `task` | what the task checks on resume (model, data fingerprints), as JSON |
//!
//! Earlier formats (`seqrnn-checkpoint-1`, `-2` of language models, `seqrnn-fit-checkpoint-1`
//! of forecasting and classification runs) are recognised and refused by name: their runs'
//! `model.safetensors` still evaluates, generates and predicts.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::tensors::{Tensor, TensorFile, CHECKSUM_KEY};

/// Version of the checkpoint format written by this build.
pub const CHECKPOINT_VERSION: u32 = 3;

/// One row of `metrics.csv`: one validation, at the end of an epoch or every
/// [`crate::train::fit::FitConfig::valid_every`] steps inside it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitEpoch {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Steps taken since the start of training when this validation ran.
    pub step: u64,
    /// Whether this validation closed its epoch.
    pub epoch_end: bool,
    /// Learning rate of the epoch.
    pub lr: f64,
    /// Mean training loss over the epoch's batches so far.
    pub train_loss: f64,
    /// Validation loss.
    pub valid_loss: f64,
    /// Validation score (higher is better).
    pub valid_score: f64,
    /// Training examples (tokens, for a language model) per second. Not stored in checkpoints
    /// (see [`FitEpoch::seconds`]).
    #[serde(skip)]
    pub examples_per_s: f64,
    /// Seconds since the start of the epoch, this validation included. Timings are not stored
    /// in checkpoints, so that the same run writes the same bytes; a resume reads them back
    /// from `metrics.csv`.
    #[serde(skip)]
    pub seconds: f64,
    /// Training examples seen since the start of training.
    #[serde(default)]
    pub examples_seen: u64,
}

/// The part of an epoch done when a checkpoint was written between two of its steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartialEpoch {
    /// Steps (batches) of the epoch already taken.
    pub step: usize,
    /// Sum of the per-step losses of those steps.
    #[serde(with = "exact_f64")]
    pub loss_sum: f64,
    /// Examples those steps covered.
    pub examples: u64,
    /// Seconds spent in those steps (not stored: a resumed epoch's time and throughput cover
    /// the part after the resume).
    #[serde(skip)]
    pub train_seconds: f64,
    /// Seconds since the epoch started (steps, validations and checkpoints; not stored).
    #[serde(skip)]
    pub seconds: f64,
}

/// The loop's position, stored as the checkpoint's `resume` metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitState {
    /// Epochs finished.
    pub epochs_done: usize,
    /// Steps taken.
    pub steps_done: u64,
    /// Training examples seen.
    pub examples_seen: u64,
    /// Best validation score so far (−∞ before the first validation).
    #[serde(with = "exact_f64")]
    pub best_score: f64,
    /// Epoch of the best score (0: none yet).
    pub best_epoch: usize,
    /// Step count at the best score.
    pub best_step: u64,
    /// Adam's step count (0 for SGD).
    pub adam_step: u64,
    /// NT-ASGD: the step count when weight averaging began (`None`: not begun).
    #[serde(default)]
    pub averaging_since: Option<u64>,
    /// Position of the loop's generator (a `u128` in decimal).
    pub rng_word_pos: String,
    /// Position of the generator at the start of each epoch begun: a resume replays each
    /// epoch's preparation ([`crate::train::Task::start_epoch`]) from it.
    pub epoch_rng_pos: Vec<String>,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Where epoch `epochs_done + 1` stands, for a checkpoint written inside it.
    pub partial: Option<PartialEpoch>,
}

/// Everything a checkpoint holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// Latest weights `[P]`.
    pub params: Vec<f32>,
    /// Adam's first and second moments `[P]` each, for runs trained with Adam.
    pub adam: Option<(Vec<f32>, Vec<f32>)>,
    /// Moving average of the weights `[P]`, for runs that keep one.
    pub ema: Option<Vec<f32>>,
    /// State the task carries between steps (mid-epoch checkpoints), by name.
    pub carried: BTreeMap<String, Vec<f32>>,
    /// The loop's position.
    pub state: FitState,
    /// Metrics rows so far.
    pub history: Vec<FitEpoch>,
    /// What the task checks on resume ([`crate::train::Task::identity`]).
    pub task: serde_json::Value,
}

/// The checkpoint's bytes: a sealed safetensors file (see the module documentation).
///
/// # Errors
/// [`Error::Format`] naming `path` when the state cannot be serialised.
pub fn checkpoint_bytes(ck: &Checkpoint, path: &Path) -> Result<Vec<u8>> {
    let flat = |v: &[f32]| Tensor {
        shape: vec![v.len()],
        data: v.to_vec(),
    };
    let mut f = TensorFile::default();
    f.tensors.insert("params".into(), flat(&ck.params));
    if let Some((m, v)) = &ck.adam {
        f.tensors.insert("adam.m".into(), flat(m));
        f.tensors.insert("adam.v".into(), flat(v));
    }
    if let Some(e) = &ck.ema {
        f.tensors.insert("ema".into(), flat(e));
    }
    for (name, v) in &ck.carried {
        f.tensors.insert(format!("carried.{name}"), flat(v));
    }
    let json = |r: serde_json::Result<String>| {
        r.map_err(|e| Error::Format {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    };
    f.metadata.insert(
        "format".into(),
        format!("seqrnn-checkpoint-{CHECKPOINT_VERSION}"),
    );
    f.metadata
        .insert("resume".into(), json(serde_json::to_string(&ck.state))?);
    f.metadata
        .insert("metrics".into(), json(serde_json::to_string(&ck.history))?);
    f.metadata
        .insert("task".into(), json(serde_json::to_string(&ck.task))?);
    f.to_bytes_sealed().map_err(|message| Error::Format {
        path: path.to_path_buf(),
        message,
    })
}

/// Reads the checkpoint at `path` for a model of `n` parameters.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Format`] naming `path` when it is
/// truncated or corrupt (checksum), not a checkpoint, from an earlier or a newer format, or its
/// tensors do not fit a model of `n` parameters.
pub fn load_checkpoint(path: &Path, n: usize) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        cause: source,
    })?;
    checkpoint_from_bytes(&bytes, n).map_err(|message| Error::Format {
        path: path.to_path_buf(),
        message,
    })
}

/// Parses checkpoint bytes (see [`load_checkpoint`]); the error is a message without the file
/// name.
pub fn checkpoint_from_bytes(bytes: &[u8], n: usize) -> std::result::Result<Checkpoint, String> {
    let file = TensorFile::from_bytes(bytes).map_err(|e| {
        if e.contains("checksum") {
            e
        } else {
            format!("{e}; the checkpoint is truncated or corrupt")
        }
    })?;
    check_format(&file)?;
    if !file.metadata.contains_key(CHECKSUM_KEY) {
        return Err("the checkpoint carries no checksum; it is corrupt".into());
    }
    let meta = |key: &str| file.metadata.get(key).map_or("", String::as_str);
    let state: FitState = serde_json::from_str(meta("resume"))
        .map_err(|e| format!("resume state unreadable ({e})"))?;
    let history: Vec<FitEpoch> =
        serde_json::from_str(meta("metrics")).map_err(|e| format!("metrics unreadable ({e})"))?;
    let task = serde_json::from_str(meta("task"))
        .map_err(|e| format!("task description unreadable ({e})"))?;
    let take = |name: &str| -> std::result::Result<Vec<f32>, String> {
        let t = file.get(name)?;
        if t.data.len() != n {
            return Err(format!(
                "`{name}` holds {} values but the model has {n} parameters: the checkpoint is from another architecture",
                t.data.len()
            ));
        }
        Ok(t.data.clone())
    };
    let has = |name: &str| file.tensors.contains_key(name);
    let adam = match has("adam.m") {
        true => Some((take("adam.m")?, take("adam.v")?)),
        false => None,
    };
    let ema = match has("ema") {
        true => Some(take("ema")?),
        false => None,
    };
    let carried: BTreeMap<String, Vec<f32>> = file
        .tensors
        .iter()
        .filter_map(|(k, t)| Some((k.strip_prefix("carried.")?.to_string(), t.data.clone())))
        .collect();
    if state.partial.is_none() && !carried.is_empty() {
        return Err("the checkpoint holds carried state but no position within an epoch".into());
    }
    Ok(Checkpoint {
        params: take("params")?,
        adam,
        ema,
        carried,
        state,
        history,
        task,
    })
}

/// Accepts this build's format; names an earlier or newer one.
fn check_format(file: &TensorFile) -> std::result::Result<(), String> {
    let earlier = |f: &str| {
        Err(format!(
            "written by an earlier seqrnn (checkpoint format `{f}`; this build resumes `seqrnn-checkpoint-{CHECKPOINT_VERSION}`): the run's model.safetensors still evaluates and predicts, but its training cannot be continued by this build"
        ))
    };
    match file.metadata.get("format").map(String::as_str) {
        Some("seqrnn-fit-checkpoint-1") => earlier("seqrnn-fit-checkpoint-1"),
        Some(f) => match f.strip_prefix("seqrnn-checkpoint-").map(str::parse::<u32>) {
            Some(Ok(CHECKPOINT_VERSION)) => Ok(()),
            Some(Ok(v)) if v > CHECKPOINT_VERSION => Err(format!(
                "written by a newer seqrnn (checkpoint format {v}; this build reads {CHECKPOINT_VERSION}): update seqrnn to resume it"
            )),
            Some(Ok(1 | 2)) => earlier(f),
            _ => Err(format!("not a seqrnn checkpoint (format `{f}`)")),
        },
        None => Err("not a seqrnn checkpoint (no format in its metadata)".into()),
    }
}

/// Floats stored as their shortest round-trip decimal text, so that every value (infinities
/// included) reads back bit for bit; plain JSON numbers are accepted too.
pub(crate) mod exact_f64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(f64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Number(v) => Ok(v),
            Repr::Text(t) => t
                .parse()
                .map_err(|_| serde::de::Error::custom(format!("`{t}` is not a number"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            params: vec![1.0, -2.5, 3.25],
            adam: Some((vec![0.1; 3], vec![0.2; 3])),
            ema: None,
            carried: BTreeMap::from([("h".to_string(), vec![0.5, 0.25])]),
            state: FitState {
                epochs_done: 1,
                steps_done: 7,
                examples_seen: 70,
                best_score: f64::NEG_INFINITY,
                best_epoch: 0,
                best_step: 0,
                adam_step: 7,
                averaging_since: Some(5),
                rng_word_pos: "123".into(),
                epoch_rng_pos: vec!["0".into(), "99".into()],
                stopped_early: false,
                partial: Some(PartialEpoch {
                    step: 3,
                    loss_sum: 0.1 + 0.2,
                    examples: 30,
                    train_seconds: 0.0,
                    seconds: 0.0,
                }),
            },
            history: vec![],
            task: serde_json::json!({"model": "x"}),
        }
    }

    #[test]
    fn round_trips_bit_for_bit() {
        let ck = sample();
        let bytes = checkpoint_bytes(&ck, Path::new("c")).unwrap();
        assert_eq!(checkpoint_from_bytes(&bytes, 3).unwrap(), ck);
        assert_eq!(bytes, checkpoint_bytes(&ck, Path::new("c")).unwrap());
        let err = checkpoint_from_bytes(&bytes, 4).unwrap_err();
        assert!(err.contains("another architecture"), "{err}");
        let err = checkpoint_from_bytes(&bytes[..bytes.len() / 2], 3).unwrap_err();
        assert!(err.contains("truncated or corrupt"), "{err}");
    }

    #[test]
    fn earlier_and_newer_formats_are_named() {
        for (format, needle) in [
            (
                "seqrnn-checkpoint-2",
                "earlier seqrnn (checkpoint format `seqrnn-checkpoint-2`",
            ),
            ("seqrnn-fit-checkpoint-1", "earlier seqrnn"),
            ("seqrnn-checkpoint-9", "newer seqrnn (checkpoint format 9"),
            ("something", "not a seqrnn checkpoint"),
        ] {
            let mut f =
                TensorFile::from_bytes(&checkpoint_bytes(&sample(), Path::new("c")).unwrap())
                    .unwrap();
            f.metadata.insert("format".into(), format.into());
            let err = checkpoint_from_bytes(&f.to_bytes_sealed().unwrap(), 3).unwrap_err();
            assert!(err.contains(needle), "{format}: {err}");
        }
    }
}

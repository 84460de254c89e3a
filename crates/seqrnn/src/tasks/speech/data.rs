//! Speech corpora: recordings with their transcripts.
//!
//! - **Manifests**: a TSV file, one `path<TAB>transcript` line per recording, paths relative to
//!   the manifest's folder (absolute paths are kept), blank lines skipped. Any corpus can be
//!   described this way.
//! - **Free Spoken Digit Dataset** ([`load_fsdd`]): `{digit}_{speaker}_{take}.wav` files, the
//!   transcript being the digit's English name. The dataset's own split puts takes 0–4 of every
//!   speaker and digit in the test set; validation is held out from the rest by take (5–9), and
//!   training keeps takes 10 and above.
//! - **Connected digits** ([`concatenate`]): utterances of `K1..=K2` recordings of one speaker and
//!   one split joined with short random pauses, their transcripts joined with spaces.
//!
//! Every recording is read with [`crate::data::audio::read_wav`] and resampled to the model's
//! rate. Transcripts are kept as written, with runs of white space made one space and the ends
//! trimmed; the alphabet is whatever characters the training transcripts use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::data::audio::{read_wav, resample};
use crate::data::text::{read_text, Encoding, Lines};
use crate::dropout::rng_from_seed;
use crate::error::{Error, Result};

/// The English names of the digits, the transcripts of FSDD's recordings.
pub const DIGITS: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];

/// One recording (or several joined) and what is said in it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Utterance {
    /// Where it came from, for messages and output: a file, or files joined with `+`.
    pub source: String,
    /// Who speaks (FSDD's speaker; empty for a manifest): connected utterances join one
    /// speaker's recordings.
    pub speaker: String,
    /// Mono samples in `[-1, 1]` at the corpus' rate.
    pub samples: Vec<f32>,
    /// What is said.
    pub transcript: String,
}

/// Transcript normalisation: white space runs become one space, ends trimmed.
pub fn normalize_transcript(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn data_error(path: &Path, message: String) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        message,
    }
}

/// Reads a recording at `rate` Hz (resampled when the file has another rate).
pub fn load_recording(path: &Path, rate: u32) -> Result<Vec<f32>> {
    let audio = read_wav(path)?;
    resample(&audio, rate)
}

/// The entries of a manifest in `encoding`: `(path, transcript, line)`, paths resolved against
/// the manifest's folder.
///
/// # Errors
/// [`Error::Io`] when it cannot be read, [`Error::NotUtf8`] when it is not the UTF-8 it should
/// be, [`Error::Data`] (with the line) for a line without a tab, an empty path or transcript,
/// or a manifest without entries.
pub fn read_manifest(path: &Path, encoding: Encoding) -> Result<Vec<(PathBuf, String, usize)>> {
    let text = read_text(path, encoding)?;
    let base = path.parent().unwrap_or(Path::new(""));
    let mut out = Vec::new();
    for (n, line) in Lines(&text).enumerate() {
        let line_no = n + 1;
        if line.trim().is_empty() {
            continue;
        }
        let Some((file, transcript)) = line.split_once('\t') else {
            return Err(data_error(
                path,
                format!("line {line_no}: expected path<TAB>transcript, found no tab"),
            ));
        };
        let transcript = normalize_transcript(transcript);
        if file.trim().is_empty() || transcript.is_empty() {
            return Err(data_error(
                path,
                format!("line {line_no}: empty path or transcript"),
            ));
        }
        out.push((base.join(file.trim()), transcript, line_no));
    }
    if out.is_empty() {
        return Err(data_error(path, "the manifest lists no recordings".into()));
    }
    Ok(out)
}

/// Reads every recording of a manifest at `rate` Hz. An unreadable recording is reported with
/// the manifest's line.
pub fn load_manifest(path: &Path, rate: u32, encoding: Encoding) -> Result<Vec<Utterance>> {
    read_manifest(path, encoding)?
        .into_iter()
        .map(|(file, transcript, line)| {
            let samples = load_recording(&file, rate)
                .map_err(|e| data_error(path, format!("line {line}: {e}")))?;
            Ok(Utterance {
                source: file.display().to_string(),
                speaker: String::new(),
                samples,
                transcript,
            })
        })
        .collect()
}

/// Recordings named one by one: WAV files, and the recordings of manifests (`.tsv`, in
/// `encoding`), at `rate` Hz, in order; the transcripts of plain WAV files are empty.
pub fn load_named(files: &[PathBuf], rate: u32, encoding: Encoding) -> Result<Vec<Utterance>> {
    let mut out = Vec::new();
    for f in files {
        if f.extension().is_some_and(|e| e == "tsv") {
            out.extend(load_manifest(f, rate, encoding)?);
        } else {
            out.push(Utterance {
                source: f.display().to_string(),
                samples: load_recording(f, rate)?,
                ..Utterance::default()
            });
        }
    }
    Ok(out)
}

/// A part of FSDD under its own convention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsddSplit {
    /// Takes 10–49.
    Train,
    /// Takes 5–9 (held out from the dataset's training part).
    Valid,
    /// Takes 0–4 (the dataset's test set).
    Test,
}

impl FsddSplit {
    /// The split of a recording: by take ([`FsddSplit::of_take`]), or with a speaker held out,
    /// every recording of that speaker is the test set, the other speakers' takes 0–4
    /// validate and their takes 5–49 train.
    pub fn of(name: &FsddName, held_out: Option<&str>) -> Self {
        match held_out {
            None => FsddSplit::of_take(name.take),
            Some(s) if name.speaker == s => FsddSplit::Test,
            Some(_) if name.take <= 4 => FsddSplit::Valid,
            Some(_) => FsddSplit::Train,
        }
    }

    /// The split a take belongs to.
    pub fn of_take(take: u32) -> Self {
        match take {
            0..=4 => FsddSplit::Test,
            5..=9 => FsddSplit::Valid,
            _ => FsddSplit::Train,
        }
    }
}

/// One FSDD file name, `{digit}_{speaker}_{take}.wav`, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsddName {
    /// The digit said.
    pub digit: usize,
    /// The speaker.
    pub speaker: String,
    /// The take.
    pub take: u32,
}

impl FsddName {
    /// Parses a file name; `None` when it does not follow the pattern.
    pub fn parse(name: &str) -> Option<Self> {
        let stem = name.strip_suffix(".wav")?;
        let mut parts = stem.splitn(3, '_');
        let digit: usize = parts.next()?.parse().ok()?;
        let speaker = parts.next()?.to_owned();
        let take: u32 = parts.next()?.parse().ok()?;
        (digit < 10 && !speaker.is_empty()).then_some(FsddName {
            digit,
            speaker,
            take,
        })
    }
}

/// The recordings of one FSDD split at `rate` Hz, in file-name order.
///
/// # Errors
/// [`Error::Io`] for a missing folder, [`Error::Data`] for a folder without FSDD recordings or a
/// `.wav` file whose name does not follow the pattern, and any recording's own error.
pub fn load_fsdd(dir: &Path, split: FsddSplit, rate: u32) -> Result<Vec<Utterance>> {
    load_fsdd_part(dir, split, None, rate)
}

/// [`load_fsdd`] with the split of [`FsddSplit::of`]: with `held_out`, that speaker's
/// recordings are the test set.
///
/// # Errors
/// As [`load_fsdd`]; [`Error::Config`] naming the speakers when `held_out` is none of them.
pub fn load_fsdd_part(
    dir: &Path,
    split: FsddSplit,
    held_out: Option<&str>,
    rate: u32,
) -> Result<Vec<Utterance>> {
    let entries = std::fs::read_dir(dir).map_err(|cause| Error::Io {
        path: dir.to_path_buf(),
        cause,
    })?;
    let mut files = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(|cause| Error::Io {
            path: dir.to_path_buf(),
            cause,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".wav") {
            continue;
        }
        let Some(parsed) = FsddName::parse(&name) else {
            return Err(data_error(
                &entry.path(),
                "not an FSDD recording name ({digit}_{speaker}_{take}.wav)".into(),
            ));
        };
        files.insert(name, parsed);
    }
    if files.is_empty() {
        return Err(data_error(
            dir,
            "holds no FSDD recordings ({digit}_{speaker}_{take}.wav)".into(),
        ));
    }
    if let Some(s) = held_out {
        let speakers: std::collections::BTreeSet<&str> =
            files.values().map(|n| n.speaker.as_str()).collect();
        if !speakers.contains(s) {
            let known: Vec<&str> = speakers.into_iter().collect();
            return Err(Error::Config(format!(
                "{} has no recordings of speaker {s:?} (its speakers: {})",
                dir.display(),
                known.join(", ")
            )));
        }
    }
    files
        .into_iter()
        .filter(|(_, n)| FsddSplit::of(n, held_out) == split)
        .map(|(name, n)| {
            let path = dir.join(&name);
            Ok(Utterance {
                samples: load_recording(&path, rate)?,
                source: name,
                speaker: n.speaker,
                transcript: DIGITS[n.digit].to_owned(),
            })
        })
        .collect()
}

/// How connected utterances are built. `validate()` before use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concat {
    /// Fewest recordings per utterance (`K1 ≥ 1`).
    pub min: usize,
    /// Most recordings per utterance (`K2 ≥ K1`).
    pub max: usize,
    /// Shortest pause between recordings, in milliseconds.
    pub pause_min_ms: u32,
    /// Longest pause, in milliseconds.
    pub pause_max_ms: u32,
}

impl Default for Concat {
    fn default() -> Self {
        Concat {
            min: 2,
            max: 7,
            pause_min_ms: 50,
            pause_max_ms: 250,
        }
    }
}

impl Concat {
    /// `K1-K2` as the command line writes it (`3` alone for `3-3`), default pauses.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || {
            Error::Config(format!(
                "--concat takes K1-K2 (recordings per utterance, e.g. 2-7), got {text:?}"
            ))
        };
        let (a, b) = text.split_once('-').unwrap_or((text, text));
        let c = Concat {
            min: a.trim().parse().map_err(|_| bad())?,
            max: b.trim().parse().map_err(|_| bad())?,
            ..Concat::default()
        };
        c.validate()?;
        Ok(c)
    }

    /// Checks `1 ≤ K1 ≤ K2` and the pause range.
    pub fn validate(&self) -> Result<()> {
        if self.min == 0 || self.min > self.max || self.max > 100 {
            return Err(Error::Config(format!(
                "connected utterances need 1 ≤ K1 ≤ K2 ≤ 100 recordings, got {}-{}",
                self.min, self.max
            )));
        }
        if self.pause_min_ms > self.pause_max_ms {
            return Err(Error::Config(format!(
                "pause range {}–{} ms is empty",
                self.pause_min_ms, self.pause_max_ms
            )));
        }
        Ok(())
    }
}

/// Connected utterances from `recordings` (one split): as many as there are recordings, the
/// `i`-th starting with recording `i`, followed by `K − 1` others of the same speaker drawn at
/// random (K uniform in `K1..=K2`), with a silent pause of random length between recordings.
/// Deterministic for a seed.
///
/// # Errors
/// [`Error::Config`] for an invalid [`Concat`].
pub fn concatenate(
    recordings: &[Utterance],
    concat: &Concat,
    rate: u32,
    seed: u64,
) -> Result<Vec<Utterance>> {
    concat.validate()?;
    let mut by_speaker: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, u) in recordings.iter().enumerate() {
        by_speaker.entry(&u.speaker).or_default().push(i);
    }
    let mut rng = rng_from_seed(seed);
    let ms = |m: u32| (m as u64 * rate as u64 / 1000) as usize;
    let mut out = Vec::with_capacity(recordings.len());
    for (i, first) in recordings.iter().enumerate() {
        let k = rng.random_range(concat.min..=concat.max);
        let pool = &by_speaker[first.speaker.as_str()];
        let mut parts = vec![i];
        parts.extend((1..k).map(|_| pool[rng.random_range(0..pool.len())]));
        let mut u = Utterance {
            speaker: first.speaker.clone(),
            ..Utterance::default()
        };
        for (n, &p) in parts.iter().enumerate() {
            let r = &recordings[p];
            if n > 0 {
                let pause = rng.random_range(concat.pause_min_ms..=concat.pause_max_ms);
                u.samples.resize(u.samples.len() + ms(pause), 0.0);
                u.source.push('+');
                u.transcript.push(' ');
            }
            u.samples.extend_from_slice(&r.samples);
            u.source.push_str(&r.source);
            u.transcript.push_str(&r.transcript);
        }
        out.push(u);
    }
    Ok(out)
}

/// Speed perturbation (Ko et al. 2015): for every factor `f ≠ 1` of `factors`, a copy of each
/// recording played `f` times as fast (resampled from `f·rate` to `rate`: `1/f` as long, pitch
/// and tempo scaled by `f`), its source marked `@f`. The originals come first.
///
/// # Errors
/// [`Error::Config`] for a factor outside `[0.5, 2]`.
pub fn speed_perturb(
    recordings: &[Utterance],
    factors: &[f32],
    rate: u32,
) -> Result<Vec<Utterance>> {
    let mut out = recordings.to_vec();
    for &f in factors {
        if !(0.5..=2.0).contains(&f) {
            return Err(Error::Config(format!(
                "speed factors must be between 0.5 and 2, got {f}"
            )));
        }
        if f == 1.0 {
            continue;
        }
        let from = (rate as f64 * f as f64).round() as u32;
        let mut r = crate::data::audio::Resampler::new(from, rate)?;
        for u in recordings {
            out.push(Utterance {
                source: format!("{}@{f}", u.source),
                speaker: u.speaker.clone(),
                samples: r.process(&u.samples)?,
                transcript: u.transcript.clone(),
            });
        }
    }
    Ok(out)
}

/// Shuffles utterances in place, deterministically for a seed.
pub fn shuffle(utterances: &mut [Utterance], seed: u64) {
    utterances.shuffle(&mut rng_from_seed(seed));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utt(speaker: &str, n: usize, text: &str) -> Utterance {
        Utterance {
            source: format!("{text}.wav"),
            speaker: speaker.into(),
            samples: vec![0.5; n],
            transcript: text.into(),
        }
    }

    #[test]
    fn fsdd_names_and_splits() {
        let n = FsddName::parse("7_george_12.wav").unwrap();
        assert_eq!((n.digit, n.speaker.as_str(), n.take), (7, "george", 12));
        assert_eq!(FsddSplit::of_take(n.take), FsddSplit::Train);
        assert_eq!(FsddSplit::of_take(0), FsddSplit::Test);
        assert_eq!(FsddSplit::of_take(4), FsddSplit::Test);
        assert_eq!(FsddSplit::of_take(5), FsddSplit::Valid);
        assert_eq!(FsddSplit::of_take(9), FsddSplit::Valid);
        assert_eq!(FsddSplit::of_take(10), FsddSplit::Train);
        // One speaker held out: all of theirs test, the others' takes 0–4 validate.
        let of = |name: &str| FsddSplit::of(&FsddName::parse(name).unwrap(), Some("theo"));
        assert_eq!(of("3_theo_0.wav"), FsddSplit::Test);
        assert_eq!(of("3_theo_49.wav"), FsddSplit::Test);
        assert_eq!(of("3_george_0.wav"), FsddSplit::Valid);
        assert_eq!(of("3_george_4.wav"), FsddSplit::Valid);
        assert_eq!(of("3_george_5.wav"), FsddSplit::Train);
        assert_eq!(FsddSplit::of(&n, None), FsddSplit::Train);
        for bad in [
            "7_george.wav",
            "x_george_1.wav",
            "12_a_1.wav",
            "7__1.wav",
            "7_a_1.mp3",
        ] {
            assert_eq!(FsddName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn concat_parses_and_refuses() {
        let c = Concat::parse("2-7").unwrap();
        assert_eq!((c.min, c.max), (2, 7));
        assert_eq!(Concat::parse("3").unwrap().max, 3);
        for bad in ["0-2", "5-3", "a-b", "", "2-"] {
            assert!(Concat::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn connected_utterances_join_one_speaker() {
        let recs = vec![
            utt("a", 10, "one"),
            utt("a", 20, "two"),
            utt("b", 30, "three"),
            utt("b", 40, "four"),
        ];
        let c = Concat {
            min: 2,
            max: 3,
            pause_min_ms: 1,
            pause_max_ms: 2,
        };
        let out = concatenate(&recs, &c, 1000, 5).unwrap();
        assert_eq!(out.len(), 4);
        for (u, first) in out.iter().zip(&recs) {
            let words: Vec<&str> = u.transcript.split(' ').collect();
            assert!((2..=3).contains(&words.len()));
            assert_eq!(words[0], first.transcript);
            assert_eq!(u.speaker, first.speaker);
            let allowed: Vec<&str> = match first.speaker.as_str() {
                "a" => vec!["one", "two"],
                _ => vec!["three", "four"],
            };
            assert!(
                words.iter().all(|w| allowed.contains(w)),
                "{}",
                u.transcript
            );
            // Samples: every recording plus pauses of 1–2 ms (1–2 samples at 1 kHz).
            let speech: usize = words
                .iter()
                .map(|w| {
                    recs.iter()
                        .find(|r| r.transcript == *w)
                        .unwrap()
                        .samples
                        .len()
                })
                .sum();
            let pauses = u.samples.len() - speech;
            assert!(pauses >= words.len() - 1 && pauses <= 2 * (words.len() - 1));
            assert_eq!(u.source.split('+').count(), words.len());
        }
        assert_eq!(out, concatenate(&recs, &c, 1000, 5).unwrap());
        assert_ne!(out, concatenate(&recs, &c, 1000, 6).unwrap());
    }

    #[test]
    fn speed_perturbation_scales_the_length() {
        let recs = vec![utt("a", 8000, "one")];
        let out = speed_perturb(&recs, &[0.9, 1.0, 1.1], 8000).unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], recs[0]);
        assert_eq!(
            (out[1].source.as_str(), out[2].source.as_str()),
            ("one.wav@0.9", "one.wav@1.1")
        );
        // 1/f as long: 8,889 and 7,273 samples.
        assert!(
            (out[1].samples.len() as i64 - 8889).abs() <= 1,
            "{}",
            out[1].samples.len()
        );
        assert!(
            (out[2].samples.len() as i64 - 7273).abs() <= 1,
            "{}",
            out[2].samples.len()
        );
        assert!(speed_perturb(&recs, &[3.0], 8000).is_err());
    }

    #[test]
    fn manifests_resolve_paths_and_refuse_bad_lines() {
        let dir = std::env::temp_dir().join(format!("seqrnn-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let m = dir.join("m.tsv");
        std::fs::write(&m, "a.wav\thello   world \n\n/abs/b.wav\tbye\n").unwrap();
        let entries = read_manifest(&m, Encoding::UTF_8).unwrap();
        assert_eq!(entries[0], (dir.join("a.wav"), "hello world".into(), 1));
        assert_eq!(entries[1], (PathBuf::from("/abs/b.wav"), "bye".into(), 3));
        for (text, want) in [
            ("a.wav hello\n", "line 1: expected path<TAB>transcript"),
            ("a.wav\t \n", "line 1: empty path or transcript"),
            ("\n\n", "lists no recordings"),
        ] {
            std::fs::write(&m, text).unwrap();
            let e = read_manifest(&m, Encoding::UTF_8).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        std::fs::write(&m, "missing.wav\tone\n").unwrap();
        let e = load_manifest(&m, 8000, Encoding::UTF_8)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("missing.wav"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

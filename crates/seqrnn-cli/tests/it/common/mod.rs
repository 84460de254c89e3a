//! Helpers shared by the command-line tests: run the built `seqrnn` binary, check how it ended,
//! and make scratch folders.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The built binary, without `SEQRNN_DATA` from the caller's environment (tests name their
/// data explicitly).
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_seqrnn"));
    c.env_remove("SEQRNN_DATA");
    c
}

/// Runs `seqrnn ARGS…` to completion.
pub fn seqrnn(args: &[&str]) -> Output {
    bin().args(args).output().expect("run seqrnn")
}

/// Asserts success and returns standard output.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts a clean failure (non-zero exit, `needle` in the message, no panic) and returns the
/// message.
pub fn fails(out: &Output, needle: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "should fail: {}\n{err}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// An empty scratch folder named after the calling test module (its file), the process and
/// `name`: the modules share one process, so each keeps to folders of its own.
#[track_caller]
pub fn scratch(name: &str) -> PathBuf {
    let caller = Path::new(std::panic::Location::caller().file());
    let module = caller.file_stem().unwrap().to_str().unwrap();
    let d = std::env::temp_dir().join(format!("seqrnn-{module}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Asserts that `seqrnn ARGS…` fails cleanly with `needle` (as [`fails`]) and leaves no run in
/// `out`; returns the message.
pub fn refused(args: &[&str], needle: &str, out: &Path) -> String {
    let err = fails(&seqrnn(args), needle);
    assert!(
        !out.join("config.json").exists(),
        "{args:?} left a run behind"
    );
    err
}

/// Asserts the one-line refusal of `seqrnn ARGS…` on a run stopped in its first epoch (a
/// checkpoint, no weights yet), which names the command that resumes it: `resume`, such as
/// `classify train --resume --out RUN`.
pub fn refused_without_weights(args: &[&str], resume: &str) {
    let err = fails(
        &seqrnn(args),
        "the run has a checkpoint but no finished epoch yet, so there are no trained weights to use",
    );
    assert!(err.contains(&format!(" {resume} ...`")), "{err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
}

/// A copy of `files` of `from` in `from/name`, with `file` holding `bytes` instead; its path.
pub fn copy_with(from: &Path, name: &str, files: &[&str], file: &str, bytes: &[u8]) -> String {
    let dir = from.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for f in files {
        std::fs::copy(from.join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join(file), bytes).unwrap();
    dir.to_str().unwrap().to_string()
}

/// A folder `dir/name` holding only a `config.json` of `config` (a run of some other task).
pub fn foreign_run(dir: &Path, name: &str, config: &str) -> PathBuf {
    let run = dir.join(name);
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("config.json"), config).unwrap();
    run
}

/// The sentences of the tiny word corpora ([`word_corpus`]).
const SENTENCES: [&str; 6] = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog met on the mat",
    "the cat saw the dog",
    "a dog saw a cat on the log",
    "the bird saw a dog and a cat",
];

/// A tiny word corpus in the plain layout: `train.txt` cycles through the first `sentences` of
/// [`SENTENCES`] for `lines` lines; `valid.txt` and `test.txt` hold `valid` and `test`.
pub fn word_corpus(dir: &Path, sentences: usize, lines: usize, valid: &str, test: &str) {
    let text: String = SENTENCES[..sentences]
        .iter()
        .cycle()
        .take(lines)
        .map(|s| format!("{s}\n"))
        .collect();
    std::fs::write(dir.join("train.txt"), &text).unwrap();
    std::fs::write(dir.join("valid.txt"), valid).unwrap();
    std::fs::write(dir.join("test.txt"), test).unwrap();
}

/// `base` arguments with `extra` appended; a flag in `extra` replaces the same flag (and its
/// value) in `base`.
pub fn with_overrides<'a>(mut base: Vec<&'a str>, extra: &[&'a str]) -> Vec<&'a str> {
    for flag in extra.iter().filter(|f| f.starts_with("--")) {
        if let Some(i) = base.iter().position(|x| x == flag) {
            base.drain(i..i + 2);
        }
    }
    base.extend_from_slice(extra);
    base
}

#[path = "../../../../seqrnn/src/test_shared.rs"]
mod shared_folder;
/// The shared folder's files, or a skip (a failure under `SEQRNN_REQUIRE_SHARED=1`).
#[allow(unused_imports)]
pub(crate) use shared_folder::{shared, skip};

/// Asserts that two runs of the same training command wrote the same `config.json`,
/// `model.safetensors` and `checkpoint.safetensors`, byte for byte.
pub fn same_run_files(a: &Path, b: &Path) {
    for f in ["config.json", "model.safetensors", "checkpoint.safetensors"] {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(x == y, "{f} differs between two identical runs");
    }
}

/// The JSON object on the last line of a command's output.
pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s.lines().last().unwrap()).unwrap()
}

/// A canonical WAV file: integer PCM of `bits` (8, 16, 24, 32) or, with `tag` 3, 32-bit float;
/// `frames` holds one value per frame, copied to every channel.
pub fn wav_bytes(rate: u32, channels: u16, bits: u16, tag: u16, frames: &[f32]) -> Vec<u8> {
    let bytes = (bits / 8) as usize;
    let mut data = Vec::new();
    for &v in frames {
        for _ in 0..channels {
            match (tag, bits) {
                (3, 32) => data.extend(v.to_le_bytes()),
                (_, 8) => data.push(((v * 127.0) as i16 + 128) as u8),
                _ => {
                    let q = (v as f64 * ((1u64 << (bits - 1)) - 1) as f64) as i64;
                    data.extend(&q.to_le_bytes()[..bytes]);
                }
            }
        }
    }
    let mut w = Vec::new();
    w.extend(b"RIFF");
    w.extend((36 + data.len() as u32).to_le_bytes());
    w.extend(b"WAVEfmt ");
    w.extend(16u32.to_le_bytes());
    w.extend(tag.to_le_bytes());
    w.extend(channels.to_le_bytes());
    w.extend(rate.to_le_bytes());
    w.extend((rate * channels as u32 * bytes as u32).to_le_bytes());
    w.extend((channels * bytes as u16).to_le_bytes());
    w.extend(bits.to_le_bytes());
    w.extend(b"data");
    w.extend((data.len() as u32).to_le_bytes());
    w.extend(data);
    w
}

/// The samples of an utterance at `rate`: each word a 0.3 s tone (400 Hz "lo", 1600 Hz "hi")
/// with a little noise, 0.1 s of quiet around and between.
fn utterance(words: &[&str], rate: u32, seed: usize) -> Vec<f32> {
    let n = |s: f32| (s * rate as f32) as usize;
    let mut noise = (seed as u32).wrapping_mul(2_654_435_761).wrapping_add(1);
    let mut out = Vec::new();
    let mut quiet = |out: &mut Vec<f32>, len: usize| {
        for _ in 0..len {
            noise = noise.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            out.push(((noise >> 16) as f32 / 65536.0 - 0.5) * 0.01);
        }
    };
    quiet(&mut out, n(0.1));
    for w in words {
        let f = if *w == "lo" { 400.0 } else { 1600.0 };
        for i in 0..n(0.3) {
            let t = i as f32 / rate as f32;
            out.push(0.5 * (std::f32::consts::TAU * f * t).sin());
        }
        quiet(&mut out, n(0.1));
    }
    out
}

/// Formats the recordings rotate through: (rate, channels, bits, format tag).
const FORMATS: [(u32, u16, u16, u16); 5] = [
    (8000, 1, 16, 1),
    (16000, 2, 16, 1),
    (8000, 1, 24, 1),
    (11025, 1, 32, 3),
    (8000, 2, 8, 1),
];

/// Writes `n` made-up recordings (one to three tone "words", `lo` or `hi`, in rotating rates,
/// channel counts and sample formats) and their manifest `name.tsv` into `dir`.
pub fn speech_corpus(dir: &Path, name: &str, n: usize, seed: usize) -> String {
    let mut manifest = String::new();
    for i in 0..n {
        let k = 1 + (i * 7 + seed) % 3;
        let words: Vec<&str> = (0..k)
            .map(|j| {
                if (i + j * 3 + seed).is_multiple_of(2) {
                    "lo"
                } else {
                    "hi"
                }
            })
            .collect();
        let (rate, ch, bits, tag) = FORMATS[(i + seed) % FORMATS.len()];
        let file = format!("{name}-{i}.wav");
        let samples = utterance(&words, rate, i + 100 * seed);
        std::fs::write(dir.join(&file), wav_bytes(rate, ch, bits, tag, &samples)).unwrap();
        manifest += &format!("{file}\t{}\n", words.join(" "));
    }
    let path = dir.join(format!("{name}.tsv"));
    std::fs::write(&path, manifest).unwrap();
    path.to_str().unwrap().to_string()
}

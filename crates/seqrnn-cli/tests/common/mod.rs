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

/// An empty scratch folder named after the test binary, the process and `name`.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "seqrnn-{}-{}-{name}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
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

/// `rel` under the shared folder (`../shared` from the project root: reference fixtures and
/// corpora), or `None` after [`skip`] when it is absent.
pub fn shared(rel: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(rel);
    if path.exists() {
        Some(path)
    } else {
        skip(&format!(
            "{} not found (the shared folder is absent)",
            path.display()
        ));
        None
    }
}

/// Prints `skipping: REASON`; with `SEQRNN_REQUIRE_SHARED=1` (as CI sets it) the test fails with
/// the reason instead, so that a missing shared folder cannot pass as skipped tests.
pub fn skip(reason: &str) {
    if std::env::var("SEQRNN_REQUIRE_SHARED").is_ok_and(|v| !v.is_empty() && v != "0") {
        panic!("{reason}; SEQRNN_REQUIRE_SHARED is set, so the test may not skip");
    }
    eprintln!("skipping: {reason}");
}

/// Asserts that two runs of the same training command wrote the same files: `config.json` and
/// `model.safetensors` byte for byte, and `checkpoint.safetensors` (language-model or supervised)
/// byte for byte once the wall-clock timings it records for the metrics (seconds and throughput)
/// are set equal, which shows that the rest of its bytes (values, metadata, header order)
/// agree.
pub fn same_run_files(a: &Path, b: &Path) {
    for f in ["config.json", "model.safetensors"] {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(x == y, "{f} differs between two identical runs");
    }
    let f = "checkpoint.safetensors";
    let (x, y) = (
        std::fs::read(a.join(f)).unwrap(),
        std::fs::read(b.join(f)).unwrap(),
    );
    let timing = |bytes: &[u8]| {
        let file = seqrnn::io::tensors::TensorFile::from_bytes(bytes).unwrap();
        // The writer gives exactly the bytes on disk for these contents.
        assert!(
            file.to_bytes().unwrap() == bytes,
            "{f} is not in canonical form"
        );
        let mut file = without_timings(file);
        file.seal();
        file.to_bytes().unwrap()
    };
    assert!(
        timing(&x) == timing(&y),
        "{f} differs between two identical runs beyond its recorded timings"
    );
}

/// A checkpoint's contents with its recorded wall-clock timings set to 0: the `seconds` and
/// `tokens_per_s` columns of a language-model checkpoint's metrics and the `seconds` of its
/// partial epoch, the `seconds` and `examples_per_s` of a supervised checkpoint's history.
fn without_timings(mut file: seqrnn::io::tensors::TensorFile) -> seqrnn::io::tensors::TensorFile {
    use serde_json::Value;
    let zero = |v: &mut Value, keys: &[&str]| {
        for k in keys {
            if let Some(x) = v.get_mut(*k) {
                *x = Value::from(0);
            }
        }
    };
    if let Some(m) = file.metadata.get_mut("metrics") {
        *m = m
            .lines()
            .map(|l| {
                let mut f: Vec<&str> = l.split(',').collect();
                f[4] = "0";
                f[5] = "0";
                f.join(",") + "\n"
            })
            .collect();
    }
    if let Some(r) = file.metadata.get_mut("resume") {
        let mut v: Value = serde_json::from_str(r).unwrap();
        if let Some(p) = v.get_mut("partial").filter(|p| !p.is_null()) {
            zero(p, &["seconds"]);
        }
        *r = v.to_string();
    }
    if let Some(s) = file.metadata.get_mut("state") {
        let mut v: Value = serde_json::from_str(s).unwrap();
        if let Some(Value::Array(rows)) = v.get_mut("history") {
            for row in rows {
                zero(row, &["seconds", "examples_per_s"]);
            }
        }
        *s = v.to_string();
    }
    file
}

/// The JSON object on the last line of a command's output.
pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s.lines().last().unwrap()).unwrap()
}

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

#[path = "../../../seqrnn/src/test_shared.rs"]
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

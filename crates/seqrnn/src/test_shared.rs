//! The tests' access to the shared folder (`../shared` from the project root: reference
//! fixtures and corpora), for the unit tests and, through `#[path]`, the integration tests of
//! both crates. A test whose files are absent prints why and skips; with
//! `SEQRNN_REQUIRE_SHARED=1` (as CI sets it) it fails with the same reason instead, so that a
//! missing shared folder cannot pass as skipped tests.

use std::path::PathBuf;

/// `rel` under the shared folder, or `None` after [`skip`] when it is absent.
#[allow(dead_code)]
pub(crate) fn shared(rel: &str) -> Option<PathBuf> {
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

/// Prints `skipping: REASON`, or fails the test with the reason under `SEQRNN_REQUIRE_SHARED=1`.
#[allow(dead_code)]
pub(crate) fn skip(reason: &str) {
    if std::env::var("SEQRNN_REQUIRE_SHARED").is_ok_and(|v| !v.is_empty() && v != "0") {
        panic!("{reason}; SEQRNN_REQUIRE_SHARED is set, so the test may not skip");
    }
    eprintln!("skipping: {reason}");
}

//! The `seqrnn` binary as a user runs it.

use crate::common::*;

#[test]
fn bench_layer_prints_json_figures() {
    for cell in ["lstm", "gru", "gru-reset-before"] {
        let out = seqrnn(&[
            "bench",
            "layer",
            "--cell",
            cell,
            "--hidden",
            "8",
            "--seq",
            "3",
            "--batch",
            "2",
            "--layers",
            "2",
            "--bidirectional",
            "--threads",
            "1",
            "--iterations",
            "2",
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["hidden"], 8);
        assert_eq!(v["directions"], 2);
        assert_eq!(v["threads"], 1);
        assert!(v["train_tokens_per_s"].as_f64().unwrap() > 0.0);
        assert!(v["forward_gflops"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn bench_layer_text_output_names_its_units() {
    let out = seqrnn(&[
        "bench",
        "layer",
        "--hidden",
        "4",
        "--seq",
        "2",
        "--batch",
        "1",
        "--iterations",
        "1",
        "--threads",
        "1",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("forward+backward") && text.contains("tokens/s") && text.contains("GFLOP/s"),
        "{text}"
    );
}

#[test]
fn impossible_sizes_are_refused_with_one_clear_message() {
    for (flag, value, needle) in [
        ("--hidden", "0", "hidden size must be at least 1"),
        ("--layers", "0", "number of layers must be at least 1"),
        ("--batch", "0", "--batch and --seq must be at least 1"),
        ("--threads", "0", "--threads must be at least 1"),
    ] {
        let out = seqrnn(&["bench", "layer", flag, value, "--iterations", "1"]);
        assert!(!out.status.success(), "{flag} {value} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{flag} {value}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = seqrnn(&["bench", "layer", "--cell", "rnn"]);
    assert!(!out.status.success());
}

/// A build without the `mpi` feature started by an MPI launcher (its environment, here without
/// `mpirun`) refuses to train alone on every rank.
#[cfg(not(feature = "mpi"))]
#[test]
fn a_build_without_mpi_refuses_to_run_as_one_rank_of_many() {
    let dir = scratch("no-mpi");
    let out = bin()
        .args(["train", "--data", "/nonexistent", "--out"])
        .arg(dir.join("run"))
        .env("OMPI_COMM_WORLD_RANK", "1")
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .output()
        .unwrap();
    fails(
        &out,
        "launched as rank 1 of 2 by an MPI launcher, but this seqrnn was built without the `mpi` feature",
    );
    assert!(!dir.join("run").exists());
}

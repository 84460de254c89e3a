//! `seqrnn compare` on a tiny corpus, as a user runs it: training mode, `--runs` mode, and
//! the errors.

use std::path::Path;

use crate::common::*;

fn corpus(dir: &Path) {
    word_corpus(
        dir,
        3,
        40,
        "the cat sat on the log\n",
        "the dog sat on the mat\n",
    );
}

const TINY: [&str; 12] = [
    "--layers",
    "1",
    "--bptt",
    "5",
    "--batch",
    "2",
    "--epochs",
    "2",
    "--threads",
    "1",
    "--lr",
    "5",
];

#[test]
fn trains_both_cells_and_reports() {
    let d = scratch("train");
    corpus(&d);
    let out = d.join("report");
    let (data, out_s) = (d.to_str().unwrap(), out.to_str().unwrap());
    let mut args = vec![
        "compare", "--data", data, "--out", out_s, "--hidden", "6,8", "--json",
    ];
    args.extend(TINY);
    let json: serde_json::Value = serde_json::from_str(ok(&seqrnn(&args)).trim()).unwrap();
    let rows = json["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["lstm-6", "gru-6", "lstm-8", "gru-8"]);
    for r in rows {
        assert_eq!(r["epochs"], 2, "{r}");
        assert!(r["eval_value"].as_f64().unwrap().is_finite(), "{r}");
        assert_eq!(r["eval_split"], "test");
        assert!(r["eval_per_s"].as_f64().unwrap() > 0.0);
        assert!(r["train_per_s"].as_f64().unwrap() > 0.0);
    }
    // The same seed and settings: an LSTM has 4/3 the recurrent weights of a GRU.
    assert!(rows[0]["params"].as_u64() > rows[1]["params"].as_u64());
    for f in [
        "report.md",
        "report.html",
        "valid-vs-progress.png",
        "valid-vs-seconds.png",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    for run in ["lstm-6", "gru-8"] {
        let dir = out.join("runs").join(run);
        for f in [
            "config.json",
            "model.safetensors",
            "metrics.csv",
            "summary.json",
        ] {
            assert!(dir.join(f).is_file(), "{run}/{f}");
        }
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| gru-8 | GRU 1×8 |"), "{md}");
    assert!(md.contains("trained one after another"), "{md}");

    // Again into the same folder: refused without --force.
    fails(&seqrnn(&args), "already holds a run");

    // The finished runs again, with --runs: the same figures, read from summary.json.
    let runs = format!(
        "{},{}",
        out.join("runs/lstm-6").display(),
        out.join("runs/gru-6").display()
    );
    let again = d.join("again");
    let j2: serde_json::Value = serde_json::from_str(
        ok(&seqrnn(&[
            "compare",
            "--runs",
            &runs,
            "--out",
            again.to_str().unwrap(),
            "--target",
            "1000",
            "--json",
        ]))
        .trim(),
    )
    .unwrap();
    assert_eq!(j2["rows"][0]["eval_value"], rows[0]["eval_value"]);
    assert_eq!(j2["target"], 1000.0);
    assert_eq!(j2["rows"][1]["epoch_to_target"], 1);

    // A token budget: 4 steps of 5 × 2 tokens, then each run stops.
    let budget = d.join("budget");
    let mut args = vec![
        "compare",
        "--data",
        data,
        "--out",
        budget.to_str().unwrap(),
        "--hidden",
        "4",
        "--max-tokens",
        "35",
        "--json",
    ];
    args.extend(TINY);
    let j3: serde_json::Value = serde_json::from_str(ok(&seqrnn(&args)).trim()).unwrap();
    let m = std::fs::read_to_string(budget.join("runs/gru/metrics.csv")).unwrap();
    assert!(m.trim_end().ends_with(",40"), "{m}");
    assert_eq!(j3["rows"][0]["epochs"], 1);

    // A wall-clock budget, checked at epoch ends: spent after the first epoch of 2.
    let clock = d.join("clock");
    let mut args = vec![
        "compare",
        "--data",
        data,
        "--out",
        clock.to_str().unwrap(),
        "--cells",
        "gru",
        "--hidden",
        "4",
        "--max-seconds",
        "0.000001",
        "--json",
    ];
    args.extend(TINY);
    let j4: serde_json::Value = serde_json::from_str(ok(&seqrnn(&args)).trim()).unwrap();
    assert_eq!(j4["rows"].as_array().unwrap().len(), 1);
    assert_eq!(j4["rows"][0]["epochs"], 1);
    let summary = std::fs::read_to_string(clock.join("runs/gru/summary.json")).unwrap();
    assert!(summary.contains("train_seconds"), "{summary}");
}

#[test]
fn measures_finished_runs_and_refuses_bad_input() {
    let d = scratch("runs");
    corpus(&d);
    let data = d.to_str().unwrap();
    let train = |cell: &str, out: &Path| {
        let mut args = vec![
            "train",
            "--data",
            data,
            "--out",
            out.to_str().unwrap(),
            "--cell",
            cell,
            "--hidden",
            "6",
        ];
        args.extend(TINY);
        ok(&seqrnn(&args));
    };
    let (a, b) = (d.join("a"), d.join("b"));
    train("lstm", &a);
    train("gru", &b);
    let runs = format!("{},{}", a.display(), b.display());
    let out = d.join("report");
    let out_s = out.to_str().unwrap();
    let text = ok(&seqrnn(&[
        "compare",
        "--runs",
        &runs,
        "--data",
        data,
        "--out",
        out_s,
        "--threads",
        "1",
    ]));
    assert!(text.contains("test"), "{text}");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("measured by `seqrnn compare`"), "{md}");
    assert!(!md.contains("| — | — | — |"), "{md}");

    // Missing run folder.
    let missing = format!("{},{}", a.display(), d.join("nope").display());
    fails(
        &seqrnn(&["compare", "--runs", &missing, "--out", out_s]),
        "run directory not found",
    );
    // One run only; training flags with --runs.
    fails(
        &seqrnn(&["compare", "--runs", a.to_str().unwrap(), "--out", out_s]),
        "at least two",
    );
    fails(
        &seqrnn(&["compare", "--runs", &runs, "--out", out_s, "--hidden", "8"]),
        "--hidden",
    );
    // A run of another task in the same report.
    let fc = foreign_run(&d, "forecast", r#"{"format": 1, "task": "forecast"}"#);
    std::fs::write(
        fc.join("metrics.csv"),
        "epoch,lr,train_loss,valid_loss,valid_neg_mse,examples_per_s,seconds\n1,0.1,1,1,-1,10,1\n",
    )
    .unwrap();
    let mixed = format!("{},{}", a.display(), fc.display());
    fails(
        &seqrnn(&["compare", "--runs", &mixed, "--out", out_s]),
        "different tasks",
    );
    // A run of a character corpus next to a word-level one.
    let c = d.join("c");
    let input = d.join("input.txt");
    std::fs::write(&input, "To be, or not to be.\n".repeat(30)).unwrap();
    let mut args = vec![
        "train",
        "--tokens",
        "char",
        "--data",
        input.to_str().unwrap(),
        "--out",
        c.to_str().unwrap(),
        "--hidden",
        "6",
    ];
    args.extend(TINY);
    ok(&seqrnn(&args));
    let mixed = format!("{},{}", a.display(), c.display());
    fails(
        &seqrnn(&["compare", "--runs", &mixed, "--out", out_s]),
        "different data",
    );
    // Unreadable metrics.
    std::fs::write(b.join("metrics.csv"), "not,a,metrics,file\n").unwrap();
    fails(
        &seqrnn(&["compare", "--runs", &runs, "--out", out_s]),
        "metrics.csv",
    );
    // No corpus to train on.
    fails(
        &seqrnn(&["compare", "--out", out_s]),
        "SEQRNN_DATA is not set",
    );
}

//! `seqrnn forecast` on a small synthetic table, as a user runs it.

use std::path::Path;

use crate::common::*;

/// 300 hourly rows of two sines and a level in other units.
fn table(path: &Path) {
    let mut s = String::from("date,a,b,level\n");
    for r in 0..300 {
        let t = r as f64;
        s += &format!(
            "2020-01-{:02} {:02}:00:00,{},{},{}\n",
            1 + r / 24,
            r % 24,
            (t * 0.26).sin(),
            (t * 0.1).cos() * 2.0 + 1.0,
            100.0 + 10.0 * (t * 0.26).sin()
        );
    }
    std::fs::write(path, s).unwrap();
}

fn train_args<'a>(data: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let v = vec![
        "forecast",
        "train",
        "--data",
        data,
        "--out",
        out,
        "--lookback",
        "12",
        "--horizon",
        "4",
        "--hidden",
        "8",
        "--epochs",
        "3",
        "--batch",
        "16",
        "--lr",
        "0.01",
        "--split",
        "0.6,0.2,0.2",
        "--threads",
        "1",
        "--json",
    ];
    with_overrides(v, extra)
}

#[test]
fn train_eval_plot_predict() {
    let d = scratch("ok");
    let data = d.join("t.csv");
    table(&data);
    let (data_s, run) = (data.to_str().unwrap(), d.join("run"));
    let run_s = run.to_str().unwrap();
    let v = json(&ok(&seqrnn(&train_args(data_s, run_s, &[]))));
    for key in [
        "test_mse",
        "test_mae",
        "test_mse_original",
        "persistence_mse",
        "persistence_mae",
        "valid_mse",
    ] {
        assert!(v[key].as_f64().is_some_and(f64::is_finite), "{key}: {v}");
    }
    // The model learns the sines better than repeating the last value.
    assert!(
        v["test_mse"].as_f64() < v["persistence_mse"].as_f64(),
        "{v}"
    );
    for f in [
        "config.json",
        "model.safetensors",
        "checkpoint.safetensors",
        "metrics.csv",
    ] {
        assert!(run.join(f).is_file(), "{f}");
    }
    // eval reproduces the figures and draws the plot.
    let plot = d.join("fc.svg");
    let e = json(&ok(&seqrnn(&[
        "forecast",
        "eval",
        "--model",
        run_s,
        "--data",
        data_s,
        "--plot",
        plot.to_str().unwrap(),
        "--json",
    ])));
    assert!((e["test_mse"].as_f64().unwrap() - v["test_mse"].as_f64().unwrap()).abs() < 1e-9);
    assert!(std::fs::read_to_string(&plot).unwrap().contains("<svg"));
    // predict: the next 4 steps in the original units.
    let fc = d.join("fc.csv");
    ok(&seqrnn(&[
        "forecast",
        "predict",
        "--model",
        run_s,
        "--data",
        data_s,
        "--out",
        fc.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&fc).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "origin,step,a,b,level");
    assert_eq!(lines.len(), 5);
    assert!(
        lines[1].starts_with("2020-01-13 11:00:00,1,"),
        "{}",
        lines[1]
    );
    let level: f64 = lines[1].rsplit(',').next().unwrap().parse().unwrap();
    assert!((80.0..120.0).contains(&level), "{level}");
    // A run is not overwritten by accident.
    fails(&seqrnn(&train_args(data_s, run_s, &[])), "--force");
}

#[test]
fn the_same_run_twice_writes_the_same_files() {
    let d = scratch("twice");
    let data = d.join("t.csv");
    table(&data);
    let runs = [d.join("a"), d.join("b")];
    for run in &runs {
        let args = train_args(
            data.to_str().unwrap(),
            run.to_str().unwrap(),
            &["--epochs", "2", "--max-steps", "12"],
        );
        ok(&seqrnn(&args));
    }
    same_run_files(&runs[0], &runs[1]);
}

#[test]
fn a_run_stopped_in_its_first_epoch_says_it_has_no_weights_yet() {
    let d = scratch("first-epoch");
    let data = d.join("t.csv");
    table(&data);
    let run = d.join("run");
    let (data_s, run_s) = (data.to_str().unwrap(), run.to_str().unwrap());
    ok(&seqrnn(&train_args(data_s, run_s, &["--epochs", "1"])));
    // What Ctrl-C during the first epoch leaves: config.json and a checkpoint, no weights.
    std::fs::remove_file(run.join("model.safetensors")).unwrap();
    let fc = d.join("fc.csv");
    for sub in ["eval", "predict"] {
        let mut args = vec!["forecast", sub, "--model", run_s, "--data", data_s];
        if sub == "predict" {
            args.extend(["--out", fc.to_str().unwrap()]);
        }
        refused_without_weights(&args, &format!("forecast train --resume --out {run_s}"));
    }
}

#[test]
fn modes_and_decoder_head() {
    let d = scratch("modes");
    let data = d.join("t.csv");
    table(&data);
    let data_s = data.to_str().unwrap();
    for (mode, extra) in [
        ("S", vec!["--target", "a"]),
        (
            "MS",
            vec!["--target", "level", "--head", "decoder", "--cell", "gru"],
        ),
    ] {
        let run = d.join(mode);
        let mut args = vec!["--mode", mode];
        args.extend(extra);
        let v = json(&ok(&seqrnn(&train_args(
            data_s,
            run.to_str().unwrap(),
            &args,
        ))));
        assert!(v["test_mse"].as_f64().is_some_and(f64::is_finite), "{v}");
        let cfg = std::fs::read_to_string(run.join("config.json")).unwrap();
        assert!(cfg.contains("\"task\": \"forecast\""), "{cfg}");
    }
}

#[test]
fn bad_input_gives_one_message() {
    let d = scratch("bad");
    let data = d.join("t.csv");
    table(&data);
    let data_s = data.to_str().unwrap();
    let out = d.join("run");
    let out_s = out.to_str().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    };
    let empty = write("empty.csv", b"");
    let text_cell = write("text.csv", b"a,b\n1,2\n3,x\n");
    let utf8 = write("utf8.csv", b"a,b\n1,\xff\n");
    let missing = d.join("missing.csv");
    for (args, needle) in [
        (
            train_args(missing.to_str().unwrap(), out_s, &[]),
            "missing.csv",
        ),
        (train_args(&empty, out_s, &[]), "empty"),
        (
            train_args(&text_cell, out_s, &[]),
            "line 3: column `b` holds `x`",
        ),
        (train_args(&utf8, out_s, &[]), "UTF-8"),
        (
            train_args(data_s, out_s, &["--target", "nope"]),
            "no column `nope`",
        ),
        (train_args(data_s, out_s, &["--mode", "X"]), "unknown mode"),
        (
            train_args(data_s, out_s, &["--hidden", "0"]),
            "hidden size must be at least 1",
        ),
        (
            train_args(data_s, out_s, &["--lookback", "0"]),
            "--lookback",
        ),
        (
            train_args(data_s, out_s, &["--split", "informer"]),
            "needs 14400 rows",
        ),
        (
            train_args(data_s, out_s, &["--split", "1,2"]),
            "split `1,2`",
        ),
        (train_args(data_s, out_s, &["--lr", "0"]), "learning rate"),
        (
            train_args(data_s, out_s, &["--horizon", "100"]),
            "too short",
        ),
    ] {
        refused(&args, needle, &out);
    }
    // eval of something that is not a forecasting run.
    let lm = foreign_run(&d, "lm", r#"{"format":1,"tokens":"word","model":{}}"#);
    fails(
        &seqrnn(&[
            "forecast",
            "eval",
            "--model",
            lm.to_str().unwrap(),
            "--data",
            data_s,
        ]),
        "language-model run",
    );
    let cl = foreign_run(&d, "cl", r#"{"format":1,"task":"classify"}"#);
    fails(
        &seqrnn(&[
            "forecast",
            "eval",
            "--model",
            cl.to_str().unwrap(),
            "--data",
            data_s,
        ]),
        "`classify` run",
    );
    fails(
        &seqrnn(&[
            "forecast",
            "eval",
            "--model",
            d.join("none").to_str().unwrap(),
            "--data",
            data_s,
        ]),
        "not found",
    );
}

#[test]
fn resume_goes_on_exactly_where_the_run_stopped() {
    let d = scratch("resume");
    let data = d.join("t.csv");
    table(&data);
    let data_s = data.to_str().unwrap();
    let (whole, part) = (d.join("whole"), d.join("part"));
    let (whole_s, part_s) = (whole.to_str().unwrap(), part.to_str().unwrap());
    let a = json(&ok(&seqrnn(&train_args(
        data_s,
        whole_s,
        &["--epochs", "4", "--patience", "9"],
    ))));
    ok(&seqrnn(&train_args(
        data_s,
        part_s,
        &["--epochs", "2", "--patience", "9"],
    )));
    // The run's own settings: --horizon and --lookback given here are ignored.
    let b = json(&ok(&seqrnn(&[
        "forecast",
        "train",
        "--data",
        data_s,
        "--out",
        part_s,
        "--resume",
        "--epochs",
        "4",
        "--horizon",
        "9",
        "--lookback",
        "3",
        "--threads",
        "1",
        "--json",
    ])));
    for k in [
        "test_mse",
        "test_mae",
        "valid_mse",
        "best_epoch",
        "steps",
        "epochs",
    ] {
        assert_eq!(a[k], b[k], "{k}: {a} vs {b}");
    }
    let resume = |data: &str, extra: &[&str]| {
        let mut v = vec![
            "forecast",
            "train",
            "--data",
            data,
            "--out",
            part_s,
            "--resume",
            "--threads",
            "1",
        ];
        v.extend_from_slice(extra);
        seqrnn(&v)
    };
    fails(&resume(data_s, &[]), "complete (4 of 4 epochs)");
    // Another table: its training rows standardise differently.
    let other = d.join("other.csv");
    let text = std::fs::read_to_string(&data).unwrap().replace(",1", ",2");
    std::fs::write(&other, text).unwrap();
    fails(
        &resume(other.to_str().unwrap(), &["--epochs", "5"]),
        "not the table this run was trained on",
    );
}

/// `--arch segrnn` as a user runs it: one epoch then a resume to two (the same figures as two
/// epochs at once), eval, predict, and the refusals of sizes the segments do not fit.
#[test]
fn segrnn_trains_resumes_evaluates_and_predicts() {
    let d = scratch("segrnn");
    let data = d.join("t.csv");
    table(&data);
    let data_s = data.to_str().unwrap();
    let (whole, part) = (d.join("whole"), d.join("part"));
    let (whole_s, part_s) = (whole.to_str().unwrap(), part.to_str().unwrap());
    let seg = |extra: &[&'static str]| {
        let mut v = vec![
            "--arch",
            "segrnn",
            "--segment",
            "4",
            "--loss",
            "mae",
            "--dropout",
            "0.1",
            "--patience",
            "9",
        ];
        v.extend_from_slice(extra);
        v
    };
    let a = json(&ok(&seqrnn(&train_args(
        data_s,
        whole_s,
        &seg(&["--epochs", "2"]),
    ))));
    for key in ["test_mse", "test_mae", "valid_mse", "persistence_mse"] {
        assert!(v_finite(&a, key), "{key}: {a}");
    }
    // 300 rows at 0.6,0.2,0.2: test target rows 240..300, windows of 4 steps 60 − 4 + 1.
    assert_eq!(a["test_windows"], 57, "{a}");
    let cfg = std::fs::read_to_string(whole.join("config.json")).unwrap();
    for field in [
        "\"arch\": \"segrnn\"",
        "\"cell\": \"gru\"",
        "\"loss\": \"mae\"",
        "\"segment\": 4",
    ] {
        assert!(cfg.contains(field), "{field}: {cfg}");
    }
    ok(&seqrnn(&train_args(
        data_s,
        part_s,
        &seg(&["--epochs", "1"]),
    )));
    let b = json(&ok(&seqrnn(&[
        "forecast",
        "train",
        "--data",
        data_s,
        "--out",
        part_s,
        "--resume",
        "--epochs",
        "2",
        "--threads",
        "1",
        "--json",
    ])));
    for k in ["test_mse", "test_mae", "valid_mse", "best_epoch", "steps"] {
        assert_eq!(a[k], b[k], "{k}: {a} vs {b}");
    }
    let e = json(&ok(&seqrnn(&[
        "forecast", "eval", "--model", whole_s, "--data", data_s, "--json",
    ])));
    assert!((e["test_mse"].as_f64().unwrap() - a["test_mse"].as_f64().unwrap()).abs() < 1e-9);
    assert_eq!(e["test_windows"], 57);
    let fc = d.join("fc.csv");
    ok(&seqrnn(&[
        "forecast",
        "predict",
        "--model",
        whole_s,
        "--data",
        data_s,
        "--out",
        fc.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&fc).unwrap();
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(text.starts_with("origin,step,a,b,level\n"), "{text}");
    let onnx = d.join("onnx");
    let export = [
        "export",
        "--model",
        whole_s,
        "--out",
        onnx.to_str().unwrap(),
    ];
    fails(&seqrnn(&export), "ONNX export of a SegRNN forecaster");
    let out = d.join("bad");
    let out_s = out.to_str().unwrap();
    for (extra, needle) in [
        (
            seg(&["--lookback", "13"]),
            "lookback (13) to be a multiple of the segment length (4)",
        ),
        (
            seg(&["--horizon", "6"]),
            "horizon (6) to be a multiple of the segment length (4)",
        ),
        (seg(&["--hidden", "7"]), "even hidden size"),
        (
            seg(&["--mode", "MS", "--target", "level"]),
            "as many forecast columns as inputs",
        ),
    ] {
        refused(&train_args(data_s, out_s, &extra), needle, &out);
    }
}

fn v_finite(v: &serde_json::Value, key: &str) -> bool {
    v[key].as_f64().is_some_and(f64::is_finite)
}

/// The Informer split of a generated table of 14,400 rows: `--json` of train and eval count
/// every test window (2880 target rows, 2880 − 4 + 1 windows of 4 steps).
#[test]
fn informer_split_scores_every_test_window() {
    let d = scratch("informer");
    let data = d.join("t.csv");
    let mut s = String::from("a,b\n");
    for r in 0..14_400 {
        s += &format!("{},{}\n", (r as f64 * 0.26).sin(), (r % 24) as f64);
    }
    std::fs::write(&data, s).unwrap();
    let (data_s, run) = (data.to_str().unwrap(), d.join("run"));
    let run_s = run.to_str().unwrap();
    let extra = [
        "--split",
        "informer",
        "--epochs",
        "1",
        "--max-steps",
        "2",
        "--hidden",
        "4",
    ];
    let v = json(&ok(&seqrnn(&train_args(data_s, run_s, &extra))));
    assert_eq!(v["test_windows"], 2877, "{v}");
    for key in ["test_mse", "test_mae", "valid_mse"] {
        assert!(v_finite(&v, key), "{key}: {v}");
    }
    let e = json(&ok(&seqrnn(&[
        "forecast", "eval", "--model", run_s, "--data", data_s, "--json",
    ])));
    assert_eq!(e["test_windows"], 2877, "{e}");
    assert!((e["test_mae"].as_f64().unwrap() - v["test_mae"].as_f64().unwrap()).abs() < 1e-9);
}

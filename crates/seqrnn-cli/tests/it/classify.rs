//! `seqrnn classify` on a tiny sentiment corpus, as a user runs it.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::*;

/// Sentences whose label is decided by one word, of varied lengths.
fn corpus(dir: &Path) {
    let pos = ["good", "great", "fine", "lovely"];
    let neg = ["bad", "awful", "dull", "boring"];
    let fill = ["the", "film", "was", "a", "plot", "and", "very", "quite"];
    let lines = |n: usize, seed: usize| {
        let mut s = String::from("label\tsentence\n");
        for i in 0..n {
            // Pairs of sentences that differ only in the sentiment word.
            let p = i / 2 + seed;
            let k = p % 4;
            let (label, word) = if i % 2 == 0 {
                ("pos", pos[k])
            } else {
                ("neg", neg[k])
            };
            let len = 1 + (p * 5) % 6;
            let words: Vec<&str> = (0..len).map(|j| fill[(p * 3 + j) % 8]).collect();
            let at = p % (len + 1);
            let mut w = words.clone();
            w.insert(at, word);
            s += &format!("{label}\t{}\n", w.join(" "));
        }
        s
    };
    std::fs::write(dir.join("train.tsv"), lines(240, 0)).unwrap();
    std::fs::write(dir.join("dev.tsv"), lines(40, 3)).unwrap();
    std::fs::write(dir.join("test.tsv"), lines(40, 5)).unwrap();
}

fn train_args<'a>(data: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let v = vec![
        "classify",
        "train",
        "--data",
        data,
        "--out",
        out,
        "--hidden",
        "12",
        "--embed",
        "8",
        "--epochs",
        "6",
        "--patience",
        "6",
        "--lr",
        "0.02",
        "--dropout",
        "0",
        "--threads",
        "1",
        "--json",
    ];
    with_overrides(v, extra)
}

#[test]
fn a_run_stopped_in_its_first_epoch_says_it_has_no_weights_yet() {
    let d = scratch("first-epoch");
    corpus(&d);
    let run = d.join("run");
    let (data_s, run_s) = (d.to_str().unwrap(), run.to_str().unwrap());
    ok(&seqrnn(&train_args(data_s, run_s, &["--epochs", "1"])));
    // What Ctrl-C during the first epoch leaves: config.json and a checkpoint, no weights.
    std::fs::remove_file(run.join("model.safetensors")).unwrap();
    refused_without_weights(
        &["classify", "eval", "--model", run_s, "--data", data_s],
        &format!("classify train --resume --out {run_s}"),
    );
}

#[test]
fn train_eval_predict() {
    let d = scratch("ok");
    corpus(&d);
    let run = d.join("run");
    let (data_s, run_s) = (d.to_str().unwrap(), run.to_str().unwrap());
    let v = json(&ok(&seqrnn(&train_args(
        data_s,
        run_s,
        &["--bidirectional", "--pool", "last"],
    ))));
    let acc = v["test_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.9, "{v}");
    assert!(v["dev_accuracy"].as_f64().unwrap() >= 0.9, "{v}");
    assert!(v["test_macro_f1"].as_f64().is_some(), "{v}");
    for f in [
        "config.json",
        "vocab.txt",
        "labels.txt",
        "model.safetensors",
        "metrics.csv",
    ] {
        assert!(run.join(f).is_file(), "{f}");
    }
    let e = json(&ok(&seqrnn(&[
        "classify", "eval", "--model", run_s, "--data", data_s, "--split", "test", "--json",
    ])));
    assert!(
        (e["test_accuracy"].as_f64().unwrap() - acc).abs() < 1e-12,
        "{e}"
    );
    let conf = e["confusion"].as_array().unwrap();
    assert_eq!(conf.len(), 2);
    let text = ok(&seqrnn(&[
        "classify", "eval", "--model", run_s, "--data", data_s,
    ]));
    assert!(
        text.contains("macro-F1") && text.contains("confusion"),
        "{text}"
    );
    // predict: one line out per line in, label and probability.
    let mut child = Command::new(env!("CARGO_BIN_EXE_seqrnn"))
        .args(["classify", "predict", "--model", run_s])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"the film was great\na very dull plot and unseen words\n\n")
        .unwrap();
    let out = ok(&child.wait_with_output().unwrap());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("pos\t"), "{out}");
    assert!(lines[1].starts_with("neg\t"), "{out}");
    let p: f64 = lines[0].split('\t').nth(1).unwrap().parse().unwrap();
    assert!((0.5..=1.0).contains(&p));
    fails(&seqrnn(&train_args(data_s, run_s, &[])), "--force");
}

#[test]
fn every_cell_and_pooling_trains() {
    let d = scratch("variants");
    corpus(&d);
    for (i, extra) in [
        vec!["--cell", "gru", "--pool", "mean"],
        vec!["--pool", "max", "--layers", "2", "--bidirectional"],
        vec![
            "--valid-every",
            "4",
            "--word-dropout",
            "0.1",
            "--ema",
            "0.9",
            "--weight-decay",
            "0.01",
        ],
    ]
    .into_iter()
    .enumerate()
    {
        let run = d.join(format!("run{i}"));
        let mut args = extra;
        args.extend(["--min-freq", "2"]);
        let v = json(&ok(&seqrnn(&train_args(
            d.to_str().unwrap(),
            run.to_str().unwrap(),
            &args,
        ))));
        assert!(v["dev_accuracy"].as_f64().is_some(), "{v}");
        let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        let inside = metrics.lines().filter(|l| l.ends_with(",0")).count();
        if i == 2 {
            // 240 sentences in batches of 32: 8 steps an epoch, validated after steps 4 and 8.
            assert_eq!(inside, 6, "{metrics}");
            assert!(v["best_step"].as_u64().unwrap() >= 4, "{v}");
        } else {
            assert_eq!(inside, 0, "{metrics}");
        }
    }
}

#[test]
fn bad_input_gives_one_message() {
    let d = scratch("bad");
    corpus(&d);
    let data_s = d.to_str().unwrap();
    let out = d.join("run");
    let out_s = out.to_str().unwrap();
    let broken = |name: &str, file: &str, bytes: &[u8]| {
        copy_with(&d, name, &["train.tsv", "dev.tsv", "test.tsv"], file, bytes)
    };
    let unknown = broken("unknown", "dev.tsv", b"label\tsentence\nmeh\tgood film\n");
    let empty = broken("empty", "train.tsv", b"");
    let utf8 = broken(
        "utf8",
        "train.tsv",
        b"label\tsentence\npos\tgood\nneg\t\xfe\n",
    );
    let one = broken("one", "train.tsv", b"label\tsentence\npos\tgood\n");
    std::fs::write(d.join("one/dev.tsv"), b"label\tsentence\npos\tgood\n").unwrap();
    let missing = d.join("missing");
    for (args, needle) in [
        (
            train_args(missing.to_str().unwrap(), out_s, &[]),
            "train.tsv",
        ),
        (train_args(&unknown, out_s, &[]), "unknown label `meh`"),
        (train_args(&empty, out_s, &[]), "empty"),
        (
            train_args(&utf8, out_s, &[]),
            "train.tsv: line 3 is not valid UTF-8",
        ),
        (train_args(&one, out_s, &[]), "at least 2 labels"),
        (
            train_args(data_s, out_s, &["--hidden", "0"]),
            "hidden size must be at least 1",
        ),
        (
            train_args(data_s, out_s, &["--min-freq", "0"]),
            "--min-freq",
        ),
        (train_args(data_s, out_s, &["--dropout", "1.5"]), "dropout"),
        (train_args(data_s, out_s, &["--epochs", "0"]), "epochs"),
        (
            train_args(data_s, out_s, &["--word-dropout", "1"]),
            "word dropout must be in [0, 1)",
        ),
        (
            train_args(data_s, out_s, &["--ema", "1.5"]),
            "EMA momentum must be in (0, 1)",
        ),
    ] {
        refused(&args, needle, &out);
    }
    // A forecasting run is not a classifier.
    let fc = foreign_run(&d, "fc", r#"{"format":1,"task":"forecast"}"#);
    fails(
        &seqrnn(&[
            "classify",
            "eval",
            "--model",
            fc.to_str().unwrap(),
            "--data",
            data_s,
        ]),
        "`forecast` run",
    );
}

#[test]
fn resume_goes_on_exactly_where_the_run_stopped() {
    let d = scratch("resume");
    corpus(&d);
    let data_s = d.to_str().unwrap();
    let whole = d.join("whole");
    let part = d.join("part");
    let (whole_s, part_s) = (whole.to_str().unwrap(), part.to_str().unwrap());
    let extra = ["--epochs", "4", "--valid-every", "3", "--dropout", "0.3"];
    let a = json(&ok(&seqrnn(&train_args(data_s, whole_s, &extra))));
    let mut first = extra.to_vec();
    first[1] = "2";
    ok(&seqrnn(&train_args(data_s, part_s, &first)));
    // Other flags are the run's own on resume: a different --hidden is ignored.
    let b = json(&ok(&seqrnn(&[
        "classify",
        "train",
        "--data",
        data_s,
        "--out",
        part_s,
        "--resume",
        "--epochs",
        "4",
        "--hidden",
        "99",
        "--threads",
        "1",
        "--json",
    ])));
    for k in [
        "test_accuracy",
        "dev_accuracy",
        "best_step",
        "steps",
        "epochs",
    ] {
        assert_eq!(a[k], b[k], "{k}: {a} vs {b}");
    }
    let weights = |dir: &Path| {
        let f = seqrnn::io::tensors::TensorFile::load(&dir.join("model.safetensors")).unwrap();
        f.tensors
            .into_iter()
            .map(|(k, t)| (k, t.data.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()))
            .collect::<Vec<_>>()
    };
    assert!(weights(&whole) == weights(&part), "best weights differ");
    // metrics.csv: the same rows, timing columns aside.
    let rows = |dir: &Path| -> Vec<String> {
        std::fs::read_to_string(dir.join("metrics.csv"))
            .unwrap()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                format!("{},{},{},{},{}", f[0], f[2], f[4], f[7], f[8])
            })
            .collect()
    };
    assert_eq!(rows(&whole), rows(&part));
    let resume = |out: &str, data: &str, extra: &[&str]| {
        let mut v = vec![
            "classify",
            "train",
            "--data",
            data,
            "--out",
            out,
            "--resume",
            "--threads",
            "1",
        ];
        v.extend_from_slice(extra);
        seqrnn(&v)
    };
    fails(&resume(part_s, data_s, &[]), "complete (4 of 4 epochs)");
    fails(
        &resume(d.join("none").to_str().unwrap(), data_s, &[]),
        "no checkpoint",
    );
    fails(&resume(part_s, data_s, &["--force"]), "cannot be used with");
    let other = copy_with(
        &d,
        "other",
        &["dev.tsv", "test.tsv"],
        "train.tsv",
        b"label\tsentence\npos\tnice\nneg\tugly\n",
    );
    fails(
        &resume(part_s, &other, &["--epochs", "5"]),
        "not the data this run was trained on",
    );
    // The refusals left the run as it was.
    assert!(
        weights(&whole) == weights(&part),
        "a refusal changed the run"
    );
}

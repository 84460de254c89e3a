//! `seqrnn classify --train/--test/--input FILE.ts` on a tiny generated two-channel series set
//! of varied lengths, as a user runs it.

use std::path::Path;

use crate::common::*;

/// A `.ts` file of `n` cases: `up` cases rise, `down` cases fall, over 6 to 14 steps, on two
/// channels (the second a scaled, shifted copy of the first); `labels` writes the label column.
fn ts_file(path: &Path, n: usize, seed: usize, labels: bool) {
    let mut s = String::from(
        "# generated\n@problemName Ramps\n@timeStamps false\n@missing false\n@univariate false\n\
         @dimensions 2\n@equalLength false\n@classLabel true up down\n@data\n",
    );
    for i in 0..n {
        let up = i % 2 == 0;
        let len = 6 + (i * 7 + seed) % 9;
        let noise = |t: usize| (((i * 31 + t * 17 + seed) % 13) as f32 - 6.0) * 0.02;
        let v: Vec<f32> = (0..len)
            .map(|t| {
                let r = t as f32 / len as f32;
                (if up { r } else { 1.0 - r }) + noise(t)
            })
            .collect();
        let ch = |scale: f32, shift: f32| {
            v.iter()
                .map(|x| format!("{}", x * scale + shift))
                .collect::<Vec<_>>()
                .join(",")
        };
        s += &format!("{}:{}", ch(1.0, 0.0), ch(50.0, 1000.0));
        if labels {
            s += if up { ":up" } else { ":down" };
        }
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}

/// A run's `config.json`.
fn config_of(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap()
}

fn train_args<'a>(train: &'a str, test: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let v = vec![
        "classify",
        "train",
        "--train",
        train,
        "--test",
        test,
        "--out",
        out,
        "--hidden",
        "8",
        "--epochs",
        "12",
        "--patience",
        "12",
        "--lr",
        "0.02",
        "--batch",
        "8",
        "--dropout",
        "0",
        "--ema",
        "0",
        "--threads",
        "1",
        "--json",
    ];
    with_overrides(v, extra)
}

#[test]
fn trains_evaluates_and_predicts_series() {
    let d = scratch("ramps");
    let (train, test, bare) = (d.join("train.ts"), d.join("test.ts"), d.join("bare.ts"));
    ts_file(&train, 60, 0, true);
    ts_file(&test, 20, 5, true);
    ts_file(&bare, 6, 9, false);
    let run = d.join("run");
    let (train_s, test_s, run_s) = (
        train.to_str().unwrap(),
        test.to_str().unwrap(),
        run.to_str().unwrap(),
    );
    let out = ok(&seqrnn(&train_args(
        train_s,
        test_s,
        run_s,
        &["--bidirectional"],
    )));
    let summary = json(out.lines().last().unwrap());
    let acc = summary["test_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.9, "{summary}");
    assert_eq!(summary["labels"], serde_json::json!(["up", "down"]));
    for f in [
        "config.json",
        "metrics.csv",
        "summary.json",
        "labels.txt",
        "model.safetensors",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    assert!(!run.join("vocab.txt").exists());
    let config = config_of(&run);
    assert_eq!(config["model"]["channels"], 2);
    let series = &config["series"];
    assert_eq!(series["fill"], "refuse");
    assert_eq!(series["valid_fraction"], 0.2);
    // The second channel is 50× the first plus 1000: so are its statistics.
    let (m0, m1) = (
        series["stats"]["mean"][0].as_f64().unwrap(),
        series["stats"]["mean"][1].as_f64().unwrap(),
    );
    assert!((m1 - (50.0 * m0 + 1000.0)).abs() < 1e-2, "{series}");
    // eval scores the test file with the same figure.
    let eval = ok(&seqrnn(&[
        "classify", "eval", "--model", run_s, "--test", test_s, "--json",
    ]));
    let eval = json(&eval);
    assert_eq!(eval["test_accuracy"].as_f64().unwrap(), acc);
    assert_eq!(eval["examples"], 20);
    // predict: one label a line, with or without the label column.
    let labelled = ok(&seqrnn(&[
        "classify", "predict", "--model", run_s, "--input", test_s,
    ]));
    assert_eq!(labelled.lines().count(), 20);
    let hits = labelled
        .lines()
        .enumerate()
        .filter(|(i, l)| *l == if i % 2 == 0 { "up" } else { "down" })
        .count();
    assert_eq!(hits as f64 / 20.0, acc);
    let bare_s = bare.to_str().unwrap();
    let predicted = ok(&seqrnn(&[
        "classify", "predict", "--model", run_s, "--input", bare_s,
    ]));
    assert_eq!(predicted.lines().count(), 6);
    assert!(
        predicted.lines().all(|l| l == "up" || l == "down"),
        "{predicted}"
    );
    // The library opens the run like any other.
    let loaded = seqrnn::load(&run).unwrap();
    let clf = loaded.as_classify().unwrap();
    assert_eq!(clf.series().unwrap().channels(), 2);
    assert!(clf.predict(&["some text"]).is_err());
    // Text in, or text flags, on a series run are refused; so is a text run's --data.
    fails(
        &seqrnn(&["classify", "predict", "--model", run_s]),
        "classifies series: give the cases with --input FILE.ts",
    );
    fails(
        &seqrnn(&[
            "classify",
            "eval",
            "--model",
            run_s,
            "--data",
            d.to_str().unwrap(),
        ]),
        "",
    );
}

#[test]
fn resume_goes_on_with_the_runs_split_and_statistics() {
    let d = scratch("resume");
    let (train, test) = (d.join("train.ts"), d.join("test.ts"));
    ts_file(&train, 40, 1, true);
    ts_file(&test, 10, 2, true);
    let run = d.join("run");
    let (train_s, test_s, run_s) = (
        train.to_str().unwrap(),
        test.to_str().unwrap(),
        run.to_str().unwrap(),
    );
    ok(&seqrnn(&train_args(
        train_s,
        test_s,
        run_s,
        &["--epochs", "2"],
    )));
    let resume = ["--resume", "--epochs", "4", "--valid-fraction", "0.5"];
    let out = ok(&seqrnn(&train_args(train_s, test_s, run_s, &resume)));
    let summary = json(out.lines().last().unwrap());
    assert_eq!(summary["epochs"], 4);
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 5, "{metrics}");
    // The run's own split stays (its fraction, not the flag's).
    let config = config_of(&run);
    assert_eq!(config["series"]["valid_fraction"], 0.2);
    // Other data is refused.
    let other = d.join("other.ts");
    ts_file(&other, 40, 7, true);
    let other_s = other.to_str().unwrap();
    let resume = ["--resume", "--epochs", "6"];
    fails(
        &seqrnn(&train_args(other_s, test_s, run_s, &resume)),
        "is not the data this run was trained on",
    );
}

#[test]
fn bad_files_and_flags_are_refused_before_a_run_starts() {
    let d = scratch("refusals");
    let good = d.join("train.ts");
    ts_file(&good, 20, 0, true);
    let good_s = good.to_str().unwrap();
    let out = d.join("run");
    let out_s = out.to_str().unwrap();
    let bad = d.join("bad.ts");
    std::fs::write(
        &bad,
        "@dimensions 1\n@classLabel true a b\n@data\n1,2,3:a\n1,?,3:b\n2,3:a\n3,4:b\n",
    )
    .unwrap();
    let bad_s = bad.to_str().unwrap();
    let err = refused(
        &train_args(bad_s, good_s, out_s, &[]),
        "bad.ts: line 5: missing value `?` (dimension 1, step 2)",
        &out,
    );
    assert!(err.contains("could not read the series"), "{err}");
    // With a fill the same file trains.
    let filled = train_args(
        bad_s,
        good_s,
        out_s,
        &["--fill-missing", "previous", "--epochs", "1"],
    );
    // The test file has two dimensions, the training file one: it is refused.
    refused(
        &filled,
        "train.ts: the header declares 2 dimension(s) but the model reads 1",
        &out,
    );
    refused(
        &[
            "classify", "train", "--data", ".", "--train", good_s, "--out", out_s,
        ],
        "cannot be used with",
        &out,
    );
    refused(
        &train_args(good_s, good_s, out_s, &["--embed", "4"]),
        "cannot be used with",
        &out,
    );
    refused(
        &train_args(good_s, good_s, out_s, &["--valid-fraction", "1.5"]),
        "validation fraction must be between 0 and 1",
        &out,
    );
}

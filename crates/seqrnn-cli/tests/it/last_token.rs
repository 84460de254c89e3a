//! `seqrnn train --objective last-token` and `--preset keras` on a tiny corpus, as a user runs
//! them: training, evaluation, exact resume, and every refused input.

use std::path::Path;

use crate::common::*;

/// A tiny word corpus in the plain layout.
fn corpus(dir: &Path) {
    word_corpus(
        dir,
        4,
        24,
        "the cat sat on the log\na dog met the cat\n",
        "the dog sat on the mat\na bird saw the cat\n",
    );
}

/// A quick last-token training command with `extra` flags appended (replacing the same flags).
fn train<'a>(data: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    with_overrides(
        vec![
            "train",
            "--json",
            "--data",
            data,
            "--out",
            out,
            "--objective",
            "last-token",
            "--window",
            "4",
            "--hidden",
            "8",
            "--embed",
            "6",
            "--batch",
            "16",
            "--dropout",
            "0.25",
            "--epochs",
            "1",
            "--threads",
            "1",
        ],
        extra,
    )
}

#[test]
fn trains_evaluates_and_resumes_exactly() {
    let d = scratch("round");
    corpus(&d);
    let data = d.to_str().unwrap();
    let (one, two) = (d.join("one"), d.join("two"));
    let (one_s, two_s) = (one.to_str().unwrap(), two.to_str().unwrap());
    // 1 + 1 epochs, resumed, and 2 epochs in one go write the same files.
    let v = json(&ok(&seqrnn(&train(data, one_s, &[]))));
    let first = v["valid_ppl"].as_f64().unwrap();
    assert!(first.is_finite() && first > 1.0, "{v}");
    assert!(v["test_ppl"].as_f64().unwrap().is_finite());
    ok(&seqrnn(&train(data, one_s, &["--epochs", "2", "--resume"])));
    let v2 = json(&ok(&seqrnn(&train(data, two_s, &["--epochs", "2"]))));
    same_run_files(&one, &two);
    for f in ["vocab.txt", "metrics.csv", "curve.svg"] {
        assert!(two.join(f).is_file(), "{f} missing");
    }
    let config = std::fs::read_to_string(two.join("config.json")).unwrap();
    assert!(config.contains("\"task\": \"last-token\""), "{config}");
    assert!(config.contains("\"window\": 4"), "{config}");
    // The training loss falls and `eval` reproduces the best validation perplexity.
    let metrics = std::fs::read_to_string(two.join("metrics.csv")).unwrap();
    let rows: Vec<Vec<f64>> = metrics
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|x| x.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 2, "{metrics}");
    assert!(rows[1][2] < rows[0][2], "{metrics}");
    let best = v2["valid_ppl"].as_f64().unwrap();
    let e = json(&ok(&seqrnn(&[
        "eval", "--model", two_s, "--data", data, "--split", "valid", "--json",
    ])));
    assert!(
        (e["valid_ppl"].as_f64().unwrap() - best).abs() < 1e-9 * best,
        "{e}"
    );
    // Every token of the split but the first is predicted: 6 + 1 and 5 + 1 words with <eos>.
    assert_eq!(e["tokens"], 12);
    let t = json(&ok(&seqrnn(&[
        "eval", "--model", two_s, "--data", data, "--json",
    ])));
    assert!((t["test_ppl"].as_f64().unwrap() - v2["test_ppl"].as_f64().unwrap()).abs() < 1e-9);
    // The model generates by sliding its window: the same seed gives the same words.
    let generate = || {
        ok(&seqrnn(&[
            "generate", "--model", two_s, "--prompt", "the cat", "--tokens", "12", "--seed", "3",
        ]))
    };
    let text = generate();
    assert!(
        text.starts_with("the cat") && text.len() > "the cat".len(),
        "{text}"
    );
    assert_eq!(text, generate());
}

#[test]
fn the_keras_preset_selects_the_objective_and_validates_inside_epochs() {
    let d = scratch("keras");
    corpus(&d);
    let data = d.to_str().unwrap();
    let run = d.join("run");
    let args = [
        "train",
        "--json",
        "--data",
        data,
        "--out",
        run.to_str().unwrap(),
        "--preset",
        "keras",
        "--hidden",
        "8",
        "--window",
        "3",
        "--batch",
        "8",
        "--epochs",
        "1",
        "--valid-every",
        "5",
        "--threads",
        "1",
        "--cell",
        "gru",
    ];
    ok(&seqrnn(&args));
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    for want in ["\"last-token\"", "\"gru\"", "\"dropout\": 0.2", "\"adam\""] {
        assert!(config.contains(want), "{want} not in {config}");
    }
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    // 24 lines hold 180 tokens: 177 windows of 3, 23 steps of 8; validations every 5 steps and
    // at the epoch's end.
    let steps: Vec<&str> = metrics
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(7).unwrap())
        .collect();
    assert_eq!(steps, ["5", "10", "15", "20", "23"], "{metrics}");
}

#[test]
fn bad_input_gets_one_clear_message() {
    let d = scratch("bad");
    corpus(&d);
    let data = d.to_str().unwrap();
    let out = d.join("run");
    let out_s = out.to_str().unwrap();
    for (extra, needle) in [
        (&["--window", "0"][..], "at least 1 token"),
        (
            &["--window", "200"],
            "more than 200 tokens in the training split",
        ),
        (
            &["--tie"],
            "--tie does not apply to the last-token objective",
        ),
        (&["--variational"], "--variational does not apply"),
        (&["--bptt", "5"], "--bptt does not apply"),
        (&["--init", "0.1"], "--init does not apply"),
        (&["--valid-every", "0"], "--valid-every must be at least 1"),
        (&["--dropout", "1"], "dropout must be in [0, 1)"),
        (&["--batch", "0"], "batch size must be at least 1"),
        (&["--layers", "0"], "number of layers"),
        (
            &["--data", "/nonexistent/corpus"],
            "could not load the corpus",
        ),
    ] {
        let err = fails(&seqrnn(&train(data, out_s, extra)), needle);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!out.exists(), "{extra:?} left a run folder");
    }
    // The last-token flags need the objective.
    let plain = ["train", "--data", data, "--out", out_s, "--threads", "1"];
    for flag in ["--window", "--valid-every"] {
        let mut args = plain.to_vec();
        args.extend([flag, "3"]);
        fails(&seqrnn(&args), "belongs to the last-token objective");
    }
    fails(
        &seqrnn(&[
            "compare", "--data", data, "--preset", "keras", "--out", out_s,
        ]),
        "seqrnn compare does not support",
    );
    // A resumed run keeps its window.
    ok(&seqrnn(&train(data, out_s, &[])));
    fails(
        &seqrnn(&train(
            data,
            out_s,
            &["--window", "5", "--resume", "--epochs", "2"],
        )),
        "keeps its window",
    );
}

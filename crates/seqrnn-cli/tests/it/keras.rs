//! `seqrnn import --keras` on the Keras fixtures of `crates/seqrnn/tests/fixtures/keras` (made
//! by `tools/peers/keras_fixtures.py`): each kind of model becomes a run that the other commands
//! take, and every refused input gets one message naming why.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::*;

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../seqrnn/tests/fixtures/keras");
    p.join(name).to_str().unwrap().to_string()
}

/// A word corpus whose vocabulary, built by `seqrnn train`, is `w1 … w22 <eos> <unk>`: the
/// 24 rows of the fixtures' language models. Writes that vocabulary to `vocab.txt`.
fn corpus(d: &Path) -> String {
    let first: Vec<String> = (1..=22).map(|i| format!("w{i}")).collect();
    let mut train = first.join(" ") + "\n";
    for i in 0..60 {
        let line: Vec<String> = (0..8)
            .map(|j| format!("w{}", 1 + (i * 5 + j * 3) % 22))
            .collect();
        train += &(line.join(" ") + "\n");
    }
    std::fs::write(d.join("train.txt"), train).unwrap();
    std::fs::write(d.join("valid.txt"), "w1 w6 w11 w16\nw3 w8 w13\n").unwrap();
    std::fs::write(d.join("test.txt"), "w2 w7 w12 w17\nw4 w9\n").unwrap();
    let mut vocab = first.join("\n");
    vocab += "\n<eos>\n<unk>\n";
    let path = d.join("vocab.txt");
    std::fs::write(&path, vocab).unwrap();
    path.to_str().unwrap().to_string()
}

fn import(model: &str, vocab: &str, out: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["import", "--keras", model, "--vocab", vocab, "--out", out];
    args.extend(extra);
    seqrnn(&args)
}

fn perplexity(run: &str, data: &str) -> f64 {
    let v = json(&ok(&seqrnn(&[
        "eval", "--model", run, "--data", data, "--split", "valid", "--json",
    ])));
    let ppl = v["valid_ppl"]
        .as_f64()
        .or(v["ppl"].as_f64())
        .unwrap_or(f64::NAN);
    assert!(ppl.is_finite() && ppl > 1.0, "{v}");
    ppl
}

fn generates(run: &str) {
    let g = ok(&seqrnn(&[
        "generate", "--model", run, "--prompt", "w3 w8", "--tokens", "4", "--greedy",
    ]));
    assert_eq!(g.split_whitespace().count(), 6, "{g}");
}

#[test]
fn an_every_step_model_evaluates_generates_and_trains_on() {
    let d = scratch("every-step");
    let vocab = corpus(&d);
    let (data, run) = (d.to_str().unwrap(), d.join("run"));
    let run_s = run.to_str().unwrap();
    let out = ok(&import(&fixture("lm_lstm2.keras"), &vocab, run_s, &[]));
    assert!(out.contains("every-step language model, lstm 2×8"), "{out}");
    perplexity(run_s, data);
    generates(run_s);
    // Training goes on from the imported weights.
    let weights = run.join("model.safetensors");
    let more = d.join("more");
    let v = json(&ok(&seqrnn(&[
        "train",
        "--json",
        "--data",
        data,
        "--out",
        more.to_str().unwrap(),
        "--cell",
        "lstm",
        "--hidden",
        "8",
        "--layers",
        "2",
        "--embed",
        "8",
        "--bptt",
        "5",
        "--batch",
        "2",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--init-from",
        weights.to_str().unwrap(),
    ])));
    assert!(v["valid_ppl"].as_f64().unwrap().is_finite(), "{v}");
    // The last layer of its own width, GRUs both ways.
    for (name, needle) in [
        (
            "lm_last_width.keras",
            "lstm 2×8 (vocabulary 24, embedding 8, last layer 5)",
        ),
        ("lm_gru_reset_after.keras", "gru 1×8"),
        ("lm_gru_reset_before.keras", "gru-reset-before 2×7"),
    ] {
        let r = d.join(name);
        let out = ok(&import(&fixture(name), &vocab, r.to_str().unwrap(), &[]));
        assert!(out.contains(needle), "{out}");
        perplexity(r.to_str().unwrap(), data);
    }
    // An existing run is replaced only with --force.
    fails(
        &import(&fixture("lm_lstm2.keras"), &vocab, run_s, &[]),
        "--force",
    );
    ok(&import(
        &fixture("lm_lstm2.keras"),
        &vocab,
        run_s,
        &["--force"],
    ));
}

#[test]
fn a_last_token_model_evaluates_generates_trains_on_and_exports() {
    let d = scratch("last-token");
    let vocab = corpus(&d);
    let run = d.join("run");
    let run_s = run.to_str().unwrap();
    let out = ok(&import(
        &fixture("last_token_lstm2.keras"),
        &vocab,
        run_s,
        &[],
    ));
    assert!(out.contains("last-token language model, lstm 2×8"), "{out}");
    assert!(out.contains("window 6"), "{out}");
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    assert!(config.contains("\"task\": \"last-token\""), "{config}");
    perplexity(run_s, d.to_str().unwrap());
    generates(run_s);
    // Training goes on from the imported weights, with the model's own sizes and window.
    let weights = run.join("model.safetensors");
    let more = d.join("more");
    let args = "train --json --objective last-token --window 6 --cell lstm --hidden 8 --layers 2 \
                --embed 8 --batch 4 --epochs 1 --threads 1";
    let mut args: Vec<&str> = args.split_whitespace().collect();
    let (data, more_s) = (d.to_str().unwrap(), more.to_str().unwrap());
    args.extend([
        "--data",
        data,
        "--out",
        more_s,
        "--init-from",
        weights.to_str().unwrap(),
    ]);
    let v = json(&ok(&seqrnn(&args)));
    assert!(v["valid_ppl"].as_f64().unwrap().is_finite(), "{v}");
    // And it exports to ONNX like any last-token run.
    let onnx = d.join("onnx");
    let out = ok(&seqrnn(&[
        "export",
        "--model",
        run_s,
        "--out",
        onnx.to_str().unwrap(),
    ]));
    assert!(out.contains("model.onnx"), "{out}");
}

#[test]
fn a_classifier_evaluates_predicts_and_trains_on() {
    let d = scratch("classifier");
    let run = d.join("run");
    let run_s = run.to_str().unwrap();
    let labels = fixture("classifier_labels.txt");
    let extra = ["--labels", labels.as_str()];
    let vocab = fixture("classifier_vocab.txt");
    let out = ok(&import(
        &fixture("classifier_lstm.keras"),
        &vocab,
        run_s,
        &extra,
    ));
    assert!(out.contains("classifier, lstm 1×8"), "{out}");
    let tsv = "label\tsentence\nred\tw3 w6 w9\ngreen\tw4 w7 w4\nblue\tw5 w8 w5 w11\n";
    for split in ["train", "dev", "test"] {
        std::fs::write(d.join(format!("{split}.tsv")), tsv).unwrap();
    }
    let e = json(&ok(&seqrnn(&[
        "classify",
        "eval",
        "--model",
        run_s,
        "--data",
        d.to_str().unwrap(),
        "--split",
        "test",
        "--json",
    ])));
    assert!(e["test_accuracy"].as_f64().is_some(), "{e}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_seqrnn"))
        .args(["classify", "predict", "--model", run_s])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"w3 w6 w9\nw4 w7 unseen\n").unwrap();
    drop(stdin);
    let out = ok(&child.wait_with_output().unwrap());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for line in lines {
        let label = line.split('\t').next().unwrap();
        assert!(["red", "green", "blue"].contains(&label), "{out}");
    }
    // Training goes on from the imported run: its model, weights, vocabulary and labels.
    let more = d.join("more");
    let data = d.to_str().unwrap();
    let args = [
        "classify",
        "train",
        "--data",
        data,
        "--out",
        more.to_str().unwrap(),
    ];
    let flags = [
        "--init-from",
        run_s,
        "--epochs",
        "1",
        "--batch",
        "2",
        "--json",
    ];
    let v = json(&ok(&seqrnn(&[&args[..], &flags[..]].concat())));
    assert!(v["dev_accuracy"].as_f64().is_some(), "{v}");
    let vocab_of = |run: &Path| std::fs::read_to_string(run.join("vocab.txt")).unwrap();
    assert_eq!(vocab_of(&more), vocab_of(&run));
    let with_resume = [&args[..], &flags[..], &["--resume"][..]].concat();
    fails(&seqrnn(&with_resume), "cannot be used with");
}

#[test]
fn refused_inputs_get_one_message() {
    let d = scratch("refused");
    let vocab = corpus(&d);
    let out = d.join("out");
    let out_s = out.to_str().unwrap();
    let keras = |name: &str| fixture(name);
    let args = |model: &str, vocab: &str| {
        vec!["import", "--keras", model, "--vocab", vocab, "--out", out_s]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let refuse = |args: Vec<String>, needle: &str| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&a, needle, &out)
    };
    refuse(
        args(&keras("unsupported_conv1d.keras"), &vocab),
        "layer `conv` (Conv1D)",
    );
    refuse(
        args(&keras("unsupported_mixed_cells.keras"), &vocab),
        "differ in cell",
    );
    // A vocabulary that does not fit the embedding.
    std::fs::write(d.join("short.txt"), "a\nb\n").unwrap();
    let short = d.join("short.txt");
    refuse(
        args(&keras("lm_lstm2.keras"), short.to_str().unwrap()),
        "holds 2 tokens but the Keras Embedding has 24 rows",
    );
    // Broken archives: cut short, not a zip, no weights.
    let whole = std::fs::read(keras("lm_lstm2.keras")).unwrap();
    std::fs::write(d.join("cut.keras"), &whole[..whole.len() / 2]).unwrap();
    std::fs::write(d.join("text.keras"), "hello\n").unwrap();
    for name in ["cut.keras", "text.keras"] {
        let path = d.join(name);
        refuse(args(path.to_str().unwrap(), &vocab), "not a .keras archive");
    }
    refuse(
        args(&keras("no_weights.keras"), &vocab),
        "no model.weights.h5",
    );
    refuse(
        args(d.join("missing.keras").to_str().unwrap(), &vocab),
        "missing.keras",
    );
    // A classifier needs labels that fit; a language model is no classifier.
    let labels = keras("classifier_labels.txt");
    let mut lm = args(&keras("lm_lstm2.keras"), &vocab);
    lm.extend(["--labels".to_string(), labels.clone()]);
    refuse(lm, "return_sequences=True");
    // --torch and --keras together, neither, --labels with --torch.
    let both = ["import", "--torch", "a.safetensors", "--keras", "b.keras"];
    refused(
        &[&both[..], &["--vocab", &vocab, "--out", out_s]].concat(),
        "cannot be used with",
        &out,
    );
    refused(
        &["import", "--vocab", &vocab, "--out", out_s],
        "--torch",
        &out,
    );
    refused(
        &[
            "import",
            "--torch",
            "a.safetensors",
            "--labels",
            &labels,
            "--vocab",
            &vocab,
            "--out",
            out_s,
        ],
        "cannot be used with",
        &out,
    );
}

//! The language-model commands on a tiny corpus, as a user runs them.

use std::path::Path;
use std::process::Command;

use crate::common::*;

/// A tiny word corpus in the plain layout.
fn corpus(dir: &Path) {
    word_corpus(
        dir,
        5,
        60,
        "the cat sat on the log\na dog met the cat\n",
        "the dog sat on the mat\na bird saw the cat\n",
    );
}

fn small_train<'a>(data: &'a str, out: &'a str) -> Vec<&'a str> {
    small_train_with(data, out, &[])
}

/// A quick training command; `overrides` replace (or add) flag values.
/// `seqrnn eval`'s validation loss of `run` on the corpus `data`.
fn valid_loss(data: &str, run: &str) -> f64 {
    let out = ok(&seqrnn(&[
        "eval", "--model", run, "--data", data, "--split", "valid", "--json",
    ]));
    json(out.lines().last().unwrap())["valid_loss"]
        .as_f64()
        .unwrap()
}

fn small_train_with<'a>(
    data: &'a str,
    out: &'a str,
    overrides: &[(&'a str, &'a str)],
) -> Vec<&'a str> {
    let mut flags = vec![
        ("--data", data),
        ("--out", out),
        ("--hidden", "8"),
        ("--layers", "1"),
        ("--bptt", "5"),
        ("--batch", "2"),
        ("--epochs", "1"),
        ("--threads", "1"),
    ];
    for &(k, v) in overrides {
        match flags.iter_mut().find(|f| f.0 == k) {
            Some(f) => f.1 = v,
            None => flags.push((k, v)),
        }
    }
    let mut args = vec!["train", "--json"];
    for (k, v) in flags {
        args.push(k);
        if !v.is_empty() {
            args.push(v);
        }
    }
    args
}

#[test]
fn the_same_run_twice_writes_the_same_files() {
    let d = scratch("twice");
    corpus(&d);
    let data = d.to_str().unwrap();
    let runs = [d.join("a"), d.join("b")];
    for run in &runs {
        let args = small_train_with(
            data,
            run.to_str().unwrap(),
            &[("--epochs", "2"), ("--max-steps", "30")],
        );
        ok(&seqrnn(&args));
    }
    same_run_files(&runs[0], &runs[1]);
}

#[test]
fn a_missing_model_file_names_the_cause_once() {
    let d = scratch("missing-model");
    corpus(&d);
    let run = d.join("run");
    let run_s = run.to_str().unwrap();
    ok(&seqrnn(&small_train(d.to_str().unwrap(), run_s)));
    std::fs::remove_file(run.join("model.safetensors")).unwrap();
    std::fs::remove_file(run.join("checkpoint.safetensors")).unwrap();
    let err = fails(
        &seqrnn(&["eval", "--model", run_s, "--data", d.to_str().unwrap()]),
        "model.safetensors",
    );
    // The operating system's message ("No such file or directory (os error 2)"), once.
    let os = std::fs::read(run.join("model.safetensors"))
        .unwrap_err()
        .to_string();
    assert_eq!(err.matches(&os).count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_run_stopped_in_its_first_epoch_says_it_has_no_weights_yet() {
    let d = scratch("first-epoch");
    corpus(&d);
    std::fs::write(d.join("text.txt"), "the cat sat on the mat\n").unwrap();
    let run = d.join("run");
    let run_s = run.to_str().unwrap();
    ok(&seqrnn(&small_train(d.to_str().unwrap(), run_s)));
    // What Ctrl-C during the first epoch leaves: config.json and a checkpoint, no weights.
    std::fs::remove_file(run.join("model.safetensors")).unwrap();
    let data = d.to_str().unwrap();
    let (text, out) = (d.join("text.txt"), d.join("inspect"));
    for args in [
        vec!["eval", "--model", run_s, "--data", data],
        vec!["generate", "--model", run_s, "--tokens", "5"],
        vec![
            "inspect",
            "--model",
            run_s,
            "--text",
            text.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    ] {
        refused_without_weights(&args, &format!("train --resume --out {run_s}"));
    }
}

#[test]
fn train_resume_eval_generate_round_trip() {
    let d = scratch("round");
    corpus(&d);
    let (data, run) = (d.to_str().unwrap(), d.join("run"));
    let run_s = run.to_str().unwrap();
    let v = json(&ok(&seqrnn(&small_train(data, run_s))));
    let valid = v["valid_ppl"].as_f64().unwrap();
    assert!(valid.is_finite() && valid > 1.0, "{v}");
    assert!(v["test_ppl"].as_f64().unwrap().is_finite());
    for f in [
        "config.json",
        "vocab.txt",
        "model.safetensors",
        "checkpoint.safetensors",
        "metrics.csv",
        "curve.svg",
        "summary.json",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["valid_ppl"], v["valid_ppl"]);
    assert_eq!(summary["test_ppl"], v["test_ppl"]);
    assert_eq!(summary["epochs"], 1);
    assert!(summary["train_seconds"].as_f64().unwrap() > 0.0);

    // The same folder again without --resume or --force is refused, and nothing is lost.
    let before = std::fs::read(run.join("model.safetensors")).unwrap();
    fails(&seqrnn(&small_train(data, run_s)), "already holds a run");
    assert_eq!(
        std::fs::read(run.join("model.safetensors")).unwrap(),
        before
    );

    // Resume for a second epoch.
    ok(&seqrnn(&small_train_with(
        data,
        run_s,
        &[("--epochs", "2"), ("--resume", "")],
    )));
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 3, "{metrics}");

    // eval reproduces the best validation perplexity recorded during training.
    let best = metrics
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(3).unwrap().parse::<f64>().unwrap())
        .fold(f64::INFINITY, f64::min);
    let e = json(&ok(&seqrnn(&[
        "eval", "--model", run_s, "--data", data, "--split", "valid", "--json",
    ])));
    let got = e["valid_ppl"].as_f64().unwrap();
    assert!(
        (got - best).abs() < 1e-6 * best,
        "eval {got} vs training {best}"
    );
    let t = json(&ok(&seqrnn(&[
        "eval", "--model", run_s, "--data", data, "--json",
    ])));
    assert!(t["test_ppl"].as_f64().unwrap().is_finite());

    // Generation: same seed, same text; unknown prompt words warned about.
    let g = |seed: &str| {
        seqrnn(&[
            "generate",
            "--model",
            run_s,
            "--prompt",
            "the zebra",
            "--tokens",
            "12",
            "--seed",
            seed,
        ])
    };
    let (a, b) = (g("3"), g("3"));
    assert_eq!(ok(&a), ok(&b));
    assert!(ok(&a).starts_with("the <unk>"), "{}", ok(&a));
    assert!(String::from_utf8_lossy(&a.stderr).contains("zebra"));
    let greedy = ok(&seqrnn(&[
        "generate", "--model", run_s, "--greedy", "--tokens", "5",
    ]));
    assert!(!greedy.trim().is_empty());
}

#[test]
fn character_level_training_runs() {
    let d = scratch("char");
    let text: String = "To be, or not to be, that is the question.\n".repeat(20);
    std::fs::write(d.join("input.txt"), text).unwrap();
    let run = d.join("run");
    let out = ok(&seqrnn(&[
        "train",
        "--tokens",
        "char",
        "--data",
        d.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--hidden",
        "16",
        "--layers",
        "1",
        "--bptt",
        "10",
        "--batch",
        "4",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--json",
    ]));
    let v = json(&out);
    assert!(v["valid_ppl"].as_f64().unwrap() > 1.0);
    assert!(v["test_ppl"].is_null());
    let g = ok(&seqrnn(&[
        "generate",
        "--model",
        run.to_str().unwrap(),
        "--prompt",
        "To",
        "--tokens",
        "20",
    ]));
    assert!(g.starts_with("To"));
}

/// `--last-hidden`: a tied model whose last layer is narrower than the others trains, evaluates
/// to its training figure, and its weights import back as the same model.
#[test]
fn a_smaller_last_layer_trains_evaluates_and_imports() {
    let d = scratch("last-layer");
    corpus(&d);
    let (data, run) = (d.to_str().unwrap(), d.join("run"));
    let run_s = run.to_str().unwrap();
    let flags = [
        ("--layers", "3"),
        ("--last-hidden", "4"),
        ("--tie", ""),
        ("--variational", ""),
        ("--dropout", "0.2"),
        ("--weight-drop", "0.3"),
    ];
    let v = json(&ok(&seqrnn(&small_train_with(data, run_s, &flags))));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    let model = &config["model"];
    assert_eq!(
        (&model["hidden"], &model["last_hidden"], &model["embed"]),
        (&8.into(), &4.into(), &4.into()),
        "{model}"
    );
    let e = json(&ok(&seqrnn(&[
        "eval", "--model", run_s, "--data", data, "--split", "valid", "--json",
    ])));
    let (trained, evaluated) = (
        v["valid_ppl"].as_f64().unwrap(),
        e["valid_ppl"].as_f64().unwrap(),
    );
    assert!(
        (trained - evaluated).abs() < 1e-6 * trained,
        "{trained} vs {evaluated}"
    );
    let imported = d.join("imported");
    let out = ok(&seqrnn(&[
        "import",
        "--torch",
        run.join("model.safetensors").to_str().unwrap(),
        "--vocab",
        run.join("vocab.txt").to_str().unwrap(),
        "--out",
        imported.to_str().unwrap(),
    ]));
    assert!(out.contains("lstm 3×8 (vocabulary "), "{out}");
    assert!(out.contains("embedding 4, last layer 4)"), "{out}");
    let again = json(&ok(&seqrnn(&[
        "eval",
        "--model",
        imported.to_str().unwrap(),
        "--data",
        data,
        "--split",
        "valid",
        "--json",
    ])));
    assert_eq!(again["valid_ppl"], e["valid_ppl"]);
    // Impossible shapes: one message each, no run folder left.
    let bad = d.join("bad");
    let bad_s = bad.to_str().unwrap();
    for (flags, needle) in [
        (
            vec![("--last-hidden", "4")],
            "a last layer of its own size needs at least 2 layers, got 1",
        ),
        (
            vec![
                ("--layers", "2"),
                ("--last-hidden", "4"),
                ("--tie", ""),
                ("--embed", "8"),
            ],
            "tied output weights need embedding size = the last layer's size, got 8 and 4",
        ),
        (
            vec![("--layers", "2"), ("--last-hidden", "0")],
            "the last layer's size must be at least 1",
        ),
    ] {
        fails(&seqrnn(&small_train_with(data, bad_s, &flags)), needle);
        assert!(!bad.exists(), "{flags:?} left a run folder");
    }
}

#[test]
fn import_makes_a_run_that_loads() {
    let Some(fixture) = shared("fixtures/torch_lm_lstm.safetensors") else {
        return;
    };
    let d = scratch("import");
    let vocab: String = (0..50).map(|i| format!("w{i}\n")).collect();
    std::fs::write(d.join("vocab.txt"), vocab).unwrap();
    let run = d.join("run");
    let out = ok(&seqrnn(&[
        "import",
        "--torch",
        fixture.to_str().unwrap(),
        "--vocab",
        d.join("vocab.txt").to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]));
    assert!(out.contains("lstm 2×16"), "{out}");
    let g = ok(&seqrnn(&[
        "generate",
        "--model",
        run.to_str().unwrap(),
        "--prompt",
        "w3",
        "--tokens",
        "4",
        "--greedy",
    ]));
    assert_eq!(g.split_whitespace().count(), 5, "{g}");
    // A vocabulary of the wrong size is refused.
    std::fs::write(d.join("short.txt"), "a\nb\n").unwrap();
    fails(
        &seqrnn(&[
            "import",
            "--torch",
            fixture.to_str().unwrap(),
            "--vocab",
            d.join("short.txt").to_str().unwrap(),
            "--out",
            d.join("run2").to_str().unwrap(),
        ]),
        "holds 2 tokens but encoder.weight has 50 rows",
    );
}

#[test]
fn bad_input_gets_one_clear_message() {
    let d = scratch("bad");
    corpus(&d);
    let data = d.to_str().unwrap();
    let out = |name: &str| d.join(name).to_str().unwrap().to_string();
    let o1 = out("r1");
    fails(
        &seqrnn(&["train", "--data", "/nonexistent/corpus", "--out", &o1]),
        "/nonexistent/corpus",
    );
    fails(&seqrnn(&["train", "--out", &o1]), "SEQRNN_DATA");
    for (flag, value, needle) in [
        ("--dropout", "1.5", "dropout must be in [0, 1)"),
        ("--lr", "0", "learning rate must be positive"),
        ("--bptt", "0", "bptt must be at least 1"),
        ("--hidden", "0", "hidden size must be at least 1"),
        ("--clip", "0", "clip must be positive"),
    ] {
        fails(
            &seqrnn(&small_train_with(data, &o1, &[(flag, value)])),
            needle,
        );
    }
    let tie = small_train_with(data, &o1, &[("--tie", ""), ("--embed", "4")]);
    fails(
        &seqrnn(&tie),
        "tied output weights need embedding size = hidden size",
    );
    // An empty corpus file and a non-UTF-8 one.
    let e = scratch("empty");
    std::fs::write(e.join("train.txt"), "").unwrap();
    std::fs::write(e.join("valid.txt"), "a b\n").unwrap();
    fails(&seqrnn(&small_train(e.to_str().unwrap(), &o1)), "empty");
    std::fs::write(e.join("train.txt"), b"ok line\nbad \xff byte\n").unwrap();
    fails(&seqrnn(&small_train(e.to_str().unwrap(), &o1)), "line 2");
    // A corpus too small for one batch.
    std::fs::write(e.join("train.txt"), "a\n").unwrap();
    fails(
        &seqrnn(&small_train_with(
            e.to_str().unwrap(),
            &o1,
            &[("--batch", "50")],
        )),
        "too few",
    );
    // Generation and evaluation against a folder that holds no run.
    fails(
        &seqrnn(&["generate", "--model", &out("nothing")]),
        "nothing",
    );
    ok(&seqrnn(&small_train(data, &o1)));
    fails(
        &seqrnn(&["generate", "--model", &o1, "--temperature", "0"]),
        "temperature must be positive",
    );
    fails(
        &seqrnn(&["generate", "--model", &o1, "--top-p", "1.5"]),
        "top-p must be in (0, 1]",
    );
    // A truncated model file.
    let model = d.join("r1/model.safetensors");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 3]).unwrap();
    fails(
        &seqrnn(&["eval", "--model", &o1, "--data", data]),
        "model.safetensors",
    );
}

#[test]
fn awd_regularisers_train_from_the_command_line() {
    let d = scratch("awd");
    corpus(&d);
    let (data, run) = (d.to_str().unwrap(), d.join("run"));
    let awd = [
        ("--hidden", "8"),
        ("--embed-drop", "0.1"),
        ("--weight-drop", "0.5"),
        ("--dropout-input", "0.3"),
        ("--dropout-hidden", "0.2"),
        ("--dropout-output", "0.4"),
        ("--variational", ""),
        ("--tie", ""),
        ("--ar", "2"),
        ("--tar", "1"),
        ("--variable-bptt", ""),
        ("--weight-decay", "1.2e-6"),
        ("--asgd", ""),
        ("--nonmono", "1"),
        ("--epochs", "4"),
        ("--layers", "2"),
    ];
    let v = json(&ok(&seqrnn(&small_train_with(
        data,
        run.to_str().unwrap(),
        &awd,
    ))));
    assert!(v["valid_ppl"].as_f64().unwrap().is_finite(), "{v}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    let reg = &config["model"]["reg"];
    assert_eq!(reg["weight_drop"], 0.5);
    assert_eq!(reg["embed_drop"].as_f64().unwrap() as f32, 0.1);
    assert_eq!(reg["hidden"]["kind"], "variational");
    assert_eq!(reg["ar"], 2.0);
    assert_eq!(config["model"]["output"], "tied");
    assert_eq!(config["train"]["windows"], "variable");
    assert_eq!(config["train"]["asgd"]["nonmono"], 1);
    // Evaluation reads the regularised run like any other.
    let e = json(&ok(&seqrnn(&[
        "eval",
        "--model",
        run.to_str().unwrap(),
        "--data",
        data,
        "--split",
        "valid",
        "--json",
    ])));
    assert!(e["valid_ppl"].as_f64().unwrap().is_finite());

    // Impossible settings: one message, non-zero exit, no run folder left behind.
    let bad = d.join("bad");
    let bad_s = bad.to_str().unwrap();
    for (flags, needle) in [
        (
            vec![("--weight-drop", "1")],
            "weight drop must be in [0, 1)",
        ),
        (
            vec![("--embed-drop", "-0.1")],
            "embedding dropout must be in [0, 1)",
        ),
        (
            vec![("--dropout-hidden", "1.2")],
            "dropout must be in [0, 1)",
        ),
        (vec![("--ar", "-1")], "AR weight"),
        (vec![("--tar", "nan")], "TAR weight"),
        (vec![("--weight-decay", "-1")], "weight decay"),
        (
            vec![("--asgd", ""), ("--optim", "adam")],
            "needs the SGD optimiser",
        ),
        (
            vec![("--weight-decay", "0.1"), ("--optim", "adam")],
            "Adam's own setting",
        ),
        (vec![("--asgd", ""), ("--nonmono", "0")], "at least 1 epoch"),
        (vec![("--nonmono", "3")], "--asgd"),
    ] {
        fails(&seqrnn(&small_train_with(data, bad_s, &flags)), needle);
        assert!(!bad.exists(), "{flags:?} left a run folder");
    }
}

#[test]
fn presets_choose_their_token_kind_and_optimiser() {
    let d = scratch("presets");
    let text: String = "To be, or not to be, that is the question.\n".repeat(40);
    std::fs::write(d.join("input.txt"), text).unwrap();
    let run = d.join("run");
    ok(&seqrnn(&[
        "train",
        "--preset",
        "shakespeare",
        "--data",
        d.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--hidden",
        "16",
        "--embed",
        "8",
        "--bptt",
        "10",
        "--batch",
        "4",
        "--epochs",
        "1",
        "--threads",
        "1",
    ]));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["tokens"], "char");
    assert_eq!(config["model"]["reg"]["weight_drop"], 0.25);
    assert_eq!(config["model"]["dropout"]["kind"], "variational");
    assert!(config["train"]["optimizer"]["adam"].is_object(), "{config}");
    assert_eq!(config["train"]["lr"], 0.002);
}

#[test]
fn download_without_network_says_how_to_use_a_local_copy() {
    let d = scratch("download");
    let out = Command::new(env!("CARGO_BIN_EXE_seqrnn"))
        .args(["download", "ptb", "--out", d.join("ptb").to_str().unwrap()])
        .env("SEQRNN_PTB_URL", "http://127.0.0.1:9/simple-examples.tgz")
        .output()
        .unwrap();
    fails(&out, "--data DIR");
    if let Some(ptb) = shared("data/ptb") {
        let text = ok(&seqrnn(&[
            "download",
            "ptb",
            "--out",
            ptb.to_str().unwrap(),
        ]));
        assert!(
            text.contains("already holds the verified PTB files"),
            "{text}"
        );
    }
}

#[test]
fn a_diverging_loss_stops_with_advice() {
    let d = scratch("diverge");
    corpus(&d);
    let run = d.join("run");
    let out = seqrnn(&small_train_with(
        d.to_str().unwrap(),
        run.to_str().unwrap(),
        &[("--lr", "1e30"), ("--clip", "1e30")],
    ));
    fails(&out, "training diverged at epoch 1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--lr") && err.contains("--clip"), "{err}");
    // No checkpoint was reached, so the folder is not left looking like a run.
    assert!(!run.join("config.json").exists());
}

#[test]
fn a_quantized_copy_evaluates_generates_and_benchmarks_but_does_not_train() {
    let d = scratch("quantize");
    corpus(&d);
    let data = d.to_str().unwrap();
    let (run, q) = (d.join("run"), d.join("run-int8"));
    let (run_s, q_s) = (run.to_str().unwrap(), q.to_str().unwrap());
    ok(&seqrnn(&small_train_with(
        data,
        run_s,
        &[("--hidden", "16")],
    )));
    let made = json(&ok(&seqrnn(&[
        "quantize", "--model", run_s, "--out", q_s, "--json",
    ])));
    assert_eq!(made["task"], "lm");
    assert_eq!(made["quantized"], "int8");
    // embedding, input and recurrent weights, decoder
    assert_eq!(made["tensors"].as_array().unwrap().len(), 4, "{made}");
    let (f, i) = (valid_loss(data, run_s), valid_loss(data, q_s));
    assert!((f - i).abs() < 0.01 * f, "f32 {f}, int8 {i}");
    let text = ok(&seqrnn(&[
        "generate", "--model", q_s, "--prompt", "the cat", "--tokens", "5", "--seed", "3",
    ]));
    assert!(text.starts_with("the cat"), "{text}");
    let bench = json(&ok(&seqrnn(&[
        "bench", "run", "--model", q_s, "--steps", "2", "--batch", "2", "--bptt", "3", "--json",
    ])));
    assert_eq!(bench["weights"], "int8");
    // Refusals: a second quantization, training on from it, a folder holding a run.
    fails(
        &seqrnn(&[
            "quantize",
            "--model",
            q_s,
            "--out",
            d.join("again").to_str().unwrap(),
        ]),
        "quantized already",
    );
    fails(
        &seqrnn(&["train", "--data", data, "--out", q_s, "--resume"]),
        "int8-quantized model",
    );
    fails(
        &seqrnn(&["quantize", "--model", run_s, "--out", q_s]),
        "already",
    );
}

/// The minimal cells train like the others: two layers, a run stopped after its first epoch
/// and resumed gives the same weights, to the byte, as one straight through; it evaluates,
/// generates, quantizes and exports to ONNX (a `Scan` of elementary operators, checked by ONNX
/// Runtime in `python/tests/test_onnx.py`).
#[test]
fn minimal_cells_train_resume_exactly_and_generate() {
    let d = scratch("minimal");
    corpus(&d);
    let data = d.to_str().unwrap();
    for cell in ["mingru", "minlstm"] {
        let (a, b) = (d.join(format!("{cell}-a")), d.join(format!("{cell}-b")));
        let (a_s, b_s) = (a.to_str().unwrap(), b.to_str().unwrap());
        let flags = |epochs| vec![("--cell", cell), ("--layers", "2"), ("--epochs", epochs)];
        let v = json(&ok(&seqrnn(&small_train_with(data, a_s, &flags("2")))));
        assert!(v["valid_ppl"].as_f64().unwrap().is_finite(), "{v}");
        ok(&seqrnn(&small_train_with(data, b_s, &flags("1"))));
        let resume = [("--epochs", "2"), ("--resume", "")];
        ok(&seqrnn(&small_train_with(data, b_s, &resume)));
        let weights = |run: &Path| std::fs::read(run.join("model.safetensors")).unwrap();
        assert!(weights(&a) == weights(&b), "{cell}: resumed weights differ");
        let text = ok(&seqrnn(&[
            "generate", "--model", b_s, "--tokens", "6", "--seed", "2",
        ]));
        assert!(!text.trim().is_empty());
        let out = d.join(format!("{cell}-onnx"));
        let args = ["export", "--model", b_s, "--out", out.to_str().unwrap()];
        assert!(ok(&seqrnn(&args)).contains("model.onnx"));
        // DropConnect needs W_hh: asked for explicitly it is refused (a preset's is left out).
        let c = d.join(format!("{cell}-wd"));
        let wd = [("--cell", cell), ("--weight-drop", "0.3")];
        let refused = seqrnn(&small_train_with(data, c.to_str().unwrap(), &wd));
        fails(&refused, "which a `");
    }
}

/// Residual blocks around minimal cells train, resume to the byte, evaluate, generate, quantize
/// (the MLP's matrices in 8 bits too) and export like any run (ONNX Runtime checks the graph in
/// `python/tests/test_onnx.py`); plain-stack extras are refused.
#[test]
fn residual_blocks_train_resume_exactly_generate_and_quantize() {
    let d = scratch("residual");
    corpus(&d);
    let data = d.to_str().unwrap();
    let (a, b, q) = (d.join("a"), d.join("b"), d.join("b-int8"));
    let (a_s, b_s, q_s) = (
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        q.to_str().unwrap(),
    );
    let flags = |epochs| {
        vec![
            ("--cell", "mingru"),
            ("--layers", "2"),
            ("--residual", ""),
            ("--mlp", "12"),
            ("--dropout", "0.1"),
            ("--epochs", epochs),
        ]
    };
    let v = json(&ok(&seqrnn(&small_train_with(data, a_s, &flags("2")))));
    assert!(v["valid_ppl"].as_f64().unwrap().is_finite(), "{v}");
    ok(&seqrnn(&small_train_with(data, b_s, &flags("1"))));
    let resume = [("--epochs", "2"), ("--resume", "")];
    ok(&seqrnn(&small_train_with(data, b_s, &resume)));
    let weights = |run: &Path| std::fs::read(run.join("model.safetensors")).unwrap();
    assert!(weights(&a) == weights(&b), "resumed weights differ");
    let config = std::fs::read_to_string(b.join("config.json")).unwrap();
    assert!(config.contains(r#""kind": "residual""#), "{config}");
    let text = ok(&seqrnn(&[
        "generate", "--model", b_s, "--tokens", "6", "--seed", "2",
    ]));
    assert!(!text.trim().is_empty());
    let made = json(&ok(&seqrnn(&[
        "quantize", "--model", b_s, "--out", q_s, "--json",
    ])));
    // embedding, 2 × (input weights, two MLP layers), decoder
    assert_eq!(made["tensors"].as_array().unwrap().len(), 8, "{made}");
    let (f, i) = (valid_loss(data, b_s), valid_loss(data, q_s));
    assert!((f - i).abs() < 0.05 * f, "f32 {f}, int8 {i}");
    let out = d.join("onnx");
    let export = ["export", "--model", b_s, "--out", out.to_str().unwrap()];
    assert!(ok(&seqrnn(&export)).contains("model.onnx"));
    let c = d.join("wd");
    let wd = [
        ("--residual", ""),
        ("--cell", "lstm"),
        ("--weight-drop", "0.3"),
    ];
    fails(
        &seqrnn(&small_train_with(data, c.to_str().unwrap(), &wd)),
        "residual blocks do not take weight drop",
    );
    let e = [("--residual", ""), ("--embed", "6")];
    fails(
        &seqrnn(&small_train_with(data, c.to_str().unwrap(), &e)),
        "the embedding size must equal the hidden size",
    );
}

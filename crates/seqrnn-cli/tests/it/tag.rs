//! `seqrnn tag` on tiny made-up files, as a user runs it.

use std::path::Path;

use crate::common::*;

const NAMES: [&str; 4] = ["Anna", "Boris", "Clara", "Dmitri"];
const PLACES: [&str; 3] = ["Paris", "Oslo", "Lima"];
const FILL: [&str; 6] = ["went", "to", "and", "saw", "the", "city"];

/// Sentences in IOB1 (CoNLL-2003's scheme) with a part of speech column before the label.
fn conll(n: usize, seed: usize) -> String {
    let mut s = String::from("-DOCSTART- -X- O\n\n");
    for i in 0..n {
        let p = i * 7 + seed * 11;
        let name = NAMES[p % 4];
        let place = PLACES[p % 3];
        s += &format!("{name} NNP I-PER\n");
        if p.is_multiple_of(2) {
            s += "Smith NNP I-PER\n";
        }
        for j in 0..1 + p % 3 {
            s += &format!("{} XX O\n", FILL[(p + j) % 6]);
        }
        s += &format!("{place} NNP I-LOC\n. . O\n\n");
    }
    s
}

fn files(dir: &Path) {
    for (name, n, seed) in [
        ("train.txt", 120, 0),
        ("dev.txt", 20, 1),
        ("test.txt", 20, 2),
    ] {
        std::fs::write(dir.join(name), conll(n, seed)).unwrap();
    }
}

fn train_args<'a>(d: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "tag",
        "train",
        "--train",
        "",
        "--dev",
        "",
        "--test",
        "",
        "--out",
        out,
        "--embed",
        "8",
        "--char-embed",
        "4",
        "--char-hidden",
        "4",
        "--hidden",
        "8",
        "--epochs",
        "8",
        "--lr",
        "0.02",
        "--dropout",
        "0",
        "--threads",
        "1",
        "--json",
    ];
    let _ = d;
    v = with_overrides(v, extra);
    v
}

fn with_files<'a>(
    mut v: Vec<&'a str>,
    train: &'a str,
    dev: &'a str,
    test: &'a str,
) -> Vec<&'a str> {
    v[3] = train;
    v[5] = dev;
    v[7] = test;
    v
}

#[test]
fn train_eval_predict_with_a_crf() {
    let d = scratch("ok");
    files(&d);
    let p = |f: &str| d.join(f).to_str().unwrap().to_string();
    let (tr, dv, te) = (p("train.txt"), p("dev.txt"), p("test.txt"));
    let run = d.join("run");
    let run_s = run.to_str().unwrap();
    let v = json(&ok(&seqrnn(&with_files(
        train_args("", run_s, &["--crf"]),
        &tr,
        &dv,
        &te,
    ))));
    assert!(v["test_f1"].as_f64().unwrap() > 0.9, "{v}");
    assert!(v["test_accuracy"].as_f64().unwrap() > 0.9, "{v}");
    let e = json(&ok(&seqrnn(&[
        "tag", "eval", "--model", run_s, "--test", &te, "--json",
    ])));
    assert_eq!(e["test_f1"], v["test_f1"], "{e}");
    // The confusion table counts every token once (rows gold, columns predicted).
    let table = e["confusion"].as_array().unwrap();
    let total: u64 = table
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()))
        .sum();
    assert_eq!(total, e["tokens"].as_u64().unwrap());
    assert_eq!(table.len(), e["labels"].as_array().unwrap().len());
    let text = ok(&seqrnn(&["tag", "eval", "--model", run_s, "--test", &te]));
    assert!(
        text.contains("confusion (rows: gold, columns: predicted)"),
        "{text}"
    );
    // predict writes the file back with one more column, in the file's own scheme (IOB1).
    let out = d.join("tagged.txt");
    ok(&seqrnn(&[
        "tag",
        "predict",
        "--model",
        run_s,
        "--input",
        &te,
        "--out",
        out.to_str().unwrap(),
    ]));
    let tagged = std::fs::read_to_string(&out).unwrap();
    let orig = std::fs::read_to_string(d.join("test.txt")).unwrap();
    assert_eq!(tagged.lines().count(), orig.lines().count());
    for (a, b) in orig.lines().zip(tagged.lines()) {
        if a.is_empty() || a.starts_with("-DOCSTART-") {
            assert_eq!(a, b);
        } else {
            assert!(b.starts_with(a), "{a} / {b}");
            let added = b[a.len()..].trim();
            assert!(
                added == "O" || added.starts_with("I-") || added.starts_with("B-"),
                "{b}"
            );
        }
    }
}

#[test]
fn several_runs_tag_as_one() {
    let d = scratch("ensemble");
    files(&d);
    let p = |f: &str| d.join(f).to_str().unwrap().to_string();
    let (tr, dv, te) = (p("train.txt"), p("dev.txt"), p("test.txt"));
    let (a, b, c) = (p("a"), p("b"), p("c"));
    for (out, extra) in [
        (&a, vec!["--crf"]),
        (&b, vec!["--crf", "--seed", "2", "--hidden", "6"]),
        (&c, vec![]),
    ] {
        ok(&seqrnn(&with_files(
            train_args("", out, &extra),
            &tr,
            &dv,
            &te,
        )));
    }
    let eval = |models: &[&str]| {
        let mut v = vec!["tag", "eval", "--test", &te, "--json"];
        for m in models {
            v.extend(["--model", m]);
        }
        json(&ok(&seqrnn(&v)))
    };
    let alone = eval(&[&a]);
    assert_eq!(alone["models"], 1, "{alone}");
    // The same run twice decodes as the run alone; two runs as one.
    let twice = eval(&[&a, &a]);
    assert_eq!(twice["test_f1"], alone["test_f1"], "{twice}");
    assert_eq!(twice["confusion"], alone["confusion"], "{twice}");
    let two = eval(&[&a, &b]);
    assert_eq!(two["models"], 2, "{two}");
    assert!(two["test_f1"].as_f64().unwrap() > 0.9, "{two}");
    let out = d.join("tagged.txt");
    let out_s = out.to_str().unwrap();
    ok(&seqrnn(&[
        "tag", "predict", "--model", &a, "--model", &b, "--input", &te, "--out", out_s,
    ]));
    let tagged = std::fs::read_to_string(&out).unwrap();
    let orig = std::fs::read_to_string(&te).unwrap();
    assert_eq!(tagged.lines().count(), orig.lines().count());
    // A run without the CRF cannot join: both folders named, the file left alone.
    let err = fails(
        &seqrnn(&[
            "tag", "predict", "--model", &a, "--model", &c, "--input", &te, "--out", out_s,
        ]),
        "one has a CRF and the other not",
    );
    assert!(err.contains(&format!("{c} cannot join {a}")), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), tagged);
    fails(&seqrnn(&["tag", "eval", "--test", &te]), "--model <MODEL>");
}

#[test]
fn bad_input_gives_one_message() {
    let d = scratch("bad");
    files(&d);
    let p = |f: &str| d.join(f).to_str().unwrap().to_string();
    let (tr, dv, te) = (p("train.txt"), p("dev.txt"), p("test.txt"));
    let out = d.join("run");
    let out_s = out.to_str().unwrap();
    let write = |name: &str, text: &str| {
        std::fs::write(d.join(name), text).unwrap();
        p(name)
    };
    let ragged = write("ragged.txt", "Anna NNP I-PER\nwent O\n");
    let iob2_bad = write("iob2.txt", "Anna NNP B-PER\nwent XX O\nSmith NNP I-PER\n");
    let unknown = write("unknown.txt", "Anna NNP I-XYZ\n");
    let empty_u = write("empty.conllu", "# sent_id = 1\n# text = nothing\n\n");
    for (args, needle) in [
        (
            with_files(train_args("", out_s, &[]), &ragged, &dv, &te),
            "line 2 has 2 columns but line 1 has 3",
        ),
        (
            with_files(
                train_args("", out_s, &["--label-column", "7"]),
                &tr,
                &dv,
                &te,
            ),
            "the label column is 7 but the line has 3 columns",
        ),
        (
            with_files(
                train_args("", out_s, &["--scheme", "iob2"]),
                &iob2_bad,
                &dv,
                &te,
            ),
            "line 3: `I-PER` cannot follow `O` in the IOB2 scheme",
        ),
        (
            with_files(train_args("", out_s, &[]), &tr, &unknown, &te),
            "line 1: label `S-XYZ` never appears in the training file",
        ),
        (
            with_files(
                train_args("", out_s, &["--format", "conllu"]),
                &empty_u,
                &dv,
                &te,
            ),
            "the sentence starting at line 1 has no words",
        ),
        (
            with_files(
                train_args("", out_s, &["--word-column", "0"]),
                &tr,
                &dv,
                &te,
            ),
            "counts from 1",
        ),
        (
            with_files(train_args("", out_s, &["--dropout", "1"]), &tr, &dv, &te),
            "dropout",
        ),
    ] {
        refused(&args, needle, &out);
    }
    // A trained run refuses labels it never saw.
    ok(&seqrnn(&with_files(
        train_args("", out_s, &["--epochs", "1"]),
        &tr,
        &dv,
        &te,
    )));
    fails(
        &seqrnn(&["tag", "eval", "--model", out_s, "--test", &unknown]),
        "label `S-XYZ` never appears in the training file",
    );
}

#[test]
fn parts_of_speech_from_conllu_and_resume() {
    let d = scratch("ud");
    let row =
        |id: usize, form: &str, upos: &str| format!("{id}\t{form}\t_\t{upos}\t_\t_\t0\t_\t_\t_\n");
    let mut text = String::new();
    for i in 0..60 {
        text += &format!("# sent_id = {i}\n");
        text += &row(1, NAMES[i % 4], "PROPN");
        text += &row(2, FILL[i % 6], if i % 6 == 4 { "DET" } else { "VERB" });
        text += &row(3, PLACES[i % 3], "PROPN");
        text += "\n";
    }
    std::fs::write(d.join("ud.conllu"), &text).unwrap();
    let f = d.join("ud.conllu");
    let f = f.to_str().unwrap();
    let (whole, part) = (d.join("whole"), d.join("part"));
    let args = |out: &Path, epochs: &'static str| -> Vec<String> {
        [
            "tag",
            "train",
            "--train",
            f,
            "--dev",
            f,
            "--test",
            f,
            "--format",
            "conllu",
            "--crf",
            "--out",
            out.to_str().unwrap(),
            "--embed",
            "6",
            "--char-hidden",
            "3",
            "--char-embed",
            "3",
            "--hidden",
            "6",
            "--epochs",
            epochs,
            "--lr",
            "0.02",
            "--dropout",
            "0.2",
            "--threads",
            "1",
            "--json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = |a: Vec<String>| seqrnn(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let a = json(&ok(&run(args(&whole, "3"))));
    assert!(a["test_accuracy"].as_f64().unwrap() > 0.5, "{a}");
    assert!(
        a.get("test_f1").is_none(),
        "parts of speech have no entity scores: {a}"
    );
    ok(&run(args(&part, "1")));
    let mut more = args(&part, "3");
    more.push("--resume".into());
    let b = json(&ok(&run(more)));
    assert_eq!(a["test_accuracy"], b["test_accuracy"]);
    assert!(
        std::fs::read(whole.join("model.safetensors")).unwrap()
            == std::fs::read(part.join("model.safetensors")).unwrap()
    );
}

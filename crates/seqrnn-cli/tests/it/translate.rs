//! `seqrnn translate` on a tiny made-up language pair, as a user runs it.

use std::path::Path;

use crate::common::*;

const SRC: [&str; 12] = [
    "ein", "zwei", "drei", "hund", "katze", "rot", "blau", "läuft", "schläft", "groß", "klein",
    "und",
];
const TGT: [&str; 12] = [
    "one", "two", "three", "dog", "cat", "red", "blue", "runs", "sleeps", "big", "small", "and",
];

/// Sentences translated word by word, with the first two target words swapped (so the model
/// must look at other source positions than its own step).
fn pairs(n: usize, seed: usize) -> (String, String) {
    let (mut s, mut t) = (String::new(), String::new());
    for i in 0..n {
        let p = i * 7 + seed * 13;
        let len = 2 + p % 4;
        let ids: Vec<usize> = (0..len).map(|j| (p * 5 + j * 3 + j * j) % 12).collect();
        let src: Vec<&str> = ids.iter().map(|&k| SRC[k]).collect();
        let mut tgt: Vec<&str> = ids.iter().map(|&k| TGT[k]).collect();
        tgt.swap(0, 1);
        s += &format!("{}.\n", src.join(" "));
        t += &format!("{}.\n", tgt.join(" "));
    }
    (s, t)
}

fn corpus(dir: &Path) {
    for (split, n, seed) in [("train", 300, 0), ("val", 30, 1), ("test", 30, 2)] {
        let (s, t) = pairs(n, seed);
        std::fs::write(dir.join(format!("{split}.de")), s).unwrap();
        std::fs::write(dir.join(format!("{split}.en")), t).unwrap();
    }
}

fn train_args<'a>(data: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let v = vec![
        "translate",
        "train",
        "--data",
        data,
        "--src",
        "de",
        "--tgt",
        "en",
        "--test",
        "test",
        "--out",
        out,
        "--tokenizer",
        "word",
        "--embed",
        "16",
        "--hidden",
        "16",
        "--dec-hidden",
        "24",
        "--batch",
        "16",
        "--lr",
        "0.01",
        "--decay-after",
        "12",
        "--dropout",
        "0",
        "--epochs",
        "12",
        "--patience",
        "12",
        "--beam",
        "3",
        "--threads",
        "1",
        "--json",
    ];
    with_overrides(v, extra)
}

#[test]
fn train_eval_run_agree() {
    let d = scratch("ok");
    corpus(&d);
    let run = d.join("run");
    let (data_s, run_s) = (d.to_str().unwrap(), run.to_str().unwrap());
    let v = json(&ok(&seqrnn(&train_args(data_s, run_s, &[]))));
    let bleu = v["test_bleu"].as_f64().unwrap();
    assert!(bleu > 75.0, "{v}");
    assert!(v["valid_bleu"].as_f64().unwrap() > 75.0, "{v}");
    assert!(v["test_bleu_lc"].as_f64().unwrap() >= bleu, "{v}");
    for f in [
        "config.json",
        "src.tokenizer.json",
        "tgt.tokenizer.json",
        "model.safetensors",
        "metrics.csv",
    ] {
        assert!(run.join(f).is_file(), "{f}");
    }
    // eval decodes as train's report did, and writes the translations `run` prints.
    let hyp = d.join("hyp.txt");
    let e = json(&ok(&seqrnn(&[
        "translate",
        "eval",
        "--model",
        run_s,
        "--data",
        data_s,
        "--src",
        "de",
        "--tgt",
        "en",
        "--test",
        "test",
        "--hyp-out",
        hyp.to_str().unwrap(),
        "--json",
    ])));
    assert_eq!(e["test_bleu"].as_f64().unwrap(), bleu, "{e}");
    let pics = d.join("attn");
    let out = ok(&seqrnn(&[
        "translate",
        "run",
        "--model",
        run_s,
        "--input",
        d.join("test.de").to_str().unwrap(),
        "--attention-out",
        pics.to_str().unwrap(),
    ]));
    assert_eq!(out, std::fs::read_to_string(&hyp).unwrap());
    assert_eq!(out.lines().count(), 30);
    let png = std::fs::read(pics.join("0001.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    assert!(pics.join("0030.png").is_file());
    // Greedy decoding is a beam of one.
    let g = json(&ok(&seqrnn(&[
        "translate",
        "eval",
        "--model",
        run_s,
        "--data",
        data_s,
        "--src",
        "de",
        "--tgt",
        "en",
        "--test",
        "test",
        "--beam",
        "1",
        "--json",
    ])));
    assert_eq!(g["beam"], 1);
}

#[test]
fn bad_input_gives_one_message() {
    let d = scratch("bad");
    corpus(&d);
    let data_s = d.to_str().unwrap();
    let out = d.join("run");
    let out_s = out.to_str().unwrap();
    let files = [
        "train.de", "train.en", "val.de", "val.en", "test.de", "test.en",
    ];
    let broken = |name: &str, file: &str, bytes: &[u8]| copy_with(&d, name, &files, file, bytes);
    let unaligned = broken("unaligned", "val.en", b"one dog.\n");
    let empty_line = broken("emptyline", "train.de", b"ein hund.\n\nzwei katze.\n");
    let utf8 = broken("utf8", "train.en", b"one\n\xfe\n");
    for (args, needle) in [
        (
            train_args(&unaligned, out_s, &[]),
            "val.en: has 1 lines but",
        ),
        (train_args(&empty_line, out_s, &[]), "line 2"),
        (train_args(&utf8, out_s, &[]), "line 2"),
        (train_args(data_s, out_s, &["--src", "fr"]), "train.fr"),
        (
            train_args(data_s, out_s, &["--src", "../de"]),
            "not a language suffix",
        ),
        (train_args(data_s, out_s, &["--tgt", "de"]), "both `de`"),
        (
            train_args(data_s, out_s, &["--attention", "dot"]),
            "dot attention needs",
        ),
        (
            train_args(data_s, out_s, &["--tie"]),
            "tied output layer needs",
        ),
        (
            train_args(data_s, out_s, &["--max-src-len", "3"]),
            "more than the model's limit of 3",
        ),
        (
            train_args(data_s, out_s, &["--vocab-size", "3"]),
            "at least 16",
        ),
        (train_args(data_s, out_s, &["--dropout", "1"]), "dropout"),
        (train_args(data_s, out_s, &["--beam", "0"]), "beam"),
    ] {
        refused(&args, needle, &out);
    }
    // A trained run refuses sources longer than its limit and vocabularies not its own.
    ok(&seqrnn(&train_args(
        data_s,
        out_s,
        &["--epochs", "1", "--max-src-len", "6"],
    )));
    let long = d.join("long.de");
    std::fs::write(&long, "ein zwei drei hund katze rot blau.\n").unwrap();
    let run = |input: &Path| {
        seqrnn(&[
            "translate",
            "run",
            "--model",
            out_s,
            "--input",
            input.to_str().unwrap(),
        ])
    };
    fails(
        &run(&long),
        "source sentence 1 has 7 pieces, more than the model's limit of 6",
    );
    std::fs::write(&long, "ein hund.\n\n").unwrap();
    fails(&run(&long), "line 2: empty line");
    let eval = |dir: &str, src: &str| {
        seqrnn(&[
            "translate",
            "eval",
            "--model",
            out_s,
            "--data",
            dir,
            "--src",
            src,
            "--tgt",
            "en",
            "--test",
            "test",
        ])
    };
    fails(&eval(data_s, "fr"), "translates de → en, not fr → en");
    std::fs::copy(d.join("emptyline/train.de"), d.join("emptyline/test.de")).unwrap();
    fails(&eval(&empty_line, "de"), "line 2");
    // Another run's vocabulary in this run's folder.
    let other = d.join("other");
    ok(&seqrnn(&train_args(
        data_s,
        other.to_str().unwrap(),
        &["--epochs", "1", "--tokenizer", "bpe", "--vocab-size", "40"],
    )));
    std::fs::copy(
        other.join("src.tokenizer.json"),
        out.join("src.tokenizer.json"),
    )
    .unwrap();
    fails(&eval(data_s, "de"), "was built for");
    let wrong = d.join("wrong.json");
    std::fs::write(&wrong, "{}").unwrap();
    std::fs::copy(&wrong, out.join("tgt.tokenizer.json")).unwrap();
    fails(&eval(data_s, "de"), "not a tokenizer file");
}

#[test]
fn resume_goes_on_exactly_where_the_run_stopped() {
    let d = scratch("resume");
    corpus(&d);
    let data_s = d.to_str().unwrap();
    let (whole, part) = (d.join("whole"), d.join("part"));
    let (whole_s, part_s) = (whole.to_str().unwrap(), part.to_str().unwrap());
    let extra = [
        "--epochs",
        "3",
        "--dropout",
        "0.2",
        "--tokenizer",
        "bpe",
        "--vocab-size",
        "60",
    ];
    let a = json(&ok(&seqrnn(&train_args(data_s, whole_s, &extra))));
    let mut first = extra.to_vec();
    first[1] = "1";
    ok(&seqrnn(&train_args(data_s, part_s, &first)));
    let b = json(&ok(&seqrnn(&[
        "translate",
        "train",
        "--data",
        data_s,
        "--src",
        "de",
        "--tgt",
        "en",
        "--test",
        "test",
        "--out",
        part_s,
        "--resume",
        "--epochs",
        "3",
        "--threads",
        "1",
        "--json",
    ])));
    for k in ["test_bleu", "valid_bleu", "steps", "best_epoch"] {
        assert_eq!(a[k], b[k], "{k}: {a} vs {b}");
    }
    let w = |dir: &Path| std::fs::read(dir.join("model.safetensors")).unwrap();
    assert!(w(&whole) == w(&part), "best weights differ");
    // Other data: refused by name.
    let other = d.join("other");
    std::fs::create_dir_all(&other).unwrap();
    corpus(&other);
    let (s, t) = pairs(300, 5);
    std::fs::write(other.join("train.de"), s).unwrap();
    std::fs::write(other.join("train.en"), t).unwrap();
    fails(
        &seqrnn(&[
            "translate",
            "train",
            "--data",
            other.to_str().unwrap(),
            "--src",
            "de",
            "--tgt",
            "en",
            "--test",
            "test",
            "--out",
            part_s,
            "--resume",
            "--epochs",
            "4",
        ]),
        "training pairs (or the vocabularies that encode them) are not those",
    );
}

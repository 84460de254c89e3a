//! `--encoding`: text files as they are distributed (ISO-8859-1 CoNLL files, windows-1252
//! tables and corpora), read by tiny runs as a user runs them.

use crate::common::*;

/// `text` in ISO-8859-1, by hand: every character below U+0100 is its own byte.
fn latin1(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("a Latin-1 character"))
        .collect()
}

/// CoNLL-2003-like sentences with accented names.
fn conll(n: usize) -> String {
    let names = ["Müller", "José", "Zoë", "Ångström"];
    let places = ["São Paulo", "Zürich", "Kraków"];
    let mut s = String::from("-DOCSTART- O\n\n");
    for i in 0..n {
        let place: Vec<&str> = places[i % 3].split(' ').collect();
        s += &format!("{} B-PER\nfuhr O\nnach O\n", names[i % 4]);
        for (j, w) in place.iter().enumerate() {
            s += &format!("{w} {}-LOC\n", if j == 0 { "B" } else { "I" });
        }
        s += ". O\n\n";
    }
    s
}

fn tag_train<'a>(train: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "tag",
        "train",
        "--train",
        train,
        "--dev",
        train,
        "--out",
        out,
        "--embed",
        "4",
        "--char-embed",
        "3",
        "--char-hidden",
        "2",
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--json",
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn a_latin1_conll_file_trains_and_evaluates_with_encoding_latin1() {
    let d = scratch("enc-tag");
    let text = conll(12);
    let (l1, u8f) = (d.join("train.latin1"), d.join("train.utf8"));
    std::fs::write(&l1, latin1(&text)).unwrap();
    std::fs::write(&u8f, &text).unwrap();
    let (l1_s, u8_s) = (l1.to_str().unwrap(), u8f.to_str().unwrap());

    // Without the flag: one message naming the file once, the line, and the flag.
    let run = d.join("refused");
    let out = seqrnn(&tag_train(l1_s, run.to_str().unwrap(), &[]));
    let e = fails(&out, "line 3 is not valid UTF-8 (byte offset 15)");
    assert_eq!(e.matches("train.latin1").count(), 1, "{e}");
    assert!(
        e.contains("pass --encoding LABEL (e.g. --encoding latin1)"),
        "{e}"
    );
    assert!(!run.join("config.json").exists());

    let (a, b) = (d.join("latin1"), d.join("utf8"));
    let (a_s, b_s) = (a.to_str().unwrap(), b.to_str().unwrap());
    let va = json(&ok(&seqrnn(&tag_train(
        l1_s,
        a_s,
        &["--encoding", "latin1"],
    ))));
    let vb = json(&ok(&seqrnn(&tag_train(u8_s, b_s, &[]))));
    // The same tokens: the same vocabulary and the same run, to the bit.
    assert_eq!(
        std::fs::read(a.join("words.txt")).unwrap(),
        std::fs::read(b.join("words.txt")).unwrap()
    );
    let words = std::fs::read_to_string(a.join("words.txt")).unwrap();
    assert!(
        words.contains("müller") || words.contains("Müller"),
        "{words}"
    );
    assert_eq!(va["dev_accuracy"], vb["dev_accuracy"]);
    let config = std::fs::read_to_string(a.join("config.json")).unwrap();
    assert!(
        config.contains("\"encoding\": \"windows-1252\""),
        "{config}"
    );

    // eval reads the file in the run's encoding without the flag, and gives the UTF-8 twin's
    // figures; --encoding overrides it.
    let eval = |run: &str, file: &str, extra: &[&str]| {
        let mut v = vec!["tag", "eval", "--model", run, "--test", file, "--json"];
        v.extend_from_slice(extra);
        json(&ok(&seqrnn(&v)))
    };
    let ea = eval(a_s, l1_s, &[]);
    let eb = eval(b_s, u8_s, &[]);
    assert_eq!(ea["tokens"], eb["tokens"]);
    assert_eq!(ea["test_accuracy"], eb["test_accuracy"]);
    assert_eq!(
        eval(a_s, u8_s, &["--encoding", "utf-8"])["tokens"],
        eb["tokens"]
    );
    fails(
        &seqrnn(&["tag", "eval", "--model", b_s, "--test", l1_s]),
        "train.latin1: line 3 is not valid UTF-8",
    );
}

#[test]
fn an_unknown_encoding_is_refused_with_valid_labels() {
    let d = scratch("enc-unknown");
    let f = d.join("t.txt");
    std::fs::write(&f, "a O\n").unwrap();
    let f = f.to_str().unwrap();
    let run = d.join("run");
    let out = seqrnn(&tag_train(
        f,
        run.to_str().unwrap(),
        &["--encoding", "latin-9x"],
    ));
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("unknown encoding \"latin-9x\"") && e.contains("latin1, iso-8859-15"),
        "{e}"
    );
    assert!(!run.exists());
    let help = ok(&seqrnn(&["classify", "train", "--help"]));
    assert!(help.contains("--encoding <LABEL>"), "{help}");
}

/// `text` in windows-1252 (Latin-1 plus the typographic characters of 0x80–0x9F).
fn cp1252(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            '€' => 0x80,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '–' => 0x96,
            c => u8::try_from(u32::from(c)).expect("a windows-1252 character"),
        })
        .collect()
}

#[test]
fn a_windows_1252_classify_table_trains_and_evaluates() {
    let d = scratch("enc-classify");
    let mut s = String::from("label\tsentence\n");
    for i in 0..24 {
        s += match i % 2 {
            0 => "pos\tun café “très” bon – 5 €\n",
            _ => "neg\tl’hôtel était très mauvais\n",
        };
    }
    for f in ["train.tsv", "dev.tsv", "test.tsv"] {
        std::fs::write(d.join(f), cp1252(&s)).unwrap();
    }
    let (data, run) = (d.to_str().unwrap(), d.join("run"));
    let run_s = run.to_str().unwrap();
    let train = |extra: &[&str]| {
        let mut v = vec![
            "classify",
            "train",
            "--data",
            data,
            "--out",
            run_s,
            "--hidden",
            "4",
            "--embed",
            "4",
            "--epochs",
            "1",
            "--threads",
            "1",
            "--force",
        ];
        v.extend_from_slice(extra);
        seqrnn(&v)
    };
    let e = fails(&train(&[]), "train.tsv: line 2 is not valid UTF-8");
    assert!(e.contains("--encoding"), "{e}");
    ok(&train(&["--encoding", "windows-1252"]));
    let vocab = std::fs::read_to_string(run.join("vocab.txt")).unwrap();
    for w in ["café", "“très”", "–", "€", "l’hôtel", "était"] {
        assert!(vocab.lines().any(|l| l == w), "{w} not in {vocab}");
    }
    let v = json(&ok(&seqrnn(&[
        "classify", "eval", "--model", run_s, "--data", data, "--json",
    ])));
    assert_eq!(
        (v["examples"].as_u64(), v["unknown_tokens"].as_u64()),
        (Some(24), Some(0))
    );
}

#[test]
fn a_windows_1252_word_corpus_trains_and_evaluates() {
    let d = scratch("enc-lm");
    let line = "Müller sagte „Grüße“ – 5 € in São Paulo\n";
    let text = line.replace('„', "\"");
    std::fs::write(d.join("train.txt"), cp1252(&text.repeat(30))).unwrap();
    std::fs::write(d.join("valid.txt"), cp1252(&text.repeat(3))).unwrap();
    std::fs::write(d.join("test.txt"), cp1252(&text.repeat(3))).unwrap();
    let (data, run) = (d.to_str().unwrap(), d.join("run"));
    let run_s = run.to_str().unwrap();
    let args = [
        "train",
        "--data",
        data,
        "--out",
        run_s,
        "--hidden",
        "8",
        "--layers",
        "1",
        "--bptt",
        "4",
        "--batch",
        "2",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--encoding",
        "cp1252",
    ];
    ok(&seqrnn(&args));
    let vocab = std::fs::read_to_string(run.join("vocab.txt")).unwrap();
    let words: Vec<&str> = vocab.lines().collect();
    assert_eq!(
        words[..9],
        [
            "Müller",
            "sagte",
            "\"Grüße“",
            "–",
            "5",
            "€",
            "in",
            "São",
            "Paulo"
        ]
    );
    // eval reads the corpus in the run's encoding; UTF-8, asked for, is refused.
    let e = json(&ok(&seqrnn(&[
        "eval", "--model", run_s, "--data", data, "--json",
    ])));
    assert!(e["test_ppl"].as_f64().unwrap().is_finite(), "{e}");
    fails(
        &seqrnn(&[
            "eval",
            "--model",
            run_s,
            "--data",
            data,
            "--encoding",
            "utf-8",
        ]),
        "test.txt: line 1 is not valid UTF-8 (byte offset 1)",
    );
}

#[test]
fn a_utf8_bom_is_skipped() {
    let d = scratch("enc-bom");
    let text = conll(8);
    let f = d.join("bom.conll");
    std::fs::write(&f, [&b"\xEF\xBB\xBF"[..], text.as_bytes()].concat()).unwrap();
    let run = d.join("run");
    let v = json(&ok(&seqrnn(&tag_train(
        f.to_str().unwrap(),
        run.to_str().unwrap(),
        &[],
    ))));
    assert!(v["dev_accuracy"].as_f64().is_some(), "{v}");
    let words = std::fs::read_to_string(run.join("words.txt")).unwrap();
    assert!(
        !words.contains('\u{feff}') && !words.contains("DOCSTART"),
        "{words}"
    );
}

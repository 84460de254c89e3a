//! `seqrnn speech` on tiny made-up recordings, as a user runs it: two "words" that are tones
//! ("lo" a low one, "hi" a high one), one to three per utterance, written as WAV files of
//! several rates, sample formats and channel counts (`common::speech_corpus`).

use crate::common::*;

fn train_args<'a>(
    train: &'a str,
    valid: &'a str,
    test: &'a str,
    out: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let v = vec![
        "speech",
        "train",
        "--train",
        train,
        "--valid",
        valid,
        "--test",
        test,
        "--out",
        out,
        "--mels",
        "20",
        "--hidden",
        "24",
        "--layers",
        "1",
        "--stack",
        "3",
        "--batch",
        "8",
        "--epochs",
        "15",
        "--lr",
        "0.02",
        "--ema",
        "0",
        "--dropout",
        "0",
        "--freq-masks",
        "0",
        "--time-masks",
        "0",
        "--threads",
        "1",
        "--json",
    ];
    with_overrides(v, extra)
}

#[test]
fn delta_features_widen_each_frame() {
    let d = scratch("deltas");
    let tr = speech_corpus(&d, "train", 24, 0);
    let va = speech_corpus(&d, "valid", 8, 1);
    let out = d.join("run");
    let out_s = out.to_str().unwrap();
    let extra = ["--deltas", "2", "--epochs", "2", "--freq-masks", "2"];
    let v = json(&ok(&seqrnn(&train_args(&tr, &va, &va, out_s, &extra))));
    let config = std::fs::read_to_string(out.join("config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(
        config["model"]["features"], 60,
        "20 mels, deltas, delta-deltas"
    );
    assert_eq!(config["features"]["deltas"], 2);
    let e = json(&ok(&seqrnn(&[
        "speech", "eval", "--model", out_s, "--test", &va, "--json",
    ])));
    assert_eq!(e["test_wer"], v["test_wer"], "{e}");
    let onnx = d.join("onnx");
    let args = ["export", "--model", out_s, "--out", onnx.to_str().unwrap()];
    fails(&seqrnn(&args), "delta features is not supported");
    let out2 = d.join("run2");
    let args = train_args(&tr, &va, &va, out2.to_str().unwrap(), &["--deltas", "3"]);
    refused(&args, "deltas must be 0 (none), 1 (deltas) or 2", &out2);
}

#[test]
fn train_eval_transcribe_agree() {
    let d = scratch("ok");
    let tr = speech_corpus(&d, "train", 48, 0);
    let va = speech_corpus(&d, "valid", 12, 1);
    let te = speech_corpus(&d, "test", 12, 2);
    let out = d.join("run");
    let out_s = out.to_str().unwrap();
    let a = json(&ok(&seqrnn(&train_args(&tr, &va, &te, out_s, &[]))));
    for key in ["test_accuracy", "test_wer", "test_cer"] {
        let v = a[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key} {v}");
    }
    assert!(a["test_wer"].as_f64().unwrap() < 0.5, "did not learn: {a}");
    for f in [
        "config.json",
        "model.safetensors",
        "metrics.csv",
        "curve.svg",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    // eval gives the figures train printed; --hyp-out lists every utterance.
    let hyp = d.join("hyp.tsv");
    let e = json(&ok(&seqrnn(&[
        "speech",
        "eval",
        "--model",
        out_s,
        "--test",
        &te,
        "--hyp-out",
        hyp.to_str().unwrap(),
        "--json",
    ])));
    assert_eq!(a["test_wer"], e["test_wer"]);
    assert_eq!(a["test_accuracy"], e["test_accuracy"]);
    let hyps = std::fs::read_to_string(&hyp).unwrap();
    assert_eq!(hyps.lines().count(), 12);
    // Lexicon decoding writes only words of the training transcripts.
    let lex = d.join("lex.tsv");
    ok(&seqrnn(&[
        "speech",
        "eval",
        "--model",
        out_s,
        "--test",
        &te,
        "--lexicon",
        "--beam",
        "4",
        "--hyp-out",
        lex.to_str().unwrap(),
    ]));
    for line in std::fs::read_to_string(&lex).unwrap().lines() {
        let said = line.split('\t').nth(2).unwrap();
        assert!(said.split(' ').all(|w| w == "lo" || w == "hi"), "{line}");
    }
    // transcribe: one line per file, the hypotheses eval wrote, and alignment pictures.
    let files: Vec<String> = (0..3)
        .map(|i| {
            d.join(format!("test-{i}.wav"))
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let align = d.join("align");
    let mut args = vec![
        "speech",
        "transcribe",
        "--model",
        out_s,
        "--align-out",
        align.to_str().unwrap(),
    ];
    args.extend(files.iter().map(String::as_str));
    let text = ok(&seqrnn(&args));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    for (line, f) in lines.iter().zip(&files) {
        let (path, said) = line.split_once('\t').unwrap();
        assert_eq!(path, f);
        let want = hyps
            .lines()
            .find(|l| l.starts_with(f.as_str()))
            .unwrap()
            .split('\t')
            .nth(2)
            .unwrap();
        assert_eq!(said, want, "{f}");
    }
    for i in 0..3 {
        let png = std::fs::read(align.join(format!("test-{i}.png"))).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }
    // A manifest can be transcribed too.
    let text = ok(&seqrnn(&["speech", "transcribe", "--model", out_s, &te]));
    assert_eq!(text.lines().count(), 12);
}

#[test]
fn bad_input_gives_one_message() {
    let d = scratch("bad");
    let tr = speech_corpus(&d, "train", 16, 0);
    let va = speech_corpus(&d, "valid", 4, 1);
    let out = d.join("run");
    let out_s = out.to_str().unwrap();
    let good = std::fs::read(d.join("train-0.wav")).unwrap();
    let write = |name: &str, bytes: &[u8], transcript: &str| {
        std::fs::write(d.join(format!("{name}.wav")), bytes).unwrap();
        let m = d.join(format!("{name}.tsv"));
        std::fs::write(&m, format!("{name}.wav\t{transcript}\n")).unwrap();
        m.to_str().unwrap().to_string()
    };
    let text = write("text", b"this is not a recording\n", "lo");
    let cut = write("cut", &good[..good.len() - 301], "lo");
    let empty = write("empty", &wav_bytes(8000, 1, 16, 1, &[]), "lo");
    let mut alaw = wav_bytes(8000, 1, 8, 1, &[0.1; 800]);
    alaw[20] = 6;
    let alaw = write("alaw", &alaw, "lo");
    let short = write("short", &wav_bytes(8000, 1, 16, 1, &[0.1; 400]), "hi lo hi");
    let alien = write("alien", &good, "lo zz");
    let no_tab = d.join("notab.tsv");
    std::fs::write(&no_tab, "train-0.wav lo\n").unwrap();
    let no_tab = no_tab.to_str().unwrap();
    for (test, needle) in [
        (&text, "not a WAV file"),
        (&cut, "truncated"),
        (&empty, "no samples"),
        (&alaw, "A-law"),
        (&short, "too short for its transcript under CTC"),
        (&alien, "which is not in the alphabet"),
        (&no_tab.to_string(), "line 1: expected path<TAB>transcript"),
    ] {
        let args = train_args(&tr, &va, test, out_s, &["--epochs", "1"]);
        let err = fails(&seqrnn(&args), needle);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(
            !out.join("config.json").exists(),
            "{test} left a run behind"
        );
    }
    for (extra, needle) in [
        (&["--stack", "0"][..], "stacked frames"),
        (&["--dropout", "1"][..], "dropout"),
        (&["--beam", "0"][..], "--beam"),
        (&["--mels", "500"][..], "mel"),
    ] {
        fails(&seqrnn(&train_args(&tr, &va, &va, out_s, extra)), needle);
    }
    fails(
        &seqrnn(&["speech", "train", "--out", out_s]),
        "--fsdd DIR, or --train and --valid",
    );
    // A trained run refuses a transcript with characters it never saw.
    ok(&seqrnn(&train_args(
        &tr,
        &va,
        &va,
        out_s,
        &["--epochs", "1"],
    )));
    fails(
        &seqrnn(&["speech", "eval", "--model", out_s, "--test", &alien]),
        "which is not in the alphabet",
    );
    fails(
        &seqrnn(&[
            "speech",
            "transcribe",
            "--model",
            out_s,
            &d.join("cut.wav").to_string_lossy(),
        ]),
        "truncated",
    );
}

#[test]
fn resume_continues_exactly() {
    let d = scratch("resume");
    let tr = speech_corpus(&d, "train", 24, 0);
    let va = speech_corpus(&d, "valid", 6, 1);
    let (whole, part) = (d.join("whole"), d.join("part"));
    let (w, p) = (whole.to_str().unwrap(), part.to_str().unwrap());
    let extra = [
        "--epochs",
        "2",
        "--dropout",
        "0.2",
        "--time-masks",
        "2",
        "--time-width",
        "5",
    ];
    let a = json(&ok(&seqrnn(&train_args(&tr, &va, &va, w, &extra))));
    ok(&seqrnn(&train_args(
        &tr,
        &va,
        &va,
        p,
        &[
            "--epochs",
            "1",
            "--dropout",
            "0.2",
            "--time-masks",
            "2",
            "--time-width",
            "5",
        ],
    )));
    let b = json(&ok(&seqrnn(&[
        "speech",
        "train",
        "--train",
        &tr,
        "--valid",
        &va,
        "--test",
        &va,
        "--out",
        p,
        "--resume",
        "--epochs",
        "2",
        "--threads",
        "1",
        "--json",
    ])));
    assert_eq!(a["test_wer"], b["test_wer"]);
    same_run_files(&whole, &part);
}

/// The manifest `name-1w.tsv` of the one-word lines of `manifest`.
fn one_word(dir: &std::path::Path, manifest: &str, name: &str) -> String {
    let text = std::fs::read_to_string(manifest).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.split('\t').nth(1).unwrap().contains(' '))
        .collect();
    let path = dir.join(format!("{name}-1w.tsv"));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn a_word_head_classifies_isolated_words() {
    let d = scratch("words");
    let tr = one_word(&d, &speech_corpus(&d, "train", 120, 0), "train");
    let va = one_word(&d, &speech_corpus(&d, "valid", 24, 1), "valid");
    let te = one_word(&d, &speech_corpus(&d, "test", 24, 2), "test");
    let out = d.join("run");
    let out_s = out.to_str().unwrap();
    let a = json(&ok(&seqrnn(&train_args(
        &tr,
        &va,
        &te,
        out_s,
        &["--word-head", "0.5"],
    ))));
    assert_eq!(a["test_accuracy"].as_f64(), Some(1.0), "{a}");
    let config = std::fs::read_to_string(out.join("config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["model"]["word_head"]["words"], 2);
    assert_eq!(config["train"]["decoding"], "words");
    // eval reads the word head as train did; --beam 1 decodes the same weights with CTC.
    let eval = |extra: &[&str]| {
        let mut args = vec!["speech", "eval", "--model", out_s, "--test", &te, "--json"];
        args.extend_from_slice(extra);
        json(&ok(&seqrnn(&args)))
    };
    assert_eq!(eval(&[])["test_accuracy"], a["test_accuracy"]);
    let ctc = eval(&["--beam", "1"])["test_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&ctc), "{ctc}");
    let said = ok(&seqrnn(&[
        "speech",
        "transcribe",
        "--model",
        out_s,
        &d.join("test-0.wav").to_string_lossy(),
    ]));
    let want = std::fs::read_to_string(&te).unwrap();
    let want = want.lines().find(|l| l.starts_with("test-0.wav"));
    if let Some(line) = want {
        assert_eq!(said.trim_end().split('\t').nth(1), line.split('\t').nth(1));
    }
    let onnx = d.join("onnx");
    let args = ["export", "--model", out_s, "--out", onnx.to_str().unwrap()];
    fails(&seqrnn(&args), "word head is not supported");
    // Two models with word heads transcribe as one; a model without one cannot join them.
    let (second, plain) = (d.join("second"), d.join("plain"));
    let (second_s, plain_s) = (second.to_str().unwrap(), plain.to_str().unwrap());
    let extra = ["--word-head", "0.5", "--seed", "2", "--hidden", "20"];
    ok(&seqrnn(&train_args(&tr, &va, &te, second_s, &extra)));
    ok(&seqrnn(&train_args(&tr, &va, &te, plain_s, &[])));
    let both = eval(&["--model", second_s]);
    assert_eq!(both["test_accuracy"].as_f64(), Some(1.0), "{both}");
    let manifest = std::fs::read_to_string(&te).unwrap();
    let first: Vec<&str> = manifest.lines().next().unwrap().split('\t').collect();
    let wav = d.join(first[0]);
    let wav = wav.to_string_lossy();
    let args = [
        "speech",
        "transcribe",
        "--model",
        out_s,
        "--model",
        second_s,
        &wav,
    ];
    let said = ok(&seqrnn(&args));
    assert_eq!(said.trim_end().split('\t').nth(1), Some(first[1]), "{said}");
    let mut args = vec!["speech", "eval", "--model", out_s, "--model", plain_s];
    args.extend(["--test", &te]);
    let err = fails(&seqrnn(&args), "has no word head");
    assert!(err.contains(plain_s), "{err}");
    args[5] = second_s;
    args.extend(["--beam", "1"]);
    fails(
        &seqrnn(&args),
        "--beam and --lexicon decode one model's characters",
    );
    // Connected utterances cannot have one; a weight must be positive.
    let many = speech_corpus(&d, "many", 16, 0);
    let out2 = d.join("run2");
    let out2_s = out2.to_str().unwrap();
    for (train, extra, needle) in [
        (&many, &["--word-head", "1"][..], "must be one word"),
        (
            &tr,
            &["--word-head=-1"][..],
            "--word-head must be a positive weight",
        ),
    ] {
        let err = fails(&seqrnn(&train_args(train, &va, &te, out2_s, extra)), needle);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(!out2.join("config.json").exists());
    }
}

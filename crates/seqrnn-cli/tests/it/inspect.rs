//! `seqrnn inspect` on a tiny character model, as a user runs it.

use crate::common::*;

#[test]
fn inspects_a_character_model() {
    let d = scratch("char");
    let text =
        "ROMEO:\nBut soft, what light (through yonder) window breaks?\n\"It is the east\".\n";
    std::fs::write(d.join("input.txt"), text.repeat(12)).unwrap();
    let run = d.join("run");
    let (run_s, input) = (run.to_str().unwrap(), d.join("input.txt"));
    ok(&seqrnn(&[
        "train",
        "--tokens",
        "char",
        "--data",
        input.to_str().unwrap(),
        "--out",
        run_s,
        "--cell",
        "lstm",
        "--layers",
        "2",
        "--hidden",
        "8",
        "--embed",
        "4",
        "--bptt",
        "10",
        "--batch",
        "2",
        "--epochs",
        "1",
        "--threads",
        "1",
    ]));
    let sample = d.join("sample.txt");
    std::fs::write(&sample, text.repeat(2) + "Zebra\n").unwrap();
    let out = d.join("inspect");
    let stdout = ok(&seqrnn(&[
        "inspect",
        "--model",
        run_s,
        "--text",
        sample.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--layer",
        "0",
        "--heatmap-tokens",
        "40",
    ]));
    assert!(stdout.contains("LSTM 2×8, layer 0"), "{stdout}");
    assert!(stdout.contains("forget gate"), "{stdout}");
    for q in ["input_gate", "forget_gate", "output_gate", "cell", "hidden"] {
        let csv = std::fs::read_to_string(out.join(format!("{q}.csv"))).unwrap();
        let mut lines = csv.lines();
        assert!(lines.next().unwrap().starts_with("t,token,u0,u1,"), "{q}");
        // One line per token: the sample's characters (Z is not in the vocabulary: <unk>).
        assert_eq!(lines.count(), 2 * text.chars().count() + 6, "{q}");
        let png = std::fs::read(out.join(format!("heatmap-{q}.png"))).unwrap();
        assert_eq!(&png[..4], b"\x89PNG");
    }
    // Line breaks and quotes survive in the CSV token field.
    let csv = std::fs::read_to_string(out.join("hidden.csv")).unwrap();
    assert!(
        csv.contains("\n6,\"\\n\",") && csv.contains(",\"\"\"\","),
        "{csv:.300}"
    );
    let units = std::fs::read_to_string(out.join("units.csv")).unwrap();
    for p in ["position in line", "inside quotes", "inside brackets"] {
        assert!(units.contains(p), "{p}: {units}");
    }
    assert!(out.join("unit-position-in-line.png").is_file());
    let sat = std::fs::read_to_string(out.join("saturation.csv")).unwrap();
    assert_eq!(sat.lines().count(), 1 + 3 * 8);
    let md = std::fs::read_to_string(out.join("inspect.md")).unwrap();
    assert!(
        md.contains("Gate saturation") && md.contains("1 outside the vocabulary"),
        "{md}"
    );

    // Bad input: each one clear error.
    let o = out.to_str().unwrap();
    let s = sample.to_str().unwrap();
    fails(
        &seqrnn(&[
            "inspect", "--model", run_s, "--text", s, "--out", o, "--layer", "2",
        ]),
        "layer 2 does not exist",
    );
    fails(
        &seqrnn(&[
            "inspect",
            "--model",
            d.join("nope").to_str().unwrap(),
            "--text",
            s,
            "--out",
            o,
        ]),
        "run directory not found",
    );
    fails(
        &seqrnn(&[
            "inspect",
            "--model",
            run_s,
            "--text",
            d.join("none.txt").to_str().unwrap(),
            "--out",
            o,
        ]),
        "cannot read",
    );
    std::fs::write(d.join("bad.txt"), [0xffu8, 0xfe, 0x41]).unwrap();
    fails(
        &seqrnn(&[
            "inspect",
            "--model",
            run_s,
            "--text",
            d.join("bad.txt").to_str().unwrap(),
            "--out",
            o,
        ]),
        "bad.txt: line 1 is not valid UTF-8",
    );
    let fc = foreign_run(&d, "forecast", r#"{"format": 1, "task": "forecast"}"#);
    fails(
        &seqrnn(&[
            "inspect",
            "--model",
            fc.to_str().unwrap(),
            "--text",
            s,
            "--out",
            o,
        ]),
        "`forecast` run",
    );
}

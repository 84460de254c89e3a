//! Numeric series classification: the `.ts` reader (lengths, dimensions, labels, missing values
//! and every refusal), the training statistics, the padding guarantee of the vector input, and
//! the UEA archive's files from `shared/data` (skipped when absent).

use std::path::{Path, PathBuf};

use seqrnn::classify::model::{
    Classifier, ClassifierConfig, ClassifierWorkspace, Directions, Pooling, VectorBatch,
};
use seqrnn::classify::series::{prepare, SeriesSource};
use seqrnn::data::ts::{read_ts, FillMissing, LabelColumn, TsOptions};
use seqrnn::rnn::{CellKind, GruVariant};

use crate::common;

/// A fresh temporary folder for this test.
fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("seqrnn-it-ts-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

const OPTIONS: TsOptions = TsOptions {
    labels: LabelColumn::Required,
    dimensions: None,
    missing: FillMissing::Refuse,
};

const HEADER: &str = "# a comment\n@problemName Toy\n@timeStamps false\n@missing false\n\
                      @univariate false\n@dimensions 2\n@equalLength false\n\
                      @classLabel true up down\n@data\n";

#[test]
fn reads_variable_lengths_and_several_dimensions_time_major() {
    let dir = tmp("read");
    let text = format!("{HEADER}1,2,3:10,20,30:up\n\n# between cases\n4.5,-1e-1:7,8:down\n");
    let f = read_ts(&write(&dir, "ok.ts", text.as_bytes()), &OPTIONS).unwrap();
    assert_eq!(f.problem.as_deref(), Some("Toy"));
    assert_eq!(
        (f.dimensions, f.class_labels.clone()),
        (2, vec!["up".to_string(), "down".into()])
    );
    assert_eq!(f.cases.len(), 2);
    assert_eq!(f.cases[0].values, [1.0, 10.0, 2.0, 20.0, 3.0, 30.0]);
    assert_eq!((f.cases[0].len, f.cases[0].line), (3, 10));
    assert_eq!(f.cases[1].values, [4.5, 7.0, -0.1, 8.0]);
    assert_eq!(
        (f.cases[1].label.as_deref(), f.cases[1].line),
        (Some("down"), 13)
    );
    assert_eq!(f.length_range(), (2, 3));
    // A univariate file may leave out @dimensions.
    let uni = "@univariate true\n@classLabel true 0 1\n@data\n1,2,3,4:1\n5,6:0\n";
    let f = read_ts(&write(&dir, "uni.ts", uni.as_bytes()), &OPTIONS).unwrap();
    assert_eq!((f.dimensions, f.cases[0].len, f.cases[1].len), (1, 4, 2));
    // For prediction the label column may be absent or present.
    let optional = TsOptions {
        labels: LabelColumn::Optional,
        ..OPTIONS
    };
    let mixed = format!("{HEADER}1,2:3,4\n1,2:3,4:down\n");
    let f = read_ts(&write(&dir, "mixed.ts", mixed.as_bytes()), &optional).unwrap();
    assert_eq!(
        (f.cases[0].label.clone(), f.cases[1].label.as_deref()),
        (None, Some("down"))
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn missing_values_are_refused_or_filled() {
    let dir = tmp("missing");
    let text = format!("{HEADER}1,?,3:?,?,?:up\n5,7,9:4,6,8:down\n");
    let p = write(&dir, "missing.ts", text.as_bytes());
    let e = read_ts(&p, &OPTIONS).unwrap_err().to_string();
    assert!(
        e.contains("missing.ts: line 10: missing value `?` (dimension 1, step 2)"),
        "{e}"
    );
    let read = |fill| TsOptions {
        missing: fill,
        ..OPTIONS
    };
    let f = read_ts(&p, &read(FillMissing::Previous)).unwrap();
    assert!(f.has_missing() && f.cases[0].values[2].is_nan());
    // Through prepare: statistics skip the missing values; `previous` carries 1 forward and
    // the empty channel takes its training mean (0 once standardised).
    let source = |fill| SeriesSource {
        train: &p,
        test: None,
        valid_fraction: 0.5,
        fill,
        seed: 1,
        stack: 1,
    };
    let dup =
        format!("{HEADER}1,?,3:?,?,?:up\n5,7,9:4,6,8:down\n1,1,1:2,2,2:up\n5,5,5:6,6,6:down\n");
    let p2 = write(&dir, "four.ts", dup.as_bytes());
    for fill in [FillMissing::Previous, FillMissing::Mean] {
        let d = prepare(&SeriesSource {
            train: &p2,
            ..source(fill)
        })
        .unwrap();
        let all: Vec<&Vec<f32>> = d.train.x.iter().chain(&d.valid.x).collect();
        assert!(
            all.iter().all(|x| x.iter().all(|v| v.is_finite())),
            "{fill:?}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_files_are_refused_naming_file_and_line() {
    let dir = tmp("bad");
    let h = HEADER;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.ts", b"".to_vec(), "the file is empty"),
        (
            "nodata.ts",
            b"@classLabel true a b\n".to_vec(),
            "no @data line",
        ),
        (
            "nocases.ts",
            format!("{h}\n# none\n").into_bytes(),
            "no cases after @data",
        ),
        (
            "ragged.ts",
            format!("{h}1,2,3:4,5:up\n").into_bytes(),
            "line 10: dimension 2 has 2 values but dimension 1 has 3",
        ),
        (
            "label.ts",
            format!("{h}1,2:3,4:up\n1,2:3,4:sideways\n").into_bytes(),
            "line 11: label `sideways` is not declared in @classLabel (up down)",
        ),
        (
            "number.ts",
            format!("{h}1,2:3,x4:up\n").into_bytes(),
            "line 10: `x4` is not a number (dimension 2, step 2)",
        ),
        (
            "dims.ts",
            format!("{h}1,2:3,4:5,6:up\n").into_bytes(),
            "line 10: 3 dimension(s) and a label, expected 2",
        ),
        (
            "nolabel.ts",
            b"@classLabel false\n@data\n1,2:0\n".to_vec(),
            "line 3: the file declares no labels",
        ),
        (
            "utf8.ts",
            format!("{h}1,2:3,4:up\n1,2:3,4:zz\n").into_bytes(),
            "",
        ),
        (
            "before.ts",
            b"@classLabel true a b\n1,2:a\n@data\n".to_vec(),
            "line 2: a case before @data",
        ),
        (
            "stamps.ts",
            b"@timeStamps true\n@data\n".to_vec(),
            "line 1: time stamps (@timeStamps true) are not supported",
        ),
    ];
    for (name, mut bytes, needle) in cases {
        if name == "utf8.ts" {
            // Replace the last label by a byte that is not UTF-8.
            let n = bytes.len();
            bytes[n - 2] = 0xff;
        }
        let p = write(&dir, name, &bytes);
        let e = read_ts(&p, &OPTIONS).unwrap_err().to_string();
        let needle = if name == "utf8.ts" {
            "line 11: not valid UTF-8"
        } else {
            needle
        };
        assert!(e.contains(name) && e.contains(needle), "{name}: {e}");
    }
    // A model's channel count is checked against the header.
    let p = write(&dir, "two.ts", format!("{h}1:2:up\n").as_bytes());
    let e = read_ts(
        &p,
        &TsOptions {
            dimensions: Some(3),
            ..OPTIONS
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("declares 2 dimension(s) but the model reads 3"),
        "{e}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn training_statistics_standardise_every_split() {
    let dir = tmp("stats");
    // Channel 0 takes 0..8 over the training cases, channel 1 is constant.
    let mut text = String::from("@dimensions 2\n@classLabel true a b\n@data\n");
    for k in 0..8 {
        let label = if k % 2 == 0 { "a" } else { "b" };
        text += &format!("{},{}:5,5:{label}\n", 2 * k, 2 * k + 1);
    }
    let train = write(&dir, "train.ts", text.as_bytes());
    let test = write(
        &dir,
        "test.ts",
        b"@dimensions 2\n@classLabel true a b\n@data\n100:5:b\n",
    );
    let d = prepare(&SeriesSource {
        train: &train,
        test: Some(&test),
        valid_fraction: 0.25,
        fill: FillMissing::Refuse,
        seed: 7,
        stack: 1,
    })
    .unwrap();
    assert_eq!(d.labels.tokens(), ["a", "b"]);
    assert_eq!((d.train.x.len(), d.valid.x.len()), (6, 2));
    assert_eq!(d.valid.labels.iter().filter(|&&l| l == 0).count(), 1);
    // Mean and std are of the training part only, over all its steps.
    let steps: Vec<f32> = d
        .train
        .x
        .iter()
        .flat_map(|x| x.iter().step_by(2).copied())
        .collect();
    let mean = steps.iter().sum::<f32>() / steps.len() as f32;
    let var = steps.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / steps.len() as f32;
    assert!(
        mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4,
        "{mean} {var}"
    );
    let s = &d.input.stats;
    assert_eq!(s.std[1], 1.0);
    assert!(d.train.x.iter().all(|x| x[1] == 0.0));
    let t = d.test.as_ref().unwrap();
    assert_eq!(t.labels, [1]);
    assert!((t.x[0][0] - (100.0 - s.mean[0]) / s.std[0]).abs() < 1e-5);
    // A test label the training file does not declare is refused with its line.
    let other = write(
        &dir,
        "other.ts",
        b"@dimensions 2\n@classLabel true a b c\n@data\n1:5:c\n",
    );
    let e = prepare(&SeriesSource {
        train: &train,
        test: Some(&other),
        valid_fraction: 0.25,
        fill: FillMissing::Refuse,
        seed: 7,
        stack: 1,
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("other.ts: line 4: label `c` is not one of the training file's (a b)"),
        "{e}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_case_gets_the_same_logits_alone_and_batched_with_longer_ones() {
    let c = 3;
    let case: Vec<f32> = (0..4 * c).map(|i| (i as f32 * 0.37).sin()).collect();
    let longer: Vec<Vec<f32>> = [9, 6]
        .iter()
        .map(|&n| (0..n * c).map(|i| (i as f32 * 0.11).cos()).collect())
        .collect();
    for cell in [CellKind::Lstm, CellKind::Gru(GruVariant::ResetAfter)] {
        for (direction, pooling) in [
            (Directions::Bidirectional, Pooling::Last),
            (Directions::Bidirectional, Pooling::Max),
            (Directions::Forward, Pooling::Mean),
        ] {
            let m = Classifier::new(ClassifierConfig {
                vocab: 0,
                embed: 0,
                channels: c,
                cell,
                hidden: 5,
                layers: 2,
                direction,
                pooling,
                dropout: 0.0,
                classes: 3,
            })
            .unwrap();
            assert!(m.tensors().iter().all(|t| !t.0.starts_with("embedding")));
            let p = m.init_params(3).unwrap();
            let mut ws = ClassifierWorkspace::default();
            let mut batch = VectorBatch::default();
            batch.fill(c, [case.as_slice()].into_iter());
            let mut alone = vec![0.0; 3];
            m.logits(&p, &batch, &mut alone, &mut ws).unwrap();
            batch.fill(c, [&longer[0][..], &case[..], &longer[1][..]].into_iter());
            assert_eq!((batch.t, batch.lens.clone()), (9, vec![9, 4, 6]));
            let mut many = vec![0.0; 9];
            m.logits(&p, &batch, &mut many, &mut ws).unwrap();
            common::assert_close(&format!("{cell:?} {pooling:?}"), &many[3..6], &alone, 1e-5);
            assert!(alone.iter().any(|v| v.abs() > 1e-4));
        }
    }
    // Vectors of another width, or token ids, are refused.
    let m = Classifier::new(ClassifierConfig {
        vocab: 0,
        embed: 0,
        channels: c,
        ..ClassifierConfig::default()
    })
    .unwrap();
    let p = m.init_params(1).unwrap();
    let mut batch = VectorBatch::default();
    batch.fill(2, [&[1.0, 2.0][..]].into_iter());
    let e = m
        .logits(
            &p,
            &batch,
            &mut [0.0; 2],
            &mut ClassifierWorkspace::default(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("expected [1, 1, 3]"), "{e}");
    let bad = ClassifierConfig {
        vocab: 5,
        embed: 0,
        channels: c,
        ..ClassifierConfig::default()
    };
    assert!(Classifier::new(bad).is_err());
}

#[test]
fn uea_japanese_vowels_and_basic_motions() {
    let Some(uea) = common::shared("data/uea") else {
        return;
    };
    let jv = |split: &str| uea.join(format!("JapaneseVowels/JapaneseVowels_{split}.ts"));
    let d = prepare(&SeriesSource {
        train: &jv("TRAIN"),
        test: Some(&jv("TEST")),
        valid_fraction: 0.2,
        fill: FillMissing::Refuse,
        seed: 1,
        stack: 1,
    })
    .unwrap();
    assert_eq!(d.problem.as_deref(), Some("JapaneseVowels"));
    assert_eq!(d.input.channels(), 12);
    assert_eq!(d.labels.len(), 9);
    assert_eq!((d.train.x.len(), d.valid.x.len()), (216, 54));
    assert_eq!(d.test.as_ref().unwrap().x.len(), 370);
    assert_eq!(d.lengths, (7, 26));
    let bm = read_ts(&uea.join("BasicMotions/BasicMotions_TEST.ts"), &OPTIONS).unwrap();
    assert_eq!(
        (bm.dimensions, bm.cases.len(), bm.length_range()),
        (6, 40, (100, 100))
    );
    assert_eq!(
        bm.class_labels,
        ["Standing", "Running", "Walking", "Badminton"]
    );
}

//! The comparison-report builder on tiny runs made here: reading runs, measuring them, the
//! report files, and the errors for runs that cannot be compared.
use std::path::{Path, PathBuf};

use seqrnn::data::Vocab;
use seqrnn::lm::compare::{
    check_comparable, load_run, measure_lm, write_report, ReportOptions, RunSummary,
};
use seqrnn::lm::MODEL_FORMAT;
use seqrnn::lm::{LanguageModel, LmConfig, LmInit, LmRunConfig, LmRunData, TokenKindName};
use seqrnn::report::metrics::{write_metrics, EpochMetrics};
use seqrnn::rnn::{CellKind, GruVariant};
use seqrnn::run::{save_tensors_atomic, RunDir};
use seqrnn::Error;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("seqrnn-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const WORDS: [&str; 7] = ["the", "cat", "sat", "on", "mat", "<eos>", "<unk>"];

/// A tiny word corpus in the plain layout, whose vocabulary is [`WORDS`] in that order.
fn corpus(dir: &Path) {
    let line = "the cat sat on the mat\n";
    std::fs::write(dir.join("train.txt"), line.repeat(30) + "<unk>\n").unwrap();
    std::fs::write(dir.join("valid.txt"), line.repeat(3)).unwrap();
    std::fs::write(dir.join("test.txt"), line.repeat(4)).unwrap();
}

/// A run folder as training leaves it: config, vocabulary, weights and `valid` perplexities
/// one epoch each, 100 tokens and 2 seconds an epoch.
fn fake_run(dir: &Path, cell: CellKind, valid: &[f64]) -> PathBuf {
    let run = RunDir::new(dir);
    run.create().unwrap();
    let mut vocab = Vocab::new();
    for w in WORDS {
        vocab.add(w);
    }
    vocab.save(&run.vocab_path()).unwrap();
    let cfg = LmConfig {
        vocab: WORDS.len(),
        embed: 4,
        cell,
        hidden: 6,
        layers: 1,
        ..LmConfig::default()
    };
    let data = LmRunData {
        tokens: TokenKindName::Word,
        encoding: Default::default(),
    };
    LmRunConfig::new(cfg, serde_json::Value::Null, data)
        .save(&run)
        .unwrap();
    let model = LanguageModel::new(cfg).unwrap();
    let params = model.init_params(LmInit::Uniform(0.1), 1).unwrap();
    save_tensors_atomic(
        &run.model_path(),
        &model.param_layout().to_file(&params, MODEL_FORMAT),
    )
    .unwrap();
    let rows: Vec<EpochMetrics> = valid
        .iter()
        .enumerate()
        .map(|(i, &v)| EpochMetrics {
            epoch: i + 1,
            lr: 1.0,
            train_ppl: v * 0.8,
            valid_ppl: v,
            tokens_per_s: 50.0 + i as f64,
            seconds: 2.0,
            tokens_seen: 100 * (i as u64 + 1),
        })
        .collect();
    write_metrics(&run.metrics_path(), &rows).unwrap();
    dir.to_path_buf()
}

#[test]
fn report_of_two_runs() {
    let d = scratch("two");
    corpus(&d);
    let lstm = fake_run(&d.join("lstm"), CellKind::Lstm, &[7.0, 5.0, 4.0]);
    let gru = fake_run(
        &d.join("gru"),
        CellKind::Gru(GruVariant::ResetAfter),
        &[6.5, 5.5, 5.0, f64::NAN],
    );
    let mut runs = vec![load_run(&lstm).unwrap(), load_run(&gru).unwrap()];
    assert_eq!(runs[0].name, "lstm");
    assert_eq!(runs[0].model, "LSTM 1×6");
    assert_eq!(runs[1].curve[2].seconds, 6.0);
    assert_eq!(runs[0].best().unwrap().epoch, 3);
    // The NaN epoch is not the best.
    assert_eq!(runs[1].best().unwrap().valid, 5.0);

    // Measured on the test split with the run's weights: 4 lines of 7 tokens, 27 predicted.
    let e = measure_lm(&lstm, &d, 1).unwrap();
    assert_eq!(e.split, "test");
    assert_eq!(e.count, 27);
    assert!(
        e.value.is_finite() && e.value > 1.0 && e.per_s > 0.0,
        "{e:?}"
    );
    if cfg!(target_os = "linux") {
        assert!(e.peak_rss_bytes.unwrap() > 1 << 20);
    }
    runs[0].summary.eval = Some(e.clone());

    let out = d.join("report");
    let report = write_report(
        &out,
        &runs,
        &ReportOptions {
            command: Some("seqrnn compare --runs lstm,gru".into()),
            ..ReportOptions::default()
        },
    )
    .unwrap();
    // The default target is the weakest run's best: 5.0, reached by the LSTM at epoch 2
    // (4 s, 200 tokens) and by the GRU at epoch 3.
    assert_eq!(report.target, 5.0);
    assert_eq!(report.rows[0].epoch_to_target, Some(2));
    assert_eq!(report.rows[0].seconds_to_target, Some(4.0));
    assert_eq!(report.rows[0].progress_to_target, Some(200.0));
    assert_eq!(report.rows[1].epoch_to_target, Some(3));
    assert_eq!(report.rows[0].eval_value, Some(e.value));
    assert_eq!(report.rows[1].eval_value, None);
    // 100 tokens at 50, 51 and 52 tokens/s.
    let tps = report.rows[0].train_per_s.unwrap();
    assert!((tps - 300.0 / (2.0 + 100.0 / 51.0 + 100.0 / 52.0)).abs() < 1e-9);
    assert_eq!(report.rows[0].params, runs[0].params);

    for f in [
        "report.md",
        "report.html",
        "report.json",
        "valid-vs-progress.png",
        "valid-vs-seconds.png",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    for f in ["valid-vs-progress.png", "valid-vs-seconds.png"] {
        let bytes = std::fs::read(out.join(f)).unwrap();
        assert_eq!(&bytes[..4], b"\x89PNG", "{f}");
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| lstm | LSTM 1×6 |"), "{md}");
    assert!(md.contains("test perplexity"), "{md}");
    assert!(md.contains(&format!("{:.2}", e.value)), "{md}");
    assert!(md.contains("seqrnn compare --runs lstm,gru"));
    assert!(md.contains("![Validation perplexity by training progress](valid-vs-progress.png)"));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<table>") && html.contains("<td>LSTM 1×6</td>"));
    // Self-contained: the charts are inside, no file is referenced.
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 2);
    assert!(!html.contains(".png\""));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["rows"][1]["name"], "gru");
    assert_eq!(json["metric"]["name"], "perplexity");

    // A target nobody reaches, and a summary file read back.
    RunSummary {
        eval: Some(e),
        train_peak_rss_bytes: Some(123 << 20),
        train_threads: Some(1),
        train_seconds: Some(6.5),
    }
    .save(&gru)
    .unwrap();
    let runs = vec![load_run(&lstm).unwrap(), load_run(&gru).unwrap()];
    assert_eq!(runs[1].summary.train_peak_rss_bytes, Some(123 << 20));
    let report = write_report(
        &out,
        &runs,
        &ReportOptions {
            target: Some(4.5),
            ..ReportOptions::default()
        },
    )
    .unwrap();
    assert_eq!(report.rows[1].epoch_to_target, None);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("not reached") && md.contains("123 MiB"), "{md}");
}

#[test]
fn runs_that_cannot_be_read_or_compared() {
    let d = scratch("bad");
    let lstm = fake_run(&d.join("a"), CellKind::Lstm, &[7.0]);

    // Missing folder.
    match load_run(&d.join("absent")).unwrap_err() {
        Error::Io { cause: source, .. } => assert_eq!(source.kind(), std::io::ErrorKind::NotFound),
        e => panic!("{e:?}"),
    }
    // A folder that is not a run.
    std::fs::create_dir_all(d.join("empty")).unwrap();
    assert!(matches!(
        load_run(&d.join("empty")).unwrap_err(),
        Error::Io { .. }
    ));
    std::fs::write(d.join("empty/config.json"), "{\"hello\": 1}").unwrap();
    let e = load_run(&d.join("empty")).unwrap_err().to_string();
    assert!(e.contains("not a seqrnn run"), "{e}");

    // Unreadable and empty metrics.
    let broken = fake_run(&d.join("broken"), CellKind::Lstm, &[7.0]);
    std::fs::write(broken.join("metrics.csv"), "epoch,oops\n1,2\n").unwrap();
    let e = load_run(&broken).unwrap_err().to_string();
    assert!(e.contains("metrics.csv") && e.contains("header"), "{e}");
    let fresh = fake_run(&d.join("fresh"), CellKind::Lstm, &[]);
    let e = load_run(&fresh).unwrap_err().to_string();
    assert!(e.contains("no finished epoch"), "{e}");
    std::fs::remove_file(fresh.join("metrics.csv")).unwrap();
    assert!(matches!(load_run(&fresh).unwrap_err(), Error::Io { .. }));

    // A supervised-task run (forecasting), read by column names.
    let fc = d.join("forecast");
    std::fs::create_dir_all(&fc).unwrap();
    std::fs::write(
        fc.join("config.json"),
        r#"{"format": 1, "task": "forecast", "model": {"cell": "gru", "layers": 1, "hidden": 8}}"#,
    )
    .unwrap();
    std::fs::write(
        fc.join("metrics.csv"),
        "epoch,lr,train_loss,valid_loss,valid_neg_mse,examples_per_s,seconds\n\
         1,0.001,1.0,0.9,-0.7,1000,3\n2,0.001,0.8,0.7,-0.5,1100,3\n3,0.001,0.8,0.7,-0.6,1100,3\n",
    )
    .unwrap();
    let f = load_run(&fc).unwrap();
    assert_eq!(
        (f.task.as_str(), f.metric.name.as_str()),
        ("forecast", "neg_mse")
    );
    // The supervised scores are higher-is-better.
    assert!(!f.metric.lower_is_better);
    assert_eq!(f.best().unwrap().epoch, 2);
    assert_eq!(f.reaches(-0.55).unwrap().epoch, 2);
    assert_eq!(f.curve[2].seconds, 9.0);
    assert_eq!(f.model, "GRU 1×8");

    // Mixed tasks, mixed data: one clear error each; nothing to compare: an error too.
    let a = load_run(&lstm).unwrap();
    let e = check_comparable(&[a.clone(), f.clone()])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("different tasks") && e.contains("`forecast`"),
        "{e}"
    );
    let out = d.join("out");
    assert!(write_report(&out, &[a.clone(), f], &ReportOptions::default()).is_err());
    assert!(!out.join("report.md").exists());
    let mut char_run = a.clone();
    char_run.data_kind = "char".into();
    let e = check_comparable(&[a, char_run]).unwrap_err().to_string();
    assert!(e.contains("different data"), "{e}");
    assert!(check_comparable(&[]).is_err());

    // Measuring needs a test split.
    let e = measure_lm(&lstm, &d.join("nowhere"), 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("test.txt"), "{e}");
}

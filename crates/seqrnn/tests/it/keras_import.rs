//! Keras import: each `.keras` fixture (made by `tools/peers/keras_fixtures.py` with Keras 3)
//! mapped onto a seqrnn model gives, by the library's own forward pass, the loss Keras reported
//! on the same windows within 1e-5 relative, and the same probabilities; models outside the
//! family and broken archives are refused with a message naming why.

use std::path::{Path, PathBuf};

use seqrnn::classify::model::Classifier;
use seqrnn::error::Error;
use seqrnn::last_token::model::{LastTokenModel, LastTokenWorkspace};
use seqrnn::lm::{LanguageModel, LmWorkspace};
use seqrnn::rnn::SeqShape;
use seqrnn::tasks::KerasImported;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras")
}

/// What Keras computed on a fixture's windows.
struct Expected {
    windows: Vec<Vec<u32>>,
    targets: serde_json::Value,
    loss: f64,
    probs: Vec<Vec<f64>>,
}

fn expected(name: &str) -> Expected {
    let path = dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    Expected {
        windows: serde_json::from_value(v["windows"].clone()).unwrap(),
        targets: v["targets"].clone(),
        loss: v["keras_loss"].as_f64().unwrap(),
        probs: serde_json::from_value(v["probs"].clone()).unwrap(),
    }
}

fn read(name: &str, classes: Option<usize>) -> KerasImported {
    let path = dir().join(format!("{name}.keras"));
    KerasImported::read(&path, classes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Time-major `ids[T, B]` of equal-length rows.
fn time_major(rows: &[Vec<u32>]) -> Vec<u32> {
    let t = rows[0].len();
    (0..t)
        .flat_map(|i| rows.iter().map(move |r| r[i]))
        .collect()
}

fn softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
    let e: Vec<f64> = logits.iter().map(|&x| (x as f64 - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

fn close(name: &str, ours: f64, keras: f64) {
    let rel = (ours - keras).abs() / keras.abs();
    eprintln!("{name}: seqrnn {ours:.7}, Keras {keras:.7}, relative difference {rel:.1e}");
    assert!(
        rel < 1e-5,
        "{name}: seqrnn {ours} against Keras {keras} ({rel:e})"
    );
}

fn same_probs(name: &str, ours: &[Vec<f64>], keras: &[Vec<f64>]) {
    for (o, k) in ours.iter().zip(keras) {
        for (a, b) in o.iter().zip(k) {
            assert!(
                (a - b).abs() < 1e-5,
                "{name}: probability {a} against Keras {b}"
            );
        }
    }
}

fn every_step(name: &str, model: &LanguageModel, params: &[f32]) {
    let e = expected(name);
    let targets: Vec<Vec<u32>> = serde_json::from_value(e.targets.clone()).unwrap();
    let (b, t) = (e.windows.len(), e.windows[0].len());
    let shape = SeqShape { t, b };
    let (ids, tg) = (time_major(&e.windows), time_major(&targets));
    let mut ws = LmWorkspace::default();
    let mut state = model.zero_state(b);
    let sum = model
        .eval_loss(params, &ids, &tg, shape, &mut state, &mut ws)
        .unwrap();
    close(name, sum / (t * b) as f64, e.loss);
    let mut state = model.zero_state(b);
    let logits = model
        .logits(params, &ids, shape, &mut state, &mut ws)
        .unwrap();
    let v = model.config().vocab;
    let last: Vec<Vec<f64>> = (0..e.probs.len())
        .map(|j| softmax(&logits[((t - 1) * b + j) * v..][..v]))
        .collect();
    same_probs(name, &last, &e.probs);
}

fn last_token(name: &str, model: &LastTokenModel, params: &[f32]) {
    let e = expected(name);
    let targets: Vec<u32> = serde_json::from_value(e.targets.clone()).unwrap();
    let (b, t) = (e.windows.len(), e.windows[0].len());
    let ids = time_major(&e.windows);
    let mut ws = LastTokenWorkspace::default();
    let sum = model
        .eval_loss(params, &ids, t, b, &targets, &mut ws)
        .unwrap();
    close(name, sum / b as f64, e.loss);
    let logits = model.logits(params, &ids, t, b, &mut ws).unwrap();
    let v = model.config().vocab;
    let rows: Vec<Vec<f64>> = (0..e.probs.len())
        .map(|j| softmax(&logits[j * v..][..v]))
        .collect();
    same_probs(name, &rows, &e.probs);
}

fn classifier(name: &str, model: &Classifier, params: &[f32]) {
    let e = expected(name);
    let targets: Vec<usize> = serde_json::from_value(e.targets.clone()).unwrap();
    // Post-padded with id 0: each text is its ids before the padding.
    let texts: Vec<Vec<u32>> = (e.windows.iter())
        .map(|w| w.iter().copied().take_while(|&id| id != 0).collect())
        .collect();
    let probs = seqrnn::classify::probabilities(model, params, &texts).unwrap();
    let k = model.config().classes;
    let loss = (targets.iter().enumerate())
        .map(|(i, &y)| -(probs[i * k + y] as f64).ln())
        .sum::<f64>()
        / targets.len() as f64;
    close(name, loss, e.loss);
    let rows: Vec<Vec<f64>> = (0..e.probs.len())
        .map(|i| probs[i * k..][..k].iter().map(|&p| p as f64).collect())
        .collect();
    same_probs(name, &rows, &e.probs);
}

fn check(name: &str, classes: Option<usize>) {
    match read(name, classes) {
        KerasImported::LanguageModel(m, p) => every_step(name, &m, &p),
        KerasImported::LastToken(m, p, _) => last_token(name, &m, &p),
        KerasImported::Classifier(m, p) => classifier(name, &m, &p),
    }
}

#[test]
fn every_step_lstm_stack_matches_keras() {
    check("lm_lstm2", None);
}

#[test]
fn every_step_gru_reset_after_matches_keras() {
    check("lm_gru_reset_after", None);
}

#[test]
fn every_step_gru_reset_before_matches_keras() {
    check("lm_gru_reset_before", None);
}

#[test]
fn every_step_last_layer_of_its_own_width_matches_keras() {
    let imported = read("lm_last_width", None);
    let KerasImported::LanguageModel(m, _) = &imported else {
        panic!("not an every-step model: {}", imported.describe());
    };
    assert_eq!((m.config().hidden, m.config().last_hidden), (8, Some(5)));
    check("lm_last_width", None);
}

#[test]
fn last_token_models_match_keras() {
    let imported = read("last_token_lstm2", None);
    assert!(
        matches!(imported, KerasImported::LastToken(_, _, 6)),
        "{}",
        imported.describe()
    );
    check("last_token_lstm2", None);
    check("last_token_gru", None);
}

#[test]
fn classifiers_match_keras() {
    check("classifier_lstm", Some(3));
    check("classifier_gru2", Some(3));
}

fn refusal(name: &str, classes: Option<usize>) -> String {
    let path = dir().join(name);
    match KerasImported::read(&path, classes) {
        Err(e @ Error::Format { .. }) => e.to_string(),
        Err(e) => panic!("{name}: not a format error: {e}"),
        Ok(m) => panic!("{name}: read as {}", m.describe()),
    }
}

#[test]
fn models_outside_the_family_are_refused_naming_the_layer() {
    let e = refusal("unsupported_conv1d.keras", None);
    assert!(e.contains("(Conv1D)") && e.contains("`conv`"), "{e}");
    let e = refusal("unsupported_mixed_cells.keras", None);
    assert!(e.contains("differ in cell"), "{e}");
    // A language model is not a classifier: it returns sequences, or does not mask padding.
    let e = refusal("lm_lstm2.keras", Some(24));
    assert!(e.contains("return_sequences=True"), "{e}");
    let e = refusal("last_token_lstm2.keras", Some(24));
    assert!(e.contains("mask_zero=False"), "{e}");
    // A classifier read without labels predicts no vocabulary.
    let e = refusal("classifier_lstm.keras", None);
    assert!(e.contains("mask_zero=True"), "{e}");
    let e = refusal("classifier_lstm.keras", Some(4));
    assert!(e.contains("3 units but the labels name 4"), "{e}");
}

#[test]
fn broken_archives_are_refused() {
    let tmp = std::env::temp_dir().join(format!("seqrnn-keras-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let whole = std::fs::read(dir().join("lm_gru_reset_after.keras")).unwrap();
    let cases = [
        ("truncated.keras", whole[..whole.len() / 2].to_vec()),
        ("text.keras", b"not a zip archive\n".to_vec()),
        ("empty.keras", Vec::new()),
    ];
    for (name, bytes) in cases {
        let path = tmp.join(name);
        std::fs::write(&path, bytes).unwrap();
        let e = refusal(path.to_str().unwrap(), None);
        assert!(e.contains("not a .keras archive"), "{name}: {e}");
    }
    let e = refusal("no_weights.keras", None);
    assert!(e.contains("no model.weights.h5"), "{e}");
    // The weights file itself corrupt: the archive rebuilt with its HDF5 bytes cut.
    let path = tmp.join("bad-h5.keras");
    rewrite_weights(&dir().join("lm_gru_reset_after.keras"), &path, |h5| {
        h5.truncate(h5.len() / 3)
    });
    let e = refusal(path.to_str().unwrap(), None);
    assert!(e.contains("model.weights.h5"), "{e}");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Copies the archive `from` to `to`, its `model.weights.h5` changed by `change`.
fn rewrite_weights(from: &Path, to: &Path, mut change: impl FnMut(&mut Vec<u8>)) {
    use std::io::{Read, Write};
    let mut src = zip::ZipArchive::new(std::fs::File::open(from).unwrap()).unwrap();
    let mut dst = zip::ZipWriter::new(std::fs::File::create(to).unwrap());
    for i in 0..src.len() {
        let mut entry = src.by_index(i).unwrap();
        let name = entry.name().unwrap().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        if name == "model.weights.h5" {
            change(&mut bytes);
        }
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        dst.start_file(name, options).unwrap();
        dst.write_all(&bytes).unwrap();
    }
    dst.finish().unwrap();
}

/// Bytes of the weights file overwritten one place at a time: each archive is read or refused,
/// never a panic (a decoder panic would surface as a format error naming malformed data).
#[test]
fn damaged_weights_are_read_or_refused() {
    let tmp = std::env::temp_dir().join(format!("seqrnn-keras-damaged-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let from = dir().join("last_token_gru.keras");
    let path = tmp.join("damaged.keras");
    let mut len = 0;
    rewrite_weights(&from, &path, |h5| len = h5.len());
    let (mut refused, mut read) = (0, 0);
    for at in (0..len).step_by(len / 400 + 1) {
        rewrite_weights(&from, &path, |h5| h5[at] ^= 0xA5);
        match KerasImported::read(&path, None) {
            Ok(_) => read += 1,
            Err(Error::Format { .. }) => refused += 1,
            Err(e) => panic!("byte {at}: {e}"),
        }
    }
    eprintln!("damaged weights: {read} read, {refused} refused");
    assert!(refused > 0 && read > 0, "{read} read, {refused} refused");
    let _ = std::fs::remove_dir_all(&tmp);
}

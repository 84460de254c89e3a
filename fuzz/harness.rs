//! The fuzz harnesses, shared by the `cargo fuzz` targets (`fuzz_targets/`) and the stable
//! regression test (`crates/seqrnn/tests/it/fuzz_regressions.rs`).
//!
//! Each feeds arbitrary bytes to one reader and checks that it answers (a value or an error)
//! without panicking, and that what it accepts is consistent: it saves and reads back the same,
//! token ids lie inside the vocabulary, parameter blocks have the model's size.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use seqrnn::data::{self, Vocab};
use seqrnn::io::tensors::TensorFile;
use seqrnn::lm;
use seqrnn::train::checkpoint::{checkpoint_bytes, checkpoint_from_bytes};

/// The names of the targets, as in `fuzz/Cargo.toml` and the folders of `fuzz/seeds/`.
pub const TARGETS: [&str; 7] = [
    "checkpoint",
    "import",
    "vocab",
    "corpus",
    "table",
    "labeled",
    "keras",
];

/// Runs the harness called `target` on `data`.
pub fn run_target(target: &str, data: &[u8]) {
    match target {
        "checkpoint" => checkpoint(data),
        "import" => import(data),
        "vocab" => vocab(data),
        "corpus" => corpus(data),
        "table" => table(data),
        "labeled" => labeled(data),
        "keras" => keras(data),
        other => panic!("unknown fuzz target {other}"),
    }
}

/// A scratch folder for the readers that take paths (per thread, as tests replaying the
/// harnesses run side by side and write the same file names; in memory where possible).
fn scratch() -> PathBuf {
    static THREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    thread_local! {
        static N: usize = THREADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let d = base.join(format!(
        "seqrnn-fuzz-{}-{}",
        std::process::id(),
        N.with(|n| *n)
    ));
    std::fs::create_dir_all(&d).expect("scratch folder");
    d
}

/// The checkpoint loader. The first byte chooses how the rest is read: as it is (bit 0 clear),
/// or re-sealed first (checksum recomputed), so that mutations also reach the layers behind the
/// checksum: metadata JSON, metrics, tensor sizes, state/position consistency.
pub fn checkpoint(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let resealed;
    let input = if mode & 1 == 1 {
        match TensorFile::from_bytes_unverified(rest).and_then(|f| f.to_bytes_sealed()) {
            Ok(b) => {
                resealed = b;
                &resealed[..]
            }
            Err(_) => rest,
        }
    } else {
        rest
    };
    // The size the loader is told to expect: the file's own (to get past that check) or not.
    let n = match TensorFile::from_bytes_unverified(input) {
        Ok(f) if mode & 2 == 0 => f.tensors.get("params").map_or(3, |t| t.data.len()),
        _ => 3,
    };
    if let Ok(ck) = checkpoint_from_bytes(input, n) {
        assert_eq!(ck.params.len(), n);
        if let Some((m, v)) = &ck.adam {
            assert_eq!((m.len(), v.len()), (n, n));
        }
        assert!(ck.ema.as_ref().is_none_or(|e| e.len() == n));
        assert!(ck.state.partial.is_some() || ck.carried.is_empty());
        // What loads saves and loads back the same (compared as text: NaN ≠ NaN).
        let path = Path::new("checkpoint.safetensors");
        let bytes = checkpoint_bytes(&ck, path).expect("a loaded checkpoint saves");
        let back = checkpoint_from_bytes(&bytes, n).expect("a saved checkpoint loads");
        assert_eq!(format!("{back:?}"), format!("{ck:?}"));
    }
}

/// The safetensors reader and the PyTorch `state_dict` import.
pub fn import(data: &[u8]) {
    let path = Path::new("fuzz.safetensors");
    // The reader as `seqrnn import` uses it (checksum verified when present), then the import
    // on whatever parses, so that mutations of checksummed seeds reach the shape inference.
    let _ = TensorFile::from_bytes(data);
    let Ok(file) = TensorFile::from_bytes_unverified(data) else {
        return;
    };
    for t in file.tensors.values() {
        assert_eq!(t.data.len(), t.shape.iter().product::<usize>());
    }
    if let Ok((model, params)) = lm::import_state_dict(&file, path) {
        assert_eq!(params.len(), model.num_params());
        let again = model.param_layout().to_file(&params, lm::MODEL_FORMAT);
        let back = model
            .param_layout()
            .from_file(&again, path, "a model")
            .expect("exported weights load");
        assert!(back
            .iter()
            .zip(&params)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}

/// The vocabulary reader: what loads saves and loads back the same.
pub fn vocab(data: &[u8]) {
    let d = scratch();
    let p = d.join("vocab.txt");
    std::fs::write(&p, data).expect("write");
    if let Ok(v) = Vocab::load(&p) {
        assert!(!v.is_empty());
        for (i, t) in v.tokens().iter().enumerate() {
            assert_eq!(v.id(t), Some(i as u32));
        }
        let q = d.join("vocab2.txt");
        v.save(&q).expect("a loaded vocabulary saves");
        assert_eq!(Vocab::load(&q).expect("a saved vocabulary loads"), v);
    }
}

/// The word and character corpus readers. The first byte picks the layout; the rest is cut at
/// NUL bytes into the training, validation and test files.
pub fn corpus(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let d = scratch().join("corpus");
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch folder");
    let check = |c: &data::Corpus| {
        let v = c.vocab.len() as u32;
        let streams = [Some(&c.train), Some(&c.valid), c.test.as_ref()];
        for s in streams.into_iter().flatten() {
            assert!(s.iter().all(|&id| id < v));
        }
    };
    if mode & 1 == 1 {
        let f = d.join("input.txt");
        std::fs::write(&f, rest).expect("write");
        if let Ok(c) = data::load_char_corpus(&f, Default::default()) {
            check(&c);
            assert!(!c.train.is_empty());
        }
        return;
    }
    let names = if mode & 2 == 0 {
        ["train.txt", "valid.txt", "test.txt"]
    } else {
        ["ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"]
    };
    for (name, part) in names.iter().zip(rest.split(|&b| b == 0)) {
        std::fs::write(d.join(name), part).expect("write");
    }
    if let Ok(c) = data::load_word_corpus(&d, Default::default()) {
        check(&c);
        if let Ok((ids, _)) = data::encode_words(&d.join(names[1]), &c.vocab, Default::default()) {
            assert!(ids.iter().all(|&id| (id as usize) < c.vocab.len()));
        }
    }
    if let Ok(text) = std::str::from_utf8(rest) {
        let _ = data::tokenize(text, data::TokenKind::Word);
        let _ = data::tokenize(text, data::TokenKind::Char);
    }
}

/// The CSV reader of forecasting data (`data::table`).
pub fn table(data: &[u8]) {
    let d = scratch();
    let p = d.join("table.csv");
    std::fs::write(&p, data).expect("write");
    let loaded = data::table::Table::load(&p);
    if let Ok(t) = &loaded {
        assert_eq!(t.values.len(), t.rows * t.columns.len());
        assert!(t.values.iter().all(|v| v.is_finite()));
        for (_, col) in &t.text {
            assert_eq!(col.len(), t.rows);
        }
        for (i, name) in t.columns.iter().enumerate() {
            assert_eq!(t.column(name).ok(), Some(i));
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let parsed = data::table::Table::parse(text, &p);
        assert_eq!(parsed.is_ok(), loaded.is_ok());
    }
}

/// The TSV reader of classification data (`classify::data`). The bytes are cut at the first NUL
/// into a training and a validation file; labels unknown to the training file are refused.
pub fn labeled(data: &[u8]) {
    use seqrnn::classify::data as labeled;
    let d = scratch();
    let mut parts = data.splitn(2, |&b| b == 0);
    let (train, valid) = (parts.next().unwrap_or(&[]), parts.next());
    let (tp, vp) = (d.join("train.tsv"), d.join("dev.tsv"));
    std::fs::write(&tp, train).expect("write");
    let Ok(examples) = labeled::load_tsv(&tp, Default::default()) else {
        return;
    };
    assert!(examples
        .iter()
        .all(|e| !e.label.is_empty() && !e.tokens.is_empty()));
    let vocab = labeled::build_vocab(&examples, 1);
    let labels = labeled::build_labels(&examples);
    let enc = labeled::encode_all(&examples, &vocab, &labels, &tp)
        .expect("the training split's own labels encode");
    assert!(enc
        .ids
        .iter()
        .flatten()
        .all(|&i| (i as usize) < vocab.len()));
    assert!(enc.labels.iter().all(|&l| (l as usize) < labels.len()));
    if let Some(valid) = valid {
        std::fs::write(&vp, valid).expect("write");
        if let Ok(v) = labeled::load_tsv(&vp, Default::default()) {
            let _ = labeled::encode_all(&v, &vocab, &labels, &vp);
        }
    }
}

/// The Keras archive reader and its mapping (`seqrnn import --keras`). The first byte picks how
/// the rest is read: bit 0 clear, as a whole `.keras` archive; bit 0 set, as the
/// `model.weights.h5` of an archive whose `config.json` is `keras_config.json` (a last-token GRU
/// model), so that mutations reach the HDF5 decoder past the zip's checksums. Bit 1 asks for a
/// classifier of 3 labels. What maps has a parameter block of the model's size.
pub fn keras(data: &[u8]) {
    use seqrnn::tasks::KerasImported;
    use std::io::Write;
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let path = scratch().join("model.keras");
    if mode & 1 == 0 {
        std::fs::write(&path, rest).expect("write");
    } else {
        let file = std::fs::File::create(&path).expect("create");
        let mut zip = zip::ZipWriter::new(file);
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        let config: &[u8] = include_bytes!("keras_config.json");
        for (name, bytes) in [("config.json", config), ("model.weights.h5", rest)] {
            zip.start_file(name, stored).expect("zip entry");
            zip.write_all(bytes).expect("zip write");
        }
        zip.finish().expect("zip finish");
    }
    let classes = (mode & 2 == 2).then_some(3);
    let Ok(imported) = KerasImported::read(&path, classes) else {
        return;
    };
    let (n, params) = match &imported {
        KerasImported::LanguageModel(m, p) => (m.num_params(), p),
        KerasImported::LastToken(m, p, window) => {
            assert!(*window >= 1);
            (m.num_params(), p)
        }
        KerasImported::Classifier(m, p) => (m.num_params(), p),
    };
    assert_eq!(params.len(), n);
    assert!(params.iter().all(|v| v.is_finite()));
}

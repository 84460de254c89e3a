//! The tasks, one folder each: its data preparation, its network, its [`crate::train::Task`] for
//! the one training loop, and its `Trained` (a finished run loaded for use). [`load`] opens a
//! finished run of any task.
//!
//! Everything below this module (the engine, the shared network pieces, the loop, the readers,
//! run folders and reports) knows no task; a task may use any of them, and no other task.

pub mod classify;
pub mod forecast;
pub mod lm;
pub mod speech;
pub mod tag;
#[doc(hidden)]
pub mod tiny;
pub mod translate;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::tensors::TensorFile;
use crate::run::{Quantized, RunDir, QUANTIZED_KEY};

/// The task of the run in `dir`, as its `config.json` names it (one of [`TASKS`]); a run that
/// names no task but holds `tokens` is a language model (`"lm"`), written before runs named
/// their task.
///
/// # Errors
/// [`Error::Data`] when `dir` is missing or holds no `config.json` (not a run);
/// [`Error::Format`] when `config.json` is not JSON, names no task or a task this build does
/// not know; [`Error::Io`] when it cannot be read.
pub fn task_of(dir: impl AsRef<Path>) -> Result<&'static str> {
    let run = RunDir::new(dir.as_ref());
    if run.dir.is_dir() && !run.config_path().exists() {
        return Err(Error::Data {
            path: run.dir.clone(),
            message: "not a seqrnn run (no config.json)".into(),
        });
    }
    let config = run.read_config_json()?;
    let Some(name) = crate::run::task_of(&config) else {
        return Err(Error::Format {
            path: run.config_path(),
            message: "not a seqrnn run configuration (no `task`)".into(),
        });
    };
    TASKS
        .into_iter()
        .find(|&t| t == name)
        .ok_or_else(|| unknown_task(&run, name))
}

/// Opens the finished run in `dir`, whatever its task: reads `config.json`'s `task` and loads
/// the task's `Trained`.
///
/// Here a run of every task is first trained for a moment on a few made-up examples (hidden
/// lines, the way each task's `seqrnn … train` does it), then opened and used:
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("seqrnn-doc-load-{}", std::process::id()));
/// # let runs = seqrnn::tasks::tiny::all(&dir)?;
/// # let run_of = |task: &str| runs.iter().find(|(t, _)| *t == task).map(|r| r.1.clone()).unwrap();
/// use seqrnn::lm::Sampling;
///
/// let lm = seqrnn::load(run_of("lm"))?;
/// assert_eq!(lm.task(), "lm");
/// let text = lm.as_lm().unwrap().generate("the company said", 5, &Sampling::default())?;
/// assert!(text.starts_with("the company said"));
///
/// let keras = seqrnn::load(run_of("last-token"))?;
/// let text = keras.as_last_token().unwrap().generate("the company", 12, &Sampling::default())?;
/// assert!(text.starts_with("the company"));
///
/// let forecaster = seqrnn::load(run_of("forecast"))?;
/// let table = seqrnn::tasks::tiny::load_table()?;
/// assert_eq!(forecaster.as_forecast().unwrap().predict(&table)?.values.len(), 4);
///
/// let classifier = seqrnn::load(run_of("classify"))?;
/// let p = classifier.as_classify().unwrap().predict(&["a gripping film"])?;
/// assert_eq!(p[0].probabilities.len(), 2);
///
/// let translator = seqrnn::load(run_of("translate"))?;
/// assert_eq!(translator.as_translate().unwrap().translate(&["ein hund"], None)?.len(), 1);
///
/// let tagger = seqrnn::load(run_of("tag"))?;
/// let labels = tagger.as_tag().unwrap().tag(&["John lives in Paris"])?;
/// assert_eq!(labels[0].len(), 4);
///
/// let speech = seqrnn::load(run_of("speech"))?;
/// let tone = seqrnn::tasks::tiny::tones(&["lo", "hi"], 1);
/// assert_eq!(speech.as_speech().unwrap().transcribe(&[&tone])?.len(), 1);
///
/// for (task, run) in &runs {
///     assert_eq!(seqrnn::load(run)?.task(), *task);
/// }
/// assert!(seqrnn::load(&dir).is_err()); // not a run
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As [`task_of`] for a folder that is not a run of a known task; then the task's own
/// `Trained::load` errors ([`Error::NoFinishedEpoch`] for a run stopped before its first
/// epoch ended, [`Error::Format`] when its files disagree, I/O errors).
pub fn load(dir: impl AsRef<Path>) -> Result<Loaded> {
    let dir = dir.as_ref();
    Loaded::load(task_of(dir)?, dir)
}

/// The error for a run of a task this build does not know.
fn unknown_task(run: &RunDir, name: &str) -> Error {
    Error::Format {
        path: run.config_path(),
        message: format!(
            "a run of an unknown task `{name}` (this build knows {})",
            TASKS.join(", ")
        ),
    }
}

/// Declares the tasks [`load`] knows, one line each: the `Loaded` variant, the task's `Trained`
/// type, its name in `config.json`, its accessor and what the accessor gives. It makes
/// [`TASKS`], [`Loaded`] (with `task()`, `num_params()` and the `as_*` accessors) and the
/// dispatch of [`load`].
macro_rules! registry {
    ($($(#[$doc:meta])* $variant:ident($trained:ty) = $name:expr, $as:ident, $what:literal;)*) => {
        /// The tasks [`load`] knows, by their name in `config.json`.
        pub const TASKS: [&str; [$($name),*].len()] = [$($name),*];

        /// A finished run of any task, loaded for use by [`load`].
        ///
        /// Each kind is the task's own `Trained`; [`Loaded::task`] names it, and the `as_*` accessors
        /// give it when it is of that kind. The verbs: [`lm::Trained::generate`] and
        /// [`lm::last_token::Trained::generate`] (text after a prompt), [`forecast::Trained::predict`]
        /// (the horizon after a table), [`classify::Trained::predict`] (a label per text),
        /// [`translate::Trained::translate`], [`tag::Trained::tag`] (a label per word) and
        /// [`speech::Trained::transcribe`]; `predict` names the last three as well.
        #[derive(Clone, Debug)]
        // A run is loaded once and its weights live on the heap: the variants' sizes do not
        // matter.
        #[allow(clippy::large_enum_variant)]
        pub enum Loaded {
            $($(#[$doc])* $variant($trained),)*
        }

        impl Loaded {
            /// Loads the run in `dir` of the task `name` (one of [`TASKS`]).
            fn load(name: &str, dir: &Path) -> Result<Loaded> {
                Ok(match name {
                    $(n if n == $name => Loaded::$variant(<$trained>::load(dir)?),)*
                    other => return Err(unknown_task(&RunDir::new(dir), other)),
                })
            }

            /// The task's name in `config.json` (one of [`TASKS`]).
            pub fn task(&self) -> &'static str {
                match self {
                    $(Loaded::$variant(_) => $name,)*
                }
            }

            /// The number of weights of the model.
            pub fn num_params(&self) -> usize {
                match self {
                    $(Loaded::$variant(m) => m.params.len(),)*
                }
            }

            /// Whether the run is quantized: its weight matrices in 8 bits, their products
            /// on the integer kernels ([`quantize`]).
            pub fn is_int8(&self) -> bool {
                match self {
                    $(Loaded::$variant(m) => m.params.is_int8(),)*
                }
            }

            $(
                #[doc = concat!("The ", $what, ", if it is one.")]
                pub fn $as(&self) -> Option<&$trained> {
                    match self {
                        Loaded::$variant(m) => Some(m),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }
            )*
        }
    };
}

registry! {
    /// A language model (`seqrnn train`, `seqrnn import`).
    Lm(lm::Trained) = crate::run::LANGUAGE_MODEL_TASK, as_lm, "language model";
    /// A last-token language model (`seqrnn train --objective last-token`).
    LastToken(lm::last_token::Trained) = "last-token", as_last_token, "last-token language model";
    /// A forecaster (`seqrnn forecast train`).
    Forecast(forecast::Trained) = "forecast", as_forecast, "forecaster";
    /// A text classifier (`seqrnn classify train`).
    Classify(classify::Trained) = "classify", as_classify, "classifier";
    /// A translation model (`seqrnn translate train`).
    Translate(translate::Trained) = "translate", as_translate, "translation model";
    /// A tagger (`seqrnn tag train`).
    Tag(tag::Trained) = "tag", as_tag, "tagger";
    /// An acoustic model (`seqrnn speech train`).
    Speech(speech::Trained) = "speech", as_speech, "acoustic model";
}

/// What [`quantize`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizeReport {
    /// The task of the run.
    pub task: &'static str,
    /// The weight matrices stored in 8 bits, by name.
    pub tensors: Vec<String>,
    /// Size of the f32 `model.safetensors`, bytes.
    pub f32_bytes: u64,
    /// Size of the quantized `model.safetensors`, bytes.
    pub int8_bytes: u64,
}

/// Exports the finished run in `dir` to ONNX in `out` (`model.onnx`, or `encoder.onnx` and
/// `decoder.onnx` for translation; `preprocess.json`; the tagger's `crf.json`), at operator set
/// `opset` ([`crate::io::onnx::DEFAULT_OPSET`] by default on the command line). Every task
/// exports; `docs/export.md` gives each graph's inputs and outputs. Returns the names of the
/// files written.
///
/// # Errors
/// The run's loading errors; [`Error::Config`] for an operator set out of range; I/O errors.
pub fn export_onnx(
    dir: impl AsRef<Path>,
    out: impl AsRef<Path>,
    opset: i64,
) -> Result<Vec<&'static str>> {
    let out = out.as_ref();
    let single = vec!["model.onnx", "preprocess.json"];
    match load(dir)? {
        Loaded::Lm(m) => lm::export::export_onnx(&m, out, opset).map(|_| single),
        Loaded::LastToken(m) => lm::export::export_last_token(&m, out, opset).map(|_| single),
        Loaded::Classify(m) => classify::export::export_onnx(&m, out, opset).map(|_| single),
        Loaded::Forecast(m) => forecast::export::export_onnx(&m, out, opset).map(|_| single),
        Loaded::Speech(m) => speech::export::export_onnx(&m, out, opset).map(|_| single),
        Loaded::Tag(m) => {
            tag::export::export_onnx(&m, out, opset)?;
            let crf = m.model.crf().map(|_| "crf.json");
            Ok(single.into_iter().chain(crf).collect())
        }
        Loaded::Translate(m) => {
            translate::export::export_onnx(&m, out, opset)?;
            Ok(vec![
                "encoder.onnx",
                "decoder.onnx",
                "source.tokenizer.json",
                "target.tokenizer.json",
                "preprocess.json",
            ])
        }
    }
}

/// Writes into `out` an int8 copy of the finished run in `dir`, of any task: its weight
/// matrices ([`crate::model::layout::is_quantized_weight`]) in 8 bits with one scale per output channel
/// (`linalg::int8`), everything else as it was (biases, transition scores, vocabularies,
/// configuration with `"quantized": "int8"`). Loaded ([`load`]), the copy runs every product
/// with those matrices on the integer kernels; training from it is refused
/// ([`Error::Quantized`]). Checkpoints, metrics and the summary of the training are not
/// copied. The copy is loaded once before this returns.
///
/// # Errors
/// Those of [`load`] for `dir`; [`Error::Format`] for a run that is already quantized;
/// [`Error::RunExists`] when `out` holds a run (or is `dir`); I/O errors.
pub fn quantize(dir: impl AsRef<Path>, out: impl AsRef<Path>) -> Result<QuantizeReport> {
    let (dir, out) = (dir.as_ref(), out.as_ref());
    let task = load(dir)?.task();
    let (from, to) = (RunDir::new(dir), RunDir::new(out));
    let mut config = from.read_config_json()?;
    if config.get(QUANTIZED_KEY).is_some() {
        return Err(Error::Format {
            path: from.config_path(),
            message: "the run is quantized already".into(),
        });
    }
    if to.holds_run() || same_folder(dir, out) {
        return Err(Error::RunExists {
            dir: out.to_path_buf(),
        });
    }
    let mut file = TensorFile::load(&from.model_path())?;
    let names: Vec<String> = (file.tensors.iter())
        .filter(|(n, t)| crate::model::layout::is_quantized_weight(n, &t.shape))
        .map(|(n, _)| n.clone())
        .collect();
    for name in &names {
        file.quantize(name).map_err(|message| Error::Format {
            path: from.model_path(),
            message,
        })?;
    }
    to.create()?;
    copy_run_files(&from, &to)?;
    crate::run::save_tensors_atomic(&to.model_path(), &file)?;
    let quantized = serde_json::to_value(Quantized::Int8).expect("a unit variant serialises");
    config[QUANTIZED_KEY] = quantized;
    let text = serde_json::to_string_pretty(&config).expect("JSON read from a file serialises");
    crate::io::write_atomic(&to.config_path(), text.as_bytes())?;
    load(out)?;
    let size = |p: PathBuf| {
        std::fs::metadata(&p)
            .map(|m| m.len())
            .map_err(|cause| Error::Io { path: p, cause })
    };
    Ok(QuantizeReport {
        task,
        tensors: names,
        f32_bytes: size(from.model_path())?,
        int8_bytes: size(to.model_path())?,
    })
}

/// Whether two paths name the same folder (`b` may not exist yet).
fn same_folder(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Copies the files of a run that a quantized copy keeps: its vocabularies, label lists and
/// other inputs, not its weights, configuration, checkpoints or training record.
fn copy_run_files(from: &RunDir, to: &RunDir) -> Result<()> {
    let skip = [
        from.model_path(),
        from.config_path(),
        from.checkpoint_path(),
        from.metrics_path(),
        from.curve_path(),
        from.summary_path(),
    ];
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| Error::Io { path, cause }
    };
    for entry in std::fs::read_dir(&from.dir).map_err(io(&from.dir))? {
        let path = entry.map_err(io(&from.dir))?.path();
        let temporary = path.extension().is_some_and(|e| e == "tmp");
        if path.is_file() && !temporary && !skip.contains(&path) {
            let name = path.file_name().expect("a file has a name");
            std::fs::copy(&path, to.dir.join(name)).map_err(io(&path))?;
        }
    }
    Ok(())
}

/// A Keras model mapped onto a seqrnn model ([`import_keras`]), with its parameter block.
#[derive(Clone, Debug)]
pub enum KerasImported {
    /// Every-step language model (the last recurrent layer returns its sequences).
    LanguageModel(lm::LanguageModel, Vec<f32>),
    /// Last-token language model and its window (the Keras input length).
    LastToken(lm::last_token::model::LastTokenModel, Vec<f32>, usize),
    /// Text classifier (labels were given).
    Classifier(classify::model::Classifier, Vec<f32>),
}

impl KerasImported {
    /// Reads the `.keras` archive at `path` ([`crate::io::keras::read_keras`]) and maps it
    /// ([`crate::model::keras`]): a classifier when `classes` (the number of labels) is given;
    /// otherwise an every-step language model when its last recurrent layer returns its
    /// sequences, a last-token one when it returns its final state only.
    ///
    /// # Errors
    /// Those of `read_keras`; [`Error::Format`] naming the layer or setting outside the family.
    pub fn read(path: &Path, classes: Option<usize>) -> Result<Self> {
        let model = crate::io::keras::read_keras(path)?;
        let stack = crate::model::keras::KerasStack::of(&model, path)?;
        Ok(match (classes, stack.returns_sequences()) {
            (Some(k), _) => {
                let (m, p) = classify::keras::from_keras(&stack, k)?;
                KerasImported::Classifier(m, p)
            }
            (None, true) => {
                let (m, p) = lm::keras::from_keras(&stack)?;
                KerasImported::LanguageModel(m, p)
            }
            (None, false) => {
                let (m, p, window) = lm::last_token::keras::from_keras(&stack)?;
                KerasImported::LastToken(m, p, window)
            }
        })
    }

    /// The vocabulary size of the model's embedding.
    pub fn vocab(&self) -> usize {
        match self {
            KerasImported::LanguageModel(m, _) => m.config().vocab,
            KerasImported::LastToken(m, _, _) => m.config().vocab,
            KerasImported::Classifier(m, _) => m.config().vocab,
        }
    }

    /// One line naming what the model became.
    pub fn describe(&self) -> String {
        let (what, cell, layers, hidden, vocab, embed, more) = match self {
            KerasImported::LanguageModel(m, _) => {
                let c = m.config();
                let last = c.last_hidden.map(|n| format!(", last layer {n}"));
                let (v, e) = (c.vocab, c.embed);
                (
                    "every-step language model",
                    c.cell,
                    c.layers,
                    c.hidden,
                    v,
                    e,
                    last,
                )
            }
            KerasImported::LastToken(m, _, window) => {
                let c = m.config();
                let more = Some(format!(", window {window}"));
                (
                    "last-token language model",
                    c.cell,
                    c.layers,
                    c.hidden,
                    c.vocab,
                    c.embed,
                    more,
                )
            }
            KerasImported::Classifier(m, _) => {
                let c = m.config();
                let more = Some(format!(", {} classes", c.classes));
                (
                    "classifier",
                    c.cell,
                    c.layers,
                    c.hidden,
                    c.vocab,
                    c.embed,
                    more,
                )
            }
        };
        let more = more.unwrap_or_default();
        let cell = cell.name();
        format!("{what}, {cell} {layers}×{hidden} (vocabulary {vocab}, embedding {embed}{more})")
    }
}

/// What [`import_keras`] reads.
#[derive(Clone, Debug)]
pub struct KerasSource {
    /// The `.keras` archive.
    pub archive: PathBuf,
    /// The vocabulary, one token a line in id order (as many as the Embedding's rows; for a
    /// classifier id 0 is padding).
    pub vocab: PathBuf,
    /// For a classifier: the class names, one a line in class-index order.
    pub labels: Option<PathBuf>,
    /// Token kind of a language model's vocabulary.
    pub tokens: crate::data::TokenKind,
}

/// Imports the Keras model of `source` ([`KerasImported::read`]) into a new run in `out`:
/// `config.json`, `vocab.txt` (and `labels.txt`), `model.safetensors`. The run trains,
/// evaluates, generates and exports as any run of its task.
///
/// # Errors
/// Those of [`KerasImported::read`]; [`Error::Format`] when the vocabulary's size is not the
/// Embedding's rows; [`Error::Data`] for an unreadable vocabulary or labels file; I/O errors.
pub fn import_keras(source: &KerasSource, out: &RunDir) -> Result<KerasImported> {
    use crate::data::Vocab;
    let vocab = Vocab::load(&source.vocab)?;
    let labels = source.labels.as_deref().map(Vocab::load).transpose()?;
    let imported = KerasImported::read(&source.archive, labels.as_ref().map(Vocab::len))?;
    if vocab.len() != imported.vocab() {
        return Err(Error::Format {
            path: source.vocab.clone(),
            message: format!(
                "holds {} tokens but the Keras Embedding has {} rows",
                vocab.len(),
                imported.vocab()
            ),
        });
    }
    out.create()?;
    vocab.save(&out.vocab_path())?;
    let data = lm::LmRunData {
        tokens: source.tokens.into(),
        encoding: Default::default(),
    };
    match (&imported, &labels) {
        (KerasImported::LanguageModel(m, p), _) => {
            lm::save_model(&out.model_path(), m, p, &vocab)?;
            lm::LmRunConfig::new(*m.config(), serde_json::Value::Null, data).save(out)?;
        }
        (KerasImported::LastToken(m, p, window), _) => {
            lm::last_token::keras::save_imported(out, m, p, *window, &vocab, data)?;
        }
        (KerasImported::Classifier(m, p), Some(labels)) => {
            classify::keras::save_imported(out, m, p, labels)?;
        }
        (KerasImported::Classifier(..), None) => {
            return Err(Error::Config(
                "a classifier is imported with its labels".into(),
            ));
        }
    }
    Ok(imported)
}

//! A trained run of any task (`seqrnn.load`): one class a task, each calling what the task's
//! `Trained` offers in Rust, with numpy arrays and Python lists in and out.

use std::path::PathBuf;
use std::sync::Arc;

use numpy::{
    PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use seqrnn::lm::generate::Decoding;
use seqrnn::lm::Sampling;
use seqrnn::{classify, forecast, last_token, lm, speech, tag, translate, Loaded};

use crate::{lib_err, Threads};

/// What every loaded run knows of itself.
struct Run {
    path: PathBuf,
    task: &'static str,
    num_params: usize,
    int8: bool,
    threads: Threads,
}

impl Run {
    fn repr(&self, class: &str) -> String {
        format!(
            "{class}(path={:?}, task={:?}, parameters={}{})",
            self.path.display().to_string(),
            self.task,
            self.num_params,
            if self.int8 { ", int8" } else { "" }
        )
    }
}

/// The properties every loaded run has: `path`, `task`, `num_params`, `is_int8`, `threads`.
macro_rules! run_properties {
    ($class:ident) => {
        #[pymethods]
        impl $class {
            /// The run folder.
            #[getter]
            fn path(&self) -> PathBuf {
                self.run.path.clone()
            }
            /// The task's name in the run's `config.json`.
            #[getter]
            fn task(&self) -> &'static str {
                self.run.task
            }
            /// The number of parameters.
            #[getter]
            fn num_params(&self) -> usize {
                self.run.num_params
            }
            /// Whether the run's weights are 8-bit (`seqrnn quantize`).
            #[getter]
            fn is_int8(&self) -> bool {
                self.run.int8
            }
            /// The threads its computations use.
            #[getter]
            fn threads(&self) -> usize {
                self.run.threads.count()
            }
            fn __repr__(&self) -> String {
                self.run.repr(stringify!($class))
            }
        }
    };
}

/// Strings: one (`str`, then `single`) or a list of them.
fn strings(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<(Vec<String>, bool)> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok((vec![s.extract::<String>()?], true));
    }
    obj.extract::<Vec<String>>()
        .map(|v| (v, false))
        .map_err(|_| PyTypeError::new_err(format!("{what} must be a str or a list of str")))
}

/// One result for a single input, a list for a list.
fn one_or_list<'py, T: IntoPyObject<'py>>(
    py: Python<'py>,
    mut out: Vec<T>,
    single: bool,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match single {
        true => out
            .pop()
            .into_pyobject(py)
            .map_err(Into::<PyErr>::into)?
            .into_any(),
        false => out.into_pyobject(py)?.into_any(),
    })
}

enum LmKind {
    EveryStep(Arc<lm::Trained>),
    LastToken(Arc<last_token::Trained>),
}

/// A language model (every-step or last-token run): `generate` and `perplexity`.
#[pyclass(module = "seqrnn._seqrnn", frozen)]
pub struct LanguageModel {
    lm: LmKind,
    run: Run,
}
run_properties!(LanguageModel);

#[pymethods]
impl LanguageModel {
    /// The prompt followed by `tokens` generated tokens, as `seqrnn generate` prints it.
    /// `temperature`, `top_k` and `top_p` shape the draws (`greedy=True`: always the most
    /// probable token); the same `seed` gives the same text.
    #[pyo3(signature = (prompt="", tokens=40, temperature=1.0, top_k=None, top_p=None, seed=None, greedy=false))]
    #[allow(clippy::too_many_arguments)]
    fn generate(
        &self,
        py: Python<'_>,
        prompt: &str,
        tokens: usize,
        temperature: f32,
        top_k: Option<usize>,
        top_p: Option<f32>,
        seed: Option<u64>,
        greedy: bool,
    ) -> PyResult<String> {
        let decoding = match greedy {
            true => Decoding::Greedy,
            false => Decoding::Sample {
                temperature,
                top_k,
                top_p,
            },
        };
        let sampling = Sampling {
            decoding,
            seed: seed.unwrap_or_else(seqrnn::dropout::fresh_seed),
        };
        let out = self.run.threads.run(py, || match &self.lm {
            LmKind::EveryStep(m) => m.generate(prompt, tokens, &sampling),
            LmKind::LastToken(m) => m.generate(prompt, tokens, &sampling),
        });
        out.map_err(lib_err)
    }

    /// The perplexity of `text`, read as the training corpora are (words: each line followed
    /// by `<eos>`; characters: every character), as one stream.
    fn perplexity(&self, py: Python<'_>, text: &str) -> PyResult<f64> {
        let out = self.run.threads.run(py, || match &self.lm {
            LmKind::EveryStep(m) => m.text_perplexity(text),
            LmKind::LastToken(m) => m.text_perplexity(text),
        });
        Ok(out.map_err(lib_err)?.ppl)
    }

    /// The number of tokens in the vocabulary.
    #[getter]
    fn vocab_size(&self) -> usize {
        match &self.lm {
            LmKind::EveryStep(m) => m.vocab.len(),
            LmKind::LastToken(m) => m.vocab.len(),
        }
    }
}

/// A translation model: `translate`.
#[pyclass(module = "seqrnn._seqrnn", frozen)]
pub struct Translator {
    model: Arc<translate::Trained>,
    run: Run,
}
run_properties!(Translator);

#[pymethods]
impl Translator {
    /// The translation of each sentence (a str gives a str), by beam search of width `beam`
    /// (1: greedy; `None`: the run's setting) with the run's other decoding settings.
    #[pyo3(signature = (sentences, beam=Some(5)))]
    fn translate<'py>(
        &self,
        py: Python<'py>,
        sentences: &Bound<'py, PyAny>,
        beam: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (lines, single) = strings(sentences, "sentences")?;
        let mut decode = self.model.config.train.decode;
        if let Some(b) = beam {
            decode.beam = b;
        }
        let out = self.run.threads.run(py, || {
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            self.model.translate(&refs, Some(decode))
        });
        one_or_list(py, out.map_err(lib_err)?, single)
    }

    /// Greedy decoding of one sentence, step by step: `(source_ids, tokens, logits)`, the
    /// source's piece ids, the pieces chosen (`</s>` included when reached) and each step's
    /// logits, a float32 array `[steps, target vocabulary]`.
    fn greedy_steps<'py>(
        &self,
        py: Python<'py>,
        sentence: &str,
    ) -> PyResult<(Vec<u32>, Vec<u32>, Bound<'py, PyAny>)> {
        let out = self
            .run
            .threads
            .run(py, || self.model.greedy_steps(sentence));
        let (src, tokens, logits) = out.map_err(lib_err)?;
        let v = self.model.config.model.tgt_vocab;
        Ok((src, tokens, rows_array(py, logits, v)?))
    }
}

/// Sentences given as a str (one, split at white space), or a list of str or of token lists;
/// whether one str was given.
fn sentences_arg(sentences: &Bound<'_, PyAny>) -> PyResult<(Vec<Vec<String>>, bool)> {
    let (words, single) = match sentences.cast::<PyString>() {
        Ok(s) => (vec![s.extract::<String>()?], true),
        Err(_) => (Vec::new(), false),
    };
    let sents: Vec<Vec<String>> = match single {
        true => vec![words[0].split_whitespace().map(String::from).collect()],
        false => sentences
            .try_iter()
            .map_err(|_| PyTypeError::new_err("sentences must be a list"))?
            .map(|item| {
                let item = item?;
                match item.cast::<PyString>() {
                    Ok(s) => Ok(s
                        .extract::<String>()?
                        .split_whitespace()
                        .map(String::from)
                        .collect()),
                    Err(_) => item.extract::<Vec<String>>().map_err(|_| {
                        PyTypeError::new_err("each sentence must be a str or a list of str tokens")
                    }),
                }
            })
            .collect::<PyResult<_>>()?,
    };
    Ok((sents, single))
}

/// `values` as a float32 array `[values.len() / width, width]`.
fn rows_array(py: Python<'_>, values: Vec<f32>, width: usize) -> PyResult<Bound<'_, PyAny>> {
    let rows = values.len() / width.max(1);
    Ok(PyArray1::from_vec(py, values)
        .reshape([rows, width])?
        .into_any())
}

/// A tagger (named entities, parts of speech): `tag`.
#[pyclass(module = "seqrnn._seqrnn", frozen)]
pub struct Tagger {
    model: Arc<tag::Trained>,
    run: Run,
}
run_properties!(Tagger);

#[pymethods]
impl Tagger {
    /// The labels of each sentence: a list of tokens, or a str split at white space. A single
    /// sentence given as a str gives one list of labels.
    fn tag<'py>(
        &self,
        py: Python<'py>,
        sentences: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (sents, single) = sentences_arg(sentences)?;
        let out = self.run.threads.run(py, || self.model.tag(&sents));
        one_or_list(py, out.map_err(lib_err)?, single)
    }

    /// The per-token label scores of each sentence (the emissions its tags are decoded from),
    /// a float32 array `[len, len(labels)]` each; a single sentence given as a str gives one.
    fn scores<'py>(
        &self,
        py: Python<'py>,
        sentences: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (sents, single) = sentences_arg(sentences)?;
        let out = self.run.threads.run(py, || self.model.scores(&sents));
        let k = self.model.labels().len();
        let arrays = out
            .map_err(lib_err)?
            .into_iter()
            .map(|s| rows_array(py, s, k))
            .collect::<PyResult<Vec<_>>>()?;
        one_or_list(py, arrays, single)
    }

    /// The labels of the model, in id order, in the scheme it was trained in (entity tags in
    /// IOBES; `tag` converts them back to the training files' scheme).
    #[getter]
    fn labels(&self) -> Vec<String> {
        self.model.labels().to_vec()
    }
}

/// A text classifier: `predict`.
#[pyclass(module = "seqrnn._seqrnn", frozen)]
pub struct Classifier {
    model: Arc<classify::Trained>,
    run: Run,
}
run_properties!(Classifier);

#[pymethods]
impl Classifier {
    /// For each text, `{"label": str, "probabilities": {label: float}}` (a str gives one).
    fn predict<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (lines, single) = strings(texts, "texts")?;
        let out = self.run.threads.run(py, || {
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            self.model.predict(&refs)
        });
        let labels = self.model.labels.tokens();
        let dicts = out
            .map_err(lib_err)?
            .into_iter()
            .map(|p| {
                let probs = PyDict::new(py);
                for (l, q) in labels.iter().zip(&p.probabilities) {
                    probs.set_item(l, f64::from(*q))?;
                }
                let d = PyDict::new(py);
                d.set_item("label", p.label)?;
                d.set_item("probabilities", probs)?;
                Ok(d)
            })
            .collect::<PyResult<Vec<_>>>()?;
        one_or_list(py, dicts, single)
    }

    /// The labels in id order.
    #[getter]
    fn labels(&self) -> Vec<String> {
        self.model.labels.tokens().to_vec()
    }
}

/// A forecaster: `predict`.
#[pyclass(module = "seqrnn._seqrnn", frozen)]
pub struct Forecaster {
    model: Arc<forecast::Trained>,
    run: Run,
}
run_properties!(Forecaster);

#[pymethods]
impl Forecaster {
    /// The forecast after the last row of `table`, `[horizon, len(columns)]` (float64, in the
    /// data's units): `table` is a CSV file (a path) or a 2-D array `[rows, len(input_columns)]`
    /// whose columns are `input_columns`, in that order.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        table: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let table = match table.extract::<PyReadonlyArray2<'py, f64>>() {
            Ok(a) => self.array_table(a)?,
            Err(_) => match table.extract::<PyReadonlyArray2<'py, f32>>() {
                Ok(a) => self.array_table(a.cast_array::<f64>(false)?.readonly())?,
                Err(_) => {
                    let path: PathBuf = table.extract().map_err(|_| {
                        PyTypeError::new_err(
                            "table must be a CSV path or a 2-D float array [rows, columns]",
                        )
                    })?;
                    seqrnn::data::table::Table::load(&path).map_err(lib_err)?
                }
            },
        };
        let f = self
            .run
            .threads
            .run(py, || self.model.predict(&table))
            .map_err(lib_err)?;
        Ok(PyArray2::from_vec2(py, &f.values)?)
    }

    /// The columns the model reads, in order.
    #[getter]
    fn input_columns(&self) -> Vec<String> {
        self.model.config.data.columns.inputs.clone()
    }

    /// The forecast columns.
    #[getter]
    fn columns(&self) -> Vec<String> {
        self.model.config.data.columns.targets.clone()
    }

    /// The steps forecast.
    #[getter]
    fn horizon(&self) -> usize {
        self.model.model.config().horizon
    }

    /// The rows each forecast reads.
    #[getter]
    fn lookback(&self) -> usize {
        self.model.model.config().lookback
    }
}

impl Forecaster {
    fn array_table(&self, a: PyReadonlyArray2<'_, f64>) -> PyResult<seqrnn::data::table::Table> {
        let columns = self.input_columns();
        let [rows, cols] = <[usize; 2]>::try_from(a.shape()).expect("a 2-D array");
        if cols != columns.len() {
            return Err(PyValueError::new_err(format!(
                "the array has {cols} columns, the model reads {} ({})",
                columns.len(),
                columns.join(", ")
            )));
        }
        Ok(seqrnn::data::table::Table {
            path: PathBuf::from("the array"),
            columns,
            values: a.as_array().iter().map(|&v| v as f32).collect(),
            text: Vec::new(),
            rows,
        })
    }
}

/// A speech recogniser: `transcribe`.
#[pyclass(module = "seqrnn._seqrnn", frozen)]
pub struct Recognizer {
    model: Arc<speech::Trained>,
    run: Run,
}
run_properties!(Recognizer);

/// One recording to transcribe.
enum Recording {
    File(PathBuf),
    Samples(Vec<f32>, u32),
}

fn recording(item: &Bound<'_, PyAny>) -> PyResult<Recording> {
    if let Ok((samples, rate)) = item.extract::<(PyReadonlyArray1<'_, f32>, u32)>() {
        return Ok(Recording::Samples(samples.as_array().to_vec(), rate));
    }
    if let Ok((samples, rate)) = item.extract::<(PyReadonlyArray1<'_, f64>, u32)>() {
        let v = samples.as_array().iter().map(|&s| s as f32).collect();
        return Ok(Recording::Samples(v, rate));
    }
    item.extract::<PathBuf>().map(Recording::File).map_err(|_| {
        PyTypeError::new_err(
            "each recording must be a WAV path or a (samples, rate) pair: 1-D float samples in [-1, 1] and the rate in Hz",
        )
    })
}

#[pymethods]
impl Recognizer {
    /// The model's view of each recording (mono float32 samples at `sample_rate`): a pair of
    /// float32 arrays, its normalised log-mel frames `[frames, F]` and the per-step label
    /// log-probabilities `[steps, C]` (label 0 the CTC blank) that decoding reads.
    fn log_probs<'py>(
        &self,
        py: Python<'py>,
        recordings: Vec<PyReadonlyArray1<'py, f32>>,
    ) -> PyResult<Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
        let samples: Vec<Vec<f32>> = recordings
            .iter()
            .map(|r| r.as_slice().map(<[f32]>::to_vec))
            .collect::<Result<_, _>>()?;
        let out = self.run.threads.run(py, || {
            let refs: Vec<&[f32]> = samples.iter().map(Vec::as_slice).collect();
            self.model.log_probs(&refs)
        });
        let (f, c) = (
            self.model.config.model.features,
            self.model.config.model.labels,
        );
        out.map_err(lib_err)?
            .into_iter()
            .map(|(feats, lp)| Ok((rows_array(py, feats, f)?, rows_array(py, lp, c)?)))
            .collect()
    }

    /// The transcript of each recording: WAV paths, or `(samples, rate)` pairs (mono samples
    /// in `[-1, 1]`, any rate: resampled to the model's). One recording (not in a list) gives
    /// one transcript.
    fn transcribe<'py>(
        &self,
        py: Python<'py>,
        wavs: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let one = wavs.cast::<PyString>().is_ok()
            || wavs.extract::<PathBuf>().is_ok()
            || wavs.extract::<(Bound<'py, PyAny>, u32)>().is_ok();
        let items: Vec<Recording> = match one {
            true => vec![recording(wavs)?],
            false => wavs
                .try_iter()
                .map_err(|_| PyTypeError::new_err("wavs must be a list of recordings"))?
                .map(|i| recording(&i?))
                .collect::<PyResult<_>>()?,
        };
        let rate = self.sample_rate();
        let out = self.run.threads.run(py, || {
            let mut texts = Vec::with_capacity(items.len());
            for item in &items {
                let samples = match item {
                    Recording::File(p) => {
                        let enc = self.model.encoding();
                        texts.extend(self.model.transcribe_files(std::slice::from_ref(p), enc)?);
                        continue;
                    }
                    Recording::Samples(s, r) if *r == rate => s.clone(),
                    Recording::Samples(s, r) => seqrnn::data::audio::resample(
                        &seqrnn::data::audio::Audio {
                            rate: *r,
                            samples: s.clone(),
                        },
                        rate,
                    )?,
                };
                texts.extend(self.model.transcribe(&[&samples])?);
            }
            Ok::<_, seqrnn::Error>(texts)
        });
        one_or_list(py, out.map_err(lib_err)?, one)
    }

    /// The rate (Hz) the model's features are computed at.
    #[getter]
    fn sample_rate(&self) -> u32 {
        self.model.config.data.features.sample_rate
    }
}

/// The trained run in the folder `path` (written by any training command, `seqrnn import` or
/// `seqrnn quantize`), as its task's class: `LanguageModel`, `Translator`, `Tagger`,
/// `Classifier`, `Forecaster` or `Recognizer`. Its computations use `threads` threads (default:
/// `seqrnn.get_threads()`).
#[pyfunction]
#[pyo3(signature = (path, threads=None))]
fn load(py: Python<'_>, path: PathBuf, threads: Option<usize>) -> PyResult<Py<PyAny>> {
    let threads = Threads::get(threads)?;
    if !path.exists() {
        return Err(pyo3::exceptions::PyFileNotFoundError::new_err(format!(
            "{}: run directory not found",
            path.display()
        )));
    }
    let loaded = py.detach(|| seqrnn::load(&path)).map_err(lib_err)?;
    let run = Run {
        path,
        task: loaded.task(),
        num_params: loaded.num_params(),
        int8: loaded.is_int8(),
        threads,
    };
    // The task's class around the loaded model (its field `$field`, given `$value`).
    macro_rules! class {
        ($class:ident, $field:ident: $value:expr) => {
            Bound::new(
                py,
                $class {
                    $field: $value,
                    run,
                },
            )?
            .into_any()
        };
    }
    let obj = match loaded {
        Loaded::Lm(m) => class!(LanguageModel, lm: LmKind::EveryStep(Arc::new(m))),
        Loaded::LastToken(m) => class!(LanguageModel, lm: LmKind::LastToken(Arc::new(m))),
        Loaded::Forecast(m) => class!(Forecaster, model: Arc::new(m)),
        Loaded::Classify(m) => class!(Classifier, model: Arc::new(m)),
        Loaded::Translate(m) => class!(Translator, model: Arc::new(m)),
        Loaded::Tag(m) => class!(Tagger, model: Arc::new(m)),
        Loaded::Speech(m) => class!(Recognizer, model: Arc::new(m)),
    };
    Ok(obj.unbind())
}

/// Tiny finished runs of every task (the library's `tasks::tiny`, trained in a moment on a few
/// made-up examples), each in `dir/<task>`: `[(task, path)]`. For tests; the models learn next
/// to nothing.
#[pyfunction]
fn _tiny_runs(py: Python<'_>, dir: PathBuf) -> PyResult<Vec<(String, PathBuf)>> {
    let runs = py
        .detach(|| seqrnn::tasks::tiny::all(&dir))
        .map_err(lib_err)?;
    Ok(runs.into_iter().map(|(t, p)| (t.to_string(), p)).collect())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_tiny_runs, m)?)?;
    m.add_class::<LanguageModel>()?;
    m.add_class::<Translator>()?;
    m.add_class::<Tagger>()?;
    m.add_class::<Classifier>()?;
    m.add_class::<Forecaster>()?;
    m.add_class::<Recognizer>()?;
    m.add_function(wrap_pyfunction!(load, m)?)
}

//! # seqrnn
//!
//! Fused LSTM and GRU layers with hand-written forward and backward passes over whole sequences,
//! in PyTorch's weight layout, and the sequence models built on them.
//!
//! The engine lives in [`rnn`]; matrix products go through [`linalg`]; the language model built
//! on it in [`model`], its training in [`train`].
//!
//! ```
//! use seqrnn::rnn::{CellKind, Direction, Init, Rnn, RnnCache, RnnConfig, RnnState, RnnWorkspace, SeqShape};
//!
//! let config = RnnConfig { cell: CellKind::Lstm, input_size: 32, hidden_size: 64, num_layers: 2,
//!                          direction: Direction::Forward };
//! let rnn = Rnn::new(config)?;
//! let mut params = vec![0.0; rnn.num_params()];          // PyTorch state_dict order, one block
//! Init::default().apply(&config, &mut params, 42)?;
//! let shape = SeqShape { t: 35, b: 20 };
//! let x = vec![0.1; shape.t * shape.b * 32];             // x[T, B, I], time-major
//! let mut state = RnnState::zeros(&config, shape.b);     // h, c [L·D, B, H]; carried across windows
//! let mut y = vec![0.0; shape.t * shape.b * 64];         // y[T, B, D·H]
//! let mut cache = RnnCache::default();
//! let mut rng = seqrnn::dropout::RowRng::new(1, 0);       // dropout masks, if any
//! rnn.forward_train(&params, &x, shape, &mut state, &mut y, &mut cache, &mut rng)?;
//! let (mut grads, mut dx) = (vec![0.0; rnn.num_params()], vec![0.0; x.len()]);
//! let mut dstate = RnnState::zeros(&config, shape.b);    // ∂L/∂ final state in, ∂L/∂ initial out
//! let dy = y.clone();                                    // ∂L/∂y of L = ½‖y‖²
//! rnn.backward(&params, &mut grads, &cache, &dy, &mut dstate, &mut dx,
//!              &mut RnnWorkspace::default())?;
//! assert!(grads.iter().any(|g| *g != 0.0));
//! # Ok::<(), seqrnn::Error>(())
//! ```
//!
//! ## Using a trained run
//!
//! Each task loads a run folder written by its training command and uses it in a few lines
//! ([`lm::Trained`], [`forecast::Trained`], [`classify::Trained`]). Here each run is first
//! trained for a moment on a tiny data set (hidden lines), the way `seqrnn train`,
//! `seqrnn forecast train` and `seqrnn classify train` do it with [`train::fit()`]. [`load`]
//! opens a finished run of any of the seven tasks ([`Loaded`]); its doctest opens one of each.
//!
//! ```
//! # use seqrnn::lm::{LmRunConfig, LmRunData, TokenKindName};
//! # use seqrnn::run::{Existing, Run};
//! # use seqrnn::train::{self, Silent};
//! # let dir = std::env::temp_dir().join(format!("seqrnn-doc-lm-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! # std::fs::write(dir.join("train.txt"), "the company said it would buy the shares\n".repeat(30))?;
//! # std::fs::write(dir.join("valid.txt"), "the company said it would buy\n")?;
//! # let corpus = seqrnn::data::load_word_corpus(&dir, Default::default())?;
//! # let config = seqrnn::lm::LmConfig { vocab: corpus.vocab.len(), embed: 8, hidden: 8,
//! #     layers: 1, ..Default::default() };
//! # let model = seqrnn::lm::LanguageModel::new(config)?;
//! # let mut params = model.init_params(seqrnn::lm::LmInit::Uniform(0.1), 1)?;
//! # let settings = seqrnn::lm::TrainConfig { bptt: 5, batch: 2, epochs: 1, ..Default::default() };
//! # let rc = LmRunConfig::new(config, serde_json::to_value(settings)?,
//! #     LmRunData { tokens: TokenKindName::Word,
//! #     encoding: Default::default() });
//! # let run = Run::create(&dir.join("run"), &rc, Existing::Replace)?;
//! # corpus.vocab.save(&run.dir().vocab_path())?;
//! # seqrnn::lm::train(&model, &mut params, &corpus, &settings, &run, "doc", &mut Silent)?;
//! # let run_dir = dir.join("run");
//! use seqrnn::lm::{Sampling, Trained};
//!
//! let lm = Trained::load(&run_dir)?;
//! let text = lm.generate("the company said", 40, &Sampling::default())?;
//! assert!(text.starts_with("the company said"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ```
//! # use seqrnn::data::table::Table;
//! # use seqrnn::forecast::model::{Forecaster, ForecasterConfig};
//! # use seqrnn::run::{Existing, Run};
//! # use seqrnn::forecast::*;
//! # use seqrnn::train::{self, FitConfig, Silent};
//! # let dir = std::env::temp_dir().join(format!("seqrnn-doc-fc-{}", std::process::id()));
//! # let mut csv = String::from("date,load\n");
//! # for r in 0..200 { csv += &format!("d{r},{}\n", (r as f32 * 0.3).sin()); }
//! # let table = Table::parse(&csv, std::path::Path::new("load.csv"))?;
//! # let split = Split::Rows([120, 40, 40]);
//! # let ranges = split.ranges(table.rows, 12)?;
//! # let columns = ColumnSpec::choose(&table, Mode::S, None, Some(&["load".to_string()]),
//! #     Some("date"), ranges.train.clone())?;
//! # let series = Series::new(&table, &columns)?;
//! # let mc = ForecasterConfig { lookback: 12, horizon: 4, hidden: 8, ..Default::default() };
//! # let model = Forecaster::new(mc)?;
//! # let fit = FitConfig { epochs: 1, ..FitConfig::default() };
//! # let config = ForecastRunConfig::new(mc, ForecastTrainConfig { batch: 8, fit },
//! #     ForecastRunData { columns: columns.clone(), split });
//! # let mut task = ForecastTask::new(&model, &series, &columns.scaler,
//! #     Series::windows(ranges.train, 12, 4), Series::windows(ranges.valid, 12, 4), 8)?;
//! # let mut params = model.init_params(1)?;
//! # let run = Run::create(&dir, &config, Existing::Replace)?;
//! # train::fit(&mut task, &mut params, &fit, &run, &mut Silent)?;
//! # let run_dir = dir.clone();
//! let model = seqrnn::forecast::Trained::load(&run_dir)?;
//! let forecast = model.predict(&table)?; // the 4 steps after the table's last row
//! assert_eq!((forecast.values.len(), forecast.origin.as_str()), (4, "d199"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ```
//! # use seqrnn::classify::data::{build_labels, build_vocab, encode_all, Example};
//! # use seqrnn::classify::model::{Classifier, ClassifierConfig};
//! # use seqrnn::run::{Existing, Run};
//! # use seqrnn::classify::*;
//! # use seqrnn::train::{self, FitConfig, Silent};
//! # let dir = std::env::temp_dir().join(format!("seqrnn-doc-cl-{}", std::process::id()));
//! # let ex = |l: &str, t: &str| Example { label: l.into(),
//! #     tokens: t.split(' ').map(String::from).collect() };
//! # let data: Vec<Example> = (0..20).flat_map(|_| [ex("pos", "a gripping film"),
//! #     ex("neg", "dull and far too long")]).collect();
//! # let (vocab, labels) = (build_vocab(&data, 1), build_labels(&data));
//! # let enc = encode_all(&data, &vocab, &labels, std::path::Path::new("train.tsv"))?;
//! # let mc = ClassifierConfig { vocab: vocab.len(), embed: 8, hidden: 8, dropout: 0.0,
//! #     classes: labels.len(), ..Default::default() };
//! # let model = Classifier::new(mc)?;
//! # let fit = FitConfig { epochs: 3, lr: 0.01, ..FitConfig::default() };
//! # let config = ClassifyRunConfig::new(mc,
//! #     ClassifyTrainConfig { batch: 8, min_freq: 1, word_dropout: 0.0,
//! #     encoding: Default::default(), fit }, ClassifyRunData::default());
//! # let mut task = ClassifyTask::new(&model, &enc, &enc, 8)?;
//! # let mut params = model.init_params(1)?;
//! # let run = Run::create(&dir, &config, Existing::Replace)?;
//! # vocab.save(&run.dir().vocab_path())?;
//! # labels.save(&ClassifyRunConfig::labels_path(run.dir()))?;
//! # train::fit(&mut task, &mut params, &fit, &run, &mut Silent)?;
//! # let run_dir = dir.clone();
//! let classifier = seqrnn::classify::Trained::load(&run_dir)?;
//! let predicted = classifier.predict(&["a gripping film", "dull and far too long"])?;
//! assert_eq!((predicted[0].label.as_str(), predicted[1].label.as_str()), ("pos", "neg"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod data;
pub mod dist;
pub mod dropout;
pub mod error;
pub mod io;
pub mod linalg;
pub mod model;
pub mod optim;
pub mod report;
pub mod rnn;
pub mod run;
pub mod tasks;
pub mod train;

pub use error::{Error, Result};
pub use tasks::lm::last_token;
pub use tasks::{classify, forecast, lm, speech, tag, translate};
pub use tasks::{load, quantize, Loaded, QuantizeReport};

#[cfg(test)]
mod test_shared;

use super::*;
use crate::data::ts::LabelColumn;
use crate::tasks::classify::series::{Series, SeriesInput};

/// One text's (or series case's) predicted label.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The most probable label.
    pub label: String,
    /// Its probability.
    pub probability: f32,
    /// Every label's probability, in the order of [`Trained::labels`].
    pub probabilities: Vec<f32>,
}

/// A trained classifier, loaded from its run folder (`seqrnn classify train`), ready to use: a
/// text classifier ([`Trained::predict`]) or a series classifier of `.ts` cases
/// ([`Trained::predict_series`], [`Trained::evaluate_series`]).
///
/// ```no_run
/// let clf = seqrnn::classify::Trained::load("runs/sst2")?;
/// for p in clf.predict(&["a gripping film", "dull and far too long"])? {
///     println!("{} {:.3}", p.label, p.probability);
/// }
/// # Ok::<(), seqrnn::error::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Trained {
    /// The run's configuration.
    pub config: ClassifyRunConfig,
    /// Word vocabulary (`vocab.txt`; empty for a series classifier).
    pub vocab: crate::data::Vocab,
    /// Labels in id order (`labels.txt`).
    pub labels: crate::data::Vocab,
    /// The model.
    pub model: Classifier,
    /// Its best-on-validation weights.
    pub params: crate::model::Weights,
}

impl Trained {
    /// Reads the run in `dir`: configuration, vocabulary, labels and weights.
    ///
    /// # Errors
    /// [`Error::Format`] when the folder is not a classification run or its files disagree;
    /// [`Error::NoFinishedEpoch`] for a run stopped before its first epoch ended; I/O errors.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let run = RunDir::new(dir.as_ref());
        let config = ClassifyRunConfig::load(&run)?;
        let vocab = match config.model.reads_vectors() {
            true => crate::data::Vocab::new(),
            false => crate::data::Vocab::load(&run.vocab_path())?,
        };
        let labels = crate::data::Vocab::load(&ClassifyRunConfig::labels_path(&run))?;
        if vocab.len() != config.model.vocab || labels.len() != config.model.classes {
            return Err(Error::Format {
                path: run.config_path(),
                message: "vocab.txt or labels.txt does not match config.json".into(),
            });
        }
        let model = Classifier::new(config.model)?;
        let file = run.load_weights("classify train")?;
        let params =
            model
                .param_layout()
                .weights_from_file(&file, &run.model_path(), "a classifier")?;
        Ok(Trained {
            config,
            vocab,
            labels,
            model,
            params,
        })
    }

    /// Token ids of `text` (whitespace-separated words, unknown ones as `<unk>`; an empty text
    /// is one `<unk>`).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut tokens = crate::tasks::classify::data::tokenize(text);
        if tokens.is_empty() {
            tokens.push(crate::data::UNK.to_string());
        }
        crate::tasks::classify::data::encode(&tokens, &self.vocab).0
    }

    /// The label of each text, with the probabilities.
    ///
    /// # Errors
    /// [`Error::Config`] for a series classifier.
    pub fn predict(&self, texts: &[&str]) -> Result<Vec<Prediction>> {
        if self.series().is_some() {
            return Err(Error::Config(
                "this classifier reads numeric series (.ts files), not text".into(),
            ));
        }
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let seqs: Vec<Vec<u32>> = texts.iter().map(|t| self.encode(t)).collect();
        self.predictions(&seqs[..])
    }

    /// How a series classifier reads `.ts` files; `None` for a text classifier.
    pub fn series(&self) -> Option<&SeriesInput> {
        self.config.data.series.as_ref()
    }

    /// The cases of the `.ts` file at `path`, read, filled and standardised as in training,
    /// labelled when `labels` requires it.
    ///
    /// # Errors
    /// [`Error::Config`] for a text classifier; the reader's errors ([`Error::Data`] naming the
    /// file and line), and a label the training file did not declare.
    pub fn read_series(&self, path: &Path, labels: LabelColumn) -> Result<Series> {
        let Some(input) = self.series() else {
            return Err(Error::Config(
                "this classifier reads text, not numeric series".into(),
            ));
        };
        let file = input.read(path, labels)?;
        let with = (labels == LabelColumn::Required).then_some(&self.labels);
        input.encode(&file, with)
    }

    /// The label of each case of the `.ts` file at `path` (whose label column may be absent),
    /// in file order.
    ///
    /// # Errors
    /// As [`Trained::read_series`].
    pub fn predict_series(&self, path: &Path) -> Result<Vec<Prediction>> {
        let cases = self.read_series(path, LabelColumn::Optional)?;
        self.predictions(&cases)
    }

    /// Accuracy, macro-F1 and confusion matrix on the labelled `.ts` file at `path`.
    ///
    /// # Errors
    /// As [`Trained::read_series`].
    pub fn evaluate_series(&self, path: &Path) -> Result<ClassifyMetrics> {
        let cases = self.read_series(path, LabelColumn::Required)?;
        evaluate(&self.model, &self.params, &cases)
    }

    fn predictions<C: Cases + ?Sized>(&self, cases: &C) -> Result<Vec<Prediction>> {
        let probs = probabilities_of(&self.model, &self.params, cases)?;
        Ok(probs
            .chunks_exact(self.labels.len())
            .map(|row| {
                let best = argmax(row);
                Prediction {
                    label: self.labels.tokens()[best].clone(),
                    probability: row[best],
                    probabilities: row.to_vec(),
                }
            })
            .collect())
    }
}

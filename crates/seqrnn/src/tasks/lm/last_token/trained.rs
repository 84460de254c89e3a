use super::*;

/// A trained last-token model, loaded from its run folder (`seqrnn train --objective
/// last-token`), ready to evaluate.
#[derive(Clone, Debug)]
pub struct Trained {
    /// The run's configuration.
    pub config: LastTokenRunConfig,
    /// Vocabulary (`vocab.txt`).
    pub vocab: Vocab,
    /// The model.
    pub model: LastTokenModel,
    /// Its best-on-validation weights.
    pub params: Vec<f32>,
}

impl Trained {
    /// Reads the run in `dir`: configuration, vocabulary and weights.
    ///
    /// # Errors
    /// [`Error::Format`] when the folder is not a last-token run or its files disagree;
    /// [`Error::NoFinishedEpoch`] for a run stopped before its first validation; I/O errors.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let run = RunDir::new(dir.as_ref());
        let config = LastTokenRunConfig::load(&run)?;
        let vocab = Vocab::load(&run.vocab_path())?;
        if vocab.len() != config.model.vocab {
            return Err(Error::Format {
                path: run.config_path(),
                message: "vocab.txt does not match config.json".into(),
            });
        }
        let model = LastTokenModel::new(config.model)?;
        let file = run.load_weights("train")?;
        let params = model.param_layout().from_file(
            &file,
            &run.model_path(),
            "a last-token language model",
        )?;
        Ok(Trained {
            config,
            vocab,
            model,
            params,
        })
    }

    /// Token kind of the corpus the model was trained on.
    pub fn token_kind(&self) -> TokenKind {
        self.config.tokens.into()
    }

    /// The token ids of `split` of the corpus at `data` and the number of its words not in
    /// the vocabulary (see [`crate::tasks::lm::Trained::split`]).
    ///
    /// # Errors
    /// [`Error::Data`] when the split's file is missing or unreadable, or a character corpus'
    /// vocabulary differs from the model's; [`Error::Config`] for the test split of a character
    /// corpus.
    pub fn split(&self, data: &Path, split: Split) -> Result<(Vec<u32>, usize)> {
        crate::tasks::lm::read_split(&self.vocab, self.token_kind(), data, split)
    }

    /// Per-word perplexity on `stream` with the run's window (see [`evaluate`]).
    pub fn perplexity(&self, stream: &[u32]) -> Result<EvalResult> {
        evaluate(
            &self.model,
            &self.params,
            stream,
            self.config.train.window,
            self.config.train.eval_batch,
            &mut EvalWorkspace::default(),
        )
    }
}

use super::*;

/// A trained translation model, loaded from its run folder (`seqrnn translate train`).
///
/// ```no_run
/// let m = seqrnn::translate::Trained::load("runs/de-en")?;
/// for line in m.translate(&["Ein Hund läuft durch den Schnee."], None)? {
///     println!("{line}");
/// }
/// # Ok::<(), seqrnn::error::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Trained {
    /// The run's configuration.
    pub config: TranslateRunConfig,
    /// Source vocabulary.
    pub src_vocab: SubwordVocab,
    /// Target vocabulary.
    pub tgt_vocab: SubwordVocab,
    /// The model.
    pub model: Seq2Seq,
    /// Its best-on-validation weights.
    pub params: crate::model::Weights,
}

impl Trained {
    /// Reads the run in `dir`: configuration, vocabularies and weights.
    ///
    /// # Errors
    /// [`Error::Format`] when the folder is not a translation run or its files disagree;
    /// [`Error::NoFinishedEpoch`] for a run stopped before its first epoch ended; I/O errors.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let run = RunDir::new(dir.as_ref());
        let config = TranslateRunConfig::load(&run)?;
        let (src_vocab, tgt_vocab) = load_vocabs(&run, &config.model)?;
        let model = Seq2Seq::new(config.model)?;
        let file = run.load_weights("translate train")?;
        let params = model.param_layout().weights_from_file(
            &file,
            &run.model_path(),
            "a translation model",
        )?;
        Ok(Trained {
            config,
            src_vocab,
            tgt_vocab,
            model,
            params,
        })
    }

    /// Piece ids of every source line (line numbers from 1 in errors).
    pub fn encode_sources(&self, lines: &[&str]) -> Result<Vec<Vec<u32>>> {
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let ids = self.src_vocab.encode(l)?;
                if ids.is_empty() {
                    return Err(Error::Config(format!("source sentence {} is empty", i + 1)));
                }
                self.model.check_source_len(ids.len(), i + 1)?;
                Ok(ids)
            })
            .collect()
    }

    /// Translates `lines` with `decode` (the run's settings when `None`).
    ///
    /// # Errors
    /// [`Error::Config`] for an empty source or bad decoding settings; [`Error::Shape`] for a
    /// source longer than the model accepts; the vocabularies' errors.
    pub fn translate(&self, lines: &[&str], decode: Option<DecodeConfig>) -> Result<Vec<String>> {
        let src = self.encode_sources(lines)?;
        let mut d = Decoder::new(
            &self.model,
            &self.params,
            decode.unwrap_or(self.config.train.decode),
        )?;
        d.translate(&src)?
            .iter()
            .map(|h| self.tgt_vocab.decode(&h.tokens))
            .collect()
    }

    /// [`Trained::translate`] with the run's decoding settings: one translation per line.
    ///
    /// # Errors
    /// As [`Trained::translate`].
    pub fn predict(&self, lines: &[&str]) -> Result<Vec<String>> {
        self.translate(lines, None)
    }
}

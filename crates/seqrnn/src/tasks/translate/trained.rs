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

    /// Greedy decoding of one source line, step by step: the source's piece ids, the pieces
    /// chosen (the argmax at each step, `</s>` included when reached) and each step's logits
    /// `[steps, Vt]` row-major, as [`Seq2Seq::step`] computes them. An exported model's
    /// decoder graph, driven by the same loop, gives the same steps.
    ///
    /// # Errors
    /// As [`Trained::translate`].
    pub fn greedy_steps(&self, line: &str) -> Result<(Vec<u32>, Vec<u32>, Vec<f32>)> {
        let source = self.encode_sources(&[line])?.remove(0);
        let (m, p) = (&self.model, &self.params[..]);
        let mut batch = TokenBatch::default();
        batch.fill(std::iter::once(source.as_slice()));
        let (mut enc, mut ws) = (EncodedSource::default(), Seq2SeqWorkspace::default());
        m.encode(p, &batch, &mut enc, &mut ws)?;
        let packs = m.pack_decoder(p)?;
        let mut state = m.initial_state(&enc.h0);
        let (mut step, mut weights) = (StepBuffers::default(), AttnCache::default());
        let (mut row, mut tokens, mut logits) = (Vec::new(), Vec::new(), Vec::new());
        let mut prev = BOS;
        let max_len = self.config.train.decode.max_len(source.len());
        loop {
            m.step(
                &packs,
                &enc,
                &[prev],
                &mut state,
                &mut row,
                &mut weights,
                &mut step,
                &mut ws,
            )?;
            prev = softmax::argmax(&row) as u32;
            tokens.push(prev);
            logits.extend_from_slice(&row);
            if prev == EOS || tokens.len() >= max_len {
                break;
            }
        }
        Ok((source, tokens, logits))
    }

    /// [`Trained::translate`] with the run's decoding settings: one translation per line.
    ///
    /// # Errors
    /// As [`Trained::translate`].
    pub fn predict(&self, lines: &[&str]) -> Result<Vec<String>> {
        self.translate(lines, None)
    }
}

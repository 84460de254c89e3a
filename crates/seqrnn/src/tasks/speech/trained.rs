use super::*;
use crate::tasks::speech::data::load_named;

/// A trained acoustic model, loaded from its run folder (`seqrnn speech train`), ready to
/// transcribe.
///
/// ```no_run
/// let m = seqrnn::speech::Trained::load("runs/fsdd")?;
/// // Resampled to the run's rate; a manifest is read in the run's encoding.
/// let text = m.transcribe_files(&["seven.wav".into()], m.encoding())?;
/// println!("{}", text[0]);
/// # Ok::<(), seqrnn::error::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Trained {
    /// Its configuration.
    pub config: SpeechRunConfig,
    /// The characters.
    pub alphabet: Alphabet,
    /// The model.
    pub model: SpeechModel,
    /// Its weights.
    pub params: crate::model::Weights,
    /// The words of its training transcripts (`words.txt`), for lexicon decoding.
    pub lexicon: Lexicon,
    /// The same words, in order: the classes of a word head.
    pub words: Vec<String>,
}

impl Trained {
    /// Reads the run in `dir`: configuration, weights and the words of its transcripts.
    ///
    /// # Errors
    /// [`Error::Format`] when the folder is not a speech run or its files disagree;
    /// [`Error::NoFinishedEpoch`] for a run stopped before its first epoch ended; I/O errors.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let run = RunDir::new(dir.as_ref());
        let config = SpeechRunConfig::load(&run)?;
        let model = SpeechModel::new(config.model)?;
        let file = run.load_weights("speech train")?;
        let params = model.param_layout().weights_from_file(
            &file,
            &run.model_path(),
            "an acoustic model",
        )?;
        let alphabet = Alphabet::from_chars(&config.data.alphabet);
        let words_path = SpeechRunConfig::words_path(&run);
        let words = std::fs::read_to_string(&words_path).map_err(|cause| Error::Io {
            path: words_path.clone(),
            cause,
        })?;
        let words: Vec<String> = words.lines().map(str::to_owned).collect();
        if let Some(h) = config.model.word_head {
            if h.words != words.len() {
                return Err(Error::Format {
                    path: words_path,
                    message: format!(
                        "the model's word head has {} words and the file {}",
                        h.words,
                        words.len()
                    ),
                });
            }
        }
        Ok(Trained {
            lexicon: alphabet.lexicon(&words),
            words,
            alphabet,
            config,
            model,
            params,
        })
    }

    /// The encoding of the run's manifests (UTF-8 for the Free Spoken Digit Dataset, and for a
    /// run written before runs recorded it).
    pub fn encoding(&self) -> crate::data::Encoding {
        match &self.config.train.source {
            SpeechSource::Manifests { encoding, .. } => *encoding,
            SpeechSource::Fsdd(_) | SpeechSource::FsddHeldOut { .. } => {
                crate::data::Encoding::UTF_8
            }
        }
    }

    /// Featurises utterances for this model.
    pub fn prepare(&self, utterances: &[Utterance]) -> Result<SpeechData> {
        let data = prepare(
            utterances,
            &self.config.data.features,
            &self.alphabet,
            &self.config.model,
        )?;
        Ok(match self.config.model.word_head {
            Some(_) => data.with_words(&self.words),
            None => data,
        })
    }

    /// How its outputs are read: the run's decoding, its lexicon.
    pub fn reader(&self) -> Reader<'_> {
        Reader {
            alphabet: &self.alphabet,
            decoding: self.config.train.decoding,
            lexicon: Some(&self.lexicon),
            words: Some(&self.words),
        }
    }

    /// Error rates on `data` with the run's decoding.
    pub fn evaluate(&self, data: &SpeechData) -> Result<SpeechScores> {
        evaluate(&self.model, &self.params, data, &self.reader())
    }

    /// The transcript of each featurised utterance of `data`, with the run's decoding.
    ///
    /// # Errors
    /// The model's and the decoder's errors.
    pub fn transcribe_data(&self, data: &SpeechData) -> Result<Vec<String>> {
        Ok(transcribe(&self.model, &self.params, data, &self.reader(), false)?.0)
    }

    /// The transcript of each recording: mono samples in `[-1, 1]` at the run's rate
    /// (`config.features.sample_rate`).
    ///
    /// # Errors
    /// [`Error::Data`] for an empty recording; the model's errors.
    pub fn transcribe(&self, recordings: &[&[f32]]) -> Result<Vec<String>> {
        self.transcribe_data(&self.prepare(&unlabelled(recordings))?)
    }

    /// The transcript of each file: WAV recordings (resampled to the run's rate) and the
    /// recordings of manifests (`.tsv`, in `encoding`), in order.
    ///
    /// # Errors
    /// The readers' errors, naming the file; the model's errors.
    pub fn transcribe_files(
        &self,
        files: &[PathBuf],
        encoding: crate::data::Encoding,
    ) -> Result<Vec<String>> {
        let rate = self.config.data.features.sample_rate;
        let utterances = load_named(files, rate, encoding)?;
        let blank: Vec<Utterance> = utterances
            .into_iter()
            .map(|u| Utterance {
                transcript: String::new(),
                ..u
            })
            .collect();
        self.transcribe_data(&self.prepare(&blank)?)
    }

    /// The model's view of each recording: its normalised log-mel frames `[frames, F]` and the
    /// per-step log-probabilities `[⌈frames / S⌉, C]` (label 0 the blank, then the alphabet)
    /// that decoding reads, row-major.
    ///
    /// # Errors
    /// As [`Trained::transcribe`].
    pub fn log_probs(&self, recordings: &[&[f32]]) -> Result<Vec<(Vec<f32>, Vec<f32>)>> {
        let data = self.prepare(&unlabelled(recordings))?;
        let c = self.model.config().labels;
        let (mut batch, mut cache, mut ws) = Default::default();
        let mut out = Vec::with_capacity(data.len());
        for i in 0..data.len() {
            data.batch(&[i], &mut batch, None);
            self.model
                .forward_infer(&self.params, &batch, &mut cache, &mut ws)?;
            let steps = self.model.config().steps(data.frames[i]);
            let mut lp = cache.logits[..steps * c].to_vec();
            for row in lp.chunks_exact_mut(c) {
                let top = crate::model::softmax::row_max(row);
                let sum: f32 = row.iter().map(|v| (v - top).exp()).sum();
                let norm = top + sum.ln();
                row.iter_mut().for_each(|v| *v -= norm);
            }
            out.push((data.feats[i].clone(), lp));
        }
        Ok(out)
    }

    /// [`Trained::transcribe`]: the transcript of each recording.
    ///
    /// # Errors
    /// As [`Trained::transcribe`].
    pub fn predict(&self, recordings: &[&[f32]]) -> Result<Vec<String>> {
        self.transcribe(recordings)
    }
}

/// Recordings as utterances without transcripts, named by their place (`recording 1`, …).
fn unlabelled(recordings: &[&[f32]]) -> Vec<Utterance> {
    recordings
        .iter()
        .enumerate()
        .map(|(i, samples)| Utterance {
            source: format!("recording {}", i + 1),
            samples: samples.to_vec(),
            ..Utterance::default()
        })
        .collect()
}

/// Draws utterance `i` of `data` as [`crate::report::heatmap::alignment_map`] does: the model's
/// per-frame label probabilities (each step's repeated over its stacked frames) above the
/// utterance's normalised log-mel spectrogram, titled with `transcript`.
#[cfg(feature = "plots")]
pub fn alignment_picture(
    m: &Trained,
    data: &SpeechData,
    i: usize,
    transcript: &str,
    path: &Path,
) -> Result<()> {
    let mut batch = SpeechBatch::default();
    data.batch(&[i], &mut batch, None);
    let (mut cache, mut ws) = (SpeechCache::default(), SpeechWorkspace::default());
    m.model
        .forward_infer(&m.params, &batch, &mut cache, &mut ws)?;
    let (c, stack, frames) = (
        m.model.config().labels,
        m.model.config().stack,
        data.frames[i],
    );
    let mut probs = vec![0.0f32; frames * c];
    for (frame, row) in probs.chunks_exact_mut(c).enumerate() {
        let logits = &cache.logits[(frame / stack) * c..(frame / stack + 1) * c];
        let top = logits.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
        let sum: f32 = logits.iter().map(|v| (v - top).exp()).sum();
        row.iter_mut()
            .zip(logits)
            .for_each(|(p, v)| *p = (v - top).exp() / sum);
    }
    let mut labels = vec!["blank".to_string()];
    labels.extend(m.alphabet.chars.iter().map(|&ch| match ch {
        ' ' => "space".to_string(),
        _ => ch.to_string(),
    }));
    let title = format!("{}: \"{transcript}\"", data.sources[i]);
    crate::report::heatmap::alignment_map(path, &title, &probs, &labels, &data.feats[i], data.width)
}

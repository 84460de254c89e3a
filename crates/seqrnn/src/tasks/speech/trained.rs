use super::*;

/// A trained run ready to transcribe.
#[derive(Debug)]
pub struct Trained {
    /// Its configuration.
    pub config: SpeechRunConfig,
    /// The characters.
    pub alphabet: Alphabet,
    /// The model.
    pub model: SpeechModel,
    /// Its weights.
    pub params: Vec<f32>,
    /// The words of its training transcripts (`words.txt`), for lexicon decoding.
    pub lexicon: Lexicon,
}

impl Trained {
    /// Loads the run in `dir` (its best weights).
    pub fn load(dir: &Path) -> Result<Self> {
        let run = RunDir::new(dir);
        let config = SpeechRunConfig::load(&run)?;
        let model = SpeechModel::new(config.model)?;
        let file = run.load_weights("speech train")?;
        let params =
            model
                .param_layout()
                .from_file(&file, &run.model_path(), "an acoustic model")?;
        let alphabet = Alphabet::from_chars(&config.alphabet);
        let words_path = SpeechRunConfig::words_path(&run);
        let words = std::fs::read_to_string(&words_path).map_err(|cause| Error::Io {
            path: words_path,
            cause,
        })?;
        let words: Vec<String> = words.lines().map(str::to_owned).collect();
        Ok(Trained {
            lexicon: alphabet.lexicon(&words),
            alphabet,
            config,
            model,
            params,
        })
    }

    /// Featurises utterances for this model.
    pub fn prepare(&self, utterances: &[Utterance]) -> Result<SpeechData> {
        prepare(
            utterances,
            &self.config.features,
            &self.alphabet,
            &self.config.model,
        )
    }

    /// How its outputs are read: the run's decoding, its lexicon.
    pub fn reader(&self) -> Reader<'_> {
        Reader {
            alphabet: &self.alphabet,
            decoding: self.config.train.decoding,
            lexicon: Some(&self.lexicon),
        }
    }

    /// Error rates on `data` with the run's decoding.
    pub fn evaluate(&self, data: &SpeechData) -> Result<SpeechScores> {
        evaluate(&self.model, &self.params, data, &self.reader())
    }
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

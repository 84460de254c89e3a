use super::*;

/// The characters a model writes: label `1 + i` is `chars[i]`; label 0 is the CTC blank.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alphabet {
    pub(super) chars: Vec<char>,
}

impl Alphabet {
    /// The characters of `texts`, sorted.
    pub fn from_transcripts<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut chars: Vec<char> = texts.into_iter().flat_map(str::chars).collect();
        chars.sort_unstable();
        chars.dedup();
        Alphabet { chars }
    }

    /// An alphabet of these characters (sorted, without repeats).
    pub fn from_chars(text: &str) -> Self {
        Self::from_transcripts([text])
    }

    /// The characters, in label order.
    pub fn chars(&self) -> String {
        self.chars.iter().collect()
    }

    /// Output labels `C`: the characters and the blank.
    pub fn labels(&self) -> usize {
        self.chars.len() + 1
    }

    /// The labels of a transcript; `Err(c)` names the first character outside the alphabet.
    pub fn encode(&self, text: &str) -> std::result::Result<Vec<u32>, char> {
        text.chars()
            .map(|c| match self.chars.binary_search(&c) {
                Ok(i) => Ok(i as u32 + 1),
                Err(_) => Err(c),
            })
            .collect()
    }

    /// The lexicon of `words` (words with characters outside the alphabet are left out), words
    /// separated by the space when the alphabet has one.
    pub fn lexicon(&self, words: &[String]) -> Lexicon {
        let encoded: Vec<Vec<u32>> = words.iter().filter_map(|w| self.encode(w).ok()).collect();
        let space = self.encode(" ").ok().map(|s| s[0]);
        Lexicon::new(encoded.iter().map(Vec::as_slice), space)
    }

    /// The text of labels (blanks and unknown ids skipped).
    pub fn decode(&self, labels: &[u32]) -> String {
        labels
            .iter()
            .filter_map(|&l| self.chars.get((l as usize).checked_sub(1)?))
            .collect()
    }
}

/// Turns samples into normalised log-mel frames `[frames, F]`, with their deltas if asked.
#[derive(Debug)]
pub struct Featurizer {
    bank: FilterBank,
    deltas: usize,
}

impl Featurizer {
    /// A featurizer for `config` (validated).
    pub fn new(config: &FeatureConfig) -> Result<Self> {
        Ok(Featurizer {
            bank: FilterBank::new(*config)?,
            deltas: config.deltas,
        })
    }

    /// Normalised log-mel frames of `samples`, with their deltas if the configuration asks, into
    /// `out` (`[frames, F·(1 + deltas)]`); returns the frames.
    pub fn features(&mut self, samples: &[f32], out: &mut Vec<f32>) -> usize {
        let frames = self.bank.compute(samples, out);
        let n_mels = self.bank.n_mels();
        crate::data::audio::normalize_utterance(out, n_mels);
        crate::data::audio::append_deltas(out, n_mels, self.deltas);
        frames
    }
}

/// A featurised corpus: frames and labels of every utterance.
#[derive(Clone, Debug, Default)]
pub struct SpeechData {
    /// Features `[frames, F]` of each utterance.
    pub feats: Vec<Vec<f32>>,
    /// Frames of each utterance.
    pub frames: Vec<usize>,
    /// Labels of each transcript.
    pub targets: Vec<Vec<u32>>,
    /// The transcripts.
    pub transcripts: Vec<String>,
    /// Where each utterance came from.
    pub sources: Vec<String>,
    /// `F`: values per frame.
    pub width: usize,
    /// Mel bands per frame: `F` without deltas, `F / (1 + deltas)` with them (SpecAugment masks
    /// the same bands in each block); 0 reads as `F`.
    pub bands: usize,
    /// The word of each utterance for a word head ([`SpeechData::with_words`]; empty: none).
    pub words: Vec<u32>,
}

impl SpeechData {
    /// Utterances.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The same data with each utterance's word for a word head: the transcript's place in
    /// `words` (sorted, as [`words_of`] gives them), or [`NO_WORD`] when it is not one of them.
    pub fn with_words(mut self, words: &[String]) -> Self {
        self.words = self
            .transcripts
            .iter()
            .map(|t| match words.binary_search(t) {
                Ok(i) => i as u32,
                Err(_) => NO_WORD,
            })
            .collect();
        self
    }

    /// Seconds of audio at `hop_ms` per frame.
    pub fn seconds(&self, hop_ms: f32) -> f64 {
        let hop_ms = hop_ms as f64;
        self.frames.iter().sum::<usize>() as f64 * hop_ms / 1000.0
    }

    /// Rows `idx` as a padded batch; with `augment`, SpecAugment masks drawn from `masks` (one
    /// generator per row, as dropout's).
    pub fn batch(
        &self,
        idx: &[usize],
        out: &mut SpeechBatch,
        augment: Option<(&SpecAugment, &mut RowRng)>,
    ) {
        let (b, f) = (idx.len(), self.width);
        let t = idx.iter().map(|&i| self.frames[i]).max().unwrap_or(0);
        out.t = t;
        out.frames.clear();
        out.frames.extend(idx.iter().map(|&i| self.frames[i]));
        out.targets.clear();
        out.targets
            .extend(idx.iter().map(|&i| self.targets[i].clone()));
        out.words.clear();
        if !self.words.is_empty() {
            out.words.extend(idx.iter().map(|&i| self.words[i]));
        }
        crate::linalg::fit(&mut out.feats, t * b * f);
        out.feats.fill(0.0);
        let mut scratch = Vec::new();
        let seeded = augment.map(|(a, r)| (a, r.shared.random::<u64>(), r));
        for (j, &i) in idx.iter().enumerate() {
            let src: &[f32] = match &seeded {
                Some((a, seed, r)) => {
                    scratch.clone_from(&self.feats[i]);
                    let bands = if self.bands == 0 { f } else { self.bands };
                    a.apply_blocks(&mut scratch, bands, f, &mut r.row(*seed, j));
                    &scratch
                }
                None => &self.feats[i],
            };
            for (s, row) in src.chunks_exact(f).enumerate() {
                out.feats[(s * b + j) * f..(s * b + j + 1) * f].copy_from_slice(row);
            }
        }
    }
}

/// Featurises utterances (in parallel) and encodes their transcripts.
///
/// # Errors
/// [`Error::Data`] naming the recording for a transcript with a character outside `alphabet`,
/// or a recording whose steps cannot hold its transcript under CTC.
pub fn prepare(
    utterances: &[Utterance],
    features: &FeatureConfig,
    alphabet: &Alphabet,
    model: &SpeechConfig,
) -> Result<SpeechData> {
    features.validate()?;
    let feats: Vec<(Vec<f32>, usize)> = utterances
        .par_iter()
        .map_init(
            || Featurizer::new(features),
            |f, u| -> Result<(Vec<f32>, usize)> {
                let f = f.as_mut().map_err(|e| Error::Config(e.to_string()))?;
                let mut out = Vec::new();
                let n = f.features(&u.samples, &mut out);
                Ok((out, n))
            },
        )
        .collect::<Result<_>>()?;
    let mut data = SpeechData {
        width: features.width(),
        bands: features.n_mels,
        ..SpeechData::default()
    };
    for (u, (x, frames)) in utterances.iter().zip(feats) {
        let bad = |message: String| Error::Data {
            path: PathBuf::from(&u.source),
            message,
        };
        let target = alphabet.encode(&u.transcript).map_err(|c| {
            bad(format!(
                "the transcript {:?} holds {c:?}, which is not in the alphabet {:?}",
                u.transcript,
                alphabet.chars()
            ))
        })?;
        let (steps, need) = (model.steps(frames), min_frames(&target));
        if frames == 0 || steps < need {
            return Err(bad(format!(
                "the recording is too short for its transcript under CTC: {frames} frames \
                 ({steps} steps after stacking {}), and {:?} needs at least {need} steps",
                model.stack, u.transcript
            )));
        }
        data.feats.push(x);
        data.frames.push(frames);
        data.targets.push(target);
        data.transcripts.push(u.transcript.clone());
        data.sources.push(u.source.clone());
    }
    Ok(data)
}

/// The words of `transcripts`, sorted, each once: the lexicon of [`Decoding::Lexicon`].
pub fn words_of<'a>(transcripts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut w: Vec<String> = transcripts
        .into_iter()
        .flat_map(str::split_whitespace)
        .map(str::to_owned)
        .collect();
    w.sort_unstable();
    w.dedup();
    w
}

/// Where a run's recordings come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpeechSource {
    /// The Free Spoken Digit Dataset's recordings folder (its own split).
    Fsdd(PathBuf),
    /// The Free Spoken Digit Dataset with one speaker held out: all of `speaker`'s recordings
    /// are the test set, the others' takes 0–4 validate and their takes 5–49 train.
    #[serde(rename = "fsdd_held_out")]
    FsddHeldOut {
        /// The recordings folder.
        dir: PathBuf,
        /// The test speaker.
        speaker: String,
    },
    /// Manifests of the three parts.
    Manifests {
        /// Training manifest.
        train: PathBuf,
        /// Validation manifest.
        valid: PathBuf,
        /// Test manifest (optional).
        test: Option<PathBuf>,
        /// The manifests' encoding (UTF-8 in a run written before runs recorded it).
        #[serde(default)]
        encoding: crate::data::Encoding,
    },
}

impl SpeechSource {
    /// The utterances of one part at `rate` Hz: the recordings, with speed-perturbed copies
    /// for each factor of `speeds`, joined into connected utterances with `concat` (seeded
    /// `seed`). `Ok(None)` for a test part the manifests do not have.
    ///
    /// # Errors
    /// The readers' errors; [`Error::Config`] for a part without recordings.
    pub fn load(
        &self,
        part: FsddSplit,
        rate: u32,
        concat: Option<&Concat>,
        speeds: &[f32],
        seed: u64,
    ) -> Result<Option<Vec<Utterance>>> {
        let recs = match self {
            SpeechSource::Fsdd(dir) => load_fsdd(dir, part, rate)?,
            SpeechSource::FsddHeldOut { dir, speaker } => {
                load_fsdd_part(dir, part, Some(speaker), rate)?
            }
            SpeechSource::Manifests {
                train,
                valid,
                test,
                encoding,
            } => {
                let path = match (part, test) {
                    (FsddSplit::Train, _) => train,
                    (FsddSplit::Valid, _) => valid,
                    (FsddSplit::Test, Some(t)) => t,
                    (FsddSplit::Test, None) => return Ok(None),
                };
                load_manifest(path, rate, *encoding)?
            }
        };
        if recs.is_empty() {
            return Err(Error::Config(format!(
                "the {part:?} part holds no recordings"
            )));
        }
        let recs = match speeds.is_empty() {
            true => recs,
            false => speed_perturb(&recs, speeds, rate)?,
        };
        Ok(Some(match concat {
            Some(c) => concatenate(&recs, c, rate, seed)?,
            None => recs,
        }))
    }
}

/// Seed of the connected validation utterances: every run builds the same ones.
pub const VALID_SEED: u64 = 0x5eed_0002;

/// Seed of the connected test utterances: every run and `eval` build the same ones.
pub const TEST_SEED: u64 = 0x5eed_0003;

use super::*;
use crate::tasks::tag::conll::{read_tagged, Format, TaggedFile};

/// A sentence to tag: its words. A string is split at white space; a list of words is taken
/// as it is.
pub trait Words {
    /// The words, in order.
    fn words(&self) -> Vec<String>;
}

impl Words for str {
    fn words(&self) -> Vec<String> {
        self.split_whitespace().map(str::to_owned).collect()
    }
}

impl Words for String {
    fn words(&self) -> Vec<String> {
        self.as_str().words()
    }
}

impl<S: AsRef<str>> Words for [S] {
    fn words(&self) -> Vec<String> {
        self.iter().map(|w| w.as_ref().to_owned()).collect()
    }
}

impl<S: AsRef<str>> Words for Vec<S> {
    fn words(&self) -> Vec<String> {
        self.as_slice().words()
    }
}

impl<S: AsRef<str>, const N: usize> Words for [S; N] {
    fn words(&self) -> Vec<String> {
        self.as_slice().words()
    }
}

impl<W: Words + ?Sized> Words for &W {
    fn words(&self) -> Vec<String> {
        (**self).words()
    }
}

/// A trained tagger, loaded from its run folder (`seqrnn tag train`), ready to tag and score.
///
/// Labels come out in the scheme of the training files (entity tags are trained in their own
/// scheme and converted back).
///
/// ```no_run
/// let tagger = seqrnn::tag::Trained::load("runs/conll03")?;
/// let labels = tagger.tag(&["John lives in Paris"])?;      // or lists of words
/// println!("{}", labels[0].join(" "));                    // B-PER O O B-LOC
/// # Ok::<(), seqrnn::error::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Trained {
    /// The run's configuration.
    pub config: TagRunConfig,
    /// Words, characters and labels (`words.txt`, `chars.txt`, `labels.txt`).
    pub vocabs: TagVocabs,
    /// The model.
    pub model: Tagger,
    /// Its best-on-validation weights.
    pub params: crate::model::Weights,
}

impl Trained {
    /// Reads the run in `dir`: configuration, vocabularies and weights.
    ///
    /// # Errors
    /// [`Error::Format`] when the folder is not a tagging run or its files disagree;
    /// [`Error::NoFinishedEpoch`] for a run stopped before its first epoch ended; I/O errors.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let run = RunDir::new(dir.as_ref());
        let config = TagRunConfig::load(&run)?;
        let load = |name: &str| Vocab::load(&TagRunConfig::vocab_file(&run, name));
        let vocabs = TagVocabs {
            words: load("words")?,
            chars: load("chars")?,
            labels: load("labels")?,
        };
        if vocabs.words.len() != config.model.words
            || vocabs.chars.len() != config.model.chars
            || vocabs.labels.len() != config.model.tags
        {
            return Err(Error::Format {
                path: run.config_path(),
                message: "words.txt, chars.txt or labels.txt does not match config.json".into(),
            });
        }
        let scheme = config.train.train_scheme;
        let model = Tagger::new(config.model, constraints(&vocabs.labels, scheme))?;
        let file = run.load_weights("tag train")?;
        let params =
            model
                .param_layout()
                .weights_from_file(&file, &run.model_path(), "a tagger")?;
        Ok(Trained {
            config,
            vocabs,
            model,
            params,
        })
    }

    /// Whether the labels are entity tags (scored by entity F1), not parts of speech.
    pub fn entities(&self) -> bool {
        self.config.train.train_scheme.is_some()
    }

    /// The labels in id order, in the training scheme (the rows and columns of the confusion
    /// table of [`Trained::evaluate_file`]).
    pub fn labels(&self) -> &[String] {
        self.vocabs.labels.tokens()
    }

    /// The labels of every sentence, in the scheme of the training files; an empty sentence
    /// has none.
    ///
    /// # Errors
    /// The model's errors.
    pub fn tag<S: Words>(&self, sentences: &[S]) -> Result<Vec<Vec<String>>> {
        let words: Vec<Vec<String>> = sentences.iter().map(Words::words).collect();
        self.tag_words(&words)
    }

    /// [`Trained::tag`]: the labels of each sentence.
    ///
    /// # Errors
    /// The model's errors.
    pub fn predict<S: Words>(&self, sentences: &[S]) -> Result<Vec<Vec<String>>> {
        self.tag(sentences)
    }

    /// Reads a file in the run's format (CoNLL columns or CoNLL-U, the columns it was trained
    /// on).
    ///
    /// # Errors
    /// The reader's errors, naming the file and line.
    pub fn read(&self, path: &Path) -> Result<TaggedFile> {
        read_tagged(path, &self.config.train.read)
    }

    /// Scores the labelled file at `path` (the run's format): token accuracy, entity scores
    /// (entity tags), and the confusion table `[gold][predicted]` of [`Trained::labels`].
    ///
    /// # Errors
    /// The reader's errors; [`Error::Format`] for a label of the file that is not one of the
    /// run's or breaks its scheme, naming the line.
    pub fn evaluate_file(&self, path: &Path) -> Result<(EntityScores, Vec<Vec<usize>>)> {
        evaluate_file_with(self, path, &|w| self.tag_ids(w))
    }

    /// The file at `path` (the run's format) tagged: each token line with the predicted label
    /// appended as one more column (a tab in CoNLL-U, a space otherwise), every other line as
    /// it was; lines end with `\n`.
    ///
    /// # Errors
    /// The reader's errors; the model's.
    pub fn tag_file(&self, path: &Path) -> Result<String> {
        tag_file_with(self, path, &|w| self.tag_ids(w))
    }

    /// The labels of sentences given as words (see [`Trained::tag`]).
    fn tag_words(&self, sentences: &[Vec<String>]) -> Result<Vec<Vec<String>>> {
        Ok(label_names(self, &self.tag_ids(sentences)?))
    }

    /// The per-token scores (the emissions the CRF or the argmax decodes) of every sentence,
    /// `[len, K]` row-major each, columns in the order of [`Trained::labels`]; an empty
    /// sentence has none.
    ///
    /// # Errors
    /// The model's errors.
    pub fn scores<S: Words>(&self, sentences: &[S]) -> Result<Vec<Vec<f32>>> {
        let words: Vec<Vec<String>> = sentences.iter().map(Words::words).collect();
        let kept: Vec<usize> = (0..words.len()).filter(|&i| !words[i].is_empty()).collect();
        let enc = self.unlabelled(&words, &kept)?;
        let scores = crate::tasks::tag::scores(&self.model, &self.params, &enc)?;
        let mut out = vec![Vec::new(); words.len()];
        for (i, s) in kept.into_iter().zip(scores) {
            out[i] = s;
        }
        Ok(out)
    }

    /// The sentences `kept` encoded; labels are not needed to tag, so each token gets the first.
    pub(super) fn unlabelled(
        &self,
        sentences: &[Vec<String>],
        kept: &[usize],
    ) -> Result<EncodedTags> {
        let first = self.labels().first().cloned().unwrap_or_default();
        let unlabelled: Vec<Sentence> = kept
            .iter()
            .map(|&i| Sentence {
                words: sentences[i].clone(),
                labels: vec![first.clone(); sentences[i].len()],
                lines: (1..=sentences[i].len()).collect(),
            })
            .collect();
        encode(&unlabelled, &self.vocabs, Path::new("(sentences)"))
    }

    /// Predicted label ids (training scheme) of sentences given as words; none for an empty
    /// sentence.
    fn tag_ids(&self, sentences: &[Vec<String>]) -> Result<Vec<Vec<u32>>> {
        let kept: Vec<usize> = (0..sentences.len())
            .filter(|&i| !sentences[i].is_empty())
            .collect();
        let enc = self.unlabelled(sentences, &kept)?;
        let pred = predict(&self.model, &self.params, &enc)?;
        let mut out = vec![Vec::new(); sentences.len()];
        for (i, p) in kept.into_iter().zip(pred) {
            out[i] = p;
        }
        Ok(out)
    }
}

/// Predicted label ids (training scheme) of sentences given as words, none for an empty one: a
/// tagger's or an ensemble's decoding.
pub(super) type TagIds<'a> = &'a dyn Fn(&[Vec<String>]) -> Result<Vec<Vec<u32>>>;

/// [`Trained::evaluate_file`] with the labels predicted by `ids`; `lead` reads the file and
/// names the labels.
pub(super) fn evaluate_file_with(
    lead: &Trained,
    path: &Path,
    ids: TagIds<'_>,
) -> Result<(EntityScores, Vec<Vec<usize>>)> {
    let mut f = lead.read(path)?;
    if let (Some(from), Some(to)) = (
        lead.config.train.file_scheme,
        lead.config.train.train_scheme,
    ) {
        to_scheme(&mut f.sentences, from, to, path)?;
    }
    let gold = encode(&f.sentences, &lead.vocabs, path)?;
    let words: Vec<Vec<String>> = f.sentences.iter().map(|s| s.words.clone()).collect();
    score_ids(&gold.labels, &ids(&words)?, &lead.vocabs.labels)
}

/// [`Trained::tag_file`] with the labels predicted by `ids`.
pub(super) fn tag_file_with(lead: &Trained, path: &Path, ids: TagIds<'_>) -> Result<String> {
    let f = lead.read(path)?;
    let words: Vec<Vec<String>> = f.sentences.iter().map(|s| s.words.clone()).collect();
    let tags = label_names(lead, &ids(&words)?);
    let mut lines = f.lines.clone();
    let sep = match lead.config.train.read.format {
        Format::Conllu => '\t',
        Format::Conll => ' ',
    };
    for (s, tags) in f.sentences.iter().zip(tags) {
        for (&line, tag) in s.lines.iter().zip(tags) {
            let l = &mut lines[line - 1];
            l.push(sep);
            l.push_str(&tag);
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    Ok(text)
}

/// Label ids (training scheme) as labels in the scheme of the training files.
pub(super) fn label_names(lead: &Trained, ids: &[Vec<u32>]) -> Vec<Vec<String>> {
    let labels = lead.vocabs.labels.tokens();
    let file_scheme = match lead.config.train.train_scheme {
        Some(_) => lead.config.train.file_scheme,
        None => None,
    };
    ids.iter()
        .map(|ids| {
            let tags: Vec<String> = ids.iter().map(|&i| labels[i as usize].clone()).collect();
            match file_scheme {
                Some(scheme) => convert(&tags, scheme),
                None => tags,
            }
        })
        .collect()
}

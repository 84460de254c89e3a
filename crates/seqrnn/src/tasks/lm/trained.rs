use super::*;

/// How [`Trained::generate`] picks each token.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sampling {
    /// Greedy or sampled (temperature, top-k, top-p).
    pub decoding: Decoding,
    /// Seed of the draws.
    pub seed: u64,
}

/// A prompt as token ids.
#[derive(Clone, Debug, PartialEq)]
pub struct Prompt {
    /// Its token ids; words not in the vocabulary are `<unk>`.
    pub ids: Vec<u32>,
    /// The words that were not in the vocabulary.
    pub unknown: Vec<String>,
}

/// Which held-out split of a corpus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// Validation.
    Valid,
    /// Test.
    Test,
}

/// A trained language model, loaded from its run folder (`seqrnn train` or `seqrnn import`),
/// ready to generate and evaluate.
///
/// ```no_run
/// use seqrnn::lm::{Sampling, Trained};
/// let lm = Trained::load("runs/ptb-small")?;
/// println!("{}", lm.generate("the company said", 40, &Sampling::default())?);
/// # Ok::<(), seqrnn::error::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Trained {
    /// The run's configuration.
    pub config: LmRunConfig,
    /// Its vocabulary.
    pub vocab: Vocab,
    /// The model.
    pub model: LanguageModel,
    /// Its best-on-validation weights.
    pub params: crate::model::Weights,
}

impl Trained {
    /// Reads the run in `dir`: configuration, vocabulary and weights.
    ///
    /// # Errors
    /// [`Error::NoFinishedEpoch`] for a run stopped before its first epoch ended;
    /// [`Error::Format`] when its files disagree; I/O errors.
    pub fn load(dir: impl AsRef<std::path::Path>) -> Result<Self> {
        let (config, vocab, model, params) = load_model(&RunDir::new(dir.as_ref()))?;
        Ok(Trained {
            config,
            vocab,
            model,
            params,
        })
    }

    token_text_methods!(|lm| LmStepper::new(&lm.model, &lm.params)?);

    /// Generations from this model advanced together, joining and leaving between steps
    /// (continuous batching, [`LmBatch`]); each one's tokens are those of
    /// [`Trained::generate_ids`] with the same prompt ([`Trained::prompt_tokens`]) and sampling.
    ///
    /// # Errors
    /// Weights that do not fit the model.
    pub fn batch(&self) -> Result<LmBatch<'_>> {
        LmBatch::new(&self.model, &self.params)
    }

    /// The tokens a generation after `ids` reads first: `ids`, or a sentence boundary when
    /// there are none (as [`Trained::generate_ids`]).
    pub fn prompt_tokens(&self, ids: &[u32]) -> Vec<u32> {
        match ids.is_empty() {
            true => vec![boundary(&self.vocab, self.token_kind())],
            false => ids.to_vec(),
        }
    }

    /// The token stream of a held-out split of the corpus at `data` (the layout the run was
    /// trained on: a word-corpus folder, or a text file or folder holding `input.txt`), its
    /// files in `encoding` (the run's is [`Trained::encoding`]), and the number of its words not
    /// in the vocabulary.
    ///
    /// # Errors
    /// [`Error::Data`] when the split's file is missing or unreadable, or a character corpus'
    /// vocabulary differs from the model's; [`Error::NotUtf8`](crate::error::Error::NotUtf8)
    /// for a file that is not the UTF-8 it should be; [`Error::Config`] for the test split of a
    /// character corpus (it has none).
    pub fn split(
        &self,
        data: &std::path::Path,
        split: Split,
        encoding: crate::data::Encoding,
    ) -> Result<(Vec<u32>, usize)> {
        read_split(&self.vocab, self.token_kind(), (data, encoding), split)
    }

    /// Perplexity of `text`, read as [`Trained::encode_corpus`] reads it, as one stream.
    ///
    /// # Errors
    /// As `encode_corpus`; [`Error::Data`] for a text of one token (nothing to predict).
    pub fn text_perplexity(&self, text: &str) -> Result<EvalResult> {
        self.perplexity(&self.encode_corpus(text)?.0, 1)
    }

    /// Perplexity on a token stream cut into `batch` columns (1: one stream), state carried.
    pub fn perplexity(&self, stream: &[u32], batch: usize) -> Result<EvalResult> {
        let mut ws = LmWorkspace::default();
        evaluate(
            &self.model,
            &self.params,
            stream,
            batch,
            EVAL_WINDOW,
            &mut ws,
        )
    }
}

/// The text side of a trained token model, the same for [`Trained`] and the last-token
/// model's: `token_kind`, `encode`, `decode`, `generate_ids` (drawing from the stepper that
/// `|this| stepper` makes of `self`) and `generate`, for a type with `config.data.tokens` and
/// `vocab`. Used inside the type's `impl` block, with `TokenKind`, `Prompt`, `Sampling`,
/// `Result`, [`boundary`], [`encode_text`] and [`decode_ids`] in scope.
macro_rules! token_text_methods {
    (|$this:ident| $stepper:expr) => {
        /// Word or character tokens: the kind of the corpus the model was trained on.
        pub fn token_kind(&self) -> TokenKind {
            self.config.data.tokens.into()
        }

        /// The encoding of the corpus the model was trained on (UTF-8 for a run written before
        /// runs recorded it, or imported).
        pub fn encoding(&self) -> crate::data::Encoding {
            self.config.data.encoding
        }

        /// `text` as token ids, unknown words as `<unk>`; the empty text is a sentence boundary.
        ///
        /// # Errors
        /// [`Error::Config`](crate::error::Error::Config) when a word is unknown and the
        /// vocabulary has no `<unk>`.
        pub fn encode(&self, text: &str) -> Result<Prompt> {
            encode_text(&self.vocab, self.token_kind(), text)
        }

        /// Token ids as text: words joined by spaces, `<eos>` as a line break; characters as
        /// they are.
        pub fn decode(&self, ids: &[u32]) -> String {
            decode_ids(&self.vocab, self.token_kind(), ids)
        }

        /// `n` tokens after the prompt `ids` (a sentence boundary when empty). The same seed
        /// gives the same tokens.
        ///
        /// # Errors
        /// [`Error::Config`](crate::error::Error::Config) for bad sampling parameters;
        /// [`Error::Shape`](crate::error::Error::Shape) for an id outside the vocabulary.
        pub fn generate_ids(&self, ids: &[u32], n: usize, sampling: &Sampling) -> Result<Vec<u32>> {
            self.generate_ids_each(ids, n, sampling, |_| true)
        }

        /// `generate_ids`, handing each token to `each` as soon as it is chosen; stops early
        /// when `each` returns `false` (see
        /// [`generate_each`](crate::tasks::lm::generate::generate_each)).
        ///
        /// # Errors
        /// As `generate_ids`.
        pub fn generate_ids_each(
            &self,
            ids: &[u32],
            n: usize,
            sampling: &Sampling,
            each: impl FnMut(u32) -> bool,
        ) -> Result<Vec<u32>> {
            sampling.decoding.validate()?;
            let start = [boundary(&self.vocab, self.token_kind())];
            let prompt = if ids.is_empty() { &start[..] } else { ids };
            let $this = self;
            let mut stepper = $stepper;
            let d = sampling.decoding;
            crate::tasks::lm::generate::generate_each(
                &mut stepper,
                prompt,
                n,
                d,
                sampling.seed,
                each,
            )
        }

        /// `text` as the corpus reader reads a file: for words, each line's words followed by
        /// `<eos>`, unknown words as `<unk>`; for characters, every character. Also the number
        /// of unknown tokens.
        ///
        /// # Errors
        /// [`Error::Data`](crate::error::Error::Data) for a text without tokens, or a token
        /// not in a vocabulary without `<unk>`.
        pub fn encode_corpus(&self, text: &str) -> Result<(Vec<u32>, usize)> {
            let path = std::path::Path::new("the text");
            match self.token_kind() {
                TokenKind::Word => crate::data::encode_word_text(text, path, &self.vocab),
                TokenKind::Char if text.is_empty() => Err(crate::error::Error::Data {
                    path: path.into(),
                    message: "it is empty".into(),
                }),
                TokenKind::Char => {
                    let p = self.encode(text)?;
                    Ok((p.ids, p.unknown.len()))
                }
            }
        }

        /// The prompt followed by `n` generated tokens, as text (see `generate_ids`).
        ///
        /// # Errors
        /// As `encode` and `generate_ids`.
        pub fn generate(&self, prompt: &str, n: usize, sampling: &Sampling) -> Result<String> {
            let mut ids = self.encode(prompt)?.ids;
            let more = self.generate_ids(&ids, n, sampling)?;
            ids.extend(more);
            Ok(self.decode(&ids))
        }
    };
}
pub(crate) use token_text_methods;

/// `text` as token ids of `vocab`, unknown words as `<unk>` (see [`Trained::encode`]).
pub(crate) fn encode_text(vocab: &Vocab, kind: TokenKind, text: &str) -> Result<Prompt> {
    let mut p = Prompt {
        ids: Vec::new(),
        unknown: Vec::new(),
    };
    for tok in crate::data::tokenize(text, kind) {
        match (vocab.id(&tok), vocab.unk_id()) {
            (Some(id), _) => p.ids.push(id),
            (None, Some(unk)) => {
                p.ids.push(unk);
                p.unknown.push(tok);
            }
            (None, None) => {
                return Err(Error::Config(format!(
                    "`{tok}` is not in the vocabulary, which has no <unk>"
                )))
            }
        }
    }
    Ok(p)
}

/// Token ids of `vocab` as text (see [`Trained::decode`]).
pub(crate) fn decode_ids(vocab: &Vocab, kind: TokenKind, ids: &[u32]) -> String {
    let mut s = String::new();
    for &id in ids {
        let t = vocab.token(id).unwrap_or(crate::data::UNK);
        match kind {
            TokenKind::Word if t == crate::data::EOS => s.push('\n'),
            TokenKind::Word => {
                if !s.is_empty() && !s.ends_with('\n') {
                    s.push(' ');
                }
                s.push_str(t);
            }
            TokenKind::Char => s.push_str(t),
        }
    }
    s
}

/// The token an empty prompt starts from: a sentence boundary (`<eos>`, or a line break for
/// characters; id 0 when the vocabulary has none).
pub(crate) fn boundary(vocab: &Vocab, kind: TokenKind) -> u32 {
    match kind {
        TokenKind::Word => vocab.id(crate::data::EOS),
        TokenKind::Char => vocab.id("\n"),
    }
    .unwrap_or(0)
}

pub(crate) fn describe(m: &LmConfig) -> String {
    let last = m
        .last_hidden
        .map(|n| format!(" (last layer {n})"))
        .unwrap_or_default();
    let block = match m.block {
        super::LmBlock::Plain => String::new(),
        super::LmBlock::Residual { mlp: 0 } => " in residual blocks".into(),
        super::LmBlock::Residual { mlp } => format!(" in residual blocks (MLP {mlp})"),
    };
    format!(
        "{} {}×{}{last}{block}, embedding {}, vocabulary {}",
        m.cell.name(),
        m.layers,
        m.hidden,
        m.embed,
        m.vocab
    )
}

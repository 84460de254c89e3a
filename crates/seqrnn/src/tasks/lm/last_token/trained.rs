use super::*;
use crate::tasks::lm::generate::NextToken;
use crate::tasks::lm::trained::{boundary, decode_ids, encode_text, token_text_methods};
use crate::tasks::lm::{Prompt, Sampling};

/// A trained last-token model, loaded from its run folder (`seqrnn train --objective
/// last-token`), ready to generate and evaluate.
///
/// It generates as it was trained: each token from the (at most) `window` tokens before it,
/// from a zero state, the window sliding over the prompt and the tokens generated.
///
/// ```no_run
/// use seqrnn::lm::Sampling;
/// let lm = seqrnn::last_token::Trained::load("runs/ptb-keras")?;
/// println!("{}", lm.generate("the company said", 40, &Sampling::default())?);
/// # Ok::<(), seqrnn::error::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Trained {
    /// The run's configuration.
    pub config: LastTokenRunConfig,
    /// Vocabulary (`vocab.txt`).
    pub vocab: Vocab,
    /// The model.
    pub model: LastTokenModel,
    /// Its best-on-validation weights.
    pub params: crate::model::Weights,
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
        let params = model.param_layout().weights_from_file(
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

    token_text_methods!(|lm| WindowStepper::new(&lm.model, &lm.params, lm.config.train.window));

    /// The token ids of `split` of the corpus at `data`, its files in `encoding`, and the
    /// number of its words not in the vocabulary (see [`crate::tasks::lm::Trained::split`]).
    ///
    /// # Errors
    /// [`Error::Data`] when the split's file is missing or unreadable, or a character corpus'
    /// vocabulary differs from the model's; [`Error::Config`] for the test split of a character
    /// corpus.
    pub fn split(
        &self,
        data: &Path,
        split: Split,
        encoding: crate::data::Encoding,
    ) -> Result<(Vec<u32>, usize)> {
        crate::tasks::lm::read_split(&self.vocab, self.token_kind(), (data, encoding), split)
    }

    /// Perplexity of `text`, read as [`Trained::encode_corpus`] reads it (see
    /// [`Trained::perplexity`]).
    ///
    /// # Errors
    /// As `encode_corpus`; [`Error::Data`] for a text no longer than the window.
    pub fn text_perplexity(&self, text: &str) -> Result<EvalResult> {
        self.perplexity(&self.encode_corpus(text)?.0)
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

/// A last-token model stepping one token at a time over a sliding window: the logits of each
/// next token come from the last (at most) `window` tokens read, from a zero state.
struct WindowStepper<'m> {
    model: &'m LastTokenModel,
    params: &'m [f32],
    window: usize,
    /// The last (at most) `window` tokens read, oldest first.
    recent: Vec<u32>,
    ws: LastTokenWorkspace,
}

impl<'m> WindowStepper<'m> {
    fn new(model: &'m LastTokenModel, params: &'m [f32], window: usize) -> Self {
        WindowStepper {
            model,
            params,
            window: window.max(1),
            recent: Vec::with_capacity(window + 1),
            ws: LastTokenWorkspace::default(),
        }
    }

    /// The logits of the token after `recent`.
    fn predict(&mut self, logits: &mut [f32]) -> Result<()> {
        let t = self.recent.len();
        let out = self
            .model
            .logits(self.params, &self.recent, t, 1, &mut self.ws)?;
        logits.copy_from_slice(out);
        Ok(())
    }
}

impl NextToken for WindowStepper<'_> {
    fn vocab(&self) -> usize {
        self.model.config().vocab
    }

    /// Keeps the prompt's last `window` tokens.
    fn prime(&mut self, prompt: &[u32], logits: &mut [f32]) -> Result<()> {
        self.recent.clear();
        self.recent
            .extend_from_slice(&prompt[prompt.len().saturating_sub(self.window)..]);
        self.predict(logits)
    }

    /// Slides the window by one token.
    fn step(&mut self, token: u32, logits: &mut [f32]) -> Result<()> {
        if self.recent.len() == self.window {
            self.recent.remove(0);
        }
        self.recent.push(token);
        self.predict(logits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rnn::CellKind;
    use crate::tasks::lm::generate::{generate, Decoding};

    fn model() -> (LastTokenModel, Vec<f32>) {
        let m = LastTokenModel::new(crate::tasks::lm::last_token::model::LastTokenConfig {
            vocab: 11,
            embed: 4,
            cell: CellKind::Lstm,
            hidden: 6,
            layers: 2,
            dropout: 0.0,
        })
        .unwrap();
        let p = m.init_params(3).unwrap();
        (m, p)
    }

    /// The index of the largest logit.
    fn argmax(row: &[f32]) -> u32 {
        crate::model::softmax::argmax(row) as u32
    }

    /// Greedy generation predicts each token from exactly the last `window` tokens before it
    /// (fewer at the start), however far it runs past the window.
    #[test]
    fn each_token_comes_from_the_window_before_it() {
        let (m, p) = model();
        let window = 3;
        for prompt in [&[4u32][..], &[1, 2], &[5, 6, 7, 8, 9, 10]] {
            let mut stepper = WindowStepper::new(&m, &p, window);
            let out = generate(&mut stepper, prompt, 12, Decoding::Greedy, 0).unwrap();
            let mut all = prompt.to_vec();
            let mut ws = LastTokenWorkspace::default();
            for &next in &out {
                let recent = &all[all.len().saturating_sub(window)..];
                let logits = m.logits(&p, recent, recent.len(), 1, &mut ws).unwrap();
                assert_eq!(next, argmax(logits), "after {all:?}");
                all.push(next);
            }
        }
    }

    /// Tokens before the window do not count: prompts that end alike continue alike, sampled
    /// with the same seed; another seed draws otherwise.
    #[test]
    fn only_the_window_counts_and_the_seed_decides() {
        let (m, p) = model();
        let hot = Decoding::Sample {
            temperature: 2.0,
            top_k: None,
            top_p: None,
        };
        let run = |prompt: &[u32], seed| {
            let mut stepper = WindowStepper::new(&m, &p, 2);
            generate(&mut stepper, prompt, 30, hot, seed).unwrap()
        };
        let a = run(&[1, 2, 3, 4], 7);
        assert_eq!(a, run(&[9, 9, 9, 8, 3, 4], 7));
        assert_eq!(a, run(&[1, 2, 3, 4], 7));
        assert_ne!(a, run(&[1, 2, 3, 4], 8));
    }

    /// A trained run generates text after its prompt, the same for the same seed, and from a
    /// sentence boundary for an empty prompt.
    #[test]
    fn a_trained_run_generates_reproducibly() {
        let dir =
            std::env::temp_dir().join(format!("seqrnn-last-token-gen-{}", std::process::id()));
        let lm = Trained::load(crate::tasks::tiny::last_token(&dir).unwrap()).unwrap();
        let s = Sampling {
            decoding: Decoding::default(),
            seed: 5,
        };
        let long = "the company said it would buy the shares the company";
        let text = lm.generate(long, 20, &s).unwrap();
        assert!(text.starts_with(long), "{text}");
        assert_eq!(text, lm.generate(long, 20, &s).unwrap());
        let ids = lm.generate_ids(&[], 8, &s).unwrap();
        assert_eq!(ids.len(), 8);
        assert!(ids.iter().all(|&i| (i as usize) < lm.vocab.len()));
        let bad = Sampling {
            decoding: Decoding::Sample {
                temperature: 0.0,
                top_k: None,
                top_p: None,
            },
            seed: 0,
        };
        assert!(matches!(lm.generate("the", 3, &bad), Err(Error::Config(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

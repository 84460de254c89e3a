//! Subword vocabularies for translation, learned from training text with the HuggingFace
//! `tokenizers` crate and saved in its own JSON format (`src.tokenizer.json`,
//! `tgt.tokenizer.json` in a run folder).
//!
//! Every vocabulary is NFKC-normalised text split SentencePiece-style (a [`Metaspace`]
//! pre-tokenizer marks each word start with `▁`), so decoding gives back the text exactly, spaces
//! included, whatever the language. The model is chosen by [`Subword`]:
//!
//! - [`Subword::Bpe`]: byte-pair encoding (Sennrich et al. 2016);
//! - [`Subword::Unigram`]: the unigram language model (Kudo 2018, SentencePiece's default);
//! - [`Subword::Word`]: whole words, those seen fewer than `min_freq` times become `<unk>`.
//!
//! Ids 0–3 are the same in every vocabulary: [`PAD`], [`UNK`], [`BOS`], [`EOS`].

use std::path::Path;

use serde::{Deserialize, Serialize};
use tokenizers::decoders::metaspace::Metaspace as MetaspaceDecoder;
use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::models::unigram::{Unigram, UnigramTrainer};
use tokenizers::models::wordlevel::{WordLevel, WordLevelTrainer};
use tokenizers::models::TrainerWrapper;
use tokenizers::normalizers::unicode::NFKC;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::{AddedToken, Tokenizer};

use crate::error::{Error, Result};

/// Padding id (never predicted, never embedded).
pub const PAD: u32 = 0;
/// Unknown piece.
pub const UNK: u32 = 1;
/// Start of a target sentence (the decoder's first input).
pub const BOS: u32 = 2;
/// End of a target sentence.
pub const EOS: u32 = 3;
/// The special tokens, in id order.
pub const SPECIALS: [&str; 4] = ["<pad>", "<unk>", "<s>", "</s>"];

/// How text is cut into vocabulary pieces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Subword {
    /// Byte-pair encoding.
    #[default]
    Bpe,
    /// Unigram language model.
    Unigram,
    /// Whole words with a frequency cut-off.
    Word,
}

/// Settings of a vocabulary to learn. `validate()` before use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubwordConfig {
    /// The model.
    pub kind: Subword,
    /// Size of the vocabulary, special tokens included (at most, for words).
    pub vocab_size: usize,
    /// [`Subword::Word`]: words seen fewer times become `<unk>`; [`Subword::Bpe`]: pairs seen
    /// fewer times are not merged.
    pub min_freq: u64,
}

impl Default for SubwordConfig {
    fn default() -> Self {
        SubwordConfig {
            kind: Subword::Bpe,
            vocab_size: 8000,
            min_freq: 1,
        }
    }
}

impl SubwordConfig {
    /// Refuses a vocabulary too small to hold the special tokens and some text.
    pub fn validate(&self) -> Result<()> {
        if self.vocab_size < 16 {
            return Err(Error::Config(format!(
                "a vocabulary needs at least 16 entries, got {}",
                self.vocab_size
            )));
        }
        if self.min_freq == 0 {
            return Err(Error::Config(
                "the minimum frequency must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

fn tok_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Config(format!("{what}: {e}"))
}

/// A learned vocabulary: text to ids and back.
#[derive(Clone)]
pub struct SubwordVocab {
    tok: Tokenizer,
}

impl std::fmt::Debug for SubwordVocab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SubwordVocab({} pieces)", self.len())
    }
}

impl SubwordVocab {
    /// Learns a vocabulary from `lines` (the training side of one language).
    ///
    /// # Errors
    /// [`Error::Config`] for impossible settings or when the library fails.
    pub fn learn(config: &SubwordConfig, lines: &[String]) -> Result<Self> {
        config.validate()?;
        let specials: Vec<AddedToken> = SPECIALS
            .iter()
            .map(|s| AddedToken::from(s.to_string(), true))
            .collect();
        let (model, trainer): (tokenizers::models::ModelWrapper, TrainerWrapper) = match config.kind
        {
            Subword::Bpe => (
                BPE::builder()
                    .unk_token(SPECIALS[UNK as usize].into())
                    .build()
                    .map_err(|e| tok_err("BPE", e))?
                    .into(),
                BpeTrainer::builder()
                    .vocab_size(config.vocab_size)
                    .min_frequency(config.min_freq)
                    .show_progress(false)
                    .special_tokens(specials)
                    .build()
                    .into(),
            ),
            Subword::Unigram => (
                Unigram::default().into(),
                UnigramTrainer::builder()
                    .vocab_size(config.vocab_size as u32)
                    .show_progress(false)
                    .special_tokens(specials)
                    .unk_token(Some(SPECIALS[UNK as usize].into()))
                    .build()
                    .map_err(|e| tok_err("unigram trainer", e))?
                    .into(),
            ),
            Subword::Word => (
                WordLevel::builder()
                    .unk_token(SPECIALS[UNK as usize].into())
                    .build()
                    .map_err(|e| tok_err("word level", e))?
                    .into(),
                WordLevelTrainer::builder()
                    .vocab_size(config.vocab_size)
                    .min_frequency(config.min_freq)
                    .show_progress(false)
                    .special_tokens(specials)
                    .build()
                    .map_err(|e| tok_err("word-level trainer", e))?
                    .into(),
            ),
        };
        let mut tok = Tokenizer::new(model);
        tok.with_normalizer(Some(NFKC))
            .map_err(|e| tok_err("normaliser", e))?;
        tok.with_pre_tokenizer(Some(Metaspace::new('▁', PrependScheme::Always, true)));
        tok.with_decoder(Some(MetaspaceDecoder::new(
            '▁',
            PrependScheme::Always,
            true,
        )));
        let mut trainer = trainer;
        tok.train(&mut trainer, lines.iter())
            .map_err(|e| tok_err("learning the vocabulary", e))?;
        let v = SubwordVocab { tok };
        v.check_specials(Path::new("(learned)"))?;
        Ok(v)
    }

    fn check_specials(&self, path: &Path) -> Result<()> {
        for (id, s) in SPECIALS.iter().enumerate() {
            if self.tok.token_to_id(s) != Some(id as u32) {
                return Err(Error::Format {
                    path: path.to_path_buf(),
                    message: format!("the vocabulary does not hold `{s}` at id {id}"),
                });
            }
        }
        Ok(())
    }

    /// Number of pieces, special tokens included.
    pub fn len(&self) -> usize {
        self.tok.get_vocab_size(true)
    }

    /// Whether the vocabulary is empty (never, once learned).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ids of `text` (no special tokens added).
    ///
    /// # Errors
    /// [`Error::Config`] if the library fails.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tok
            .encode_fast(text, false)
            .map_err(|e| tok_err("encoding", e))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The pieces of `ids`, as strings (for pictures and debugging).
    pub fn pieces(&self, ids: &[u32]) -> Vec<String> {
        ids.iter()
            .map(|&i| self.tok.id_to_token(i).unwrap_or_else(|| "<?>".into()))
            .collect()
    }

    /// The text of `ids`, special tokens left out.
    ///
    /// # Errors
    /// [`Error::Config`] if the library fails.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tok
            .decode(ids, true)
            .map_err(|e| tok_err("decoding", e))
    }

    /// The vocabulary in the library's JSON format.
    pub fn to_json(&self) -> Result<String> {
        self.tok
            .to_string(false)
            .map_err(|e| tok_err("saving the vocabulary", e))
    }

    /// Writes the vocabulary to `path` (atomically).
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::io::write_atomic(path, self.to_json()?.as_bytes())
    }

    /// Reads a vocabulary written by [`SubwordVocab::save`].
    ///
    /// # Errors
    /// I/O errors; [`Error::Format`] when the file is not such a vocabulary.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            cause: e,
        })?;
        let tok: Tokenizer = text.parse().map_err(|e| Error::Format {
            path: path.to_path_buf(),
            message: format!("not a tokenizer file ({e})"),
        })?;
        let v = SubwordVocab { tok };
        v.check_specials(path)?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines() -> Vec<String> {
        [
            "Ein Mann fährt Fahrrad.",
            "Zwei Männer spielen Fußball im Park.",
            "Eine Frau liest ein Buch.",
            "Ein Hund läuft durch den Park.",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    #[test]
    fn every_kind_round_trips_text_and_keeps_special_ids() {
        for kind in [Subword::Bpe, Subword::Unigram, Subword::Word] {
            let cfg = SubwordConfig {
                kind,
                vocab_size: 60,
                min_freq: 1,
            };
            let v = SubwordVocab::learn(&cfg, &lines()).unwrap();
            assert!(v.len() <= 60 && v.len() > 4, "{kind:?}: {}", v.len());
            let text = "Ein Mann liest im Park.";
            let ids = v.encode(text).unwrap();
            assert!(ids.iter().all(|&i| i >= 4 || i == UNK), "{kind:?}: {ids:?}");
            if kind != Subword::Word {
                assert_eq!(v.decode(&ids).unwrap(), text, "{kind:?}");
            }
            // Special tokens are left out of decoded text.
            let mut with = vec![BOS];
            with.extend(&ids);
            with.push(EOS);
            assert_eq!(v.decode(&with).unwrap(), v.decode(&ids).unwrap());
            // Saved and read back: the same ids.
            let dir = std::env::temp_dir().join(format!("seqrnn-subword-{kind:?}"));
            std::fs::create_dir_all(&dir).unwrap();
            let p = dir.join("v.json");
            v.save(&p).unwrap();
            let back = SubwordVocab::load(&p).unwrap();
            assert_eq!(back.encode(text).unwrap(), ids);
        }
    }

    #[test]
    fn unseen_characters_are_unknown_and_bad_files_refused() {
        let v = SubwordVocab::learn(&SubwordConfig::default(), &lines()).unwrap();
        assert!(v.encode("漢").unwrap().contains(&UNK));
        let dir = std::env::temp_dir().join("seqrnn-subword-bad");
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bad.json");
        std::fs::write(&p, "{\"not\": 1}").unwrap();
        let e = SubwordVocab::load(&p).unwrap_err().to_string();
        assert!(e.contains("not a tokenizer file"), "{e}");
        let small = SubwordConfig {
            vocab_size: 3,
            ..SubwordConfig::default()
        };
        assert!(SubwordVocab::learn(&small, &lines()).is_err());
    }
}

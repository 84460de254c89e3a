//! The shared readers: corpora, vocabularies and batching, following PyTorch's
//! `examples/word_language_model`, and the formats more than one task reads. A task's own file
//! formats live in its folder (`tasks::classify::data`, `tasks::tag::conll`, ...).
//!
//! * [`vocab`]: [`Vocab`], token ids in first-appearance order, saved as `vocab.txt`;
//! * [`corpus`]: word corpora in Mikolov's PTB layout and character corpora split 90/10;
//! * [`batch`]: `batchify` ([`Batched`]) and `get_batch` ([`Window`]), and batches of similar
//!   lengths ([`batch::length_buckets`]);
//! * [`download`]: fetching and verifying Penn Treebank;
//! * [`table`]: numeric CSV tables (time series for forecasting);
//! * [`subword`]: subword vocabularies (BPE, unigram, words) learned with `tokenizers`;
//! * [`text`]: text files in their encoding ([`Encoding`]; UTF-8 by default), the reader every
//!   text format goes through ([`read_text`]);
//! * [`audio`]: WAV files, resampling, log-mel features, normalisation and SpecAugment;
//! * [`ts`]: the UEA/UCR archive's `.ts` time-series files and per-channel standardisation.

pub mod audio;
pub mod batch;
pub mod corpus;
pub mod download;
pub mod subword;
pub mod table;
pub mod text;
pub mod ts;
pub mod vocab;

pub use batch::{Batched, Window};
pub use corpus::{
    char_corpus_file, encode_word_text, encode_words, load_char_corpus, load_corpus,
    load_word_corpus, tokenize, word_split_file, Corpus, TokenKind,
};
pub use text::{read_text, Encoding};
pub use vocab::{Vocab, EOS, UNK};

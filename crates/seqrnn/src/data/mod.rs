//! Corpora, vocabularies and batching for language modelling, following PyTorch's
//! `examples/word_language_model`.
//!
//! * [`vocab`]: [`Vocab`], token ids in first-appearance order, saved as `vocab.txt`;
//! * [`corpus`]: word corpora in Mikolov's PTB layout and character corpora split 90/10;
//! * [`batch`]: `batchify` ([`Batched`]) and `get_batch` ([`Window`]);
//! * [`download`]: fetching and verifying Penn Treebank;
//! * [`table`]: numeric CSV tables (time series for forecasting);
//! * [`labeled`]: `label<TAB>text` files for sequence classification;
//! * [`last_token`]: sliding windows and next-word targets for last-token language modelling;
//! * [`parallel`]: line-aligned sentence pairs for translation (`train.de`, `train.en`);
//! * [`subword`]: subword vocabularies (BPE, unigram, words) learned with `tokenizers`;
//! * [`conll`], [`tags`]: CoNLL and CoNLL-U tagged files, tag schemes (IOB1, IOB2, IOBES);
//! * [`audio`]: WAV files, resampling, log-mel features, normalisation and SpecAugment;
//! * [`speech`]: speech corpora (manifests, the Free Spoken Digit Dataset, connected digits).

pub mod audio;
pub mod batch;
pub mod corpus;
pub mod download;
pub mod subword;
pub mod table;
pub mod vocab;

pub use batch::{Batched, Window};
pub use corpus::{
    char_corpus_file, encode_words, load_char_corpus, load_corpus, load_word_corpus, tokenize,
    word_split_file, Corpus, TokenKind,
};
pub use vocab::{Vocab, EOS, UNK};

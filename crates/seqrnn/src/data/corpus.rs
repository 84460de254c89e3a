//! Word- and character-level language-model corpora, following PyTorch's
//! `examples/word_language_model` and the char-rnn / nanoGPT conventions.
//!
//! # Word corpora
//!
//! A file is read in its encoding (UTF-8 unless told otherwise: [`super::text`]) and cut into
//! lines the way Python iterates over a text file (universal newlines: `"\n"`, `"\r\n"` and a lone `"\r"` each end a line; a file ending in a line break has
//! no extra empty line after it; a last line without a line break is still a line). Each line is
//! split on whitespace ([`str::split_whitespace`]) and its words are followed by [`EOS`], so every
//! line, an empty one included, yields an `<eos>` (PyTorch: `line.split() + ['<eos>']`).
//!
//! The vocabulary is built from the training split only, in order of first appearance; [`UNK`]
//! is then appended if the training split lacks it. Validation and test words missing from the
//! vocabulary become `<unk>` and are counted.
//!
//! # Character corpora
//!
//! Tokens are Unicode scalar values (`char`), line breaks included and kept as they are. The
//! first `floor(0.9 · n)` of the file's `n` characters are the training split, the rest the
//! validation split. The vocabulary holds the training characters in order of first appearance,
//! then the five-character token [`UNK`] (distinct from every single character), to which
//! validation characters absent from training map.

use std::path::{Path, PathBuf};

use super::text::{read_text, Encoding, Lines};
use super::vocab::{Vocab, EOS, UNK};
use crate::error::{Error, Result};

/// Whether a corpus or prompt is cut into words or characters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenKind {
    /// Whitespace-separated words, with [`EOS`] after each line.
    #[default]
    Word,
    /// Unicode scalar values, line breaks included.
    Char,
}

/// A language-model corpus: a vocabulary and the token ids of each split.
#[derive(Clone, Debug)]
pub struct Corpus {
    /// The vocabulary, built from the training split, with [`UNK`] present.
    pub vocab: Vocab,
    /// Training token ids.
    pub train: Vec<u32>,
    /// Validation token ids.
    pub valid: Vec<u32>,
    /// Test token ids, where the corpus has a test split.
    pub test: Option<Vec<u32>>,
    /// Validation tokens that were not in the vocabulary and became [`UNK`].
    pub unknown_in_valid: usize,
    /// Test tokens that were not in the vocabulary and became [`UNK`] (0 without a test split).
    pub unknown_in_test: usize,
}

/// The word-corpus file layouts: training, validation, test file names.
const LAYOUTS: [[&str; 3]; 2] = [
    ["ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"],
    ["train.txt", "valid.txt", "test.txt"],
];

/// The text file of a character corpus given as `path`: the file itself, or `input.txt` in the
/// folder it names.
pub fn char_corpus_file(path: &Path) -> PathBuf {
    match path.is_dir() {
        true => path.join("input.txt"),
        false => path.to_path_buf(),
    }
}

/// The corpus at `path`, its files in `encoding`: a word-corpus folder ([`load_word_corpus`])
/// or a character corpus ([`char_corpus_file`], [`load_char_corpus`]).
pub fn load_corpus(path: &Path, kind: TokenKind, encoding: Encoding) -> Result<Corpus> {
    match kind {
        TokenKind::Word => load_word_corpus(path, encoding),
        TokenKind::Char => load_char_corpus(&char_corpus_file(path), encoding),
    }
}

/// The file of split `name` (`"train"`, `"valid"` or `"test"`) of the word corpus in `dir`:
/// `ptb.NAME.txt`, or else `NAME.txt`.
///
/// # Errors
/// [`Error::Data`] naming both files when neither is there.
pub fn word_split_file(dir: &Path, name: &str) -> Result<PathBuf> {
    let col = ["train", "valid", "test"].iter().position(|n| *n == name);
    col.into_iter()
        .flat_map(|c| LAYOUTS.iter().map(move |l| dir.join(l[c])))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::Data {
            path: dir.to_path_buf(),
            message: format!("no ptb.{name}.txt or {name}.txt here"),
        })
}

/// Word corpus in Mikolov's layout in `dir`: `ptb.train.txt`, `ptb.valid.txt`, `ptb.test.txt`,
/// or else `train.txt`, `valid.txt`, `test.txt` (test optional in both layouts; train and valid
/// required), in `encoding`.
///
/// See the [module docs](self) for the tokenisation. Fails with [`Error::Io`] if `dir` or a file
/// cannot be read, with [`Error::NotUtf8`] if a file is not the UTF-8 it should be, and with
/// [`Error::Data`] if a required file is missing or a file is empty.
pub fn load_word_corpus(dir: &Path, encoding: Encoding) -> Result<Corpus> {
    let meta = std::fs::metadata(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        cause: source,
    })?;
    if !meta.is_dir() {
        return Err(Error::Data {
            path: dir.to_path_buf(),
            message: "is not a directory; a word corpus is a directory holding \
                      ptb.train.txt and ptb.valid.txt, or train.txt and valid.txt"
                .to_owned(),
        });
    }
    let Some([train_name, valid_name, test_name]) = LAYOUTS
        .into_iter()
        .find(|[train, _, _]| dir.join(train).is_file())
    else {
        return Err(Error::Data {
            path: dir.to_path_buf(),
            message: format!(
                "no training file found: looked for {} and {}",
                LAYOUTS[0][0], LAYOUTS[1][0]
            ),
        });
    };
    let valid_path = dir.join(valid_name);
    if !valid_path.is_file() {
        return Err(Error::Data {
            path: dir.to_path_buf(),
            message: format!("found {train_name} but no validation file: looked for {valid_name}"),
        });
    }

    let train_path = dir.join(train_name);
    let train_text = read_text(&train_path, encoding)?;
    let mut vocab = Vocab::new();
    let mut train = Vec::new();
    let mut words = 0usize;
    for line in Lines(&train_text) {
        for word in line.split_whitespace() {
            train.push(vocab.add(word));
            words += 1;
        }
        train.push(vocab.add(EOS));
    }
    if words == 0 {
        return Err(empty_corpus(&train_path));
    }
    vocab.add(UNK);

    let (valid, unknown_in_valid) = encode_words(&valid_path, &vocab, encoding)?;
    let test_path = dir.join(test_name);
    let (test, unknown_in_test) = if test_path.is_file() {
        let (ids, unknown) = encode_words(&test_path, &vocab, encoding)?;
        (Some(ids), unknown)
    } else {
        (None, 0)
    };
    Ok(Corpus {
        vocab,
        train,
        valid,
        test,
        unknown_in_valid,
        unknown_in_test,
    })
}

/// Character corpus: one text file in `encoding`, first 90% of its characters train, last 10%
/// valid (nanoGPT/char-rnn convention: split index = floor(0.9 * number_of_chars)), no test
/// split.
///
/// Fails with [`Error::Io`] if the file cannot be read, with [`Error::NotUtf8`] (line and byte
/// offset) if it is not the UTF-8 it should be, and with [`Error::Data`] if it is empty or has a
/// single character (too few to split).
pub fn load_char_corpus(file: &Path, encoding: Encoding) -> Result<Corpus> {
    let text = read_text(file, encoding)?;
    let text = text.as_str();
    let n = text.chars().count();
    if n == 0 {
        return Err(empty_corpus(file));
    }
    if n < 2 {
        return Err(Error::Data {
            path: file.to_path_buf(),
            message: "the corpus has a single character: too few to split into training and \
                      validation parts"
                .to_owned(),
        });
    }
    // floor(0.9 * n) without overflow or rounding.
    let split = n / 10 * 9 + n % 10 * 9 / 10;
    let split_byte = text
        .char_indices()
        .nth(split)
        .map_or(text.len(), |(i, _)| i);
    let (train_text, valid_text) = text.split_at(split_byte);

    let mut vocab = Vocab::new();
    let mut buf = [0u8; 4];
    let train: Vec<u32> = train_text
        .chars()
        .map(|c| vocab.add(c.encode_utf8(&mut buf)))
        .collect();
    let unk = vocab.add(UNK);
    let mut unknown_in_valid = 0;
    let valid = valid_text
        .chars()
        .map(|c| {
            vocab.id(c.encode_utf8(&mut buf)).unwrap_or_else(|| {
                unknown_in_valid += 1;
                unk
            })
        })
        .collect();
    Ok(Corpus {
        vocab,
        train,
        valid,
        test: None,
        unknown_in_valid,
        unknown_in_test: 0,
    })
}

/// Encodes one word-level file in `encoding` with an existing vocabulary (unknown words ->
/// `<unk>`); returns ids and the count of unknown tokens.
///
/// Lines are tokenised as in [`load_word_corpus`], `<eos>` included. Fails with [`Error::Io`] if
/// the file cannot be read, with [`Error::NotUtf8`] if it is not the UTF-8 it should be, and with
/// [`Error::Data`] if it is empty (no words) or holds a word the vocabulary lacks while the
/// vocabulary has no [`UNK`].
pub fn encode_words(path: &Path, vocab: &Vocab, encoding: Encoding) -> Result<(Vec<u32>, usize)> {
    encode_word_text(&read_text(path, encoding)?, path, vocab)
}

/// [`encode_words`] of a text already read (`path` names it in messages).
///
/// # Errors
/// [`Error::Data`] when `text` has no words, or a word is unknown and `vocab` has no `<unk>`.
pub fn encode_word_text(text: &str, path: &Path, vocab: &Vocab) -> Result<(Vec<u32>, usize)> {
    let unk = vocab.unk_id();
    let eos = vocab.id(EOS);
    let mut ids = Vec::new();
    let mut unknown = 0usize;
    let mut words = 0usize;
    for (i, line) in Lines(text).enumerate() {
        let missing = |word: &str| Error::Data {
            path: path.to_path_buf(),
            message: format!(
                "line {}: the token {word:?} is not in the vocabulary, which has no {UNK} \
                 to stand for it",
                i + 1
            ),
        };
        for word in line.split_whitespace() {
            words += 1;
            let id = match vocab.id(word) {
                Some(id) => id,
                None => {
                    unknown += 1;
                    unk.ok_or_else(|| missing(word))?
                }
            };
            ids.push(id);
        }
        let id = match eos {
            Some(id) => id,
            None => {
                unknown += 1;
                unk.ok_or_else(|| missing(EOS))?
            }
        };
        ids.push(id);
    }
    if words == 0 {
        return Err(empty_corpus(path));
    }
    Ok((ids, unknown))
}

/// Splits a prompt or text into tokens of `kind` (words: whitespace split; chars: every char).
///
/// No [`EOS`] is added for words: a prompt is a fragment of a line.
pub fn tokenize(text: &str, kind: TokenKind) -> Vec<String> {
    match kind {
        TokenKind::Word => text.split_whitespace().map(str::to_owned).collect(),
        TokenKind::Char => text.chars().map(String::from).collect(),
    }
}

fn empty_corpus(path: &Path) -> Error {
    Error::Data {
        path: PathBuf::from(path),
        message: "corpus is empty: the file holds no tokens".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory under the system temp dir holding `files`.
    fn temp_dir(files: &[(&str, &[u8])]) -> PathBuf {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("seqrnn-corpus-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, contents) in files {
            std::fs::write(dir.join(name), contents).unwrap();
        }
        dir
    }

    fn words(vocab: &Vocab, ids: &[u32]) -> Vec<String> {
        ids.iter()
            .map(|&id| vocab.token(id).unwrap().to_owned())
            .collect()
    }

    #[test]
    fn eos_after_every_line() {
        let dir = temp_dir(&[
            ("train.txt", b" a b \n\nc a\n\t\n b"),
            ("valid.txt", b"a\n"),
        ]);
        let c = load_word_corpus(&dir, Encoding::UTF_8).unwrap();
        assert_eq!(
            words(&c.vocab, &c.train),
            ["a", "b", EOS, EOS, "c", "a", EOS, EOS, "b", EOS]
        );
        assert_eq!(c.vocab.tokens(), ["a", "b", EOS, "c", UNK]);
        assert_eq!(c.valid, [0, 2]);
        assert_eq!(c.test, None);
        assert_eq!((c.unknown_in_valid, c.unknown_in_test), (0, 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_words_map_to_unk_and_are_counted() {
        let dir = temp_dir(&[
            ("ptb.train.txt", b"the <unk> cat\nsat\n"),
            ("ptb.valid.txt", b"the dog sat\nmat cat\n"),
            ("ptb.test.txt", b"a <unk>\n"),
        ]);
        let c = load_word_corpus(&dir, Encoding::UTF_8).unwrap();
        // <unk> already in training: not appended again.
        assert_eq!(c.vocab.tokens(), ["the", UNK, "cat", EOS, "sat"]);
        assert_eq!(c.train, [0, 1, 2, 3, 4, 3]);
        assert_eq!(c.valid, [0, 1, 4, 3, 1, 2, 3]);
        assert_eq!(c.unknown_in_valid, 2);
        assert_eq!(c.test.as_deref(), Some(&[1, 1, 3][..]));
        // A literal <unk> in the text is a known token, not an unknown one.
        assert_eq!(c.unknown_in_test, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unk_appended_when_train_lacks_it() {
        let dir = temp_dir(&[("train.txt", b"x y\n"), ("valid.txt", b"z\n")]);
        let c = load_word_corpus(&dir, Encoding::UTF_8).unwrap();
        assert_eq!(c.vocab.tokens(), ["x", "y", EOS, UNK]);
        assert_eq!(c.vocab.unk_id(), Some(3));
        assert_eq!(c.valid, [3, 2]);
        assert_eq!(c.unknown_in_valid, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn both_layouts_and_ptb_preferred() {
        let dir = temp_dir(&[
            ("ptb.train.txt", b"p\n"),
            ("ptb.valid.txt", b"p\n"),
            ("train.txt", b"q\n"),
            ("valid.txt", b"q\n"),
            ("test.txt", b"q\n"),
        ]);
        let c = load_word_corpus(&dir, Encoding::UTF_8).unwrap();
        assert_eq!(c.vocab.tokens(), ["p", EOS, UNK]);
        // The test file of the other layout is not mixed in.
        assert_eq!(c.test, None);
        std::fs::remove_dir_all(&dir).unwrap();

        let dir = temp_dir(&[
            ("train.txt", b"q\n"),
            ("valid.txt", b"q\n"),
            ("test.txt", b"q r\n"),
        ]);
        let c = load_word_corpus(&dir, Encoding::UTF_8).unwrap();
        assert_eq!(c.vocab.tokens(), ["q", EOS, UNK]);
        assert_eq!(c.test.as_deref(), Some(&[0, 2, 1][..]));
        assert_eq!(c.unknown_in_test, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_files_are_named() {
        let dir = temp_dir(&[("valid.txt", b"a\n")]);
        let err = load_word_corpus(&dir, Encoding::UTF_8).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Data { .. }), "{err:?}");
        assert!(
            msg.contains("ptb.train.txt") && msg.contains("train.txt"),
            "{msg}"
        );
        std::fs::remove_dir_all(&dir).unwrap();

        let dir = temp_dir(&[("ptb.train.txt", b"a\n"), ("valid.txt", b"a\n")]);
        let msg = load_word_corpus(&dir, Encoding::UTF_8)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("ptb.valid.txt"), "{msg}");
        std::fs::remove_dir_all(&dir).unwrap();

        let missing = std::env::temp_dir().join("seqrnn-corpus-no-such-dir-7f3a");
        let err = load_word_corpus(&missing, Encoding::UTF_8).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("seqrnn-corpus-no-such-dir-7f3a"));

        let err = load_char_corpus(&missing, Encoding::UTF_8).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
    }

    #[test]
    fn empty_corpora() {
        for train in [&b""[..], b"\n\n", b"  \t\n"] {
            let dir = temp_dir(&[("train.txt", train), ("valid.txt", b"a\n")]);
            let msg = load_word_corpus(&dir, Encoding::UTF_8)
                .unwrap_err()
                .to_string();
            assert!(
                msg.contains("corpus is empty") && msg.contains("train.txt"),
                "{msg}"
            );
            std::fs::remove_dir_all(&dir).unwrap();
        }
        let dir = temp_dir(&[("train.txt", b"a\n"), ("valid.txt", b"")]);
        let msg = load_word_corpus(&dir, Encoding::UTF_8)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("corpus is empty") && msg.contains("valid.txt"),
            "{msg}"
        );

        std::fs::write(dir.join("chars.txt"), b"").unwrap();
        let msg = load_char_corpus(&dir.join("chars.txt"), Encoding::UTF_8)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("corpus is empty"), "{msg}");
        std::fs::write(dir.join("chars.txt"), "é").unwrap();
        let msg = load_char_corpus(&dir.join("chars.txt"), Encoding::UTF_8)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("single character"), "{msg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn invalid_utf8_reports_line() {
        let dir = temp_dir(&[
            ("train.txt", b"a b\nc\n\nd \xe9t\xe9\n"),
            ("valid.txt", b"a\n"),
            ("v2.txt", b"\xff"),
            ("v3.txt", b"a\r\nb\n\xc3"),
        ]);
        let msg = load_word_corpus(&dir, Encoding::UTF_8)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("line 4") && msg.contains("UTF-8") && msg.contains("train.txt"),
            "{msg}"
        );
        let vocab = Vocab::new();
        let msg = encode_words(&dir.join("v2.txt"), &vocab, Encoding::UTF_8)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 1 "), "{msg}");
        let msg = encode_words(&dir.join("v3.txt"), &vocab, Encoding::UTF_8)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 3 "), "{msg}");

        std::fs::write(dir.join("c.txt"), b"ab\n\xe9").unwrap();
        let msg = load_char_corpus(&dir.join("c.txt"), Encoding::UTF_8)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("offset 3"), "{msg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn windows_1252_corpora_read_as_their_utf8_twins() {
        let cp1252 = Encoding::for_label("windows-1252").unwrap();
        let text = "Müller sagte „Grüße“ – 5 €\nSão Paulo\n";
        let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(text);
        assert!(!unmappable && bytes.len() < text.len());
        let utf8 = temp_dir(&[
            ("train.txt", text.as_bytes()),
            ("valid.txt", "José\n".as_bytes()),
        ]);
        let cp = temp_dir(&[("train.txt", &bytes), ("valid.txt", b"Jos\xe9\n")]);
        let (u, w) = (
            load_word_corpus(&utf8, Encoding::UTF_8).unwrap(),
            load_word_corpus(&cp, cp1252).unwrap(),
        );
        assert_eq!(
            words(&w.vocab, &w.train),
            [
                "Müller",
                "sagte",
                "„Grüße“",
                "–",
                "5",
                "€",
                EOS,
                "São",
                "Paulo",
                EOS
            ]
        );
        assert_eq!(
            (&w.vocab, &w.train, &w.valid),
            (&u.vocab, &u.train, &u.valid)
        );
        assert_eq!(w.unknown_in_valid, 1);
        // Read as UTF-8 (the default), the first non-ASCII byte is refused where it is.
        let e = load_word_corpus(&cp, Encoding::UTF_8).unwrap_err();
        assert!(
            matches!(
                e,
                Error::NotUtf8 {
                    line: 1,
                    offset: 1,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains("train.txt: line 1 is not valid UTF-8"),
            "{e}"
        );
        let (u, w) = (
            load_char_corpus(&utf8.join("train.txt"), Encoding::UTF_8).unwrap(),
            load_char_corpus(&cp.join("train.txt"), cp1252).unwrap(),
        );
        assert_eq!(
            (&w.vocab, &w.train, &w.valid),
            (&u.vocab, &u.train, &u.valid)
        );
        assert_eq!(w.vocab.token(1), Some("ü"));
        std::fs::remove_dir_all(&utf8).unwrap();
        std::fs::remove_dir_all(&cp).unwrap();
    }

    #[test]
    fn a_utf8_bom_is_skipped() {
        let dir = temp_dir(&[
            ("train.txt", b"\xEF\xBB\xBFa b\n"),
            ("valid.txt", b"\xEF\xBB\xBFb\n"),
            ("c.txt", b"\xEF\xBB\xBFabab"),
        ]);
        let c = load_word_corpus(&dir, Encoding::UTF_8).unwrap();
        assert_eq!(c.vocab.tokens(), ["a", "b", EOS, UNK]);
        assert_eq!((c.valid.as_slice(), c.unknown_in_valid), (&[1, 2][..], 0));
        let c = load_char_corpus(&dir.join("c.txt"), Encoding::UTF_8).unwrap();
        assert_eq!(c.vocab.tokens(), ["a", "b", UNK]);
        assert_eq!(c.train, [0, 1, 0]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn encode_words_without_unk() {
        let dir = temp_dir(&[("t.txt", b"a\nb a\n")]);
        let mut vocab = Vocab::new();
        vocab.add("a");
        vocab.add(EOS);
        let msg = encode_words(&dir.join("t.txt"), &vocab, Encoding::UTF_8)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 2") && msg.contains("\"b\""), "{msg}");
        vocab.add("b");
        assert_eq!(
            encode_words(&dir.join("t.txt"), &vocab, Encoding::UTF_8).unwrap(),
            (vec![0, 1, 2, 0, 1], 0)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn char_split_90_10() {
        // 20 chars: 18 train, 2 valid.
        let text = "abca\nbé\nabcabcabcaxé";
        assert_eq!(text.chars().count(), 20);
        let dir = temp_dir(&[("input.txt", text.as_bytes())]);
        let c = load_char_corpus(&dir.join("input.txt"), Encoding::UTF_8).unwrap();
        assert_eq!(c.vocab.tokens(), ["a", "b", "c", "\n", "é", UNK]);
        assert_eq!(c.train.len(), 18);
        assert_eq!(c.train[..8], [0, 1, 2, 0, 3, 1, 4, 3]);
        // "x" is unseen in training, "é" is known.
        assert_eq!(c.valid, [5, 4]);
        assert_eq!(c.unknown_in_valid, 1);
        assert_eq!(c.test, None);
        std::fs::remove_dir_all(&dir).unwrap();

        for (n, train) in [
            (2, 1),
            (9, 8),
            (10, 9),
            (11, 9),
            (19, 17),
            (1_115_394, 1_003_854),
        ] {
            assert_eq!(n / 10 * 9 + n % 10 * 9 / 10, train, "n = {n}");
            assert_eq!((n as f64 * 0.9).floor() as usize, train, "n = {n}");
        }
    }

    #[test]
    fn char_unk_is_distinct_from_chars() {
        let dir = temp_dir(&[("input.txt", "<unk><unk>ab".as_bytes())]);
        let c = load_char_corpus(&dir.join("input.txt"), Encoding::UTF_8).unwrap();
        // 12 chars: "<unk><unk>" trains, "ab" validates.
        assert_eq!(c.vocab.tokens(), ["<", "u", "n", "k", ">", UNK]);
        assert_eq!(c.train, [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
        assert_eq!(c.valid, [5, 5]);
        assert_eq!(c.unknown_in_valid, 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tokenize_words_and_chars() {
        assert_eq!(
            tokenize("  the cat\nsat ", TokenKind::Word),
            ["the", "cat", "sat"]
        );
        assert_eq!(tokenize("", TokenKind::Word), Vec::<String>::new());
        assert_eq!(tokenize("a é\n", TokenKind::Char), ["a", " ", "é", "\n"]);
        assert_eq!(TokenKind::default(), TokenKind::Word);
    }
}

//! A token vocabulary: tokens in id order and the reverse map, saved as `vocab.txt`.
//!
//! # File format
//!
//! A vocabulary file is UTF-8 text with one token per line, in id order (line 1 is id 0), each
//! line terminated by `'\n'`. Because character vocabularies contain the newline character
//! itself, tokens are written with a minimal escape:
//!
//! * a newline (`'\n'`) is written as the two characters `\n` (backslash, `n`);
//! * a backslash is written as the two characters `\\` (backslash, backslash);
//! * every other character, `'\r'` included, is written as itself.
//!
//! Any other character after a backslash is an error when loading, as are empty lines and
//! duplicate tokens. A missing final newline is tolerated.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};

/// The token standing for every word or character that is not in the vocabulary.
pub const UNK: &str = "<unk>";
/// The end-of-sentence token appended after every line of a word corpus.
pub const EOS: &str = "<eos>";

/// Tokens numbered `0..len()` in order of first addition, with the reverse map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vocab {
    tokens: Vec<String>,
    index: HashMap<String, u32>,
}

impl Vocab {
    /// An empty vocabulary.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `token`, appending it with the next free id if it is new.
    ///
    /// # Panics
    ///
    /// If the vocabulary already holds `u32::MAX` tokens.
    pub fn add(&mut self, token: &str) -> u32 {
        if let Some(&id) = self.index.get(token) {
            return id;
        }
        let id = u32::try_from(self.tokens.len())
            .ok()
            .filter(|&id| id < u32::MAX)
            .expect("a vocabulary holds fewer than u32::MAX tokens");
        self.tokens.push(token.to_owned());
        self.index.insert(token.to_owned(), id);
        id
    }

    /// The id of `token`, if it is in the vocabulary.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.index.get(token).copied()
    }

    /// The token with id `id`, if there is one.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// The number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the vocabulary has no tokens.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// All tokens, in id order.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The id of [`UNK`], if it is in the vocabulary.
    pub fn unk_id(&self) -> Option<u32> {
        self.id(UNK)
    }

    /// Writes the vocabulary to `path` in the format described in the [module docs](self).
    ///
    /// Fails with [`Error::Config`] if a token is empty (an empty line could not be read back)
    /// and with [`Error::Io`] if the file cannot be written. The file is written atomically (see
    /// [`crate::io::write_atomic`]).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut text = String::with_capacity(self.tokens.iter().map(|t| t.len() + 1).sum());
        for (id, token) in self.tokens.iter().enumerate() {
            if token.is_empty() {
                return Err(Error::Config(format!(
                    "cannot save the vocabulary to {}: token {id} is the empty string, \
                     which a vocabulary file cannot hold",
                    path.display()
                )));
            }
            for c in token.chars() {
                match c {
                    '\n' => text.push_str("\\n"),
                    '\\' => text.push_str("\\\\"),
                    c => text.push(c),
                }
            }
            text.push('\n');
        }
        crate::io::write_atomic(path, text.as_bytes())
    }

    /// Reads a vocabulary written by [`Vocab::save`].
    ///
    /// Fails with [`Error::Io`] if the file cannot be read, and with [`Error::Data`] if it is
    /// empty, is not UTF-8, or has an empty line, a bad escape or a duplicate token.
    pub fn load(path: &Path) -> Result<Vocab> {
        let data_error = |message: String| Error::Data {
            path: path.to_path_buf(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            cause: source,
        })?;
        if bytes.is_empty() {
            return Err(data_error("vocabulary file is empty".to_owned()));
        }
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            data_error(format!("line {line} is not valid UTF-8"))
        })?;
        let body = text.strip_suffix('\n').unwrap_or(text);
        let mut vocab = Vocab::new();
        for (i, raw) in body.split('\n').enumerate() {
            let line = i + 1;
            if raw.is_empty() {
                return Err(data_error(format!(
                    "line {line} is empty, but every line must hold one token"
                )));
            }
            let token = unescape(raw).map_err(|bad| {
                data_error(format!(
                    "line {line} has an unknown escape '\\{bad}' (only \\n and \\\\ are allowed)"
                ))
            })?;
            if let Some(first) = vocab.id(&token) {
                return Err(data_error(format!(
                    "line {line} repeats the token {token:?}, already on line {}",
                    first as usize + 1
                )));
            }
            vocab.add(&token);
        }
        Ok(vocab)
    }
}

/// Reverses the escape of [`Vocab::save`]; on a bad escape returns what followed the backslash
/// (an empty string for a trailing backslash).
fn unescape(raw: &str) -> std::result::Result<String, String> {
    if !raw.contains('\\') {
        return Ok(raw.to_owned());
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some(other) => return Err(other.to_string()),
            None => return Err(String::new()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn temp_file(name: &str, contents: Option<&[u8]>) -> PathBuf {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("seqrnn-vocab-{}-{n}-{name}", std::process::id()));
        if let Some(contents) = contents {
            std::fs::write(&path, contents).unwrap();
        }
        path
    }

    fn load_err(contents: &[u8]) -> String {
        let path = temp_file("bad.txt", Some(contents));
        let err = Vocab::load(&path).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(err, Error::Data { .. }), "{err:?}");
        err.to_string()
    }

    #[test]
    fn ids_follow_first_appearance() {
        let mut v = Vocab::new();
        assert!(v.is_empty());
        assert_eq!(v.add("b"), 0);
        assert_eq!(v.add("a"), 1);
        assert_eq!(v.add("b"), 0);
        assert_eq!(v.add(UNK), 2);
        assert_eq!(v.len(), 3);
        assert_eq!(v.tokens(), ["b", "a", UNK]);
        assert_eq!(v.id("a"), Some(1));
        assert_eq!(v.id("c"), None);
        assert_eq!(v.token(2), Some(UNK));
        assert_eq!(v.token(3), None);
        assert_eq!(v.unk_id(), Some(2));
        assert_eq!(Vocab::new().unk_id(), None);
    }

    #[test]
    fn save_load_round_trip() {
        let mut v = Vocab::new();
        for t in [
            "the", "\n", "\\", "\\n", "a\\b\nc", "\r", " ", "é", "日本", "🦀", UNK, EOS, "n",
        ] {
            v.add(t);
        }
        let path = temp_file("vocab.txt", None);
        v.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("the\n\\n\n\\\\\n\\\\n\na\\\\b\\nc\n\r\n \n"));
        assert!(text.ends_with("<eos>\nn\n"));
        let back = Vocab::load(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(back, v);
        assert_eq!(back.id("\n"), Some(1));
    }

    #[test]
    fn empty_vocab_round_trip_is_an_error_on_load() {
        let path = temp_file("empty.txt", None);
        Vocab::new().save(&path).unwrap();
        let err = Vocab::load(&path).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(err.contains("vocabulary file is empty"), "{err}");
    }

    #[test]
    fn missing_final_newline_is_tolerated() {
        let path = temp_file("v.txt", Some(b"a\nb"));
        let v = Vocab::load(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(v.tokens(), ["a", "b"]);
    }

    #[test]
    fn load_errors() {
        let path = temp_file("missing.txt", None);
        let err = Vocab::load(&path).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("missing.txt"));

        assert!(load_err(b"").contains("vocabulary file is empty"));
        let e = load_err(b"a\nb\n\xffc\n");
        assert!(e.contains("line 3") && e.contains("UTF-8"), "{e}");
        let e = load_err(b"a\nb\nc\nb\n");
        assert!(
            e.contains("line 4") && e.contains("\"b\"") && e.contains("line 2"),
            "{e}"
        );
        let e = load_err(b"a\n\nb\n");
        assert!(e.contains("line 2") && e.contains("empty"), "{e}");
        let e = load_err(b"\n");
        assert!(e.contains("line 1") && e.contains("empty"), "{e}");
        let e = load_err(b"a\nx\\t\n");
        assert!(e.contains("line 2") && e.contains("\\t"), "{e}");
        let e = load_err(b"a\\\n");
        assert!(e.contains("line 1") && e.contains("escape"), "{e}");
    }

    #[test]
    fn save_rejects_empty_token() {
        let mut v = Vocab::new();
        v.add("a");
        v.add("");
        let path = temp_file("never.txt", None);
        let err = v.save(&path).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        assert!(!path.exists());
    }
}

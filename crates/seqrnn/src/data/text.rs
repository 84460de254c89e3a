//! Text files as they are distributed: the one reader every data reader calls ([`read_text`]),
//! the file's [`Encoding`], and lines cut as Python cuts them ([`Lines`]).
//!
//! * **UTF-8** (the default): a byte-order mark at the start is skipped; invalid bytes are
//!   refused with [`Error::NotUtf8`], which names the file, the line and the byte offset.
//! * **Any other encoding**, named by its [WHATWG label](https://encoding.spec.whatwg.org/#names-and-labels)
//!   (`latin1`, `iso-8859-15`, `windows-1252`, `windows-1251`, `utf-16le`, `shift_jis`, `gbk`,
//!   ...), is decoded by `encoding_rs` as a browser decodes it: a byte-order mark at the start
//!   (UTF-8, UTF-16LE or UTF-16BE) wins over the label and is dropped. Single-byte encodings
//!   decode every byte; a multi-byte encoding (UTF-16, Shift_JIS, GBK, ...) refuses a malformed
//!   sequence, naming its line.
//!
//! As in the WHATWG standard (and in browsers), `latin1` and `iso-8859-1` name windows-1252,
//! which agrees with ISO-8859-1 on every printable character.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// Labels shown when an unknown one is refused.
const EXAMPLES: &str =
    "utf-8, latin1, iso-8859-15, windows-1252, windows-1251, utf-16le, utf-16be, shift_jis, gbk";

/// The character encoding of a text file: UTF-8 by default, or an encoding of the WHATWG
/// Encoding Standard, found by one of its labels ([`Encoding::for_label`], [`FromStr`]).
///
/// It is written in a run's `config.json` by its canonical name (`"windows-1252"`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Encoding(&'static encoding_rs::Encoding);

impl Encoding {
    /// UTF-8, the default.
    pub const UTF_8: Encoding = Encoding(encoding_rs::UTF_8);

    /// The encoding a WHATWG label names (case and surrounding spaces ignored): `utf-8`,
    /// `latin1`, `windows-1252`, `utf-16le`, ...
    ///
    /// # Errors
    /// [`Error::Config`] for a label the standard does not know, listing some it does, and for
    /// the labels of the "replacement" encoding (ISO-2022-KR and the like), which read no text.
    pub fn for_label(label: &str) -> Result<Encoding> {
        match encoding_rs::Encoding::for_label(label.trim().as_bytes()) {
            Some(e) if e == encoding_rs::REPLACEMENT => Err(Error::Config(format!(
                "the encoding {label:?} is not supported (browsers refuse it too); valid labels include {EXAMPLES}"
            ))),
            Some(e) => Ok(Encoding(e)),
            None => Err(Error::Config(format!(
                "unknown encoding {label:?}: give a WHATWG label such as {EXAMPLES}"
            ))),
        }
    }

    /// The canonical name (`"UTF-8"`, `"windows-1252"`, `"UTF-16LE"`).
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// Whether this is UTF-8.
    pub fn is_utf8(self) -> bool {
        self.0 == encoding_rs::UTF_8
    }

    /// Decodes the bytes of the file `path` (named in errors) to text; see the
    /// [module docs](self).
    ///
    /// # Errors
    /// [`Error::NotUtf8`] for invalid UTF-8 (with UTF-8); [`Error::Data`] naming the line of a
    /// malformed sequence of a multi-byte encoding.
    pub fn decode(self, bytes: Vec<u8>, path: &Path) -> Result<String> {
        if self.is_utf8() {
            return decode_utf8(bytes, path);
        }
        let (text, used, malformed) = self.0.decode(&bytes);
        if malformed {
            let at = text.find('\u{fffd}').unwrap_or(0);
            return Err(Error::Data {
                path: path.to_path_buf(),
                message: format!(
                    "line {} is not valid {} text",
                    line_at(&text[..at]),
                    used.name()
                ),
            });
        }
        Ok(text.into_owned())
    }
}

impl Default for Encoding {
    fn default() -> Self {
        Encoding::UTF_8
    }
}

impl fmt::Debug for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Encoding({})", self.name())
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Encoding {
    type Err = Error;

    fn from_str(label: &str) -> Result<Self> {
        Encoding::for_label(label)
    }
}

impl Serialize for Encoding {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Encoding {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let label = String::deserialize(d)?;
        Encoding::for_label(&label).map_err(serde::de::Error::custom)
    }
}

/// The text of the file at `path`, decoded from `encoding` (see the [module docs](self)).
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::NotUtf8`] for invalid UTF-8;
/// [`Error::Data`] for a malformed sequence of a multi-byte encoding.
pub fn read_text(path: &Path, encoding: Encoding) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    encoding.decode(bytes, path)
}

/// UTF-8 without its byte-order mark, or [`Error::NotUtf8`] at the first invalid byte.
fn decode_utf8(mut bytes: Vec<u8>, path: &Path) -> Result<String> {
    let bom = match bytes.starts_with(b"\xEF\xBB\xBF") {
        true => 3,
        false => 0,
    };
    bytes.drain(..bom);
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        // The valid prefix is UTF-8, so it can be cut into lines like the text itself.
        let prefix = std::str::from_utf8(&e.as_bytes()[..valid]).unwrap_or_default();
        Error::NotUtf8 {
            path: path.to_path_buf(),
            line: line_at(prefix),
            offset: (bom + valid) as u64,
        }
    })
}

/// The 1-based line (as [`Lines`] counts) of the character right after `prefix`.
fn line_at(prefix: &str) -> usize {
    Lines(prefix).count().max(1) + usize::from(prefix.ends_with(['\n', '\r']))
}

/// Lines of a text as Python's text-mode file iteration gives them (universal newlines:
/// `"\n"`, `"\r\n"` and a lone `"\r"` each end a line; a text ending in a line break has no
/// empty line after it), without their line breaks.
pub struct Lines<'a>(pub &'a str);

impl<'a> Iterator for Lines<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.0.is_empty() {
            return None;
        }
        let rest = self.0;
        match rest.find(['\n', '\r']) {
            Some(i) => {
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                self.0 = &rest[i + skip..];
                Some(&rest[..i])
            }
            None => {
                self.0 = "";
                Some(rest)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8], label: &str) -> Result<String> {
        Encoding::for_label(label)
            .unwrap()
            .decode(bytes.to_vec(), Path::new("f.txt"))
    }

    #[test]
    fn lines_follow_python_iteration() {
        fn lines(s: &str) -> Vec<&str> {
            Lines(s).collect()
        }
        assert_eq!(lines(""), Vec::<&str>::new());
        assert_eq!(lines("\n"), [""]);
        assert_eq!(lines("a"), ["a"]);
        assert_eq!(lines("a\n"), ["a"]);
        assert_eq!(lines("a\n\nb"), ["a", "", "b"]);
        assert_eq!(lines("a\r\nb\rc\n\n"), ["a", "b", "c", ""]);
        assert_eq!(lines("a\r\r\nb"), ["a", "", "b"]);
    }

    #[test]
    fn labels_name_whatwg_encodings() {
        let name = |l: &str| Encoding::for_label(l).unwrap().name();
        assert_eq!(name("latin1"), "windows-1252");
        assert_eq!(name(" ISO-8859-1 "), "windows-1252");
        assert_eq!(name("utf8"), "UTF-8");
        assert_eq!(name("utf-16"), "UTF-16LE");
        assert_eq!(name("sjis"), "Shift_JIS");
        assert_eq!(Encoding::default(), Encoding::UTF_8);
        assert!(Encoding::default().is_utf8() && !Encoding::for_label("l1").unwrap().is_utf8());
        let e = "latin-1".parse::<Encoding>().unwrap_err().to_string();
        assert!(
            e.contains("unknown encoding \"latin-1\"") && e.contains("latin1, iso-8859-15"),
            "{e}"
        );
        let e = Encoding::for_label("iso-2022-kr").unwrap_err().to_string();
        assert!(e.contains("not supported"), "{e}");
    }

    #[test]
    fn encodings_round_trip_through_json_by_name() {
        let e = Encoding::for_label("latin1").unwrap();
        assert_eq!(serde_json::to_string(&e).unwrap(), "\"windows-1252\"");
        let back: Encoding = serde_json::from_str("\"windows-1252\"").unwrap();
        assert_eq!(back, e);
        let bad = serde_json::from_str::<Encoding>("\"klingon\"").unwrap_err();
        assert!(bad.to_string().contains("unknown encoding"), "{bad}");
    }

    #[test]
    fn utf8_skips_its_bom_and_names_the_bad_line_and_byte() {
        assert_eq!(
            decode(b"\xEF\xBB\xBFM\xC3\xBCller\n", "utf-8").unwrap(),
            "Müller\n"
        );
        // Only a leading BOM is dropped.
        assert_eq!(decode(b"a\xEF\xBB\xBF", "utf-8").unwrap(), "a\u{feff}");
        let e = decode(b"a B\nM\xFCller C\n", "utf-8").unwrap_err();
        assert!(
            matches!(
                e,
                Error::NotUtf8 {
                    line: 2,
                    offset: 5,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "f.txt: line 2 is not valid UTF-8 (byte offset 5)"
        );
        // The offset counts the BOM; "\r\n", "\r" and "\n" each end a line.
        let e = decode(b"\xEF\xBB\xBFa\r\nb\rc\n\xFF", "utf-8").unwrap_err();
        assert!(
            matches!(
                e,
                Error::NotUtf8 {
                    line: 4,
                    offset: 10,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn single_byte_encodings_decode_every_byte() {
        let latin1 = b"M\xFCller B-PER\nS\xE3o Paulo\nJos\xE9 \x80\n";
        assert_eq!(
            decode(latin1, "latin1").unwrap(),
            "Müller B-PER\nSão Paulo\nJosé €\n"
        );
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&all, "windows-1252").unwrap().chars().count(), 256);
        assert_eq!(decode(b"\xA4", "iso-8859-15").unwrap(), "€");
        // A UTF-8 BOM says the file is UTF-8 whatever the label.
        assert_eq!(decode(b"\xEF\xBB\xBF\xC3\xA9", "latin1").unwrap(), "é");
    }

    #[test]
    fn utf16_honours_its_bom_and_refuses_a_torn_unit() {
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("é\nb".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain("é\nb".encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(decode(&le, "utf-16le").unwrap(), "é\nb");
        assert_eq!(decode(&be, "utf-16le").unwrap(), "é\nb");
        assert_eq!(decode(&be[2..], "utf-16be").unwrap(), "é\nb");
        let e = decode(&le[..le.len() - 1], "utf-16le")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "f.txt: line 2 is not valid UTF-16LE text");
    }

    #[test]
    fn read_text_names_a_missing_file() {
        let p = std::env::temp_dir().join("seqrnn-text-no-such-file-4c1e");
        let e = read_text(&p, Encoding::UTF_8).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e:?}");
    }
}

//! Line-aligned parallel text for translation: a split is two files, `PREFIX.SRC` and
//! `PREFIX.TGT` (Multi30k's `train.de` and `train.en`), whose line `i` holds a sentence and its
//! translation.
//!
//! Lines are read as Python's text mode reads them (`\n`, `\r\n` or `\r` ends a line), with
//! surrounding whitespace trimmed. Refused with a message naming the file and line: a missing
//! file (with the languages the folder does have), invalid UTF-8, an empty line, and two files
//! of different lengths.

use std::path::{Path, PathBuf};

use crate::data::text::{read_text, Encoding, Lines};
use crate::error::{Error, Result};

/// Sentence pairs of one split: `src[i]` translates to `tgt[i]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParallelText {
    /// Source sentences, one a line of `PREFIX.SRC`.
    pub src: Vec<String>,
    /// Target sentences, one a line of `PREFIX.TGT`.
    pub tgt: Vec<String>,
}

impl ParallelText {
    /// Number of sentence pairs.
    pub fn len(&self) -> usize {
        self.src.len()
    }

    /// Whether the split holds no pair.
    pub fn is_empty(&self) -> bool {
        self.src.is_empty()
    }
}

/// File prefixes of the splits in a folder (Multi30k's names by default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitNames {
    /// Training split.
    pub train: String,
    /// Validation split.
    pub valid: String,
    /// Test split.
    pub test: String,
}

impl Default for SplitNames {
    fn default() -> Self {
        SplitNames {
            train: "train".into(),
            valid: "val".into(),
            test: "test_2016_flickr".into(),
        }
    }
}

/// The three splits of a parallel corpus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParallelCorpus {
    /// Training pairs.
    pub train: ParallelText,
    /// Validation pairs.
    pub valid: ParallelText,
    /// Test pairs.
    pub test: ParallelText,
}

/// Reads the splits `names` of `dir` from `SPLIT.src` and `SPLIT.tgt`, in `encoding`.
///
/// # Errors
/// As [`read_split`], for each split.
pub fn load_parallel(
    dir: &Path,
    src: &str,
    tgt: &str,
    names: &SplitNames,
    encoding: Encoding,
) -> Result<ParallelCorpus> {
    Ok(ParallelCorpus {
        train: read_split(dir, &names.train, src, tgt, encoding)?,
        valid: read_split(dir, &names.valid, src, tgt, encoding)?,
        test: read_split(dir, &names.test, src, tgt, encoding)?,
    })
}

/// Reads the split `prefix` of `dir`: `prefix.src` and `prefix.tgt`, in `encoding`.
///
/// # Errors
/// [`Error::NotUtf8`] for a file that is not the UTF-8 it should be; [`Error::Data`] naming the
/// file: missing (with the languages and splits the folder has), an empty line (with its
/// number), no line at all, or a different number of lines in the two files; [`Error::Config`]
/// when `src` and `tgt` are the same language.
pub fn read_split(
    dir: &Path,
    prefix: &str,
    src: &str,
    tgt: &str,
    encoding: Encoding,
) -> Result<ParallelText> {
    if src == tgt {
        return Err(Error::Config(format!(
            "the source and target languages are both `{src}`"
        )));
    }
    let (sp, tp) = (split_file(dir, prefix, src)?, split_file(dir, prefix, tgt)?);
    let (s, t) = (
        read_sentences(&sp, encoding)?,
        read_sentences(&tp, encoding)?,
    );
    if s.len() != t.len() {
        return Err(Error::Data {
            path: tp,
            message: format!(
                "has {} lines but {} has {}: the two files of a split must be line-aligned",
                t.len(),
                sp.display(),
                s.len()
            ),
        });
    }
    Ok(ParallelText { src: s, tgt: t })
}

/// `dir/prefix.lang`, or an error listing the files the folder has.
fn split_file(dir: &Path, prefix: &str, lang: &str) -> Result<PathBuf> {
    let path = dir.join(format!("{prefix}.{lang}"));
    if path.is_file() {
        return Ok(path);
    }
    let mut have: Vec<String> = std::fs::read_dir(dir)
        .map_err(|cause| Error::Io {
            path: dir.to_path_buf(),
            cause,
        })?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains('.'))
        .collect();
    have.sort();
    Err(Error::Data {
        path,
        message: format!(
            "no such file (split `{prefix}`, language `{lang}`); the folder holds: {}",
            if have.is_empty() {
                "no PREFIX.LANG files".to_string()
            } else {
                have.join(", ")
            }
        ),
    })
}

/// The trimmed lines of `path`, in `encoding`, refusing an empty line or an empty file.
///
/// # Errors
/// [`Error::Io`], [`Error::NotUtf8`] as [`read_text`]; [`Error::Data`] naming an empty line, or
/// a file without lines.
pub fn read_sentences(path: &Path, encoding: Encoding) -> Result<Vec<String>> {
    let text = read_text(path, encoding)?;
    let bad = |message: String| Error::Data {
        path: path.to_path_buf(),
        message,
    };
    let mut out = Vec::new();
    for (i, line) in Lines(&text).enumerate() {
        let s = line.trim();
        if s.is_empty() {
            return Err(bad(format!(
                "line {} is empty: every line must hold a sentence",
                i + 1
            )));
        }
        out.push(s.to_string());
    }
    if out.is_empty() {
        return Err(bad("the file holds no sentence".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str, files: &[(&str, &[u8])]) -> PathBuf {
        let d = std::env::temp_dir().join(format!("seqrnn-parallel-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for (n, b) in files {
            std::fs::write(d.join(n), b).unwrap();
        }
        d
    }

    #[test]
    fn aligned_files_give_pairs_with_any_line_ending() {
        let d = dir(
            "ok",
            &[
                ("train.de", b"Ein Hund.\r\n  Zwei Katzen. \nDrei\n"),
                ("train.en", b"A dog.\nTwo cats.\rThree"),
            ],
        );
        let p = read_split(&d, "train", "de", "en", Encoding::UTF_8).unwrap();
        assert_eq!(p.src, ["Ein Hund.", "Zwei Katzen.", "Drei"]);
        assert_eq!(p.tgt, ["A dog.", "Two cats.", "Three"]);
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn bad_files_are_named_with_their_line() {
        let d = dir(
            "bad",
            &[
                ("train.de", b"a\nb\nc\n"),
                ("train.en", b"a\nb\n"),
                ("val.de", b"a\n\nc\n"),
                ("val.en", b"a\nb\nc\n"),
                ("test.de", b"a\nb\xff\n"),
                ("test.en", b"a\nb\n"),
                ("empty.de", b"\n"),
                ("empty.en", b""),
            ],
        );
        let msg = |p: &str, s: &str, t: &str| {
            read_split(&d, p, s, t, Encoding::UTF_8)
                .unwrap_err()
                .to_string()
        };
        let m = msg("train", "de", "en");
        assert!(
            m.contains("train.en: has 2 lines but") && m.contains("train.de has 3"),
            "{m}"
        );
        let m = msg("val", "de", "en");
        assert!(m.contains("val.de: line 2 is empty"), "{m}");
        let m = msg("test", "de", "en");
        assert!(m.contains("test.de: line 2 is not valid UTF-8"), "{m}");
        let m = msg("empty", "en", "de");
        assert!(m.contains("empty.en: the file holds no sentence"), "{m}");
        let m = msg("train", "de", "fr");
        assert!(m.contains("train.fr: no such file (split `train`, language `fr`); the folder holds: empty.de, empty.en, test.de"), "{m}");
        let m = msg("train", "de", "de");
        assert!(m.contains("both `de`"), "{m}");
    }

    #[test]
    fn multi30k_has_its_published_sizes() {
        let Some(dir) = crate::test_shared::shared("data/multi30k") else {
            return;
        };
        let c = load_parallel(&dir, "de", "en", &SplitNames::default(), Encoding::UTF_8).unwrap();
        assert_eq!(
            (c.train.len(), c.valid.len(), c.test.len()),
            (29_000, 1_014, 1_000)
        );
        assert_eq!(
            c.train.src[2],
            "Ein kleines Mädchen klettert in ein Spielhaus aus Holz."
        );
    }
}

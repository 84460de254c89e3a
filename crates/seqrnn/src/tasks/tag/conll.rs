//! Token-per-line labelled text for tagging: CoNLL column files (CoNLL-2003) and CoNLL-U
//! (Universal Dependencies).
//!
//! - **CoNLL columns**: one token a line, columns separated by spaces or tabs, a blank line
//!   between sentences, `-DOCSTART-` lines skipped. The word and the label are columns chosen by
//!   index ([`Columns`]; default the first and the last). Every token line of a file must have
//!   the same number of columns.
//! - **CoNLL-U**: ten tab-separated columns, `#` comment lines; multiword-token ranges (`3-4`)
//!   and empty nodes (`5.1`) are not words. The word is `FORM`, the label `UPOS` or `XPOS`.
//!
//! Every token keeps its line of the file, so a prediction can be written back in the file's own
//! format, and every error names the file and line.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::text::{read_text, Encoding, Lines};
use crate::error::{Error, Result};

/// Which file format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Whitespace-separated columns (CoNLL-2003).
    #[default]
    Conll,
    /// Universal Dependencies' CoNLL-U.
    Conllu,
}

/// The label column of a CoNLL-U file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UdLabel {
    /// Universal part of speech (column 4).
    #[default]
    Upos,
    /// Language-specific part of speech (column 5).
    Xpos,
}

/// Word and label columns of a CoNLL column file (0-based; `None` for the last).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Columns {
    /// Word column (`None`: the first).
    pub word: Option<usize>,
    /// Label column (`None`: the last).
    pub label: Option<usize>,
}

/// How to read a file. `Default` reads CoNLL-2003 in UTF-8.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadConfig {
    /// The format.
    pub format: Format,
    /// Columns of a CoNLL file.
    pub columns: Columns,
    /// Label of a CoNLL-U file.
    pub ud_label: UdLabel,
    /// The files' encoding (UTF-8 in a run written before runs recorded it).
    #[serde(default)]
    pub encoding: Encoding,
}

/// One sentence: words, labels and where each token came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sentence {
    /// The words.
    pub words: Vec<String>,
    /// Their labels.
    pub labels: Vec<String>,
    /// The 1-based line of each token in the file.
    pub lines: Vec<usize>,
}

/// A file's sentences and its lines (to write predictions back in the same format).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaggedFile {
    /// The sentences, in order.
    pub sentences: Vec<Sentence>,
    /// Every line of the file, as read (line `n` is `lines[n − 1]`).
    pub lines: Vec<String>,
}

fn bad(path: &Path, message: String) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        message,
    }
}

/// Reads `path` as `config` says.
///
/// # Errors
/// I/O errors; [`Error::NotUtf8`] for a file that is not the UTF-8 it should be (line and byte
/// offset); [`Error::Format`] naming the line for ragged columns, a column out of range, a
/// CoNLL-U line without ten columns, a sentence without words, and a file without sentences.
pub fn read_tagged(path: &Path, config: &ReadConfig) -> Result<TaggedFile> {
    let text = read_text(path, config.encoding)?;
    let lines: Vec<String> = Lines(&text).map(String::from).collect();
    let sentences = match config.format {
        Format::Conll => conll_sentences(path, &lines, config.columns)?,
        Format::Conllu => conllu_sentences(path, &lines, config.ud_label)?,
    };
    if sentences.is_empty() {
        return Err(bad(path, "no sentences in the file".into()));
    }
    Ok(TaggedFile { sentences, lines })
}

fn conll_sentences(path: &Path, lines: &[String], cols: Columns) -> Result<Vec<Sentence>> {
    let mut out = Vec::new();
    let mut cur = Sentence::default();
    let mut width: Option<(usize, usize)> = None;
    for (i, line) in lines.iter().enumerate() {
        let no = i + 1;
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() || fields[0] == "-DOCSTART-" {
            if !cur.words.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        match width {
            None => {
                let n = fields.len();
                let w = cols.word.unwrap_or(0);
                let l = cols.label.unwrap_or(n - 1);
                for (what, c) in [("word", w), ("label", l)] {
                    if c >= n {
                        return Err(bad(
                            path,
                            format!(
                                "line {no}: the {what} column is {} but the line has {n} columns",
                                c + 1
                            ),
                        ));
                    }
                }
                if n < 2 {
                    return Err(bad(
                        path,
                        format!(
                            "line {no}: one column only; a token line needs a word and a label"
                        ),
                    ));
                }
                width = Some((n, no));
            }
            Some((n, first)) if fields.len() != n => {
                return Err(bad(
                    path,
                    format!(
                        "line {no} has {} columns but line {first} has {n}: every token line needs the same columns",
                        fields.len()
                    ),
                ));
            }
            Some(_) => {}
        }
        let n = fields.len();
        cur.words.push(fields[cols.word.unwrap_or(0)].to_string());
        cur.labels
            .push(fields[cols.label.unwrap_or(n - 1)].to_string());
        cur.lines.push(no);
    }
    if !cur.words.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

fn conllu_sentences(path: &Path, lines: &[String], label: UdLabel) -> Result<Vec<Sentence>> {
    let mut out = Vec::new();
    let mut cur = Sentence::default();
    let mut started: Option<usize> = None;
    for (i, line) in lines.iter().enumerate() {
        let no = i + 1;
        if line.trim().is_empty() {
            if let Some(first) = started.take() {
                if cur.words.is_empty() {
                    return Err(bad(
                        path,
                        format!("the sentence starting at line {first} has no words"),
                    ));
                }
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        started.get_or_insert(no);
        if line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() != 10 {
            return Err(bad(
                path,
                format!(
                    "line {no} has {} tab-separated columns; CoNLL-U has 10",
                    fields.len()
                ),
            ));
        }
        if fields[0].contains('-') || fields[0].contains('.') {
            continue; // a multiword range or an empty node
        }
        let tag = match label {
            UdLabel::Upos => fields[3],
            UdLabel::Xpos => fields[4],
        };
        cur.words.push(fields[1].to_string());
        cur.labels.push(tag.to_string());
        cur.lines.push(no);
    }
    if let Some(first) = started {
        if cur.words.is_empty() {
            return Err(bad(
                path,
                format!("the sentence starting at line {first} has no words"),
            ));
        }
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("seqrnn-conll-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn conll_columns_docstart_and_blank_lines() {
        let p = file(
            "a.conll",
            "-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\n\n\nPeter\tNNP I-NP I-PER\n",
        );
        let f = read_tagged(&p, &ReadConfig::default()).unwrap();
        assert_eq!(f.sentences.len(), 2);
        assert_eq!(f.sentences[0].words, vec!["EU", "rejects"]);
        assert_eq!(f.sentences[0].labels, vec!["I-ORG", "O"]);
        assert_eq!(f.sentences[0].lines, vec![3, 4]);
        assert_eq!(f.sentences[1].lines, vec![7]);
        let pos = ReadConfig {
            columns: Columns {
                word: None,
                label: Some(1),
            },
            ..ReadConfig::default()
        };
        assert_eq!(
            read_tagged(&p, &pos).unwrap().sentences[0].labels,
            vec!["NNP", "VBZ"]
        );
    }

    #[test]
    fn conllu_skips_ranges_empty_nodes_and_comments() {
        let row = |id: &str, form: &str, upos: &str| {
            format!("{id}\t{form}\t_\t{upos}\tX{upos}\t_\t0\t_\t_\t_\n")
        };
        let text = format!(
            "# sent_id = 1\n{}{}{}{}\n# sent_id = 2\n{}",
            row("1", "I", "PRON"),
            row("2-3", "can't", "_"),
            row("2", "ca", "AUX"),
            row("2.1", "x", "_"),
            row("1", "Go", "VERB")
        );
        let p = file("a.conllu", &text);
        let cfg = ReadConfig {
            format: Format::Conllu,
            ..ReadConfig::default()
        };
        let f = read_tagged(&p, &cfg).unwrap();
        assert_eq!(f.sentences.len(), 2);
        assert_eq!(f.sentences[0].words, vec!["I", "ca"]);
        assert_eq!(f.sentences[0].labels, vec!["PRON", "AUX"]);
        let x = ReadConfig {
            ud_label: UdLabel::Xpos,
            ..cfg
        };
        assert_eq!(
            read_tagged(&p, &x).unwrap().sentences[1].labels,
            vec!["XVERB"]
        );
    }

    #[test]
    fn latin1_files_give_the_sentences_of_their_utf8_twin() {
        let text =
            "-DOCSTART- O\n\nMüller B-PER\nflog O\nnach O\nSão B-LOC\nPaulo I-LOC\n\nJosé B-PER\n";
        let (latin1, _, unmappable) = encoding_rs::WINDOWS_1252.encode(text);
        assert!(!unmappable);
        let twin = file("latin1.conll", "");
        std::fs::write(&twin, &latin1).unwrap();
        let utf8 = read_tagged(&file("utf8.conll", text), &ReadConfig::default()).unwrap();
        let cfg = ReadConfig {
            encoding: Encoding::for_label("latin1").unwrap(),
            ..ReadConfig::default()
        };
        let f = read_tagged(&twin, &cfg).unwrap();
        assert_eq!(f, utf8);
        assert_eq!(
            f.sentences[0].words,
            ["Müller", "flog", "nach", "São", "Paulo"]
        );
        assert_eq!(f.sentences[1].words, ["José"]);
        let e = read_tagged(&twin, &ReadConfig::default()).unwrap_err();
        assert!(
            matches!(
                e,
                Error::NotUtf8 {
                    line: 3,
                    offset: 15,
                    ..
                }
            ),
            "{e:?}"
        );
        // A UTF-8 BOM is no part of the first line: `-DOCSTART-` is still seen.
        let bom = read_tagged(
            &file("bom.conll", &format!("\u{feff}{text}")),
            &ReadConfig::default(),
        );
        assert_eq!(bom.unwrap(), utf8);
    }

    #[test]
    fn bad_files_name_their_line() {
        let cases = [
            (
                "ragged",
                "a B C\nd E\n",
                "line 2 has 2 columns but line 1 has 3",
            ),
            ("one", "word\n", "one column only"),
            ("empty", "\n\n", "no sentences"),
        ];
        for (name, text, needle) in cases {
            let e = read_tagged(&file(name, text), &ReadConfig::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{name}: {e}");
        }
        let out_of_range = ReadConfig {
            columns: Columns {
                word: None,
                label: Some(5),
            },
            ..ReadConfig::default()
        };
        let e = read_tagged(&file("range", "a B\n"), &out_of_range)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 1: the label column is 6 but the line has 2 columns"),
            "{e}"
        );
        let u = ReadConfig {
            format: Format::Conllu,
            ..ReadConfig::default()
        };
        let e = read_tagged(&file("u1", "1\tx\t_\n"), &u)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1 has 3 tab-separated columns"), "{e}");
        let e = read_tagged(&file("u2", "# only a comment\n\n"), &u)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the sentence starting at line 1 has no words"),
            "{e}"
        );
        std::fs::write(file("utf8", ""), b"a B\n\xff C\n").unwrap();
        let e = read_tagged(&file("utf8b", "a B\n"), &ReadConfig::default());
        assert!(e.is_ok());
        let p = std::env::temp_dir()
            .join(format!("seqrnn-conll-{}", std::process::id()))
            .join("utf8");
        let e = read_tagged(&p, &ReadConfig::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2 is not valid UTF-8"), "{e}");
    }
}

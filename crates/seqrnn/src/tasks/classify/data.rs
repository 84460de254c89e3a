//! Labelled text for sequence classification: tab-separated `label<TAB>text` files with a
//! header line (GLUE's SST-2 layout), whitespace tokens, a vocabulary from the training split.

use std::collections::HashMap;
use std::path::Path;

use crate::data::text::{read_text, Encoding};
use crate::data::Vocab;
use crate::error::{Error, Result};

/// The padding token: id 0 of every classification vocabulary.
pub const PAD: &str = "<pad>";
/// Id of `<unk>` in a vocabulary from [`build_vocab`] (after `<pad>` at 0).
pub const UNK_ID: u32 = 1;

/// One labelled example: the label string and the whitespace-separated tokens of its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    /// The label as written in the file.
    pub label: String,
    /// Tokens of the text (at least one).
    pub tokens: Vec<String>,
}

/// Reads a `label<TAB>text` file with a header line, in `encoding`.
///
/// # Errors
/// [`Error::Io`] when it cannot be read; [`Error::NotUtf8`] when it is not the UTF-8 it should
/// be; [`Error::Data`] when it is empty, has no examples, or a line lacks the tab, a label or
/// any text (the line number is given).
pub fn load_tsv(path: &Path, encoding: Encoding) -> Result<Vec<Example>> {
    let bad = |message: String| Error::Data {
        path: path.to_path_buf(),
        message,
    };
    let text = read_text(path, encoding)?;
    let mut lines = text.lines().enumerate();
    match lines.next() {
        None => return Err(bad("the file is empty".into())),
        Some((_, h)) if !h.contains('\t') => {
            return Err(bad(
                "line 1: the header should be `label<TAB>text` (no tab found)".into(),
            ))
        }
        Some(_) => {}
    }
    let mut out = Vec::new();
    for (no, line) in lines {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let (label, text) = line
            .split_once('\t')
            .ok_or_else(|| bad(format!("line {}: no tab between label and text", no + 1)))?;
        let label = label.trim();
        if label.is_empty() {
            return Err(bad(format!("line {}: empty label", no + 1)));
        }
        let tokens = tokenize(text);
        if tokens.is_empty() {
            return Err(bad(format!("line {}: empty text", no + 1)));
        }
        out.push(Example {
            label: label.to_string(),
            tokens,
        });
    }
    if out.is_empty() {
        return Err(bad("no examples after the header".into()));
    }
    Ok(out)
}

/// Whitespace tokenisation (the same for training files and `predict` input).
pub fn tokenize(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

/// The word vocabulary of `examples`: `<pad>` (id 0), `<unk>` (id 1), then every token seen at
/// least `min_freq` times, most frequent first (ties in order of first appearance).
pub fn build_vocab(examples: &[Example], min_freq: usize) -> Vocab {
    let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
    for t in examples.iter().flat_map(|e| &e.tokens) {
        let n = counts.len();
        counts.entry(t).or_insert((0, n)).0 += 1;
    }
    let mut words: Vec<(&str, usize, usize)> = counts
        .into_iter()
        .filter(|(_, (c, _))| *c >= min_freq.max(1))
        .map(|(w, (c, first))| (w, c, first))
        .collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
    let mut v = Vocab::new();
    v.add(PAD);
    v.add(crate::data::UNK);
    for (w, _, _) in words {
        v.add(w);
    }
    v
}

/// The label set of `examples`, sorted (so ids do not depend on example order).
pub fn build_labels(examples: &[Example]) -> Vocab {
    let mut labels: Vec<&str> = examples.iter().map(|e| e.label.as_str()).collect();
    labels.sort_unstable();
    labels.dedup();
    let mut v = Vocab::new();
    for l in labels {
        v.add(l);
    }
    v
}

/// Token ids of `tokens` (`<unk>` for words not in `vocab`) and how many were unknown.
pub fn encode(tokens: &[String], vocab: &Vocab) -> (Vec<u32>, usize) {
    let unk = vocab.unk_id().unwrap_or(1);
    let mut unknown = 0;
    let ids = tokens
        .iter()
        .map(|t| {
            vocab.id(t).unwrap_or_else(|| {
                unknown += 1;
                unk
            })
        })
        .collect();
    (ids, unknown)
}

/// Encoded examples: token ids and label ids, ready to batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Encoded {
    /// Token ids per example.
    pub ids: Vec<Vec<u32>>,
    /// Label id per example.
    pub labels: Vec<u32>,
    /// Tokens that were not in the vocabulary.
    pub unknown_tokens: usize,
}

/// Encodes `examples` with `vocab` and `labels`.
///
/// # Errors
/// [`Error::Data`] (naming `path`) for a label not in `labels`.
pub fn encode_all(
    examples: &[Example],
    vocab: &Vocab,
    labels: &Vocab,
    path: &Path,
) -> Result<Encoded> {
    let mut out = Encoded::default();
    for e in examples {
        let label = labels.id(&e.label).ok_or_else(|| Error::Data {
            path: path.to_path_buf(),
            message: format!(
                "unknown label `{}` (the training split has: {})",
                e.label,
                labels.tokens().join(", ")
            ),
        })?;
        let (ids, unk) = encode(&e.tokens, vocab);
        out.ids.push(ids);
        out.labels.push(label);
        out.unknown_tokens += unk;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("seqrnn-tsv-{}-{name}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn reads_builds_vocab_and_encodes() {
        let p = write(
            "ok.tsv",
            b"label\tsentence\npos\ta good film\nneg\ta bad film\r\n\npos\tgood\n",
        );
        let ex = load_tsv(&p, Encoding::UTF_8).unwrap();
        assert_eq!(ex.len(), 3);
        assert_eq!(ex[1].tokens, ["a", "bad", "film"]);
        let v = build_vocab(&ex, 2);
        assert_eq!(v.tokens(), [PAD, "<unk>", "a", "good", "film"]);
        let l = build_labels(&ex);
        assert_eq!(l.tokens(), ["neg", "pos"]);
        let e = encode_all(&ex, &v, &l, &p).unwrap();
        assert_eq!(e.ids[1], [2, 1, 4]);
        assert_eq!(e.labels, [1, 0, 1]);
        assert_eq!(e.unknown_tokens, 1);
        let other = vec![Example {
            label: "meh".into(),
            tokens: vec!["a".into()],
        }];
        let err = encode_all(&other, &v, &l, &p).unwrap_err().to_string();
        assert!(err.contains("unknown label `meh`"), "{err}");
    }

    #[test]
    fn bad_files_give_one_message() {
        for (name, bytes, needle) in [
            ("empty.tsv", &b""[..], "empty"),
            ("nohead.tsv", b"label sentence\n", "no tab found"),
            ("none.tsv", b"label\ttext\n", "no examples"),
            ("notab.tsv", b"label\ttext\npos good\n", "line 2: no tab"),
            (
                "nolabel.tsv",
                b"label\ttext\n\tgood\n",
                "line 2: empty label",
            ),
            (
                "notext.tsv",
                b"label\ttext\npos\t  \n",
                "line 2: empty text",
            ),
            (
                "utf8.tsv",
                b"label\ttext\npos\tok\nneg\t\xff\n",
                "utf8.tsv: line 3 is not valid UTF-8 (byte offset 22)",
            ),
        ] {
            let e = load_tsv(&write(name, bytes), Encoding::UTF_8)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{name}: {e}");
        }
    }

    #[test]
    fn a_windows_1252_file_reads_as_its_utf8_twin() {
        let text = "label\tsentence\npos\tMüller’s “café” – naïve\nneg\tSão Paulo €\n";
        let (cp1252, _, unmappable) = encoding_rs::WINDOWS_1252.encode(text);
        assert!(!unmappable && cp1252.len() < text.len());
        let enc = Encoding::for_label("windows-1252").unwrap();
        let ex = load_tsv(&write("cp1252.tsv", &cp1252), enc).unwrap();
        // A UTF-8 BOM is skipped.
        let bom = [&b"\xEF\xBB\xBF"[..], text.as_bytes()].concat();
        assert_eq!(
            ex,
            load_tsv(&write("bom.tsv", &bom), Encoding::UTF_8).unwrap()
        );
        assert_eq!(ex[0].tokens, ["Müller’s", "“café”", "–", "naïve"]);
        assert_eq!((ex[1].label.as_str(), ex[1].tokens.len()), ("neg", 3));
        let e = load_tsv(&write("cp1252.tsv", &cp1252), Encoding::UTF_8).unwrap_err();
        assert!(matches!(e, Error::NotUtf8 { line: 2, .. }), "{e:?}");
    }
}

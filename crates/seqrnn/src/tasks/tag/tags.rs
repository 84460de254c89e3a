//! Tag schemes of sequence labelling (IOB1, IOB2 a.k.a. BIO, IOBES), chunks (entities) and the
//! conversions between schemes.
//!
//! A tag is `O` or `P-TYPE` with a prefix `P` in `B`, `I`, `E`, `S` (`I-PER`, `B-LOC`). Chunks are
//! read as the CoNLL `conlleval` script and its Python port `seqeval` read them (default mode):
//! a chunk starts at a `B` or `S`, at an `I` or `E` after `O`, after an `E` or `S`, or after a tag
//! of another type; it ends before such a start and before an `O`. That one reading serves every
//! scheme, so a file in any scheme converts to any other through its chunks
//! ([`convert`]); [`check`] refuses sequences a scheme does not allow (an IOB2 `I-PER` after `O`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A tagging scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// `I` inside chunks; `B` only where a chunk directly follows one of the same type
    /// (CoNLL-2003's files).
    Iob1,
    /// `B` starts every chunk, `I` continues it (BIO).
    Iob2,
    /// `S` single-token chunks, `B` begin, `I` inside, `E` end (BIOES / BILOU).
    Iobes,
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Iob1 => "IOB1",
            Scheme::Iob2 => "IOB2",
            Scheme::Iobes => "IOBES",
        })
    }
}

impl std::str::FromStr for Scheme {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "iob1" => Ok(Scheme::Iob1),
            "iob2" | "bio" => Ok(Scheme::Iob2),
            "iobes" | "bioes" => Ok(Scheme::Iobes),
            _ => Err(Error::Config(format!(
                "unknown tag scheme `{s}` (expected iob1, iob2 or iobes)"
            ))),
        }
    }
}

/// A chunk: its type and the tokens `start..=end` it covers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Chunk {
    /// Entity type (`PER`); `_` for a prefix without a type.
    pub kind: String,
    /// First token.
    pub start: usize,
    /// Last token (inclusive).
    pub end: usize,
}

/// Prefix and type of a tag: `("B", "PER")`, `("O", "")`.
pub fn split_tag(tag: &str) -> (&str, &str) {
    if tag == "O" {
        return ("O", "");
    }
    match tag.split_once('-') {
        Some((p, t)) => (p, if t.is_empty() { "_" } else { t }),
        None => (&tag[..tag.len().min(1)], "_"),
    }
}

fn end_of_chunk(prev: &str, tag: &str, prev_type: &str, kind: &str) -> bool {
    matches!(prev, "E" | "S")
        || (matches!(prev, "B" | "I") && matches!(tag, "B" | "S" | "O"))
        || (prev != "O" && prev != "." && prev_type != kind)
}

fn start_of_chunk(prev: &str, tag: &str, prev_type: &str, kind: &str) -> bool {
    matches!(tag, "B" | "S")
        || (matches!(prev, "E" | "S" | "O") && matches!(tag, "E" | "I"))
        || (tag != "O" && tag != "." && prev_type != kind)
}

/// The chunks of one sentence's tags, in order.
pub fn chunks<S: AsRef<str>>(tags: &[S]) -> Vec<Chunk> {
    let mut out = Vec::new();
    let (mut prev, mut prev_type, mut begin) = ("O", "", 0);
    for (i, tag) in tags
        .iter()
        .map(AsRef::as_ref)
        .chain(std::iter::once("O"))
        .enumerate()
    {
        let (p, kind) = split_tag(tag);
        if end_of_chunk(prev, p, prev_type, kind) {
            out.push(Chunk {
                kind: prev_type.to_string(),
                start: begin,
                end: i - 1,
            });
        }
        if start_of_chunk(prev, p, prev_type, kind) {
            begin = i;
        }
        (prev, prev_type) = (p, kind);
    }
    out
}

/// The tags of `n` tokens holding `chunks` (non-overlapping, in order) in `scheme`.
pub fn tags_of(chunks: &[Chunk], n: usize, scheme: Scheme) -> Vec<String> {
    let mut tags = vec!["O".to_string(); n];
    let mut prev_end: Option<(usize, &str)> = None;
    for c in chunks {
        for (i, tag) in tags.iter_mut().enumerate().take(c.end + 1).skip(c.start) {
            let prefix = match scheme {
                Scheme::Iob2 => match i == c.start {
                    true => "B",
                    false => "I",
                },
                Scheme::Iob1 => {
                    let follows_same =
                        prev_end.is_some_and(|(e, k)| e + 1 == c.start && k == c.kind);
                    match i == c.start && follows_same {
                        true => "B",
                        false => "I",
                    }
                }
                Scheme::Iobes => match (i == c.start, i == c.end) {
                    (true, true) => "S",
                    (true, false) => "B",
                    (false, true) => "E",
                    (false, false) => "I",
                },
            };
            *tag = format!("{prefix}-{}", c.kind);
        }
        prev_end = Some((c.end, &c.kind));
    }
    tags
}

/// `tags` (read as chunks) written in `to`.
pub fn convert<S: AsRef<str>>(tags: &[S], to: Scheme) -> Vec<String> {
    tags_of(&chunks(tags), tags.len(), to)
}

/// Where a sentence's tags break `scheme`: the index of the first offending tag and why. IOB2
/// and IOBES `I`/`E` tags must continue a chunk of their type, and IOBES chunks must be closed;
/// an IOB1 `B` outside its usual place (after `O`) is accepted, as it starts a chunk either way.
pub fn check<S: AsRef<str>>(
    tags: &[S],
    scheme: Scheme,
) -> std::result::Result<(), (usize, String)> {
    let allowed = match scheme {
        Scheme::Iob1 | Scheme::Iob2 => ["O", "B", "I"].as_slice(),
        Scheme::Iobes => ["O", "B", "I", "E", "S"].as_slice(),
    };
    let mut prev: (&str, &str) = ("O", "");
    for (i, tag) in tags.iter().map(AsRef::as_ref).enumerate() {
        let (p, kind) = split_tag(tag);
        if !allowed.contains(&p) || (p != "O" && !tag.contains('-')) {
            return Err((i, format!("`{tag}` is not a tag of the {scheme} scheme")));
        }
        let continues = prev.1 == kind && matches!(prev.0, "B" | "I");
        let bad = match (scheme, p) {
            (Scheme::Iob2, "I") => !continues,
            (Scheme::Iobes, "I" | "E") => !continues,
            (Scheme::Iobes, "B" | "S" | "O") => matches!(prev.0, "B" | "I"),
            _ => false,
        };
        if bad {
            return Err((
                i,
                format!(
                    "`{tag}` cannot follow `{}` in the {scheme} scheme",
                    tag_name(prev)
                ),
            ));
        }
        prev = (p, kind);
    }
    if scheme == Scheme::Iobes && matches!(prev.0, "B" | "I") {
        return Err((
            tags.len().saturating_sub(1),
            format!("the chunk `{}` is not closed by an E- tag", tag_name(prev)),
        ));
    }
    Ok(())
}

fn tag_name((p, kind): (&str, &str)) -> String {
    match p {
        "O" => "O".into(),
        _ => format!("{p}-{kind}"),
    }
}

/// The scheme of a file's sentences: IOBES when an `E-` or `S-` tag appears, IOB1 when an `I-`
/// tag starts a chunk (after `O`, another type, or at the start), IOB2 otherwise.
pub fn detect<S: AsRef<str>>(sentences: &[Vec<S>]) -> Scheme {
    let mut iob1 = false;
    for tags in sentences {
        let mut prev: (&str, &str) = ("O", "");
        for tag in tags.iter().map(AsRef::as_ref) {
            let (p, kind) = split_tag(tag);
            if matches!(p, "E" | "S") {
                return Scheme::Iobes;
            }
            if p == "I" && !(prev.1 == kind && matches!(prev.0, "B" | "I")) {
                iob1 = true;
            }
            prev = (p, kind);
        }
    }
    match iob1 {
        true => Scheme::Iob1,
        false => Scheme::Iob2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn c(kind: &str, start: usize, end: usize) -> Chunk {
        Chunk {
            kind: kind.into(),
            start,
            end,
        }
    }

    #[test]
    fn chunks_as_conlleval_reads_them() {
        // IOB1 (CoNLL-2003): B only between adjacent chunks of one type.
        assert_eq!(
            chunks(&t("I-PER I-PER O I-LOC B-LOC I-ORG")),
            vec![
                c("PER", 0, 1),
                c("LOC", 3, 3),
                c("LOC", 4, 4),
                c("ORG", 5, 5)
            ]
        );
        // IOB2 and IOBES of the same chunks.
        assert_eq!(
            chunks(&t("B-PER I-PER O B-LOC B-LOC B-ORG")),
            chunks(&t("I-PER I-PER O I-LOC B-LOC I-ORG"))
        );
        assert_eq!(
            chunks(&t("B-PER E-PER O S-LOC S-LOC S-ORG")),
            chunks(&t("I-PER I-PER O I-LOC B-LOC I-ORG"))
        );
        // Ill-formed sequences are read leniently, as conlleval does.
        assert_eq!(
            chunks(&t("O I-PER I-LOC")),
            vec![c("PER", 1, 1), c("LOC", 2, 2)]
        );
        assert_eq!(
            chunks(&t("B-PER E-PER I-PER")),
            vec![c("PER", 0, 1), c("PER", 2, 2)]
        );
        assert!(chunks(&t("O O")).is_empty());
    }

    #[test]
    fn every_scheme_round_trips_through_every_other() {
        let iob1 = t("I-PER I-PER O I-LOC B-LOC I-ORG O I-MISC I-MISC");
        let iob2 = convert(&iob1, Scheme::Iob2);
        assert_eq!(iob2, t("B-PER I-PER O B-LOC B-LOC B-ORG O B-MISC I-MISC"));
        let iobes = convert(&iob2, Scheme::Iobes);
        assert_eq!(iobes, t("B-PER E-PER O S-LOC S-LOC S-ORG O B-MISC E-MISC"));
        assert_eq!(convert(&iobes, Scheme::Iob1), iob1);
        assert_eq!(convert(&iobes, Scheme::Iob2), iob2);
        assert_eq!(convert(&iob1, Scheme::Iobes), iobes);
        for (tags, scheme) in [
            (&iob1, Scheme::Iob1),
            (&iob2, Scheme::Iob2),
            (&iobes, Scheme::Iobes),
        ] {
            assert_eq!(check(tags, scheme), Ok(()), "{scheme}");
            assert_eq!(detect(std::slice::from_ref(tags)), scheme);
        }
    }

    #[test]
    fn invalid_sequences_are_named_with_their_position() {
        let e = check(&t("O I-PER"), Scheme::Iob2).unwrap_err();
        assert_eq!(e.0, 1);
        assert!(
            e.1.contains("`I-PER` cannot follow `O` in the IOB2 scheme"),
            "{}",
            e.1
        );
        assert_eq!(check(&t("B-PER I-LOC"), Scheme::Iob2).unwrap_err().0, 1);
        // IOB1 writes B only between chunks of one type, but a B elsewhere still starts a
        // chunk unambiguously (CoNLL-2003's eng.train has two, lines 152,428 and 175,436).
        assert_eq!(check(&t("O B-PER"), Scheme::Iob1), Ok(()));
        assert_eq!(check(&t("O E-PER"), Scheme::Iob1).unwrap_err().0, 1);
        assert_eq!(check(&t("B-PER O"), Scheme::Iobes).unwrap_err().0, 1);
        let e = check(&t("O B-PER I-PER"), Scheme::Iobes).unwrap_err();
        assert!(e.1.contains("not closed"), "{}", e.1);
        assert!(check(&t("X-PER"), Scheme::Iob2)
            .unwrap_err()
            .1
            .contains("not a tag"));
        assert!(check(&t("S-PER"), Scheme::Iob2).is_err());
        assert!("bilou".parse::<Scheme>().is_err());
        assert_eq!("BIO".parse::<Scheme>().unwrap(), Scheme::Iob2);
    }
}

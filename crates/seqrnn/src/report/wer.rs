//! Word and character error rates of recognised text, as speech recognition reports them and
//! as `jiwer` computes them by default.
//!
//! Each utterance is aligned to its reference by the Levenshtein distance over tokens
//! (substitution, deletion and insertion each cost 1). [`ErrorCounts`] holds the counts of one
//! utterance or, summed with `+=`, of a corpus; the corpus rate is the total of edits over the
//! total of reference tokens (`(S + D + I) / N`), not the mean of per-utterance rates, and can
//! exceed 1 when the hypotheses insert much.
//!
//! - Words ([`ErrorCounts::words`], [`word_errors`], [`word_error_rate`]): the strings split
//!   on whitespace (runs of it count as one, leading and trailing ignored), as `jiwer.wer`.
//! - Characters ([`ErrorCounts::chars`], [`char_errors`], [`char_error_rate`]): the Unicode
//!   scalar values of each string with its leading and trailing whitespace removed, inner
//!   spaces included (each counts as a character) and repeated as written, as `jiwer.cer`. No
//!   other normalisation: case, punctuation and Unicode composition are compared as given (a
//!   letter with a combining accent is two characters).
//!
//! An empty reference is allowed: every hypothesis token is then an insertion. A rate needs
//! reference tokens, so [`ErrorCounts::rate`] is `None` when the total reference is empty;
//! [`ErrorCounts::rate_or_edits`] gives `jiwer` 4's convention instead (`0` for an empty
//! reference and hypothesis, the number of insertions otherwise).
//!
//! The breakdown into substitutions, deletions and insertions is that of one minimal
//! alignment, preferring a substitution, then a deletion, then an insertion where several are
//! minimal; the number of edits does not depend on that choice, the breakdown may differ from
//! `jiwer`'s in such ties.

use std::ops::AddAssign;

use crate::error::{Error, Result};

/// Alignment counts of one utterance or of a corpus.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorCounts {
    /// Reference tokens matched by the same hypothesis token.
    pub hits: u64,
    /// Reference tokens replaced by another token.
    pub substitutions: u64,
    /// Reference tokens missing from the hypothesis.
    pub deletions: u64,
    /// Hypothesis tokens with no reference token.
    pub insertions: u64,
    /// Reference tokens, `hits + substitutions + deletions`.
    pub reference_len: u64,
    /// Hypothesis tokens, `hits + substitutions + insertions`.
    pub hypothesis_len: u64,
    /// Utterances counted.
    pub utterances: u64,
    /// Utterances whose hypothesis equals the reference token for token.
    pub exact: u64,
}

impl ErrorCounts {
    /// The counts of one utterance of tokens.
    pub fn tokens<T: PartialEq>(reference: &[T], hypothesis: &[T]) -> Self {
        let (s, d, i) = align(reference, hypothesis);
        let n = reference.len() as u64;
        ErrorCounts {
            hits: n - s - d,
            substitutions: s,
            deletions: d,
            insertions: i,
            reference_len: n,
            hypothesis_len: hypothesis.len() as u64,
            utterances: 1,
            exact: u64::from(s + d + i == 0),
        }
    }

    /// The word-level counts of one utterance (split on whitespace).
    pub fn words(reference: &str, hypothesis: &str) -> Self {
        let r: Vec<&str> = reference.split_whitespace().collect();
        let h: Vec<&str> = hypothesis.split_whitespace().collect();
        Self::tokens(&r, &h)
    }

    /// The character-level counts of one utterance (outer whitespace trimmed, inner kept).
    pub fn chars(reference: &str, hypothesis: &str) -> Self {
        let r: Vec<char> = reference.trim().chars().collect();
        let h: Vec<char> = hypothesis.trim().chars().collect();
        Self::tokens(&r, &h)
    }

    /// The edit distance, `substitutions + deletions + insertions`.
    pub fn edits(&self) -> u64 {
        self.substitutions + self.deletions + self.insertions
    }

    /// The error rate, `edits / reference_len`; `None` when there are no reference tokens.
    pub fn rate(&self) -> Option<f64> {
        (self.reference_len > 0).then(|| self.edits() as f64 / self.reference_len as f64)
    }

    /// The error rate with `jiwer` 4's convention for an empty reference:
    /// `edits / max(reference_len, 1)`, so `0` when both sides are empty and the number of
    /// insertions when only the reference is.
    pub fn rate_or_edits(&self) -> f64 {
        self.edits() as f64 / self.reference_len.max(1) as f64
    }

    /// The share of utterances recognised exactly; `None` when no utterance was counted.
    pub fn utterance_accuracy(&self) -> Option<f64> {
        (self.utterances > 0).then(|| self.exact as f64 / self.utterances as f64)
    }
}

impl AddAssign for ErrorCounts {
    fn add_assign(&mut self, o: Self) {
        self.hits += o.hits;
        self.substitutions += o.substitutions;
        self.deletions += o.deletions;
        self.insertions += o.insertions;
        self.reference_len += o.reference_len;
        self.hypothesis_len += o.hypothesis_len;
        self.utterances += o.utterances;
        self.exact += o.exact;
    }
}

impl std::iter::Sum for ErrorCounts {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(ErrorCounts::default(), |mut a, c| {
            a += c;
            a
        })
    }
}

/// Substitutions, deletions and insertions of one minimal alignment of `h` to `r`: the
/// Levenshtein recurrence over two rows, each cell carrying the counts of the path it took.
fn align<T: PartialEq>(r: &[T], h: &[T]) -> (u64, u64, u64) {
    // prev[j]: aligning r[..i] to h[..j]; j insertions on the first row.
    let mut prev: Vec<(u64, u64, u64)> = (0..=h.len() as u64).map(|j| (0, 0, j)).collect();
    let mut cur = prev.clone();
    let cost = |c: &(u64, u64, u64)| c.0 + c.1 + c.2;
    for (i, rt) in r.iter().enumerate() {
        cur[0] = (0, i as u64 + 1, 0);
        for (j, ht) in h.iter().enumerate() {
            let (s, d, ins) = prev[j];
            let mut best = (s + u64::from(rt != ht), d, ins);
            let (s, d, ins) = prev[j + 1];
            let del = (s, d + 1, ins);
            if cost(&del) < cost(&best) {
                best = del;
            }
            let (s, d, ins) = cur[j];
            let insert = (s, d, ins + 1);
            if cost(&insert) < cost(&best) {
                best = insert;
            }
            cur[j + 1] = best;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[h.len()]
}

fn corpus<R: AsRef<str>, H: AsRef<str>>(
    references: &[R],
    hypotheses: &[H],
    count: fn(&str, &str) -> ErrorCounts,
) -> Result<ErrorCounts> {
    if references.len() != hypotheses.len() {
        return Err(Error::Shape(format!(
            "error rate: {} references for {} hypotheses",
            references.len(),
            hypotheses.len()
        )));
    }
    Ok(references
        .iter()
        .zip(hypotheses)
        .map(|(r, h)| count(r.as_ref(), h.as_ref()))
        .sum())
}

/// Word-level counts summed over a corpus of (reference, hypothesis) pairs.
///
/// # Errors
/// [`Error::Shape`] when the two lists differ in length.
pub fn word_errors<R: AsRef<str>, H: AsRef<str>>(
    references: &[R],
    hypotheses: &[H],
) -> Result<ErrorCounts> {
    corpus(references, hypotheses, ErrorCounts::words)
}

/// Character-level counts summed over a corpus of (reference, hypothesis) pairs.
///
/// # Errors
/// [`Error::Shape`] when the two lists differ in length.
pub fn char_errors<R: AsRef<str>, H: AsRef<str>>(
    references: &[R],
    hypotheses: &[H],
) -> Result<ErrorCounts> {
    corpus(references, hypotheses, ErrorCounts::chars)
}

/// Corpus word error rate, total edits over total reference words; `None` when the references
/// hold no word.
///
/// # Errors
/// [`Error::Shape`] when the two lists differ in length.
pub fn word_error_rate<R: AsRef<str>, H: AsRef<str>>(
    references: &[R],
    hypotheses: &[H],
) -> Result<Option<f64>> {
    Ok(word_errors(references, hypotheses)?.rate())
}

/// Corpus character error rate, total edits over total reference characters; `None` when the
/// references hold no character.
///
/// # Errors
/// [`Error::Shape`] when the two lists differ in length.
pub fn char_error_rate<R: AsRef<str>, H: AsRef<str>>(
    references: &[R],
    hypotheses: &[H],
) -> Result<Option<f64>> {
    Ok(char_errors(references, hypotheses)?.rate())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(h: u64, s: u64, d: u64, i: u64) -> ErrorCounts {
        ErrorCounts {
            hits: h,
            substitutions: s,
            deletions: d,
            insertions: i,
            reference_len: h + s + d,
            hypothesis_len: h + s + i,
            utterances: 1,
            exact: u64::from(s + d + i == 0),
        }
    }

    #[test]
    fn word_counts_by_hand() {
        // cat → hat, "on" inserted.
        let c = ErrorCounts::words("the cat sat", "the hat sat on");
        assert_eq!(c, counts(2, 1, 0, 1));
        assert_eq!(c.edits(), 2);
        assert_eq!(c.rate(), Some(2.0 / 3.0));
        // "quick" deleted, "fox" → "box".
        let c = ErrorCounts::words("the quick brown fox", "the brown box");
        assert_eq!(c, counts(2, 1, 1, 0));
        assert_eq!(c.rate(), Some(0.5));
        // Whitespace runs and outer whitespace do not make words.
        let c = ErrorCounts::words("  hello   world\t", "hello world");
        assert_eq!(c, counts(2, 0, 0, 0));
        assert_eq!(c.utterance_accuracy(), Some(1.0));
        // Everything wrong and more: the rate exceeds one.
        let c = ErrorCounts::words("a", "b c d");
        assert_eq!(c.edits(), 3);
        assert_eq!(c.rate(), Some(3.0));
        // A swap costs two substitutions (preferred over a deletion and an insertion).
        assert_eq!(ErrorCounts::words("a b", "b a"), counts(0, 2, 0, 0));
    }

    #[test]
    fn char_counts_by_hand() {
        // kitten → sitting: k→s, e→i, +g (the textbook distance 3 over 6 characters).
        let c = ErrorCounts::chars("kitten", "sitting");
        assert_eq!(c, counts(4, 2, 0, 1));
        assert_eq!(c.rate(), Some(0.5));
        // Spaces inside count; outer whitespace does not.
        let c = ErrorCounts::chars(" ab cd ", "abcd");
        assert_eq!(c, counts(4, 0, 1, 0));
        assert_eq!(c.rate(), Some(0.2));
        // Unicode scalar values, not bytes.
        let c = ErrorCounts::chars("naïve café", "naive cafe");
        assert_eq!(c, counts(8, 2, 0, 0));
        assert_eq!(
            ErrorCounts::chars("我爱你", "我恨你").rate(),
            Some(1.0 / 3.0)
        );
        assert_eq!(ErrorCounts::chars("日本", "日本語"), counts(2, 0, 0, 1));
    }

    #[test]
    fn empty_references_and_hypotheses() {
        let c = ErrorCounts::words("", "");
        assert_eq!(c, counts(0, 0, 0, 0));
        assert_eq!(c.rate(), None);
        assert_eq!(c.rate_or_edits(), 0.0);
        assert_eq!(c.utterance_accuracy(), Some(1.0));
        let c = ErrorCounts::words("   ", "peaceful silence");
        assert_eq!(c, counts(0, 0, 0, 2));
        assert_eq!(c.rate(), None);
        assert_eq!(c.rate_or_edits(), 2.0);
        let c = ErrorCounts::chars("abc", "");
        assert_eq!(c, counts(0, 0, 3, 0));
        assert_eq!(c.rate(), Some(1.0));
        assert_eq!(ErrorCounts::default().utterance_accuracy(), None);
        assert_eq!(ErrorCounts::default().rate(), None);
        assert_eq!(ErrorCounts::tokens::<u32>(&[], &[]).exact, 1);
        assert_eq!(word_error_rate::<&str, &str>(&[], &[]).unwrap(), None);
    }

    #[test]
    fn corpus_rate_is_total_edits_over_total_reference() {
        let refs = ["the cat sat", "hello world", "", "a b c d"];
        let hyps = ["the hat sat on", "hello world", "uh", "a b c d"];
        let c = word_errors(&refs, &hyps).unwrap();
        // 2 + 0 + 1 + 0 edits over 3 + 2 + 0 + 4 words; the mean of per-utterance rates would
        // be something else (and undefined for the empty reference).
        assert_eq!(c.edits(), 3);
        assert_eq!(c.reference_len, 9);
        assert_eq!(c.hypothesis_len, 11);
        assert_eq!(c.insertions, 2);
        assert_eq!(c.utterances, 4);
        assert_eq!(c.exact, 2);
        assert_eq!(c.rate(), Some(3.0 / 9.0));
        assert_eq!(c.utterance_accuracy(), Some(0.5));
        assert_eq!(word_error_rate(&refs, &hyps).unwrap(), Some(3.0 / 9.0));
        // Accumulating utterance by utterance gives the same.
        let mut acc = ErrorCounts::default();
        for (r, h) in refs.iter().zip(&hyps) {
            acc += ErrorCounts::words(r, h);
        }
        assert_eq!(acc, c);
        // Characters: 4 + 0 + 2 + 0 edits (c → h, " on" inserted; "uh") over 11 + 11 + 0 + 7 characters.
        let c = char_errors(&refs, &hyps).unwrap();
        assert_eq!((c.edits(), c.reference_len), (6, 29));
        assert_eq!(char_error_rate(&refs, &hyps).unwrap(), Some(6.0 / 29.0));
        // Owned strings work too; lists of different lengths are refused.
        let owned: Vec<String> = refs.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            word_errors(&owned, &hyps).unwrap(),
            word_errors(&refs, &hyps).unwrap()
        );
        assert!(matches!(
            word_errors(&refs, &hyps[..3]),
            Err(Error::Shape(_))
        ));
    }
}

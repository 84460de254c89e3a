//! Corpus BLEU and chrF computed as sacreBLEU computes them by default, so that a translation
//! score here is the number a paper quotes.
//!
//! - [`corpus_bleu`]: BLEU with the `13a` tokeniser of WMT's `mteval-v13a` ([`tokenize_13a`]),
//!   n-grams up to 4, the brevity penalty against the closest reference length (the shorter on a
//!   tie), and the `exp` smoothing of zero counts; cased, or lowercased with [`Case::Lower`]
//!   (sacreBLEU's signature `nrefs:N|case:mixed|eff:no|tok:13a|smooth:exp`).
//! - [`corpus_chrf`]: chrF2 over character 1- to 6-grams without whitespace, the best
//!   reference per sentence, statistics summed over the corpus
//!   (`nrefs:N|case:mixed|eff:yes|nc:6|nw:0|space:no`).
//!
//! Both are pinned to sacreBLEU 2.6.0's own figures on fixture files
//! (`tests/fixtures/bleu/`, made with the `sacrebleu` package outside the project).

use std::collections::HashMap;

use crate::error::{Error, Result};

/// Whether scores compare text as it is or lowercased.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Case {
    /// As written (sacreBLEU's default).
    #[default]
    Mixed,
    /// Hypotheses and references lowercased first (`sacrebleu -lc`).
    Lower,
}

/// Highest n-gram order of BLEU.
pub const BLEU_ORDER: usize = 4;

/// A corpus BLEU score and the statistics it comes from.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bleu {
    /// BLEU in [0, 100].
    pub score: f64,
    /// Matched n-grams of each order (clipped by the references' counts).
    pub counts: [u64; BLEU_ORDER],
    /// Hypothesis n-grams of each order.
    pub totals: [u64; BLEU_ORDER],
    /// Hypothesis tokens.
    pub sys_len: u64,
    /// Reference tokens (the closest reference's length, per sentence).
    pub ref_len: u64,
    /// Brevity penalty.
    pub bp: f64,
}

/// Tokenises `line` as `mteval-v13a` (sacreBLEU's `13a`): the four XML entities `&quot;`,
/// `&amp;`, `&lt;`, `&gt;` unescaped, punctuation and symbols split off, periods and commas
/// split off unless between digits, a dash split off after a digit; tokens joined by one space.
pub fn tokenize_13a(line: &str) -> String {
    let mut s = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if s.contains('&') {
        s = s
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let chars: Vec<char> = format!(" {s} ").chars().collect();
    let mut out: Vec<char> = Vec::with_capacity(chars.len() * 2);
    for &c in &chars {
        if splits_off(c) {
            out.extend([' ', c, ' ']);
        } else {
            out.push(c);
        }
    }
    let digit = |c: char| c.is_ascii_digit();
    let point = |c: char| c == '.' || c == ',';
    // Each rule rewrites non-overlapping pairs from the left, as a regular-expression
    // substitution does.
    let out = pairs(
        &out,
        |a, b| !digit(a) && point(b),
        |a, b| vec![a, ' ', b, ' '],
    );
    let out = pairs(
        &out,
        |a, b| point(a) && !digit(b),
        |a, b| vec![' ', a, ' ', b],
    );
    let out = pairs(
        &out,
        |a, b| digit(a) && b == '-',
        |a, b| vec![a, ' ', b, ' '],
    );
    let text: String = out.into_iter().collect();
    text.split(is_space)
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The characters `13a` always splits off: ASCII punctuation and symbols but for `'`, `,`,
/// `-` and `.` (handled by the digit rules).
fn splits_off(c: char) -> bool {
    matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/')
}

/// Whitespace as Python's `str.split()` sees it.
fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `chars` with each non-overlapping pair `(a, b)` where `hit(a, b)`, scanned from the left,
/// replaced by `with(a, b)`.
fn pairs(
    chars: &[char],
    hit: impl Fn(char, char) -> bool,
    with: impl Fn(char, char) -> Vec<char>,
) -> Vec<char> {
    let mut out = Vec::with_capacity(chars.len() * 2);
    let mut i = 0;
    while i < chars.len() {
        match chars.get(i + 1) {
            Some(&b) if hit(chars[i], b) => {
                out.extend(with(chars[i], b));
                i += 2;
            }
            _ => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

/// Checks that every reference set has one line per hypothesis.
fn check_refs(hyps: usize, refs: &[Vec<String>]) -> Result<()> {
    if refs.is_empty() {
        return Err(Error::Config(
            "scoring needs at least one reference set".into(),
        ));
    }
    for (k, r) in refs.iter().enumerate() {
        if r.len() != hyps {
            return Err(Error::Config(format!(
                "reference set {} has {} lines but there are {hyps} hypotheses",
                k + 1,
                r.len()
            )));
        }
    }
    Ok(())
}

fn cased(s: &str, case: Case) -> String {
    match case {
        Case::Mixed => s.to_string(),
        Case::Lower => s.to_lowercase(),
    }
}

/// Corpus BLEU of `hyps` against the reference sets `refs` (`refs[k][i]`: the k-th reference of
/// sentence i), as sacreBLEU's default.
///
/// # Errors
/// [`Error::Config`] when there is no reference set or one has another number of lines.
pub fn corpus_bleu(hyps: &[String], refs: &[Vec<String>], case: Case) -> Result<Bleu> {
    check_refs(hyps.len(), refs)?;
    let mut counts = [0u64; BLEU_ORDER];
    let mut totals = [0u64; BLEU_ORDER];
    let (mut sys_len, mut ref_len) = (0u64, 0u64);
    for (i, hyp) in hyps.iter().enumerate() {
        let h = tokenize_13a(cased(hyp, case).trim_end());
        let h: Vec<&str> = h.split(' ').filter(|t| !t.is_empty()).collect();
        let rs: Vec<String> = refs
            .iter()
            .map(|r| tokenize_13a(cased(&r[i], case).trim_end()))
            .collect();
        let mut max_ref: HashMap<Vec<&str>, u64> = HashMap::new();
        let mut closest: Option<usize> = None;
        for r in &rs {
            let r: Vec<&str> = r.split(' ').filter(|t| !t.is_empty()).collect();
            let better = match closest {
                None => true,
                Some(c) => {
                    let (d, dc) = (r.len().abs_diff(h.len()), c.abs_diff(h.len()));
                    d < dc || (d == dc && r.len() < c)
                }
            };
            if better {
                closest = Some(r.len());
            }
            for (g, n) in count_ngrams(&r) {
                let m = max_ref.entry(g).or_insert(0);
                *m = (*m).max(n);
            }
        }
        for (g, n) in count_ngrams(&h) {
            let k = g.len() - 1;
            totals[k] += n;
            counts[k] += n.min(max_ref.get(&g).copied().unwrap_or(0));
        }
        sys_len += h.len() as u64;
        ref_len += closest.unwrap_or(0) as u64;
    }
    Ok(bleu_from_stats(counts, totals, sys_len, ref_len))
}

/// Every n-gram of orders 1..=4 of `tokens` with its count.
fn count_ngrams<'a>(tokens: &[&'a str]) -> HashMap<Vec<&'a str>, u64> {
    let mut m = HashMap::new();
    for n in 1..=BLEU_ORDER {
        for g in tokens.windows(n) {
            *m.entry(g.to_vec()).or_insert(0) += 1;
        }
    }
    m
}

/// BLEU from its sufficient statistics, with sacreBLEU's `exp` smoothing: the k-th order with
/// no match counts as `1 / (2^k · total)`.
pub fn bleu_from_stats(
    counts: [u64; BLEU_ORDER],
    totals: [u64; BLEU_ORDER],
    sys_len: u64,
    ref_len: u64,
) -> Bleu {
    let bp = match sys_len < ref_len {
        true if sys_len > 0 => (1.0 - ref_len as f64 / sys_len as f64).exp(),
        true => 0.0,
        false => 1.0,
    };
    let mut precisions = [0.0f64; BLEU_ORDER];
    let mut smooth = 1.0;
    for n in 0..BLEU_ORDER {
        if totals[n] == 0 {
            break;
        }
        precisions[n] = if counts[n] == 0 {
            smooth *= 2.0;
            100.0 / (smooth * totals[n] as f64)
        } else {
            100.0 * counts[n] as f64 / totals[n] as f64
        };
    }
    let score = match counts[0] {
        0 => 0.0,
        _ => {
            // sacreBLEU's log of 0 is −9999999999: an order with no n-grams zeroes the score.
            let logs: f64 = precisions
                .iter()
                .map(|&p| if p > 0.0 { p.ln() } else { -9_999_999_999.0 })
                .sum();
            bp * (logs / BLEU_ORDER as f64).exp()
        }
    };
    Bleu {
        score,
        counts,
        totals,
        sys_len,
        ref_len,
        bp,
    }
}

/// Highest character n-gram order of chrF.
pub const CHRF_ORDER: usize = 6;
/// chrF's β: recall weighs β² times precision.
const CHRF_BETA: f64 = 2.0;

/// `[hyp, ref, match]` counts of each character n-gram order.
type ChrfStats = [[u64; 3]; CHRF_ORDER];

/// Corpus chrF2 (character 6-grams, no word n-grams, whitespace removed) of `hyps` against the
/// reference sets `refs`, as sacreBLEU's default `CHRF()`: per sentence the reference with the
/// best chrF, statistics summed over the corpus.
///
/// # Errors
/// [`Error::Config`] when there is no reference set or one has another number of lines.
pub fn corpus_chrf(hyps: &[String], refs: &[Vec<String>]) -> Result<f64> {
    check_refs(hyps.len(), refs)?;
    let mut total: ChrfStats = [[0; 3]; CHRF_ORDER];
    for (i, hyp) in hyps.iter().enumerate() {
        let h = char_ngrams(hyp);
        let mut best: Option<(f64, ChrfStats)> = None;
        for r in refs {
            let r = char_ngrams(&r[i]);
            let mut st: ChrfStats = [[0; 3]; CHRF_ORDER];
            for (n, (hn, rn)) in h.iter().zip(&r).enumerate() {
                let matched = hn
                    .iter()
                    .map(|(g, &c)| c.min(rn.get(g).copied().unwrap_or(0)))
                    .sum();
                st[n] = [hn.values().sum(), rn.values().sum(), matched];
            }
            let f = chrf_from_stats(&st);
            if best.as_ref().is_none_or(|(b, _)| f > *b) {
                best = Some((f, st));
            }
        }
        if let Some((_, st)) = best {
            for (t, s) in total.iter_mut().zip(st) {
                for j in 0..3 {
                    t[j] += s[j];
                }
            }
        }
    }
    Ok(chrf_from_stats(&total))
}

/// Counts of the character n-grams (orders 1..=6) of `s` with its whitespace removed.
fn char_ngrams(s: &str) -> Vec<HashMap<String, u64>> {
    let chars: Vec<char> = s.chars().filter(|&c| !is_space(c)).collect();
    (1..=CHRF_ORDER)
        .map(|n| {
            let mut m = HashMap::new();
            for g in chars.windows(n) {
                *m.entry(g.iter().collect::<String>()).or_insert(0) += 1;
            }
            m
        })
        .collect()
}

/// chrF from its statistics: the F-score (β = 2) of the precision and recall averaged over the
/// orders that have n-grams on both sides, ×100.
fn chrf_from_stats(st: &ChrfStats) -> f64 {
    let (mut prec, mut rec, mut orders) = (0.0, 0.0, 0);
    for &[h, r, m] in st {
        if h > 0 && r > 0 {
            prec += m as f64 / h as f64;
            rec += m as f64 / r as f64;
            orders += 1;
        }
    }
    if orders == 0 {
        return 0.0;
    }
    let (p, r) = (prec / orders as f64, rec / orders as f64);
    let f = CHRF_BETA * CHRF_BETA;
    match p + r > 0.0 {
        true => 100.0 * (1.0 + f) * p * r / (f * p + r),
        false => 0.0,
    }
}

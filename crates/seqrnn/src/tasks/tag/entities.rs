//! Entity-level precision, recall and F1 of predicted tag sequences, counted as the CoNLL
//! `conlleval` script counts them (and `seqeval` in its default mode): a predicted chunk is
//! correct when a gold chunk has the same type, first and last token ([`crate::tasks::tag::tags`]
//! reads the chunks of any scheme); figures overall (micro-averaged over chunks) and per type;
//! token accuracy over every token, `O` included.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tasks::tag::tags::{chunks, Chunk};

/// Precision, recall, F1 and gold count of one set of chunks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Prf {
    /// Correct / predicted (0 when nothing was predicted).
    pub precision: f64,
    /// Correct / gold (0 when there is no gold chunk).
    pub recall: f64,
    /// Harmonic mean of the two (0 when both are 0).
    pub f1: f64,
    /// Gold chunks.
    pub support: usize,
    /// Predicted chunks.
    pub predicted: usize,
    /// Correct chunks.
    pub correct: usize,
}

impl Prf {
    fn new(correct: usize, predicted: usize, support: usize) -> Self {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let (precision, recall) = (ratio(correct, predicted), ratio(correct, support));
        let f1 = match precision + recall {
            s if s > 0.0 => 2.0 * precision * recall / s,
            _ => 0.0,
        };
        Prf {
            precision,
            recall,
            f1,
            support,
            predicted,
            correct,
        }
    }
}

/// Entity and token scores of a set of sentences.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EntityScores {
    /// Over every chunk.
    pub overall: Prf,
    /// Per chunk type, in name order.
    pub per_type: BTreeMap<String, Prf>,
    /// Correct tags / tokens.
    pub accuracy: f64,
    /// Tokens scored.
    pub tokens: usize,
}

/// Scores `pred` against `gold` (one tag sequence per sentence, the same lengths).
///
/// # Errors
/// [`Error::Shape`] when the sentence counts or lengths differ.
pub fn score<S: AsRef<str>, T: AsRef<str>>(
    gold: &[Vec<S>],
    pred: &[Vec<T>],
) -> Result<EntityScores> {
    if gold.len() != pred.len() {
        return Err(Error::Shape(format!(
            "{} gold sentences but {} predicted",
            gold.len(),
            pred.len()
        )));
    }
    let (mut hits, mut tokens) = (0usize, 0usize);
    let mut counts: BTreeMap<String, [usize; 3]> = BTreeMap::new();
    for (i, (g, p)) in gold.iter().zip(pred).enumerate() {
        if g.len() != p.len() {
            return Err(Error::Shape(format!(
                "sentence {}: {} gold tags but {} predicted",
                i + 1,
                g.len(),
                p.len()
            )));
        }
        tokens += g.len();
        hits += g
            .iter()
            .zip(p)
            .filter(|(a, b)| a.as_ref() == b.as_ref())
            .count();
        let gc: BTreeSet<Chunk> = chunks(g).into_iter().collect();
        let pc: BTreeSet<Chunk> = chunks(p).into_iter().collect();
        for c in &gc {
            counts.entry(c.kind.clone()).or_default()[2] += 1;
        }
        for c in &pc {
            let e = counts.entry(c.kind.clone()).or_default();
            e[1] += 1;
            e[0] += usize::from(gc.contains(c));
        }
    }
    let per_type: BTreeMap<String, Prf> = counts
        .iter()
        .map(|(k, &[c, p, s])| (k.clone(), Prf::new(c, p, s)))
        .collect();
    let sum = |i: usize| counts.values().map(|v| v[i]).sum::<usize>();
    Ok(EntityScores {
        overall: Prf::new(sum(0), sum(1), sum(2)),
        per_type,
        accuracy: if tokens == 0 {
            0.0
        } else {
            hits as f64 / tokens as f64
        },
        tokens,
    })
}

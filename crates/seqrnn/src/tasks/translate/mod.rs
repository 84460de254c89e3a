//! Translation: the training task for the shared loop ([`crate::train::fit()`]), batched beam
//! search, BLEU evaluation and the run configuration.
//!
//! Training is teacher-forced: each step's loss is the mean cross-entropy over the target
//! tokens of its batch (`</s>` included), batches are sentences of similar source length, and
//! validation scores the per-token perplexity. Decoding is beam search with the GNMT length
//! penalty `((5 + |y|) / 6)^α` (Wu et al. 2016); a beam of 1 is greedy decoding.

pub mod beam;
pub mod data;
pub mod export;
pub mod model;
mod trained;
#[cfg(test)]
use beam::row_top;
pub use beam::{DecodeConfig, Decoder, Hypothesis};
pub use trained::Trained;
mod config;
pub use config::{load_vocabs, TranslateRunConfig, TranslateRunData, TranslateTrainConfig};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::batch::length_buckets;
use crate::data::subword::{SubwordConfig, SubwordVocab, BOS, EOS, PAD};
use crate::dist::Group;
use crate::dropout::SeqRng;
use crate::error::{Error, Result};
use crate::model::attention::AttnCache;
use crate::model::embedding::TokenBatch;
use crate::model::softmax;
use crate::report::bleu::{corpus_bleu, corpus_chrf, Bleu, Case};
use crate::rnn::RnnState;
use crate::run::RunDir;
use crate::tasks::translate::data::ParallelText;
use crate::tasks::translate::model::{
    EncodedSource, PairBatch, Seq2Seq, Seq2SeqCache, Seq2SeqConfig, Seq2SeqWorkspace, StepBuffers,
};
use crate::train::checkpoint::FitEpoch;
use crate::train::fit::FitConfig;
use crate::train::metrics::write_perplexity_metrics;
use crate::train::task::{
    validation_share, About, BatchLoss, BucketSteps, Fingerprint, Identity, LossAverage, Scaled,
    Step, Task, Validation, Weights,
};

/// `format` metadata of a translation model's weights file.
pub const TRANSLATE_FORMAT: &str = "seqrnn-translate";

/// Sentence pairs as piece ids (no special tokens).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncodedPairs {
    /// Source pieces of each pair.
    pub src: Vec<Vec<u32>>,
    /// Target pieces of each pair.
    pub tgt: Vec<Vec<u32>>,
}

impl EncodedPairs {
    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.src.len()
    }

    /// Whether there is no pair.
    pub fn is_empty(&self) -> bool {
        self.src.is_empty()
    }

    /// Target tokens the loss counts (`</s>` included).
    pub fn target_tokens(&self) -> usize {
        self.tgt.iter().map(|t| t.len() + 1).sum()
    }
}

/// Encodes a split with the two vocabularies. `max_src_len` (when given) refuses longer sources
/// with the line number; `file` names the source file in errors.
pub fn encode_pairs(
    text: &ParallelText,
    src: &SubwordVocab,
    tgt: &SubwordVocab,
    model: Option<&Seq2Seq>,
    file: &Path,
) -> Result<EncodedPairs> {
    let mut out = EncodedPairs::default();
    for (i, (s, t)) in text.src.iter().zip(&text.tgt).enumerate() {
        let ids = src.encode(s)?;
        if ids.is_empty() {
            return Err(Error::Format {
                path: file.to_path_buf(),
                message: format!("line {} has no text after normalisation", i + 1),
            });
        }
        let limit = model.map_or(usize::MAX, |m| m.config().max_src_len);
        if ids.len() > limit {
            return Err(Error::Format {
                path: file.to_path_buf(),
                message: format!(
                    "line {} has {} pieces, more than the model's limit of {limit} (--max-src-len at training)",
                    i + 1,
                    ids.len()
                ),
            });
        }
        out.src.push(ids);
        out.tgt.push(tgt.encode(t)?);
    }
    Ok(out)
}

/// Figures of a model on a test set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TranslateMetrics {
    /// Sentence pairs scored.
    pub sentences: usize,
    /// Mean cross-entropy per target piece (teacher-forced, nats).
    pub loss: f64,
    /// `exp(loss)`.
    pub perplexity: f64,
    /// Corpus BLEU as sacreBLEU's default (13a, exp smoothing, cased).
    pub bleu: f64,
    /// The same, lowercased.
    pub bleu_lc: f64,
    /// chrF (sacreBLEU's default, character 6-grams, β = 2).
    pub chrf: f64,
    /// BLEU details (n-gram precisions, brevity penalty).
    pub bleu_detail: Bleu,
    /// The translations, in order.
    #[serde(skip)]
    pub hypotheses: Vec<String>,
}

/// Per-token cross-entropy of `data` (teacher-forced, no dropout): `(summed loss, tokens)`.
pub fn teacher_forced_loss(
    model: &Seq2Seq,
    params: &[f32],
    data: &EncodedPairs,
) -> Result<(f64, usize)> {
    let lens: Vec<usize> = data.src.iter().map(Vec::len).collect();
    let order: Vec<usize> = (0..data.len()).collect();
    let (mut cache, mut ws, mut batch) = (
        Seq2SeqCache::default(),
        Seq2SeqWorkspace::default(),
        PairBatch::default(),
    );
    let (mut sum, mut n) = (0.0, 0);
    for idx in length_buckets(&lens, &order, 64) {
        batch.fill(
            idx.iter()
                .map(|&i| (data.src[i].as_slice(), data.tgt[i].as_slice())),
        );
        let (l, c) = model.eval_loss(params, &batch, &mut cache, &mut ws)?;
        sum += l;
        n += c;
    }
    Ok((sum, n))
}

/// Translates `data`'s sources, detokenises them and scores them against `refs` (the raw
/// target lines).
pub fn evaluate(
    model: &Seq2Seq,
    params: &[f32],
    data: &EncodedPairs,
    refs: &[String],
    tgt_vocab: &SubwordVocab,
    decode: DecodeConfig,
) -> Result<TranslateMetrics> {
    let (sum, n) = teacher_forced_loss(model, params, data)?;
    let mut dec = Decoder::new(model, params, decode)?;
    let hyps = dec.translate(&data.src)?;
    let texts = hyps
        .iter()
        .map(|h| tgt_vocab.decode(&h.tokens))
        .collect::<Result<Vec<_>>>()?;
    let refs = vec![refs.to_vec()];
    let bleu = corpus_bleu(&texts, &refs, Case::Mixed)?;
    let bleu_lc = corpus_bleu(&texts, &refs, Case::Lower)?;
    let chrf = corpus_chrf(&texts, &refs)?;
    let loss = sum / n.max(1) as f64;
    Ok(TranslateMetrics {
        sentences: data.len(),
        loss,
        perplexity: loss.exp(),
        bleu: bleu.score,
        bleu_lc: bleu_lc.score,
        chrf,
        bleu_detail: bleu,
        hypotheses: texts,
    })
}

/// The translation task for the shared loop: each epoch shuffles the pairs, sorts them by source
/// length (ties in shuffled order), cuts batches and shuffles the batches; validation by
/// per-piece perplexity.
pub struct TranslateTask<'a> {
    model: &'a Seq2Seq,
    train: &'a EncodedPairs,
    valid: &'a EncodedPairs,
    steps: BucketSteps<Seq2Seq>,
}

impl<'a> TranslateTask<'a> {
    /// A task over `train` and `valid`, `batch` sentence pairs a step.
    ///
    /// # Errors
    /// [`Error::Config`] when `batch` is 0 or a split is empty.
    pub fn new(
        model: &'a Seq2Seq,
        train: &'a EncodedPairs,
        valid: &'a EncodedPairs,
        batch: usize,
    ) -> Result<Self> {
        let steps = BucketSteps::new(batch)?;
        if train.is_empty() || valid.is_empty() {
            return Err(Error::Config(
                "training and validation splits need at least one sentence pair".into(),
            ));
        }
        Ok(TranslateTask {
            model,
            train,
            valid,
            steps,
        })
    }
}

impl Task for TranslateTask<'_> {
    fn about(&self) -> About<'_> {
        let layout = self.model.param_layout();
        let weights = Weights::new(layout, TRANSLATE_FORMAT, "a translation model");
        About::new(weights, "perplexity", LossAverage::PerExample)
    }

    fn batch_size(&self) -> usize {
        self.steps.size()
    }

    /// The model and a fingerprint of the encoded training pairs.
    fn identity(&self) -> Identity {
        let mut h = Fingerprint::default();
        for (s, t) in self.train.src.iter().zip(&self.train.tgt) {
            h.ids(s).end().ids(t).end();
        }
        let train = "the training pairs (or the vocabularies that encode them) are not those the \
                     run was trained on";
        h.identity(self.model.config(), train)
    }

    fn start_epoch(&mut self, _epoch: usize, rng: &mut SeqRng) -> usize {
        self.steps.shuffle_seqs(&self.train.src, rng)
    }

    fn train_step(&mut self, step: Step<'_>) -> Result<BatchLoss> {
        let train = self.train;
        self.steps.step(self.model, step, |rows, batch, _| {
            batch.fill(
                (rows.mine.iter()).map(|&i| (train.src[i].as_slice(), train.tgt[i].as_slice())),
            );
            // The mean is over the whole batch's target tokens, on every rank alike.
            let tokens: usize = rows.all.iter().map(|&i| train.tgt[i].len() + 1).sum();
            Scaled {
                scale: 1.0 / tokens as f32,
                examples: batch.tokens(),
            }
        })
    }

    /// `metrics.csv` and `curve.svg` as a language model's: per-piece perplexities.
    fn write_metrics(&self, run: &RunDir, rows: &[FitEpoch]) -> Result<()> {
        write_perplexity_metrics(run, "translation: perplexity per target piece", rows)
    }

    /// Per-piece perplexity of the validation pairs; each rank scores a share.
    fn validate(&mut self, params: &[f32], group: &Group) -> Result<Validation> {
        let n = self.valid.len();
        let (sum, count) = if let Some(part) = validation_share(group, n) {
            let mine = EncodedPairs {
                src: self.valid.src[part.clone()].to_vec(),
                tgt: self.valid.tgt[part].to_vec(),
            };
            let (s, c) = teacher_forced_loss(self.model, params, &mine)?;
            let mut sums = [s, c as f64];
            group.sum_f64(&mut sums);
            (sums[0], sums[1] as usize)
        } else {
            teacher_forced_loss(self.model, params, self.valid)?
        };
        let loss = sum / count.max(1) as f64;
        Ok(Validation {
            loss,
            score: -loss.exp(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::attention::Score;
    use crate::model::embedding::OutputWeights;
    use crate::rnn::CellKind;

    fn model() -> (Seq2Seq, Vec<f32>) {
        let m = Seq2Seq::new(Seq2SeqConfig {
            src_vocab: 9,
            tgt_vocab: 7,
            embed: 4,
            cell: CellKind::Lstm,
            enc_hidden: 3,
            enc_layers: 1,
            dec_hidden: 4,
            dec_layers: 2,
            score: Score::General,
            attn_hidden: 0,
            dropout: 0.0,
            output: OutputWeights::Separate,
            max_src_len: 20,
        })
        .unwrap();
        let p = m.init_params(3).unwrap();
        (m, p)
    }

    /// Greedy decoding written out plainly, one sentence at a time.
    fn greedy(m: &Seq2Seq, p: &[f32], src: &[u32], max_len: usize) -> Vec<u32> {
        let mut batch = TokenBatch::default();
        batch.fill(std::iter::once(src));
        let mut ws = Seq2SeqWorkspace::default();
        let mut enc = EncodedSource::default();
        m.encode(p, &batch, &mut enc, &mut ws).unwrap();
        let mut state = m.initial_state(&enc.h0);
        let (mut logits, mut w, mut sb) =
            (Vec::new(), AttnCache::default(), StepBuffers::default());
        let mut prev = BOS;
        let mut out = Vec::new();
        let packs = m.pack_decoder(p).unwrap();
        for _ in 0..max_len {
            m.step(
                &packs,
                &enc,
                &[prev],
                &mut state,
                &mut logits,
                &mut w,
                &mut sb,
                &mut ws,
            )
            .unwrap();
            logits[PAD as usize] = f32::NEG_INFINITY;
            logits[BOS as usize] = f32::NEG_INFINITY;
            let best = crate::model::softmax::argmax(&logits) as u32;
            if best == EOS {
                return out;
            }
            out.push(best);
            prev = best;
        }
        out
    }

    #[test]
    fn beam_of_one_is_greedy_and_batching_changes_nothing() {
        let (m, p) = model();
        let sources: Vec<Vec<u32>> =
            vec![vec![5, 6, 7], vec![8], vec![4, 4, 5, 6, 7, 8], vec![6, 5]];
        let cfg = DecodeConfig {
            beam: 1,
            alpha: 0.0,
            max_len_a: 1.0,
            max_len_b: 3,
            batch: 3,
        };
        let mut d = Decoder::new(&m, &p, cfg).unwrap();
        let hyps = d.translate(&sources).unwrap();
        for (s, h) in sources.iter().zip(&hyps) {
            assert_eq!(h.tokens, greedy(&m, &p, s, cfg.max_len(s.len())), "{s:?}");
        }
        // Beam 4, one sentence at a time or four together: the same translations and scores.
        let wide = DecodeConfig {
            beam: 4,
            alpha: 0.6,
            ..cfg
        };
        let together = Decoder::new(&m, &p, wide)
            .unwrap()
            .translate(&sources)
            .unwrap();
        for (s, h) in sources.iter().zip(&together) {
            let alone = Decoder::new(&m, &p, DecodeConfig { batch: 1, ..wide })
                .unwrap()
                .translate(std::slice::from_ref(s))
                .unwrap();
            // To the bit: every product of a step is batch-invariant.
            assert_eq!(&alone[0], h, "{s:?}");
        }
    }

    /// Wider models, every attention score and both cells: a sentence's translation and scores
    /// are the same, to the bit, alone and in batches of any company.
    #[test]
    fn translations_and_scores_are_the_same_alone_and_in_any_batch() {
        let cases = [
            (CellKind::Lstm, Score::General, 0, 96),
            (
                CellKind::Gru(crate::rnn::GruVariant::ResetAfter),
                Score::Additive,
                40,
                96,
            ),
            (CellKind::Lstm, Score::Dot, 0, 96),
        ];
        for (cell, score, attn_hidden, dec_hidden) in cases {
            let m = Seq2Seq::new(Seq2SeqConfig {
                src_vocab: 40,
                tgt_vocab: 700,
                embed: 16,
                cell,
                enc_hidden: 48,
                enc_layers: 2,
                dec_hidden,
                dec_layers: 1,
                score,
                attn_hidden,
                dropout: 0.0,
                output: OutputWeights::Separate,
                max_src_len: 40,
            })
            .unwrap();
            let p = m.init_params(5).unwrap();
            let sources: Vec<Vec<u32>> = (0..7u32)
                .map(|i| {
                    (0..1 + (i * 5) % 13)
                        .map(|j| 4 + (i * 7 + j * 3) % 36)
                        .collect()
                })
                .collect();
            let cfg = DecodeConfig {
                beam: 3,
                alpha: 0.6,
                max_len_a: 1.0,
                max_len_b: 4,
                batch: 7,
            };
            let together = Decoder::new(&m, &p, cfg)
                .unwrap()
                .translate(&sources)
                .unwrap();
            for (s, h) in sources.iter().zip(&together) {
                let alone = Decoder::new(&m, &p, DecodeConfig { batch: 1, ..cfg })
                    .unwrap()
                    .translate(std::slice::from_ref(s))
                    .unwrap();
                assert_eq!(&alone[0], h, "{score:?}: {s:?}");
            }
        }
    }

    /// Beam search against exhaustive search over every output up to a length, on a
    /// 5-piece vocabulary: with a beam as wide as the vocabulary's branching it finds the best
    /// complete hypothesis of length ≤ 2 whenever that is shorter than the length limit.
    #[test]
    fn wide_beam_finds_the_exhaustive_best() {
        let (m, p) = model();
        let src = vec![5u32, 6, 7];
        // Every sequence of 0–2 real pieces (ids 1, 4, 5, 6; not <pad>, <s>, </s>) then </s>.
        let pieces = [1u32, 4, 5, 6];
        let mut all: Vec<Vec<u32>> = vec![vec![]];
        for &a in &pieces {
            all.push(vec![a]);
            for &b in &pieces {
                all.push(vec![a, b]);
            }
        }
        // Score each with teacher forcing: log p(y </s> | x).
        let score = |y: &[u32]| -> f32 {
            let mut batch = PairBatch::default();
            batch.fill(std::iter::once((src.as_slice(), y)));
            let (mut c, mut ws) = (Seq2SeqCache::default(), Seq2SeqWorkspace::default());
            -(m.eval_loss(&p, &batch, &mut c, &mut ws).unwrap().0 as f32)
        };
        let cfg = DecodeConfig {
            beam: 30,
            alpha: 0.0,
            max_len_a: 0.0,
            max_len_b: 3,
            batch: 1,
        };
        let h = &Decoder::new(&m, &p, cfg)
            .unwrap()
            .translate(std::slice::from_ref(&src))
            .unwrap()[0];
        // The beam's answer scores what teacher forcing says it does.
        if h.tokens.len() < 3 {
            assert!((score(&h.tokens) - h.log_prob).abs() < 1e-3);
        }
        // Nothing of length ≤ 2 that ends in </s> beats it.
        let best = all
            .iter()
            .map(|y| score(y))
            .fold(f32::NEG_INFINITY, f32::max);
        assert!(
            h.log_prob >= best - 1e-3,
            "beam {} vs exhaustive {best}",
            h.log_prob
        );
    }

    #[test]
    fn row_top_is_a_partial_sort_of_the_log_probabilities() {
        let row = [0.5f32, 2.0, 3.0, -1.0, 2.0, 7.0, 0.25];
        let lse = row.iter().map(|&v| (v as f64).exp()).sum::<f64>().ln() as f32;
        let mut top = [(0.0, 0); 3];
        row_top(&row, &mut top);
        // Ids 0 (<pad>) and 2 (<s>) are never chosen; ties keep the smaller id first.
        let ids: Vec<u32> = top.iter().map(|t| t.1).collect();
        assert_eq!(ids, vec![5, 1, 4]);
        for (lp, w) in top {
            assert!((lp - (row[w as usize] - lse)).abs() < 1e-5);
        }
        let mut wide = [(0.0, 0); 9];
        row_top(&row, &mut wide);
        assert_eq!((wide[3].1, wide[4].1), (6, 3));
        assert!(wide[5..]
            .iter()
            .all(|t| t.1 == u32::MAX && t.0 == f32::NEG_INFINITY));
    }

    #[test]
    fn length_penalty_and_limits() {
        let c = DecodeConfig::default();
        assert_eq!(c.max_len(10), 25);
        assert!((c.penalty(1) - 1.0).abs() < 1e-6);
        assert!((c.penalty(7) - 2f32.powf(0.6)).abs() < 1e-6);
        assert!(DecodeConfig { beam: 0, ..c }.validate().is_err());
        assert!(DecodeConfig { alpha: -1.0, ..c }.validate().is_err());
        let (m, p) = model();
        let mut d = Decoder::new(&m, &p, c).unwrap();
        let e = d.translate(&[vec![5; 21]]).unwrap_err().to_string();
        assert!(e.contains("limit of 20"), "{e}");
    }
}

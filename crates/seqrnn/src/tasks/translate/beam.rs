use super::*;

/// How sentences are decoded. `validate()` before use.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecodeConfig {
    /// Hypotheses kept per sentence (1: greedy).
    pub beam: usize,
    /// Length penalty exponent `α` (0: raw log-probability).
    pub alpha: f32,
    /// Longest output: `max_len_a · |source| + max_len_b` pieces.
    pub max_len_a: f32,
    /// See `max_len_a`.
    pub max_len_b: usize,
    /// Sentences decoded together.
    pub batch: usize,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            beam: 5,
            alpha: 0.6,
            max_len_a: 1.5,
            max_len_b: 10,
            batch: 32,
        }
    }
}

impl DecodeConfig {
    /// Refuses a zero beam or batch and negative or non-finite factors.
    pub fn validate(&self) -> Result<()> {
        if self.beam == 0 || self.batch == 0 {
            return Err(Error::Config(
                "the beam size and decoding batch must be at least 1".into(),
            ));
        }
        let ok = |v: f32| v.is_finite() && v >= 0.0;
        if !(ok(self.alpha) && ok(self.max_len_a)) {
            return Err(Error::Config(format!(
                "the length penalty ({}) and length factor ({}) must be finite and ≥ 0",
                self.alpha, self.max_len_a
            )));
        }
        Ok(())
    }

    /// The longest output for a source of `len` pieces (at least 1).
    pub fn max_len(&self, len: usize) -> usize {
        ((self.max_len_a * len as f32) as usize + self.max_len_b).max(1)
    }

    /// The GNMT length penalty of an output of `len` pieces (`</s>` included).
    pub fn penalty(&self, len: usize) -> f32 {
        ((5.0 + len as f32) / 6.0).powf(self.alpha)
    }
}

/// One translation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hypothesis {
    /// Target pieces, without `<s>` and `</s>`.
    pub tokens: Vec<u32>,
    /// Log-probability of the pieces and `</s>` (when it was produced).
    pub log_prob: f32,
    /// The log-probability divided by the length penalty: what the beam ranks by.
    pub score: f32,
    /// Attention weights `[steps, |source|]` (each output piece, and `</s>` when produced, over
    /// the source pieces), when asked for.
    pub attention: Vec<f32>,
}

/// Reusable buffers of [`Decoder`].
#[derive(Debug, Default)]
struct DecodeBuffers {
    ws: Seq2SeqWorkspace,
    step: StepBuffers,
    enc: EncodedSource,
    rows: EncodedSource,
    logits: Vec<f32>,
    weights: AttnCache,
    batch: TokenBatch,
}

/// A live hypothesis of the beam.
#[derive(Clone, Debug, Default)]
struct Live {
    tokens: Vec<u32>,
    log_prob: f32,
    attention: Vec<f32>,
}

/// Batched beam search over a model's weights.
pub struct Decoder<'m> {
    model: &'m Seq2Seq,
    params: &'m [f32],
    config: DecodeConfig,
    /// Keep each hypothesis's attention weights.
    pub keep_attention: bool,
    buf: DecodeBuffers,
}

impl<'m> Decoder<'m> {
    /// A decoder for `model` with weights `params`.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid settings.
    pub fn new(model: &'m Seq2Seq, params: &'m [f32], config: DecodeConfig) -> Result<Self> {
        config.validate()?;
        model
            .param_layout()
            .check_block("parameter block", params.len())?;
        Ok(Decoder {
            model,
            params,
            config,
            keep_attention: false,
            buf: DecodeBuffers::default(),
        })
    }

    /// Translates every source (piece ids, each non-empty), in length-sorted batches; results
    /// in the input order.
    pub fn translate(&mut self, sources: &[Vec<u32>]) -> Result<Vec<Hypothesis>> {
        for (i, s) in sources.iter().enumerate() {
            if s.is_empty() {
                return Err(Error::Config(format!("source sentence {} is empty", i + 1)));
            }
            self.model.check_source_len(s.len(), i + 1)?;
        }
        let lens: Vec<usize> = sources.iter().map(Vec::len).collect();
        let order: Vec<usize> = (0..sources.len()).collect();
        let mut out = vec![Hypothesis::default(); sources.len()];
        for idx in length_buckets(&lens, &order, self.config.batch) {
            self.buf
                .batch
                .fill(idx.iter().map(|&i| sources[i].as_slice()));
            let hyps = self.search()?;
            for (h, &i) in hyps.into_iter().zip(&idx) {
                out[i] = h;
            }
        }
        Ok(out)
    }

    /// Beam search on the batch in `self.buf.batch`.
    fn search(&mut self) -> Result<Vec<Hypothesis>> {
        let (m, p, cfg) = (self.model, self.params, self.config);
        let buf = &mut self.buf;
        m.encode(p, &buf.batch, &mut buf.enc, &mut buf.ws)?;
        let packs = m.pack_decoder(p)?;
        let (b, k, v, s) = (buf.enc.b(), cfg.beam, m.config().tgt_vocab, buf.enc.s);
        let rows: Vec<usize> = (0..b * k).map(|r| r / k).collect();
        buf.enc.select(&rows, &mut buf.rows);
        let mut state = m.initial_state(&buf.rows.h0);
        let mut live: Vec<Vec<Live>> = (0..b).map(|_| vec![Live::default()]).collect();
        let mut finished: Vec<Vec<Hypothesis>> = vec![Vec::new(); b];
        let max_len: Vec<usize> = buf.enc.lens.iter().map(|&l| cfg.max_len(l)).collect();
        let mut prev = vec![BOS; b * k];
        let mut cands: Vec<(f32, usize, u32)> = Vec::new();
        let mut tops: Vec<(f32, u32)> = Vec::new();
        let mut from = vec![0usize; b * k];
        let mut old = Vec::new();
        for step in 1.. {
            if live.iter().all(Vec::is_empty) {
                break;
            }
            m.step(
                &packs,
                &buf.rows,
                &prev,
                &mut state,
                &mut buf.logits,
                &mut buf.weights,
                &mut buf.step,
                &mut buf.ws,
            )?;
            // Each live row's 2k best next pieces, rows in parallel.
            let per = (2 * k).min(v);
            fit_tops(&mut tops, b * k * per);
            {
                use rayon::prelude::*;
                let live_rows: Vec<bool> = (0..b * k).map(|r| r % k < live[r / k].len()).collect();
                tops.par_chunks_mut(per)
                    .zip(buf.logits.par_chunks(v))
                    .zip(live_rows.par_iter())
                    .for_each(|((top, row), &on)| match on {
                        true => row_top(row, top),
                        false => top.fill((f32::NEG_INFINITY, u32::MAX)),
                    });
            }
            for i in 0..b {
                if live[i].is_empty() {
                    continue;
                }
                cands.clear();
                for (j, hyp) in live[i].iter().enumerate() {
                    let r = i * k + j;
                    cands.extend(
                        tops[r * per..(r + 1) * per]
                            .iter()
                            .filter(|t| t.1 != u32::MAX)
                            .map(|&(lp, w)| (hyp.log_prob + lp, j, w)),
                    );
                }
                let by_score = |a: &(f32, usize, u32), c: &(f32, usize, u32)| {
                    c.0.total_cmp(&a.0).then(a.1.cmp(&c.1)).then(a.2.cmp(&c.2))
                };
                cands.sort_by(by_score);
                cands.truncate(2 * k);
                let mut next = Vec::with_capacity(k);
                let last = step >= max_len[i];
                for &(lp, j, w) in cands.iter() {
                    if next.len() == k || finished[i].len() >= k {
                        break;
                    }
                    let old = &live[i][j];
                    let mut attention = Vec::new();
                    if self.keep_attention {
                        attention.reserve(old.attention.len() + s);
                        attention.extend_from_slice(&old.attention);
                        let r = i * k + j;
                        attention.extend_from_slice(&buf.weights.weights[r * s..(r + 1) * s]);
                    }
                    if w == EOS || last {
                        // The sentence's own source positions only: [steps, len].
                        let len_i = buf.enc.lens[i];
                        let attention: Vec<f32> = attention
                            .chunks_exact(s)
                            .flat_map(|row| row[..len_i].iter().copied())
                            .collect();
                        let mut tokens = old.tokens.clone();
                        if w != EOS {
                            tokens.push(w);
                        }
                        let len = tokens.len() + usize::from(w == EOS);
                        finished[i].push(Hypothesis {
                            tokens,
                            log_prob: lp,
                            score: lp / cfg.penalty(len),
                            attention,
                        });
                    } else {
                        let mut tokens = Vec::with_capacity(old.tokens.len() + 1);
                        tokens.extend_from_slice(&old.tokens);
                        tokens.push(w);
                        from[i * k + next.len()] = i * k + j;
                        next.push(Live {
                            tokens,
                            log_prob: lp,
                            attention,
                        });
                    }
                }
                live[i] = if finished[i].len() >= k || last {
                    Vec::new()
                } else {
                    next
                };
                for (j, h) in live[i].iter().enumerate() {
                    prev[i * k + j] = *h.tokens.last().unwrap_or(&BOS);
                }
                // Rows past the live hypotheses follow row 0 of the sentence (never read).
                for j in live[i].len()..k {
                    from[i * k + j] = i * k;
                    prev[i * k + j] = BOS;
                }
            }
            reorder_state(&mut state, &from, m.config().dec_hidden, &mut old);
        }
        Ok(finished
            .into_iter()
            .map(|mut f| {
                f.sort_by(|a, c| c.score.total_cmp(&a.score));
                f.into_iter().next().unwrap_or_default()
            })
            .collect())
    }
}

/// The `top.len()` most probable next pieces of one row of logits, as `(log-probability, id)`,
/// best first (ties: the smaller id); `<pad>` and `<s>` are never among them (a slot left over
/// holds `−∞`).
pub(super) fn row_top(row: &[f32], top: &mut [(f32, u32)]) {
    let m = softmax::row_max(row);
    let sum: f64 = row
        .iter()
        .map(|&v| crate::rnn::activation::exp(v - m) as f64)
        .sum();
    let lse = m + sum.ln() as f32;
    top.fill((f32::NEG_INFINITY, u32::MAX));
    let n = top.len();
    for (w, &v) in row.iter().enumerate() {
        if v <= top[n - 1].0 || w == PAD as usize || w == BOS as usize {
            continue;
        }
        // Insert before the first smaller value (equal values keep the earlier, smaller id).
        let at = top.iter().position(|&(x, _)| v > x).unwrap_or(n - 1);
        top.copy_within(at..n - 1, at + 1);
        top[at] = (v, w as u32);
    }
    top.iter_mut()
        .filter(|t| t.1 != u32::MAX)
        .for_each(|t| t.0 -= lse);
}

/// `tops` resized to `n` entries.
fn fit_tops(tops: &mut Vec<(f32, u32)>, n: usize) {
    tops.resize(n, (f32::NEG_INFINITY, u32::MAX));
}

/// Rows of `state` (`[L, B', H]` each) gathered by `from[B']`; `old` is scratch.
fn reorder_state(state: &mut RnnState, from: &[usize], h: usize, old: &mut Vec<f32>) {
    let rows = from.len();
    for buf in [&mut state.h, &mut state.c] {
        if buf.is_empty() {
            continue;
        }
        let layers = buf.len() / (rows * h);
        old.clone_from(buf);
        for l in 0..layers {
            for (r, &f) in from.iter().enumerate() {
                let (dst, src) = ((l * rows + r) * h, (l * rows + f) * h);
                buf[dst..dst + h].copy_from_slice(&old[src..src + h]);
            }
        }
    }
}

//! Generation from any model that gives next-step logits ([`NextToken`]; the language model's
//! is [`LmStepper`]): greedy decoding or sampling with temperature, top-k and nucleus (top-p)
//! truncation.

use rand::RngExt;

use crate::dropout::{rng_from_seed, SeqRng};
use crate::error::{Error, Result};
use crate::model::softmax::exp_weights;
use crate::rnn::activation::exp;
use crate::rnn::{RnnState, SeqShape};
use crate::tasks::lm::{LanguageModel, LmPacks, LmWorkspace};

/// How the next token is chosen from the model's distribution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decoding {
    /// Always the most probable token.
    Greedy,
    /// A draw from `softmax(logits / temperature)`, restricted to the `top_k` most probable
    /// tokens and/or to the smallest set whose probability reaches `top_p`.
    Sample {
        /// Divides the logits; below 1 sharpens, above 1 flattens. Must be positive.
        temperature: f32,
        /// Keep only this many most probable tokens.
        top_k: Option<usize>,
        /// Keep the smallest set of most probable tokens with total probability ≥ `top_p`, in `(0, 1]`.
        top_p: Option<f32>,
    },
}

impl Default for Decoding {
    fn default() -> Self {
        Decoding::Sample {
            temperature: 1.0,
            top_k: None,
            top_p: None,
        }
    }
}

impl Decoding {
    /// Checks the sampling parameters.
    pub fn validate(&self) -> Result<()> {
        if let Decoding::Sample {
            temperature,
            top_k,
            top_p,
        } = *self
        {
            if !(temperature.is_finite() && temperature > 0.0) {
                return Err(Error::Config(format!(
                    "temperature must be positive, got {temperature}"
                )));
            }
            if top_k == Some(0) {
                return Err(Error::Config("top-k must be at least 1, got 0".into()));
            }
            if let Some(p) = top_p {
                if !(p > 0.0 && p <= 1.0) {
                    return Err(Error::Config(format!("top-p must be in (0, 1], got {p}")));
                }
            }
        }
        Ok(())
    }
}

/// Buffers of [`choose`], reused between calls.
#[derive(Clone, Debug, Default)]
pub struct ChooseScratch {
    /// Weights with their token ids (top-k / top-p truncation sorts them).
    pairs: Vec<(f32, u32)>,
    /// Weights in token order (sampling from the whole distribution).
    weights: Vec<f32>,
}

/// Tokens in a block of the whole-distribution draw: the draw finds its block by the blocks'
/// sums, then its token within the block.
const DRAW_BLOCK: usize = 256;

/// Chooses a token from one row of logits.
pub fn choose(
    logits: &[f32],
    decoding: Decoding,
    rng: &mut SeqRng,
    scratch: &mut ChooseScratch,
) -> u32 {
    let argmax = || {
        logits
            .iter()
            .enumerate()
            .fold((0usize, f32::NEG_INFINITY), |best, (i, &l)| {
                if l > best.1 {
                    (i, l)
                } else {
                    best
                }
            })
            .0 as u32
    };
    let Decoding::Sample {
        temperature,
        top_k,
        top_p,
    } = decoding
    else {
        return argmax();
    };
    let m = lane_max(logits);
    if top_k.is_none() && top_p.is_none() {
        let w = &mut scratch.weights;
        w.resize(logits.len(), 0.0);
        fill_weights(logits, m, temperature, w);
        return draw(w, rng).map_or_else(argmax, |i| i as u32);
    }
    let scratch = &mut scratch.pairs;
    scratch.clear();
    scratch.extend(
        exp_weights(logits, m, temperature)
            .enumerate()
            .map(|(i, w)| (w, i as u32)),
    );
    scratch.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    if let Some(k) = top_k {
        scratch.truncate(k.max(1));
    }
    if let Some(p) = top_p {
        let total: f32 = scratch.iter().map(|e| e.0).sum();
        let mut acc = 0.0;
        let keep = scratch
            .iter()
            .position(|e| {
                acc += e.0;
                acc >= p * total
            })
            .map_or(scratch.len(), |i| i + 1);
        scratch.truncate(keep);
    }
    let total: f32 = scratch.iter().map(|e| e.0).sum();
    let mut r = rng.random::<f32>() * total;
    for &(w, id) in scratch.iter() {
        if r < w {
            return id;
        }
        r -= w;
    }
    scratch.last().map_or_else(argmax, |e| e.1)
}

/// The largest value of `row` (`−∞` when empty), in 8 lanes (the maximum does not depend on
/// the order).
#[multiversion::multiversion(targets = "simd")]
fn lane_max(row: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = row.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = a.max(x);
        }
    }
    rest.iter()
        .chain(&acc)
        .copied()
        .fold(f32::NEG_INFINITY, f32::max)
}

/// `w[j] = e^{(l_j − m) / temperature}` ([`exp_weights`]' values, with the engine's `exp`).
#[multiversion::multiversion(targets = "simd")]
fn fill_weights(logits: &[f32], m: f32, temperature: f32, w: &mut [f32]) {
    for (w, &l) in w.iter_mut().zip(logits) {
        *w = exp((l - m) / temperature);
    }
}

/// Sum of `w` in 8 lanes, in a fixed order.
#[multiversion::multiversion(targets = "simd")]
fn lane_sum(w: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = w.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().chain(rest).sum()
}

/// A draw of an index with probability `w[i] / Σw`: the block holding it found by the blocks'
/// sums, then the index within the block. `None` when rounding leaves the draw past the end.
fn draw(w: &[f32], rng: &mut SeqRng) -> Option<usize> {
    let total: f32 = w.chunks(DRAW_BLOCK).map(lane_sum).sum();
    let mut r = rng.random::<f32>() * total;
    for (b, block) in w.chunks(DRAW_BLOCK).enumerate() {
        let s = lane_sum(block);
        if r >= s {
            r -= s;
            continue;
        }
        for (i, &x) in block.iter().enumerate() {
            if r < x {
                return Some(b * DRAW_BLOCK + i);
            }
            r -= x;
        }
        // Rounding within the block: its last token with any weight.
        return block
            .iter()
            .rposition(|&x| x > 0.0)
            .map(|i| b * DRAW_BLOCK + i);
    }
    None
}

/// A model that predicts the next token one step at a time: what [`generate`] needs.
///
/// Implementations keep their recurrent state between calls and, once warmed up, should not
/// allocate per step.
pub trait NextToken {
    /// Width of a row of logits (the vocabulary size `V`).
    fn vocab(&self) -> usize;

    /// Starts afresh (zero state) and reads `prompt` (at least one token); writes the logits of
    /// the token that follows it into `logits[V]`.
    fn prime(&mut self, prompt: &[u32], logits: &mut [f32]) -> Result<()>;

    /// Reads one more token; writes the logits of the token that follows it into `logits[V]`.
    fn step(&mut self, token: u32, logits: &mut [f32]) -> Result<()>;
}

/// Many generations from one [`LanguageModel`] advanced together (continuous batching): each
/// generation keeps its own batch-1 state ([`LmBatch::zero_state`]), is primed alone
/// ([`LmBatch::prime`]), and then steps beside whichever others are running
/// ([`LmBatch::step`]); generations join and leave between steps.
///
/// The weights are packed once ([`LanguageModel::pack`]), so a row's logits are the same, to the
/// bit, in a batch of any size and company as alone: a generation's tokens do not depend on who
/// else was in the batch, and equal [`LmStepper`]'s (which is this at batch 1).
#[derive(Debug)]
pub struct LmBatch<'m> {
    model: &'m LanguageModel,
    packs: LmPacks<'m>,
    ws: LmWorkspace,
    /// The running rows' states gathered into one batch state, `[segment][B, width]`.
    batch: RnnState,
    /// Segment widths of a batch-1 state ([`LanguageModel::state_widths`]).
    widths: Vec<usize>,
    /// `[B]`: the tokens a step reads.
    tokens: Vec<u32>,
}

impl<'m> LmBatch<'m> {
    /// A batch stepper for `model` with `params` (packed here, once).
    ///
    /// # Errors
    /// [`Error::Shape`] when `params` is not `model`'s parameter block.
    pub fn new(model: &'m LanguageModel, params: &'m [f32]) -> Result<Self> {
        Ok(LmBatch {
            model,
            packs: model.pack(params)?,
            ws: LmWorkspace::default(),
            batch: RnnState::default(),
            widths: model.state_widths(),
            tokens: Vec::new(),
        })
    }

    /// Width of a row of logits (the vocabulary size `V`).
    pub fn vocab(&self) -> usize {
        self.model.config().vocab
    }

    /// A generation's zero state (batch 1).
    pub fn zero_state(&self) -> RnnState {
        self.model.zero_state(1)
    }

    /// Starts `state` afresh (zero) and reads `prompt` (at least one token) as one window;
    /// writes the logits of the token that follows it into `logits[V]`.
    ///
    /// # Errors
    /// An empty prompt, a token outside the vocabulary, a state of another model.
    pub fn prime(
        &mut self,
        prompt: &[u32],
        state: &mut RnnState,
        logits: &mut [f32],
    ) -> Result<()> {
        if prompt.is_empty() {
            return Err(Error::Config(
                "generation needs at least one prompt token".into(),
            ));
        }
        state.h.fill(0.0);
        state.c.fill(0.0);
        let v = self.vocab();
        let shape = SeqShape {
            t: prompt.len(),
            b: 1,
        };
        let all = self
            .model
            .logits_packed(&self.packs, prompt, shape, state, &mut self.ws)?;
        logits.copy_from_slice(&all[all.len() - v..]);
        Ok(())
    }

    /// One step of every row: row `r` reads `rows[r].0` from its state `rows[r].1` (updated);
    /// its next token's logits go to `logits[r·V..(r+1)·V]` (`logits[B, V]`, `B = rows.len()`).
    ///
    /// # Errors
    /// No rows, a token outside the vocabulary, a state of another model.
    pub fn step(&mut self, rows: &mut [(u32, &mut RnnState)], logits: &mut [f32]) -> Result<()> {
        let b = rows.len();
        if b == 0 {
            return Err(Error::Shape("a step needs at least one row".into()));
        }
        let v = self.vocab();
        if logits.len() != b * v {
            return Err(Error::Shape(format!(
                "logits hold {} values, expected B·V = {}",
                logits.len(),
                b * v
            )));
        }
        self.tokens.clear();
        self.tokens.extend(rows.iter().map(|r| r.0));
        self.gather(rows)?;
        let out = self.model.logits_packed(
            &self.packs,
            &self.tokens,
            SeqShape { t: 1, b },
            &mut self.batch,
            &mut self.ws,
        )?;
        logits.copy_from_slice(out);
        self.scatter(rows);
        Ok(())
    }

    /// `batch` = the rows' states, segment by segment.
    fn gather(&mut self, rows: &[(u32, &mut RnnState)]) -> Result<()> {
        let one: usize = self.widths.iter().sum();
        let lstm = self.model.config().cell.has_cell_state();
        for (_, s) in rows {
            if s.h.len() != one || s.c.len() != if lstm { one } else { 0 } {
                return Err(Error::Shape(format!(
                    "a row's state holds {} + {} values, expected this model's {one} + {}",
                    s.h.len(),
                    s.c.len(),
                    if lstm { one } else { 0 }
                )));
            }
        }
        let b = rows.len();
        fit_state(&mut self.batch, one * b, lstm);
        let mut at = 0;
        for &w in &self.widths {
            for (r, (_, s)) in rows.iter().enumerate() {
                let (src, dst) = (at / b..at / b + w, at + r * w..at + (r + 1) * w);
                self.batch.h[dst.clone()].copy_from_slice(&s.h[src.clone()]);
                if lstm {
                    self.batch.c[dst].copy_from_slice(&s.c[src]);
                }
            }
            at += w * b;
        }
        Ok(())
    }

    /// The rows' states = `batch`, segment by segment (inverse of [`LmBatch::gather`]).
    fn scatter(&self, rows: &mut [(u32, &mut RnnState)]) {
        let b = rows.len();
        let lstm = !self.batch.c.is_empty();
        let mut at = 0;
        for &w in &self.widths {
            for (r, (_, s)) in rows.iter_mut().enumerate() {
                let (dst, src) = (at / b..at / b + w, at + r * w..at + (r + 1) * w);
                s.h[dst.clone()].copy_from_slice(&self.batch.h[src.clone()]);
                if lstm {
                    s.c[dst].copy_from_slice(&self.batch.c[src]);
                }
            }
            at += w * b;
        }
    }
}

/// One generation beside others in an [`LmBatch`]: its state, decoding and seeded sampler. Its
/// tokens are [`generate`]'s with the same prompt, decoding and seed: the first from
/// [`BatchRow::start`], each next one from [`BatchRow::choose`] on the row's logits of a step
/// that read the token before.
#[derive(Debug)]
pub struct BatchRow {
    /// The recurrent state (batch 1), handed to [`LmBatch::step`].
    pub state: RnnState,
    rng: SeqRng,
    decoding: Decoding,
    scratch: ChooseScratch,
}

impl BatchRow {
    /// Primes a new generation with `prompt` (at least one token) alone, and draws its first
    /// token.
    ///
    /// # Errors
    /// Bad decoding parameters, an empty prompt, a token outside the vocabulary.
    pub fn start(
        batch: &mut LmBatch<'_>,
        prompt: &[u32],
        decoding: Decoding,
        seed: u64,
    ) -> Result<(BatchRow, u32)> {
        decoding.validate()?;
        let mut row = BatchRow {
            state: batch.zero_state(),
            rng: rng_from_seed(seed),
            decoding,
            scratch: ChooseScratch::default(),
        };
        let mut logits = vec![0.0; batch.vocab()];
        batch.prime(prompt, &mut row.state, &mut logits)?;
        let first = row.choose(&logits);
        Ok((row, first))
    }

    /// The next token from this row's `logits[V]`.
    pub fn choose(&mut self, logits: &[f32]) -> u32 {
        choose(logits, self.decoding, &mut self.rng, &mut self.scratch)
    }
}

/// `state` resized to `n` values in `h` (and in `c` for an LSTM), reusing its buffers.
fn fit_state(state: &mut RnnState, n: usize, lstm: bool) {
    state.h.resize(n, 0.0);
    state.c.resize(if lstm { n } else { 0 }, 0.0);
}

/// A [`LanguageModel`] with its weights packed, its recurrent state (batch 1) and workspace,
/// stepping one token at a time: an [`LmBatch`] of one row.
#[derive(Debug)]
pub struct LmStepper<'m> {
    batch: LmBatch<'m>,
    state: RnnState,
}

impl<'m> LmStepper<'m> {
    /// A stepper for `model` with `params`, at a zero state.
    ///
    /// # Errors
    /// [`Error::Shape`] when `params` is not `model`'s parameter block.
    pub fn new(model: &'m LanguageModel, params: &'m [f32]) -> Result<Self> {
        let batch = LmBatch::new(model, params)?;
        let state = batch.zero_state();
        Ok(LmStepper { batch, state })
    }
}

impl NextToken for LmStepper<'_> {
    fn vocab(&self) -> usize {
        self.batch.vocab()
    }

    /// The whole prompt runs as one window; the logits of its last step are kept.
    fn prime(&mut self, prompt: &[u32], logits: &mut [f32]) -> Result<()> {
        self.batch.prime(prompt, &mut self.state, logits)
    }

    fn step(&mut self, token: u32, logits: &mut [f32]) -> Result<()> {
        self.batch.step(&mut [(token, &mut self.state)], logits)
    }
}

/// Primes `model` with `prompt` (at least one token) and then generates `n` tokens, feeding
/// each back in. The same seed gives the same tokens.
pub fn generate<M: NextToken + ?Sized>(
    model: &mut M,
    prompt: &[u32],
    n: usize,
    decoding: Decoding,
    seed: u64,
) -> Result<Vec<u32>> {
    generate_each(model, prompt, n, decoding, seed, |_| true)
}

/// [`generate`], handing each token to `each` as soon as it is chosen; generation stops early
/// when `each` returns `false` (a reader that went away). The tokens are those of [`generate`]
/// with the same arguments, as many as were generated.
pub fn generate_each<M: NextToken + ?Sized>(
    model: &mut M,
    prompt: &[u32],
    n: usize,
    decoding: Decoding,
    seed: u64,
    mut each: impl FnMut(u32) -> bool,
) -> Result<Vec<u32>> {
    decoding.validate()?;
    if prompt.is_empty() {
        return Err(Error::Config(
            "generation needs at least one prompt token".into(),
        ));
    }
    let mut rng = rng_from_seed(seed);
    let v = model.vocab();
    let mut scratch = ChooseScratch::default();
    let mut logits = vec![0.0; v];
    model.prime(prompt, &mut logits)?;
    let mut next = choose(&logits, decoding, &mut rng, &mut scratch);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(next);
        if !each(next) || i + 1 == n {
            break;
        }
        model.step(next, &mut logits)?;
        next = choose(&logits, decoding, &mut rng, &mut scratch);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_largest_and_top_k_one_agrees() {
        let l = [0.1, 3.0, -2.0, 2.9];
        let mut rng = rng_from_seed(0);
        let mut s = ChooseScratch::default();
        assert_eq!(choose(&l, Decoding::Greedy, &mut rng, &mut s), 1);
        let top1 = Decoding::Sample {
            temperature: 1.0,
            top_k: Some(1),
            top_p: None,
        };
        for _ in 0..20 {
            assert_eq!(choose(&l, top1, &mut rng, &mut s), 1);
        }
    }

    #[test]
    fn sampling_follows_the_distribution_and_top_p_truncates() {
        // Probabilities ∝ e^0, e^ln3 → 0.25, 0.75.
        let l = [0.0, 3f32.ln()];
        let mut rng = rng_from_seed(1);
        let mut s = ChooseScratch::default();
        let d = Decoding::default();
        let ones = (0..20_000)
            .filter(|_| choose(&l, d, &mut rng, &mut s) == 1)
            .count();
        assert!((ones as f64 / 20_000.0 - 0.75).abs() < 0.015, "{ones}");
        let nucleus = Decoding::Sample {
            temperature: 1.0,
            top_k: None,
            top_p: Some(0.7),
        };
        assert!((0..200).all(|_| choose(&l, nucleus, &mut rng, &mut s) == 1));
        // A low temperature concentrates the mass on the best token.
        let cold = Decoding::Sample {
            temperature: 0.05,
            top_k: None,
            top_p: None,
        };
        assert!((0..200).all(|_| choose(&l, cold, &mut rng, &mut s) == 1));
    }

    #[test]
    fn a_draw_over_a_wide_row_finds_tokens_in_every_block() {
        // Mass 1:2:5 on tokens in the first, second and third block of 256; the rest ~0.
        let mut l = vec![-40.0f32; 700];
        l[3] = 0.0;
        l[300] = 2f32.ln();
        l[650] = 5f32.ln();
        let mut rng = rng_from_seed(3);
        let mut s = ChooseScratch::default();
        let mut counts = [0usize; 3];
        let n = 40_000;
        for _ in 0..n {
            match choose(&l, Decoding::default(), &mut rng, &mut s) {
                3 => counts[0] += 1,
                300 => counts[1] += 1,
                650 => counts[2] += 1,
                other => panic!("drew {other}"),
            }
        }
        for (c, p) in counts.iter().zip([1.0 / 8.0, 2.0 / 8.0, 5.0 / 8.0]) {
            assert!((*c as f64 / n as f64 - p).abs() < 0.01, "{counts:?}");
        }
        // The engine's exp gives the weights `exp_weights` gives, to rounding.
        let mut w = vec![0.0; 700];
        fill_weights(&l, 5f32.ln(), 0.7, &mut w);
        for (a, b) in w.iter().zip(exp_weights(&l, 5f32.ln(), 0.7)) {
            assert!((a - b).abs() <= 1e-6 * b.max(1e-30) + 1e-37, "{a} vs {b}");
        }
        assert_eq!(lane_max(&l), 5f32.ln());
        assert_eq!(lane_max(&[]), f32::NEG_INFINITY);
    }

    #[test]
    fn bad_parameters_are_refused() {
        for d in [
            Decoding::Sample {
                temperature: 0.0,
                top_k: None,
                top_p: None,
            },
            Decoding::Sample {
                temperature: -1.0,
                top_k: None,
                top_p: None,
            },
            Decoding::Sample {
                temperature: 1.0,
                top_k: Some(0),
                top_p: None,
            },
            Decoding::Sample {
                temperature: 1.0,
                top_k: None,
                top_p: Some(0.0),
            },
            Decoding::Sample {
                temperature: 1.0,
                top_k: None,
                top_p: Some(1.5),
            },
        ] {
            assert!(d.validate().is_err(), "{d:?}");
        }
    }

    use crate::rnn::{CellKind, GruVariant};
    use crate::tasks::lm::{LmConfig, LmInit};

    fn lm(cell: CellKind, last_hidden: Option<usize>) -> (LanguageModel, Vec<f32>) {
        let model = LanguageModel::new(LmConfig {
            vocab: 97,
            embed: 24,
            cell,
            hidden: 40,
            layers: 2,
            last_hidden,
            ..LmConfig::default()
        })
        .unwrap();
        let params = model.init_params(LmInit::Uniform(0.3), 4).unwrap();
        (model, params)
    }

    /// Generations that join and leave a running batch get, to the bit, the logits they get
    /// alone; and those equal the unpacked pass's to rounding.
    #[test]
    fn a_row_steps_alike_alone_and_in_any_batch() {
        let cells = [
            (CellKind::Lstm, None),
            (CellKind::Gru(GruVariant::ResetAfter), Some(24)),
            (CellKind::Gru(GruVariant::ResetBefore), None),
        ];
        for (cell, last) in cells {
            let (model, params) = lm(cell, last);
            let v = model.config().vocab;
            let prompts: Vec<Vec<u32>> = (0..9u32)
                .map(|r| (0..1 + r % 4).map(|i| (r * 13 + i * 5) % 97).collect())
                .collect();
            let next = |r: usize, s: usize| ((r * 31 + s * 7) % v) as u32;
            // Alone: each generation's logits at steps 0 (after the prompt) to 5.
            let mut alone = Vec::new();
            for (r, p) in prompts.iter().enumerate() {
                let mut st = LmStepper::new(&model, &params).unwrap();
                let mut l = vec![0.0; v];
                st.prime(p, &mut l).unwrap();
                let mut rows = vec![l.clone()];
                // The unpacked pass agrees to rounding.
                let mut state = model.zero_state(1);
                let mut ws = LmWorkspace::default();
                let plain = model
                    .logits(
                        &params,
                        p,
                        SeqShape { t: p.len(), b: 1 },
                        &mut state,
                        &mut ws,
                    )
                    .unwrap();
                for (a, b) in l.iter().zip(&plain[plain.len() - v..]) {
                    assert!((a - b).abs() < 1e-4, "{cell:?}: {a} vs {b}");
                }
                for s in 0..5 {
                    st.step(next(r, s), &mut l).unwrap();
                    rows.push(l.clone());
                }
                alone.push(rows);
            }
            // Together: generation r joins before step r % 3 · 2 and leaves after its 5 steps.
            let mut batch = LmBatch::new(&model, &params).unwrap();
            let mut states: Vec<RnnState> = prompts.iter().map(|_| batch.zero_state()).collect();
            let mut done = vec![0usize; prompts.len()];
            let mut l = vec![0.0; v];
            for (r, p) in prompts.iter().enumerate() {
                batch.prime(p, &mut states[r], &mut l).unwrap();
                assert_eq!(l, alone[r][0], "{cell:?}: primed {r}");
            }
            for tick in 0..12 {
                let live: Vec<usize> = (0..prompts.len())
                    .filter(|&r| tick >= (r % 3) * 2 && done[r] < 5)
                    .collect();
                if live.is_empty() {
                    continue;
                }
                let mut rows: Vec<(u32, &mut RnnState)> = states
                    .iter_mut()
                    .enumerate()
                    .filter(|(r, _)| live.contains(r))
                    .map(|(r, s)| (next(r, done[r]), s))
                    .collect();
                let mut out = vec![0.0; rows.len() * v];
                batch.step(&mut rows, &mut out).unwrap();
                for (i, &r) in live.iter().enumerate() {
                    done[r] += 1;
                    let got = &out[i * v..(i + 1) * v];
                    assert_eq!(
                        got,
                        &alone[r][done[r]][..],
                        "{cell:?}: row {r} step {}",
                        done[r]
                    );
                }
            }
            assert!(done.iter().all(|&d| d == 5));
            // A state of another shape is refused, not misread.
            let mut wrong = RnnState::default();
            let err = batch.step(&mut [(1, &mut wrong)], &mut vec![0.0; v]);
            assert!(err.is_err());
        }
    }

    /// Logits that favour `(last · 7 + 3) mod V`, a little noise from the step count.
    struct Toy {
        last: u32,
        steps: u32,
    }

    impl NextToken for Toy {
        fn vocab(&self) -> usize {
            11
        }

        fn prime(&mut self, prompt: &[u32], logits: &mut [f32]) -> Result<()> {
            self.step(*prompt.last().expect("a prompt"), logits)
        }

        fn step(&mut self, token: u32, logits: &mut [f32]) -> Result<()> {
            self.last = token;
            self.steps += 1;
            for (i, l) in logits.iter_mut().enumerate() {
                *l = ((i as u32 * 5 + self.steps) % 3) as f32 * 0.5;
            }
            logits[((token * 7 + 3) % 11) as usize] += 2.0;
            Ok(())
        }
    }

    #[test]
    fn each_token_is_handed_over_in_order_and_a_stop_ends_early() {
        let toy = || Toy { last: 0, steps: 0 };
        let d = Decoding::default();
        let all = generate(&mut toy(), &[1, 2], 20, d, 5).unwrap();
        let mut seen = Vec::new();
        let same = generate_each(&mut toy(), &[1, 2], 20, d, 5, |t| {
            seen.push(t);
            true
        })
        .unwrap();
        assert_eq!((&same, &seen), (&all, &all));
        let mut stepper = toy();
        let first = generate_each(&mut stepper, &[1, 2], 20, d, 5, |_| false).unwrap();
        assert_eq!(first, all[..1]);
        assert_eq!(stepper.steps, 1, "no step after the reader went away");
        let none = generate(&mut toy(), &[1, 2], 0, d, 5).unwrap();
        assert!(none.is_empty());
    }
}

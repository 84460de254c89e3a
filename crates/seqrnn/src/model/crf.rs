//! Linear-chain conditional random field over per-token tag scores (Lafferty et al. 2001; the
//! output layer of Huang et al. 2015 and Lample et al. 2016): exact negative log-likelihood by the
//! forward algorithm in log space, its gradient by forward–backward marginals, and Viterbi
//! decoding, with transition constraints that forbid invalid tag sequences.
//!
//! Shapes (time-major, as the engine): emissions `e[T, B, K]`, gold tags `y[T, B]`, real lengths
//! `lens[B]` (`1 ≤ len ≤ T`; steps `t ≥ len` are padding and never read). Parameters, one block
//! `[K·K + 2·K]`: `transitions[K, K]` (`transitions[i, j]`: the score of tag `j` after tag `i`),
//! then `start[K]` and `end[K]` (scores of the first and last tag), as AllenNLP's
//! `ConditionalRandomField`. The score of a tag sequence is
//! `start[y_0] + Σ_t e[t, y_t] + Σ_{t>0} transitions[y_{t−1}, y_t] + end[y_{len−1}]`; its probability
//! is `exp(score − log Z)` with `log Z` the log-sum-exp over every allowed sequence.
//!
//! [`Constraints`] mark transitions, starts and ends as allowed or not (an IOB2 `I-PER` never
//! follows `O`); disallowed ones get no probability mass and no gradient, and Viterbi never
//! takes them. Gold sequences must be allowed ([`Crf::check_gold`]).

use crate::error::{Error, Result};

/// Which transitions, first tags and last tags a sequence may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constraints {
    /// `allowed[i·K + j]`: tag `j` may follow tag `i`.
    pub transitions: Vec<bool>,
    /// Tag `j` may start a sentence.
    pub start: Vec<bool>,
    /// Tag `j` may end a sentence.
    pub end: Vec<bool>,
}

impl Constraints {
    /// Everything allowed for `k` tags.
    pub fn none(k: usize) -> Self {
        Constraints {
            transitions: vec![true; k * k],
            start: vec![true; k],
            end: vec![true; k],
        }
    }
}

/// A CRF over `K` tags with its constraints. Parameters are owned by the caller.
#[derive(Clone, Debug)]
pub struct Crf {
    k: usize,
    constraints: Constraints,
}

/// Buffers of the forward–backward pass, reused across calls.
#[derive(Clone, Debug, Default)]
pub struct CrfWorkspace {
    /// `alpha[T, K]`, `beta[T, K]` of one sequence (log space).
    alpha: Vec<f64>,
    beta: Vec<f64>,
    /// Viterbi back-pointers `[T, K]`.
    back: Vec<u32>,
    /// Scratch `[K]`.
    tmp: Vec<f64>,
}

/// `log Σ exp(v)` of values, `−∞` for none.
fn log_sum_exp(v: impl Iterator<Item = f64> + Clone) -> f64 {
    let m = v.clone().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + v.map(|x| (x - m).exp()).sum::<f64>().ln()
}

impl Crf {
    /// A CRF over `k ≥ 1` tags with `constraints` (sized `k`).
    ///
    /// # Errors
    /// [`Error::Config`] for zero tags or constraints of another size.
    pub fn new(k: usize, constraints: Constraints) -> Result<Self> {
        if k == 0
            || constraints.transitions.len() != k * k
            || constraints.start.len() != k
            || constraints.end.len() != k
        {
            return Err(Error::Config(format!(
                "a CRF needs at least one tag and constraints for {k} tags"
            )));
        }
        Ok(Crf { k, constraints })
    }

    /// Number of tags `K`.
    pub fn tags(&self) -> usize {
        self.k
    }

    /// Length of the parameter block, `K·K + 2·K`.
    pub fn num_params(&self) -> usize {
        self.k * self.k + 2 * self.k
    }

    /// The constraints.
    pub fn constraints(&self) -> &Constraints {
        &self.constraints
    }

    fn trans(&self, p: &[f64], i: usize, j: usize) -> f64 {
        match self.constraints.transitions[i * self.k + j] {
            true => p[i * self.k + j],
            false => f64::NEG_INFINITY,
        }
    }

    fn start(&self, p: &[f64], j: usize) -> f64 {
        match self.constraints.start[j] {
            true => p[self.k * self.k + j],
            false => f64::NEG_INFINITY,
        }
    }

    fn end(&self, p: &[f64], j: usize) -> f64 {
        match self.constraints.end[j] {
            true => p[self.k * self.k + self.k + j],
            false => f64::NEG_INFINITY,
        }
    }

    fn check(&self, params: &[f32], e: &[f32], lens: &[usize], t: usize) -> Result<()> {
        let (b, k) = (lens.len(), self.k);
        if params.len() != self.num_params() {
            return Err(Error::Shape(format!(
                "CRF parameters: {} values, need {}",
                params.len(),
                self.num_params()
            )));
        }
        if e.len() != t * b * k || lens.iter().any(|&l| l == 0 || l > t) {
            return Err(Error::Shape(format!(
                "CRF emissions: {} values for T={t}, B={b}, K={k}, lengths in 1..=T",
                e.len()
            )));
        }
        Ok(())
    }

    /// Refuses a gold tag sequence that the constraints forbid (row `b` of `y[T, B]`), naming
    /// the step.
    pub fn check_gold(&self, y: &[u32], lens: &[usize], t: usize) -> Result<()> {
        let (b, k) = (lens.len(), self.k);
        if y.len() != t * b {
            return Err(Error::Shape(format!(
                "gold tags: {} values, need {}",
                y.len(),
                t * b
            )));
        }
        for (j, &len) in lens.iter().enumerate() {
            let tag = |s: usize| y[s * b + j] as usize;
            if (0..len).any(|s| tag(s) >= k) {
                return Err(Error::Shape(format!(
                    "a gold tag of row {j} is not below {k}"
                )));
            }
            let bad = !self.constraints.start[tag(0)]
                || !self.constraints.end[tag(len - 1)]
                || (1..len).any(|s| !self.constraints.transitions[tag(s - 1) * k + tag(s)]);
            if bad {
                return Err(Error::Config(format!(
                    "row {j} holds a tag sequence the constraints forbid"
                )));
            }
        }
        Ok(())
    }

    /// Negative log-likelihood of the gold tags, summed over the batch; with `grads`, also
    /// accumulates (`+=`) `scale ·` its gradient into `de[T, B, K]` (written only at real steps)
    /// and into the parameter gradient `dparams[K·K + 2·K]`.
    ///
    /// # Errors
    /// [`Error::Shape`] for buffers that do not fit; [`Error::Config`] for a forbidden gold
    /// sequence.
    #[allow(clippy::too_many_arguments)]
    pub fn nll(
        &self,
        params: &[f32],
        e: &[f32],
        y: &[u32],
        lens: &[usize],
        t: usize,
        mut grads: Option<(&mut [f32], &mut [f32], f32)>,
        ws: &mut CrfWorkspace,
    ) -> Result<f64> {
        self.check(params, e, lens, t)?;
        self.check_gold(y, lens, t)?;
        let (b, k) = (lens.len(), self.k);
        let p: Vec<f64> = params.iter().map(|&v| v as f64).collect();
        let mut total = 0.0;
        for (j, &len) in lens.iter().enumerate() {
            let em = |s: usize, tag: usize| e[(s * b + j) * k + tag] as f64;
            // Forward: alpha[s, tag] = log Σ over prefixes ending in tag at s.
            ws.alpha.clear();
            ws.alpha.resize(len * k, f64::NEG_INFINITY);
            for tag in 0..k {
                ws.alpha[tag] = self.start(&p, tag) + em(0, tag);
            }
            for s in 1..len {
                for tag in 0..k {
                    let prev = &ws.alpha[(s - 1) * k..s * k];
                    ws.alpha[s * k + tag] =
                        log_sum_exp((0..k).map(|i| prev[i] + self.trans(&p, i, tag))) + em(s, tag);
                }
            }
            let last = &ws.alpha[(len - 1) * k..len * k];
            let log_z = log_sum_exp((0..k).map(|tag| last[tag] + self.end(&p, tag)));
            // Gold score.
            let g = |s: usize| y[s * b + j] as usize;
            let mut gold = self.start(&p, g(0)) + self.end(&p, g(len - 1));
            for s in 0..len {
                gold += em(s, g(s));
                if s > 0 {
                    gold += self.trans(&p, g(s - 1), g(s));
                }
            }
            total += log_z - gold;
            let Some((de, dp, scale)) = grads.as_mut() else {
                continue;
            };
            let scale = *scale as f64;
            // Backward: beta[s, tag] = log Σ over suffixes after tag at s.
            ws.beta.clear();
            ws.beta.resize(len * k, f64::NEG_INFINITY);
            for tag in 0..k {
                ws.beta[(len - 1) * k + tag] = self.end(&p, tag);
            }
            for s in (0..len - 1).rev() {
                for tag in 0..k {
                    let next = &ws.beta[(s + 1) * k..(s + 2) * k];
                    ws.beta[s * k + tag] = log_sum_exp(
                        (0..k).map(|n| self.trans(&p, tag, n) + em(s + 1, n) + next[n]),
                    );
                }
            }
            let kk = k * k;
            for s in 0..len {
                for tag in 0..k {
                    let marginal = (ws.alpha[s * k + tag] + ws.beta[s * k + tag] - log_z).exp();
                    let onehot = f64::from(u8::from(g(s) == tag));
                    de[(s * b + j) * k + tag] += (scale * (marginal - onehot)) as f32;
                    if s == 0 {
                        dp[kk + tag] += (scale * (marginal - onehot)) as f32;
                    }
                    if s == len - 1 {
                        dp[kk + k + tag] += (scale * (marginal - onehot)) as f32;
                    }
                }
                if s == 0 {
                    continue;
                }
                for i in 0..k {
                    for n in 0..k {
                        let tr = self.trans(&p, i, n);
                        if tr == f64::NEG_INFINITY {
                            continue;
                        }
                        let edge = (ws.alpha[(s - 1) * k + i] + tr + em(s, n) + ws.beta[s * k + n]
                            - log_z)
                            .exp();
                        let onehot = f64::from(u8::from(g(s - 1) == i && g(s) == n));
                        dp[i * k + n] += (scale * (edge - onehot)) as f32;
                    }
                }
            }
        }
        Ok(total)
    }

    /// The most probable allowed tag sequence of each row (Viterbi), written into `out[T, B]`
    /// at real steps (padding steps are left as they are).
    ///
    /// # Errors
    /// [`Error::Shape`] for buffers that do not fit.
    pub fn viterbi(
        &self,
        params: &[f32],
        e: &[f32],
        lens: &[usize],
        t: usize,
        out: &mut [u32],
        ws: &mut CrfWorkspace,
    ) -> Result<()> {
        self.check(params, e, lens, t)?;
        let (b, k) = (lens.len(), self.k);
        if out.len() != t * b {
            return Err(Error::Shape(format!(
                "tags out: {} values, need {}",
                out.len(),
                t * b
            )));
        }
        let p: Vec<f64> = params.iter().map(|&v| v as f64).collect();
        for (j, &len) in lens.iter().enumerate() {
            let em = |s: usize, tag: usize| e[(s * b + j) * k + tag] as f64;
            ws.alpha.clear();
            ws.alpha.resize(len * k, f64::NEG_INFINITY);
            ws.back.clear();
            ws.back.resize(len * k, 0);
            for tag in 0..k {
                ws.alpha[tag] = self.start(&p, tag) + em(0, tag);
            }
            for s in 1..len {
                for tag in 0..k {
                    let (mut best, mut arg) = (f64::NEG_INFINITY, 0);
                    for i in 0..k {
                        let v = ws.alpha[(s - 1) * k + i] + self.trans(&p, i, tag);
                        if v > best {
                            (best, arg) = (v, i);
                        }
                    }
                    ws.alpha[s * k + tag] = best + em(s, tag);
                    ws.back[s * k + tag] = arg as u32;
                }
            }
            ws.tmp.clear();
            ws.tmp
                .extend((0..k).map(|tag| ws.alpha[(len - 1) * k + tag] + self.end(&p, tag)));
            let mut tag = (0..k).fold(0, |a, c| if ws.tmp[c] > ws.tmp[a] { c } else { a });
            for s in (0..len).rev() {
                out[s * b + j] = tag as u32;
                tag = ws.back[s * k + tag] as usize;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dropout::rng_from_seed;
    use rand::RngExt;

    /// Every tag sequence of length `len` over `k` tags.
    fn all_sequences(k: usize, len: usize) -> Vec<Vec<usize>> {
        let mut out = vec![vec![]];
        for _ in 0..len {
            out = out
                .into_iter()
                .flat_map(|s| {
                    (0..k).map(move |t| {
                        let mut s = s.clone();
                        s.push(t);
                        s
                    })
                })
                .collect();
        }
        out
    }

    /// The score of one sequence by the definition, `None` when the constraints forbid it.
    fn score(crf: &Crf, p: &[f32], e: &[f32], b: usize, j: usize, seq: &[usize]) -> Option<f64> {
        let (k, c) = (crf.k, &crf.constraints);
        let len = seq.len();
        if !c.start[seq[0]] || !c.end[seq[len - 1]] {
            return None;
        }
        let mut s = p[k * k + seq[0]] as f64 + p[k * k + k + seq[len - 1]] as f64;
        for (t, &tag) in seq.iter().enumerate() {
            s += e[(t * b + j) * k + tag] as f64;
            if t > 0 {
                if !c.transitions[seq[t - 1] * k + tag] {
                    return None;
                }
                s += p[seq[t - 1] * k + tag] as f64;
            }
        }
        Some(s)
    }

    fn setup(k: usize, t: usize, b: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let mut rng = rng_from_seed(seed);
        let p = (0..k * k + 2 * k)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let e = (0..t * b * k)
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        (p, e)
    }

    /// IOB2-like constraints over tags O, B, I: I never starts nor follows O.
    fn iob() -> Constraints {
        let mut c = Constraints::none(3);
        c.start[2] = false;
        c.transitions[2] = false; // O → I
        c
    }

    #[test]
    fn log_partition_and_viterbi_match_brute_force() {
        for (constraints, seed) in [(Constraints::none(3), 1), (iob(), 2)] {
            let crf = Crf::new(3, constraints).unwrap();
            let (t, lens) = (4, vec![4, 1, 3]);
            let b = lens.len();
            let (p, e) = setup(3, t, b, seed);
            let mut y = vec![0u32; t * b];
            let mut want_nll = 0.0;
            let mut want_best = Vec::new();
            for (j, &len) in lens.iter().enumerate() {
                // Every allowed sequence with its score, by enumeration.
                let all = all_sequences(3, len);
                let scored: Vec<(f64, &Vec<usize>)> = all
                    .iter()
                    .filter_map(|s| score(&crf, &p, &e, b, j, s).map(|v| (v, s)))
                    .collect();
                let log_z = log_sum_exp(scored.iter().map(|x| x.0));
                let (gold_score, gold) = scored[scored.len() / 2];
                for (s, &tag) in gold.iter().enumerate() {
                    y[s * b + j] = tag as u32;
                }
                want_nll += log_z - gold_score;
                let top = scored.iter().max_by(|a, c| a.0.total_cmp(&c.0)).unwrap();
                want_best.push(top.1.clone());
            }
            let mut ws = CrfWorkspace::default();
            let nll = crf.nll(&p, &e, &y, &lens, t, None, &mut ws).unwrap();
            assert!((nll - want_nll).abs() < 1e-9, "{nll} vs {want_nll}");
            let mut best = vec![0u32; t * b];
            crf.viterbi(&p, &e, &lens, t, &mut best, &mut ws).unwrap();
            for (j, &len) in lens.iter().enumerate() {
                let got: Vec<usize> = (0..len).map(|s| best[s * b + j] as usize).collect();
                assert_eq!(got, want_best[j], "row {j}");
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let crf = Crf::new(3, iob()).unwrap();
        let (t, lens) = (4, vec![4, 2, 3]);
        let b = lens.len();
        let (mut p, mut e) = setup(3, t, b, 5);
        // Allowed gold sequences: O B I I / B O / B I O.
        let gold = [[0u32, 1, 2, 2], [1, 0, 0, 0], [1, 2, 0, 0]];
        let mut y = vec![0u32; t * b];
        for (j, g) in gold.iter().enumerate() {
            for s in 0..t {
                y[s * b + j] = g[s];
            }
        }
        let mut ws = CrfWorkspace::default();
        let (mut de, mut dp) = (vec![0.0f32; e.len()], vec![0.0f32; p.len()]);
        crf.nll(&p, &e, &y, &lens, t, Some((&mut de, &mut dp, 0.5)), &mut ws)
            .unwrap();
        let eps = 1e-3;
        let mut f =
            |p: &[f32], e: &[f32]| 0.5 * crf.nll(p, e, &y, &lens, t, None, &mut ws).unwrap();
        for i in 0..p.len() {
            let keep = p[i];
            p[i] = keep + eps;
            let up = f(&p, &e);
            p[i] = keep - eps;
            let down = f(&p, &e);
            p[i] = keep;
            let fd = (up - down) / (2.0 * eps as f64);
            assert!(
                (fd - dp[i] as f64).abs() < 1e-3,
                "param {i}: {fd} vs {}",
                dp[i]
            );
        }
        for i in 0..e.len() {
            let keep = e[i];
            e[i] = keep + eps;
            let up = f(&p, &e);
            e[i] = keep - eps;
            let down = f(&p, &e);
            e[i] = keep;
            let fd = (up - down) / (2.0 * eps as f64);
            assert!(
                (fd - de[i] as f64).abs() < 1e-3,
                "emission {i}: {fd} vs {}",
                de[i]
            );
        }
        // Padding steps get no gradient.
        let (s, j) = (3, 1);
        assert!(de[(s * b + j) * 3..(s * b + j + 1) * 3]
            .iter()
            .all(|&v| v == 0.0));
    }

    #[test]
    fn forbidden_gold_sequences_and_bad_shapes_are_refused() {
        let crf = Crf::new(3, iob()).unwrap();
        let (p, e) = setup(3, 2, 1, 1);
        let mut ws = CrfWorkspace::default();
        // O → I is forbidden.
        let err = crf
            .nll(&p, &e, &[0, 2], &[2], 2, None, &mut ws)
            .unwrap_err();
        assert!(err.to_string().contains("forbid"), "{err}");
        assert!(crf.nll(&p, &e, &[0, 7], &[2], 2, None, &mut ws).is_err());
        assert!(crf
            .nll(&p[1..], &e, &[0, 1], &[2], 2, None, &mut ws)
            .is_err());
        assert!(crf.nll(&p, &e, &[0, 1], &[3], 2, None, &mut ws).is_err());
        assert!(Crf::new(3, Constraints::none(2)).is_err());
    }
}

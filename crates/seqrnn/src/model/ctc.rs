//! Connectionist temporal classification (Graves et al. 2006): the exact negative
//! log-likelihood of a label sequence under per-frame class scores, summed over every alignment
//! by the forward–backward algorithm in log space, its gradient with respect to the scores, and
//! decoding (greedy best path, and prefix beam search without a language model).
//!
//! Shapes (time-major, as the engine): unnormalised scores `x[T, B, C]`, row-major (the loss
//! takes the log-softmax over `C` itself); class [`BLANK`] (0) is the blank, classes `1..C` the
//! labels. Real lengths `lens[B]` (`0 ≤ len ≤ T`): frames `t ≥ len` are padding, never read, and
//! their gradient is left as it is. Targets are one slice per row, `targets[b]` the labels of
//! row `b` (each in `1..C`; empty is allowed and means "only blanks").
//!
//! An alignment of a target `l` is a path `π` of `len` classes that collapses to `l` once
//! repeats are merged and blanks dropped (`a a − b` → `a b`, `a − a` → `a a`); its probability
//! is `Π_t softmax(x_t)[π_t]` and the likelihood of `l` is the sum over its alignments. A row
//! has alignments exactly when `len ≥` [`min_frames`]`(l)`: one frame per label and a blank
//! between equal neighbours; other rows are refused ([`Ctc::check_targets`]).
//!
//! The sum runs over the extended sequence `l' = − l_1 − l_2 … − l_L −` of `S = 2L + 1`
//! states: a path at state `s` moves to `s`, `s + 1`, or `s + 2` when `l'_{s+2}` is a label
//! other than `l'_s` (no skipping a blank between equal labels). `α_t(s)` is the log-probability
//! of the frames up to `t` ending in state `s`, `β_t(s)` that of the frames after `t` given state
//! `s` at `t`; the gradient of `−log p` with respect to `x_t[c]` is
//! `softmax(x_t)[c] − Σ_{s: l'_s = c} exp(α_t(s) + β_t(s) − log p)`.
//! Everything inside runs in `f64`; non-finite scores give a non-finite loss.

use std::cmp::Ordering;
use std::collections::hash_map::Entry;
use std::collections::HashMap;

use crate::error::{Error, Result};

/// The blank class, always class 0.
pub const BLANK: u32 = 0;

/// The fewest frames that can align `target`: its length plus one blank between each pair of
/// equal neighbours (`[1, 1]` needs 3 frames, `1 − 1`; the empty target needs none).
pub fn min_frames(target: &[u32]) -> usize {
    target.len() + target.windows(2).filter(|w| w[0] == w[1]).count()
}

/// `log(exp(a) + exp(b))`, exact at `−∞` and propagating NaN.
fn lse2(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + (-(a - b).abs()).exp().ln_1p()
}

/// `out = log softmax(x)` of one frame, in `f64`.
fn log_softmax_into(x: &[f32], out: &mut [f64]) {
    let m = x
        .iter()
        .fold(f64::NEG_INFINITY, |a, &v| a.max(f64::from(v)));
    let lse = m + x
        .iter()
        .map(|&v| (f64::from(v) - m).exp())
        .sum::<f64>()
        .ln();
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f64::from(v) - lse;
    }
}

/// The log-softmax of one frame of scores: `out[c] = x[c] − log Σ_k exp(x[k])`, in `f64`.
///
/// # Errors
/// [`Error::Shape`] when `out` is not as long as `x`.
pub fn log_softmax(x: &[f32], out: &mut [f64]) -> Result<()> {
    if x.len() != out.len() {
        return Err(Error::Shape(format!(
            "log-softmax: {} scores into {} values",
            x.len(),
            out.len()
        )));
    }
    log_softmax_into(x, out);
    Ok(())
}

/// Whether state `s` of the extended sequence can be entered from `s − 2`.
fn skips(ext: &[u32], s: usize) -> bool {
    s >= 2 && ext[s] != BLANK && ext[s] != ext[s - 2]
}

/// Fills `alpha[len, S]` (log space) and returns `log p` of the target; `len ≥ 1`.
fn forward(logp: &[f64], ext: &[u32], len: usize, c: usize, alpha: &mut Vec<f64>) -> f64 {
    let n = ext.len();
    alpha.clear();
    alpha.resize(len * n, f64::NEG_INFINITY);
    alpha[0] = logp[ext[0] as usize];
    if n > 1 {
        alpha[1] = logp[ext[1] as usize];
    }
    for t in 1..len {
        let (prev, cur) = alpha.split_at_mut(t * n);
        let prev = &prev[(t - 1) * n..];
        let lp = &logp[t * c..(t + 1) * c];
        for (s, out) in cur[..n].iter_mut().enumerate() {
            let mut a = prev[s];
            if s >= 1 {
                a = lse2(a, prev[s - 1]);
            }
            if skips(ext, s) {
                a = lse2(a, prev[s - 2]);
            }
            *out = a + lp[ext[s] as usize];
        }
    }
    let last = &alpha[(len - 1) * n..];
    match n {
        1 => last[0],
        _ => lse2(last[n - 1], last[n - 2]),
    }
}

/// Fills `beta[len, S]` (log space, the frames after `t`); `len ≥ 1`.
fn backward(logp: &[f64], ext: &[u32], len: usize, c: usize, beta: &mut Vec<f64>) {
    let n = ext.len();
    beta.clear();
    beta.resize(len * n, f64::NEG_INFINITY);
    beta[len * n - 1] = 0.0;
    if n > 1 {
        beta[len * n - 2] = 0.0;
    }
    for t in (0..len - 1).rev() {
        let (cur, next) = beta.split_at_mut((t + 1) * n);
        let lp = &logp[(t + 1) * c..(t + 2) * c];
        let step = |s: usize| next[s] + lp[ext[s] as usize];
        for (s, out) in cur[t * n..].iter_mut().enumerate() {
            let mut v = step(s);
            if s + 1 < n {
                v = lse2(v, step(s + 1));
            }
            if s + 2 < n && skips(ext, s + 2) {
                v = lse2(v, step(s + 2));
            }
            *out = v;
        }
    }
}

/// How the gradient of each row's loss is scaled before it is accumulated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GradScale<'a> {
    /// The same factor for every row (`1/B` for a batch mean).
    Uniform(f32),
    /// One factor per row, `[B]` (`1/(B·len(target_b))` for PyTorch's `reduction='mean'`).
    PerRow(&'a [f32]),
}

impl GradScale<'_> {
    fn of(&self, row: usize) -> f64 {
        match self {
            GradScale::Uniform(s) => f64::from(*s),
            GradScale::PerRow(s) => f64::from(s[row]),
        }
    }
}

/// A node of the prefix trie of the beam search: a prefix is its path from the root.
#[derive(Clone, Copy, Debug)]
struct Node {
    parent: u32,
    /// The last label of the prefix ([`BLANK`] at the root, the empty prefix).
    label: u32,
    depth: u32,
    /// The prefix's place in the [`Lexicon`] of a constrained search (its node for the word
    /// being spelled; 0 between words); unused otherwise.
    lex: u32,
}

/// The words a constrained beam search may write: a trie of label sequences, and the label
/// that separates words (the space). A prefix survives only while every word it finished is in
/// the lexicon and the word it is spelling begins one; the result ends on a whole word.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lexicon {
    /// `(node, label) → child`; node 0 is the root (no letter yet).
    next: HashMap<(u32, u32), u32>,
    /// Whether a node ends a word.
    word_end: Vec<bool>,
    separator: Option<u32>,
}

impl Lexicon {
    /// The lexicon of `words` (each a non-empty label sequence without the separator), words
    /// separated by `separator` (`None`: one word per utterance).
    pub fn new<'a>(words: impl IntoIterator<Item = &'a [u32]>, separator: Option<u32>) -> Self {
        let mut lex = Lexicon {
            next: HashMap::new(),
            word_end: vec![false],
            separator,
        };
        for w in words {
            if w.is_empty() || w.iter().any(|&l| Some(l) == separator || l == BLANK) {
                continue;
            }
            let mut node = 0u32;
            for &l in w {
                let fresh = lex.word_end.len() as u32;
                node = *lex.next.entry((node, l)).or_insert(fresh);
                if node == fresh {
                    lex.word_end.push(false);
                }
            }
            lex.word_end[node as usize] = true;
        }
        lex
    }

    /// Words in the lexicon.
    pub fn len(&self) -> usize {
        self.word_end.iter().filter(|&&e| e).count()
    }

    /// Whether it holds no word.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The state after writing `label` in state `state`, or `None` when no word allows it.
    fn step(&self, state: u32, label: u32) -> Option<u32> {
        if Some(label) == self.separator {
            return (state != 0 && self.word_end[state as usize]).then_some(0);
        }
        self.next.get(&(state, label)).copied()
    }

    /// Whether a prefix in `state` may end the utterance.
    fn complete(&self, state: u32) -> bool {
        self.word_end[state as usize]
    }
}

/// A beam entry: a prefix with the log-probabilities of its paths ending in a blank and in its
/// last label, and their log-sum (for sorting).
#[derive(Clone, Copy, Debug)]
struct Hyp {
    node: u32,
    blank: f64,
    label: f64,
    total: f64,
}

/// Buffers of the loss and of the beam search, reused across calls (nothing is allocated once
/// they have grown to the largest row).
#[derive(Clone, Debug, Default)]
pub struct CtcWorkspace {
    /// Per-frame log-softmax `[len, C]` of one row.
    logp: Vec<f64>,
    /// Extended label sequence `[S]`.
    ext: Vec<u32>,
    /// `alpha[len, S]`, `beta[len, S]` of one row (log space).
    alpha: Vec<f64>,
    beta: Vec<f64>,
    /// Scratch `[C]`: a frame's gradient, or its log-softmax in the beam search.
    tmp: Vec<f64>,
    /// Per-row losses of the last [`Ctc::nll`].
    losses: Vec<f64>,
    /// Prefix trie of the beam search; node 0 is the empty prefix.
    nodes: Vec<Node>,
    children: HashMap<(u32, u32), u32>,
    /// The beam, best first, and the candidates of the next frame with their index by node.
    beam: Vec<Hyp>,
    cand: Vec<Hyp>,
    cand_at: HashMap<u32, usize>,
}

impl CtcWorkspace {
    /// The negative log-likelihood of each row, `[B]`, from the last [`Ctc::nll`] call.
    pub fn losses(&self) -> &[f64] {
        &self.losses
    }

    fn reset_beam(&mut self) {
        self.nodes.clear();
        self.nodes.push(Node {
            parent: 0,
            label: BLANK,
            depth: 0,
            lex: 0,
        });
        self.children.clear();
        self.beam.clear();
        self.beam.push(Hyp {
            node: 0,
            blank: 0.0,
            label: f64::NEG_INFINITY,
            total: 0.0,
        });
    }

    /// The trie node of `parent` extended by `label`, made on first use (with its lexicon
    /// state `lex`).
    fn child(&mut self, parent: u32, label: u32, lex: u32) -> u32 {
        let next = self.nodes.len() as u32;
        let id = *self.children.entry((parent, label)).or_insert(next);
        if id == next {
            let depth = self.nodes[parent as usize].depth + 1;
            self.nodes.push(Node {
                parent,
                label,
                depth,
                lex,
            });
        }
        id
    }

    /// Adds path mass to the candidate `node`.
    fn add(&mut self, node: u32, blank: f64, label: f64) {
        match self.cand_at.entry(node) {
            Entry::Occupied(e) => {
                let h = &mut self.cand[*e.get()];
                h.blank = lse2(h.blank, blank);
                h.label = lse2(h.label, label);
            }
            Entry::Vacant(e) => {
                e.insert(self.cand.len());
                self.cand.push(Hyp {
                    node,
                    blank,
                    label,
                    total: 0.0,
                });
            }
        }
    }

    /// The candidates after one more frame whose log-softmax is in `tmp[C]`; with a lexicon,
    /// only the extensions it allows.
    fn extend(&mut self, c: usize, lexicon: Option<&Lexicon>) {
        self.cand.clear();
        self.cand_at.clear();
        for i in 0..self.beam.len() {
            let h = self.beam[i];
            let last = self.nodes[h.node as usize].label;
            // A blank, or the last label repeated, keeps the prefix.
            self.add(
                h.node,
                h.total + self.tmp[BLANK as usize],
                f64::NEG_INFINITY,
            );
            if h.node != 0 {
                self.add(h.node, f64::NEG_INFINITY, h.label + self.tmp[last as usize]);
            }
            let state = self.nodes[h.node as usize].lex;
            for l in 1..c as u32 {
                let lex = match lexicon {
                    Some(x) => match x.step(state, l) {
                        Some(next) => next,
                        None => continue,
                    },
                    None => 0,
                };
                let child = self.child(h.node, l, lex);
                // The same label again only extends the prefix after a blank.
                let from = if l == last { h.blank } else { h.total };
                self.add(child, f64::NEG_INFINITY, from + self.tmp[l as usize]);
            }
        }
    }

    /// Keeps the `beam` best candidates as the new beam, best first.
    fn prune(&mut self, beam: usize) {
        for h in &mut self.cand {
            h.total = lse2(h.blank, h.label);
        }
        let nodes = &self.nodes;
        self.cand.sort_unstable_by(|a, b| {
            b.total
                .total_cmp(&a.total)
                .then_with(|| prefix_order(nodes, a.node, b.node))
        });
        self.cand.truncate(beam);
        std::mem::swap(&mut self.beam, &mut self.cand);
    }

    /// The labels of the prefix at `node`.
    fn labels(&self, mut node: u32) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.nodes[node as usize].depth as usize);
        while node != 0 {
            let n = self.nodes[node as usize];
            out.push(n.label);
            node = n.parent;
        }
        out.reverse();
        out
    }
}

/// Shorter prefixes first, then lexicographic: the tie-break of the beam search.
fn prefix_order(nodes: &[Node], mut a: u32, mut b: u32) -> Ordering {
    let (na, nb) = (nodes[a as usize], nodes[b as usize]);
    if na.depth != nb.depth || a == b {
        return na.depth.cmp(&nb.depth);
    }
    while nodes[a as usize].parent != nodes[b as usize].parent {
        a = nodes[a as usize].parent;
        b = nodes[b as usize].parent;
    }
    nodes[a as usize].label.cmp(&nodes[b as usize].label)
}

/// CTC over `C` classes, the blank included. It holds no parameters: the scores come from the
/// layer below.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ctc {
    c: usize,
}

impl Ctc {
    /// CTC over `classes ≥ 2` classes: the blank and `classes − 1` labels.
    ///
    /// # Errors
    /// [`Error::Config`] for fewer than two classes or more than `u32` can number.
    pub fn new(classes: usize) -> Result<Self> {
        if classes < 2 || classes > u32::MAX as usize {
            return Err(Error::Config(format!(
                "CTC needs the blank and at least one label (2 to 2^32 − 1 classes), not {classes}"
            )));
        }
        Ok(Ctc { c: classes })
    }

    /// Number of classes `C`, the blank included.
    pub fn classes(&self) -> usize {
        self.c
    }

    /// Refuses targets that cannot be scored: a label not below `C` ([`Error::Shape`]), the
    /// blank used as a label, or a row too short to align its target (fewer than
    /// [`min_frames`] frames) ([`Error::Config`]); each message names the row.
    ///
    /// # Errors
    /// As above, and [`Error::Shape`] when `targets` and `lens` differ in length.
    pub fn check_targets(&self, targets: &[&[u32]], lens: &[usize]) -> Result<()> {
        if targets.len() != lens.len() {
            return Err(Error::Shape(format!(
                "CTC: {} targets for {} rows",
                targets.len(),
                lens.len()
            )));
        }
        for (row, (target, &len)) in targets.iter().zip(lens).enumerate() {
            if let Some(&l) = target.iter().find(|&&l| l as usize >= self.c) {
                return Err(Error::Shape(format!(
                    "CTC target of row {row}: label {l} is not below the {} classes",
                    self.c
                )));
            }
            if target.contains(&BLANK) {
                return Err(Error::Config(format!(
                    "CTC target of row {row} holds the blank (class {BLANK}), which is no label"
                )));
            }
            let need = min_frames(target);
            if len < need {
                return Err(Error::Config(format!(
                    "CTC row {row}: {len} frames cannot align its {} labels, which need at least \
                     {need} (one frame per label and a blank between equal neighbours)",
                    target.len()
                )));
            }
        }
        Ok(())
    }

    fn check(&self, x: &[f32], t: usize, lens: &[usize], targets: &[&[u32]]) -> Result<()> {
        let (b, c) = (lens.len(), self.c);
        if x.len() != t * b * c || lens.iter().any(|&l| l > t) {
            return Err(Error::Shape(format!(
                "CTC scores: {} values for T={t}, B={b}, C={c}, lengths in 0..=T",
                x.len()
            )));
        }
        self.check_targets(targets, lens)
    }

    fn check_grad(&self, n: usize, b: usize, dx: &[f32], scale: &GradScale<'_>) -> Result<()> {
        if dx.len() != n {
            return Err(Error::Shape(format!(
                "CTC score gradient: {} values, need {n}",
                dx.len()
            )));
        }
        match scale {
            GradScale::PerRow(s) if s.len() != b => Err(Error::Shape(format!(
                "CTC gradient scales: {} values for {b} rows",
                s.len()
            ))),
            _ => Ok(()),
        }
    }

    /// Negative log-likelihood of each row's target, summed over the batch (the per-row
    /// values stay in [`CtcWorkspace::losses`]); with `grad = (dx[T, B, C], scale)`, also
    /// accumulates (`+=`) `scale_b ·` the gradient of row `b`'s loss with respect to `x` into
    /// `dx` (written only at real frames).
    ///
    /// # Errors
    /// [`Error::Shape`] for buffers that do not fit or labels not below `C`;
    /// [`Error::Config`] for a blank in a target or a row too short for its target.
    pub fn nll(
        &self,
        x: &[f32],
        t: usize,
        lens: &[usize],
        targets: &[&[u32]],
        mut grad: Option<(&mut [f32], GradScale<'_>)>,
        ws: &mut CtcWorkspace,
    ) -> Result<f64> {
        self.check(x, t, lens, targets)?;
        let b = lens.len();
        if let Some((dx, scale)) = &grad {
            self.check_grad(x.len(), b, dx, scale)?;
        }
        ws.losses.clear();
        for (row, (&len, target)) in lens.iter().zip(targets).enumerate() {
            let loss = self.row_nll(x, b, row, len, target, ws);
            ws.losses.push(loss);
            if let Some((dx, scale)) = grad.as_mut() {
                self.row_grad(dx, b, row, len, loss, scale.of(row), ws);
            }
        }
        Ok(ws.losses.iter().sum())
    }

    /// `−log p` of one row, leaving its log-softmax, extended sequence and `alpha` in `ws`.
    fn row_nll(
        &self,
        x: &[f32],
        b: usize,
        row: usize,
        len: usize,
        target: &[u32],
        ws: &mut CtcWorkspace,
    ) -> f64 {
        if len == 0 {
            // The target is empty (checked): the empty path is the only one.
            return 0.0;
        }
        let c = self.c;
        ws.logp.clear();
        ws.logp.resize(len * c, 0.0);
        for (s, out) in ws.logp.chunks_exact_mut(c).enumerate() {
            let at = (s * b + row) * c;
            log_softmax_into(&x[at..at + c], out);
        }
        ws.ext.clear();
        ws.ext.push(BLANK);
        for &l in target {
            ws.ext.extend([l, BLANK]);
        }
        -forward(&ws.logp, &ws.ext, len, c, &mut ws.alpha)
    }

    /// Accumulates `scale ·` the gradient of one row's loss into `dx`, after [`Self::row_nll`].
    #[allow(clippy::too_many_arguments)]
    fn row_grad(
        &self,
        dx: &mut [f32],
        b: usize,
        row: usize,
        len: usize,
        loss: f64,
        scale: f64,
        ws: &mut CtcWorkspace,
    ) {
        if len == 0 {
            return;
        }
        let (c, n) = (self.c, ws.ext.len());
        backward(&ws.logp, &ws.ext, len, c, &mut ws.beta);
        for s in 0..len {
            ws.tmp.clear();
            ws.tmp
                .extend(ws.logp[s * c..(s + 1) * c].iter().map(|v| v.exp()));
            let (alpha, beta) = (&ws.alpha[s * n..(s + 1) * n], &ws.beta[s * n..(s + 1) * n]);
            for (k, &l) in ws.ext.iter().enumerate() {
                ws.tmp[l as usize] -= (alpha[k] + beta[k] + loss).exp();
            }
            let at = (s * b + row) * c;
            for (d, &g) in dx[at..at + c].iter_mut().zip(&ws.tmp) {
                *d += (scale * g) as f32;
            }
        }
    }

    /// Copies row `row` of `x[T, B, C]` into `out[T, C]`, the layout the decoders read.
    ///
    /// # Errors
    /// [`Error::Shape`] when `x` is not `[T, B, C]` or `row ≥ B`.
    pub fn copy_row(
        &self,
        x: &[f32],
        t: usize,
        b: usize,
        row: usize,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let c = self.c;
        if x.len() != t * b * c || row >= b {
            return Err(Error::Shape(format!(
                "CTC scores: {} values for T={t}, B={b}, C={c}, row {row}",
                x.len()
            )));
        }
        out.clear();
        for s in 0..t {
            let at = (s * b + row) * c;
            out.extend_from_slice(&x[at..at + c]);
        }
        Ok(())
    }

    fn check_row(&self, x: &[f32], len: usize) -> Result<()> {
        if !x.len().is_multiple_of(self.c) || len * self.c > x.len() {
            return Err(Error::Shape(format!(
                "CTC row: {} values are not [T, {}] with T ≥ {len}",
                x.len(),
                self.c
            )));
        }
        Ok(())
    }

    /// Best-path decoding of one row `x[T, C]` (scores or log-probabilities) over its first
    /// `len` frames: the most likely class of each frame (the lowest on a tie), repeats merged,
    /// blanks dropped.
    ///
    /// # Errors
    /// [`Error::Shape`] when `x` is not `[T, C]` with `T ≥ len`.
    pub fn greedy(&self, x: &[f32], len: usize) -> Result<Vec<u32>> {
        self.check_row(x, len)?;
        let mut out = Vec::new();
        let mut prev = BLANK;
        for frame in x.chunks_exact(self.c).take(len) {
            let best = (1..frame.len()).fold(0, |a, k| if frame[k] > frame[a] { k } else { a });
            let best = best as u32;
            if best != BLANK && best != prev {
                out.push(best);
            }
            prev = best;
        }
        Ok(out)
    }

    /// Prefix beam search over the first `len` frames of one row `x[T, C]` (scores or
    /// log-probabilities: each frame is log-softmax-normalised, which leaves log-probabilities
    /// as they are), without a language model. Each prefix keeps the log-probability of its
    /// paths ending in a blank and in its last label; after each frame the `beam` most probable
    /// prefixes survive (ties: shorter, then lexicographically smaller, first). Returns the best
    /// labelling and its log-probability as the beam summed it (exact when no prefix was ever
    /// pruned, a lower bound otherwise).
    ///
    /// # Errors
    /// [`Error::Shape`] when `x` is not `[T, C]` with `T ≥ len`; [`Error::Config`] for
    /// `beam = 0`.
    pub fn prefix_beam_search(
        &self,
        x: &[f32],
        len: usize,
        beam: usize,
        ws: &mut CtcWorkspace,
    ) -> Result<(Vec<u32>, f64)> {
        self.search(x, len, beam, None, ws)
    }

    /// [`Ctc::prefix_beam_search`] that writes only words of `lexicon`: extensions it does not
    /// allow are never made, and the best prefix that ends on a whole word (or the empty one)
    /// wins. When no surviving prefix ends on a word, the best prefix is returned as it is.
    ///
    /// # Errors
    /// As [`Ctc::prefix_beam_search`].
    pub fn lexicon_beam_search(
        &self,
        x: &[f32],
        len: usize,
        beam: usize,
        lexicon: &Lexicon,
        ws: &mut CtcWorkspace,
    ) -> Result<(Vec<u32>, f64)> {
        self.search(x, len, beam, Some(lexicon), ws)
    }

    fn search(
        &self,
        x: &[f32],
        len: usize,
        beam: usize,
        lexicon: Option<&Lexicon>,
        ws: &mut CtcWorkspace,
    ) -> Result<(Vec<u32>, f64)> {
        self.check_row(x, len)?;
        if beam == 0 {
            return Err(Error::Config(
                "CTC beam search needs a beam of at least 1".into(),
            ));
        }
        ws.reset_beam();
        ws.tmp.clear();
        ws.tmp.resize(self.c, 0.0);
        for frame in x.chunks_exact(self.c).take(len) {
            log_softmax_into(frame, &mut ws.tmp);
            ws.extend(self.c, lexicon);
            ws.prune(beam);
        }
        let whole = |h: &&Hyp| {
            let node = &ws.nodes[h.node as usize];
            lexicon.is_none_or(|x| h.node == 0 || x.complete(node.lex))
        };
        let best = *ws.beam.iter().find(whole).unwrap_or(&ws.beam[0]);
        Ok((ws.labels(best.node), best.total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dropout::rng_from_seed;
    use rand::RngExt;
    use std::collections::BTreeMap;

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = rng_from_seed(seed);
        (0..n).map(|_| rng.random_range(-2.0..2.0)).collect()
    }

    /// Merges repeats and drops blanks.
    fn collapse(path: &[u32]) -> Vec<u32> {
        let mut out = Vec::new();
        let mut prev = BLANK;
        for &p in path {
            if p != BLANK && p != prev {
                out.push(p);
            }
            prev = p;
        }
        out
    }

    /// Random scores `x[len, C]` sharpened by 1.5 (sharper scores make distinct winners of
    /// greedy and beam search likelier), the log-probability of each of their labellings, and
    /// the most probable labelling that `keep` accepts with its log-probability.
    #[allow(clippy::type_complexity)]
    fn sharp_scores(
        len: usize,
        c: usize,
        seed: u64,
        keep: impl Fn(&[u32]) -> bool,
    ) -> (Vec<f32>, BTreeMap<Vec<u32>, f64>, (Vec<u32>, f64)) {
        let x: Vec<f32> = random(len * c, seed).iter().map(|v| 1.5 * v).collect();
        let all = all_labellings(&x, 1, c, 0, len);
        let best = all
            .iter()
            .filter(|(l, _)| keep(l))
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(l, &p)| (l.clone(), p))
            .unwrap();
        (x, all, best)
    }

    /// Log-probability of every labelling of row `row` of `x[T, B, C]`, by enumerating all
    /// `C^len` paths.
    fn all_labellings(
        x: &[f32],
        b: usize,
        c: usize,
        row: usize,
        len: usize,
    ) -> BTreeMap<Vec<u32>, f64> {
        let mut logp = vec![0.0; len * c];
        for s in 0..len {
            let at = (s * b + row) * c;
            let frame: Vec<f64> = x[at..at + c].iter().map(|&v| v as f64).collect();
            let lse = frame.iter().map(|v| v.exp()).sum::<f64>().ln();
            for k in 0..c {
                logp[s * c + k] = frame[k] - lse;
            }
        }
        let mut out = BTreeMap::new();
        for code in 0..c.pow(len as u32) {
            let path: Vec<u32> = (0..len)
                .map(|s| (code / c.pow(s as u32) % c) as u32)
                .collect();
            let lp: f64 = path
                .iter()
                .enumerate()
                .map(|(s, &k)| logp[s * c + k as usize])
                .sum();
            let e = out.entry(collapse(&path)).or_insert(f64::NEG_INFINITY);
            *e = lse2(*e, lp);
        }
        out
    }

    #[test]
    fn min_frames_counts_blanks_between_equal_labels() {
        assert_eq!(min_frames(&[]), 0);
        assert_eq!(min_frames(&[2]), 1);
        assert_eq!(min_frames(&[1, 2]), 2);
        assert_eq!(min_frames(&[1, 1]), 3);
        assert_eq!(min_frames(&[1, 1, 1]), 5);
        assert_eq!(min_frames(&[1, 2, 1]), 3);
        assert_eq!(min_frames(&[3, 1, 1, 2, 2]), 7);
    }

    #[test]
    fn loss_matches_brute_force_enumeration() {
        // Rows of different lengths (padding after), repeated labels, the empty target, a
        // target that fills its row exactly, and a row of no frames.
        type Rows = Vec<(usize, Vec<u32>)>;
        let cases: [(usize, Rows); 2] = [
            (
                4,
                vec![
                    (5, vec![1, 2]),
                    (4, vec![1, 1]),
                    (3, vec![]),
                    (5, vec![3, 1, 3]),
                    (5, vec![2, 2, 2]),
                    (0, vec![]),
                    (1, vec![3]),
                ],
            ),
            (
                3,
                vec![
                    (4, vec![2]),
                    (5, vec![1, 2, 1]),
                    (2, vec![1]),
                    (3, vec![1, 1]),
                ],
            ),
        ];
        for (seed, (c, rows)) in cases.into_iter().enumerate() {
            let t = 5;
            let b = rows.len();
            let lens: Vec<usize> = rows.iter().map(|r| r.0).collect();
            let targets: Vec<&[u32]> = rows.iter().map(|r| r.1.as_slice()).collect();
            let x = random(t * b * c, seed as u64 + 10);
            let ctc = Ctc::new(c).unwrap();
            let mut ws = CtcWorkspace::default();
            let total = ctc.nll(&x, t, &lens, &targets, None, &mut ws).unwrap();
            let mut want_total = 0.0;
            for (row, (len, target)) in rows.iter().enumerate() {
                let want = -all_labellings(&x, b, c, row, *len)[target];
                assert!(
                    (ws.losses()[row] - want).abs() < 1e-10,
                    "C={c} row {row}: {} vs {want}",
                    ws.losses()[row]
                );
                want_total += want;
            }
            assert!((total - want_total).abs() < 1e-9, "{total} vs {want_total}");
        }
    }

    #[test]
    fn known_values() {
        let ctc = Ctc::new(3).unwrap();
        let mut ws = CtcWorkspace::default();
        // One frame, target [1]: −log softmax(x)[1].
        let x = [0.5f32, -1.0, 2.0];
        let lse = x.iter().map(|&v| (v as f64).exp()).sum::<f64>().ln();
        let nll = ctc.nll(&x, 1, &[1], &[&[1]], None, &mut ws).unwrap();
        assert!((nll - (lse + 1.0)).abs() < 1e-12, "{nll}");
        // Its gradient is softmax − onehot.
        let mut dx = [0.0f32; 3];
        ctc.nll(
            &x,
            1,
            &[1],
            &[&[1]],
            Some((&mut dx, GradScale::Uniform(1.0))),
            &mut ws,
        )
        .unwrap();
        for k in 0..3 {
            let want = (x[k] as f64 - lse).exp() - f64::from(u8::from(k == 1));
            assert!(
                (dx[k] as f64 - want).abs() < 1e-6,
                "{k}: {} vs {want}",
                dx[k]
            );
        }
        // The empty target on one frame: −log softmax(x)[blank].
        let nll = ctc.nll(&x, 1, &[1], &[&[]], None, &mut ws).unwrap();
        assert!((nll - (lse - 0.5)).abs() < 1e-12, "{nll}");
        // Uniform scores: p = (number of alignments) / C^T. Target [1] on two frames has
        // three (1 1, − 1, 1 −); [1, 1] on three frames only 1 − 1.
        let x = [0.0f32; 9];
        let nll = ctc.nll(&x[..6], 2, &[2], &[&[1]], None, &mut ws).unwrap();
        assert!((nll - 3f64.ln()).abs() < 1e-12, "{nll}");
        let nll = ctc.nll(&x, 3, &[3], &[&[1, 1]], None, &mut ws).unwrap();
        assert!((nll - 27f64.ln()).abs() < 1e-12, "{nll}");
        // No frames, no labels: probability one.
        assert_eq!(ctc.nll(&[], 0, &[0], &[&[]], None, &mut ws).unwrap(), 0.0);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let (t, c) = (5, 4);
        let lens = [5, 3, 4, 2];
        let targets: [&[u32]; 4] = [&[1, 2, 2], &[3], &[1, 1], &[]];
        let b = lens.len();
        let scale = [0.5f32, -1.25, 2.0, 0.75];
        let ctc = Ctc::new(c).unwrap();
        let mut ws = CtcWorkspace::default();
        let mut x = random(t * b * c, 3);
        // Accumulation: start from values that must be kept.
        let init: Vec<f32> = (0..x.len()).map(|i| (i % 7) as f32 - 3.0).collect();
        let mut dx = init.clone();
        ctc.nll(
            &x,
            t,
            &lens,
            &targets,
            Some((&mut dx, GradScale::PerRow(&scale))),
            &mut ws,
        )
        .unwrap();
        let mut f = |x: &[f32]| {
            ctc.nll(x, t, &lens, &targets, None, &mut ws).unwrap();
            ws.losses()
                .iter()
                .zip(&scale)
                .map(|(l, &s)| l * s as f64)
                .sum::<f64>()
        };
        let eps = 1e-3f32;
        for i in 0..x.len() {
            let (s, row) = (i / (b * c), i / c % b);
            let got = (dx[i] - init[i]) as f64;
            if s >= lens[row] {
                assert_eq!(dx[i], init[i], "padding {i} was written");
                continue;
            }
            let keep = x[i];
            x[i] = keep + eps;
            let (up, xu) = (f(&x), x[i] as f64);
            x[i] = keep - eps;
            let (down, xd) = (f(&x), x[i] as f64);
            x[i] = keep;
            let fd = (up - down) / (xu - xd);
            assert!(
                (fd - got).abs() < 1e-4,
                "x[{i}] (t={s}, row {row}): {fd} vs {got}"
            );
        }
        // Each real frame's gradient sums to zero (softmax and occupancy both sum to one).
        for s in 0..t {
            for row in 0..b {
                let at = (s * b + row) * c;
                let sum: f64 = (at..at + c).map(|i| (dx[i] - init[i]) as f64).sum();
                assert!(sum.abs() < 1e-5, "t={s}, row {row}: {sum}");
            }
        }
        // A uniform scale equals the per-row scale with equal entries.
        let (mut d1, mut d2) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()]);
        ctc.nll(
            &x,
            t,
            &lens,
            &targets,
            Some((&mut d1, GradScale::Uniform(0.3))),
            &mut ws,
        )
        .unwrap();
        let same = [0.3f32; 4];
        ctc.nll(
            &x,
            t,
            &lens,
            &targets,
            Some((&mut d2, GradScale::PerRow(&same))),
            &mut ws,
        )
        .unwrap();
        assert_eq!(d1, d2);
    }

    #[test]
    fn padding_is_never_read() {
        let (t, c) = (4, 3);
        let lens = [4, 2, 3];
        let targets: [&[u32]; 3] = [&[1, 2], &[2], &[1, 1]];
        let b = lens.len();
        let ctc = Ctc::new(c).unwrap();
        let mut ws = CtcWorkspace::default();
        let x = random(t * b * c, 4);
        let mut garbage = x.clone();
        for s in 0..t {
            for (row, &len) in lens.iter().enumerate() {
                if s >= len {
                    let at = (s * b + row) * c;
                    garbage[at..at + c].copy_from_slice(&[f32::NAN, 1e30, f32::NEG_INFINITY]);
                }
            }
        }
        let (mut d1, mut d2) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()]);
        let mut nll = |x: &[f32], d: &mut [f32]| {
            ctc.nll(
                x,
                t,
                &lens,
                &targets,
                Some((d, GradScale::Uniform(1.0))),
                &mut ws,
            )
            .unwrap()
        };
        let l1 = nll(&x, &mut d1);
        let l2 = nll(&garbage, &mut d2);
        assert_eq!(l1, l2);
        assert!(l1.is_finite());
        assert_eq!(d1, d2);
    }

    #[test]
    fn impossible_alignments_and_bad_targets_are_refused() {
        let ctc = Ctc::new(3).unwrap();
        let mut ws = CtcWorkspace::default();
        let (t, b) = (3, 2);
        let x = random(t * b * 3, 5);
        // Row 1: [1, 1] needs three frames, it has two.
        let err = ctc
            .nll(&x, t, &[3, 2], &[&[2], &[1, 1]], None, &mut ws)
            .unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("row 1") && msg.contains("2 frames") && msg.contains("at least 3"),
            "{msg}"
        );
        // More labels than frames.
        assert!(matches!(
            ctc.nll(&x, t, &[3, 1], &[&[2], &[1, 2]], None, &mut ws),
            Err(Error::Config(_))
        ));
        // A label not below C, and the blank as a label.
        let err = ctc
            .nll(&x, t, &[3, 3], &[&[3], &[1]], None, &mut ws)
            .unwrap_err();
        assert!(
            matches!(err, Error::Shape(_)) && err.to_string().contains("row 0"),
            "{err}"
        );
        let err = ctc
            .nll(&x, t, &[3, 3], &[&[1], &[0, 1]], None, &mut ws)
            .unwrap_err();
        assert!(
            matches!(err, Error::Config(_)) && err.to_string().contains("blank"),
            "{err}"
        );
        // Shapes.
        assert!(ctc
            .nll(&x[1..], t, &[3, 3], &[&[1], &[1]], None, &mut ws)
            .is_err());
        assert!(ctc
            .nll(&x, t, &[4, 3], &[&[1], &[1]], None, &mut ws)
            .is_err());
        assert!(ctc.nll(&x, t, &[3, 3], &[&[1]], None, &mut ws).is_err());
        let mut dx = vec![0.0f32; x.len() - 1];
        let grad = Some((dx.as_mut_slice(), GradScale::Uniform(1.0)));
        assert!(ctc
            .nll(&x, t, &[3, 3], &[&[1], &[1]], grad, &mut ws)
            .is_err());
        let mut dx = vec![0.0f32; x.len()];
        let grad = Some((dx.as_mut_slice(), GradScale::PerRow(&[1.0])));
        assert!(ctc
            .nll(&x, t, &[3, 3], &[&[1], &[1]], grad, &mut ws)
            .is_err());
        assert!(dx.iter().all(|&v| v == 0.0));
        assert!(Ctc::new(1).is_err());
        assert!(ctc.prefix_beam_search(&x[..9], 3, 0, &mut ws).is_err());
        assert!(ctc.greedy(&x[..9], 4).is_err());
        assert!(ctc.greedy(&x[..8], 2).is_err());
    }

    #[test]
    fn greedy_merges_repeats_and_drops_blanks() {
        let ctc = Ctc::new(3).unwrap();
        // Per-frame winners: 1 1 − 1 2 2 − −.
        let best = [1, 1, 0, 1, 2, 2, 0, 0];
        let x: Vec<f32> = best
            .iter()
            .flat_map(|&k| (0..3).map(move |c| if c == k { 2.0 } else { -1.0 }))
            .collect();
        assert_eq!(ctc.greedy(&x, 8).unwrap(), vec![1, 1, 2]);
        assert_eq!(ctc.greedy(&x, 5).unwrap(), vec![1, 1, 2]);
        assert_eq!(ctc.greedy(&x, 3).unwrap(), vec![1]);
        assert_eq!(ctc.greedy(&x, 0).unwrap(), Vec::<u32>::new());
        // A tie goes to the lowest class (here the blank).
        assert_eq!(ctc.greedy(&[1.0, 1.0, 0.0], 1).unwrap(), Vec::<u32>::new());
        // copy_row gathers one row of [T, B, C].
        let (t, b) = (8, 2);
        let mut batch = vec![0.0f32; t * b * 3];
        for s in 0..t {
            batch[(s * b + 1) * 3..(s * b + 2) * 3].copy_from_slice(&x[s * 3..(s + 1) * 3]);
        }
        let mut row = Vec::new();
        ctc.copy_row(&batch, t, b, 1, &mut row).unwrap();
        assert_eq!(row, x);
        assert!(ctc.copy_row(&batch, t, b, 2, &mut row).is_err());
    }

    #[test]
    fn beam_search_finds_the_most_probable_labelling() {
        let mut ws = CtcWorkspace::default();
        for seed in 0..40u64 {
            let (c, len) = if seed % 2 == 0 {
                (3, 1 + seed as usize % 5)
            } else {
                (4, 1 + seed as usize % 4)
            };
            let ctc = Ctc::new(c).unwrap();
            let (x, all, (want, want_lp)) = sharp_scores(len, c, 100 + seed, |_| true);
            // Every prefix fits in a beam of 128: the search is exact.
            let (got, lp) = ctc.prefix_beam_search(&x, len, 128, &mut ws).unwrap();
            assert_eq!(got, want, "seed {seed}");
            assert!(
                (lp - want_lp).abs() < 1e-10,
                "seed {seed}: {lp} vs {want_lp}"
            );
            // Beam 1: a valid labelling whose score is a lower bound of its probability.
            let (one, lp1) = ctc.prefix_beam_search(&x, len, 1, &mut ws).unwrap();
            assert!(
                one.iter().all(|&l| l != BLANK && (l as usize) < c),
                "seed {seed}: {one:?}"
            );
            assert!(min_frames(&one) <= len, "seed {seed}: {one:?}");
            assert!(
                lp1 <= all[&one] + 1e-12,
                "seed {seed}: {lp1} vs {}",
                all[&one]
            );
            // Log-probabilities give the same result as scores.
            let mut logp = vec![0.0f64; c];
            let lx: Vec<f32> = x
                .chunks_exact(c)
                .flat_map(|f| {
                    log_softmax(f, &mut logp).unwrap();
                    logp.iter().map(|&v| v as f32).collect::<Vec<_>>()
                })
                .collect();
            assert_eq!(
                ctc.prefix_beam_search(&lx, len, 128, &mut ws).unwrap().0,
                want
            );
        }
        // No frames: the empty labelling, probability one.
        let ctc = Ctc::new(3).unwrap();
        assert_eq!(
            ctc.prefix_beam_search(&[], 0, 4, &mut ws).unwrap(),
            (vec![], 0.0)
        );
    }

    #[test]
    fn lexicon_search_finds_the_most_probable_sequence_of_words() {
        // Letters 1 and 2, separator 3; the words "1 2" and "2".
        let lex = Lexicon::new([&[1u32, 2][..], &[2][..]], Some(3));
        assert_eq!(lex.len(), 2);
        let valid = |l: &[u32]| {
            l.is_empty()
                || l.split(|&x| x == 3)
                    .all(|w| w == [1, 2].as_slice() || w == [2].as_slice())
        };
        let (c, mut ws) = (4, CtcWorkspace::default());
        let ctc = Ctc::new(c).unwrap();
        let mut differs = 0;
        for seed in 0..40u64 {
            let len = 1 + seed as usize % 6;
            let (x, _, (want, want_lp)) = sharp_scores(len, c, 500 + seed, valid);
            let (got, lp) = ctc
                .lexicon_beam_search(&x, len, 256, &lex, &mut ws)
                .unwrap();
            assert_eq!(got, want, "seed {seed}");
            assert!(
                (lp - want_lp).abs() < 1e-10,
                "seed {seed}: {lp} vs {want_lp}"
            );
            let free = ctc.prefix_beam_search(&x, len, 256, &mut ws).unwrap().0;
            differs += usize::from(free != got);
        }
        assert!(differs > 5, "the lexicon changed only {differs} results");
        // One word per utterance without a separator.
        let lex = Lexicon::new([&[1u32, 1][..]], None);
        let x = [0.0, 5.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0];
        assert_eq!(
            ctc.lexicon_beam_search(&x, 3, 8, &lex, &mut ws).unwrap().0,
            [1, 1]
        );
    }

    #[test]
    fn beam_search_sums_paths_that_greedy_splits() {
        // Two frames of (− .55, a .45): the best path is "− −", so greedy gives [], whose
        // probability is .55² = .3025, while [a] gathers the other three paths, .6975.
        let ctc = Ctc::new(2).unwrap();
        let p = [0.55f64, 0.45];
        let frame: Vec<f32> = p.iter().map(|v| v.ln() as f32).collect();
        let x = [frame.clone(), frame].concat();
        assert_eq!(ctc.greedy(&x, 2).unwrap(), Vec::<u32>::new());
        let mut ws = CtcWorkspace::default();
        let (got, lp) = ctc.prefix_beam_search(&x, 2, 2, &mut ws).unwrap();
        assert_eq!(got, vec![1]);
        assert!((lp.exp() - (1.0 - 0.3025)).abs() < 1e-6, "{}", lp.exp());
    }
}

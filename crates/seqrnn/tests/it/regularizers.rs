//! The AWD-LSTM regularisers of the language model: exact gradients by finite differences with
//! the masks held fixed (the same seed draws the same masks), masks applied where they belong,
//! penalties equal to their definitions, inference untouched.

use crate::common::{dot, Gen};
use seqrnn::dropout::{shared_mask, Dropout, DropoutKind, RowRng};
use seqrnn::lm::{
    LanguageModel, LmBlock, LmCache, LmConfig, LmWorkspace, OutputWeights, Regularizers,
};
use seqrnn::rnn::{CellKind, GruVariant, SeqShape};

const SHAPE: SeqShape = SeqShape { t: 5, b: 3 };

fn tokens(seed: u64, v: usize) -> Vec<u32> {
    let mut g = Gen::new(seed);
    (0..SHAPE.t * SHAPE.b)
        .map(|_| ((g.vec(1, 1.0)[0].abs() * 1e4) as usize % v) as u32)
        .collect()
}

fn variational(p: f32) -> Option<Dropout> {
    Some(Dropout {
        p,
        kind: DropoutKind::Variational,
    })
}

fn every_regularizer() -> Regularizers {
    Regularizers {
        embed_drop: 0.3,
        weight_drop: 0.5,
        input: variational(0.2),
        hidden: variational(0.25),
        output: variational(0.3),
        ar: 2.0,
        tar: 1.0,
    }
}

fn config(cell: CellKind, output: OutputWeights, reg: Regularizers) -> LmConfig {
    LmConfig {
        block: Default::default(),
        vocab: 11,
        embed: 6,
        cell,
        hidden: 6,
        layers: 2,
        last_hidden: None,
        dropout: Dropout::NONE,
        output,
        reg,
    }
}

/// Mean cross-entropy plus penalty of one training pass with masks from `seed`, and its
/// gradient.
fn objective(m: &LanguageModel, params: &[f32], seed: u64) -> (f64, Vec<f32>, f64) {
    let v = m.config().vocab;
    let (inputs, targets) = (tokens(1, v), tokens(2, v));
    let mut state = m.zero_state(SHAPE.b);
    state.h.iter_mut().for_each(|h| *h = 0.1);
    let mut cache = LmCache::default();
    let ce = m
        .forward_train(
            params,
            &inputs,
            &targets,
            SHAPE,
            &mut state,
            &mut cache,
            &mut RowRng::new(seed, 0),
        )
        .unwrap();
    let mut grads = vec![0.0; params.len()];
    m.backward(params, &mut grads, &cache, &mut LmWorkspace::default())
        .unwrap();
    let n = (SHAPE.t * SHAPE.b) as f64;
    (ce / n + cache.penalty(), grads, cache.penalty())
}

/// Directional finite differences along random directions, over the whole block and over each
/// tensor alone.
fn check_gradients(m: &LanguageModel, params: &[f32], what: &str) {
    check_gradients_within(m, params, what, 3e-3)
}

/// [`check_gradients`] with the tolerance `tol` on `|numeric − analytic| / max(|analytic|, 0.1)`.
fn check_gradients_within(m: &LanguageModel, params: &[f32], what: &str, tol: f64) {
    let (_, grads, _) = objective(m, params, 9);
    let mut g = Gen::new(4);
    let mut directions: Vec<Vec<f32>> = (0..2).map(|_| g.vec(params.len(), 1.0)).collect();
    for t in m.param_layout().entries() {
        if t.alias_of.is_some() {
            continue;
        }
        let mut d = vec![0.0; params.len()];
        let r = g.vec(t.range.len(), 1.0);
        d[t.range.clone()].copy_from_slice(&r);
        directions.push(d);
    }
    for (k, d) in directions.iter().enumerate() {
        let eps = 1e-3f32;
        let at = |s: f32| {
            let p: Vec<f32> = params.iter().zip(d).map(|(a, b)| a + s * b).collect();
            objective(m, &p, 9).0
        };
        let numeric = (at(eps) - at(-eps)) / (2.0 * eps as f64);
        let analytic = dot(&grads, d);
        let err = (numeric - analytic).abs() / analytic.abs().max(0.1);
        assert!(
            err < tol,
            "{what}, direction {k}: numeric {numeric} vs analytic {analytic}"
        );
    }
}

#[test]
fn every_regularizer_together_has_exact_gradients() {
    for cell in [CellKind::Lstm, CellKind::Gru(GruVariant::ResetAfter)] {
        for output in [OutputWeights::Separate, OutputWeights::Tied] {
            let m = LanguageModel::new(config(cell, output, every_regularizer())).unwrap();
            let params = m.init_params(seqrnn::lm::LmInit::Uniform(0.4), 3).unwrap();
            let (_, _, penalty) = objective(&m, &params, 9);
            assert!(penalty > 0.0);
            check_gradients(&m, &params, &format!("{cell:?} {output:?}"));
        }
    }
}

#[test]
fn each_regularizer_alone_has_exact_gradients() {
    let all = every_regularizer();
    let none = Regularizers::default();
    for (name, reg) in [
        (
            "embed_drop",
            Regularizers {
                embed_drop: 0.4,
                ..none
            },
        ),
        (
            "weight_drop",
            Regularizers {
                weight_drop: 0.6,
                ..none
            },
        ),
        ("ar", Regularizers { ar: all.ar, ..none }),
        ("tar", Regularizers { tar: 3.0, ..none }),
        (
            "input+output",
            Regularizers {
                input: all.input,
                output: all.output,
                ..none
            },
        ),
    ] {
        let m = LanguageModel::new(config(CellKind::Lstm, OutputWeights::Separate, reg)).unwrap();
        let params = m.init_params(seqrnn::lm::LmInit::Uniform(0.4), 5).unwrap();
        check_gradients(&m, &params, name);
    }
}

/// The training pass with weight drop equals a pass without it on weights whose `W_hh`s carry
/// the mask, and masked-out recurrent weights get no gradient.
#[test]
fn weight_drop_masks_only_the_recurrent_weights() {
    let p = 0.5;
    let reg = Regularizers {
        weight_drop: p,
        ..Default::default()
    };
    let m = LanguageModel::new(config(CellKind::Lstm, OutputWeights::Separate, reg)).unwrap();
    let plain = LanguageModel::new(config(
        CellKind::Lstm,
        OutputWeights::Separate,
        Default::default(),
    ))
    .unwrap();
    let params = m.init_params(seqrnn::lm::LmInit::Uniform(0.4), 7).unwrap();
    // Weight drop is the pass's first draw: the same seed gives the same mask here.
    let cells = m.rnn().layout().cells().to_vec();
    let n: usize = cells.iter().map(|c| c.w_hh.len()).sum();
    let mut mask = Vec::new();
    shared_mask(p, &mut mask, n, &mut RowRng::new(9, 0));
    let mut masked = params.clone();
    let base = m.layout().rnn.start;
    let mut at = 0;
    for c in &cells {
        for (i, k) in c.w_hh.clone().zip(at..) {
            masked[base + i] *= mask[k];
        }
        at += c.w_hh.len();
    }
    let (with_drop, grads, _) = objective(&m, &params, 9);
    let (manual, manual_grads, _) = objective(&plain, &masked, 9);
    assert!((with_drop - manual).abs() < 1e-9, "{with_drop} vs {manual}");
    let mut at = 0;
    let mut zeroed = 0;
    for c in &cells {
        for (i, k) in c.w_hh.clone().zip(at..) {
            let expect = manual_grads[base + i] * mask[k];
            assert!((grads[base + i] - expect).abs() < 1e-6);
            zeroed += usize::from(mask[k] == 0.0);
            if mask[k] == 0.0 {
                assert_eq!(grads[base + i], 0.0);
            }
        }
        at += c.w_hh.len();
        // Input weights and biases are never dropped.
        for i in c.w_ih.clone().chain(c.b_ih.clone()).chain(c.b_hh.clone()) {
            assert!((grads[base + i] - manual_grads[base + i]).abs() < 1e-6);
        }
    }
    assert!(zeroed > n / 4 && zeroed < 3 * n / 4, "{zeroed} of {n}");
}

/// Embedding dropout zeroes whole words: every occurrence of a dropped word reads zeros and
/// its row gets no gradient; kept rows are scaled by `1/(1−p)`.
#[test]
fn embedding_dropout_drops_whole_words() {
    let p = 0.5;
    let reg = Regularizers {
        embed_drop: p,
        ..Default::default()
    };
    let m = LanguageModel::new(config(CellKind::Lstm, OutputWeights::Separate, reg)).unwrap();
    let plain = LanguageModel::new(config(
        CellKind::Lstm,
        OutputWeights::Separate,
        Default::default(),
    ))
    .unwrap();
    let params = m.init_params(seqrnn::lm::LmInit::Uniform(0.4), 8).unwrap();
    let v = m.config().vocab;
    let mut mask = Vec::new();
    shared_mask(p, &mut mask, v, &mut RowRng::new(9, 0));
    let mut masked = params.clone();
    let (e, enc) = (m.config().embed, m.layout().encoder.clone());
    for (row, &k) in masked[enc.clone()].chunks_exact_mut(e).zip(&mask) {
        row.iter_mut().for_each(|x| *x *= k);
    }
    let (with_drop, grads, _) = objective(&m, &params, 9);
    let (manual, _, _) = objective(&plain, &masked, 9);
    assert!((with_drop - manual).abs() < 1e-9, "{with_drop} vs {manual}");
    let inputs = tokens(1, v);
    let mut dropped_seen = 0;
    for (word, &k) in mask.iter().enumerate() {
        let row = &grads[enc.start + word * e..][..e];
        if k == 0.0 {
            assert!(
                row.iter().all(|&g| g == 0.0),
                "dropped word {word} got a gradient"
            );
            dropped_seen += usize::from(inputs.contains(&(word as u32)));
        }
    }
    assert!(dropped_seen > 0, "the test's inputs hold no dropped word");
}

/// AR and TAR equal their definitions on the last layer's output (no dropout: the dropped and
/// raw outputs are the same), and inference ignores every regulariser.
#[test]
fn penalties_follow_their_definitions_and_inference_ignores_them() {
    let (ar, tar) = (0.7f32, 1.3f32);
    let reg = Regularizers {
        ar,
        tar,
        ..Default::default()
    };
    let m = LanguageModel::new(config(CellKind::Lstm, OutputWeights::Separate, reg)).unwrap();
    let params = m.init_params(seqrnn::lm::LmInit::Uniform(0.4), 2).unwrap();
    let (_, _, penalty) = objective(&m, &params, 9);
    // The last layer's outputs, recomputed by the stack alone.
    let v = m.config().vocab;
    let inputs = tokens(1, v);
    let (e, h) = (m.config().embed, m.config().hidden);
    let enc = &params[m.layout().encoder.clone()];
    let x: Vec<f32> = inputs
        .iter()
        .flat_map(|&i| enc[i as usize * e..][..e].to_vec())
        .collect();
    let mut state = m.zero_state(SHAPE.b);
    state.h.iter_mut().for_each(|s| *s = 0.1);
    let mut y = vec![0.0; SHAPE.t * SHAPE.b * h];
    m.rnn()
        .forward_infer(
            &params[m.layout().rnn.clone()],
            &x,
            SHAPE,
            &mut state,
            &mut y,
            &mut Default::default(),
        )
        .unwrap();
    let mean = |it: &mut dyn Iterator<Item = f64>| {
        let (s, n) = it.fold((0.0, 0), |(s, n), v| (s + v, n + 1));
        s / n as f64
    };
    let step = SHAPE.b * h;
    let expect = ar as f64 * mean(&mut y.iter().map(|&a| (a as f64).powi(2)))
        + tar as f64
            * mean(
                &mut y[step..]
                    .iter()
                    .zip(&y)
                    .map(|(&a, &b)| ((a - b) as f64).powi(2)),
            );
    assert!((penalty - expect).abs() < 1e-6, "{penalty} vs {expect}");

    let all = LanguageModel::new(config(
        CellKind::Lstm,
        OutputWeights::Separate,
        every_regularizer(),
    ))
    .unwrap();
    let plain = LanguageModel::new(config(
        CellKind::Lstm,
        OutputWeights::Separate,
        Default::default(),
    ))
    .unwrap();
    let targets = tokens(2, v);
    let eval = |m: &LanguageModel| {
        m.eval_loss(
            &params,
            &inputs,
            &targets,
            SHAPE,
            &mut m.zero_state(SHAPE.b),
            &mut LmWorkspace::default(),
        )
        .unwrap()
    };
    assert_eq!(eval(&all), eval(&plain));
}

#[test]
fn impossible_regularizers_are_refused() {
    let none = Regularizers::default();
    for (reg, needle) in [
        (
            Regularizers {
                embed_drop: 1.0,
                ..none
            },
            "embedding dropout",
        ),
        (
            Regularizers {
                weight_drop: -0.1,
                ..none
            },
            "weight drop",
        ),
        (
            Regularizers {
                weight_drop: f32::NAN,
                ..none
            },
            "weight drop",
        ),
        (Regularizers { ar: -1.0, ..none }, "AR"),
        (
            Regularizers {
                tar: f32::INFINITY,
                ..none
            },
            "TAR",
        ),
        (
            Regularizers {
                hidden: variational(1.5),
                ..none
            },
            "dropout",
        ),
    ] {
        let err = LanguageModel::new(config(CellKind::Lstm, OutputWeights::Separate, reg))
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{err}");
    }
}

/// `config` with three layers of `hidden` units under a last layer of `last` units.
fn with_last_layer(base: LmConfig, hidden: usize, last: Option<usize>, embed: usize) -> LmConfig {
    LmConfig {
        hidden,
        last_hidden: last,
        embed,
        layers: 3,
        ..base
    }
}

/// A last layer given its own size, equal to the others', is the one-stack model: the same
/// tensors and names, bit for bit the same loss, penalty and gradients with every regulariser
/// on (the masks are drawn in the same order), and the same carried state across windows.
#[test]
fn a_last_layer_of_the_same_size_is_the_one_stack_model() {
    for cell in [CellKind::Lstm, CellKind::Gru(GruVariant::ResetAfter)] {
        let base = config(cell, OutputWeights::Tied, every_regularizer());
        let one = LanguageModel::new(with_last_layer(base, 6, None, 6)).unwrap();
        let two = LanguageModel::new(with_last_layer(base, 6, Some(6), 6)).unwrap();
        assert!(one.last_layer().is_none() && two.last_layer().is_some());
        assert_eq!(one.tensors(), two.tensors());
        assert_eq!(one.zero_state(3), two.zero_state(3));
        let params = one
            .init_params(seqrnn::lm::LmInit::Uniform(0.4), 3)
            .unwrap();
        let (loss_one, grads_one, penalty_one) = objective(&one, &params, 9);
        let (loss_two, grads_two, penalty_two) = objective(&two, &params, 9);
        assert!(penalty_one > 0.0);
        assert_eq!((loss_one, penalty_one), (loss_two, penalty_two), "{cell:?}");
        assert_eq!(grads_one, grads_two, "{cell:?}");
        // Inference over two windows, the state carried between them.
        let v = one.config().vocab;
        let (inputs, targets) = (tokens(1, v), tokens(2, v));
        let two_windows = |m: &LanguageModel| {
            let mut state = m.zero_state(SHAPE.b);
            let mut ws = LmWorkspace::default();
            let mut losses = Vec::new();
            for _ in 0..2 {
                losses.push(
                    m.eval_loss(&params, &inputs, &targets, SHAPE, &mut state, &mut ws)
                        .unwrap(),
                );
            }
            (losses, state)
        };
        assert_eq!(two_windows(&one), two_windows(&two), "{cell:?}");
    }
}

/// AWD-LSTM's shape in small: 3 layers, the last smaller than the others (5 under 7) and tied
/// to a 5-wide embedding. Exact gradients, PyTorch names and shapes, a packed state.
#[test]
fn a_smaller_last_layer_has_exact_gradients_and_pytorch_names() {
    for cell in [CellKind::Lstm, CellKind::Gru(GruVariant::ResetAfter)] {
        for output in [OutputWeights::Separate, OutputWeights::Tied] {
            let base = config(cell, output, every_regularizer());
            let m = LanguageModel::new(with_last_layer(base, 7, Some(5), 5)).unwrap();
            let params = m.init_params(seqrnn::lm::LmInit::Uniform(0.4), 4).unwrap();
            let (_, _, penalty) = objective(&m, &params, 9);
            assert!(penalty > 0.0);
            check_gradients(
                &m,
                &params,
                &format!("smaller last layer, {cell:?} {output:?}"),
            );
        }
    }
    let base = config(CellKind::Lstm, OutputWeights::Tied, Regularizers::default());
    let m = LanguageModel::new(with_last_layer(base, 7, Some(5), 5)).unwrap();
    let shape = |name: &str| m.param_layout().get(name).unwrap().shape.clone();
    assert_eq!(shape("rnn.weight_hh_l1"), [28, 7]);
    assert_eq!(shape("rnn.weight_ih_l2"), [20, 7]);
    assert_eq!(shape("rnn.weight_hh_l2"), [20, 5]);
    assert_eq!(shape("decoder.weight"), [11, 5]);
    assert!(m.param_layout().get("rnn.weight_ih_l3").is_none());
    // [2, B, 7] for the two layers below, then [B, 5].
    assert_eq!(m.state_rows(), [7, 7, 5]);
    let state = m.zero_state(3);
    assert_eq!((state.h.len(), state.c.len()), (57, 57));
    // A state of the wrong size is refused, not read past its end.
    let params = m.init_params(seqrnn::lm::LmInit::Uniform(0.4), 4).unwrap();
    let v = m.config().vocab;
    let mut short = m.zero_state(2);
    let err = m
        .eval_loss(
            &params,
            &tokens(1, v),
            &tokens(2, v),
            SHAPE,
            &mut short,
            &mut LmWorkspace::default(),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("recurrent state holds 38"), "{err}");
}

#[test]
fn impossible_last_layers_are_refused() {
    let base = config(
        CellKind::Lstm,
        OutputWeights::Separate,
        Regularizers::default(),
    );
    let tied = config(CellKind::Lstm, OutputWeights::Tied, Regularizers::default());
    for (cfg, needle) in [
        (
            LmConfig {
                last_hidden: Some(0),
                ..base
            },
            "the last layer's size must be at least 1",
        ),
        (
            LmConfig {
                last_hidden: Some(4),
                layers: 1,
                ..base
            },
            "needs at least 2 layers, got 1",
        ),
        (
            LmConfig {
                last_hidden: Some(4),
                ..tied
            },
            "tied output weights need embedding size = the last layer's size, got 6 and 4",
        ),
    ] {
        let err = LanguageModel::new(cfg).unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }
}

/// `config` in residual blocks with an MLP of `mlp` units, every regulariser they take on.
fn residual(cell: CellKind, output: OutputWeights, mlp: usize) -> LmConfig {
    let reg = Regularizers {
        weight_drop: 0.0,
        tar: 0.0,
        ..every_regularizer()
    };
    LmConfig {
        block: LmBlock::Residual { mlp },
        ..config(cell, output, reg)
    }
}

/// Residual blocks (pre-norm, the recurrent layer then an MLP): exact gradients with every
/// dropout and AR on, PyTorch module names, the plain stack's carried state.
#[test]
fn residual_blocks_have_exact_gradients_and_pytorch_names() {
    for cell in [CellKind::Lstm, CellKind::MinGru, CellKind::MinLstm] {
        for (output, mlp) in [(OutputWeights::Separate, 5), (OutputWeights::Tied, 0)] {
            let m = LanguageModel::new(residual(cell, output, mlp)).unwrap();
            let params = m.init_params(seqrnn::lm::LmInit::Uniform(0.4), 4).unwrap();
            let (_, _, penalty) = objective(&m, &params, 9);
            assert!(penalty > 0.0);
            // Twice the plain models' tolerance: along a direction over the whole block (some
            // 1,500 values) the loss curves enough that the step's truncation error reaches
            // 4e-4 (extrapolating two steps brings the difference under 1.2e-4, at three times
            // the rounding noise on the per-tensor directions).
            let what = format!("residual, {cell:?} {output:?} mlp {mlp}");
            check_gradients_within(&m, &params, &what, 6e-3);
        }
    }
    let m = LanguageModel::new(residual(CellKind::MinGru, OutputWeights::Separate, 5)).unwrap();
    let shape = |name: &str| m.param_layout().get(name).map(|e| e.shape.clone());
    assert_eq!(shape("blocks.1.norm1.weight"), Some(vec![6]));
    assert_eq!(shape("rnn.weight_ih_l1"), Some(vec![12, 6]));
    assert_eq!(shape("rnn.weight_hh_l1"), None);
    assert_eq!(shape("blocks.1.mlp.0.weight"), Some(vec![5, 6]));
    assert_eq!(shape("blocks.1.mlp.2.weight"), Some(vec![6, 5]));
    assert_eq!(shape("norm.bias"), Some(vec![6]));
    assert_eq!(m.state_rows(), [6, 6]);
    // Norms start at γ = 1, β = 0 whatever the uniform scale.
    let params = m.init_params(seqrnn::lm::LmInit::Uniform(0.4), 4).unwrap();
    let norm = m.param_layout().get("blocks.0.norm1.weight").unwrap();
    assert!(params[norm.range.clone()].iter().all(|&v| v == 1.0));
}

/// Inference through packed weights equals the plain pass, and a batch row's logits are the
/// same, to the bit, alone or beside other rows (what batched generation needs).
#[test]
fn residual_blocks_pack_and_are_batch_invariant() {
    let m = LanguageModel::new(residual(CellKind::MinLstm, OutputWeights::Separate, 7)).unwrap();
    let params = m.init_params(seqrnn::lm::LmInit::Uniform(0.4), 4).unwrap();
    let v = m.config().vocab;
    let inputs = tokens(1, v);
    let mut ws = LmWorkspace::default();
    let mut state = m.zero_state(SHAPE.b);
    let plain = m
        .logits(&params, &inputs, SHAPE, &mut state, &mut ws)
        .unwrap()
        .to_vec();
    let packs = m.pack(&params).unwrap();
    let mut packed_state = m.zero_state(SHAPE.b);
    let packed = m
        .logits_packed(&packs, &inputs, SHAPE, &mut packed_state, &mut ws)
        .unwrap()
        .to_vec();
    for (a, b) in plain.iter().zip(&packed) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    // Row 1 alone: its tokens at every step.
    let alone: Vec<u32> = (0..SHAPE.t).map(|t| inputs[t * SHAPE.b + 1]).collect();
    let mut one = m.zero_state(1);
    let shape1 = SeqShape { t: SHAPE.t, b: 1 };
    let row = m
        .logits_packed(&packs, &alone, shape1, &mut one, &mut ws)
        .unwrap();
    for t in 0..SHAPE.t {
        let batched = &packed[(t * SHAPE.b + 1) * v..(t * SHAPE.b + 2) * v];
        assert_eq!(&row[t * v..(t + 1) * v], batched, "step {t}");
    }
}

#[test]
fn impossible_residual_blocks_are_refused() {
    let base = residual(CellKind::MinGru, OutputWeights::Separate, 4);
    let reg = base.reg;
    for (cfg, needle) in [
        (
            LmConfig { embed: 5, ..base },
            "the embedding size must equal the hidden size, got 5 and 6",
        ),
        (
            LmConfig {
                cell: CellKind::Lstm,
                reg: Regularizers {
                    weight_drop: 0.2,
                    ..reg
                },
                ..base
            },
            "residual blocks do not take weight drop",
        ),
        (
            LmConfig {
                reg: Regularizers { tar: 1.0, ..reg },
                ..base
            },
            "residual blocks do not take temporal activation regularisation",
        ),
        (
            LmConfig {
                last_hidden: Some(4),
                layers: 3,
                ..base
            },
            "residual blocks do not take a last layer of its own size",
        ),
    ] {
        let err = LanguageModel::new(cfg).unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }
}

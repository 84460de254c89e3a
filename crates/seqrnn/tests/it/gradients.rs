//! The fused engine against the plain-loop f64 reference on random shapes, and directional
//! finite-difference checks of the engine's own gradients.

use crate::common::engine::{compare_with_reference, engine, problem, Problem, CELLS};
use crate::common::{dot, Gen};
use seqrnn::dropout::RowRng;
use seqrnn::rnn::{
    CellKind, Direction, Rnn, RnnCache, RnnConfig, RnnState, RnnWorkspace, SeqShape,
};

#[test]
fn engine_matches_reference_on_awkward_shapes() {
    for (k, cell) in CELLS.into_iter().enumerate() {
        // 3 layers, both directions, odd sizes.
        let config = RnnConfig {
            cell,
            input_size: 3,
            hidden_size: 5,
            num_layers: 3,
            direction: Direction::Bidirectional,
        };
        compare_with_reference(config, SeqShape { t: 7, b: 2 }, 10 + k as u64);
        // T = 1, B = 1, one direction.
        let config = RnnConfig {
            num_layers: 2,
            direction: Direction::Forward,
            ..config
        };
        compare_with_reference(config, SeqShape { t: 1, b: 1 }, 20 + k as u64);
    }
}

#[test]
fn engine_matches_reference_on_random_shapes() {
    let mut g = Gen::new(99);
    let mut pick =
        |lo: usize, hi: usize| lo + ((g.next_f64() * (hi - lo + 1) as f64) as usize).min(hi - lo);
    for case in 0..18 {
        let config = RnnConfig {
            cell: CELLS[case % CELLS.len()],
            input_size: pick(1, 9),
            hidden_size: pick(1, 12),
            num_layers: pick(1, 3),
            direction: if pick(0, 1) == 1 {
                Direction::Bidirectional
            } else {
                Direction::Forward
            },
        };
        // B up to 70 also exercises the large-product path of the matrix multiply.
        let shape = SeqShape {
            t: pick(1, 9),
            b: if case % 6 == 5 { 70 } else { pick(1, 5) },
        };
        compare_with_reference(config, shape, 1000 + case as u64);
    }
}

/// `L = Σ y⊙dy + Σ h_n⊙dh_n + Σ c_n⊙dc_n`, accumulated in f64.
fn loss(p: &Problem, params: &[f32], x: &[f32], state0: &RnnState) -> f64 {
    let mut state = state0.clone();
    let mut y = vec![0.0; p.dy.len()];
    let mut ws = RnnWorkspace::default();
    p.rnn
        .forward_infer(params, x, p.shape, &mut state, &mut y, &mut ws)
        .unwrap();
    dot(&y, &p.dy) + dot(&state.h, &p.dstate_n.h) + dot(&state.c, &p.dstate_n.c)
}

#[test]
fn finite_differences_agree_with_engine_gradients() {
    // Directional derivatives along random directions: robust in f32, and they cover every
    // parameter, input and initial-state entry at once.
    for (k, cell) in CELLS.into_iter().enumerate() {
        let config = RnnConfig {
            cell,
            input_size: 3,
            hidden_size: 5,
            num_layers: 3,
            direction: Direction::Bidirectional,
        };
        let p = problem(config, SeqShape { t: 7, b: 2 }, 300 + k as u64);
        let (_, _, grads, dx, dstate) = engine(&p);
        let mut g = Gen::new(7 + k as u64);
        for trial in 0..4 {
            let vp = g.vec(p.params.len(), 1.0);
            let vx = g.vec(p.x.len(), 1.0);
            let vh = g.vec(p.state0.h.len(), 1.0);
            let vc = g.vec(p.state0.c.len(), 1.0);
            let eps = 1e-3f32;
            let shifted = |s: f32| {
                let add = |a: &[f32], v: &[f32]| -> Vec<f32> {
                    a.iter().zip(v).map(|(a, v)| a + s * v).collect()
                };
                let st = RnnState {
                    h: add(&p.state0.h, &vh),
                    c: add(&p.state0.c, &vc),
                };
                loss(&p, &add(&p.params, &vp), &add(&p.x, &vx), &st)
            };
            let numeric = (shifted(eps) - shifted(-eps)) / (2.0 * eps as f64);
            let analytic =
                dot(&grads, &vp) + dot(&dx, &vx) + dot(&dstate.h, &vh) + dot(&dstate.c, &vc);
            let err = (numeric - analytic).abs() / analytic.abs().max(1.0);
            assert!(
                err < 2e-3,
                "{cell:?} trial {trial}: finite difference {numeric} vs backward {analytic} (rel err {err})"
            );
        }
    }
}

#[test]
fn carried_state_equals_one_long_sequence() {
    // Two windows with the state carried over give the same outputs as one window of both.
    for cell in CELLS {
        let config = RnnConfig {
            cell,
            input_size: 4,
            hidden_size: 6,
            num_layers: 2,
            direction: Direction::Forward,
        };
        let p = problem(config, SeqShape { t: 8, b: 3 }, 5);
        let mut ws = RnnWorkspace::default();
        let mut state = p.state0.clone();
        let mut y = vec![0.0; p.dy.len()];
        p.rnn
            .forward_infer(&p.params, &p.x, p.shape, &mut state, &mut y, &mut ws)
            .unwrap();
        let half = SeqShape { t: 4, b: 3 };
        let (n_in, n_out) = (4 * 3 * 4, 4 * 3 * 6);
        let mut state2 = p.state0.clone();
        let mut y2 = vec![0.0; 2 * n_out];
        for w in 0..2 {
            p.rnn
                .forward_infer(
                    &p.params,
                    &p.x[w * n_in..(w + 1) * n_in],
                    half,
                    &mut state2,
                    &mut y2[w * n_out..(w + 1) * n_out],
                    &mut ws,
                )
                .unwrap();
        }
        assert_eq!(y, y2);
        assert_eq!(state, state2);
    }
}

#[test]
fn wrong_buffer_sizes_are_errors_not_panics() {
    let config = RnnConfig {
        cell: CellKind::Lstm,
        input_size: 2,
        hidden_size: 3,
        num_layers: 1,
        direction: Direction::Forward,
    };
    let p = problem(config, SeqShape { t: 2, b: 2 }, 1);
    let mut ws = RnnWorkspace::default();
    let mut y = vec![0.0; p.dy.len()];
    let mut state = p.state0.clone();
    let short_x = &p.x[1..];
    let e = p
        .rnn
        .forward_infer(&p.params, short_x, p.shape, &mut state, &mut y, &mut ws)
        .unwrap_err();
    assert!(e.to_string().contains("input x[T, B, I]"), "{e}");
    let mut gru_state = RnnState {
        h: state.h.clone(),
        c: Vec::new(),
    };
    let e = p
        .rnn
        .forward_infer(&p.params, &p.x, p.shape, &mut gru_state, &mut y, &mut ws)
        .unwrap_err();
    assert!(e.to_string().contains("state c"), "{e}");
    let e = p
        .rnn
        .forward_infer(
            &p.params,
            &p.x,
            SeqShape { t: 0, b: 2 },
            &mut state,
            &mut y,
            &mut ws,
        )
        .unwrap_err();
    assert!(e.to_string().contains("at least 1"), "{e}");
    // Backward without a forward pass.
    let mut grads = vec![0.0; p.rnn.num_params()];
    let mut dx = vec![0.0; p.x.len()];
    let e = p
        .rnn
        .backward(
            &p.params,
            &mut grads,
            &RnnCache::default(),
            &p.dy,
            &mut state,
            &mut dx,
            &mut ws,
        )
        .unwrap_err();
    assert!(e.to_string().contains("without a matching"), "{e}");
    assert!(Rnn::new(RnnConfig {
        hidden_size: 0,
        ..config
    })
    .is_err());
}

#[test]
fn dropout_between_layers_has_exact_gradients() {
    use seqrnn::dropout::{Dropout, DropoutKind};
    for kind in [DropoutKind::Standard, DropoutKind::Variational] {
        let config = RnnConfig {
            cell: CellKind::Lstm,
            input_size: 3,
            hidden_size: 5,
            num_layers: 3,
            direction: Direction::Bidirectional,
        };
        let mut p = problem(config, SeqShape { t: 6, b: 2 }, 77);
        p.rnn = p.rnn.with_dropout(Dropout { p: 0.4, kind }).unwrap();
        // The same seed draws the same masks, so the loss is a deterministic function.
        let train_loss = |params: &[f32]| -> (f64, Vec<f32>) {
            let mut state = p.state0.clone();
            let mut y = vec![0.0; p.dy.len()];
            let mut cache = RnnCache::default();
            p.rnn
                .forward_train(
                    params,
                    &p.x,
                    p.shape,
                    &mut state,
                    &mut y,
                    &mut cache,
                    &mut RowRng::new(5, 0),
                )
                .unwrap();
            let l = dot(&y, &p.dy) + dot(&state.h, &p.dstate_n.h) + dot(&state.c, &p.dstate_n.c);
            let mut grads = vec![0.0; p.rnn.num_params()];
            let mut dx = vec![0.0; p.x.len()];
            let mut ds = p.dstate_n.clone();
            p.rnn
                .backward(
                    params,
                    &mut grads,
                    &cache,
                    &p.dy,
                    &mut ds,
                    &mut dx,
                    &mut RnnWorkspace::default(),
                )
                .unwrap();
            (l, grads)
        };
        let (_, grads) = train_loss(&p.params);
        // Dropout changes the training output relative to inference.
        let (l_train, _) = train_loss(&p.params);
        assert_ne!(
            l_train,
            loss(&p, &p.params, &p.x, &p.state0),
            "{kind:?}: no value dropped"
        );
        let mut g = Gen::new(3);
        for _ in 0..3 {
            let v = g.vec(p.params.len(), 1.0);
            let eps = 1e-3f32;
            let at = |s: f32| {
                train_loss(
                    &p.params
                        .iter()
                        .zip(&v)
                        .map(|(a, d)| a + s * d)
                        .collect::<Vec<_>>(),
                )
                .0
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps as f64);
            let analytic = dot(&grads, &v);
            let err = (numeric - analytic).abs() / analytic.abs().max(1.0);
            assert!(err < 2e-3, "{kind:?}: {numeric} vs {analytic}");
        }
    }
}

#[test]
fn engine_matches_reference_at_training_widths() {
    // The sizes the language models run (B = 20, H = 200), where the matrix-multiply crates
    // choose other kernels than at toy sizes.
    for (k, cell) in CELLS.into_iter().enumerate() {
        let config = RnnConfig {
            cell,
            input_size: 200,
            hidden_size: 200,
            num_layers: 2,
            direction: Direction::Forward,
        };
        compare_with_reference(config, SeqShape { t: 3, b: 20 }, 500 + k as u64);
    }
}

//! The engine against the plain-loop f64 reference: random problems, one forward and backward
//! pass, every output and gradient compared.

use super::{assert_close, Gen};
use seqrnn::rnn::reference::{self, RefParams};
use seqrnn::rnn::{
    CellKind, GruVariant, Rnn, RnnCache, RnnConfig, RnnState, RnnWorkspace, SeqShape,
};

pub const CELLS: [CellKind; 5] = [
    CellKind::Lstm,
    CellKind::Gru(GruVariant::ResetAfter),
    CellKind::Gru(GruVariant::ResetBefore),
    CellKind::MinGru,
    CellKind::MinLstm,
];

/// Inputs of one random problem.
pub struct Problem {
    pub rnn: Rnn,
    pub shape: SeqShape,
    pub params: Vec<f32>,
    pub x: Vec<f32>,
    pub state0: RnnState,
    pub dy: Vec<f32>,
    pub dstate_n: RnnState,
}

pub fn problem(config: RnnConfig, shape: SeqShape, seed: u64) -> Problem {
    let rnn = Rnn::new(config).unwrap();
    let mut g = Gen::new(seed);
    let n_state = config.state_slices() * shape.b * config.hidden_size;
    let lstm = config.cell.has_cell_state();
    let state = |g: &mut Gen| RnnState {
        h: g.vec(n_state, 0.5),
        c: if lstm {
            g.vec(n_state, 0.5)
        } else {
            Vec::new()
        },
    };
    Problem {
        params: g.vec(rnn.num_params(), 0.6),
        x: g.vec(shape.t * shape.b * config.input_size, 1.0),
        state0: state(&mut g),
        dy: g.vec(shape.t * shape.b * config.output_size(), 1.0),
        dstate_n: state(&mut g),
        rnn,
        shape,
    }
}

pub fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

pub fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// Forward + backward with the engine: (y, state_n, grads, dx, dstate0).
pub fn engine(p: &Problem) -> (Vec<f32>, RnnState, Vec<f32>, Vec<f32>, RnnState) {
    let mut state = p.state0.clone();
    let mut y = vec![0.0; p.dy.len()];
    let mut cache = RnnCache::default();
    let mut ws = RnnWorkspace::default();
    p.rnn
        .forward_train(
            &p.params,
            &p.x,
            p.shape,
            &mut state,
            &mut y,
            &mut cache,
            &mut seqrnn::dropout::RowRng::new(0, 0),
        )
        .unwrap();
    let mut grads = vec![0.0; p.rnn.num_params()];
    let mut dx = vec![0.0; p.x.len()];
    let mut dstate = p.dstate_n.clone();
    p.rnn
        .backward(
            &p.params,
            &mut grads,
            &cache,
            &p.dy,
            &mut dstate,
            &mut dx,
            &mut ws,
        )
        .unwrap();
    (y, state, grads, dx, dstate)
}

pub fn compare_with_reference(config: RnnConfig, shape: SeqShape, seed: u64) {
    let p = problem(config, shape, seed);
    let label = format!("{config:?} {shape:?}");
    let mut rp = RefParams::new();
    for t in p.rnn.layout().tensors() {
        rp.insert(t.name.clone(), f64s(&p.params[t.range.clone()]));
    }
    let lstm = config.cell.has_cell_state();
    let c0 = lstm.then(|| f64s(&p.state0.c));
    let dcn = lstm.then(|| f64s(&p.dstate_n.c));
    let (x, h0) = (f64s(&p.x), f64s(&p.state0.h));
    let want = reference::forward(&config, &rp, &x, shape.t, shape.b, &h0, c0.as_deref());
    let wgrad = reference::backward(
        &config,
        &rp,
        &x,
        shape.t,
        shape.b,
        &h0,
        c0.as_deref(),
        &f64s(&p.dy),
        &f64s(&p.dstate_n.h),
        dcn.as_deref(),
    );
    let (y, state, grads, dx, dstate) = engine(&p);
    // f32 against f64: relative to the size of the values compared (sums of up to
    // G·H + I terms at training widths).
    let scaled = |want: &[f64]| 2e-5 * want.iter().fold(1.0f64, |m, v| m.max(v.abs())) as f32;
    let tol = 2e-5;
    // The gated cells' states lie in [−1, 1] (the scale is then 2e-5 itself); the minimal
    // cells' candidate `g` is unbounded above.
    assert_close(&format!("{label} y"), &y, &f32s(&want.y), scaled(&want.y));
    assert_close(
        &format!("{label} h_n"),
        &state.h,
        &f32s(&want.h_n),
        scaled(&want.h_n),
    );
    if lstm {
        assert_close(
            &format!("{label} c_n"),
            &state.c,
            &f32s(&want.c_n.unwrap()),
            tol,
        );
        assert_close(
            &format!("{label} dc0"),
            &dstate.c,
            &f32s(&wgrad.dc0.unwrap()),
            tol,
        );
    }
    assert_close(
        &format!("{label} dx"),
        &dx,
        &f32s(&wgrad.dx),
        scaled(&wgrad.dx),
    );
    assert_close(
        &format!("{label} dh0"),
        &dstate.h,
        &f32s(&wgrad.dh0),
        scaled(&wgrad.dh0),
    );
    for t in p.rnn.layout().tensors() {
        let want = &wgrad.dparams[&t.name];
        // Weight gradients sum T·B terms: scale the tolerance with their size.
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs())) as f32;
        assert_close(
            &format!("{label} d.{}", t.name),
            &grads[t.range.clone()],
            &f32s(want),
            tol * scale,
        );
    }
}

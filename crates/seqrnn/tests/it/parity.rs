//! Parity with the PyTorch and Keras reference tensors in `../shared/fixtures/`, and with the
//! minimal cells' tensors in `tests/fixtures/min/` (made by `tools/peers/min_rnn_fixtures.py`, a
//! PyTorch implementation of the paper's equations): outputs, final states and every gradient
//! within 1e-5 absolute (f32 engine against the f64 reference).

use std::path::Path;

use crate::common::{assert_close, fixtures_dir};
use seqrnn::io::tensors::TensorFile;
use seqrnn::rnn::{
    CellKind, Direction, GruVariant, Rnn, RnnCache, RnnConfig, RnnState, RnnWorkspace, SeqShape,
};

const TOL: f32 = 1e-5;

fn meta(f: &TensorFile, key: &str) -> usize {
    f.metadata[key].parse().unwrap()
}

/// Everything a fixture provides, already mapped to the engine's layout.
struct Case {
    rnn: Rnn,
    shape: SeqShape,
    params: Vec<f32>,
    x: Vec<f32>,
    state0: RnnState,
    dy: Vec<f32>,
    dstate_n: RnnState,
    want_y: Vec<f32>,
    want_state_n: RnnState,
    want_dx: Vec<f32>,
    want_dstate0: RnnState,
    /// Expected gradient block (same layout as `params`).
    want_grads: Vec<f32>,
    /// Which gradient tensors the fixture pins (name, range in the block).
    checked: Vec<(String, std::ops::Range<usize>)>,
}

fn torch_case(path: &Path) -> Case {
    let f = TensorFile::load(path).unwrap();
    let cell = match f.metadata["kind"].as_str() {
        "lstm" => CellKind::Lstm,
        "gru" => CellKind::Gru(GruVariant::ResetAfter),
        "mingru" => CellKind::MinGru,
        "minlstm" => CellKind::MinLstm,
        k => panic!("unknown kind {k}"),
    };
    let config = RnnConfig {
        cell,
        input_size: meta(&f, "input_size"),
        hidden_size: meta(&f, "hidden_size"),
        num_layers: meta(&f, "num_layers"),
        direction: Direction::Forward,
    };
    let rnn = Rnn::new(config).unwrap();
    let shape = SeqShape {
        t: meta(&f, "seq_len"),
        b: meta(&f, "batch"),
    };
    let n = rnn.num_params();
    let (mut params, mut want_grads, mut checked) = (vec![0.0; n], vec![0.0; n], Vec::new());
    for t in rnn.layout().tensors() {
        let p = f.get(&t.name).unwrap();
        assert_eq!(p.shape, t.shape, "{}", t.name);
        params[t.range.clone()].copy_from_slice(&p.data);
        let g = f.get(&format!("d.{}", t.name)).unwrap();
        want_grads[t.range.clone()].copy_from_slice(&g.data);
        checked.push((t.name.clone(), t.range.clone()));
    }
    let get = |name: &str| f.get(name).unwrap().data.clone();
    let get_or_zero = |name: &str, like: &str| {
        f.tensors
            .get(name)
            .map(|t| t.data.clone())
            .unwrap_or_else(|| vec![0.0; f.get(like).unwrap().data.len()])
    };
    let lstm = cell == CellKind::Lstm;
    let state = |h: &str, c: &str| RnnState {
        h: get(h),
        c: if lstm { get(c) } else { Vec::new() },
    };
    Case {
        shape,
        params,
        x: get("x"),
        state0: state("h0", "c0"),
        dy: get("grad_y"),
        dstate_n: RnnState {
            h: get_or_zero("grad_h_n", "h_n"),
            c: if lstm {
                get_or_zero("grad_c_n", "c_n")
            } else {
                Vec::new()
            },
        },
        want_y: get("y"),
        want_state_n: state("h_n", "c_n"),
        want_dx: get("d.x"),
        want_dstate0: state("d.h0", "d.c0"),
        want_grads,
        checked,
        rnn,
    }
}

/// Keras `GRU(reset_after=False)`: `kernel[I, 3H]`, `recurrent_kernel[H, 3H]`, `bias[3H]`, gate
/// columns `z, r, h`. PyTorch rows `r, z, n` are the transposed columns in the order `r, z, h`;
/// the single bias goes to `bias_ih` with `bias_hh = 0`.
fn keras_case(path: &Path) -> Case {
    let f = TensorFile::load(path).unwrap();
    let (i, h) = (meta(&f, "input_size"), meta(&f, "hidden_size"));
    let rnn = Rnn::new(RnnConfig {
        cell: CellKind::Gru(GruVariant::ResetBefore),
        input_size: i,
        hidden_size: h,
        num_layers: 1,
        direction: Direction::Forward,
    })
    .unwrap();
    let shape = SeqShape {
        t: meta(&f, "seq_len"),
        b: meta(&f, "batch"),
    };
    let cell = rnn.layout().cell(0, 0).clone();
    // Torch gate block g (r, z, n) is Keras column block KERAS_OF[g] (z=0, r=1, h=2).
    const KERAS_OF: [usize; 3] = [1, 0, 2];
    let to_torch = |m: &[f32], rows: usize, dst: &mut [f32]| {
        for g in 0..3 {
            for u in 0..h {
                for k in 0..rows {
                    dst[(g * h + u) * rows + k] = m[k * 3 * h + KERAS_OF[g] * h + u];
                }
            }
        }
    };
    let bias_to_torch = |b: &[f32], dst: &mut [f32]| {
        for g in 0..3 {
            dst[g * h..(g + 1) * h].copy_from_slice(&b[KERAS_OF[g] * h..(KERAS_OF[g] + 1) * h]);
        }
    };
    let n = rnn.num_params();
    let (mut params, mut want_grads) = (vec![0.0; n], vec![0.0; n]);
    let get = |name: &str| f.get(name).unwrap().data.clone();
    to_torch(&get("kernel"), i, &mut params[cell.w_ih.clone()]);
    to_torch(&get("recurrent_kernel"), h, &mut params[cell.w_hh.clone()]);
    bias_to_torch(&get("bias"), &mut params[cell.b_ih.clone()]);
    to_torch(&get("d.kernel"), i, &mut want_grads[cell.w_ih.clone()]);
    to_torch(
        &get("d.recurrent_kernel"),
        h,
        &mut want_grads[cell.w_hh.clone()],
    );
    bias_to_torch(&get("d.bias"), &mut want_grads[cell.b_ih.clone()]);
    let checked = vec![
        ("kernel".to_string(), cell.w_ih.clone()),
        ("recurrent_kernel".to_string(), cell.w_hh.clone()),
        ("bias".to_string(), cell.b_ih.clone()),
    ];
    let y = get("y");
    Case {
        shape,
        params,
        x: get("x"),
        state0: RnnState {
            h: get("h0"),
            c: Vec::new(),
        },
        dy: get("grad_y"),
        dstate_n: RnnState {
            h: vec![0.0; shape.b * h],
            c: Vec::new(),
        },
        want_state_n: RnnState {
            h: get("h_n"),
            c: Vec::new(),
        },
        want_y: y,
        want_dx: get("d.x"),
        want_dstate0: RnnState {
            h: get("d.h0"),
            c: Vec::new(),
        },
        want_grads,
        checked,
        rnn,
    }
}

fn run(case: &Case) {
    let Case { rnn, shape, .. } = case;
    let y_len = shape.t * shape.b * rnn.config().output_size();

    // Training forward.
    let mut state = case.state0.clone();
    let mut y = vec![0.0; y_len];
    let mut cache = RnnCache::default();
    rnn.forward_train(
        &case.params,
        &case.x,
        *shape,
        &mut state,
        &mut y,
        &mut cache,
        &mut seqrnn::dropout::RowRng::new(0, 0),
    )
    .unwrap();
    assert_close("y", &y, &case.want_y, TOL);
    assert_close("h_n", &state.h, &case.want_state_n.h, TOL);
    assert_close("c_n", &state.c, &case.want_state_n.c, TOL);

    // Inference forward gives the same numbers.
    let mut ws = RnnWorkspace::default();
    let mut state_i = case.state0.clone();
    let mut y_i = vec![0.0; y_len];
    rnn.forward_infer(
        &case.params,
        &case.x,
        *shape,
        &mut state_i,
        &mut y_i,
        &mut ws,
    )
    .unwrap();
    assert_eq!(y_i, y, "inference and training forward differ");
    assert_eq!(state_i, state);

    // Backward, twice into the same gradient block: gradients accumulate.
    let mut grads = vec![0.0; rnn.num_params()];
    let mut dx = vec![0.0; case.x.len()];
    for round in 1..=2 {
        let mut dstate = case.dstate_n.clone();
        rnn.backward(
            &case.params,
            &mut grads,
            &cache,
            &case.dy,
            &mut dstate,
            &mut dx,
            &mut ws,
        )
        .unwrap();
        assert_close("d.x", &dx, &case.want_dx, TOL);
        assert_close("d.h0", &dstate.h, &case.want_dstate0.h, TOL);
        assert_close("d.c0", &dstate.c, &case.want_dstate0.c, TOL);
        for (name, range) in &case.checked {
            let want: Vec<f32> = case.want_grads[range.clone()]
                .iter()
                .map(|g| g * round as f32)
                .collect();
            assert_close(
                &format!("d.{name} (round {round})"),
                &grads[range.clone()],
                &want,
                TOL,
            );
        }
    }
}

fn fixture(name: &str) -> Option<std::path::PathBuf> {
    fixtures_dir().map(|d| d.join(name))
}

#[test]
fn torch_lstm_2layer() {
    if let Some(p) = fixture("torch_lstm_2layer.safetensors") {
        run(&torch_case(&p));
    }
}

#[test]
fn torch_lstm_tiny() {
    if let Some(p) = fixture("torch_lstm_tiny.safetensors") {
        run(&torch_case(&p));
    }
}

#[test]
fn torch_gru_2layer() {
    if let Some(p) = fixture("torch_gru_2layer.safetensors") {
        run(&torch_case(&p));
    }
}

#[test]
fn torch_gru_tiny() {
    if let Some(p) = fixture("torch_gru_tiny.safetensors") {
        run(&torch_case(&p));
    }
}

#[test]
fn keras_gru_reset_before() {
    if let Some(p) = fixture("keras_gru_reset_before.safetensors") {
        run(&keras_case(&p));
    }
}

/// The minimal cells' reference tensors, committed with the repository.
fn min_fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/min")
        .join(name)
}

#[test]
fn torch_mingru_2layer() {
    run(&torch_case(&min_fixture("torch_mingru_2layer.safetensors")));
}

#[test]
fn torch_minlstm_2layer() {
    run(&torch_case(&min_fixture(
        "torch_minlstm_2layer.safetensors",
    )));
}

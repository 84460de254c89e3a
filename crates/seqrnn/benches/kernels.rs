//! Kernel benchmarks: `cargo bench -p seqrnn --bench kernels`.
//!
//! The fused gate passes at the per-step shape `[B, G·H]` with B = 20, and whole-sequence
//! forward and forward+backward passes of a 2-layer stack at T = 35, B = 20.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use seqrnn::rnn::{
    gru, lstm, CellKind, Direction, GruVariant, Init, Rnn, RnnCache, RnnConfig, RnnState,
    RnnWorkspace, SeqShape,
};

fn values(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
        .collect()
}

fn gates(c: &mut Criterion) {
    let (b, h) = (20, 200);
    let pre0 = values(b * 4 * h);
    let mut pre = pre0.clone();
    let mut cs = values(b * h);
    let mut hs = vec![0.0; b * h];
    c.bench_function("lstm forward_gates B=20 H=200", |bench| {
        bench.iter(|| {
            pre.copy_from_slice(&pre0);
            lstm::forward_gates(black_box(&mut pre), &mut cs, &mut hs, h);
        })
    });
    let c_prev = values(b * h);
    let dh = values(b * h);
    let mut dc = values(b * h);
    let mut dpre = vec![0.0; b * 4 * h];
    c.bench_function("lstm backward_gates B=20 H=200", |bench| {
        bench.iter(|| {
            lstm::backward_gates(black_box(&pre), &cs, &c_prev, &dh, &mut dc, &mut dpre, h)
        })
    });
    let g0 = values(b * 3 * h);
    let mut g = g0.clone();
    let hg = values(b * 3 * h);
    let b_hn = values(h);
    let mut hn = vec![0.0; b * h];
    c.bench_function("gru forward_gates_reset_after B=20 H=200", |bench| {
        bench.iter(|| {
            g.copy_from_slice(&g0);
            gru::forward_gates_reset_after(black_box(&mut g), &hg, &b_hn, &mut hn, &mut hs, h);
        })
    });
}

fn sequences(c: &mut Criterion) {
    for (name, cell) in [
        ("lstm", CellKind::Lstm),
        ("gru", CellKind::Gru(GruVariant::ResetAfter)),
    ] {
        let config = RnnConfig {
            cell,
            input_size: 200,
            hidden_size: 200,
            num_layers: 2,
            direction: Direction::Forward,
        };
        let shape = SeqShape { t: 35, b: 20 };
        let rnn = Rnn::new(config).unwrap();
        let mut params = vec![0.0; rnn.num_params()];
        Init::default().apply(&config, &mut params, 1).unwrap();
        let x = values(35 * 20 * 200);
        let dy = values(35 * 20 * 200);
        let mut y = vec![0.0; dy.len()];
        let mut dx = vec![0.0; x.len()];
        let mut grads = vec![0.0; rnn.num_params()];
        let mut cache = RnnCache::default();
        let mut ws = RnnWorkspace::default();
        let mut group = c.benchmark_group(format!("{name} 2x200 T=35 B=20"));
        group.sample_size(20);
        group.bench_function("forward", |bench| {
            bench.iter(|| {
                let mut s = RnnState::zeros(&config, 20);
                rnn.forward_infer(&params, &x, shape, &mut s, &mut y, &mut ws)
                    .unwrap()
            })
        });
        group.bench_function("forward+backward", |bench| {
            bench.iter(|| {
                let mut s = RnnState::zeros(&config, 20);
                rnn.forward_train(
                    &params,
                    &x,
                    shape,
                    &mut s,
                    &mut y,
                    &mut cache,
                    &mut seqrnn::dropout::RowRng::new(0, 0),
                )
                .unwrap();
                let mut ds = RnnState::zeros(&config, 20);
                rnn.backward(&params, &mut grads, &cache, &dy, &mut ds, &mut dx, &mut ws)
                    .unwrap()
            })
        });
        group.finish();
    }
}

criterion_group!(benches, gates, sequences);
criterion_main!(benches);

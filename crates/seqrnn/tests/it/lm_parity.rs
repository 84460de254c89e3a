//! The language model against PyTorch's `torch_lm_*` fixtures: logits, mean cross-entropy and
//! every gradient of one training step.

use crate::common::{assert_close, fixtures_dir};
use seqrnn::io::tensors::TensorFile;
use seqrnn::lm::{LanguageModel, LmCache, LmConfig, LmWorkspace};
use seqrnn::rnn::SeqShape;

fn check(name: &str) {
    let Some(dir) = fixtures_dir() else { return };
    let f = TensorFile::load(&dir.join(name)).unwrap();
    let m = |k: &str| -> usize { f.metadata[k].parse().unwrap() };
    let config = LmConfig {
        vocab: m("vocab"),
        embed: m("embed"),
        cell: f.metadata["kind"].parse().unwrap(),
        hidden: m("hidden_size"),
        layers: m("num_layers"),
        ..LmConfig::default()
    };
    let model = LanguageModel::new(config).unwrap();
    let mut params = vec![0.0; model.num_params()];
    for (n, shape, range) in model.tensors() {
        let t = f.get(&n).unwrap();
        assert_eq!(t.shape, shape, "{n}");
        params[range].copy_from_slice(&t.data);
    }
    let shape = SeqShape {
        t: m("seq_len"),
        b: m("batch"),
    };
    let ids = |k: &str| -> Vec<u32> { f.get(k).unwrap().data.iter().map(|&v| v as u32).collect() };
    let (inputs, targets) = (ids("inputs"), ids("targets"));

    let mut ws = LmWorkspace::default();
    let mut state = model.zero_state(shape.b);
    let logits = model
        .logits(&params, &inputs, shape, &mut state, &mut ws)
        .unwrap();
    assert_close("logits", logits, &f.get("logits").unwrap().data, 1e-5);

    let mut state = model.zero_state(shape.b);
    let mut cache = LmCache::default();
    let sum = model
        .forward_train(
            &params,
            &inputs,
            &targets,
            shape,
            &mut state,
            &mut cache,
            &mut seqrnn::dropout::RowRng::new(0, 0),
        )
        .unwrap();
    let mean = sum / (shape.t * shape.b) as f64;
    let want = f.get("loss").unwrap().data[0] as f64;
    assert!((mean - want).abs() < 1e-5, "loss {mean} vs {want}");
    let mut state = model.zero_state(shape.b);
    let eval = model
        .eval_loss(&params, &inputs, &targets, shape, &mut state, &mut ws)
        .unwrap();
    assert!((eval - sum).abs() < 1e-4, "eval {eval} vs train {sum}");

    let mut grads = vec![0.0; model.num_params()];
    model
        .backward(&params, &mut grads, &cache, &mut ws)
        .unwrap();
    for (n, _, range) in model.tensors() {
        let want = &f.get(&format!("d.{n}")).unwrap().data;
        assert_close(&format!("d.{n}"), &grads[range], want, 1e-5);
    }
}

#[test]
fn torch_lm_lstm() {
    check("torch_lm_lstm.safetensors");
}

#[test]
fn torch_lm_gru() {
    check("torch_lm_gru.safetensors");
}

"""seqrnn.LSTM / seqrnn.GRU against torch.nn.LSTM / GRU: reference tensors made with PyTorch
(fixtures/make_fixtures.py and ../shared/fixtures), PyTorch's interface, and refusals."""

from __future__ import annotations

import numpy as np
import pytest

import seqrnn
from conftest import FIXTURES, REPO, need_shared, read_safetensors

TOL = 1e-5
NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def layer_of(f, cell: str):
    cls = seqrnn.LSTM if cell == "lstm" else seqrnn.GRU
    return cls(
        int(f["input_size"]),
        int(f["hidden_size"]),
        num_layers=int(f["num_layers"]),
        bidirectional=bool(f["bidirectional"]),
        batch_first=bool(f["batch_first"]),
    )


def weights(f) -> dict:
    return {k: np.asarray(f[k], np.float32) for k in f.keys() if k.startswith(NAMES)}


@pytest.mark.parametrize(
    "name",
    [
        "lstm_bidir_2layer",
        "gru_bidir_2layer",
        "lstm_batch_first",
        "gru_batch_first_bidir",
        "lstm_no_state",
    ],
)
def test_matches_torch(name):
    f = np.load(FIXTURES / f"{name}.npz")
    cell = name.split("_")[0]
    layer = layer_of(f, cell)
    layer.load_state_dict(weights(f))
    x = f["x"]
    assert x.dtype == np.float32
    if cell == "lstm":
        hx = (f["h0"], f["c0"]) if int(f["has_state"]) else None
        y, (h, c) = layer(x, hx)
        np.testing.assert_allclose(c, f["c_n"], atol=TOL, rtol=0)
    else:
        y, h = layer(x, f["h0"] if int(f["has_state"]) else None)
    assert y.shape == f["y"].shape and y.dtype == np.float32
    np.testing.assert_allclose(y, f["y"], atol=TOL, rtol=0)
    np.testing.assert_allclose(h, f["h_n"], atol=TOL, rtol=0)


@pytest.mark.parametrize("name", ["torch_lstm_2layer", "torch_gru_2layer", "torch_lstm_tiny"])
def test_matches_shared_torch_fixtures(name):
    f = read_safetensors(need_shared("fixtures") / f"{name}.safetensors")
    x = f["x"].astype(np.float32)
    layers = sum(1 for k in f if k.startswith("weight_ih_l"))
    cls = seqrnn.LSTM if "lstm" in name else seqrnn.GRU
    layer = cls(x.shape[2], f["h_n"].shape[2], num_layers=layers)
    layer.load_state_dict({k: v.astype(np.float32) for k, v in f.items() if k.startswith(NAMES)})
    h0 = f["h0"].astype(np.float32)
    if cls is seqrnn.LSTM:
        y, (h, c) = layer(x, (h0, f["c0"].astype(np.float32)))
        np.testing.assert_allclose(c, f["c_n"], atol=TOL, rtol=0)
    else:
        y, h = layer(x, h0)
    np.testing.assert_allclose(y, f["y"], atol=TOL, rtol=0)
    np.testing.assert_allclose(h, f["h_n"], atol=TOL, rtol=0)


def test_keras_reset_before_gru():
    f = read_safetensors(need_shared("fixtures") / "keras_gru_reset_before.safetensors")
    kernel, recurrent, bias = (f[k].astype(np.float32) for k in ("kernel", "recurrent_kernel", "bias"))
    i, h = kernel.shape[0], recurrent.shape[0]
    # Keras' gate columns are z, r, h; PyTorch's rows r, z, n.
    order = lambda m: np.concatenate([m[..., h : 2 * h], m[..., :h], m[..., 2 * h :]], axis=-1)
    gru = seqrnn.GRU(i, h, reset_after=False)
    gru.load_state_dict(
        {
            "weight_ih_l0": np.ascontiguousarray(order(kernel).T),
            "weight_hh_l0": np.ascontiguousarray(order(recurrent).T),
            "bias_ih_l0": order(bias),
            "bias_hh_l0": np.zeros(3 * h, np.float32),
        }
    )
    y, h_n = gru(f["x"].astype(np.float32), f["h0"].astype(np.float32)[None])
    np.testing.assert_allclose(y, f["y"], atol=TOL, rtol=0)
    np.testing.assert_allclose(h_n[0], f["h_n"], atol=TOL, rtol=0)


def test_state_dict_round_trip_and_names():
    lstm = seqrnn.LSTM(3, 4, num_layers=2, bidirectional=True, seed=1)
    sd = lstm.state_dict()
    assert list(sd)[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert sd["weight_ih_l1_reverse"].shape == (16, 8) and sd["weight_hh_l0"].shape == (16, 4)
    bound = 1 / np.sqrt(4)
    assert all(np.abs(v).max() <= bound for v in sd.values())
    other = seqrnn.LSTM(3, 4, num_layers=2, bidirectional=True, seed=2)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    assert not np.allclose(other(x)[0], lstm(x)[0])
    other.load_state_dict(sd)
    np.testing.assert_array_equal(other(x)[0], lstm(x)[0])
    # The dict returned is a copy: changing it leaves the layer alone.
    sd["weight_ih_l0"][:] = 0
    np.testing.assert_array_equal(other(x)[0], lstm(x)[0])


def test_same_seed_same_weights():
    a, b = seqrnn.GRU(3, 5, seed=7), seqrnn.GRU(3, 5, seed=7)
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, b.state_dict()[k])


def test_unbatched_and_batch_first_agree_with_time_major():
    lstm = seqrnn.LSTM(3, 4, num_layers=2, seed=3)
    x = np.random.default_rng(1).standard_normal((6, 2, 3)).astype(np.float32)
    y, (h, c) = lstm(x)
    y1, (h1, c1) = lstm(x[:, 1, :])
    np.testing.assert_allclose(y1, y[:, 1, :], atol=1e-6)
    np.testing.assert_allclose(h1, h[:, 1, :], atol=1e-6)
    bf = seqrnn.LSTM(3, 4, num_layers=2, batch_first=True, seed=3)
    yb, (hb, _) = bf(x.transpose(1, 0, 2))
    np.testing.assert_array_equal(yb, y.transpose(1, 0, 2))
    np.testing.assert_array_equal(hb, h)


def test_state_carries_across_windows():
    gru = seqrnn.GRU(2, 3, seed=4)
    x = np.random.default_rng(2).standard_normal((8, 1, 2)).astype(np.float32)
    y, h = gru(x)
    ya, ha = gru(x[:5])
    yb, hb = gru(x[5:], ha)
    np.testing.assert_allclose(np.concatenate([ya, yb]), y, atol=1e-6)
    np.testing.assert_allclose(hb, h, atol=1e-6)


def test_repr():
    assert repr(seqrnn.LSTM(10, 20, num_layers=2, bidirectional=True)) == (
        "LSTM(10, 20, num_layers=2, bidirectional=True)"
    )
    assert repr(seqrnn.GRU(4, 8, reset_after=False)) == "GRU(4, 8, reset_after=False)"


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: seqrnn.LSTM(0, 4), "input_size must be a positive integer"),
        (lambda: seqrnn.GRU(3, -1), "hidden_size must be a positive integer"),
        (lambda: seqrnn.GRU(3, 4, num_layers=1.5), "num_layers must be a positive integer"),
    ],
)
def test_impossible_sizes(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_state_dicts():
    lstm = seqrnn.LSTM(3, 4)
    sd = lstm.state_dict()
    with pytest.raises(ValueError, match="missing bias_hh_l0"):
        lstm.load_state_dict({k: v for k, v in sd.items() if k != "bias_hh_l0"})
    with pytest.raises(ValueError, match="unexpected weight_ih_l1"):
        lstm.load_state_dict({**sd, "weight_ih_l1": sd["weight_ih_l0"]})
    with pytest.raises(ValueError, match=r"weight_hh_l0 must have shape \[16, 4\], got \[4, 16\]"):
        lstm.load_state_dict({**sd, "weight_hh_l0": sd["weight_hh_l0"].T.copy()})
    with pytest.raises(ValueError, match="bias_ih_l0 must be a float32 array, got dtype float64"):
        lstm.load_state_dict({**sd, "bias_ih_l0": sd["bias_ih_l0"].astype(np.float64)})
    # Nothing was changed by the refused calls.
    for k, v in lstm.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])


def test_bad_inputs():
    gru = seqrnn.GRU(3, 4, num_layers=2)
    x = np.zeros((5, 2, 3), np.float32)
    with pytest.raises(ValueError, match="input must be a float32 array, got dtype float64"):
        gru(x.astype(np.float64))
    with pytest.raises(ValueError, match="input must have 3 features"):
        gru(np.zeros((5, 2, 4), np.float32))
    with pytest.raises(ValueError, match=r"input must be \[T, B, 3\]"):
        gru(np.zeros((5,), np.float32))
    with pytest.raises(ValueError, match=r"h0 must have shape \[2, 2, 4\], got \[1, 2, 4\]"):
        gru(x, np.zeros((1, 2, 4), np.float32))
    lstm = seqrnn.LSTM(3, 4)
    with pytest.raises(ValueError, match=r"tuple \(h0, c0\)"):
        lstm(x, np.zeros((1, 2, 4), np.float32))
    with pytest.raises(ValueError, match="at least one step"):
        lstm(np.zeros((0, 2, 3), np.float32))


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_minimal_cells_match_the_torch_implementation_of_the_paper(cell):
    """seqrnn.MinGRU / MinLSTM against tools/peers/min_rnn_fixtures.py's PyTorch tensors."""
    path = REPO / "crates" / "seqrnn" / "tests" / "fixtures" / "min" / f"torch_{cell}_2layer.safetensors"
    f = read_safetensors(path)
    x = f["x"].astype(np.float32)
    layers = sum(1 for k in f if k.startswith("weight_ih_l"))
    cls = seqrnn.MinGRU if cell == "mingru" else seqrnn.MinLSTM
    layer = cls(x.shape[2], f["h_n"].shape[2], num_layers=layers)
    assert set(layer.state_dict()) == {k for k in f if k.startswith(NAMES)}
    layer.load_state_dict({k: v.astype(np.float32) for k, v in f.items() if k.startswith(NAMES)})
    y, h = layer(x, f["h0"].astype(np.float32))
    np.testing.assert_allclose(y, f["y"], atol=TOL, rtol=0)
    np.testing.assert_allclose(h, f["h_n"], atol=TOL, rtol=0)

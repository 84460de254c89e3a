"""Reference tensors of the minimal GRU and LSTM (Feng et al. 2024, "Were RNNs All We Needed?"),
made with a small PyTorch implementation of the paper's equations, for seqrnn's parity tests
(crates/seqrnn/tests/it/parity.rs). Written to crates/seqrnn/tests/fixtures/min/.

Each cell, per layer (input x_t, state h_{t-1}; `Linear` layers on x_t only, PyTorch's
`nn.Linear` convention W x + b):

    minGRU:  z = sigmoid(Linear_z(x)),  h~ = g(Linear_h(x)),  h = (1 - z) * h_prev + z * h~
    minLSTM: f = sigmoid(Linear_f(x)),  i = sigmoid(Linear_i(x)),  h~ = g(Linear_h(x)),
             f' = f / (f + i),  i' = i / (f + i),  h = f' * h_prev + i' * h~

with g(v) = v + 0.5 for v >= 0 and sigmoid(v) otherwise (the paper's positive activation of its
log-space form). seqrnn's names: `weight_ih_l{k} [G*H, I]` with row blocks z, h (minGRU) or
f, i, h (minLSTM), `bias_ih_l{k} [G*H]`; no `weight_hh` or `bias_hh`.

The recurrence runs sequentially; the script also checks it against the paper's log-space
parallel scan (`parallel_scan_log`, Heinsen 2023) on positive states, which must agree.

Conventions as ../shared/fixtures: float64 computation, inputs exactly representable in f32,
time-major x[T, B, I], states [layers, B, H], loss = sum(y * grad_y) + sum(h_n * grad_h_n),
gradients named `d.<name>`.

Usage: python tools/peers/min_rnn_fixtures.py [--out crates/seqrnn/tests/fixtures/min]
"""
import argparse
import os

import torch
from safetensors.torch import save_file

torch.set_default_dtype(torch.float64)


def g(v):
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def log_g(v):
    return torch.where(v >= 0, torch.log(torch.relu(v) + 0.5), -torch.nn.functional.softplus(-v))


def parallel_scan_log(log_coeffs, log_values):
    """h_t = a_t h_{t-1} + b_t in log space over time (dim 0): log_values has h_0 first."""
    a_star = torch.nn.functional.pad(torch.cumsum(log_coeffs, dim=0), (0, 0, 0, 0, 1, 0))
    log_h0_plus_b_star = torch.logcumsumexp(log_values - a_star, dim=0)
    return torch.exp(a_star + log_h0_plus_b_star)[1:]


def layer(kind, x, h0, w, b):
    """One layer, sequential. x [T, B, I], h0 [B, H], w [G*H, I], b [G*H] -> y [T, B, H]."""
    hid = h0.shape[1]
    a = x @ w.T + b
    h, ys = h0, []
    for t in range(x.shape[0]):
        if kind == "mingru":
            z, cand = torch.sigmoid(a[t, :, :hid]), g(a[t, :, hid:])
            h = (1 - z) * h + z * cand
        else:
            f, i = torch.sigmoid(a[t, :, :hid]), torch.sigmoid(a[t, :, hid : 2 * hid])
            cand = g(a[t, :, 2 * hid :])
            h = (f * h + i * cand) / (f + i)
        ys.append(h)
    return torch.stack(ys)


def layer_log_space(kind, x, h0, w, b):
    """The paper's parallel form of `layer` (needs h0 > 0)."""
    hid = h0.shape[1]
    a = x @ w.T + b
    if kind == "mingru":
        k, hk = a[..., :hid], a[..., hid:]
        log_z = -torch.nn.functional.softplus(-k)
        log_coeffs = -torch.nn.functional.softplus(k)
        log_values = log_z + log_g(hk)
    else:
        fk, ik, hk = a[..., :hid], a[..., hid : 2 * hid], a[..., 2 * hid :]
        diff = torch.nn.functional.softplus(-fk) - torch.nn.functional.softplus(-ik)
        log_coeffs = -torch.nn.functional.softplus(diff)
        log_values = -torch.nn.functional.softplus(-diff) + log_g(hk)
    log_values = torch.cat([torch.log(h0)[None], log_values], dim=0)
    return parallel_scan_log(log_coeffs, log_values)


def f32(t):
    """Values exactly representable in float32, stored as float64."""
    return t.float().double()


def make(kind, layers, inp, hid, seq, batch, seed):
    gen = torch.Generator().manual_seed(seed)
    gates = 2 if kind == "mingru" else 3
    rnd = lambda *s, scale=1.0: f32((torch.rand(*s, generator=gen) * 2 - 1) * scale)
    params = {}
    for k in range(layers):
        i_k = inp if k == 0 else hid
        params[f"weight_ih_l{k}"] = rnd(gates * hid, i_k, scale=0.6).requires_grad_()
        params[f"bias_ih_l{k}"] = rnd(gates * hid, scale=0.6).requires_grad_()
    x = rnd(seq, batch, inp).requires_grad_()
    h0 = rnd(layers, batch, hid, scale=0.5).requires_grad_()
    grad_y, grad_h_n = rnd(seq, batch, hid), rnd(layers, batch, hid)
    out, finals = x, []
    for k in range(layers):
        out = layer(kind, out, h0[k], params[f"weight_ih_l{k}"], params[f"bias_ih_l{k}"])
        finals.append(out[-1])
    y, h_n = out, torch.stack(finals)
    loss = (y * grad_y).sum() + (h_n * grad_h_n).sum()
    loss.backward()
    # The sequential recurrence equals the paper's log-space parallel scan (positive states).
    pos = h0[0].detach().abs() + 0.1
    w, b = params["weight_ih_l0"].detach(), params["bias_ih_l0"].detach()
    seq_y = layer(kind, x.detach(), pos, w, b)
    par_y = layer_log_space(kind, x.detach(), pos, w, b)
    assert torch.allclose(seq_y, par_y, atol=1e-10), (seq_y - par_y).abs().max()
    tensors = {n: p.detach() for n, p in params.items()}
    tensors |= {f"d.{n}": p.grad for n, p in params.items()}
    tensors |= {"x": x.detach(), "h0": h0.detach(), "y": y.detach(), "h_n": h_n.detach()}
    tensors |= {"grad_y": grad_y, "grad_h_n": grad_h_n, "d.x": x.grad, "d.h0": h0.grad}
    meta = {
        "kind": kind,
        "input_size": str(inp),
        "hidden_size": str(hid),
        "num_layers": str(layers),
        "seq_len": str(seq),
        "batch": str(batch),
        "made_with": f"torch {torch.__version__}, tools/peers/min_rnn_fixtures.py",
    }
    return {n: t.contiguous() for n, t in tensors.items()}, meta


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="crates/seqrnn/tests/fixtures/min")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for kind, seed in [("mingru", 11), ("minlstm", 12)]:
        tensors, meta = make(kind, layers=2, inp=5, hid=7, seq=6, batch=3, seed=seed)
        path = os.path.join(a.out, f"torch_{kind}_2layer.safetensors")
        save_file(tensors, path, metadata=meta)
        print(path, len(tensors), "tensors")


if __name__ == "__main__":
    main()

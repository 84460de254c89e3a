"""seqrnn.LSTM / seqrnn.GRU from Python against torch.nn.LSTM / GRU: the same weights (PyTorch's
layer's, loaded with load_state_dict), the same numpy input, inference forward passes (35 steps x
batch 20 x input = hidden, zero initial state). Each time is one call from Python with numpy in and
out (`.numpy()` of PyTorch's output included). Checks that the outputs agree within 1e-5, then times
the one peer `--peer` names: one peer a process, because PyTorch's OpenMP threads keep spinning
after each call and would slow whatever runs next in the same process. Run the two peers'
processes in turn (tools/bench-python.sh does) and compare the medians.

Needs a Python with torch, numpy and seqrnn installed (`pip install ./python`).

Usage:
  python tools/peers/python_layers.py --peer seqrnn --cell lstm --hidden 200 --layers 1 --threads 2 [--repeat 50] [--json]
"""
import argparse, json, statistics, time
import numpy as np
import torch, torch.nn as nn
import seqrnn

BATCH, STEPS = 20, 35

p = argparse.ArgumentParser()
p.add_argument('--peer', default='seqrnn', choices=['seqrnn', 'torch'])
p.add_argument('--cell', default='lstm', choices=['lstm', 'gru'])
p.add_argument('--hidden', type=int, default=200); p.add_argument('--layers', type=int, default=1)
p.add_argument('--threads', type=int, default=2); p.add_argument('--repeat', type=int, default=50)
p.add_argument('--warmup', type=int, default=5); p.add_argument('--json', action='store_true')
a = p.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(0)
seqrnn.set_threads(a.threads)

peer = (nn.LSTM if a.cell == 'lstm' else nn.GRU)(a.hidden, a.hidden, a.layers).float().eval()
ours = (seqrnn.LSTM if a.cell == 'lstm' else seqrnn.GRU)(a.hidden, a.hidden, a.layers)
ours.load_state_dict({k: v.detach().numpy() for k, v in peer.state_dict().items()})
xs = np.random.default_rng(0).standard_normal((STEPS, BATCH, a.hidden)).astype(np.float32)
xt = torch.from_numpy(xs)


def torch_call():
    with torch.no_grad():
        return peer(xt)[0].numpy()


def seqrnn_call():
    return ours(xs)[0]


diff = float(np.abs(torch_call() - seqrnn_call()).max())
assert diff < 1e-5, diff
call = seqrnn_call if a.peer == 'seqrnn' else torch_call
times = []
for i in range(a.warmup + a.repeat):
    t = time.perf_counter()
    call()
    dt = time.perf_counter() - t
    if i >= a.warmup:
        times.append(1000 * dt)
row = dict(peer=a.peer, cell=a.cell, hidden=a.hidden, layers=a.layers, threads=a.threads, batch=BATCH,
           steps=STEPS, ms_per_forward=round(statistics.median(times), 3), min_ms=round(min(times), 3),
           max_abs_diff=diff, torch_version=torch.__version__)
if a.json:
    print(json.dumps(row))
else:
    print(f"{a.peer} {a.cell} H={a.hidden} layers={a.layers} threads={a.threads}: median "
          f"{row['ms_per_forward']:.3f} ms, min {row['min_ms']:.3f} ms per forward (max |diff| {diff:.1e})")

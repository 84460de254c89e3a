"""PyTorch peer of seqrnn's bare LSTM/GRU layer forward: `torch.nn.LSTM` / `torch.nn.GRU` inference
(`torch.no_grad()`, float32, eval mode, CPU) on a time-major input of 35 steps x batch 20 x input
size = hidden size, from a zero initial state, `--layers` stacked layers (1 or 2), PyTorch's default
init (uniform +-1/sqrt(H), seed 0), `torch.set_num_threads(--threads)`.

The input is a numpy float32 array converted once, outside the timing, with torch.from_numpy; the
time measured is the call `layer(x)` plus `.numpy()` of its output (a Python user gets numpy
back). `--warmup` untimed calls, then `--repeat` timed ones (time.perf_counter); prints the median
and the minimum in milliseconds per forward.

Usage:
  python torch_layers.py --cell lstm --hidden 200 --layers 1 --threads 2 [--repeat 50 --warmup 5] [--json]
  python torch_layers.py --cell gru --hidden 650 --layers 2 --threads 2 --json
"""
import argparse, json, statistics, time
import numpy as np
import torch, torch.nn as nn

BATCH, STEPS = 20, 35

p = argparse.ArgumentParser()
p.add_argument('--cell', default='lstm', choices=['lstm', 'gru'])
p.add_argument('--hidden', type=int, default=200); p.add_argument('--layers', type=int, default=1)
p.add_argument('--threads', type=int, default=2); p.add_argument('--repeat', type=int, default=50)
p.add_argument('--warmup', type=int, default=5); p.add_argument('--json', action='store_true')
a = p.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(0)

layer = (nn.LSTM if a.cell == 'lstm' else nn.GRU)(a.hidden, a.hidden, a.layers).float().eval()
xs = np.random.default_rng(0).standard_normal((STEPS, BATCH, a.hidden)).astype(np.float32)
x = torch.from_numpy(xs)

times = []
with torch.no_grad():
    for i in range(a.warmup + a.repeat):
        t = time.perf_counter()
        y, _ = layer(x)
        out = y.numpy()
        dt = time.perf_counter() - t
        if i >= a.warmup:
            times.append(1000 * dt)
assert out.shape == (STEPS, BATCH, a.hidden)

med, lo = statistics.median(times), min(times)
if a.json:
    print(json.dumps(dict(peer='torch', cell=a.cell, hidden=a.hidden, layers=a.layers, threads=a.threads,
                          batch=BATCH, steps=STEPS, ms_per_forward=round(med, 4), min_ms=round(lo, 4))))
else:
    print(f'torch {torch.__version__} nn.{a.cell.upper()} hidden {a.hidden} layers {a.layers} threads {a.threads} '
          f'batch {BATCH} steps {STEPS}: median {med:.3f} ms/forward, min {lo:.3f} ms ({a.repeat} calls after {a.warmup} warm-up)')

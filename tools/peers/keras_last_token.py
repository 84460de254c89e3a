"""Keras 3 (TensorFlow backend) peer of `seqrnn train --objective last-token`: the tutorials'
word-level model on windows of N words predicting the next one.

    Embedding -> LSTM/GRU(return_sequences) -> Dropout -> ... -> LSTM/GRU -> Dropout -> Dense(softmax)

Two modes (both print one JSON object):

  --check RUN   loads the weights of a seqrnn last-token run (RUN/model.safetensors, its
                config.json and vocab.txt) into the Keras model and scores the same split the
                way `seqrnn eval` does: every token but the first predicted once from the N words
                before it (the first N-1 predicted tokens from the fewer words before them),
                from a zero state. Prints the per-word perplexity, to set beside
                `seqrnn eval --model RUN --split valid --json`.
                Layouts: seqrnn/PyTorch LSTM weight_ih [4H, I] gates i,f,g,o plus b_ih and b_hh;
                Keras kernel [I, 4H] gates i,f,c,o and one bias: kernel = W_ih^T,
                recurrent_kernel = W_hh^T, bias = b_ih + b_hh. GRU: PyTorch r,z,n, Keras z,r,h
                (reset_after=True, bias [2, 3H] = [b_ih; b_hh] reordered). Dense kernel = W^T.

  --steps K     training throughput: K timed `train_on_batch` steps (after 5 warm-up steps) on
                shuffled windows of the training split, Adam (lr 1e-3), sparse categorical
                cross-entropy; prints windows (= predicted words) per second.

Usage:
  python keras_last_token.py --data DIR --check RUN [--split valid] [--threads 1]
  python keras_last_token.py --data DIR --steps 50 --window 20 --hidden 200 --batch 128 --threads 1
"""
import argparse, json, math, os, struct, time

p = argparse.ArgumentParser()
p.add_argument('--data', required=True)
p.add_argument('--check', help='a seqrnn last-token run folder')
p.add_argument('--split', default='valid', choices=['valid', 'test'])
p.add_argument('--limit', type=int, default=0, help='score only the first N tokens of the split')
p.add_argument('--steps', type=int, default=0)
p.add_argument('--cell', default='lstm', choices=['lstm', 'gru'])
p.add_argument('--window', type=int, default=20)
p.add_argument('--hidden', type=int, default=200)
p.add_argument('--embed', type=int, default=0)
p.add_argument('--layers', type=int, default=2)
p.add_argument('--dropout', type=float, default=0.2)
p.add_argument('--batch', type=int, default=128)
p.add_argument('--eval-batch', type=int, default=256)
p.add_argument('--threads', type=int, default=1)
p.add_argument('--seed', type=int, default=1)
a = p.parse_args()
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
import numpy as np, tensorflow as tf, keras
from keras import layers
tf.config.threading.set_intra_op_parallelism_threads(a.threads)
tf.config.threading.set_inter_op_parallelism_threads(a.threads)


def read_safetensors(path):
    raw = open(path, 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == '__metadata__':
            continue
        assert t['dtype'] == 'F32', t
        lo, hi = t['data_offsets']
        out[name] = np.frombuffer(raw[8 + n + lo:8 + n + hi], dtype='<f4').reshape(t['shape'])
    return out


def encode(path, ids, grow):
    """Words of each line then <eos>; unknown words are <unk> unless `grow` adds them."""
    out = []
    for line in open(path, encoding='utf-8'):
        for w in line.split() + ['<eos>']:
            if w not in ids:
                if grow:
                    ids[w] = len(ids)
                else:
                    w = '<unk>'
            out.append(ids[w])
    return np.array(out, dtype=np.int32)


def build(V, E, H, L, cell, dropout, N=None):
    R = layers.LSTM if cell == 'lstm' else layers.GRU
    seq = [keras.Input((N,), dtype='int32'), layers.Embedding(V, E)]
    for l in range(L):
        seq += [R(H, return_sequences=l + 1 < L), layers.Dropout(dropout)]
    seq.append(layers.Dense(V, activation='softmax'))
    return keras.Sequential(seq)


def torch_to_keras_gates(w, cell, H):
    """Rows of a PyTorch [G*H, ...] tensor in Keras' gate order."""
    if cell == 'lstm':
        return w  # i, f, g(=c), o in both
    r, z, n = w[:H], w[H:2 * H], w[2 * H:]
    return np.concatenate([z, r, n], axis=0)


def load_seqrnn(model, w, cell, L, H):
    rnns = [l for l in model.layers if isinstance(l, (layers.LSTM, layers.GRU))]
    emb = [l for l in model.layers if isinstance(l, layers.Embedding)][0]
    dense = [l for l in model.layers if isinstance(l, layers.Dense)][0]
    emb.set_weights([w['embedding.weight']])
    for l, layer in enumerate(rnns):
        wih = torch_to_keras_gates(w[f'rnn.weight_ih_l{l}'], cell, H)
        whh = torch_to_keras_gates(w[f'rnn.weight_hh_l{l}'], cell, H)
        bih = torch_to_keras_gates(w[f'rnn.bias_ih_l{l}'], cell, H)
        bhh = torch_to_keras_gates(w[f'rnn.bias_hh_l{l}'], cell, H)
        bias = bih + bhh if cell == 'lstm' else np.stack([bih, bhh])
        layer.set_weights([wih.T.copy(), whh.T.copy(), bias])
    dense.set_weights([w['head.weight'].T.copy(), w['head.bias']])


def per_word_loss(model, stream, N, eval_batch):
    """Summed cross-entropy of every token but the first, each from the <= N tokens before it."""
    total = 0.0
    for t in range(1, min(N, len(stream))):  # the first N-1 predicted tokens: shorter windows
        probs = model.predict_on_batch(stream[None, :t])
        total -= math.log(max(float(probs[0, stream[t]]), 1e-30))
    starts = np.arange(0, max(len(stream) - N, 0))
    for lo in range(0, len(starts), eval_batch):
        s = starts[lo:lo + eval_batch]
        x = stream[s[:, None] + np.arange(N)[None, :]]
        probs = np.asarray(model.predict_on_batch(x), dtype=np.float64)
        total -= np.log(np.maximum(probs[np.arange(len(s)), stream[s + N]], 1e-30)).sum()
    return total


def split_file(name):
    for f in (f'ptb.{name}.txt', f'{name}.txt'):
        if os.path.exists(os.path.join(a.data, f)):
            return os.path.join(a.data, f)
    raise SystemExit(f'no {name} split in {a.data}')


info = dict(peer='keras-last-token', keras=keras.__version__, tf=tf.__version__, threads=a.threads)
if a.check:
    cfg = json.load(open(os.path.join(a.check, 'config.json')))
    m, t = cfg['model'], cfg['train']
    cell = m['cell']
    assert cell in ('lstm', 'gru'), f'cell {cell} has no Keras peer here'
    vocab = [l.rstrip('\n') for l in open(os.path.join(a.check, 'vocab.txt'), encoding='utf-8')]
    ids = {w: i for i, w in enumerate(vocab)}
    stream = encode(split_file(a.split), ids, grow=False)
    if a.limit:
        stream = stream[:a.limit]
    N = t['window']
    model = build(len(vocab), m['embed'], m['hidden'], m['layers'], cell, m['dropout'])
    load_seqrnn(model, read_safetensors(os.path.join(a.check, 'model.safetensors')), cell,
                m['layers'], m['hidden'])
    t0 = time.perf_counter()
    loss = per_word_loss(model, stream, N, a.eval_batch) / (len(stream) - 1)
    info.update(mode='check', run=a.check, split=a.split, window=N, tokens=len(stream) - 1,
                loss=loss, ppl=math.exp(loss), seconds=round(time.perf_counter() - t0, 1))
if a.steps:
    ids = {}
    train = encode(split_file('train'), ids, grow=True)
    V, N, B = len(ids), a.window, a.batch
    keras.utils.set_random_seed(a.seed)
    model = build(V, a.embed or a.hidden, a.hidden, a.layers, a.cell, a.dropout, N)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss='sparse_categorical_crossentropy')
    order = np.random.default_rng(a.seed).permutation(len(train) - N)

    def batch(i):
        s = order[(i * B) % (len(order) - B):][:B]
        return train[s[:, None] + np.arange(N)[None, :]], train[s + N]

    for i in range(5):
        model.train_on_batch(*batch(i))
    t0 = time.perf_counter()
    for i in range(a.steps):
        loss = model.train_on_batch(*batch(5 + i))
    dt = time.perf_counter() - t0
    info.update(mode='throughput', cell=a.cell, window=N, hidden=a.hidden, layers=a.layers,
                batch=B, params=model.count_params(), steps=a.steps,
                train_windows_per_s=round(a.steps * B / dt, 1), last_loss=float(loss))
print(json.dumps(info))

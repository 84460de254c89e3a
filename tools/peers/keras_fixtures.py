"""Keras 3 (JAX backend) fixtures of `seqrnn import --keras`: small models of the family it maps,
each trained a few steps (so its weights are not the initial ones) and saved as `.keras`, with
what Keras computes on fixed inputs.

    Embedding -> LSTM/GRU (stacked, return_sequences either way, reset_after either way)
              -> Dropout -> Dense(softmax)

Written to crates/seqrnn/tests/fixtures/keras/ (or --out):
  NAME.keras   the archive (`config.json`, `model.weights.h5`, `metadata.json`)
  NAME.json    the inputs and Keras' answers: `windows` (int ids, [B, T]), `targets` ([B, T] for an
               every-step model, [B] for a last-token model or classifier), `keras_loss` (the mean
               sparse categorical cross-entropy `model.evaluate` reports on them), `probs` (the
               softmax rows `model.predict` gives for the first windows: every-step models their
               last position), and the versions that made them.
  vocab.txt, classifier_vocab.txt, classifier_labels.txt   one token (label) a line, in id order.

Models outside the family (a Conv1D layer, mixed LSTM and GRU in a last-token stack) and an
archive without weights are written for the refusal tests.

Usage (a virtualenv outside the repository):
  python3 -m venv /tmp/peer-keras && /tmp/peer-keras/bin/pip install keras 'jax[cpu]' h5py numpy
  KERAS_BACKEND=jax /tmp/peer-keras/bin/python tools/peers/keras_fixtures.py
"""
import argparse, json, os, zipfile

os.environ.setdefault('KERAS_BACKEND', 'jax')
p = argparse.ArgumentParser()
p.add_argument('--out', default=os.path.join(os.path.dirname(__file__), '..', '..',
                                             'crates', 'seqrnn', 'tests', 'fixtures', 'keras'))
a = p.parse_args()

import numpy as np, keras
from keras import layers

V, E, WINDOW, STEPS = 24, 8, 6, 40
CLASSES, CV = 3, 20


def stream(n, seed):
    """A token stream with structure to learn: each token mostly follows from the one before."""
    rng = np.random.default_rng(seed)
    out = [1]
    for _ in range(n - 1):
        out.append((out[-1] * 5 + 3) % V if rng.random() < 0.7 else int(rng.integers(1, V)))
    return np.array(out, dtype=np.int32)


def every_step_data(seed, b):
    s = stream(b * (WINDOW + 1) * 4, seed)
    starts = np.arange(b) * (WINDOW + 1) * 4
    x = np.stack([s[i:i + WINDOW] for i in starts])
    return x, np.stack([s[i + 1:i + 1 + WINDOW] for i in starts])


def last_token_data(seed, b):
    s = stream(b * 3 + WINDOW + 1, seed)
    x = np.stack([s[i:i + WINDOW] for i in range(0, 3 * b, 3)])
    return x, np.array([s[i + WINDOW] for i in range(0, 3 * b, 3)], dtype=np.int32)


def classifier_data(seed, b, t=7):
    """Post-padded (id 0) sequences of 2..t tokens; the label is the most frequent token's class."""
    rng = np.random.default_rng(seed)
    x = np.zeros((b, t), dtype=np.int32)
    y = np.zeros(b, dtype=np.int32)
    for i in range(b):
        n = int(rng.integers(2, t + 1))
        x[i, :n] = rng.integers(2, CV, size=n)
        y[i] = int(np.bincount(x[i, :n] % CLASSES).argmax())
    return x, y


def rnn(cell, units, seq, **kw):
    return (layers.LSTM if cell == 'lstm' else layers.GRU)(units, return_sequences=seq, **kw)


def train_and_save(name, model, data, kind, window=WINDOW):
    keras.utils.set_random_seed(7)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss='sparse_categorical_crossentropy')
    x, y = data(11, 32)
    for i in range(STEPS):
        j = (i * 8) % 32
        model.train_on_batch(x[j:j + 8], y[j:j + 8])
    xe, ye = data(23, 5)
    loss = float(model.evaluate(xe, ye, batch_size=len(xe), verbose=0))
    probs = np.asarray(model.predict(xe[:2], verbose=0), dtype=np.float64)
    if probs.ndim == 3:
        probs = probs[:, -1, :]
    path = os.path.join(a.out, name + '.keras')
    if name == 'lm_lstm2':
        model.save(path)  # as Keras writes it: members stored
    else:
        save_small(model, path)
    info = dict(kind=kind, window=window, windows=xe.tolist(), targets=ye.tolist(),
                keras_loss=loss, probs=probs.tolist(), keras=keras.__version__,
                backend=keras.backend.backend())
    with open(os.path.join(a.out, name + '.json'), 'w') as f:
        json.dump(info, f, indent=1)
    print(f'{name}: loss {loss:.6f}, {os.path.getsize(path)} bytes')


def save_small(model, path):
    """The archive with its members deflated (Keras stores them; the reader takes either, and
    the fixtures stay small)."""
    model.save(path + '.tmp.keras')
    with zipfile.ZipFile(path + '.tmp.keras') as src, \
            zipfile.ZipFile(path, 'w', compression=zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item.filename))
    os.remove(path + '.tmp.keras')


def lm(cells, seq_last=True, drop=0.2, widths=None, mask_zero=False, extra=None):
    widths = widths or [8] * len(cells)
    out = [keras.Input((WINDOW,)), layers.Embedding(V, E, mask_zero=mask_zero)]
    out += extra or []
    for k, (cell, h) in enumerate(zip(cells, widths)):
        out.append(rnn(cell[0], h, seq_last or k + 1 < len(cells), **cell[1]))
        out.append(layers.Dropout(drop))
    out.append(layers.Dense(V, activation='softmax'))
    return keras.Sequential(out)


def main():
    os.makedirs(a.out, exist_ok=True)
    keras.utils.set_random_seed(1)
    lstm, gru_after, gru_before = ('lstm', {}), ('gru', {}), ('gru', dict(reset_after=False))
    with open(os.path.join(a.out, 'vocab.txt'), 'w') as f:
        f.write('\n'.join(['<unk>'] + [f'w{i}' for i in range(1, V)]) + '\n')
    with open(os.path.join(a.out, 'classifier_vocab.txt'), 'w') as f:
        f.write('\n'.join(['<pad>', '<unk>'] + [f'w{i}' for i in range(2, CV)]) + '\n')
    with open(os.path.join(a.out, 'classifier_labels.txt'), 'w') as f:
        f.write('red\ngreen\nblue\n')
    train_and_save('lm_lstm2', lm([lstm, lstm]), every_step_data, 'every-step')
    train_and_save('lm_gru_reset_after', lm([gru_after]), every_step_data, 'every-step')
    train_and_save('lm_gru_reset_before', lm([gru_before, gru_before], widths=[7, 7]),
                   every_step_data, 'every-step')
    train_and_save('lm_last_width', lm([lstm, lstm], widths=[8, 5]), every_step_data,
                   'every-step')
    train_and_save('last_token_lstm2', lm([lstm, lstm], seq_last=False), last_token_data,
                   'last-token')
    train_and_save('last_token_gru', lm([gru_before], seq_last=False, widths=[6]),
                   last_token_data, 'last-token')
    clf = keras.Sequential([keras.Input((7,)), layers.Embedding(CV, E, mask_zero=True),
                            layers.LSTM(8), layers.Dropout(0.3),
                            layers.Dense(CLASSES, activation='softmax')])
    train_and_save('classifier_lstm', clf, classifier_data, 'classifier', window=7)
    clf_gru = keras.Sequential([keras.Input((7,)), layers.Embedding(CV, E, mask_zero=True),
                                layers.GRU(6, return_sequences=True), layers.GRU(6),
                                layers.Dense(CLASSES, activation='softmax')])
    train_and_save('classifier_gru2', clf_gru, classifier_data, 'classifier', window=7)
    # Outside the family.
    conv = lm([lstm], extra=[layers.Conv1D(8, 3, padding='same', name='conv')])
    train_and_save('unsupported_conv1d', conv, every_step_data, 'unsupported')
    mixed = lm([gru_after, lstm], seq_last=False)
    train_and_save('unsupported_mixed_cells', mixed, last_token_data, 'unsupported')
    with zipfile.ZipFile(os.path.join(a.out, 'lm_lstm2.keras')) as src, \
            zipfile.ZipFile(os.path.join(a.out, 'no_weights.keras'), 'w') as dst:
        dst.writestr('config.json', src.read('config.json'))
        dst.writestr('metadata.json', src.read('metadata.json'))


main()

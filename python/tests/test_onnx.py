"""ONNX export checked by ONNX Runtime, for every task: each exported graph, run on the inputs
its `preprocess.json` describes, gives what seqrnn gives (within 1e-4, max abs on probabilities,
forecasts, scores and logits; perplexities within 1e-4 relative), and a language model's state
carries across windows as `seqrnn eval` carries it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import seqrnn


def export(seqrnn_bin: str, run: str, out) -> dict:
    subprocess.run(
        [seqrnn_bin, "export", "--model", str(run), "--format", "onnx", "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return json.loads((out / "preprocess.json").read_text())


def session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def train(seqrnn_bin: str, args: list[str]) -> None:
    r = subprocess.run([seqrnn_bin, *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def encode(pre: dict, text: str) -> list[int]:
    """Text as `preprocess.json` says: each line's words, then <eos>; unknown words as <unk>."""
    index = {w: i for i, w in enumerate(pre["vocab"])}
    ids = []
    for line in text.splitlines():
        ids += [index.get(w, index[pre["unk"]]) for w in line.split()]
        ids.append(index[pre["eos"]])
    return ids


def log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


WORDS = "the a company said it would buy shares of stock market price rose fell".split()


def small_corpus(folder) -> None:
    """A word corpus of random sentences over a dozen words (ptb.{train,valid,test}.txt)."""
    rng = np.random.default_rng(1)
    folder.mkdir()
    for split in ["train", "valid", "test"]:
        lines = [" ".join(rng.choice(WORDS, 8)) for _ in range(60)]
        (folder / f"ptb.{split}.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def lm_runs(tiny_runs, seqrnn_bin, tmp_path_factory) -> dict:
    """Language-model runs of each cell: the tiny LSTM, and two-layer GRUs of both forms."""
    root = tmp_path_factory.mktemp("onnx-runs")
    small_corpus(root / "corpus")
    runs = {"lstm": tiny_runs["lm"]}
    for name, cell, extra in [
        ("gru", "gru", []),
        ("gru-reset-before", "gru-reset-before", []),
        ("lstm-last-hidden", "lstm", ["--last-hidden", "10"]),
        ("mingru", "mingru", []),
        ("minlstm-last-hidden", "minlstm", ["--last-hidden", "10"]),
        ("mingru-residual", "mingru", ["--residual", "--mlp", "20", "--dropout", "0.1"]),
        ("lstm-residual", "lstm", ["--residual", "--mlp", "0"]),
    ]:
        out = root / name
        # Residual blocks keep the stream as wide as the layers: the embedding takes their size.
        embed = [] if "--residual" in extra else ["--embed", "12"]
        args = ["--cell", cell, "--hidden", "16", *embed, "--layers", "2", *extra]
        args += ["--bptt", "5", "--batch", "2", "--epochs", "1", "--data", str(root / "corpus")]
        train(seqrnn_bin, ["train", *args, "--out", str(out)])
        runs[name] = str(out)
    return runs


def sample_text(pre: dict) -> str:
    words = [w for w in pre["vocab"] if not w.startswith("<")]
    return "\n".join(" ".join(words[(i * 7) % len(words) :][:6]) for i in range(5)) + "\n"


@pytest.mark.parametrize(
    "cell",
    [
        "lstm",
        "gru",
        "gru-reset-before",
        "lstm-last-hidden",
        "mingru",
        "minlstm-last-hidden",
        "mingru-residual",
        "lstm-residual",
    ],
)
def test_exported_language_model_matches_seqrnn(lm_runs, seqrnn_bin, tmp_path, cell):
    run = lm_runs[cell]
    pre = export(seqrnn_bin, run, tmp_path)
    text = sample_text(pre)
    ids = np.array(encode(pre, text), dtype=np.int64)
    sess = session(tmp_path / "model.onnx")
    names = [i.name for i in sess.get_inputs()]
    want_names = {
        "lstm": ["input_ids", "h0", "c0"],
        "lstm-residual": ["input_ids", "h0", "c0"],
        "lstm-last-hidden": ["input_ids", "h0_0", "c0_0", "h0_1", "c0_1"],
        "minlstm-last-hidden": ["input_ids", "h0_0", "h0_1"],
    }.get(cell, ["input_ids", "h0"])
    assert names == want_names
    state = {}
    for i in sess.get_inputs()[1:]:
        state[i.name] = np.zeros((i.shape[0], 1, i.shape[2]), np.float32)
    # Two windows, the state carried from the first into the second.
    cut = len(ids) // 2
    nll = 0.0
    for lo, hi in [(0, cut), (cut, len(ids) - 1)]:
        x = ids[lo:hi].reshape(-1, 1)
        logits, *final = sess.run(None, {"input_ids": x, **state})
        state = dict(zip(names[1:], final))
        assert all(v.shape == state[k].shape for k, v in zip(names[1:], final))
        lp = log_softmax(logits[:, 0, :].astype(np.float64))
        nll -= lp[np.arange(hi - lo), ids[lo + 1 : hi + 1]].sum()
    onnx_ppl = float(np.exp(nll / (len(ids) - 1)))
    want = seqrnn.load(run).perplexity(text)
    assert abs(onnx_ppl - want) <= 1e-4 * want, (onnx_ppl, want)


def test_exported_last_token_model_matches_seqrnn(tiny_runs, seqrnn_bin, tmp_path):
    run = tiny_runs["last-token"]
    pre = export(seqrnn_bin, run, tmp_path)
    text = sample_text(pre)
    ids = encode(pre, text)
    sess = session(tmp_path / "model.onnx")
    # Every token but the first, from the (at most) `window` tokens before it, as seqrnn evaluates.
    nll = 0.0
    for i in range(1, len(ids)):
        window = np.array(ids[max(0, i - pre["window"]) : i], np.int64).reshape(-1, 1)
        (logits,) = sess.run(None, {"input_ids": window})
        nll -= log_softmax(logits[0].astype(np.float64))[ids[i]]
    onnx_ppl = float(np.exp(nll / (len(ids) - 1)))
    want = seqrnn.load(run).perplexity(text)
    assert abs(onnx_ppl - want) <= 1e-4 * want, (onnx_ppl, want)


def padded(seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Sequences down the columns of `[T, B]`, 0 past each end, and their lengths."""
    ids = np.zeros((max(map(len, seqs)), len(seqs)), np.int64)
    for j, s in enumerate(seqs):
        ids[: len(s), j] = s
    return ids, np.array([len(s) for s in seqs], np.int64)


SENTIMENT = [("pos", "a gripping film"), ("neg", "dull and far too long"), ("pos", "a fine and gripping cast")]


@pytest.fixture(scope="module")
def classify_runs(tiny_runs, seqrnn_bin, tmp_path_factory) -> dict:
    """The tiny classifier (bidirectional LSTM, max pooling), a GRU with mean pooling, a
    two-layer bidirectional LSTM with last-state pooling, and the minimal cells bidirectional
    (minLSTM, mean pooling; two-layer minGRU, last-state pooling)."""
    root = tmp_path_factory.mktemp("onnx-classify")
    data = root / "data"
    data.mkdir()
    rows = "label\ttext\n" + "".join(f"{l}\t{t}\n" for l, t in SENTIMENT * 6)
    for split in ["train", "dev", "test"]:
        (data / f"{split}.tsv").write_text(rows)
    runs = {"max": tiny_runs["classify"]}
    for name, extra in [
        ("mean", ["--cell", "gru", "--pool", "mean"]),
        ("last", ["--bidirectional", "--layers", "2", "--pool", "last"]),
        ("minlstm-mean", ["--cell", "minlstm", "--bidirectional", "--pool", "mean"]),
        ("mingru-last", ["--cell", "mingru", "--bidirectional", "--layers", "2", "--pool", "last"]),
    ]:
        out = root / name
        args = ["--hidden", "8", "--embed", "6", "--epochs", "1", "--batch", "4", *extra]
        train(seqrnn_bin, ["classify", "train", "--data", str(data), "--out", str(out), *args])
        runs[name] = out
    return runs


@pytest.mark.parametrize("pool", ["max", "mean", "last", "minlstm-mean", "mingru-last"])
def test_exported_classifier_matches_seqrnn(classify_runs, seqrnn_bin, tmp_path, pool):
    run = classify_runs[pool]
    pre = export(seqrnn_bin, run, tmp_path)
    index = {w: i for i, w in enumerate(pre["vocab"])}
    texts = ["a gripping film", "far too long", "dull and far too long a film", "gripping", "unseen words here"]
    ids, lens = padded([[index.get(w, index[pre["unk"]]) for w in t.split()] for t in texts])
    (probs,) = session(tmp_path / "model.onnx").run(None, {"input_ids": ids, "lengths": lens})
    got = seqrnn.load(run).predict(texts)
    want = np.array([[p["probabilities"][label] for label in pre["labels"]] for p in got])
    assert np.abs(probs - want).max() <= 1e-4


@pytest.fixture(scope="module")
def forecast_runs(tiny_runs, seqrnn_bin, tmp_path_factory) -> dict:
    """The tiny forecaster (LSTM, dense head, last-row anchor) and a GRU with the recurrent
    decoder head, no anchor, two input columns."""
    root = tmp_path_factory.mktemp("onnx-forecast")
    t = np.arange(300)
    table = np.stack([np.sin(t / 7.0) * 3 + 10, np.cos(t / 11.0) + t / 100.0], axis=1)
    csv = root / "series.csv"
    csv.write_text("a,b\n" + "".join(f"{x:.4f},{y:.4f}\n" for x, y in table))
    out = root / "decoder"
    args = ["--data", str(csv), "--mode", "MS", "--target", "b", "--lookback", "10", "--horizon", "3"]
    args += ["--cell", "gru", "--hidden", "8", "--head", "decoder", "--anchor", "none", "--epochs", "1"]
    train(seqrnn_bin, ["forecast", "train", *args, "--out", str(out)])
    return {"dense": tiny_runs["forecast"], "decoder": out}


@pytest.mark.parametrize("head", ["dense", "decoder"])
def test_exported_forecaster_matches_seqrnn(forecast_runs, seqrnn_bin, tmp_path, head):
    run = forecast_runs[head]
    pre = export(seqrnn_bin, run, tmp_path)
    rng = np.random.default_rng(0)
    lookback, columns = pre["lookback"], pre["input_columns"]
    mean, std = np.array(pre["scaler"]["mean"]), np.array(pre["scaler"]["std"])
    tables = [mean + rng.normal(size=(lookback + k, len(columns))) * std for k in range(3)]
    window = np.stack([t[-lookback:] for t in tables], axis=1).astype(np.float32)
    (forecast,) = session(tmp_path / "model.onnx").run(None, {"window": window})
    model = seqrnn.load(run)
    want = np.stack([model.predict(t) for t in tables])
    assert forecast.shape == want.shape == (3, pre["horizon"], len(pre["forecast_columns"]))
    # Compared in standardised units, as the model computes.
    scale = std[[columns.index(c) for c in pre["forecast_columns"]]]
    assert np.abs((forecast - want) / scale).max() <= 1e-4


def casing(word: str) -> int:
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return 3
    if all(c.islower() for c in letters):
        return 0
    if all(c.isupper() for c in letters):
        return 1
    return 2 if word[0].isupper() else 3


def viterbi(scores: np.ndarray, crf: dict) -> list[int]:
    """The best path of `scores [T, K]` under `crf.json` (null scores: never allowed)."""
    f = lambda v: np.array([[-np.inf if x is None else x for x in row] for row in np.atleast_2d(v)])
    trans, start, end = f(crf["transitions"]), f(crf["start"])[0], f(crf["end"])[0]
    alpha, back = start + scores[0], []
    for t in range(1, len(scores)):
        total = alpha[:, None] + trans
        back.append(total.argmax(axis=0))
        alpha = total.max(axis=0) + scores[t]
    path = [int((alpha + end).argmax())]
    for b in reversed(back):
        path.append(int(b[path[-1]]))
    return path[::-1]


@pytest.fixture(scope="module")
def tag_runs(tiny_runs, seqrnn_bin, tmp_path_factory) -> dict:
    """The tiny tagger (softmax head, character BiLSTM, LSTM) and a GRU tagger with a CRF head,
    two word layers and no character features; both trained in IOBES on IOB2 files."""
    root = tmp_path_factory.mktemp("onnx-tag")
    conll = Path(tiny_runs["tag"]).parent / "tag.conll"
    out = root / "crf"
    args = ["--train", str(conll), "--dev", str(conll), "--crf", "--cell", "gru", "--layers", "2"]
    args += ["--hidden", "8", "--embed", "6", "--char-hidden", "0", "--epochs", "1"]
    train(seqrnn_bin, ["tag", "train", *args, "--out", str(out)])
    return {"softmax": tiny_runs["tag"], "crf": out}


def iob2(tags: list[str]) -> list[str]:
    """IOBES tags in IOB2 (S- as B-, E- as I-)."""
    return [{"S": "B", "E": "I"}.get(t[0], t[0]) + t[1:] if len(t) > 1 else t for t in tags]


@pytest.mark.parametrize("head", ["softmax", "crf"])
def test_exported_tagger_matches_seqrnn(tag_runs, seqrnn_bin, tmp_path, head):
    run = tag_runs[head]
    pre = export(seqrnn_bin, run, tmp_path)
    assert pre["head"] == head
    words = {w: i for i, w in enumerate(pre["words"])}
    chars = {c: i for i, c in enumerate(pre["chars"])}
    known = [w for w in pre["words"] if not w.startswith("<")]
    sentences = [known[:5], [known[-1].capitalize(), "Zzyzx", "42"], known[2:4]]
    ids, lens = padded([[words.get(w.lower(), pre["unk"]) for w in s] for s in sentences])
    cases = np.zeros_like(ids)
    longest = max(len(w) for s in sentences for w in s)
    char_ids = np.zeros((longest, *ids.shape), np.int64)
    char_lens = np.ones(ids.shape, np.int64)
    for j, s in enumerate(sentences):
        for t, w in enumerate(s):
            cases[t, j] = casing(w)
            char_ids[: len(w), t, j] = [chars.get(c, pre["unk"]) for c in w]
            char_lens[t, j] = len(w)
    feeds = {"word_ids": ids, "casing": cases, "lengths": lens}
    if pre["char_features"]:
        feeds |= {"char_ids": char_ids, "char_lengths": char_lens}
    (scores,) = session(tmp_path / "model.onnx").run(None, feeds)
    tagger = seqrnn.load(run)
    want = tagger.scores(sentences)
    for j, s in enumerate(sentences):
        assert np.abs(scores[: len(s), j] - want[j]).max() <= 1e-4
    if head == "crf":
        crf = json.loads((tmp_path / "crf.json").read_text())
        paths = [viterbi(scores[: len(s), j], crf) for j, s in enumerate(sentences)]
    else:
        paths = [list(scores[: len(s), j].argmax(axis=1)) for j, s in enumerate(sentences)]
    labels = [[pre["labels"][k] for k in path] for path in paths]
    assert (pre["label_scheme"], pre["file_scheme"]) == ("iobes", "iob2")
    assert [iob2(t) for t in labels] == tagger.tag(sentences)


def test_exported_acoustic_model_matches_seqrnn(tiny_runs, seqrnn_bin, tmp_path):
    run = tiny_runs["speech"]
    pre = export(seqrnn_bin, run, tmp_path)
    rate = pre["features"]["sample_rate"]
    rng = np.random.default_rng(3)
    recordings = [
        (np.sin(np.arange(n) * f) * 0.3 + rng.normal(size=n) * 0.01).astype(np.float32)
        for n, f in [(rate // 2, 0.2), (rate // 3, 0.05), (rate // 5, 0.4)]
    ]
    model = seqrnn.load(run)
    views = model.log_probs(recordings)
    frames = [f.shape[0] for f, _ in views]
    features = np.zeros((max(frames), len(views), views[0][0].shape[1]), np.float32)
    for j, (f, _) in enumerate(views):
        features[: len(f), j] = f
    log_probs, steps = session(tmp_path / "model.onnx").run(
        None, {"features": features, "lengths": np.array(frames, np.int64)}
    )
    for j, (_, want) in enumerate(views):
        assert steps[j] == len(want) == -(-frames[j] // pre["stack"])
        assert np.abs(log_probs[: steps[j], j] - want).max() <= 1e-4


def test_exported_translation_model_matches_seqrnn(tiny_runs, seqrnn_bin, tmp_path):
    run = tiny_runs["translate"]
    pre = export(seqrnn_bin, run, tmp_path)
    assert (tmp_path / "source.tokenizer.json").is_file()
    encoder, decoder = session(tmp_path / "encoder.onnx"), session(tmp_path / "decoder.onnx")
    model = seqrnn.load(run)
    for sentence in ["ein hund", "ein kleiner hund läuft"]:
        src, tokens, want = model.greedy_steps(sentence)
        ids, lens = padded([src])
        memory, *state = encoder.run(None, {"src_ids": ids, "src_lengths": lens})
        names = [i.name for i in decoder.get_inputs() if i.name in ("h", "c")]
        state = dict(zip(names, state))
        prev, got = pre["bos"], []
        for step in range(len(tokens)):
            feeds = {"prev_ids": np.array([prev], np.int64), "memory": memory, "src_lengths": lens}
            logits, *rest = decoder.run(None, feeds | state)
            state = dict(zip(names, rest))
            assert np.abs(logits[0] - want[step]).max() <= 1e-4, step
            prev = int(logits[0].argmax())
            got.append(prev)
        assert got == tokens


def test_export_refuses_what_it_does_not_map(tiny_runs, seqrnn_bin, tmp_path):
    r = subprocess.run(
        [seqrnn_bin, "export", "--model", tiny_runs["lm"], "--out", str(tmp_path), "--opset", "9"],
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0
    assert "operator sets 13 to 21" in r.stderr

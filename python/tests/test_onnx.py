"""ONNX export checked by ONNX Runtime: the exported language model's logits give the same
perplexity as seqrnn itself, and its state carries across windows as `seqrnn eval` carries it."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import onnxruntime as ort
import pytest

import seqrnn


def export(seqrnn_bin: str, run: str, out) -> dict:
    subprocess.run(
        [seqrnn_bin, "export", "--model", run, "--format", "onnx", "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return json.loads((out / "preprocess.json").read_text())


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
    for cell in ["gru", "gru-reset-before"]:
        out = root / cell
        args = ["--cell", cell, "--hidden", "16", "--embed", "12", "--layers", "2"]
        args += ["--bptt", "5", "--batch", "2", "--epochs", "1", "--data", str(root / "corpus")]
        subprocess.run([seqrnn_bin, "train", *args, "--out", str(out)], check=True, capture_output=True)
        runs[cell] = str(out)
    return runs


@pytest.mark.parametrize("cell", ["lstm", "gru", "gru-reset-before"])
def test_exported_language_model_matches_seqrnn(lm_runs, seqrnn_bin, tmp_path, cell):
    run = lm_runs[cell]
    pre = export(seqrnn_bin, run, tmp_path)
    words = [w for w in pre["vocab"] if not w.startswith("<")]
    text = "\n".join(" ".join(words[(i * 7) % len(words) :][:6]) for i in range(5)) + "\n"
    ids = np.array(encode(pre, text), dtype=np.int64)
    sess = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    assert names == ["input_ids", "h0", "c0"] if cell == "lstm" else ["input_ids", "h0"]
    state = {n: np.zeros((pre["layers"], 1, pre["hidden"]), np.float32) for n in names[1:]}
    # Two windows, the state carried from the first into the second.
    cut = len(ids) // 2
    nll = 0.0
    for lo, hi in [(0, cut), (cut, len(ids) - 1)]:
        x = ids[lo:hi].reshape(-1, 1)
        logits, *final = sess.run(None, {"input_ids": x, **state})
        state = dict(zip(names[1:], final))
        lp = log_softmax(logits[:, 0, :].astype(np.float64))
        nll -= lp[np.arange(hi - lo), ids[lo + 1 : hi + 1]].sum()
    onnx_ppl = float(np.exp(nll / (len(ids) - 1)))
    want = seqrnn.load(run).perplexity(text)
    assert abs(onnx_ppl - want) <= 1e-4 * want, (onnx_ppl, want)


def test_export_refuses_what_it_does_not_map(tiny_runs, seqrnn_bin, tmp_path):
    r = subprocess.run(
        [seqrnn_bin, "export", "--model", tiny_runs["classify"], "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0
    assert "not yet for a classify run" in r.stderr
    r = subprocess.run(
        [seqrnn_bin, "export", "--model", tiny_runs["lm"], "--out", str(tmp_path), "--opset", "9"],
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0
    assert "operator sets 13 to 21" in r.stderr

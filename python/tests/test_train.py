"""seqrnn.train: the command line's training from Python (summary, callback, Ctrl-C, resume,
refusals)."""

from __future__ import annotations

import json
import math
import os
import signal
import time

import numpy as np
import pytest

import seqrnn

LM = dict(hidden=8, embed=8, layers=1, bptt=5, batch=2, eval_batch=1, seed=3)


@pytest.fixture
def corpus(tmp_path):
    d = tmp_path / "corpus"
    d.mkdir()
    line = "the company said it would buy the shares of the bank\n"
    (d / "train.txt").write_text(line * 40 + "the bank said no\n" * 10)
    (d / "valid.txt").write_text("the company said it would buy the bank\n" * 2)
    (d / "test.txt").write_text("the bank said it would buy the shares\n" * 2)
    return d


def test_lm_summary_callback_and_load(corpus, tmp_path):
    seen = []
    out = tmp_path / "run"
    summary = seqrnn.train("lm", out=out, data=corpus, epochs=2, callback=seen.append, threads=1, **LM)
    assert summary["run"] == str(out) and summary["epochs"] == 2
    assert summary == {**json.loads((out / "summary.json").read_text()), "run": str(out)}
    assert [m["epoch"] for m in seen] == [1, 2]
    assert all(m["epoch_end"] for m in seen)
    assert math.isclose(-max(m["valid_score"] for m in seen), summary["valid_ppl"], rel_tol=1e-9)
    lm = seqrnn.load(out)
    assert lm.generate("the company", tokens=3, seed=1).startswith("the company")
    # The run exists: training again into it is refused, with the way out.
    with pytest.raises(seqrnn.SeqrnnError, match="--resume to continue it or --force"):
        seqrnn.train("lm", out=out, data=corpus, epochs=1, **LM)


def test_ctrl_c_writes_a_checkpoint_and_resume_finishes_exactly(corpus, tmp_path):
    opts = dict(data=corpus, epochs=30, **LM)
    out = tmp_path / "stopped"

    def ctrl_c_at_epoch_2(metrics):
        if metrics["epoch"] == 2:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.3)  # the waiting thread sees the signal meanwhile

    # Python's own Ctrl-C handler, even where the shell that started the tests ignores SIGINT.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            seqrnn.train("lm", out=out, callback=ctrl_c_at_epoch_2, threads=1, **opts)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert (out / "checkpoint.safetensors").is_file()
    assert not (out / "summary.json").exists()
    seen = []
    resumed = seqrnn.train("lm", out=out, resume=True, callback=seen.append, threads=1, **opts)
    assert seen and seen[0]["epoch"] > 2 and resumed["epochs"] == 30
    straight = seqrnn.train("lm", out=tmp_path / "straight", callback=lambda m: None, threads=1,
                            **opts)
    assert resumed["valid_ppl"] == straight["valid_ppl"]
    assert resumed["test_ppl"] == straight["test_ppl"]


def test_callback_exception_stops_at_a_checkpoint(corpus, tmp_path):
    def boom(metrics):
        raise RuntimeError(f"stop at epoch {metrics['epoch']}")

    with pytest.raises(RuntimeError, match="stop at epoch 1"):
        seqrnn.train("lm", out=tmp_path / "r", data=corpus, epochs=3, callback=boom, **LM)
    again = seqrnn.train("lm", out=tmp_path / "r", resume=True, data=corpus, epochs=3,
                         callback=lambda m: None, **LM)
    assert again["epochs"] == 3


def test_forecast_and_classify(tmp_path):
    csv = tmp_path / "load.csv"
    rows = "".join(f"d{r},{math.sin(r * 0.3):.6f},{math.cos(r * 0.2):.6f}\n" for r in range(300))
    csv.write_text("date,a,b\n" + rows)
    s = seqrnn.train("forecast", out=tmp_path / "fc", data=csv, lookback=12, horizon=4,
                     hidden=8, epochs=1, batch=16, callback=lambda m: None)
    assert s["test_mse"] >= 0
    fc = seqrnn.load(tmp_path / "fc")
    assert fc.predict(str(csv)).shape == (4, len(fc.columns))

    d = tmp_path / "sst"
    d.mkdir()
    pos, neg = "pos\ta gripping film\n", "neg\tdull and far too long\n"
    (d / "train.tsv").write_text("label\ttext\n" + (pos + neg) * 20)
    (d / "dev.tsv").write_text("label\ttext\n" + pos + neg)
    s = seqrnn.train("classify", out=tmp_path / "clf", data=d, hidden=8, embed=8, epochs=3,
                     batch=8, min_freq=1, callback=lambda m: None)
    assert 0 <= s["dev_accuracy"] <= 1
    assert seqrnn.load(tmp_path / "clf").predict("a gripping film")["label"] in ("pos", "neg")


def test_refusals(corpus, tmp_path):
    with pytest.raises(ValueError, match="task must be one of"):
        seqrnn.train("vision", out=tmp_path / "x")
    with pytest.raises(seqrnn.SeqrnnError, match="--bogus-flag"):
        seqrnn.train("lm", out=tmp_path / "x", data=corpus, bogus_flag=3)
    with pytest.raises(seqrnn.SeqrnnError, match="invalid value 'many' for '--epochs"):
        seqrnn.train("lm", out=tmp_path / "x", data=corpus, epochs="many")
    with pytest.raises(FileNotFoundError):
        seqrnn.train("lm", out=tmp_path / "x", data=tmp_path / "no-such-corpus", **LM)
    with pytest.raises(seqrnn.SeqrnnError, match="--resume and --force"):
        seqrnn.train("lm", out=tmp_path / "x", data=corpus, resume=True, force=True)
    assert not (tmp_path / "x").exists()

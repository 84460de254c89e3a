"""Computations release the interpreter: two Python threads run two models at once, with the
results they give alone; thread counts are set as the command line's --threads sets them."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import seqrnn


def test_the_interpreter_is_released_during_a_forward_pass():
    lstm = seqrnn.LSTM(256, 256, num_layers=2, seed=1)
    x = np.random.default_rng(0).standard_normal((400, 16, 256)).astype(np.float32)
    done = threading.Event()
    result = {}

    def work():
        result["y"] = lstm(x)[0]
        done.set()

    t = threading.Thread(target=work)
    t0 = time.perf_counter()
    t.start()
    ticks = 0
    while not done.is_set():
        ticks += 1  # Python code running here while the other thread computes
        time.sleep(0.001)
    t.join()
    elapsed = time.perf_counter() - t0
    assert result["y"].shape == (400, 16, 256)
    # Holding the interpreter, the loop above would not run until the pass ended.
    if elapsed > 0.05:
        assert ticks > 5, (ticks, elapsed)


def test_two_threads_two_models_same_results(tiny_runs):
    lm = seqrnn.load(tiny_runs["lm"], threads=1)
    gru = seqrnn.GRU(8, 32, num_layers=2, seed=2)
    x = np.random.default_rng(1).standard_normal((50, 4, 8)).astype(np.float32)
    alone_text = lm.generate("the company", tokens=30, seed=9)
    alone_y = gru(x)[0]
    out = {}

    def gen():
        out["text"] = [lm.generate("the company", tokens=30, seed=9) for _ in range(5)]

    def fwd():
        out["y"] = [gru(x)[0] for _ in range(5)]

    threads = [threading.Thread(target=gen), threading.Thread(target=fwd)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out["text"] == [alone_text] * 5
    for y in out["y"]:
        np.testing.assert_array_equal(y, alone_y)


def test_thread_counts():
    default = seqrnn.get_threads()
    assert default >= 1
    try:
        seqrnn.set_threads(1)
        assert seqrnn.get_threads() == 1
    finally:
        seqrnn.set_threads(default)
    with pytest.raises(ValueError, match="threads must be at least 1"):
        seqrnn.set_threads(0)

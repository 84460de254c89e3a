"""seqrnn.load on a finished run of every task, and what each task's object answers."""

from __future__ import annotations

import math
import subprocess
import wave

import numpy as np
import pytest

import seqrnn


def test_every_task_loads_as_its_class(tiny_runs):
    classes = {
        "lm": seqrnn.LanguageModel,
        "last-token": seqrnn.LanguageModel,
        "forecast": seqrnn.Forecaster,
        "classify": seqrnn.Classifier,
        "translate": seqrnn.Translator,
        "tag": seqrnn.Tagger,
        "speech": seqrnn.Recognizer,
    }
    assert set(tiny_runs) == set(classes)
    for task, path in tiny_runs.items():
        m = seqrnn.load(path)
        assert type(m) is classes[task], task
        assert m.num_params > 0 and not m.is_int8
        assert str(m.path) == str(path) and m.threads == seqrnn.get_threads()
        assert repr(m).startswith(f"{classes[task].__name__}(path=")


@pytest.mark.parametrize("task", ["lm", "last-token"])
def test_language_model(tiny_runs, task):
    lm = seqrnn.load(tiny_runs[task], threads=1)
    a = lm.generate("the company", tokens=6, seed=3)
    assert a.startswith("the company") and len(a) > len("the company")
    assert lm.generate("the company", tokens=6, seed=3) == a
    greedy = lm.generate("the company", tokens=6, greedy=True)
    assert greedy == lm.generate("the company", tokens=6, seed=99, greedy=True)
    assert lm.generate("the", tokens=4, top_k=1, seed=1) == lm.generate("the", tokens=4, greedy=True)
    ppl = lm.perplexity("the company said it would buy the shares\n" * 3)
    assert 1.0 < ppl < lm.vocab_size * 2 and math.isfinite(ppl)
    with pytest.raises(seqrnn.SeqrnnError, match="temperature"):
        lm.generate("the", temperature=0.0)
    with pytest.raises(seqrnn.SeqrnnError):
        lm.perplexity("")


def test_generation_equals_the_command_line(tiny_runs, seqrnn_bin):
    path = tiny_runs["lm"]
    lm = seqrnn.load(path, threads=1)
    out = subprocess.run(
        [seqrnn_bin, "generate", "--model", str(path), "--prompt", "the company",
         "--tokens", "12", "--seed", "5", "--temperature", "0.8"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert out.rstrip("\n") == lm.generate("the company", tokens=12, seed=5, temperature=0.8)


def test_translator(tiny_runs):
    tr = seqrnn.load(tiny_runs["translate"])
    out = tr.translate(["ein hund", "eine katze schläft"], beam=3)
    assert isinstance(out, list) and len(out) == 2 and all(isinstance(s, str) for s in out)
    assert tr.translate("ein hund", beam=3) == out[0]
    assert tr.translate(["ein hund"], beam=1) == [tr.translate("ein hund", beam=1)]
    with pytest.raises(TypeError, match="sentences must be a str or a list of str"):
        tr.translate(3)
    with pytest.raises(seqrnn.SeqrnnError):
        tr.translate([""])


def test_tagger(tiny_runs):
    tagger = seqrnn.load(tiny_runs["tag"])
    labels = tagger.tag(["John lives in Paris", ["Mary", "saw", "John"]])
    assert [len(s) for s in labels] == [4, 3]
    assert all(isinstance(l, str) and l for s in labels for l in s)
    assert "O" in tagger.labels
    assert tagger.tag("John lives in Paris") == labels[0]
    assert tagger.tag([["John", "lives", "in", "Paris"]]) == [labels[0]]
    with pytest.raises(TypeError, match="each sentence must be a str or a list of str"):
        tagger.tag([3])


def test_classifier(tiny_runs):
    clf = seqrnn.load(tiny_runs["classify"])
    out = clf.predict(["a gripping film", "dull and far too long"])
    assert [p["label"] for p in out] == ["pos", "neg"]
    for p in out:
        assert set(p["probabilities"]) == set(clf.labels)
        assert abs(sum(p["probabilities"].values()) - 1) < 1e-5
        assert p["label"] == max(p["probabilities"], key=p["probabilities"].get)
    assert clf.predict("a gripping film") == out[0]
    assert clf.predict([]) == []


def test_forecaster(tiny_runs, tmp_path):
    fc = seqrnn.load(tiny_runs["forecast"])
    assert fc.input_columns == ["load"] and fc.columns == ["load"]
    rows = np.sin(np.arange(200, dtype=np.float64) * 0.3)[:, None]
    f = fc.predict(rows)
    assert f.shape == (fc.horizon, 1) and f.dtype == np.float64
    np.testing.assert_array_equal(fc.predict(rows.astype(np.float32)), f)
    csv = tmp_path / "load.csv"
    csv.write_text("date,load\n" + "".join(f"d{r},{np.float32(np.sin(r * np.float32(0.3)))}\n" for r in range(200)))
    np.testing.assert_allclose(fc.predict(str(csv)), f, atol=1e-5)
    with pytest.raises(seqrnn.SeqrnnError, match="lookback"):
        fc.predict(rows[:5])
    with pytest.raises(ValueError, match="the array has 2 columns, the model reads 1"):
        fc.predict(np.zeros((50, 2)))
    with pytest.raises(FileNotFoundError):
        fc.predict(str(tmp_path / "missing.csv"))


def write_wav(path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def test_recognizer(tiny_runs, tmp_path):
    rec = seqrnn.load(tiny_runs["speech"])
    rate = rec.sample_rate
    t = np.arange(rate // 2) / rate
    samples = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = rec.transcribe([(samples, rate)])
    assert isinstance(out, list) and len(out) == 1 and isinstance(out[0], str)
    assert rec.transcribe((samples, rate)) == out[0]
    wav = tmp_path / "a.wav"
    write_wav(wav, samples, rate)
    assert isinstance(rec.transcribe(str(wav)), str)
    # Another rate is resampled to the model's.
    t2 = np.arange(rate) / (2 * rate)
    assert isinstance(rec.transcribe([(np.sin(2 * np.pi * 440 * t2), 2 * rate)])[0], str)
    with pytest.raises(FileNotFoundError):
        rec.transcribe([str(tmp_path / "missing.wav")])
    with pytest.raises(TypeError, match="WAV path or a \\(samples, rate\\) pair"):
        rec.transcribe([3])


def test_load_refusals(tmp_path):
    with pytest.raises(FileNotFoundError):
        seqrnn.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(seqrnn.SeqrnnError, match="not a seqrnn run"):
        seqrnn.load(tmp_path / "empty")
    assert issubclass(seqrnn.SeqrnnError, ValueError)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    with pytest.raises(seqrnn.SeqrnnError):
        seqrnn.load(bad)
    with pytest.raises(ValueError, match="threads must be at least 1"):
        seqrnn.load(tmp_path, threads=0)

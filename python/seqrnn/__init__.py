"""seqrnn: fast, exact LSTM and GRU layers and recurrent sequence models, from Rust.

- ``seqrnn.LSTM`` / ``seqrnn.GRU``: layers with ``torch.nn.LSTM``/``GRU``'s interface and
  weights, on numpy arrays.
- ``seqrnn.load(path)``: a trained run of any task (``LanguageModel``, ``Translator``,
  ``Tagger``, ``Classifier``, ``Forecaster``, ``Recognizer``).
- ``seqrnn.train(task, out=..., **options)``: the ``seqrnn`` command line's training, its flags
  as keyword arguments.

Every computation releases the interpreter; ``seqrnn.set_threads(n)`` (or ``threads=``) sets
how many threads it uses. See docs/python.md.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, Optional, Union

from . import _seqrnn
from ._layers import GRU, LSTM, MinGRU, MinLSTM
from ._seqrnn import (
    Classifier,
    Forecaster,
    LanguageModel,
    Recognizer,
    SeqrnnError,
    Tagger,
    Translator,
    get_threads,
    load,
    set_threads,
)

__version__: str = _seqrnn.__version__

__all__ = [
    "LSTM",
    "GRU",
    "MinGRU",
    "MinLSTM",
    "load",
    "train",
    "set_threads",
    "get_threads",
    "SeqrnnError",
    "LanguageModel",
    "Translator",
    "Tagger",
    "Classifier",
    "Forecaster",
    "Recognizer",
]

TASKS = ("lm", "forecast", "classify", "translate", "tag", "speech")

PathLike = Union[str, "os.PathLike[str]"]


def _flags(options: Dict[str, Any]) -> list:
    """Keyword arguments as the command line's flags: ``max_steps=50`` is ``--max-steps 50``,
    ``resume=True`` is ``--resume`` (``False`` and ``None`` leave a flag out), lists are joined
    with commas."""
    args = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag)
        elif isinstance(value, (list, tuple)):
            args += [flag, ",".join(str(v) for v in value)]
        else:
            args += [flag, os.fspath(value) if isinstance(value, os.PathLike) else str(value)]
    return args


def train(
    task: str,
    out: PathLike,
    *,
    callback: Optional[Callable[[Dict[str, Any]], None]] = None,
    threads: Optional[int] = None,
    **options: Any,
) -> Dict[str, Any]:
    """Trains a model of ``task`` (``"lm"``, ``"forecast"``, ``"classify"``, ``"translate"``,
    ``"tag"`` or ``"speech"``) into the run folder ``out``, as ``seqrnn <task> train --out OUT``
    does, with the command line's flags as keyword arguments (``data=``, ``preset=``,
    ``epochs=``, ``max_steps=``, ``resume=True``, ``force=True``, ...).

    Shows the command line's progress on standard error, or, with ``callback``, calls
    ``callback(metrics)`` at each validation instead (``epoch``, ``step``, ``train_loss``,
    ``valid_loss``, ``valid_score``, ``lr``, ``best``, ...). Returns the run's summary (its
    ``summary.json``, with ``run``: the folder). Ctrl-C (or an exception raised by the
    callback) stops the training after writing its checkpoint and is raised then; train again
    with ``resume=True`` to go on. ``threads`` sets the computation's threads (default:
    ``seqrnn.get_threads()``).

    Raises ``FileNotFoundError`` for missing data, ``SeqrnnError`` for any other refusal
    (unknown flags included).
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, not {task!r}")
    out = os.fspath(out)
    args = ([] if task == "lm" else [task]) + ["train", "--out", out] + _flags(options)
    shown = ", ".join(f"{k}={v!r}" for k, v in options.items() if k not in ("resume", "force"))
    hint = f"seqrnn.train({task!r}, out={out!r}{', ' + shown if shown else ''}, resume=True)"
    _seqrnn.run_command(args, callback, hint, threads)
    with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
        summary: Dict[str, Any] = json.load(f)
    summary["run"] = out
    return summary

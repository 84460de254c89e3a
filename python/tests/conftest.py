"""What the tests share: the reference tensors, the shared data folder, tiny runs of every task."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

import seqrnn

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
REPO = HERE.parents[1]
SHARED = Path(os.environ.get("SEQRNN_SHARED", REPO.parent / "shared"))


def need_shared(sub: str) -> Path:
    """`../shared/<sub>`; skips (or fails, under SEQRNN_REQUIRE_SHARED=1) when it is absent."""
    path = SHARED / sub
    if not path.exists():
        reason = f"{path} is absent"
        if os.environ.get("SEQRNN_REQUIRE_SHARED") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def read_safetensors(path: Path) -> dict:
    """The tensors of a safetensors file (F64/F32), as numpy arrays."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = raw[8 + n :]
    dtypes = {"F64": np.float64, "F32": np.float32}
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(body[a:b], dtype=dtypes[t["dtype"]]).reshape(t["shape"])
    return out


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> dict:
    """A finished tiny run of every task: {task: path}."""
    root = tmp_path_factory.mktemp("tiny")
    return dict(seqrnn._seqrnn._tiny_runs(str(root)))


@pytest.fixture(scope="session")
def seqrnn_bin() -> str:
    """The `seqrnn` binary of the same build (SEQRNN_BIN), to compare with; skips without."""
    path = os.environ.get("SEQRNN_BIN")
    if not path or not Path(path).is_file():
        pytest.skip("SEQRNN_BIN does not name the seqrnn binary")
    return path

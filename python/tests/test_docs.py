"""The examples of docs/python.md run as written, in order, from a folder beside ../shared (the
layout of the repository's root)."""

from __future__ import annotations

import importlib.util
import os
import re

import pytest

from conftest import REPO, need_shared


def blocks() -> list:
    text = (REPO / "docs" / "python.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_docs_examples_run(tmp_path, monkeypatch, capsys):
    shared = need_shared("data")
    (tmp_path / "shared").symlink_to(shared.parent)
    cwd = tmp_path / "repo"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    has_torch = importlib.util.find_spec("torch") is not None
    scope: dict = {}
    ran = 0
    for code in blocks():
        if "import torch" in code and not has_torch:
            continue
        exec(compile(code, "docs/python.md", "exec"), scope)
        ran += 1
    assert ran >= 3
    out = capsys.readouterr().out
    assert "the company said" in out and "'label': " in out
    assert os.path.isfile("runs/ptb-small/model.safetensors")

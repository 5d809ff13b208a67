"""The README runs as pasted: every ```python block, in order, in one namespace (as a reader pastes them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_the_readme_has_python_blocks():
    assert len(_blocks()) >= 5


@pytest.mark.slow
def test_every_readme_block_runs_as_pasted(isolated_cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks that save files write here
    namespace: dict[str, object] = {"__name__": "__readme__"}
    for number, block in enumerate(_blocks()):
        try:
            exec(compile(block, f"README.md python block {number}", "exec"), namespace)
        except Exception as exc:  # name the block: the traceback shows the line inside it
            raise AssertionError(f"README python block {number} fails as pasted:\n{block}") from exc

"""The house rules: the checker finds what it must, the package keeps them, and the shared leaf helpers behave."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench._params import InvalidParameterError, check_choice, check_int, check_ints, check_number, check_seed
from workbench._threads import torch_threads

ROOT = Path(__file__).resolve().parents[1]


def _checker():
    spec = importlib.util.spec_from_file_location("check_house", ROOT / "tools" / "check_house.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_house"] = module
    spec.loader.exec_module(module)
    return module


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_checker_names_each_breach_in_a_made_up_package(tmp_path):
    _write(tmp_path, "workbench/__init__.py", "")
    _write(tmp_path, "workbench/_leaf.py", "def _hidden(): pass\ndef shown(): pass\n")
    _write(tmp_path, "workbench/big.py", "x = 1\n" * 601)
    _write(tmp_path, "workbench/pkg/__init__.py", "from workbench.pkg._inner import thing\n")
    _write(tmp_path, "workbench/pkg/_inner.py", "thing = 1\n_shared = 2\n")
    _write(tmp_path, "workbench/pkg/user.py",
           "from workbench.pkg._inner import _shared\nfrom workbench._leaf import shown\n")
    _write(tmp_path, "workbench/outside.py", "from workbench.pkg._inner import thing\nfrom workbench.big import _x\n")
    _write(tmp_path, "workbench/fine.py", "from workbench._leaf import _hidden\nfrom workbench.pkg import thing\n")
    found = _checker().breaches(tmp_path)
    assert len(found) == 3, found
    assert any("big.py: 601 lines" in f for f in found)
    assert any("outside.py:1" in f and "private to workbench.pkg" in f for f in found)
    assert any("outside.py:2" in f and "private to workbench.big" in f for f in found)


def test_the_package_keeps_the_house_rules():
    assert _checker().breaches(ROOT) == []


@pytest.mark.parametrize("value", [0, -3, 1.5, 2.0, True, "3", None])
def test_check_int_refuses_non_positive_and_non_integers_as_both_error_kinds(value):
    with pytest.raises(ValueError, match=r"^k must be a positive integer"):
        check_int(value, "k")
    with pytest.raises(TypeError):
        check_int(value, "k")


def test_check_helpers_accept_good_values():
    assert check_int(np.int64(3), "k") == 3 and type(check_int(np.int64(3), "k")) is int
    assert check_int(None, "k", allow_none=True) is None
    assert check_int(0, "seed", low=0) == 0 and check_seed(7) == 7
    assert check_ints([1, np.int32(5)], "ks") == (1, 5)
    assert check_number(np.float32(0.5), "t", low=0, inclusive=False) == 0.5
    assert check_choice("cpu", "device", ("cpu", "cuda")) == "cpu"


@pytest.mark.parametrize(("call", "message"), [
    (lambda: check_ints([], "ks"), "ks must be a non-empty sequence"),
    (lambda: check_ints([1, 0], "ks"), "ks must be a non-empty sequence of positive integers"),
    (lambda: check_ints(5, "ks"), "ks must be a sequence"),
    (lambda: check_number(float("nan"), "t"), "t must be finite"),
    (lambda: check_number(0.0, "t", low=0, inclusive=False), r"t must be > 0, got 0.0"),
    (lambda: check_number(2.0, "p", low=0, high=1), r"p must be >= 0 and <= 1, got 2.0"),
    (lambda: check_int(11, "k", low=1, high=10), r"k must be an integer in \[1, 10\], got 11"),
    (lambda: check_seed(-1), "seed must be an integer >= 0, got -1"),
    (lambda: check_choice([], "device", ("cpu",)), r"device must be one of \['cpu'\], got \[\]"),
])
def test_check_helpers_name_the_parameter_and_the_rule(call, message):
    with pytest.raises(InvalidParameterError, match=message):
        call()


def test_torch_threads_restores_the_count_even_after_an_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), torch_threads(1):
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before

"""The ``scenarios`` package: its public names, imported on first use."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import scenarios


def test_every_public_name_is_the_one_its_module_defines() -> None:
    for name in scenarios.__all__:
        module = importlib.import_module(scenarios._LAZY.exports[name])
        assert getattr(scenarios, name) is getattr(module, name), name
    assert sorted(scenarios._LAZY.exports) == sorted(scenarios.__all__)  # no name left out
    assert set(scenarios.__all__) <= set(dir(scenarios))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        _ = scenarios.Nope


def test_the_cli_s_start_imports_neither_the_models_nor_numpy() -> None:
    """``dispatchlab --help`` imported the whole package through ``scenarios.errors`` (the
    models, numpy, the travel models: ~0.4 s of its ~1.0 s) until session 67."""
    heavy = "{'scenarios.model', 'numpy'}"
    code = f"import sys, dispatchlab.cli; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr

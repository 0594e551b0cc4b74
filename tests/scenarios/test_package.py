"""The ``scenarios`` package: its public names, imported on first use."""

from __future__ import annotations

import subprocess
import sys


def test_the_cli_s_start_imports_neither_the_models_nor_numpy() -> None:
    """``dispatchlab --help`` imported the whole package through ``scenarios.errors`` (the
    models, numpy, the travel models: ~0.4 s of its ~1.0 s) until session 67."""
    heavy = "{'scenarios.model', 'numpy'}"
    code = f"import sys, dispatchlab.cli; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr

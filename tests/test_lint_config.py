"""``make lint`` type-checks every directory of Python code, tests and benchmarks included."""

from __future__ import annotations

import tomllib

from tests.conftest import REPO


def _python_dirs() -> set[str]:
    """Top-level directories of the repository holding a ``.py`` file (no hidden or build dirs)."""
    return {
        d.name
        for d in REPO.iterdir()
        if d.is_dir()
        and not d.name.startswith(".")
        and not d.name.endswith(".egg-info")
        and next(d.rglob("*.py"), None) is not None
    }


def test_mypy_config_checks_every_python_directory() -> None:
    mypy = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    checked = set(mypy.get("files", [])) | set(mypy.get("packages", []))
    assert {"tests", "benchmarks"} <= _python_dirs()
    assert _python_dirs() <= checked, sorted(_python_dirs() - checked)

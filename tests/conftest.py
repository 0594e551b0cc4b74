"""Shared fixtures: paths to the bundled instances."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
INSTANCES = REPO / "data" / "instances"
SHARED_BENCHMARKS = REPO.parent / "shared" / "benchmarks"


@pytest.fixture(scope="session")
def instances_dir() -> Path:
    """Folder of the bundled public benchmark instances."""
    return INSTANCES

"""Versions of the solver libraries, recorded with every answer and in the audit log."""

from __future__ import annotations

import functools
from importlib.metadata import PackageNotFoundError, version

LIBRARIES = ("dispatchlab", "pyvrp", "ortools", "highspy", "pyomo", "simpy")


@functools.lru_cache(maxsize=1)
def solver_versions() -> dict[str, str]:
    """Installed versions of dispatchlab and its solver libraries."""
    out: dict[str, str] = {}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def solver_label(engine: str | None) -> str:
    """``engine`` with the version of the library behind it, for the audit log."""
    if not engine:
        return f"dispatchlab {solver_versions().get('dispatchlab', '?')}"
    versions = solver_versions()
    for lib in ("pyvrp", "ortools", "highspy", "pyomo", "simpy"):
        if lib in engine.lower() and lib in versions:
            return f"{engine} ({lib} {versions[lib]})"
    return f"{engine} (dispatchlab {versions.get('dispatchlab', '?')})"

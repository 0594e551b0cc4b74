"""What each job kind runs: ``module:function`` targets that worker processes can import."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

JsonDict = dict[str, Any]


class ProgressFn(Protocol):
    """A job's progress callback: the fraction done (0..1) and, optionally, what the job is
    doing (a small JSON object, the job's ``progress_detail``: see ``JobProgress``)."""

    def __call__(self, fraction: float, detail: JsonDict | None = None, /) -> None:
        """Report progress."""
        ...


class TaskFn(Protocol):
    """A job body: JSON payload in, JSON result out, optional progress callback (0..1)."""

    def __call__(self, payload: JsonDict, *, progress: ProgressFn | None = None) -> JsonDict:
        """Run the task."""
        ...


class FallbackFn(Protocol):
    """Builds a degraded answer when the task crashed or overran; gets the reason."""

    def __call__(self, payload: JsonDict | BaseModel, *, reason: str) -> JsonDict:
        """Build the fallback answer (from the payload, or the validated body it came from)."""
        ...


def import_target(target: str) -> Any:
    """The object named by ``package.module:attribute``."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ValueError(f"task target {target!r} is not of the form module:function")
    return getattr(importlib.import_module(module_name), attr)


@dataclass(frozen=True)
class TaskSpec:
    """One job kind: its target, an optional fallback target, and its solver's name.

    ``bounded``: the target answers a small input in bounded time (it honours its time
    limit), so an endpoint may run such solves on the event loop; an inline solve cannot be
    cut off at the time limit, so a target that may overrun must leave this off.
    """

    kind: str
    target: str
    fallback: str | None = None
    solver: str = ""
    bounded: bool = False

    def function(self) -> TaskFn:
        """The task function (imported on first use)."""
        fn: TaskFn = import_target(self.target)
        return fn

    def fallback_function(self) -> FallbackFn | None:
        """The fallback function, if the kind has one."""
        if self.fallback is None:
            return None
        fn: FallbackFn = import_target(self.fallback)
        return fn


@dataclass
class TaskRegistry:
    """Job kinds known to this service."""

    specs: dict[str, TaskSpec] = field(default_factory=dict)

    def add(self, spec: TaskSpec) -> None:
        """Register (or replace) a job kind."""
        self.specs[spec.kind] = spec

    def get(self, kind: str) -> TaskSpec:
        """The spec of ``kind`` (KeyError if unknown)."""
        return self.specs[kind]

    def __contains__(self, kind: object) -> bool:
        return kind in self.specs

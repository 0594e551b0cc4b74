"""The state one app instance shares between requests: settings, database, jobs, breakers."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.core.audit import AuditWriter
from api.core.breaker import BreakerState, CircuitBreaker
from api.core.config import Settings
from api.core.metrics import Metrics
from api.jobs import JobService, TaskRegistry
from api.jobs.registry import JsonDict
from api.loop_runner import LoopRunner


@dataclass(frozen=True)
class CachedKey:
    """A checked key as remembered: its id, role and account, and when it expires (a
    rotated key's grace period ends: wall-clock time, or None)."""

    key_id: str
    role: str
    account_id: str
    expires_at: dt.datetime | None = None


@dataclass
class KeyCache:
    """Recently checked API keys (hash -> (key, cache expiry)), so a burst costs one lookup."""

    ttl_s: float
    _entries: dict[str, tuple[CachedKey, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key_hash: str) -> CachedKey | None:
        """The cached key, if fresh and not past the end of its grace period."""
        with self._lock:
            entry = self._entries.get(key_hash)
            if entry is None or entry[1] < time.monotonic():
                return None
        key = entry[0]
        if key.expires_at is not None and key.expires_at <= dt.datetime.now(dt.UTC):
            return None
        return key

    def put(self, key_hash: str, key: CachedKey) -> None:
        """Remember a valid key."""
        if self.ttl_s <= 0:
            return
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[key_hash] = (key, time.monotonic() + self.ttl_s)

    def clear(self) -> None:
        """Forget every key (after a revocation)."""
        with self._lock:
            self._entries.clear()


@dataclass
class Lane:
    """Threads and slots of one class of synchronous work (fast allocations, heavy routing).

    ``admit`` > 0 turns on admission in arrival order: at most ``admit`` requests of the lane
    are worked on at once (the others wait on the event loop, first come first served, up
    to ``max_waiting``). Under the GIL more threads add no throughput, only switching.
    """

    name: str
    slots: threading.BoundedSemaphore
    size: int
    admit: int = 0
    max_waiting: int = 0
    waiting: int = 0
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _gate: asyncio.Semaphore | None = field(default=None, repr=False)

    def admission(self) -> asyncio.Semaphore:
        """The FIFO admission semaphore of the running event loop."""
        loop = asyncio.get_running_loop()
        if self._gate is None or self._loop is not loop:
            self._loop, self._gate = loop, asyncio.Semaphore(max(self.admit, 1))
        return self._gate


@dataclass
class ServiceContext:
    """Everything a request handler may need besides its own input."""

    settings: Settings
    metrics: Metrics
    registry: TaskRegistry
    key_cache: KeyCache
    engine: Engine | None = None
    sessions: sessionmaker[Session] | None = None
    jobs: JobService | None = None
    audit: AuditWriter | None = None
    breakers: dict[str, CircuitBreaker] = field(default_factory=dict)
    solver_pool: ThreadPoolExecutor | None = None
    loop_runner: LoopRunner[JsonDict] = field(default_factory=LoopRunner)
    lanes: dict[str, Lane] = field(default_factory=dict)
    demo: dict[str, Any] | None = None
    ready: bool = False
    starts: int = 0
    #: set when the service stops: synchronous requests stop waiting for their solves, and
    #: the solves see it as their cancel (:mod:`solvers.cancel`), so that the process's exit
    #: does not wait for them to run to their time limits (a fresh one per start)
    stopping: threading.Event = field(default_factory=threading.Event)

    def breaker(self, name: str) -> CircuitBreaker:
        """The circuit breaker of one solver (created on first use)."""
        found = self.breakers.get(name)
        if found is None:
            gauge = self.metrics.breaker_state.labels(name)
            gauge.set(0)

            def on_change(state: BreakerState) -> None:
                gauge.set(0 if state == BreakerState.CLOSED else 1)

            found = CircuitBreaker(
                name,
                max_failures=self.settings.breaker_failures,
                reset_s=self.settings.breaker_reset_s,
                on_change=on_change,
            )
            self.breakers[name] = found
        return found

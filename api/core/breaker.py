"""A circuit breaker: after repeated solver failures, serve the fallback until a probe succeeds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    """Closed = call the solver; open = fallback only; half-open = one probe is allowed."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Count consecutive failures; open after ``max_failures``; probe after ``reset_s``."""

    def __init__(
        self,
        name: str,
        *,
        max_failures: int,
        reset_s: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        self.name = name
        self.max_failures = max_failures
        self.reset_s = reset_s
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._failures = 0
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker past ``reset_s`` reports half-open)."""
        with self._lock:
            if self._state == BreakerState.OPEN and self._clock() - self._opened_at >= self.reset_s:
                return BreakerState.HALF_OPEN
            return self._state

    def allow(self) -> bool:
        """True when the solver may be called now (closed, or the one half-open probe)."""
        with self._lock:
            if self._state == BreakerState.CLOSED:
                return True
            if self._probe_in_flight:
                return False
            if self._clock() - self._opened_at >= self.reset_s:
                self._probe_in_flight = True
                self._set(BreakerState.HALF_OPEN)
                return True
            return False

    def record_success(self) -> None:
        """A solver call succeeded: close the breaker."""
        with self._lock:
            self._failures = 0
            self._probe_in_flight = False
            self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        """A solver call crashed or overran: count it, open the breaker when over the limit."""
        with self._lock:
            self._failures += 1
            probe_failed = self._probe_in_flight
            self._probe_in_flight = False
            if probe_failed or self._failures >= self.max_failures:
                self._opened_at = self._clock()
                self._set(BreakerState.OPEN)

    def release_probe(self) -> None:
        """Forget a probe that ended without a verdict (e.g. the input was bad)."""
        with self._lock:
            self._probe_in_flight = False

    def _set(self, state: BreakerState) -> None:
        if state != self._state:
            self._state = state
            if self._on_change is not None:
                self._on_change(state)

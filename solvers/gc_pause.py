"""Full garbage collections held back while a large solve runs.

A large batch (50,000 orders) builds ~1 million long-lived Python objects (the request, the
problem's indexes, the explanations); each automatic full collection scans all of them
(~1 s each, three in a 60 s city solve: 3.1 s of its budget) and finds nothing to free. While
:func:`full_collections_paused` is active the young generations are still collected as usual
(they hold the short-lived garbage), only the full collection waits until the last paused
solve of the process ends. Nested and concurrent solves (threads) share one pause
(:class:`scenarios.bulk.SharedHold`, as the pause of a large scenario's build).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from scenarios.bulk import SharedHold

#: the oldest generation's threshold while paused (collections of the middle generation
#: before a full one: never reached in a solve)
PAUSED_THRESHOLD = 1 << 30

_FULL = SharedHold()
_saved: tuple[int, ...] = ()


def _hold_back() -> None:
    global _saved
    _saved = gc.get_threshold()
    gc.set_threshold(_saved[0], _saved[1], PAUSED_THRESHOLD)


def _restore() -> None:
    gc.set_threshold(*_saved)


@contextmanager
def full_collections_paused(active: bool = True) -> Iterator[None]:
    """Hold back automatic full (oldest-generation) garbage collections inside the block."""
    if not active:
        yield
        return
    with _FULL.held(_hold_back, _restore):
        yield

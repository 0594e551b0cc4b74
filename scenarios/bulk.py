"""Building a large model without the cyclic garbage collector walking it again and again.

CPython (3.11) runs a full collection whenever the objects that survived the younger ones
have grown by a quarter of those already old: building a 50,000-order scenario (well over a
million containers and models: the generator's records and the models validated from them)
ran eleven full collections over a growing heap, some 2 s of its 5.6 s of CPU (session 69,
timed by a ``gc.callbacks`` hook), and they freed no object. :func:`collector_paused`
pauses the collector while such a model is built and, when the pause made many objects, ends
with the one full collection the collector would have run anyway (a single pass; left to
itself it would walk them twice more, through the young generations, before the full one).

Nothing validated changes: the collector frees only cycles no one can reach. A solve's
pause of full collections only (:mod:`solvers.gc_pause`) shares :class:`SharedHold` with it.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Objects made during a pause above which it ends with a full collection: a build this large
#: (some 8,000 orders) would have run at least one; a smaller one (an HTTP body of a few
#: orders) leaves its objects to the young collections, which cost next to nothing for them.
FULL_COLLECTION_AFTER = 200_000


class SharedHold:
    """A process-wide setting held by nested and concurrent (threads) holders at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0

    @contextmanager
    def held(self, apply: Callable[[], None], restore: Callable[[], None]) -> Iterator[None]:
        """Hold the setting in the block: the first in applies it, the last out restores it."""
        with self._lock:
            if self._depth == 0:
                apply()
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    restore()


_COLLECTOR = SharedHold()
_resume = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a large model is built (see the module)."""
    made = 0  # objects the pause made, counted when the last pause ends and resumes it

    def pause() -> None:
        global _resume
        _resume = gc.isenabled()
        gc.disable()

    def resume() -> None:
        nonlocal made
        if _resume:
            # counted before enabling: the first tracked object made after it starts a young
            # collection, which resets the count
            made = gc.get_count()[0]
            gc.enable()

    try:
        with _COLLECTOR.held(pause, resume):
            yield
    finally:
        # outside the lock: another thread's pause may start meanwhile (it only waits less)
        if made > FULL_COLLECTION_AFTER:
            gc.collect()


__all__ = ["FULL_COLLECTION_AFTER", "SharedHold", "collector_paused"]

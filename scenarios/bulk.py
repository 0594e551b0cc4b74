"""Building a large model without the cyclic garbage collector walking it again and again.

CPython (3.11) runs a full collection whenever the objects that survived the younger ones
have grown by a quarter of those already old: building a 50,000-order scenario (well over a
million containers and models: the generator's records and the models validated from them)
ran eleven full collections over a growing heap, some 2 s of its 5.6 s of CPU (session 69,
timed by a ``gc.callbacks`` hook), and they freed no object. :func:`collector_paused`
pauses the collector while such a model is built and, when the pause made many objects, ends
with the one full collection the collector would have run anyway (a single pass; left to
itself it would walk them twice more, through the young generations, before the full one).

Nothing validated changes: the collector frees only cycles no one can reach.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: Objects made during a pause above which it ends with a full collection: a build this large
#: (some 8,000 orders) would have run at least one; a smaller one (an HTTP body of a few
#: orders) leaves its objects to the young collections, which cost next to nothing for them.
FULL_COLLECTION_AFTER = 200_000

_lock = threading.Lock()
_depth = 0
_resume = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a large model is built (see the module)."""
    global _depth, _resume
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            collect = _depth == 0 and _resume
            if collect:
                gc.enable()
        # outside the lock: another thread's pause may start meanwhile (it only waits less)
        if collect and gc.get_count()[0] > FULL_COLLECTION_AFTER:
            gc.collect()


__all__ = ["FULL_COLLECTION_AFTER", "collector_paused"]

"""Small solves run on the event loop, one per loop iteration, in the order they came.

A one-order allocation takes about a millisecond of CPU. Handing it to a pool thread and
back costs more than that under load: the two threads take turns at the GIL at every
socket read and write. Run on the event loop instead, it costs nothing extra. But if every
request solved where it was parsed, a loop iteration would solve every request that
arrived in it before the loop next looked at its sockets. A request arriving just after
that look would then wait almost two iterations, which is a long tail under load.

:class:`LoopRunner` keeps the order of arrival. Calls wait in one queue, and each loop
iteration runs only the oldest of them, after the loop has looked at its sockets. New
requests are parsed and queued as they arrive, and each waits for the calls ahead of it,
as in a pool's queue.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")


class LoopRunner(Generic[T]):
    """Run calls on the running event loop, one per iteration, oldest first."""

    def __init__(self) -> None:
        self._queue: deque[tuple[Future[T], Callable[[], T]]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Queue ``fn`` (called from the event loop's thread); its future, like a pool's."""
        future: Future[T] = Future()
        self._queue.append((future, fn))
        if len(self._queue) == 1:
            self._loop = asyncio.get_running_loop()
            self._loop.call_soon(self._step)
        return future

    def __len__(self) -> int:
        """Calls queued or running."""
        return len(self._queue)

    def _step(self) -> None:
        future, fn = self._queue[0]
        try:
            if future.set_running_or_notify_cancel():  # False: cancelled while it waited
                try:
                    future.set_result(fn())
                except Exception as err:  # handed to whoever waits, as a pool would
                    future.set_exception(err)
        finally:
            self._queue.popleft()
            if self._queue and self._loop is not None:
                # the next call goes to the next iteration, after the loop polled its sockets
                self._loop.call_soon(self._step)

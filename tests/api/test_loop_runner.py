"""LoopRunner: calls run on the event loop in arrival order, one per loop iteration."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial

import pytest

from api.loop_runner import LoopRunner


def test_calls_run_oldest_first_with_the_loop_free_between_them() -> None:
    events: list[str] = []

    async def main() -> list[int]:
        runner: LoopRunner[int] = LoopRunner()

        def call(i: int) -> int:
            events.append(f"call {i}")
            return i * i

        futures = [runner.submit(partial(call, i)) for i in range(3)]
        assert len(runner) == 3 and not any(f.done() for f in futures)
        # a callback queued after the first call gets its turn before the second call
        asyncio.get_running_loop().call_soon(events.append, "other")
        results = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
        assert len(runner) == 0
        return list(results)

    assert asyncio.run(main()) == [0, 1, 4]
    assert events == ["call 0", "other", "call 1", "call 2"]


def test_an_error_goes_to_the_caller_and_a_cancelled_call_never_runs() -> None:
    ran: list[str] = []

    async def main() -> None:
        runner: LoopRunner[str] = LoopRunner()

        def boom() -> str:
            ran.append("boom")
            raise ValueError("bad input")

        def record(name: str, result: str) -> Callable[[], str]:
            def fn() -> str:
                ran.append(name)
                return result

            return fn

        failing = runner.submit(boom)
        dropped = runner.submit(record("dropped", "x"))
        last = runner.submit(record("last", "ok"))
        assert dropped.cancel()
        assert await asyncio.wrap_future(last) == "ok"
        with pytest.raises(ValueError, match="bad input"):
            failing.result(timeout=0)
        assert dropped.cancelled()

    asyncio.run(main())
    assert ran == ["boom", "last"]


def test_a_runner_keeps_working_after_its_queue_ran_empty() -> None:
    async def main() -> list[int]:
        runner: LoopRunner[int] = LoopRunner()
        first = await asyncio.wrap_future(runner.submit(lambda: 1))
        await asyncio.sleep(0)
        second = await asyncio.wrap_future(runner.submit(lambda: 2))
        return [first, second]

    assert asyncio.run(main()) == [1, 2]

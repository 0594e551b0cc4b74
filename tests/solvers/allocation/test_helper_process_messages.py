"""A helper process's messages sent back to back are each seen as readable."""

from __future__ import annotations

import time

import pytest

from solvers.allocation.helper_process import HelperProcess

#: a helper that sends three messages at once, then waits for its parent's stop
_ENTRY = (
    "from solvers.allocation.helper_process import Channel\n"
    "channel = Channel()\n"
    "for k in range(3):\n"
    "    channel.send(('bounding', k, b'x' * 100))\n"
    "channel.receive()\n"
)


def test_messages_already_read_into_the_buffer_are_readable() -> None:
    # reading the first message takes the others' bytes into the reader's buffer (they were
    # all in the pipe): select() no longer sees them, readable() must (a bound job of
    # several rounds answered each round, and the batch waited for ever for the later ones)
    helper = HelperProcess.spawn(_ENTRY)
    if helper is None:
        pytest.skip("no helper process could be started here")
    try:
        assert helper.readable(30)
        time.sleep(0.5)  # all three in the pipe before the first is read
        got = []
        while helper.readable(0.2):
            message = helper.receive()
            assert message is not None
            got.append(message[1])
        assert got == [0, 1, 2]
    finally:
        helper.end(grace_s=0.0)
        helper.close_output()

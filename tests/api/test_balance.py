"""Evening out keep-alive connections over worker processes (api.core.balance)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.core import balance
from api.core.balance import ConnectionBalancer, established_on_port

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"


def _row(local_port: int, remote_port: int, state: str) -> str:
    return (
        f"   0: 0100007F:{local_port:04X} 0100007F:{remote_port:04X} {state} "
        "00000000:00000000 00:00000000 00000000     0        0 1 1 0 20 4 30 10 -1\n"
    )


def test_established_connections_are_counted_by_their_local_port(tmp_path: Path) -> None:
    tcp = tmp_path / "tcp"
    tcp.write_text(
        HEADER
        + _row(8000, 0, "0A")  # the listening socket
        + _row(8000, 51000, "01")  # two server ends
        + _row(8000, 51001, "01")
        + _row(51000, 8000, "01")  # the client's end of one of them
        + _row(8000, 51002, "06")  # TIME_WAIT
        + _row(9000, 51003, "01")  # another port
    )
    tcp6 = tmp_path / "tcp6"
    tcp6.write_text(
        HEADER.replace("local_address", "local_address                        ")
        + "   0: 00000000000000000000000001000000:1F40 00000000000000000000000001000000:C738 01 "
        "00000000:00000000 00:00000000 00000000     0        0 1 1 0 20 4 30 10 -1\n"
    )
    assert established_on_port(8000, (tcp, tcp6)) == 3
    assert established_on_port(8000, (tmp_path / "missing",)) == 0


class Counts:
    """A worker's own connections and the port's total, set by the test."""

    def __init__(self, own: int, total: int) -> None:
        self.own, self.total, self.reads = own, total, 0

    def __len__(self) -> int:
        return self.own

    def read_total(self) -> int:
        self.reads += 1
        return self.total


def test_a_worker_over_its_share_closes_one_connection_per_quiet_period() -> None:
    counts = Counts(own=14, total=20)
    now = [0.0]
    balancer = ConnectionBalancer(counts, 2, counts.read_total, clock=lambda: now[0])
    assert balancer.should_close()
    assert not balancer.should_close()  # within quiet_s
    now[0] += 0.011
    counts.own = 13
    assert balancer.should_close()
    now[0] += 0.011
    counts.own = 10  # its share of 20: it keeps the rest
    assert not balancer.should_close()
    counts.own, counts.total = 11, 21  # ceil(21 / 2) = 11
    now[0] += 0.011
    assert not balancer.should_close()
    assert balancer.closed == 2


def test_a_balanced_worker_reads_the_kernel_count_about_once_a_second() -> None:
    counts = Counts(own=10, total=20)
    now = [0.0]
    balancer = ConnectionBalancer(counts, 2, counts.read_total, clock=lambda: now[0])
    for _ in range(500):  # 5 s of answers, one every 10 ms
        assert not balancer.should_close()
        now[0] += 0.01
    assert counts.reads <= 6
    # the others' clients left: 10 of 12 is more than this worker's share, noticed within 1 s
    counts.total = 12
    closes = 0
    for _ in range(100):
        closes += balancer.should_close()
        now[0] += 0.01
    assert closes > 0


def test_a_lone_connection_is_never_closed() -> None:
    counts = Counts(own=1, total=1)
    balancer = ConnectionBalancer(counts, 4, counts.read_total)
    assert not balancer.should_close()


@pytest.fixture
def closing_balancer() -> Iterator[None]:
    """A balancer that says every answer should end its connection."""
    counts = Counts(own=5, total=5)
    balance.BALANCER = ConnectionBalancer(counts, 2, counts.read_total, quiet_s=0.0)
    yield
    balance.BALANCER = None


def test_the_answer_of_a_worker_over_its_share_says_connection_close(
    client: TestClient, closing_balancer: None
) -> None:
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.headers["connection"] == "close"


def test_without_a_balancer_answers_keep_the_connection(client: TestClient) -> None:
    assert balance.BALANCER is None
    assert "connection" not in client.get("/healthz").headers

"""The real service in a uvicorn process: HTTP end to end, and the kill -9 crash test."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.core import cpus
from api.core.config import Settings
from api.examples import SMALL_SCENARIO
from api.serve import reuse_port_supported
from tests.api.server import Server, alive, descendants, make_key


@pytest.fixture
def server(settings: Settings) -> Iterator[Server]:
    """A running service on a fresh database (SQLite; PostgreSQL too when configured)."""
    srv = Server(settings.data_dir, database_url=settings.database_url)
    yield srv
    srv.stop()


def _routes(time_limit_s: float, seed: int, mode: str = "auto") -> dict[str, Any]:
    return {
        "scenario": copy.deepcopy(SMALL_SCENARIO),
        "params": {"time_limit_s": time_limit_s, "seed": seed},
        "mode": mode,
    }


def test_real_server_answers_over_http(server: Server, settings: Settings) -> None:
    key = make_key(server.data_dir, "oms", database_url=settings.database_url)
    with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=30) as http:
        assert http.get("/healthz").json()["status"] == "ok"
        assert http.get("/docs").status_code == 200
        answer = http.post("/v1/routes", json=_routes(0.3, 1))
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "feasible"
        assert http.post("/v1/routes", content=b"x" * 11_000_000).status_code == 413
        bad = http.post("/v1/routes", json={"scenario": {"orders": [{"id": "a"}]}})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["field"] == "scenario.orders.0.location"
        metrics = http.get("/metrics").text
        assert 'route="/v1/routes",status="200"' in metrics


# ~27 s (two servers, four 2 s jobs): the recovery of a job left running is checked in-process
# by tests/api/test_jobs.py (ctx.jobs.recover(), "re-queued"); a real server's processes
# ending with it by tests/api/test_serve.py's
# test_the_job_fork_server_starts_with_the_service_and_sigterm_leaves_no_process
@pytest.mark.slow
def test_jobs_survive_a_kill_9_of_the_server(settings: Settings) -> None:
    tmp_path, database_url = settings.data_dir, settings.database_url
    env = {"DISPATCHLAB_JOB_WORKERS": "1"}
    first = Server(tmp_path, env=env, database_url=database_url)
    key = make_key(tmp_path, "oms", database_url=database_url)
    headers = {"X-API-Key": key}
    job_ids: list[str] = []
    try:
        with httpx.Client(base_url=first.url, headers=headers, timeout=30) as http:
            for seed in range(3):
                answer = http.post("/v1/routes", json=_routes(2.0, seed, mode="async"))
                assert answer.status_code == 202, answer.text
                job_ids.append(answer.json()["job_id"])
            deadline = time.monotonic() + 30
            while http.get(f"/v1/jobs/{job_ids[0]}").json()["status"] != "running":
                assert time.monotonic() < deadline, "first job never started"
                time.sleep(0.1)
        workers = descendants(first.process.pid)
        assert workers, "the running job has no worker process"
        first.kill()
        deadline = time.monotonic() + 10
        while alive(workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(workers), "worker processes outlived the killed server"
        # what the killed server could not remove is in the test's temp dir, not in /tmp
        assert list(first.tmp_dir.glob("pymp-*/listener-*")), "no fork server socket kept"
    finally:
        first.stop()
    second = Server(tmp_path, env=env, database_url=database_url)
    try:
        with httpx.Client(base_url=second.url, headers=headers, timeout=30) as http:
            deadline = time.monotonic() + 60
            jobs: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                jobs = [http.get(f"/v1/jobs/{j}").json() for j in job_ids]
                if all(j["status"] in {"done", "failed"} for j in jobs):
                    break
                time.sleep(0.2)
        for job in jobs:
            assert job["status"] in {"done", "failed"}, job
            if job["status"] == "failed":
                assert job["error"], job
            else:
                assert job["result"]["status"] == "feasible"
        interrupted = jobs[0]
        assert any("re-queued" in e["message"] for e in interrupted["events"]), interrupted
        assert interrupted["status"] == "done" and interrupted["attempts"] == 2
    finally:
        second.stop()


#: run in the server before it starts: it is killed (SIGKILL) as it would write the end of a
#: run it has just stopped at its time limit
_DIE_AT_THE_TIME_LIMIT = """
import os, signal
from api.jobs.service import JobService
_write_killed = JobService._write_killed
def _die(self, run):
    if run.killed[0] == "failed":
        os.kill(os.getpid(), signal.SIGKILL)
    _write_killed(self, run)
JobService._write_killed = _die
"""


# ~8 s (two servers): the same path is checked in-process by tests/api/test_job_faults.py's
# test_a_run_stopped_at_its_time_limit_whose_server_was_killed_is_recovered_so
@pytest.mark.slow
def test_a_run_stopped_at_its_time_limit_whose_server_is_killed_is_not_called_a_crash(
    settings: Settings,
) -> None:
    """The server was killed between the kill of a run at its job time limit and the write
    of the failure: the next server re-queued the job as a crash ('stopped unexpectedly')
    and ran it again, to overrun again (attempt 2 of 2)."""
    from api.examples import SIMULATION_EXAMPLE

    tmp_path, database_url = settings.data_dir, settings.database_url
    env = {"DISPATCHLAB_JOB_WORKERS": "1", "DISPATCHLAB_JOB_TIMEOUT_S": "0.01"}
    first = Server(tmp_path, env=env, setup=_DIE_AT_THE_TIME_LIMIT, database_url=database_url)
    headers = {"X-API-Key": make_key(tmp_path, "planner", database_url=database_url)}
    body = {**copy.deepcopy(SIMULATION_EXAMPLE["small"]["value"]), "replications": 50}
    try:
        with httpx.Client(base_url=first.url, headers=headers, timeout=30) as http:
            answer = http.post("/v1/simulations", json=body)
            assert answer.status_code == 202, answer.text
            job_id = answer.json()["job_id"]
        first.process.wait(timeout=60)  # killed at the run's time limit
    finally:
        first.stop()
    second = Server(tmp_path, env=env, database_url=database_url)  # its start-up recovers it
    try:
        with httpx.Client(base_url=second.url, headers=headers, timeout=30) as http:
            job = http.get(f"/v1/jobs/{job_id}").json()
    finally:
        second.stop()
    reason = "exceeded the job time limit of 0.01 s (per run; attempt 1 of 2)"
    assert (job["status"], job["error"], job["attempts"]) == ("failed", reason, 1), job
    messages = [e["message"] for e in job["events"]]
    assert f"stopping the run: {reason}" in messages and messages[-1] == f"failed: {reason}"
    assert not any("unexpectedly" in m for m in messages), messages


def _listening_pids(port: int) -> set[int]:
    """Pids of the processes holding a listening TCP socket on ``port`` (from /proc)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    pids: set[int] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            links = {str(fd.readlink()) for fd in (proc / "fd").iterdir()}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            pids.add(int(proc.name))
    return pids


# ~10 s: a listening socket per worker is checked without a server by test_serve.py's
# test_connections_are_spread_over_the_listening_sockets_and_never_the_holder, and two real
# workers serve in its test_workers_on_a_free_port_log_the_port_they_serve_on
@pytest.mark.slow
@pytest.mark.skipif(not reuse_port_supported(), reason="SO_REUSEPORT sockets are Linux only")
def test_each_worker_process_listens_on_a_socket_of_its_own(tmp_path: Path) -> None:
    srv = Server(tmp_path, workers=2)
    try:
        workers = descendants(srv.process.pid)
        listening = _listening_pids(srv.port)
        # two listening sockets, one in each worker; the supervisor's socket does not listen
        assert len(listening) == 2 and listening <= workers
        assert srv.process.pid not in listening
        assert httpx.get(f"{srv.url}/readyz", timeout=5).status_code == 200
    finally:
        srv.stop()
    assert srv.process.returncode is not None


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _cpus_of(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no Cpus_allowed_list for {pid}")


# ~19 s: the pinning of workers and of their job processes is checked in-process by
# tests/api/test_cpus.py
@pytest.mark.slow
@pytest.mark.skipif(
    not reuse_port_supported() or len(cpus.allowed_cpus()) < 2,
    reason="needs SO_REUSEPORT, CPU affinity (Linux) and two CPUs",
)
def test_pinned_workers_run_on_a_cpu_each_and_their_jobs_on_all(tmp_path: Path) -> None:
    allowed = cpus.allowed_cpus()
    srv = Server(
        tmp_path, workers=2, args=("--cpu-affinity",), env={"DISPATCHLAB_JOB_WORKERS": "1"}
    )
    try:
        listening = _listening_pids(srv.port)
        assert sorted(_cpus_of(pid) for pid in listening) == [str(c) for c in allowed[:2]]
        assert _cpus_of(srv.process.pid) == _cpus_of(os.getpid())  # the supervisor is not pinned
        key = make_key(tmp_path, "oms")
        with httpx.Client(base_url=srv.url, headers={"X-API-Key": key}, timeout=30) as http:
            answer = http.post("/v1/routes", json=_routes(2.0, 1, mode="async"))
            assert answer.status_code == 202, answer.text
            job_id = answer.json()["job_id"]
            deadline = time.monotonic() + 30
            while http.get(f"/v1/jobs/{job_id}").json()["status"] != "running":
                assert time.monotonic() < deadline, "the job never started"
                time.sleep(0.1)
            # the job runs in a process the workers' fork server forks (its parent is not a
            # worker); the fork server itself only forks and keeps its worker's CPU
            # (it widens its CPUs as it starts: wait for that, up to the deadline)
            every = _cpus_of(os.getpid())
            seen: dict[int, str] = {}
            while not seen or set(seen.values()) != {every}:
                if time.monotonic() > deadline:
                    break
                below = set().union(*(descendants(w) for w in listening)) - listening
                try:
                    seen = {p: _cpus_of(p) for p in below if _parent_of(p) not in listening}
                except OSError:  # a process ended while we looked
                    continue
                time.sleep(0.05)
            assert seen, "the running job has no process"
            assert set(seen.values()) == {every}
    finally:
        srv.stop()

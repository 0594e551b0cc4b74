"""Load benchmark of the HTTP service (loopback only, bounded in requests and time).

One command reproduces the table::

    flock -x /tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/load.py

It starts ``dispatchlab serve`` on a free 127.0.0.1 port with a fresh SQLite database (or
targets ``--url``, which must be a loopback address), makes an ``oms`` key, and runs:

* ``allocations``: single-order ``POST /v1/allocations`` from ``--clients`` concurrent
  clients (20), ``--alloc-requests`` (2000) measured per phase; target p99 <= 50 ms, 0
  errors. A phase is measured after a warm-up by the same clients (10 requests each in
  closed loop, 2 when paced: connections open, the service in its steady state); the
  ``cold start`` phases instead start on 20 new connections at once, with no warm-up. The
  requests come from one generated 1000-order city, repeated in turn for longer phases;
* ``routes``: ``POST /v1/routes`` on a generated 100-order city with ``time_limit_s=1``,
  one at a time, ``--route-requests`` times; target p50 <= 1.15 s.

Writes ``benchmarks/results/<out-prefix>.md`` and ``.csv`` (one row per phase: requests,
errors, throughput, latency percentiles, target and whether it is met). Ctrl-C or a kill
(SIGTERM) stops the started server, deletes its data and writes no table (exit status 130).

The client shares the machine's cores with the server. ``--client raw`` (default) is a
minimal HTTP/1.1 client on asyncio streams: one keep-alive connection per concurrent
client, TCP_NODELAY, each request written in one send, the answer read in full (status,
headers, body by Content-Length or chunks) before the clock stops; the same bytes go over
the same sockets as with ``--client httpx``, which costs several times more CPU per request
and so takes that CPU from the server being measured. Bodies are serialised to JSON before
a phase starts (both clients).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.measures import (  # noqa: E402
    comma_option,
    command_line,
    count_arg,
    count_at_most,
    csv_text,
    output_folder_arg,
    provenance,
    run_script,
    seconds_arg,
    seed_arg,
    sigterm_as_ctrl_c,
    table_name_arg,
    write_table_files,
)

#: ``--clients``: each is a connection of its own (and a task): 100,000 of them filled 1.4 GB
#: and ignored Ctrl-C; ``--workers``: ``dispatchlab serve``'s own limit
MAX_CLIENTS = 256
MAX_WORKERS = 64
RESULTS = REPO / "benchmarks" / "results"
SOLOMON = REPO / "data" / "instances" / "solomon"
CLI = [sys.executable, "-c", "from dispatchlab.cli import main; main()"]


@dataclass
class Phase:
    """Measurements of one phase."""

    name: str
    clients: int
    latencies_s: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    target: str = ""
    met: bool | None = None
    notes: str = ""
    fallbacks: int = 0

    def pct(self, q: float) -> float:
        """Latency percentile ``q`` (0..100) in seconds (nearest rank)."""
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
        return ordered[rank - 1]

    @property
    def num_errors(self) -> int:
        """Requests that did not get the expected answer."""
        return sum(self.errors.values())

    @property
    def throughput(self) -> float:
        """Successful requests per second over the phase."""
        return len(self.latencies_s) / self.wall_s if self.wall_s > 0 else 0.0


def check_loopback(url: str) -> None:
    """Refuse any target that is not on this machine's loopback interface."""
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise SystemExit(f"refusing to load {url}: only loopback targets are allowed")


def rate_arg(text: str) -> float:
    """``--alloc-rate``: requests/s per client, a finite number, 0 or more (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (0.0 <= value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be 0 or a positive rate, not {text}")
    return value


def route_instance_arg(text: str) -> str:
    """``--route-instance``: ``city`` or a bundled Solomon instance's name (argparse type)."""
    if text == "city" or (SOLOMON / f"{text}.txt").is_file():
        return text
    bundled = ", ".join(sorted(p.stem for p in SOLOMON.glob("*.txt")))
    raise argparse.ArgumentTypeError(f"{text!r} is not 'city' nor a bundled instance ({bundled})")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalServer:
    """``dispatchlab serve`` on a fresh data directory (deleted at :meth:`stop` unless kept).

    The server's temporary files go to the data directory too (its ``TMPDIR``): a killed
    server (SIGKILL) leaves the socket directory of its job processes' fork server behind.
    If the server cannot be started (or Ctrl-C comes while it starts), it is stopped and the
    directory deleted before the error is raised.
    """

    def __init__(
        self,
        workers: int,
        *,
        keep: bool = False,
        cpu_affinity: bool = False,
        ready_timeout_s: float = 60.0,
    ) -> None:
        self.keep = keep
        self.dir = Path(tempfile.mkdtemp(prefix="dispatchlab-load-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log: Any = None
        try:
            self._start(workers, cpu_affinity, ready_timeout_s)
        except BaseException:
            self.stop()
            raise

    def _start(self, workers: int, cpu_affinity: bool, ready_timeout_s: float) -> None:
        tmp_dir = self.dir / "tmp"
        tmp_dir.mkdir()
        env = {**os.environ, "DISPATCHLAB_DATA_DIR": str(self.dir), "TMPDIR": str(tmp_dir)}
        made = subprocess.run(
            [*CLI, "keys", "create", "--role", "oms", "--name", "load"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        lines = made.stdout.strip().splitlines()
        if made.returncode != 0 or not lines:
            why = (made.stderr or made.stdout).strip()[-2000:]
            raise SystemExit(f"'keys create' failed with status {made.returncode}:\n{why}")
        self.key = lines[-1]
        log_path = self.dir / "server.log"
        self.log = log_path.open("w")
        self.process = subprocess.Popen(
            [
                *CLI,
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--log-level",
                "warning",
                *(["--cpu-affinity"] if cpu_affinity else []),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.flush()
                tail = log_path.read_text(errors="replace")[-2000:]
                raise SystemExit(
                    f"the server exited with status {self.process.returncode}:\n{tail}"
                )
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise SystemExit("the server did not become ready")

    def stop(self) -> None:
        """Terminate the server (if running) and delete its data directory unless kept."""
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=20)
        finally:
            if self.log is not None:
                self.log.close()
            if self.keep:
                print(f"server data and log kept in {self.dir}")
            else:  # each job row keeps its request: a run leaves hundreds of MB
                shutil.rmtree(self.dir, ignore_errors=True)


IDLE_REUSE_S = 4.0


class RawClient:
    """A minimal HTTP/1.1 client: keep-alive connections with TCP_NODELAY, one send a request.

    It measures what an HTTP client measures (request written, answer read in full) at a
    fraction of httpx's CPU, which matters when client and server share two cores.
    """

    def __init__(self, url: str, headers: dict[str, str], timeout_s: float = 60.0) -> None:
        parsed = urlparse(url)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 80
        self.timeout_s = timeout_s
        self._head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        # idle keep-alive connections with the time they were last used; uvicorn closes a
        # connection idle for 5 s, so older ones are dropped rather than reused
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return reader, writer

    async def post(self, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """POST a JSON body; returns (status, lower-cased headers, body)."""
        return await asyncio.wait_for(self._post(path, body), self.timeout_s)

    def _reuse(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """An idle connection still open and used in the last 4 s, else None."""
        while self._idle:
            reader, writer, last_used = self._idle.pop()
            if not reader.at_eof() and time.monotonic() - last_used < IDLE_REUSE_S:
                return reader, writer
            writer.close()
        return None

    async def _post(self, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self._head}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1")
        conn = self._reuse()
        if conn is not None:
            reader, writer = conn
            writer.write(head + body)
            try:
                raw_head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError) as err:
                # the server closed this keep-alive connection before reading the request
                # (nothing of an answer came back): send it again on a new connection
                writer.close()
                if isinstance(err, asyncio.IncompleteReadError) and err.partial:
                    raise
                conn = None
        if conn is None:
            reader, writer = await self._connect()
            writer.write(head + body)
            try:
                raw_head = await reader.readuntil(b"\r\n\r\n")
            except BaseException:
                writer.close()
                raise
        try:
            lines = raw_head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            if "content-length" in headers:
                content = await reader.readexactly(int(headers["content-length"]))
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    chunk = await reader.readexactly(size + 2)
                    if size == 0:
                        break
                    chunks.append(chunk[:-2])
                content = b"".join(chunks)
            else:
                content = await reader.read()
                headers["connection"] = "close"
        except BaseException:
            writer.close()
            raise
        if headers.get("connection", "").lower() == "close":
            writer.close()
        else:
            self._idle.append((reader, writer, time.monotonic()))
        return status, headers, content

    async def aclose(self) -> None:
        """Close the idle connections."""
        for _reader, writer, _last in self._idle:
            writer.close()
        self._idle.clear()


def _count_error(phase: Phase, key: str) -> None:
    phase.errors[key] = phase.errors.get(key, 0) + 1


def _check_answer(
    phase: Phase, status: int, headers: Mapping[str, str], content: bytes, expect: int
) -> bool:
    """Count a wrong status as an error and a fallback answer as a fallback."""
    if status != expect:
        _count_error(phase, f"http_{status}")
        return False
    is_json = headers.get("content-type", "").startswith("application/json")
    if is_json and json.loads(content).get("fallback") is True:
        phase.fallbacks += 1
    return True


async def _one(
    client: httpx.AsyncClient | RawClient, phase: Phase, path: str, body: bytes, expect: int
) -> None:
    start = time.perf_counter()
    headers: Mapping[str, str]
    try:
        if isinstance(client, RawClient):
            status, headers, content = await client.post(path, body)
        else:
            answer = await client.post(
                path, content=body, headers={"content-type": "application/json"}
            )
            status, headers, content = answer.status_code, answer.headers, answer.content
    except (httpx.HTTPError, OSError, asyncio.IncompleteReadError, TimeoutError) as err:
        _count_error(phase, type(err).__name__)
        return
    elapsed = time.perf_counter() - start
    if _check_answer(phase, status, headers, content, expect):
        phase.latencies_s.append(elapsed)


def _httpx_client(url: str, key: str, clients: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    # TCP_NODELAY: httpx writes a POST's headers and body separately; with Nagle on, the body
    # waits for the server's delayed ACK (~40 ms on Linux), which would be measured as latency
    transport = httpx.AsyncHTTPTransport(
        limits=limits, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    )
    return httpx.AsyncClient(
        base_url=url, headers={"X-API-Key": key}, timeout=60, transport=transport
    )


async def run_clients(
    url: str,
    key: str,
    phase: Phase,
    path: str,
    bodies: list[dict[str, Any]],
    *,
    warmup: int,
    expect: int = 200,
    rate_per_client: float | None = None,
    client_kind: str = "raw",
) -> None:
    """``phase.clients`` concurrent clients sharing ``bodies``.

    Without ``rate_per_client`` each client sends its next request as soon as the last one
    is answered (closed loop: saturation). With it, each client sends one request every
    ``1 / rate_per_client`` seconds on a fixed schedule (immediately if it is behind).
    ``warmup`` requests go first, sent the same way by the same clients, and are not
    measured: the clients' connections are open and the service in its steady state when
    the phase starts (``warmup=0``: the phase starts on new connections, a cold start).
    """
    payloads = [json.dumps(b, separators=(",", ":")).encode() for b in bodies]
    client: httpx.AsyncClient | RawClient
    if client_kind == "httpx":
        client = _httpx_client(url, key, phase.clients)
    else:
        client = RawClient(url, {"X-API-Key": key})
    try:
        if warmup:
            scratch = Phase("warmup", phase.clients)
            warm = [payloads[i % len(payloads)] for i in range(warmup)]
            await _drive(client, scratch, path, warm, expect, rate_per_client)
        start = time.perf_counter()
        await _drive(client, phase, path, payloads, expect, rate_per_client)
        phase.wall_s = time.perf_counter() - start
    finally:
        await client.aclose()


async def _drive(
    client: httpx.AsyncClient | RawClient,
    phase: Phase,
    path: str,
    payloads: list[bytes],
    expect: int,
    rate_per_client: float | None,
) -> None:
    """Send ``payloads`` from ``phase.clients`` concurrent clients (see :func:`run_clients`)."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for payload in payloads:
        queue.put_nowait(payload)

    async def worker(k: int) -> None:
        period = 1.0 / rate_per_client if rate_per_client else 0.0
        next_at = time.perf_counter() + period * k / phase.clients  # staggered start
        while True:
            if period:
                delay = next_at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                next_at += period
            try:
                body = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await _one(client, phase, path, body, expect)

    await asyncio.gather(*(worker(k) for k in range(phase.clients)))


#: Unmeasured requests per client before a warm allocation phase (closed loop).
WARMUP_PER_CLIENT = 10

#: The single-order requests come from a city of this many orders (its stock sized for them),
#: repeated in turn for longer phases: the request mix does not depend on the phase length.
ALLOC_CITY_ORDERS = 1000


def allocation_bodies(n: int, *, seed: int, explain: bool) -> list[dict[str, Any]]:
    """``n`` single-order allocation requests on one generated city (one order each)."""
    from api.examples import single_order_allocations

    city = single_order_allocations(min(n, ALLOC_CITY_ORDERS), seed=seed)
    for body in city:
        body["params"].update(explain=explain, shadow_prices=explain)
    return [city[i % len(city)] for i in range(n)]  # repeats are the same (unchanged) dicts


def route_body(instance: str, *, seed: int, time_limit_s: float) -> dict[str, Any]:
    """A 100-order routing request: a bundled Solomon instance, or ``city`` (generated)."""
    if instance == "city":
        from scenarios.generate import CityParams, generate_city

        v1 = CityParams(generator_version=1)  # the stored results' fleets (generator version 1)
        scenario = generate_city(seed=seed, num_orders=100, num_nodes=5, num_couriers=15, params=v1)
    else:
        from scenarios.io import load_scenario

        scenario = load_scenario(SOLOMON / f"{instance}.txt")
    return {
        "scenario": scenario.model_dump(mode="json", exclude_defaults=True),
        "params": {"engine": "auto", "time_limit_s": time_limit_s, "seed": seed},
        "mode": "sync",
    }


def write_results(
    phases: list[Phase],
    prefix: str,
    meta: dict[str, str],
    command: str = "benchmarks/load.py",
    out_dir: Path = RESULTS,
) -> None:
    """Write the CSV and the markdown table (into ``out_dir``), both or neither."""
    header = [
        "phase",
        "clients",
        "requests_ok",
        "errors",
        "fallbacks",
        "throughput_rps",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "max_ms",
        "mean_ms",
        "target",
        "met",
    ]
    rows = []
    for p in phases:
        lat = p.latencies_s
        rows.append(
            [
                p.name,
                p.clients,
                len(lat),
                p.num_errors,
                p.fallbacks,
                f"{p.throughput:.1f}",
                f"{p.pct(50) * 1000:.1f}",
                f"{p.pct(90) * 1000:.1f}",
                f"{p.pct(99) * 1000:.1f}",
                f"{max(lat) * 1000:.1f}" if lat else "nan",
                f"{statistics.fmean(lat) * 1000:.1f}" if lat else "nan",
                p.target,
                {None: "n/a", True: "yes", False: "NO"}[p.met],
            ]
        )
    lines = [
        "# Service load benchmark",
        "",
        f"Reproduce: `flock -x /tmp/dispatchlab-cpu.lock .venv/bin/python {command}`",
        "",
        *(f"- {k}: {v}" for k, v in meta.items()),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(str(c) for c in r) + " |" for r in rows),
        "",
    ]
    for p in phases:
        if p.errors or p.notes:
            lines.append(f"- {p.name}: errors {p.errors or 'none'}. {p.notes}".rstrip())
    write_table_files(
        out_dir,
        {f"{prefix}.csv": csv_text(header, rows), f"{prefix}.md": "\n".join(lines) + "\n"},
    )


PHASES = ("allocations", "routes")


def main(argv: list[str] | None = None) -> int:
    """Run the phases and write the tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="target a running service (loopback only)")
    parser.add_argument("--key", help="oms key for --url")
    parser.add_argument(
        "--workers",
        type=count_at_most(MAX_WORKERS),
        default=1,
        help=f"API processes (dispatchlab serve --workers), 1 to {MAX_WORKERS}",
    )
    parser.add_argument(
        "--clients",
        type=count_at_most(MAX_CLIENTS),
        default=20,
        help=f"concurrent clients (connections), 1 to {MAX_CLIENTS}",
    )
    parser.add_argument(
        "--alloc-requests", type=count_arg, default=2000, help="per allocation phase"
    )
    parser.add_argument(
        "--alloc-rate",
        type=rate_arg,
        default=2.0,
        help="requests/s per client in the paced allocation phases (0: no paced phases)",
    )
    parser.add_argument(
        "--route-requests", type=count_arg, default=10, help="requests of the routes phase"
    )
    parser.add_argument(
        "--route-time-limit",
        type=seconds_arg,
        default=1.0,
        help="time limit of each routes request (s)",
    )
    parser.add_argument(
        "--route-instance",
        type=route_instance_arg,
        default="R101",
        help="bundled Solomon instance, or 'city'",
    )
    parser.add_argument(
        "--phases", default=",".join(PHASES), help=f"comma list of {', '.join(PHASES)}"
    )
    parser.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="raw = minimal asyncio HTTP/1.1 client (little CPU); httpx = httpx.AsyncClient",
    )
    parser.add_argument(
        "--seed", type=seed_arg, default=1, help="seed of the generated request bodies"
    )
    parser.add_argument(
        "--keep-data", action="store_true", help="keep the started server's data and log"
    )
    parser.add_argument(
        "--cpu-affinity",
        action="store_true",
        help="start the server with --cpu-affinity (each API process on a CPU of its own)",
    )
    parser.add_argument(
        "--out-prefix",
        type=table_name_arg,
        default="load-latency",
        help="file name of the table, without .md/.csv",
    )
    parser.add_argument(
        "--out-dir",
        type=output_folder_arg("--out-dir"),
        default=str(RESULTS),
        help="where the table goes (benchmarks/results)",
    )
    args = parser.parse_args(argv)
    wanted = set(comma_option(parser, "--phases", args.phases, "phase", empty_ok=True))
    unknown = sorted(wanted - set(PHASES))
    if unknown or not wanted:  # nothing would run, and an empty table overwrite the last one
        what = f"unknown {', '.join(unknown)}" if unknown else "give at least one"
        parser.error(f"argument --phases: {what}; one of {', '.join(PHASES)}")

    if args.url:
        try:
            check_loopback(args.url)
        except SystemExit as refused:
            parser.error(f"argument --url: {refused}")
        if not args.key:
            parser.error("argument --key: needed with --url")
    made = provenance()  # when, which code, which machine: as the run starts

    with sigterm_as_ctrl_c():  # a kill as Ctrl-C: the started server is stopped too
        server = None
        phases: list[Phase] = []
        try:  # the started server is stopped and its data deleted however this ends (Ctrl-C too)
            if args.url:
                url, key = args.url, args.key
            else:
                server = LocalServer(
                    args.workers, keep=args.keep_data, cpu_affinity=args.cpu_affinity
                )
                url, key = server.url, server.key
            check_loopback(url)
            if "allocations" in wanted:
                runs: list[tuple[bool, float | None, bool]] = []  # explain, rate, cold
                for explain in (True, False):
                    runs.append((explain, None, False))
                    if args.alloc_rate:
                        runs.append((explain, args.alloc_rate, False))
                    runs.append((explain, None, True))
                for explain, rate, cold in runs:
                    load = f"paced {rate:g} req/s each" if rate else "closed loop"
                    label = "explanations" if explain else "no explanations"
                    if cold:
                        load += ", cold start (new connections, no warm-up)"
                    # warm-up: 10 requests per client in closed loop, 2 per client when paced
                    warmup = 0 if cold else args.clients * (2 if rate else WARMUP_PER_CLIENT)
                    phase = Phase(
                        f"allocations, 1 order, {label}, {load}",
                        args.clients,
                        target="p99 <= 50 ms, 0 errors",
                    )
                    bodies = allocation_bodies(args.alloc_requests, seed=args.seed, explain=explain)
                    asyncio.run(
                        run_clients(
                            url,
                            key,
                            phase,
                            "/v1/allocations",
                            bodies,
                            warmup=warmup,
                            rate_per_client=rate,
                            client_kind=args.client,
                        )
                    )
                    phase.met = (
                        phase.pct(99) <= 0.050 and phase.num_errors == 0 and not phase.fallbacks
                    )
                    phases.append(phase)
                    print(
                        f"{phase.name}: p99 {phase.pct(99) * 1000:.1f} ms, "
                        f"{phase.throughput:.1f} req/s, errors {phase.errors}"
                    )
            if "routes" in wanted:
                phase = Phase(
                    f"routes ({args.route_instance}, 100 orders, {args.route_time_limit:g} s)",
                    1,
                    target="p50 <= 1.15 s, no fallback",
                )
                body = route_body(
                    args.route_instance, seed=args.seed, time_limit_s=args.route_time_limit
                )
                bodies = [body] * args.route_requests
                asyncio.run(
                    run_clients(
                        url, key, phase, "/v1/routes", bodies, warmup=1, client_kind=args.client
                    )
                )
                phase.met = phase.pct(50) <= 1.15 and phase.num_errors == 0 and not phase.fallbacks
                phases.append(phase)
                print(f"routes: p50 {phase.pct(50) * 1000:.1f} ms, errors {phase.errors}")
        except KeyboardInterrupt:
            interrupted = True
        else:
            interrupted = False
        finally:
            if server is not None:
                server.stop()
    if interrupted:  # a table of some phases would stand for the whole run: none
        print("interrupted: no table written (the started server is stopped)", file=sys.stderr)
        return 130
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "run": made,
        "machine": f"{os.cpu_count()} cores; client and server on the same machine (loopback)",
        "server": f"dispatchlab serve --workers {args.workers}"
        + (" --cpu-affinity" if args.cpu_affinity else "")
        + ", SQLite, default settings",
        "clients": "closed loop = each client sends its next request when the last one is "
        f"answered (saturation); paced = each client sends {args.alloc_rate:g} requests/s on a "
        f"fixed schedule; measured after {WARMUP_PER_CLIENT} unmeasured requests per client "
        "(2 when paced) on the same connections, except the cold-start phases "
        f"({args.clients} new connections at once, no warm-up)",
        "client": {
            "raw": "raw (minimal asyncio HTTP/1.1 client, keep-alive, TCP_NODELAY)",
            "httpx": "httpx.AsyncClient (TCP_NODELAY)",
        }[args.client],
    }
    given = sys.argv[1:] if argv is None else argv
    command = command_line(parser, given, "load.py").removeprefix("python ")
    write_results(phases, args.out_prefix, meta, command, args.out_dir)
    print(f"wrote {args.out_dir / args.out_prefix}.md")
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))

"""Load benchmark of the HTTP service (loopback only, bounded in requests and time).

One command reproduces the table::

    flock -x /tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/load.py

It starts ``dispatchlab serve`` on a free 127.0.0.1 port with a fresh SQLite database (or
targets ``--url``, which must be a loopback address), makes an ``oms`` key, and runs:

* ``allocations``: single-order ``POST /v1/allocations`` from ``--clients`` concurrent
  clients (20), ``--alloc-requests`` in total after a warm-up; target p99 <= 50 ms, 0 errors;
* ``routes``: ``POST /v1/routes`` on a generated 100-order city with ``time_limit_s=1``,
  one at a time, ``--route-requests`` times; target p50 <= 1.15 s.

Writes ``benchmarks/results/<out-prefix>.md`` and ``.csv`` (one row per phase: requests,
errors, throughput, latency percentiles, target and whether it is met).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import ipaddress
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results"
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


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalServer:
    """``dispatchlab serve`` on a fresh data directory."""

    def __init__(self, workers: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="dispatchlab-load-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "DISPATCHLAB_DATA_DIR": str(self.dir)}
        self.key = (
            subprocess.run(
                [*CLI, "keys", "create", "--role", "oms", "--name", "load"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        self.log = (self.dir / "server.log").open("w")
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
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise SystemExit("the server did not become ready")

    def stop(self) -> None:
        """Terminate the server."""
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


async def _one(
    client: httpx.AsyncClient, phase: Phase, path: str, body: dict[str, Any], expect: int
) -> None:
    start = time.perf_counter()
    try:
        answer = await client.post(path, json=body)
    except httpx.HTTPError as err:
        key = type(err).__name__
        phase.errors[key] = phase.errors.get(key, 0) + 1
        return
    elapsed = time.perf_counter() - start
    if answer.status_code != expect:
        key = f"http_{answer.status_code}"
        phase.errors[key] = phase.errors.get(key, 0) + 1
        return
    phase.latencies_s.append(elapsed)
    is_json = answer.headers.get("content-type", "").startswith("application/json")
    if is_json and answer.json().get("fallback") is True:
        phase.fallbacks += 1


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
) -> None:
    """``phase.clients`` concurrent clients sharing ``bodies``.

    Without ``rate_per_client`` each client sends its next request as soon as the last one
    is answered (closed loop: saturation). With it, each client sends one request every
    ``1 / rate_per_client`` seconds on a fixed schedule (immediately if it is behind).
    """
    limits = httpx.Limits(max_connections=phase.clients, max_keepalive_connections=phase.clients)
    headers = {"X-API-Key": key}
    # TCP_NODELAY: httpx writes a POST's headers and body separately; with Nagle on, the body
    # waits for the server's delayed ACK (~40 ms on Linux), which would be measured as latency
    transport = httpx.AsyncHTTPTransport(
        limits=limits, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    )
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=60, transport=transport
    ) as client:
        scratch = Phase("warmup", phase.clients)
        for i in range(warmup):
            await _one(client, scratch, path, bodies[i % len(bodies)], expect)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for body in bodies:
            queue.put_nowait(body)

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

        start = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(phase.clients)))
        phase.wall_s = time.perf_counter() - start


def allocation_bodies(n: int, *, seed: int, explain: bool) -> list[dict[str, Any]]:
    """``n`` single-order allocation requests on one generated city (one order each)."""
    from api.examples import single_order_allocations

    bodies = single_order_allocations(n, seed=seed)
    for body in bodies:
        body["params"].update(explain=explain, shadow_prices=explain)
    return bodies


def route_body(instance: str, *, seed: int, time_limit_s: float) -> dict[str, Any]:
    """A 100-order routing request: a bundled Solomon instance, or ``city`` (generated)."""
    if instance == "city":
        from scenarios.generate import generate_city

        scenario = generate_city(seed=seed, num_orders=100, num_nodes=5, num_couriers=15)
    else:
        from scenarios.io import load_scenario

        scenario = load_scenario(REPO / "data" / "instances" / "solomon" / f"{instance}.txt")
    return {
        "scenario": scenario.model_dump(mode="json", exclude_defaults=True),
        "params": {"engine": "auto", "time_limit_s": time_limit_s, "seed": seed},
        "mode": "sync",
    }


def write_results(phases: list[Phase], prefix: str, meta: dict[str, str]) -> None:
    """Write the CSV and the markdown table."""
    RESULTS.mkdir(parents=True, exist_ok=True)
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
    with (RESULTS / f"{prefix}.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    lines = [
        "# Service load benchmark",
        "",
        "Reproduce: `flock -x /tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/load.py`",
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
    (RESULTS / f"{prefix}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    """Run the phases and write the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="target a running service (loopback only)")
    parser.add_argument("--key", help="oms key for --url")
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn processes (SQLite: keep 1, see docs)"
    )
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--alloc-requests", type=int, default=1000, help="per allocation phase")
    parser.add_argument(
        "--alloc-rate",
        type=float,
        default=2.0,
        help="requests/s per client in the paced allocation phases",
    )
    parser.add_argument("--route-requests", type=int, default=10)
    parser.add_argument("--route-time-limit", type=float, default=1.0)
    parser.add_argument(
        "--route-instance", default="R101", help="bundled Solomon instance, or 'city'"
    )
    parser.add_argument("--phases", default="allocations,routes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out-prefix", default="load-latency")
    args = parser.parse_args()

    server = None
    if args.url:
        check_loopback(args.url)
        if not args.key:
            raise SystemExit("--key is needed with --url")
        url, key = args.url, args.key
    else:
        server = LocalServer(args.workers)
        url, key = server.url, server.key
    check_loopback(url)
    phases: list[Phase] = []
    wanted = set(args.phases.split(","))
    try:
        if "allocations" in wanted:
            for explain in (True, False):
                for rate in (None, args.alloc_rate):
                    load = f"paced {rate:g} req/s each" if rate else "closed loop"
                    label = "explanations" if explain else "no explanations"
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
                            warmup=50,
                            rate_per_client=rate,
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
            asyncio.run(run_clients(url, key, phase, "/v1/routes", bodies, warmup=1))
            phase.met = phase.pct(50) <= 1.15 and phase.num_errors == 0 and not phase.fallbacks
            phases.append(phase)
            print(f"routes: p50 {phase.pct(50) * 1000:.1f} ms, errors {phase.errors}")
    finally:
        if server is not None:
            server.stop()
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{os.cpu_count()} cores; client and server on the same machine (loopback)",
        "server": f"dispatchlab serve --workers {args.workers}, SQLite, default settings",
        "clients": "closed loop = each client sends its next request when the last one is "
        f"answered (saturation); paced = each client sends {args.alloc_rate:g} requests/s on a "
        "fixed schedule",
    }
    write_results(phases, args.out_prefix, meta)
    print(f"wrote {RESULTS / args.out_prefix}.md")


if __name__ == "__main__":
    main()

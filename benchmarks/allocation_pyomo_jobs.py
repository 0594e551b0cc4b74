"""How long a plan job whose allocation asks for ``backend: "pyomo"`` takes, end to end.

Each run starts the service (``dispatchlab demo``, a fresh SQLite folder, the code of one
``--code``), times its start to the first ``200`` of ``/healthz``, waits ``--settle`` seconds
(a service up a few seconds: its fork server has imported its modules) and then submits,
one after the other, plan jobs (``mode: "async"``: each runs in a job process of its own) of
a generated city (``--orders`` orders, seed 1, 4 nodes, greedy routing, no replications):

1. the allocation with ``backend: "pyomo"`` and a ``--limit`` s time limit;
2. the same with ``backend: "highspy"``, for reference (the same job without a worker);
3. ``backend: "pyomo"`` at ``--short-limit`` s: which backend answered (a job process
   whose worker would not be ready in time answers with highspy, ``batch``).

Each job is timed from its submit to ``GET /v1/jobs/{id}`` reading ``done`` (polled every
20 ms). The service is then stopped with SIGTERM; every process of the run (they all carry
the run's tag in their environment: the service, its fork server, job processes, pyomo
workers) still there a second after its exit is counted. The fork server's RSS and PSS are
read before the first job. With several ``--code``, runs alternate between them. A
``--code LABEL=REV`` names a commit of this repository (``4c0fd0a``, ``HEAD~3``): its files
(``git archive``) are measured from a temporary folder, and the table's ``Command:`` line
gives the commit, so the run can be repeated; a folder given as ``LABEL=PATH`` is given
there as the commit its checkout is at when that is a commit of this repository and the
checkout has no uncommitted changes (the same files), else as it was typed; the table's
``Codes:`` names the folder and the commit its checkout was at (with uncommitted changes, if
it had any).

A second table times the worker's start inside job processes (the HTTP answer does
not show it): the service's job executor (``api.main._make_executor``, its fork server's
preload) of each ``--code``, ``--settle`` s after its start, runs ``--ready-jobs`` jobs whose
payload asks for the pyomo backend and whose body takes the worker at once: the seconds from
the worker's start (the job asking for it) until the body had it ready, and the body's wait.

Writes ``allocation-pyomo-jobs.md`` (both tables) and ``.csv`` (the first); hold the CPU
lock while it runs (here the last commit against the working tree)::

    flock -x /tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/allocation_pyomo_jobs.py \\
        --code before=HEAD --code after=.

Ctrl-C (or SIGTERM) stops the running service and its job processes and writes no table
(exit status 130).

A city of 20 orders, because HiGHS solves its pyomo model in ~0.3 s: 60 literature or city
orders ran to a 5 s limit, so the job took the limit whatever the worker's start took from
it (it only left HiGHS less time).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.allocation import RUN_LINES, progress, write_table  # noqa: E402
from benchmarks.allocation_certify import seconds_arg  # noqa: E402
from benchmarks.measures import (  # noqa: E402
    count_arg,
    count_at_most,
    ctrl_c_writes_nothing,
    output_folder_arg,
    provenance,
    run_script,
    sigterm_as_ctrl_c,
)

HEADER = [
    "code",
    "run",
    "start to /healthz (s)",
    "fork server RSS / PSS (MB)",
    "pyomo job (s)",
    "highspy job (s)",
    "pyomo - highspy (s)",
    "short-limit pyomo job: method",
    "processes left",
]
#: the environment variable whose value tags every process of a run
TAG_ENV = "DISPATCHLAB_BENCH_RUN"
#: how often a job's state is read (s)
POLL_S = 0.02


@dataclass(frozen=True)
class Code:
    """A version of the code to measure: its label, its folder (the repository root), the
    commit of this repository it was given as (None: given as a folder) and the text it was
    given as (after ``LABEL=``)."""

    label: str
    root: Path
    commit: str | None = None
    given: str = ""


def _commit(rev: str) -> str | None:
    """The full hash of the commit ``rev`` names in this repository (None: no such commit)."""
    if not rev or rev.startswith("-"):
        return None
    try:
        found = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
            capture_output=True,
            text=True,
        )
    except OSError:  # no git
        return None
    if found.returncode != 0:
        return None
    return found.stdout.strip() or None


def code_arg(text: str) -> Code:
    """``--code LABEL=PATH`` or ``LABEL=REV`` (argparse type: a folder without
    ``dispatchlab`` that names no commit of this repository is an error)."""
    label, sep, path = text.partition("=")
    if not sep or not label.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected LABEL=PATH or LABEL=REV")
    root = Path(path).resolve()
    if (root / "dispatchlab" / "cli").is_dir():
        return Code(label.strip(), root, given=path)
    commit = _commit(path)
    if commit is None:
        raise argparse.ArgumentTypeError(
            f"{text!r}: {root} is no dispatchlab repository, and {path!r} no commit of {REPO}"
        )
    return Code(label.strip(), root, commit, given=path)


def checked_out(code: Code, folder: Path) -> Code:
    """``code`` with its files: a commit's written into ``folder`` (``git archive``)."""
    if code.commit is None:
        return code
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", code.commit],
        capture_output=True,
        check=True,
    )
    root = folder / code.commit[:12]
    root.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(root, filter="data")
    return Code(code.label, root, code.commit, code.given)


def command_code(code: Code) -> str:
    """``--code`` as the table's ``Command:`` line gives it, with its label and revision: a
    commit as its hash (``HEAD`` names another one later); a folder whose checkout is a
    commit of this repository without uncommitted changes as that commit (the same files,
    and a command that still runs once the folder is gone); any other folder as it was
    given (as run: no commit holds its files)."""
    if code.commit:
        value = code.commit[:7]
    else:
        head, clean = folder_revision(code.root)
        known = head is not None and clean and _commit(head) == head
        value = head[:7] if known and head else code.given or str(code.root)
    return "--code " + shlex.quote(f"{code.label}={value}")


def folder_revision(root: Path) -> tuple[str | None, bool]:
    """The commit the git checkout at ``root`` is at (None: no checkout, or no git) and
    whether its tracked files are that commit's (no uncommitted changes)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--verify", "--quiet", "HEAD"],
            capture_output=True,
            text=True,
        )
        if head.returncode != 0 or not head.stdout.strip():
            return None, False
        changed = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
        )
    except OSError:  # no git
        return None, False
    return head.stdout.strip(), changed.returncode == 0 and not changed.stdout.strip()


def describe_code(code: Code) -> str:
    """``code`` as the table's ``Codes:`` names it: its commit, or its folder and the commit
    that folder's checkout was at (with uncommitted changes, if it had any)."""
    if code.commit:
        return f"{code.label} = commit {code.commit[:7]}"
    head, clean = folder_revision(code.root)
    if head is None:
        return f"{code.label} = `{code.root}` (no git checkout)"
    changes = "" if clean else " + uncommitted changes"
    return f"{code.label} = `{code.root}` (commit {head[:7]}{changes})"


def command_line(codes: list[Code], args: argparse.Namespace) -> str:
    """The command of a run of ``codes`` with ``args``, as the table's ``Command:`` gives it:
    as run, each ``--code`` with its label and revision (:func:`command_code`; none for the
    default, this checkout), and the options that shape the tables."""
    return (
        "python benchmarks/allocation_pyomo_jobs.py "
        + "".join(f"{command_code(c)} " for c in codes if c.given)
        + f"--runs {args.runs} --orders {args.orders} --limit {args.limit:g} "
        f"--short-limit {args.short_limit:g} --settle {args.settle:g} "
        f"--ready-jobs {args.ready_jobs}"
    )


def _cli(code: Code, env: dict[str, str], *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    """``dispatchlab ARGS`` of ``code`` (its folder first on the path), started."""
    entry = "import sys; from dispatchlab.cli import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", entry, *args], cwd=code.root, env=env, text=True, **kwargs
    )


def _tagged(tag: str) -> list[int]:
    """The pids of the processes whose environment carries ``tag``."""
    needle = f"{TAG_ENV}={tag}".encode()
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                environ = f.read().split(b"\0")
            with open(f"/proc/{name}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in environ and state != b"Z":
            pids.append(int(name))
    return pids


def _memory_mb(pid: int) -> str:
    """``RSS / PSS`` of process ``pid`` in MB (``?`` where it cannot be read)."""
    try:
        fields = {}
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] in ("Rss:", "Pss:"):
                    fields[parts[0]] = int(parts[1]) / 1024
        return f"{fields['Rss:']:.0f} / {fields['Pss:']:.0f}"
    except (OSError, KeyError, ValueError):
        return "?"


def _fork_server(tag: str) -> int | None:
    """The pid of the run's fork server (multiprocessing's), if it runs."""
    for pid in _tagged(tag):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"multiprocessing.forkserver" in f.read():
                    return pid
        except OSError:
            continue
    return None


def _job(client: httpx.Client, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """Submit a plan job and wait for it: seconds from the submit to ``done``, and the job."""
    t0 = time.perf_counter()
    accepted = client.post("/v1/plans", json=body)
    if accepted.status_code != 202:
        raise RuntimeError(f"plan not queued: {accepted.status_code} {accepted.text[:300]}")
    url = accepted.json()["links"]["self"]
    while True:
        job = client.get(url).json()
        if job["status"] in ("done", "failed", "cancelled"):
            wall = time.perf_counter() - t0
            if job["status"] != "done":
                raise RuntimeError(f"job {job['status']}: {job.get('error')}")
            return wall, job
        if time.perf_counter() - t0 > 120:
            raise RuntimeError("job not done in 120 s")
        time.sleep(POLL_S)


def _plan(scenario: dict[str, Any], backend: str, limit_s: float) -> dict[str, Any]:
    """A plan job's body: the allocation with ``backend`` and ``limit_s``, greedy routes."""
    return {
        "scenario": scenario,
        "mode": "async",
        "allocation": {"backend": backend, "time_limit_s": limit_s},
        "routing": {"engine": "greedy", "time_limit_s": 1, "seed": 1},
        "evaluation": {"replications": 0},
    }


def measure(code: Code, run: int, args: argparse.Namespace, scenario: dict[str, Any]) -> list[Any]:
    """One run of ``code``: a row of :data:`HEADER`."""
    tag = uuid.uuid4().hex
    env = dict(os.environ)
    env[TAG_ENV] = tag
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(code.root), env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="pyomo-jobs-") as data:
        keys = _cli(code, env, "keys", "create", "--role", "oms", "--data-dir", data,
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
        out, _ = keys.communicate(timeout=120)
        key = out.strip().splitlines()[-1]
        t0 = time.perf_counter()
        service = _cli(code, env, "demo", "--port", str(args.port), "--data-dir", data,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        base = f"http://127.0.0.1:{args.port}"
        try:
            with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30) as client:
                healthz = None
                while healthz is None:
                    if service.poll() is not None:
                        raise RuntimeError(f"the service exited ({service.returncode})")
                    try:
                        if client.get("/healthz").status_code == 200:
                            healthz = time.perf_counter() - t0
                    except httpx.TransportError:
                        pass
                    if time.perf_counter() - t0 > 120:
                        raise RuntimeError("no /healthz in 120 s")
                    time.sleep(POLL_S)
                time.sleep(args.settle)
                server = _fork_server(tag)
                memory = "?" if server is None else _memory_mb(server)
                pyomo_s, _ = _job(client, _plan(scenario, "pyomo", args.limit))
                highspy_s, _ = _job(client, _plan(scenario, "highspy", args.limit))
                _, short = _job(client, _plan(scenario, "pyomo", args.short_limit))
        finally:
            service.send_signal(signal.SIGTERM)
            try:
                service.wait(60)
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait()
            time.sleep(1.0)
            left = _tagged(tag)
            for pid in left:  # not to disturb the next run
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    return [
        code.label,
        run,
        f"{healthz:.2f}",
        memory,
        f"{pyomo_s:.2f}",
        f"{highspy_s:.2f}",
        f"{pyomo_s - highspy_s:+.2f}",
        short["result"]["allocation"]["method"],
        len(left),
    ]


#: a job body (its own module, importable with either code) and the executor that runs it
_PROBE = """
import json, sys, tempfile, time
from pathlib import Path


def ready(payload, *, progress=None):
    from solvers.allocation import pyomo_worker

    t0 = time.perf_counter()
    worker = pyomo_worker.take_worker(60.0)
    t1 = time.perf_counter()
    if worker is None:
        return {"ok": False}
    pyomo_worker.end_workers()
    return {
        "ok": True,
        "ready_s": t1 - worker.started_at,
        "wait_s": t1 - t0,
        "forked": getattr(worker, "forked", False),
        "import_s": worker.import_s,
    }


def main():
    from api.core.config import Settings
    from api.main import _make_executor
    from api.tasks import default_registry

    jobs, settle = int(sys.argv[1]), float(sys.argv[2])
    rows = []
    with tempfile.TemporaryDirectory() as data:
        executor = _make_executor(Settings(data_dir=Path(data)), default_registry())
        executor.warm_up()
        time.sleep(settle)
        for i in range(jobs):
            payload = {"params": {"backend": "pyomo"}}
            run = executor.start(f"p{i}", "pyomo_jobs_probe:ready", payload)
            while (outcome := run.poll()) is None:
                time.sleep(0.01)
            rows.append(outcome.result if outcome.status == "done" else {"ok": False})
        executor.close()
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
"""

READY_HEADER = [
    "code",
    "job",
    "worker forked",
    "Pyomo import in the worker (s)",
    "worker start to ready, as the job saw it (s)",
    "the job's wait for it (s)",
]


def measure_ready(code: Code, args: argparse.Namespace) -> list[list[Any]]:
    """``--ready-jobs`` job processes of ``code`` asking for the pyomo worker: rows of
    :data:`READY_HEADER`."""
    with tempfile.TemporaryDirectory(prefix="pyomo-probe-") as probe:
        (Path(probe) / "pyomo_jobs_probe.py").write_text(_PROBE)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(code.root), probe, env.get("PYTHONPATH")) if p
        )
        out = subprocess.run(
            [sys.executable, str(Path(probe) / "pyomo_jobs_probe.py"), str(args.ready_jobs),
             str(args.settle)],
            cwd=code.root, env=env, capture_output=True, text=True, timeout=600, check=True,
        )  # fmt: skip
    rows = []
    for i, job in enumerate(json.loads(out.stdout.strip().splitlines()[-1]), start=1):
        if not job["ok"]:
            rows.append([code.label, i, "no worker", "", "", ""])
            continue
        rows.append(
            [
                code.label,
                i,
                "yes" if job["forked"] else "no",
                f"{job['import_s']:.3f}",
                f"{job['ready_s']:.3f}",
                f"{job['wait_s']:.3f}",
            ]
        )
    return rows


def _median(rows: list[list[Any]], label: str, column: int) -> str:
    """The median of a column of ``label``'s rows."""
    values = [float(r[column]) for r in rows if r[0] == label]
    return f"{statistics.median(values):.2f}"


@ctrl_c_writes_nothing  # the services started are stopped as the runs unwind
def main(argv: list[str] | None = None) -> int:
    """Measure every run and write the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--code",
        type=code_arg,
        action="append",
        help="LABEL=PATH of a repository, or LABEL=REV of a commit of this one, to run the "
        "service from (repeatable; default this checkout)",
    )
    ap.add_argument("--runs", type=count_arg, default=5, help="service starts per --code")
    ap.add_argument("--orders", type=count_arg, default=20, help="orders of the city")
    ap.add_argument("--limit", type=seconds_arg, default=5.0, help="allocation time limit (s)")
    ap.add_argument("--short-limit", type=seconds_arg, default=1.0, help="the third job's (s)")
    ap.add_argument("--settle", type=seconds_arg, default=5.0, help="wait after /healthz (s)")
    ap.add_argument("--ready-jobs", type=count_arg, default=5, help="job processes per --code")
    ap.add_argument("--port", type=count_at_most(65535), default=18141, help="the service's port")
    ap.add_argument(
        "--out-dir",
        type=output_folder_arg("--out-dir"),
        default=str(REPO / "benchmarks" / "results"),
        help="where the table goes (default benchmarks/results)",
    )
    args = ap.parse_args(argv)
    RUN_LINES[:] = [provenance()]  # when, which code, which machine: as the run starts
    # a kill (SIGTERM) as Ctrl-C: the started service and its job processes are stopped too
    with (
        sigterm_as_ctrl_c(),
        tempfile.TemporaryDirectory(prefix="pyomo-jobs-code-") as folder,
    ):
        codes = [checked_out(c, Path(folder)) for c in args.code or [Code("this", REPO)]]
        return _measure_all(codes, args)


def _measure_all(codes: list[Code], args: argparse.Namespace) -> int:
    """Measure every run of ``codes`` and write the tables."""
    from scenarios.generate import generate_city

    # the folders' commits as the runs begin
    described = [describe_code(c) for c in codes]
    commands = command_line(codes, args)
    city = generate_city(seed=1, num_orders=args.orders, num_nodes=4, num_couriers=6)
    scenario = json.loads(city.model_dump_json(exclude_defaults=True))
    rows = []
    with progress() as bar:
        task = bar.add_task("Plan jobs with a pyomo allocation", total=args.runs * len(codes))
        for run in range(1, args.runs + 1):
            for code in codes:
                rows.append(measure(code, run, args, scenario))
                bar.advance(task)
    for code in codes:
        rows.append(
            [
                code.label,
                "median",
                _median(rows, code.label, 2),
                "",
                _median(rows, code.label, 4),
                _median(rows, code.label, 5),
                "",
                "",
                sum(int(r[8]) for r in rows if r[0] == code.label and r[1] != "median"),
            ]
        )
    notes = (
        f"Plan jobs (`mode: async`, a job process each) of a generated city ({args.orders} "
        "orders, seed 1, 4 nodes, greedy routing, no replications), the allocation with "
        f'`backend: "pyomo"` and `time_limit_s: {args.limit:g}`, then the same with highspy, '
        f"then pyomo at {args.short_limit:g} s (the method that answered: `batch/pyomo`, or "
        "`batch` where the job process's worker was not ready in time); each timed from its "
        f"submit to `done`, {args.settle:g} s after the service's `/healthz` first answered. "
        "'processes left': the run's processes still there 1 s after the service exited on "
        f"SIGTERM. One service start per row, on {os.cpu_count()} CPUs ({platform.machine()}), "
        f"Python {platform.python_version()}. Codes: {', '.join(described)}. Command: "
        f"`{commands}`."
    )
    ready: list[list[Any]] = []
    for code in codes:
        ready.extend(measure_ready(code, args))
    lines = [
        "",
        "## The pyomo worker's start in job processes",
        "",
        f"The service's job executor of each code, {args.settle:g} s after its start, "
        f"{args.ready_jobs} jobs one after the other, each taking the worker at once "
        "(its start is the job's ask, before the job's body runs).",
        "",
        "| " + " | ".join(READY_HEADER) + " |",
        "|" + "|".join("---" for _ in READY_HEADER) + "|",
        *("| " + " | ".join(str(c) for c in row) + " |" for row in ready),
    ]
    write_table(
        args.out_dir,
        "allocation-pyomo-jobs",
        "Allocation: plan jobs with the pyomo backend, end to end",
        HEADER,
        rows,
        notes,
        tail=lines,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))

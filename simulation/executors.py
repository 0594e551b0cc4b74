"""Where replications run: in-process, a local process pool, or a Ray cluster (same code path).

Every executor runs ``fn(shared, key, task)`` for each task and hands the results back as they
finish. ``shared`` is the large, read-only input (scenarios and plans) sent **once per worker**
(pool initializer / one Ray object), ``key`` identifies it so workers can keep what they
derive from it (compiled worlds) between tasks. ``plugins`` are modules every worker imports
first (for example one that registers extra policies).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")

TaskFn = Callable[[Any, str, Any], Any]
OnResult = Callable[[int, Any], None]

_SHARED: dict[str, Any] = {}


def _import_plugins(plugins: Sequence[str]) -> None:
    for module in plugins:
        importlib.import_module(module)


class Executor(Protocol):
    """Runs tasks; ``on_result(index, result)`` is called in the caller's process as each ends."""

    name: str

    def run(
        self,
        fn: TaskFn,
        shared: Any,
        key: str,
        tasks: Sequence[Any],
        *,
        on_result: OnResult | None = None,
        plugins: Sequence[str] = (),
    ) -> list[Any]:
        """Results in task order."""
        ...


class SerialExecutor:
    """Runs every task in this process, one after the other."""

    name = "serial"

    def run(
        self,
        fn: TaskFn,
        shared: Any,
        key: str,
        tasks: Sequence[Any],
        *,
        on_result: OnResult | None = None,
        plugins: Sequence[str] = (),
    ) -> list[Any]:
        """Results in task order."""
        _import_plugins(plugins)
        out = []
        for i, task in enumerate(tasks):
            result = fn(shared, key, task)
            out.append(result)
            if on_result is not None:
                on_result(i, result)
        return out


#: Seconds between a pool worker's looks at whether the process that started it still runs.
PARENT_POLL_S = 1.0


def _exit_with_parent(parent: int) -> None:
    """End this worker once ``parent`` is gone (killed or terminated without a clean-up)."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def _pool_init(key: str, blob: bytes, plugins: Sequence[str]) -> None:
    # Ctrl-C is the parent's to handle (it ends its workers): a worker's KeyboardInterrupt
    # only failed its task, and the worker then played the next one queued for it; first,
    # before the imports unpickling ``blob`` makes (a worker interrupted there printed a
    # traceback)
    ignore_sigint()
    # a parent ended by SIGTERM or SIGKILL runs no clean-up: its workers would play on,
    # orphaned, to the end of their replications (minutes for a re-optimising policy)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    _import_plugins(plugins)
    _SHARED.clear()
    _SHARED[key] = pickle.loads(blob)


def ignore_sigint() -> None:
    """Ignore Ctrl-C in this worker process (its parent handles it and ends its workers), and
    drop one pending since the parent started it under :func:`sigint_held`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # dropped now (ignored), not raised in start-up
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@contextlib.contextmanager
def sigint_held() -> Iterator[None]:
    """Ctrl-C held while worker processes start, then raised (as it would have been).

    A worker starts with its parent's signal mask: SIGINT blocked in this thread, it cannot
    be interrupted in Python's start-up or the spawn bootstrap, before it ignores Ctrl-C
    (:func:`ignore_sigint`; a Ctrl-C just after ``whatif`` started its workers printed a
    worker's traceback under ``error: interrupted``). A Ctrl-C that reaches another thread
    meanwhile is recorded (in the main thread) instead of raised half-way, and raised once
    the block ends, the workers started: the caller can end them. The standard library
    starts its resource tracker under such a block too, and unblocks SIGINT when it has: it
    is started first (a spawn starts it the first time, and the first worker ran unblocked).
    """
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks
        yield
        return
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    pressed: list[int] = []
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda *_: pressed.append(1)) if main else None
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        if main:  # None: a handler set outside Python, taken as the default
            signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, old)  # one held since: raised now
        if pressed:  # as the handler before would have taken it (KeyboardInterrupt)
            signal.raise_signal(signal.SIGINT)


def _pool_call(fn: TaskFn, key: str, task: Any) -> Any:
    return fn(_SHARED[key], key, task)


#: Seconds a pool worker gets to end after SIGTERM (when the parent stops early) before SIGKILL.
WORKER_STOP_S = 5.0


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the workers now: a task a worker has begun, or
    taken from the pool's queue, would otherwise run to its end, and the interpreter's exit
    waits for it (a Ctrl-C'd ``whatif`` hung for minutes, re-optimising days)."""
    # ProcessPoolExecutor ends running workers only from Python 3.14 (terminate_workers)
    workers = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)  # shutdown() forgets it
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        with contextlib.suppress(Exception):
            process.terminate()
    deadline = time.monotonic() + WORKER_STOP_S
    for process in workers:
        with contextlib.suppress(Exception):
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(1.0)
    # The pool's manager thread, seeing its workers gone, closes its wake-up pipe; the
    # interpreter's exit writes to that pipe unless it is closed (concurrent.futures'
    # _python_exit). Closed meanwhile, between that check and the write, the exit printed
    # "Exception ignored in: <module 'threading'> ... OSError: [Errno 9] Bad file descriptor"
    # under `error: interrupted` (a race in CPython's concurrent.futures, fixed by gh-125451
    # in later releases; Python 3.11 has it): so wait for the thread to end, its pipe
    # closed, before the caller goes on to exit.
    if isinstance(manager, threading.Thread) and manager is not threading.current_thread():
        manager.join(max(1.0, deadline - time.monotonic()))


class LocalExecutor:
    """A pool of local worker processes (``spawn``, so it is safe next to threads and Ray)."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers if workers is not None else max(1, os.cpu_count() or 1)

    def run(
        self,
        fn: TaskFn,
        shared: Any,
        key: str,
        tasks: Sequence[Any],
        *,
        on_result: OnResult | None = None,
        plugins: Sequence[str] = (),
    ) -> list[Any]:
        """Results in task order; Ctrl-C (or an error) cancels what has not started, ends the
        workers and re-raises."""
        if self.workers <= 1 or len(tasks) <= 1:
            return SerialExecutor().run(
                fn, shared, key, tasks, on_result=on_result, plugins=plugins
            )
        blob = pickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL)
        results: list[Any] = [None] * len(tasks)
        pool = ProcessPoolExecutor(
            max_workers=min(self.workers, len(tasks)),
            mp_context=get_context("spawn"),
            initializer=_pool_init,
            initargs=(key, blob, tuple(plugins)),
        )
        try:
            with sigint_held():  # the pool starts its workers as tasks are submitted
                futures: dict[Future[Any], int] = {
                    pool.submit(_pool_call, fn, key, task): i for i, task in enumerate(tasks)
                }
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = futures[fut]
                    results[i] = fut.result()
                    if on_result is not None:
                        on_result(i, results[i])
        except BaseException:
            _stop_pool(pool)
            raise
        pool.shutdown(wait=True)
        return results


def _ray_call(fn: TaskFn, key: str, holder: list[Any], plugins: Sequence[str], task: Any) -> Any:
    """Ray task body: fetch the shared object once per worker process, then run ``fn``."""
    shared = _SHARED.get(key)
    if shared is None:
        import ray

        _import_plugins(plugins)
        shared = ray.get(holder[0])
        _SHARED.clear()
        _SHARED[key] = shared
    return fn(shared, key, task)


#: Seconds to resolve a Ray address and open a TCP connection to it before giving up.
RAY_CONNECT_TIMEOUT_S = 3.0


def _ray_host_port(address: str, option: str = "--address") -> tuple[str, int]:
    """``HOST:PORT`` (or ``ray://HOST[:PORT]``, ``[IPv6]:PORT``) as host and port."""
    from scenarios.errors import InputError

    client = address.startswith("ray://")
    rest = address.removeprefix("ray://").rstrip("/")
    host, sep, port_text = rest.rpartition(":")
    if not sep or host.endswith(":"):  # no port, or a bare IPv6 address
        host, port_text = rest, "10001" if client else "6379"
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InputError(option, f"expected HOST:PORT, got {address!r}")
    return host, int(port_text)


def _tcp_probe(host: str, port: int, timeout_s: float) -> str | None:
    """None when ``host`` resolves and ``port`` accepts a connection in time, else why not."""
    outcome: list[str | None] = []

    def probe() -> None:
        deadline = time.monotonic() + timeout_s
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            outcome.append(f"{host} does not resolve")
            return
        reason = "no answer"
        for family, kind, proto, _name, sockaddr in infos:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                with socket.socket(family, kind, proto) as sock:
                    sock.settimeout(left)
                    sock.connect(sockaddr)
                outcome.append(None)
                return
            except TimeoutError:
                reason = f"no answer in {timeout_s:g} s"
            except OSError as err:
                reason = (err.strerror or str(err)).lower()
        outcome.append(reason)

    # A thread, so a resolver that hangs cannot hold the caller past the timeout.
    thread = threading.Thread(target=probe, name="ray-address-check", daemon=True)
    thread.start()
    thread.join(timeout_s + 0.5)
    return outcome[0] if outcome else f"no answer in {timeout_s:g} s"


def _gcs_probe(target: str, timeout_s: float) -> str | None:
    """None when a Ray GCS answers a ``GetClusterId`` call at ``target`` in time, else why not.

    Only a server that is not there, not in time, or not a GCS (the method unknown: an HTTP
    proxy, another gRPC service) fails; any other answer is left to ``ray.init``.
    """
    try:
        import grpc
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc
    except ImportError:  # ray.init reports a missing Ray itself
        return None
    try:  # Ray's generated protocol, not a public API: a version without it is not checked
        request = gcs_service_pb2.GetClusterIdRequest()  # type: ignore[attr-defined]
        stub_class = gcs_service_pb2_grpc.NodeInfoGcsServiceStub
    except AttributeError:
        return None
    with grpc.insecure_channel(target) as channel:
        stub = stub_class(channel)
        try:
            stub.GetClusterId(request, timeout=timeout_s)
        except grpc.RpcError as err:
            code = err.code()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return f"no answer in {timeout_s:g} s"
            if code == grpc.StatusCode.UNIMPLEMENTED:
                return "something answers, but not a Ray GCS"
            if code == grpc.StatusCode.UNAVAILABLE:
                return "unavailable"
    return None


def check_ray_address(
    address: str, timeout_s: float = RAY_CONNECT_TIMEOUT_S, *, option: str = "--address"
) -> None:
    """Raise InputError(option, ...) unless a Ray cluster answers at ``address`` in time.

    ``ray.init`` retries an address nobody answers at for minutes; this fails in seconds:
    the host must resolve and the port accept a TCP connection, and for a GCS address
    (``HOST:PORT``, not ``ray://``) the GCS must answer a gRPC call. ``auto`` and ``local``
    (Ray finds or starts the cluster itself) are not checked. ``option`` names the setting
    the address came from in the error (the CLI's ``--address``, the service's
    ``DISPATCHLAB_RAY_ADDRESS``).
    """
    from scenarios.errors import InputError

    if address in ("auto", "local"):
        return
    host, port = _ray_host_port(address, option)
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    deadline = time.monotonic() + timeout_s
    reason = _tcp_probe(host, port, timeout_s)
    if reason is None and not address.startswith("ray://"):
        reason = _gcs_probe(where, max(1.0, deadline - time.monotonic()))
    if reason is not None:
        raise InputError(option, f"no Ray cluster answers at {where} ({reason})")


class RayExecutor:
    """Tasks on a Ray cluster (``address``), or on a local Ray instance started on demand.

    Before connecting, the address must resolve and accept a TCP connection within
    :data:`RAY_CONNECT_TIMEOUT_S` seconds (:func:`check_ray_address`), else InputError.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None) -> None:
        self.address = address
        self.num_cpus = num_cpus

    def _init(self) -> None:
        import ray

        if ray.is_initialized():
            return
        if self.address:
            check_ray_address(self.address)
            ray.init(address=self.address, log_to_driver=False)
        else:
            ray.init(num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=False)

    def run(
        self,
        fn: TaskFn,
        shared: Any,
        key: str,
        tasks: Sequence[Any],
        *,
        on_result: OnResult | None = None,
        plugins: Sequence[str] = (),
    ) -> list[Any]:
        """Results in task order; Ctrl-C cancels the outstanding Ray tasks and re-raises."""
        import ray

        self._init()
        remote = ray.remote(_ray_call)
        ref = ray.put(shared)
        refs = [remote.remote(fn, key, [ref], tuple(plugins), task) for task in tasks]
        index = {r: i for i, r in enumerate(refs)}
        results: list[Any] = [None] * len(tasks)
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for r in done:
                    i = index[r]
                    results[i] = ray.get(r)
                    if on_result is not None:
                        on_result(i, results[i])
        except BaseException:
            for r in pending:
                ray.cancel(r, force=True)
            raise
        return results


def make_executor(name: str, *, workers: int | None = None, address: str | None = None) -> Executor:
    """``serial``, ``local`` (process pool of ``workers``) or ``ray`` (at ``address``)."""
    from scenarios.errors import InputError

    if name == "serial":
        return SerialExecutor()
    if name == "local":
        return LocalExecutor(workers)
    if name == "ray":
        return RayExecutor(address, num_cpus=workers)
    raise InputError("executor", f"unknown executor {name!r}; choose local, ray or serial")

"""Prometheus metrics of one app instance (own registry, so several apps can coexist in tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """Counters, gauges and histograms the service exports on ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "dispatchlab_http_requests",
            "HTTP requests by route template, method and status code",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "dispatchlab_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.fallbacks = Counter(
            "dispatchlab_fallback_plans",
            "Answers served from the greedy fallback, by endpoint and reason",
            ["endpoint", "reason"],
            registry=r,
        )
        self.solver_failures = Counter(
            "dispatchlab_solver_failures",
            "Solver calls that crashed or overran, by solver",
            ["solver", "reason"],
            registry=r,
        )
        self.breaker_state = Gauge(
            "dispatchlab_circuit_breaker_open",
            "1 while the circuit breaker of a solver is open or half-open",
            ["solver"],
            registry=r,
        )
        self.jobs_finished = Counter(
            "dispatchlab_jobs_finished",
            "Jobs finished by kind and final status",
            ["kind", "status"],
            registry=r,
        )
        self.jobs_recovered = Counter(
            "dispatchlab_jobs_recovered",
            "Jobs found interrupted by a crash, by action (requeued, failed or cancelled)",
            ["action"],
            registry=r,
        )
        self.job_duration = Histogram(
            "dispatchlab_job_duration_seconds",
            "Wall time of jobs by kind",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.jobs_running = Gauge(
            "dispatchlab_jobs_running", "Jobs running on this replica", registry=r
        )
        self.queue_depth = Gauge(
            "dispatchlab_jobs_queued", "Jobs waiting in the shared queue", registry=r
        )
        self.rows_not_written = Counter(
            "dispatchlab_rows_not_written",
            "Rows the write-behind writers (the audit log, the records of fast synchronous "
            "solves) did not write, by table and reason (failed: the insert failed; closed: "
            "put after the writer closed at shutdown)",
            ["table", "reason"],
            registry=r,
        )
        self.rejections = Counter(
            "dispatchlab_rejections",
            "Requests refused by a limit (413 body size, 429 busy, ...)",
            ["reason"],
            registry=r,
        )

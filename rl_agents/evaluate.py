"""Fair comparison of dispatch policies on held-out days: costs, paired differences, gap closed.

Every policy runs on the same day seeds (the same arrivals: common random numbers), so
differences are paired. ``hindsight`` (or ``hindsight:SECONDS``) in the policy list adds the
offline reference of :mod:`rl_agents.hindsight`. For each policy the report has the mean cost
with its 95% CI, the on-time rate, the paired difference to the baseline (``greedy`` = nearest
idle courier, added when missing) with its 95% CI, ``cost / hindsight`` and
**gap closed** = (C_greedy - C_policy) / (C_greedy - C_hindsight) on mean costs (each ratio
with Fieller's 95% interval over the days it is taken on), and the
latency of ``policy.decide`` per order decision (p50/p99; timings are only meaningful on an
idle machine). The on-time rate has its 95% CI too (over the days with an order due) and its
paired difference to the baseline. Each paired difference has its test (paired t, or the
sign test when every day differs by the same amount), Holm-adjusted over the table's
comparisons of that KPI with the baseline; the table's marks follow the adjusted decision.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scenarios.errors import InputError
from scenarios.files import naming_written, read_limited
from scenarios.io.json_io import atomic_write, json_error_where, loads
from scenarios.model import Scenario
from scenarios.saved import SavedDataWarning, saved_context
from simulation.executors import Executor, SerialExecutor
from simulation.result import KPI_VERSION, MARKS, direction, kpi_bounds, kpi_interval
from simulation.stats import (
    CONSTANT_NOTE,
    NO_INTERVAL,
    Interval,
    RatioInterval,
    constant_explained,
    degenerate_mark,
    fewer_note,
    fmt_num,
    holm_family,
    mean_ci,
    method_note,
    paired_diff,
    ratio_ci,
    zero_difference,
)
from simulation.streams import DRAWS_VERSION

BASELINE = "greedy"
HINDSIGHT = "hindsight"
#: most seconds per solver run ``hindsight:SECONDS`` takes (the routing solvers' limit)
MAX_HINDSIGHT_S = 86_400.0

Progress = Callable[[int, int], None]


@dataclass
class DayOutcome:
    """One policy on one day: KPI values and decision latencies."""

    policy: str
    seed: int
    metrics: dict[str, float]
    num_decisions: int
    latency_us: list[float]
    wall_s: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class PolicySummary:
    """Aggregates of one policy over the evaluated days."""

    policy: str
    n: int
    mean_cost: float
    #: the mean cost's 95% t-interval (None for one day: no interval)
    cost_ci: tuple[float, float] | None
    on_time_rate: float | None
    mean_unserved: float
    diff_vs_greedy: float | None
    diff_ci: tuple[float, float] | None
    cost_vs_greedy: float | None
    cost_vs_hindsight: float | None
    gap_closed: float | None
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    decisions_per_day: float
    wall_s_per_day: float
    costs: dict[int, float]
    #: the on-time rate's 95% CI over the ``on_time_n`` days with an order due (None: no
    #: day had one, or only one did: no interval)
    on_time_ci: tuple[float, float] | None = None
    on_time_n: int = 0
    #: ``t``, or ``clopper-pearson-orders`` / ``-days`` for a rate at 0 or 1 on every day;
    #: ``none`` with one day (no interval); None when no day had an order due
    on_time_ci_method: str | None = None
    #: paired on-time difference to the baseline over the ``on_time_diff_n`` days both define
    on_time_diff_vs_greedy: float | None = None
    on_time_diff_ci: tuple[float, float] | None = None
    on_time_diff_n: int = 0
    #: days paired for ``diff_vs_greedy``
    diff_n: int = 0
    #: the tests of ``diff_vs_greedy`` and ``on_time_diff_vs_greedy``: ``p_value``,
    #: ``p_adjusted`` (Holm over the table's comparisons of that KPI with the baseline),
    #: ``significant`` (adjusted, 95%), ``degenerate`` (every day the same difference: the
    #: sign test decides) and ``comparisons`` (the family's size); None for the baseline
    diff_test: dict[str, Any] | None = None
    on_time_diff_test: dict[str, Any] | None = None
    #: Fieller's 95% intervals of the three ratios of paired mean costs (None: fewer than two
    #: days, or unbounded: the denominator's mean not significantly different from 0) and
    #: over how many days each ratio is taken (the days the policies involved share)
    cost_vs_greedy_ci: tuple[float, float] | None = None
    cost_vs_greedy_n: int = 0
    cost_vs_hindsight_ci: tuple[float, float] | None = None
    cost_vs_hindsight_n: int = 0
    gap_closed_ci: tuple[float, float] | None = None
    gap_closed_n: int = 0
    #: ``constant``: the interval has zero width because every day gave the same value (two
    #: or more days: the days agree, no confidence statement; ``(constant)`` in the table) --
    #: of the mean cost, the on-time rate (one at 0 or 1 every day has Clopper-Pearson's
    #: instead), the two paired differences (greedy's to itself always) and the three ratios
    #: (greedy's cost/greedy and gap closed, hindsight's cost/hindsight and gap closed always)
    cost_constant: bool = False
    on_time_constant: bool = False
    diff_constant: bool = False
    on_time_diff_constant: bool = False
    cost_vs_greedy_constant: bool = False
    cost_vs_hindsight_constant: bool = False
    gap_closed_constant: bool = False

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict (``costs`` keyed by seed as text)."""
        out = asdict(self)
        out["costs"] = {str(k): v for k, v in self.costs.items()}
        return out


def _key(
    scenario_json: str, hindsight_params: dict[str, Any] | None = None, *, twin: int = 1
) -> str:
    """Cache key of a scenario, the hindsight settings (defaults filled in) and the draws.

    The version of the twin's random draws (:data:`simulation.streams.DRAWS_VERSION`) is part
    of the key: a day cached under older draws is another day, so it is recomputed; so is the
    version of the KPI definitions (:data:`simulation.result.KPI_VERSION`), as rows hold KPIs,
    the version of the day the reference is replayed on
    (:data:`rl_agents.hindsight.HINDSIGHT_VERSION`) and ``twin``, the version of how the twin
    plays the scenario's days (:func:`simulation.twin.twin_version`; 1 leaves the key as it
    was before it existed).
    """
    from rl_agents.hindsight import HINDSIGHT_VERSION, HindsightParams

    params = HindsightParams.model_validate(hindsight_params or {})
    # settings added later stay out of the key at their defaults (older cache rows still match)
    later = {"warm_start_policies", "warm_start_solve"}
    hp = params.model_dump_json(exclude=later if not params.warm_start_policies else None)
    draws = (
        f"draws={DRAWS_VERSION}"
        + (f";kpis={KPI_VERSION}" if KPI_VERSION > 1 else "")
        + (f";day={HINDSIGHT_VERSION}" if HINDSIGHT_VERSION > 1 else "")
        + (f";twin={twin}" if twin > 1 else "")
    )
    return hashlib.sha1((scenario_json + hp + draws).encode()).hexdigest()[:16]


def _cold_params(hindsight_params: dict[str, Any] | None) -> dict[str, Any] | None:
    """The same hindsight settings without the warm-started runs (None: there are none)."""
    from rl_agents.hindsight import HindsightParams

    params = HindsightParams.model_validate(hindsight_params or {})
    if not params.warm_start_policies:
        return None
    cold = params.model_copy(update={"warm_start_policies": (), "warm_start_solve": False})
    return cold.model_dump(mode="json")


_WORLDS: dict[str, Any] = {}


def _run_day(shared: dict[str, Any], key: str, task: tuple[str, int]) -> DayOutcome:
    """Worker body: simulate ``task = (policy spec, day seed)``."""
    import rl_agents  # noqa: F401  (registers policies in spawned workers)
    from simulation.evaluate import simulate
    from simulation.policies import make_policy
    from simulation.world import compile_world

    spec, seed = task
    entry = _WORLDS.get(key)
    if entry is None:
        scenario = Scenario.model_validate_json(  # validated before (maybe as stored data)
            shared["scenario"], context=saved_context(stored=True)
        )
        _WORLDS.clear()
        entry = _WORLDS[key] = (scenario, compile_world(scenario))
    scenario, world = entry
    t0 = time.perf_counter()
    name, _, arg = spec.partition(":")
    if name == HINDSIGHT:
        from rl_agents.hindsight import HindsightParams, HindsightResult, hindsight

        hp = HindsightParams.model_validate(shared.get("hindsight") or {})
        if arg:
            hp = hp.model_copy(update={"time_limit_s": float(arg)})
        cold = shared.get("hindsight_cold", {}).get(spec, {}).get(str(seed))
        known = (
            HindsightResult(seed, cold["metrics"]["cost_cents"], cold["metrics"], cold["runs"])
            if cold is not None
            else None
        )
        res = hindsight(scenario, seed=seed, params=hp, known=known)
        return DayOutcome(
            spec, seed, res.metrics, 0, [], time.perf_counter() - t0, {"runs": res.runs}
        )
    policy = make_policy(spec)
    latencies: list[float] = []
    if policy is not None:
        decide = policy.decide

        def timed(state: Any) -> Any:
            if state.focus_order < 0:
                return decide(state)  # courier-free and bare tick calls: not order decisions
            a = time.perf_counter()
            out = decide(state)
            latencies.append((time.perf_counter() - a) * 1e6)
            return out

        policy.decide = timed  # type: ignore[method-assign]
    result = simulate(world, None, policy, seed=seed)
    return DayOutcome(
        spec, seed, dict(result.metrics), len(latencies), latencies, time.perf_counter() - t0
    )


def evaluation_policies() -> list[str]:
    """Policy names evaluation takes: the registered ones and ``hindsight``, not ``plan``."""
    import rl_agents  # noqa: F401  (registers the RL policies)
    from simulation.policies import available_policies

    return sorted({*available_policies(), HINDSIGHT} - {"plan"})


def check_policy_name(name: str, field: str, *, online: bool = False) -> None:
    """InputError under ``field`` for a policy name evaluation does not take (``online``: nor
    ``hindsight``, the offline reference, e.g. for a hindsight warm start).

    ``plan`` replays a given plan; evaluated days have none, so every order went unserved.
    An unknown name gets the twin's reason (``simulation.policies.unknown_policy``).
    """
    from simulation.policies import unknown_policy

    if name == "plan":
        raise InputError(
            field, "policy 'plan' needs a plan; the evaluated days are played without one"
        )
    names = [p for p in evaluation_policies() if not (online and p == HINDSIGHT)]
    if name not in names:
        raise InputError(field, unknown_policy(name, names))


def repeated_spec(specs: Sequence[str], baseline: str = BASELINE) -> tuple[int, str] | None:
    """The first of ``specs`` that runs a policy an earlier one runs, or the ``baseline`` an
    evaluation adds when it is not given (``nearest`` is ``greedy``), and why (None: none).

    Either would play the same days twice: a duplicate row, and a Holm family one larger.
    """
    from simulation.policies import canonical_spec, repeated_policy

    repeated = repeated_policy(specs)
    if repeated is not None or baseline in [s.strip() for s in specs]:
        return repeated
    key = canonical_spec(baseline)
    for i, spec in enumerate(specs):
        if canonical_spec(spec) == key:
            return i, (
                f"{spec.strip()!r} runs the same policy as {baseline!r}, the baseline every "
                f"evaluation plays ({key}): drop it"
            )
    return None


def model_twin_notes(scenario: Scenario, specs: Sequence[str]) -> list[str]:
    """One line per model policy in ``specs`` trained on another twin than plays ``scenario``.

    A model file records the twin it was trained on (``info.twin``, since session 61); a model
    without that record (the shipped standard one, see docs/rl.md) gets no line.
    """
    from rl_agents.model_io import load_model
    from rl_agents.train import twin_record

    now = twin_record(scenario)
    notes: list[str] = []
    for spec in dict.fromkeys(s.strip() for s in specs):
        name, _, arg = spec.partition(":")
        if name not in ("model", "model-plain"):
            continue
        recorded = load_model(arg).meta.get("info", {}).get("twin")
        if not isinstance(recorded, dict) or recorded == now:
            continue
        differ = ", ".join(
            f"{k} {recorded.get(k)} (now {v})" for k, v in now.items() if recorded.get(k) != v
        )
        notes.append(
            f"{spec}: trained on another twin ({differ}): it learnt that twin's days, and "
            "its recorded validation cost is a figure of that twin, not of this one"
        )
    return notes


def _validate_specs(specs: Sequence[str]) -> list[str]:
    import rl_agents  # noqa: F401
    from simulation.policies import empty_argument, make_policy

    out: list[str] = []
    for spec in specs:
        spec = spec.strip()
        if not spec:
            continue
        name, _, arg = spec.partition(":")
        check_policy_name(name, "policies")
        if name == HINDSIGHT:
            if spec.endswith(":"):
                raise InputError("policies", empty_argument(spec))
            if arg:
                try:
                    seconds = float(arg)
                except ValueError:
                    seconds = math.nan
                # NaN, inf and more than the routing solvers' limit failed later, in the
                # solver's parameters, as 'time_limit_s: ...' (not naming the policy list)
                if not (math.isfinite(seconds) and 0 < seconds <= MAX_HINDSIGHT_S):
                    raise InputError(
                        "policies",
                        f"{spec}: expected seconds per solver run in (0, {MAX_HINDSIGHT_S:g}], "
                        "e.g. hindsight:30",
                    )
        else:
            make_policy(spec)  # raises a clear error for unknown names or bad models
        if spec not in out:
            out.append(spec)
    if not out:
        raise InputError("policies", "no policies given")
    return out


def run_days(
    scenario: Scenario,
    specs: Sequence[str],
    seeds: Sequence[int],
    *,
    executor: Executor | None = None,
    hindsight_params: dict[str, Any] | None = None,
    cache: Path | None = None,
    progress: Progress | None = None,
) -> list[DayOutcome]:
    """Simulate every policy on every day seed (hindsight days are cached in ``cache``).

    ``cache``: a JSON-lines file, read if it exists and appended to; its folder must exist
    (an InputError on ``--hindsight-cache`` before any day is played).
    """
    from scenarios.files import check_output_file_folder

    if cache is not None:
        check_output_file_folder(cache, "--hindsight-cache")  # named as _read_cache names it
    specs = _validate_specs(specs)
    from simulation.twin import twin_version

    scenario_json = scenario.model_dump_json()
    twin = twin_version(scenario)
    key = _key(scenario_json, hindsight_params, twin=twin)
    cached: dict[tuple[str, int], DayOutcome] = {}
    if cache is not None and cache.exists():
        cached = _read_cache(cache, key)
    tasks = [(spec, seed) for spec in specs for seed in seeds if (spec, seed) not in cached]
    done = len(specs) * len(seeds) - len(tasks)
    total = len(specs) * len(seeds)
    if progress is not None:
        progress(done, total)
    fresh: dict[tuple[str, int], DayOutcome] = {}

    def tick(_i: int, out: DayOutcome) -> None:
        nonlocal done
        done += 1
        fresh[(out.policy, out.seed)] = out
        if cache is not None and out.policy.startswith(HINDSIGHT):
            _append_cache(cache, key, out)
        if progress is not None:
            progress(done, total)

    shared: dict[str, Any] = {"scenario": scenario_json, "hindsight": hindsight_params or {}}
    cold_params = _cold_params(hindsight_params)
    if cold_params is not None and cache is not None and cache.exists():
        # warm-started runs add to the cold runs of the same days: reuse those from the cache
        cold = _read_cache(cache, _key(scenario_json, cold_params, twin=twin), warn=False)
        shared["hindsight_cold"] = {
            spec: {
                str(seed): {"metrics": out.metrics, "runs": out.detail.get("runs", [])}
                for (name, seed), out in cold.items()
                if name == spec
            }
            for spec, _seed in tasks
            if spec.startswith(HINDSIGHT)
        }
    ex = executor if executor is not None else SerialExecutor()
    # Longest first (hindsight solves), so the pool is not left waiting for one straggler.
    tasks.sort(key=lambda t: (not t[0].startswith(HINDSIGHT),))
    ex.run(_run_day, shared, key, tasks, on_result=tick, plugins=("rl_agents",))
    out = []
    for spec in specs:
        for seed in seeds:
            item = cached.get((spec, seed)) or fresh.get((spec, seed))
            if item is not None:
                out.append(item)
    return out


#: how every row of the cache begins (:func:`_append_cache`: ``json.dumps`` of its dict)
ROW_START = b'{"scenario_key": '


def row_cut_short(last: bytes) -> bool:
    """Whether ``last``, the cache's last line and without its line end, is a row whose
    append was cut short (a crash, a SIGKILL): the start of a row, not JSON on its own."""
    if not (last.startswith(ROW_START) or ROW_START.startswith(last)):
        return False
    try:
        json.loads(last)
    except ValueError:  # (JSONDecodeError, UnicodeDecodeError)
        return True
    return False


class CacheRowSkipped(SavedDataWarning):
    """The cache's last row was cut short (its append stopped by a crash) and is skipped
    (``dispatchlab evaluate`` shows it as one ``warning:`` line)."""


def _read_cache(path: Path, key: str, *, warn: bool = True) -> dict[tuple[str, int], DayOutcome]:
    """The cached days of ``key``; a file that is not a cache is an InputError (CLI exit 2).

    A last row cut short (no line end, not JSON: its append was stopped by a crash) is
    skipped with a :class:`CacheRowSkipped` warning naming the file and line (``warn``); the
    next append cuts it off (:func:`_append_cache`). A bad line elsewhere is an error.
    """
    field = "--hindsight-cache"
    try:
        data = read_limited(path, field=field)
    except OSError as err:
        raise InputError(field, f"cannot read {path} ({err.strerror or err})") from None
    last = data[data.rfind(b"\n") + 1 :]
    cut = bool(last) and row_cut_short(last)
    try:
        text = (data[: len(data) - len(last)] if cut else data).decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(field, f"not a text file: {path}") from None
    out: dict[tuple[str, int], DayOutcome] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = loads(line)
        except json.JSONDecodeError as err:
            where = json_error_where(err, line=False)
            raise InputError(field, f"line {n}: not JSON ({err.msg}{where}) in {path}") from None
        if not isinstance(row, dict):
            raise InputError(field, f"line {n}: expected a JSON object in {path}")
        if row.get("scenario_key") != key:
            continue
        try:
            policy, seed = str(row["policy"]), int(row["seed"])
            out[(policy, seed)] = DayOutcome(
                policy, seed, dict(row["metrics"]), 0, [], float(row["wall_s"]), row["detail"]
            )
        except KeyError as err:
            raise InputError(field, f"line {n}: no {err.args[0]!r} in {path}") from None
        except (TypeError, ValueError) as err:
            raise InputError(field, f"line {n}: not a cache row ({err}) in {path}") from None
    if cut and warn:
        import warnings

        warnings.warn(
            f"{field}: line {len(text.splitlines()) + 1}: a row cut short (no line end: the "
            f"run appending it was stopped) in {path}, skipped; the next day appended takes "
            "its place",
            CacheRowSkipped,
            stacklevel=2,
        )
    return out


def _append_cache(path: Path, key: str, out: DayOutcome) -> None:
    row = {
        "scenario_key": key,
        "policy": out.policy,
        "seed": out.seed,
        "metrics": out.metrics,
        "wall_s": out.wall_s,
        "detail": out.detail,
    }
    with naming_written(path):  # a failed write names the cache
        append_whole_line(path, json.dumps(row) + "\n", cut_short=row_cut_short)


def append_whole_line(
    path: Path, line: str, *, cut_short: Callable[[bytes], bool] | None = None
) -> None:
    """Append ``line`` (UTF-8) to ``path`` (made if missing), whole or not at all, on a line
    of its own.

    A write that fails part-way (a full disk) leaves the file as it was before the append: a
    cache left with half a row was refused on its next read (``line N: not JSON``) with every
    day it held. A last line without its line end (an append stopped by a crash) is replaced
    by the new line when ``cut_short`` says it was cut short (the reader skipped it), else
    ended: the new line was glued to it. A replaced line is put back if the write fails (it
    was lost with the failed row).
    """
    data = line.encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        start = os.lseek(fd, 0, os.SEEK_END)
        last_from = _last_line_start(fd, start)
        replaced = b""
        if last_from < start:  # the last line has no line end
            last = os.pread(fd, start - last_from, last_from)
            if cut_short is not None and cut_short(last):
                os.ftruncate(fd, last_from)
                start, replaced = last_from, last
            else:
                data = b"\n" + data
        _append_all(fd, start, memoryview(data), replaced=replaced)
    finally:
        os.close(fd)


def _last_line_start(fd: int, end: int, chunk: int = 65536) -> int:
    """Where the last line of the file open as ``fd`` (``end`` bytes) starts: after its last
    line end (``end`` when it ends with one, 0 when it has none)."""
    at = end
    while at > 0:
        lo = max(0, at - chunk)
        block = os.pread(fd, at - lo, lo)
        if not block:  # (a device such as /dev/full: nothing to read back)
            return end
        found = block.rfind(b"\n")
        if found >= 0:
            return lo + found + 1
        at = lo
    return 0


def _append_all(fd: int, start: int, data: memoryview, *, replaced: bytes = b"") -> None:
    """Write ``data`` at the end of ``fd`` (``start`` bytes long), all of it or, cut back to
    ``start`` and ``replaced`` (the bytes cut off for it) written back, none."""
    try:
        _write_all(fd, data)
    except OSError:
        with contextlib.suppress(OSError):  # (a device such as /dev/full cannot be cut)
            os.ftruncate(fd, start)
            _write_all(fd, memoryview(replaced))  # (in the room it had a moment ago)
        raise


def _write_all(fd: int, data: memoryview) -> None:
    """Write all of ``data`` at the end of ``fd`` (an OSError when it cannot be)."""
    while data:
        data = data[os.write(fd, data) :]


def summarise(
    outcomes: Sequence[DayOutcome], *, baseline: str = BASELINE
) -> dict[str, PolicySummary]:
    """Per-policy aggregates with paired differences to ``baseline`` and gap closed."""
    by: dict[str, dict[int, DayOutcome]] = {}
    for out in outcomes:
        by.setdefault(out.policy, {})[out.seed] = out
    hind_name = next((p for p in by if p.split(":")[0] == HINDSIGHT), None)
    base = by.get(baseline)
    summaries: dict[str, PolicySummary] = {}
    # the paired differences to the baseline, for the Holm families (one per KPI)
    cost_diffs: dict[str, Interval] = {}
    on_time_diffs: dict[str, Interval] = {}
    for policy, days in by.items():
        seeds = sorted(days)
        cost = np.array([days[s].metrics["cost_cents"] for s in seeds])
        ci = mean_ci(cost, bounds=kpi_bounds("cost_cents"))  # a cost is never negative
        # Days with no order due have no on-time rate (NaN): the mean is over the others.
        rates = _on_time(days, seeds)
        rate_ci = kpi_interval("on_time_rate", rates, _orders_due(days, seeds))
        on_time = rate_ci.mean if rate_ci.n else None
        unserved = float(np.mean([days[s].metrics.get("orders_unserved", 0.0) for s in seeds]))
        diff = diff_ci = None
        on_time_d: Interval | None = None
        diff_n = 0
        d_flat = False
        none = RatioInterval(math.nan, math.nan, math.nan, 0)
        vs_greedy_ci = vs_hind_ci = gap_ci = none
        common = [s for s in seeds if base is not None and s in base]
        if base is not None and common:
            d = paired_diff(_costs(days, common), _costs(base, common))
            diff, diff_ci, diff_n, d_flat = d.mean, _pair(d), d.n, d.degenerate
            on_time_d = paired_diff(_on_time(days, common), _on_time(base, common))
            if policy != baseline:
                cost_diffs[policy] = d
                on_time_diffs[policy] = on_time_d
            vs_greedy_ci = ratio_ci(_costs(days, common), _costs(base, common), nonnegative=True)
        if hind_name is not None:
            hind = by[hind_name]
            both = [s for s in seeds if s in hind]
            if both:
                vs_hind_ci = ratio_ci(_costs(days, both), _costs(hind, both), nonnegative=True)
                trio = [s for s in both if base is not None and s in base]
                if base is not None and trio:
                    # (C_greedy - C_policy) / (C_greedy - C_hindsight), on mean costs
                    g_days = _costs(base, trio)
                    gap_ci = ratio_ci(
                        np.subtract(g_days, _costs(days, trio)),
                        np.subtract(g_days, _costs(hind, trio)),
                    )
        # each ratio of mean costs is its interval's (None: undefined, a mean of 0 below)
        vs_greedy, vs_hind, gap = (
            None if math.isnan(r.ratio) else r.ratio for r in (vs_greedy_ci, vs_hind_ci, gap_ci)
        )
        lat = np.concatenate(
            [np.asarray(days[s].latency_us, dtype=np.float64) for s in seeds] or [np.empty(0)]
        )
        summaries[policy] = PolicySummary(
            policy=policy,
            n=len(seeds),
            mean_cost=ci.mean,
            cost_ci=_pair(ci),
            on_time_rate=on_time,
            mean_unserved=unserved,
            diff_vs_greedy=diff,
            diff_ci=diff_ci,
            cost_vs_greedy=vs_greedy,
            cost_vs_hindsight=vs_hind,
            gap_closed=gap,
            latency_p50_ms=float(np.percentile(lat, 50)) / 1000.0 if lat.size else None,
            latency_p99_ms=float(np.percentile(lat, 99)) / 1000.0 if lat.size else None,
            decisions_per_day=float(np.mean([days[s].num_decisions for s in seeds])),
            wall_s_per_day=float(np.mean([days[s].wall_s for s in seeds])),
            costs={s: float(days[s].metrics["cost_cents"]) for s in seeds},
            on_time_ci=_pair(rate_ci),
            on_time_n=rate_ci.n,
            on_time_ci_method=rate_ci.method if rate_ci.n else None,
            on_time_diff_vs_greedy=on_time_d.mean if on_time_d and on_time_d.n else None,
            on_time_diff_ci=_pair(on_time_d) if on_time_d else None,
            on_time_diff_n=on_time_d.n if on_time_d else 0,
            diff_n=diff_n,
            cost_vs_greedy_ci=vs_greedy_ci.pair() if vs_greedy is not None else None,
            cost_vs_greedy_n=vs_greedy_ci.n if vs_greedy is not None else 0,
            cost_vs_hindsight_ci=vs_hind_ci.pair() if vs_hind is not None else None,
            cost_vs_hindsight_n=vs_hind_ci.n if vs_hind is not None else 0,
            gap_closed_ci=gap_ci.pair() if gap is not None else None,
            gap_closed_n=gap_ci.n if gap is not None else 0,
            cost_constant=ci.degenerate,
            on_time_constant=rate_ci.degenerate,
            diff_constant=d_flat,
            on_time_diff_constant=on_time_d is not None and on_time_d.degenerate,
            cost_vs_greedy_constant=_flat(vs_greedy_ci),
            cost_vs_hindsight_constant=_flat(vs_hind_ci),
            gap_closed_constant=_flat(gap_ci),
        )
    for diffs, attr in ((cost_diffs, "diff_test"), (on_time_diffs, "on_time_diff_test")):
        names = list(diffs)
        for name, test in zip(names, holm_family([diffs[n] for n in names]), strict=True):
            setattr(summaries[name], attr, test.as_json())
    return summaries


def _flat(ratio: RatioInterval) -> bool:
    """True for a ratio the same on every day (two or more): its Fieller interval is a point."""
    return ratio.degenerate and ratio.bounded


def _costs(days: dict[int, DayOutcome], seeds: Sequence[int]) -> list[float]:
    """The days' costs (cents)."""
    return [float(days[s].metrics["cost_cents"]) for s in seeds]


def _on_time(days: dict[int, DayOutcome], seeds: Sequence[int]) -> list[float]:
    """The days' on-time rates (NaN where undefined: no order due)."""
    out = []
    for s in seeds:
        r = days[s].metrics.get("on_time_rate")
        out.append(math.nan if r is None else float(r))
    return out


def _orders_due(days: dict[int, DayOutcome], seeds: Sequence[int]) -> list[float] | None:
    """The days' orders due (``orders_total``), or None when a day does not say."""
    due = [days[s].metrics.get("orders_total") for s in seeds]
    return None if any(x is None for x in due) else [float(x) for x in due if x is not None]


def _fmt(x: float | None, spec: str) -> str:
    """``x`` formatted (never a negative zero); ``-`` when undefined."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return fmt_num(x, spec)


def _ratio(
    value: float | None,
    ci: tuple[float, float] | None,
    n: int,
    days: int,
    spec: str,
    constant: bool = False,
) -> str:
    """A ratio with its Fieller interval, ``(n=k)`` when fewer days define it ("-": none);
    ``(constant)`` after the point interval of a ratio the same on every day."""
    if value is None or math.isnan(value):
        return "-"
    if ci is not None:
        shown = f"{fmt_num(value, spec)} [{fmt_num(ci[0], spec)}, {fmt_num(ci[1], spec)}]"
        shown += CONSTANT_NOTE if constant else ""
    elif n >= 2:
        shown = f"{fmt_num(value, spec)} [unbounded]"
    else:
        shown = fmt_num(value, spec)
    return shown + fewer_note(n, days)


def _pair(ci: Interval) -> tuple[float, float] | None:
    """``(low, high)`` of an interval; None without one (fewer than two days: method none)."""
    low, high = ci.bounds
    return None if low is None or high is None else (low, high)


def _interval(
    mean: str, pair: tuple[float, float] | None, spec: str, n: int, constant: bool = False
) -> str:
    """``mean [low, high]``, or ``mean [no CI: n=1]`` for one day (no interval);
    ``(constant)`` after the zero-width interval of a value the same on every day."""
    if pair is None:
        return f"{mean} {NO_INTERVAL}" if n == 1 else mean
    flat = CONSTANT_NOTE if constant else ""
    return f"{mean} [{_fmt(pair[0], spec)}, {_fmt(pair[1], spec)}]{flat}"


def diff_text(
    value: float, pair: tuple[float, float] | None, spec: str, n: int, constant: bool
) -> str:
    """A paired difference and its interval (:func:`_interval`); one that is 0 on every day
    is plainly none, written unsigned: ``0 [0, 0] (constant)``, not ``+0 [+0, +0]``; so is a
    0 without an interval (one day: ``0.000 [no CI: n=1]``, as the twin's what-if table)."""
    if zero_difference(value) and (pair is None or constant):
        spec, value = spec.replace("+", ""), 0.0
        pair = None if pair is None else (0.0, 0.0)
    return _interval(_fmt(value, spec), pair, spec, n, constant)


def _mark(test: dict[str, Any] | None, kpi: str, diff: float | None) -> str:
    """`` †`` for a degenerate interval, then `` ▲``/`` ▼`` when Holm's decision rejects."""
    if test is None or diff is None:
        return ""
    out = degenerate_mark(test["degenerate"], test["p_value"])
    if test["significant"]:
        out += " " + MARKS[direction(kpi, diff)]
    return out


def _family(summaries: dict[str, PolicySummary], attr: str) -> int:
    """The size of one Holm family of the table (0 without comparisons)."""
    return max(
        (t["comparisons"] for s in summaries.values() if (t := getattr(s, attr)) is not None),
        default=0,
    )


#: The table's explanation of ``(constant)`` (written under it when a cell has one).
CONSTANT_DAYS = constant_explained("day") + (
    " A policy against itself is constant by construction: greedy's differences (0 every "
    "day), cost/greedy (1) and gap closed (0), hindsight's cost/hindsight and gap closed (1)."
)

#: the summary's ``*_constant`` flags (:class:`PolicySummary`)
_CONSTANT_FLAGS = (
    "cost_constant",
    "on_time_constant",
    "diff_constant",
    "on_time_diff_constant",
    "cost_vs_greedy_constant",
    "cost_vs_hindsight_constant",
    "gap_closed_constant",
)


def _constant(s: PolicySummary) -> bool:
    """True when one of the summary's intervals is ``constant`` (the table writes so)."""
    return any(getattr(s, flag) for flag in _CONSTANT_FLAGS)


def table_markdown(summaries: dict[str, PolicySummary]) -> str:
    """The comparison as a markdown table (costs in cents), with how its marks are decided."""
    head = (
        "| policy | days | mean cost | 95% CI | on-time [95% CI] | unserved/day | diff vs greedy "
        "[95% CI] | Δ on-time vs greedy [95% CI] | cost/greedy [95% CI] | cost/hindsight "
        "[95% CI] | gap closed [95% CI] "
        "| latency p50 / p99 (ms) |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for s in summaries.values():
        diff = (
            diff_text(s.diff_vs_greedy, s.diff_ci, ",.0f", s.diff_n, s.diff_constant)
            + fewer_note(s.diff_n, s.n)  # greedy did not play some of the policy's days
            + _mark(s.diff_test, "cost_cents", s.diff_vs_greedy)
            if s.diff_vs_greedy is not None
            else "-"
        )
        on_time = (
            _interval(
                _fmt(s.on_time_rate, ".3f"), s.on_time_ci, ".3f", s.on_time_n, s.on_time_constant
            )
            + method_note(s.on_time_ci_method)  # a rate at 0 or 1 every day: Clopper-Pearson
            + fewer_note(s.on_time_n, s.n)
            if s.on_time_rate is not None
            else _fmt(s.on_time_rate, ".3f")
        )
        d_on = s.on_time_diff_vs_greedy
        on_time_diff = (
            diff_text(d_on, s.on_time_diff_ci, "+.3f", s.on_time_diff_n, s.on_time_diff_constant)
            + fewer_note(s.on_time_diff_n, s.n)
            + _mark(s.on_time_diff_test, "on_time_rate", d_on)
            if d_on is not None
            else "-"
        )
        vs_greedy = _ratio(
            s.cost_vs_greedy,
            s.cost_vs_greedy_ci,
            s.cost_vs_greedy_n,
            s.n,
            ".3f",
            s.cost_vs_greedy_constant,
        )
        vs_hind = _ratio(
            s.cost_vs_hindsight,
            s.cost_vs_hindsight_ci,
            s.cost_vs_hindsight_n,
            s.n,
            ".3f",
            s.cost_vs_hindsight_constant,
        )
        gap = _ratio(
            s.gap_closed, s.gap_closed_ci, s.gap_closed_n, s.n, ".1%", s.gap_closed_constant
        )
        lat = (
            f"{_fmt(s.latency_p50_ms, '.3f')} / {_fmt(s.latency_p99_ms, '.3f')}"
            if s.latency_p50_ms is not None
            else "-"
        )
        rows.append(
            f"| {s.policy} | {s.n} | {_fmt(s.mean_cost, ',.0f')} | "
            f"{_interval('', s.cost_ci, ',.0f', s.n, s.cost_constant).strip()} | {on_time} | "
            f"{_fmt(s.mean_unserved, '.2f')} | "
            f"{diff} | {on_time_diff} | "
            f"{vs_greedy} | {vs_hind} | {gap} | {lat} |"
        )
    k_cost, k_on_time = _family(summaries, "diff_test"), _family(summaries, "on_time_diff_test")
    flat = f" {CONSTANT_DAYS}" if any(_constant(s) for s in summaries.values()) else ""
    foot = (
        "\nDifferences are paired by day (policy minus greedy) with unadjusted 95% "
        "t-intervals; on-time intervals are t-intervals over the days with an order due "
        "((n=k): only k of the days had one), or, for a rate at 0 or 1 on every day, the "
        "Clopper-Pearson interval of the pooled orders due (of the days, where a day does not "
        "record its orders due). ▲ significantly better, "
        "▼ significantly worse than greedy after Holm-Bonferroni (5%) over the table's "
        f"{k_cost} cost and {k_on_time} on-time comparisons with greedy (one family per KPI). "
        "† every day differed by the same non-zero amount: the interval is degenerate and "
        f"the exact sign test (p = 2 x 0.5^n, n >= 6 days needed) decides.{flat} Cost/greedy, "
        "cost/hindsight and gap closed = mean(greedy - policy) / mean(greedy - hindsight) are "
        "ratios of mean costs over the days the policies share ((n=k): k days), with Fieller's "
        "95% interval: the ratios r for which the paired t-test of mean(numerator - r x "
        "denominator) = 0 does not reject ([unbounded]: the denominator is not significantly "
        "different from 0).\n"
    )
    return head + "\n".join(rows) + "\n" + foot


#: The per-day CSV's KPI columns, between ``policy, seed`` and ``decisions, wall_s``
#: (``orders_total``, the orders due, came later: older CSVs lack it).
CSV_METRICS = (
    "cost_cents",
    "on_time_rate",
    "orders_unserved",
    "orders_delivered",
    "orders_total",
    "time_cost_cents",
    "fixed_cost_cents",
    "lateness_cost_cents",
    "unserved_cost_cents",
    "distance_cost_cents",
)
#: per hindsight day: its solver runs and searches with an iteration budget, and how many of
#: them the wall-clock safety cap stopped (empty for other policies and wall-clock budgets;
#: CSVs written before them lack both columns, and their re-render cannot recompute the count)
CAP_COLUMNS = ("hindsight_runs", "hindsight_runs_capped")


def day_cap_counts(out: DayOutcome) -> tuple[int, int] | None:
    """A hindsight day's (solver runs and searches with an iteration budget, those capped).

    None when the day records none (another policy, or wall-clock budgets). A day read from
    the per-day CSV carries the two counts it was written with (``cap_counts``).
    """
    if not out.policy.startswith("hindsight"):
        return None
    if "cap_counts" in out.detail:
        runs, capped = out.detail["cap_counts"]
        return int(runs), int(capped)
    flags = {  # one row per repair policy: one entry per solver run
        (r["pricing"], r["run"]): bool(r["capped"])
        for r in out.detail.get("runs", [])
        if "capped" in r
    }
    return (len(flags), sum(flags.values())) if flags else None


def cap_counts(outcomes: Sequence[DayOutcome]) -> tuple[int, int] | None:
    """(runs, capped) of the hindsight days that record them, summed; None if none does."""
    days = [c for out in outcomes if (c := day_cap_counts(out)) is not None]
    if not days:
        return None
    return sum(r for r, _ in days), sum(c for _, c in days)


def days_csv_text(outcomes: Sequence[DayOutcome]) -> str:
    """The text of :func:`write_days_csv`'s file."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["policy", "seed", *CSV_METRICS, "decisions", "wall_s", *CAP_COLUMNS])
    for out in outcomes:
        caps = day_cap_counts(out)
        writer.writerow(
            [
                out.policy,
                out.seed,
                *(out.metrics.get(k, "") for k in CSV_METRICS),
                out.num_decisions,
                round(out.wall_s, 3),
                *(caps if caps is not None else ("", "")),
            ]
        )
    return buffer.getvalue()


def write_days_csv(path: Path, outcomes: Sequence[DayOutcome]) -> None:
    """One row per policy and day: the day's KPIs, its decisions and wall time (s, 3 decimals),
    and for a hindsight day its runs and searches and how many the safety cap stopped.

    Written whole or not at all (a Ctrl-C while the rows are written leaves the file there was).
    """
    with atomic_write(path) as fh:  # a torn CSV was what --from-results read back
        fh.write(days_csv_text(outcomes).encode("utf-8"))


def report_json(summaries: dict[str, PolicySummary]) -> dict[str, Any]:
    """policy name -> summary (``mean_cost``, ``on_time_rate``, differences, gap closed, ...)."""
    return {name: s.as_json() for name, s in summaries.items()}


def evaluate_policies(
    scenario: Scenario,
    specs: Sequence[str],
    seeds: Sequence[int],
    *,
    executor: Executor | None = None,
    hindsight_params: dict[str, Any] | None = None,
    cache: Path | None = None,
    progress: Progress | None = None,
    baseline: str = BASELINE,
    days_csv: Path | None = None,
    on_days: Callable[[Sequence[DayOutcome]], None] | None = None,
) -> dict[str, PolicySummary]:
    """Run and summarise: every policy in ``specs`` (plus ``greedy``) on every seed.

    ``days_csv``: also write the per-day results there (:func:`write_days_csv`), from which
    every interval can be recomputed later (``benchmarks/rl_evaluate.py --from-results``).
    ``on_days``: called with the days played before they are summarised (to write them
    with other files, :func:`days_csv_text`).
    """
    if not seeds:
        raise InputError("seeds", "no seeds given")
    from rl_agents.scenario import check_dispatch_scenario

    check_dispatch_scenario(scenario)  # no order or no courier: nothing to compare

    # a repeated day or policy would be counted twice: the CIs would look tighter than they are
    repeated = repeated_spec(specs, baseline)  # also under another spelling (insertion:8)
    if repeated is not None:
        raise InputError(f"policies.{repeated[0]}", repeated[1])
    for i, value in enumerate(seeds):
        if value in seeds[:i]:
            raise InputError(f"seeds.{i}", f"{value!r} is given twice")
    specs = list(specs)
    if baseline not in [s.strip() for s in specs]:
        specs.insert(0, baseline)
    outcomes = run_days(
        scenario,
        specs,
        seeds,
        executor=executor,
        hindsight_params=hindsight_params,
        cache=cache,
        progress=progress,
    )
    if days_csv is not None:
        write_days_csv(days_csv, outcomes)
    if on_days is not None:
        on_days(outcomes)
    return summarise(outcomes, baseline=baseline)


__all__ = [
    "BASELINE",
    "CAP_COLUMNS",
    "CSV_METRICS",
    "HINDSIGHT",
    "MAX_HINDSIGHT_S",
    "DayOutcome",
    "PolicySummary",
    "cap_counts",
    "day_cap_counts",
    "days_csv_text",
    "diff_text",
    "evaluate_policies",
    "model_twin_notes",
    "repeated_spec",
    "report_json",
    "run_days",
    "summarise",
    "table_markdown",
    "write_days_csv",
]

"""Cheapest feasible insertion: a fast, deterministic construction heuristic.

Every unrouted order keeps its cheapest feasible insertion into every open route (and into one
empty vehicle of each vehicle type); the globally cheapest insertion is applied, and only the
changed route's column is recomputed, vectorised over all orders with numpy. Mandatory orders
are inserted first (those needing skills before the others); optional orders only while
their insertion costs less than their penalty.
Insertions are checked with forward/backward time slack; where that check is only a
relaxation (several windows, breaks, pickup-and-delivery, maximum duration) the chosen
insertion is confirmed with the exact schedule before it is applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from solvers.routing.problem import UNLIMITED, RoutingProblem
from solvers.routing.schedule import schedule_route

INF = float("inf")
_PD_CHECKS = 8


@dataclass
class _Col:
    vehicle: int
    seq: list[int] = field(default_factory=list)
    # derived arrays (recomputed on change)
    path: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    dep: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    latest: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    load: NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    dist: int = 0


class GreedyBuilder:
    """Cheapest-insertion construction over a :class:`RoutingProblem` (see module docstring)."""

    def __init__(
        self,
        problem: RoutingProblem,
        orders: Sequence[int] | None = None,
        initial: Mapping[int, Sequence[int]] | None = None,
    ) -> None:
        self.p = problem
        self.todo = list(range(len(problem.orders))) if orders is None else list(orders)
        self.initial = {v: list(s) for v, s in (initial or {}).items() if s}
        self.exact_always = (
            problem.has_multiple_windows
            or problem.has_breaks
            or any(v.max_duration_s is not None for v in problem.vehicles)
        )

    # ------------------------------------------------------------------ columns
    def _refresh(self, col: _Col) -> None:
        p = self.p
        veh = p.vehicles[col.vehicle]
        tasks = [p.tasks[t] for t in col.seq]
        path = np.array([veh.start_node, *(t.node for t in tasks), veh.end_node], dtype=np.int64)
        n = len(tasks)
        dep = np.zeros(n + 1, dtype=np.int64)
        t_free = veh.shift[0]
        dep[0] = t_free
        for k, task in enumerate(tasks):
            arr = t_free + int(p.duration[path[k], path[k + 1]])
            start = arr
            for lo, hi in task.windows:
                if arr <= hi:
                    start = max(arr, lo)
                    break
            t_free = start + task.service_s
            dep[k + 1] = t_free
        latest = np.zeros(n + 2, dtype=np.int64)
        latest[n + 1] = veh.shift[1]
        for k in range(n, 0, -1):
            task = tasks[k - 1]
            latest[k] = min(
                task.latest,
                int(latest[k + 1]) - task.service_s - int(p.duration[path[k], path[k + 1]]),
            )
        load = np.zeros((n + 1, p.dims), dtype=np.int64)
        cur = np.zeros(p.dims, dtype=np.int64)
        for t in col.seq:
            info = p.orders[p.tasks[t].order]
            if info.from_depot:
                cur += np.asarray(info.demand, dtype=np.int64)
        load[0] = cur
        for k, task in enumerate(tasks):
            cur = cur + np.asarray(task.load_change, dtype=np.int64)
            load[k + 1] = cur
        col.path, col.dep, col.latest, col.load = path, dep, latest, load
        col.dist = int(p.distance[path[:-1], path[1:]].sum())

    def _single_costs(
        self, col: _Col, rows: NDArray[np.int64]
    ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """Cheapest insertion cost and leg for single-task orders ``rows`` into ``col``."""
        p = self.p
        veh = p.vehicles[col.vehicle]
        a, b = col.path[:-1], col.path[1:]
        nodes = self.node[rows]
        t_au = p.duration[np.ix_(a, nodes)].T  # (U, legs)
        t_ub = p.duration[np.ix_(nodes, b)]
        arr = col.dep[None, :] + t_au
        start = np.maximum(arr, self.early[rows, None])
        ok = start <= self.late[rows, None]
        ok &= start + self.service[rows, None] + t_ub <= col.latest[None, 1:]
        prefmax = np.maximum.accumulate(col.load, axis=0)  # (legs, dims)
        cap = np.asarray(veh.capacity, dtype=np.int64)
        dem = self.demand[rows]  # (U, dims)
        ok &= np.all(prefmax[None, :, :] + dem[:, None, :] <= cap[None, None, :], axis=2)
        d_ab = p.distance[a, b]
        delta = p.distance[np.ix_(a, nodes)].T + p.distance[np.ix_(nodes, b)] - d_ab[None, :]
        cost = veh.unit_distance_cost * delta.astype(np.float64)
        if veh.unit_duration_cost:
            dt = t_au + t_ub + self.service[rows, None] - p.duration[a, b][None, :]
            cost += veh.unit_duration_cost * dt
        if veh.max_distance_m is not None:
            ok &= col.dist + delta <= veh.max_distance_m
        ok &= self.skill_ok[rows, col.vehicle][:, None]
        cost = np.where(ok, cost, INF)
        if not col.seq:
            cost = cost + veh.fixed_cost
        leg = np.argmin(cost, axis=1)
        return cost[np.arange(len(rows)), leg], leg.astype(np.int64)

    def _pd_cost(self, col: _Col, oi: int) -> tuple[float, int]:
        """Cheapest feasible (pickup leg, delivery leg) for a pickup-and-delivery order."""
        p = self.p
        info = p.orders[oi]
        veh = p.vehicles[col.vehicle]
        if not veh.can_serve(info):
            return INF, -1
        pu, de = info.tasks
        pn, dn = p.tasks[pu].node, p.tasks[de].node
        a, b = col.path[:-1], col.path[1:]
        legs = len(a)
        dem = np.asarray(info.demand, dtype=np.int64)
        cap = np.asarray(veh.capacity, dtype=np.int64)
        tp, td = p.tasks[pu], p.tasks[de]
        # pickup alone at leg i
        arr_p = col.dep + p.duration[a, pn]
        st_p = np.maximum(arr_p, tp.earliest)
        ok_p = (st_p <= tp.latest) & (st_p + tp.service_s + p.duration[pn, b] <= col.latest[1:])
        arr_d = col.dep + p.duration[a, dn]
        st_d = np.maximum(arr_d, td.earliest)
        ok_d = st_d + td.service_s + p.duration[dn, b] <= col.latest[1:]
        dp = p.distance[a, pn] + p.distance[pn, b] - p.distance[a, b]
        dd = p.distance[a, dn] + p.distance[dn, b] - p.distance[a, b]
        same = p.distance[a, pn] + p.distance[pn, dn] + p.distance[dn, b] - p.distance[a, b]
        cost = dp[:, None] + dd[None, :]
        idx = np.arange(legs)
        cost[idx, idx] = same
        cost = cost.astype(np.float64) * veh.unit_distance_cost
        feas = ok_p[:, None] & ok_d[None, :]
        feas[idx, idx] = ok_p
        feas &= idx[:, None] <= idx[None, :]
        # load on legs i..j grows by the demand
        for i in range(legs):
            if not ok_p[i]:
                continue
            run = np.maximum.accumulate(col.load[i:], axis=0)
            fits = np.all(run + dem[None, :] <= cap[None, :], axis=1)
            feas[i, i:] &= fits
        cost = np.where(feas, cost, INF)
        flat = np.argsort(cost, axis=None, kind="stable")[:_PD_CHECKS]
        extra = veh.fixed_cost if not col.seq else 0
        for f in flat:
            c = float(cost.flat[f])
            if c == INF:
                break
            i, j = divmod(int(f), legs)
            seq = self._insert_pd(col.seq, i, j, pu, de)
            if schedule_route(p, col.vehicle, seq).violation is None:
                return c + extra, int(f)
        return INF, -1

    @staticmethod
    def _insert_pd(seq: list[int], i: int, j: int, pu: int, de: int) -> list[int]:
        return [*seq[:i], pu, *seq[i:j], de, *seq[j:]]

    # ------------------------------------------------------------------ main loop
    def build(self) -> tuple[dict[int, list[int]], list[int]]:
        """Routes (vehicle -> task sequence) and the orders left unrouted."""
        p = self.p
        n = len(p.orders)
        self.node = np.array([p.tasks[o.delivery].node for o in p.orders], dtype=np.int64)
        self.early = np.array([p.tasks[o.delivery].earliest for o in p.orders], dtype=np.int64)
        self.late = np.array([p.tasks[o.delivery].latest for o in p.orders], dtype=np.int64)
        self.service = np.array([p.tasks[o.delivery].service_s for o in p.orders], dtype=np.int64)
        self.demand = np.array([o.demand for o in p.orders], dtype=np.int64).reshape(n, p.dims)
        self.skill_ok = np.array(
            [[v.can_serve(o) for v in p.vehicles] for o in p.orders], dtype=bool
        ).reshape(n, len(p.vehicles))
        single = np.array([o.from_depot for o in p.orders], dtype=bool)
        penalty = np.array(
            [INF if o.penalty is None else float(o.penalty) for o in p.orders], dtype=np.float64
        )
        mandatory = np.isinf(penalty)
        skilled = np.array([bool(o.skills) for o in p.orders], dtype=bool)

        routed = np.ones(n, dtype=bool)
        routed[self.todo] = False
        for seq in self.initial.values():
            for t in seq:
                routed[p.tasks[t].order] = True

        cols: list[_Col] = []
        free: dict[tuple[object, ...], list[int]] = {}
        for vi, veh in enumerate(p.vehicles):
            if vi not in self.initial:
                free.setdefault(veh.type_key, []).append(vi)
        for vi, seq in sorted(self.initial.items()):
            cols.append(_Col(vi, list(seq)))
        for key in free:
            cols.append(_Col(free[key].pop(0)))
        cap_cols = max(16, 2 * len(cols))
        cost = np.full((n, cap_cols), INF)
        pos = np.full((n, cap_cols), -1, dtype=np.int64)

        def compute(c: int) -> None:
            col = cols[c]
            self._refresh(col)
            rows = np.flatnonzero(~routed & single)
            if len(rows):
                cc, leg = self._single_costs(col, rows)
                cost[rows, c] = cc
                pos[rows, c] = leg
            for oi in np.flatnonzero(~routed & ~single):
                cost[oi, c], pos[oi, c] = self._pd_cost(col, int(oi))

        for c in range(len(cols)):
            compute(c)
        row_arg = np.argmin(cost[:, : len(cols)], axis=1)
        row_min = cost[np.arange(n), row_arg]

        while True:
            open_rows = ~routed & np.isfinite(row_min)
            pick = open_rows & mandatory & skilled  # restricted orders first
            if not pick.any():
                pick = open_rows & mandatory
            if pick.any():
                cand = np.where(pick, row_min, INF)
            else:
                with np.errstate(invalid="ignore"):
                    gain = np.where(open_rows & (row_min < penalty), row_min - penalty, INF)
                if not np.isfinite(gain).any():
                    break
                cand = gain
            oi = int(np.argmin(cand))
            c = int(row_arg[oi])
            col = cols[c]
            info = p.orders[oi]
            code = int(pos[oi, c])
            if info.from_depot:
                seq = [*col.seq[:code], info.delivery, *col.seq[code:]]
            else:
                legs = len(col.seq) + 1
                i, j = divmod(code, legs)
                assert info.pickup is not None
                seq = self._insert_pd(col.seq, i, j, info.pickup, info.delivery)
            if (
                self.exact_always
                and info.from_depot
                and schedule_route(p, col.vehicle, seq).violation is not None
            ):
                cost[oi, c] = INF
                row_arg[oi] = int(np.argmin(cost[oi, : len(cols)]))
                row_min[oi] = cost[oi, row_arg[oi]]
                continue
            was_empty = not col.seq
            col.seq = seq
            routed[oi] = True
            row_min[oi] = INF
            changed = [c]
            if was_empty:
                veh = p.vehicles[col.vehicle]
                pool = free.get(veh.type_key, [])
                if pool:
                    if len(cols) == cost.shape[1]:
                        cost = np.concatenate([cost, np.full_like(cost, INF)], axis=1)
                        pos = np.concatenate([pos, np.full_like(pos, -1)], axis=1)
                    cols.append(_Col(pool.pop(0)))
                    changed.append(len(cols) - 1)
            old = cost[:, c].copy()
            for cc in changed:
                compute(cc)
            m = len(cols)
            # rows whose best was column c and got worse need a full re-scan
            worse = (row_arg == c) & (cost[:, c] > old)
            if worse.any():
                idx = np.flatnonzero(worse)
                row_arg[idx] = np.argmin(cost[idx, :m], axis=1)
                row_min[idx] = cost[idx, row_arg[idx]]
            for cc in changed:
                better = cost[:, cc] < row_min
                row_arg[better] = cc
                row_min[better] = cost[better, cc]
            row_min[routed] = INF
        routes = {col.vehicle: col.seq for col in cols if col.seq}
        left = [int(o) for o in np.flatnonzero(~routed)]
        return routes, left


def greedy_routes(
    problem: RoutingProblem,
    initial: Mapping[int, Sequence[int]] | None = None,
) -> tuple[dict[int, list[int]], list[int]]:
    """Cheapest feasible insertion of every order, starting from ``initial`` routes if given."""
    return GreedyBuilder(problem, initial=initial).build()


__all__ = ["UNLIMITED", "GreedyBuilder", "greedy_routes"]


class GreedyEngine:
    """The construction heuristic as an engine: deterministic, no search, no time limit."""

    name = "greedy"

    def unsupported(self, problem: RoutingProblem, settings: object) -> str | None:
        """Greedy insertion handles every feature (disruption cost is ignored)."""
        return None

    def solve(self, problem: RoutingProblem, settings: object) -> object:
        """Cheapest insertion from the warm-start routes."""
        from solvers.routing.engines.base import EngineResult, EngineSettings

        assert isinstance(settings, EngineSettings)
        routes, _ = greedy_routes(problem, initial=settings.initial or None)
        return EngineResult(routes=routes, detail="cheapest insertion")

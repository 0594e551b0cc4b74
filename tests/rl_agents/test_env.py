"""The dispatch environment: gymnasium contract, determinism, reward = minus the cost change."""

from __future__ import annotations

import itertools
import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rl_agents
from rl_agents.env import ENV_ID, DynamicDispatchEnv, EnvParams
from scenarios import Scenario
from scenarios.stochastic import StochasticParams
from simulation import DispatchSimulator, OrderStatus, simulate
from simulation.world import NodeInfo


def run_day(
    env: DynamicDispatchEnv, seed: int, choose: str, rng_seed: int = 0
) -> tuple[list[float], list[int], float]:
    """Play one day; ``choose`` is 'first' (cheapest slot), 'random' (valid) or 'postpone-first'."""
    rng = np.random.default_rng(rng_seed)
    env.reset(seed=seed)
    rewards: list[float] = []
    actions: list[int] = []
    done = env._done
    info: dict = {}
    while not done:
        mask = env.action_masks()
        if choose == "first":
            a = int(np.flatnonzero(mask)[0])
        elif choose == "random":
            a = int(rng.choice(np.flatnonzero(mask)))
        else:  # postpone an order the first time it is offered, then take the cheapest slot
            assert env._state is not None
            a = len(mask) - 1 if env._state.kind == 0 else int(np.flatnonzero(mask)[0])
        _, r, term, trunc, info = env.step(a)
        rewards.append(r)
        actions.append(a)
        done = term or trunc
    return rewards, actions, float(info["kpis"]["cost_cents"])


def test_registered_id_builds_the_env(tiny: Scenario) -> None:
    env = gym.make(ENV_ID, scenario=tiny)
    obs, info = env.reset(seed=1)
    assert env.observation_space.contains(obs)
    assert info["day_seed"] == 1
    assert isinstance(env.unwrapped, DynamicDispatchEnv)
    assert env.unwrapped.action_masks().any()
    env.close()


def test_passes_gymnasium_env_checker(tiny: Scenario) -> None:
    check_env(DynamicDispatchEnv(tiny), skip_render_check=True)
    # Made from the registry, the checker re-makes it from its spec (a deep copy of the
    # scenario, whose road graph is loaded by now).
    env = gym.make(ENV_ID, scenario=tiny)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_reset_seed_reproduces_the_days_arrivals(tiny: Scenario) -> None:
    env = DynamicDispatchEnv(tiny)
    env.reset(seed=5)
    first = (list(env.sim.orders.ids), list(env.sim.orders.created_s))
    env.reset(seed=6)
    other = list(env.sim.orders.created_s)
    env.reset(seed=5)
    assert (list(env.sim.orders.ids), list(env.sim.orders.created_s)) == first
    assert other != first[1]
    sim = DispatchSimulator(tiny)
    sim.reset(seed=5)  # the same day as simulate(..., seed=5)
    assert list(sim.orders.created_s) == first[1]


def test_same_seed_same_actions_same_episode(tiny: Scenario) -> None:
    a = run_day(DynamicDispatchEnv(tiny), 3, "random", rng_seed=7)
    b = run_day(DynamicDispatchEnv(tiny), 3, "random", rng_seed=7)
    assert a == b
    c = run_day(DynamicDispatchEnv(tiny), 3, "random", rng_seed=8)
    assert c[1] != a[1]


def test_return_is_minus_the_day_cost_plus_a_constant_of_the_day(tiny: Scenario) -> None:
    env = DynamicDispatchEnv(tiny)
    totals = []
    for choose, rng_seed in (("first", 0), ("random", 1), ("random", 2), ("postpone-first", 0)):
        rewards, _, cost = run_day(env, 4, choose, rng_seed)
        totals.append(sum(rewards) + cost)
    assert max(totals) - min(totals) < 1e-6 * max(1.0, abs(totals[0]))
    costs = {round(run_day(env, 4, c, s)[2]) for c, s in (("first", 0), ("random", 1))}
    assert len(costs) == 2  # different decisions, different costs, same constant


def test_cheapest_slot_everywhere_is_the_slots_policy(tiny: Scenario) -> None:
    _, _, cost = run_day(DynamicDispatchEnv(tiny), 2, "first")
    assert cost == pytest.approx(simulate(tiny, None, "slots", seed=2).metrics["cost_cents"])


def test_masked_slots_are_accepted_and_bad_actions_postpone(tiny: Scenario) -> None:
    env = DynamicDispatchEnv(tiny)
    env.reset(seed=1)
    seen_bad = seen_ok = 0
    while not env._done and (seen_bad < 3 or seen_ok < 3):
        mask = env.action_masks()
        assert env._state is not None
        o = env._state.focus_order
        bad = np.flatnonzero(~mask)
        if bad.size and seen_bad < 3:
            env.step(int(bad[0]))
            assert env.sim.order_status(o) == OrderStatus.PENDING
            seen_bad += 1
        else:
            env.step(int(np.flatnonzero(mask)[0]))
            assert env.sim.order_status(o) != OrderStatus.PENDING
            seen_ok += 1
    assert seen_ok == 3


def test_day_seeds_draw_and_cycle(tiny: Scenario) -> None:
    drawn = DynamicDispatchEnv(tiny, day_seeds=range(100, 110))
    drawn.reset(seed=0)
    assert 100 <= drawn.day_seed < 110
    cycling = DynamicDispatchEnv(tiny, day_seeds=[7, 8], cycle=True)
    days = []
    for _ in range(3):
        cycling.reset()
        days.append(cycling.day_seed)
    assert days == [7, 8, 7]
    cycling.reset(options={"day_seed": 42})
    assert cycling.day_seed == 42


def test_a_seeded_reset_restarts_the_cycle(tiny: Scenario) -> None:
    # reset(seed=s) must be reproducible (gymnasium's contract): with cycle=True it played the
    # next day in turn, so two resets with the same seed played different days.
    env = DynamicDispatchEnv(tiny, day_seeds=[7, 8, 9], cycle=True)
    days = []
    for seed in (1, None, 1, None, None, 2):
        env.reset(seed=seed)
        days.append(env.day_seed)
    assert days == [7, 8, 7, 8, 9, 7]
    check_env(DynamicDispatchEnv(tiny, day_seeds=[3, 4], cycle=True), skip_render_check=True)


def test_step_before_reset_is_an_error(tiny: Scenario) -> None:
    with pytest.raises(RuntimeError, match="reset"):
        DynamicDispatchEnv(tiny).step(0)


def test_reward_scale_and_truncation(tiny: Scenario) -> None:
    env = DynamicDispatchEnv(tiny, EnvParams(reward_scale=0.001, max_steps=3))
    env.reset(seed=1)
    out = [env.step(int(np.flatnonzero(env.action_masks())[0])) for _ in range(3)]
    assert out[-1][3] is True and not out[-1][2]
    unscaled = DynamicDispatchEnv(tiny)
    unscaled.reset(seed=1)
    first = unscaled.step(int(np.flatnonzero(unscaled.action_masks())[0]))
    assert out[0][1] == pytest.approx(first[1] * 0.001)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 10_000), rng_seed=st.integers(0, 100))
def test_observations_stay_in_the_space(tiny: Scenario, seed: int, rng_seed: int) -> None:
    env = DynamicDispatchEnv(tiny, EnvParams(num_candidates=3, num_pending=2, num_new=1))
    rng = np.random.default_rng(rng_seed)
    obs, _ = env.reset(seed=seed)
    done = env._done
    while not done:
        assert env.observation_space.contains(obs)
        mask = env.action_masks()
        assert mask.shape == (4,) and mask[:-1].any()
        couriers = obs["couriers"]
        filled = obs["courier_mask"] > 0
        assert np.all(couriers[~filled] == 0.0)  # padding is zero
        assert np.array_equal(mask[:-1], couriers[:, 0] > 0)  # feasible flag = mask
        obs, _, term, trunc, _ = env.step(int(rng.choice(np.flatnonzero(mask))))
        done = term or trunc


def test_importing_the_package_registers_the_env() -> None:
    assert rl_agents.ENV_ID in gym.registry


def test_orders_are_released_before_their_node_closes(tiny: Scenario) -> None:
    env = DynamicDispatchEnv(tiny)
    env.reset(seed=1)
    fz = env.featurizer
    sim = env.sim
    finals = {
        n: next((a for a, b in node.closed if math.isinf(b)), math.inf)
        for n, node in enumerate(env.world.nodes)
    }
    assert any(math.isfinite(t) for t in finals.values())  # some node closes for good
    checked = 0
    done = False
    while not done:
        assert env._state is not None
        o = env._state.focus_order
        nodes = [st.node for st in sim.pickup_stops(o) if st.node >= 0]
        due = min([float(sim.orders.tw_start[o])] + [finals[n] for n in nodes])
        assert fz.release_s(o, 1800) == due - 1800
        assert fz.release_s(o, None) == -math.inf
        checked += 1
        _, _, term, trunc, _ = env.step(int(np.flatnonzero(env.action_masks())[0]))
        done = term or trunc
    assert checked > 0


def test_pickup_features_use_the_closing_for_good(tiny: Scenario) -> None:
    """The store closes 12:00-13:00 for lunch and at 22:00 for good: an order whose parcel waits
    there is lost at 22:00, not at noon (it was seen as closing at noon, and a decision while the
    store was at lunch as closing right away)."""
    from rl_agents.features import COURIER_FEATURES, ORDER_FEATURES
    from scenarios.geo import TimeWindow

    lunch = [
        TimeWindow(start_s=8 * 3600, end_s=12 * 3600),
        TimeWindow(start_s=13 * 3600, end_s=22 * 3600),
    ]
    nodes = [
        n.model_copy(update={"opening_hours": lunch}) if n.opening_hours else n for n in tiny.nodes
    ]
    env = DynamicDispatchEnv(tiny.model_copy(update={"nodes": nodes}))
    obs, _ = env.reset(seed=2)  # three decisions on such orders before 12:00 or at lunch
    sim = env.sim
    world = env.world
    final = {
        n: next(a for a, b in node.closed if math.isinf(b))
        for n, node in enumerate(world.nodes)
        if node.closed
    }
    assert set(final.values()) == {22 * 3600}
    closes_in = ORDER_FEATURES.index("pickup_closes_in_h")
    margin = COURIER_FEATURES.index("pickup_margin_h")
    checked = before_lunch = 0
    done = False
    while not done:
        assert env._state is not None and env._decision is not None
        o, now = env._state.focus_order, env._state.time_s
        stops = sim.pickup_stops(o)
        at = [st.node for st in stops if st.node >= 0 and st.node in final]
        if at:
            closes = min(final[n] for n in at)
            assert obs["order"][closes_in] == pytest.approx(min(24.0, (closes - now) / 3600.0))
            trip = float(world.travel.duration_s[stops[-1].location, sim.orders.location[o]])
            for i, q in enumerate(env._decision.quotes):
                if q.feasible:
                    hours = (closes - (q.delivery_start_s - trip)) / 3600.0
                    assert obs["couriers"][i, margin] == pytest.approx(max(-24.0, hours))
            ready = max(sim.ready_estimate(o, st.node) for st in stops)
            nxt = min(_next_closing(world.nodes[n], max(now, ready)) for n in at)
            before_lunch += nxt < closes  # the next closing is not the closing for good
            checked += 1
        obs, _, term, trunc, _ = env.step(int(np.flatnonzero(env.action_masks())[0]))
        done = term or trunc
    assert before_lunch > 0 and checked > before_lunch


def test_a_day_without_decisions_ends_at_the_first_step() -> None:
    # The only order's window opens after the only courier's shift: the day is over in reset().
    day = Scenario.model_validate(
        {
            "nodes": [{"id": "n", "location": {"x": 0, "y": 0}, "inventory": {"a": 5}}],
            "orders": [
                {
                    "id": "o",
                    "location": {"x": 10, "y": 0},
                    "lines": [{"sku": "a", "quantity": 1}],
                    "time_windows": [{"start_s": 80_000, "end_s": 82_000}],
                }
            ],
            "vehicles": [
                {
                    "id": "v",
                    "start_location": {"x": 0, "y": 0},
                    "shift": {"start_s": 0, "end_s": 3600},
                }
            ],
        }
    )
    cost = simulate(day, None, "insertion", seed=1).metrics["cost_cents"]
    assert cost == day.costs.unserved_cents  # unserved whatever the agent would do
    env = DynamicDispatchEnv(day)
    for _ in range(2):  # a second reset plays the same day the same way
        obs, info = env.reset(seed=1)
        assert env.observation_space.contains(obs)
        assert all(not v.any() for v in obs.values())
        assert info["kpis"]["cost_cents"] == cost
        assert env.action_masks().tolist() == [False] * env.params.num_candidates + [True]
        obs, reward, terminated, truncated, info = env.step(0)  # the action is ignored
        assert (reward, terminated, truncated) == (0.0, True, False)
        assert env.observation_space.contains(obs)
        assert reward + info["kpis"]["cost_cents"] == cost  # return + cost = the day's cost
        with pytest.raises(RuntimeError, match="reset"):
            env.step(0)
    check_env(env, skip_render_check=True)


def _next_closing(node: NodeInfo, t: float) -> float:
    """When ``node`` next stops working at or after ``t`` (``t`` itself if it is closed then):
    what the pickup features took before they took the closing for good."""
    for start, end in node.closed:
        if start <= t < end:
            return t
        if start > t:
            return start
    return math.inf


def test_unused_couriers_with_only_their_breaks_add_nothing_to_the_potential() -> None:
    # Since session 55 every courier takes its vehicle's breaks without a plan: one that has
    # not left starts the day with a route holding only its break, taken where it stands at
    # no cost. The potential counted such a courier as working (its fixed cost and shift
    # hours: 59,800 cents on this day's first decision); it adds nothing, as without breaks.
    from scenarios.generate import CityParams, generate_city

    v1 = CityParams(generator_version=1)
    city = generate_city(seed=11, num_orders=60, num_nodes=3, num_couriers=6, params=v1)
    vehicles = [v.model_copy(update={"breaks": []}) for v in city.vehicles]
    potentials = []
    for day in (city, city.model_copy(update={"vehicles": vehicles})):
        env = DynamicDispatchEnv(day, day_seeds=[1])
        env.reset(seed=0)
        state = env._state
        assert state is not None
        potentials.append(env._potential())
        routes = [len(r) for r in state.routes]
        assert routes == ([1] * 6 if day is city else [0] * 6)
    assert potentials[0] == potentials[1]


def _two_trips() -> Scenario:
    """A bike at the depot (x=0; 1 m/s, 4 cents/km, no hourly rate, fixed cost 1,500) standing
    in its break at 50-150 s, a van far away (fixed cost 4,000), noise off; order ``a`` (300 m
    out, due by 1,000 s) at 0 s, ``b`` (at the depot, from 1,000 s) at 100 s, ``c`` (300 m the
    other way) at 2,000 s, each picked up at the depot."""

    def order(name: str, x: int, created: int, window: tuple[int, int]) -> dict[str, object]:
        tw = {"start_s": window[0], "end_s": window[1]}
        return {
            "id": name,
            "location": {"x": x, "y": 0},
            "created_s": created,
            "time_windows": [tw],
        }

    def vehicle(name: str, x: int, per_km: int, fixed: int) -> dict[str, object]:
        return {
            "id": name,
            "start_location": {"x": x, "y": 0},
            "cost_per_km_cents": per_km,
            "cost_per_hour_cents": 0,
            "fixed_cost_cents": fixed,
            "shift": {"start_s": 0, "end_s": 8000},
        }

    bike = vehicle("bike", 0, 4, 1500)
    bike["breaks"] = [{"window": {"start_s": 50, "end_s": 50}, "duration_s": 100}]
    return Scenario.model_validate(
        {
            "name": "two-trips",
            "horizon": {"start_s": 0, "end_s": 10_000},
            "orders": [
                order("a", 300, 0, (0, 1000)),
                order("b", 0, 100, (1000, 5000)),
                order("c", -300, 2000, (0, 5000)),
            ],
            "vehicles": [bike, vehicle("van", 5000, 40, 4000)],
            "stochastic": StochasticParams.deterministic().model_dump(),
        }
    )


def test_a_courier_s_fixed_cost_is_counted_once_from_its_first_assignment() -> None:
    # docs/rl.md: the potential counts the fixed cost of a courier yet to leave from its first
    # assignment (sim.projected_cost_cents() leaves it to the realised cost, which takes it
    # when the courier leaves). The bike is given ``a`` while standing, still stands at the
    # next decision (``b``), leaves at 150 s, comes home and takes ``c`` on a second trip.
    # Every decision is taken with the bike at home or standing (no leg under way: see the
    # next test for those) and the day plays as planned, so each reward is
    # minus what its assignment adds to the plan, its quote: the fixed cost once, in the first;
    # and the return is minus the day's cost, whose fixed cost is the bike's alone, once.
    env = DynamicDispatchEnv(_two_trips())
    env.reset(seed=1)
    rewards, quoted, left = [], [], []
    done = False
    info: dict[str, Any] = {}
    while not done:
        a = int(np.flatnonzero(env.action_masks())[0])
        assert env._state is not None and env._decision is not None
        assert env._decision.slot_courier[a] == 0  # the bike, every time
        quoted.append(env.sim.quote(env._state.focus_order, 0).cost_delta_cents)
        left.append(env.sim.first_departure(0))
        _, r, term, trunc, info = env.step(a)
        rewards.append(r)
        done = term or trunc
    assert math.isnan(left[0]) and math.isnan(left[1]) and left[2] == 150.0
    # 600 m there and back for a (with the fixed cost), b on the way home, 600 m for c
    assert quoted == pytest.approx([1500 + 4 * 0.6, 0.0, 4 * 0.6])
    assert rewards == pytest.approx([-q for q in quoted])
    kpis = info["kpis"]
    assert kpis["fixed_cost_cents"] == 1500
    assert sum(rewards) == pytest.approx(-kpis["cost_cents"])
    assert kpis["cost_cents"] == pytest.approx(1500 + 4 * 1.2)


def test_candidate_slots_hold_only_couriers_able_to_serve_the_order() -> None:
    # b needs a fridge only v2 has; v1 stands nearer. The one slot went to v1 (masked: its
    # quote refuses b), so the agent could only postpone b. Now it holds v2.
    from rl_agents.features import FeatureParams, Featurizer
    from tests.simulation.conftest import fridge_line_scenario

    sim = DispatchSimulator(fridge_line_scenario())
    sim.reset(seed=1)
    assert sim.next_decision() is not None
    fz = Featurizer(FeatureParams(num_candidates=1, num_pending=0, num_new=1))
    fz.reset(sim)
    a, b = sim.orders.ids.index("a"), sim.orders.ids.index("b")
    for_b = fz.decide_inputs(sim.state(focus_order=b))
    assert for_b.slot_courier == [1]
    assert for_b.mask[0] and for_b.quotes[0].feasible
    assert fz.decide_inputs(sim.state(focus_order=a)).slot_courier == [0]  # no skills: nearest


def _bike(
    shift: tuple[int, int], *, per_hour: int = 3600, name: str = "bike", x: int = 0
) -> dict[str, object]:
    """A bike starting at (``x``, 0): 4 cents/km, ``per_hour`` cents an hour, fixed cost
    1,500, on shift over ``shift`` (s)."""
    return {
        "id": name,
        "start_location": {"x": x, "y": 0},
        "cost_per_km_cents": 4,
        "cost_per_hour_cents": per_hour,
        "fixed_cost_cents": 1500,
        "shift": {"start_s": shift[0], "end_s": shift[1]},
    }


def _legs(per_hour: int, shift_end_s: int = 8000) -> Scenario:
    """A bike at the depot (x=0; 1 m/s, 4 cents/km, ``per_hour`` cents an hour, fixed cost
    1,500, shift 0-``shift_end_s``), noise off; order ``a`` (300 m out) at 0 s, ``b`` (600 m out) at
    100 s, while the bike drives to ``a``, ``c`` (300 m the other way) at 2,000 s, while it
    waits at ``b``, each picked up at the depot and due by 5,000 s."""

    def order(name: str, x: int, created: int) -> dict[str, object]:
        tw = {"start_s": 0, "end_s": 5000}
        return {
            "id": name,
            "location": {"x": x, "y": 0},
            "created_s": created,
            "time_windows": [tw],
        }

    bike = _bike((0, shift_end_s), per_hour=per_hour)
    return Scenario.model_validate(
        {
            "name": "legs",
            "horizon": {"start_s": 0, "end_s": 10_000},
            "orders": [order("a", 300, 0), order("b", 600, 100), order("c", -300, 2000)],
            "vehicles": [bike],
            "stochastic": StochasticParams.deterministic().model_dump(),
        }
    )


def _play_first_slots(env: DynamicDispatchEnv) -> tuple[list[float], list[float], list[float]]:
    """Play the day taking the first valid action: rewards, each assignment's quote, and the
    potential before each step (then the day's cost)."""
    env.reset(seed=1)
    rewards, quoted, phi = [], [], []
    done = False
    info: dict[str, Any] = {}
    while not done:
        assert env._state is not None
        quoted.append(env.sim.quote(env._state.focus_order, 0).cost_delta_cents)
        phi.append(env._phi)
        _, r, term, trunc, info = env.step(int(np.flatnonzero(env.action_masks())[0]))
        rewards.append(r)
        done = term or trunc
    return rewards, quoted, [*phi, float(info["kpis"]["cost_cents"])]


def test_rewards_telescope_with_the_leg_under_way_and_the_way_home_counted() -> None:
    # b comes while the bike drives to a, c while it waits at b, done. The potential left out
    # the leg under way (0 -> 300: 1.2 cents, charged on arrival) and the idle bike's way home
    # (600 -> 0: 2.4 cents): rewards -1501.2, -3.6, -4.8, each off its assignment's quote.
    # Now the day plays as planned and each reward is minus its quote exactly.
    env = DynamicDispatchEnv(_legs(per_hour=0))
    rewards, quoted, phi = _play_first_slots(env)
    assert quoted == pytest.approx([1500 + 4 * 0.6, 4 * 0.6 * 2, 4 * 0.6])
    assert rewards == pytest.approx([-q for q in quoted], abs=1e-9)
    assert rewards == [-(b - a) for a, b in itertools.pairwise(phi)]  # (no exogenous terms)
    assert phi[0] == 0.0 and sum(rewards) == pytest.approx(-phi[-1])
    assert phi[-1] == pytest.approx(1500 + 4 * 2.4)
    # With hourly pay the potential counts the bike's hours until it is home: to the end of
    # its leg and its stop, its route, its wait at its last stop until the day closes (c,
    # the day's last order, comes at 2,000 s: before its shift ends) and then its way home.
    # At b's decision (100 s): 1,500 + 4 x 0.6 (0 -> 300 -> 0) + 1 cent a second for 2,000 s
    # to the close and 300 s home from a.
    env = DynamicDispatchEnv(_legs(per_hour=3600))
    rewards, _, phi = _play_first_slots(env)
    assert phi[1] == pytest.approx(1500 + 4 * 0.6 + 2000 + 300)
    assert sum(rewards) == pytest.approx(-phi[-1])


def test_the_last_reward_is_what_the_last_decision_adds_when_the_day_closes_early() -> None:
    # The legs day with hourly pay: c, the day's last order, is given to the bike at 2,000 s,
    # while it waits at b; the twin then closes the day when the bike is back from c (every
    # order released, every route done), 5,100 s before its shift ends at 8,000 s. The
    # potential ran the bike's wait to its shift's end, so the close gave those hours back in
    # one lump with the last reward: +5,397.6 (+5,100 cents of wait, less c's 602.4). Now it
    # waits until the day closes: at b's decision until c's release at 2,000 s (no earlier
    # close), and the last reward is minus what c adds, 600 s on the clock and 600 m, as its
    # quote says (the wait until 2,000 s, already counted, is not c's).
    env = DynamicDispatchEnv(_legs(per_hour=3600))
    rewards, quoted, phi = _play_first_slots(env)
    assert quoted[-1] == pytest.approx(600 + 4 * 0.6)
    assert rewards[-1] == pytest.approx(-quoted[-1], abs=1e-9)
    # the day's cost: the bike on the clock 0-3,200 s (home from c), 2,400 m, its fixed cost
    assert phi[-1] == pytest.approx(1500 + 3200 + 4 * 2.4)
    assert phi[-2] == pytest.approx(phi[-1] - quoted[-1])
    assert rewards == pytest.approx([-(b - a) for a, b in itertools.pairwise(phi)], abs=1e-9)


@settings(max_examples=15, deadline=None)
@given(per_hour=st.integers(0, 20_000), shift_end_s=st.integers(3200, 10_000))
def test_no_lump_at_the_day_s_close_whatever_the_pay_and_the_shift(
    per_hour: int, shift_end_s: int
) -> None:
    # The legs day played as planned: the bike is home from c at 3,200 s, when the day closes,
    # whenever its shift ends after that; the last reward is minus c's quote, and every
    # reward minus the change of the potential, which ends at the day's cost.
    env = DynamicDispatchEnv(_legs(per_hour, shift_end_s))
    rewards, quoted, phi = _play_first_slots(env)
    assert rewards[-1] == pytest.approx(-quoted[-1], rel=1e-9, abs=1e-6)
    assert rewards == pytest.approx([-(b - a) for a, b in itertools.pairwise(phi)], abs=1e-6)
    assert phi[-1] == pytest.approx(1500 + per_hour * 3200 / 3600 + 4 * 2.4)


def _home_leg() -> Scenario:
    """Two bikes (4 cents/km, 1 cent a second, fixed cost 1,500), noise off: ``bike1`` at the
    depot (x=0) on shift 0-1,000 s, ``bike2`` at x=5,000 on shift 1,000-3,000 s; order ``a``
    (300 m out) at 0 s, ``b`` (x=4,800) at 1,100 s and ``d`` (x=4,700) at 1,200 s, each due
    by 9,000 s. bike1 takes a, waits there until its shift ends, and drives home 1,000-1,300
    s, while b and d are decided (bike2 takes them)."""

    def order(name: str, x: int, created: int) -> dict[str, object]:
        tw = {"start_s": 0, "end_s": 9000}
        return {
            "id": name,
            "location": {"x": x, "y": 0},
            "created_s": created,
            "time_windows": [tw],
        }

    return Scenario.model_validate(
        {
            "name": "home-leg",
            "horizon": {"start_s": 0, "end_s": 10_000},
            "orders": [order("a", 300, 0), order("b", 4800, 1100), order("d", 4700, 1200)],
            "vehicles": [_bike((0, 1000), name="bike1"), _bike((1000, 3000), name="bike2", x=5000)],
            "stochastic": StochasticParams.deterministic().model_dump(),
        }
    )


def test_a_home_leg_under_way_is_priced_at_what_is_left_of_it() -> None:
    # At b's decision (1,100 s) bike1 is 100 s into its 300 s leg home: the potential counts
    # what is left of it (200 s on the clock; the 300 m are charged on arrival), as it counts
    # a leg to a customer. Then the day plays as planned and bike2, the last out, decides
    # when the day closes: each reward after the first is minus its quote (bike2's wait until
    # its shift's end at 3,000 s, after the day's close when it is back from d, was given
    # back at the end: the rewards were -3,601.6 and +1,097.6 against quotes of 1,901.6 and
    # 602.4).
    env = DynamicDispatchEnv(_home_leg())
    rewards, quoted = [], []
    done = False
    info: dict[str, Any] = {}
    env.reset(seed=1)
    while not done:
        sim, state, decision = env.sim, env._state, env._decision
        assert state is not None and decision is not None
        a = int(np.flatnonzero(env.action_masks())[0])
        courier = decision.slot_courier[a]
        quoted.append(sim.quote(state.focus_order, courier).cost_delta_cents)
        if sim.now == 1100.0:
            assert sim._leg[0] is not None and sim._committed[0] is None  # on its way home
            waiting = float(sim.orders.penalty_cents[state.focus_order])
            under_way = 4 * 0.3 + 200  # the 300 m leg, 200 s of it left
            assert sim.projected_cost_cents() - waiting == pytest.approx(
                sim.realised_cost_cents() + under_way, abs=1e-9
            )
            assert sim.realised_cost_cents() == pytest.approx(1500 + 4 * 0.3 + 1100)
        _, r, term, trunc, info = env.step(a)
        rewards.append(r)
        done = term or trunc
    assert len(rewards) == 3
    assert rewards[1:] == pytest.approx([-q for q in quoted[1:]], abs=1e-9)
    assert env.sim._a_last[0] == 1300.0  # bike1 home as priced
    assert sum(rewards) == pytest.approx(-info["kpis"]["cost_cents"])


def _late_pick(late_s: int) -> Scenario:
    """A bike at the depot (x=0; 1 m/s, 4 cents/km, 1 cent a second, fixed cost 1,500, shift
    0-9,000 s; the day's horizon 0-10,000 s), noise off, and two nodes there: ``dc``, always
    open, and ``store``, open until 3,000 s, then closed for good (a pick takes 180 s). Orders
    ``a`` (300 m out, from dc) at 0 s, ``late`` (from store) at ``late_s``, and ``b`` (600 m
    out, from dc) at 3,500 s; each due by 9,000 s. At 2,800 s late's parcel is ready at 2,980
    s, but the bike, at x=300, cannot reach the store before it closes: nobody collects it;
    at 2,900 s its parcel would be ready at 3,080 s, after the store closed. Either way it is
    lost at the closing (twin version 10)."""

    def order(name: str, x: int, created: int, sku: str) -> dict[str, object]:
        return {
            "id": name,
            "location": {"x": x, "y": 0},
            "created_s": created,
            "lines": [{"sku": sku, "quantity": 1}],
            "time_windows": [{"start_s": 0, "end_s": 9000}],
        }

    store_hours = [{"start_s": 0, "end_s": 3000}]
    return Scenario.model_validate(
        {
            "name": "late-pick",
            "horizon": {"start_s": 0, "end_s": 10_000},
            "nodes": [
                {"id": "dc", "location": {"x": 0, "y": 0}, "inventory": {"d": 5}},
                {
                    "id": "store",
                    "location": {"x": 0, "y": 0},
                    "inventory": {"s": 5},
                    "opening_hours": store_hours,
                },
            ],
            "orders": [
                order("a", 300, 0, "d"),
                order("late", -300, late_s, "s"),
                order("b", 600, 3500, "d"),
            ],
            "vehicles": [_bike((0, 9000))],
            "stochastic": StochasticParams.deterministic().model_dump(),
        }
    )


@pytest.mark.parametrize("late_s", [2800, 2900])
def test_an_order_whose_parcel_is_not_collected_by_the_closing_is_charged_when_lost(
    late_s: int,
) -> None:
    # At 2,900 s ``late``'s parcel would be ready at 3,080 s, after the store closed for good
    # at 3,000 s; at 2,800 s it is ready at 2,980 s, but nobody collects it by the closing
    # (the bike cannot reach the store by then). Since twin version 10 it is lost at the
    # closing either way (unserved at its penalty) and the day closes once b is home (5,000
    # s: b picked at 3,680 s, the bike back at the dc at 3,800 s, out 600 m and home), not
    # at the bike's shift's end (home at 9,600 s until then; the potential priced the wait
    # until then, and late's penalty, once the store had closed: the RL env's ``_doomed``).
    # The potential charges late's penalty at b's decision, its first after the loss, and
    # the last reward is what b adds.
    env = DynamicDispatchEnv(_late_pick(late_s))
    rewards, quoted, phi = _play_first_slots(env)
    sim = env.sim
    late = sim.orders.ids.index("late")
    assert sim.status[late] == OrderStatus.UNSERVED
    assert sim._a_last[0] == 3800 + 600 + 600  # home from b, right after it
    penalty = float(sim.orders.penalty_cents[late])
    assert phi[-1] == pytest.approx(1500 + 5000 + 4 * 1.8 + penalty)  # the day's cost
    assert rewards[-1] == pytest.approx(-quoted[-1], abs=1e-9)
    assert rewards == pytest.approx([-(b - a) for a, b in itertools.pairwise(phi)], abs=1e-9)


def _rush_home() -> Scenario:
    """A bike at the depot (x=0; 1 m/s, 4 cents/km, 1 cent a second, fixed cost 1,500, shift
    0-9,900 s), noise off, travel twice as slow from 6,000 s on; orders ``a`` (300 m out) at 0
    s, ``b`` (600 m out) at 3,500 s and ``c`` (300 m the other way) at 6,500 s, each picked up
    at the depot and due by 9,500 s."""

    def order(name: str, x: int, created: int) -> dict[str, object]:
        return {
            "id": name,
            "location": {"x": x, "y": 0},
            "created_s": created,
            "time_windows": [{"start_s": 0, "end_s": 9500}],
        }

    rush = [{"start_s": 0, "duration_factor": 1.0}, {"start_s": 6000, "duration_factor": 2.0}]
    return Scenario.model_validate(
        {
            "name": "rush-home",
            "horizon": {"start_s": 0, "end_s": 10_000},
            "travel": {"kind": "euclidean", "profile": rush},
            "orders": [order("a", 300, 0), order("b", 600, 3500), order("c", -300, 6500)],
            "vehicles": [_bike((0, 9900))],
            "stochastic": StochasticParams.deterministic().model_dump(),
        }
    )


def test_the_way_home_after_a_wait_is_priced_at_the_travel_factor_when_it_leaves() -> None:
    # At b's decision (3,500 s) the bike, done with a, waits at x=300 until the day's last
    # release (c, 6,500 s), then drives home: 300 m at twice the time, 600 s, as the twin
    # drives it. The potential priced that way home at the factor of the bike's free time
    # (300 s): b's reward carried the other 300 s (-904.8). Now each reward is what its
    # decision adds: b 1,200 m and 600 s more on the way home (from x=600, at 2.0).
    env = DynamicDispatchEnv(_rush_home())
    rewards, quoted, phi = _play_first_slots(env)
    assert phi[1] == pytest.approx(1500 + 6500 + 600 + 4 * 0.6)
    assert rewards[1] == pytest.approx(-(4 * 1.2 + 600), abs=1e-9)
    assert rewards[2] == pytest.approx(-quoted[2], abs=1e-9)  # c: from x=600 at 2.0, as quoted
    assert env.sim._a_last[0] == 6500 + 1200 + 600 + 600  # home from c
    assert phi[-1] == pytest.approx(1500 + 8900 + 4 * 2.4)
    assert rewards == pytest.approx([-(b - a) for a, b in itertools.pairwise(phi)], abs=1e-9)

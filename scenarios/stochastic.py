"""Stochastic parameters of a scenario: what the digital twin randomises, and how much."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from scenarios.geo import Id, NonNegInt, NotBool, StrictModel, TimeWindow

if TYPE_CHECKING:  # resolved by scenarios.model (ArrivalProcess.model_rebuild after Order)
    from scenarios.model import Order

Prob = Annotated[float, Field(ge=0.0, le=1.0), NotBool]

#: Every id :func:`arrival_order_id` can give (``arrival-000123``, ``arrival-surge2-000123``).
_ARRIVAL_ID = re.compile(r"arrival-(?:surge(?:0|[1-9][0-9]*)-)?(?:[0-9]{6}|[1-9][0-9]{6,})")


def arrival_order_id(k: int, surge: int | None = None) -> str:
    """Id of the ``k``-th arrival of the base process, or of demand surge ``surge``'s extra ones."""
    return f"arrival-{k:06d}" if surge is None else f"arrival-surge{surge}-{k:06d}"


def is_arrival_order_id(order_id: str) -> bool:
    """Whether ``order_id`` has the form of an id :func:`arrival_order_id` gives."""
    return _ARRIVAL_ID.fullmatch(order_id) is not None


SECONDS_PER_DAY = 86_400
#: Longest horizon an arrival process may span: the twin draws its arrivals hour by hour
#: (a horizon of 10**12 s listed 2.8e8 hours and ran out of memory).
MAX_ARRIVALS_HORIZON_S = 366 * SECONDS_PER_DAY

#: Largest rate, factor or coefficient of variation accepted (beyond it the twin would draw
#: numbers its generators reject or run for ever).
MAX_RATE = 1e4
NonNegFloat = Annotated[float, Field(ge=0.0, le=MAX_RATE), NotBool]
Cv = Annotated[float, Field(ge=0.0, le=10.0), NotBool]


class NodeOutage(StrictModel):
    """A fulfilment node that cannot pick or hand over parcels during ``window``."""

    node_id: Id
    window: TimeWindow


class Slowdown(StrictModel):
    """Travel takes ``factor`` x its usual time during ``window`` (the whole horizon if None)."""

    factor: Annotated[float, Field(gt=0.0, le=10.0), NotBool]
    window: TimeWindow | None = None

    def applies_at(self, t_s: float) -> bool:
        """True when a departure at ``t_s`` is slowed down."""
        return self.window is None or self.window.start_s <= t_s <= self.window.end_s


class DemandSurge(StrictModel):
    """New orders arrive ``factor`` x as often during ``window`` (the whole horizon if None)."""

    factor: NonNegFloat
    window: TimeWindow | None = None


class StochasticParams(StrictModel):
    """Noise and disruption settings the twin samples from (all off = deterministic replay).

    Coefficients of variation (``*_cv``) are of lognormal multipliers with mean 1.
    """

    travel_time_cv: Cv = 0.15
    service_time_cv: Cv = 0.25
    pick_time_cv: Cv = 0.3
    weather_multiplier: Annotated[float, Field(gt=0.0, le=5.0), NotBool] = 1.0
    breakdown_rate_per_hour: Annotated[float, Field(ge=0.0, le=100.0), NotBool] = 0.0
    breakdown_duration_s: NonNegInt = 1800
    failed_delivery_prob: Prob = 0.0
    stock_discrepancy_prob: Prob = 0.0
    node_outages: list[NodeOutage] = Field(default_factory=list)
    pick_time_distribution: Literal["lognormal", "exponential"] = Field(
        default="lognormal",
        description="pick/pack time multipliers: lognormal with pick_time_cv, or exponential "
        "with mean 1 (cv = 1; an M/M/c node)",
    )
    travel_slowdowns: list[Slowdown] = Field(
        default_factory=list, description="extra travel-time multipliers by departure time"
    )
    use_travel_profile: bool = Field(
        default=True, description="apply the travel model's time-of-day profile in the twin"
    )

    @classmethod
    def deterministic(cls) -> StochasticParams:
        """Parameters with every source of noise and disruption switched off."""
        return cls(travel_time_cv=0.0, service_time_cv=0.0, pick_time_cv=0.0)

    def travel_factor_at(self, t_s: float) -> float:
        """Deterministic travel multiplier for a departure at ``t_s``: weather x slowdowns."""
        factor = self.weather_multiplier
        for slow in self.travel_slowdowns:
            if slow.applies_at(t_s):
                factor *= slow.factor
        return factor

    @property
    def is_deterministic(self) -> bool:
        """True when nothing is random: no noise, no random disruptions."""
        return (
            self.travel_time_cv == 0.0
            and self.service_time_cv == 0.0
            and (self.pick_time_cv == 0.0 and self.pick_time_distribution == "lognormal")
            and self.breakdown_rate_per_hour == 0.0
            and self.failed_delivery_prob == 0.0
            and self.stock_discrepancy_prob == 0.0
        )


def lognormal_sigma_mu(cv: float) -> tuple[float, float]:
    """(sigma, mu) of a lognormal with mean 1 and coefficient of variation ``cv``."""
    sigma2 = math.log1p(cv * cv)
    return math.sqrt(sigma2), -0.5 * sigma2


class ArrivalProcess(StrictModel):
    """Orders arriving during the day on top of the listed ones (Poisson, rate per hour of day).

    The listed orders are released at their ``created_s``. Each extra order copies a template
    drawn at random (its location, lines, demand, service time, skills, penalty and pickup)
    and is due within ``promise_s`` of its arrival. The templates are ``templates`` when
    given (orders never released themselves: a day whose orders all arrive stochastically
    lists none), else the listed orders.
    """

    hourly_rate: Annotated[list[NonNegFloat], Field(min_length=24, max_length=24)]
    promise_s: NonNegInt = 7200
    surges: list[DemandSurge] = Field(
        default_factory=list, description="rate multipliers over absolute time windows"
    )
    templates: list[Order] = Field(
        default_factory=list,
        description="orders the arrivals are drawn from, never released themselves (their "
        "created_s and time_windows are not used); empty = the listed orders",
    )

    def expected_arrivals(self, start_s: int, end_s: int) -> float:
        """Arrivals expected over ``[start_s, end_s]``: exact without surges; with surges an
        upper bound (the base process times every factor above 1, as if all were active)."""
        days, _ = divmod(end_s - start_s, SECONDS_PER_DAY)
        total = days * sum(self.hourly_rate)
        t = start_s + days * SECONDS_PER_DAY
        while t < end_s:  # the rest of a day: at most 25 hour slices
            nxt = min(end_s, (t // 3600 + 1) * 3600)
            total += self.hourly_rate[(t // 3600) % 24] * (nxt - t) / 3600.0
            t = nxt
        return total * math.prod(max(1.0, surge.factor) for surge in self.surges)

    def rate_per_s_at(self, t_s: float) -> float:
        """Arrival rate (orders per second) at ``t_s``: hour-of-day rate x surges."""
        rate = self.hourly_rate[int(t_s // 3600) % 24] / 3600.0
        for surge in self.surges:
            if surge.window is None or surge.window.start_s <= t_s < surge.window.end_s:
                rate *= surge.factor
        return rate

"""Stochastic parameters of a scenario: what the digital twin randomises, and how much."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from scenarios.geo import Id, NonNegInt, StrictModel, TimeWindow

Prob = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegFloat = Annotated[float, Field(ge=0.0)]


class NodeOutage(StrictModel):
    """A fulfilment node that cannot pick or hand over parcels during ``window``."""

    node_id: Id
    window: TimeWindow


class StochasticParams(StrictModel):
    """Noise and disruption settings the twin samples from (all off = deterministic replay).

    Coefficients of variation (``*_cv``) are of lognormal multipliers with mean 1.
    """

    travel_time_cv: NonNegFloat = 0.15
    service_time_cv: NonNegFloat = 0.25
    pick_time_cv: NonNegFloat = 0.3
    weather_multiplier: Annotated[float, Field(gt=0.0, le=5.0)] = 1.0
    breakdown_rate_per_hour: NonNegFloat = 0.0
    breakdown_duration_s: NonNegInt = 1800
    failed_delivery_prob: Prob = 0.0
    stock_discrepancy_prob: Prob = 0.0
    node_outages: list[NodeOutage] = Field(default_factory=list)

    @classmethod
    def deterministic(cls) -> StochasticParams:
        """Parameters with every source of noise and disruption switched off."""
        return cls(travel_time_cv=0.0, service_time_cv=0.0, pick_time_cv=0.0)


class ArrivalProcess(StrictModel):
    """New orders during the day: Poisson with a rate per hour of day.

    New orders are drawn like the scenario's existing orders (location, lines, window length
    sampled from them) unless the twin is given another template.
    """

    hourly_rate: Annotated[list[NonNegFloat], Field(min_length=24, max_length=24)]
    promise_s: NonNegInt = 7200

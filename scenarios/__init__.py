"""The shared domain model of dispatchlab, its file formats, generators and what-if variants.

Its names are imported on first use (PEP 562), so that importing one light module of the
package (``scenarios.errors``, which every CLI command's error handling needs) does not
import the models, numpy and the travel models: ``dispatchlab --help`` took ~1.0 s, most
of it in this package's imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scenarios.lazy import LazyExports

if TYPE_CHECKING:
    from scenarios.errors import DispatchlabError, FieldError, InputError
    from scenarios.geo import Location, TimeWindow
    from scenarios.model import (
        Break,
        CostParams,
        FulfilmentNode,
        NodeKind,
        Order,
        OrderLine,
        PickupSpec,
        Scenario,
        Sku,
        SourceInfo,
        Tier,
        Vehicle,
    )
    from scenarios.plan import (
        AllocationLine,
        Estimate,
        Kpis,
        Plan,
        PlannedStop,
        PlanStatus,
        Route,
        StopKind,
        Unassigned,
        UnassignedReason,
    )
    from scenarios.stochastic import ArrivalProcess, NodeOutage, StochasticParams
    from scenarios.travel import (
        EuclideanTravel,
        GridSpec,
        HaversineTravel,
        MatrixTravel,
        RoadNetworkTravel,
        SpeedPeriod,
        TravelMatrix,
        TravelModel,
    )

#: each module of the package -> the public names it defines (the imports above)
_MODULES = {
    "scenarios.errors": ("DispatchlabError", "FieldError", "InputError"),
    "scenarios.geo": ("Location", "TimeWindow"),
    "scenarios.model": (
        "Break",
        "CostParams",
        "FulfilmentNode",
        "NodeKind",
        "Order",
        "OrderLine",
        "PickupSpec",
        "Scenario",
        "Sku",
        "SourceInfo",
        "Tier",
        "Vehicle",
    ),
    "scenarios.plan": (
        "AllocationLine",
        "Estimate",
        "Kpis",
        "Plan",
        "PlannedStop",
        "PlanStatus",
        "Route",
        "StopKind",
        "Unassigned",
        "UnassignedReason",
    ),
    "scenarios.stochastic": ("ArrivalProcess", "NodeOutage", "StochasticParams"),
    "scenarios.travel": (
        "EuclideanTravel",
        "GridSpec",
        "HaversineTravel",
        "MatrixTravel",
        "RoadNetworkTravel",
        "SpeedPeriod",
        "TravelMatrix",
        "TravelModel",
    ),
}
#: the package's public names, imported on first use
_LAZY = LazyExports(__name__, _MODULES)
__getattr__, __dir__ = _LAZY.hooks()

__all__ = [
    "AllocationLine",
    "ArrivalProcess",
    "Break",
    "CostParams",
    "DispatchlabError",
    "Estimate",
    "EuclideanTravel",
    "FieldError",
    "FulfilmentNode",
    "GridSpec",
    "HaversineTravel",
    "InputError",
    "Kpis",
    "Location",
    "MatrixTravel",
    "NodeKind",
    "NodeOutage",
    "Order",
    "OrderLine",
    "PickupSpec",
    "Plan",
    "PlanStatus",
    "PlannedStop",
    "RoadNetworkTravel",
    "Route",
    "Scenario",
    "Sku",
    "SourceInfo",
    "SpeedPeriod",
    "StochasticParams",
    "StopKind",
    "Tier",
    "TimeWindow",
    "TravelMatrix",
    "TravelModel",
    "Unassigned",
    "UnassignedReason",
    "Vehicle",
]

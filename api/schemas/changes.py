"""What changed between two plans: stops that moved and ETAs that shifted."""

from __future__ import annotations

from pydantic import BaseModel, Field


class StopMove(BaseModel):
    """A stop served by another vehicle, or at another position, than before."""

    order_id: str
    kind: str
    from_vehicle: str
    to_vehicle: str
    from_position: int
    to_position: int


class EtaShift(BaseModel):
    """A stop whose planned service start moved by ``shift_s`` seconds (positive = later)."""

    order_id: str
    kind: str
    vehicle_id: str
    old_start_s: int
    new_start_s: int
    shift_s: int


class PlanChanges(BaseModel):
    """The difference between the previous plan and the re-optimised one."""

    stops_moved: list[StopMove] = Field(default_factory=list)
    eta_shifts: list[EtaShift] = Field(default_factory=list)
    added: list[str] = Field(default_factory=list, description="stops only in the new plan")
    removed: list[str] = Field(default_factory=list, description="stops only in the old plan")
    newly_unassigned: list[str] = Field(default_factory=list)
    num_moved: int = 0
    num_eta_shifted: int = 0
    max_eta_shift_s: int = 0

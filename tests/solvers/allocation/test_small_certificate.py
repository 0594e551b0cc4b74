"""The reduced-cost certificate of a small batch's pool MIP answer (session 58)."""

from __future__ import annotations

from solvers.allocation import AllocationParams, allocate
from solvers.allocation.literature import generate_literature


def test_a_fifty_order_literature_batch_is_certified_without_the_compact_mip() -> None:
    """Before session 58 the 50 orders of literature seed 1 went from the pool MIP's answer
    (1,518.32, its LP bound 1,515.70) to the compact MIP, which ran to the time limit at a
    gap of 0.12 %; the certificate (2,621 patterns within the threshold) proves 1,517.56
    optimal and the compact MIP is not started."""
    req = generate_literature(seed=1, num_orders=50)
    result = allocate(req, AllocationParams(mode="batch", time_limit_s=60.0, threads=1))
    assert result.status == "optimal"
    assert result.gap is not None and result.gap <= 1e-4
    notes = result.stats.notes
    assert any(n.startswith("reduced-cost certificate: bound") for n in notes), notes
    assert not any(n.startswith("compact MIP") for n in notes), notes


def test_a_wide_certificate_proves_what_the_narrow_one_left_to_the_compact_mip() -> None:
    """From SMALL_CERT_WIDE_ORDERS orders the threshold may reach 30 slacks: the 50 orders of
    literature seed 17, whose threshold was past the narrow 2.5 slacks (the compact MIP then
    ran to the 10 s limit: 1,403.36, feasible), are proved optimal by the certificate."""
    req = generate_literature(seed=17, num_orders=50)
    result = allocate(req, AllocationParams(mode="batch", time_limit_s=60.0, threads=1))
    assert result.status == "optimal"
    notes = result.stats.notes
    assert any(n.startswith("reduced-cost certificate: bound") for n in notes), notes
    assert not any(n.startswith("compact MIP") for n in notes), notes

"""The property tests' Hypothesis settings: no wall-clock deadline, no health check timing
the drawing of examples (``tests/conftest.py``)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, settings


def test_property_tests_have_no_deadline_unless_they_ask() -> None:
    """Hypothesis' default deadline (200 ms of wall clock per example) failed examples of
    0-15 ms on a held-up process; the suite's profile has none, and a test's own
    ``@settings`` keeps that unless it sets one."""
    assert settings.default is not None and settings.default.deadline is None
    assert settings(max_examples=5).deadline is None
    assert settings(deadline=timedelta(seconds=1)).deadline == timedelta(seconds=1)
    assert HealthCheck.too_slow in settings.default.suppress_health_check

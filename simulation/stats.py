"""Confidence intervals for replication outputs: means, paired differences, a decision rule."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from scenarios.plan import Estimate

LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A mean with a two-sided confidence interval (Student t over replications)."""

    mean: float
    low: float
    high: float
    n: int
    std: float

    def estimate(self) -> Estimate:
        """As the domain model's Estimate."""
        return Estimate(mean=self.mean, ci_low=self.low, ci_high=self.high, n=max(1, self.n))

    @property
    def informative(self) -> bool:
        """True with two or more replications (one value says nothing about its spread)."""
        return self.n >= 2

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of zero (never on one replication)."""
        return self.informative and (self.low > 0.0 or self.high < 0.0)

    def below(self, x: float) -> bool:
        """True when the whole interval lies below ``x`` (never on one replication)."""
        return self.informative and self.high < x


def mean_ci(
    values: Sequence[float] | np.ndarray,
    level: float = LEVEL,
    bounds: tuple[float, float] = (-math.inf, math.inf),
) -> Interval:
    """Mean and t-interval of independent replications.

    A single value gets a zero-width interval for display (``n`` = 1 says so), but it is no
    confidence statement: :attr:`Interval.excludes_zero` and :meth:`Interval.below` are False.
    ``bounds`` is the range the quantity can take (a rate's ``(0, 1)``, a count's
    ``(0, inf)``): the interval is cut to it, which keeps its coverage. Replications where the
    quantity is undefined (NaN, e.g. an on-time rate with no order due) are left out; ``n``
    counts the others, and with none the interval is NaN with ``n`` = 0. An infinite value is
    no measurement at all: it is a ValueError (it used to give an infinite mean inside a finite,
    cut interval).
    """
    x = np.asarray(values, dtype=np.float64)
    bad = np.flatnonzero(np.isinf(x))
    if bad.size:
        raise ValueError(
            f"replication {int(bad[0])} has an infinite value ({x[bad[0]]}): "
            "only finite values or NaN (undefined) can be summarised"
        )
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, math.nan)
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, mean, mean, 1, 0.0)
    std = float(x.std(ddof=1))
    half = float(sps.t.ppf(0.5 + level / 2.0, n - 1)) * std / math.sqrt(n)
    lo, hi = bounds
    return Interval(mean, max(lo, mean - half), min(hi, mean + half), n, std)


def paired_diff(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, level: float = LEVEL
) -> Interval:
    """CI of mean(a - b) over paired replications (same seeds: common random numbers).

    Pairs where either value is undefined (NaN) are left out.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in size: {x.shape} vs {y.shape}")
    return mean_ci(x - y, level)  # a NaN on either side makes the difference NaN: left out


def proportion_ci(successes: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    if n == 0:
        return (math.nan, math.nan)
    z = float(sps.norm.ppf(0.5 + level / 2.0))
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def fewer_note(n: int, replications: int) -> str:
    """`` (n=N)`` when an interval is over fewer than ``replications`` values, else ``""``.

    A KPI undefined on some replications (the on-time rate of a day with no order due) has
    its interval over the others: the tables say over how many.
    """
    return f" (n={n})" if n < replications else ""

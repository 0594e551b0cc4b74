"""Confidence intervals for replication outputs: means, paired differences, a decision rule.

Significance of a paired difference: the two-sided paired t-test (its 95% t-interval excludes
0), except when every pair differs by the same amount (zero spread): the t-interval is then
**degenerate** (zero width, no confidence statement) and the exact two-sided sign test decides
(p = 2 x 0.5^n, so n >= 6 replications at 95%). The comparisons of one KPI against the baseline
in one table form a family: :func:`holm_family` adjusts their p-values by Holm-Bonferroni and
the marks follow the adjusted decision; the intervals themselves stay unadjusted. A ratio of
two paired means (cost / baseline cost) has Fieller's interval (:func:`ratio_ci`): the ratios
the same paired t-test does not reject.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from scenarios.plan import Estimate, IntervalMethod

if TYPE_CHECKING:
    from types import ModuleType

LEVEL = 0.95


def _scipy_stats() -> ModuleType:
    """``scipy.stats``, imported when a first interval needs it (it takes ~2 s, which every
    ``dispatchlab`` command and benchmark script importing :mod:`simulation` paid at start)."""
    from scipy import stats

    return stats


@lru_cache(maxsize=4096)
def t_quantile(q: float, df: int) -> float:
    """The ``q`` quantile of Student's t with ``df`` degrees of freedom (remembered: a what-if
    table asks scipy for the same few thousands of times, ~0.1 ms each)."""
    return float(_scipy_stats().t.ppf(q, df))


#: A spread this small relative to the values' magnitude is rounding, not variation.
_REL_TOL = 1e-9


@dataclass(frozen=True)
class Interval:
    """A mean with a two-sided confidence interval (Student t over replications).

    ``degenerate``: two or more replications with no spread at all (every value, or every
    paired difference, the same); the t-interval is then [mean, mean], which says the
    replications agree, not that the mean is known exactly. ``method`` names how the
    interval was computed: ``t`` (Student t), or for a rate stuck at 0 or 1 on every day
    ``clopper-pearson-orders`` (the pooled order counts) or ``clopper-pearson-days``; ``none``
    below two values, where there is no interval (``low``/``high`` are then only the mean, or
    NaN with no value, placeholders that :meth:`estimate` and the reports do not show).
    """

    mean: float
    low: float
    high: float
    n: int
    std: float
    degenerate: bool = False
    level: float = LEVEL
    method: IntervalMethod = "t"

    def estimate(self) -> Estimate:
        """As the domain model's Estimate (with the interval's method; no bounds for ``none``;
        ``constant`` when the replications all gave the same value: :attr:`degenerate`)."""
        low, high = self.bounds
        return Estimate(
            mean=self.mean,
            ci_low=low,
            ci_high=high,
            n=max(1, self.n),
            method=self.method,
            constant=self.degenerate,
        )

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        """``(low, high)``, or ``(None, None)`` when there is no interval (method ``none``)."""
        return (None, None) if self.method == "none" else (self.low, self.high)

    @property
    def informative(self) -> bool:
        """True with two or more replications (one value says nothing about its spread)."""
        return self.n >= 2

    @property
    def p_value(self) -> float:
        """Two-sided p-value of "the expected value is 0" (NaN below two replications).

        The one-sample (paired) t-test over ``n - 1`` degrees of freedom; for a degenerate
        interval (no spread) the exact sign test: 1 when every value is 0, else 2 x 0.5^n.
        """
        return self.p_value_against(0.0)

    def p_value_against(self, x: float) -> float:
        """Two-sided p-value of "the expected value is ``x``" (see :attr:`p_value`)."""
        if not self.informative or math.isnan(self.mean):
            return math.nan
        if self.degenerate:
            same = abs(self.mean - x) <= _REL_TOL * max(1.0, abs(x), abs(self.mean))
            return 1.0 if same else sign_test_p(self.n)
        t = (self.mean - x) / (self.std / math.sqrt(self.n))
        return float(min(1.0, 2.0 * _scipy_stats().t.sf(abs(t), self.n - 1)))

    @property
    def excludes_zero(self) -> bool:
        """True when the difference from 0 is significant at ``level`` (never on one replication).

        Unadjusted: the interval lies on one side of zero, or, degenerate, the sign test
        rejects (all n values on one side of zero and 2 x 0.5^n < 1 - level).
        """
        return self.differs_from(0.0)

    def differs_from(self, x: float) -> bool:
        """True when the expected value differs significantly from ``x`` (unadjusted)."""
        if not self.informative:
            return False
        if self.degenerate:
            return self.p_value_against(x) < 1.0 - self.level
        return self.low > x or self.high < x

    def below(self, x: float) -> bool:
        """True when the expected value is significantly below ``x`` (never on one replication).

        The whole interval lies below ``x``; degenerate, every value is below ``x`` and the
        sign test rejects.
        """
        return self.differs_from(x) and self.mean < x


def mean_ci(
    values: Sequence[float] | np.ndarray,
    level: float = LEVEL,
    bounds: tuple[float, float] = (-math.inf, math.inf),
    *,
    scale: float = 0.0,
) -> Interval:
    """Mean and t-interval of independent replications.

    A single value has no interval: method ``none`` (``low``/``high`` hold the mean as
    placeholders; :attr:`Interval.bounds` and the Estimate give None), and
    :attr:`Interval.excludes_zero` and :meth:`Interval.below` are False.
    ``bounds`` is the range the quantity can take (a rate's ``(0, 1)``, a count's
    ``(0, inf)``): the interval is cut to it, which keeps its coverage. Replications where the
    quantity is undefined (NaN, e.g. an on-time rate with no order due) are left out; ``n``
    counts the others, and with none the interval is NaN with ``n`` = 0. An infinite value is
    no measurement at all: it is a ValueError (it used to give an infinite mean inside a finite,
    cut interval). Two or more values that are all the same (up to rounding relative to
    ``scale`` or their own magnitude) give a zero-width interval marked ``degenerate``.
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
        return Interval(math.nan, math.nan, math.nan, 0, math.nan, level=level, method="none")
    mean = float(x.mean())
    if n == 1:  # no spread to estimate: no interval (a t-interval needs two values)
        return Interval(mean, mean, mean, 1, 0.0, level=level, method="none")
    if _no_spread(x, scale):
        # every value the same: the t-interval has zero width and says nothing (degenerate)
        return Interval(mean, mean, mean, n, 0.0, degenerate=True, level=level)
    std = float(x.std(ddof=1))
    half = t_quantile(0.5 + level / 2.0, n - 1) * std / math.sqrt(n)
    lo, hi = bounds
    return Interval(mean, max(lo, mean - half), min(hi, mean + half), n, std, level=level)


def _no_spread(x: np.ndarray, scale: float) -> bool:
    """True when the values differ by no more than rounding (relative to ``scale``)."""
    tol = _REL_TOL * max(1.0, scale, float(np.max(np.abs(x))))
    return float(np.max(x) - np.min(x)) <= tol


def degenerate_mark(degenerate: bool, p_value: float | None) -> str:
    """`` †`` after a difference that was the same non-zero amount in every replication.

    Its t-interval is degenerate and the sign test decides; a difference of 0 every time
    (p = 1) is plainly no difference and gets no mark (its JSON still says ``degenerate``).
    """
    return " †" if degenerate and p_value is not None and p_value < 1.0 else ""


def sign_test_p(n: int) -> float:
    """Exact two-sided sign-test p-value when all ``n`` non-zero values have the same sign."""
    return min(1.0, 2.0 * 0.5**n)


def paired_diff(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, level: float = LEVEL
) -> Interval:
    """CI of mean(a - b) over paired replications (same seeds: common random numbers).

    Pairs where either value is undefined (NaN) are left out. Differences that are all the
    same (up to the rounding of the values subtracted) give a ``degenerate`` interval: its
    significance is the sign test's (:attr:`Interval.p_value`).
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in size: {x.shape} vs {y.shape}")
    finite = np.abs(np.concatenate([x, y]))
    finite = finite[np.isfinite(finite)]
    scale = float(finite.max()) if finite.size else 0.0
    # a NaN on either side makes the difference NaN: left out
    return mean_ci(x - y, level, scale=scale)


def rate_ci(
    rates: Sequence[float] | np.ndarray,
    totals: Sequence[float] | np.ndarray | None = None,
    level: float = LEVEL,
) -> Interval:
    """Mean and interval of a daily rate in [0, 1] (the on-time rate), over replications.

    The t-interval over the days' rates, cut to [0, 1] (:func:`mean_ci`). When every day
    with a defined rate (two or more) is at 0, or every one at 1, the t-interval collapses to
    a point; the interval is then the exact (Clopper-Pearson) binomial interval: over the
    pooled counts (``totals`` = each day's number of trials, e.g. orders due: k successes of
    N with k = 0 or N) when given for every such day, else over the days themselves (each
    day a trial that came out all-or-nothing), which bounds the expected daily rate without
    assuming orders independent. The mean stays the days' mean (0 or 1).
    """
    ci = mean_ci(rates, level, bounds=(0.0, 1.0))
    if not ci.degenerate or ci.mean not in (0.0, 1.0):
        return ci
    x = np.asarray(rates, dtype=np.float64)
    defined = ~np.isnan(x)
    trials = ci.n
    method: IntervalMethod = "clopper-pearson-days"
    if totals is not None:
        t = np.asarray(totals, dtype=np.float64)
        if t.shape == x.shape and np.all(np.isfinite(t[defined])) and np.all(t[defined] >= 1):
            trials, method = round(float(t[defined].sum())), "clopper-pearson-orders"
    low, high = clopper_pearson(trials if ci.mean == 1.0 else 0, trials, level)
    return Interval(ci.mean, low, high, ci.n, 0.0, degenerate=False, level=level, method=method)


def clopper_pearson(successes: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Exact (Clopper-Pearson) two-sided interval of a proportion."""
    if n <= 0:
        return (math.nan, math.nan)
    a = (1.0 - level) / 2.0
    beta = _scipy_stats().beta
    low = 0.0 if successes == 0 else float(beta.ppf(a, successes, n - successes + 1))
    high = 1.0 if successes == n else float(beta.ppf(1.0 - a, successes + 1, n - successes))
    return (low, high)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values of one family (NaN: not tested, not counted).

    With the m tested p-values sorted, p_(1) <= ... <= p_(m), the adjusted value of p_(i) is
    max over j <= i of min(1, (m - j + 1) p_(j)); rejecting where it is below alpha is Holm's
    step-down procedure, which keeps the chance of any false "significant" in the family at
    most alpha whatever the dependence between the comparisons.
    """
    tested = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
    m = len(tested)
    out = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(tested)):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


@dataclass(frozen=True)
class FamilyTest:
    """One comparison of a family: raw and Holm-adjusted p-values, the adjusted decision."""

    p_value: float | None
    p_adjusted: float | None
    significant: bool
    degenerate: bool
    family_size: int

    def as_json(self) -> dict[str, float | bool | int | None]:
        """The JSON fields of a comparison (``comparisons``: the Holm family's size)."""
        return {
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "significant": self.significant,
            "degenerate": self.degenerate,
            "comparisons": self.family_size,
        }


def holm_family(intervals: Sequence[Interval], level: float = LEVEL) -> list[FamilyTest]:
    """Holm-Bonferroni over one table's comparisons of one KPI with the baseline.

    Each interval is a paired difference (candidate minus baseline). Its p-value is the
    paired t-test's, or the sign test's for a degenerate one (:attr:`Interval.p_value`);
    comparisons without a test (fewer than two pairs, undefined) are not counted in the
    family and never significant. ``significant``: the Holm-adjusted p-value is below
    1 - ``level`` (the intervals stay unadjusted ``level`` intervals).
    """
    raw = [iv.p_value for iv in intervals]
    adjusted = holm(raw)
    size = sum(1 for p in raw if not math.isnan(p))
    alpha = 1.0 - level
    return [
        FamilyTest(
            p_value=None if math.isnan(p) else p,
            p_adjusted=None if math.isnan(q) else q,
            significant=not math.isnan(q) and q < alpha,
            degenerate=iv.degenerate,
            family_size=size,
        )
        for iv, p, q in zip(intervals, raw, adjusted, strict=True)
    ]


@dataclass(frozen=True)
class RatioInterval:
    """A ratio of two paired means, mean(a) / mean(b), with its Fieller interval.

    ``low``/``high`` are -inf/inf when the interval is unbounded (the denominator's mean is
    not significantly different from 0); NaN when the ratio is undefined (no pair, or
    mean(b) = 0). ``degenerate``: two or more pairs with a_i = ratio x b_i on every one (the
    interval is a point: the pairs agree). One pair gives [ratio, ratio] with ``n`` = 1, no
    confidence statement, as :func:`mean_ci`.
    """

    ratio: float
    low: float
    high: float
    n: int
    degenerate: bool = False
    level: float = LEVEL

    @property
    def bounded(self) -> bool:
        """True with two or more pairs and a finite interval."""
        return self.n >= 2 and math.isfinite(self.low) and math.isfinite(self.high)

    def pair(self) -> tuple[float, float] | None:
        """``(low, high)`` for a bounded interval, else None (JSON-ready)."""
        return (self.low, self.high) if self.bounded else None


def ratio_ci(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    level: float = LEVEL,
    *,
    nonnegative: bool = False,
) -> RatioInterval:
    """Fieller's interval of mean(a) / mean(b) over paired replications (same seeds).

    The interval is every ratio r that the paired t-test of "mean(a - r b) = 0" does not
    reject at ``level`` (n - 1 degrees of freedom): the test inverted, exact when the two
    means are jointly normal, and the same test as :func:`paired_diff`'s, so a target ratio
    outside the interval is one that ``paired_diff(a, r * b)`` finds significant. Writing
    r = R + d with R = mean(a) / mean(b) and e = a - R b, the condition is the quadratic
    d^2 (mean(b)^2 - q s_bb) + 2 d q s_eb - q s_ee <= 0 with q = t^2 / n; when
    mean(b)^2 <= q s_bb the set is unbounded (-inf, inf), except when a = R b on every pair
    (a policy against itself): the same ratio every day, the point [R, R] marked degenerate
    (every r then gives the same t, so the set was all or nothing by mean(b)'s own test: a
    policy against itself came out unbounded over days of noisy costs). Pairs with a NaN are
    left out. ``nonnegative``: the caller knows both quantities cannot be negative (costs),
    so neither can the ratio of their means: the interval is cut at 0 (its intersection with
    the ratios possible keeps its coverage).
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in size: {x.shape} vs {y.shape}")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if np.any(np.isinf(x)) or np.any(np.isinf(y)):
        raise ValueError("only finite values or NaN (undefined) can be summarised")
    n = int(x.size)
    mean_b = float(y.mean()) if n else 0.0
    if n == 0 or mean_b == 0.0:
        return RatioInterval(math.nan, math.nan, math.nan, n, level=level)
    ratio = float(x.mean()) / mean_b
    if n == 1:
        return RatioInterval(ratio, ratio, ratio, 1, level=level)
    e = x - ratio * y
    scale = float(max(np.max(np.abs(x)), np.max(np.abs(ratio * y))))
    if _no_spread(e, scale):  # the same ratio every day: zero width, as every constant interval
        return RatioInterval(ratio, ratio, ratio, n, True, level)
    s_bb = float(np.var(y, ddof=1))
    s_ee = float(np.var(e, ddof=1))
    s_eb = float(np.cov(e, y, ddof=1)[0, 1])
    q = float(_scipy_stats().t.ppf(0.5 + level / 2.0, n - 1)) ** 2 / n
    lead = mean_b * mean_b - q * s_bb
    if lead <= 0.0:
        return RatioInterval(ratio, -math.inf, math.inf, n, False, level)
    root = math.sqrt(q * q * s_eb * s_eb + lead * q * s_ee)
    low = ratio + (-q * s_eb - root) / lead
    high = ratio + (-q * s_eb + root) / lead
    if nonnegative:
        if np.any(x < 0.0) or np.any(y < 0.0):
            raise ValueError("nonnegative ratio of samples with a negative value")
        low = max(low, 0.0)
    return RatioInterval(ratio, min(low, ratio), max(high, ratio), n, False, level)


def proportion_ci(successes: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    if n == 0:
        return (math.nan, math.nan)
    z = float(_scipy_stats().norm.ppf(0.5 + level / 2.0))
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


#: A format spec split where the ``z`` option (no negative zero) goes: after fill, align, sign.
_SPEC = re.compile(r"(?P<head>(?:.?[<>=^])?[-+ ]?)z?(?P<tail>.*)", re.DOTALL)


#: Floats smaller than this in magnitude are shown as 0: floating-point residue of a value
#: that is 0 in exact arithmetic (no KPI, cost or rate the tables show is this small).
FORMAT_NOISE = 1e-12


def fmt_num(x: float, spec: str = "") -> str:
    """``format(x, spec)`` that never shows a negative zero or floating-point residue.

    A mean or difference that is 0 in exact arithmetic often comes out of floating point as
    ``-0.0`` or ``-1.9e-17``, and a small negative value rounds to zero at the precision shown
    (``-0.3`` cents as ``-0``); either printed a minus sign on a zero, and a ``g`` format
    printed the residue itself (``-1.85e-17``). Below :data:`FORMAT_NOISE` a float is shown
    as 0. Integers format as given.
    """
    if isinstance(x, int | np.integer):
        return format(x, spec)
    match = _SPEC.fullmatch(spec)
    assert match is not None  # the pattern matches any spec
    value = float(x)
    if abs(value) < FORMAT_NOISE:
        value = 0.0
    return format(value, f"{match['head']}z{match['tail']}")


#: What the tables write after an interval that is not the Student t-interval.
_METHOD_NOTES = {
    "clopper-pearson-orders": " (Clopper-Pearson, orders)",
    "clopper-pearson-days": " (Clopper-Pearson, days)",
}

#: What the tables write instead of ``[low, high]`` when there is no interval (method ``none``).
NO_INTERVAL = "[no CI: n=1]"

#: What the tables write after the zero-width interval of a KPI that had the same value in
#: every replication (``constant``): the replications agree, the value is not known exactly.
CONSTANT_NOTE = " (constant)"


def constant_explained(unit: str = "replication", other: str = "another day") -> str:
    """The tables' explanation of :data:`CONSTANT_NOTE`, one sentence (``unit``: what agreed,
    ``replication`` in the twin's tables, ``day`` in the RL evaluation's, ``seed`` in the
    allocation benchmark's; ``other``: what may differ)."""
    return (
        f"(constant): every {unit} gave this same value, so the interval has zero width; "
        f"that says the {unit}s agree, not that the value is known exactly (no confidence "
        f"statement: {other} may differ)."
    )


#: The twin's tables' explanation of :data:`CONSTANT_NOTE`, one sentence.
CONSTANT_EXPLAINED = constant_explained()


def zero_difference(mean: float) -> bool:
    """True for a mean difference that is 0 up to rounding.

    A constant difference that is 0 has the sign test's p = 1 (:meth:`Interval.p_value_against`
    with the same tolerance): plainly no difference, which the tables write unsigned,
    ``0 [0, 0] (constant)``, not ``+0 [+0, +0]``.
    """
    return abs(mean) <= _REL_TOL


def method_note(method: str | None) -> str:
    """`` (Clopper-Pearson, orders)`` (or ``days``) after an exact interval; ``""`` for ``t``.

    An on-time rate at 0 or 1 on every replication has the exact interval of the pooled
    orders due (or of the days) instead of the t-interval: the tables say so next to it.
    """
    return _METHOD_NOTES.get(method or "t", "")


def interval_text(
    low: float | None,
    high: float | None,
    spec: str = "",
    method: str | None = None,
    *,
    constant: bool | None = False,
) -> str:
    """``[low, high]`` and its method's note, or :data:`NO_INTERVAL` without an interval;
    :data:`CONSTANT_NOTE` after the zero-width interval of a KPI ``constant`` over the
    replications."""
    if method == "none" or low is None or high is None:
        return NO_INTERVAL
    flat = CONSTANT_NOTE if constant else ""
    return f"[{fmt_num(low, spec)}, {fmt_num(high, spec)}]{method_note(method)}{flat}"


def fewer_note(n: int, replications: int) -> str:
    """`` (n=N)`` when an interval is over fewer than ``replications`` values, else ``""``.

    A KPI undefined on some replications (the on-time rate of a day with no order due) has
    its interval over the others: the tables say over how many.
    """
    return f" (n={n})" if n < replications else ""

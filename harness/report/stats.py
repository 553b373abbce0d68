"""The statistics behind aebench's tables: means with confidence intervals, paired differences.

The unit of replication is the identity: a talking-head benchmark generalises over people, and
the seeds of one identity share that identity, so they are not independent repeats. The report
averages the seeds of each identity first and computes over the identities (the caller does the
averaging; this module sees one value per unit). Frames of one video are never repeats either:
they share every source of run-to-run variation. There are few units, so intervals use Student's
t (``n - 1`` degrees of freedom), exact for normal noise and honest about small ``n``; a single
unit has no interval at all.

Two rows are compared on the *same* units by their element-wise differences:
:func:`paired_difference` gives the mean difference with its t interval and a two-sided
sign-flip permutation p-value (exact for up to ``max_exact`` pairs, Monte Carlo beyond), which
needs no normality assumption. A table's comparisons are one family: :func:`holm` adjusts their
p-values (Holm's step-down, by ``statsmodels``), and a difference is *resolved* exactly when its
adjusted p is below :data:`ALPHA`. :func:`resolvable_difference` says beforehand what a column
could resolve at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: the family-wise error rate of a table's comparisons (Holm-adjusted p below it: "resolved")
ALPHA = 0.05
#: what one table entry generalises over: a target identity at one grid point; its seeds are
#: averaged first (they share the identity, so they are not independent repeats)
UNIT_KEYS = ("identity", "clip_seconds", "iters", "audio")
_REL_TOL = 1e-12
_CHUNK = 1 << 15


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` repeats with its confidence interval (``None`` when there is none)."""

    mean: float
    low: float | None
    high: float | None
    n: int

    @property
    def half(self) -> float | None:
        """Half width of the interval, or ``None`` when there is no interval."""
        if self.low is None or self.high is None:
            return None
        return (self.high - self.low) / 2.0


@dataclass(frozen=True)
class Difference(Interval):
    """Mean of paired differences ``a - b`` with its interval and permutation p-value."""

    p: float | None

    def interval_excludes_zero(self) -> bool:
        """True when an interval exists and excludes 0. Not the verdict: a table's verdict is the
        Holm-adjusted sign-flip p (:func:`holm`, :class:`~aebench.harness.report.tables.Comparison`)."""
        if self.low is None or self.high is None:
            return False
        return self.low > 0.0 or self.high < 0.0


def _as_float(values: Sequence[float | None] | np.ndarray) -> np.ndarray:
    """A flat float array with None as NaN."""
    return np.array([np.nan if v is None else v for v in np.asarray(values, dtype=object).ravel()], dtype=float)


def mean_ci(values: Sequence[float | None] | np.ndarray, level: float = 0.95) -> Interval:
    """Mean and Student-t confidence interval of ``values`` (NaN/None dropped).

    ``mean ± t_{(1+level)/2, n-1} * s / sqrt(n)`` with ``s`` the ``ddof=1`` standard deviation.
    One value gives no interval; no value raises :class:`ValueError`; infinite values give an
    infinite mean and no interval.
    """
    x = _as_float(values)
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        raise ValueError("mean_ci: no values (all missing)")
    if not np.all(np.isfinite(x)):
        return Interval(float(np.mean(x)), None, None, n)
    if np.all(x == x[0]):
        m = float(x[0])
        return Interval(m, None, None, n) if n == 1 else Interval(m, m, m, n)
    m = float(np.mean(x))
    half = float(stats.t.ppf((1.0 + level) / 2.0, n - 1) * np.std(x, ddof=1) / math.sqrt(n))
    return Interval(m, m - half, m + half, n)


def _count_extreme(d: np.ndarray, signs: np.ndarray, observed: float) -> int:
    means = np.abs(signs @ d) / d.size
    return int(np.count_nonzero(means >= observed - _REL_TOL * observed))


def _sign_flip_p(d: np.ndarray, max_exact: int, resamples: int, seed: int) -> float:
    n = d.size
    observed = abs(float(np.mean(d)))
    if n == 1 or np.all(d == 0):
        return 1.0
    if n <= max_exact:
        total, k, shifts = 1 << n, 0, np.arange(n, dtype=np.int64)
        for start in range(0, total, _CHUNK):
            idx = np.arange(start, min(start + _CHUNK, total), dtype=np.int64)[:, None]
            k += _count_extreme(d, 1.0 - 2.0 * ((idx >> shifts) & 1), observed)
        return k / total
    rng, k = np.random.default_rng(seed), 0
    for start in range(0, resamples, _CHUNK):
        m = min(_CHUNK, resamples - start)
        k += _count_extreme(d, rng.choice(np.array([-1.0, 1.0]), size=(m, n)), observed)
    return (k + 1) / (resamples + 1)


def paired_difference(
    a: Sequence[float | None] | np.ndarray,
    b: Sequence[float | None] | np.ndarray,
    level: float = 0.95,
    max_exact: int = 20,
    resamples: int = 100_000,
    seed: int = 0,
) -> Difference:
    """Mean of ``a - b`` over element-wise pairs, its t interval and a sign-flip p-value.

    Pairs where either side is NaN/None are dropped. The p-value is two-sided for the mean of
    the differences under random sign flips: exact over all ``2**n`` sign vectors when
    ``n <= max_exact``, otherwise Monte Carlo with ``resamples`` draws, ``(k+1)/(R+1)``.
    No pair raises :class:`ValueError`; one pair gives ``p = 1`` and no interval.
    """
    x, y = _as_float(a), _as_float(b)
    if x.shape != y.shape:
        raise ValueError(f"paired_difference: lengths differ ({x.size} vs {y.size})")
    keep = ~(np.isnan(x) | np.isnan(y))
    d = x[keep] - y[keep]
    if d.size == 0:
        raise ValueError("paired_difference: no complete pairs")
    ci = mean_ci(d, level)
    p = _sign_flip_p(d, max_exact, resamples, seed) if np.all(np.isfinite(d)) else None
    return Difference(ci.mean, ci.low, ci.high, ci.n, p)


def t_interval_note(level: float = 0.95) -> str:
    """One-line table footnote saying what ``mean ± half`` means."""
    return (
        f"mean and {level * 100:g}% confidence interval over identities (Student t, n-1 degrees "
        "of freedom); n = identities with a value (the seeds of an identity are averaged first; "
        "frames are never repeats); a single identity has no interval"
    )


def pooled_sd(groups: Sequence[Sequence[float | None]]) -> tuple[float | None, int]:
    """Pooled within-group standard deviation ``sqrt(sum (n_i - 1) s_i^2 / sum (n_i - 1))`` and
    its degrees of freedom, over groups of repeats that differ only in the seed (NaN/None and
    infinite values dropped; groups of fewer than 2 values add nothing). ``(None, 0)`` when no
    group has 2 values. This is the run-to-run noise of one setup, apart from the differences
    between the groups (rows, identities)."""
    ss, dof = 0.0, 0
    for g in groups:
        x = _as_float(g)
        x = x[np.isfinite(x)]
        if x.size >= 2:
            ss += float(np.sum((x - x.mean()) ** 2))
            dof += int(x.size) - 1
    return (math.sqrt(ss / dof), dof) if dof else (None, 0)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values of one family of tests (``statsmodels``'
    ``multipletests(method="holm")``), in the order given; ``[]`` for no tests."""
    if len(pvalues) == 0:
        return []
    from statsmodels.stats.multitest import multipletests

    return [float(v) for v in multipletests(np.asarray(pvalues, dtype=float), alpha=ALPHA, method="holm")[1]]


def smallest_sign_flip_p(n: int) -> float:
    """The smallest two-sided sign-flip p-value ``n`` pairs can give (all of one sign): ``2 / 2**n``."""
    return min(1.0, 2.0 / (1 << n)) if n >= 1 else 1.0


def resolvable_difference(sd: float | None, n: int, family: int, alpha: float = ALPHA) -> float | None:
    """The smallest mean paired difference a column could resolve, a t approximation:
    ``t_{1 - alpha/(2 m), n-1} * sd / sqrt(n)``, the half width of the t interval at Holm's first
    (strictest) step, with ``sd`` the measured standard deviation of the paired differences, ``n``
    pairs and ``m = family`` tests (the verdict itself is the sign-flip test's, which also needs the
    differences of nearly every unit to share their sign). ``inf`` when no difference can be
    resolved at all: the sign-flip test's smallest adjusted p ``m * 2 / 2**n`` is not below
    ``alpha``, fewer than 2 pairs, or no test. None when ``sd`` is unknown."""
    if n < 2 or family < 1 or family * smallest_sign_flip_p(n) >= alpha:
        return math.inf
    if sd is None:
        return None
    return float(stats.t.ppf(1.0 - alpha / (2.0 * family), n - 1) * sd / math.sqrt(n))


def unit_means(cells: Sequence[dict], value) -> list[float]:
    """One value per unit (:data:`UNIT_KEYS`) of ``cells``: the mean over its seeds of
    ``value(cell)`` (None or NaN: no value; a unit without any value is left out)."""
    groups: dict[tuple, list[float]] = {}
    for c in cells:
        v = value(c)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        groups.setdefault(tuple(str(c.get(k)) for k in UNIT_KEYS), []).append(float(v))
    return [float(np.mean(g)) for g in groups.values()]

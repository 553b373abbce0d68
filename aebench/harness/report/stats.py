"""The statistics behind aebench's tables: means with confidence intervals, paired differences.

A table entry's repeats are whole runs -- training seeds and/or target identities -- never the
frames of one video. Frames of one clip are strongly correlated and share every source of
run-to-run variation (initialisation, data order, the identity itself), so treating them as
samples would give intervals far too narrow to mean anything. The unit of replication is
therefore the run, and there are few of them: intervals use Student's t over the repeats
(``n - 1`` degrees of freedom), which is exact for normal run-to-run noise and honest about
small ``n``; a single run has no interval at all.

Two methods are compared on the *same* runs (same identity, same seed) by their element-wise
differences: :func:`paired_difference` gives the mean difference with its t interval and a
two-sided sign-flip permutation p-value (exact for up to ``max_exact`` pairs, Monte Carlo
beyond), which needs no normality assumption.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

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

    def resolved(self) -> bool:
        """True when an interval exists and excludes 0 (the sign of the difference is settled)."""
        if self.low is None or self.high is None:
            return False
        return self.low > 0.0 or self.high < 0.0


def _as_float(values: Sequence[float | None] | np.ndarray) -> np.ndarray:
    """A flat float array with None as NaN."""
    return np.array([np.nan if v is None else v for v in np.asarray(values, dtype=object).ravel()],
                    dtype=float)


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


def paired_difference(a: Sequence[float | None] | np.ndarray, b: Sequence[float | None] | np.ndarray,
                      level: float = 0.95, max_exact: int = 20, resamples: int = 100_000,
                      seed: int = 0) -> Difference:
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
    return (f"mean and {level * 100:g}% confidence interval over repeats (Student t, n-1 degrees "
            "of freedom); n = runs with a value; a single run has no interval")


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

"""Statistics behind the tables, checked against scipy on known inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from aebench.harness.report.stats import Difference, Interval, mean_ci, paired_difference, t_interval_note

ARRAYS = [[21.5, 23.0], [0.31, 0.29, 0.35], [30.1, 29.4, 31.7, 30.0, 28.9, 30.6, 29.9]]


@pytest.mark.parametrize("level", [0.9, 0.95])
@pytest.mark.parametrize("x", ARRAYS)
def test_mean_ci_matches_scipy_t_interval(x, level):
    x = np.asarray(x)
    low, high = stats.t.interval(level, x.size - 1, loc=x.mean(), scale=stats.sem(x))
    ci = mean_ci(x, level)
    assert isinstance(ci, Interval) and ci.n == x.size
    assert ci.mean == pytest.approx(x.mean(), abs=1e-12)
    assert ci.low == pytest.approx(low, abs=1e-12) and ci.high == pytest.approx(high, abs=1e-12)
    assert ci.half == pytest.approx((high - low) / 2, abs=1e-12)


def test_mean_ci_level_changes_width():
    assert mean_ci(ARRAYS[2], 0.9).half < mean_ci(ARRAYS[2], 0.95).half


def test_mean_ci_drops_missing_and_edge_cases():
    full = mean_ci([1.0, 2.0, 4.0])
    gappy = mean_ci([1.0, float("nan"), 2.0, None, 4.0])
    assert gappy == full and gappy.n == 3
    one = mean_ci([3.5, None, float("nan")])
    assert (one.mean, one.low, one.high, one.n, one.half) == (3.5, None, None, 1, None)
    with pytest.raises(ValueError):
        mean_ci([None, float("nan")])
    with pytest.raises(ValueError):
        mean_ci([])
    same = mean_ci([0.1, 0.1, 0.1])
    assert same.mean == same.low == same.high == 0.1 and same.half == 0.0
    inf = mean_ci([1.0, math.inf])
    assert inf.mean == math.inf and inf.low is None and inf.high is None and inf.n == 2


def scipy_sign_flip_p(d) -> float:
    res = stats.permutation_test(
        (np.asarray(d, dtype=float),),
        statistic=lambda x, axis: np.mean(x, axis=axis),
        permutation_type="samples",
        n_resamples=np.inf,
        alternative="two-sided",
    )
    return float(res.pvalue)


D_ARRAYS = [
    [0.5, 1.2, 0.9],
    [1.0, -0.4, 2.2, 0.8],
    [0.3, 0.3, -0.3, 0.6, 0.0],  # ties and a zero
    [1.0, -1.0, 2.0, -2.0],  # mean exactly 0
    [0.12, 0.05, 0.2, -0.03, 0.08, 0.15],
    [2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0],  # all flips distinct only by count
    [0.4, -0.1, 0.0, 0.0, 0.7, 0.2, -0.2, 0.5],
    [1.5, 0.7, -0.2, 0.9, 1.1, 0.3, 0.8, -0.5, 1.4, 0.6],
]


@pytest.mark.parametrize("d", D_ARRAYS)
def test_exact_p_matches_scipy_sign_flip(d):
    a = np.asarray(d) + 10.0
    b = np.full(len(d), 10.0)
    diff = paired_difference(np.asarray(d), np.zeros(len(d)))
    assert isinstance(diff, Difference)
    assert diff.p == pytest.approx(scipy_sign_flip_p(d), abs=1e-12)
    shifted = paired_difference(a, b)  # differences formed from a - b, not given directly
    assert shifted.p == pytest.approx(scipy_sign_flip_p(a - b), abs=1e-12)


def test_known_exact_p_values():
    assert paired_difference([1.0, 2.0, 3.0], [0.0, 0.0, 0.0]).p == pytest.approx(2 / 8)
    assert paired_difference([1.0] * 10, [0.0] * 10).p == pytest.approx(2 / 1024)


def test_interval_is_mean_ci_of_differences():
    a = [30.1, 29.4, 31.7, 30.0, 28.9]
    b = [29.0, 29.5, 30.2, 29.1, 28.0]
    for level in (0.9, 0.95):
        diff = paired_difference(a, b, level=level)
        ci = mean_ci(np.subtract(a, b), level)
        assert (diff.mean, diff.low, diff.high, diff.n) == (ci.mean, ci.low, ci.high, ci.n)


def test_monte_carlo_close_to_exact():
    d = D_ARRAYS[-1]
    exact = paired_difference(d, [0.0] * len(d)).p
    mc = paired_difference(d, [0.0] * len(d), max_exact=3, resamples=200_000, seed=1)
    assert mc.p != exact and abs(mc.p - exact) < 0.01
    again = paired_difference(d, [0.0] * len(d), max_exact=3, resamples=200_000, seed=1)
    assert again.p == mc.p  # seeded
    lowest = paired_difference([1.0] * 16, [0.0] * 16, max_exact=5, resamples=50)
    assert lowest.p == pytest.approx(1 / 51)  # (k+1)/(R+1): no draw as extreme, yet never 0
    assert (mc.p * 200_001) == pytest.approx(round(mc.p * 200_001))


def test_resolved():
    clear = paired_difference([5.1, 5.3, 4.9, 5.2, 5.0], [1.0, 1.1, 0.9, 1.2, 1.0])
    assert clear.interval_excludes_zero() and clear.low > 0 and clear.p == pytest.approx(2 / 32)
    worse = paired_difference([1.0, 1.1, 0.9, 1.2, 1.0], [5.1, 5.3, 4.9, 5.2, 5.0])
    assert worse.interval_excludes_zero() and worse.high < 0
    noisy = paired_difference([1.0, 3.0, 2.0, 2.5], [2.0, 1.0, 2.6, 2.1])
    assert not noisy.interval_excludes_zero() and noisy.low < 0 < noisy.high
    single = paired_difference([2.0], [1.0])
    assert single.p == 1.0 and single.low is None and single.high is None and not single.interval_excludes_zero()
    zeros = paired_difference([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert zeros.p == 1.0 and zeros.mean == 0.0 and not zeros.interval_excludes_zero()


def test_unpaired_values_dropped():
    full = paired_difference([1.0, 2.0, 3.5, 4.0], [0.5, 1.0, 1.5, 2.0])
    gappy = paired_difference([1.0, float("nan"), 2.0, 3.5, 7.0, 4.0], [0.5, 9.0, 1.0, 1.5, None, 2.0])
    assert gappy == full and gappy.n == 4
    with pytest.raises(ValueError):
        paired_difference([1.0, None], [None, 2.0])
    with pytest.raises(ValueError):
        paired_difference([1.0, 2.0], [1.0])


def test_note():
    note = t_interval_note()
    assert "95%" in note and "Student t" in note and "\n" not in note
    assert "90%" in t_interval_note(0.9)


def test_pooled_sd_is_the_anova_within_group_sd():
    import numpy as np
    from scipy import stats as sps

    from aebench.harness.report.stats import pooled_sd

    groups = [[1.0, 2.0, 4.0], [10.0, 10.5], [7.0], [3.0, None, 5.0]]
    full = [[v for v in g if v is not None] for g in groups]
    multi = [g for g in full if len(g) > 1]
    # within-group mean square of a one-way ANOVA: its residual variance
    f, _ = sps.f_oneway(*multi)
    grand = np.concatenate(multi)
    between = sum(len(g) * (np.mean(g) - grand.mean()) ** 2 for g in multi) / (len(multi) - 1)
    sd, dof = pooled_sd(groups)
    assert dof == sum(len(g) - 1 for g in multi) == 4
    assert abs(between / sd**2 - f) < 1e-9
    assert pooled_sd([[1.0], [2.0]]) == (None, 0)

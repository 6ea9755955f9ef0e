"""Statistics over replicates, checked by hand and against closed forms (issue 15, item 4)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from abm.statistics import (
    bootstrap_ci,
    point_table,
    replicates_needed,
    sobol_samples_needed,
)


def test_bootstrap_interval_matches_the_normal_theory_for_many_replicates():
    # 400 draws of N(10, 2²): the mean's 95 % interval is about ±1.96·2/20 = ±0.196
    x = np.random.default_rng(1).normal(10.0, 2.0, 400)
    lo, hi = bootstrap_ci(x, n_boot=20_000, seed=3)
    assert (hi - lo) / 2 == pytest.approx(1.96 * x.std(ddof=1) / 20, rel=0.08)
    assert lo < x.mean() < hi
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)  # seeded: reproducible


def test_point_table_by_hand():
    runs = pd.DataFrame(
        {
            "point": [0, 0, 0, 1, 1, 2],
            "param_margin_rate": [0.1, 0.1, 0.1, 0.2, 0.2, 0.3],
            "y": [1.0, 2.0, 3.0, 10.0, float("nan"), 5.0],
        }
    )
    t = point_table(runs, ["y"], n_boot=2_000).set_index("point")
    assert t.loc[0, "n"] == 3 and t.loc[0, "mean"] == 2.0 and t.loc[0, "sd"] == 1.0
    assert t.loc[0, "se"] == pytest.approx(1 / math.sqrt(3))
    # t(0.975, 2) = 4.302653
    assert t.loc[0, "t_hi"] - 2.0 == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    assert 1.0 <= t.loc[0, "ci_lo"] <= 2.0 <= t.loc[0, "ci_hi"] <= 3.0
    assert t.loc[1, "n"] == 1 and "1 of 2 runs NaN" in t.loc[1, "note"]
    assert math.isnan(t.loc[1, "t_lo"]) and "no interval" in t.loc[2, "note"]


def test_replicates_needed_by_hand():
    # the pilot 1, 2, 3 has sd 1
    n = replicates_needed([1.0, 2.0, 3.0], half_width=0.5)
    # smallest n with t(n−1)·1/√n ≤ 0.5: n = 18 (t(17) = 2.1098, 2.1098/√18 = 0.4973;
    # n = 17: t(16) = 2.1199, /√17 = 0.5142)
    assert n == 18
    with pytest.raises(ValueError, match="half_width"):
        replicates_needed([1.0, 2.0], 0.0)


def test_sobol_samples_needed():
    assert sobol_samples_needed(64, 0.05) == 64  # already adequate
    # widest 0.4 at N = 64: N·(0.4/0.1)² = 1024
    assert sobol_samples_needed(64, 0.4) == 1024
    assert sobol_samples_needed(64, 0.45) == 2048  # 1296 → the next power of 2

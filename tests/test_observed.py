"""The record ships with the repository, and the facts measured on it agree with the measurement
made independently when the series were collected (experiments/observed/README.md, the shared
data's README): the same numbers to the table's rounding."""

from __future__ import annotations

import pandas as pd
import pytest

from abm.observed import daily_facts, load_series

# (n returns, kurtosis daily, kurtosis 5-day, Hill top 2.5 %, ACF r lag 1, ACF |r| lags 1/10/50/100)
RECORDED = {
    "wti": (10_223, 24.4, 6.5, 2.74, -0.02, (0.26, 0.21, 0.07, 0.05)),
    "brent": (9_957, 60.5, 12.9, 2.92, 0.01, (0.27, 0.23, 0.07, 0.03)),
}


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_the_facts_of_the_record_match_the_independent_measurement(name):
    n, kurt, kurt5, hill, acf1, acf_abs = RECORDED[name]
    f = daily_facts(load_series(name))
    assert f["n_returns"] == n
    assert f["excess_kurtosis"] == pytest.approx(kurt, abs=0.05)
    assert f["excess_kurtosis_x5"] == pytest.approx(kurt5, abs=0.05)
    assert f["hill_tail_index"] == pytest.approx(hill, abs=0.005)
    assert f["acf_returns_lag1"] == pytest.approx(acf1, abs=0.005)
    for lag, want in zip((1, 10, 50, 100), acf_abs, strict=True):
        assert f[f"acf_abs_returns_lag{lag}"] == pytest.approx(want, abs=0.005)


def test_the_april_2020_prints_are_in_the_wti_series():
    s = load_series("wti")
    assert s.loc[pd.Timestamp("2020-04-20")] == pytest.approx(-36.98)
    assert s.loc[pd.Timestamp("2020-04-21")] == pytest.approx(8.91)
    assert s.index.is_monotonic_increasing


def test_an_unknown_series_is_refused_with_the_allowed_names():
    with pytest.raises(ValueError, match=r"series = 'cl': allowed \['brent', 'wti'\]"):
        load_series("cl")

"""Stylized-fact estimators against known distributions, and the default market's returns."""

import numpy as np
import pytest

from abm.metrics import autocorr, hill_tail_index, stylized_facts


def test_hill_recovers_a_pareto_tail_index():
    rng = np.random.default_rng(0)
    x = rng.pareto(3.0, 200_000) + 1.0  # classical Pareto, tail index 3
    assert hill_tail_index(x, 0.02) == pytest.approx(3.0, rel=0.08)


def test_hill_of_gaussian_is_thin_tailed():
    x = np.random.default_rng(1).standard_normal(200_000)
    assert hill_tail_index(x, 0.02) > 4.5


def test_autocorrelation_of_ar1():
    rng = np.random.default_rng(2)
    e = rng.standard_normal(100_000)
    x = np.empty_like(e)
    x[0] = 0
    for i in range(1, len(e)):
        x[i] = 0.5 * x[i - 1] + e[i]
    assert autocorr(x, 1) == pytest.approx(0.5, abs=0.01)
    assert autocorr(x, 2) == pytest.approx(0.25, abs=0.015)


def test_stylized_facts_of_a_random_walk():
    rng = np.random.default_rng(3)
    p = 100 * np.exp(np.cumsum(0.001 * rng.standard_normal(50_000)))
    f = stylized_facts(p)
    assert abs(f["acf_returns_lag1"]) < 0.02 and abs(f["acf_abs_returns_lag10"]) < 0.02
    assert abs(f["excess_kurtosis"]) < 0.1


def test_a_chain_that_starts_at_a_zero_price_has_no_relative_move_and_says_why():
    # negative prices allowed: the futures sit at 0 when a liquidation chain starts, so its
    # move relative to the price before it is not defined (found by the fuzz test, seed 142)
    from abm.metrics import UNEXPLAINED, cascades, explain_nan

    liq = np.array([0, 0, 5, 3, 0, 0])
    price = np.array([1.0, 0.0, 5.0, -5.0, 0.0, 0.0])
    c = cascades(liq, price, gap=1)
    assert len(c) == 1 and c["lots"].iloc[0] == 8 and np.isnan(c["price_move"].iloc[0])
    notes = explain_nan({"max_cascade_price_move": float("nan"), "notes": ""})
    assert "price before every liquidation chain was 0" in notes and UNEXPLAINED not in notes

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


def test_volatility_ratio_by_hand():
    from abm.metrics import volatility_ratio

    rng = np.random.default_rng(7)
    spot = 50 * np.exp(np.cumsum(0.01 * rng.standard_normal(2_000)))
    # futures = spot squared: every log return is exactly twice spot's
    assert volatility_ratio(spot**2, spot) == pytest.approx(2.0, rel=1e-12)
    # a constant premium on the log scale (futures = 1.1 x spot) moves exactly as spot does
    assert volatility_ratio(1.1 * spot, spot) == pytest.approx(1.0, rel=1e-12)
    # a return with a non-positive end is dropped from both series, not clipped
    f = np.array([10.0, 11.0, -1.0, 12.0, 13.2, 13.2])
    s = np.array([10.0, 10.5, 10.0, 11.0, 11.0, 12.1])
    kept_f = np.log([11 / 10, 13.2 / 12, 13.2 / 13.2])
    kept_s = np.log([10.5 / 10, 11 / 11, 12.1 / 11])
    want = kept_f.std(ddof=1) / kept_s.std(ddof=1)
    assert volatility_ratio(f, s) == pytest.approx(want, rel=1e-12)
    assert np.isnan(volatility_ratio(f, np.full(6, 10.0)))  # spot does not move
    assert np.isnan(volatility_ratio(f[:2], s[:2]))  # one return is not a deviation


def test_ordinary_market_facts_report_volatility_against_spot_at_two_scales():
    from abm.build import harvest_start_step
    from abm.metrics import ordinary_market_facts, volatility_ratio
    from abm.model import MarketModel
    from abm.scenarios import load

    cfg = load("default", {"calendar.trading_days": 12, "retail.n_traders": 100})
    run = MarketModel(cfg).run()
    start = harvest_start_step(cfg)
    ts = run.timeseries
    fut, spot = ts["futures"].to_numpy()[:start], ts["spot"].to_numpy()[:start]
    got = ordinary_market_facts(run, "futures", 5)
    assert got["vol_ratio_to_spot"] == pytest.approx(volatility_ratio(fut[::5], spot[::5]))
    spd = cfg.calendar.steps_per_day
    closes = [d * spd + spd - 1 for d in range(start // spd)]  # by hand: 99, 199, ...
    want = volatility_ratio(fut[closes], spot[closes])
    assert got["vol_ratio_to_spot_daily"] == pytest.approx(want)
    assert got["vol_ratio_to_spot_daily"] > 0

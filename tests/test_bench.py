"""The benchmark harness (``abm bench``): what it measures, not how fast. Speed itself is never
asserted in the suite; BENCHMARKS.md records it."""

from __future__ import annotations

import numpy as np
import pytest

from abm.bench import bench_book, bench_scenario, book_stream, loglog_slope, plot_scaling


def test_book_stream_is_fixed_and_has_the_stated_mix():
    a, b = book_stream(20_000), book_stream(20_000)
    assert a == b  # the same events every time: runs on different days compare
    assert book_stream(20_000, seed=1) != a
    kinds = [e[0] for e in a]
    # 60 % limit, 25 % cancel, 15 % market: binomial sd at n = 20,000 is under 0.4 points
    assert abs(kinds.count(0) / len(a) - 0.60) < 0.015
    assert abs(kinds.count(1) / len(a) - 0.25) < 0.015
    assert abs(kinds.count(2) / len(a) - 0.15) < 0.015
    assert {e[4] for e in a} == set(range(50))  # 50 accounts


def test_book_benchmark_reports_median_and_spread():
    r = bench_book(5_000, repeat=3)
    assert r["events"] == 5_000 and r["repeat"] == 3
    assert r["events_per_second_worst"] <= r["events_per_second"] <= r["events_per_second_best"]
    assert r["events_per_second"] == pytest.approx(5_000 / r["seconds_median"])


def test_loglog_slope_recovers_the_power():
    xs = [1_000, 10_000, 100_000]
    assert loglog_slope(xs, [3e-4 * x for x in xs]) == pytest.approx(1.0)
    assert loglog_slope(xs, [2.0 * x**2 for x in xs]) == pytest.approx(2.0)
    assert loglog_slope(xs, [5.0, 5.0, 5.0]) == pytest.approx(0.0, abs=1e-12)


def test_scenario_benchmark_runs_in_a_fresh_process_and_balances_the_ledger():
    r = bench_scenario(
        "small",
        {"calendar.trading_days": 6, "calendar.forced_close_lead_days": 2},
        repeat=1,
    )
    assert r["wall_seconds_median"] > 0
    assert abs(r["ledger_residual"]) < 1e-6
    # the crowd's clock fires Binomial(n_traders, activity) times a step, every step: the
    # small scenario's 200 traders at 3 % over 240 steps, within 5 binomial sds of the mean
    from abm.scenarios import load

    cfg = load("small", {"calendar.trading_days": 6, "calendar.forced_close_lead_days": 2})
    n_steps = cfg.calendar.trading_days * cfg.calendar.steps_per_day
    mean = n_steps * cfg.retail.n_traders * cfg.retail.activity
    sd = (n_steps * cfg.retail.n_traders * cfg.retail.activity * (1 - cfg.retail.activity)) ** 0.5
    assert abs(r["activations"] - mean) < 5 * sd
    assert r["activations_per_second"] == pytest.approx(r["activations"] / r["wall_seconds_median"])
    # the peak includes the interpreter and imports measured alone
    assert r["peak_rss_mb"] > r["imports_rss_mb"] > 0
    assert r["model_rss_mb"] == pytest.approx(r["peak_rss_mb"] - r["imports_rss_mb"])


def test_scaling_plot_is_written(tmp_path):
    scaling = {
        "retail_traders": [{"n": n, "wall_seconds": n / 1000} for n in (1_000, 10_000)],
        "slope_traders": 1.0,
        "steps_per_day": [{"steps": s, "wall_seconds": s / 100} for s in (50, 100)],
        "slope_steps": 1.0,
    }
    out = plot_scaling(scaling, tmp_path / "scaling.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # with the million point, the netted crowd's series and issue 24's targets are drawn too
    million = {
        "n": 1_000_000,
        "slope_traders": 0.5,
        "target_seconds": 60.0,
        "by_size": [{"n": n, "wall_seconds": n**0.5 / 10} for n in (10_000, 100_000, 1_000_000)],
    }
    both = plot_scaling(scaling, tmp_path / "million.png", million)
    assert both.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert both.read_bytes() != out.read_bytes()


def test_bench_names_an_unknown_benchmark():
    from abm.bench import run_all

    with pytest.raises(
        ValueError, match="--only milion: allowed book, default, scaling, sweep, million"
    ):
        run_all(only=["milion"])


def test_the_million_point_runs_the_scaled_market_and_states_its_targets():
    """The same measurement at 2,000 traders: a market scaled to that crowd, the crowd's clock
    firing Binomial(2,000, 1 %) times in each of its 4,000 steps (80,000 ± 280) where attention
    is off (the coarse-tick market; `default`'s clock follows the market's moves), the ledger
    balanced, and the issue's targets (60 s, 4 GB) carried with the result."""
    from abm.bench import bench_million
    from abm.scenarios import load

    r = bench_million(2_000, sizes=2, scenario="default_coarse_tick")
    cfg = load("default_coarse_tick")
    assert cfg.retail.attention == 0 and r["scenario"] == "default_coarse_tick"
    steps = cfg.calendar.trading_days * cfg.calendar.steps_per_day
    p = cfg.retail.activity
    mean, sd = 2_000 * p * steps, (2_000 * p * (1 - p) * steps) ** 0.5
    assert r["n"] == 2_000 and abs(r["activations"] - mean) < 5 * sd
    assert abs(r["ledger_residual"]) < 1e-6
    assert (r["target_seconds"], r["target_peak_mb"], r["target_slope"]) == (60.0, 4096.0, 1.0)
    assert r["peak_rss_mb"] > 0 and r["wall_seconds"] > 0
    # the fast path's point, with its cost measured at a tenth of the size too
    assert r["engine"] == "netted" and [p["n"] for p in r["by_size"]] == [200, 2_000]
    t = [p["wall_seconds"] for p in r["by_size"]]
    assert r["slope_traders"] == pytest.approx(np.log(t[1] / t[0]) / np.log(10))


def test_bench_names_a_bad_sweep_size():
    from abm.bench import run_all

    with pytest.raises(ValueError, match=r"sweep_runs = 1: allowed a whole number of runs >= 2"):
        run_all(only=["sweep"], sweep_runs=1)

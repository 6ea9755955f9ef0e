"""Spot processes: seeded, with the moments their closed forms give."""

import numpy as np
import pytest

from abm.config import SpotConfig
from abm.spot import csv_path, fair_value, gbm_path, make_spot_path, ou_path, resample


def test_gbm_log_returns_have_the_closed_form_moments():
    rng = np.random.default_rng(0)
    mu, sigma, dt, n = 0.02, 0.3, 0.01, 200_000
    p = gbm_path(50.0, mu, sigma, n, dt, rng)
    r = np.diff(np.log(p))
    assert p[0] == 50.0
    # mean (μ − σ²/2)·dt = −0.00025, sd σ·√dt = 0.03; standard error of the mean 6.7e-5
    assert r.mean() == pytest.approx((mu - sigma**2 / 2) * dt, abs=4 * 0.03 / np.sqrt(n))
    assert r.std() == pytest.approx(sigma * np.sqrt(dt), rel=0.01)


def test_ou_reverts_to_its_mean_with_stationary_variance():
    rng = np.random.default_rng(1)
    kappa, vol, dt, n = 2.0, 3.0, 0.05, 200_000
    p = ou_path(120.0, 100.0, kappa, vol, n, dt, rng)
    tail = p[5000:]
    assert tail.mean() == pytest.approx(100.0, abs=0.3)
    assert tail.var() == pytest.approx(vol**2 / (2 * kappa), rel=0.05)  # 2.25


def test_ou_jumps_move_the_price():
    rng = np.random.default_rng(2)
    calm = ou_path(100.0, 100.0, 0.0, 0.0, 1000, 0.01, np.random.default_rng(2))
    assert np.all(calm == 100.0)
    jumpy = ou_path(
        100.0, 100.0, 0.0, 0.0, 1000, 0.01, rng, jump_intensity=5.0, jump_mean=-0.01, jump_std=0.0
    )
    # Poisson(5 per day × 10 days) jumps of −1 % each: about 50, each a factor 0.99
    n_jumps = round(np.log(jumpy[-1] / 100.0) / np.log(0.99))
    assert 25 < n_jumps < 80


def test_same_seed_same_path_and_kinds():
    cfg = SpotConfig(kind="gbm", initial=10.0, volatility=0.02)
    a = make_spot_path(cfg, 100, 10, np.random.default_rng(5))
    b = make_spot_path(cfg, 100, 10, np.random.default_rng(5))
    assert len(a) == 101 and np.array_equal(a, b)
    assert np.all(
        make_spot_path(SpotConfig(kind="constant", initial=7.0), 3, 1, np.random.default_rng())
        == 7.0
    )


def test_csv_path(tmp_path):
    f = tmp_path / "spot.csv"
    f.write_text("spot\n" + "\n".join(str(100 + i) for i in range(6)))
    assert list(csv_path(f, 4)) == [100, 101, 102, 103, 104]
    with pytest.raises(ValueError, match="has 6 rows, the run needs 11"):
        csv_path(f, 10)
    (tmp_path / "bad.csv").write_text("price\n1\n")
    with pytest.raises(ValueError, match="needs a 'spot' column"):
        csv_path(tmp_path / "bad.csv", 0)
    with pytest.raises(FileNotFoundError, match="not found"):
        csv_path(tmp_path / "missing.csv", 0)


def test_fair_value_carry():
    assert fair_value(100.0, 0.001, 10) == pytest.approx(101.0)
    assert fair_value(100.0, 0.001, -3) == 100.0


def test_resample_places_each_observation_on_its_step():
    # 3 daily closes over a 2-day run of 4 steps a day: closes sit on steps 0, 4, 8 and
    # the steps between are straight lines (hand-computed)
    out = resample([100.0, 104.0, 96.0], 8)
    assert list(out) == [100, 101, 102, 103, 104, 102, 100, 98, 96]
    with pytest.raises(ValueError, match="observation 1 is nan"):
        resample([1.0, float("nan"), 2.0], 4)
    with pytest.raises(ValueError, match="at least 2"):
        resample([1.0], 4)


def test_a_daily_csv_drives_a_run(tmp_path):
    from abm.model import MarketModel
    from abm.scenarios import load

    cfg = load("small")
    days, spd = cfg.calendar.trading_days, cfg.calendar.steps_per_day
    closes = [100.0 + 0.5 * d for d in range(days + 1)]
    f = tmp_path / "daily.csv"
    rows = (f"2020-04-{d + 1:02d},{c}" for d, c in enumerate(closes))
    f.write_text("date,spot\n" + "\n".join(rows))
    with pytest.raises(ValueError, match="spot.csv_resample = true"):
        MarketModel(load("small", {"spot.kind": "csv", "spot.csv_path": str(f)}))
    m = MarketModel(
        load("small", {"spot.kind": "csv", "spot.csv_path": str(f), "spot.csv_resample": True})
    )
    # each session's last step carries that day's close; half-way through a session, half-way
    assert [m.spot_path[d * spd] for d in range(days + 1)] == closes
    assert m.spot_path[spd // 2] == pytest.approx(100.0 + 0.5 * (spd // 2) / spd)


def test_a_blank_or_bad_row_is_refused_not_dropped(tmp_path):
    f = tmp_path / "gap.csv"
    f.write_text("spot\n100\n101\n   \n103\n104\n")
    with pytest.raises(ValueError, match=r"gap.csv'.*data row 3 \(line 4\) of 'spot' is"):
        csv_path(f, 4)
    f.write_text("spot\n100\nabc\n102\n")
    with pytest.raises(ValueError, match="data row 2 .* is 'abc'"):
        csv_path(f, 3)


def test_a_csv_below_zero_says_so(tmp_path):
    from abm.model import MarketModel
    from abm.scenarios import load

    f = tmp_path / "neg.csv"
    f.write_text("spot\n100\n50\n-1\n")
    cfg = load("small", {"spot.kind": "csv", "spot.csv_path": str(f), "spot.csv_resample": True})
    with pytest.raises(ValueError, match=r"neg.csv'.*reaches a price <= 0 at step"):
        MarketModel(cfg)

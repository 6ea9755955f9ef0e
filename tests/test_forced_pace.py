"""The broker's desk works the forced closes through the session: an even slice of what is
left over the steps left, shared pro rata among the accounts; the default sends all at once."""

from __future__ import annotations

import math

import numpy as np
import pytest

from abm.build import calendar
from abm.config import ConfigError
from abm.exchange.broker import slice_pro_rata
from abm.model import MarketModel
from abm.scenarios import load


def test_slice_pro_rata_by_hand():
    # 5 of (3, 1, 6): exact shares 1.5, 0.5, 3 → floors 1, 0, 3; the one lot left goes to the
    # largest remainder, 0.5 twice, the earlier account first
    assert slice_pro_rata([3, 1, 6], 5) == [2, 0, 3]
    assert slice_pro_rata([3, 1, 6], 10) == [3, 1, 6]
    assert slice_pro_rata([3, 1, 6], 99) == [3, 1, 6]
    assert slice_pro_rata([4, 4], 3) == [2, 1]
    assert slice_pro_rata([0, 7], 2) == [0, 2]


def test_a_window_that_outlasts_the_day_is_refused_with_its_bounds():
    with pytest.raises(ConfigError, match=r"forced_close_window_steps = 10.*allowed 1\.\.5"):
        load(
            "wti_2020", {"calendar.forced_close_step": 95, "calendar.forced_close_window_steps": 10}
        )


@pytest.mark.slow
def test_the_desk_sends_even_slices_and_is_done_at_the_window_end():
    start, window = 90, 10
    cfg = load(
        "wti_2020",
        {
            "retail.n_traders": 200,
            "calendar.forced_close_step": start,
            "calendar.forced_close_window_steps": window,
            "calendar.forced_close_auction": False,
        },
    )
    run = MarketModel(cfg).run()
    cal = calendar(cfg)
    ts = run.timeseries
    d = cal.deadline_step
    left = int(ts["net_retail"].iloc[d - 1])  # the crowd is long only: all of it is sold
    assert left > 2 * window
    for k in range(window):
        want = math.ceil(left / (window - k))  # by hand: what is left over the steps left
        assert ts["forced_volume"].iloc[d + k] == want, k
        left -= want
        assert ts["net_retail"].iloc[d + k] == left
    assert left == 0 and (ts["net_retail"].iloc[d + window :] == 0).all()
    assert abs(run.summary["ledger_residual"]) < 1e-3
    # the session's low can now lie below its settlement (the VWAP of the last two steps)
    day = ts["futures"].to_numpy()[cal.deadline_day * cal.steps_per_day :][: cal.steps_per_day]
    assert run.summary["min_price_deadline_day"] == pytest.approx(np.nanmin(day))
    assert run.summary["min_price_deadline_day"] <= run.summary["settlement_deadline_day"]


def test_late_share_of_the_deadline_session_by_hand():
    from types import SimpleNamespace

    import pandas as pd

    from abm.metrics import _late_share

    # 3 days of 10 steps, the deadline on day 1; the last 20 % of its steps are 18 and 19
    cal = SimpleNamespace(deadline_day=1, steps_per_day=10)
    day = SimpleNamespace
    ex = SimpleNamespace(
        calendar=cal, days=[day(day=0, settlement=10.0), day(day=1, settlement=0.0)]
    )
    futures = [10.0] * 10 + [10, 9, 8, 7, 6, 5, 5, 4, 2, 0] + [1.0] * 10
    ts = pd.DataFrame({"futures": futures})
    # before the late part (step 17) the price was 4: 4 of the fall of 10 came late
    assert _late_share(ex, ts) == pytest.approx(0.4)
    ex.days[1].settlement = 10.0  # no move: nothing to share
    assert math.isnan(_late_share(ex, ts))


@pytest.mark.slow
def test_shipped_wti_desk_works_the_settlement_window_and_the_fall_comes_late():
    """The shipped wti_2020: the desk closes the crowd at the settlement by working CME's
    two-minute window (steps 98 and 99) in two marketable slices. Each slice sweeps the book,
    so the session's lowest print lies below the settlement (the slices' VWAP), and the
    session's fall comes in its last 20 minutes, with no price typed in."""
    cfg = load("wti_2020", {"seed": 1})
    assert not cfg.calendar.forced_close_auction and cfg.calendar.forced_close_window_steps == 2
    run = MarketModel(cfg).run()
    cal = calendar(cfg)
    ts, d = run.timeseries, cal.deadline_step
    assert d % cal.steps_per_day == 98
    left = int(ts["net_retail"].iloc[d - 1])
    assert left > 0
    # by hand: half of what is left (rounded up), then the rest
    assert ts["forced_volume"].iloc[d] == math.ceil(left / 2)
    assert ts["forced_volume"].iloc[d + 1] == left - math.ceil(left / 2)
    assert ts["net_retail"].iloc[d + 1] == 0
    days = run.days.set_index("day")["settlement"]
    prev, settle = days[cal.deadline_day - 1], days[cal.deadline_day]
    session = ts["futures"].to_numpy()[cal.deadline_day * cal.steps_per_day :][: cal.steps_per_day]
    assert np.nanmin(session) < settle - 1.0  # the low lies well below the settlement
    assert settle < prev - 20.0  # and the session fell
    # more than half of the fall came after 14:10 (step 80): the price before it had fallen
    # less than half-way from the previous settlement
    before = session[cal.steps_per_day - 21]
    assert before - settle > 0.5 * (prev - settle)
    assert abs(run.summary["ledger_residual"]) < 1e-6 * run.summary["turnover"] + 1e-6

"""Finite liquidity, leverage tied to margin, the margin schedule, exchange discretion and
liquidation cascades (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest

from abm.build import calendar
from abm.config import ConfigError, RunConfig
from abm.exchange import BUY
from abm.metrics import cascades
from abm.model import MarketModel
from abm.scenarios import load


def quiet_market(**kw) -> MarketModel:
    """Only the hedger quotes: 3 levels of 100 lots a side from fair ± 2 ticks around a
    constant spot of 100, topped up by 20 lots a step after fills; nobody else trades."""
    return MarketModel(
        load(
            "small",
            {
                "retail.n_traders": 0,
                "market_maker.enabled": False,
                "commercials.open_interest": 0,
                "commercials.capacity": 0,
                "commercials.soft_capacity": 0,
                "commercials.cost_slope": 0.0,
                "commercials.activity": 0.0,
                "spot.kind": "constant",
                "hedger.quote_size": 100,
                "hedger.quote_levels": 3,
                "hedger.depth_refill": 20,
                "hedger.risk_limit": None,
                "contract.price_limit": 0.10,
                **kw,
            },
        )
    )


def _asks(m: MarketModel) -> list[tuple[int, int]]:
    return m.exchange.book.depth(-1, 10)


def _buy(m: MarketModel, lots: int):
    ex = m.exchange
    acc = getattr(m, "_taker", None) or ex.open_account("test", True, 1e12)
    m._taker = acc
    return ex.submit(acc, BUY, lots, None, "market", "open", check_margin=False)


def test_order_flow_walks_the_book_and_depth_recovers_at_the_refill_rate():
    m = quiet_market()
    for _ in range(5):
        m.step()
    assert _asks(m) == [(102, 100), (103, 100), (104, 100)]
    r = _buy(m, 300)  # walks all three levels: 100 lots each at 102, 103 and 104
    assert [(t.price, t.qty) for t in r.trades] == [(102, 100), (103, 100), (104, 100)]
    assert m.exchange.book.last_price == 104 and m.exchange.book.best_ask is None
    # the hedger shows 20 more lots each step, best level first, until it is full again
    for k in range(1, 17):
        m.step()
        shown = sum(q for _, q in _asks(m))
        assert shown == min(300, 20 * k), k
        assert _asks(m)[0][0] == 102  # the best price is back; the depth behind it is not
    # the same order k steps after a sweep walks less: at k = 5, 100 lots sit at 102
    m2 = quiet_market()
    for _ in range(5):
        m2.step()
    _buy(m2, 300)
    for _ in range(5):
        m2.step()
    r2 = _buy(m2, 100)
    assert {t.price for t in r2.trades} == {102}


def test_the_risk_limit_makes_the_hedger_quote_less_and_wider_on_the_exposure_side():
    # room = 11,650 / (2.33 × 1 % × 100 × 10) = 500 lots at the reference volatility
    m = quiet_market(**{"hedger.risk_limit": 11_650.0, "hedger.depth_refill": 0})
    for _ in range(5):
        m.step()
    assert m.hedger.risk_room() == pytest.approx(500)
    _buy(m, 300)  # the hedger is now 300 short
    m.step()
    # 300 of 500 used: 200 lots offered, 2 × 300/500 → 2 ticks wider; bids untouched
    assert _asks(m) == [(104, 100), (105, 100)]
    assert m.exchange.book.depth(1, 10) == [(98, 100), (97, 100), (96, 100)]
    _buy(m, 200)
    m.step()
    assert m.hedger.account.net == -500 and _asks(m) == []  # at the limit: nothing offered
    assert sum(q for _, q in m.exchange.book.depth(1, 10)) == 300


def test_after_a_large_move_the_hedger_quotes_less(tmp_path):
    # spot jumps 5 % within the day: the hedger requotes around it, the volatility it sees
    # (the mid-price's move since the last settlement) jumps, its room shrinks in proportion,
    # and with 150 lots short it offers only what is left of it
    path = tmp_path / "spot.csv"
    n = 15 * 40 + 1
    path.write_text("spot\n" + "\n".join("100" if i < 10 else "105" for i in range(n)))
    m = quiet_market(
        **{
            "spot.kind": "csv",
            "spot.csv_path": str(path),
            "hedger.risk_limit": 11_650.0,
            "hedger.depth_refill": 0,
        }
    )
    for _ in range(5):
        m.step()
    _buy(m, 150)
    m.step()
    assert sum(q for _, q in _asks(m)) == 300  # 350 allowed, 300 is all it shows
    while m.step_index < 12:
        m.step()
    assert m.vol_daily > 0.025  # from 1 %
    assert m.hedger.risk_room() == pytest.approx(5 / m.vol_daily, rel=0.05)  # 500 × 1 % / vol
    assert sum(q for _, q in _asks(m)) < 50  # was 300 before the move


def test_relative_step_ups_move_with_the_base():
    for base, expected in ((0.05, (0.05, 0.10, 0.15)), (0.20, (0.20, 0.25, 0.30))):
        cfg = RunConfig().with_updates(
            {
                "margin.rate": base,
                "margin.step_ups": [
                    {"days_before_last": 10, "add": 0.05},
                    {"days_before_last": 3, "multiply": 1.5},
                ],
            }
        )
        cal = calendar(cfg)
        last = cal.last_day
        assert cal.scheduled_margin_rate(last - 11) == pytest.approx(expected[0])
        assert cal.scheduled_margin_rate(last - 10) == pytest.approx(expected[1])
        assert cal.scheduled_margin_rate(last - 3) == pytest.approx(base * 1.5)
    # the absolute form (an exchange's table) stays, and one form is required
    cfg = RunConfig().with_updates({"margin.step_ups": [{"days_before_last": 3, "rate": 0.25}]})
    assert calendar(cfg).scheduled_margin_rate(cfg.calendar.trading_days - 1) == 0.25
    with pytest.raises(ConfigError, match="exactly one of rate"):
        RunConfig().with_updates({"margin.step_ups": [{"days_before_last": 3}]})
    with pytest.raises(ConfigError, match="must be <= 1"):
        RunConfig().with_updates(
            {"margin.rate": 0.6, "margin.step_ups": [{"days_before_last": 3, "add": 0.5}]}
        )


def test_exchange_discretion_widens_the_band_after_a_locked_session():
    # seed 000's example, the harvest waiting for the band: after the first locked session
    # (90) the next band is 10 + 3 = 13 %: ⌈90 × 0.87⌉ = 79, then ⌈79 × 0.87⌉ = 69 on the last
    # day, where the hedger buys the 200 lots: a discount of 31 (27 without discretion)
    m = MarketModel(load("seed_example", {"discretion.enabled": True}))
    r = m.run()
    days = r.days.set_index("day")
    assert list(days.loc[[7, 8], "settlement"]) == [90.0, 79.0]
    assert days.loc[7, "discretion"] and days.loc[8, "discretion"]
    assert r.summary["harvest_discount"] == pytest.approx(31)
    # and margins 2 points higher in the sessions after a locked one
    assert days.loc[7, "margin_rate"] == pytest.approx(0.12)


def test_cascades_by_hand():
    liq = np.array([0, 5, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 2])
    price = np.array([100, 99, 98, 97, 95, 96, 97, 98, 99, 100, 100, 100, 101], float)
    c = cascades(liq, price, gap=2)
    # steps 1 and 4 are 3 apart (a quiet spell of 2): one chain of 8 lots, from 100 down to 95
    assert list(c["lots"]) == [8.0, 2.0] and list(c["steps"]) == [2, 1]
    assert c.loc[0, "price_move"] == pytest.approx(-0.05)
    assert list(c["start"]) == [1, 12]


def test_liquidations_move_the_price_in_the_cascade_scenario():
    s = MarketModel(load("cascade")).run().summary
    assert s["n_cascades"] >= 5
    assert s["max_cascade_lots"] > 1000 and s["max_cascade_price_move"] > 0.03
    assert s["n_intraday_liquidations"] > 0


# -- margin matters (paired seeds) -------------------------------------------------------------

SEEDS = range(1, 11)


def _runs(rate: float) -> list[dict]:
    return [
        MarketModel(load("small", {"margin_rate": rate, "seed": s})).run().summary for s in SEEDS
    ]


def test_margin_moves_positions_and_liquidations_in_the_predicted_direction():
    low, high = _runs(0.05), _runs(0.20)

    def paired(key, f=lambda x: x):
        d = np.array([f(a[key]) - f(b[key]) for a, b in zip(low, high, strict=True)])
        return d.mean(), d.std(ddof=1) / np.sqrt(len(d))

    # margin used <= equity: a quarter of the margin allows four times the lots
    mean, se = paired("retail_lots_opened")
    assert mean > 2 * se and mean > 0
    ratio = np.mean(
        [a["retail_lots_opened"] / b["retail_lots_opened"] for a, b in zip(low, high, strict=True)]
    )
    assert 3.0 < ratio < 4.5
    # larger positions, more fragile: the step-ups (+5 and +10 points) triple a 5 % margin but
    # raise a 20 % one by half, so more calls and liquidations at the low margin
    for key in ("n_margin_calls", "n_liquidations"):
        mean, se = paired(key)
        assert mean > 2 * se and mean > 0, key
    mean, se = paired("ndnp_at_deadline", abs)
    assert mean > 0

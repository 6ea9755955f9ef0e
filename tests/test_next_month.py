"""Two listed months: the next month trades in its own book under the same clearing rules, a
calendar spread earns a margin credit, the front's storer sells forward what it buys, a rolling
fund moves its lots from the front to the next month, and the storage curve bounds the spread."""

from __future__ import annotations

import math

import pytest

from abm.config import ConfigError, RunConfig, inert
from abm.exchange.clearing import ClearingHouse, spread_lots
from abm.model import MarketModel
from abm.scenarios import load


def test_spread_lots_by_hand():
    # long 5 here against short 3 in the other month: 3 lots are a spread
    assert spread_lots(5, 0, 0, 3) == 3
    # long 5 / short 2 here, long 1 / short 3 there: min(5, 3) + min(2, 1)
    assert spread_lots(5, 2, 1, 3) == 4
    # the same direction in both months is no spread
    assert spread_lots(4, 0, 7, 0) == 0


def test_the_spread_credit_lowers_margin_and_calls_by_hand():
    front = ClearingHouse(multiplier=10.0, fee_per_lot=0.0)
    nxt = ClearingHouse(multiplier=10.0, fee_per_lot=0.0, maintenance_ratio=1.0)
    nxt.spread_credit = 0.75
    f_long = front.open_account("commercial", True, 1e6)
    f_short = front.open_account("hedger", True, 1e6)
    front.apply_fill(f_long, f_short, 6, 100.0, False, False, 100.0, "ordinary", fees=False)
    n_short = nxt.open_account("commercial", True, 0.0)
    n_long = nxt.open_account("market_maker", True, 1e6)
    nxt.apply_fill(n_long, n_short, 10, 100.0, False, False, 100.0, "ordinary", fees=False)
    # unpaired: 10 lots × 100 × 10 × 0.1 = 1,000
    assert nxt.margin_used(n_short, 100.0, 0.1) == pytest.approx(1000.0)
    n_short.pair, f_long.pair = f_long, n_short
    # 6 of its 10 lots offset the front's long 6: 10 − 0.75 × 6 = 5.5 lots margined → 550
    assert nxt.margin_lots(n_short) == pytest.approx(5.5)
    assert nxt.margin_used(n_short, 100.0, 0.1) == pytest.approx(550.0)
    # the front's own margin is the outright one (the credit is the next month's)
    assert front.margin_used(f_long, 100.0, 0.1) == pytest.approx(600.0)
    # calls use the same lots: equity 549 is called, 551 is not
    nxt.deposit(n_short, 549.0)
    nxt.mark_to_market(100.0)
    assert n_short in nxt.issue_margin_calls(100.0, 0.1)
    assert n_short.call_amount == pytest.approx(1.0)
    nxt.deposit(n_short, 2.0)
    assert n_short not in nxt.issue_margin_calls(100.0, 0.1)


def test_next_month_fields_are_checked_and_inert_without_it():
    with pytest.raises(ConfigError, match=r"next_month.fund_lots = 50.*enabled = true"):
        load("wti_2020", {"next_month.fund_lots": 50})
    with pytest.raises(ConfigError, match=r"next_month.fund_roll_days = 5.*allowed 1\.\.3"):
        load(
            "wti_2020_spread",
            {
                "next_month.fund_lots": 50,
                "next_month.fund_roll_start_days": 3,
                "next_month.fund_roll_days": 5,
            },
        )
    with pytest.raises(ConfigError, match=r"next_month.fund_roll_start_days = 30.*allowed 1\.\.18"):
        load("wti_2020_spread", {"next_month.fund_lots": 50, "next_month.fund_roll_start_days": 30})
    with pytest.raises(ConfigError, match="next_month.spread_credit"):
        load("wti_2020_spread", {"next_month.spread_credit": 1.5})
    off = inert(RunConfig())
    assert "next_month.carry" in off and "next_month.depth_slope" in off
    on = inert(load("wti_2020_spread"))
    assert "next_month.carry" not in on and "next_month.fund_roll_days" in on


def small(fund: bool = True, **more):
    """wti_2020_spread at a fifth of its size, with a rolling fund (or none)."""
    roll = {
        "next_month.fund_lots": 300,
        "next_month.fund_roll_start_days": 4,
        "next_month.fund_roll_days": 2,
    }
    return load(
        "wti_2020_spread",
        {
            "retail.n_traders": 200,
            "commercials.open_interest": 2400,
            "calendar.trading_days": 8,
            **(roll if fund else {}),
            **more,
        },
    )


@pytest.fixture(scope="module")
def stepped():
    """A small two-month run stepped by hand, with what the tests read recorded each step."""
    model = MarketModel(small(), rng=3)
    fund = model.next_month.fund
    link = model.next_month.storage
    rows = []
    while model.step_index < model.n_steps:
        s = model.step_index
        model.step()
        rows.append(
            dict(
                step=s,
                fund_front=fund.account.long,
                fund_next=fund.next_account.long,
                unhedged=link.unhedged() if not model.exchange.expired else 0,
            )
        )
    return model, rows


def test_both_months_keep_their_invariants(stepped):
    model, _ = stepped
    nx = model.next_exchange
    ch = nx.clearing
    assert ch.open_interest == sum(a.long for a in ch.accounts) == sum(a.short for a in ch.accounts)
    assert ch.open_interest > 0  # the next month trades on after the front's expiry
    s = model.result.summary
    assert abs(s["ledger_residual"]) < model.exchange.clearing.money_tolerance(ledger=True)
    assert abs(s["next_ledger_residual"]) < ch.money_tolerance(ledger=True)
    assert s["next_open_interest_final"] == ch.open_interest
    # the summary's spread is the two settlements of the deadline's session
    dday = model.exchange.calendar.deadline_day
    front = next(d.settlement for d in model.exchange.days if d.day == dday)
    nxt = next(d.settlement for d in nx.days if d.day == dday)
    assert s["calendar_spread_deadline_day"] == pytest.approx(front - nxt)
    assert s["next_settlement_deadline_day"] == pytest.approx(nxt)
    ts = model.result.timeseries
    assert (ts["calendar_spread"] == ts["futures"] - ts["next_futures"]).all()


def test_the_fund_rolls_in_its_window_and_ends_in_the_next_month(stepped):
    model, rows = stepped
    cal = model.exchange.calendar
    fund = model.next_month.fund
    start = (cal.deadline_day - 4) * cal.steps_per_day
    end = start + 2 * cal.steps_per_day
    before = [r for r in rows if r["step"] < start]
    assert all(r["fund_front"] == 300 and r["fund_next"] == 0 for r in before)
    # every step of the window sells ⌈left / steps left⌉ (the book is deep enough here)
    left = 300
    for r in rows[start:end]:
        left -= math.ceil(left / (end - r["step"]))
        assert r["fund_front"] == left, r["step"]
        assert r["fund_next"] == 300 - left, r["step"]
    assert fund.account.long == 0 and fund.next_account.long == 300
    assert model.result.summary["fund_rolled_lots"] == 300
    # it was never forced: no lot of it was left at the deadline
    assert rows[cal.deadline_step - 1]["fund_front"] == 0


def test_the_storer_sells_forward_what_it_stores(stepped):
    model, rows = stepped
    # after each step's hedge its front purchases beyond its opening position are sold forward
    assert all(r["unhedged"] == 0 for r in rows[:-1])
    c = model.commercials[0]
    assert c.storage is not None and c.direction > 0
    assert model.result.summary["storage_hedge_lots_at_deadline"] > 0


def test_the_storage_curve_bounds_the_spread():
    """No-arbitrage: the front cannot clear below the storer's value of a delivered lot (June's
    bid, at most June's fair value) by more than its marginal storage cost of the last lot it
    holds (it would buy, store and sell forward first). Its whole ladder rests in the book
    (show_levels = 0): an iceberg's hidden levels do not meet the forced closes. The desk works
    the settlement window, so each step's fills are held to that step's value."""
    model = MarketModel(small(fund=False, **{"commercials.show_levels": 0}), rng=4)
    c = model.commercials[0]
    cal = model.exchange.calendar
    d = cal.deadline_step
    while model.step_index < d:
        model.step()
    # its ladder groups lots into levels `step` ticks apart, each at its last lot's price, and
    # is rebuilt when its value has moved half a level: a fill may sit 1.5 levels lower
    spacing = c.ladder(1, model.lots_without_delivery_rights()).step
    value = {}  # step -> what a delivered lot is worth to it as that step's forced closes arrive
    window = model.cfg.calendar.forced_close_window_steps
    while model.step_index < d + window:
        value[model.step_index] = c.fair
        model.step()
    model.run()
    s = model.result.summary
    fills = model.exchange.forced_fills
    assert fills and {step for step, _, _ in fills} <= set(value)
    held = c.base + s["storage_hedge_lots_at_deadline"]  # lots it holds after the deadline
    tick = model.exchange.contract.tick_size
    slack = c.curve.marginal(held) + (1.5 * spacing + 2) * tick + 1e-9
    for step, _, price in fills:
        assert price >= value[step] - slack, step
    # and the fall is real: the harvest pushed May below June by more than the storage rent
    assert s["calendar_spread_deadline_day"] < -c.curve.cost


def test_one_month_runs_have_no_next_month():
    run = MarketModel(load("wti_2020", {"retail.n_traders": 100, "calendar.trading_days": 6})).run()
    assert "calendar_spread_deadline_day" not in run.summary
    assert "next_futures" not in run.timeseries


def test_the_storer_quotes_its_next_lot_at_its_marginal_cost():
    """Once its cheap room is used, its first level sits one tick inside the next lot's
    marginal cost below its value (not at the flat cost), and it meets its margin calls."""
    model = MarketModel(small(fund=False), rng=5)
    c = model.commercials[0]
    d = model.exchange.calendar.deadline_step
    while model.step_index <= d + 1:
        model.step()
    held = c.account.net
    assert held > c.curve.soft_limit  # the harvest pushed it beyond its cheap room
    tick = model.exchange.contract.tick_size
    cost = c.curve.cost + c.curve.slope * (held + 1 - c.curve.soft_limit)
    want = math.ceil((c.fair - cost) / tick - 1e-9) - 1
    assert c._first_tick(1) == want
    assert want < math.ceil((c.fair - c.curve.cost) / tick - 1e-9) - 1
    assert c.account.n_liquidations == 0 and c.storage.account.n_liquidations == 0


@pytest.mark.slow
def test_the_storer_meets_its_calls_where_an_unhedged_commercial_is_liquidated():
    """20 April: May's settlement far below zero calls the long commercial. Storing against
    June it pays (its futures hedge barrels it holds); with one month it is liquidated."""
    deposits, liquidated = {}, {}
    for name in ("wti_2020_spread", "wti_2020"):
        model = MarketModel(load(name), rng=1)
        c = model.commercials[0]
        start = c.account.deposits
        end_of_deadline_day = (model.exchange.calendar.deadline_day + 1) * 100
        while model.step_index < end_of_deadline_day + 5:
            model.step()
        assert model.exchange.days[-1].settlement < 0  # the deadline session
        deposits[name] = c.account.deposits - start
        liquidated[name] = c.account.n_liquidations
    assert deposits["wti_2020_spread"] > 0 and liquidated["wti_2020_spread"] == 0
    assert deposits["wti_2020"] == 0 and liquidated["wti_2020"] == 1

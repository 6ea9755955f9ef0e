"""The exchange's day cycle: margin calls, liquidation, limit lock, forced close, delivery;
and a Hypothesis state machine holding the ledger to zero through random flows."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from abm.build import build_exchange
from abm.config import RunConfig
from abm.exchange import BUY, SELL


def cfg(**updates):
    base = {
        "calendar.trading_days": 5,
        "calendar.steps_per_day": 4,
        "calendar.forced_close_lead_days": 1,
        "contract.fee_per_lot": 0.0,
        "contract.price_limit": 0.05,
        "margin.rate": 0.10,
        "margin.maintenance_ratio": 1.0,
    }
    base.update(updates)
    return RunConfig().with_updates(base)


def run_step(ex, step, ref=100.0):
    ex.begin_step(step, ref)
    return ex


def test_day_settles_at_vwap_of_the_window():
    ex = build_exchange(cfg(**{"calendar.settlement_window_steps": 2}), 100.0)
    mm = ex.open_account("market_maker", False, 1e6)
    r = ex.open_account("retail", False, 1e5)
    ex.begin_step(0, 100.0)
    ex.submit(mm, SELL, 5, 103)
    assert ex.submit(r, BUY, 5, None, "market").filled == 5  # before the window: not counted
    ex.end_step()
    ex.begin_step(1, 100.0)
    ex.end_step()
    ex.begin_step(2, 100.0)  # window = the last 2 of 4 steps
    ex.submit(mm, SELL, 3, 100)
    ex.submit(r, BUY, 3, 100)
    ex.end_step()
    ex.begin_step(3, 100.0)
    ex.submit(mm, BUY, 1, 96)
    ex.submit(r, SELL, 1, 96)
    rec = ex.end_step()
    assert rec.settlement == 99.0  # (3·100 + 1·96) / 4
    assert r.long == 7 and r.long_basis == 99.0
    # all 8 lots marked at 99, and the one sold at 96 lost 3 more: total −260
    assert r.cash == pytest.approx(1e5 + (99 - 103) * 50 + (99 - 100) * 30 + (96 - 99) * 10)
    ex.clearing.check_invariants(99.0, 3)


def test_margin_call_liquidation_and_client_bears_loss():
    ex = build_exchange(cfg(**{"calendar.settlement_window_steps": 1}), 100.0)
    mm = ex.open_account("market_maker", False, 1e6)
    other = ex.open_account("retail", False, 1e5)
    r = ex.open_account("retail", False, 520)
    ex.begin_step(0, 100.0)
    ex.submit(mm, SELL, 5, 100)
    assert ex.submit(r, BUY, 5, None, "market").filled == 5  # margin 500 <= equity 520
    for s in (1, 2):
        ex.end_step()
        ex.begin_step(s, 96.0)
    ex.end_step()
    ex.begin_step(3, 96.0)
    ex.submit(mm, SELL, 1, 96)
    ex.submit(other, BUY, 1, 96)
    rec = ex.end_step()
    # settlement 96: equity 520 − 5·4·10 = 320 < margin 5·96·10·10 % = 480: call for 160
    assert rec.settlement == 96.0 and r.margin_called and r.call_amount == pytest.approx(160)
    # next open, no top-up: 96 of margin per lot, equity 320 carries 3 lots, so sell 2
    ex.begin_step(4, 96.0)
    assert ex.broker.liquidating == {r.id: 2} and r.long == 5  # empty book: retried
    ex.submit(mm, BUY, 10, 95)
    ex.end_step()
    ex.begin_step(5, 96.0)
    assert r.long == 3 and r.n_liquidations == 1 and ex.broker.liquidating == {}
    # sold 2 at 95 against a fair value of 96: the client bears (96 − 95)·2·10
    assert r.transfers["liquidation"] == pytest.approx(-20)
    ex.end_step()
    ex.clearing.check_invariants(ex.mark, 5)


def test_top_up_answers_the_call():
    ex = build_exchange(cfg(**{"calendar.settlement_window_steps": 1}), 100.0)
    mm = ex.open_account("market_maker", False, 1e6)
    r = ex.open_account("retail", False, 520)
    ex.begin_step(0, 100.0)
    ex.submit(mm, SELL, 5, 100)
    ex.submit(r, BUY, 5, None, "market")
    ex.submit(mm, BUY, 1, 96)
    ex.submit(ex.open_account("retail", False, 1e5), SELL, 1, None, "market")
    for s in (1, 2, 3):
        ex.end_step()
        ex.begin_step(s, 96.0)
    ex.submit(mm, BUY, 1, 96)
    ex.submit(ex.accounts[2], SELL, 1, 96)
    ex.end_step()
    assert r.margin_called
    ex.deposit(r, r.call_amount)
    ex.begin_step(4, 96.0)
    assert ex.broker.liquidating == {} and not r.margin_called and r.long == 5


def test_limit_locked_market_leaves_liquidation_unfilled():
    ex = build_exchange(
        cfg(**{"contract.price_limit": 0.02, "calendar.settlement_window_steps": 1}), 100.0
    )
    mm = ex.open_account("market_maker", False, 1e6)
    r = ex.open_account("retail", False, 520)
    other = ex.open_account("retail", False, 1e5)
    ex.begin_step(0, 100.0)
    ex.submit(mm, SELL, 5, 100)
    ex.submit(r, BUY, 5, None, "market")
    for s in (1, 2, 3):
        ex.end_step()
        ex.begin_step(s, 98.0)
    ex.submit(other, BUY, 1, 98)  # limit-down: 98 is the lowest price of the ±2 % band
    assert ex.submit(mm, SELL, 1, 97).status == "rejected"
    ex.submit(mm, SELL, 1, 98)
    ex.end_step()
    # settlement 98: equity 520 − 100 = 420 < margin 490; 98 per lot carries 4, so sell 1
    assert r.margin_called
    ex.begin_step(4, 96.0)
    lo, hi = ex.book.band
    assert (lo, hi) == (97, 99)  # 98 ± 1.96, rounded inward
    rej = ex.submit(mm, BUY, 5, lo - 1)
    assert rej.status == "rejected" and "below the lower limit 97" in rej.reason
    assert r.long == 5 and ex.broker.liquidating == {r.id: 1}
    ex.end_step()
    ex.begin_step(5, 96.0)  # retried: nobody bids inside the band
    assert r.long == 5 and ex.broker.liquidating == {r.id: 1}
    ex.submit(mm, BUY, 5, lo)
    ex.end_step()
    ex.begin_step(6, 96.0)
    assert r.long == 4 and ex.broker.liquidating == {}
    assert r.transfers["liquidation"] == pytest.approx(-(96 - 97) * 10)


def test_forced_close_at_deadline_spares_deliverable():
    ex = build_exchange(cfg(), 100.0)
    h = ex.open_account("hedger", True, 1e7)
    r = ex.open_account("retail", False, 1e5)
    mm = ex.open_account("market_maker", False, 1e6)  # flat: nothing to force-close
    ex.begin_step(0, 100.0)
    ex.submit(h, SELL, 3, 100, effect="open")
    ex.submit(r, BUY, 3, None, "market")
    ex.end_step()
    deadline = ex.calendar.deadline_step  # day 3, step 12
    assert deadline == 12
    for s in range(1, deadline):
        ex.begin_step(s, 100.0)
        ex.end_step()
    ex.begin_step(deadline, 100.0)
    # the book is empty: forced close waits; a new long is refused
    assert r.lots == 3 and r.id in ex.broker.forced
    assert not ex.submit(r, BUY, 1, 100, effect="open").ok
    ex.submit(h, BUY, 3, 97, effect="close")
    ex.end_step()
    ex.begin_step(deadline + 1, 100.0)
    assert r.lots == 0 and h.lots == 0
    assert ex.forced_fills == [(deadline + 1, 3, 97.0)]
    # fills during forced close count as harvest transfers relative to fair value (100)
    assert r.transfers["harvest_forced_close"] == pytest.approx(-3 * 3 * 10)
    assert mm.lots == 0
    ex.end_step()


def test_expiry_delivers_against_spot():
    ex = build_exchange(cfg(**{"contract.delivery_cost": 0.5}), 100.0)
    h = ex.open_account("hedger", True, 1e7)
    a = ex.open_account("arbitrageur", True, 1e7)
    for s in range(ex.calendar.n_steps):
        ex.begin_step(s, 100.0)
        if s == 0:
            ex.submit(h, SELL, 2, 100, effect="open")
            ex.submit(a, BUY, 2, 100, effect="open")
        ex.end_step()
    ex.expire(spot=104.0)
    # final settlement 100; long takes goods worth 104: (4 − 0.5)·2·10, short (−4 − 0.5)·2·10
    assert a.pnl(100, 10) == pytest.approx(70) and h.pnl(100, 10) == pytest.approx(-90)
    assert ex.clearing.open_interest == 0 and ex.clearing.delivery_costs == pytest.approx(20)
    assert not ex.submit(a, BUY, 1, 100).ok


def test_close_more_than_held_is_rejected_with_reason():
    ex = build_exchange(cfg(), 100.0)
    r = ex.open_account("retail", False, 1e5)
    ex.begin_step(0, 100.0)
    res = ex.submit(r, SELL, 2, 100, effect="close")
    assert res.status == "rejected" and "exceeds the 0 long lots" in res.reason
    poor = ex.open_account("retail", False, 10)
    res = ex.submit(poor, BUY, 1, 100)
    assert res.status == "rejected" and "margin" in res.reason


# -- the ledger through random flows, under every loss regime ----------------------------------


class LedgerMachine(RuleBasedStateMachine):
    regime = "broker"

    def __init__(self):
        super().__init__()
        c = cfg(
            **{
                "calendar.trading_days": 30,
                "calendar.steps_per_day": 3,
                "calendar.forced_close_lead_days": 3,
                "contract.price_limit": 0.10,
                "contract.fee_per_lot": 1.5,
                "clearing.loss_regime": self.regime,
                "clearing.insurance_fund_initial": 50.0,
                "clearing.liquidation_penalty": 0.01,
                "contract.delivery_cost": 0.5,
            }
        )
        self.ex = build_exchange(c, 100.0)
        ex = self.ex
        self.accs = [
            ex.open_account("hedger", True, 1e6),
            ex.open_account("arbitrageur", True, 5e4),
        ]
        self.accs += [ex.open_account("retail", False, d) for d in (300, 800, 2000, 5000)]
        self.step = 0
        ex.begin_step(0, 100.0)

    @rule(
        i=st.integers(0, 5),
        side=st.sampled_from([BUY, SELL]),
        qty=st.integers(1, 6),
        offset=st.integers(-8, 8),
        kind=st.sampled_from(["limit", "market", "ioc"]),
        effect=st.sampled_from(["auto", "open", "close"]),
    )
    def order(self, i, side, qty, offset, kind, effect):
        if self.ex.expired:
            return
        mid = round(self.ex.settle_price)
        self.ex.submit(
            self.accs[i], side, qty, None if kind == "market" else mid + offset, kind, effect
        )

    @rule(i=st.integers(0, 5))
    def cancel_all(self, i):
        self.ex.cancel_all(self.accs[i])

    @rule(i=st.integers(0, 5))
    def net(self, i):
        self.ex.clearing.net_locks(self.accs[i])

    @rule(i=st.integers(2, 5), amount=st.floats(1, 500))
    def top_up(self, i, amount):
        self.ex.deposit(self.accs[i], amount)

    @rule(ref=st.floats(80, 120))
    def advance(self, ref):
        if self.ex.expired:
            return
        self.ex.end_step()
        self.step += 1
        if self.step >= self.ex.calendar.n_steps:
            self.ex.expire(spot=ref)
        else:
            self.ex.begin_step(self.step, ref)

    @invariant()
    def books_balance(self):
        self.ex.clearing.check_invariants(self.ex.mark, self.step)
        for a in self.accs:
            assert a.pending_close_long >= 0 and a.pending_close_short >= 0


def _machine(regime):
    cls = type(f"Ledger_{regime}", (LedgerMachine,), {"regime": regime})
    case = cls.TestCase
    case.settings = settings(max_examples=40, stateful_step_count=80, deadline=None)
    return case


TestLedgerBroker = _machine("broker")
TestLedgerInsuranceFund = _machine("insurance_fund")
TestLedgerSocialized = _machine("socialized")
TestLedgerAdl = _machine("adl")

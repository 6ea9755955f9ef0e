"""The customer ledger behind an omnibus account (abm.exchange.omnibus), held against the
clearing house's per-account arithmetic as the reference, and its allocations by hand."""

from __future__ import annotations

import numpy as np
import pytest

from abm.exchange.broker import slice_pro_rata
from abm.exchange.clearing import ClearingHouse, InvariantError
from abm.exchange.omnibus import (
    CustomerLedger,
    allocate_by_arrival,
    allocate_pro_rata,
    lots_to_liquidate,
)

M, FEE = 10.0, 0.5


def _reference(direction, deposits):
    """Customers as clearing-house accounts, and one deep counterparty account."""
    ch = ClearingHouse(multiplier=M, fee_per_lot=FEE, maintenance_ratio=0.8)
    accs = [ch.open_account("retail", False, float(d)) for d in deposits]
    street = ch.open_account("market_maker", True, 1e9)
    return ch, accs, street


def _fill(ch, acc, street, buys, closes, qty, price):
    if buys:
        ch.apply_fill(acc, street, qty, price, closes, False, price, "ordinary")
    else:
        ch.apply_fill(street, acc, qty, price, False, closes, price, "ordinary")


def _assert_same(ledger, accs):
    for i, a in enumerate(accs):
        held = a.long if ledger.direction[i] > 0 else a.short
        basis = a.long_basis if ledger.direction[i] > 0 else a.short_basis
        assert ledger.lots[i] == held
        assert ledger.basis[i] == pytest.approx(basis, rel=1e-12, abs=1e-12)
        assert ledger.cash[i] == pytest.approx(a.cash, rel=1e-12, abs=1e-9)
        assert ledger.realized[i] == pytest.approx(a.realized, rel=1e-12, abs=1e-9)
        assert ledger.fees[i] == pytest.approx(a.fees)


def test_fills_settlements_calls_and_liquidation_sizes_match_the_clearing_house():
    """300 random fills in six customers' directions (opens and closes at random prices),
    three daily settlements with margin calls, and the liquidation size at a price: every
    customer's lots, basis, cash, realised P&L and fees, every call and its amount, equal the
    clearing house's on the same accounts."""
    rng = np.random.default_rng(7)
    direction = np.array([1, 1, -1, 1, -1, -1])
    deposits = rng.uniform(2_000, 6_000, 6)
    ch, accs, street = _reference(direction, deposits)
    ledger = CustomerLedger(direction, deposits, M, FEE)
    partial = 0
    for day in range(3):
        for _ in range(100):
            i = int(rng.integers(6))
            price = float(np.round(rng.uniform(80, 120), 2))
            held = int(ledger.lots[i])
            closes = held > 0 and rng.random() < 0.4
            qty = int(rng.integers(1, held + 1)) if closes else int(rng.integers(1, 6))
            buys = (direction[i] > 0) != closes  # a long opens by buying, closes by selling
            _fill(ch, accs[i], street, buys, closes, qty, price)
            ledger.book(np.array([i]), np.array([qty]), np.array([qty * price]), closes)
        _assert_same(ledger, accs)
        settle = 95.0 + 5 * day
        ch.mark_to_market(settle)
        ledger.mark_to_market(settle)
        _assert_same(ledger, accs)
        called = ch.issue_margin_calls(settle, rate=0.12)
        who, amount = ledger.margin_calls(settle, rate=0.12, maintenance_ratio=0.8)
        assert sorted(who.tolist()) == sorted(a.id for a in called)
        for j, a in zip(who.tolist(), amount.tolist(), strict=True):
            assert a == pytest.approx(accs[j].call_amount, rel=1e-12)
        assert (ledger.n_margin_calls == [a.n_margin_calls for a in accs]).all()
        assert len(who) >= 1  # not vacuous: seed 7 calls someone every day
        for price in (70.0, 88.0, 95.0, 110.0):
            eq = ledger.equity(price)
            sizes = lots_to_liquidate(eq, ledger.lots, price, 0.12, 0.8, M)
            assert sizes.tolist() == [ch.lots_to_liquidate(a, price, 0.12) for a in accs]
            partial += int(((sizes > 0) & (sizes < ledger.lots)).sum())
    assert partial > 0  # some liquidation closes part of a position, not all or nothing


def test_a_customers_fills_of_a_step_book_as_their_lots_and_value():
    """Opening 3 at 10 then 2 at 12, and closing 4 at 11 then 1 at 9, one fill at a time,
    leave the same basis, cash and realised P&L as booking (5 lots, 54) and (5, 53)."""
    one = CustomerLedger([1], [1_000.0], M, FEE)
    two = CustomerLedger([1], [1_000.0], M, FEE)
    for q, p in ((3, 10.0), (2, 12.0)):
        one.book(np.array([0]), np.array([q]), np.array([q * p]), closes=False)
    two.book(np.array([0]), np.array([5]), np.array([54.0]), closes=False)
    assert one.basis[0] == two.basis[0] == pytest.approx(54 / 5)
    for q, p in ((4, 11.0), (1, 9.0)):
        one.book(np.array([0]), np.array([q]), np.array([q * p]), closes=True)
    two.book(np.array([0]), np.array([5]), np.array([53.0]), closes=True)
    # realised: (53 - 5 × 10.8) × 10 = -10; fees: 10 lots × 0.5 = 5
    assert one.realized[0] == pytest.approx(-10.0) and two.realized[0] == pytest.approx(-10.0)
    assert one.cash[0] == pytest.approx(1_000 - 10 - 5) == two.cash[0]
    assert one.lots[0] == two.lots[0] == 0 and one.basis[0] == two.basis[0] == 0.0


def test_fills_shared_by_arrival_take_the_trades_prices_in_order():
    """Orders of 3, 2 and 4 lots netted into one; trades 4 at 10 then 3 at 11 (7 lots): the
    first customer gets 3 at 10 (30), the second 1 at 10 and 1 at 11 (21), the third 2 at 11
    (22), and the values add up to the trades' 73."""
    filled, value = allocate_by_arrival(np.array([3, 2, 4]), np.array([4, 3]), np.array([10, 11]))
    assert filled.tolist() == [3, 2, 2]
    assert value.tolist() == pytest.approx([30.0, 21.0, 22.0])
    assert value.sum() == pytest.approx(4 * 10 + 3 * 11)
    filled, value = allocate_by_arrival(np.array([2, 5]), np.array([], int), np.array([], float))
    assert filled.tolist() == [0, 0] and value.tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="≥ 0"):
        allocate_by_arrival(np.array([-1]), np.array([1]), np.array([1.0]))


def test_pro_rata_is_the_brokers_largest_remainder_slice():
    """By hand: 5 lots among holders of 5, 3, 2 are 2.5, 1.5, 1 exact; the one lot left goes
    to the first of the two tied remainders: 3, 1, 1. Then against the broker's list version
    (the reference) on 200 random cases."""
    assert allocate_pro_rata(np.array([5, 3, 2]), 5).tolist() == [3, 1, 1]
    assert allocate_pro_rata(np.array([5, 3, 2]), 12).tolist() == [5, 3, 2]
    assert allocate_pro_rata(np.array([5, 3, 2]), 0).tolist() == [0, 0, 0]
    rng = np.random.default_rng(3)
    for _ in range(200):
        held = rng.integers(0, 20, int(rng.integers(1, 12)))
        total = int(rng.integers(0, held.sum() + 3))
        got = allocate_pro_rata(held, total)
        assert got.tolist() == slice_pro_rata(held.tolist(), total)
        assert got.sum() == min(total, held.sum()) and (got <= held).all()


def test_the_customers_reconcile_with_an_omnibus_account_that_traded_their_net():
    """Three long customers' orders (4, 2, 3 lots) go to the exchange as one 9-lot order of
    the omnibus account, which fills 5 at 20.0 and 4 at 20.5; shared by arrival, the customers
    hold the omnibus account's 9 lots and its equity at any mark. A customer whose lots are
    changed behind the omnibus account's back breaks the reconciliation, which names both."""
    ch = ClearingHouse(multiplier=M, fee_per_lot=FEE)
    omni = ch.open_account("retail", False, 3_000.0)
    street = ch.open_account("market_maker", True, 1e9)
    ledger = CustomerLedger([1, 1, 1], [1_000.0, 1_000.0, 1_000.0], M, FEE)
    trades = [(5, 20.0), (4, 20.5)]
    for q, p in trades:
        ch.apply_fill(omni, street, q, p, False, False, p, "ordinary")
    filled, value = allocate_by_arrival(
        np.array([4, 2, 3]), np.array([q for q, _ in trades]), np.array([p for _, p in trades])
    )
    ledger.book(np.arange(3), filled, value, closes=False)
    for mark in (18.0, 20.2, 23.0):
        ledger.reconcile(omni.long, omni.short, omni.equity(mark, M), mark)
    ch.mark_to_market(21.0)
    ledger.mark_to_market(21.0)
    ledger.reconcile(omni.long, omni.short, omni.equity(21.0, M), 21.0)
    ledger.lots[1] += 1
    with pytest.raises(InvariantError, match="10 long and 0 short lots; the omnibus account 9"):
        ledger.reconcile(omni.long, omni.short, omni.equity(21.0, M), 21.0)


def test_a_flat_customer_below_zero_is_made_whole_and_the_deficit_reported():
    """A long customer with 1,000 buys 5 lots at 100 and sells them at 70: it loses
    5 × 30 × 10 = 1,500 plus 10 lots × 0.5 = 5 in fees, so the broker covers 505."""
    ledger = CustomerLedger([1, -1], [1_000.0, 1_000.0], M, FEE)
    ledger.book(np.array([0]), np.array([5]), np.array([500.0]), closes=False)
    ledger.book(np.array([0]), np.array([5]), np.array([350.0]), closes=True)
    assert ledger.cash[0] == pytest.approx(1_000 - 1_500 - 5)
    assert ledger.cover_negative_equity(mark=70.0) == pytest.approx(505.0)
    assert ledger.cash.tolist() == pytest.approx([0.0, 1_000.0])
    assert ledger.went_negative.tolist() == [True, False]
    assert ledger.bad_debt_received[0] == pytest.approx(505.0)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"direction\[1\] = 0: allowed \+1"):
        CustomerLedger([1, 0], [1.0, 1.0], M)
    with pytest.raises(ValueError, match="one value per customer"):
        CustomerLedger([1, 1], [1.0], M)
    ledger = CustomerLedger([1, -1], [1.0, 1.0], M)
    with pytest.raises(InvariantError, match="customer 1 closes 2 lots but holds 0"):
        ledger.book(np.array([1]), np.array([2]), np.array([2.0]), closes=True)
    with pytest.raises(ValueError, match="indices repeat"):
        ledger.book(np.array([0, 0]), np.array([1, 1]), np.array([1.0, 1.0]), closes=False)

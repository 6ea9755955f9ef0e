"""Order book: hand-worked cases, and a Hypothesis state machine against a naive reference."""

from __future__ import annotations

from dataclasses import dataclass

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from abm.exchange.book import BUY, SELL, OrderBook


def test_price_time_priority_and_trade_report():
    b = OrderBook()
    b.submit(1, SELL, 5, 101)
    b.submit(2, SELL, 3, 100)
    b.submit(3, SELL, 4, 100)  # same price, later: behind account 2
    r = b.submit(9, BUY, 9, 101)
    assert r.status == "filled" and r.filled == 9
    assert [(t.price, t.qty, t.seller) for t in r.trades] == [(100, 3, 2), (100, 4, 3), (101, 2, 1)]
    t = r.trades[0]
    assert t.aggressor == BUY and t.buyer == 9 and t.seller == 2
    assert b.best_ask == 101 and b.volume_at(SELL, 101) == 3
    assert b.last_price == 101
    # VWAP of the fills: (100·7 + 101·2) / 9
    assert abs(b.vwap - (100 * 7 + 101 * 2) / 9) < 1e-12


def test_limit_rests_remainder_and_depth():
    b = OrderBook()
    b.submit(1, SELL, 2, 100)
    r = b.submit(2, BUY, 5, 100)
    assert r.status == "partial" and r.filled == 2 and r.remaining == 3
    assert b.best_bid == 100 and b.best_ask is None
    b.submit(3, BUY, 4, 98)
    b.submit(4, BUY, 1, 99)
    assert b.depth(BUY, 2) == [(100, 3), (99, 1)]


def test_market_sweeps_within_band_and_cancels_rest():
    b = OrderBook()
    b.set_band(95, 105)
    b.submit(1, BUY, 2, 100)
    b.submit(1, BUY, 2, 97)
    r = b.submit(2, SELL, 10, None, "market")
    assert r.filled == 4 and r.remaining == 6 and r.status == "partial"
    assert [t.price for t in r.trades] == [100, 97]
    assert b.best_bid is None and len(b) == 0


def test_ioc_matches_to_limit_only():
    b = OrderBook()
    b.submit(1, SELL, 2, 100)
    b.submit(1, SELL, 2, 102)
    r = b.submit(2, BUY, 5, 101, "ioc")
    assert r.filled == 2 and r.remaining == 3
    assert b.best_bid is None and b.best_ask == 102


def test_band_rejects_with_reason():
    b = OrderBook()
    b.set_band(96, 104)
    r = b.submit(1, BUY, 1, 105)
    assert r.status == "rejected" and "above the upper limit 104" in r.reason
    r = b.submit(1, SELL, 1, 95)
    assert r.status == "rejected" and "below the lower limit 96" in r.reason
    assert b.submit(1, BUY, 1, 104).ok


def test_invalid_orders_are_rejected_not_dropped():
    b = OrderBook()
    for args, words in [
        ((1, BUY, 0, 100), "qty"),
        ((1, BUY, 2.5, 100), "qty"),
        ((1, 0, 1, 100), "side"),
        ((1, BUY, 1, None), "price"),
        ((1, BUY, 1, 100.5), "price"),
    ]:
        r = b.submit(*args)
        assert r.status == "rejected" and words in r.reason
    r = b.submit(1, BUY, 1, 100, "market")
    assert r.status == "rejected" and "market order takes no price" in r.reason


def test_self_trade_prevention_cancels_resting():
    b = OrderBook()
    b.submit(1, SELL, 3, 100)
    b.submit(2, SELL, 3, 101)
    r = b.submit(1, BUY, 4, 101)
    assert all(t.seller != 1 for t in r.trades)
    assert [o.account for o in r.stp_cancelled] == [1]
    assert r.filled == 3 and b.best_bid == 101  # rest of the buy rests; book not crossed
    assert b.best_ask is None


def test_self_trade_prevention_cancel_incoming():
    b = OrderBook(stp="cancel_incoming")
    b.submit(1, SELL, 3, 100)
    r = b.submit(1, BUY, 4, 101)
    assert r.filled == 0 and r.status == "cancelled"
    assert b.best_ask == 100 and b.best_bid is None


def test_cancel_and_clear():
    b = OrderBook()
    oid = b.submit(1, BUY, 3, 99).order_id
    b.submit(2, BUY, 1, 99)
    assert b.cancel(oid).qty == 3
    assert b.cancel(oid) is None
    assert b.volume_at(BUY, 99) == 1
    r = b.submit(3, SELL, 2, 99)
    assert r.filled == 1 and r.trades[0].buyer == 2
    assert len(b.clear()) == 1 and b.best_ask is None


# -- model-based test against a deliberately naive reference book -----------------------------


@dataclass
class RefOrder:
    id: int
    account: int
    side: int
    price: int
    qty: int
    seq: int


class ReferenceBook:
    """A list of orders, scanned in full on every match: obviously correct, slow."""

    def __init__(self):
        self.orders: list[RefOrder] = []
        self.seq = 0

    def submit(self, oid, account, side, qty, price, kind):
        trades = []
        while qty > 0:
            opp = [o for o in self.orders if o.side == -side]
            if price is not None:
                opp = [o for o in opp if (o.price <= price if side == BUY else o.price >= price)]
            if not opp:
                break
            best = min(opp, key=lambda o: ((o.price if side == BUY else -o.price), o.seq))
            if best.account == account:
                self.orders.remove(best)  # self-trade prevention: cancel resting
                continue
            q = min(qty, best.qty)
            trades.append((best.price, q, best.account, best.id))
            best.qty -= q
            qty -= q
            if best.qty == 0:
                self.orders.remove(best)
        if qty > 0 and kind == "limit":
            self.seq += 1
            self.orders.append(RefOrder(oid, account, side, price, qty, self.seq))
        return trades

    def cancel(self, oid):
        for o in self.orders:
            if o.id == oid:
                self.orders.remove(o)
                return o.qty
        return None


class BookMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.book = OrderBook()
        self.ref = ReferenceBook()
        self.ids: list[int] = []

    @rule(
        account=st.integers(0, 3),
        side=st.sampled_from([BUY, SELL]),
        qty=st.integers(1, 8),
        price=st.integers(95, 105),
        kind=st.sampled_from(["limit", "limit", "ioc", "market"]),
    )
    def submit(self, account, side, qty, price, kind):
        p = None if kind == "market" else price
        r = self.book.submit(account, side, qty, p, kind)
        expect = self.ref.submit(r.order_id, account, side, qty, p, kind)
        got = [
            (
                t.price,
                t.qty,
                t.seller if side == BUY else t.buyer,
                t.sell_order if side == BUY else t.buy_order,
            )
            for t in r.trades
        ]
        assert got == expect
        self.ids.append(r.order_id)

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def cancel(self, data):
        oid = data.draw(st.sampled_from(self.ids))
        o = self.book.cancel(oid)
        assert (None if o is None else o.qty) == self.ref.cancel(oid)

    @invariant()
    def same_resting_orders(self):
        mine = sorted((o.id, o.side, o.price, o.qty) for o in self.book.open_orders())
        ref = sorted((o.id, o.side, o.price, o.qty) for o in self.ref.orders)
        assert mine == ref
        for acct in range(4):  # the per-account index agrees with the reference
            assert [o.id for o in self.book.open_orders(acct)] == sorted(
                o.id for o in self.ref.orders if o.account == acct
            )
        bids = [o.price for o in self.ref.orders if o.side == BUY]
        asks = [o.price for o in self.ref.orders if o.side == SELL]
        assert self.book.best_bid == (max(bids) if bids else None)
        assert self.book.best_ask == (min(asks) if asks else None)
        if bids and asks:
            assert max(bids) < min(asks)  # never crossed


TestBookAgainstReference = BookMachine.TestCase
TestBookAgainstReference.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)

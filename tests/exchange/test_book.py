"""Order book: hand-worked cases, and a Hypothesis state machine against a naive reference."""

from __future__ import annotations

from dataclasses import dataclass

import hypothesis.strategies as st
from hypothesis import given, settings
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
        for side in (BUY, SELL):  # every level's volume is the sum of its live orders
            lots: dict[int, int] = {}
            for o in self.ref.orders:
                if o.side == side:
                    lots[o.price] = lots.get(o.price, 0) + o.qty
            want = sorted(lots.items(), reverse=(side == BUY))
            assert self.book.depth(side, 100) == want
            assert all(self.book.volume_at(side, p) == q for p, q in want)
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


# -- the call auction used for forced closes ------------------------------------------------------


def test_auction_crosses_forced_closes_and_sends_the_imbalance_to_the_book():
    b = OrderBook()
    b.submit(9, SELL, 3, 101)
    b.submit(8, SELL, 5, 102)
    # buys 6 + 1 against a sell of 2: the imbalance of 5 lifts 101 (3 lots) and 102 (2 lots)
    ids, trades, left = b.auction([(1, BUY, 6, "fc"), (2, SELL, 2, "fc"), (3, BUY, 1, "fc")], 100)
    assert left == [0, 0, 0]
    assert {t.price for t in trades} == {102}  # one price: the last level the imbalance reached
    assert [(t.buyer, t.seller, t.qty) for t in trades] == [
        (1, 9, 3),
        (1, 8, 2),
        (1, 2, 1),
        (3, 2, 1),
    ]
    assert b.volume_at(SELL, 102) == 3 and b.volume_at(SELL, 101) == 0
    assert b.last_price == 102 and b.vwap_volume == 7


def test_auction_that_balances_prints_at_the_reference_price():
    b = OrderBook()
    b.submit(9, SELL, 3, 101)
    _, trades, left = b.auction([(1, BUY, 4, "fc"), (2, SELL, 4, "fc")], 99)
    assert left == [0, 0] and [(t.price, t.qty) for t in trades] == [(99, 4)]
    assert b.volume_at(SELL, 101) == 3  # the book is untouched


def reference_auction(book_levels, orders, ref):
    """Lot by lot: expand every order into single lots and pair them in sequence."""
    buys = sum(q for _, s, q in orders if s == BUY)
    sells = sum(q for _, s, q in orders if s == SELL)
    excess = SELL if sells > buys else BUY
    long_lots = [i for i, (_, s, q) in enumerate(orders) if s == excess for _ in range(q)]
    short_lots = [j for j, (_, s, q) in enumerate(orders) if s == -excess for _ in range(q)]
    imbalance = len(long_lots) - len(short_lots)
    book_lots = [  # (level, resting account) per lot, best level first, time order within
        (p, acct) for p, queue in book_levels for acct, q in queue for _ in range(q)
    ][:imbalance]
    price = book_lots[-1][0] if book_lots else ref
    fills = {}  # (incoming order, counterparty) -> lots
    for (_, acct), i in zip(book_lots, long_lots, strict=False):
        fills[i, ("book", acct)] = fills.get((i, ("book", acct)), 0) + 1
    rest = long_lots[len(book_lots) :]
    left = [q for _, _, q in orders]
    for i in long_lots[: len(book_lots)]:
        left[i] -= 1
    for j in short_lots:
        k = next((n for n, i in enumerate(rest) if orders[i][0] != orders[j][0]), None)
        if k is None:
            continue
        i = rest.pop(k)
        left[i] -= 1
        left[j] -= 1
        fills[i, j] = fills.get((i, j), 0) + 1
    return price, fills, left


@settings(max_examples=200, deadline=None)
@given(
    orders=st.lists(
        st.tuples(st.integers(0, 4), st.sampled_from([BUY, SELL]), st.integers(1, 6)),
        min_size=1,
        max_size=12,
    ),
    asks=st.lists(st.tuples(st.integers(101, 104), st.integers(10, 12), st.integers(1, 5))),
    bids=st.lists(st.tuples(st.integers(96, 99), st.integers(10, 12), st.integers(1, 5))),
)
def test_auction_matches_a_lot_by_lot_reference(orders, asks, bids):
    b = OrderBook()
    for side, quotes in ((SELL, asks), (BUY, bids)):
        for p, acct, q in quotes:
            b.submit(acct, side, q, p)
    excess = (
        SELL
        if sum(q for _, s, q in orders if s == SELL) > sum(q for _, s, q in orders if s == BUY)
        else BUY
    )
    book_side = -excess
    levels = [
        (p, [(o.account, o.qty) for o in b.open_orders() if o.side == book_side and o.price == p])
        for p, _ in b.depth(book_side, 100)
    ]
    price, fills, left = reference_auction(levels, orders, 100)
    ids, trades, got_left = b.auction([(a, s, q, "fc") for a, s, q in orders], 100)
    assert got_left == left
    assert {t.price for t in trades} <= {price}
    got = {}
    for t in trades:
        i = ids.index(t.buy_order if excess == BUY else t.sell_order)
        other = t.sell_order if excess == BUY else t.buy_order
        key = (
            (i, ids.index(other))
            if other in ids
            else (i, ("book", t.seller if excess == BUY else t.buyer))
        )
        got[key] = got.get(key, 0) + t.qty
        assert t.buyer != t.seller
    assert got == fills

"""A price-time priority limit order book on integer ticks (continuous double auction).

A plain data structure: it knows nothing of accounts' money, agents or Mesa. Price levels are
FIFO queues keyed by integer tick, each carrying its live volume, with one heap per side to find
the best level; cancelled orders are removed lazily (marked dead, skipped when they reach the
front of their queue), so cancel is O(1). Self-trade prevention cancels the *resting* order by
default, so an account's order never fills against its own and the book can never end crossed.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sized
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

BUY, SELL = 1, -1


OrderType = Literal["limit", "market", "ioc"]


@dataclass(slots=True, eq=False)
class Order:
    id: int
    account: int
    side: int  # +1 buy, -1 sell
    price: int | None  # tick; None for market
    qty: int  # remaining lots
    kind: str  # "limit" | "market" | "ioc"
    tag: str = "ordinary"  # why the order exists: ordinary, forced_close, liquidation, ...
    step: int = 0
    alive: bool = True


class Trade(NamedTuple):
    """One fill. A named tuple: cheap to create, immutable, unpacks like a record."""

    step: int
    price: int  # tick
    qty: int
    aggressor: int  # side of the incoming order: +1 buyer-initiated, -1 seller-initiated
    buyer: int
    seller: int
    buy_order: int
    sell_order: int
    buy_tag: str
    sell_tag: str


# builds a Trade or an OrderResult without the named tuple's Python-level __new__, which cost
# a third of a fill and a sixth of a resting order
_new_tuple = tuple.__new__


class OrderResult(NamedTuple):
    """What became of an order: status, lots filled and remaining, its trades, and why it was
    rejected (``reason``) or which own resting orders self-trade prevention cancelled.

    Immutable. An order that met nothing shares the empty tuple for ``trades`` and
    ``stp_cancelled``: most orders rest untouched."""

    order_id: int
    status: Literal["rested", "filled", "partial", "cancelled", "rejected"]
    filled: int = 0
    remaining: int = 0
    trades: list[Trade] | tuple[()] = ()
    reason: str = ""
    stp_cancelled: list[Order] | tuple[()] = ()

    @property
    def ok(self) -> bool:
        return self.status != "rejected"

    def __repr__(self) -> str:
        return (
            f"OrderResult({self.order_id}, {self.status!r}, filled={self.filled}, "
            f"remaining={self.remaining}, reason={self.reason!r})"
        )


class _Level(deque):
    """One price level: its orders in time priority (a FIFO queue that may still hold
    cancelled orders, skipped when they reach the front) and the live lots they carry."""

    __slots__ = ("volume",)  # set by whoever creates the level (no __init__: levels churn)


class OrderBook:
    """Continuous double auction with price-time priority.

    ``stp`` is the self-trade-prevention policy: ``"cancel_resting"`` (default) cancels the
    account's own resting order and keeps matching; ``"cancel_incoming"`` cancels the rest of
    the incoming order instead.
    """

    def __init__(self, stp: Literal["cancel_resting", "cancel_incoming"] = "cancel_resting"):
        if stp not in ("cancel_resting", "cancel_incoming"):
            raise ValueError(f"stp = {stp!r}: allowed 'cancel_resting' or 'cancel_incoming'")
        self.stp = stp
        #: accounts whose orders may meet each other (an omnibus account's customers trade
        #: with one another like any two accounts); every other account is kept from
        #: trading with itself by ``stp``
        self.self_match: set[int] = set()
        self._levels: dict[int, dict[int, _Level]] = {BUY: {}, SELL: {}}
        # bids stored negated so both heaps are min-heaps of "better first"
        self._heap: dict[int, list[int]] = {BUY: [], SELL: []}
        #: live resting orders by id; read it, never write it (the book keeps it in step)
        self.resting: dict[int, Order] = {}
        self._by_account: dict[int, set[int]] = {}  # live order ids by account
        self._next_id = 1
        self.band: tuple[int | None, int | None] = (None, None)
        self.last_price: int | None = None
        self.step = 0
        self._vwap_pq = 0.0
        self._vwap_q = 0
        self.volume_total = 0
        #: the accounts that may trade (ids 0 .. len − 1), when an exchange keeps them: an order
        #: of any other account is rejected (None, a bare book: any id)
        self.accounts: Sized | None = None

    # -- queries ---------------------------------------------------------------------------
    def _best(self, side: int) -> int | None:
        heap, levels = self._heap[side], self._levels[side]
        while heap:
            key = heap[0]
            price = -key if side == BUY else key
            if price in levels:
                return price
            heapq.heappop(heap)
        return None

    @property
    def best_bid(self) -> int | None:
        return self._best(BUY)

    @property
    def best_ask(self) -> int | None:
        return self._best(SELL)

    def mid(self) -> float | None:
        b, a = self._best(BUY), self._best(SELL)
        if b is None or a is None:
            return None
        return (a + b) / 2

    def depth(self, side: int, levels: int = 10) -> list[tuple[int, int]]:
        """Best ``levels`` price levels of a side as (tick, lots), best first."""
        book = self._levels[side]
        prices = sorted(book, reverse=(side == BUY))[:levels]
        return [(p, book[p].volume) for p in prices]

    def volume_at(self, side: int, price: int) -> int:
        level = self._levels[side].get(price)
        return 0 if level is None else level.volume

    def order(self, order_id: int) -> Order | None:
        return self.resting.get(order_id)

    def open_orders(self, account: int | None = None) -> list[Order]:
        if account is None:
            return list(self.resting.values())
        orders = self.resting
        return [orders[i] for i in sorted(self._by_account.get(account, ()))]

    def __len__(self) -> int:
        return len(self.resting)

    # -- settlement VWAP ---------------------------------------------------------------------
    def reset_vwap(self) -> None:
        self._vwap_pq, self._vwap_q = 0.0, 0

    @property
    def vwap(self) -> float | None:
        """Volume-weighted average tick of trades since the last
        [`reset_vwap()`][abm.exchange.book.OrderBook.reset_vwap]."""
        return self._vwap_pq / self._vwap_q if self._vwap_q else None

    @property
    def vwap_volume(self) -> int:
        return self._vwap_q

    # -- band --------------------------------------------------------------------------------
    def set_band(self, lo: int | None, hi: int | None) -> None:
        self.band = (lo, hi)

    def clip(self, price: int) -> int:
        """The nearest tick inside today's band (a price at the limit when beyond it)."""
        lo, hi = self.band
        if lo is not None and price < lo:
            return lo
        if hi is not None and price > hi:
            return hi
        return price

    def _check_price(self, price: int) -> str:
        lo, hi = self.band
        if lo is not None and price < lo:
            return f"price {price} below the lower limit {lo}"
        if hi is not None and price > hi:
            return f"price {price} above the upper limit {hi}"
        return ""

    # -- order entry -------------------------------------------------------------------------
    def submit(
        self,
        account: int,
        side: int,
        qty: int,
        price: int | None = None,
        kind: OrderType = "limit",
        tag: str = "ordinary",
    ) -> OrderResult:
        """Enter an order. Market orders sweep the book at the counterparty's prices within the
        band; IOC orders match up to their limit; both cancel what is left. Limit orders rest."""
        oid = self._next_id
        self._next_id = oid + 1
        lo, hi = self.band
        # fast path for well-formed orders; anything else gets a reason from _reason()
        accounts = self.accounts
        if accounts is not None and not (type(account) is int and 0 <= account < len(accounts)):
            return OrderResult(
                oid,
                "rejected",
                0,
                qty if isinstance(qty, int) else 0,
                (),
                f"account {account!r}: no such account (the exchange has {len(accounts)}: "
                f"0 .. {len(accounts) - 1}; open one with Exchange.open_account)",
            )
        if (
            type(qty) is not int
            or qty <= 0
            or (side != 1 and side != -1)
            or (
                (price is not None or kind != "market")
                and (
                    type(price) is not int
                    or (kind != "limit" and kind != "ioc")
                    or (lo is not None and price < lo)
                    or (hi is not None and price > hi)
                )
            )
        ):
            reason = self._reason(side, qty, price, kind)
            return OrderResult(oid, "rejected", 0, qty if isinstance(qty, int) else 0, (), reason)
        limit = (hi if side == BUY else lo) if kind == "market" else price
        left, trades, stp, stopped = qty, (), (), False
        # is there anything to match? (the heap top is usually live: skip _best's loop)
        heap = self._heap[-side]
        if heap:
            top = heap[0]
            best = -top if side == SELL else top
            if best not in self._levels[-side]:
                best = self._best(-side)
            if best is not None and (
                limit is None or (best <= limit if side == BUY else best >= limit)
            ):
                left, trades, stp, stopped = self._match(account, side, oid, tag, qty, limit)
        filled = qty - left
        if left == 0:
            return _new_tuple(OrderResult, (oid, "filled", filled, 0, trades, "", stp))
        if kind != "limit" or stopped:
            status = "cancelled" if filled == 0 else "partial"
            return _new_tuple(OrderResult, (oid, status, filled, left, trades, "", stp))
        # rest the remainder (inlined: this is the book's hottest path). An Order object
        # exists only for what rests: market and IOC orders never need one.
        order = Order(oid, account, side, price, left, kind, tag, self.step)
        levels = self._levels[side]
        queue = levels.get(price)
        if queue is None:
            queue = levels[price] = _Level((order,))
            queue.volume = left
            heapq.heappush(self._heap[side], -price if side == BUY else price)
        else:
            queue.append(order)
            queue.volume += left
        self.resting[oid] = order
        mine = self._by_account.get(account)
        if mine is None:
            self._by_account[account] = {oid}
        else:
            mine.add(oid)
        status = "rested" if filled == 0 else "partial"
        return _new_tuple(OrderResult, (oid, status, filled, left, trades, "", stp))

    def _reason(self, side, qty, price, kind) -> str:
        if side not in (BUY, SELL):
            return f"side {side!r}: allowed +1 (buy) or -1 (sell)"
        if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
            return f"qty {qty!r}: must be a positive whole number of lots"
        if kind not in ("limit", "market", "ioc"):
            return f"kind {kind!r}: allowed 'limit', 'market', 'ioc'"
        if kind == "market":
            return "a market order takes no price"
        if price is None or not isinstance(price, int) or isinstance(price, bool):
            return f"price {price!r}: a {kind} order needs an integer tick"
        return self._check_price(price)

    def _match(
        self, account: int, side: int, oid: int, tag: str, qty: int, limit: int | None
    ) -> tuple[int, list[Trade], list[Order] | tuple[()], bool]:
        """Match an incoming order against the opposite side up to ``limit`` (None: no limit).
        Returns the lots left, the trades, the own resting orders that self-trade prevention
        cancelled, and whether prevention stopped the incoming order (``cancel_incoming``)."""
        opp = -side
        levels, heap = self._levels[opp], self._heap[opp]
        orders, by_account = self.resting, self._by_account
        trades: list[Trade] = []
        stp: list[Order] | tuple[()] = ()
        stopped = False
        step = self.step
        buying = side == BUY
        filled = 0
        pq = 0
        best = 0
        while qty > 0:
            # best opposite level (inlined _best: drop heap keys of emptied levels)
            while heap:
                best = -heap[0] if opp == BUY else heap[0]
                if best in levels:
                    break
                heapq.heappop(heap)
            else:
                break
            if limit is not None and (best > limit if buying else best < limit):
                break
            queue = levels[best]
            took = 0  # lots taken at this level (its volume is updated once, after the pass)
            while queue and qty > 0:
                resting = queue[0]
                if not resting.alive:
                    queue.popleft()
                    continue
                r_acc = resting.account
                if r_acc == account and r_acc not in self.self_match:
                    if self.stp == "cancel_incoming":
                        stopped = True
                        break
                    if not stp:
                        stp = []
                    stp.append(
                        Order(
                            resting.id,
                            r_acc,
                            resting.side,
                            resting.price,
                            resting.qty,
                            resting.kind,
                            resting.tag,
                            resting.step,
                            False,
                        )
                    )
                    self._kill(resting)  # cannot empty the level while `took` lots count in it
                    queue.popleft()
                    continue
                rq = resting.qty
                q = qty if qty < rq else rq
                qty -= q
                took += q
                r_id = resting.id
                if buying:
                    trades.append(
                        _new_tuple(
                            Trade, (step, best, q, BUY, account, r_acc, oid, r_id, tag, resting.tag)
                        )
                    )
                else:
                    trades.append(
                        _new_tuple(
                            Trade,
                            (step, best, q, SELL, r_acc, account, r_id, oid, resting.tag, tag),
                        )
                    )
                if q == rq:
                    resting.qty = 0
                    resting.alive = False
                    del orders[r_id]
                    by_account[r_acc].discard(r_id)
                    queue.popleft()
                else:
                    resting.qty = rq - q
            if took:
                filled += took
                pq += best * took
                rest = queue.volume - took
                if rest <= 0:
                    del levels[best]
                else:
                    queue.volume = rest
            elif not queue and best in levels:
                # a listed level whose queue ran dry without a fill still counted live lots: the
                # volume bookkeeping broke (matching would otherwise spin on it for ever)
                raise RuntimeError(f"price level {best} lists {queue.volume} lots but no orders")
            if stopped:
                break
        if filled:
            self.last_price = trades[-1].price
            self._vwap_pq += pq
            self._vwap_q += filled
            self.volume_total += filled
        return qty, trades, stp, stopped

    def _kill(self, order: Order) -> None:
        """Remove a live resting order from the books (its queue entry is dropped lazily)."""
        order.alive = False
        oid, side, price = order.id, order.side, order.price
        del self.resting[oid]
        self._by_account[order.account].discard(oid)
        levels = self._levels[side]
        level = levels[price]
        left = level.volume - order.qty
        if left <= 0:
            del levels[price]
        else:
            level.volume = left

    # -- call auction for a batch of market orders -------------------------------------------
    def auction(
        self, orders: list[tuple[int, int, int, str]], ref: int
    ) -> tuple[list[int], list[Trade], list[int]]:
        """Uniform-price call auction of market orders ``(account, side, qty, tag)`` against each
        other and the resting book.

        Opposite market orders cross first; only their imbalance meets the book, sweeping it
        from the best level. Every trade prints at one price: the last book level the imbalance
        reached, or ``ref`` (tick) when the orders balance or the book is empty on that side.
        Returns (order ids, trades, unfilled lots per order), orders kept in the given sequence.
        """
        ids = []
        for account, side, qty, _ in orders:
            if side not in (BUY, SELL) or not isinstance(qty, int) or qty <= 0:
                raise ValueError(f"auction order ({account}, {side}, {qty}): bad side or qty")
            ids.append(self._next_id)
            self._next_id += 1
        left = [q for _, _, q, _ in orders]
        buys = [i for i, o in enumerate(orders) if o[1] == BUY]
        sells = [i for i, o in enumerate(orders) if o[1] == SELL]
        total_b = sum(left[i] for i in buys)
        total_s = sum(left[i] for i in sells)
        long_side, short_side = (sells, buys) if total_s > total_b else (buys, sells)
        excess_side = SELL if total_s > total_b else BUY
        imbalance = abs(total_s - total_b)
        # 1. how far the imbalance reaches into the book, and the clearing price
        book_side = -excess_side
        price = ref
        need = imbalance
        plan: list[tuple[int, int]] = []  # (level price, lots) from the book
        book = self._levels[book_side]
        if need:
            for p in sorted(book, reverse=(book_side == BUY)):
                if need == 0:
                    break
                q = min(need, book[p].volume)
                plan.append((p, q))
                need -= q
                price = p
        trades: list[Trade] = []
        k = 0  # cursor: long_side orders before it are filled (lots only ever go down)
        # 2. the imbalance fills against the book, in price-time order, at the clearing price
        for p, q in plan:
            queue = book[p]
            while q > 0 and queue:
                resting = queue[0]
                if not resting.alive:
                    queue.popleft()
                    continue
                while k < len(long_side) and left[long_side[k]] == 0:
                    k += 1
                if k == len(long_side):
                    break
                i = long_side[k]
                acc, side, _, tag = orders[i]
                if resting.account == acc:  # self-trade prevention: cancel the resting order
                    self._kill(resting)
                    queue.popleft()
                    continue
                x = min(q, left[i], resting.qty)
                trades.append(self._print(acc, side, ids[i], tag, resting, x, price))
                left[i] -= x
                q -= x
                resting.qty -= x
                queue.volume -= x
                if resting.qty == 0:
                    resting.alive = False
                    del self.resting[resting.id]
                    self._by_account[resting.account].discard(resting.id)
                    queue.popleft()
            if queue.volume <= 0:  # (self-trade prevention may have removed it already)
                book.pop(p, None)
        # 3. what is left on the long side crosses the other side's orders, same price
        for j in short_side:
            while left[j] > 0:
                while k < len(long_side) and left[long_side[k]] == 0:
                    k += 1
                # the first order with lots left, skipping j's own account
                c = k
                while c < len(long_side) and (
                    left[long_side[c]] == 0 or orders[long_side[c]][0] == orders[j][0]
                ):
                    c += 1
                if c == len(long_side):
                    break
                i = long_side[c]
                x = min(left[i], left[j])
                b, s_ = (i, j) if orders[i][1] == BUY else (j, i)
                trades.append(
                    Trade(
                        self.step,
                        price,
                        x,
                        excess_side,
                        orders[b][0],
                        orders[s_][0],
                        ids[b],
                        ids[s_],
                        orders[b][3],
                        orders[s_][3],
                    )
                )
                left[i] -= x
                left[j] -= x
        for t in trades:
            self.last_price = t.price
            self._vwap_pq += t.price * t.qty
            self._vwap_q += t.qty
            self.volume_total += t.qty
        return ids, trades, left

    def _print(
        self, acc: int, side: int, oid: int, tag: str, resting: Order, qty: int, price: int
    ) -> Trade:
        if side == BUY:
            return Trade(
                self.step, price, qty, BUY, acc, resting.account, oid, resting.id, tag, resting.tag
            )
        return Trade(
            self.step, price, qty, SELL, resting.account, acc, resting.id, oid, resting.tag, tag
        )

    # -- cancel ------------------------------------------------------------------------------
    def cancel(self, order_id: int) -> Order | None:
        """Cancel a resting order; returns it (with its unfilled qty) or None if not resting."""
        order = self.resting.get(order_id)
        if order is None:
            return None
        self._kill(order)
        return order

    def why_not_resting(self, order_id: Any) -> str:
        """Why ``order_id`` cannot be cancelled: never issued by this book, or gone."""
        if not isinstance(order_id, int) or isinstance(order_id, bool):
            return f"order id {order_id!r}: order ids are whole numbers"
        if not 1 <= order_id < self._next_id:
            return f"order {order_id}: never issued by this book (ids 1..{self._next_id - 1})"
        if order_id in self.resting:
            return ""
        return f"order {order_id}: not resting (filled, cancelled, or expired at a day's end)"

    def cancel_account(self, account: int) -> list[Order]:
        return [self.cancel(o.id) for o in self.open_orders(account)]  # type: ignore[misc]

    def clear(self) -> list[Order]:
        """Expire every resting order (day orders at the close); returns them."""
        gone = list(self.resting.values())
        for o in gone:
            o.alive = False
        self.resting.clear()
        self._by_account.clear()
        for side in (BUY, SELL):
            self._levels[side].clear()
            self._heap[side].clear()
        return gone

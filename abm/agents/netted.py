"""The retail crowd behind two omnibus accounts: the fast engine (``retail.engine = "netted"``).

A broker clears a large retail crowd through omnibus accounts and keeps each customer's book
itself. Here the long customers clear through one omnibus account and the short customers
through another (a retail trader holds lots in its own direction only); the customers' lots,
basis, cash, deposits, fees, calls and bad debt are a
[`CustomerLedger`][abm.exchange.omnibus.CustomerLedger]. The traders are the same draws as the
per-agent crowd's on the same seed ([`draw_population`][abm.agents.crowd.draw_population]) and
follow the same rules, vectorised; what changes is how their orders reach the book:

- the orders a step's customers send are netted into one order of the omnibus account per
  (side, open or close, market or limit price), sent in the order of their first customer's
  arrival, with the customers queued behind it in arrival order;
- an omnibus order's fills are shared among its customers by arrival
  ([`allocate_by_arrival`][abm.exchange.omnibus.allocate_by_arrival] arithmetic: the first
  customer's lots take the first trades' prices); the broker's forced close of the omnibus
  account is sliced over the customers pro rata to the lots they hold free
  ([`allocate_pro_rata`][abm.exchange.omnibus.allocate_pro_rata]), and its fills go to the
  slices in customer order, as the per-agent broker slices a paced close over accounts and
  its auction fills them in account order;
- the decisions of a round read the market as it stands when the round starts (the mark does
  not move between two customers of one round), but each customer's margin admission reads
  the mark the round's earlier market orders would have printed before it, as a per-agent
  trader reads the last trade; a customer whose clock fires twice in a step acts twice, the
  second time after the step's first firings have traded;
- two customers of one omnibus account trade with each other in the book as two retail
  accounts do (the book lets an omnibus account's orders meet; the clearing house books the
  fill's fees, the customers' broker the rest);
- a customer who starts closing, is stopped out or is liquidated keeps the orders it already
  has working (their lots are reserved), rather than cancelling them.

ODD §7 states these semantics; ``tests/test_netted.py`` checks the accounting by hand and the
summary metrics' distributions against the per-agent engine.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np
import pandas as pd

from abm.agents.crowd import Crowd, Roster, draw_population
from abm.agents.retail import Acting, Actions, runs_as_arrays
from abm.exchange import BUY, SELL
from abm.exchange.clearing import CHANNELS, Account, InvariantError
from abm.exchange.omnibus import CustomerLedger, allocate_pro_rata, lots_to_liquidate

if TYPE_CHECKING:
    from abm.agents.retail import RetailRules
    from abm.model import MarketModel

WAITING, HOLDING, CLOSING, DONE = 0, 1, 2, 3
#: an order's kind: market, limit at a tick, limit at an offset from the mid when sent
MARKET, LIMIT, RELATIVE = 0, 1, 2
_TICKS = 2**41  # the span of ticks an order key holds
STATES = np.array(["waiting", "holding", "closing", "done"])


class _Queue:
    """The customers behind one omnibus order, in arrival order: ``who`` (indices) and
    ``want`` (lots each, > 0); ``done`` lots of it have filled."""

    __slots__ = (
        "who",
        "want",
        "cum",
        "done",
        "booked",
        "side",
        "closes",
        "tick",
        "kind",
        "tag",
        "acc",
    )

    def __init__(self, who, want, side, closes, tick, kind, tag, acc, cum=None):
        self.acc = acc
        self.who = who
        self.want = want
        self.cum = want.cumsum() if cum is None else cum  # (given: the sender's running sum)
        self.done = 0  # lots the exchange has filled
        self.booked = 0  # ... of which booked to the customers
        self.side, self.closes, self.tick, self.kind, self.tag = side, closes, tick, kind, tag

    @property
    def total(self) -> int:
        return int(self.cum[-1])

    @property
    def left(self) -> int:
        return int(self.cum[-1]) - self.done

    def share(
        self, qty: np.ndarray, per_lot: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Share the fills not yet booked (``qty`` lots each, in the order they printed) by
        arrival: customer j holds the queue's lots (cum_j − want_j, cum_j], the fills cover
        (booked, booked + Σ qty], and a customer's lots take the fills in order. ``per_lot``
        (fills × k) are amounts per lot of each fill (e.g. its price). Returns the
        customers, their lots and their Σ lots × amount (customers × k), from running totals
        so that they add up to the fills'."""
        lo = self.booked
        hi = lo + int(qty.sum())
        self.booked = hi
        cum = self.cum
        if lo == 0 and hi == int(cum[-1]) and len(qty) == 1:  # one fill took it all
            return self.who, self.want, self.want[:, None] * per_lot[0]
        start = int(np.searchsorted(cum, lo, "right"))
        stop = min(int(np.searchsorted(cum, hi, "left")) + 1, len(cum))
        c, w = cum[start:stop], self.want[start:stop]
        upto = np.minimum(c, hi) - lo  # the fills' lots up to the end of each customer's part
        since = np.maximum(c - w, lo) - lo
        lots = upto - since
        if len(qty) == 1:  # one fill: every lot at its amounts
            return self.who[start:stop], lots, lots[:, None] * per_lot[0]
        edges = np.concatenate(([0], np.cumsum(qty)))
        out = np.empty((len(c), per_lot.shape[1]))
        for k in range(per_lot.shape[1]):
            run = np.concatenate(([0.0], np.cumsum(qty * per_lot[:, k])))
            out[:, k] = np.interp(upto, edges, run) - np.interp(since, edges, run)
        return self.who[start:stop], lots, out

    def rest(self) -> tuple[np.ndarray, np.ndarray]:
        """The customers not yet filled in full, and their unfilled lots."""
        filled = np.minimum(np.maximum(self.done - (self.cum - self.want), 0), self.want)
        left = self.want - filled
        keep = left > 0
        return self.who[keep], left[keep]


class NettedCrowd(mesa.Agent):
    """The retail crowd as arrays, clearing through two omnibus accounts (``long_account``,
    ``short_account``, owner ``retail``, without delivery rights). One Mesa agent (in
    ``model.agents_by_type[NettedCrowd]``) whose customers can be listed and inspected.

    The same interface as [`Crowd`][abm.agents.crowd.Crowd] for the model (``step``,
    ``lots_opened``, ``activations``, ``trend_signal``, ``activity``, ``traders``); the
    customers' books are ``ledger`` and the arrays here (``state``, ``pending``: lots
    reserved by working close orders, ``liquidate``: lots a liquidation still has to close,
    ``n_rejected``, ``n_liquidations``, ``transfers`` by channel). ``customers()`` lists them
    as a table, ``traders`` as inspectable views."""

    def __init__(
        self, model: MarketModel, params: Any, rules: RetailRules, holds_in_harvest: bool = False
    ):
        if not runs_as_arrays(rules):
            raise ValueError(
                f"retail.rules = {type(rules).__module__}:{type(rules).__name__}: the netted "
                "engine decides with act_many (array operations); this rule changes act, "
                "opening_lots or on_margin_call without it and runs per trader: set "
                "retail.engine = 'agents'"
            )
        super().__init__(model)
        self.params = params
        self.rules = rules
        self.rounds = params.netting_rounds
        self.bucket = params.netting_tick_bucket
        self.holds_in_harvest = holds_in_harvest
        ex = model.exchange
        self.exchange = ex
        self.trend_signal = 0.0
        self.lots_opened = 0
        self.fast_move = self.slow_move = 0.0
        self.activity = params.activity
        self.activations = 0
        pop = draw_population(model, params, model.stream("crowd"), holds_in_harvest)
        self.pop = pop
        n = len(pop.direction)
        self.n = n
        ch = ex.clearing
        self.multiplier = ex.contract.multiplier
        self.ledger = CustomerLedger(pop.direction, pop.deposit, self.multiplier, ch.fee_per_lot)
        longs = pop.direction > 0
        self.long_account = ex.open_account("retail", False, math.fsum(pop.deposit[longs]))
        self.short_account = ex.open_account("retail", False, math.fsum(pop.deposit[~longs]))
        self.long_account.customers = self.short_account.customers = self
        # two customers of one omnibus account trade with each other in the book, as two
        # retail accounts do in the per-agent engine
        ex.book.self_match.update((self.long_account.id, self.short_account.id))
        #: customer indices of each omnibus account
        self.members = {1: np.flatnonzero(longs), -1: np.flatnonzero(~longs)}
        self.state = np.zeros(n, dtype=np.int8)
        self.pending = np.zeros(n, dtype=np.int64)
        self.liquidate = np.zeros(n, dtype=np.int64)
        self._liquidating = np.zeros(0, dtype=np.int64)  # who may have lots to liquidate
        self.round_trip_lots = np.ones(n, dtype=np.int64)
        self.n_rejected = np.zeros(n, dtype=np.int64)
        self._count = np.zeros(n, dtype=np.int64)  # scratch of `_repeats`, kept zero
        self.n_liquidations = np.zeros(n, dtype=np.int64)
        self.broker_receivable = np.zeros(n)
        self.transfers = {c: np.zeros(n) for c in CHANNELS}
        #: customers called at the last settlement (the broker acts at the next open)
        self.called = np.zeros(0, dtype=np.int64)
        self.queues: dict[int, _Queue] = {}
        self._current: _Queue | None = None  # the omnibus order being submitted
        self._incoming: _Queue | None = None  # ... until its first fill names its order id
        self._sending: Account | None = None
        #: the broker's forced-close orders being sent, by omnibus account id
        self._forced: dict[int, _Queue] = {}
        #: fills of queued orders not yet booked to their customers: (queue, lots, price,
        #: fair value, channel)
        self._fills: list[tuple[_Queue, int, float, float, str]] = []
        deadline = ex.calendar.deadline_step
        self.opens = _by_step(pop.open_step, np.arange(n))
        closing = (pop.close_step >= 0) & (pop.close_step < deadline)
        self.closes = _by_step(pop.close_step[closing], np.flatnonzero(closing))
        ex.day_end_hooks.append(self.day_end)
        ex.broker.customer_desks.append(self)

    # -- what the model reads ---------------------------------------------------------------
    def __len__(self) -> int:
        return self.n

    @property
    def traders(self) -> Roster:
        return Roster(self, CustomerView, "customer")

    def account_of(self, i: int) -> Account:
        """The omnibus account customer ``i`` clears through."""
        return self.long_account if self.ledger.direction[i] > 0 else self.short_account

    def customers(self) -> pd.DataFrame:
        """One row per customer: its draws, state and book at the mark (money, lots)."""
        self.flush()
        ex = self.exchange
        led = self.ledger
        eq = led.equity(ex.mark)
        d = led.direction.astype(np.int64)
        return pd.DataFrame(
            {
                "customer": np.arange(self.n),
                "direction": d,
                "trend": self.pop.trend,
                "state": STATES[self.state],
                "lots": led.lots,
                "deposits": led.deposits,
                "cash": led.cash,
                "equity": eq,
                "pnl": eq - led.deposits,
                "n_margin_calls": led.n_margin_calls,
                "n_liquidations": self.n_liquidations,
                "went_negative": led.went_negative,
            }
        )

    def accounts_rows(self, mark: float) -> pd.DataFrame:
        """The customers as rows of the run's accounts table (the columns of
        [`accounts_frame`][abm.metrics.accounts_frame]), in place of the two omnibus accounts."""
        self.flush()
        led = self.ledger
        d = led.direction.astype(np.int64)
        eq = led.equity(mark)
        n = self.n
        zeros = np.zeros(n)
        cols = {
            "account": np.where(d > 0, self.long_account.id, self.short_account.id),
            "owner": np.full(n, "retail", dtype=object),
            "deliverable": np.zeros(n, dtype=bool),
            "agent_id": np.full(n, -1),
            "direction": d,
            "trend": self.pop.trend,
            "state": STATES[self.state].astype(object),
            "deposits": led.deposits,
            "equity": eq,
            "pnl": eq - led.deposits,
            "long": np.where(d > 0, led.lots, 0),
            "short": np.where(d < 0, led.lots, 0),
            "fees": led.fees,
            "realized": led.realized,
            "delivery_pnl": zeros,
            "delivery_cost_paid": zeros,
            "bad_debt_received": led.bad_debt_received,
            "clawed_back": zeros,
            "penalty_paid": zeros,
            "n_margin_calls": led.n_margin_calls,
            "n_liquidations": self.n_liquidations,
            "went_negative": led.went_negative,
            "broker_receivable": self.broker_receivable,
        }
        for c in CHANNELS:
            cols[f"transfer_{c}"] = self.transfers[c]
        cols["customer"] = np.arange(n)
        return pd.DataFrame(cols)

    # -- the exchange's calls ---------------------------------------------------------------
    def on_fill(
        self,
        acc: Account,
        order_id: int,
        side: int,
        qty: int,
        price: float,
        closes: bool,
        ref_price: float,
        channel: str,
    ) -> None:
        """A fill of ``qty`` lots at ``price`` on one of the omnibus accounts' orders: the
        customers queued behind it share it by arrival (behind a broker's forced close, its
        slices in customer order: `expect_forced`)."""
        q = self.queues.get(order_id)
        if q is None and self._incoming is not None and acc is self._sending:
            q = self._incoming
            self.queues[order_id] = q
            self._incoming = None
        if q is None:
            q = self._forced.get(acc.id)
            if q is not None:
                self.queues[order_id] = q
        if q is not None:  # booked to its customers when the crowd next looks (flush)
            q.done += qty
            if q.done >= q.total:
                del self.queues[order_id]
            self._fills.append((q, qty, price, ref_price, channel))
        else:
            raise InvariantError(
                f"step {self.exchange.step}: omnibus account {acc.id} filled {qty} lots on "
                f"order {order_id}, which neither its customers sent nor its broker announced"
            )

    def flush(self) -> None:
        """Book the fills of the crowd's queued orders since the last flush to their
        customers, all orders at once: each order's fills are shared by arrival (a customer's
        lots take the fills' prices in order, [`_Queue.share`][abm.agents.netted._Queue.share]
        arithmetic laid end to end for every order in one lot axis), then the opening lots of
        all of them are booked, then the closing lots (a close never needs lots opened later);
        a customer left flat below zero is made whole. Every reader of the customers' books
        flushes first."""
        fills = self._fills
        if not fills:
            return
        self._fills = []
        # the fills by order (first touched first), each order's in the order they printed
        slot: dict[int, int] = {}
        queues: list[_Queue] = []
        fq = []
        for f in fills:
            k = slot.get(id(f[0]))
            if k is None:
                k = slot[id(f[0])] = len(queues)
                queues.append(f[0])
            fq.append(k)
        _, qty, price, ref, channel = zip(*fills, strict=True)
        fq = np.array(fq)
        by = np.argsort(fq, kind="stable")
        fq = fq[by]
        qty = np.array(qty, dtype=np.int64)[by]
        price = np.array(price)[by]
        ref = np.array(ref)[by]
        side = np.array([q.side for q in queues])[fq]
        m = self.multiplier
        gain = side * (ref - price) * m  # per lot: the buyer receives (ref − price)
        names = sorted(set(channel))
        chan = np.array([names.index(c) for c in channel])[by] if len(names) > 1 else None
        # one lot axis: order q's lots sit at base_q + (0, total_q]; its new fills cover
        # base_q + (booked_q, booked_q + Σ qty]; between them the running sums stay flat
        total = np.array([int(q.cum[-1]) for q in queues])
        base = np.concatenate(([0], np.cumsum(total)[:-1]))
        booked = np.array([q.booked for q in queues])
        lo_q = base + booked
        filled = np.bincount(fq, qty, len(queues)).astype(np.int64)
        run = np.cumsum(qty)
        nfills = np.bincount(fq, minlength=len(queues))
        within = run - np.repeat(np.cumsum(filled) - filled, nfills)  # lots into its order
        x_end = lo_q[fq] + within
        x_start = x_end - qty
        xe = np.column_stack((x_start, x_end)).ravel().astype(float)

        def running(per_lot: np.ndarray) -> np.ndarray:
            v = np.cumsum(qty * per_lot)
            return np.column_stack((v - qty * per_lot, v)).ravel()

        v_edge = running(price)
        g_edges = {
            c: running(gain if chan is None else np.where(chan == k, gain, 0.0))
            for k, c in enumerate(names)
        }
        whos, cums, wants, closes_of, counts = [], [], [], [], []
        for k, q in enumerate(queues):
            new = int(filled[k])
            q.booked += new
            if len(q.who) > 64:  # a long queue: only the customers these fills reach
                start = int(np.searchsorted(q.cum, q.booked - new, "right"))
                stop = min(int(np.searchsorted(q.cum, q.booked, "left")) + 1, len(q.cum))
            else:
                start, stop = 0, len(q.who)
            whos.append(q.who[start:stop])
            cums.append(q.cum[start:stop])
            wants.append(q.want[start:stop])
            closes_of.append(q.closes)
            counts.append(stop - start)
        counts = np.array(counts)
        shift = np.repeat(base, counts)
        cum = np.concatenate(cums) + shift
        want = np.concatenate(wants)
        lo = np.repeat(lo_q, counts)
        hi = np.repeat(lo_q + filled, counts)
        end = np.minimum(cum, hi)
        start = np.maximum(cum - want, lo)
        lots = end - start
        got = lots > 0
        who = np.concatenate(whos)[got]
        lots, start, end = lots[got], start[got], end[got]
        closes = np.repeat(np.array(closes_of), counts)[got]
        value = np.interp(end, xe, v_edge) - np.interp(start, xe, v_edge)
        for c, g in g_edges.items():
            np.add.at(self.transfers[c], who, np.interp(end, xe, g) - np.interp(start, xe, g))
        led = self.ledger
        for closing in (False, True):
            sel = closes == closing
            if not sel.any():
                continue
            w, n, v = who[sel], lots[sel], value[sel]
            if self._repeats(w):  # a customer behind two orders: its fills as one
                uniq, inv = np.unique(w, return_inverse=True)
                n = np.bincount(inv, n, len(uniq)).astype(np.int64)
                v = np.bincount(inv, v, len(uniq))
                w = uniq
            led.book(w, n, v, closing, distinct=True)
            if closing:
                self.pending[w] -= n
                self._cover(w)

    def _book(self, who, lots, price, closes, side, ref_price, channel, fees=True) -> None:
        """Book customers' fills at ``price`` (price units) on ``side`` and their execution
        transfer against ``ref_price`` (money: the buyer receives (ref − price) × lots ×
        multiplier); a customer left flat below zero is made whole at once."""
        led = self.ledger
        led.book(who, lots, lots * price, closes, fees=fees, distinct=True)
        self.transfers[channel][who] += side * (ref_price - price) * lots * self.multiplier
        if closes:
            self._cover(who)

    def _cover(self, who: np.ndarray) -> None:
        """Customers among ``who`` who are flat with negative cash: the loss regime makes them
        whole, booked on their omnibus account (the fund first, in customer order)."""
        led = self.ledger
        bust = who[(led.lots[who] == 0) & (led.cash[who] < 0)]
        if not len(bust):
            return
        ch = self.exchange.clearing
        mark = self.exchange.mark
        for d, acc in ((1, self.long_account), (-1, self.short_account)):
            mine = bust[led.direction[bust] == d]
            if not len(mine):
                continue
            deficit = -led.cash[mine]
            led.cash[mine] += deficit
            led.bad_debt_received[mine] += deficit
            led.went_negative[mine] = True
            fund, _ = ch.cover_customers(acc, math.fsum(deficit), mark)
            # the fund's part goes to the first customers, the broker's to the rest
            before = np.cumsum(deficit) - deficit
            from_fund = np.clip(fund - before, 0.0, deficit)
            self.broker_receivable[mine] += deficit - from_fund

    def on_gone(self, acc: Account, order_id: int, remaining: int) -> None:
        """An omnibus order left the book with ``remaining`` lots unfilled: its customers'
        reservations are released (the order being sent is settled by its sender)."""
        q = self.queues.pop(order_id, None)
        if q is None or q is self._current:  # the order being sent: its sender settles it
            return
        if self._forced.get(acc.id) is q:  # the broker's: settled by `forced_sent`
            return
        self._release(q)

    # -- the broker's forced close of an omnibus account ---------------------------------------
    def expect_forced(self, acc: Account, side: int, lots: int) -> None:
        """The broker is about to send a forced close of ``lots`` lots on ``side`` for omnibus
        account ``acc``: its customers holding lots free to close are queued behind it in
        customer order, each for its pro-rata slice of the order (largest remainder), their
        lots reserved. The fills then go to the slices in that order (`flush`), as the
        per-agent broker slices its paced close over accounts and its call auction, or its
        market orders sent one by one, fill the accounts in order."""
        self.flush()
        idx = self.members[1 if acc is self.long_account else -1]
        free = np.maximum(self.ledger.lots[idx] - self.pending[idx], 0)
        share = allocate_pro_rata(free, lots)
        if int(share.sum()) != lots:
            raise InvariantError(
                f"step {self.exchange.step}: the broker force-closes {lots} lots of omnibus "
                f"account {acc.id}; its customers hold {int(free.sum())} free to close"
            )
        nz = share > 0
        q = _Queue(idx[nz], share[nz], side, True, 0, MARKET, "forced_close", acc)
        self.pending[q.who] += q.want
        self._forced[acc.id] = q

    def forced_sent(self, acc: Account) -> None:
        """The broker's forced close of ``acc`` has traded what it could: the fills are booked
        to the customers at once (so that a customer left flat below zero is made whole
        before the broker looks at the omnibus account's own equity), and the unfilled lots
        are released (the order does not rest)."""
        q = self._forced.pop(acc.id, None)
        if q is None:
            return
        for oid in [oid for oid, x in self.queues.items() if x is q]:
            del self.queues[oid]
        self._release(q)
        self.flush()

    def _release(self, q: _Queue) -> None:
        """The unfilled lots of a close order's customers are free to close again."""
        if q.closes and q.done < q.total:
            who, left = q.rest()
            self.pending[who] -= left

    def on_expiry(self, acc: Account, settle: float, ref_price: float) -> None:
        """The clearing house closed the omnibus account's lots at the final settlement:
        so do its customers (no fee, channel ``expiry``)."""
        self.flush()
        led = self.ledger
        led.mark_to_market(settle)
        idx = self.members[1 if acc is self.long_account else -1]
        held = idx[led.lots[idx] > 0]
        if len(held):
            side = SELL if acc is self.long_account else BUY
            self._book(held, led.lots[held].copy(), settle, True, side, ref_price, "expiry", False)
        self.pending[idx] = 0

    def day_end(self, settle: float, next_rate: float) -> int:
        """At the settlement: the customers' books are marked, those below maintenance are
        called for the next session's rate and top up with probability
        ``retail.top_up_probability``; the books are reconciled with the omnibus accounts.
        Returns the calls issued."""
        self.flush()
        ex = self.exchange
        ch = ex.clearing
        led = self.ledger
        led.mark_to_market(settle)
        who, amount = led.margin_calls(settle, next_rate, ch.maintenance_ratio)
        self.called = who
        if len(who):
            pay = self.model.rng.random(len(who)) < self.params.top_up_probability
            who_p, amt_p = who[pay], amount[pay]
            led.deposit(who_p, amt_p)
            for d, acc in ((1, self.long_account), (-1, self.short_account)):
                mine = led.direction[who_p] == d
                total = math.fsum(amt_p[mine])
                if total > 0:
                    ch.deposit(acc, total)
        self.reconcile(settle)
        return len(who)

    def reconcile(self, mark: float) -> None:
        """The customers add up to the omnibus accounts: lots, deposits and equity at
        ``mark``; raises InvariantError naming the gap."""
        self.flush()
        la, sa = self.long_account, self.short_account
        if la.short or sa.long:
            raise InvariantError(
                f"the long omnibus account holds {la.short} short lots, the short one "
                f"{sa.long} long lots: each holds its own side only"
            )
        m = self.multiplier
        self.ledger.reconcile(la.long, sa.short, la.equity(mark, m) + sa.equity(mark, m), mark)
        dep = math.fsum(self.ledger.deposits)
        if abs(dep - (la.deposits + sa.deposits)) > 1e-9 * max(1.0, dep):
            raise InvariantError(
                f"customer deposits {dep:.6f} differ from the omnibus accounts' "
                f"{la.deposits + sa.deposits:.6f}"
            )

    # -- the step ---------------------------------------------------------------------------
    def step(self) -> None:
        """The crowd's step, in the per-agent engine's order: at a day's start the closers
        re-post their patient closes and the broker liquidates the customers whose calls went
        unanswered; liquidations still open are worked; the step's scheduled openings and
        starts of closing; then the customers whose Poisson clock fires act."""
        self.flush()
        model = self.model
        ex = self.exchange
        step = model.step_index
        p = self.params
        self.trend_signal = model.recent_return(p.trend_lookback_steps)
        before = ex.after_deadline()
        if ex.calendar.is_day_start(step) and not before:
            self._repost_closers()
        if not before:
            self._scheduled(step)
        if self.n == 0:
            return
        self.activity = self._activity(step) if p.attention else p.activity
        k = int(model.rng.binomial(self.n, self.activity))
        self.activations += k
        if k and not before:
            who = model.rng.integers(0, self.n, k)
            u = model.rng.random((k, 5))
            # a customer whose clock fires twice in a step acts twice, as a per-agent trader
            # does: its first firings act (in arrival order), then its second ones, once the
            # first have traded, and so on
            while len(who):
                first = self._first_entries(who)
                self._act(who[first], u[first])
                if len(first) == len(who):
                    break
                later = np.ones(len(who), bool)
                later[first] = False
                who, u = who[later], u[later]

    #: the trading probability this step: the per-agent crowd's attention rule
    _activity = Crowd._activity

    def _repeated(self, who: np.ndarray) -> np.ndarray:
        """Which entries of ``who`` name a customer that appears more than once, by counting
        (``_count``: one zero per customer, kept zero), not sorting: at a million customers a
        step's ten thousand firings rarely repeat, and only the repeated need a sort."""
        count = self._count
        np.add.at(count, who, 1)
        rep = count[who] > 1
        count[who] = 0
        return rep

    def _repeats(self, who: np.ndarray) -> bool:
        """Whether a customer appears more than once in ``who``."""
        return bool(self._repeated(who).any())

    def _first_entries(self, who: np.ndarray) -> np.ndarray:
        """The positions of each customer's first entry in ``who``, ascending (as
        ``np.unique(who, return_index=True)`` sorted)."""
        rep = self._repeated(who)
        if not rep.any():
            return np.arange(len(who))
        r = np.flatnonzero(rep)
        _, f = np.unique(who[r], return_index=True)
        first = ~rep
        first[r[f]] = True
        return np.flatnonzero(first)

    def _repost_closers(self) -> None:
        """At the day's start (the book was cleared): every closing customer posts a patient
        limit for all its lots at the last settlement; one who holds none is done."""
        closing = np.flatnonzero(self.state == CLOSING)
        if not len(closing):
            return
        lots = self.ledger.lots[closing]
        self.state[closing[lots == 0]] = DONE
        self._post_close(closing[lots > 0])

    def _post_close(self, who: np.ndarray) -> None:
        """A patient close of every free lot of ``who`` at the last settlement's tick."""
        ex = self.exchange
        free = self.ledger.lots[who] - self.pending[who]
        who, free = who[free > 0], free[free > 0]
        if not len(who):
            return
        tick = ex.book.clip(ex.contract.to_tick(ex.settle_price))
        d = self.ledger.direction[who].astype(np.int64)
        self._send(who, -d, free, True, np.full(len(who), tick), np.ones(len(who), bool))

    # -- the broker's desk for the customers (`Broker.customer_desks`) ------------------------
    def open_day(self) -> None:
        """At the open, with the broker's own liquidations: the customers called at the last
        settlement and still short of maintenance are queued for liquidation. After the
        deadline they are counted as the per-agent broker counts them, but the forced close,
        not the liquidation, trades their lots (`work` sends nothing then)."""
        self.flush()
        self._start_liquidations()

    def work(self) -> None:
        """When the broker works its liquidations (after the quotes, before anyone else
        trades): the customers' liquidations still open are sent."""
        if not self.exchange.after_deadline():
            self.flush()
            self._work_liquidations()
            self.flush()

    def _start_liquidations(self) -> None:
        """At the open, the customers called yesterday still under maintenance at yesterday's
        settlement and today's rate: enough of their lots to restore it are queued for
        liquidation (as `Broker.open_day`)."""
        who = self.called
        self.called = np.zeros(0, dtype=np.int64)
        if not len(who):
            return
        ex = self.exchange
        ch = ex.clearing
        led = self.ledger
        m = self.multiplier
        settle, rate, k = ex.prev_settle, ex.margin_rate_in_force, ch.maintenance_ratio
        lots = led.lots[who]
        eq = led.equity(settle, who)
        need = k * (abs(settle) * m * lots * rate)
        under = (lots > 0) & (eq < need)
        who, eq, lots = who[under], eq[under], lots[under]
        todo = lots_to_liquidate(eq, lots, settle, rate, k, m)
        go = todo > 0
        who, todo = who[go], todo[go]
        self.liquidate[who] = todo
        self._liquidating = np.union1d(self._liquidating, who)
        self.n_liquidations[who] += 1
        ex.broker.n_liquidations_started += len(who)
        self._withdraw(who)

    def _withdraw(self, who: np.ndarray) -> None:
        """Cancel the working orders of customers ``who`` (as the broker's desk cancels an
        account's orders before liquidating it): each omnibus order carrying any of them is
        cancelled and re-posted for its other customers, behind its price level."""
        if not len(who) or not self.queues:
            return
        ex = self.exchange
        hit = [(oid, q) for oid, q in self.queues.items() if np.isin(q.who, who).any()]
        for oid, q in hit:
            del self.queues[oid]
            ex.cancel(oid)
            rest_who, rest_lots = q.rest()
            out = np.isin(rest_who, who)
            if q.closes:
                self.pending[rest_who[out]] -= rest_lots[out]
            keep = ~out
            if keep.any():
                q2 = _Queue(
                    rest_who[keep], rest_lots[keep], q.side, q.closes, q.tick, q.kind, q.tag, q.acc
                )
                self._submit(q.acc, q2)

    def _work_liquidations(self) -> None:
        """Market orders for the lots liquidations still have to close (free lots only),
        one omnibus order a side, retried each step while the book shows nothing."""
        who = self._liquidating
        if not len(who):
            return
        who = who[self.liquidate[who] > 0]
        self._liquidating = who
        if not len(who):
            return
        led = self.ledger
        free = led.lots[who] - self.pending[who]
        q = np.minimum(self.liquidate[who], np.maximum(free, 0))
        flat = led.lots[who] == 0
        self.liquidate[who[flat]] = 0
        go = q > 0
        who, q = who[go], q[go]
        if not len(who):
            return
        ex = self.exchange
        d = led.direction[who].astype(np.int64)
        book = ex.book
        # the book shows nothing to trade with on a side: that side waits for the next step
        can = np.where(d > 0, book.best_bid is not None, book.best_ask is not None)
        who, q, d = who[can], q[can], d[can]
        if not len(who):
            return
        lots0 = led.lots[who].copy()
        self._send(
            who,
            -d,
            q,
            True,
            np.zeros(len(who), np.int64),
            np.zeros(len(who), bool),
            tag="liquidation",
        )
        done = lots0 - led.lots[who]
        self.liquidate[who] = np.maximum(self.liquidate[who] - done, 0)
        self.liquidate[who[led.lots[who] == 0]] = 0
        ex.broker.n_liquidation_orders += int((d > 0).any()) + int((d < 0).any())

    def _scheduled(self, step: int) -> None:
        """The step's openings (one order each: market, or a limit with probability
        ``limit_order_share``) and starts of voluntary closing."""
        opens = self.opens.get(step)
        if opens is not None:
            opens = opens[self.state[opens] == WAITING]
            if len(opens):
                self.state[opens] = HOLDING
                lots = self._opening_lots(opens)
                self.round_trip_lots[opens] = np.maximum(
                    1, np.floor(lots * self.params.noise_lots_share).astype(np.int64)
                )
                self.lots_opened += int(lots.sum())
                u = self.model.rng.random((len(opens), 2))
                d = self.ledger.direction[opens].astype(np.int64)
                self._orders(opens, d, lots, np.zeros(len(opens), bool), u[:, 0], u[:, 1])
        closes = self.closes.get(step)
        if closes is not None:
            st = self.state[closes]
            self._start_closing(closes[(st != DONE) & (st != CLOSING)])

    def _start_closing(self, who: np.ndarray) -> None:
        if not len(who):
            return
        self.state[who] = CLOSING
        held = self.ledger.lots[who] > 0
        self.state[who[~held]] = DONE
        self._post_close(who[held])

    def _opening_lots(self, who: np.ndarray) -> np.ndarray:
        """Lots of each opening order, as `RetailRules.opening_lots`."""
        cfg = self.params
        ex = self.exchange
        per_lot = max(abs(ex.mark), ex.contract.tick_size) * self.multiplier
        if cfg.leverage_mode == "margin":
            eq = self.ledger.equity(ex.mark, who)
            lots = np.floor(self.pop.leverage[who] * eq / (per_lot * ex.margin_rate_in_force))
        else:
            lots = np.floor(self.pop.leverage[who] * self.ledger.deposits[who] / per_lot)
        return np.clip(lots, cfg.lots_min, cfg.lots_max).astype(np.int64)

    def _act(self, who: np.ndarray, u: np.ndarray) -> None:
        """The customers whose clock fired and who hold a position before the deadline decide
        at once ([`RetailRules.act_many`][abm.agents.retail.RetailRules.act_many]: the
        shipped rule honours the stop-loss, may start closing, then trades noise or trend
        round trips in its direction); their orders are then sent."""
        ex = self.exchange
        if ex.step >= ex.deadline_step:
            return
        keep = self.state[who] == HOLDING
        who, u = who[keep], u[keep]
        if not len(who):
            return
        led = self.ledger
        lots = led.lots[who]
        t = Acting(
            who=who,
            direction=led.direction[who].astype(np.int64),
            lots=lots,
            free=lots - self.pending[who],
            deposits=led.deposits[who],
            equity=led.equity(ex.mark, who),
            trend=self.pop.trend[who],
            round_trip_lots=self.round_trip_lots[who],
            u=u,
            mark=ex.mark,
            trend_signal=self.trend_signal,
            harvest_hold=self.holds_in_harvest and ex.step >= ex.harvest_start_step,
            step=ex.step,
            params=self.params,
        )
        acts = self._checked(self.rules.act_many(t), len(who))
        stopped, closing, qty = acts.stop, acts.start_closing, acts.qty
        if stopped.any():
            s = who[stopped]
            self.state[s] = CLOSING
            free = led.lots[s] - self.pending[s]
            go = free > 0
            s = s[go]
            d = led.direction[s].astype(np.int64)
            self._send(s, -d, free[go], True, np.zeros(len(s), np.int64), np.zeros(len(s), bool))
        if closing.any():
            self._start_closing(who[closing])
        trade = qty != 0
        if not trade.any():
            return
        u_kind = u[:, 3] if acts.u_kind is None else acts.u_kind
        u_offset = u[:, 4] if acts.u_offset is None else acts.u_offset
        who, qty, u_kind, u_offset = who[trade], qty[trade], u_kind[trade], u_offset[trade]
        d = led.direction[who].astype(np.int64)
        add = qty > 0
        free = led.lots[who] - self.pending[who]
        reduce = ~add & (free > 0)
        qty = np.where(add, qty, np.minimum(-qty, np.maximum(free, 0)))
        go = add | reduce
        self._orders(who[go], d[go], qty[go], reduce[go], u_kind[go], u_offset[go])

    def _checked(self, acts: Actions, k: int) -> Actions:
        """A vectorised rule's actions, or a ValueError naming the rule and the field."""
        rule = f"{type(self.rules).__module__}:{type(self.rules).__name__}.act_many"
        if not isinstance(acts, Actions):
            raise ValueError(f"{rule} returned {type(acts).__name__}: it must return Actions")
        for name, kind in (("stop", "b"), ("start_closing", "b"), ("qty", "i")):
            v = getattr(acts, name)
            if not isinstance(v, np.ndarray) or v.shape != (k,) or v.dtype.kind != kind:
                raise ValueError(
                    f"{rule}: Actions.{name} must be a {'bool' if kind == 'b' else 'integer'} "
                    f"array of the {k} acting customers; got "
                    f"{getattr(v, 'dtype', type(v).__name__)} of shape {getattr(v, 'shape', '?')}"
                )
        for name in ("u_kind", "u_offset"):
            v = getattr(acts, name)
            if v is not None and (not isinstance(v, np.ndarray) or v.shape != (k,)):
                raise ValueError(f"{rule}: Actions.{name} must be None or {k} uniforms")
        both = acts.stop & acts.start_closing
        busy = (acts.stop | acts.start_closing) & (acts.qty != 0)
        if both.any() or busy.any():
            i = int(np.flatnonzero(both | busy)[0])
            raise ValueError(
                f"{rule}: customer {i} of the {k} acting both "
                + ("stops and starts closing" if both[i] else "closes and orders qty != 0")
                + ": a customer that stops or starts closing orders nothing else"
            )
        return acts

    def _orders(self, who, d, qty, closes, u_kind, u_offset) -> None:
        """The orders of a phase's customers (in arrival order) in ``retail.netting_rounds``
        rounds of consecutive customers, each round reading the market afresh (the mid its
        limit prices are set from, the mark its margin check uses) once the last round's
        orders have traded: between rounds the market moves as the crowd's flow moves it."""
        r = self.rounds
        if r > 1 and len(who) > r:
            cuts = np.linspace(0, len(who), r + 1).astype(int)
            for a, b in zip(cuts[:-1], cuts[1:], strict=True):
                self._round(who[a:b], d[a:b], qty[a:b], closes[a:b], u_kind[a:b], u_offset[a:b])
        else:
            self._round(who, d, qty, closes, u_kind, u_offset)

    def _round(self, who, d, qty, closes, u_kind, u_offset) -> None:
        """Each customer's order as `RetailTrader._order`: a market order, or with probability
        ``limit_order_share`` a limit up to ``limit_offset_ticks`` on the passive side of the
        mid; opening orders pass the margin check (equity at the mark ≥ margin used + the new
        lots' margin, as the exchange's admission) or are rejected."""
        if not len(who):
            return
        ex = self.exchange
        cfg = self.params
        side = np.where(closes, -d, d)
        limit = u_kind < cfg.limit_order_share
        mid = ex.book.mid()
        ref = ex.contract.to_tick(ex.settle_price) if mid is None else round(mid)
        tick = ref - side * (u_offset * (cfg.limit_offset_ticks + 1)).astype(np.int64)
        lo, hi = ex.book.band
        if lo is not None:
            tick = np.maximum(tick, lo)
        if hi is not None:
            tick = np.minimum(tick, hi)
        # a limit is its offset from the mid, priced when its aggregate order is sent (the
        # estimate here serves the margin check)
        off = (u_offset * (cfg.limit_offset_ticks + 1)).astype(np.int64)
        kind = np.where(limit, RELATIVE, MARKET)
        opening = ~closes
        if opening.any():
            led = self.ledger
            m, rate = self.multiplier, ex.margin_rate_in_force
            # each reads the mark the round's earlier market orders would have printed, as a
            # trader in the per-agent stream reads the last trade before its own order
            mark = self._stream_marks(side, qty, ~limit)
            px = np.where(limit, tick * ex.contract.tick_size, mark)
            used = led.lots[who] * abs(ex.settle_price) * m * rate
            need = used + qty * np.abs(px) * m * rate
            eq = led.equity(mark, who)
            bad = opening & (eq < need)
            if bad.any():
                self.n_rejected[who[bad]] += 1
                ok = ~bad
                who, side, qty, closes, tick, kind, off = (
                    who[ok],
                    side[ok],
                    qty[ok],
                    closes[ok],
                    tick[ok],
                    kind[ok],
                    off[ok],
                )
        if len(who):
            price = np.where(kind == RELATIVE, off, np.where(kind == LIMIT, tick, 0))
            self._send(who, side, qty, closes, price, kind)

    def _stream_marks(self, side: np.ndarray, qty: np.ndarray, market: np.ndarray) -> np.ndarray:
        """The mark each of a round's customers would read in a per-agent stream (price): the
        last trade before it, that of the round's last market order before it, which has
        walked the book's other side as far as the round's market orders on its side so far
        reach (the depth as the round starts; limits are not counted); the mark as the round
        starts before any market order."""
        ex = self.exchange
        n = len(side)
        out = np.full(n, ex.mark)
        if not market.any():
            return out
        idx = np.arange(n)
        last = np.maximum.accumulate(np.where(market, idx, -1))
        prev = np.concatenate(([-1], last[:-1]))  # the last market order strictly before
        seen = prev >= 0
        p = np.where(seen, prev, 0)
        ts = ex.contract.tick_size
        for s in (BUY, SELL):
            hit = seen & (side[p] == s)
            if not hit.any():
                continue
            levels = ex.book.depth(-s, 256)
            if not levels:
                continue
            ticks = np.array([t for t, _ in levels])
            reach = np.cumsum([v for _, v in levels])
            cum = np.cumsum(np.where(market & (side == s), qty, 0))
            k = np.minimum(np.searchsorted(reach, cum[p[hit]], "left"), len(ticks) - 1)
            out[hit] = ticks[k] * ts
        return out

    def _send(self, who, side, qty, closes, tick, limit, tag: str = "ordinary") -> None:
        """Net the customers' orders into one omnibus order per (account, side, open or close,
        market or limit price), each reaching the book at the mean arrival of its customers
        (so that, on average, an aggregate order meets half of the others of its round, as an
        order in the middle of the stream would), each customer queued behind it in arrival
        order; close orders reserve their lots. The fills are then booked (flush)."""
        if not len(who):
            return
        closes = np.broadcast_to(np.asarray(closes, dtype=bool), who.shape)
        limit = np.broadcast_to(np.asarray(limit, dtype=np.int64), who.shape)
        self._net(who, side, qty, closes, tick, limit, tag)
        self.flush()

    def _net(self, who, side, qty, closes, tick, limit, tag: str) -> None:
        d = self.ledger.direction[who].astype(np.int64)
        # one integer key per (account, side, close, limit, tick): ticks fit in 2**40 either
        # side of zero, far beyond any price band
        key = ((((d > 0) * 2 + (side > 0)) * 2 + closes) * 4 + limit) * _TICKS + (
            tick + _TICKS // 2
        )
        b = self.bucket
        rel = limit == RELATIVE
        if b > 1 and rel.any():  # offsets netted by bucket of b ticks
            key = key - np.where(rel, tick - tick // b, 0)
        order = _group_order(key)  # by group, arrival order within each
        sk = key[order]
        starts = np.flatnonzero(np.concatenate(([True], sk[1:] != sk[:-1])))
        ends = np.append(starts[1:], len(sk))
        at = np.add.reduceat(order, starts) / (ends - starts)  # each group's mean arrival
        # each group's fields from its key, all at once
        k, gtick = np.divmod(sk[starts], _TICKS)
        gtick -= _TICKS // 2
        k, glimit = np.divmod(k, 4)
        k, gclose = np.divmod(k, 2)
        gpos, gbuy = np.divmod(k, 2)
        who_s, qty_s = who[order], qty[order]
        run = np.cumsum(qty_s)  # a group's running lots: run over it less run before it
        if b > 1 and rel.any():
            # a bucket's order at its customers' lots-weighted mean offset, to the tick
            lots = np.add.reduceat(qty_s, starts)
            mean = np.add.reduceat(qty_s * tick[order], starts) / lots
            grel = glimit == RELATIVE
            gtick[grel] = np.rint(mean[grel]).astype(np.int64)
        if closes.any():
            np.add.at(self.pending, who[closes], qty[closes])
        fields = list(
            zip(
                starts.tolist(),
                ends.tolist(),
                gtick.tolist(),
                glimit.tolist(),
                gclose.tolist(),
                gpos.tolist(),
                gbuy.tolist(),
                strict=True,
            )
        )
        long_acc, short_acc = self.long_account, self.short_account
        for g in np.argsort(at, kind="stable").tolist():
            a, e, gt, gl, gc, gp, gb = fields[g]
            acc = long_acc if gp else short_acc
            cum = run[a:e] - run[a - 1] if a else run[:e]
            q = _Queue(who_s[a:e], qty_s[a:e], BUY if gb else SELL, gc == 1, gt, gl, tag, acc, cum)
            self._submit(acc, q)

    def _submit(self, acc: Account, q: _Queue) -> None:
        ex = self.exchange
        if q.kind == RELATIVE:  # its price from the mid as it is sent
            mid = ex.book.mid()
            ref = ex.contract.to_tick(ex.settle_price) if mid is None else round(mid)
            q.tick, q.kind = ex.book.clip(ref - q.side * q.tick), LIMIT
        self._current = self._incoming = q
        self._sending = acc
        price = q.tick if q.kind else None
        r = ex.submit(
            acc,
            q.side,
            q.left,
            price,
            "limit" if q.kind else "market",
            "close" if q.closes else "open",
            q.tag,
            False,
        )
        self._sending = self._current = self._incoming = None
        if r.status == "rejected":
            self._release(q)
            raise InvariantError(
                f"step {ex.step}: omnibus account {acc.id}'s order of {q.total} lots was "
                f"rejected: {r.reason}"
            )
        if r.order_id in ex.book.resting:
            self.queues[r.order_id] = q
        else:  # filled, or its rest is gone (a market order): release what did not fill
            self.queues.pop(r.order_id, None)
            if q.done < q.total:
                self._release(q)


def _group_order(key: np.ndarray) -> np.ndarray:
    """``np.argsort(key, kind="stable")`` for `_net`'s order keys: when the round's
    (category, tick) pairs fit in 16 bits (a round's ticks span a few hundred), the same order
    from a radix sort of a compact key that sorts as ``key`` does, several times faster."""
    cat, t = np.divmod(key, _TICKS)
    lo = int(t.min())
    span = int(t.max()) - lo + 1
    if span * (int(cat.max()) + 1) <= 1 << 16:
        return np.argsort((cat * span + (t - lo)).astype(np.uint16), kind="stable")
    return np.argsort(key, kind="stable")


def _by_step(steps: np.ndarray, who: np.ndarray) -> dict[int, np.ndarray]:
    """Customer indices grouped by step, ascending within a step."""
    order = np.argsort(steps, kind="stable")
    s, w = steps[order], who[order]
    cuts = np.flatnonzero(np.diff(s)) + 1
    return {
        int(g[0]): ix for g, ix in zip(np.split(s, cuts), np.split(w, cuts), strict=True) if len(g)
    }


class CustomerView:
    """One customer of a [`NettedCrowd`][abm.agents.netted.NettedCrowd], read-only: its
    draws, state and book as they stand (``account`` is the omnibus account it clears
    through; ``lots``, ``cash``, ``equity`` are its own)."""

    label = "retail"

    def __init__(self, crowd: NettedCrowd, i: int):
        self.crowd, self.index = crowd, i
        crowd.flush()  # its book as it stands, fills included

    @property
    def direction(self) -> int:
        return int(self.crowd.ledger.direction[self.index])

    @property
    def state(self) -> str:
        return str(STATES[self.crowd.state[self.index]])

    @property
    def trend(self) -> bool:
        return bool(self.crowd.pop.trend[self.index])

    @property
    def lots(self) -> int:
        return int(self.crowd.ledger.lots[self.index])

    @property
    def net(self) -> int:
        return self.direction * self.lots

    @property
    def cash(self) -> float:
        return float(self.crowd.ledger.cash[self.index])

    @property
    def equity(self) -> float:
        return float(self.crowd.ledger.equity(self.crowd.exchange.mark)[self.index])

    @property
    def account(self) -> Account:
        return self.crowd.account_of(self.index)

    def __repr__(self) -> str:
        return (
            f"<customer {self.index}: {'long' if self.direction > 0 else 'short'}, "
            f"{self.state}, {self.lots} lots, cash {self.cash:.2f}>"
        )

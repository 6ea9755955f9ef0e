"""The exchange as one facade: orders in, fills booked, the day's cycle run.

Agents talk to the market only through `Exchange`: ``submit``, ``cancel``, ``cancel_all``,
``deposit`` and read-only queries. Fills are booked with the clearing house
(`abm.exchange.clearing`); the brokers' duties (forced close of accounts without delivery
rights at the deadline, liquidation after an unanswered margin call) are the `Broker`'s
(`abm.exchange.broker`), which the exchange calls at fixed points of its day.
"""

from __future__ import annotations

import numbers
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal, NamedTuple

from abm.exchange.book import BUY, SELL, OrderBook, OrderResult, Trade
from abm.exchange.broker import Broker
from abm.exchange.calendar import Calendar, Contract
from abm.exchange.clearing import Account, ClearingHouse

Effect = Literal["open", "close", "auto"]


@dataclass(slots=True)
class StepStats:
    """What happened in one step (kept by the exchange, read by the model's collectors)."""

    volume: int = 0
    value: float = 0.0  # Σ price × lots (price units), for VWAPs
    forced_volume: int = 0
    forced_value: float = 0.0
    liquidation_volume: int = 0
    buy_volume: int = 0  # buyer-initiated


@dataclass(slots=True)
class DayRecord:
    day: int
    settlement: float
    #: the margin rate set for the next session (its calls were computed at it)
    margin_rate: float
    n_margin_calls: int
    volume: int
    open_interest: int
    #: where the settlement came from: "vwap" (trades in the settlement window), "last" (the
    #: day's last trade, none in the window), "locked" (broker orders left unfilled at the
    #: band's edge: the session settles at the limit), "previous" (no trade: carried over)
    source: str = "vwap"
    #: whether the exchange used its discretion for the next session (wider band, more margin)
    discretion: bool = False


class CancelResult(NamedTuple):
    """Whether a cancel took effect (the tuple is truthy only then) and, if not, why."""

    ok: bool
    reason: str

    def __bool__(self) -> bool:
        return self.ok


class Exchange:
    def __init__(
        self,
        contract: Contract,
        calendar: Calendar,
        clearing: ClearingHouse,
        initial_price: float,
        stp: Literal["cancel_resting", "cancel_incoming"] = "cancel_resting",
        check_every_step: bool = False,
        discretion=None,
        intraday_check_steps: int | None = None,
    ):
        self.contract = contract
        self.calendar = calendar
        self.clearing = clearing
        self.book = OrderBook(stp=stp)
        self.book.accounts = clearing.accounts  # an order of an unknown account is rejected
        self.check_every_step = check_every_step
        self.settle_price = contract.to_price(contract.to_tick(initial_price))
        self.prev_settle = self.settle_price
        self.ref_price = initial_price
        self.step = -1
        self.day = -1
        self.harvest_start_step = calendar.deadline_step  # the model moves it earlier
        self._effect: dict[int, tuple[int, str]] = {}  # order id -> (account, "open"/"close")
        self.broker = Broker(self)
        self.stats = StepStats()
        self.days: list[DayRecord] = []
        self.trades_today: list[Trade] = []
        #: accounts called for margin at the last settlement (the broker acts at the open)
        self.called: list[Account] = []
        self.expired = False
        self.forced_fills: list[tuple[int, int, float]] = []  # (step, lots, price)
        self._rate = calendar.scheduled_margin_rate(0)
        self.deadline_step = calendar.deadline_step
        #: exchange discretion (config.DiscretionConfig or None) and what it set for today and
        #: for the next session: (band widening, margin points)
        self.discretion = discretion
        self.extra_band = self.extra_margin = 0.0
        self._next_extra = (0.0, 0.0)
        self.intraday_check_steps = intraday_check_steps
        #: called at each day's end after the margin calls, (settlement, next session's rate)
        #: -> the calls it issued itself: a broker margining the customers behind an omnibus
        #: account
        self.day_end_hooks: list = []

    # -- queries ----------------------------------------------------------------------------
    @property
    def accounts(self) -> list[Account]:
        return self.clearing.accounts

    def account(self, account_id: int) -> Account:
        return self.clearing.accounts[account_id]

    @property
    def margin_rate_in_force(self) -> float:
        """The margin rate in force today (fraction of notional): the calendar's schedule plus
        any discretionary add-on, set at each day's start."""
        return self._rate

    @property
    def mark(self) -> float:
        """Price (price units) used for intraday equity: the last trade, else the settlement."""
        lp = self.book.last_price
        return self.settle_price if lp is None else self.contract.to_price(lp)

    def equity(self, acc: Account) -> float:
        return acc.equity(self.mark, self.contract.multiplier)

    def available(self, acc: Account) -> float:
        """Equity − margin used (money), margin at the current settlement price."""
        return self.equity(acc) - self.clearing.margin_used(
            acc, self.settle_price, self.margin_rate_in_force
        )

    def risk_degree(self, acc: Account) -> float:
        """Margin used / equity (Chinese 风险度); inf when equity ≤ 0 with a position."""
        margin = self.clearing.margin_used(acc, self.settle_price, self.margin_rate_in_force)
        eq = self.equity(acc)
        if margin == 0:
            return 0.0
        return margin / eq if eq > 0 else float("inf")

    def in_harvest_window(self, step: int | None = None) -> bool:
        s = self.step if step is None else step
        return self.harvest_start_step <= s < self.deadline_step

    def after_deadline(self, step: int | None = None) -> bool:
        s = self.step if step is None else step
        return s >= self.deadline_step

    # -- accounts -----------------------------------------------------------------------------
    def open_account(self, owner: str, deliverable: bool, deposit: float) -> Account:
        return self.clearing.open_account(owner, deliverable, deposit)

    def deposit(self, acc: Account, amount: float) -> None:
        self.clearing.deposit(acc, amount)

    # -- orders -------------------------------------------------------------------------------
    def submit(
        self,
        acc: Account,
        side: int,
        qty: int,
        price: int | None = None,
        kind: Literal["limit", "market", "ioc"] = "limit",
        effect: Effect = "auto",
        tag: str = "ordinary",
        check_margin: bool = True,
    ) -> OrderResult:
        """Submit an order for ``acc``; ``price`` in ticks. ``effect`` says whether it opens or
        closes lots ("auto": close if enough opposite lots are free, else open). Opening orders
        need available ≥ the new lots' margin unless ``check_margin`` is off (broker orders)."""
        # the common well-formed order resolves its effect here; _admissible words the reasons
        accs = self.clearing.accounts
        aid = getattr(acc, "id", None)
        if type(aid) is not int or not 0 <= aid < len(accs) or accs[aid] is not acc:
            # an account object of another exchange (or anything else) must not trade here:
            # its id would book the fills to whichever of our accounts has that number
            return OrderResult(
                0,
                "rejected",
                0,
                qty if type(qty) is int else 0,
                (),
                f"account {aid!r}: not an account opened at this exchange",
            )
        if (
            (side == 1 or side == -1)
            and type(qty) is int
            and qty > 0
            and (price is None or type(price) is int)
            and not self.expired
        ):
            closable = (
                acc.short - acc.pending_close_short
                if side == BUY
                else acc.long - acc.pending_close_long
            )
            if effect == "auto":
                eff = "close" if closable >= qty else "open"
            elif effect == "open" or (effect == "close" and qty <= closable):
                eff = effect
            else:
                eff = ""
        else:
            eff = ""
        if not eff:
            # numpy integers are whole numbers: take them as such (a reason saying "must be a
            # whole number" of np.int64(3) would mislead)
            if isinstance(qty, numbers.Integral) and not isinstance(qty, bool):
                qty = int(qty)
            if isinstance(price, numbers.Integral) and not isinstance(price, bool):
                price = int(price)
            elif price is not None:
                return OrderResult(
                    0,
                    "rejected",
                    0,
                    qty if type(qty) is int else 0,
                    (),
                    f"price {price!r} ({type(price).__name__}): a price is an integer number "
                    "of ticks (Contract.to_tick converts a price)",
                )
            eff, reason = self._admissible(acc, side, qty, effect)
            if reason:
                return OrderResult(0, "rejected", 0, qty if isinstance(qty, int) else 0, (), reason)
        if eff == "open" and check_margin:
            if self.step >= self.deadline_step and not acc.deliverable:
                return OrderResult(
                    0,
                    "rejected",
                    0,
                    qty,
                    (),
                    f"account {acc.id} has no delivery rights: no new positions "
                    "after the forced-close deadline",
                )
            # margin used + the new lots' margin against equity at the mark
            m, tick_size = self.contract.multiplier, self.contract.tick_size
            rate = self._rate
            lp = self.book.last_price
            # ticks to prices as Contract.to_price does (inlined: every order passes here)
            mark = self.settle_price if lp is None else lp * tick_size
            px = price * tick_size if price is not None else mark
            need = (
                self.clearing.margin_used(acc, self.settle_price, rate) + qty * abs(px) * m * rate
            )
            eq = acc.equity(mark, m)
            if eq < need:
                return OrderResult(
                    0,
                    "rejected",
                    0,
                    qty,
                    (),
                    f"account {acc.id}: equity {eq:.2f} below the "
                    f"margin {need:.2f} this order would need",
                )
        if eff == "close":
            if side == BUY:
                acc.pending_close_short += qty
            else:
                acc.pending_close_long += qty
        book = self.book
        book.step = self.step
        res = book.submit(acc.id, side, qty, price, kind, tag)
        if res.status == "rejected":
            self._release(acc, side, eff, qty)
            return res
        oid = res.order_id
        self._effect[oid] = (acc.id, eff)
        for o in res.stp_cancelled:
            self._on_gone(o.id, o.side, o.qty)
        if res.trades:
            self._book_trades(res.trades, (oid,))
        if res.remaining == 0:
            del self._effect[oid]
        elif oid not in book.resting:  # did not rest: release what is unfilled
            self._on_gone(oid, side, res.remaining)
        return res

    def _admissible(self, acc: Account, side: int, qty: int, effect: Effect) -> tuple[str, str]:
        """(resolved effect, rejection reason or '')."""
        if side not in (BUY, SELL):
            return "", f"side {side!r}: allowed +1 (buy) or -1 (sell)"
        if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
            return "", f"qty {qty!r}: must be a positive whole number of lots"
        if self.expired:
            return "", "the contract has expired"
        closable = (
            acc.short - acc.pending_close_short
            if side == BUY
            else acc.long - acc.pending_close_long
        )
        if effect == "auto":
            return ("close" if closable >= qty else "open"), ""
        if effect == "close":
            if qty > closable:
                return "", (
                    f"account {acc.id}: close {qty} lots exceeds the {closable} "
                    f"{'short' if side == BUY else 'long'} lots free to close"
                )
            return "close", ""
        if effect == "open":
            return "open", ""
        return "", f"effect {effect!r}: allowed 'open', 'close', 'auto'"

    def _claim(self, acc: Account, side: int, effect: str, qty: int) -> None:
        """A close order reserves the lots it closes (buys close shorts, sells close longs)."""
        if effect == "close":
            if side == BUY:
                acc.pending_close_short += qty
            else:
                acc.pending_close_long += qty

    def _release(self, acc: Account, side: int, effect: str, qty: int) -> None:
        if effect == "close":
            if side == BUY:
                acc.pending_close_short -= qty
            else:
                acc.pending_close_long -= qty

    def _on_gone(self, order_id: int, side: int, remaining: int) -> None:
        """An order left the book with ``remaining`` lots unfilled: release its close claim."""
        info = self._effect.pop(order_id, None)
        if info is None:
            return
        acc = self.clearing.accounts[info[0]]
        if acc.customers is not None:  # an omnibus account: its customers' share is released
            acc.customers.on_gone(acc, order_id, remaining)
        if remaining <= 0:
            return
        self._release(acc, side, info[1], remaining)

    def cancel(self, order_id: int) -> CancelResult:
        """Cancel a resting order. The result is true when it was cancelled; when not, its
        ``reason`` says why (never issued, or no longer resting)."""
        o = self.book.cancel(order_id)
        if o is None:
            return CancelResult(False, self.book.why_not_resting(order_id))
        self._on_gone(o.id, o.side, o.qty)
        return CancelResult(True, "")

    def cancel_all(self, acc: Account) -> int:
        gone = self.book.cancel_account(acc.id)
        for o in gone:
            self._on_gone(o.id, o.side, o.qty)
        return len(gone)

    def _channel(self, t: Trade, buyer: Account, seller: Account) -> str:
        """The fill's channel by its price source: a forced-close print or the hedger's
        harvest quote is the harvest (a forced-close print between two accounts without
        delivery rights is the crowd trading with itself: its own channel); a liquidation;
        everything else is ordinary, whenever it happens."""
        tags = (t.buy_tag, t.sell_tag)
        if "forced_close" in tags or "harvest" in tags:
            if "forced_close" in tags and not buyer.deliverable and not seller.deliverable:
                return "forced_close_within_crowd"
            return "harvest_forced_close"
        if "liquidation" in tags:
            return "liquidation"
        return "ordinary"

    def _book_trades(self, trades: list[Trade], working: Collection[int]) -> None:
        """Book trades with the clearing house and the step's statistics; then forget resting
        orders they filled completely (``working`` are the incoming orders, which their caller
        settles)."""
        accs = self.clearing.accounts
        effect = self._effect
        apply_fill = self.clearing.apply_fill
        tick_size = self.contract.tick_size
        ref_price, after_deadline = self.ref_price, self.broker.past_deadline
        st = self.stats
        record = self.trades_today.append
        for t in trades:
            step, tick, qty, aggressor, b, s, b_order, s_order, b_tag, s_tag = t
            buyer, seller = accs[b], accs[s]
            b_close = effect[b_order][1] == "close"
            s_close = effect[s_order][1] == "close"
            price = tick * tick_size  # Contract.to_price, inlined
            if b_close:
                buyer.pending_close_short -= qty
            if s_close:
                seller.pending_close_long -= qty
            if b_tag == "ordinary" and s_tag == "ordinary":  # most fills
                channel = "ordinary"
            else:
                channel = self._channel(t, buyer, seller)
            if buyer is seller:  # two customers of one omnibus account
                self.clearing.fill_within(buyer, qty, price, b_close, s_close, ref_price, channel)
            else:
                apply_fill(buyer, seller, qty, price, b_close, s_close, ref_price, channel)
            if buyer.customers is not None:  # an omnibus account: its customers share it
                buyer.customers.on_fill(
                    buyer, b_order, BUY, qty, price, b_close, ref_price, channel
                )
            if seller.customers is not None:
                seller.customers.on_fill(
                    seller, s_order, SELL, qty, price, s_close, ref_price, channel
                )
            if after_deadline:  # a fill after the deadline: is someone newly exposed?
                for acc in (buyer, seller):
                    if not acc.deliverable and acc.lots:
                        self.broker.force(acc)
            st.volume += qty
            st.value += price * qty
            if aggressor == BUY:
                st.buy_volume += qty
            if b_tag != "ordinary" or s_tag != "ordinary":
                self._tagged_fill(t, buyer, seller, price)
            record(t)
        resting = self.book.resting
        for t in trades:
            for oid in (t.buy_order, t.sell_order):
                if oid not in working and oid not in resting:
                    effect.pop(oid, None)

    def _tagged_fill(self, t: Trade, buyer: Account, seller: Account, price: float) -> None:
        """Statistics and penalties of a fill with a broker order on one side."""
        st = self.stats
        if "forced_close" in (t.buy_tag, t.sell_tag):
            st.forced_volume += t.qty
            st.forced_value += price * t.qty
            self.forced_fills.append((t.step, t.qty, price))
        if "liquidation" in (t.buy_tag, t.sell_tag):
            st.liquidation_volume += t.qty
            for acc, tag in ((buyer, t.buy_tag), (seller, t.sell_tag)):
                if tag == "liquidation":
                    self.clearing.pay_penalty(
                        acc, abs(price) * t.qty * self.contract.multiplier, price
                    )

    # -- the day's cycle ------------------------------------------------------------------------
    def begin_step(self, step: int, ref_price: float, work_broker: bool = True) -> None:
        """Open the step: a new day expires orders, sets the band and starts liquidations;
        the broker works its forced closes and liquidations, unless ``work_broker`` is off
        (the model then calls ``broker.work()`` once liquidity providers have quoted)."""
        if self.expired:
            raise RuntimeError("the contract has expired; no more steps")
        self.step = step
        self.clearing.step = step
        self.book.step = step
        self.ref_price = ref_price
        self.stats = StepStats()
        cal = self.calendar
        if cal.is_day_start(step):
            self.day = cal.day_of(step)
            self.extra_band, self.extra_margin = self._next_extra
            self._rate = cal.scheduled_margin_rate(self.day) + self.extra_margin
            for o in self.book.clear():
                self._on_gone(o.id, o.side, o.qty)
            self._effect.clear()
            lo, hi = self.contract.band(self.prev_settle, self.extra_band)
            self.book.set_band(lo, hi)
            self.book.last_price = None
            self.trades_today = []
            self.broker.open_day(self.called)
            self.called = []
        elif self.intraday_check_steps and step % self.intraday_check_steps == 0:
            self.broker.check_intraday()
        if cal.intraday(step) == cal.steps_per_day - cal.settlement_window_steps:
            self.book.reset_vwap()
        if step >= cal.deadline_step and not self.broker.past_deadline:
            self.broker.sweep_deadline()
        if work_broker:
            self.broker.work()

    def reference_tick(self) -> int:
        """The auction's price when forced closes balance: mid, else last, else settlement;
        inside the band."""
        mid = self.book.mid()
        return self.book.clip(self._tick_or_fallback(None if mid is None else round(mid)))

    def _tick_or_fallback(self, tick: int | None) -> int:
        """``tick`` if there is one, else the last trade's, else the settlement's."""
        if tick is not None:
            return tick
        if self.book.last_price is not None:
            return self.book.last_price
        return self.contract.to_tick(self.settle_price)

    def close_in_auction(self, batch: list[tuple[Account, int, int]], tag: str) -> None:
        """Close orders of the broker's, (account, side, lots) each, in one uniform-price call
        auction at the step's reference price
        ([`reference_tick()`][abm.exchange.market.Exchange.reference_tick]): opposite orders cross,
        only the imbalance sweeps the book; what is left unfilled is released."""
        for acc, side, lots in batch:
            self._claim(acc, side, "close", lots)
        self.book.step = self.step
        ids, trades, left = self.book.auction(
            [(acc.id, side, lots, tag) for acc, side, lots in batch],
            self.reference_tick(),
        )
        for oid, (acc, _, _) in zip(ids, batch, strict=True):
            self._effect[oid] = (acc.id, "close")
        self._book_trades(trades, frozenset(ids))
        for oid, (acc, side, _), rest in zip(ids, batch, left, strict=True):
            self._effect.pop(oid, None)
            self._release(acc, side, "close", rest)

    def end_step(self) -> DayRecord | None:
        """Close the step; at the day's end settle, mark to market and issue margin calls."""
        cal, ch = self.calendar, self.clearing
        record = None
        if cal.is_day_end(self.step):
            vwap = self.book.vwap
            settle_tick = self._tick_or_fallback(None if vwap is None else round(vwap))
            if vwap is not None:
                source = "vwap"
            else:
                source = "last" if self.book.last_price is not None else "previous"
            locked = self.broker.locked_edge()
            if locked is not None:
                settle_tick, source = locked, "locked"
            settle = self.contract.to_price(settle_tick)
            move = abs(settle / self.prev_settle - 1) if self.prev_settle else 0.0
            self.prev_settle = self.settle_price = settle
            ch.mark_to_market(settle)
            d = self.discretion
            used = bool(
                d is not None
                and d.enabled
                and (
                    (d.after_locked and source == "locked")
                    or (d.vol_spike is not None and move > d.vol_spike)
                )
            )
            self._next_extra = (d.band_add, d.margin_add) if used else (0.0, 0.0)
            tomorrow = min(self.day + 1, cal.last_day)
            next_rate = cal.scheduled_margin_rate(tomorrow) + self._next_extra[1]
            self.called = ch.issue_margin_calls(settle, next_rate)
            n_calls = len(self.called)
            for hook in self.day_end_hooks:
                n_calls += hook(settle, next_rate)
            for acc in ch.accounts:  # a flat account's equity is its cash
                if acc.cash < 0 and not acc.long and not acc.short:
                    ch.cover_negative_equity(acc, settle)
            record = DayRecord(
                self.day,
                settle,
                next_rate,
                n_calls,
                sum(t.qty for t in self.trades_today),
                ch.open_interest,
                source,
                used,
            )
            self.days.append(record)
            if self.check_every_step:
                ch.check_invariants(settle, self.step)
            else:  # O(classes) each day; the per-account check runs at expiry
                ch.check_totals(settle, self.step)
        elif self.check_every_step:
            ch.check_invariants(self.mark, self.step)
        return record

    def expire(self, spot: float) -> None:
        """After the last step: cancel everything, close and deliver at the final settlement."""
        for o in self.book.clear():
            self._on_gone(o.id, o.side, o.qty)
        self._effect.clear()
        self.clearing.step = self.step + 1
        self.clearing.expire(self.settle_price, spot, self.ref_price)
        self.expired = True
        self.clearing.check_invariants(self.settle_price, self.step + 1)

"""The brokers' risk desk: forced closes at the deadline and margin liquidations.

A broker closes its clients' positions in two cases: at the forced-close deadline, every
position of an account without delivery rights; after a margin call left unanswered at the next
open (or at once, under real-time risk control), enough lots to bring the account back above
maintenance. It acts only through the exchange's order entry, with market orders at the
counterparty's price (forced closes meet in a uniform-price call auction unless the calendar
says otherwise); what a limit-locked market leaves unfilled is retried every step, and the
client bears the loss. Negative equity left when an account is flat goes to the clearing
house's loss regime.

The exchange owns one [`Broker`][abm.exchange.broker.Broker] (``exchange.broker``) and asks it to
act at fixed points of its day: [`Broker.open_day()`][abm.exchange.broker.Broker.open_day] after
the settlement that called margins,
[`Broker.check_intraday()`][abm.exchange.broker.Broker.check_intraday] every
``margin.intraday_check_steps`` steps,
[`Broker.sweep_deadline()`][abm.exchange.broker.Broker.sweep_deadline] once at the deadline,
[`Broker.work()`][abm.exchange.broker.Broker.work] once quotes are posted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from abm.exchange.book import BUY, SELL
from abm.exchange.clearing import Account, Event

if TYPE_CHECKING:
    from abm.exchange.market import Exchange


def slice_pro_rata(lots: list[int], total: int) -> list[int]:
    """``total`` lots shared among accounts holding ``lots`` in proportion to them, by largest
    remainder (ties to the earlier account), never more than an account holds. Lots."""
    held = sum(lots)
    if total >= held:
        return list(lots)
    exact = [total * x / held for x in lots]
    out = [int(e) for e in exact]
    rest = total - sum(out)
    order = sorted(range(len(lots)), key=lambda i: (-(exact[i] - out[i]), i))
    for i in order[:rest]:
        out[i] += 1
    return out


class Broker:
    """Accounts being closed, and the desk that closes them.

    ``forced`` holds the accounts under forced close (ids); ``liquidating`` maps each account
    under liquidation to the lots still to close. Counters: ``n_liquidations_started`` (all
    liquidations and auto-deleveragings), ``n_intraday_liquidations`` (those started by the
    intraday check) and ``n_liquidation_orders`` (market orders sent)."""

    def __init__(self, exchange: Exchange):
        self.exchange = exchange
        self.forced: set[int] = set()
        self.liquidating: dict[int, int] = {}  # account -> lots still to close
        self.n_liquidation_orders = 0
        self.n_liquidations_started = 0
        self.n_intraday_liquidations = 0
        #: whether the deadline has passed: a fill that leaves an account without delivery
        #: rights holding lots queues it for forced close
        self.past_deadline = False
        #: desks margining the customers behind omnibus accounts (``open_day()`` and
        #: ``work()``, called when this desk does the same for accounts)
        self.customer_desks: list = []

    # -- when accounts are handed over ----------------------------------------------------------
    def open_day(self, called: list[Account]) -> None:
        """At the open: accounts still under maintenance after yesterday's call are
        liquidated (at yesterday's settlement and today's margin rate)."""
        ex = self.exchange
        ch = ex.clearing
        m = ex.contract.multiplier
        rate = ex.margin_rate_in_force
        for acc in called:
            need = ch.maintenance_ratio * ch.margin_used(acc, ex.prev_settle, rate)
            eq = acc.equity(ex.prev_settle, m)
            if eq >= need or not acc.lots:
                acc.margin_called = False
                continue
            self.liquidate(acc, ex.prev_settle, rate, eq)
        for desk in self.customer_desks:
            desk.open_day()

    def check_intraday(self) -> None:
        """Real-time risk control: accounts below maintenance at the mark are liquidated at
        once, without waiting for the day's settlement (and without a call)."""
        ex = self.exchange
        ch = ex.clearing
        m = ex.contract.multiplier
        mark = ex.mark
        rate = ex.margin_rate_in_force
        k = ch.maintenance_ratio
        for acc in ch.accounts:
            if not (acc.long or acc.short) or acc.id in self.liquidating:
                continue
            if acc.customers is not None:  # an omnibus account: its broker margins its customers
                continue
            if acc.id in self.forced:
                continue
            eq = acc.equity(mark, m)
            if eq >= k * ch.margin_used(acc, mark, rate):
                continue
            self.liquidate(acc, mark, rate, eq, note="intraday")

    def sweep_deadline(self) -> None:
        """Once, at the deadline: every account without delivery rights loses its resting
        orders, and those holding lots are queued for forced close; later fills that leave one
        holding lots queue it too ([`force()`][abm.exchange.broker.Broker.force], called by the
        exchange)."""
        ex = self.exchange
        self.past_deadline = True
        for acc in ex.clearing.accounts:
            if not acc.deliverable:
                ex.cancel_all(acc)
                if acc.lots:
                    self.force(acc)

    def liquidate(self, acc: Account, mark: float, rate: float, eq: float, note: str = "") -> None:
        """Take over an account under maintenance (or, under ADL with nothing left, deleverage
        it against the winners) at ``mark`` (price) and margin ``rate``."""
        ex = self.exchange
        ch = ex.clearing
        if ch.loss_regime == "adl" and eq <= 0:
            self.n_liquidations_started += 1
            # its resting orders go first, as in a liquidation: ADL closes the lots they were
            # to close (within the day they would still rest, promising lots it no longer holds)
            ex.cancel_all(acc)
            ch.auto_deleverage(acc, mark, ex.ref_price)
            ch.cover_negative_equity(acc, mark)
            return
        lots = ch.lots_to_liquidate(acc, mark, rate)
        if lots > 0:
            acc.n_liquidations += 1
            self.n_liquidations_started += 1
            self.n_intraday_liquidations += note == "intraday"
            self.liquidating[acc.id] = lots
            ch.events.append(Event(ex.step, "liquidation_start", acc.id, lots, mark, eq, note=note))

    def force(self, acc: Account) -> None:
        """Queue an account for forced close (once)."""
        if acc.id not in self.forced:
            self.forced.add(acc.id)
            ex = self.exchange
            ex.clearing.events.append(
                Event(ex.step, "forced_close_start", acc.id, acc.lots, ex.mark)
            )

    # -- the desk at work -----------------------------------------------------------------------
    def work(self) -> None:
        """Send market orders for every forced close and liquidation still open."""
        ex = self.exchange
        accs = ex.clearing.accounts
        batch: list[tuple[Account, int, int]] = []
        forced = sorted(self.forced) if self._forced_can_fill() else ()
        holding: list[Account] = []
        for acc_id in forced:
            acc = accs[acc_id]
            ex.cancel_all(acc)
            ex.clearing.net_locks(acc)
            if not acc.lots:
                self._forced_done(acc)
                continue
            holding.append(acc)
        left = ex.calendar.forced_close_steps_left(ex.step)
        sells, buys = [a.long for a in holding], [a.short for a in holding]
        if left > 1:
            # the desk paces the whole book of forced closes, not each account: an even slice
            # of what is left over the steps left (all of it at the window's end), shared pro
            # rata among the accounts
            sells = slice_pro_rata(sells, -(-sum(sells) // left))
            buys = slice_pro_rata(buys, -(-sum(buys) // left))
        for acc, sell, buy in zip(holding, sells, buys, strict=True):
            batch += [(acc, side, lots) for side, lots in ((SELL, sell), (BUY, buy)) if lots]
        for acc, side, lots in batch:
            if acc.customers is not None:  # its customers queue behind the desk's order
                acc.customers.expect_forced(acc, side, lots)
        if batch and ex.calendar.forced_close_auction:
            ex.close_in_auction(batch, "forced_close")
        else:
            for acc, side, lots in batch:
                ex.submit(acc, side, lots, None, "market", "close", "forced_close", False)
        for acc, _, _ in batch:
            if acc.customers is not None:
                acc.customers.forced_sent(acc)
        for acc, _, _ in batch:
            if not acc.lots:
                self._forced_done(acc)
        book = ex.book
        # whether the book shows no bid / no ask: the liquidations' market orders and
        # cancellations only take liquidity away, so these change only after an account's
        # orders (read again there); a locked market keeps thousands of accounts waiting
        no_bid, no_ask = book.best_bid is None, book.best_ask is None
        for acc_id in sorted(self.liquidating):
            if acc_id in self.forced:
                continue
            acc = accs[acc_id]
            todo = min(self.liquidating[acc_id], acc.lots)
            if todo <= 0:
                self.liquidating.pop(acc_id)
                ex.clearing.cover_negative_equity(acc, ex.mark)
                continue
            if (no_bid or not acc.long) and (no_ask or not acc.short):
                continue  # the book shows nothing to trade with: retried next step
            # the larger side first: it carries the risk (the long side on a tie)
            if acc.short > acc.long:
                sides = ((BUY, acc.short), (SELL, acc.long))
            else:
                sides = ((SELL, acc.long), (BUY, acc.short))
            ex.cancel_all(acc)
            done = 0
            for side, held in sides:
                q = min(held, todo - done)
                if q > 0:
                    self.n_liquidation_orders += 1
                    r = ex.submit(acc, side, q, None, "market", "close", "liquidation", False)
                    done += r.filled
            no_bid, no_ask = book.best_bid is None, book.best_ask is None
            left = self.liquidating[acc_id] - done
            if left <= 0 or not acc.lots:
                self.liquidating.pop(acc_id)
                if not acc.lots:
                    ex.clearing.cover_negative_equity(acc, ex.mark)
            else:
                self.liquidating[acc_id] = left
        for desk in self.customer_desks:
            desk.work()

    def _forced_can_fill(self) -> bool:
        """Whether working the forced closes could fill anything: opposite forced closes can
        cross, or the book shows the other side. A limit-locked market re-sending 100,000 forced
        closes every step to an empty side would only cost time."""
        ex = self.exchange
        nd = ex.clearing.group("non_deliverable")
        if nd.long and nd.short:
            return True
        if nd.long:
            return ex.book.best_bid is not None
        if nd.short:
            return ex.book.best_ask is not None
        return True  # flat: let the loop mark the accounts done

    def _forced_done(self, acc: Account) -> None:
        self.forced.discard(acc.id)
        self.liquidating.pop(acc.id, None)
        self.exchange.clearing.cover_negative_equity(acc, self.exchange.mark)

    # -- what the day's settlement needs to know --------------------------------------------
    def locked_edge(self) -> int | None:
        """The band's edge (tick) when the session ends limit-locked: broker orders (forced
        closes, liquidations) left unfilled because the book had nothing left inside the band
        on their side. Such a session settles at the limit (a one-sided market, 单边市), so
        tomorrow's band moves on from there; None otherwise or without a band."""
        ex = self.exchange
        if ex.contract.price_limit is None:
            return None
        accs = ex.clearing.accounts
        sell = buy = 0
        for acc_id in self.forced:
            acc = accs[acc_id]
            sell += acc.long
            buy += acc.short
        for acc_id, lots in self.liquidating.items():
            acc = accs[acc_id]
            if acc.long >= acc.short:
                sell += min(lots, acc.long)
            else:
                buy += min(lots, acc.short)
        lo, hi = ex.book.band
        if sell > buy and lo is not None:
            return lo
        if buy > sell and hi is not None:
            return hi
        return None

"""The next listed month's participants, and the links that tie it to the front.

With ``[next_month]`` enabled the model lists a second contract in its own book
(``model.next_exchange``), expiring ``days_later`` trading days after the front. Who trades it:

* [`NextMonthMaker`][abm.agents.next_month.NextMonthMaker] — a market maker quoting it around
  its fair value (the front's plus ``carry``), with the ``[market_maker]`` section's terms;
* [`NextMonthStorer`][abm.agents.next_month.NextMonthStorer] — the storers and producers of the
  next month: a price-taking cost ladder on both sides of its fair value (``depth_cost``,
  ``depth_soft``, ``depth_slope``), the next month's depth;
* [`StorageLink`][abm.agents.next_month.StorageLink] — the front's long commercial, who stores
  what it buys: it values a delivered lot at the next month's best bid (sell it forward, keep
  it in storage for the month at its cost curve) and sells the next month as it buys the front,
  so the storage cost curve bounds how far the front can fall below the next month;
* [`RollingFund`][abm.agents.next_month.RollingFund] — a retail product without delivery
  rights (an index fund) that holds the front and rolls it to the next month over days, an
  equal slice every step: sell the front, buy the next.

A member holding both months has one account in each book; the pair earns the next month's
``spread_credit`` on its calendar-spread lots (``ClearingHouse.margin_lots``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

from abm.agents.base import TraderAgent
from abm.agents.fringe import DeliveryTrader
from abm.agents.market_maker import MarketMaker
from abm.delivery import DeliveryCurve
from abm.exchange import BUY, SELL, Account, Exchange

if TYPE_CHECKING:
    from abm.agents.commercial import Commercial


class NextMonthMaker(MarketMaker):
    """The ``[market_maker]`` terms, quoting the next month (which does not expire in the run,
    so it never flattens)."""

    label = "market_maker"
    phases: ClassVar[dict[str, str]] = {"quote": "step"}
    priority: ClassVar[int] = 0


class NextMonthStorer(DeliveryTrader):
    """The next month's storers and producers: a cost ladder on both sides of its fair value,
    as deep as the front's open interest (public) could ask it to be."""

    label = "commercial"
    phases: ClassVar[dict[str, str]] = {"quote": "quote_next"}
    priority: ClassVar[int] = 0

    def __init__(self, model, curve: DeliveryCurve, ladder_levels: int):
        nx = model.next_exchange
        deposit = (
            abs(model.fair_next)
            * nx.contract.multiplier
            * max(model.exchange.clearing.open_interest, 1)
        )
        super().__init__(model, deposit, curve, ladder_levels=ladder_levels, exchange=nx)

    def _room_cap(self, held: int, nd_lots: int) -> int:
        """The front's open interest (public), rounded up to a power of two: every lot of it
        could be rolled or stored into the next month."""
        soft = self.curve.soft_limit
        cheap = int(max(0, soft - held)) if soft != math.inf else 0
        return cheap + (1 << max(self.model.exchange.clearing.open_interest, 1).bit_length())

    def quote_next(self) -> None:
        self.quote(0)


class StorageLink:
    """The front's long commercial storing against the next month: its value of a delivered
    lot is the next month's best bid (visible), else the next month's fair value; what it buys
    in the front beyond its opening position it sells in the next month, at market, once a
    step (``hedge``), from an account of its own there (paired with its front account for the
    spread credit)."""

    def __init__(self, commercial: Commercial, deposit: float):
        model = commercial.model
        self.model = model
        self.commercial = commercial
        self.exchange: Exchange = model.next_exchange
        self.account: Account = self.exchange.open_account("commercial", True, deposit)
        self.account.pair = commercial.account
        commercial.account.pair = self.account
        commercial.requote_marginal = True  # its value moves every step with the next month
        self.lots_sold = 0  # gross lots sold in the next month (the storage hedge)

    def value(self) -> float:
        """Price units a delivered front lot is worth to it now: the next month's best bid,
        never more than the next month's fair value (it does not chase a squeeze there)."""
        bid = self.exchange.book.best_bid
        cap = self.model.fair_next
        if bid is None:
            return cap
        return min(self.exchange.contract.to_price(bid), cap)

    def unhedged(self) -> int:
        """Lots bought in the front beyond the opening position and not yet sold forward."""
        c = self.commercial
        return (c.account.net - c.base) + self.account.net

    def hedge(self) -> None:
        """Sell forward what it has bought (buy back what it has sold) since the last step."""
        q = self.unhedged()
        if q == 0 or self.exchange.expired:
            return
        side = SELL if q > 0 else BUY
        res = self.exchange.submit(
            self.account, side, abs(q), None, "market", "auto", check_margin=False
        )
        if side == SELL:
            self.lots_sold += res.filled


class RollingFund(TraderAgent):
    """A retail product without delivery rights (an index fund) holding ``lots`` long in the
    front from the start, fully funded; from ``roll_start_days`` before the deadline day it
    rolls over ``roll_days`` days: every step it sells ⌈left / steps left⌉ front lots at
    market and buys what it has sold and not yet bought in the next month."""

    label = "fund"
    phases: ClassVar[dict[str, str]] = {"trade": "step"}
    priority: ClassVar[int] = 0

    def __init__(self, model, *, lots: int, roll_start_days: int, roll_days: int):
        ex = model.exchange
        m = ex.contract.multiplier
        super().__init__(model, abs(model.fair) * m * lots, deliverable=False)
        nx = model.next_exchange
        self.next_account: Account = nx.open_account("fund", False, abs(model.fair_next) * m * lots)
        self.next_account.pair = self.account
        self.account.pair = self.next_account
        self.lots = lots
        cal = ex.calendar
        start_day = cal.deadline_day - roll_start_days
        self.roll_start = start_day * cal.steps_per_day
        self.roll_end = (start_day + roll_days) * cal.steps_per_day  # exclusive

    def step(self) -> None:
        ex = self.exchange
        s = ex.step
        if s < self.roll_start:
            return
        acc, nxt = self.account, self.next_account
        if self.roll_start <= s < self.roll_end and acc.long - acc.pending_close_long > 0:
            left = acc.long - acc.pending_close_long
            q = math.ceil(left / (self.roll_end - s))
            ex.submit(acc, SELL, q, None, "market", "close", check_margin=False)
        owed = (self.lots - acc.long) - nxt.long  # sold in the front, not yet bought
        if owed > 0 and not self.model.next_exchange.expired:
            self.model.next_exchange.submit(
                nxt, BUY, owed, None, "market", "open", check_margin=False
            )

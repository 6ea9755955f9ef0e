"""Commercials: the rest of the market, who trade for their physical business and can deliver.

Two accounts hold ``commercials.open_interest`` lots against each other from the start: a long
commercial (a consumer or merchant with storage, who will take delivery) and a short one (a
producer with inventory, who will make it). Each can still store, or deliver, ``capacity`` lots
beyond its opening position at its marginal delivery cost (``[commercials]``), so each is part
of the competitive fringe on its own side: the long one bids for the crowd's forced sales below
fair value by more than its storage cost, the short one offers to the crowd's forced purchases.

With probability ``activity`` per step a commercial also trades for its business: a market
order of 1..``trade_lots`` lots, drawn toward its opening position when it has drifted. These
trades are the market after the deadline, when only accounts that can deliver are left, and
they make the last day's settlement a real price.
"""

from __future__ import annotations

from typing import ClassVar

from abm.agents.fringe import DeliveryTrader
from abm.delivery import DeliveryCurve
from abm.exchange import BUY, SELL


class Commercial(DeliveryTrader):
    """Keyword parameters: ``direction`` (+1 the long, −1 the short), its delivery ``curve``
    (room beyond its opening position included) and the ``[commercials]`` fields
    ``open_interest``, ``activity``, ``trade_lots``, ``ladder_levels``, ``show_levels`` and
    ``harvest_markup``."""

    label = "commercial"
    # quotes its cost curve with the fringe, then trades for its business after the broker
    phases: ClassVar[dict[str, str]] = {"quote": "quote", "trade": "business"}

    def __init__(
        self,
        model,
        *,
        direction: int,
        curve: DeliveryCurve,
        open_interest: int,
        activity: float,
        trade_lots: int,
        ladder_levels: int,
        show_levels: int,
        harvest_markup: float,
    ):
        ex = model.exchange
        notional = abs(model.fair) * ex.contract.multiplier * max(open_interest, 1)
        super().__init__(
            model,
            notional,
            curve,
            sides=(BUY,) if direction > 0 else (SELL,),
            ladder_levels=ladder_levels,
            show_levels=show_levels,
            harvest_markup=harvest_markup,
        )
        self.direction = direction  # +1: the long (storage), −1: the short (inventory)
        self.base = direction * open_interest
        self.activity = activity
        self.trade_lots = trade_lots

    def on_margin_call(self, amount: float) -> None:
        """A storer selling forward against the next month (``storage``) meets its calls: its
        futures are the hedge of barrels it holds. Without it, the broker liquidates (the
        stored results' rule)."""
        if self.storage is not None and amount > 0:
            self.exchange.deposit(self.account, amount)

    def business(self) -> None:
        """With probability ``activity``, one hedging trade (called once the book is quoted).
        A storer selling forward against the next month (``storage``) has none in the front:
        its bids sit at the top of the book, so a market sale of its own would meet them and
        self-trade prevention would cancel its ladder."""
        if self.storage is not None:
            return
        rng = self.model.stream("commercials")
        if self.activity > 0 and rng.random() < self.activity:
            u_side, u_size = rng.random(2).tolist()
            self.trade_for_business(u_side, u_size)

    def trade_for_business(self, u_side: float, u_size: float) -> None:
        """A hedging trade: a market order in a random direction, leaning back toward the
        opening position by how far it has drifted (in units of ten trades)."""
        drift = (self.account.net - self.base) / (10 * self.trade_lots)
        p_buy = 0.5 - 0.5 * max(-1.0, min(1.0, drift))
        side = BUY if u_side < p_buy else SELL
        qty = 1 + int(u_size * self.trade_lots)
        self.exchange.submit(self.account, side, qty, None, "market", "auto", check_margin=False)

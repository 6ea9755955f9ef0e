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
from abm.exchange import BUY, SELL


class Commercial(DeliveryTrader):
    label = "commercial"
    # quotes its cost curve with the fringe, then trades for its business after the broker
    phases: ClassVar[dict[str, str]] = {"quote": "quote", "trade": "business"}
    priority = 11

    @classmethod
    def activate(cls, model, agents, phase: str) -> None:
        if phase == "quote":
            super().activate(model, agents, phase)
        else:  # in creation order: the long, then the short
            agents.do(cls.phases[phase])

    def __init__(self, model, direction: int):
        cfg = model.cfg.commercials
        ex = model.exchange
        notional = abs(model.fair) * ex.contract.multiplier * max(cfg.open_interest, 1)
        curve = cfg.curve(ex.contract.delivery_cost, extra_soft=cfg.open_interest)
        super().__init__(
            model,
            notional,
            curve,
            sides=(BUY,) if direction > 0 else (SELL,),
            ladder_levels=cfg.ladder_levels,
        )
        self.direction = direction  # +1: the long (storage), −1: the short (inventory)
        self.base = direction * cfg.open_interest

    def business(self) -> None:
        """With probability ``activity``, one hedging trade (called once the book is quoted)."""
        cfg = self.model.cfg.commercials
        rng = self.model.stream("commercials")
        if cfg.activity > 0 and rng.random() < cfg.activity:
            u_side, u_size = rng.random(2).tolist()
            self.trade_for_business(u_side, u_size)

    def trade_for_business(self, u_side: float, u_size: float) -> None:
        """A hedging trade: a market order in a random direction, leaning back toward the
        opening position by how far it has drifted (in units of ten trades)."""
        cfg = self.model.cfg.commercials
        drift = (self.account.net - self.base) / (10 * cfg.trade_lots)
        p_buy = 0.5 - 0.5 * max(-1.0, min(1.0, drift))
        side = BUY if u_side < p_buy else SELL
        qty = 1 + int(u_size * cfg.trade_lots)
        self.exchange.submit(self.account, side, qty, None, "market", "auto", check_margin=False)

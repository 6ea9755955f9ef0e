"""Delivery arbitrageurs: other accounts with delivery rights and limited capacity.

An arbitrageur bids for futures below fair value − its delivery cost (it will take delivery)
and offers them above fair value + delivery cost (it will make delivery), up to ``capacity`` lots
of storage or goods. At expiry the clearing house delivers what it holds against spot. Its
capacity bounds the divergence a harvest can force; capacity 0 is the WTI-2020 case.
"""

from __future__ import annotations

import math

from abm.agents.base import TraderAgent
from abm.exchange import BUY, SELL


class DeliveryArbitrageur(TraderAgent):
    label = "arbitrageur"

    def __init__(self, model, capacity: int):
        super().__init__(model, model.cfg.arbitrageurs.capital, deliverable=True)
        self.capacity = capacity

    def step(self) -> None:
        cfg = self.model.cfg.arbitrageurs
        ex = self.exchange
        acc = self.account
        if self.capacity <= 0:
            return
        dc = ex.contract.delivery_cost if cfg.delivery_cost is None else cfg.delivery_cost
        tick = ex.contract.tick_size
        fair = self.model.fair
        # strictly inside the no-arbitrage band, so every fill earns more than delivery costs
        bid = math.ceil((fair - dc) / tick - 1e-9) - 1
        ask = math.floor((fair + dc) / tick + 1e-9) + 1
        lo, hi = ex.book.band
        room_long = self.capacity - acc.net
        room_short = self.capacity + acc.net
        size = cfg.order_size or self.capacity * 2
        wanted = []
        if room_long > 0 and (lo is None or bid >= lo) and (hi is None or bid <= hi):
            wanted.append((BUY, bid, min(size, room_long)))
        if room_short > 0 and (lo is None or ask >= lo) and (hi is None or ask <= hi):
            wanted.append((SELL, ask, min(size, room_short)))
        self.maintain_quotes(wanted, check_margin=False)

"""The market maker: two-sided quotes skewed by inventory (Avellaneda–Stoikov style).

Its reservation price is the book's mid minus ``skew_ticks_per_lot`` × inventory; it quotes
``half_spread_ticks`` either side, stops quoting the side that would take it past its inventory
limit, and — having no delivery rights by default — flattens from ``flatten_lead_steps`` before
the deadline: it then quotes only the side that reduces its inventory, at the touch, and in the
last tenth of that lead sends what is left at market. An *informed* maker also shades its
reservation price against the crowd's NDNP; a *volatility-scaled* one (``vol_scaled``) widens
its spread and shrinks its inventory limit by the ratio of the market's daily volatility to its
reference, a volatility-scaled risk limit.
"""

from __future__ import annotations

import math
from typing import ClassVar

from abm.agents.base import TraderAgent
from abm.exchange import BUY, SELL


class MarketMaker(TraderAgent):
    """Keyword parameters: the ``[market_maker]`` fields (``capital``, ``half_spread_ticks``,
    ``quote_size``, ``inventory_limit``, ``skew_ticks_per_lot``, ``flatten_lead_steps``,
    ``deliverable``, ``informed``, ``vol_scaled``)."""

    label = "market_maker"
    phases: ClassVar[dict[str, str]] = {"quote": "step"}

    def __init__(
        self,
        model,
        *,
        capital: float,
        half_spread_ticks: int,
        quote_size: int,
        inventory_limit: int,
        skew_ticks_per_lot: float,
        flatten_lead_steps: int,
        deliverable: bool,
        informed: bool,
        vol_scaled: bool,
        exchange=None,
    ):
        super().__init__(model, capital, deliverable=deliverable, exchange=exchange)
        self.half_spread_ticks = half_spread_ticks
        self.quote_size = quote_size
        self.inventory_limit = inventory_limit
        self.skew_ticks_per_lot = skew_ticks_per_lot
        self.flatten_lead_steps = flatten_lead_steps
        self.informed = informed
        self.vol_scaled = vol_scaled

    def step(self) -> None:
        ex = self.exchange
        acc = self.account
        if ex.after_deadline() and not acc.deliverable:
            self.cancel_quotes()
            return  # the broker handles whatever is left
        inv = acc.net
        to_deadline = ex.calendar.deadline_step - ex.step
        flatten = not acc.deliverable and to_deadline <= self.flatten_lead_steps
        bid, ask = self.best_other(BUY, 10), self.best_other(SELL, 10)
        mid = ex.contract.to_tick(self.fair) if bid is None or ask is None else (bid + ask) / 2
        if flatten:
            if inv == 0:
                self.cancel_quotes()
                return
            side = SELL if inv > 0 else BUY
            if to_deadline <= max(1, self.flatten_lead_steps // 10):
                self.cancel_quotes()
                ex.submit(acc, side, abs(inv), None, "market", "close")
            else:
                touch = bid if side == SELL else ask
                if touch is None:
                    touch = round(mid)
                self.maintain_quotes([(side, touch, abs(inv))], effect="close")
            return
        half, limit = self.half_spread_ticks, self.inventory_limit
        # a reference volatility of (nearly) zero gives no scale to measure against
        if self.vol_scaled and self.model.reference_vol > 1e-9:
            # a volatile market: quote wider and carry less (a volatility-scaled risk limit)
            ratio = max(1.0, self.model.vol_daily / self.model.reference_vol)
            half = math.ceil(half * ratio)
            limit = math.floor(limit / ratio)
        r = mid - self.skew_ticks_per_lot * inv
        if self.informed:
            ndnp = ex.clearing.ndnp - inv if not acc.deliverable else ex.clearing.ndnp
            r -= half * (1 if ndnp > 0 else -1 if ndnp < 0 else 0)
        b = int(r - half + 0.5)
        a = int(r + half + 0.5)
        if a <= b:
            a = b + 1
        lo, hi = ex.book.band
        wanted = []
        if inv < limit and (lo is None or b >= lo) and (hi is None or b <= hi):
            wanted.append((BUY, b, min(self.quote_size, limit - inv)))
        if inv > -limit and (lo is None or a >= lo) and (hi is None or a <= hi):
            wanted.append((SELL, a, min(self.quote_size, limit + inv)))
        self.maintain_quotes(wanted)

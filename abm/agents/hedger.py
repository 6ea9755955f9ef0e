"""The dominant hedger: delivery rights, deep pockets, and the other side of every retail order.

Phases, by step:

* *accumulate* — quotes ``quote_levels`` levels of ``quote_size`` lots on both sides around fair
  value (spot plus carry), opening longs and shorts alike (a lock), so it takes the other side of
  the crowd's orders;
* *net* — at every day's end it offsets its own longs against its shorts: no trade, no price
  impact, open interest falls; what remains is the opposite of the crowd's NDNP;
* *harvest* — from ``harvest_window_steps`` before the deadline to the end of the deadline day,
  it withdraws the side the crowd needs and quotes it at fair ∓ the harvest spread (``fixed``),
  or one tick under the best competing quote but never beyond the spread (``competitive``);
* *deliver* — what it still holds at expiry is delivered against spot by the clearing house.
"""

from __future__ import annotations

import math

from abm.agents.base import TraderAgent
from abm.exchange import BUY, SELL


class DominantHedger(TraderAgent):
    label = "hedger"

    def __init__(self, model):
        super().__init__(model, model.cfg.hedger.capital, deliverable=True)
        self.ndnp_seen = 0

    @property
    def phase(self) -> str:
        ex = self.exchange
        s = ex.step
        if s < ex.harvest_start_step:
            return "accumulate"
        if s < self.model.harvest_end_step:
            return "harvest"
        return "deliver"

    def estimate_ndnp(self) -> int:
        """The crowd's net position: shared by the brokers, or read off its own book."""
        if self.model.cfg.hedger.knows_ndnp:
            return self.exchange.clearing.ndnp
        # From public data and its own position: after netting it holds about −NDNP.
        return -self.account.net

    def step(self) -> None:
        cfg = self.model.cfg.hedger
        ex = self.exchange
        tick = ex.contract.tick_size
        fair = self.model.fair
        centre = round(fair / tick)
        bid0, ask0 = centre - cfg.quote_half_spread_ticks, centre + cfg.quote_half_spread_ticks
        bids = [(bid0 - k, cfg.quote_size) for k in range(cfg.quote_levels)]
        asks = [(ask0 + k, cfg.quote_size) for k in range(cfg.quote_levels)]
        if self.phase == "harvest":
            ndnp = self.estimate_ndnp()
            self.ndnp_seen = ndnp
            if ndnp > 0:
                bids = [(self._harvest_tick(fair, BUY), max(cfg.quote_size, ndnp))]
            elif ndnp < 0:
                asks = [(self._harvest_tick(fair, SELL), max(cfg.quote_size, -ndnp))]
        # a harvest quote beyond the band waits at limit-down (limit-up)
        wanted = [
            (side, ex.book.clip(price), size)
            for side, quotes in ((BUY, bids), (SELL, asks))
            for price, size in quotes
        ]
        self.maintain_quotes(wanted, effect="open", check_margin=False)

    def _harvest_tick(self, fair: float, side: int) -> int:
        """The harvest quote: fair ∓ spread, or just behind the best competitor."""
        cfg = self.model.cfg.hedger
        ex = self.exchange
        tick = ex.contract.tick_size
        if side == BUY:
            worst = math.floor((fair - cfg.harvest_spread) / tick + 1e-9)
            if cfg.spread_policy == "competitive":
                other = self.best_other(BUY)
                if other is not None:
                    return max(worst, other - 1)
            return worst
        worst = math.ceil((fair + cfg.harvest_spread) / tick - 1e-9)
        if cfg.spread_policy == "competitive":
            other = self.best_other(SELL)
            if other is not None:
                return min(worst, other + 1)
        return worst

    def end_of_day(self) -> None:
        if self.model.cfg.hedger.net_every_day:
            self.exchange.clearing.net_locks(self.account)

"""Retail traders: no delivery rights, a direction, leverage, and a clock running out.

Each trader has a direction (long or short, so that the crowd's long share is
``retail.long_share``), a deposit and a leverage. It opens once in the opening phase, then —
when its Poisson clock fires — trades noise or trend round trips in its own direction, honours
its stop-loss, and answers margin calls with a probability. Most traders close voluntarily at a
time drawn in the last days before the deadline (a hazard that rises as the deadline nears),
with a patient limit order at the last settlement price; what is still open at the deadline is
force-closed by the broker at the counterparty's price.
"""

from __future__ import annotations

import math

from abm.agents.base import TraderAgent
from abm.exchange import BUY, SELL


class RetailTrader(TraderAgent):
    label = "retail"

    def __init__(
        self,
        model,
        deposit: float,
        direction: int,
        leverage: float,
        trend: bool,
        open_step: int,
        close_step: int | None,
    ):
        super().__init__(model, deposit, deliverable=False)
        self.direction = direction  # +1 long, −1 short
        self.leverage = leverage
        self.trend = trend
        self.open_step = open_step
        self.close_step = close_step  # None: waits for the forced close
        self.state = "waiting"  # waiting → holding → closing → done
        self.n_rejected = 0

    # -- sizes ----------------------------------------------------------------------------------
    def _lots_for(self, notional_share: float = 1.0) -> int:
        cfg = self.model.cfg.retail
        price = max(abs(self.exchange.mark), self.exchange.contract.tick_size)
        lots = math.floor(
            self.leverage
            * self.account.deposits
            * notional_share
            / (price * self.exchange.contract.multiplier)
        )
        return max(cfg.lots_min, min(cfg.lots_max, lots))

    def _order(self, side: int, qty: int, effect: str, patient: bool = False) -> None:
        cfg = self.model.cfg.retail
        ex = self.exchange
        rng = self.model.rng
        if patient or rng.random() < cfg.limit_order_share:
            ref = ex.book.mid()
            ref_tick = ex.contract.to_tick(ex.settle_price) if ref is None else round(ref)
            price = ref_tick - side * int(rng.integers(0, cfg.limit_offset_ticks + 1))
            lo, hi = ex.book.band
            if lo is not None:
                price = max(price, lo)
            if hi is not None:
                price = min(price, hi)
            r = ex.submit(self.account, side, qty, price, "limit", effect)
        else:
            r = ex.submit(self.account, side, qty, None, "market", effect)
        if not r.ok:
            self.n_rejected += 1

    # -- life cycle -----------------------------------------------------------------------------
    def open_position(self) -> None:
        """Scheduled at ``open_step``: open the whole position in the trader's direction."""
        if self.state != "waiting" or self.exchange.after_deadline():
            return
        self.state = "holding"
        self._order(BUY if self.direction > 0 else SELL, self._lots_for(), "open")

    def start_closing(self) -> None:
        """Scheduled at ``close_step``: close everything with a patient limit at the last
        settlement price (re-posted every morning until filled or forced)."""
        if self.state in ("done", "closing"):
            return
        self.state = "closing"
        self.model.closing.add(self)
        self.post_close()

    def post_close(self) -> None:
        acc, ex = self.account, self.exchange
        ex.cancel_all(acc)
        if not acc.lots:
            self.state = "done"
            return
        price = ex.contract.to_tick(ex.settle_price)
        lo, hi = ex.book.band
        if lo is not None:
            price = max(price, lo)
        if hi is not None:
            price = min(price, hi)
        if acc.long:
            ex.submit(acc, SELL, acc.long, price, "limit", "close")
        if acc.short:
            ex.submit(acc, BUY, acc.short, price, "limit", "close")

    def close_now(self) -> None:
        acc, ex = self.account, self.exchange
        ex.cancel_all(acc)
        if acc.long:
            ex.submit(acc, SELL, acc.long, None, "market", "close")
        if acc.short:
            ex.submit(acc, BUY, acc.short, None, "market", "close")
        if acc.lots:
            self.state = "closing"
            self.model.closing.add(self)
        else:
            self.state = "done"

    def step(self) -> None:
        """One activation of the trader's Poisson clock."""
        if self.state != "holding" or self.exchange.after_deadline():
            return
        cfg = self.model.cfg.retail
        acc = self.account
        rng = self.model.rng
        if acc.lots and self.pnl < -cfg.stop_loss * acc.deposits:
            self.state = "stopped"
            self.close_now()
            return
        if acc.lots and rng.random() < cfg.close_hazard_base:
            self.start_closing()
            return
        if not cfg.noise_trading:
            return
        if self.trend:
            ret = self.model.recent_return(cfg.trend_lookback_steps)
            add = (ret * self.direction > 0) if ret != 0 else rng.random() < 0.5
        else:
            add = rng.random() < 0.5
        my_side = BUY if self.direction > 0 else SELL
        qty = int(rng.integers(1, max(2, cfg.lots_max // 2 + 1)))
        if add:
            self._order(my_side, qty, "open")
        else:
            held = acc.long if self.direction > 0 else acc.short
            free = held - (
                acc.pending_close_long if self.direction > 0 else acc.pending_close_short
            )
            if free > 0:
                self._order(-my_side, min(qty, free), "close")

    def on_margin_call(self, amount: float) -> None:
        if self.model.rng.random() < self.model.cfg.retail.top_up_probability:
            self.exchange.deposit(self.account, amount)

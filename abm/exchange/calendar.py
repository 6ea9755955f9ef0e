"""The contract and its calendar: ticks, multiplier, fees, price band, margin schedule, deadline.

Time is counted in *steps*; a trading day has ``steps_per_day`` steps, days are numbered
0 .. ``trading_days - 1`` and the last one is the last trading day. Expiry (delivery) happens
after the last step of the last day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Contract:
    """Static contract terms. Prices in the book are integer ticks; money = price × multiplier."""

    tick_size: float
    multiplier: float
    fee_per_lot: float
    price_limit: float | None
    allow_negative_prices: bool
    delivery_cost: float
    name: str = "generic"

    def to_tick(self, price: float) -> int:
        """Nearest tick of a price (price units → ticks)."""
        return int(round(price / self.tick_size))

    def to_price(self, tick: int) -> float:
        """Price of a tick (ticks → price units)."""
        return tick * self.tick_size

    def band(self, prev_settlement: float, widen: float = 0.0) -> tuple[int | None, int | None]:
        """Allowed tick range [lo, hi] for the day, or (None, None) with no limit.

        The band is ± (``price_limit`` + ``widen``) × previous settlement, rounded inward to
        whole ticks (an exchange never allows a price outside the percentage). Without negative
        prices the lower edge is at least one tick.
        """
        lo: int | None
        hi: int | None
        if self.price_limit is None:
            lo, hi = None, None
        else:
            width = abs(prev_settlement) * (self.price_limit + widen)
            lo = math.ceil((prev_settlement - width) / self.tick_size - 1e-9)
            hi = math.floor((prev_settlement + width) / self.tick_size + 1e-9)
        if not self.allow_negative_prices:
            lo = 1 if lo is None else max(lo, 1)
        return lo, hi


@dataclass(frozen=True, slots=True)
class Calendar:
    """Trading days, steps, settlement window, margin schedule and the forced-close deadline."""

    trading_days: int
    steps_per_day: int
    settlement_window_steps: int
    forced_close_lead_days: int
    forced_close_step: int
    #: the base initial margin rate (fraction of notional): the config's ``margin.rate``
    base_margin_rate: float
    #: the step-ups toward expiry: (days before the last day, rate from then on), any order
    margin_steps: tuple[tuple[int, float], ...]
    broker_add_on: float = 0.0
    forced_close_auction: bool = True
    #: steps over which the desk spreads the forced closes, from the deadline step
    forced_close_window_steps: int = 1

    # -- time ----------------------------------------------------------------------------------
    @property
    def n_steps(self) -> int:
        return self.trading_days * self.steps_per_day

    @property
    def last_day(self) -> int:
        return self.trading_days - 1

    @property
    def deadline_day(self) -> int:
        """Day on which accounts without delivery rights are force-closed."""
        return self.last_day - self.forced_close_lead_days

    @property
    def deadline_step(self) -> int:
        """First step of the forced close."""
        return self.deadline_day * self.steps_per_day + self.forced_close_step

    def forced_close_steps_left(self, step: int) -> int:
        """The steps left in the desk's forced-close window at ``step``, this one included (1
        from the window's last step on: then everything left goes)."""
        return max(self.deadline_step + self.forced_close_window_steps - step, 1)

    def day_of(self, step: int) -> int:
        return step // self.steps_per_day

    def intraday(self, step: int) -> int:
        return step % self.steps_per_day

    def is_day_start(self, step: int) -> bool:
        return step % self.steps_per_day == 0

    def is_day_end(self, step: int) -> bool:
        return step % self.steps_per_day == self.steps_per_day - 1

    def in_settlement_window(self, step: int) -> bool:
        return self.intraday(step) >= self.steps_per_day - self.settlement_window_steps

    def days_to_deadline(self, step: int) -> float:
        """Trading days (fractional) from ``step`` to the deadline; negative after it."""
        return (self.deadline_step - step) / self.steps_per_day

    # -- margin --------------------------------------------------------------------------------
    def scheduled_margin_rate(self, day: int) -> float:
        """The schedule's margin rate (fraction of notional) for ``day``: the base, stepped up
        toward expiry, plus the broker's add-on. What is in force on a day may add the
        exchange's discretionary margin
        ([`Exchange.margin_rate_in_force`][abm.exchange.market.Exchange.margin_rate_in_force]).

        Of the step-ups already in force, the one closest to expiry wins, but never below the
        base; the broker's add-on is added on top.
        """
        rate = self.base_margin_rate
        best = None
        for before, r in self.margin_steps:
            if day >= self.last_day - before and (best is None or before < best):
                best, rate = before, r
        # a step-up never lowers the rate: sweeping the base above a step keeps the base
        return max(rate, self.base_margin_rate) + self.broker_add_on

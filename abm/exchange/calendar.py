"""The contract and its calendar: ticks, multiplier, fees, price band, margin schedule, deadline.

Time is counted in *steps*; a trading day has ``steps_per_day`` steps, days are numbered
0 .. ``trading_days - 1`` and the last one is the last trading day. Expiry (delivery) happens
after the last step of the last day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from abm.config import CalendarConfig, ContractConfig, MarginConfig


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

    @classmethod
    def from_config(cls, c: ContractConfig) -> Contract:
        return cls(
            tick_size=c.tick_size,
            multiplier=c.multiplier,
            fee_per_lot=c.fee_per_lot,
            price_limit=c.price_limit,
            allow_negative_prices=c.allow_negative_prices,
            delivery_cost=c.delivery_cost,
            name=c.name,
        )

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
    margin_base: float
    margin_steps: tuple[tuple[int, float], ...]  # (days_before_last, rate applied), any order
    broker_add_on: float = 0.0
    forced_close_auction: bool = True

    @classmethod
    def from_config(cls, cal: CalendarConfig, margin: MarginConfig) -> Calendar:
        return cls(
            trading_days=cal.trading_days,
            steps_per_day=cal.steps_per_day,
            settlement_window_steps=cal.settlement_window_steps or cal.steps_per_day,
            forced_close_lead_days=cal.forced_close_lead_days,
            forced_close_step=cal.forced_close_step,
            margin_base=margin.rate,
            margin_steps=tuple(
                (s.days_before_last, s.applied(margin.rate)) for s in margin.step_ups
            ),
            broker_add_on=margin.broker_add_on,
            forced_close_auction=cal.forced_close_auction,
        )

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
    def margin_rate(self, day: int) -> float:
        """Margin rate (fraction of notional) in force on ``day``: base, stepped up toward expiry.

        Of the step-ups already in force, the one closest to expiry wins, but never below the
        base; the broker's add-on is added on top.
        """
        rate = self.margin_base
        best = None
        for before, r in self.margin_steps:
            if day >= self.last_day - before and (best is None or before < best):
                best, rate = before, r
        # a step-up never lowers the rate: sweeping the base above a step keeps the base
        return max(rate, self.margin_base) + self.broker_add_on

"""Delivery capacity and the marginal cost of delivery: a state of the world, not a price.

Every account with delivery rights can make delivery (from inventory) or take it (into storage)
at a cost. Its *marginal delivery cost* is flat up to a soft limit (the room it has at the usual
cost), then rises linearly as storage or inventory runs out, up to an optional hard capacity:

    c(q) = cost                              for q <= soft
    c(q) = cost + slope × (q − soft)         for soft < q <= capacity
    no q beyond capacity

``q`` counts lots delivered beyond the account's opening position, cost and slope are in price
units per unit of the underlying (slope: per lot). Its *supply of absorption* at a discount
``d`` (price units below fair value when it buys, above when it sells) is every lot whose
marginal cost is at most ``d``: zero below ``cost``, the soft room at ``cost``, then ``1/slope``
more lots per price unit (the fringe's depth κ), never beyond capacity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeliveryCurve:
    """Marginal delivery cost of one account (or of a group, summed as supplies).

    ``cost``: flat marginal cost (price units per unit); ``soft``: lots at that cost (None: all
    of ``capacity``); ``slope``: rise per lot beyond ``soft`` (price units per lot);
    ``capacity``: hard limit in lots (None: none).
    """

    cost: float
    soft: int | None = None
    slope: float = 0.0
    capacity: int | None = None

    def __post_init__(self) -> None:
        for name in ("cost", "slope"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ValueError(f"delivery curve {name} = {v!r}: must be a finite number >= 0")
        for name in ("soft", "capacity"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int) and v >= 0):
                raise ValueError(f"delivery curve {name} = {v!r}: must be a whole number >= 0")
        if self.soft is not None and self.capacity is not None and self.soft > self.capacity:
            raise ValueError(
                f"delivery curve soft = {self.soft}: must be <= capacity = {self.capacity}"
            )

    @property
    def soft_limit(self) -> float:
        """Lots at the flat cost (inf when neither a soft limit nor a capacity is set)."""
        if self.soft is not None:
            return self.soft
        return math.inf if self.capacity is None else self.capacity

    @property
    def depth(self) -> float:
        """κ: lots absorbed per price unit of discount beyond the soft limit (inf if flat)."""
        return math.inf if self.slope == 0 else 1.0 / self.slope

    @property
    def walled(self) -> bool:
        """True when supply stops at a finite number of lots whatever the discount."""
        return self.capacity is not None

    def marginal(self, q: int) -> float:
        """Marginal cost (price units) of the ``q``-th lot; lots q <= 0 cost the flat rate;
        inf beyond the hard capacity."""
        if self.capacity is not None and q > self.capacity:
            return math.inf
        over = q - self.soft_limit
        return self.cost if over <= 0 else self.cost + self.slope * over

    def total(self, q: int) -> float:
        """Cost (price units × lots) of delivering ``q`` lots: Σ of the marginal costs of lots
        1..q. Beyond the hard capacity the last slope is extended (what the warehouse charges
        an account that ends up holding more than it planned for)."""
        q = abs(int(q))
        over = max(0.0, q - self.soft_limit)  # lots on the rising part
        return self.cost * q + self.slope * over * (over + 1) / 2.0

    def supply(self, discount: float, held: int = 0) -> float:
        """Lots beyond the first ``held`` whose marginal cost is <= ``discount`` (price units);
        inf for an unbounded flat curve."""
        if discount < self.cost:
            return 0.0
        soft = self.soft_limit
        if self.slope == 0 or soft == math.inf:  # flat all the way to the wall, if any
            lots = math.inf if self.capacity is None else self.capacity
        else:
            lots = soft + math.floor((discount - self.cost) / self.slope + 1e-9)
            if self.capacity is not None:
                lots = min(lots, self.capacity)
        return max(0.0, lots - held)

    def scaled(self, share: float) -> DeliveryCurve:
        """This curve for an account holding ``share`` of a group's room: soft limit and
        capacity scaled by ``share``, slope divided by it, so that the shares' supplies add up
        to the group's."""
        if not 0 < share <= 1:
            raise ValueError(f"share = {share}: must be in (0, 1]")
        return DeliveryCurve(
            self.cost,
            None if self.soft is None else int(round(self.soft * share)),
            self.slope / share,
            None if self.capacity is None else int(round(self.capacity * share)),
        )

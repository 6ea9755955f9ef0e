"""Delivery arbitrageurs: traders whose only business is delivery, with limited room.

An arbitrageur bids for futures below fair value by more than its marginal delivery cost (it
will take delivery) and offers them above fair value by more than it (it will make delivery),
up to its capacity: the competitive fringe of [`abm.agents.fringe`][abm.agents.fringe]. The group's
capacity, soft capacity and cost slope (``[arbitrageurs]``) are split evenly, so that their
supplies add up to the group's curve. Capacity 0 is the WTI-2020 case: no room at any price.
"""

from __future__ import annotations

from abm.agents.fringe import DeliveryTrader
from abm.delivery import DeliveryCurve


class DeliveryArbitrageur(DeliveryTrader):
    """Keyword parameters: its delivery ``curve`` (its share of the group's) and the
    ``[arbitrageurs]`` fields ``capital`` (its deposit), ``ladder_levels``, ``order_size``,
    ``show_levels`` and ``harvest_markup`` (how much of its supply it shows, and whether it
    holds back while the firms harvest)."""

    label = "arbitrageur"

    def __init__(
        self,
        model,
        *,
        curve: DeliveryCurve,
        capital: float,
        ladder_levels: int,
        order_size: int,
        show_levels: int,
        harvest_markup: float,
    ):
        super().__init__(
            model,
            capital,
            curve,
            ladder_levels=ladder_levels,
            order_size=order_size,
            show_levels=show_levels,
            harvest_markup=harvest_markup,
        )

    @property
    def capacity(self) -> int | None:
        return self.curve.capacity

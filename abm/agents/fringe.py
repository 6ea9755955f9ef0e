"""Competitive delivery-capable traders (the fringe): they quote their marginal delivery cost.

A fringe trader can take delivery (into storage) or make it (from inventory) at the cost its
[`DeliveryCurve`][abm.delivery.DeliveryCurve] gives for each further lot. It is a price taker: it
bids for a lot whenever the futures price is below fair value by more than that lot's marginal cost,
and offers when it is above, so the ladder of quotes it rests in the book *is* its supply of
absorption. Quotes sit one tick inside the cost (every fill earns more than delivering costs),
levels are grouped so a ladder has at most ``ladder_levels`` prices, each level bidding for the
lots whose cost is covered at that price, and the ladder stops at the band's edge. A trader
never quotes beyond its hard capacity; without one, no further than its cheap room plus the
lots the accounts without delivery rights hold (it can never be asked for more). It holds what
it buys to delivery.

That is the passive baseline. A fringe that plays (``[arbitrageurs]``) shows only the first
``show_levels`` levels of its ladder at a time, the next coming up as they fill (an iceberg:
the rest of its supply is invisible to the book's readers), and adds ``harvest_markup`` to its
cost while the firms harvest, holding back supply it expects to sell dearer.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import ClassVar, NamedTuple

from abm.agents.base import TraderAgent
from abm.delivery import DeliveryCurve
from abm.exchange import BUY, SELL


class Ladder(NamedTuple):
    """Quotes (tick, lots), best price for the counterparty first, and the ticks between the
    levels of its rising part."""

    levels: list[tuple[int, int]]
    step: int


def cost_ladder(
    curve: DeliveryCurve,
    held: int,
    side: int,
    fair: float,
    tick_size: float,
    max_levels: int,
    room_cap: int,
    band: tuple[int | None, int | None],
    order_size: int = 0,
) -> Ladder:
    """The quotes of a price-taking trader with ``curve`` that already holds ``held`` lots in
    ``side``'s direction (negative: the other way). ``room_cap`` bounds the lots quoted when
    the curve has no wall."""
    lo, hi = band
    room = room_cap if curve.capacity is None else min(room_cap, curve.capacity - held)
    if room <= 0:
        return Ladder([], 1)

    def tick_for(cost: float) -> int:
        # one tick inside fair ∓ cost: a bid strictly below fair − cost, an ask strictly above
        if side == BUY:
            return math.ceil((fair - cost) / tick_size - 1e-9) - 1
        return math.floor((fair + cost) / tick_size + 1e-9) + 1

    def lots_at(tick: int) -> float:
        d = side * (fair - tick * tick_size)  # the discount this tick gives the counterparty
        return min(room, curve.supply(d) - held)

    first = tick_for(curve.cost)
    last = tick_for(curve.marginal(held + room))
    edge = lo if side == BUY else hi
    if edge is not None and side * (last - edge) < 0:
        last = edge  # the levels are spread over what the band lets it quote today
    span = abs(first - last)
    step = max(1, math.ceil(span / max(max_levels - 1, 1)))
    top = hi if side == BUY else lo  # a quote beyond the band's other edge waits at it
    out: list[tuple[int, int]] = []
    done = 0
    k = 0
    while done < room and len(out) < max_levels:
        tick = first - side * step * k
        if edge is not None and side * (tick - edge) < 0:
            tick = edge  # the band stops the ladder: the rest waits at the limit
        quoted = tick if top is None or side * (tick - top) <= 0 else top
        cum = lots_at(tick)
        cum = room if cum == math.inf else int(cum)
        q = cum - done
        if q > 0:
            out.append((quoted, min(q, order_size) if order_size else q))
            done = cum
        if tick == edge or (side * (tick - last) <= 0):
            break
        k += 1
    return Ladder(out, step)


class DeliveryTrader(TraderAgent):
    """A price-taking account with delivery rights that quotes its cost curve on ``sides``.

    It acts in the quote phase ([`quote()`][abm.agents.fringe.DeliveryTrader.quote]), told the lots
    the accounts without delivery rights hold (public: exchanges publish positions by trader type),
    which bound what it can be asked to absorb."""

    label = "fringe"
    phases: ClassVar[dict[str, str]] = {"quote": "quote"}

    def __init__(
        self,
        model,
        deposit: float,
        curve: DeliveryCurve,
        sides: tuple[int, ...] = (BUY, SELL),
        ladder_levels: int = 20,
        order_size: int = 0,
        show_levels: int = 0,
        harvest_markup: float = 0.0,
        exchange=None,
    ):
        super().__init__(model, deposit, deliverable=True, exchange=exchange)
        self.curve = curve
        self.account.delivery_curve = curve
        self.sides = sides
        self.ladder_levels = ladder_levels
        self.order_size = order_size
        self.show_levels = show_levels
        self.harvest_markup = harvest_markup
        self._wanted: list[tuple[int, int, int]] = []  # the ladder last rested
        self._key: tuple | None = None  # what it was built from
        self._anchor = 0.0  # fair value it was built at
        self._tolerance = 0.0  # how far fair value may move before it is rebuilt
        self._levels: dict[int, list[tuple[int, int]]] = {}  # the ladder by side
        #: its storage against the next listed month (abm.agents.next_month.StorageLink):
        #: None, or what sets its value of a delivered lot
        self.storage = None
        #: re-quote the first level at the next lot's marginal cost (True: the next month's
        #: participants), else at the flat cost (False: the front's fringe, as in the stored
        #: results; see _first_tick)
        self.requote_marginal = exchange is not None

    @property
    def fair(self) -> float:
        """Its value of a delivered lot (price units): fair value, or with storage against the
        next month, that month's best bid (it sells the stored lot forward)."""
        if self.storage is not None:
            return self.storage.value()
        return super().fair

    def _room_cap(self, held: int, nd_lots: int) -> int:
        """Lots it may quote: its cheap room plus ``nd_lots``, what the accounts without
        delivery rights hold (public: exchanges publish positions by trader type), rounded up
        to a power of two so the ladder is not rebuilt for every lot the crowd trades."""
        soft = self.curve.soft_limit
        cheap = int(max(0, soft - held)) if soft != math.inf else 0
        return cheap + (1 << max(nd_lots, 1).bit_length())

    def curve_vs_fair(self) -> DeliveryCurve:
        """Its cost curve measured from the front's fair value, as the theory reads the fringe:
        the curve itself, or with storage against the next month, its flat cost less the
        premium of its value of a delivered lot over fair value now (a value above fair value
        by more than the flat cost counts as a zero flat cost: the theory has no bid above
        fair value)."""
        if self.storage is None:
            return self.curve
        premium = self.fair - self.model.fair
        return replace(self.curve, cost=max(self.curve.cost - premium, 0.0))

    def markup(self) -> float:
        """Price units it adds to its cost now: ``harvest_markup`` from the harvest window's
        start (public: the calendar), nothing before."""
        if self.harvest_markup and self.exchange.step >= self.exchange.harvest_start_step:
            return self.harvest_markup
        return 0.0

    def ladder(self, side: int, nd_lots: int) -> Ladder:
        """Its quotes on ``side`` now, when the accounts without delivery rights hold
        ``nd_lots`` lots."""
        ex = self.exchange
        held = self.account.net * side
        return cost_ladder(
            self.curve,
            held,
            side,
            self.fair - side * self.markup(),
            ex.contract.tick_size,
            self.ladder_levels,
            self._room_cap(held, nd_lots),
            ex.book.band,
            self.order_size,
        )

    def _first_tick(self, side: int) -> int:
        """Where its first level is quoted now, one tick inside, in band: at its next lot's
        marginal cost when ``requote_marginal``, else at the flat cost (the stored results'
        rule: once its position has passed its cheap room, that level is quoted dearer than
        its curve until the position next changes and the ladder is rebuilt)."""
        ex = self.exchange
        t = ex.contract.tick_size
        if self.requote_marginal:
            c = self.curve.marginal(self.account.net * side + 1) + self.markup()
        else:
            c = self.curve.cost + self.markup()
        fair = self.fair
        if side == BUY:
            tick = math.ceil((fair - c) / t - 1e-9) - 1
        else:
            tick = math.floor((fair + c) / t + 1e-9) + 1
        return ex.book.clip(tick)

    def quote(self, nd_lots: int) -> None:
        """Rest the cost ladder, the accounts without delivery rights holding ``nd_lots``
        lots. The cheapest level (the flat cost, where competition bites) follows fair value
        tick by tick; the whole ladder is rebuilt when the position, the band, the day or the
        lots it may be asked for change, or when fair value has moved by half a level: the
        rising part need not follow fair value more finely than it is spaced."""
        ex = self.exchange
        fair = self.fair
        key = (self.account.net, ex.book.band, ex.day, self._room_cap(0, nd_lots), self.markup())
        alive = self._quotes_alive()
        if key != self._key or abs(fair - self._anchor) >= self._tolerance or not alive:
            ladders = [(side, self.ladder(side, nd_lots)) for side in self.sides]
            self._levels = {side: list(lad.levels) for side, lad in ladders}
            self._key, self._anchor = key, fair
            spacing = min((lad.step for _, lad in ladders), default=1)
            self._tolerance = 0.5 * spacing * ex.contract.tick_size
        else:  # only the cheapest level moves with fair value; its lots stay
            for side, levels in self._levels.items():
                if levels:
                    levels[0] = (self._first_tick(side), levels[0][1])
        shown = self.show_levels or None  # an iceberg shows its first levels, the rest waits
        wanted = [(side, t, q) for side, levels in self._levels.items() for t, q in levels[:shown]]
        if wanted != self._wanted or not alive:
            self._wanted = wanted
            self.maintain_quotes(wanted, check_margin=False)

    def _quotes_alive(self) -> bool:
        resting = self.exchange.book.resting
        return all(i in resting for ids in getattr(self, "_quotes", {}).values() for i in ids)

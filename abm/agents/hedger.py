"""The dominant hedger: delivery rights, deep pockets, and the other side of every retail order.

One firm by default, or ``hedger.n_firms`` firms sharing the role (``hedger.shares`` of the
quotes, capital and delivery room, and so of the opposite position). Phases, by step:

* *accumulate* — quotes ``quote_levels`` levels of ``quote_size × share`` lots on both sides
  around fair value (spot plus carry), opening longs and shorts alike (a lock), so it takes the
  other side of the crowd's orders;
* *net* — at every day's end it offsets its own longs against its shorts: no trade, no price
  impact, open interest falls; what remains is the opposite of the crowd's NDNP;
* *harvest* — from ``harvest_window_steps`` before the deadline until the crowd is flat, it
  prices the side the crowd needs by its harvest policy
  ([`abm.agents.pricing`][abm.agents.pricing]): by default
  the quote that maximises its profit given the competing quotes in the book, its estimate of
  what the crowd must still close, its own delivery cost and position, the band and the
  sessions left (waiting for a lower band when the band stops it short of its optimum);
* *deliver* — once the crowd is flat it quotes both sides around fair value again, the market
  that lives on among accounts that can deliver; what it holds at expiry is delivered.
"""

from __future__ import annotations

import math
from typing import ClassVar

from abm.agents.base import TraderAgent
from abm.agents.pricing import Firm, HarvestPricing, HarvestView, Quote
from abm.delivery import DeliveryCurve
from abm.exchange import BUY, SELL


class DominantHedger(TraderAgent):
    """One of the firms holding the crowd's opposite position. Keyword parameters: ``index``
    and ``share`` (its place and share among the firms), its delivery ``curve``, its harvest
    ``pricing`` policy (an object, [`abm.agents.pricing`][abm.agents.pricing]), and the
    ``[hedger]`` fields it uses (``capital`` and ``quote_size`` of all firms together,
    ``quote_half_spread_ticks``, ``quote_levels``, ``knows_ndnp``, ``net_every_day``,
    ``risk_limit``, ``depth_refill``, ``risk_widen_ticks``, ``harvest_spread``, ``view_depth``),
    and ``var_z`` of ``[risk]``."""

    label = "hedger"
    # prices after the fringe has quoted its costs, so it sees them
    phases: ClassVar[dict[str, str]] = {"quote": "step"}

    def __init__(
        self,
        model,
        *,
        index: int = 0,
        share: float = 1.0,
        curve: DeliveryCurve,
        pricing: HarvestPricing,
        capital: float,
        quote_half_spread_ticks: int,
        quote_size: int,
        quote_levels: int,
        knows_ndnp: bool,
        net_every_day: bool,
        risk_limit: float | None,
        depth_refill: int,
        risk_widen_ticks: int,
        harvest_spread: float,
        var_z: float,
        view_depth: int,
        flow_lean: float = 0.0,
        flow_lean_half_life_steps: float = 100.0,
    ):
        super().__init__(model, capital * share, deliverable=True)
        self.index = index
        self.share = share
        self.curve = curve
        self.account.delivery_curve = curve
        self.pricing = pricing
        self.quote_half_spread_ticks = quote_half_spread_ticks
        self.quote_size = quote_size
        self.quote_levels = quote_levels
        self.knows_ndnp = knows_ndnp
        self.net_every_day = net_every_day
        self.risk_limit = risk_limit
        self.depth_refill = depth_refill
        self.risk_widen_ticks = risk_widen_ticks
        self.harvest_spread = harvest_spread
        self.var_z = var_z
        self.view_depth = view_depth
        full = max(1, round(quote_size * share)) * quote_levels
        self.depth = {BUY: full, SELL: full}  # lots it is prepared to show per side
        self._shown: dict[int, int] = {}  # lots its quotes showed when it last quoted
        self._shown_day = -1
        self.flow_lean = flow_lean
        self._flow_decay = 0.5 ** (1.0 / flow_lean_half_life_steps)
        #: its recent net sales (lots): an EWMA of its position's fall since it last quoted
        self.recent_sales = 0.0
        self._net_when_quoted: int | None = None  # its position when it last quoted

    @property
    def phase(self) -> str:
        ex = self.exchange
        s = ex.step
        if s < ex.harvest_start_step:
            return "accumulate"
        if s < ex.deadline_step or ex.broker.forced or self.model.crowd_holds():
            return "harvest"
        return "deliver"

    def estimate_ndnp(self) -> int:
        """The crowd's net position: shared by the brokers, or read off its own book (after
        netting a firm holds about −share × NDNP)."""
        if self.knows_ndnp:
            return self.exchange.clearing.ndnp
        return -round(self.account.net / self.share)

    # -- finite, risk-limited liquidity ------------------------------------------------------
    def risk_room(self) -> float:
        """Lots of net position its value-at-risk limit allows now: limit × share / (z × daily
        volatility × price × multiplier); inf without a limit or volatility."""
        limit = self.risk_limit
        vol = self.model.vol_daily
        ex = self.exchange
        per_lot = self.var_z * vol * abs(ex.settle_price) * ex.contract.multiplier
        if limit is None or per_lot <= 0:
            return math.inf
        return limit * self.share / per_lot

    def _shown_lots(self) -> dict[int, int]:
        """Lots its resting quotes show, by side."""
        resting = self.exchange.book.resting
        out = {BUY: 0, SELL: 0}
        for (side, _), ids in getattr(self, "_quotes", {}).items():
            for i in ids:
                o = resting.get(i)
                if o is not None:
                    out[side] += o.qty
        return out

    def _refill(self, full: int, harvest_side: int) -> None:
        """Depth it is prepared to show per side: what its ordinary quotes lost to fills since
        it last quoted is gone, and comes back at ``depth_refill`` lots a step."""
        rate = self.depth_refill
        if rate == 0:
            self.depth[BUY] = self.depth[SELL] = full
            return
        same_day = self.exchange.day == self._shown_day
        now = self._shown_lots() if same_day else {}
        for side in (BUY, SELL):
            filled = 0
            if same_day and side != harvest_side:
                filled = max(0, self._shown.get(side, 0) - now[side])
            self.depth[side] = min(full, self.depth[side] - filled + rate)

    @staticmethod
    def _ladder(side: int, start: int, size: int, levels: int, budget: float):
        """``levels`` quotes from ``start`` away from fair, best first, up to ``budget`` lots
        (whole levels of ``size`` first)."""
        out = []
        left = int(budget)
        for k in range(levels):
            q = min(size, left)
            if q <= 0:
                break
            out.append((start - side * k, q))
            left -= q
        return out

    def step(self) -> None:
        ex = self.exchange
        fair = self.model.fair
        net = self.account.net
        # what its fills took since it last quoted (nothing at its first quote: a position
        # booked before the market opened is not order flow)
        before = net if self._net_when_quoted is None else self._net_when_quoted
        self.recent_sales = self._flow_decay * self.recent_sales + (before - net)
        if self.flow_lean and self.phase != "harvest":
            # quotes that learn from their own fills: after selling, it asks (and bids) more
            centre = round((fair + self.flow_lean * self.recent_sales) / ex.contract.tick_size)
        else:
            centre = round(fair / ex.contract.tick_size)
        size = max(1, round(self.quote_size * self.share))
        levels = self.quote_levels
        harvest = self.phase == "harvest"
        ndnp = self.estimate_ndnp() if harvest else 0
        harvest_side = (BUY if ndnp > 0 else SELL) if ndnp else 0
        self._refill(size * levels, harvest_side)
        # the value-at-risk limit binds on the side that adds exposure: less and wider there
        # (``net`` was read above; nothing since has traded)
        room = self.risk_room()
        used = min(1.0, abs(net) / room) if room != math.inf else 0.0
        budget = {BUY: float(self.depth[BUY]), SELL: float(self.depth[SELL])}
        half = {BUY: self.quote_half_spread_ticks, SELL: self.quote_half_spread_ticks}
        if net:
            adds = BUY if net > 0 else SELL
            budget[adds] = min(budget[adds], max(0.0, room - abs(net)))
            half[adds] += math.ceil(self.risk_widen_ticks * used)
        elif room != math.inf:
            budget[BUY] = min(budget[BUY], room)
            budget[SELL] = min(budget[SELL], room)
        bids = self._ladder(BUY, centre - half[BUY], size, levels, budget[BUY])
        asks = self._ladder(SELL, centre + half[SELL], size, levels, budget[SELL])
        tags: dict[tuple[int, int], str] = {}
        # a policy that does not harvest (the counterfactual) keeps its ordinary quotes
        if harvest and getattr(self.pricing, "harvests", True) and ndnp:
            side = BUY if ndnp > 0 else SELL
            quote = self.pricing.decide(self.view(side, abs(ndnp)))
            if quote is not None and getattr(self.pricing, "shows_quote_size", False):
                quote = Quote(quote.tick, max(size, quote.lots), quote.reason)
            mine = [] if quote is None else [(quote.tick, quote.lots)]
            if quote is not None:
                tags[(side, ex.book.clip(quote.tick))] = "harvest"
            if side == BUY:
                bids = mine
            else:
                asks = mine
        # an ordinary quote beyond the band waits at the limit
        wanted = [
            (side, ex.book.clip(price), lots)
            for side, quotes in ((BUY, bids), (SELL, asks))
            for price, lots in quotes
        ]
        self.maintain_quotes(wanted, effect="open", check_margin=False, tags=tags)
        self._net_when_quoted = self.account.net
        if self.depth_refill:
            self._shown = self._shown_lots()
            self._shown_day = ex.day

    def view(self, side: int, q: int) -> HarvestView:
        """What this firm sees when it prices the crowd's exit on ``side``: by its policy's
        ``information``, a desk's view ([`desk_view()`][abm.agents.hedger.DominantHedger.desk_view],
        the default) or the labelled full-information benchmark
        ([`full_view()`][abm.agents.hedger.DominantHedger.full_view])."""
        if getattr(self.pricing, "information", "desk") == "full":
            return self.full_view(side, q)
        return self.desk_view(side, q)

    def _frame(self, side: int, q: int, ladder, firms, me: int, shares) -> HarvestView:
        """The view's public part (fair value, the band, the calendar) around what it sees of
        the competition (``ladder``) and of the firms (``firms``)."""
        model = self.model
        ex = self.exchange
        lo, hi = ex.book.band
        worst, best = (lo, hi) if side == BUY else (hi, lo)
        floor_tick = None if ex.contract.allow_negative_prices else 1
        band_moves = ex.contract.price_limit is not None and not (
            side == BUY and worst is not None and worst == floor_tick
        )
        return HarvestView(
            side=side,
            q=q,
            ladder=ladder,
            fair=model.fair,
            tick_size=ex.contract.tick_size,
            worst=worst,
            best=best,
            firms=firms,
            me=me,
            shares=shares,
            sessions_left=ex.calendar.last_day - ex.day,
            band_moves=band_moves,
            spread=self.harvest_spread,
        )

    @staticmethod
    def _resting_by_tick(firms, side: int, resting) -> dict[int, int]:
        """Lots the quotes of ``firms`` rest on ``side``, by tick."""
        out: dict[int, int] = {}
        for f in firms:
            for (s, tick), ids in getattr(f, "_quotes", {}).items():
                if s == side:
                    out[tick] = out.get(tick, 0) + sum(resting[i].qty for i in ids if i in resting)
        return out

    def desk_view(self, side: int, q: int) -> HarvestView:
        """A desk's view: the book's best ``view_depth`` levels on ``side`` less its own quotes
        (rivals' quotes are competing volume like any other), its own position and curve, the
        crowd's need ``q`` (the brokers' report, or its own inference). No other account's
        position or curve."""
        ex = self.exchange
        own = self._resting_by_tick([self], side, ex.book.resting)
        ladder = [
            (tick, lots - own.get(tick, 0))
            for tick, lots in ex.book.depth(side, self.view_depth)
            if lots > own.get(tick, 0)
        ]
        me = Firm(max(0, -side * self.account.net), self.curve)
        return self._frame(side, q, ladder, [me], 0, [1.0])

    def full_view(self, side: int, q: int) -> HarvestView:
        """The full-information benchmark: the whole book without any firm's quotes (the
        fringe's whole cost ladder when it rests it) and every firm's position and curve."""
        ex = self.exchange
        firms = self.model.hedgers
        mine = self._resting_by_tick(firms, side, ex.book.resting)
        ladder = [
            (tick, lots - mine.get(tick, 0))
            for tick, lots in ex.book.depth(side, 100_000)
            if lots > mine.get(tick, 0)
        ]
        return self._frame(
            side,
            q,
            ladder,
            [Firm(max(0, -side * f.account.net), f.curve) for f in firms],
            self.index,
            [f.share for f in firms],
        )

    def end_of_day(self) -> None:
        if self.net_every_day:
            self.exchange.clearing.net_locks(self.account)

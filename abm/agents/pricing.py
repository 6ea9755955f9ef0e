"""How delivery-capable firms price the crowd's forced exit: replaceable decision objects.

At the deadline the crowd must close its net non-deliverable position Q = |NDNP| whatever the
price. Lots can only go to accounts that can deliver. For a firm that holds the opposite
position, buying (selling) a lot back at price p is worth fair − p (p − fair) plus the delivery
cost it saves; competing delivery-capable traders (the fringe) bid their own marginal delivery
cost. The firm chooses its quote to maximise

    profit(p) = x(p) × d(p) + W(x(p)),   x(p) = Q − X_others − F(p),   d(p) = discount of p

where F(p) is the competing volume the forced-close auction reaches before p (read off the
book), X_others what the other firms take, and W(x) = C(H) − C(|H − x|) the delivery cost it
saves by buying x of its H lots back (C: its delivery cost curve). The forced-close auction is
uniform-price, so every lot, the fringe's too, clears at the firm's price.

With one firm this is the dominant firm facing a competitive fringe (monopsony side): for a
linear fringe of depth κ above cost c_f and a firm cost c_h the optimum is
d* = max(c_f, (Q/κ + c_f − c_h)/2) (see [`abm.theory`][abm.theory]). With several firms each
chooses how many lots to absorb and the auction's price clears the rest against the fringe: a
Cournot game, solved here by best responses, each of which is the one-firm problem on the residual.

Decisions are objects with one method,
[`HarvestPricing.decide()`][abm.agents.pricing.HarvestPricing.decide], that sees a
[`HarvestView`][abm.agents.pricing.HarvestView] and returns a [`Quote`][abm.agents.pricing.Quote]
(or None: no quote on the crowd's side), so a researcher can swap the policy by name in the config
(``hedger.spread_policy``) or pass one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Protocol

from abm.delivery import DeliveryCurve


@dataclass(frozen=True, slots=True)
class Firm:
    """A holder of part of the crowd's opposite position, as every firm sees it: its position
    (lots it holds opposite the crowd, >= 0) and its delivery cost curve."""

    position: int
    curve: DeliveryCurve

    def saving(self, x: int) -> float:
        """W(x): delivery cost saved (price units × lots) by taking ``x`` lots back: it would
        deliver ``position`` lots, and after the trade delivers |position − x| (beyond its
        position it takes delivery itself)."""
        return self.curve.total(self.position) - self.curve.total(abs(self.position - x))


@dataclass(frozen=True, slots=True)
class Quote:
    """A firm's quote on the crowd's side: ``tick`` (price in ticks) for ``lots``."""

    tick: int
    lots: int
    reason: str = ""


@dataclass(slots=True)
class HarvestView:
    """What a firm observes when it prices the crowd's exit.

    ``side`` is the firm's side (+1: it buys, the crowd is net long). ``ladder`` is the
    competing volume on that side as (tick, lots), best for the crowd first (the book's other
    accounts, without the firms' own quotes). ``worst`` is the furthest tick the exchange
    allows today (the band's edge, or the price floor; None: unbounded), ``best`` the other edge.
    ``sessions_left`` counts trading sessions after today before expiry. ``band_moves`` says
    whether a locked session would move tomorrow's band further (a band that is not already
    the floor).
    """

    side: int
    q: int
    ladder: list[tuple[int, int]]
    fair: float
    tick_size: float
    worst: int | None
    best: int | None
    firms: list[Firm]
    me: int = 0
    shares: list[float] = field(default_factory=lambda: [1.0])
    sessions_left: int = 0
    band_moves: bool = False
    spread: float = 0.0  # the fixed policy's typed-in spread (baseline only)

    def discount(self, tick: int) -> float:
        """Price units the crowd gives up against fair value at ``tick``."""
        return self.side * (self.fair - tick * self.tick_size)


@dataclass(frozen=True, slots=True)
class Response:
    tick: int | None  # None: no price earns anything
    lots: int
    profit: float
    corner: bool  # the optimum sits at the furthest tick allowed (it would go further)


def _candidates(view: HarvestView) -> list[tuple[int, int]]:
    """(tick, competing lots reached before it): just ahead of each competing level, and the
    furthest allowed tick. Between two levels profit falls toward the crowd's side, so only the
    tick right behind a level (or the edge) can be optimal."""
    s = view.side
    out: list[tuple[int, int]] = []
    ahead = 0
    nxt = view.ladder[0][0] + s if view.ladder else None
    for tick, lots in view.ladder:
        # one tick better for the crowd than this level: the levels before it are reached first
        cand = tick + s
        if view.best is not None and s * (cand - view.best) > 0:
            cand = view.best
        if view.worst is None or s * (cand - view.worst) >= 0:
            out.append((cand, ahead))
        ahead += lots
        nxt = tick
    if view.worst is not None:
        if nxt is None or s * (view.worst - nxt) <= 0:
            out.append((view.worst, ahead))
    elif not view.ladder:
        pass
    return out


def best_response(view: HarvestView, residual: int, firm: Firm) -> Response:
    """The firm's best quote when ``residual`` lots (the crowd's need net of what the other
    firms take) must clear against the ladder and it."""
    best = Response(None, 0, 0.0, False)
    total = sum(lots for _, lots in view.ladder)
    for tick, ahead in _candidates(view):
        x = residual - ahead
        if x <= 0:
            continue
        profit = x * view.discount(tick) + firm.saving(x)
        if profit > best.profit + 1e-12:
            corner = view.worst is not None and tick == view.worst and total < residual
            best = Response(tick, x, profit, corner)
    if view.worst is None and total < residual:
        # the competing volume runs out and nothing stops the price: no finite optimum
        return Response(None, residual - total, math.inf, True)
    return best


@dataclass(frozen=True, slots=True)
class Equilibrium:
    tick: int | None
    lots: list[int]
    corner: bool
    iterations: int
    converged: bool


def cournot(view: HarvestView, max_iter: int = 200) -> Equilibrium:
    """Quantities of every firm and the clearing tick: sequential best responses (for one firm,
    the dominant-firm optimum). Linear Cournot games are potential games, so the sequence
    converges; on the tick grid it may end on a two-tick cycle, which is reported."""
    n = len(view.firms)
    x = [0] * n
    resp = [Response(None, 0, 0.0, False)] * n
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        changed = False
        for i, firm in enumerate(view.firms):
            r = best_response(view, view.q - (sum(x) - x[i]), firm)
            if r.profit == math.inf:
                return Equilibrium(None, x, True, it, False)
            if r.lots != x[i]:
                changed = True
            x[i], resp[i] = r.lots, r
        if not changed:
            converged = True
            break
    ticks = [r.tick for r, q in zip(resp, x, strict=True) if q > 0 and r.tick is not None]
    # the auction prints at the furthest tick any firm's lots are needed at
    tick = (min(ticks) if view.side > 0 else max(ticks)) if ticks else None
    corner = any(r.corner for r, q in zip(resp, x, strict=True) if q > 0)
    return Equilibrium(tick, x, corner, it, converged)


# -- the policies ------------------------------------------------------------------------------


class HarvestPricing(Protocol):
    """A firm's harvest policy: sees a `HarvestView`, returns a quote or None.

    What the firm does with a policy is said by the policy's attributes, never by its name:
    ``harvests`` (default true; false: the firm keeps its ordinary quotes through the
    deadline, the counterfactual), ``shows_quote_size`` (default false; true: the firm shows
    at least its ordinary quote size at the policy's price, as the labelled baselines do) and
    ``theory`` (the closed form a run is held against: ``"cournot"``, the default, the
    dominant-firm/Cournot harvest; ``"fixed_spread"``, the typed-in spread's; ``None``, none)
    and ``information`` (default ``"desk"``: the view holds what a trading desk sees, the
    book to ``hedger.view_depth`` levels without the firm's own quotes, and only the firm's
    own position and curve; ``"full"``: the labelled full-information benchmark, the whole
    book without any firm's quotes and every firm's position and curve). A policy of one's own
    that leaves them out gets the defaults."""

    name: str
    harvests: bool
    shows_quote_size: bool
    theory: str | None
    information: str

    def decide(self, view: HarvestView) -> Quote | None: ...


class Optimal:
    """The full-information benchmark (a labelled arm, ``information = "full"``): the
    Cournot/dominant-firm quote computed from the whole book (every competing quote, so the
    fringe's whole cost ladder when it rests it) and every firm's exact position and curve.
    No desk sees this much; [`Estimating`][abm.agents.pricing.Estimating] decides from a desk's
    view, and this arm says what full information would add.

    When the band stops the price short of the optimum and a locked session would move the
    band further before expiry, the firm waits: it bids nothing, the forced closes stay
    unfilled at the limit, the session settles there, and tomorrow's band starts lower.
    On the last session, or when the band edge is the floor, it takes what it can at the edge.
    """

    name = "optimal"
    harvests = True
    shows_quote_size = False
    theory = "cournot"
    information = "full"

    def decide(self, view: HarvestView) -> Quote | None:
        if view.q <= 0:
            return None
        eq = cournot(view)
        if eq.tick is None or eq.lots[view.me] <= 0:
            if eq.tick is None and view.worst is None and eq.corner and view.ladder:
                # The competing quotes it can see run out before the crowd's need and nothing
                # bounds the price: the monopsony optimum is beyond every visible quote. The
                # firm prices no further than the furthest competitor it can see (one tick
                # ahead of it); the fringe requotes its curve as it fills, so the price is
                # bounded by the fringe's cost curve, never by a guess. (The config refuses
                # markets where the fringe's curve itself is walled.)
                return Quote(view.ladder[-1][0] + view.side, _share(view), "furthest_visible")
            return None  # nothing to price against: it waits, the forced closes stay unfilled
        if eq.corner and view.band_moves and view.sessions_left > 0:
            return None  # wait for a lower band
        return Quote(eq.tick, eq.lots[view.me], "corner" if eq.corner else "interior")


class Estimating:
    """A desk's harvest (``information = "desk"``): it estimates the residual supply from the
    visible book and prices against its estimate.

    It sees the competing volume to the desk's depth (``hedger.view_depth`` levels, rivals'
    quotes included, its own excluded), the crowd's need as the brokers report it (or as it
    infers it from its own position without ``knows_ndnp``), and its own position and
    delivery curve; never a fringe's cost curve nor a rival's position. Each visible level is
    a point (d_j, L_j) of the residual supply: L_j lots are there at discounts from d_j on.
    Its slope beyond the last visible level, κ̂ lots per price unit, is a least-squares
    estimate pooled over every decision of the harvest: the cumulative lots of the levels
    beyond the first against their discounts, each observation centred on its own means (the
    within estimator: a fringe that fills quotes its next lots from a higher cost, which shifts
    the curve but keeps its slope). The first level is left out: it may hold a lump of room at
    the flat cost, which says nothing of how supply rises beyond it. Pooled this way an
    observation weighs by the square of the discount its levels span, so a few small orders
    near fair value before the deadline barely count against a fringe's ladder across several
    price units, and the estimate sharpens as the fringe refills and shows further levels.
    Beyond what it sees it extrapolates L_K + κ̂ (d − d_K) to the band's edge, or until the
    crowd's need is covered, and prices on that estimated
    ladder as [`Optimal`][abm.agents.pricing.Optimal] does with full information: the best
    response maximising x d + W(x), waiting for a lower band when the band stops it short.
    At that price it shows the crowd's whole need less the visible competition ahead of it.

    What it cannot see it does not invent: a single price level, ever (a flat cost, a wall it
    cannot see), is read as supply that does not end there, so it bids one tick ahead of it;
    no competing quote at all leaves it the band's edge. Rivals are known only through their
    quotes in the book, which it reads as competing supply like any other.
    """

    name = "estimating"
    harvests = True
    shows_quote_size = False
    theory = "cournot"
    information = "desk"
    max_levels = 400  # extrapolated levels at most: the estimate's grid beyond the visible book

    def __init__(self) -> None:
        self.sxx = 0.0  # pooled Σ (d − d̄)² over the visible levels beyond the first
        self.sxy = 0.0  # pooled Σ (d − d̄)(L − L̄), L the cumulative lots
        self.observations = 0
        self.slope: float | None = None  # κ̂: lots per price unit beyond the visible book

    def observe(self, view: HarvestView) -> None:
        """Add the visible levels of ``view`` beyond the first to the pooled least-squares
        estimate of κ: cumulative lots against discount, centred on the observation's own
        means (the within estimator), so an observation weighs by the square of the discount
        its levels span: a few small orders near fair value say little, a fringe's ladder
        across several price units much."""
        levels = view.ladder[1:]
        if len(levels) < 2:
            return
        d = [view.discount(t) for t, _ in levels]
        cum, total = [], 0
        for _, lots in levels:
            total += lots
            cum.append(total)
        dm, lm = sum(d) / len(d), sum(cum) / len(cum)
        self.sxx += sum((x - dm) ** 2 for x in d)
        self.sxy += sum((x - dm) * (y - lm) for x, y in zip(d, cum, strict=True))
        self.observations += 1
        if self.sxx > 0:
            self.slope = max(0.0, self.sxy / self.sxx)

    def estimated_view(self, view: HarvestView) -> HarvestView:
        """``view`` with its ladder extended beyond the visible levels by the estimated slope."""
        if not view.ladder:
            return view
        s = view.side
        last_tick = view.ladder[-1][0]
        have = sum(lots for _, lots in view.ladder)
        need = view.q - have
        if need <= 0:
            return view
        if self.slope is None or self.slope <= 0:
            # no rise seen: the last level it sees is read as supply that does not end there
            return replace(view, ladder=view.ladder[:-1] + [(last_tick, view.ladder[-1][1] + need)])
        per_tick = self.slope * view.tick_size
        ticks = math.ceil(need / per_tick)  # ticks beyond the last level until the need is met
        if view.worst is not None:
            ticks = min(ticks, s * (last_tick - view.worst))
        if ticks <= 0:
            return view
        spacing = max(1, math.ceil(ticks / self.max_levels))
        ladder = list(view.ladder)
        done = 0
        for k in range(spacing, ticks + spacing, spacing):
            k = min(k, ticks)
            cum = min(need, math.floor(per_tick * k + 1e-9))
            if cum > done:
                ladder.append((last_tick - s * k, cum - done))
                done = cum
            if k == ticks:
                break
        return replace(view, ladder=ladder)

    def decide(self, view: HarvestView) -> Quote | None:
        if view.q <= 0:
            return None
        self.observe(view)
        quote = Optimal().decide(self.estimated_view(view))
        if quote is None:
            return None
        # At its price it takes whatever the visible competition ahead of it does not: supply
        # it estimated but cannot see is not there to fill yet, and leaving those lots to a
        # later, lower quote would give them up for less (every lot up to its holding earns
        # the discount plus the delivery it saves).
        s = view.side
        ahead = sum(lots for tick, lots in view.ladder if s * (tick - quote.tick) >= 0)
        lots = max(quote.lots, view.q - ahead)
        return Quote(quote.tick, lots, f"estimated_{quote.reason}")


class Ordinary:
    """The counterfactual (a labelled arm, not a model of the hedger): no harvest. The hedger
    keeps quoting as in ordinary trading through the deadline, its usual risk-limited ladder
    on both sides, and the crowd's forced closes meet whatever the book holds. The paired
    difference from the harvesting arm on the same seed is what the harvest costs the crowd."""

    name = "ordinary"
    information = "desk"
    harvests = False
    shows_quote_size = False
    theory = None

    def decide(self, view: HarvestView) -> Quote | None:
        return None


class FixedSpread:
    """Baseline (the old model, a dial): fair ∓ ``hedger.harvest_spread`` for the crowd's whole
    need, clipped to the band. The divergence is then an input, not an outcome."""

    name = "fixed"
    information = "desk"
    harvests = True
    shows_quote_size = True
    theory = "fixed_spread"

    def decide(self, view: HarvestView) -> Quote | None:
        if view.q <= 0:
            return None
        target = view.fair - view.side * view.spread
        if view.side > 0:
            tick = math.floor(target / view.tick_size + 1e-9)
        else:
            tick = math.ceil(target / view.tick_size - 1e-9)
        return Quote(_clip(tick, view), _share(view), "fixed")


class Competitive:
    """Baseline: one tick behind the best competing quote, never beyond the fixed spread."""

    name = "competitive"
    information = "desk"
    harvests = True
    shows_quote_size = True
    theory = "fixed_spread"

    def decide(self, view: HarvestView) -> Quote | None:
        q = FixedSpread().decide(view)
        if q is None or not view.ladder:
            return q
        behind = view.ladder[0][0] - view.side
        tick = max(q.tick, behind) if view.side > 0 else min(q.tick, behind)
        return Quote(_clip(tick, view), q.lots, "competitive")


def _share(view: HarvestView) -> int:
    return max(1, math.ceil(view.q * view.shares[view.me]))


def _clip(tick: int, view: HarvestView) -> int:
    if view.worst is not None and view.side * (tick - view.worst) < 0:
        tick = view.worst
    if view.best is not None and view.side * (tick - view.best) > 0:
        tick = view.best
    return tick


POLICIES: dict[str, type] = {
    p.name: p for p in (Optimal, Estimating, FixedSpread, Competitive, Ordinary)
}

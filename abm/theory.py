"""Closed forms for the harvest, against which every run is held.

Near the deadline the crowd must close Q = |NDNP| lots (its net non-deliverable position)
against accounts that can deliver, whatever the price. Discounts ``d`` are in price units below
fair value (above it when the crowd is net short); money = price × lots × multiplier.

**Competitive fringe.** Delivery-capable traders with marginal delivery cost c(q) absorb every
lot whose cost is below the discount. A *linear fringe* of depth κ (lots per price unit) above
cost c_f absorbs q_f(d) = κ (d − c_f) for d ≥ c_f, nothing below.

**Dominant firm** (monopsony side). The firm holding the crowd's opposite position saves its own
delivery cost c_h on every lot it takes back, so each lot is worth d + c_h to it. The
forced-close auction clears at one price, so the fringe's lots clear at the firm's discount too.
Its profit over d ≥ c_f is

    π(d) = (Q − κ (d − c_f)) (d + c_h)
    π'(d) = Q − κ (d − c_f) − κ (d + c_h) = 0   ⇒   d* = (Q/κ + c_f − c_h) / 2,

and below c_f the fringe takes nothing, so π = Q (d + c_h) rises with d up to c_f. Hence
d* = max(c_f, (Q/κ + c_f − c_h)/2): the divergence rises with Q and falls with fringe depth,
down to the fringe's cost. The firm takes x* = Q − κ (d* − c_f) = (Q + κ (c_f + c_h))/2 lots.

**Several firms** (Cournot in the forced-close auction). Firm i chooses how many lots x_i to
absorb; the rest clears against the fringe, so d(X) = c_f + (Q − X)/κ with X = Σ x_j. Firm i's
profit x_i (d(X) + c_i) gives the first-order condition d + c_i − x_i/κ = 0, i.e.
x_i = κ (d + c_i). Summing over n firms, X = κ (n d + Σ c_i) and d = c_f + (Q − X)/κ give

    d_n = (Q/κ + c_f − Σ c_i) / (n + 1),     clipped below at c_f.

One firm gives the dominant-firm optimum; more firms give a smaller divergence.

**Hard walls and what bounds the price.** If the fringe's capacity K_f is used up before d*
(κ (d* − c_f) > K_f), the firm faces no more competition: π = (Q − K_f)(d + c_h) rises without
end. Only the exchange stops it: a daily price band (a session moves at most ± band ×
previous settlement; forced closes left unfilled carry to the next session, so the reachable
discount grows with the number of sessions before delivery) or a price floor (no negative
prices). [`band_reach()`][abm.theory.band_reach] gives the furthest price after a number of
limit-locked sessions.

The **fixed-spread baseline** (the old model, ``hedger.spread_policy = "fixed"``) is kept as
[`harvest()`][abm.theory.harvest]: there the divergence is the typed-in spread, an input and not an
outcome.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from abm.delivery import DeliveryCurve

# -- the endogenous harvest: closed forms ------------------------------------------------------


def fringe_lots(d: float, kappa: float, c_f: float, capacity: float = math.inf) -> float:
    """Lots a linear fringe (depth ``kappa`` lots per price unit above cost ``c_f``) absorbs at
    discount ``d`` (price units), at most ``capacity``."""
    if kappa < 0 or c_f < 0:
        raise ValueError(f"kappa = {kappa}, c_f = {c_f}: must be >= 0")
    return min(capacity, max(0.0, kappa * (d - c_f)))


def dominant_firm_discount(q: float, kappa: float, c_f: float, c_h: float) -> float:
    """d* = max(c_f, (Q/κ + c_f − c_h)/2) (price units): one firm, a linear fringe."""
    return cournot_discount(q, kappa, c_f, [c_h])


def cournot_discount(q: float, kappa: float, c_f: float, costs: list[float]) -> float:
    """d_n = max(c_f, (Q/κ + c_f − Σ c_i)/(n + 1)) (price units): n firms with delivery costs
    ``costs`` playing Cournot against a linear fringe of depth κ above c_f."""
    if q < 0:
        raise ValueError(f"q = {q}: the crowd's need is |NDNP| >= 0")
    if not kappa > 0:
        raise ValueError(f"kappa = {kappa}: the fringe's depth must be > 0 lots per price unit")
    if not costs:
        raise ValueError("costs: at least one firm")
    n = len(costs)
    return max(c_f, (q / kappa + c_f - sum(costs)) / (n + 1))


@dataclass(frozen=True)
class Harvest:
    """The harvest of Q lots: discount (price units), who takes how many lots, and the money
    (price units × lots × multiplier) the crowd gives up against fair value."""

    q: float
    discount: float
    lots_to_firms: list[float]
    lots_to_fringe: float
    transfer_to_firms: float
    transfer_to_fringe: float
    retail_loss: float
    bound: str  # interior | fringe_cost | cap (band, floor or the fringe's wall)
    lots_by_firm: list[float] = field(default_factory=list)


def linear_harvest(
    q: float,
    kappa: float,
    c_f: float,
    costs: list[float],
    multiplier: float,
    max_discount: float = math.inf,
    fringe_capacity: float = math.inf,
) -> Harvest:
    """The Cournot (one firm: dominant-firm) harvest against a linear fringe, capped at
    ``max_discount`` (what the band or the floor lets the price reach). A fringe walled at
    ``fringe_capacity`` before the optimum leaves the firms without competition: the discount
    then goes to the cap, which must be finite."""
    if multiplier <= 0:
        raise ValueError(f"multiplier = {multiplier}: must be > 0")
    d = cournot_discount(q, kappa, c_f, costs)
    bound = "fringe_cost" if d == c_f and q > 0 else "interior"
    if fringe_lots(d, kappa, c_f) > fringe_capacity:
        if max_discount == math.inf:
            raise ValueError(
                "the fringe's wall is reached before the optimum and nothing caps the "
                "discount: no finite harvest"
            )
        d, bound = max_discount, "cap"
    elif d > max_discount:
        d, bound = max_discount, "cap"
    to_fringe = min(q, fringe_lots(d, kappa, c_f, fringe_capacity))
    to_firms = q - to_fringe
    n = len(costs)
    if bound == "interior" and n > 1:
        raw = [kappa * (d + c) for c in costs]  # the first-order conditions
        total = sum(raw)
        split = [to_firms * r / total for r in raw]
    else:
        split = [to_firms / n] * n
    return Harvest(
        q,
        d,
        split,
        to_fringe,
        to_firms * d * multiplier,
        to_fringe * d * multiplier,
        q * d * multiplier,
        bound,
        split,
    )


def band_reach(
    prev_settle: float,
    price_limit: float | None,
    sessions: int,
    tick: float,
    side: int = 1,
    allow_negative: bool = False,
) -> float:
    """Furthest price (price units) a run of ``sessions`` limit-locked sessions reaches from
    ``prev_settle``: each session's edge is ± ``price_limit`` × the previous settlement, rounded
    inward to a tick, and a locked session settles at its edge. ``side`` +1: limit-down (the
    crowd sells), −1: limit-up. Without negative prices the floor is one tick; without a band
    the price is unbounded (returns ∓inf, or the floor)."""
    if sessions < 1:
        raise ValueError(f"sessions = {sessions}: at least one")
    floor = -math.inf if allow_negative else tick
    if price_limit is None:
        return floor if side > 0 else math.inf
    p = prev_settle
    for _ in range(sessions):
        width = abs(p) * price_limit
        if side > 0:
            p = max(math.ceil((p - width) / tick - 1e-9) * tick, floor)
        else:
            p = math.floor((p + width) / tick + 1e-9) * tick
    return p


@dataclass(frozen=True)
class BandPath:
    """Session by session under a band: the discount each session reaches, the lots the fringe
    takes in each, and the final harvest."""

    discounts: list[float]
    fringe_lots: list[float]
    final: Harvest


def band_harvest(
    q: float,
    kappa: float,
    c_f: float,
    costs: list[float],
    multiplier: float,
    fair: float,
    prev_settle: float,
    price_limit: float,
    sessions: int,
    tick: float,
    allow_negative: bool = False,
) -> BandPath:
    """The harvest when a band stops the optimum: the firms wait while the band binds, each
    locked session's fringe buying clears at that session's limit, and the last session (or the
    first whose band reaches the optimum) clears the rest at min(optimum, that limit).

    Session k reaches discount δ_k = fair − limit_k; the fringe takes κ(δ_k − c_f) − κ(δ_{k−1}
    − c_f) lots at δ_k. The final session's harvest is
    [`linear_harvest()`][abm.theory.linear_harvest] with the cap δ_final, whose fringe lots already
    include those bought before.
    """
    d_star = cournot_discount(q, kappa, c_f, costs)
    discounts, lots = [], []
    taken = 0.0
    price = prev_settle
    for k in range(1, sessions + 1):
        price = band_reach(price, price_limit, 1, tick, 1, allow_negative)
        d_k = fair - price
        last = k == sessions or d_k >= d_star
        if last:
            final = linear_harvest(q, kappa, c_f, costs, multiplier, max_discount=d_k)
            discounts.append(final.discount)
            lots.append(final.lots_to_fringe - taken)
            # the money: earlier sessions' fringe lots cleared at their own discounts
            early = sum(x * d for x, d in zip(lots[:-1], discounts[:-1], strict=True))
            final_lots_fringe = final.lots_to_fringe - taken
            retail_loss = early + (final_lots_fringe + sum(final.lots_to_firms)) * final.discount
            h = Harvest(
                q,
                final.discount,
                final.lots_to_firms,
                final.lots_to_fringe,
                final.transfer_to_firms,
                (early + final_lots_fringe * final.discount) * multiplier,
                retail_loss * multiplier,
                final.bound,
                final.lots_by_firm,
            )
            return BandPath(discounts, lots, h)
        step = min(q, fringe_lots(d_k, kappa, c_f)) - taken
        discounts.append(d_k)
        lots.append(step)
        taken += step
    raise AssertionError("unreachable")  # pragma: no cover


# -- any curves, on the tick grid: what every run is held against ------------------------------


def fringe_supply(
    curves: list[tuple[DeliveryCurve, int]], tick: float
) -> Callable[[np.ndarray], np.ndarray]:
    """Aggregate supply of absorption of fringe accounts, each a (curve, lots already held in
    the crowd's opposite direction): lots at discount ``d`` (price units). A fringe quote sits
    strictly inside its cost (on the book's grid: one tick inside when fair value is on a tick),
    so a lot costing c is there at any discount above c."""

    def supply(d: np.ndarray) -> np.ndarray:
        d = np.asarray(d, float) - 1e-7 * tick
        total = np.zeros_like(d)
        for curve, held in curves:
            soft = curve.soft_limit
            if curve.slope == 0 or soft == math.inf:
                lots = np.full_like(d, math.inf if curve.capacity is None else curve.capacity)
            else:
                lots = soft + np.floor((d - curve.cost) / curve.slope + 1e-9)
                if curve.capacity is not None:
                    lots = np.minimum(lots, curve.capacity)
            total += np.where(d < curve.cost, 0.0, np.maximum(lots - held, 0.0))
        return total

    return supply


def solve_harvest(
    q: float,
    supply: Callable[[np.ndarray], np.ndarray],
    costs: list[float],
    multiplier: float,
    tick: float,
    max_discount: float = math.inf,
    max_iter: int = 200,
    offset: float = 0.0,
    holdings: list[float] | None = None,
) -> Harvest:
    """The Cournot harvest (one firm: the dominant firm's) for any fringe supply, on the grid of
    discounts ``offset`` + k × tick up to ``max_discount`` (``offset``: how far fair value sits
    from the next tick on the crowd's side, so the grid is the book's): each firm's best
    response to the others' quantities maximises x (d + c_i) with x = (Q − X_others − S(d))⁺, in
    turn until none moves. An independent check of the firms' decisions, which work on the
    book's quotes instead.

    ``holdings`` (lots each firm holds opposite the crowd; None: as many as it could take)
    limits the delivery a firm saves: a lot bought back beyond its holding is one it must take
    delivery of itself, so firm i values x lots at x d + c_i min(x, H_i) − c_i (x − H_i)⁺ (a
    flat delivery cost c_i). With delivery room elsewhere beyond the crowd's need the firm may
    hold little of the opposite side, and then buying the crowd out below its cost loses."""
    n = len(costs)
    if q <= 0:
        return Harvest(q, 0.0, [0.0] * n, 0.0, 0.0, 0.0, 0.0, "interior", [0.0] * n)
    if max_discount == math.inf:
        k = 1
        while supply(np.array([k * tick]))[0] < q:
            k *= 2
            if k * tick > 1e9:
                raise ValueError("the fringe's supply never covers the crowd: no finite harvest")
        top = k
    else:
        top = max(0, math.floor((max_discount - offset) / tick + 1e-9))
    # the grid offset + k × tick can hold tens of millions of points (a tiny tick, a wide cap);
    # only the points where the fringe's supply changes can hold a best response (between two
    # changes a firm's lots are constant, so its revenue rises with the discount), so the
    # search runs on those: the same answer as on the whole grid, at the cost of the supply's
    # steps below Q
    idx = _supply_steps(supply, offset, tick, top, q)
    grid = offset + idx * tick
    s = supply(grid)
    x = np.zeros(n)
    at = np.zeros(n, int)
    held = [math.inf] * n if holdings is None else [max(0.0, float(h)) for h in holdings]
    if len(held) != n:
        raise ValueError(f"holdings has {len(held)} entries: must have one per firm ({n})")

    def value(i: int, xi: np.ndarray) -> np.ndarray:
        if held[i] == math.inf:
            return xi * (grid + costs[i])
        saved = np.minimum(xi, held[i]) - np.maximum(xi - held[i], 0.0)
        return xi * grid + costs[i] * saved

    for _ in range(max_iter):
        moved = False
        for i in range(n):
            xi = np.maximum(q - (x.sum() - x[i]) - s, 0.0)
            v = value(i, xi)
            k = int(np.argmax(v))
            if holdings is not None and v[k] <= 0:  # nothing earns anything: it takes nothing
                xi = np.zeros_like(xi)
            if xi[k] != x[i] or k != at[i]:
                moved = True
            x[i], at[i] = xi[k], k
        if not moved:
            break
    if (x > 0).any():
        k = int(idx[at[x > 0].max()])
    else:  # the first grid point where the fringe covers the crowd (top + 1: nowhere)
        covered = np.flatnonzero(s >= q)
        k = int(idx[covered[0]]) if len(covered) else top + 1
    k_in = min(k, top)
    d = float(offset + k_in * tick)
    to_fringe = float(min(q, supply(np.array([d]))[0]))
    to_firms = q - to_fringe
    if holdings is not None and not (x > 0).any():
        bound = "fringe_only"  # no firm gains by buying: the fringe clears the crowd alone
    elif k == top and max_discount < math.inf:
        bound = "cap"
    elif x.sum() >= q and k + 1 <= top and supply(np.array([offset + (k + 1) * tick]))[0] > 0:
        bound = "fringe_cost"  # the firms take everything just ahead of the fringe's cost
    else:
        bound = "interior"
    return Harvest(
        q,
        d,
        list(x),
        to_fringe,
        to_firms * d * multiplier,
        to_fringe * d * multiplier,
        q * d * multiplier,
        bound,
        list(x),
    )


def _supply_steps(
    supply: Callable[[np.ndarray], np.ndarray], offset: float, tick: float, top: int, q: float
) -> np.ndarray:
    """Grid indices (of offset + k × tick, k = 0..top) where a best response or a boundary can
    sit: 0, ``top``, and both sides of every step of the (non-decreasing) supply below ``q``,
    found by bisection (about log₂(top) supply evaluations per step, vectorised by level)."""
    lo, hi = np.array([0]), np.array([top])
    s_lo, s_hi = supply(offset + lo * tick), supply(offset + hi * tick)
    found = [np.array([0, top])]
    while len(lo):
        live = (s_lo != s_hi) & (s_lo < q)
        lo, hi, s_lo, s_hi = lo[live], hi[live], s_lo[live], s_hi[live]
        step = hi - lo == 1
        found += [lo[step], hi[step]]
        lo, hi, s_lo, s_hi = lo[~step], hi[~step], s_lo[~step], s_hi[~step]
        mid = (lo + hi) // 2
        s_mid = supply(offset + mid * tick)
        lo, hi = np.concatenate([lo, mid]), np.concatenate([mid, hi])
        s_lo, s_hi = np.concatenate([s_lo, s_mid]), np.concatenate([s_mid, s_hi])
    return np.unique(np.concatenate(found))


def session_path(
    q: float,
    supply: Callable[[np.ndarray], np.ndarray],
    costs: list[float],
    multiplier: float,
    fair: float,
    prev_settle: float,
    price_limit: float | None,
    sessions: int,
    tick: float,
    allow_negative: bool = False,
    side: int = 1,
    holdings: list[float] | None = None,
) -> BandPath:
    """[`band_harvest()`][abm.theory.band_harvest] for any fringe supply: the firms wait while the
    band stops them short of their optimum; each locked session's fringe buying clears at its
    limit."""
    # without negative prices a falling price stops one tick above zero
    cap = (fair - tick) if not allow_negative and side > 0 else math.inf
    if side > 0:
        offset = fair - math.floor(fair / tick + 1e-9) * tick
    else:
        offset = math.ceil(fair / tick - 1e-9) * tick - fair
    if price_limit is None:
        h = solve_harvest(q, supply, costs, multiplier, tick, cap, offset=offset, holdings=holdings)
        return BandPath([h.discount], [h.lots_to_fringe], h)
    try:
        free_discount = solve_harvest(
            q, supply, costs, multiplier, tick, cap, offset=offset, holdings=holdings
        ).discount
    except ValueError:  # no finite optimum: the band binds in every session
        free_discount = math.inf
    discounts: list[float] = []
    lots: list[float] = []
    taken = 0.0
    price = prev_settle
    for k in range(1, sessions + 1):
        price = band_reach(price, price_limit, 1, tick, side, allow_negative)
        d_k = side * (fair - price)
        if k == sessions or d_k >= free_discount:
            h = solve_harvest(
                q, supply, costs, multiplier, tick, min(d_k, cap), offset=offset, holdings=holdings
            )
            now = h.lots_to_fringe - taken
            early = sum(a * b for a, b in zip(lots, discounts, strict=True))
            discounts.append(h.discount)
            lots.append(now)
            final = Harvest(
                q,
                h.discount,
                h.lots_to_firms,
                h.lots_to_fringe,
                h.transfer_to_firms,
                (early + now * h.discount) * multiplier,
                (early + (now + sum(h.lots_to_firms)) * h.discount) * multiplier,
                "cap" if d_k < free_discount else h.bound,
                h.lots_by_firm,
            )
            return BandPath(discounts, lots, final)
        step = float(min(q, supply(np.array([d_k]))[0])) - taken
        discounts.append(d_k)
        lots.append(step)
        taken += step
    raise AssertionError("unreachable")  # pragma: no cover


# -- the fixed-spread baseline (the old model) -------------------------------------------------


@dataclass(frozen=True)
class HarvestPrediction:
    """Money (price units × lots × multiplier) and prices (price units) of the fixed-spread
    baseline."""

    ndnp: int
    lots_to_hedger: int
    lots_to_arbitrageurs: int
    transfer_to_hedger: float  # money
    transfer_to_arbitrageurs: float  # money, before their delivery cost
    retail_loss: float  # money: both of the above
    divergence: float  # |futures − fair| at which the last lot closes (price units)


def harvest(
    ndnp: int,
    spread: float,
    multiplier: float,
    capacity: int = 0,
    delivery_cost: float | None = None,
) -> HarvestPrediction:
    """Baseline: the hedger quotes fair ∓ ``spread`` (a dial), arbitrageurs with ``capacity``
    lots at ``delivery_cost`` < spread take the first lots at their cost.

    harvest ≈ |NDNP| × spread × multiplier when nobody else can deliver.
    """
    if spread < 0:
        raise ValueError(f"spread = {spread}: must be >= 0")
    if multiplier <= 0:
        raise ValueError(f"multiplier = {multiplier}: must be > 0")
    if capacity < 0:
        raise ValueError(f"capacity = {capacity}: must be >= 0")
    n = abs(int(ndnp))
    if delivery_cost is None or capacity == 0 or delivery_cost >= spread:
        to_arb = 0
    else:
        to_arb = min(capacity, n)
    to_hedger = n - to_arb
    dc = delivery_cost or 0.0
    t_h = to_hedger * spread * multiplier
    t_a = to_arb * dc * multiplier
    divergence = spread if to_hedger > 0 else (dc if to_arb > 0 else 0.0)
    return HarvestPrediction(n, to_hedger, to_arb, t_h, t_a, t_h + t_a, divergence)


def harvest_transfer(ndnp: int, spread: float, multiplier: float) -> float:
    """Baseline: |NDNP| × spread × multiplier (money)."""
    return harvest(ndnp, spread, multiplier).transfer_to_hedger


def crowd_ndnp(long_share: float, lots: float) -> float:
    """NDNP of a crowd holding ``lots`` in total with a long share (by lots): (2s − 1) × lots.

    A 90 % / 10 % crowd has NDNP = 80 % of its lots; a balanced crowd none.
    """
    if not 0 <= long_share <= 1:
        raise ValueError(f"long_share = {long_share}: must be in [0, 1]")
    return (2 * long_share - 1) * lots

"""Closed forms for the stylized harvest, against which every run is held.

The stylized case (MODEL.md, seed 000): accounts without delivery rights hold a net position
NDNP (lots, + = net long) when the harvest window opens. Their long and short sides close
against each other at fair value; the last |NDNP| lots can only close against delivery-capable
accounts. The dominant hedger quotes that side at fair value ∓ ``spread``; delivery arbitrageurs
with total ``capacity`` lots quote it at fair value ∓ ``delivery_cost`` (they take or make
delivery, so that is their break-even). Sellers reach the better price first.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HarvestPrediction:
    """Money (price units × lots × multiplier) and prices (price units) of the stylized case."""

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
    """Harvest of a non-deliverable net position ``ndnp``.

    harvest ≈ |NDNP| × spread × multiplier when nobody else can deliver; with arbitrage
    ``capacity`` at ``delivery_cost`` < spread, the first min(capacity, |NDNP|) lots go to the
    arbitrageurs at the delivery cost and only the rest to the hedger at its spread.
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
    """|NDNP| × spread × multiplier (money): the hedger's take with no competing delivery."""
    return harvest(ndnp, spread, multiplier).transfer_to_hedger


def divergence_bound(
    ndnp: int, spread: float, capacity: int, delivery_cost: float, tick: float = 0.0
) -> float:
    """Largest |futures − fair| (price units) the harvest can force near expiry.

    With arbitrage capacity ≥ |NDNP| the competing bids hold the price within the delivery cost
    (plus a tick, since quotes sit on the tick grid); otherwise the hedger's spread sets it.
    """
    if capacity >= abs(ndnp):
        return min(delivery_cost, spread) + tick
    return spread + tick


def crowd_ndnp(long_share: float, lots: float) -> float:
    """NDNP of a crowd holding ``lots`` in total with a long share (by lots): (2s − 1) × lots.

    A 90 % / 10 % crowd has NDNP = 80 % of its lots; a balanced crowd none.
    """
    if not 0 <= long_share <= 1:
        raise ValueError(f"long_share = {long_share}: must be in [0, 1]")
    return (2 * long_share - 1) * lots

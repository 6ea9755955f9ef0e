"""Closed forms, checked by hand."""

import pytest

from abm import theory


def test_harvest_without_competition():
    p = theory.harvest(200, 3.0, 10.0)
    assert p.transfer_to_hedger == 6000 and p.lots_to_hedger == 200 and p.divergence == 3.0
    assert theory.harvest(-200, 3.0, 10.0).transfer_to_hedger == 6000  # both ways
    assert theory.harvest_transfer(0, 3.0, 10.0) == 0


def test_harvest_with_arbitrage_capacity():
    # 150 of 200 lots go to arbitrageurs at the delivery cost 1.0, 50 to the hedger at 3.0
    p = theory.harvest(200, 3.0, 10.0, capacity=150, delivery_cost=1.0)
    assert (p.lots_to_arbitrageurs, p.lots_to_hedger) == (150, 50)
    assert p.transfer_to_arbitrageurs == 1500 and p.transfer_to_hedger == 1500
    assert p.retail_loss == 3000 and p.divergence == 3.0
    q = theory.harvest(200, 3.0, 10.0, capacity=500, delivery_cost=1.0)
    assert q.transfer_to_hedger == 0 and q.divergence == 1.0
    # arbitrage dearer than the hedger's spread competes with nothing
    assert theory.harvest(200, 3.0, 10.0, capacity=500, delivery_cost=4.0).lots_to_hedger == 200


def test_divergence_bound_and_crowd():
    assert theory.divergence_bound(200, 5.0, 300, 2.0, tick=1.0) == 3.0
    assert theory.divergence_bound(200, 5.0, 100, 2.0, tick=1.0) == 6.0
    assert theory.crowd_ndnp(0.9, 1000) == pytest.approx(800)
    assert theory.crowd_ndnp(0.5, 1000) == 0
    with pytest.raises(ValueError, match="long_share"):
        theory.crowd_ndnp(1.2, 10)
    with pytest.raises(ValueError, match="spread"):
        theory.harvest(1, -1.0, 10.0)

"""The marginal delivery cost curve, checked by hand."""

import math

import pytest

from abm.delivery import DeliveryCurve


def test_marginal_and_total_cost():
    c = DeliveryCurve(2.0, soft=100, slope=0.5, capacity=200)
    assert c.marginal(1) == 2.0 and c.marginal(100) == 2.0
    assert c.marginal(101) == 2.5 and c.marginal(200) == 52.0
    assert c.marginal(201) == math.inf and c.marginal(0) == 2.0
    # 102 lots: 102 × 2 + 0.5 × (1 + 2) = 205.5
    assert c.total(102) == pytest.approx(205.5)
    assert c.total(50) == 100.0
    assert c.depth == 2.0 and c.walled


def test_supply_of_absorption():
    c = DeliveryCurve(2.0, soft=100, slope=0.5, capacity=200)
    assert c.supply(1.99) == 0
    assert c.supply(2.0) == 100
    assert c.supply(3.0) == 102  # 100 + ⌊1/0.5⌋
    assert c.supply(1000) == 200  # the wall
    assert c.supply(3.0, held=40) == 62
    flat = DeliveryCurve(2.0)  # no soft limit, no wall: any quantity at 2
    assert flat.supply(2.0) == math.inf and not flat.walled
    wall = DeliveryCurve(2.0, capacity=300)
    assert wall.supply(2.5) == 300 and wall.total(300) == 600


def test_shares_add_up_to_the_group():
    whole = DeliveryCurve(2.0, soft=100, slope=0.5, capacity=200)
    half = whole.scaled(0.5)
    assert (half.soft, half.capacity, half.slope) == (50, 100, 1.0)
    for d in (2.0, 3.0, 10.0, 60.0):
        assert 2 * half.supply(d) == pytest.approx(whole.supply(d), abs=1)


def test_bad_curves_are_refused():
    with pytest.raises(ValueError, match="soft = 300"):
        DeliveryCurve(2.0, soft=300, capacity=200)
    with pytest.raises(ValueError, match="cost"):
        DeliveryCurve(float("nan"))
    with pytest.raises(ValueError, match="share"):
        DeliveryCurve(1.0).scaled(0)

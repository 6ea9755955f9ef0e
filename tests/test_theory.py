"""Closed forms, checked on numbers worked out by hand (the working is in the comments)."""

import math

import numpy as np
import pytest

from abm import theory
from abm.delivery import DeliveryCurve


def test_dominant_firm_against_a_linear_fringe():
    # Q = 800, κ = 40 lots per price unit above c_f = 2, c_h = 1:
    # d* = (800/40 + 2 − 1)/2 = 10.5; the fringe takes 40 × (10.5 − 2) = 340 lots,
    # the firm 800 − 340 = 460 = (800 + 40 × (2 + 1))/2
    assert theory.dominant_firm_discount(800, 40, 2.0, 1.0) == pytest.approx(10.5)
    h = theory.linear_harvest(800, 40, 2.0, [1.0], multiplier=10)
    assert h.lots_to_fringe == pytest.approx(340) and h.lots_to_firms[0] == pytest.approx(460)
    # money: the crowd gives up 800 × 10.5 × 10 = 84,000; 460 × 10.5 × 10 = 48,300 to the firm
    assert h.retail_loss == pytest.approx(84_000) and h.transfer_to_firms == pytest.approx(48_300)
    assert h.bound == "interior"


def test_divergence_rises_with_q_and_falls_with_depth_down_to_the_fringe_cost():
    d = theory.dominant_firm_discount
    assert d(400, 40, 2, 1) < d(800, 40, 2, 1) < d(1600, 40, 2, 1)  # 5.5 < 10.5 < 20.5
    assert d(800, 20, 2, 1) > d(800, 40, 2, 1) > d(800, 80, 2, 1)  # 20.5 > 10.5 > 5.5
    # a deep fringe: (40/40 + 2 − 1)/2 = 1 < c_f, so the discount is the fringe's cost
    assert d(40, 40, 2.0, 1.0) == 2.0
    assert theory.linear_harvest(40, 40, 2.0, [1.0], 10).bound == "fringe_cost"


def test_cournot_several_firms():
    # n = 2, c = 1 each: d = (800/40 + 2 − 2)/3 = 6.667; each firm x = κ(d + c) = 306.67, the
    # fringe 40 × (6.667 − 2) = 186.67: 2 × 306.67 + 186.67 = 800
    d2 = theory.cournot_discount(800, 40, 2.0, [1.0, 1.0])
    assert d2 == pytest.approx(20 / 3)
    h = theory.linear_harvest(800, 40, 2.0, [1.0, 1.0], 10)
    assert h.lots_to_firms == pytest.approx([920 / 3, 920 / 3])
    assert h.lots_to_fringe == pytest.approx(560 / 3)
    # more firms, smaller divergence: n = 4: (20 + 2 − 4)/5 = 3.6
    assert theory.cournot_discount(800, 40, 2.0, [1.0] * 4) == pytest.approx(3.6)
    assert theory.dominant_firm_discount(800, 40, 2, 1) > d2 > 3.6


def test_a_walled_fringe_needs_a_cap():
    # fringe capacity 100 < 340: beyond it the firm faces no competition
    with pytest.raises(ValueError, match="no finite harvest"):
        theory.linear_harvest(800, 40, 2.0, [1.0], 10, fringe_capacity=100)
    h = theory.linear_harvest(800, 40, 2.0, [1.0], 10, max_discount=15, fringe_capacity=100)
    assert h.discount == 15 and h.bound == "cap" and h.lots_to_fringe == 100
    assert h.transfer_to_firms == pytest.approx(700 * 15 * 10)


def test_band_reach_by_hand():
    # ±10 % from 100, tick 1: 90, 81, ⌈72.9⌉ = 73; up: 110, 121, ⌊133.1⌋ = 133
    assert theory.band_reach(100, 0.10, 1, 1.0) == 90
    assert theory.band_reach(100, 0.10, 3, 1.0) == 73
    assert theory.band_reach(100, 0.10, 3, 1.0, side=-1) == 133
    assert theory.band_reach(100, None, 3, 1.0) == 1.0  # no band: the floor, one tick
    assert theory.band_reach(100, None, 3, 1.0, allow_negative=True) == -math.inf


def test_band_harvest_session_by_session():
    # Q 800, κ 40, c_f 2, c_h 1, fair = previous settlement = 100, ±4 %, 3 sessions, tick 1.
    # d* = 10.5. Session 1: limit 96, d = 4: the fringe takes 40 × 2 = 80 lots at 4.
    # Session 2: ⌈92.16⌉ = 93, d = 7: 40 × 5 = 200, so 120 more at 7.
    # Session 3 (the last): ⌈89.28⌉ = 90, d = 10 < 10.5: the rest clears at 10; the fringe
    # holds 40 × 8 = 320 (120 more), the firm 480.
    p = theory.band_harvest(800, 40, 2.0, [1.0], 10, 100, 100, 0.04, 3, 1.0)
    assert p.discounts == [4, 7, 10]
    assert p.fringe_lots == pytest.approx([80, 120, 120])
    assert p.final.lots_to_firms[0] == pytest.approx(480)
    # the crowd: (80 × 4 + 120 × 7 + 120 × 10 + 480 × 10) × 10 = 71,600
    assert p.final.retail_loss == pytest.approx(71_600)
    assert p.final.transfer_to_firms == pytest.approx(48_000) and p.final.bound == "cap"
    # a long lead reaches the optimum: it stops there
    q = theory.band_harvest(800, 40, 2.0, [1.0], 10, 100, 100, 0.04, 5, 1.0)
    assert q.final.discount == pytest.approx(10.5) and len(q.discounts) == 4


def test_grid_solver_agrees_with_the_closed_forms():
    # an independent implementation: the Cournot harvest on a discount grid against a linear
    # fringe (soft limit 0, slope 1/κ) must land within a grid step of the closed form
    tick = 0.01
    for q, kappa, costs in [(800, 40, [1.0]), (1600, 20, [1.0]), (800, 40, [1.0, 1.0])]:
        curve = DeliveryCurve(2.0, 0, 1 / kappa)
        h = theory.solve_harvest(q, theory.fringe_supply([(curve, 0)], tick), costs, 10, tick)
        assert h.discount == pytest.approx(theory.cournot_discount(q, kappa, 2.0, costs), abs=0.05)


def test_session_path_with_nobody_to_compete_goes_to_the_band():
    # no fringe at all: every session locks; on the third the firm takes all 200 lots at 73
    p = theory.session_path(
        200, theory.fringe_supply([], 1.0), [2.0], 10, 100.0, 100.0, 0.10, 3, 1.0
    )
    assert p.final.discount == 27 and p.final.transfer_to_firms == 200 * 27 * 10


def test_fixed_spread_baseline():
    p = theory.harvest(200, 3.0, 10.0)
    assert p.transfer_to_hedger == 6000 and p.lots_to_hedger == 200 and p.divergence == 3.0
    assert theory.harvest(-200, 3.0, 10.0).transfer_to_hedger == 6000  # both ways
    q = theory.harvest(200, 3.0, 10.0, capacity=150, delivery_cost=1.0)
    assert (q.lots_to_arbitrageurs, q.lots_to_hedger) == (150, 50)
    assert theory.harvest_transfer(0, 3.0, 10.0) == 0
    with pytest.raises(ValueError, match="spread"):
        theory.harvest(1, -1.0, 10.0)


def test_crowd_ndnp():
    assert theory.crowd_ndnp(0.9, 1000) == pytest.approx(800)
    assert theory.crowd_ndnp(0.5, 1000) == 0
    with pytest.raises(ValueError, match="long_share"):
        theory.crowd_ndnp(1.2, 10)
    assert np.isfinite(theory.fringe_lots(5, 10, 2))

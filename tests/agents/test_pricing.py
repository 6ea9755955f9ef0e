"""The firms' harvest decisions, on books and numbers worked out by hand."""

import pytest

from abm.agents.pricing import (
    Competitive,
    Firm,
    FixedSpread,
    HarvestView,
    Optimal,
    best_response,
    cournot,
)
from abm.delivery import DeliveryCurve
from abm.theory import cournot_discount


def view(q, ladder, firms=None, worst=80, **kw) -> HarvestView:
    firms = firms or [Firm(10_000, DeliveryCurve(1.0))]
    return HarvestView(
        side=kw.pop("side", 1),
        q=q,
        ladder=ladder,
        fair=100.0,
        tick_size=1.0,
        worst=worst,
        best=kw.pop("best", 120),
        firms=firms,
        shares=[1 / len(firms)] * len(firms),
        **kw,
    )


def test_best_response_on_a_small_book():
    # fair 100, the firm saves 1 per lot; 300 lots must go; competing bids 50 lots at each of
    # 97, 96, 95, 94. Ahead of all at 98: 300 × (2 + 1) = 900. Behind 97 (at 97, its back):
    # 250 × (3 + 1) = 1,000. Behind 96: 200 × 5 = 1,000 (a tie: the first, kinder price wins).
    # Behind 95: 150 × 6 = 900. Behind 94: 100 × 7 = 700. At the edge 80: 100 × 21 = 2,100!
    v = view(300, [(97, 50), (96, 50), (95, 50), (94, 50)], worst=80)
    r = best_response(v, 300, v.firms[0])
    assert (r.tick, r.lots, r.profit, r.corner) == (80, 100, 2100, True)
    # with the edge at 94 (the last level: 100 × 7 = 700 there) the best is behind 97
    v = view(300, [(97, 50), (96, 50), (95, 50), (94, 50)], worst=94)
    r = best_response(v, 300, v.firms[0])
    assert (r.tick, r.lots, r.profit, r.corner) == (97, 250, 1000, False)


def test_optimal_waits_when_the_band_binds_and_sessions_remain():
    v = view(200, [], worst=90, sessions_left=2, band_moves=True)
    assert Optimal().decide(v) is None
    last = view(200, [], worst=90, sessions_left=0, band_moves=True)
    assert Optimal().decide(last).tick == 90 and Optimal().decide(last).lots == 200
    floor = view(200, [], worst=1, sessions_left=3, band_moves=False)  # the floor never moves
    assert Optimal().decide(floor).tick == 1


def test_optimal_quote_matches_the_closed_form_on_a_linear_ladder():
    # a fringe bidding κ = 10 lots at every tick from cost 2 (one tick inside: 97, 96, ...)
    ladder = [(97 - k, 10) for k in range(80)]
    q = 400
    quote = Optimal().decide(view(q, ladder, worst=1))
    d = 100 - quote.tick
    # effective fringe cost 3 (a lot costing c is bid at 100 − c − 1), c_h 1:
    # d* = (400/10 + 3 − 1)/2 = 21
    assert d == pytest.approx(cournot_discount(q, 10, 3.0, [1.0]), abs=1)


def test_cournot_two_firms_take_less_than_one():
    ladder = [(97 - k, 10) for k in range(80)]
    firms = [Firm(5_000, DeliveryCurve(1.0)), Firm(5_000, DeliveryCurve(1.0))]
    eq = cournot(view(400, ladder, firms=firms, worst=1))
    assert eq.converged
    d2 = 100 - eq.tick
    # (400/10 + 3 − 2)/3 = 13.7, against 21 for one firm
    assert d2 == pytest.approx(cournot_discount(400, 10, 3.0, [1.0, 1.0]), abs=1)
    assert sum(eq.lots) == 400 - 10 * (d2 - 2)  # the fringe took its levels above the price


def test_baselines_are_dials():
    v = view(200, [(97, 50)], spread=5.0)
    assert FixedSpread().decide(v).tick == 95
    assert Competitive().decide(v).tick == 96  # one tick behind the best competing bid
    up = view(200, [], side=-1, spread=5.0, worst=120, best=80)
    assert FixedSpread().decide(up).tick == 105

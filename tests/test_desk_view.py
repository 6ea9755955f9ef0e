"""Issue 22: the harvest found out from a desk's view, a fringe that plays, a theory computed
ex ante that the run can contradict. Expected numbers come from the closed forms of
`abm.theory`'s docstring worked by hand, never from the code's own output."""

from __future__ import annotations

import math

import numpy as np
import pytest

from abm import theory
from abm.agents.pricing import Estimating, Firm, HarvestView, Optimal
from abm.delivery import DeliveryCurve
from abm.metrics import REGIMES
from abm.model import MarketModel
from abm.scenarios import load

INTERIOR = {"retail.long_share": 0.9, "contract.price_limit": 0.5}


def linear_ladder(levels: int, kappa: float, c_f: float, fair: float, tick: float, start: int):
    """A fringe of depth ``kappa`` lots per price unit above cost ``c_f``, quoted one level per
    tick from discount c_f + ``start`` ticks: each level holds the lots whose cost it covers."""
    out = []
    done = 0
    for k in range(levels):
        d = c_f + (start + k) * tick
        cum = round(kappa * (d - c_f))
        out.append((round((fair - d) / tick), cum - done))
        done = cum
    return out


def desk(q: int, ladder, c_h: float = 1.0, worst: int | None = 0, held: int | None = None):
    return HarvestView(
        side=1,
        q=q,
        ladder=ladder,
        fair=100.0,
        tick_size=0.5,
        worst=worst,
        best=300,
        firms=[Firm(q if held is None else held, DeliveryCurve(c_h))],
    )


def test_estimating_finds_the_dominant_firm_discount_from_three_visible_levels():
    # κ = 20 lots per price unit above c_f = 2, the desk sees 3 levels (2.5, 3.0, 3.5: 10 lots
    # each); Q = 400, c_h = 1: d* = (Q/κ + c_f − c_h)/2 = (20 + 2 − 1)/2 = 10.5 by hand
    ladder = linear_ladder(3, 20.0, 2.0, 100.0, 0.5, start=1)
    assert [lots for _, lots in ladder] == [10, 10, 10]
    v = desk(400, ladder)
    policy = Estimating()
    q = policy.decide(v)
    assert policy.slope == pytest.approx(20.0)  # levels 2 and 3: 10 lots over 0.5 price units
    assert v.discount(q.tick) == pytest.approx(10.5, abs=0.5)  # the grid is 0.5
    # it shows the crowd's whole need less the visible volume ahead of it
    assert q.lots == 400 - 30
    # the same decision on the three levels alone sees no supply beyond them and goes to the
    # band's edge (a corner; on the last session it takes what it can there)
    naive = Optimal().decide(v)
    assert naive.tick == 0 and naive.reason == "corner"


def test_estimating_slope_weighs_a_fringe_ladder_over_small_orders_near_fair():
    # before the deadline a few small orders near fair value: beyond the first, 10 and 10 lots
    # at discounts 0.01 and 0.02 (alone a slope of 1,000 lots per price unit); then a κ = 40
    # fringe's 5 levels, 20 lots each 0.5 apart. The within estimator pools
    # Σ(d − d̄)(L − L̄) / Σ(d − d̄)²: (0.05 + 50) / (0.00005 + 1.25) = 40.04 by hand
    p = Estimating()
    near = HarvestView(
        side=1,
        q=400,
        ladder=[(10000, 5), (9999, 10), (9998, 10)],
        fair=100.0,
        tick_size=0.01,
        worst=0,
        best=20000,
        firms=[Firm(400, DeliveryCurve(1.0))],
    )
    assert [near.discount(t) for t, _ in near.ladder][1:] == pytest.approx([0.01, 0.02])
    p.observe(near)
    assert p.slope == pytest.approx(1000.0)
    p.observe(desk(400, linear_ladder(5, 40.0, 2.0, 100.0, 0.5, start=1)))
    assert p.slope == pytest.approx(50.05 / 1.25005, rel=1e-9)
    assert p.observations == 2
    # two visible levels give no slope beyond the first: nothing is added
    p.observe(desk(400, linear_ladder(2, 40.0, 2.0, 100.0, 0.5, start=1)))
    assert p.observations == 2


def test_estimating_without_a_slope_bids_ahead_of_the_one_level_it_sees():
    # a flat fringe (one level at discount 2.5, capacity unseen): the desk cannot estimate a
    # rise, reads it as supply that does not end there and bids one tick ahead of it
    v = desk(400, [(195, 50)])
    q = Estimating().decide(v)
    assert q is not None and v.discount(q.tick) == pytest.approx(2.0)
    assert q.lots == 400


def test_a_desk_view_policy_still_decides_without_rivals_or_curves():
    # the view holds a ladder and the firm's own holding only; the decision needs nothing else
    v = desk(400, linear_ladder(4, 20.0, 2.0, 100.0, 0.5, start=1), held=400)
    assert len(v.firms) == 1 and v.me == 0
    assert Estimating().decide(v) is not None


def _spy_views(monkeypatch):
    seen: list[tuple[object, HarvestView]] = []
    orig = Estimating.decide

    def decide(self, view):
        seen.append((self, view))
        return orig(self, view)

    monkeypatch.setattr(Estimating, "decide", decide)
    return seen


def test_no_desk_firm_reads_beyond_its_depth_or_another_accounts_position(monkeypatch):
    seen = _spy_views(monkeypatch)
    requested: list[int] = []
    cfg = load(
        "small",
        {
            **INTERIOR,
            "hedger.spread_policy": "estimating",
            "n_firms": 2,
            "hedger.view_depth": 3,
            "commercials.show_levels": 0,
            "seed": 2,
        },
    )
    m = MarketModel(cfg)
    book = m.exchange.book
    depth = book.depth

    def spy_depth(side, levels=10):
        requested.append(levels)
        return depth(side, levels)

    monkeypatch.setattr(book, "depth", spy_depth)
    firms = {id(h.pricing): h for h in m.hedgers}
    m.run()
    assert seen, "the firms never priced the crowd's exit"
    for policy, view in seen:
        firm = firms[id(policy)]
        assert len(view.ladder) <= 3
        assert len(view.firms) == 1 and view.me == 0 and view.shares == [1.0]
        assert view.firms[0].curve is firm.curve
    # no code path in the run asked the book for more than a desk sees (3 levels) while a
    # desk firm priced: the only deeper reads are the model's own depth samples (10 levels)
    assert max(requested) <= 10
    assert 3 in requested


def test_full_information_benchmark_sees_every_firm_and_the_whole_book(monkeypatch):
    seen: list[HarvestView] = []
    orig = Optimal.decide
    monkeypatch.setattr(Optimal, "decide", lambda self, v: (seen.append(v), orig(self, v))[1])
    m = MarketModel(
        load("small", {**INTERIOR, "n_firms": 2, "seed": 2, "hedger.spread_policy": "optimal"})
    )
    m.run()
    assert seen and all(len(v.firms) == 2 for v in seen)
    assert max(len(v.ladder) for v in seen) > 5


def test_an_iceberg_fringe_shows_only_its_first_levels():
    def levels_shown(show: int) -> int:
        m = MarketModel(load("small", {**INTERIOR, "commercials.show_levels": show, "seed": 4}))
        most = 0
        for _ in range(200):
            m.step()
            for c in m.commercials:
                ticks = {t for (_, t) in getattr(c, "_quotes", {})}
                most = max(most, len(ticks))
        return most

    assert levels_shown(3) <= 3
    assert levels_shown(0) > 3


def test_a_fringe_that_holds_back_quotes_cost_plus_markup_in_the_harvest():
    m = MarketModel(load("small", {**INTERIOR, "commercials.harvest_markup": 2.0, "seed": 5}))
    long_c = next(c for c in m.commercials if c.direction > 0)
    t = m.exchange.contract.tick_size
    start = m.exchange.harvest_start_step
    while m.step_index < start - 1:
        m.step()
    before = long_c._first_tick(1)
    fair = m.fair
    assert fair - before * t > long_c.curve.cost  # a bid strictly inside its cost
    assert fair - before * t <= long_c.curve.cost + t + 1e-9
    while m.step_index < start + 1:
        m.step()
    after = long_c._first_tick(1)
    d_after = m.fair - after * t
    assert long_c.curve.cost + 2.0 < d_after <= long_c.curve.cost + 2.0 + t + 1e-9


# -- the theory that can be wrong ----------------------------------------------------------------


def test_holdings_limit_what_a_firm_saves_by_hand():
    # linear fringe κ = 10 from c_f = 2 (supply 10 (d − 2) lots), Q = 100, one firm with c = 3
    # holding H lots. With H ≥ Q: d* = (Q/κ + c_f − c)/2 = (10 + 2 − 3)/2 = 4.5, x = 100 − 25 = 75.
    # With H = 0 every lot it buys it must deliver: x (d − 3) > 0 needs d > 3; on the grid it
    # maximises x (d − 3) with x = 100 − 10 (d − 2): d = (10 + 2 + 3)/2 = 7.5, x = 45.
    def supply(d):
        return np.maximum(0.0, 10.0 * (np.asarray(d, float) - 2.0))

    big = theory.solve_harvest(100, supply, [3.0], 1.0, 0.5, max_discount=50, holdings=[1000])
    assert big.discount == pytest.approx(4.5) and big.lots_by_firm[0] == pytest.approx(75)
    none = theory.solve_harvest(100, supply, [3.0], 1.0, 0.5, max_discount=50, holdings=[0])
    assert none.discount == pytest.approx(7.5) and none.lots_by_firm[0] == pytest.approx(45)
    # a fringe covering the need below the firm's cost: a firm holding nothing takes nothing
    cheap = theory.solve_harvest(
        100, lambda d: np.where(np.asarray(d) >= 1.0, 1e6, 0.0), [3.0], 1.0, 0.5, 50, holdings=[0]
    )
    assert cheap.lots_by_firm == [0.0] and cheap.bound == "fringe_only"


def test_ex_ante_theory_explains_the_first_contradiction():
    # capacity beyond the crowd's need: the arbitrageurs, not the firm, hold the crowd's
    # opposite side; the ex-ante theory, told the firm's own holding, predicts that the firm
    # takes nothing, as the run does (the ex-post theory of the old algorithm does not)
    r = (
        MarketModel(
            load(
                "small",
                {
                    "retail.long_share": 0.9,
                    "arbitrageurs.n": 2,
                    "arbitrage_capacity": 2000,
                    "seed": 1,
                },
            )
        )
        .run()
        .summary
    )
    assert r["transfer_retail_to_hedger_harvest_forced_close"] == 0.0
    assert r["theory_ex_ante_transfer"] == 0.0
    assert r["regime"] == "fringe_only"
    assert r["theory_transfer"] > 0  # the ex-post closed form still credits the firm


def test_ex_ante_theory_uses_the_state_at_the_harvest_start_not_the_deadline():
    m = MarketModel(load("small", {**INTERIOR, "seed": 3}))
    r = m.run().summary
    assert r["regime"] == "interior"
    # recompute by hand from the marks: NDNP at the harvest start, the commercials' linear
    # curve (κ = 1/slope beyond their free room), the firm's cost: d = (Q'/κ + c_f − c_h)/2
    # with Q' the need left after the room the fringe has at its flat cost
    q0 = r["ndnp_at_harvest_start"]
    assert q0 != r["ndnp_at_deadline"]  # the two theories are fed different needs here
    ((curve, net, _),) = [f for f in m.marks["fringe_at_harvest_start"] if 1 in f[2]]
    room = curve.soft_limit - net  # lots left at the flat cost
    kappa = 1.0 / curve.slope
    c_h = m.hedgers[0].curve.cost
    d = ((q0 - room) / kappa + curve.cost - c_h) / 2
    assert r["theory_ex_ante_divergence"] == pytest.approx(d, abs=2 * m.exchange.contract.tick_size)


@pytest.mark.parametrize(
    "scenario", ["small", "one_sided", "wti_2020", "china_rebar", "cascade", "default"]
)
def test_every_shipped_scenario_labels_its_regime(scenario):
    cfg = load(scenario)
    if cfg.retail.n_traders > 2000:
        cfg = load(scenario, {"retail.n_traders": 400})
    r = MarketModel(cfg).run().summary
    assert r["regime"] in REGIMES
    if r["regime"] in ("interior", "band_cap", "fringe_cost"):
        assert math.isfinite(r["theory_ex_ante_divergence"])

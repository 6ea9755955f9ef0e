"""The endogenous harvest in whole runs: the divergence comes out of the firms' decisions, the
fringe's costs and the exchange's rules, and it follows the closed forms of abm.theory."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from abm import theory
from abm.config import ConfigError
from abm.model import MarketModel
from abm.scenarios import load

# -- deterministic: the seed's worked example and a stylized linear fringe ----------------------


def test_seed_example_waits_for_the_band_and_harvests_at_the_last_limit():
    m = MarketModel(load("seed_example"))
    r = m.run()
    s = r.summary
    # nobody else can deliver: forced sales lock limit-down at 90 and 81 (settled there), and
    # on the last trading day the hedger bids ⌈81 × 0.9⌉ = 73 for the 200 lots
    settle = r.days.set_index("day")
    assert list(settle.loc[[7, 8], "settlement"]) == [90.0, 81.0]
    assert list(settle.loc[[7, 8], "source"]) == ["locked", "locked"]
    assert s["ndnp_at_deadline"] == 200 and s["harvest_discount"] == pytest.approx(27)
    assert s["transfer_retail_to_hedger_harvest_forced_close"] == pytest.approx(200 * 27 * 10)
    assert s["theory_transfer"] == pytest.approx(54_000) and s["theory_bound"] == "cap"
    assert s["final_settlement"] == 73 and s["locked_sessions"] == 2
    # the firm waited for a lower band: while the forced sales stood unfilled at the limit it
    # bought nothing, holding its 200 lots short through days 7 and 8
    ts = r.timeseries
    assert (ts.loc[ts["day"].isin([7, 8]), "net_hedger"] == -200).all()
    assert ts.loc[ts["day"] == 9, "net_hedger"].iloc[-1] == 0


def test_the_mechanism_works_both_ways():
    # a net-short crowd: limit-up sessions 110, 121, then ⌊121 × 1.1⌋ = 133 on the last day
    s = MarketModel(load("seed_example", {"retail_long_share": 8 / 18})).run().summary
    assert s["ndnp_at_deadline"] == -200
    assert s["harvest_discount"] == pytest.approx(33)
    assert s["transfer_retail_to_hedger_harvest_forced_close"] == pytest.approx(200 * 33 * 10)


def test_the_lead_matters_through_the_band():
    # sessions from the deadline to the last day: lead + 1; each locked one moves the limit
    got = {}
    for lead in (1, 2, 3):
        s = MarketModel(load("seed_example", {"forced_close_lead_days": lead})).run().summary
        got[lead] = s["harvest_discount"]
        assert got[lead] == pytest.approx(100 - theory.band_reach(100, 0.10, lead + 1, 1.0))
    assert got[1] < got[2] < got[3]  # 19 < 27 < 34


def stylized(q: int, kappa: float, n_firms: int = 1, **kw) -> MarketModel:
    """Seed 000's market, no noise: 40 shorts and 40 + q/20 longs of 20 lots open on day 0; one
    arbitrageur with a linear cost curve (nothing at the flat cost, then 1/κ per lot, no wall)
    is the fringe, resting its whole ladder (the passive fringe the closed form assumes: all
    its supply in the auction at once); no band; tick 0.1 so the grid is fine. The firms
    decide from a desk's view (the default policy) unless ``kw`` says otherwise."""
    n_long = 40 + q // 20
    n = n_long + 40
    return MarketModel(
        load(
            "seed_example",
            {
                "retail.n_traders": n,
                "retail.long_share": n_long / n,
                "retail.lots_min": 20,
                "retail.lots_max": 20,
                "retail.opening_days": 1,
                "contract.price_limit": "none",
                "contract.tick_size": 0.1,
                "arbitrageurs.n": 1,
                "arbitrageurs.capacity": None,
                "arbitrageurs.soft_capacity": 0,
                "arbitrageurs.cost_slope": 1.0 / kappa,
                "arbitrageurs.delivery_cost": 2.0,
                "arbitrageurs.ladder_levels": 500,
                "arbitrageurs.show_levels": 0,
                "hedger.n_firms": n_firms,
                "hedger.quote_size": 200,
                "hedger.quote_levels": 3,
                **kw,
            },
        )
    )


@pytest.mark.parametrize(("q", "kappa"), list(itertools.product([400, 800, 1600], [20, 40, 80])))
def test_stylized_divergence_and_transfer_within_five_percent_of_theory(q, kappa):
    s = stylized(q, kappa).run().summary
    assert s["ndnp_at_deadline"] == q
    # the fringe quotes one tick inside its cost: its effective cost is 2 + 0.1; c_h = 2
    th = theory.linear_harvest(q, kappa, 2.1, [2.0], 10.0)
    assert s["harvest_discount"] == pytest.approx(th.discount, rel=0.05)
    assert -s["basis_at_forced_close"] == pytest.approx(th.discount, rel=0.05)
    assert s["transfer_retail_to_hedger_harvest_forced_close"] == pytest.approx(
        th.transfer_to_firms, rel=0.05
    )
    assert -s["retail_pnl_harvest_forced_close"] == pytest.approx(th.retail_loss, rel=0.05)


@pytest.mark.parametrize(("q", "kappa"), [(400, 20), (1600, 80)])
def test_the_full_information_benchmark_lands_on_the_closed_form_too(q, kappa):
    s = stylized(q, kappa, **{"hedger.spread_policy": "optimal"}).run().summary
    th = theory.linear_harvest(q, kappa, 2.1, [2.0], 10.0)
    assert s["harvest_discount"] == pytest.approx(th.discount, rel=0.05)
    assert s["transfer_retail_to_hedger_harvest_forced_close"] == pytest.approx(
        th.transfer_to_firms, rel=0.05
    )


def test_an_iceberg_fringe_leaves_the_price_and_gives_the_firm_its_hidden_lots():
    # the fringe shows 3 levels at a time: the desk still prices at the closed form's discount
    # (it estimates the hidden supply from the levels it sees), but in the forced-close sweep
    # only the visible levels compete, so the firm takes the lots the fringe hid: its transfer
    # is Q × d − (the visible fringe's lots × d), above the closed form's x* × d
    q, kappa = 800, 20
    th = theory.linear_harvest(q, kappa, 2.1, [2.0], 10.0)
    s = stylized(q, kappa, **{"arbitrageurs.show_levels": 3}).run().summary
    assert s["harvest_discount"] == pytest.approx(th.discount, rel=0.05)
    assert s["transfer_retail_to_hedger_harvest_forced_close"] > 1.2 * th.transfer_to_firms
    assert s["transfer_retail_to_hedger_harvest_forced_close"] <= q * th.discount * 10.0


def test_two_firms_play_cournot():
    # the Cournot game is the full-information benchmark's: each firm knows the other's
    # position and curve
    s = stylized(800, 20, n_firms=2, **{"hedger.spread_policy": "optimal"}).run().summary
    th = theory.linear_harvest(800, 20, 2.1, [2.0, 2.0], 10.0)
    assert s["harvest_discount"] == pytest.approx(th.discount, rel=0.05)  # 12.7, not 20.05
    assert s["n_firms"] == 2


def test_two_desk_view_firms_compete_the_discount_down():
    # desk-view firms know each other only through their quotes in the book; they undercut
    # each other below the one-firm optimum (20.05), toward Cournot's 12.7
    one = stylized(800, 20).run().summary
    two = stylized(800, 20, n_firms=2).run().summary
    th = theory.linear_harvest(800, 20, 2.1, [2.0, 2.0], 10.0)
    assert two["harvest_discount"] < one["harvest_discount"]
    assert two["harvest_discount"] < 0.8 * one["harvest_discount"]
    assert th.discount < one["harvest_discount"]  # Cournot's 12.7 is below one firm's 20.05
    assert two["harvest_discount"] >= 2.1 - 0.1  # never below the fringe's effective cost


def test_a_hedger_that_estimates_the_ndnp_harvests_alike():
    known = stylized(800, 40).run().summary
    guess = stylized(800, 40, **{"hedger.knows_ndnp": False}).run().summary
    assert guess["harvest_discount"] == pytest.approx(known["harvest_discount"], rel=0.05)


def test_fixed_spread_baseline_reproduces_the_old_dial():
    s = MarketModel(load("seed_example", {"hedger.spread_policy": "fixed"})).run().summary
    assert s["harvest_discount"] == pytest.approx(3.0)
    assert s["transfer_retail_to_hedger_harvest_forced_close"] == pytest.approx(6000)
    assert s["theory_transfer"] == 6000 and s["theory_bound"] == "spread"


def test_nothing_to_bound_the_price_is_refused():
    with pytest.raises(ConfigError, match="nothing bounds the harvest price"):
        load(
            "seed_example", {"contract.price_limit": "none", "contract.allow_negative_prices": True}
        )


# -- after the deadline: a living market and honest expiry metrics -----------------------------


def test_the_market_lives_on_after_the_deadline():
    m = MarketModel(load("small", {"retail_long_share": 0.5, "seed": 3}))
    r = m.run()
    s = r.summary
    after = r.timeseries.loc[m.harvest_end_step :]
    assert after["volume"].sum() > 0  # commercials and the hedger trade
    assert (r.timeseries.loc[m.harvest_end_step :, "net_retail"] == 0).all()
    assert s["final_settlement_source"] == "vwap" and np.isfinite(s["basis_at_expiry"])
    # with the crowd gone, the last day's price is back near fair value
    assert abs(s["basis_at_expiry"]) < 0.04 * s["spot_at_expiry"]


def test_no_trade_on_the_last_day_gives_nan_with_a_reason():
    # a deep flat fringe takes the crowd's 200 lots at the deadline; afterwards nobody trades
    s = (
        MarketModel(
            load(
                "seed_example",
                {"arbitrageurs.n": 1, "arbitrageurs.capacity": 5000, "forced_close_lead_days": 2},
            )
        )
        .run()
        .summary
    )
    assert s["final_settlement_source"] == "previous"
    assert np.isnan(s["basis_at_expiry"]) and "no trade on the last trading day" in s["notes"]


# -- comparative statics over seeds (paired on the same seeds) ---------------------------------

SEEDS = range(1, 11)


def _discount(**upd) -> np.ndarray:
    """The marginal lot's discount over 10 seeds of the small market where the economics, not
    the band, decide: a ±50 % band that does not bind (the interior regime)."""
    upd = {"contract.price_limit": 0.5, **upd}
    return np.array(
        [
            MarketModel(load("small", {**upd, "seed": sd})).run().summary["harvest_discount"]
            for sd in SEEDS
        ]
    )


def _paired_effect(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    d = b - a
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


def test_divergence_rises_with_the_crowds_net_position():
    lo, hi = _discount(retail_long_share=0.6), _discount(retail_long_share=0.9)
    mean, se = _paired_effect(lo, hi)
    assert mean > 2 * se and mean > 0


def test_divergence_falls_with_fringe_capacity_down_to_its_cost():
    # the fringe's depth beyond its cheap room: 20, 100, 500 lots per price unit
    depth = [
        _discount(
            retail_long_share=0.9, **{"commercials.soft_capacity": 0, "commercials.cost_slope": s}
        )
        for s in (0.05, 0.01, 0.002)
    ]
    for a, b in itertools.pairwise(depth):
        mean, se = _paired_effect(b, a)
        assert mean > 2 * se and mean > 0
    # with cheap room for every lot the discount is the fringe's cost (2), to within a tick
    # (the firm undercuts it, or sits behind it when it holds less than the crowd's need)
    deep = _discount(retail_long_share=0.9, **{"commercials.soft_capacity": 5000})
    assert np.all((deep > 1.0) & (deep <= 3.0))


def test_divergence_falls_as_competing_firms_are_added():
    # where the band does not bind (±10 %): at small's ±4 % band one firm or three all bid at
    # the band's edge, session after session, and concentration cannot show
    wide = {"retail_long_share": 0.9, "contract.price_limit": 0.1}
    one, three = _discount(**wide), _discount(**wide, n_firms=3)
    mean, se = _paired_effect(three, one)
    assert mean > 2 * se and mean > 0


def test_with_a_band_divergence_rises_with_the_forced_close_lead():
    # small's ±4 % band, which binds: the lead gives the harvest more sessions to walk it
    thin = {"retail_long_share": 0.9, "commercials.cost_slope": 0.2, "contract.price_limit": 0.04}
    short, long_ = (
        _discount(forced_close_lead_days=1, **thin),
        _discount(forced_close_lead_days=3, **thin),
    )
    mean, se = _paired_effect(short, long_)
    assert mean > 2 * se and mean > 0

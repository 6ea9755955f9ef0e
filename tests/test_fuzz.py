"""Fuzz (issue 14): valid configurations drawn over wide ranges run short simulations with the
invariants checked after every step, and no breach may appear.

Hypothesis draws each field; a combination the config refuses is skipped (that is validation
doing its job, tested elsewhere); any exception from a run that validated is a failure.
``derandomize`` keeps CI reproducible; ``ABM_FUZZ_EXAMPLES`` runs more locally.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from abm.config import ConfigError
from abm.model import MarketModel
from abm.scenarios import load

EXAMPLES = int(os.environ.get("ABM_FUZZ_EXAMPLES", "30"))


@st.composite
def configs(draw):
    days = draw(st.integers(4, 15))
    tick = draw(st.sampled_from([0.01, 0.05, 0.1, 1.0, 5.0]))
    initial = draw(st.floats(max(tick * 10, 1.0), 5000.0))
    limit = draw(st.one_of(st.none(), st.floats(0.01, 0.2)))
    arb_n = draw(st.integers(0, 3))
    updates = {
        "seed": draw(st.integers(0, 2**32)),
        "calendar.trading_days": days,
        "calendar.steps_per_day": draw(st.integers(4, 40)),
        "calendar.forced_close_lead_days": draw(st.integers(1, days - 2)),
        "contract.tick_size": tick,
        "contract.multiplier": draw(st.sampled_from([1.0, 10.0, 100.0, 1000.0, 100_000.0])),
        "contract.fee_per_lot": draw(st.floats(0.0, 20.0)),
        "contract.price_limit": limit,
        "contract.allow_negative_prices": draw(st.booleans()),
        "spot.kind": draw(st.sampled_from(["gbm", "ou", "constant"])),
        "spot.initial": initial,
        "spot.volatility": draw(st.floats(0.0, 0.08)),
        "spot.jump_intensity": draw(st.floats(0.0, 0.5)),
        "spot.jump_std": draw(st.floats(0.0, 0.05)),
        "spot.carry_rate": draw(st.floats(-0.001, 0.002)),
        "margin.rate": draw(st.floats(0.02, 0.6)),
        "margin.step_ups": [],
        "clearing.loss_regime": draw(
            st.sampled_from(["broker", "insurance_fund", "socialized", "adl"])
        ),
        "clearing.check_invariants_every_step": True,
        "retail.n_traders": draw(st.integers(0, 400)),
        "retail.long_share": draw(st.floats(0.0, 1.0)),
        "retail.leverage_mode": draw(st.sampled_from(["margin", "absolute"])),
        "retail.rules": draw(st.sampled_from(["default", "hold"])),
        "retail.opening_days": draw(st.integers(1, max(1, days - 3))),
        "arbitrageurs.n": arb_n,
        "arbitrage_capacity": draw(st.integers(0, 5000)) if arb_n else 0,
        "n_firms": draw(st.integers(1, 4)),
        "hedger.knows_ndnp": draw(st.booleans()),
        "hedger.spread_policy": draw(st.sampled_from(["optimal", "fixed", "competitive"])),
    }
    return updates


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(configs())
def test_random_valid_configs_never_breach_an_invariant(updates):
    try:
        cfg = load("small", updates)
        model = MarketModel(cfg)
    except (ConfigError, ValueError):
        assume(False)  # refused with a message: validation's job
        return
    r = model.run()  # every step checks every invariant; a breach raises
    s = r.summary
    tol = 1e-9 * s["turnover"] + 1e-6 * max(1.0, cfg.contract.multiplier)
    assert abs(s["ledger_residual"]) <= tol
    # each class's channels add up to its P&L
    bc = r.by_class
    channels = bc.drop(columns=["pnl"]).sum(axis=1)
    assert ((channels - bc["pnl"]).abs() <= tol).all(), (channels - bc["pnl"]).to_dict()


# -- what the fuzz found, shrunk, kept as regular tests ----------------------------------------
TINY = {
    "seed": 0,
    "calendar.trading_days": 6,
    "calendar.steps_per_day": 4,
    "calendar.forced_close_lead_days": 1,
    "contract.tick_size": 0.01,
    "contract.multiplier": 1.0,
    "contract.fee_per_lot": 0.0,
    "contract.price_limit": None,
    "spot.kind": "gbm",
    "spot.initial": 1.0,
    "margin.rate": 0.5,
    "margin.step_ups": [],
    "clearing.check_invariants_every_step": True,
    "retail.n_traders": 1,
    "retail.long_share": 0.0,
    "retail.opening_days": 1,
    "arbitrageurs.n": 0,
    "hedger.knows_ndnp": False,
}


def test_found_a_net_short_crowd_without_a_band_outruns_the_visible_quotes():
    # raised "the harvest price has no bound" mid-run although the config was valid (the
    # commercials' curve has no wall, but their visible ladder ran out): the firm now prices
    # no further than the furthest competing quote it can see
    r = MarketModel(load("small", {**TINY, "spot.volatility": 0.0})).run()
    assert abs(r.summary["ledger_residual"]) < 1e-6


def test_found_a_vanishing_reference_volatility():
    # spot.volatility = 5e-324 made the market maker's volatility ratio infinite
    r = MarketModel(
        load("small", {**TINY, "spot.volatility": 5e-324, "calendar.trading_days": 8})
    ).run()
    assert abs(r.summary["ledger_residual"]) < 1e-6

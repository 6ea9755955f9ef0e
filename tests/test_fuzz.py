"""Fuzz (issue 14): valid configurations drawn over wide ranges run short simulations with the
invariants checked after every step, and no breach may appear.

Hypothesis draws each field; a combination the config refuses is skipped (that is validation
doing its job, tested elsewhere); any exception from a run that validated is a failure.
``derandomize`` keeps CI reproducible; ``ABM_FUZZ_EXAMPLES`` runs more locally, and
``ABM_FUZZ_REPORT=<file>`` records each draw (refused, run with its seconds, failed).
"""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from abm.config import ConfigError, _set_dotted, dotted, inert, validate
from abm.metrics import UNEXPLAINED
from abm.model import MarketModel
from abm.scenarios import load

EXAMPLES = int(os.environ.get("ABM_FUZZ_EXAMPLES", "200"))


@st.composite
def configs(draw):
    """Wide ranges (issue 21): every loss regime with and without intraday risk checks, ticks
    down to 1e-4, capital up to 5e11, 1-5 firms, delivery capacities 0 to 10⁶."""
    days = draw(st.integers(4, 15))
    tick = draw(st.sampled_from([0.0001, 0.001, 0.01, 0.05, 0.1, 1.0, 5.0]))
    initial = draw(st.floats(max(tick * 10, 1.0), 5000.0))
    limit = draw(st.one_of(st.none(), st.floats(0.01, 0.5)))
    arb_n = draw(st.integers(0, 3))
    steps = draw(st.integers(4, 40))
    updates = {
        "seed": draw(st.integers(0, 2**63 - 1)),
        "calendar.trading_days": days,
        "calendar.steps_per_day": steps,
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
        "margin.rate": draw(st.floats(0.01, 0.6)),
        "margin.step_ups": [],
        "margin.intraday_check_steps": draw(st.one_of(st.none(), st.integers(1, 2 * steps))),
        "clearing.loss_regime": draw(
            st.sampled_from(["broker", "insurance_fund", "socialized", "adl"])
        ),
        "clearing.check_invariants_every_step": True,
        "retail.n_traders": draw(st.integers(0, 400)),
        "retail.long_share": draw(st.floats(0.0, 1.0)),
        "retail.capital_median": draw(st.sampled_from([2e3, 5e4, 1e6, 1e9])),
        "retail.leverage_mode": draw(st.sampled_from(["margin", "absolute"])),
        "retail.rules": draw(st.sampled_from(["default", "hold"])),
        "retail.opening_days": draw(st.integers(1, max(1, days - 3))),
        "arbitrageurs.n": arb_n,
        "arbitrage_capacity": draw(st.sampled_from([0, 100, 5000, 1_000_000])),
        "n_firms": draw(st.integers(1, 5)),
        "hedger.capital": draw(st.sampled_from([1e6, 1e9, 5e11])),
        "hedger.knows_ndnp": draw(st.booleans()),
        "hedger.spread_policy": draw(
            st.sampled_from(["estimating", "optimal", "fixed", "competitive"])
        ),
    }
    return updates


def _report(row: dict) -> None:
    """With ``ABM_FUZZ_REPORT=<file>``, one JSON line per drawn config (a local campaign's
    counts: refused, run, failed, seconds); nothing otherwise."""
    path = os.environ.get("ABM_FUZZ_REPORT")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps(row, default=str) + "\n")


def active(updates: dict) -> dict:
    """The updates without the fields that have no effect in the config they make (those are
    refused: `abm.config.inert`), so every draw tests a run rather than the refusal."""
    data = load("small").model_dump()
    for k, v in updates.items():
        _set_dotted(data, k, v)
    idle = inert(validate(data))
    return {k: v for k, v in updates.items() if dotted(k) not in idle}


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    # reproducible in CI; a local campaign sets ABM_FUZZ_RANDOM=1 and --hypothesis-seed=N per
    # process to draw different configs in parallel
    derandomize=os.environ.get("ABM_FUZZ_RANDOM") != "1",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(configs())
def test_random_valid_configs_never_breach_an_invariant(updates):
    try:
        cfg = load("small", active(updates))
        model = MarketModel(cfg)
    except (ConfigError, ValueError) as err:
        _report({"refused": str(err)[:200]})
        assume(False)  # refused with a message: validation's job
        return
    try:
        r = model.run()  # every step checks every invariant; a breach raises
    except Exception as err:
        _report({"failed": f"{type(err).__name__}: {err}"[:300], "updates": repr(updates)})
        raise
    s = r.summary
    _report(
        {
            "seconds": model.wall_seconds,
            "nan": sum(isinstance(v, float) and v != v for v in s.values()),
            "regime": cfg.clearing.loss_regime,
            "intraday": cfg.margin.intraday_check_steps is not None,
            "tick": cfg.contract.tick_size,
            "firms": cfg.hedger.n_firms,
        }
    )
    ch = model.exchange.clearing
    # the ledger closes to float rounding of what passed through it and what it holds
    tol = 1e-9 * (s["turnover"] + ch.balances()) + 1e-6 * max(1.0, cfg.contract.multiplier)
    assert abs(s["ledger_residual"]) <= tol
    # each class's channels add up to its P&L
    bc = r.by_class
    channels = bc.drop(columns=["pnl"]).sum(axis=1)
    assert ((channels - bc["pnl"]).abs() <= tol).all(), (channels - bc["pnl"]).to_dict()
    # every NaN in the summary is explained in its notes, with a known reason
    nan = [k for k, v in s.items() if isinstance(v, float) and v != v]
    for k in nan:
        assert f"{k}:" in s["notes"], (k, s["notes"])
    assert UNEXPLAINED not in s["notes"], s["notes"]


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

"""Channels by price source and the paired counterfactual, checked by hand (issue 15).

seed_example: 18 traders of 100 lots each, 10 long and 8 short, no noise, constant spot 100,
multiplier 10, all force-closed in one auction. The crowd's longs sell 1,000 lots; its shorts
buy 800 of them and the hedger 200 (the NDNP). Under the fixed-spread baseline the auction
prints at fair − 3; in the no-harvest arm the hedger's ordinary bid, one tick (1) under fair.
"""

from __future__ import annotations

import pytest

from abm.model import MarketModel
from abm.scenarios import load
from abm.sweeps.runner import execute


def _summary(policy: str) -> dict:
    return MarketModel(scenario="seed_example", hedger__spread_policy=policy).run().summary


@pytest.mark.parametrize(("policy", "discount"), [("fixed", 3.0), ("ordinary", 1.0)])
def test_the_harvest_and_the_crowds_own_auction_by_hand(policy, discount):
    s = _summary(policy)
    assert s["ndnp_at_deadline"] == 200 and s["forced_close_lots"] == 1000
    # hedger: 200 lots × discount × multiplier 10
    assert s["transfer_retail_to_hedger_harvest_forced_close"] == pytest.approx(200 * discount * 10)
    # inside the crowd: 800 lots from its longs to its shorts at the same print ...
    assert s["forced_close_within_crowd_gross"] == pytest.approx(800 * discount * 10)
    # ... which nets to nothing for the class
    assert s["retail_pnl_forced_close_within_crowd"] == pytest.approx(0.0, abs=1e-6)
    assert s["transfer_retail_to_hedger_forced_close_within_crowd"] == pytest.approx(0.0, abs=1e-6)


def test_the_paired_counterfactual_by_hand():
    base = load("seed_example", {"hedger.spread_policy": "fixed"}).model_dump(mode="json")
    out = execute(base, {}, 42, "summary", counterfactual="no_harvest")
    s = out["summary"]
    assert out["error"] is None
    # the harvest takes 200 × (3 − 1) × 10 more than ordinary quoting would have
    k = "transfer_retail_to_hedger_harvest_forced_close"
    assert s[f"cf_{k}"] == pytest.approx(2000.0) and s[f"effect_{k}"] == pytest.approx(4000.0)
    assert s["effect_pnl_retail"] == pytest.approx(-4000.0)
    assert s["effect_harvest_discount"] == pytest.approx(2.0)

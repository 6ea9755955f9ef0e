"""The NDNP as a design variable (issue 15, item 1): a target at the deadline, met across seeds
whatever the noise trading does; the share form; the refusal of both at once."""

from __future__ import annotations

import numpy as np
import pytest

from abm.config import ConfigError
from abm.model import MarketModel
from abm.scenarios import load


@pytest.mark.parametrize("target", [1000, -2000])
def test_the_target_is_met_across_seeds(target):
    """On the coarse-tick market (a constant clock) the late flow meets the target within 2 %
    in every seed. On `default`, whose crowd trades in bursts after moves (attention), a burst
    in the last steps can leave a gap the flow cannot close (seed 8 at 1,000: 42 lots): most
    seeds still meet it, and every miss beyond the tolerance is reported in the run's notes."""
    tol = max(5, 0.02 * abs(target))
    gaps, natural = [], []
    for seed in range(1, 11):
        s = MarketModel(scenario="default_coarse_tick", rng=seed, ndnp_target=target)
        s = s.run().summary
        assert s["ndnp_target"] == target
        assert s["ndnp_target_gap"] == s["ndnp_at_deadline"] - target
        gaps.append(s["ndnp_target_gap"])
        natural.append(
            MarketModel(scenario="default_coarse_tick", rng=seed).run().summary["ndnp_at_deadline"]
        )
    assert max(abs(g) for g in gaps) <= tol, gaps
    # without the lever the same seeds scatter (the independent variable cannot be set)
    assert np.std(natural) > 20 * tol / 2
    met = 0
    for seed in range(1, 11):
        s = MarketModel(scenario="default", rng=seed, ndnp_target=target).run().summary
        if abs(s["ndnp_target_gap"]) <= tol:
            met += 1
        else:
            assert "ndnp_target_gap: the NDNP at the deadline missed its target" in s["notes"]
    assert met >= 8


def test_the_share_form_and_its_target():
    m = MarketModel(scenario="default", rng=3, ndnp_target_share=0.3)
    s = m.run().summary
    assert s["ndnp_target"] is not None and s["ndnp_target"] > 0
    assert abs(s["ndnp_target_gap"]) <= max(5, 0.02 * abs(s["ndnp_target"]))


def test_both_forms_at_once_are_refused():
    with pytest.raises(ConfigError, match="ndnp_target and ndnp_target_share both set"):
        load("default", {"ndnp_target": 100, "ndnp_target_share": 0.1})


def test_the_late_flow_is_part_of_the_crowd_and_the_books_balance():
    m = MarketModel(scenario="small", rng=2, ndnp_target=300)
    r = m.run()
    flow = r.accounts.set_index("account").loc[m.target_flow.account.id]
    assert flow["owner"] == "retail" and not bool(flow["deliverable"])
    assert abs(r.summary["ndnp_target_gap"]) <= 6
    assert abs(r.summary["ledger_residual"]) < 1e-6

"""Invariant checks fail when they should, and only then (issue 14, item 2): tolerances scale
with what they guard; NaN is a breach; a breach names the quantity, its value and the
tolerance."""

from __future__ import annotations

import math

import pytest

from abm.exchange.clearing import InvariantError
from abm.model import MarketModel
from abm.scenarios import load


def test_a_large_contract_does_not_fail_on_rounding_dust():
    # failed at expiry before: the arbitrageurs' running position value kept a 1e-8 remainder
    # once flat, times the multiplier 1000, against a fixed tolerance of 1e-6
    cfg = load(
        "small",
        {
            "contract.tick_size": 0.01,
            "contract.multiplier": 1000,
            "arbitrage_capacity": 4780,
            "arbitrageurs.n": 1,
            "spot.initial": 3000.0,
        },
    )
    r = MarketModel(cfg).run()
    assert abs(r.summary["ledger_residual"]) < 1e-9 * r.summary["turnover"] + 1e-3


@pytest.fixture
def model():
    m = MarketModel(load("small", {"seed": 2}))
    for _ in range(60):
        m.step()
    m.exchange.clearing.check_invariants(m.exchange.settle_price)  # clean so far
    return m


def test_nan_in_the_ledger_is_a_breach(model):
    ch = model.exchange.clearing
    ch.fees_collected = math.nan
    with pytest.raises(InvariantError, match=r"ledger residual nan .* exceeds the tolerance"):
        ch.check_totals(model.exchange.settle_price, model.step_index)


def test_a_real_drift_is_caught_and_named(model):
    ch = model.exchange.clearing
    retail = next(a for a in ch.accounts if a.owner == "retail")
    retail.group.cash += 0.5  # half a money unit booked to the totals and to no account
    with pytest.raises(InvariantError) as err:
        ch.check_invariants(model.exchange.settle_price)
    msg = str(err.value)
    assert "running cash of retail accounts without delivery rights drifted" in msg
    assert "difference 0.5 (money)" in msg and "tolerance" in msg


def test_an_account_whose_cash_is_nan_is_named(model):
    ch = model.exchange.clearing
    acc = next(a for a in ch.accounts if a.owner == "hedger")
    acc.cash = math.inf
    with pytest.raises(InvariantError, match=rf"account {acc.id} \(hedger\) cash inf"):
        ch.check_invariants(model.exchange.settle_price)

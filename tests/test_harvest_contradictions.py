"""Issue 22's first contradiction, explained: with delivery capacity beyond the crowd's need the
theory has the firm take the whole need a tick inside the fringe's cost, and the simulated firm
takes nothing. The firm is not the crowd's counterparty there: the arbitrageurs sold to the
crowd, so buying the crowd's lots back saves the firm no delivery; it would have to take
delivery itself at its own cost, and a discount below that cost loses on every lot."""

from __future__ import annotations

from abm.agents.pricing import Firm
from abm.model import MarketModel
from abm.scenarios import load


def test_with_capacity_beyond_the_need_the_firm_holds_nothing_to_deliver():
    m = MarketModel(
        load(
            "small",
            {"retail.long_share": 0.9, "arbitrageurs.n": 2, "arbitrage_capacity": 2000, "seed": 1},
        )
    )
    deadline = m.exchange.calendar.deadline_step
    while m.step_index < deadline:
        m.step()
    q = m.exchange.clearing.ndnp
    firm = m.hedgers[0]
    held = max(0, -firm.account.net)  # lots it holds opposite a net-long crowd
    arbs = sum(-a.account.net for a in m.arbitrageurs)
    assert q > 1000
    assert held < 0.1 * q  # the firm holds (almost) none of the crowd's opposite side
    assert arbs > 0.9 * q  # the arbitrageurs hold it
    # buying x lots at a discount below its delivery cost loses: W(x) = C(H) − C(|H − x|)
    c_h = firm.curve.cost
    me = Firm(held, firm.curve)
    x = q // 2
    d = c_h - 0.5  # the theory's harvest price here: one tick inside the fringe's cost 2
    assert x * d + me.saving(x) < 0
    # the theory instead credits the firm c_h a lot: x (d + c_h) > 0, the harvest it predicts
    assert x * (d + c_h) > 0
    r = m.run().summary
    assert r["transfer_retail_to_hedger_harvest_forced_close"] == 0.0
    assert r["theory_bound"] == "fringe_cost" and r["theory_transfer"] > 0

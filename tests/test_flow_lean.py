"""A hedger whose ordinary quotes lean on its own recent order flow (``hedger.flow_lean``):
its quote centre moves by lean × an EWMA of its net sales, from its own fills only."""

from __future__ import annotations

import pytest

from abm.exchange import BUY
from abm.model import MarketModel
from abm.scenarios import load

QUIET = {
    # nobody but the hedger quotes, and nothing trades unless the test sends an order
    "retail.n_traders": 0,
    "market_maker.enabled": False,
    "commercials.open_interest": 0,
    "commercials.capacity": 0,
    "commercials.soft_capacity": None,
    "commercials.activity": 0.0,
    "hedger.risk_limit": None,
    "hedger.depth_refill": 0,
}


def _best_ask(model) -> int:
    ex = model.exchange
    hedger = model.hedgers[0]
    asks = [
        o.price for o in ex.book.resting.values() if o.account == hedger.account.id and o.side == -1
    ]
    return min(asks)


@pytest.mark.parametrize("lean", [0.0, 0.5])
def test_after_selling_4_lots_its_quotes_move_up_by_lean_times_4(lean):
    """Half-life 1 step (decay 0.5). A buyer lifts 4 lots of the hedger's ask; at its next
    quote its recent net sales are 0.5 × 0 + 4 = 4, so its centre is fair + lean × 4 (2.0
    price units at lean 0.5) and its best ask round((fair + 2) / tick) + half-spread; one step
    later without fills they are 2 and fair + lean × 2. With lean 0 the quotes stay on fair
    value whatever the flow."""
    cfg = load(
        "small",
        {**QUIET, "hedger.flow_lean": lean, "hedger.flow_lean_half_life_steps": 1.0},
    )
    model = MarketModel(cfg)
    ex = model.exchange
    tick = ex.contract.tick_size
    half = cfg.hedger.quote_half_spread_ticks
    hedger = model.hedgers[0]
    model.step()
    assert hedger.recent_sales == 0.0
    assert _best_ask(model) == round(model.fair / tick) + half
    buyer = ex.clearing.open_account("tester", True, 1e9)
    r = ex.submit(buyer, BUY, 4, None, "market", "open")
    assert r.filled == 4 and hedger.account.net == -4
    model.step()
    assert hedger.recent_sales == 4.0
    assert _best_ask(model) == round((model.fair + lean * 4) / tick) + half
    model.step()
    assert hedger.recent_sales == 2.0
    assert _best_ask(model) == round((model.fair + lean * 2) / tick) + half


def test_the_lean_is_a_named_non_negative_field():
    from abm.config import ConfigError

    with pytest.raises(ConfigError, match="flow_lean"):
        load("small", {"hedger.flow_lean": -0.1})
    with pytest.raises(ConfigError, match="flow_lean_half_life_steps"):
        load("small", {"hedger.flow_lean_half_life_steps": 0})

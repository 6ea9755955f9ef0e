"""Extending the model the Mesa way: agents of your own classes trade, decision rules are
replaceable objects named in the config, and mesa.batch_run drives MarketModel (issue 13)."""

from __future__ import annotations

import sys
import textwrap

import mesa
import pandas as pd
import pytest

from abm.agents import TraderAgent
from abm.agents.pricing import HarvestView, Optimal, Quote
from abm.config import ConfigError
from abm.exchange import BUY
from abm.model import MarketModel
from abm.scenarios import load


class BuyAndHold(TraderAgent):
    """Buys ``lots`` at market once, then holds."""

    label = "buy_and_hold"

    def __init__(self, model, lots: int = 10, deliverable: bool = True):
        super().__init__(model, deposit=1e7, deliverable=deliverable)
        self.lots = lots
        self.bought = False

    def step(self) -> None:
        if not self.bought and self.exchange.book.best_ask is not None:
            r = self.exchange.submit(self.account, BUY, self.lots, None, "market", "open")
            self.bought = r.filled == self.lots


def test_a_custom_agent_created_in_the_model_trades():
    m = MarketModel(load("small"))
    a = BuyAndHold(m, lots=10)
    for _ in range(20):
        m.step()
    assert a.account.long == 10 and a.bought
    r = m.run()
    # it holds to expiry, where it takes delivery; its P&L is a class of its own
    assert "buy_and_hold" in r.by_class.index
    assert abs(r.summary["ledger_residual"]) < 1e-6


def test_a_custom_agent_without_delivery_rights_is_force_closed():
    m = MarketModel(load("small"))
    a = BuyAndHold(m, lots=10, deliverable=False)
    deadline = m.exchange.calendar.deadline_step
    while m.step_index < deadline:
        m.step()
    assert a.account.long == 10
    m.run()
    assert a.account.lots == 0


def test_agents_from_the_config(tmp_path, monkeypatch):
    (tmp_path / "my_agents.py").write_text(
        textwrap.dedent(
            """
            from abm.agents import TraderAgent
            from abm.exchange import BUY

            class Hoarder(TraderAgent):
                label = "hoarder"

                def __init__(self, model, lots=5):
                    super().__init__(model, deposit=1e7, deliverable=True)
                    self.lots = lots

                def step(self):
                    if self.account.long < self.lots and self.exchange.book.best_ask:
                        self.exchange.submit(self.account, BUY, 1, None, "market", "open")
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = load("small", {"agents": [{"class": "my_agents:Hoarder", "n": 3, "params": {"lots": 4}}]})
    m = MarketModel(cfg)
    hoarders = m.agents_by_type[sys.modules["my_agents"].Hoarder].to_list()
    assert len(hoarders) == 3
    for _ in range(30):
        m.step()
    assert [h.account.long for h in hoarders] == [4, 4, 4]
    with pytest.raises(ConfigError, match="agents.0.class"):
        load("small", {"agents": [{"class": "my_agents:Nowhere"}]})
    with pytest.raises(ConfigError, match="must subclass TraderAgent"):
        load("small", {"agents": [{"class": "collections:OrderedDict"}]})


def test_retail_rules_are_replaceable():
    # 'hold': the crowd opens and waits for the broker: no round trips, no stop-loss, so its
    # net position does not move between the end of the opening days and the deadline (no
    # step-ups and no voluntary closes, so nothing else moves it either)
    base = {
        "retail.voluntary_close_share": 0.0,
        "margin.step_ups": [],
        "seed": 4,
    }

    def net_path(**kw):
        m = MarketModel(load("small", {**base, **kw}))
        ts = m.run().timeseries
        start = m.cfg.retail.opening_days * m.cfg.calendar.steps_per_day + 1
        return ts.loc[start : m.exchange.calendar.deadline_step - 1, "net_retail"]

    held = net_path(**{"retail.rules": "hold"})
    assert held.nunique() == 1 and held.iloc[0] != 0
    assert net_path().nunique() > 1  # the default rules trade round trips
    with pytest.raises(ConfigError, match="retail.rules"):
        load("small", {"retail.rules": "nonsense"})


class AlwaysFairMinusOne(Optimal):
    """A policy of one's own: bid one tick under fair value for the whole need."""

    name = "fair_minus_one"

    def decide(self, view: HarvestView) -> Quote | None:
        tick = round(view.fair / view.tick_size) - view.side
        return Quote(tick, view.q, "mine")


def test_the_hedgers_pricing_is_replaceable_by_import_path():
    s = (
        MarketModel(
            load("seed_example", {"hedger.spread_policy": "tests.test_extend:AlwaysFairMinusOne"})
        )
        .run()
        .summary
    )
    assert s["harvest_discount"] == pytest.approx(1.0)
    assert s["transfer_retail_to_hedger_harvest_forced_close"] == pytest.approx(200 * 1 * 10)


def test_mesa_batch_run_drives_the_model():
    rows = mesa.batch_run(
        MarketModel,
        parameters={"scenario": "small", "margin_rate": [0.10, 0.20], "retail__long_share": 0.8},
        rng=[1, 2],
        data_collection_period=-1,
        max_steps=100_000,
        number_processes=1,
        display_progress=False,
    )
    df = pd.DataFrame(rows)
    assert len(df) == 4  # 2 margins × 2 seeds, the last step of each
    # Mesa passes the seeds as seed= (MarketModel takes seed and rng alike)
    assert set(df["margin_rate"]) == {0.10, 0.20} and set(df["seed"]) == {1, 2}
    # each row is what the model's own collector holds for its last step
    m = MarketModel(scenario="small", rng=2, margin_rate=0.20, retail__long_share=0.8)
    ts = m.run().timeseries
    row = df[(df["seed"] == 2) & (df["margin_rate"] == 0.20)].iloc[0]
    for col in ("futures", "ndnp", "open_interest", "equity_retail"):
        assert row[col] == ts[col].iloc[-1]
    assert row["Step"] == m.time
    # and the run's summary: the harvest, its theory, the transfer (issue 20)
    s = m.result.summary
    for key in (
        "harvest_discount",
        "theory_divergence",
        "ndnp_at_deadline",
        "harvest_policy",
        "transfer_retail_to_hedger_harvest_forced_close",
        "n_firms",
    ):
        assert row[key] == s[key], key
    # a summary metric named like a series keeps the series' column for the last step
    assert row["bad_debt_at_expiry"] == s["bad_debt"]
    assert row["transfer_retail_to_hedger_at_expiry"] == s["transfer_retail_to_hedger"]


def test_rng_and_seed_are_the_configs_seed():
    a = MarketModel(scenario="small", rng=7)
    b = MarketModel(load("small", {"seed": 7}))
    assert a.cfg.seed == b.cfg.seed == 7
    with pytest.raises(ValueError, match="whole-number seed"):
        MarketModel(scenario="small", rng=1.5)


def test_adding_an_agent_type_leaves_the_other_draws_alone():
    # an agent that never trades: with it the run must be the same run, draw for draw
    class Idle(TraderAgent):
        label = "idle"

        def __init__(self, model):
            super().__init__(model, deposit=1.0, deliverable=False)
            self.calls = 0

        def step(self):
            self.calls += 1

    p = MarketModel(scenario="small", rng=3)
    plain = p.run()
    m = MarketModel(scenario="small", rng=3)
    idle = [Idle(m) for _ in range(5)]
    with_idle = m.run()
    assert [a.calls for a in idle] == [m.n_steps] * 5
    pd.testing.assert_series_equal(plain.timeseries["futures"], with_idle.timeseries["futures"])
    assert plain.summary["pnl_retail"] == with_idle.summary["pnl_retail"]
    # and both of the model's generators end where they would have without it
    assert p.random.getstate() == m.random.getstate()
    assert p.rng.bit_generator.state == m.rng.bit_generator.state

"""The exact crowd engine (``retail.engine = "arrays"``): the same run as the per-agent engine,
bit for bit, on every shipped scenario and against the stored paper runs; a rule of one's own
stays exact; the traders can be listed and inspected; what it cannot run is refused by name."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from abm.agents.array_crowd import ArrayCrowd, ArrayTrader
from abm.agents.retail import RetailRules, RetailTrader
from abm.config import RunConfig
from abm.model import MarketModel
from abm.results import load_run
from abm.scenarios import load, names

ROOT = Path(__file__).resolve().parents[1]
STORED = ROOT / "results" / "paper" / "runs"
FRAMES = ("timeseries", "accounts", "events", "days", "depth", "by_class")


def _differences(a, b) -> list:
    """What differs between two runs' results, exactly (the run's wall time aside)."""
    bad = []
    for key, value in b.summary.items():
        if key == "wall_seconds":
            continue
        other = a.summary.get(key, "missing")
        both_nan = (
            isinstance(value, float)
            and isinstance(other, float)
            and math.isnan(value)
            and math.isnan(other)
        )
        if other != value and not both_nan:
            bad.append((key, other, value))
    for name in FRAMES:
        x, y = getattr(a, name, None), getattr(b, name, None)
        if x is None and y is None:
            continue
        try:
            pd.testing.assert_frame_equal(x, y, check_exact=True)
        except AssertionError as e:
            bad.append((name, str(e)[:300]))
    return bad


def _run(cfg: RunConfig):
    model = MarketModel(cfg)
    return model, model.run()


@pytest.mark.parametrize("scenario", names())
def test_every_shipped_scenario_runs_bit_for_bit_as_the_agent_engine(scenario):
    """Reduced to 200 traders (and the seed moved, so this is not the stored run): every summary
    value and every frame equal, and the arrays crowd made no Mesa agent per trader."""
    size = {"retail.n_traders": 200, "seed": 7}
    agents_model, agents = _run(load(scenario, {**size, "retail.engine": "agents"}))
    arrays_model, arrays = _run(load(scenario, {**size, "retail.engine": "arrays"}))
    assert isinstance(arrays_model.crowd, ArrayCrowd)
    assert _differences(arrays, agents) == []
    assert agents.summary["n_retail"] == 200
    # every other agent keeps its Mesa id: the crowd reserved its traders' ids
    assert [a.unique_id for a in arrays_model.agents] == [
        a.unique_id for a in agents_model.agents if not isinstance(a, RetailTrader)
    ]


@pytest.mark.parametrize("run", sorted(p.name for p in STORED.iterdir()) if STORED.exists() else [])
def test_the_stored_paper_runs_reproduce_bit_for_bit_on_the_arrays_engine(run, tmp_path):
    """`results/paper/runs/*` were written by the per-agent engine; rerun from their stored
    config on the arrays engine they come back equal in every value."""
    raw = json.loads((STORED / run / "config.json").read_text())
    raw["retail"]["engine"] = "arrays"
    model, _ = _run(RunConfig.model_validate(raw))
    model.result.save(tmp_path)
    assert _differences(load_run(tmp_path), load_run(STORED / run)) == []


class Contrarian(RetailRules):
    """A rule of one's own that only changes ``act``: it adds against the trend signal and
    draws one more uniform from the model's generator on each firing, so any difference in
    the order of firings or draws between the engines would show."""

    name = "contrarian"

    def act(self, trader, u):
        extra = trader.model.rng.random()
        if trader.crowd.trend_signal * trader.direction < 0 and extra < 0.7:
            side = 1 if trader.direction > 0 else -1
            trader._order(side, 1 + int(u[2] * trader.round_trip_lots), "open", u[3], u[4])
        else:
            super().act(trader, u)


def test_a_rule_of_ones_own_runs_per_trader_and_stays_exact():
    rules = {"retail.rules": "tests.test_array_crowd:Contrarian"}
    _, agents = _run(load("small", {**rules, "retail.engine": "agents"}))
    model, arrays = _run(load("small", {**rules, "retail.engine": "arrays"}))
    assert model.crowd._decide == "per_trader"
    assert _differences(arrays, agents) == []
    # the rule changed the run: it is not the shipped rule's run
    _, shipped = _run(load("small", {"retail.engine": "arrays"}))
    assert _differences(arrays, shipped) != []


def test_the_hold_rule_is_exact_too():
    rules = {"retail.rules": "hold"}
    _, agents = _run(load("small", {**rules, "retail.engine": "agents"}))
    _, arrays = _run(load("small", {**rules, "retail.engine": "arrays"}))
    assert _differences(arrays, agents) == []


def test_traders_are_listed_and_inspected_as_the_agent_engines_are():
    cfg = {"retail.n_traders": 60, "seed": 11}
    agents_model, _ = _run(load("small", {**cfg, "retail.engine": "agents"}))
    model, _ = _run(load("small", {**cfg, "retail.engine": "arrays"}))
    crowd: ArrayCrowd = model.crowd
    assert len(model.retail) == len(crowd) == 60
    with pytest.raises(IndexError, match="the crowd has 60"):
        model.retail[60]
    for ref, view in zip(agents_model.retail, model.retail, strict=True):
        assert isinstance(view, ArrayTrader)
        assert view.unique_id == ref.unique_id
        assert (view.direction, view.trend, view.state) == (ref.direction, ref.trend, ref.state)
        assert view.round_trip_lots == ref.round_trip_lots
        assert view.account.id == ref.account.id
        assert (view.position, view.equity) == (ref.position, ref.equity)
        assert model.owner(view.account.id) == view
    assert model.retail[-1] == model.retail[59]
    table = crowd.customers()
    assert table["net"].tolist() == [t.account.net for t in agents_model.retail]
    assert table["state"].tolist() == [t.state for t in agents_model.retail]
    assert table["n_rejected"].tolist() == [t.n_rejected for t in agents_model.retail]
    # a view writes through to the crowd's arrays, and a wrong state is refused by name
    view = model.retail[0]
    view.state = "done"
    assert crowd.state[0] == 3
    with pytest.raises(ValueError, match="state 'asleep': allowed waiting, holding"):
        view.state = "asleep"


def test_collecting_per_agent_data_is_refused_by_name():
    with pytest.raises(ValueError, match=r"output.collect_agents = True with retail.engine"):
        load("small", {"retail.engine": "arrays", "output.collect_agents": True})


def test_the_agenda_orders_a_steps_openings_and_closes_by_trader():
    """The schedule as the per-agent crowd builds it: step → (trader, 0 open / 1 close), traders
    ascending within a step."""
    model = MarketModel(load("small", {"retail.engine": "arrays", "seed": 3}))
    crowd = model.crowd
    deadline = model.exchange.calendar.deadline_step
    expect: dict[int, list] = {}
    for i in range(crowd.n):  # the per-agent engine's loop, by hand
        expect.setdefault(crowd.open_step[i], []).append((i, 0))
        c = crowd.close_step[i]
        if c is not None and c < deadline:
            expect.setdefault(c, []).append((i, 1))
    assert crowd.agenda == expect
    assert np.all(np.asarray(crowd.round_trip_lots) == 1)

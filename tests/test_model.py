"""The model: determinism, invariants every step, the harvest both ways, and theory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abm.agents import DominantHedger, MarketMaker, RetailTrader
from abm.config import RunConfig
from abm.model import MarketModel
from abm.scenarios import load

SMALL = {
    "calendar.trading_days": 12,
    "calendar.steps_per_day": 40,
    "calendar.forced_close_lead_days": 2,
    "retail.n_traders": 150,
    "retail.opening_days": 2,
    "retail.activity": 0.03,
    "retail.close_window_days": 2.0,
    "hedger.harvest_window_steps": 30,
    "market_maker.flatten_lead_steps": 30,
}


def small(**kw) -> RunConfig:
    return RunConfig().with_updates({**SMALL, **kw})


def test_one_seed_one_run():
    a = MarketModel(small(seed=11)).run()
    b = MarketModel(small(seed=11)).run()
    c = MarketModel(small(seed=12)).run()
    drop = {"wall_seconds"}
    sa = {k: v for k, v in a.summary.items() if k not in drop}
    sb = {k: v for k, v in b.summary.items() if k not in drop}
    assert sa == sb
    pd.testing.assert_frame_equal(a.timeseries, b.timeseries)
    assert not a.timeseries["futures"].equals(c.timeseries["futures"])


@pytest.mark.parametrize("regime", ["broker", "insurance_fund", "socialized", "adl"])
def test_invariants_hold_every_step_under_every_loss_regime(regime):
    # thin capital and high leverage so calls, liquidations and negative equity happen
    cfg = small(
        **{
            "clearing.loss_regime": regime,
            "clearing.check_invariants_every_step": True,
            "clearing.insurance_fund_initial": 2000.0,
            "clearing.liquidation_penalty": 0.005,
            "retail.capital_median": 8000.0,
            "retail.leverage_mode": "absolute",
            "retail.leverage_min": 6.0,
            "retail.leverage_max": 9.5,
            "retail.lots_max": 100,
            "retail.top_up_probability": 0.2,
            "spot.volatility": 0.04,
            "contract.price_limit": 0.06,
            "seed": 3,
        }
    )
    r = MarketModel(cfg).run()
    s = r.summary
    assert abs(s["ledger_residual"]) < 1e-9 * s["turnover"] + 1e-6
    assert s["n_margin_calls"] > 0 and s["n_liquidations"] > 0
    # every account is flat after expiry, and nobody is left below zero
    assert (r.accounts[["long", "short"]].to_numpy() == 0).all()
    assert (r.accounts["equity"] >= -1e-6).all()
    # each class's channels add up to its P&L, and the market channel is zero in total
    bc = r.by_class
    channels = bc.drop(columns="pnl").sum(axis=1)
    assert np.allclose(channels, bc["pnl"])
    assert abs(bc["market"].sum()) < 1e-6 * s["turnover"]


def test_mesa_structure_and_collection():
    m = MarketModel(small(**{"retail.n_traders": 20}))
    assert len(m.agents_by_type[RetailTrader]) == 20
    assert len(m.agents_by_type[DominantHedger]) == 1 and len(m.agents_by_type[MarketMaker]) == 1
    r = m.run()
    assert len(r.timeseries) == m.n_steps and r.timeseries.index[0] == 0
    assert r.agents is None
    m2 = MarketModel(small(**{"retail.n_traders": 20, "output.collect_agents": True}))
    r2 = m2.run()
    assert len(r2.agents) == m2.n_steps * 22  # 20 retail + hedger + market maker
    assert set(r2.agents["cls"]) == {"retail", "hedger", "market_maker"}


def test_direction_shares_are_exact():
    m = MarketModel(small(**{"retail.n_traders": 40, "retail.long_share": 0.75}))
    assert sum(t.direction > 0 for t in m.retail) == 30


def test_retail_is_flat_once_the_harvest_ends():
    m = MarketModel(small(seed=5))
    r = m.run()
    ts = r.timeseries
    assert m.harvest_end_step < m.n_steps
    assert (ts.loc[m.harvest_end_step :, "net_retail"] == 0).all()
    assert ts.loc[m.exchange.calendar.deadline_step - 1, "margin_retail"] > 0  # still holding
    assert r.summary["retail_open_interest_at_deadline"] > 0
    assert r.summary["forced_close_lots"] > 0


# -- the mechanism, deterministic -------------------------------------------------------------


def test_seed_example_hedger_ends_opposite_the_crowd():
    m = MarketModel(load("seed_example"))
    r = m.run()
    s = r.summary
    ts = r.timeseries
    h0 = m.exchange.harvest_start_step
    assert s["ndnp_at_harvest_start"] == 200
    assert ts.loc[h0 - 1, "net_hedger"] == -200  # after netting its 1,000 short / 800 long lock
    netting = r.events[r.events.kind == "netting"]
    assert netting["lots"].iloc[0] == 800


def test_stylized_noisy_crowd_within_five_percent_of_theory():
    # 300 traders of random size, no noise trading, nobody else to deliver: the harvest is the
    # band's walk over the sessions left (abm.theory.session_path) for the NDNP at the deadline
    cfg = load(
        "seed_example",
        {
            "retail.n_traders": 300,
            "retail.long_share": 0.8,
            "retail.lots_min": 1,
            "retail.capital_dispersion": 0.6,
            "retail.leverage_min": 1.0,
            "retail.leverage_max": 4.0,
            "retail.capital_median": 20000.0,
            "seed": 4,
        },
    )
    s = MarketModel(cfg).run().summary
    assert abs(s["ndnp_at_deadline"]) > 100
    got = s["transfer_retail_to_hedger_harvest_forced_close"]
    assert got == pytest.approx(s["theory_transfer"], rel=0.05)


# -- the mechanism, statistically -------------------------------------------------------------


def _mean_harvest(share: float, seeds=(1, 2, 3)) -> float:
    vals = [
        MarketModel(small(retail_long_share=share, seed=s))
        .run()
        .summary["transfer_retail_to_hedger_harvest_forced_close"]
        for s in seeds
    ]
    return float(np.mean(vals))


def test_transfer_rises_with_crowd_imbalance_and_balanced_crowd_yields_little():
    h = {s: _mean_harvest(s) for s in (0.1, 0.5, 0.7, 0.9)}
    assert h[0.5] < h[0.7] < h[0.9]
    assert h[0.5] < h[0.1]
    assert h[0.5] < 0.25 * h[0.9]


def test_ample_arbitrage_capacity_bounds_the_divergence_to_its_cost():
    base = {"retail_long_share": 0.9, "seed": 8, "contract.price_limit": 0.10}
    none = MarketModel(small(**base)).run().summary
    ample = (
        MarketModel(small(**base, **{"arbitrageurs.n": 2, "arbitrage_capacity": 20_000}))
        .run()
        .summary
    )
    dc = 2.0
    assert none["harvest_discount"] > 2 * dc
    # bounded by the arbitrageurs' cost, to within a tick (small's tick is 1): they rest one
    # tick inside fair − cost, and the hedger undercuts them or the last lot meets them
    assert ample["harvest_discount"] <= dc + 1.0
    assert (
        ample["transfer_retail_to_hedger_harvest_forced_close"]
        < 0.2 * none["transfer_retail_to_hedger_harvest_forced_close"]
    )


def test_bad_config_is_refused_before_running():
    from abm.config import ConfigError

    with pytest.raises(ConfigError, match="margin.rate"):
        MarketModel(RunConfig(), margin_rate=0.0)


def test_market_maker_respects_its_limit_and_is_flat_by_the_deadline():
    m = MarketModel(small(**{"market_maker.inventory_limit": 8, "seed": 21}))
    r = m.run()
    net = r.timeseries["net_market_maker"]
    # quotes never take it past the limit by more than one quote (a fill completes a quote)
    assert net.abs().max() <= 8 + 5
    deadline = m.exchange.calendar.deadline_step
    assert net.loc[deadline - 1] == 0
    assert net.abs().loc[: deadline - 40].max() > 0  # it did trade


def test_hedger_estimating_ndnp_still_harvests_the_crowd():
    known = MarketModel(small(retail_long_share=0.9, seed=6)).run().summary
    guess = (
        MarketModel(small(retail_long_share=0.9, seed=6, **{"hedger.knows_ndnp": False}))
        .run()
        .summary
    )
    assert guess["harvest_discount"] > 3.0
    assert guess["transfer_retail_to_hedger_harvest_forced_close"] == pytest.approx(
        known["transfer_retail_to_hedger_harvest_forced_close"], rel=0.3
    )


def test_agent_and_account_state_holds_python_numbers_not_numpy_scalars():
    # numpy scalars compute the same values but make every booking several times slower; the
    # retail crowd is drawn with numpy, so this guards the hand-over to the agents
    m = MarketModel(small(**{"commercials.open_interest": 100}))
    m.run()
    leaks = [
        (a.owner, k)
        for a in m.exchange.clearing.accounts
        for k in a.__slots__
        if isinstance(getattr(a, k), np.generic)
    ]
    leaks += [
        (a.owner, f"transfers.{k}")
        for a in m.exchange.clearing.accounts
        for k, v in a.transfers.items()
        if isinstance(v, np.generic)
    ]
    leaks += [
        (type(ag).__name__, k)
        for ag in m.agents
        for k, v in vars(ag).items()
        if isinstance(v, np.generic)
    ]
    assert leaks == []


def test_run_leaves_the_garbage_collector_as_it_found_it():
    # run() freezes the model's objects for speed; a finished (or failed) run must unfreeze
    # them, or every model of a sweep would stay in memory
    import gc
    import weakref

    m = MarketModel(small())
    m.run()
    assert gc.get_freeze_count() == 0
    ref = weakref.ref(m)
    del m
    gc.collect()
    assert ref() is None

    broken = MarketModel(small())
    broken.step = lambda: (_ for _ in ()).throw(RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        broken.run()
    assert gc.get_freeze_count() == 0


def test_series_collector_records_what_mesas_datacollector_records(monkeypatch):
    import mesa

    import abm.model

    cfg = small(**{"output.collect_agents": True})
    ours = MarketModel(cfg)
    ours.run()
    monkeypatch.setattr(abm.model, "SeriesCollector", mesa.DataCollector)
    ref = MarketModel(cfg)
    ref.run()
    assert type(ref.datacollector) is mesa.DataCollector
    mine = ours.datacollector.get_model_vars_dataframe()
    theirs = ref.datacollector.get_model_vars_dataframe()
    pd.testing.assert_frame_equal(mine[list(theirs.columns)], theirs)
    # the rest is the run's summary, on the last row only
    extra = [c for c in mine.columns if c not in theirs.columns]
    summary = ours.result.summary
    assert len(extra) == sum(
        v is None or isinstance(v, (int, float, str, bool)) for v in summary.values()
    )
    assert mine[extra].iloc[:-1].isna().all().all()
    pd.testing.assert_frame_equal(
        ours.datacollector.get_agent_vars_dataframe(),
        ref.datacollector.get_agent_vars_dataframe(),
    )
    assert len(ours.datacollector.get_model_vars_dataframe()) == ours.n_steps

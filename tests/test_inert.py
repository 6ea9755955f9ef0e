"""Fields with no effect are refused when set, and each rule that says a field has no effect is
true: a run with the field changed (the check bypassed) gives the same results."""

from __future__ import annotations

import pandas as pd
import pytest

from abm.config import SHORT_NAMES, ConfigError, RunConfig, inert
from abm.model import MarketModel
from abm.scenarios import load

#: (what makes the field idle, the field, another value for it)
CASES = [
    ({}, "hedger.harvest_spread", 50.0),
    ({"hedger.spread_policy": "ordinary"}, "hedger.harvest_spread", 50.0),
    ({"hedger.enabled": False}, "hedger.quote_size", 7),
    ({}, "arbitrageurs.capacity", 200_000),
    ({}, "arbitrageurs.delivery_cost", 0.5),
    ({}, "arbitrageurs.ladder_levels", 3),
    ({"market_maker.enabled": False}, "market_maker.half_spread_ticks", 4),
    ({"market_maker.deliverable": True}, "market_maker.flatten_lead_steps", 3),
    ({"commercials.activity": 0.0}, "commercials.trade_lots", 40),
    (
        {
            "commercials.open_interest": 0,
            "commercials.capacity": 0,
            "commercials.soft_capacity": 0,
            "commercials.activity": 0.0,
        },
        "commercials.cost_slope",
        0.5,
    ),
    ({}, "retail.leverage_min", 3.0),
    ({"retail.leverage_mode": "absolute"}, "retail.leverage_fraction_max", 0.9),
    ({}, "retail.ndnp_target_window_days", 3.0),
    ({"retail.trend_share": 0.0}, "retail.trend_lookback_steps", 7),
    ({}, "spot.mean_reversion", 0.5),  # small's spot is OU: changes it (control below)
    ({"spot.kind": "gbm"}, "spot.mean_reversion", 0.5),
    ({}, "spot.drift", 0.01),
    ({}, "spot.csv_resample", True),
    ({}, "discretion.band_add", 0.07),
    ({"hedger.risk_limit": None}, "risk.var_z", 1.0),
    ({"hedger.risk_limit": None, "market_maker.vol_scaled": False}, "risk.half_life_days", 1.0),
]


def bypass(base: RunConfig, field: str, value) -> RunConfig:
    """``base`` with ``field`` set, the refusal bypassed (validated all the same)."""
    data = base.model_dump()
    section, name = field.split(".")
    data[section][name] = value
    return RunConfig.model_validate(data)


def results(cfg: RunConfig, field: str) -> tuple[pd.Series, pd.DataFrame]:
    """The run's summary (without its timing and its echo of ``field``, an input) and its
    time series."""
    r = MarketModel(cfg).run()
    echo = {short for short, path in SHORT_NAMES.items() if path == field}
    s = {k: v for k, v in r.summary.items() if k != "wall_seconds" and k not in echo}
    return pd.Series(s, dtype=object), r.timeseries


def same(a: tuple[pd.Series, pd.DataFrame], b: tuple[pd.Series, pd.DataFrame]) -> bool:
    both_nan = a[0].isna() & b[0].isna()
    return bool(((a[0] == b[0]) | both_nan).all()) and a[1].equals(b[1])


@pytest.mark.slow
@pytest.mark.parametrize(("setup", "field", "value"), CASES)
def test_an_idle_field_changes_nothing_and_setting_it_is_refused(setup, field, value):
    base = load("small", {**setup, "retail.n_traders": 120, "seed": 5})
    idle = field in inert(base)
    a = results(base, field)
    b = results(bypass(base, field, value), field)
    # the rule holds both ways: what it calls idle changes nothing, what it does not, does
    assert same(a, b) is idle, (field, idle)
    if idle:
        with pytest.raises(ConfigError, match=rf"{field} = .* has no effect here: "):
            base.with_updates({field: value})
        with pytest.raises(ConfigError, match="has no effect here"):
            load("small", {**setup, field: value})
    else:
        base.with_updates({field: value})


def test_the_message_says_why_and_what_to_set():
    with pytest.raises(ConfigError) as err:
        load("one_sided", {"arbitrage_capacity": 200_000})
    msg = str(err.value)
    assert "arbitrage_capacity (arbitrageurs.capacity) = 200000" in msg
    assert "no delivery arbitrageurs (arbitrageurs.n = 0)" in msg and "arbitrageurs.n" in msg
    with pytest.raises(ConfigError, match="harvest_spread.*estimating.*fixed or competitive"):
        load("default", {"harvest_spread": 50})


def test_what_gives_a_field_its_effect_may_come_in_the_same_update():
    cfg = load("one_sided", {"arbitrageurs.n": 2, "arbitrage_capacity": 2000})
    assert cfg.arbitrageurs.capacity == 2000
    assert load("default", {"hedger.spread_policy": "fixed", "harvest_spread": 5}).hedger


def test_setting_an_idle_field_to_its_own_value_is_harmless():
    base = load("default")
    assert load("default", {"harvest_spread": base.hedger.harvest_spread}) == base


def test_switching_off_what_is_already_off_is_allowed():
    # zero, none and false switch a thing off; on a thing that is off they mislead no one
    cfg = load("default", {"arbitrage_capacity": 0, "commercials.cost_slope": 0.0})
    assert cfg.arbitrageurs.capacity == 0 and cfg.arbitrageurs.n == 0
    with pytest.raises(ConfigError, match="no effect here"):
        load("default", {"arbitrage_capacity": 1})  # any other value still is refused


def test_a_sweep_of_an_idle_field_is_refused_before_its_first_run(tmp_path):
    from abm.sweeps.spec import load_spec

    spec = tmp_path / "idle.toml"
    spec.write_text(
        'name = "idle"\nbase = "one_sided"\ndesign = "grid"\n'
        "[vary]\narbitrage_capacity = [0, 2000, 20000]\n"
    )
    with pytest.raises(ConfigError, match=r"point \{'arbitrage_capacity': 2000\}.*no effect"):
        load_spec(spec)
    spec.write_text(
        'name = "idle"\nbase = "one_sided"\ndesign = "grid"\n'
        "[set]\nharvest_spread = 9\n[vary]\nmargin_rate = [0.1, 0.2]\n"
    )
    with pytest.raises(ConfigError, match="harvest_spread.*no effect"):
        load_spec(spec)

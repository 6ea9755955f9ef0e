"""The config: every bad value is named with its field, value and what is allowed."""

import pytest

from abm.config import ConfigError, RunConfig, parse_value, validate
from abm.scenarios import data_dir, load


@pytest.mark.parametrize(
    "data, words",
    [
        ({"margin": {"rate": 1.5}}, ["margin.rate = 1.5", "less than or equal to 1"]),
        ({"margin": {"rate": 0}}, ["margin.rate = 0", "greater than 0"]),
        ({"margin": {"maintenance_ratio": 1.2}}, ["margin.maintenance_ratio = 1.2"]),
        ({"contract": {"tick_size": 0}}, ["contract.tick_size = 0", "greater than 0"]),
        ({"contract": {"price_limit": 1.5}}, ["contract.price_limit", "(0, 1)"]),
        ({"retail": {"long_share": -0.1}}, ["retail.long_share = -0.1"]),
        (
            {"calendar": {"trading_days": 10, "forced_close_lead_days": 9}},
            ["forced_close_lead_days = 9", "allowed 1..8"],
        ),
        ({"calendar": {"forced_close_lead_days": 0}}, ["calendar.forced_close_lead_days = 0"]),
        (
            {"clearing": {"loss_regime": "bailout"}},
            ["clearing.loss_regime = 'bailout'", "broker", "adl"],
        ),
        ({"retail": {"lots_min": 5, "lots_max": 2}}, ["lots_max = 2", "lots_min = 5"]),
        (
            {"margin": {"step_ups": [{"days_before_last": 99, "rate": 0.2}]}},
            ["days_before_last = 99"],
        ),
        ({"retail": {"capital": 5}}, ["retail.capital", "unknown field"]),
    ],
)
def test_bad_values_are_named(data, words):
    with pytest.raises(ConfigError) as err:
        validate(data)
    for w in words:
        assert w in str(err.value)


def test_none_words():
    # TOML has no null: 'none' sets any field that allows None
    cfg = validate({"contract": {"price_limit": "none"}, "hedger": {"enabled": False}})
    assert cfg.contract.price_limit is None
    cfg = validate({"commercials": {"open_interest": 10, "capacity": "none"}})
    assert cfg.commercials.capacity is None
    with pytest.raises(ConfigError, match="retail.n_traders"):
        validate({"retail": {"n_traders": "none"}})


def test_short_names_and_dotted_updates():
    cfg = RunConfig().with_updates(
        {
            "retail_long_share": 0.8,
            "hedger.spread_policy": "fixed",
            "hedger.harvest_spread": 4.5,
            "arbitrageurs.n": 2,
            "arbitrage_capacity": 300,
        }
    )
    assert cfg.retail.long_share == 0.8 and cfg.hedger.harvest_spread == 4.5
    assert cfg.arbitrageurs.capacity == 300
    with pytest.raises(ConfigError, match="unknown config key 'margin.rat'"):
        RunConfig().with_updates({"margin.rat": 0.1})
    with pytest.raises(ConfigError, match="margin.rate = 2"):
        RunConfig().with_updates({"margin_rate": 2})


def test_parse_value():
    assert parse_value("0.2") == 0.2 and parse_value("3") == 3 and parse_value("true") is True
    assert parse_value("adl") == "adl" and parse_value('"none"') == "none"


def test_every_shipped_scenario_loads_and_documents_itself():
    paths = sorted(data_dir("scenarios").glob("*.toml"))
    assert {p.stem for p in paths} >= {
        "default",
        "seed_example",
        "one_sided",
        "china_rebar",
        "wti_2020",
    }
    for p in paths:
        cfg = load(p.stem)
        assert cfg.name == p.stem and cfg.description
        assert p.read_text().startswith(f"# {p.stem} — ")


def test_unknown_scenario_lists_known_ones():
    with pytest.raises(ConfigError, match="known scenarios"):
        load("no_such_scenario")


def test_load_with_updates_fills_missing_sections():
    cfg = load("one_sided", {"arbitrageurs.n": 2, "seed": 9})
    assert cfg.arbitrageurs.n == 2 and cfg.seed == 9 and cfg.retail.long_share == 0.9

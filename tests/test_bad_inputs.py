"""Bad inputs get a clear error naming the field, the value and what is allowed; never a
traceback, never a silent run (issue 14). Each row: `abm run small --set ...` or another
command, and a fragment the message must contain."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from abm.cli import app

RUN_SETS = [
    ("contract.multiplier=inf", "contract.multiplier = inf"),
    ("contract.multiplier=nan", "contract.multiplier = nan"),
    ("contract.multiplier=0", "contract.multiplier"),
    ("contract.multiplier=-10", "contract.multiplier"),
    ("spot.initial=inf", "spot.initial = inf"),
    ("spot.drift=nan", "spot.drift = nan"),
    ("spot.jump_mean=nan", "spot.jump_mean = nan"),
    ("spot.volatility=-0.1", "spot.volatility"),
    ("spot.carry_rate=inf", "spot.carry_rate = inf"),
    ("spot.initial=0", "spot.initial = 0"),
    ("spot.kind=brownian", "spot.kind"),
    ("spot.kind=csv", "csv_path"),
    ("hedger.harvest_spread=inf", "hedger.harvest_spread = inf"),
    ("retail.leverage_max=inf", "retail.leverage_max = inf"),
    ("retail.close_window_days=inf", "retail.close_window_days"),
    ("retail.long_share=1.5", "retail.long_share"),
    ("retail.n_traders=-1", "retail.n_traders"),
    ("retail.n_traders=abc", "retail.n_traders"),
    ("retail.rules=nonsense", "retail.rules"),
    ("calendar.trading_days=2", "at least 3 trading days"),
    ("calendar.trading_days=0", "calendar.trading_days"),
    ("calendar.steps_per_day=0", "calendar.steps_per_day"),
    ("forced_close_lead_days=0", "forced_close_lead_days"),
    ("forced_close_lead_days=40", "allowed 1..13"),
    ("contract.tick_size=1000", "allowed tick_size <= 10"),
    ("contract.tick_size=0", "contract.tick_size"),
    ("contract.price_limit=0.001", "narrower than one tick"),
    ("contract.price_limit=-0.1", "contract.price_limit"),
    ("margin_rate=0", "margin.rate"),
    ("margin_rate=1.5", "margin.rate"),
    ("margin_rate=nan", "margin.rate = nan"),
    ("loss_regime=nobody", "clearing.loss_regime"),
    ("n_firms=0", "hedger.n_firms"),
    ("hedger.spread_policy=nonsense", "hedger.spread_policy"),
    ("hedger.spread_policy=os:path", "hedger.spread_policy"),
    ("arbitrage_capacity=-5", "arbitrageurs.capacity"),
    ("no_such_key=1", "unknown config key 'no_such_key'"),
    ("retail.no_such_field=1", "no_such_field"),
    ("seed=-1", "seed"),
    ("seed=1.5", "seed"),
]


@pytest.mark.parametrize(("setting", "fragment"), RUN_SETS, ids=[s for s, _ in RUN_SETS])
def test_a_bad_setting_is_refused_with_its_name(setting, fragment, tmp_path):
    res = CliRunner().invoke(app, ["run", "small", "--set", setting, "--out", str(tmp_path)])
    assert res.exit_code == 2, res.output
    assert fragment in res.output, res.output
    assert "Traceback" not in res.output and not any(tmp_path.iterdir())


OTHER = [
    (["run", "no_such_scenario"], "no_such_scenario"),
    (["run", "small", "--set", "novalue"], "KEY=VALUE"),
    (["sweep", "no_such_sweep"], "not found"),
    (["query", "/nonexistent", "SELECT 1"], "not a sweep's or a run's results folder"),
    (["columns", "nonsense"], "no table 'nonsense'"),
    (["app", "--port", "99999"], "allowed 1..65535"),
    (["app", "--scenario", "no_such_scenario"], "no_such_scenario"),
]


@pytest.mark.parametrize(("args", "fragment"), OTHER, ids=[" ".join(a) for a, _ in OTHER])
def test_other_bad_commands_say_what_is_wrong(args, fragment):
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert fragment in res.output, res.output

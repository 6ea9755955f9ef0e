"""Every shipped scenario runs through `abm run` and shows what its header promises."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from abm.cli import app
from abm.results import load_run

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


def run_cli(tmp_path, *args):
    res = runner.invoke(app, ["run", *args, "--out", str(tmp_path), "--json", "--no-progress"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout), load_run(tmp_path)


def test_scenarios_lists_each_with_a_line():
    res = runner.invoke(app, ["scenarios"])
    assert res.exit_code == 0
    lines = res.stdout.strip().splitlines()
    names = [ln.split()[0] for ln in lines]
    assert names == sorted(
        [
            "cascade",
            "china_rebar",
            "default",
            "default_coarse_tick",
            "one_sided",
            "seed_example",
            "small",
            "wti_2020",
            "wti_2020_spread",
        ]
    )


def test_bad_set_is_a_clear_error(tmp_path):
    res = runner.invoke(
        app, ["run", "seed_example", "--set", "margin_rat=0.2", "--out", str(tmp_path)]
    )
    assert res.exit_code == 2 and "unknown config key 'margin_rat'" in res.output
    res = runner.invoke(app, ["run", "seed_example", "--set", "margin_rate=7"])
    assert res.exit_code == 2 and "margin.rate = 7" in res.output
    res = runner.invoke(app, ["run", "seed_example", "--set", "margin_rate"])
    assert res.exit_code == 2 and "KEY=VALUE" in res.output


def test_seed_example_cli_and_saved_results(tmp_path):
    s, saved = run_cli(tmp_path, "seed_example")
    # the band walks down 100 → 90 → 81 → 73 before the hedger buys the crowd's 200 lots
    assert s["harvest_policy"] == "estimating" and s["theory_transfer"] == 200 * 27 * 10
    assert s["transfer_retail_to_hedger_harvest_forced_close"] == pytest.approx(54_000)
    fixed, _ = run_cli(
        tmp_path / "fixed",
        "seed_example",
        "--set",
        "hedger.spread_policy=fixed",
        "--set",
        "harvest_spread=5",
    )
    assert fixed["transfer_retail_to_hedger_harvest_forced_close"] == pytest.approx(10_000)
    assert saved.summary == s
    assert len(saved.timeseries) == 200 and saved.config.name == "seed_example"
    assert {"ordinary", "harvest_forced_close", "fees", "market", "pnl"} <= set(saved.by_class)
    import duckdb

    n = duckdb.sql(
        f"SELECT count(*) FROM '{tmp_path}/accounts.parquet' WHERE owner = 'retail'"
    ).fetchall()[0][0]
    assert n == 18


def test_default_and_one_sided(tmp_path):
    d, _ = run_cli(tmp_path / "d", "default")
    o, _ = run_cli(tmp_path / "o", "one_sided")
    for s in (d, o):
        assert abs(s["ledger_residual"]) < 1e-6
    # one seed each (the statistics are in tests/test_harvest.py): a 90 % long crowd is net long
    # at the deadline and is harvested below fair value
    assert o["ndnp_at_deadline"] > abs(d["ndnp_at_deadline"])
    assert o["basis_at_forced_close"] < 0 and o["harvest_discount"] > 1.0


def test_china_rebar_limits_and_margin_step_up(tmp_path):
    s, r = run_cli(tmp_path, "china_rebar")
    days = r.days
    rates = days.set_index("day")["margin_rate"]
    # the rate for the next day, set at each settlement: 8 % → 10 % → 20 %
    assert rates.iloc[0] == pytest.approx(0.08) and rates.iloc[-2] == pytest.approx(0.20)
    assert (rates.round(10) == 0.10).sum() == 20  # the month before delivery
    settle = days["settlement"].to_numpy()
    assert np.all(np.abs(np.diff(settle)) <= 0.03 * settle[:-1] + 1e-9)  # ±3 % limit
    assert s["n_margin_calls"] > 0
    deadline_day = 60 - 1 - 10
    ts = r.timeseries
    assert ts.loc[(deadline_day + 1) * 50 - 1, "net_retail"] == 0


def test_wti_2020_negative_prices_and_bad_debt(tmp_path):
    s, r = run_cli(tmp_path, "wti_2020")
    assert 0.20 <= s["ndnp_share_of_open_interest"] <= 0.30
    forced_price = s["basis_at_forced_close"] + r.timeseries["spot"].iloc[19 * 100 - 2]
    assert forced_price < 0  # the crowd leaves below zero
    assert s["n_negative_equity"] > 0 and s["bad_debt_broker"] > 0
    assert s["bad_debt"] == pytest.approx(s["bad_debt_broker"])
    assert abs(s["ledger_residual"]) < 1e-9 * s["turnover"] + 1e-6


def test_help_shows_flags_and_bracketed_words_as_written():
    out = CliRunner().invoke(app, ["sweep", "--help"], terminal_width=100).output
    assert "[quick]" in out and "<bool>" not in out and "--serial" in out


def test_a_run_imports_no_sweep_dashboard_or_plotting_stack():
    # start-up: Dask, DuckDB, seaborn, matplotlib, Solara and SALib load only where used
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from abm.cli import app\n"
        "import tempfile\n"
        "r = CliRunner().invoke(app, ['run', 'small', '--no-progress', '--json', '--out', "
        "tempfile.mkdtemp()])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = ('dask', 'distributed', 'duckdb', 'seaborn', 'matplotlib', 'solara', 'SALib')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_default_is_the_coarse_tick_market_with_its_quotes_rescaled_to_the_finer_tick():
    """Everything but the tick and the fields quoted in ticks is the old default's
    (default_coarse_tick); those fields are its values in price units (20 × 0.1 = 2 × 1.0 ...);
    attention is the stored fit of default_attention (6.60), rounded to the first decimal; and
    one_sided is default with 90 % of the crowd long."""
    import pandas as pd

    from abm.scenarios import load

    one = load("one_sided").model_dump()
    d = load("default_coarse_tick").model_dump()
    f = load("default").model_dump()
    assert one["retail"].pop("long_share") == 0.9 and f["retail"]["long_share"] == 0.5
    assert {k: v for k, v in one.items() if k not in ("name", "description", "retail")} == {
        k: v for k, v in f.items() if k not in ("name", "description", "retail")
    }
    assert {k: v for k, v in one["retail"].items()} == {
        k: v for k, v in f["retail"].items() if k != "long_share"
    }
    in_ticks = [
        ("hedger", "quote_half_spread_ticks"),
        ("hedger", "risk_widen_ticks"),
        ("market_maker", "half_spread_ticks"),
        ("market_maker", "skew_ticks_per_lot"),
        ("retail", "limit_offset_ticks"),
    ]
    td, tf = d["contract"]["tick_size"], f["contract"]["tick_size"]
    assert (td, tf) == (1.0, 0.1)
    for section, key in in_ticks:
        assert f[section][key] * tf == pytest.approx(d[section][key] * td), key
    fit = pd.read_parquet(ROOT / "results/paper/default_attention/best.parquet")["estimate"][0]
    assert f["retail"]["attention"] == round(fit, 1) == 6.6
    for section, key in [*in_ticks, ("contract", "tick_size"), ("retail", "attention")]:
        f[section].pop(key), d[section].pop(key)
    for k in ("name", "description"):
        f.pop(k), d.pop(k)
    assert f == d


def test_facts_at_the_mid_every_five_steps_are_the_runs_own_mid_sampled_by_hand():
    """`abm facts --series mid --horizon 5` (ODD §8's horizon): its mean over seeds 1-2 is the
    mean of the stylized facts of each run's mid before the harvest window, sampled at steps
    0, 5, 10, ... by hand; a series that is not a price column is refused by name."""
    from abm.build import harvest_start_step
    from abm.metrics import stylized_facts
    from abm.model import MarketModel
    from abm.scenarios import load

    res = runner.invoke(
        app, ["facts", "small", "--seeds", "2", "--series", "mid", "--horizon", "5"]
    )
    assert res.exit_code == 0, res.output
    shown = {ln.split()[0]: ln.split()[1] for ln in res.stdout.splitlines()[2:]}
    kurt = []
    for seed in (1, 2):
        cfg = load("small", {"seed": seed})
        mid = MarketModel(cfg).run().timeseries["mid"].to_numpy()[: harvest_start_step(cfg)]
        kurt.append(stylized_facts(mid[[i for i in range(0, len(mid), 5)]])["excess_kurtosis"])
    assert float(shown["excess_kurtosis"]) == pytest.approx(np.mean(kurt), rel=2e-3)
    bad = runner.invoke(app, ["facts", "small", "--seeds", "1", "--series", "last"])
    assert bad.exit_code == 2 and "series = 'last'" in bad.output

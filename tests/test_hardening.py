"""Hardening, round two (issue 21): every reproducer of the issue as a regression test. Run
identities belong to their spec, every stored file is verified, the accounting holds at every
scale, the theory is bounded at any tick, and every error is a message."""

from __future__ import annotations

import errno
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from abm import theory
from abm.cli import app, describe_os_error, main
from abm.config import ConfigError
from abm.delivery import DeliveryCurve
from abm.metrics import UNEXPLAINED
from abm.model import MarketModel
from abm.results import query
from abm.scenarios import load
from abm.sweeps.runner import run_sweep
from abm.sweeps.spec import load_spec

runner = CliRunner()

SPEC = """
name = "mix"
base = "small"
design = "grid"
replicates = 2
master_seed = 9
keep = "{keep}"

[set]
"retail.n_traders" = {n}
"calendar.trading_days" = 8

[vary]
retail_long_share = [0.5, 0.9]
margin_rate = [0.1, 0.2]
"""


def spec_file(tmp_path: Path, name: str, n: int = 40, keep: str = "timeseries") -> Path:
    p = tmp_path / f"{name}.toml"
    p.write_text(SPEC.format(n=n, keep=keep))
    return p


# -- 1. run identity is the spec's ----------------------------------------------------------


def test_a_run_file_of_another_spec_is_not_counted(tmp_path):
    # two specs differing only in [set] share run ids; a file of the other one must not count
    a = load_spec(spec_file(tmp_path, "a", n=40))
    b = load_spec(spec_file(tmp_path, "b", n=60))
    assert [r.run_id for r in a.runs()] == [r.run_id for r in b.runs()]
    out_a, out_b = tmp_path / "A", tmp_path / "B"
    first = a.runs()[0].run_id
    run_sweep(a, out_a, serial=True, progress=False, only=[first])
    run_sweep(b, out_b, serial=True, progress=False, only=[first])
    # the other spec's per-run files slip into this folder (a copy, a shared disk)
    for sub in ("runs", "timeseries"):
        src = out_a / "mix" / sub / f"{first}.parquet"
        (out_b / "mix" / sub / src.name).write_bytes(src.read_bytes())
    rep = run_sweep(b, out_b, serial=True, progress=False, resume=True)
    assert rep.done == b.n_runs() and rep.skipped == 0  # the foreign file was not counted
    runs = query(out_b / "mix", "SELECT * FROM runs")
    assert len(runs) == b.n_runs() and set(runs["n_retail"]) == {60}
    assert set(runs["spec_hash"]) == {b.digest()}
    ts = query(out_b / "mix", "SELECT DISTINCT run_id FROM timeseries")
    assert len(ts) == b.n_runs()  # every run has its series
    assert (out_b / "mix" / "corrupt" / f"runs-{first}.parquet").exists()


def test_a_folder_without_a_manifest_is_not_adopted(tmp_path):
    a = load_spec(spec_file(tmp_path, "a", n=40, keep="summary"))
    b = load_spec(spec_file(tmp_path, "b", n=60, keep="summary"))
    run_sweep(a, tmp_path, serial=True, progress=False, only=[a.runs()[0].run_id])
    (tmp_path / "mix" / "manifest.json").unlink()
    with pytest.raises(FileExistsError, match="no manifest.json"):
        run_sweep(b, tmp_path, serial=True, progress=False, resume=True)
    with pytest.raises(FileExistsError, match="not adopted"):
        run_sweep(a, tmp_path, serial=True, progress=False, resume=True)


# -- 2. every stored file verified -----------------------------------------------------------


@pytest.mark.parametrize("damage", ["empty", "missing", "other_run", "short"])
def test_a_damaged_timeseries_file_is_set_aside_and_run_again(tmp_path, damage):
    sp = load_spec(spec_file(tmp_path, "t", keep="timeseries"))
    ids = [r.run_id for r in sp.runs()[:2]]
    run_sweep(sp, tmp_path, serial=True, progress=False, only=ids)
    ts = tmp_path / "mix" / "timeseries" / f"{ids[0]}.parquet"
    if damage == "empty":
        ts.write_bytes(b"")
    elif damage == "missing":
        ts.unlink()
    elif damage == "short":  # whole as a file, but half the run's steps
        df = pd.read_parquet(ts)
        df.iloc[: len(df) // 2].to_parquet(ts, index=False)
    else:
        ts.write_bytes((ts.parent / f"{ids[1]}.parquet").read_bytes())
    rep = run_sweep(sp, tmp_path, serial=True, progress=False, resume=True)
    assert rep.done == sp.n_runs() - 1 and rep.skipped == 1
    # the sweep is whole and queryable: every run once, every run's series whole
    runs = query(tmp_path / "mix", "SELECT run_id FROM runs")
    assert sorted(runs["run_id"]) == sorted(r.run_id for r in sp.runs())
    steps = query(tmp_path / "mix", "SELECT run_id, count(*) AS n FROM timeseries GROUP BY ALL")
    assert len(steps) == sp.n_runs() and steps["n"].nunique() == 1


def test_a_truncated_runs_parquet_is_repaired(tmp_path):
    sp = load_spec(spec_file(tmp_path, "r", keep="summary"))
    run_sweep(sp, tmp_path, serial=True, progress=False)
    merged = tmp_path / "mix" / "runs.parquet"
    timing = ["run_seconds", "wall_seconds"]
    whole = pd.read_parquet(merged).drop(columns=timing).sort_values("run_id")
    merged.write_bytes(merged.read_bytes()[:200])
    res = runner.invoke(app, ["query", str(tmp_path / "mix"), "SELECT count(*) FROM runs"])
    assert res.exit_code == 2 and "runs.parquet: unreadable" in res.output
    assert "--repair" in res.output
    with pytest.raises(ValueError, match="--repair"):
        run_sweep(sp, tmp_path, serial=True, progress=False, resume=True)
    rep = run_sweep(sp, tmp_path, serial=True, progress=False, repair=True)
    assert rep.done == sp.n_runs()
    again = pd.read_parquet(merged).drop(columns=timing).sort_values("run_id")
    pd.testing.assert_frame_equal(again.reset_index(drop=True), whole.reset_index(drop=True))
    assert (tmp_path / "mix" / "corrupt" / "mix-runs.parquet").exists()


def test_a_damaged_manifest_or_lock_names_the_file(tmp_path):
    sp = load_spec(spec_file(tmp_path, "m", keep="summary"))
    run_sweep(sp, tmp_path, serial=True, progress=False, only=[sp.runs()[0].run_id])
    manifest = tmp_path / "mix" / "manifest.json"
    manifest.write_text(manifest.read_text()[:100])
    with pytest.raises(ValueError, match=r"manifest.json: damaged .* restore it"):
        run_sweep(sp, tmp_path, serial=True, progress=False, resume=True)
    manifest.unlink()
    lock = tmp_path / "mix" / ".lock"
    lock.write_text("garbage")
    with pytest.raises(FileExistsError, match=r"\.lock: a lock file that does not say who"):
        run_sweep(sp, tmp_path, serial=True, progress=False, resume=True)


# -- 3. accounting at every scale, and no hang -----------------------------------------------


def test_adl_with_intraday_checks_keeps_its_close_orders_in_step():
    # the issue's reproducer: "account 192 (retail) has close orders for more lots than it
    # holds" at a day's end; ADL closed lots its resting close orders still promised
    cfg = load(
        "small",
        {
            "margin.rate": 0.01,
            "margin.intraday_check_steps": 41,
            "clearing.loss_regime": "adl",
            "clearing.check_invariants_every_step": True,
            "seed": 676464494230196283,
        },
    )
    s = MarketModel(cfg).run().summary
    assert s["n_liquidations"] > 0
    assert abs(s["ledger_residual"]) < 1e-9 * s["turnover"] + 1e-6 * 10


def test_large_balances_do_not_break_the_ledger_on_rounding():
    # a 5e11 deposit in a market trading a few thousand: rounding of the balances alone used
    # to exceed a tolerance scaled by turnover only
    cfg = load(
        "small",
        {
            "hedger.capital": 5e11,
            "contract.tick_size": 0.0001,
            "contract.multiplier": 1.0,
            "spot.initial": 1.0,
            "clearing.check_invariants_every_step": True,
        },
    )
    model = MarketModel(cfg)
    s = model.run().summary
    ch = model.exchange.clearing
    # the bound: 1e-9 of what passed through and what is held; float64 carries 1.1e-16 per
    # operation, so a residual near the bound would mean 10^7 roundings of the largest amount
    assert ch.balances() > 5e11
    assert abs(s["ledger_residual"]) <= 1e-9 * (s["turnover"] + ch.balances())
    # and the check still sees a real error: a cent moved out of one account
    ch.accounts[0].cash -= 1e4
    with pytest.raises(Exception, match="ledger residual|reconcile"):
        ch.check_invariants(model.exchange.settle_price)


def _full_grid_harvest(q, supply, costs, tick, max_discount, offset):
    """The reference: best responses on every grid point (the pre-issue-21 solver)."""
    top = max(0, math.floor((max_discount - offset) / tick + 1e-9))
    grid = offset + np.arange(top + 1) * tick
    s = supply(grid)
    x, at = np.zeros(len(costs)), np.zeros(len(costs), int)
    for _ in range(200):
        moved = False
        for i in range(len(costs)):
            xi = np.maximum(q - (x.sum() - x[i]) - s, 0.0)
            k = int(np.argmax(xi * (grid + costs[i])))
            moved |= bool(xi[k] != x[i] or k != at[i])
            x[i], at[i] = xi[k], k
        if not moved:
            break
    k = int(at[x > 0].max()) if (x > 0).any() else int(np.searchsorted(s >= q, True))
    return float(grid[min(k, top)]), list(x)


def test_the_theory_searches_only_where_the_supply_steps():
    rng = np.random.default_rng(5)
    for _ in range(300):
        tick = float(rng.choice([1.0, 0.1, 0.01]))
        curves = []
        for _ in range(int(rng.integers(1, 3))):
            soft = int(rng.choice([0, 20, 200]))
            cap = [None, 100, 2000][int(rng.integers(0, 3))]
            curve = DeliveryCurve(
                cost=float(rng.choice([0.0, 1.0, 2.5])),
                soft=soft,
                slope=float(rng.choice([0.0, 0.02, 0.5])),
                capacity=None if cap is None else max(cap, soft),
            )
            curves.append((curve, int(rng.choice([0, 10]))))
        supply = theory.fringe_supply(curves, tick)
        q = float(rng.choice([5, 100, 800]))
        costs = [float(c) for c in rng.choice([0.0, 1.0, 2.0], size=int(rng.integers(1, 4)))]
        cap, offset = float(rng.choice([3.0, 12.0, 40.0])), float(rng.choice([0.0, 0.3])) * tick
        h = theory.solve_harvest(q, supply, costs, 10.0, tick, cap, offset=offset)
        d, x = _full_grid_harvest(q, supply, costs, tick, cap, offset)
        assert (h.discount, h.lots_by_firm) == (d, x)


def test_a_tiny_tick_does_not_make_the_theory_hang():
    # 3e7 grid points used to take 20 s and 1.65 GB; the steps of the supply are few
    evaluated = []
    curve = DeliveryCurve(cost=2.0, soft=100, slope=0.01, capacity=None)
    base = theory.fringe_supply([(curve, 0)], 0.0001)

    def supply(d):
        evaluated.append(np.size(d))
        return base(d)

    t0 = time.perf_counter()
    h = theory.solve_harvest(500.0, supply, [1.0], 10.0, 0.0001, 2999.0, offset=0.0)
    assert time.perf_counter() - t0 < 10
    assert sum(evaluated) < 200_000  # not the 3e7 grid
    assert h.lots_to_fringe + sum(h.lots_by_firm) >= 500 - 1e-9
    for updates in ({}, {"contract.price_limit": 0.5}):
        cfg = load("small", {"contract.tick_size": 0.0001, "spot.initial": 3000.0, **updates})
        t0 = time.perf_counter()
        s = MarketModel(cfg).run().summary
        assert time.perf_counter() - t0 < 60 and math.isfinite(s["theory_transfer"])


def test_every_nan_in_a_summary_is_explained():
    # no crowd: no NDNP, no forced close, no harvest price
    s = MarketModel(load("small", {"retail.n_traders": 0})).run().summary
    nan = [k for k, v in s.items() if isinstance(v, float) and v != v]
    assert "theory_divergence" in nan and "harvest_discount" in nan
    for k in nan:
        assert f"{k}:" in s["notes"]
    assert UNEXPLAINED not in s["notes"]
    assert "the NDNP at the deadline is 0" in s["notes"]


# -- 5. every error a message ----------------------------------------------------------------


@pytest.mark.parametrize(
    "setting, words",
    [
        ("contract.fee_per_lot=1e308", ["contract.fee_per_lot = 1e+308", "allowed below"]),
        ("spot.initial=-10", ["spot.initial = -10.0", "price must be positive"]),
    ],
)
def test_bad_scales_are_refused_by_name(setting, words, tmp_path):
    res = runner.invoke(app, ["run", "small", "--set", setting, "--out", str(tmp_path)])
    assert res.exit_code == 2
    for w in words:
        assert w in res.output


def test_an_unknown_figure_is_an_error(tmp_path):
    res = runner.invoke(app, ["figures", "results/paper", "--out", str(tmp_path), "--only", "F99"])
    assert res.exit_code == 2 and "no such figure" in res.output


def test_an_order_of_an_unknown_account_is_rejected():
    model = MarketModel(load("small"))
    book = model.exchange.book
    r = book.submit(99_999, 1, 5, 100, "limit")
    assert r.status == "rejected" and "no such account" in r.reason
    assert not book.resting  # nothing rests to trip a real account later
    ok = book.submit(model.hedger.account.id, 1, 1, 100, "limit")
    assert ok.status != "rejected"


def test_plugins_are_checked_against_what_they_must_be():
    with pytest.raises(ConfigError, match=r"agents\.0\.params = \{'bogus': 3\}.*parameters"):
        load(
            "small",
            {"agents": [{"class": "tests.test_extend:BuyAndHold", "n": 1, "params": {"bogus": 3}}]},
        )
    with pytest.raises(ConfigError, match="has no decide"):
        load("small", {"hedger.spread_policy": "collections:OrderedDict"})
    with pytest.raises(ConfigError, match="cannot be made without arguments"):
        load("small", {"hedger.spread_policy": "tests.test_hardening:NeedsArgs"})


class NeedsArgs:
    def __init__(self, level):
        self.level = level

    def decide(self, view):  # pragma: no cover - never made
        return None


@pytest.mark.parametrize(
    "rows, words",
    [
        (["2020-01-02,10", "2020-01-02,11", "2020-01-03,12"], ["same date"]),
        (["2020-01-02,10", "2020-01-01,11", "2020-01-03,12"], ["comes before", "sort"]),
        (["2020-01-02,10", "soon,11", "2020-01-03,12"], ["'soon'", "not a date"]),
    ],
)
def test_a_spot_csv_time_column_is_checked(tmp_path, rows, words):
    f = tmp_path / "spot.csv"
    f.write_text("date,spot\n" + "\n".join(rows) + "\n")
    cfg = load("small", {"spot.kind": "csv", "spot.csv_path": str(f), "spot.csv_resample": True})
    with pytest.raises(ValueError) as err:
        MarketModel(cfg)
    for w in words:
        assert w in str(err.value)


def test_a_crowd_too_large_for_the_machine_is_refused(monkeypatch):
    import psutil

    class Small:
        available = 2 * 2**30  # 2 GB

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Small())
    cfg = load("small", {"retail.n_traders": 1_000_000})
    with pytest.raises(ConfigError, match=r"retail.n_traders = 1,000,000: .* needs about 3\.5 GB"):
        MarketModel(cfg)
    monkeypatch.setenv("ABM_MEMORY_CHECK", "0")
    with pytest.raises(ZeroDivisionError):  # past the check: it builds (stopped here at once)
        monkeypatch.setattr("abm.build.participants", lambda *a: 1 / 0)
        MarketModel(cfg)


def test_query_takes_any_path_and_refuses_empty_sql(tmp_path):
    odd = tmp_path / "it's [a] *run*"
    res = runner.invoke(app, ["run", "small", "--out", str(odd), "--no-progress", "--json"])
    assert res.exit_code == 0, res.output
    n = query(odd, "SELECT count(*) AS n FROM timeseries")["n"].iloc[0]
    assert n == pd.read_parquet(odd / "timeseries.parquet").shape[0]
    with pytest.raises(ValueError, match="no SQL given"):
        query(odd, "   ")


def test_os_errors_are_one_line_messages(tmp_path, monkeypatch, capsys):
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.parquet"))
    assert "disk is full" in describe_os_error(full) and "x.parquet" in describe_os_error(full)
    # a path through a file: ENOTDIR from the sweep, one line, exit 2
    f = tmp_path / "a_file"
    f.write_text("x")
    monkeypatch.setattr(
        sys, "argv", ["abm", "sweep", "imbalance_x_margin", "--quick", "--out", str(f / "under")]
    )
    with pytest.raises(SystemExit) as ended:
        main()
    assert ended.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err


def test_a_full_disk_during_save_leaves_no_temporary(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    real = pq.write_table

    def half_then_full(table, where, **kw):
        Path(where).write_bytes(b"PAR1 half")
        raise OSError(errno.ENOSPC, "No space left on device", str(where))

    r = MarketModel(load("small")).run()
    monkeypatch.setattr(pq, "write_table", half_then_full)
    with pytest.raises(OSError):
        r.save(tmp_path / "run")
    monkeypatch.setattr(pq, "write_table", real)
    assert not list((tmp_path / "run").glob(".*.tmp"))
    assert not (tmp_path / "run" / "summary.json").exists()  # never reads as whole


# -- a folder holds runs of one resolved base ----------------------------------------------


def test_a_changed_base_scenario_is_refused_and_a_legacy_folder_adopted_only_by_hand(tmp_path):
    """The spec names its base scenario, so its hash does not see the scenario's file change:
    the base's resolved config is recorded in the manifest, and a resume after the scenario
    changed is refused before any run (the default market's switch to the fine tick would
    otherwise have added fine-tick runs to a coarse-tick folder). A folder written before the
    base was recorded is refused while it holds results, and adopted when its owner writes the
    hash the message gives."""
    import json

    from abm.sweeps.spec import load_spec

    scenario = tmp_path / "mine.toml"
    scenario.write_text('name = "mine"\n\n[contract]\ntick_size = 1.0\n')
    spec_path = tmp_path / "mix.toml"
    spec_path.write_text(SPEC.format(n=40, keep="summary").replace('"small"', f'"{scenario}"'))
    spec = load_spec(spec_path)
    first = spec.runs()[0].run_id
    run_sweep(spec, tmp_path / "out", serial=True, progress=False, only=[first])
    folder = tmp_path / "out" / "mix"
    manifest = json.loads((folder / "manifest.json").read_text())
    coarse = spec.base_digest()  # read from the scenario's file as it is now
    assert manifest["base_config_hash"] == coarse

    scenario.write_text('name = "mine"\n\n[contract]\ntick_size = 0.1\n')  # the base changes
    changed = load_spec(spec_path)
    assert changed.digest() == spec.digest() and changed.base_digest() != coarse
    with pytest.raises(ValueError, match="base config with hash"):
        run_sweep(changed, tmp_path / "out", serial=True, progress=False, resume=True)
    assert [p.stem for p in (folder / "runs").glob("*.parquet")] == [first]  # nothing added

    # a folder from before the base was recorded: refused while it holds results ...
    scenario.write_text('name = "mine"\n\n[contract]\ntick_size = 1.0\n')
    del manifest["base_config_hash"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="before the base config was recorded") as err:
        run_sweep(spec, tmp_path / "out", serial=True, progress=False, resume=True)
    assert coarse in str(err.value)
    # ... and adopted once its owner records the hash, as the message says
    (folder / "manifest.json").write_text(json.dumps({**manifest, "base_config_hash": coarse}))
    rep = run_sweep(spec, tmp_path / "out", serial=True, progress=False, resume=True)
    assert (rep.skipped, rep.done) == (1, spec.n_runs() - 1)  # its run kept, the rest run

"""The results store never lies (issue 14): one spec per folder, one writer per folder, damaged
files re-run rather than counted, temporaries swept, clear refusals from the sweep CLI, and a
run cut short never reads as whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abm.cli import app
from abm.config import ConfigError
from abm.model import MarketModel
from abm.results import load_run, query
from abm.scenarios import load
from abm.sweeps.runner import SweepStore, run_sweep
from abm.sweeps.spec import load_spec


@pytest.fixture
def spec():
    return load_spec("imbalance_x_margin", quick=True)


def _two(spec):
    return [r.run_id for r in spec.runs()[:2]]


def test_a_live_lock_stops_a_second_writer_and_a_stale_one_is_taken_over(spec, tmp_path):
    root = tmp_path / spec.name
    root.mkdir()
    lock = root / ".lock"
    import socket

    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": "t"}))
    with pytest.raises(FileExistsError, match=rf"in use by another sweep \(pid {os.getpid()}"):
        run_sweep(spec, tmp_path, serial=True, quick=True, progress=False, only=_two(spec)[:1])
    # a dead owner on this host: its lock is stale
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "since": "t"}))
    rep = run_sweep(spec, tmp_path, serial=True, quick=True, progress=False, only=_two(spec)[:1])
    assert rep.done == 1 and not lock.exists()  # released when done


def test_a_truncated_run_file_is_run_again_not_counted(spec, tmp_path):
    ids = _two(spec)
    run_sweep(spec, tmp_path, serial=True, quick=True, progress=False, only=ids)
    store = SweepStore(tmp_path / spec.name)
    f = store.runs_dir / f"{ids[0]}.parquet"
    f.write_bytes(f.read_bytes()[:40])  # a kill or a full disk mid-write
    (store.runs_dir / f".{ids[1]}.parquet.999.tmp").write_bytes(b"half")
    assert store.done_ids() == {ids[1]}  # verified: the damaged file does not count
    assert (store.root / "corrupt" / f"runs-{ids[0]}.parquet").exists()
    rep = run_sweep(spec, tmp_path, serial=True, quick=True, resume=True, progress=False)
    assert rep.skipped == 1 and rep.done == rep.total - 1
    runs = query(store.root, "SELECT run_id FROM runs")
    assert sorted(runs["run_id"]) == sorted(r.run_id for r in spec.runs())  # each once
    assert not list(store.root.rglob(".*.tmp"))  # temporaries swept


def test_a_run_file_naming_another_run_is_not_counted(spec, tmp_path):
    a, b = _two(spec)
    run_sweep(spec, tmp_path, serial=True, quick=True, progress=False, only=[a])
    store = SweepStore(tmp_path / spec.name)
    os.replace(store.runs_dir / f"{a}.parquet", store.runs_dir / f"{b}.parquet")
    assert store.done_ids() == set()


def test_sweep_cli_refusals(spec, tmp_path):
    r = CliRunner()
    res = r.invoke(app, ["sweep", "imbalance_x_margin", "--quick", "--workers", "0"])
    assert res.exit_code == 2 and "--workers" in res.output
    res = r.invoke(app, ["sweep", "imbalance_x_margin", "--quick", "--workers", "-2"])
    assert res.exit_code == 2
    res = r.invoke(
        app,
        [
            "sweep",
            "imbalance_x_margin",
            "--quick",
            "--address",
            "tcp://127.0.0.1:9",
            "--out",
            str(tmp_path),
            "--no-progress",
        ],
    )
    assert res.exit_code == 2 and "no Dask scheduler answers there" in res.output
    big = tmp_path / "big.toml"
    big.write_text(
        'name = "big"\nbase = "small"\nreplicates = 10\n[vary]\n'
        f"margin_rate = {[round(0.05 + i * 1e-4, 6) for i in range(500)]}\n"
        f"retail_long_share = {[round(i / 1000, 4) for i in range(1000)]}\n"
    )
    res = r.invoke(app, ["sweep", str(big), "--out", str(tmp_path), "--serial"])
    assert res.exit_code == 2 and "expands to 5,000,000 runs" in res.output
    assert not (tmp_path / "big").exists()


def test_a_grid_combination_the_config_refuses_is_caught_before_any_run(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "bad"\nbase = "small"\n[vary]\nforced_close_lead_days = [1, 13]\n'
        '"calendar.trading_days" = [15, 10]\n'
    )
    with pytest.raises(ConfigError, match=r"forced_close_lead_days.: 13.*trading_days.: 10"):
        load_spec(bad)


def test_a_run_cut_short_never_reads_as_whole(tmp_path):
    r = MarketModel(load("small")).run()
    out = r.save(tmp_path / "run")
    assert load_run(out).summary["seed"] == r.summary["seed"]
    (out / "accounts.parquet").unlink()  # as a full disk leaves it, summary written earlier
    with pytest.raises(FileNotFoundError, match="incomplete run.*accounts.parquet"):
        load_run(out)
    # saving again into the folder, and dying before the end, leaves no summary at all
    (out / "summary.json").write_text("{}")
    import abm.results as results

    def die(*a, **k):
        raise OSError(28, "No space left on device")

    orig = results.atomic_write_parquet
    results.atomic_write_parquet = die
    try:
        with pytest.raises(OSError):
            r.save(out)
    finally:
        results.atomic_write_parquet = orig
    assert not (out / "summary.json").exists()
    with pytest.raises(FileNotFoundError, match="no summary.json"):
        load_run(out)
    assert Path(out).is_dir()


def test_two_sweeps_started_at_once_on_one_folder_never_mix(tmp_path):
    abm = Path(sys.executable).parent / "abm"
    args = [
        str(abm),
        "sweep",
        "imbalance_x_margin",
        "--quick",
        "--serial",
        "--no-progress",
        "--out",
        str(tmp_path),
    ]
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    procs = [
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs  # one ran; the other was refused with a reason
    refused = outs[[p.returncode for p in procs].index(2)]
    assert "in use by another sweep" in refused or "already holds results" in refused
    spec = load_spec("imbalance_x_margin", quick=True)
    runs = query(tmp_path / "imbalance_x_margin-quick", "SELECT run_id FROM runs")
    assert sorted(runs["run_id"]) == sorted(r.run_id for r in spec.runs())


def test_a_worker_frees_finished_models_however_long_the_sweep(monkeypatch):
    """Each finished model is held by reference cycles (agents point at their model); a worker
    that never collected them grew ~1 MB a run. With the automatic collector off, every model
    must still be gone after GC_EVERY runs of `execute`."""
    import gc
    import weakref

    from abm.model import MarketModel
    from abm.scenarios import load
    from abm.sweeps import runner

    alive: list[weakref.ref] = []
    init = MarketModel.__init__

    def tracked(self, *a, **kw):
        init(self, *a, **kw)
        alive.append(weakref.ref(self))

    monkeypatch.setattr(MarketModel, "__init__", tracked)
    monkeypatch.setattr(runner, "_runs_since_collect", 0)
    base = load("seed_example").model_dump()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for seed in range(runner.GC_EVERY):
            out = runner.execute(base, {}, seed, "summary")
            assert out["error"] is None, out["error"]
        assert len(alive) == runner.GC_EVERY
        assert sum(r() is not None for r in alive) == 0
    finally:
        if was_enabled:
            gc.enable()

"""Provenance and no overwrites (issue 13): every run and sweep says which code, packages,
config and overrides made it; two runs of one scenario keep both results; a quick sweep has a
folder of its own; a folder holds one spec."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abm.cli import app
from abm.provenance import REPO, git_state
from abm.results import load_run
from abm.sweeps.runner import run_sweep
from abm.sweeps.spec import load_spec


def test_two_runs_of_one_scenario_keep_both(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner()
    a = r.invoke(app, ["run", "small", "--no-progress", "--json"])
    b = r.invoke(app, ["run", "small", "--seed", "7", "--set", "margin_rate=0.2", "--json"])
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    root = tmp_path / "results" / "runs" / "small"
    runs = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())
    assert len(runs) == 2
    seeds = sorted(json.loads((p / "summary.json").read_text())["seed"] for p in runs)
    assert seeds == [7, 42]
    # the run with overrides is named by them and leaves `latest` at the plain scenario
    (changed,) = [p for p in runs if "-set-" in p.name]
    assert changed.name.split("-set-")[0].endswith("seed7") and len(changed.name) > 30
    assert (root / "latest").resolve().name.endswith("seed42")
    c = r.invoke(app, ["run", "small", "--seed", "3", "--json"])  # a seed alone moves it
    assert c.exit_code == 0 and (root / "latest").resolve().name.endswith("seed3")
    # the same overrides, spelled otherwise, give the same name
    d = r.invoke(app, ["run", "small", "--seed", "7", "--set", "margin.rate=0.2", "--json"])
    assert d.exit_code == 0
    tags = {p.name.split("-set-")[1][:8] for p in root.iterdir() if "-set-" in p.name}
    assert len(tags) == 1
    prov = load_run(changed).provenance
    assert prov["overrides"] == {"margin_rate": 0.2, "seed": 7}
    assert prov["config"]["margin"]["rate"] == 0.2 and prov["config"]["seed"] == 7
    assert prov["versions"]["mesa"].startswith("3.") and prov["versions"]["python"]
    assert isinstance(prov["command"], list)  # sys.argv: here, pytest's


def test_git_state_names_the_commit_and_sees_a_dirty_tree(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }

    def git(*a):
        return subprocess.run(
            ["git", "-C", str(repo), *a], env=env, check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q")
    (repo / "f.txt").write_text("1")
    git("add", "f.txt")
    git("commit", "-qm", "one")
    head = git("rev-parse", "HEAD")
    assert git_state(repo) == {"commit": head, "dirty": False}
    (repo / "f.txt").write_text("2")
    git_state.cache_clear()
    assert git_state(repo) == {"commit": head, "dirty": True}
    git_state.cache_clear()
    outside = git_state(tmp_path / "nowhere")
    assert outside["commit"] is None and outside["git_error"]
    git_state.cache_clear()
    assert git_state(REPO)["commit"] is None or len(git_state(REPO)["commit"]) == 40


def test_quick_sweeps_have_a_folder_of_their_own(tmp_path):
    r = CliRunner()
    quick = r.invoke(
        app,
        [
            "sweep",
            "imbalance_x_margin",
            "--quick",
            "--serial",
            "--out",
            str(tmp_path),
            "--no-progress",
        ],
    )
    assert quick.exit_code == 0, quick.output
    assert (tmp_path / "imbalance_x_margin-quick" / "manifest.json").exists()
    assert not (tmp_path / "imbalance_x_margin").exists()
    man = json.loads((tmp_path / "imbalance_x_margin-quick" / "manifest.json").read_text())
    assert man["quick"] is True and "versions" in man["provenance"]


def test_a_folder_holds_one_spec_in_every_mode(tmp_path):
    spec = load_spec("imbalance_x_margin", quick=True)
    run_sweep(spec, tmp_path, serial=True, quick=True, progress=False, only=[spec.runs()[0].run_id])
    full = load_spec("imbalance_x_margin")
    for kw in ({}, {"resume": True}, {"retry_failed": True}):
        with pytest.raises(ValueError, match="A folder holds one spec"):
            run_sweep(full, tmp_path, serial=True, progress=False, **kw)


def test_retry_failed_on_a_sweep_never_run_says_so(tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "sweep",
            "imbalance_x_margin",
            "--retry-failed",
            "--serial",
            "--out",
            str(tmp_path),
            "--no-progress",
        ],
    )
    assert res.exit_code == 2 and "no results here" in res.output
    assert not any(Path(tmp_path).iterdir())  # and writes nothing


def test_run_out_that_cannot_be_written_fails_before_the_run(tmp_path):
    f = tmp_path / "a_file"
    f.write_text("x")
    res = CliRunner().invoke(app, ["run", "small", "--out", str(f)])
    assert res.exit_code == 2 and "is a file" in res.output
    res = CliRunner().invoke(app, ["run", "small", "--out", str(f / "under")])
    assert res.exit_code == 2 and "cannot write there" in res.output

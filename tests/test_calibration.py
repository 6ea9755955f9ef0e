"""`abm calibrate`: the toy whose parameters are known is recovered within the reported
intervals, the intervals cover the truth as often as they say, the distance and the
curvature are right by hand, and a killed calibration resumes to what an uninterrupted one
gives."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest

from abm.sweeps.calibration import (
    CHI2_95,
    CalibrationSpec,
    calibrate,
    load_calibration,
    quadratic_interval,
    synthetic_distance,
    toy_statistics,
)

TRUTH = {"toy.mu": 1.5, "toy.sigma": 0.8, "toy.phi": 0.5}


def _with_observed(spec: CalibrationSpec, seed: int, name: str) -> CalibrationSpec:
    raw = spec.model_dump()
    raw["name"] = name
    obs = toy_statistics(TRUTH, seed)
    for t in raw["targets"]:
        if not t["held_out"]:
            t["observed"] = obs[t["statistic"]]
    return CalibrationSpec.model_validate(raw)


def test_toy_statistics_match_the_ar1_closed_forms():
    # long series: mean μ, sd σ/√(1−φ²), lag-1 autocorrelation φ, kurtosis 0
    mu, sigma, phi = 2.0, 0.5, 0.6
    s = toy_statistics({"toy.mu": mu, "toy.sigma": sigma, "toy.phi": phi}, 3, n=200_000)
    assert s["mean"] == pytest.approx(mu, abs=0.02)
    assert s["sd"] == pytest.approx(sigma / math.sqrt(1 - phi**2), rel=0.01)
    assert s["acf_lag1"] == pytest.approx(phi, abs=0.01)
    assert abs(s["excess_kurtosis"]) < 0.05


def test_the_shipped_toy_observations_are_the_toy_at_its_stated_truth():
    spec = load_calibration("toy_ar1")
    obs = toy_statistics(TRUTH, 1000)
    for t in spec.fitted:
        assert t.value() == pytest.approx(obs[t.statistic], rel=1e-12)


def test_synthetic_distance_by_hand():
    # two statistics, three seeds: means (1, 10), variances (1, 4) with ddof 1
    sim = np.array([[0.0, 8.0], [1.0, 10.0], [2.0, 12.0]])
    obs = np.array([2.0, 10.0])
    v1, v2 = 1.0 * (1 + 1 / 3), 4.0 * (1 + 1 / 3)
    want = (2 - 1) ** 2 / v1 + math.log(v1) + 0 / v2 + math.log(v2)
    assert synthetic_distance(obs, sim) == pytest.approx(want, rel=1e-12)
    # an observed variance adds to the simulated one
    want_v = 1 / (v1 + 0.5) + math.log(v1 + 0.5) + math.log(v2 + 0.5)
    assert synthetic_distance(obs, sim, np.array([0.5, 0.5])) == pytest.approx(want_v)
    # a statistic that does not vary has no likelihood
    assert synthetic_distance(obs, np.array([[1.0, 1.0], [1.0, 2.0]])) == math.inf


def test_quadratic_interval_recovers_an_exact_quadratic():
    # D = (u1 − 0.3)²/0.01 + (u2 − 0.6)²/0.04 + 5: H = diag(200, 50), cov = 2 H⁻¹ = diag(.01, .04)
    rng = np.random.default_rng(1)
    u = rng.uniform(0, 1, (60, 2))
    d = (u[:, 0] - 0.3) ** 2 / 0.01 + (u[:, 1] - 0.6) ** 2 / 0.04 + 5
    q = quadratic_interval(u, d)
    assert q["problem"] is None
    np.testing.assert_allclose(q["estimate"], [0.3, 0.6], atol=1e-9)
    np.testing.assert_allclose(q["cov"], [[0.01, 0], [0, 0.04]], atol=1e-9)
    # flat in one direction: no interval, and it says why
    flat = quadratic_interval(u, (u[:, 0] - 0.3) ** 2 / 0.01)
    assert flat["problem"] and "pin" in flat["problem"]


@pytest.mark.slow
def test_toy_calibration_recovers_the_known_parameters(tmp_path):
    spec = load_calibration("toy_ar1")
    rep = calibrate(spec, tmp_path, serial=True, progress=False)
    best = rep.best.set_index("parameter")
    for k, v in TRUTH.items():
        assert best.loc[k, "ci_low"] <= v <= best.loc[k, "ci_high"], best.loc[k]
        # informative: the interval is a small part of the search range
        p = next(p for p in spec.parameters if p.name == k)
        assert best.loc[k, "ci_high"] - best.loc[k, "ci_low"] < 0.25 * (p.high - p.low)
    fit = rep.fit.set_index("statistic")
    # the held-out kurtosis is predicted, not fitted: the AR(1) has none, and the fit says so
    assert fit.loc["excess_kurtosis", "held_out"]
    assert abs(fit.loc["excess_kurtosis", "z"]) < 2
    for name in ("evaluations", "best", "fit", "profile"):
        assert (rep.root / f"{name}.parquet").exists()
    ev = pd.read_parquet(rep.root / "evaluations.parquet")
    assert len(ev) == spec.budget and ev["trial"].tolist() == list(range(spec.budget))


@pytest.mark.slow
def test_toy_intervals_cover_the_truth_as_often_as_they_say(tmp_path):
    # 12 independent observed series at the same truth: a 95 % interval misses about once in 20,
    # so 12 of 12 or 11 of 12 is what honest intervals give; 9 or fewer has probability < 0.3 %.
    # At the shipped budget: the quick one (72 evaluations on 6 seeds) fits the curvature on
    # too few points near the minimum and covers less (9 to 11 of 12 when tried)
    spec = load_calibration("toy_ar1")
    covered = {k: 0 for k in TRUTH}
    half = []
    for r in range(12):
        rep = calibrate(
            _with_observed(spec, 5000 + r, f"cov{r}"), tmp_path, serial=True, progress=False
        )
        for row in rep.best.itertuples():
            covered[row.parameter] += row.ci_low <= TRUTH[row.parameter] <= row.ci_high
            if row.parameter == "toy.mu":
                half.append((row.ci_high - row.ci_low) / 2)
    assert all(c >= 10 for c in covered.values()), covered
    # and not uselessly wide: the sample mean's own 95 % half-width, from the AR(1)'s long-run
    # variance σ²/(1−φ)² over n = 400 draws, widened by the search's finite seeds
    analytic = 1.96 * math.sqrt(0.8**2 / 0.5**2 / 400) * math.sqrt(1 + 1 / spec.seeds)
    assert analytic <= np.mean(half) < 3 * analytic, (np.mean(half), analytic)


@pytest.mark.slow
def test_a_killed_calibration_resumes_to_the_uninterrupted_result(tmp_path):
    spec = load_calibration("toy_ar1", quick=True)
    whole = calibrate(spec, tmp_path / "whole", serial=True, progress=False)
    part = calibrate(spec, tmp_path / "killed", serial=True, progress=False, stop_after=13)
    assert part.new == 13 and not (part.root / "evaluations.parquet").exists()
    # a damaged evaluation file (a disk, not a kill, can leave one) is set aside and redone
    victim = sorted((part.root / "evaluations").glob("*.parquet"))[3]
    victim.write_bytes(b"PAR1 not really")
    with pytest.raises(FileExistsError, match="--resume"):
        calibrate(spec, tmp_path / "killed", serial=True, progress=False)
    resumed = calibrate(spec, tmp_path / "killed", serial=True, progress=False, resume=True)
    assert resumed.new == spec.budget - 13 + 1
    a = pd.read_parquet(whole.root / "evaluations.parquet")
    b = pd.read_parquet(resumed.root / "evaluations.parquet")
    cols = [c for c in a.columns if c.startswith(("param_", "sim_")) or c == "distance"]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    pd.testing.assert_frame_equal(whole.best, resumed.best)


def test_a_folder_holds_one_calibration_spec(tmp_path):
    spec = load_calibration("toy_ar1", quick=True)
    calibrate(spec, tmp_path, serial=True, progress=False, stop_after=2)
    raw = spec.model_dump()
    raw["seed"] = 99
    with pytest.raises(ValueError, match="spec hash"):
        calibrate(
            CalibrationSpec.model_validate(raw), tmp_path, serial=True, progress=False, resume=True
        )
    # a folder from before the base config was recorded is refused while it holds evaluations
    import json

    manifest = tmp_path / spec.name / "manifest.json"
    meta = json.loads(manifest.read_text())
    assert "base_config_hash" in meta
    del meta["base_config_hash"]
    manifest.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="before the base config was recorded"):
        calibrate(spec, tmp_path, serial=True, progress=False, resume=True)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"parameters": [{"name": "toy.mu", "low": 2, "high": 1}]}, "low < high"),
        ({"parameters": [{"name": "toy.sigma", "low": 0, "high": 1, "log": True}]}, "low > 0"),
        ({"parameters": [{"name": "toy.nu", "low": 0, "high": 1}]}, "toy.mu, toy.sigma"),
        ({"targets": [{"statistic": "mean", "observed": 1, "held_out": True}]}, "none is fitted"),
        ({"targets": [{"statistic": "median", "observed": 1}]}, "statistics"),
        ({"seeds": 1}, "seeds"),
    ],
)
def test_bad_specs_name_the_field(change, match):
    raw = {**load_calibration("toy_ar1").model_dump(), **change}
    with pytest.raises(ValueError, match=match):
        CalibrationSpec.model_validate(raw)


def test_observed_from_a_shipped_series_and_a_clear_error_for_a_bad_one():
    from abm.observed import daily_facts, load_series
    from abm.sweeps.calibration import Target

    t = Target(statistic="facts.acf_abs_returns_lag10", observed="wti:acf_abs_returns_lag10")
    assert t.value() == pytest.approx(daily_facts(load_series("wti"))["acf_abs_returns_lag10"])
    with pytest.raises(ValueError, match="no fact"):
        Target(statistic="x", observed="wti:nonsense").value()
    with pytest.raises(ValueError, match="series one of"):
        Target(statistic="x", observed="gold:hill_tail_index").value()


@pytest.mark.slow
@pytest.mark.xdist_group("heavy")
def test_an_abm_calibration_runs_the_model_on_dask_and_checks_its_fields(tmp_path):
    base = {
        "name": "abm_tiny",
        "model": "abm",
        "scenario": "one_sided",
        "set": {"calendar.trading_days": 12, "retail.n_traders": 60},
        "parameters": [{"name": "margin_rate", "low": 0.05, "high": 0.3}],
        "targets": [
            {"statistic": "settlement_deadline_day", "observed": 100.0},
            {"statistic": "facts_mid5.acf_abs_returns_lag1", "observed": 0.26, "held_out": True},
        ],
        "seeds": 2,
        "budget": 4,
        "batch": 2,
        "startup": 2,
        "confirm_seeds": 2,
    }
    rep = calibrate(CalibrationSpec.model_validate(base), tmp_path, workers=2, progress=False)
    ev = pd.read_parquet(rep.root / "evaluations.parquet")
    assert len(ev) == 4 and (ev["seeds_ok"] == 2).all()
    assert np.isfinite(ev["sim_settlement_deadline_day_mean"]).all()
    assert set(rep.fit["statistic"]) == {
        "settlement_deadline_day",
        "facts_mid5.acf_abs_returns_lag1",
    }
    bad = {**base, "parameters": [{"name": "hedger.no_such_field", "low": 0, "high": 1}]}
    with pytest.raises(ValueError, match="no_such_field"):
        calibrate(
            CalibrationSpec.model_validate(bad), tmp_path / "bad", serial=True, progress=False
        )
    shutil.rmtree(tmp_path / "bad", ignore_errors=True)


def test_chi2_constant():
    from scipy import stats

    assert stats.chi2.ppf(0.95, 1) == pytest.approx(CHI2_95, rel=1e-12)


def test_the_command_prints_the_fit_draws_its_figure_and_refuses_a_bad_spec(tmp_path):
    from typer.testing import CliRunner

    from abm.cli import app

    runner = CliRunner()
    res = runner.invoke(
        app,
        ["calibrate", "toy_ar1", "--quick", "--serial", "--no-progress", "--out", str(tmp_path)],
    )
    assert res.exit_code == 0, res.output
    assert "toy.mu =" in res.output and "held out excess_kurtosis" in res.output
    root = tmp_path / "toy_ar1-quick"
    assert (root / "calibration.png").stat().st_size > 5_000
    # the folder is taken: running again without --resume says what to do
    again = runner.invoke(
        app,
        ["calibrate", "toy_ar1", "--quick", "--serial", "--no-progress", "--out", str(tmp_path)],
    )
    assert again.exit_code == 2 and "--resume" in again.output
    missing = runner.invoke(app, ["calibrate", "no_such_spec", "--out", str(tmp_path)])
    assert missing.exit_code == 2 and "toy_ar1" in missing.output


def test_reproduce_keeps_each_calibrations_figure(tmp_path, monkeypatch):
    """`abm reproduce` rewrites a calibration's folder from scratch; the figure `abm calibrate`
    draws there must come back with it (it was lost before)."""
    from typer.testing import CliRunner

    import abm.sweeps.paper as paper
    from abm.cli import app

    monkeypatch.setattr(paper, "CALIBRATIONS", ("toy_ar1",))
    args = ["reproduce", "--quick", "--serial", "--only", "toy_ar1", "--out", str(tmp_path)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    root = tmp_path / "toy_ar1-quick"
    assert (root / "fit.parquet").exists()
    assert (root / "calibration.png").stat().st_size > 5_000
    assert (root / "calibration.pdf").stat().st_size > 5_000

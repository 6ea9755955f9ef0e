"""`abm figures` draws all twelve figures from the stored results, reproducibly, at most a page
wide, and writes each figure's claim with its number."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from abm.cli import app
from abm.figures import figure_specs, make_all

PAPER = Path(__file__).resolve().parent.parent / "results" / "paper"


@pytest.mark.skipif(
    not (PAPER / "sobol_main" / "sensitivity.parquet").exists(),
    reason="results/paper is missing: run `abm reproduce` (it is committed)",
)
def test_all_figures_from_stored_results(tmp_path):
    res = CliRunner().invoke(app, ["figures", str(PAPER), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    names = [s.name for s in figure_specs()]
    assert len(names) == 14
    from PIL import Image

    for n in names:
        for ext in ("pdf", "png"):
            f = tmp_path / f"{n}.{ext}"
            assert f.exists() and f.stat().st_size > 5_000, f
        with Image.open(tmp_path / f"{n}.png") as im:  # 300 dpi, at most 7.2 in wide
            w, _ = im.size
        assert w <= 7.2 * 300 + 1, (n, w / 300)
    index = (tmp_path / "README.md").read_text()
    for spec in figure_specs():
        assert f"## {spec.name}" in index and spec.caption in index
    # every sweep figure states its claim with a number and its interval, none failed
    assert "claim not computed" not in index
    assert index.count("**Claim.**") == 14 and index.count("(n = 10)") >= 20


def test_figure_files_are_byte_identical_on_rerun(tmp_path):
    a = make_all(PAPER, tmp_path / "a", only=["F2"])[0][1]
    b = make_all(PAPER, tmp_path / "b", only=["F2"])[0][1]
    for fa, fb in zip(a, b, strict=True):
        assert fa.read_bytes() == fb.read_bytes(), fa.name


def test_missing_results_are_a_clear_error(tmp_path):
    res = CliRunner().invoke(
        app, ["figures", str(tmp_path / "nothing"), "--out", str(tmp_path / "f")]
    )
    assert res.exit_code == 2 and "abm reproduce" in res.output


def test_seed_settlements_reads_each_days_last_step():
    from abm.figures import seed_settlements

    # two runs, 4 days of 2 steps; a day's settlement is what its last step carries
    rows = []
    for run, base in (("a", 10.0), ("b", 20.0)):
        for day in range(4):
            for k in range(2):
                rows.append(
                    {"run_id": run, "day": day, "step": 2 * day + k, "settlement": base + day + k}
                )
    import pandas as pd

    wide = seed_settlements(pd.DataFrame(rows).sample(frac=1, random_state=1), last_day=3)
    assert list(wide.columns) == [-2, -1, 0]
    assert wide.loc["a"].tolist() == [12.0, 13.0, 14.0]
    assert wide.loc["b"].tolist() == [22.0, 23.0, 24.0]


def test_per_day_over_seeds_turns_cumulative_calls_into_daily_counts():
    import numpy as np
    import pandas as pd
    from scipy import stats

    from abm.figures import per_day_over_seeds

    # run a: cumulative calls 2 → 5 (daily 2, 3); run b: 4 → 5 (daily 4, 1);
    # liquidated lots per step summed per day: a 3 + 4 = 7 and 0; b 1 and 5 + 5 = 10
    ts = pd.DataFrame(
        {
            "run_id": ["a"] * 4 + ["b"] * 4,
            "day": [0, 0, 1, 1] * 2,
            "step": [0, 1, 2, 3] * 2,
            "n_margin_calls": [1, 2, 4, 5, 4, 4, 4, 5],
            "liquidation_volume": [3, 4, 0, 0, 1, 0, 5, 5],
        }
    )
    out = per_day_over_seeds(ts)
    calls, liq = out["calls"], out["liquidated"]
    assert calls["mean"].tolist() == [3.0, 2.0] and calls["n"].tolist() == [2, 2]
    assert liq["mean"].tolist() == [4.0, 5.0]
    # half-width of a two-run t interval: t(0.975, 1) · sd / √2, sd of (2, 4) = √2
    assert np.isclose(calls["half"].iloc[0], stats.t.ppf(0.975, 1) * np.sqrt(2) / np.sqrt(2))


def test_acf_over_seeds_of_alternating_prices():
    import numpy as np
    import pandas as pd

    from abm.figures import acf_over_seeds, price_changes

    # 100, 101, 101 (no change: dropped), 100, 101, ... : returns alternate +a, −a, so the
    # autocorrelation is −1 at odd lags and +1 at even ones, in both runs
    prices = [100.0, 101.0, 101.0] + [100.0, 101.0] * 20
    assert np.all(price_changes(prices)[::2] > 0) and np.all(price_changes(prices)[1::2] < 0)
    ts = pd.DataFrame(
        {
            "run_id": ["a"] * len(prices) + ["b"] * len(prices),
            "step": list(range(len(prices))) * 2,
            "futures": prices * 2,
        }
    )
    acf = acf_over_seeds(ts, max_lag=3)["r"]
    assert acf["mean"].to_numpy() == pytest.approx([-1.0, 1.0, -1.0])
    assert acf["n"].tolist() == [2, 2, 2] and acf["half"].to_numpy() == pytest.approx(0.0)

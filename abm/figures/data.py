"""What the figures read from stored results, and the reductions over seeds they draw: daily
counts, settlements and autocorrelations per run, each as a mean and 95 % interval."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from abm.figures.style import mean_ci
from abm.metrics import autocorr
from abm.results import load, load_timeseries

# -- per day, over seeds (F6) ------------------------------------------------------------------


def per_day_over_seeds(ts: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Margin calls and liquidated lots per day of each run of a sweep's timeseries, as the
    mean, 95 % interval half-width and n over runs (columns of
    [`mean_ci()`][abm.figures.style.mean_ci]), by day. The stored margin-call count is cumulative;
    the liquidated volume is per step."""
    g = ts.sort_values("step").groupby(["run_id", "day"])
    per = pd.DataFrame(
        {
            "calls": g["n_margin_calls"].last().groupby(level="run_id").diff(),
            "liquidated": g["liquidation_volume"].sum(),
        }
    )
    first = per.index.get_level_values("day") == per.index.get_level_values("day").min()
    per.loc[first, "calls"] = g["n_margin_calls"].last()[first]
    per = per.reset_index()
    return {c: mean_ci(per, "day", c) for c in ("calls", "liquidated")}


# -- the record, and settlements over seeds (F7) ------------------------------------------------

#: CLK20 ($/bbl), MODEL.md: settlements on 17 April (day −2) and 20 April (day −1, the deadline),
#: the intraday low of 20 April, and the settlement at expiry on 21 April
CLK20 = {"day_minus_2": 18.27, "day_minus_1": -37.63, "low": -40.32, "expiry": 10.01}
#: CLM20, the June contract ($/bbl), CME settlements: 17 April 2020 (MODEL.md, the scenario's
#: storage rent), 20 April (MODEL.md), 21 April (down 8.86 that day, as reported)
CLM20 = {"day_minus_2": 25.03, "day_minus_1": 20.43, "expiry": 11.57}
#: the deadline session's close on the clock (CME's settlement window ends 14:30 ET): the
#: model's 2-step window is 14:28-14:30, so a step of the wti scenarios is one minute
SESSION_CLOSE_MINUTES = 14 * 60 + 30


def seed_settlements(
    ts: pd.DataFrame, last_day: int, back: int = 2, column: str = "settlement"
) -> pd.DataFrame:
    """Each run's settlements of the last ``back + 1`` days (columns ``-back`` … ``0``, 0 the
    last trading day), from a sweep's stored timeseries: a day's settlement is the value its
    last step carries (``column``: ``next_settlement`` for the next listed month)."""
    day_end = ts.sort_values("step").groupby(["run_id", "day"])[column].last()
    wide = day_end.unstack("day")
    cols = {last_day - k: -k for k in range(back, -1, -1)}
    return wide[list(cols)].rename(columns=cols)


# -- returns over seeds (F9) ---------------------------------------------------------------------


def price_changes(futures) -> np.ndarray:
    """Log returns between successive distinct futures prices (steps without a price change
    dropped: the facts are about price changes, not clock ticks)."""
    p = np.asarray(futures, dtype=float)
    r = np.diff(np.log(p[np.isfinite(p) & (p > 0)]))
    return r[r != 0]


def acf_over_seeds(seeds_ts: pd.DataFrame, max_lag: int = 50) -> dict[str, pd.DataFrame]:
    """Autocorrelation of returns and of |returns| at lags 1..``max_lag``, for each run of a
    sweep's timeseries, as mean, 95 % interval half-width and n over runs, by lag."""
    rows = []
    for run_id, one in seeds_ts.sort_values("step").groupby("run_id"):
        r = price_changes(one["futures"])
        for k in range(1, max_lag + 1):
            rows.append(
                {"run_id": run_id, "lag": k, "r": autocorr(r, k), "abs": autocorr(np.abs(r), k)}
            )
    per = pd.DataFrame(rows)
    return {c: mean_ci(per, "lag", c) for c in ("r", "abs")}


# -- reading stored results --------------------------------------------------------------------


def seed_sweep(root: Path, name: str, timeseries: bool = False):
    """A replicate sweep of a single-run figure (``crowd_seeds``, ``cascade_seeds``,
    ``wti_seeds``), or None when the results folder predates it: the figure then shows its
    one run only, and says so."""
    if not (root / name).exists():
        return None
    return load_timeseries(root / name) if timeseries else load(root / name)


def crowds(root: Path) -> dict[str, pd.DataFrame] | None:
    d = seed_sweep(root, "crowd_seeds")
    if d is None:
        return None
    share = d["param_retail_long_share"]
    return {"Balanced crowd": d[share == 0.5], "One-sided crowd": d[share == 0.9]}


def balanced_ts(root: Path) -> pd.DataFrame | None:
    """The timeseries of crowd_seeds' balanced crowd (the default market), or None."""
    d = seed_sweep(root, "crowd_seeds")
    if d is None:
        return None
    ids = d.loc[d["param_retail_long_share"] == 0.5, "run_id"].tolist()
    return load_timeseries(root / "crowd_seeds", ids)

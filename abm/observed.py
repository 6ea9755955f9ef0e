"""The record: observed daily price series the model was not tuned to, and their stylized facts.

The series ship with the repository (`experiments/observed/`, in a wheel `abm/data/observed/`,
with their source and licence in its README): EIA's WTI Cushing and Brent spot prices, daily.
[`daily_facts()`][abm.observed.daily_facts] measures them as the literature does (log returns
of consecutive positive prices, mean removed), with the same estimators the model's own facts
use ([`abm.metrics`][abm.metrics]), so a simulated market and the record are compared like
with like.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm.metrics import autocorr, hill_tail_index
from abm.scenarios import data_dir

#: the shipped series, by name
SERIES = {"wti": "eia_wti_cushing_daily.csv", "brent": "eia_brent_daily.csv"}


def load_series(name: str) -> pd.Series:
    """The daily price series ``name`` (US$/bbl), indexed by date."""
    if name not in SERIES:
        raise ValueError(f"series = {name!r}: allowed {sorted(SERIES)}")
    frame = pd.read_csv(data_dir("observed") / SERIES[name], parse_dates=["Date"])
    return frame.set_index("Date")["Price"].rename(name)


def daily_returns(prices) -> np.ndarray:
    """Log returns between consecutive positive prices, mean removed (a day with a price at or
    below zero, as on 2020-04-20, has no log return to or from it)."""
    p = np.asarray(prices, float)
    ok = (p[1:] > 0) & (p[:-1] > 0)
    r = np.log(p[1:][ok] / p[:-1][ok])
    return r - r.mean()


def daily_facts(prices, aggregate: int = 5, tail_fraction: float = 0.025) -> dict[str, float]:
    """Stylized facts of a daily series: excess kurtosis of daily and of non-overlapping
    ``aggregate``-day returns, the Hill tail index of |returns| over the top ``tail_fraction``,
    the autocorrelation of returns at lag 1 and of |returns| at lags 1, 10, 50 and 100."""
    from scipy import stats

    r = daily_returns(prices)
    block = r[: len(r) // aggregate * aggregate].reshape(-1, aggregate).sum(axis=1)
    out = {
        "n_returns": int(len(r)),
        "excess_kurtosis": float(stats.kurtosis(r)),
        f"excess_kurtosis_x{aggregate}": float(stats.kurtosis(block)),
        "hill_tail_index": hill_tail_index(r, tail_fraction),
        "acf_returns_lag1": autocorr(r, 1),
    }
    for lag in (1, 10, 50, 100):
        out[f"acf_abs_returns_lag{lag}"] = autocorr(np.abs(r), lag)
    return out

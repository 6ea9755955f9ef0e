"""Statistics over replicates: means with standard errors and 95 % intervals (Student t and
percentile bootstrap), paired effects, per-point tables of a sweep, and how many replicates
(or Sobol samples) a target precision needs.

A referee asks of every number: over how many seeds, with what interval, paired or not. These
functions answer in one call; ``abm.results.point_summary`` applies them to a stored sweep, and a
finished sweep stores its per-point table as ``points.parquet``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

#: outputs summarised per point in every sweep's points.parquet (plus the spec's own outputs)
KEY_OUTPUTS = (
    "ndnp_at_deadline",
    "harvest_discount",
    "basis_at_forced_close",
    "max_abs_basis_final_window",
    "transfer_retail_to_hedger",
    "transfer_retail_to_hedger_harvest_forced_close",
    "theory_transfer",
    "pnl_retail",
    "bad_debt",
    "n_margin_calls",
    "n_liquidations",
    "max_cascade_lots",
)


def _finite(values, what: str) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    if x.size < 2:
        raise ValueError(f"{what}: needs at least 2 replicates, got {x.size}")
    if not np.all(np.isfinite(x)):
        bad = int((~np.isfinite(x)).sum())
        raise ValueError(f"{what}: {bad} of {x.size} values not finite")
    return x


def mean_ci(values, level: float = 0.95) -> dict[str, float]:
    """Mean of replicate outcomes with its standard error and a Student-t ``level`` interval.

    ``values``: one number per replicate (NaNs are refused, not dropped: a NaN outcome says a
    run formed no price and must be looked at). Returns ``mean, se, lo, hi, n``.
    """
    from scipy import stats

    x = _finite(values, "mean_ci")
    if not 0 < level < 1:
        raise ValueError(f"mean_ci: level = {level}; allowed 0 < level < 1")
    se = float(x.std(ddof=1) / np.sqrt(x.size))
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1)) * se
    m = float(x.mean())
    return {"mean": m, "se": se, "lo": m - half, "hi": m + half, "n": int(x.size)}


def paired_effect(treated, control, level: float = 0.95) -> dict[str, float]:
    """Effect of a change measured on the same seeds: [`mean_ci()`][abm.statistics.mean_ci] of
    ``treated − control`` replicate by replicate (pairing removes the seed-to-seed noise both arms
    share)."""
    a, b = np.asarray(treated, dtype=float), np.asarray(control, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired_effect: {a.size} treated vs {b.size} control replicates")
    return mean_ci(a - b, level)


def bootstrap_ci(
    values, level: float = 0.95, n_boot: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean: resample the replicates with replacement
    ``n_boot`` times (seeded, so the interval is reproducible)."""
    x = _finite(values, "bootstrap_ci")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    a = (1 - level) / 2
    lo, hi = np.quantile(means, [a, 1 - a])
    return float(lo), float(hi)


def point_table(
    runs: pd.DataFrame,
    metrics: Sequence[str],
    by: Sequence[str] | None = None,
    level: float = 0.95,
    n_boot: int = 5_000,
) -> pd.DataFrame:
    """Per design point (rows grouped by ``by``; default: ``point`` and every ``param_*``
    column) and metric: n, mean, sd, se, the Student-t interval (``t_lo``, ``t_hi``) and the
    bootstrap interval (``ci_lo``, ``ci_hi``). Points with fewer than 2 finite values get NaN
    intervals and say so in ``note``."""
    if by is None:
        by = ["point"] + sorted(c for c in runs.columns if c.startswith("param_"))
    missing = [m for m in metrics if m not in runs.columns]
    if missing:
        raise KeyError(f"point_table: no column {missing} in the runs")
    rows = []
    for key, g in runs.groupby(list(by), sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        for m in metrics:
            x = pd.to_numeric(g[m], errors="coerce").to_numpy(float)
            fin = x[np.isfinite(x)]
            row = dict(zip(by, key, strict=True)) | {"metric": m, "n": int(fin.size)}
            note = "" if fin.size == x.size else f"{x.size - fin.size} of {x.size} runs NaN"
            if fin.size >= 2:
                t = mean_ci(fin, level)
                lo, hi = bootstrap_ci(fin, level, n_boot, seed=len(rows))
                row |= {
                    "mean": t["mean"],
                    "sd": float(fin.std(ddof=1)),
                    "se": t["se"],
                    "t_lo": t["lo"],
                    "t_hi": t["hi"],
                    "ci_lo": lo,
                    "ci_hi": hi,
                }
            else:
                row |= {k: math.nan for k in ("mean", "sd", "se", "t_lo", "t_hi", "ci_lo", "ci_hi")}
                if fin.size == 1:
                    row["mean"] = float(fin[0])
                note = (note + "; " if note else "") + "fewer than 2 replicates: no interval"
            row["note"] = note
            rows.append(row)
    return pd.DataFrame(rows)


def replicates_needed(pilot, half_width: float, level: float = 0.95, max_n: int = 100_000) -> int:
    """Replicates for a ``level`` interval of the mean no wider than ± ``half_width``, judged
    from a pilot's spread: the smallest n with t(n−1) · sd / √n ≤ half_width."""
    from scipy import stats

    x = _finite(pilot, "replicates_needed")
    if not half_width > 0:
        raise ValueError(f"replicates_needed: half_width = {half_width}; must be > 0")
    sd = float(x.std(ddof=1))
    if sd == 0:
        return 2
    n = max(2, math.ceil((1.96 * sd / half_width) ** 2))
    while n <= max_n:
        if stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n) <= half_width:
            return n
        n += 1
    raise ValueError(f"replicates_needed: more than {max_n} replicates for ±{half_width}")


def sobol_samples_needed(samples: int, widest_interval: float, target: float = 0.1) -> int:
    """Sobol base samples N for every index's interval to be narrower than ``target``, from a
    run at ``samples`` whose widest interval was ``widest_interval``: intervals shrink as
    1/√N, so N × (widest / target)², rounded up to a power of 2."""
    if widest_interval <= target:
        return samples
    need = samples * (widest_interval / target) ** 2
    return 1 << math.ceil(math.log2(need))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of ``p_values`` (family-wise error over the family):
    the k-th smallest p is multiplied by (m − k + 1), made monotone, capped at 1. NaNs stay
    NaN and do not count in m. (statsmodels' ``multipletests(method="holm")`` computes the
    same; it is not a dependency of this project for one function.)"""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if not m:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out[order] = np.minimum(adj, 1.0)
    return out


def compare_distributions(
    a: pd.DataFrame, b: pd.DataFrame, level: float = 0.01, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Two samples of runs (rows) compared metric by metric (columns): a two-sample
    Kolmogorov–Smirnov test per metric (scipy's ``ks_2samp``, exact where it can be), the
    p-values Holm-adjusted over the metrics tested, and whether each metric's distributions
    differ at ``level``. A metric constant and equal in both samples is reported but not
    tested (NaN p). Columns: metric, mean_a, mean_b, ks, p, p_holm, differs, n_a, n_b."""
    from scipy.stats import ks_2samp

    if not 0 < level < 1:
        raise ValueError(f"level = {level}: must be in (0, 1)")
    cols = list(columns) if columns is not None else [c for c in a.columns if c in b.columns]
    rows = []
    for c in cols:
        x = pd.to_numeric(a[c], errors="coerce").to_numpy(float)
        y = pd.to_numeric(b[c], errors="coerce").to_numpy(float)
        x, y = x[np.isfinite(x)], y[np.isfinite(y)]
        if len(x) < 2 or len(y) < 2:
            raise ValueError(f"metric {c!r}: needs at least 2 finite runs in each sample")
        same_constant = np.ptp(x) == 0 and np.ptp(y) == 0 and x[0] == y[0]
        if same_constant:
            ks, p = 0.0, np.nan
        else:
            res = ks_2samp(x, y)
            ks, p = float(res.statistic), float(res.pvalue)
        rows.append(
            dict(metric=c, mean_a=x.mean(), mean_b=y.mean(), ks=ks, p=p, n_a=len(x), n_b=len(y))
        )
    out = pd.DataFrame(rows)
    out["p_holm"] = holm(out["p"].to_numpy()) if len(out) else []
    out["differs"] = out["p_holm"] < level
    return out[["metric", "mean_a", "mean_b", "ks", "p", "p_holm", "differs", "n_a", "n_b"]]

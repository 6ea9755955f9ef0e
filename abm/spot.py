"""Exogenous spot price processes, seeded by the model's one generator.

The whole path (``n_steps + 1`` points, step 0 = the initial spot) is drawn up front with
numpy, so a run's spot is identical whatever the agents do. Parameters are per trading day;
one step is ``1 / steps_per_day`` of a day.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from abm.config import SpotConfig


def gbm_path(
    initial: float, drift: float, vol: float, n: int, dt: float, rng: np.random.Generator
) -> np.ndarray:
    """Geometric Brownian motion: S_{t+1} = S_t · exp((μ − σ²/2)dt + σ√dt·Z)."""
    z = rng.standard_normal(n)
    incr = (drift - 0.5 * vol**2) * dt + vol * np.sqrt(dt) * z
    return initial * np.exp(np.concatenate([[0.0], np.cumsum(incr)]))


def ou_path(
    initial: float,
    mean: float,
    speed: float,
    vol_abs: float,
    n: int,
    dt: float,
    rng: np.random.Generator,
    jump_intensity: float = 0.0,
    jump_mean: float = 0.0,
    jump_std: float = 0.0,
) -> np.ndarray:
    """Ornstein–Uhlenbeck in price (exact discretisation) with optional Poisson jumps.

    ``vol_abs`` is in price units per √day; jumps are fractions of the current price, their
    number per step Poisson(``jump_intensity`` · dt).
    """
    z = rng.standard_normal(n)
    n_jumps = rng.poisson(jump_intensity * dt, n) if jump_intensity > 0 else np.zeros(n, int)
    jump_z = rng.standard_normal(n)
    if speed > 0:
        a = np.exp(-speed * dt)
        sd = vol_abs * np.sqrt((1 - a * a) / (2 * speed))
    else:
        a, sd = 1.0, vol_abs * np.sqrt(dt)
    out = np.empty(n + 1)
    out[0] = s = initial
    for i in range(n):
        s = mean + (s - mean) * a + sd * z[i]
        if n_jumps[i]:
            k = n_jumps[i]
            s *= 1.0 + k * jump_mean + np.sqrt(k) * jump_std * jump_z[i]
        out[i + 1] = s
    return out


def resample(values, n_steps: int) -> np.ndarray:
    """Evenly spaced observations spanning the run → the run's ``n_steps + 1`` spot points.

    Observation ``i`` of ``m`` sits at step ``i · n_steps / (m − 1)``; steps in between are
    linear interpolations (price units). A daily series of ``trading_days + 1`` closes (the
    close before the first session, then each session's) puts every close on its session's
    last step. Linear interpolation adds no intraday noise: the spot moves, the futures' own
    noise comes from the book.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or len(v) < 2:
        raise ValueError(f"resample: needs at least 2 observations, got {v.size}")
    if not np.all(np.isfinite(v)):
        bad = int(np.flatnonzero(~np.isfinite(v))[0])
        raise ValueError(f"resample: observation {bad} is {v[bad]}; all must be finite")
    if n_steps < 1:
        raise ValueError(f"resample: n_steps = {n_steps}; allowed >= 1")
    at = np.linspace(0.0, n_steps, len(v))
    return np.interp(np.arange(n_steps + 1, dtype=float), at, v)


#: column names taken as the observations' times (case-insensitive)
TIME_COLUMNS = ("date", "time", "timestamp", "datetime")


def _check_times(df, path: str | Path) -> None:
    """If the CSV has a time column, every row's time must parse, and the times must rise
    strictly: rows are used in file order (a row per step, or per session when resampled), so
    a duplicate or an out-of-order row would silently put a price in the wrong place."""
    import pandas as pd

    cols = [c for c in df.columns if str(c).strip().lower() in TIME_COLUMNS]
    if not cols:
        return
    col = cols[0]
    times = pd.to_datetime(df[col], errors="coerce", format="mixed")
    if times.isna().any():
        bad = int(np.flatnonzero(times.isna().to_numpy())[0])
        raise ValueError(
            f"spot.csv_path = '{path}': data row {bad + 1} (line {bad + 2}) of '{col}' is "
            f"{df[col].iloc[bad]!r}, not a date or time"
        )
    t = times.to_numpy()
    dup = np.flatnonzero(t[1:] == t[:-1])
    if len(dup):
        i = int(dup[0]) + 1
        raise ValueError(
            f"spot.csv_path = '{path}': data rows {i} and {i + 1} (lines {i + 1}, {i + 2}) have "
            f"the same {col} {df[col].iloc[i]!r}; every row must be a distinct time"
        )
    back = np.flatnonzero(t[1:] < t[:-1])
    if len(back):
        i = int(back[0]) + 1
        raise ValueError(
            f"spot.csv_path = '{path}': data row {i + 1} (line {i + 2}, {col} "
            f"{df[col].iloc[i]!r}) comes before the row above it; sort the file by {col}"
        )


def csv_path(path: str | Path, n: int, resample_rows: bool = False) -> np.ndarray:
    """Read a 'spot' column: one row per step from step 0 (at least n + 1 rows), or, with
    ``resample_rows``, any number >= 2 of evenly spaced rows spread over the run (a row per
    trading session: weekends and holidays are not sessions, so rows, not calendar time,
    are evenly spaced). A time column (date, time, timestamp or datetime) is checked: each
    row's time must parse, and times must rise strictly."""
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"spot.csv_path = '{path}': file not found")
    try:
        # blank rows kept: dropping one would shift every later price by a step, silently
        df = pd.read_csv(p, skip_blank_lines=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"spot.csv_path = '{path}': not a readable CSV ({err})") from None
    if "spot" not in df.columns:
        raise ValueError(f"spot.csv_path = '{path}': needs a 'spot' column, has {list(df.columns)}")
    _check_times(df, path)
    raw = df["spot"]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(values)):
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        shown = "an empty row" if pd.isna(raw.iloc[bad]) else repr(raw.iloc[bad])
        raise ValueError(
            f"spot.csv_path = '{path}': data row {bad + 1} (line {bad + 2}) of 'spot' is "
            f"{shown}; every row must hold a finite price"
        )
    if resample_rows:
        if len(values) < 2:
            raise ValueError(
                f"spot.csv_path = '{path}': has {len(values)} rows; resampling needs at least 2"
            )
        return resample(values, n)
    if len(values) < n + 1:
        raise ValueError(
            f"spot.csv_path = '{path}': has {len(values)} rows, the run needs {n + 1} "
            "(one per step plus step 0); for a daily or other coarser series set "
            "spot.csv_resample = true"
        )
    return values[: n + 1].copy()


def make_spot_path(
    cfg: SpotConfig, n_steps: int, steps_per_day: int, rng: np.random.Generator
) -> np.ndarray:
    """The run's spot path, length ``n_steps + 1`` (price units)."""
    dt = 1.0 / steps_per_day
    if cfg.kind == "gbm":
        return gbm_path(cfg.initial, cfg.drift, cfg.volatility, n_steps, dt, rng)
    if cfg.kind == "ou":
        mean = cfg.initial if cfg.long_run_mean is None else cfg.long_run_mean
        return ou_path(
            cfg.initial,
            mean,
            cfg.mean_reversion,
            cfg.volatility * cfg.initial,
            n_steps,
            dt,
            rng,
            cfg.jump_intensity,
            cfg.jump_mean,
            cfg.jump_std,
        )
    if cfg.kind == "csv":
        assert cfg.csv_path is not None
        return csv_path(cfg.csv_path, n_steps, cfg.csv_resample)
    return np.full(n_steps + 1, cfg.initial, dtype=float)


def fair_value(spot: float, carry_rate: float, days_left: float) -> float:
    """Futures fair value = spot × (1 + carry × days to expiry) (price units)."""
    return spot * (1.0 + carry_rate * max(days_left, 0.0))

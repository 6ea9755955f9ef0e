"""Recompute the stored results every paper figure is drawn from, and compare two stores.

    abm reproduce                 # paper size, into results/paper/
    abm reproduce --quick         # the sweeps' small sizes (a minute or two)
    abm reproduce --only crowd_seeds --out /tmp/check   # some of it
    abm compare results/paper /tmp/check                # what differs, and by how much

Single runs (``runs/<scenario>/``) come from the shipped scenarios; sweeps
(``<sweep>/``) from the shipped specs, the Sobol sweep followed by its sensitivity analysis.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from abm.model import MarketModel
from abm.scenarios import load
from abm.sweeps.calibration import calibrate, load_calibration
from abm.sweeps.runner import run_sweep
from abm.sweeps.sensitivity import analyse
from abm.sweeps.spec import load_spec

PAPER_DIR = Path("results") / "paper"
SCENARIOS = ("default", "one_sided", "china_rebar", "wti_2020", "wti_2020_spread", "cascade")
SWEEPS = (
    # replicates of the single-run figures (F1/F5, F6, F7): intervals and n for their claims
    "crowd_seeds",
    "cascade_seeds",
    "wti_seeds",
    "wti_spread_seeds",
    "imbalance_x_margin",
    "forced_close_lead",
    "arbitrage_capacity",
    "harvest_statics",
    "harvest_discovered",
    "margin_effect",
    "margin_effect_rebar",
    "ndnp_design",
    "sobol_main",
)
#: calibrations stored with the paper: F14 draws wti_spread_kappa (κ of the two-month WTI
#: scenario); wti_kappa (the one-month scenario) and default_attention (the ordinary market by
#: simulated moments) keep their own figures, calibration.png, in their folders
CALIBRATIONS = ("wti_kappa", "wti_spread_kappa", "default_attention", "fine_tick_flow")


def reproduce(
    out: str | Path = PAPER_DIR,
    quick: bool = False,
    workers: int | None = None,
    serial: bool = False,
    progress: bool = True,
    fresh: bool = True,
    only: list[str] | None = None,
) -> Path:
    """Recompute the shipped scenarios' runs and the sweeps into ``out`` (``only``: just these
    scenarios and sweeps, by name)."""
    from abm.results import load as load_runs

    if only:
        unknown = sorted(set(only) - set(SCENARIOS) - set(SWEEPS) - set(CALIBRATIONS))
        if unknown:
            raise ValueError(
                f"--only {unknown}: not a paper result; scenarios {list(SCENARIOS)}, "
                f"sweeps {list(SWEEPS)}, calibrations {list(CALIBRATIONS)}"
            )
    root = Path(out)
    for name in SCENARIOS:
        if only and name not in only:
            continue
        target = root / "runs" / name
        if fresh and target.exists():
            shutil.rmtree(target)
        MarketModel(load(name)).run(progress=progress).save(target)
    for name in SWEEPS:
        if only and name not in only:
            continue
        spec = load_spec(name, quick=quick)
        if fresh and (root / spec.name).exists():
            shutil.rmtree(root / spec.name)
        run_sweep(
            spec,
            root,
            workers=workers,
            serial=serial,
            quick=quick,
            progress=progress,
            resume=not fresh,
        )
        if spec.design == "sobol":
            analyse(spec, load_runs(root / spec.name), root / spec.name)
    for name in CALIBRATIONS:
        if only and name not in only:
            continue
        cal = load_calibration(name, quick=quick)
        if fresh and (root / cal.name).exists():
            shutil.rmtree(root / cal.name)
        calibrate(cal, root, workers=workers, serial=serial, progress=progress, resume=not fresh)
    return root


# -- comparing two stores ----------------------------------------------------------------------

#: columns that measure the machine, not the model
TIMING_COLUMNS = frozenset({"wall_seconds", "run_seconds", "seconds"})
#: bookkeeping added to the stores over time (which spec wrote a run, what an analysis was
#: computed from): compared when both stores have it, left out when only one does
BOOKKEEPING_COLUMNS = frozenset({"spec_hash", "inputs_sha256"})
_SWEEP_TABLES = ("runs.parquet", "timeseries.parquet", "points.parquet", "sensitivity.parquet")


@dataclass(frozen=True)
class Difference:
    """One table column (or summary key) that differs between two stores: ``where`` (a path
    relative to the store, and the column), the number of values that differ, the largest
    absolute and relative difference (NaN for text), and ``exact``: whether the values are
    numbers that differ only within ``rtol``."""

    where: str
    n: int
    max_abs: float
    max_rel: float
    within: bool

    def __str__(self) -> str:
        size = (
            f"largest |Δ| {self.max_abs:.3g} (relative {self.max_rel:.3g})"
            if math.isfinite(self.max_abs)
            else "not numbers"
        )
        return f"{self.where}: {self.n} values differ, {size}"


def _column_difference(where: str, x, y, rtol: float) -> Difference | None:
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind in "fiub" and y.dtype.kind in "fiub":
        xf, yf = x.astype(float), y.astype(float)
        same = (xf == yf) | (np.isnan(xf) & np.isnan(yf))
        if same.all():
            return None
        d = np.abs(xf - yf)[~same]
        scale = np.maximum(np.abs(xf), np.abs(yf))[~same]
        rel = np.where(scale > 0, d / np.where(scale > 0, scale, 1), np.inf)
        max_abs = float(np.nanmax(d)) if np.isfinite(d).any() else math.inf
        max_rel = float(np.nanmax(rel)) if len(rel) else 0.0
        return Difference(where, int((~same).sum()), max_abs, max_rel, max_rel <= rtol)
    same = [a == b or (a != a and b != b) for a, b in zip(x.tolist(), y.tolist(), strict=True)]
    if all(same):
        return None
    return Difference(where, len(same) - sum(same), math.nan, math.nan, False)


def _frame_differences(where: str, a: pd.DataFrame, b: pd.DataFrame, rtol: float) -> list:
    one_side = (set(a.columns) ^ set(b.columns)) & BOOKKEEPING_COLUMNS
    a = a.drop(columns=[c for c in a.columns if c in TIMING_COLUMNS | one_side])
    b = b.drop(columns=[c for c in b.columns if c in TIMING_COLUMNS | one_side])
    if set(a.columns) != set(b.columns):
        only = sorted(set(a.columns) ^ set(b.columns))
        return [Difference(f"{where} columns {only}", len(only), math.nan, math.nan, False)]
    if len(a) != len(b):
        return [Difference(f"{where} rows {len(a)} ≠ {len(b)}", 1, math.nan, math.nan, False)]
    key = [c for c in ("run_id", "step", "output", "method", "parameter") if c in a.columns]
    if key:
        a = a.sort_values(key).reset_index(drop=True)
        b = b.sort_values(key).reset_index(drop=True)
    out = []
    for c in a.columns:
        d = _column_difference(f"{where}:{c}", a[c].to_numpy(), b[c].to_numpy(), rtol)
        if d is not None:
            out.append(d)
    return out


def compare(a: str | Path, b: str | Path, rtol: float = 0.0) -> tuple[list[str], list]:
    """Compare the results both stores hold (single runs under ``runs/``, sweeps' tables),
    timing columns left out: returns what was compared and every `Difference`. A difference
    is ``within`` when the values are numbers whose relative difference is at most ``rtol``
    (0: bit for bit)."""
    a, b = Path(a), Path(b)
    compared: list[str] = []
    diffs: list[Difference] = []
    runs = a / "runs"
    for run in sorted(runs.iterdir()) if runs.is_dir() else []:
        other = b / "runs" / run.name
        if not (other / "summary.json").exists() or not (run / "summary.json").exists():
            continue
        compared.append(f"runs/{run.name}")
        sa = json.loads((run / "summary.json").read_text())
        sb = json.loads((other / "summary.json").read_text())
        keys = sorted((set(sa) | set(sb)) - TIMING_COLUMNS - {"_files"})
        fa = pd.DataFrame([{k: sa.get(k) for k in keys}])
        fb = pd.DataFrame([{k: sb.get(k) for k in keys}])
        diffs += _frame_differences(f"runs/{run.name}/summary.json", fa, fb, rtol)
        for f in sorted(run.glob("*.parquet")):
            if (other / f.name).exists():
                diffs += _frame_differences(
                    f"runs/{run.name}/{f.name}",
                    pd.read_parquet(f),
                    pd.read_parquet(other / f.name),
                    rtol,
                )
    for sweep in sorted(p for p in a.iterdir() if p.is_dir() and p.name != "runs"):
        other = b / sweep.name
        if not (other / "runs.parquet").exists() or not (sweep / "runs.parquet").exists():
            continue
        compared.append(sweep.name)
        for f in _SWEEP_TABLES:
            if (sweep / f).exists() and (other / f).exists():
                diffs += _frame_differences(
                    f"{sweep.name}/{f}",
                    pd.read_parquet(sweep / f),
                    pd.read_parquet(other / f),
                    rtol,
                )
            elif (sweep / f).exists() != (other / f).exists():
                diffs.append(
                    Difference(f"{sweep.name}/{f} in one store only", 1, math.nan, math.nan, False)
                )
    return compared, diffs

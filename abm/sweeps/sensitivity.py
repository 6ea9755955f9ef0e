"""Sobol sensitivity of a sweep's outputs (SALib), stored beside the sweep.

Replicates of a design point are averaged first (noise would otherwise bias the indices); the
first-order (S1) and total (ST) indices come with their bootstrap confidence intervals, and each
row says whether its interval is narrower than 0.1 (``adequate``) and how many base samples N
would make every interval so (``samples_needed``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from abm.sweeps.spec import SweepSpec


def sobol_indices(problem: dict, y: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """S1, S1_conf, ST, ST_conf per parameter for model outputs ``y`` at SALib's sample rows."""
    from SALib.analyze import sobol

    res = sobol.analyze(problem, np.asarray(y, float), calc_second_order=False, seed=seed)
    return pd.DataFrame(
        {
            "parameter": problem["names"],
            "S1": res["S1"],
            "S1_conf": res["S1_conf"],
            "ST": res["ST"],
            "ST_conf": res["ST_conf"],
        }
    )


def analyse(spec: SweepSpec, table: pd.DataFrame, out_dir: str | Path) -> pd.DataFrame:
    """Sobol indices of each of ``spec.outputs``; writes sensitivity.parquet and .json."""
    if spec.design != "sobol":
        raise ValueError(
            f"sweep '{spec.name}' has design '{spec.design}': Sobol indices need design = 'sobol'"
        )
    n_points = len(spec.design_points())
    means = table.groupby("point")[spec.outputs].mean()
    missing = sorted(set(range(n_points)) - set(means.index))
    if missing:
        raise ValueError(
            f"sweep '{spec.name}': {len(missing)} of {n_points} points have no "
            f"finished run (e.g. point {missing[0]}); resume the sweep first"
        )
    frames = []
    for out in spec.outputs:
        y = means[out].reindex(range(n_points)).to_numpy(float)
        if not np.all(np.isfinite(y)):
            raise ValueError(f"output '{out}' is not finite at every point; cannot analyse")
        df = sobol_indices(spec.problem(), y, seed=spec.master_seed % 2**32)
        df.insert(0, "output", out)
        frames.append(df)
    result = pd.concat(frames, ignore_index=True)
    # adequacy: every index's 95 % interval (± conf) narrower than 0.1, else say what N would do
    width = 2 * result[["S1_conf", "ST_conf"]].max(axis=1)
    result["interval_width"] = width
    result["adequate"] = width < 0.1
    from abm.statistics import sobol_samples_needed

    result["samples"] = spec.samples
    result["samples_needed"] = sobol_samples_needed(spec.samples, float(width.max()))
    out = Path(out_dir)
    result.to_parquet(out / "sensitivity.parquet", index=False)
    (out / "sensitivity.json").write_text(json.dumps(result.to_dict(orient="records"), indent=2))
    return result

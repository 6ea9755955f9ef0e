"""A calibration's figure: each free parameter's profile with its interval, and every target,
fitted and held out, against the simulation at the fit (``abm calibrate`` draws it)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt

from abm.figures.style import FULL_WIDTH, PALETTE, style

#: the rise in −2 log L that bounds a 95 % profile interval (χ²₁)
CHI2_95 = 3.841458820694124


def calibration_figure(root: str | Path) -> plt.Figure:
    """Top row: for each parameter, every evaluation's distance D (−2 log synthetic
    likelihood, relative to the best) against its value, the profile (lowest D per slice), the
    3.84 line and the 95 % interval from the fitted curvature. Bottom: each target's error at
    the fit in standard deviations of the simulated statistic, fitted and held out apart."""
    root = Path(root)
    ev = pd.read_parquet(root / "evaluations.parquet")
    best = pd.read_parquet(root / "best.parquet")
    prof = pd.read_parquet(root / "profile.parquet")
    fit = pd.read_parquet(root / "fit.parquet")
    meta = json.loads((root / "manifest.json").read_text())
    seeds = meta["spec"]["seeds"]
    style()
    n = len(best)
    fig = plt.figure(figsize=(FULL_WIDTH, 2.4 + 0.3 * len(fit)))
    grid = fig.add_gridspec(2, max(n, 1), height_ratios=[1.0, 0.2 + 0.12 * len(fit)])
    dmin = float(best["best_distance"].iloc[0])
    for i, row in best.iterrows():
        ax = fig.add_subplot(grid[0, i])
        p = row["parameter"]
        d = ev["distance"].to_numpy(float) - dmin
        ok = np.isfinite(d)
        ax.scatter(ev.loc[ok, f"param_{p}"], d[ok], s=5, color="0.6", lw=0, label="evaluations")
        pr = prof[prof["parameter"] == p]
        ax.plot(pr["value"], pr["min_distance"] - dmin, color=PALETTE[0], lw=1.2, label="profile")
        ax.axhline(CHI2_95, color="0.3", ls=":", lw=0.8)
        quadratic = math.isfinite(row["ci_low"]) and not row["problem"]
        lo, hi = (
            (row["ci_low"], row["ci_high"])
            if quadratic
            else (row["profile_low"], row["profile_high"])
        )
        if math.isfinite(lo):
            ax.axvspan(
                lo,
                hi,
                color=PALETTE[1],
                alpha=0.18,
                lw=0,
                label="95 % interval" if quadratic else "95 % (profile)",
            )
            ax.axvline(row["estimate"], color=PALETTE[1], lw=1)
        top = 8 * CHI2_95
        ax.set_ylim(-0.5, top)
        near = ev.loc[ok & (d <= top), f"param_{p}"].to_numpy(float)
        if len(near) > 1 and near.max() > near.min():
            pad = 0.15 * (near.max() - near.min())
            ax.set_xlim(near.min() - pad, near.max() + pad)
        ax.set_xlabel(p)
        ax.set_title(
            f"{row['estimate']:.3g} [{lo:.3g}, {hi:.3g}]" + ("" if quadratic else " (profile)")
            if math.isfinite(lo)
            else f"not pinned down: {row['problem'][:40]}",
            fontsize=7,
        )
        if i == 0:
            ax.set_ylabel("D − D_min")
            ax.legend(loc="upper left", fontsize=6)
    ax = fig.add_subplot(grid[1, :])
    f = fit.reset_index(drop=True)
    y = np.arange(len(f))[::-1]
    colors = [PALETTE[3] if h else PALETTE[0] for h in f["held_out"]]
    ax.axvspan(-1.96, 1.96, color="0.9", lw=0)
    ax.axvline(0, color="0.3", lw=0.8)
    ax.scatter(f["z"], y, c=colors, s=18, zorder=3)
    labels = [
        f"{s}{' (held out)' if h else ''}: obs {o:.3g}, sim {m:.3g} ± {sd:.2g}"
        for s, h, o, m, sd in zip(
            f["statistic"],
            f["held_out"],
            f["observed"],
            f["simulated_mean"],
            f["simulated_sd"],
            strict=True,
        )
    ]
    ax.set_yticks(y, labels)
    lim = np.nanmax(np.abs(f["z"].to_numpy(float)))
    ax.set_xlim(-max(3, lim * 1.1), max(3, lim * 1.1))
    ax.set_xlabel(
        "(simulated − observed) / sd of the simulated statistic, at the fit\n"
        f"n = {int(f['seeds'].iloc[0])} fresh seeds at the fit; search: {len(ev)} evaluations "
        f"× {seeds} seeds"
    )
    fig.suptitle(meta["calibration"], fontsize=9)
    fig.tight_layout()
    return fig

"""The figures' look: one seaborn style, the project's palette (`abm.palette`), page sizes,
reproducible files, and the marks every time axis shares (harvest window, deadline)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from scipy import stats

from abm.build import calendar, harvest_start_step
from abm.palette import COLORBLIND, SERIES_COLORS
from abm.results import RunResult

PALETTE = list(COLORBLIND)
COLUMN_WIDTH = 3.5  # inches, one journal column
FULL_WIDTH = 7.2
DEADLINE_STYLE = dict(color="0.25", ls="--", lw=0.9)
HARVEST_STYLE = dict(color=SERIES_COLORS["harvest_window"], alpha=0.12, lw=0)


def style() -> None:
    """One consistent style: readable at column width, colour-blind-safe palette."""
    sns.set_theme(
        context="paper",
        style="ticks",
        palette=PALETTE,
        font_scale=1.0,
        rc={
            "axes.spines.right": False,
            "axes.spines.top": False,
            "figure.dpi": 150,
            "savefig.dpi": 200,
            "savefig.bbox": "tight",
            "legend.frameon": False,
            "font.size": 8,
            "axes.titlesize": 9,
            "axes.labelsize": 8,
            "legend.fontsize": 7,
            "xtick.labelsize": 7,
            "ytick.labelsize": 7,
            "pdf.fonttype": 42,
        },
    )


def save(fig: plt.Figure, out_dir: Path, name: str) -> list[Path]:
    """Write ``name.pdf`` and ``name.png`` without timestamps, so reruns give the same files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pdf, png = out_dir / f"{name}.pdf", out_dir / f"{name}.png"
    # a page is 7.2 in wide at most: a tight box that outgrows it is shrunk to fit
    fig.canvas.draw()
    box = fig.get_tightbbox(fig.canvas.get_renderer())
    if box.width + 0.04 > FULL_WIDTH:
        k = (FULL_WIDTH - 0.04) / box.width
        fig.set_size_inches(fig.get_figwidth() * k, fig.get_figheight() * k)
    kw = {"bbox_inches": "tight", "pad_inches": 0.02}
    fig.savefig(pdf, metadata={"CreationDate": None, "Producer": None, "Creator": None}, **kw)
    fig.savefig(png, dpi=300, metadata={"Software": None}, **kw)
    plt.close(fig)
    return [pdf, png]


# -- time axes ---------------------------------------------------------------------------------


def days_axis(run: RunResult) -> tuple[np.ndarray, float, float, float]:
    """x axis in trading days, and the harvest start, deadline and end of deadline day (days),
    from the run's calendar (`abm.build.calendar`)."""
    cal = calendar(run.config)
    spd = cal.steps_per_day
    x = run.timeseries.index.to_numpy() / spd
    harvest = harvest_start_step(run.config) / spd
    return x, harvest, cal.deadline_step / spd, cal.deadline_day + 1.0


def mark_deadline(ax: plt.Axes, run: RunResult, label: bool = True) -> None:
    _, harvest, deadline, _ = days_axis(run)
    ax.axvspan(harvest, deadline, **HARVEST_STYLE, label="harvest window" if label else None)
    ax.axvline(deadline, **DEADLINE_STYLE, label="forced-close deadline" if label else None)


def unit(run: RunResult) -> str:
    return {"WTI": "$/bbl", "rebar": "¥/t"}.get(run.config.contract.name, "price units")


# -- means and intervals over seeds -------------------------------------------------------------


def mean_ci(df: pd.DataFrame, by: str, col: str) -> pd.DataFrame:
    """Mean, 95 % interval (t, over replicates) and n of ``col`` for each value of ``by``."""
    g = df.groupby(by)[col]
    out = pd.DataFrame({"mean": g.mean(), "sd": g.std(ddof=1), "n": g.count()})
    t = stats.t.ppf(0.975, np.maximum(out["n"] - 1, 1))
    out["half"] = t * out["sd"] / np.sqrt(out["n"])
    return out


def ci_line(ax: plt.Axes, m: pd.DataFrame, color, label: str, marker: str = "o", x=None) -> None:
    """Means with their 95 % intervals, at ``x`` (default: the index of ``m``)."""
    ax.errorbar(
        m.index if x is None else x,
        m["mean"],
        yerr=m["half"],
        color=color,
        marker=marker,
        ms=3,
        lw=1,
        capsize=2,
        label=label,
    )


def finite_mean_ci(values) -> dict[str, float]:
    """`abm.statistics.mean_ci` of the finite values: mean, 95 % interval (lo, hi), n."""
    from abm.statistics import mean_ci as _m

    v = np.asarray(values, dtype=float)
    return _m(v[np.isfinite(v)])

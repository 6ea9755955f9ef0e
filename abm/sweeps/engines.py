"""The crowd engines held against each other: a stored sweep that varies ``retail.engine``
(``experiments/sweeps/crowd_engines.toml``) compared metric by metric.

The netted engine is not the per-agent engine run faster: it changes how the crowd's orders
reach the book (ODD §7). What it claims is that every summary metric keeps its distribution.
[`engine_comparison()`][abm.sweeps.engines.engine_comparison] tests that claim on the stored
runs (a two-sample Kolmogorov–Smirnov test per metric, Holm-corrected,
[`abm.statistics.compare_distributions`][abm.statistics.compare_distributions]);
[`engine_figure()`][abm.sweeps.engines.engine_figure] draws the headline metrics' distributions
for both engines. ``abm engines FOLDER`` does both and stores the table next to the runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from abm.statistics import compare_distributions

#: the sweep's column naming the engine of each run
ENGINE = "param_retail_engine"
#: columns of a sweep's runs that are not model outputs: identity, timing, and the ledger
#: residuals (the accounting check's rounding, zero to 1e-9 of the money in both engines)
NOT_OUTPUTS = {
    "run_id",
    "point",
    "replicate",
    "seed",
    "spec_hash",
    "run_seconds",
    "wall_seconds",
    "ledger_residual",
    "next_ledger_residual",
}
#: outputs whose difference between the engines is by construction, not a finding: the count
#: of broker orders (the netted crowd's liquidations go out as one omnibus order a side, the
#: per-agent broker's as one per account)
BY_CONSTRUCTION = {"n_liquidation_orders"}
#: what the figure draws
HEADLINE = (
    "transfer_retail_to_hedger",
    "ndnp_at_deadline",
    "basis_at_forced_close",
    "pnl_retail",
    "n_margin_calls",
    "n_liquidations",
)


def outputs(runs: pd.DataFrame) -> list[str]:
    """The numeric output columns of a sweep's runs worth comparing: not identity or timing,
    not a parameter, not by construction, finite in at least two runs."""
    cols = []
    for c in runs.columns:
        if c in NOT_OUTPUTS or c in BY_CONSTRUCTION or c.startswith("param_"):
            continue
        s = runs[c]
        if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
            continue
        if np.isfinite(s.to_numpy(float)).sum() >= 2:
            cols.append(c)
    return cols


def split(runs: pd.DataFrame, a: str = "agents", b: str = "netted") -> tuple[pd.DataFrame, ...]:
    """The runs of engine ``a`` and of engine ``b``; an error names what the sweep holds if
    either is missing."""
    if ENGINE not in runs.columns:
        raise ValueError(
            f"the sweep does not vary retail.engine (no column {ENGINE}); run one that does, "
            "e.g. `abm sweep crowd_engines`"
        )
    held = sorted(runs[ENGINE].dropna().unique())
    parts = []
    for e in (a, b):
        part = runs[runs[ENGINE] == e]
        if len(part) < 2:
            raise ValueError(
                f"retail.engine = {e!r}: {len(part)} runs stored, 2 or more needed; the sweep "
                f"holds engines {held}"
            )
        parts.append(part)
    return tuple(parts)


def engine_comparison(runs: pd.DataFrame, level: float = 0.01) -> pd.DataFrame:
    """Every output's distribution under the per-agent and the netted engine (rows: metrics;
    ``mean_a`` per-agent, ``mean_b`` netted), tested at ``level`` after Holm's correction;
    and, the runs being paired on seeds (replicate k of both engines shares a seed), the
    paired difference netted − per-agent with its 95 % interval (``diff``, ``diff_lo``,
    ``diff_hi``, ``n_pairs``; NaN where a metric is not finite in every pair)."""
    from abm.statistics import paired_effect

    agents, netted = split(runs)
    cols = [c for c in outputs(runs) if c != ENGINE]
    table = compare_distributions(agents, netted, level=level, columns=cols)
    a = agents.set_index("replicate") if "replicate" in agents else agents
    b = netted.set_index("replicate") if "replicate" in netted else netted
    common = a.index.intersection(b.index)
    diffs = []
    for c in table["metric"]:
        x = pd.to_numeric(b.loc[common, c], errors="coerce").to_numpy(float)
        y = pd.to_numeric(a.loc[common, c], errors="coerce").to_numpy(float)
        if len(common) >= 2 and np.isfinite(x).all() and np.isfinite(y).all():
            e = paired_effect(x, y)
            diffs.append((e["mean"], e["lo"], e["hi"], e["n"]))
        else:
            diffs.append((np.nan, np.nan, np.nan, 0))
    table[["diff", "diff_lo", "diff_hi", "n_pairs"]] = pd.DataFrame(diffs, index=table.index)
    return table


def engine_figure(runs: pd.DataFrame, table: pd.DataFrame, path: Path) -> Path:
    """Empirical distributions of the headline metrics under both engines, one panel each,
    with the test's Holm-adjusted p; n per engine in the title. Writes ``path`` (PNG)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    agents, netted = split(runs)
    shown = [m for m in HEADLINE if m in table["metric"].values]
    fig, axes = plt.subplots(2, 3, figsize=(11, 6.2), squeeze=False)
    p_of = table.set_index("metric")["p_holm"]
    for ax, m in zip(axes.ravel(), shown, strict=False):
        long = pd.concat(
            [
                pd.DataFrame({"value": agents[m].to_numpy(float), "engine": "agents"}),
                pd.DataFrame({"value": netted[m].to_numpy(float), "engine": "netted"}),
            ],
            ignore_index=True,
        )
        sns.ecdfplot(data=long, x="value", hue="engine", ax=ax)
        p = p_of.get(m, np.nan)
        ax.set_title(f"{m}\nHolm p = {p:.2f}" if np.isfinite(p) else m, fontsize=9)
        ax.set_xlabel("")
    for ax in axes.ravel()[len(shown) :]:
        ax.set_visible(False)
    fig.suptitle(
        f"Per-agent against netted crowd: n = {len(agents)} and {len(netted)} runs on the same "
        "seeds",
        fontsize=11,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path

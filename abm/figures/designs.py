"""Figures of sweeps, means and 95 % intervals over paired seeds at each design point: the
transfer heatmap (F2), the lead (F3), delivery capacity against theory (F4), Sobol indices
(F8), the comparative statics against theory (F10), the margin lever (F11) and the NDNP as
the design variable (F12)."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import pyplot as plt
from scipy import stats

from abm.figures.style import (
    COLUMN_WIDTH,
    DEADLINE_STYLE,
    FULL_WIDTH,
    PALETTE,
    ci_line,
    mean_ci,
)
from abm.palette import CHANNEL_COLORS, CLASS_COLORS, SERIES_COLORS

SIM, THEORY = SERIES_COLORS["simulated"], SERIES_COLORS["theory"]
HARVEST = CHANNEL_COLORS["harvest_forced_close"]

# -- F2 ----------------------------------------------------------------------------------------


def f2_transfer_heatmap(sweep: pd.DataFrame) -> plt.Figure:
    """Wealth transfer retail → hedger over retail long share × margin rate (mean of seeds)."""
    fig, axes = plt.subplots(1, 2, figsize=(FULL_WIDTH, 2.9))
    for ax, (col, title) in zip(
        axes,
        (
            ("transfer_retail_to_hedger_harvest_forced_close", "Harvest and forced close"),
            ("transfer_retail_to_hedger", "All channels"),
        ),
        strict=True,
    ):
        grid = (
            sweep.pivot_table(
                index="margin_rate", columns="retail_long_share", values=col, aggfunc="mean"
            ).sort_index(ascending=False)
            / 1e3
        )
        half = (
            sweep.pivot_table(
                index="margin_rate",
                columns="retail_long_share",
                values=col,
                aggfunc=lambda v: (
                    stats.t.ppf(0.975, max(len(v) - 1, 1)) * np.std(v, ddof=1) / np.sqrt(len(v))
                ),
            ).sort_index(ascending=False)
            / 1e3
        )
        # a cell whose 95 % interval overlaps its right-hand neighbour's (the next long share)
        # is not resolved from it: marked with a ring
        lo, hi = grid - half, grid + half
        unresolved = (lo.iloc[:, 1:].to_numpy() <= hi.iloc[:, :-1].to_numpy()) & (
            hi.iloc[:, 1:].to_numpy() >= lo.iloc[:, :-1].to_numpy()
        )
        sns.heatmap(
            grid,
            ax=ax,
            cmap="viridis",
            annot=True,
            fmt=".0f",
            annot_kws={"fontsize": 6},
            cbar_kws={"label": "transfer (thousand money)"},
        )
        for i, j in zip(*np.nonzero(unresolved), strict=True):
            ax.plot(j + 1.5, i + 0.82, "o", mfc="none", mec="w", ms=4, mew=0.7)
        ax.set_title(f"{title}\n(ring: interval overlaps the left neighbour's)", fontsize=8)
        ax.set_xlabel("retail long share")
        ax.set_ylabel("margin rate")
        ax.set_yticklabels([f"{float(t.get_text()):.2f}" for t in ax.get_yticklabels()], rotation=0)
        ax.set_xticklabels([f"{float(t.get_text()):.1f}" for t in ax.get_xticklabels()])
    fig.tight_layout()
    return fig


def f3_divergence_vs_lead(sweep: pd.DataFrame) -> plt.Figure:
    """Divergence and transfer at the forced close against the forced-close lead: under a daily
    band the harvest can wait for the band to walk, so a longer lead lets it go further
    (mean and 95 % interval over seeds)."""
    df = sweep.assign(transfer=sweep["transfer_retail_to_hedger_harvest_forced_close"] / 1e3)
    n = int(df.groupby("forced_close_lead_days").size().min())
    fig, axes = plt.subplots(1, 2, figsize=(FULL_WIDTH, 2.5))
    ax = axes[0]
    ci_line(ax, mean_ci(df, "forced_close_lead_days", "harvest_discount"), SIM, "simulated")
    ci_line(
        ax,
        mean_ci(df, "forced_close_lead_days", "theory_divergence"),
        THEORY,
        "theory (NDNP at the deadline)",
        "s",
    )
    ax.set_xlabel("forced-close lead (trading days before the last)")
    ax.set_ylabel("divergence at the forced close\n(price units below fair)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="lower right")
    ax = axes[1]
    ci_line(ax, mean_ci(df, "forced_close_lead_days", "transfer"), HARVEST, "simulated")
    ax.set_xlabel("forced-close lead (trading days before the last)")
    ax.set_ylabel("harvest transfer (thousand money)")
    ax.set_ylim(bottom=0)
    for a in axes:
        a.set_title(f"n = {n} seeds per point", fontsize=7)
    fig.tight_layout()
    return fig


# -- F4 ----------------------------------------------------------------------------------------


def f4_divergence_vs_capacity(
    sweep: pd.DataFrame, delivery_cost: float = 2.0, tick: float = 1.0
) -> plt.Figure:
    """Divergence against the arbitrageurs' delivery capacity: simulated and the closed form for
    each run's NDNP at the deadline (mean and 95 % interval over seeds).

    The theory is the one every run is held against, on the book's tick grid: the fringe takes
    any lot priced beyond its cost c_f, so where its room covers the need the firm bids the
    last tick short of c_f, d* = max(c_f − δ, (Q/κ + c_f − c_h)/2) with 0 < δ ≤ one tick (the
    continuous form's max(c_f, …) with the tick made explicit); the shaded band is that last
    tick."""
    n = int(sweep.groupby("arbitrage_capacity").size().min())
    d = sweep.assign(capacity=sweep["arbitrage_capacity"] / 1e3)
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.6))
    ax.axhspan(
        delivery_cost - tick,
        delivery_cost,
        color=SERIES_COLORS["theory"],
        alpha=0.12,
        lw=0,
        label="last tick short of $c_f$",
    )
    ax.axhline(delivery_cost, color="0.3", lw=0.8, ls=":", label="their delivery cost $c_f$")
    ci_line(ax, mean_ci(d, "capacity", "harvest_discount"), SIM, "simulated")
    ci_line(
        ax,
        mean_ci(d, "capacity", "theory_divergence"),
        THEORY,
        "theory on the tick grid",
        "s",
    )
    ndnp = sweep["ndnp_at_deadline"].abs().mean() / 1e3
    ax.axvline(ndnp, **DEADLINE_STYLE)
    ax.annotate("mean |NDNP|", (ndnp, ax.get_ylim()[1] * 0.5), rotation=90, fontsize=6, ha="right")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(6, integer=True))
    ax.set_xlabel("delivery-arbitrage capacity (thousand lots)")
    ax.set_ylabel("divergence (price units)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"n = {n} seeds per point", fontsize=7)
    ax.legend(loc="upper right", fontsize=6)
    fig.tight_layout()
    return fig


# -- F8 ----------------------------------------------------------------------------------------

OUTPUT_LABELS = {
    "transfer_retail_to_hedger_harvest_forced_close": "Transfer (harvest channel)",
    "max_abs_basis_final_window": "Divergence (max |basis|, final window)",
}


def _sobol_bars(ax: plt.Axes, d: pd.DataFrame) -> None:
    y = np.arange(len(d))
    for key, dy, color, label in (
        ("S1", -0.2, PALETTE[0], "first order S1"),
        ("ST", 0.2, PALETTE[1], "total ST"),
    ):
        lo = d[f"{key}_lo"] if f"{key}_lo" in d else d[key] - d[f"{key}_conf"]
        hi = d[f"{key}_hi"] if f"{key}_hi" in d else d[key] + d[f"{key}_conf"]
        err = np.vstack([(d[key] - lo).clip(lower=0), (hi - d[key]).clip(lower=0)])
        ax.barh(
            y + dy,
            d[key],
            height=0.38,
            xerr=err,
            color=color,
            label=label,
            error_kw={"lw": 0.7},
        )
    ax.set_yticks(y, [PARAMETER_LABELS.get(p, p) for p in d["parameter"]])
    ax.axvline(0, color="0.5", lw=0.6)


#: short names of the swept parameters on the Sobol figure
PARAMETER_LABELS = {
    "retail.ndnp_target": "NDNP at the deadline",
    "margin_rate": "margin rate",
    "forced_close_lead_days": "forced-close lead",
    "arbitrage_capacity": "arbitrage capacity",
    "n_firms": "firms",
    "retail_long_share": "retail long share",
}


def f8_sobol(indices: pd.DataFrame) -> plt.Figure:
    """First-order and total Sobol indices with 95 % intervals, one panel per output and one
    row per estimate: direct (Saltelli) and, where stored, on the Gaussian-process emulator;
    each row's title says whether every interval is narrower than 0.1."""
    from abm.sweeps.sensitivity import Q2_MIN, WIDTH_MAX

    if "method" not in indices:
        indices = indices.assign(method="saltelli")
    outputs = list(dict.fromkeys(indices["output"]))
    methods = [m for m in ("emulator", "saltelli") if m in set(indices["method"])]
    fig = plt.figure(figsize=(FULL_WIDTH, 0.6 + 2.1 * len(methods)), layout="constrained")
    subs = np.atleast_1d(fig.subfigures(len(methods), 1))
    n = int(indices["samples"].iloc[0]) if "samples" in indices else None
    first_ax = None
    for sub, method in zip(subs, methods, strict=True):
        rows = indices[indices["method"] == method]
        widest = float(rows["interval_width"].max()) if "interval_width" in rows else np.nan
        ok = bool(rows["adequate"].all()) if "adequate" in rows else False
        axes = sub.subplots(1, len(outputs), sharey=True, squeeze=False)[0]
        for ax, out in zip(axes, outputs, strict=True):
            d = rows[rows["output"] == out].reset_index(drop=True)
            _sobol_bars(ax, d)
            extra = f"Q² = {float(d['q2'].iloc[0]):.2f}" if method == "emulator" else f"N = {n}"
            ax.set_title(f"{OUTPUT_LABELS.get(out, out)}; {extra}", fontsize=7)
            ax.set_xlabel("Sobol index")
        axes[0].invert_yaxis()
        first_ax = first_ax or axes[0]
        if method == "emulator":
            verdict = (
                f"every interval < {WIDTH_MAX} and Q² ≥ {Q2_MIN}"
                if ok
                else f"NOT adequate: widest interval {widest:.2f} (target < {WIDTH_MAX}, "
                f"Q² ≥ {Q2_MIN})"
            )
            label = "On a Gaussian-process emulator of the same points"
        else:
            verdict = (
                f"every interval < {WIDTH_MAX}"
                if ok
                else f"NOT adequate: widest interval {widest:.2f}; "
                f"N ≈ {int(rows['samples_needed'].iloc[0]):,} needed"
            )
            label = "Direct (Saltelli)"
        sub.suptitle(f"{label}: {verdict}", fontsize=7.5, weight="bold")
    h, lab = first_ax.get_legend_handles_labels()
    subs[-1].legend(h, lab, loc="outside lower center", ncol=2)
    return fig


# -- F10 ---------------------------------------------------------------------------------------

STATICS = (
    ("retail_long_share", "retail long share", "the crowd's net position"),
    ("commercials_cost_slope", "fringe depth κ (lots per price unit)", "the fringe's depth"),
    ("n_firms", "delivery-capable firms", "competing firms"),
    ("forced_close_lead_days", "forced-close lead (days)", "the lead, under a ±4 % band"),
)


def f10_comparative_statics(sweep: pd.DataFrame) -> plt.Figure:
    """The divergence at the forced close against each lever, the others at their base (mean
    and 95 % interval over seeds): it rises with the crowd's net position, falls with the
    fringe's depth down to its cost and with the number of firms, and rises with the lead."""
    fig, axes = plt.subplots(1, 4, figsize=(FULL_WIDTH, 2.3), sharey=True)
    cols = ["param_" + lever for lever, _, _ in STATICS]
    for ax, (lever, xlabel, title) in zip(axes, STATICS, strict=True):
        col = "param_" + lever
        if col not in sweep:
            rows = sweep.iloc[:0]
        else:
            # this lever's points: it is set and no other lever but the long share is
            others = [c for c in cols[1:] if c != col and c in sweep]
            rows = sweep[sweep[col].notna() & sweep[others].isna().all(axis=1)]
        if lever == "commercials_cost_slope":
            rows = rows.assign(depth=(1.0 / rows[col]).round(6))
            x = "depth"
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator([20, 50, 100, 200, 500]))
            ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        else:
            x = lever if lever in rows else col
        if len(rows):
            n = int(rows.groupby(x).size().min())
            ci_line(ax, mean_ci(rows, x, "harvest_discount"), SIM, "simulated")
            ci_line(ax, mean_ci(rows, x, "theory_divergence"), THEORY, "theory", "s")
            ax.set_title(f"{title} (n = {n})", fontsize=7)
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel("divergence at the forced close\n(price units)")
    axes[0].set_ylim(bottom=0)
    axes[0].legend(loc="upper left", fontsize=6)
    fig.tight_layout()
    return fig


# -- F11 ---------------------------------------------------------------------------------------

MARGIN_OUTPUTS = (
    ("harvest_discount", "divergence at the forced close\n(price units)", 1.0),
    ("transfer_retail_to_hedger_harvest_forced_close", "harvest transfer\n(thousand money)", 1e3),
    ("n_liquidations", "margin liquidations\n(accounts)", 1.0),
    ("max_cascade_lots", "largest liquidation chain\n(lots)", 1.0),
)


def f11_margin_effect(default: pd.DataFrame, rebar: pd.DataFrame) -> plt.Figure:
    """The margin lever: each output against the base margin rate (the step-ups move with it)
    for a balanced and a one-sided crowd on the default market and for china_rebar (mean and
    95 % interval over seeds)."""
    groups = [
        (default[default["retail_long_share"] == 0.5], "default, 50 % long", PALETTE[0]),
        (default[default["retail_long_share"] == 0.9], "default, 90 % long", PALETTE[1]),
        (rebar, "china_rebar, 60 % long", PALETTE[2]),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(FULL_WIDTH, 2.4))
    for ax, (col, label, scale) in zip(axes, MARGIN_OUTPUTS, strict=True):
        for rows, name, color in groups:
            if len(rows):
                m = mean_ci(rows.assign(v=rows[col] / scale), "margin_rate", "v")
                ci_line(ax, m, color, name)
        ax.set_xlabel("base margin rate")
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
    n = int(min(g.groupby("margin_rate").size().min() for g, _, _ in groups if len(g)))
    axes[0].set_title(f"n = {n} seeds per point", fontsize=7)
    axes[0].set_yscale("symlog", linthresh=10)
    axes[1].set_yscale("symlog", linthresh=10)
    h, lab = axes[0].get_legend_handles_labels()
    fig.legend(h, lab, loc="lower center", ncol=3, bbox_to_anchor=(0.5, -0.04))
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


# -- F12 ---------------------------------------------------------------------------------------


def f12_ndnp_design(sweep: pd.DataFrame) -> plt.Figure:
    """The NDNP at the deadline as the design variable, against the same seeds without a
    harvest: divergence in both arms, and the paired effect of the harvest on the crowd."""
    df = sweep.copy()
    by = "ndnp_target"
    if by not in df and "param_ndnp_target" in df:
        df[by] = df["param_ndnp_target"]
    n = int(df.groupby(by).size().min())
    x = mean_ci(df, by, "ndnp_at_deadline")
    fig, axes = plt.subplots(1, 2, figsize=(FULL_WIDTH, 2.7))
    ax = axes[0]
    for col, color, label, marker in (
        ("harvest_discount", SIM, "with the harvest", "o"),
        ("cf_harvest_discount", SERIES_COLORS["counterfactual"], "no harvest (same seeds)", "s"),
        ("theory_divergence", THEORY, "theory (NDNP at the deadline)", "^"),
    ):
        ci_line(ax, mean_ci(df, by, col), color, label, marker, x=x["mean"])
    ax.set_xlabel("realised NDNP at the deadline (lots)")
    ax.set_ylabel("divergence at the forced close\n(price units from fair)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left")
    ax = axes[1]
    for col, color, label in (
        ("effect_pnl_retail", CLASS_COLORS["retail"], "crowd's P&L"),
        (
            "effect_transfer_retail_to_hedger_harvest_forced_close",
            HARVEST,
            "transfer to the hedger, harvest channel",
        ),
    ):
        ci_line(ax, mean_ci(df.assign(v=df[col] / 1e3), by, "v"), color, label, x=x["mean"])
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_xlabel("realised NDNP at the deadline (lots)")
    ax.set_ylabel("paired effect of the harvest\n(thousand money, run − no harvest)")
    ax.legend(loc="lower left")
    for a in axes:
        a.set_title(f"n = {n} seeds per target, paired", fontsize=7)
    fig.tight_layout()
    return fig


# -- F13 ---------------------------------------------------------------------------------------

#: the arms of harvest_discovered besides the statics, by the one setting that marks them
DISCOVERED_ARMS = (
    ("param_hedger_spread_policy", "optimal", "full information"),
    ("param_commercials_show_levels", 0, "passive fringe"),
    ("param_commercials_harvest_markup", 2.0, "fringe holds back 2"),
    ("param_hedger_knows_ndnp", False, "no NDNP report"),
)
_ARM_COLUMNS = tuple(
    c
    for c in (
        "param_hedger_spread_policy",
        "param_commercials_show_levels",
        "param_commercials_harvest_markup",
        "param_hedger_knows_ndnp",
        "param_contract_price_limit",
        "param_forced_close_lead_days",
        "param_margin_rate",
        "param_hedger_delivery_cost",
    )
)


def discovered_cases(sweep: pd.DataFrame) -> pd.DataFrame:
    """harvest_discovered's interior statics, one row per run, with the case's long share,
    fringe depth κ (lots per price unit) and number of firms: the runs with none of the arms'
    settings (desk view, the iceberg fringe, the ±50 % band)."""
    arm = [c for c in _ARM_COLUMNS if c in sweep]
    rows = sweep[sweep[arm].isna().all(axis=1)] if arm else sweep
    slope = rows.get("param_commercials_cost_slope", pd.Series(np.nan, index=rows.index))
    firms = rows.get("param_n_firms", pd.Series(np.nan, index=rows.index))
    return rows.assign(
        kappa=(1.0 / slope.fillna(0.05)).round(6),
        firms=firms.fillna(1).astype(int),
        share=rows["param_retail_long_share"],
    )


def paired_to_base(sweep: pd.DataFrame, rows: pd.DataFrame, col: str) -> np.ndarray:
    """``col`` of ``rows`` minus the base point's (long share 0.9, no other setting), replicate
    by replicate (the same seeds)."""
    base = discovered_cases(sweep)
    base = base[(base["share"] == 0.9) & (base["firms"] == 1) & (base["kappa"] == 20)]
    b = base.set_index("replicate")[col]
    x = rows.set_index("replicate")[col]
    both = x.index.intersection(b.index)
    return (x[both] - b[both]).to_numpy()


def f13_harvest_discovered(sweep: pd.DataFrame) -> plt.Figure:
    """The harvest as desk-view firms find it, against the ex-ante theory (interior regime):
    each (long share, κ) case's simulated discount against the prediction made when the window
    opens (left; the band: ±15 %); the discount against the number of firms, with the Cournot
    prediction (middle); the paired effect of each labelled arm on the discount (right)."""
    fig, axes = plt.subplots(1, 3, figsize=(FULL_WIDTH, 2.5))
    cases = discovered_cases(sweep)
    one = cases[cases["firms"] == 1]
    ax = axes[0]
    n = 0
    top = 0.0
    for (share, kappa), g in one.groupby(["share", "kappa"]):
        sim = mean_ci(g.assign(k=0), "k", "harvest_discount_vwap").iloc[0]
        th = mean_ci(g.assign(k=0), "k", "theory_ex_ante_divergence").iloc[0]
        ax.errorbar(
            th["mean"],
            sim["mean"],
            xerr=th["half"],
            yerr=sim["half"],
            color=SIM,
            marker="o",
            ms=3,
            lw=1,
            capsize=2,
        )
        ax.annotate(
            f"{share:g}, κ={kappa:g}",
            (th["mean"], sim["mean"]),
            fontsize=5,
            xytext=(3, -6),
            textcoords="offset points",
        )
        n = int(sim["n"])
        top = max(top, th["mean"] + th["half"], sim["mean"] + sim["half"])
    line = np.array([0.0, top * 1.1])
    ax.plot(line, line, color=THEORY, lw=0.8, label="= theory")
    ax.fill_between(line, 0.85 * line, 1.15 * line, color=THEORY, alpha=0.12, lw=0, label="±15 %")
    ax.set_xlabel("ex-ante theory (price units)")
    ax.set_ylabel("simulated discount, VWAP\n(price units)")
    ax.set_title(f"(long share, κ) cases (n = {n})", fontsize=7)
    ax.legend(loc="upper left", fontsize=6)
    ax = axes[1]
    firms = cases[(cases["share"] == 0.9) & (cases["kappa"] == 20)]
    ci_line(ax, mean_ci(firms, "firms", "harvest_discount_vwap"), SIM, "simulated")
    ci_line(ax, mean_ci(firms, "firms", "theory_ex_ante_divergence"), THEORY, "Cournot", "s")
    ax.set_xlabel("firms")
    ax.set_xticks(sorted(firms["firms"].unique()))
    ax.set_ylim(bottom=0)
    ax.set_title(f"concentration (n = {int(firms.groupby('firms').size().min())})", fontsize=7)
    ax.legend(fontsize=6)
    ax = axes[2]
    labels, means, halves = [], [], []
    for col, value, label in DISCOVERED_ARMS:
        if col not in sweep:
            continue
        rows = sweep[sweep[col] == value]
        rows = rows[[c for c in _ARM_COLUMNS if c != col and c in sweep]].isna().all(axis=1)
        rows = sweep.loc[rows[rows].index]
        rows = rows[rows[col] == value]
        d = paired_to_base(sweep, rows, "harvest_discount_vwap")
        if len(d) < 2:
            continue
        labels.append(f"{label} (n = {len(d)})")
        means.append(d.mean())
        halves.append(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    y = np.arange(len(labels))
    ax.errorbar(means, y, xerr=halves, fmt="o", color=SIM, ms=3, capsize=2, lw=1)
    ax.axvline(0, color="0.5", lw=0.6)
    ax.set_yticks(y, labels, fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel("paired effect on the discount\n(price units, vs the desk-view base)")
    fig.tight_layout()
    return fig

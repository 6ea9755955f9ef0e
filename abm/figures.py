"""The paper's figures, drawn from stored results only (``abm figures``).

Each ``f*`` function takes loaded data and returns a matplotlib Figure, so a researcher can
restyle one in a notebook; :func:`make_all` loads ``results/paper`` (see ``abm reproduce``),
draws all eleven, writes each as PDF (vector) and PNG, and indexes them in ``README.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from scipy import stats

from abm.metrics import autocorr
from abm.results import RunResult, load, load_run, load_timeseries

PALETTE = sns.color_palette("colorblind")
COLUMN_WIDTH = 3.5  # inches, one journal column
FULL_WIDTH = 7.2
DEADLINE_STYLE = dict(color="0.25", ls="--", lw=0.9)
HARVEST_STYLE = dict(color=PALETTE[3], alpha=0.12, lw=0)


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


# -- helpers -----------------------------------------------------------------------------------


def _days(run: RunResult) -> tuple[np.ndarray, float, float, float]:
    """x axis in trading days, and the harvest start, deadline and end of deadline day (days)."""
    cal = run.config.calendar
    spd = cal.steps_per_day
    x = run.timeseries.index.to_numpy() / spd
    deadline_day = cal.trading_days - 1 - cal.forced_close_lead_days
    deadline = deadline_day + cal.forced_close_step / spd
    harvest = max(0.0, deadline - run.config.hedger.harvest_window_steps / spd)
    return x, harvest, deadline, deadline_day + 1.0


def mark_deadline(ax: plt.Axes, run: RunResult, label: bool = True) -> None:
    _, harvest, deadline, _ = _days(run)
    ax.axvspan(harvest, deadline, **HARVEST_STYLE, label="harvest window" if label else None)
    ax.axvline(deadline, **DEADLINE_STYLE, label="forced-close deadline" if label else None)


def _unit(run: RunResult) -> str:
    return {"WTI": "$/bbl", "rebar": "¥/t"}.get(run.config.contract.name, "price units")


# -- F1 ----------------------------------------------------------------------------------------


def f1_price_paths(balanced: RunResult, one_sided: RunResult, last_days: float = 8.0) -> plt.Figure:
    """Futures, spot and basis over the last ``last_days`` trading days to expiry for a
    balanced and a one-sided crowd: the harvest window and the deadline readable."""
    fig, axes = plt.subplots(
        2, 2, figsize=(FULL_WIDTH, 4.2), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    for col, (run, title) in enumerate(
        ((balanced, "Balanced crowd (50 % long)"), (one_sided, "One-sided crowd (90 % long)"))
    ):
        x_all, *_ = _days(run)
        keep = x_all >= run.config.calendar.trading_days - last_days
        ts = run.timeseries[keep]
        x = x_all[keep]
        traded = ts["futures_vwap"].notna().to_numpy()
        ax = axes[0, col]
        ax.plot(x, ts["mid"], color=PALETTE[1], lw=0.5, alpha=0.8, label="futures mid-quote")
        ax.plot(
            x[traded],
            ts["futures_vwap"].to_numpy()[traded],
            ".",
            color=PALETTE[1],
            ms=1.2,
            alpha=0.5,
            label="futures trades (step VWAP)",
        )
        ax.plot(x, ts["spot"], color=PALETTE[0], lw=1.0, label="spot")
        mark_deadline(ax, run, label=(col == 0))
        ndnp = run.summary["ndnp_at_deadline"]
        ax.set_title(f"{title}\nNDNP at the deadline {ndnp:+,d} lots")
        ax.set_ylabel(f"price ({_unit(run)})")
        ax = axes[1, col]
        ax.plot(x, ts["mid"] - ts["spot"], color=PALETTE[2], lw=0.5, label="basis (mid)")
        ax.plot(
            x[traded],
            (ts["futures_vwap"] - ts["spot"]).to_numpy()[traded],
            ".",
            color=PALETTE[2],
            ms=1.2,
            alpha=0.5,
            label="basis (trades)",
        )
        ax.axhline(0, color="0.6", lw=0.6)
        mark_deadline(ax, run, label=False)
        ax.set_ylabel(f"basis ({_unit(run)})")
        ax.set_xlabel("trading day")
        ax.set_xlim(run.config.calendar.trading_days - last_days, run.config.calendar.trading_days)
    lo = min(a.get_ylim()[0] for a in axes[1])
    hi = max(a.get_ylim()[1] for a in axes[1])
    for a in axes[1]:
        a.set_ylim(lo, hi)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    h2, l2 = axes[1, 0].get_legend_handles_labels()
    fig.legend(
        handles + h2,
        labels + l2,
        loc="lower center",
        ncol=4,
        markerscale=6,
        bbox_to_anchor=(0.5, -0.03),
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


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


# -- F3 ----------------------------------------------------------------------------------------


def mean_ci(df: pd.DataFrame, by: str, col: str) -> pd.DataFrame:
    """Mean, 95 % interval (t, over replicates) and n of ``col`` for each value of ``by``."""
    g = df.groupby(by)[col]
    out = pd.DataFrame({"mean": g.mean(), "sd": g.std(ddof=1), "n": g.count()})
    t = stats.t.ppf(0.975, np.maximum(out["n"] - 1, 1))
    out["half"] = t * out["sd"] / np.sqrt(out["n"])
    return out


def _ci_line(ax: plt.Axes, m: pd.DataFrame, color, label: str, marker: str = "o", x=None) -> None:
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


def f3_divergence_vs_lead(sweep: pd.DataFrame) -> plt.Figure:
    """Divergence and transfer at the forced close against the forced-close lead: under a daily
    band the harvest can wait for the band to walk, so a longer lead lets it go further
    (mean and 95 % interval over seeds)."""
    df = sweep.assign(transfer=sweep["transfer_retail_to_hedger_harvest_forced_close"] / 1e3)
    n = int(df.groupby("forced_close_lead_days").size().min())
    fig, axes = plt.subplots(1, 2, figsize=(FULL_WIDTH, 2.5))
    ax = axes[0]
    _ci_line(ax, mean_ci(df, "forced_close_lead_days", "harvest_discount"), PALETTE[1], "simulated")
    _ci_line(
        ax,
        mean_ci(df, "forced_close_lead_days", "theory_divergence"),
        PALETTE[0],
        "theory (NDNP at the deadline)",
        "s",
    )
    ax.set_xlabel("forced-close lead (trading days before the last)")
    ax.set_ylabel("divergence at the forced close\n(price units below fair)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="lower right")
    ax = axes[1]
    _ci_line(ax, mean_ci(df, "forced_close_lead_days", "transfer"), PALETTE[3], "simulated")
    ax.set_xlabel("forced-close lead (trading days before the last)")
    ax.set_ylabel("harvest transfer (thousand money)")
    ax.set_ylim(bottom=0)
    for a in axes:
        a.set_title(f"n = {n} seeds per point", fontsize=7)
    fig.tight_layout()
    return fig


# -- F4 ----------------------------------------------------------------------------------------


def f4_divergence_vs_capacity(sweep: pd.DataFrame, delivery_cost: float = 2.0) -> plt.Figure:
    """Divergence against the arbitrageurs' delivery capacity: simulated and the closed form for
    each run's NDNP at the deadline (mean and 95 % interval over seeds)."""
    n = int(sweep.groupby("arbitrage_capacity").size().min())
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.5))
    _ci_line(ax, mean_ci(sweep, "arbitrage_capacity", "harvest_discount"), PALETTE[1], "simulated")
    _ci_line(
        ax,
        mean_ci(sweep, "arbitrage_capacity", "theory_divergence"),
        PALETTE[0],
        "theory (NDNP at the deadline)",
        "s",
    )
    ax.axhline(delivery_cost, color=PALETTE[2], lw=0.8, ls=":", label="their delivery cost")
    ndnp = sweep["ndnp_at_deadline"].abs().mean()
    ax.axvline(ndnp, **DEADLINE_STYLE)
    ax.annotate("mean |NDNP|", (ndnp, ax.get_ylim()[1] * 0.5), rotation=90, fontsize=6, ha="right")
    ax.set_xlabel("delivery-arbitrage capacity (lots)")
    ax.set_ylabel("divergence (price units)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"n = {n} seeds per point", fontsize=7)
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


# -- F5 ----------------------------------------------------------------------------------------

CHANNEL_LABELS = {
    "ordinary": "ordinary trading",
    "harvest_forced_close": "harvest & forced close",
    "forced_close_within_crowd": "forced close within the crowd",
    "liquidation": "margin liquidations",
    "fees": "fees",
    "socialized": "socialized loss",
    "bad_debt_covered": "bad debt covered",
    "expiry": "expiry settlement",
    "delivery_costs": "delivery costs",
    "liquidation_penalty": "liquidation penalty",
    "market": "market moves",
}
CLASS_LABELS = {
    "retail": "retail",
    "hedger": "hedger",
    "market_maker": "market maker",
    "arbitrageur": "arbitrageurs",
    "commercial": "commercials",
}


#: each class's net P&L in a run summary
PNL_KEYS = {
    "retail": "pnl_retail",
    "hedger": "pnl_hedger",
    "market_maker": "pnl_market_maker",
    "arbitrageur": "pnl_arbitrageurs",
    "commercial": "pnl_commercials",
}


def f5_wealth_by_channel(
    runs: dict[str, RunResult], seeds: dict[str, pd.DataFrame] | None = None
) -> plt.Figure:
    """P&L by agent class, stacked by channel, one panel per run; with ``seeds`` (per panel
    title, a sweep's runs of the same market) each class's net P&L over those runs is drawn
    beside the bars as its mean and 95 % interval."""
    fig, axes = plt.subplots(1, len(runs), figsize=(FULL_WIDTH, 2.9), sharey=True)
    axes = np.atleast_1d(axes)
    channels = [c for c in CHANNEL_LABELS]
    colors = dict(zip(channels, sns.color_palette("colorblind", len(channels)), strict=True))
    extent = [0.0, 0.0]
    for ax, (title, run) in zip(axes, runs.items(), strict=True):
        bc = run.by_class.drop(columns="pnl", errors="ignore") / 1e3
        classes = [c for c in CLASS_LABELS if c in bc.index]
        pos = np.zeros(len(classes))
        neg = np.zeros(len(classes))
        for ch in channels:
            if ch not in bc.columns:
                continue
            v = bc.loc[classes, ch].to_numpy()
            scale = np.abs(bc.loc[classes].to_numpy()).max()
            if not np.any(np.abs(v) > 0.005 * scale):
                continue
            base = np.where(v >= 0, pos, neg)
            ax.bar(
                range(len(classes)),
                v,
                bottom=base,
                color=colors[ch],
                label=CHANNEL_LABELS[ch],
                width=0.7,
            )
            pos += np.where(v >= 0, v, 0)
            neg += np.where(v < 0, v, 0)
        extent = [min(extent[0], neg.min()), max(extent[1], pos.max())]
        total = run.by_class.loc[classes, "pnl"].to_numpy() / 1e3
        ax.scatter(
            range(len(classes)), total, color="k", marker="D", s=12, zorder=3, label="net P&L"
        )
        if seeds is not None and title in seeds:
            d = seeds[title]
            m = pd.DataFrame(
                [
                    {"mean": r["mean"], "half": r["hi"] - r["mean"], "n": r["n"]}
                    for r in (_stats(d[PNL_KEYS[c]] / 1e3) for c in classes)
                ]
            )
            ax.errorbar(
                np.arange(len(classes)) + 0.42,
                m["mean"],
                yerr=m["half"],
                fmt="D",
                mfc="white",
                ms=3,
                lw=0.8,
                capsize=1.5,
                color="k",
                zorder=3,
                label=f"net P&L, mean and 95 % interval (n = {int(m['n'].min())} seeds)",
            )
            extent = [
                min(extent[0], (m["mean"] - m["half"]).min()),
                max(extent[1], (m["mean"] + m["half"]).max()),
            ]
        ax.axhline(0, color="0.5", lw=0.6)
        ax.set_xticks(range(len(classes)), [CLASS_LABELS[c] for c in classes], rotation=20)
        ax.set_title(title)
    pad = 0.06 * (extent[1] - extent[0])
    axes[0].set_ylim(extent[0] - pad, extent[1] + pad)
    axes[0].set_ylabel("P&L (thousand money)")
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=4, bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    return fig


# -- F6 ----------------------------------------------------------------------------------------


def per_day_over_seeds(ts: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Margin calls and liquidated lots per day of each run of a sweep's timeseries, as the
    mean, 95 % interval half-width and n over runs (columns of :func:`mean_ci`), by day. The
    stored margin-call count is cumulative; the liquidated volume is per step."""
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


def f6_liquidation_cascade(run: RunResult, seeds_ts: pd.DataFrame | None = None) -> plt.Figure:
    """Margin calls, liquidations and price on one time axis; with ``seeds_ts`` (a sweep's
    timeseries of the same scenario) the daily counts' mean and 95 % interval over its runs
    are drawn over the bars of the one run shown."""
    ts = run.timeseries
    x, *_ = _days(run)
    fig, axes = plt.subplots(
        3, 1, figsize=(COLUMN_WIDTH, 4.2), sharex=True, gridspec_kw={"height_ratios": [2, 1, 1]}
    )
    ax = axes[0]
    ax.plot(x, ts["spot"], color=PALETTE[0], lw=0.8, label="spot")
    ax.plot(x, ts["futures"], color=PALETTE[1], lw=0.6, label="futures")
    ax.step(
        run.days["day"] + 1,
        run.days["settlement"],
        where="pre",
        color="0.3",
        lw=0.8,
        label="settlement",
    )
    mark_deadline(ax, run)
    steps = run.days[run.days["margin_rate"].diff().fillna(0) > 0]
    for i, d in enumerate(steps["day"]):
        for a in axes:
            a.axvline(
                d + 1,
                color=PALETTE[4],
                lw=0.8,
                ls=":",
                label="margin step-up" if (i == 0 and a is ax) else None,
            )
    ax.set_ylabel(f"price ({_unit(run)})")
    ax.legend(loc="lower center", ncol=3, bbox_to_anchor=(0.5, 1.0), fontsize=6)
    over = per_day_over_seeds(seeds_ts) if seeds_ts is not None and len(seeds_ts) else None
    ax = axes[1]
    ax.bar(run.days["day"] + 0.5, run.days["n_margin_calls"], width=0.8, color=PALETTE[3])
    mark_deadline(ax, run, label=False)
    ax.set_ylabel("margin calls\nper day")
    ax = axes[2]
    liq = ts["liquidation_volume"].groupby(ts["day"]).sum()
    ax.bar(
        liq.index + 0.5,
        liq.to_numpy(),
        width=0.8,
        color=PALETTE[4],
        label=f"seed {run.config.seed}",
    )
    mark_deadline(ax, run, label=False)
    if over is not None:
        n = int(over["calls"]["n"].max())
        for a, key in ((axes[1], "calls"), (axes[2], "liquidated")):
            m = over[key]
            a.errorbar(
                m.index + 0.5,
                m["mean"],
                yerr=m["half"],
                fmt="o",
                ms=2,
                lw=0.7,
                capsize=1.5,
                color="0.15",
                label=f"mean, 95 % interval\n(n = {n} seeds)",
            )
        axes[2].legend(loc="upper right", fontsize=6)
    ax.set_ylabel("liquidated lots\nper day")
    ax.set_xlabel("trading day")
    fig.align_ylabels(axes)
    fig.tight_layout()
    return fig


# -- F7 ----------------------------------------------------------------------------------------

#: CLK20 ($/bbl), MODEL.md: settlements on 17 April (day −2) and 20 April (day −1, the deadline),
#: the intraday low of 20 April, and the settlement at expiry on 21 April
CLK20 = {"day_minus_2": 18.27, "day_minus_1": -37.63, "low": -40.32, "expiry": 10.01}


def seed_settlements(ts: pd.DataFrame, last_day: int, back: int = 2) -> pd.DataFrame:
    """Each run's settlements of the last ``back + 1`` days (columns ``-back`` … ``0``, 0 the
    last trading day), from a sweep's stored timeseries: a day's settlement is the value its
    last step carries."""
    day_end = ts.sort_values("step").groupby(["run_id", "day"])["settlement"].last()
    wide = day_end.unstack("day")
    cols = {last_day - k: -k for k in range(back, -1, -1)}
    return wide[list(cols)].rename(columns=cols)


def f7_wti_replication(
    run: RunResult, seeds: pd.DataFrame | None = None, seeds_ts: pd.DataFrame | None = None
) -> plt.Figure:
    """The WTI-2020 scenario's last days beside the recorded CLK20 prices: the settlements and
    the deadline-day low over seeds (``seeds``: a sweep's runs, ``seeds_ts``: its timeseries;
    mean and 95 % interval, every seed faint), and one run's deadline day."""
    last = run.config.calendar.trading_days - 1
    x = [-2, -1, 0]
    rec = [CLK20["day_minus_2"], CLK20["day_minus_1"], CLK20["expiry"]]
    fig, axes = plt.subplots(
        1, 2, figsize=(FULL_WIDTH, 3.0), gridspec_kw={"width_ratios": [1, 1.4]}
    )
    ax = axes[0]
    ax.plot(x, rec, "o-", color=PALETTE[3], label="CLK20 recorded settlement")
    ax.plot([-1], [CLK20["low"]], "v", color=PALETTE[3], label="CLK20 intraday low")
    if seeds is not None and seeds_ts is not None and len(seeds):
        wide = seed_settlements(seeds_ts, last)
        for _, row in wide.iterrows():
            ax.plot(x, row.to_numpy(), "-", color=PALETTE[0], lw=0.4, alpha=0.35)
        m = pd.DataFrame(
            {
                "mean": wide.mean(),
                "half": stats.t.ppf(0.975, max(len(wide) - 1, 1))
                * wide.std(ddof=1)
                / np.sqrt(len(wide)),
            }
        )
        _ci_line(ax, m, PALETTE[0], f"simulated settlement (n = {len(wide)} seeds)", "s", x=x)
        low = seeds["min_price_deadline_day"].to_numpy(float)
        half = stats.t.ppf(0.975, max(low.size - 1, 1)) * low.std(ddof=1) / np.sqrt(low.size)
        ax.errorbar(
            [-0.85],
            [low.mean()],
            yerr=[half],
            fmt="v",
            mfc="none",
            color=PALETTE[0],
            capsize=2,
            ms=4,
            label="simulated deadline-day low",
        )
    else:
        days = run.days.set_index("day")["settlement"]
        sim = [days.get(last - 2), days.get(last - 1), days.get(last)]
        ax.plot(x, sim, "s--", color=PALETTE[0], label="simulated settlement (one run)")
        ax.plot(
            [-1],
            [run.summary["min_price_deadline_day"]],
            "v",
            mfc="none",
            color=PALETTE[0],
            label="simulated low",
        )
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_xticks(x, ["day −2\n(17 Apr)", "day −1, deadline\n(20 Apr)", "expiry\n(21 Apr)"])
    ax.set_ylabel("price ($/bbl)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=2, fontsize=6)
    ax.set_title("Settlements: recorded and simulated")
    ax = axes[1]
    cal = run.config.calendar
    spd = cal.steps_per_day
    day = last - 1
    window = slice(day * spd, (day + 1) * spd - 1)
    if seeds_ts is not None and len(seeds_ts):
        for i, (_, one) in enumerate(seeds_ts.groupby("run_id")):
            one = one.set_index("step").loc[window]
            ax.plot(
                (one.index.to_numpy() - day * spd) / spd,
                one["futures"],
                color=PALETTE[1],
                lw=0.4,
                alpha=0.35,
                label="futures, each seed" if i == 0 else None,
            )
    ts = run.timeseries.loc[window]
    frac = (ts.index.to_numpy() - day * spd) / spd
    ax.plot(frac, ts["spot"], color=PALETTE[0], lw=1.2, label="spot")
    ax.plot(
        frac, ts["futures"], color=PALETTE[1], lw=1.0, label=f"futures (seed {run.config.seed})"
    )
    ax.set_xlim(0.75, 1.0)
    w0 = 1 - (cal.settlement_window_steps or spd) / spd
    ax.axvspan(w0, 1.0, color=PALETTE[2], alpha=0.25, lw=0, label="settlement window")
    ax.axvline(cal.forced_close_step / spd, **DEADLINE_STYLE, label="forced close")
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_xlabel("fraction of the deadline day (last quarter)")
    ax.set_ylabel("price ($/bbl)")
    ax.set_title("Simulated deadline day")
    ax.legend(loc="center left")
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


# -- F9 ----------------------------------------------------------------------------------------


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


def f9_stylized_facts(
    run: RunResult, max_lag: int = 50, seeds_ts: pd.DataFrame | None = None
) -> plt.Figure:
    """Return distribution against a Gaussian, autocorrelation of returns and |returns| (with
    ``seeds_ts``, a sweep's timeseries of the same market: their mean and 95 % interval over
    its runs), and the average order-book depth by level."""
    r = price_changes(run.timeseries["futures"])
    z = (r - r.mean()) / r.std()
    fig, axes = plt.subplots(1, 3, figsize=(FULL_WIDTH, 2.4))
    ax = axes[0]
    bins = np.linspace(-6, 6, 61)
    ax.hist(z, bins=bins, density=True, color=PALETTE[0], alpha=0.7, label="model returns")
    g = np.linspace(-6, 6, 300)
    ax.plot(g, stats.norm.pdf(g), color=PALETTE[3], lw=1, label="Gaussian")
    ax.set_yscale("log")
    ax.set_ylim(1e-4, 1)
    ax.set_xlabel("standardised return (per price change)")
    ax.set_ylabel("density")
    ax.legend(loc="upper left", fontsize=6)
    ax = axes[1]
    lags = np.arange(1, max_lag + 1)
    if seeds_ts is not None and len(seeds_ts):
        acf = acf_over_seeds(seeds_ts, max_lag)
        n = int(acf["r"]["n"].min())
        for key, color, label in ((("r", PALETTE[0], "returns")), ("abs", PALETTE[1], "|returns|")):
            m = acf[key]
            ax.plot(m.index, m["mean"], "-", lw=0.9, color=color, label=f"{label} (n = {n} seeds)")
            ax.fill_between(
                m.index, m["mean"] - m["half"], m["mean"] + m["half"], color=color, alpha=0.25, lw=0
            )
    else:
        ax.plot(
            lags,
            [autocorr(r, k) for k in lags],
            "o-",
            ms=2,
            lw=0.7,
            color=PALETTE[0],
            label="returns",
        )
        ax.plot(
            lags,
            [autocorr(np.abs(r), k) for k in lags],
            "s-",
            ms=2,
            lw=0.7,
            color=PALETTE[1],
            label="|returns|",
        )
    band = 2 / np.sqrt(len(r))
    ax.axhspan(-band, band, color="0.85", lw=0, label="±2/√n")
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xlabel("lag (price changes)")
    ax.set_ylabel("autocorrelation")
    ax.legend(loc="upper right")
    ax = axes[2]
    d = run.depth
    ax.plot(d["level"], d["bid"], "o-", color=PALETTE[2], ms=3, label="bid")
    ax.plot(d["level"], d["ask"], "s-", color=PALETTE[4], ms=3, label="ask")
    ax.set_xlabel("book level (1 = best)")
    ax.set_ylabel("mean depth (lots)")
    ax.legend(loc="upper right")
    fig.tight_layout()
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
            _ci_line(ax, mean_ci(rows, x, "harvest_discount"), PALETTE[1], "simulated")
            _ci_line(ax, mean_ci(rows, x, "theory_divergence"), PALETTE[0], "theory", "s")
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
                _ci_line(ax, m, color, name)
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
        ("harvest_discount", PALETTE[1], "with the harvest", "o"),
        ("cf_harvest_discount", PALETTE[0], "no harvest (same seeds)", "s"),
        ("theory_divergence", PALETTE[2], "theory (NDNP at the deadline)", "^"),
    ):
        _ci_line(ax, mean_ci(df, by, col), color, label, marker, x=x["mean"])
    ax.set_xlabel("realised NDNP at the deadline (lots)")
    ax.set_ylabel("divergence at the forced close\n(price units from fair)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left")
    ax = axes[1]
    for col, color, label in (
        ("effect_pnl_retail", PALETTE[3], "crowd's P&L"),
        (
            "effect_transfer_retail_to_hedger_harvest_forced_close",
            PALETTE[1],
            "transfer to the hedger, harvest channel",
        ),
    ):
        _ci_line(ax, mean_ci(df.assign(v=df[col] / 1e3), by, "v"), color, label, x=x["mean"])
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_xlabel("realised NDNP at the deadline (lots)")
    ax.set_ylabel("paired effect of the harvest\n(thousand money, run − no harvest)")
    ax.legend(loc="lower left")
    for a in axes:
        a.set_title(f"n = {n} seeds per target, paired", fontsize=7)
    fig.tight_layout()
    return fig


# -- all of them -------------------------------------------------------------------------------


@dataclass
class FigureSpec:
    name: str
    caption: str
    data: str
    draw: Callable[[Path], plt.Figure]
    #: the claim the figure supports and the number behind it, computed from the data
    claim: Callable[[Path], str] | None = None


def _stats(values) -> dict[str, float]:
    """:func:`abm.statistics.mean_ci` of the finite values."""
    from abm.statistics import mean_ci as _m

    v = np.asarray(values, dtype=float)
    return _m(v[np.isfinite(v)])


def _ci(values, scale: float = 1.0, fmt: str = ".3g") -> str:
    """'mean [lo, hi] (n = k)': a Student-t 95 % interval over replicates."""
    from abm.statistics import mean_ci as _m

    v = np.asarray(values, dtype=float) / scale
    v = v[np.isfinite(v)]
    if v.size < 2:
        return f"{v.mean():{fmt}} (n = {v.size}, no interval)" if v.size else "no data"
    r = _m(v)
    return f"{r['mean']:{fmt}} [{r['lo']:{fmt}}, {r['hi']:{fmt}}] (n = {r['n']})"


def _paired(df: pd.DataFrame, key: str, a, b, col: str, scale: float = 1.0) -> str:
    """Paired effect (point b − point a, replicate by replicate: common random numbers)."""
    x = df[df[key] == a].set_index("replicate")[col]
    y = df[df[key] == b].set_index("replicate")[col]
    both = x.index.intersection(y.index)
    return _ci((y[both] - x[both]).to_numpy(), scale)


def _claims() -> dict[str, Callable[[Path], str]]:
    def sweep(r: Path, n: str) -> pd.DataFrame:
        return load(r / n)

    def run(r: Path, n: str) -> RunResult:
        return load_run(r / "runs" / n)

    def f1(r):
        b, o = run(r, "default").summary, run(r, "one_sided").summary
        crowds = _crowds(r)
        if crowds is None:
            return (
                "A one-sided crowd is harvested far below fair value; a balanced one barely. One "
                f"seed each: divergence {o['harvest_discount']:.2f} at NDNP "
                f"{o['ndnp_at_deadline']:+,d} lots (one-sided) against "
                f"{b['harvest_discount']:.2f} at {b['ndnp_at_deadline']:+,d} (balanced)."
            )
        d = sweep(r, "crowd_seeds")
        bal, one = crowds["Balanced crowd"], crowds["One-sided crowd"]
        return (
            "A one-sided crowd is harvested far below fair value; a balanced one barely. "
            f"Divergence at the forced close: one-sided {_ci(one['harvest_discount'])} at NDNP "
            f"{_ci(one['ndnp_at_deadline'], fmt='.0f')} lots; balanced "
            f"{_ci(bal['harvest_discount'])} at NDNP {_ci(bal['ndnp_at_deadline'], fmt='.0f')}; "
            "paired difference "
            + _paired(d, "param_retail_long_share", 0.5, 0.9, "harvest_discount")
            + f". The runs drawn (seed 42): {o['harvest_discount']:.2f} against "
            f"{b['harvest_discount']:.2f}."
        )

    def f2(r):
        d = sweep(r, "imbalance_x_margin")
        d = d[np.isclose(d["param_margin_rate"], 0.10)]
        k = "transfer_retail_to_hedger_harvest_forced_close"
        return (
            "The harvest grows with the crowd's imbalance. At margin 0.10, long share 1.0 − 0.5, "
            "paired by seed (thousand money): "
            + _paired(d, "param_retail_long_share", 0.5, 1.0, k, 1e3)
        )

    def f3(r):
        d = sweep(r, "forced_close_lead")
        leads = sorted(d["param_forced_close_lead_days"].unique())
        return (
            "Under a ±4 % band a longer forced-close lead lets the harvest go further. "
            f"Divergence, lead {leads[-1]} − lead {leads[0]}, paired by seed: "
            + _paired(d, "param_forced_close_lead_days", leads[0], leads[-1], "harvest_discount")
        )

    def f4(r):
        d = sweep(r, "arbitrage_capacity")
        caps = sorted(d["param_arbitrage_capacity"].unique())
        lo = d[d["param_arbitrage_capacity"] == caps[0]]
        hi = d[d["param_arbitrage_capacity"] == caps[-1]]
        gap = (d["harvest_discount"] - d["theory_divergence"]).to_numpy()
        return (
            "Delivery-arbitrage capacity bounds the divergence down to its cost (2). Divergence "
            f"at capacity {caps[0]}: {_ci(lo['harvest_discount'])}; at {caps[-1]:,}: "
            f"{_ci(hi['harvest_discount'])}. Simulation − theory over all runs: {_ci(gap)}. The "
            "closed form prices a continuous fringe at its cost; in the book prices sit on the "
            "tick grid (1 here), the fringe rests one tick inside its cost, and under the ±10 % "
            "band the firm's wait for a lower band moves the last lot a session step further."
        )

    def f5(r):
        crowds = _crowds(r)
        if crowds is None:
            o = run(r, "one_sided").summary
            return (
                "The crowd's loss concentrates in the harvest channel when it is one-sided (one "
                f"seed): retail harvest channel {o['retail_pnl_harvest_forced_close'] / 1e3:,.0f}k,"
                f" ordinary {o['retail_pnl_ordinary'] / 1e3:,.0f}k."
            )
        one, bal = crowds["One-sided crowd"], crowds["Balanced crowd"]
        return (
            "The crowd's loss concentrates in the harvest channel when it is one-sided "
            "(thousand money). One-sided: retail harvest channel "
            f"{_ci(one['retail_pnl_harvest_forced_close'], 1e3)}, ordinary trading "
            f"{_ci(one['retail_pnl_ordinary'], 1e3)}, moved inside the crowd by the forced "
            f"closes {_ci(one['forced_close_within_crowd_gross'], 1e3)}; balanced: harvest "
            f"channel {_ci(bal['retail_pnl_harvest_forced_close'], 1e3)}."
        )

    def f6(r):
        d = _seed_sweep(r, "cascade_seeds")
        if d is None:
            s = run(r, "cascade").summary
            return (
                f"Liquidations feed on their own price impact (one seed): {s['n_cascades']} "
                f"chains, the largest {s['max_cascade_lots']:,.0f} lots moving the price "
                f"{100 * s['max_cascade_price_move']:.1f} %."
            )
        return (
            "Liquidations feed on their own price impact. Chains per run "
            f"{_ci(d['n_cascades'])}; the largest chain {_ci(d['max_cascade_lots'], fmt='.0f')} "
            f"lots, moving the price {_ci(100 * d['max_cascade_price_move'])} %."
        )

    def f7(r):
        d = _seed_sweep(r, "wti_seeds")
        w = run(r, "wti_2020")
        if d is None:
            st = w.days["settlement"].to_numpy()
            return (
                "A crowd that must exit into a nearly full Cushing collapses the price without "
                f"any harvest price in the config (one seed): settlements {st[-3]:.2f} → "
                f"{st[-2]:.2f}, expiry {st[-1]:.2f} $/bbl (CLK20: 18.27 → −37.63, expiry +10.01)."
            )
        wide = seed_settlements(
            _seed_sweep(r, "wti_seeds", timeseries=True), w.config.calendar.trading_days - 1
        )
        fall = 100 * (wide[-2] - wide[-1]) / (CLK20["day_minus_2"] - CLK20["day_minus_1"])
        return (
            "A crowd that must exit into a nearly full Cushing collapses the price without any "
            f"harvest price in the config ($/bbl): day −2 {_ci(wide[-2])}, the deadline "
            f"{_ci(d['settlement_deadline_day'])} with a low of "
            f"{_ci(d['min_price_deadline_day'])}, expiry {_ci(d['final_settlement'])} (CLK20: "
            "18.27, −37.63, low −40.32, +10.01). The fall's sign and the recovery are "
            f"reproduced; its depth is {_ci(fall, fmt='.0f')} % of the recorded one. The low "
            "sits "
            f"{_ci(d['settlement_deadline_day'] - d['min_price_deadline_day'], fmt='.2f')} "
            "below the settlement (CLK20: 2.69; the harvest clears at one auction price), and "
            f"expiry lands {_ci(d['basis_at_expiry'], fmt='.2f')} from spot (no general oil "
            "fall in the scenario)."
        )

    def f8(r):
        from abm.sweeps.sensitivity import sensitivity_verdict

        t = pd.read_parquet(r / "sobol_main" / "sensitivity.parquet")
        if "method" not in t:
            t = t.assign(
                method="saltelli", ST_lo=t["ST"] - t["ST_conf"], ST_hi=t["ST"] + t["ST_conf"]
            )
        best = "emulator" if "emulator" in set(t["method"]) else "saltelli"
        e = t[t["method"] == best]
        parts = []
        for out, d in e.groupby("output", sort=False):
            d = d.sort_values("ST", ascending=False)
            ranked = "; ".join(
                f"{PARAMETER_LABELS.get(p, p)} {st:.2f} [{lo:.2f}, {hi:.2f}]"
                for p, st, lo, hi in d[["parameter", "ST", "ST_lo", "ST_hi"]].to_numpy()[:3]
            )
            parts.append(f"{OUTPUT_LABELS.get(out, out)}: {ranked}")
        small = {
            p: float(e.loc[e["parameter"] == p, "ST_hi"].max())
            for p in ("margin_rate", "forced_close_lead_days")
            if p in set(e["parameter"])
        }
        quiet = (
            " Margin and lead stay below "
            + " and ".join(f"{v:.3f}" for v in small.values())
            + " (upper ends of their total indices): with the NDNP set directly the margin "
            "acts only through liquidations, and under the ±10 % band the lead does not bind "
            "(F3: under ±4 % it does)."
            if len(small) == 2
            else ""
        )
        return (
            f"Total indices, largest three per output ({best}): "
            + " | ".join(parts)
            + ". Total far above first order: positioning, capacity and firms act together "
            "(a harvest needs the NDNP to outrun the fringe)."
            + quiet
            + " "
            + sensitivity_verdict(t).replace("\n", "; ")
            + "."
        )

    def f9(r):
        ts = _balanced_ts(r)
        if ts is None:
            return ""
        rows = []
        for _, one in ts.sort_values("step").groupby("run_id"):
            x = price_changes(one["futures"])
            rows.append(
                {
                    "kurt": stats.kurtosis(x),
                    "acf1": autocorr(x, 1),
                    "abs1": autocorr(np.abs(x), 1),
                    "abs10": autocorr(np.abs(x), 10),
                }
            )
        d = pd.DataFrame(rows)
        return (
            "Fat tails, a bid-ask bounce at lag 1 and weak volatility clustering (ODD §8). "
            f"Excess kurtosis of price changes {_ci(d['kurt'])}; autocorrelation of returns at "
            "lag 1 "
            f"{_ci(d['acf1'], fmt='.2f')}; of |returns| at lag 1 {_ci(d['abs1'], fmt='.2f')} "
            f"and at lag 10 {_ci(d['abs10'], fmt='.2f')}."
        )

    def f10(r):
        d = sweep(r, "harvest_statics")
        firms = d[d["param_n_firms"].notna()]
        share = d[
            d["param_commercials_cost_slope"].isna()
            & d["param_n_firms"].isna()
            & d["param_forced_close_lead_days"].isna()
        ]
        return (
            "Each lever moves the divergence as theory says. Long share 0.9 − 0.5: "
            + _paired(share, "param_retail_long_share", 0.5, 0.9, "harvest_discount")
            + "; 4 firms − 1 firm: "
            + _paired(firms, "param_n_firms", 1, 4, "harvest_discount")
        )

    def f11(r):
        d = sweep(r, "margin_effect_rebar")
        return (
            "In china_rebar a low margin brings more liquidations and a larger divergence. "
            "Margin 0.05 − 0.30, paired by seed: divergence "
            + _paired(d, "param_margin_rate", 0.30, 0.05, "harvest_discount")
            + "; liquidations "
            + _paired(d, "param_margin_rate", 0.30, 0.05, "n_liquidations")
        )

    def f12(r):
        d = sweep(r, "ndnp_design")
        top = d["param_ndnp_target"].max()
        t = d[d["param_ndnp_target"] == top]
        return (
            f"The harvest is a cost of the crowd's NDNP, measured against the same seeds without "
            f"it. At a target of {top:,} lots (realised {_ci(t['ndnp_at_deadline'], fmt='.0f')}): "
            f"divergence {_ci(t['harvest_discount'])} with the harvest against "
            f"{_ci(t['cf_harvest_discount'])} without; paired effect on the crowd's P&L "
            f"{_ci(t['effect_pnl_retail'], 1e3)} thousand money."
        )

    return {
        "F1": f1,
        "F2": f2,
        "F3": f3,
        "F4": f4,
        "F5": f5,
        "F6": f6,
        "F7": f7,
        "F8": f8,
        "F9": f9,
        "F10": f10,
        "F11": f11,
        "F12": f12,
    }


def _seed_sweep(root: Path, name: str, timeseries: bool = False):
    """A replicate sweep of a single-run figure (``crowd_seeds``, ``cascade_seeds``,
    ``wti_seeds``), or None when the results folder predates it: the figure then shows its
    one run only, and says so."""
    if not (root / name).exists():
        return None
    return load_timeseries(root / name) if timeseries else load(root / name)


def _crowds(root: Path) -> dict[str, pd.DataFrame] | None:
    d = _seed_sweep(root, "crowd_seeds")
    if d is None:
        return None
    share = d["param_retail_long_share"]
    return {"Balanced crowd": d[share == 0.5], "One-sided crowd": d[share == 0.9]}


def _balanced_ts(root: Path) -> pd.DataFrame | None:
    """The timeseries of crowd_seeds' balanced crowd (the default market), or None."""
    d = _seed_sweep(root, "crowd_seeds")
    if d is None:
        return None
    ids = d.loc[d["param_retail_long_share"] == 0.5, "run_id"].tolist()
    return load_timeseries(root / "crowd_seeds", ids)


def figure_specs() -> list[FigureSpec]:
    def run(root: Path, name: str) -> RunResult:
        return load_run(root / "runs" / name)

    def sweep(root: Path, name: str) -> pd.DataFrame:
        return load(root / name)

    return [
        FigureSpec(
            "F1_price_paths",
            "Futures, spot and basis over the last 8 trading days for a balanced (left) and "
            "a one-sided (right) crowd, one run each (seed 42); shaded: the hedger's harvest "
            "window, dashed: the forced-close deadline. The band is ±4 % of the previous "
            "settlement: no trade may print outside it in a session. The claim's numbers are "
            "over n = 10 seeds of each crowd (crowd_seeds, the same seeds for both).",
            "runs/default, runs/one_sided, crowd_seeds",
            lambda r: f1_price_paths(run(r, "default"), run(r, "one_sided")),
        ),
        FigureSpec(
            "F2_transfer_heatmap",
            "Wealth transfer from retail traders to the hedger over retail long share × base "
            "margin rate (mean of n = 10 seeds per cell, the same seeds in every cell); the "
            "margin schedule moves with the base (step-ups added to it in the last days); "
            "harvest channel (left: fills at the hedger's harvest quote and forced-close "
            "prints) and all channels (right); a ring marks a cell whose 95 % interval "
            "overlaps its left neighbour's.",
            "imbalance_x_margin",
            lambda r: f2_transfer_heatmap(sweep(r, "imbalance_x_margin")),
        ),
        FigureSpec(
            "F3_divergence_vs_lead",
            "Divergence and harvest transfer at the forced close against the forced-close "
            "lead (80 % long crowd, ±4 % daily band: each extra session lets the harvest wait "
            "for the band to walk); simulated and theory, mean and 95 % interval over n = 10 "
            "seeds per lead, the same seeds at every lead.",
            "forced_close_lead",
            lambda r: f3_divergence_vs_lead(sweep(r, "forced_close_lead")),
        ),
        FigureSpec(
            "F4_divergence_vs_capacity",
            "Divergence at the forced close against delivery-arbitrage capacity: "
            "simulated and the closed form for each run's NDNP at the deadline (mean and "
            "95 % interval over n = 10 seeds, the same at every capacity); dotted: the "
            "arbitrageurs' delivery cost. The simulation sits up to a tick from the closed "
            "form: prices are on the tick grid and the fringe quotes one tick inside its cost.",
            "arbitrage_capacity",
            lambda r: f4_divergence_vs_capacity(sweep(r, "arbitrage_capacity")),
        ),
        FigureSpec(
            "F5_wealth_by_channel",
            "P&L by agent class, stacked by channel (by price source: the harvest channel is "
            "fills at the hedger's harvest quote and forced-close prints), for a balanced and a "
            "one-sided crowd, one run each (seed 42); filled diamonds: that run's net P&L; "
            "open diamonds: each class's net P&L, mean and 95 % interval over n = 10 seeds "
            "(crowd_seeds).",
            "runs/default, runs/one_sided, crowd_seeds",
            lambda r: f5_wealth_by_channel(
                {"Balanced crowd": run(r, "default"), "One-sided crowd": run(r, "one_sided")},
                _crowds(r),
            ),
        ),
        FigureSpec(
            "F6_liquidation_cascade",
            "Price, margin calls and liquidations on one time axis in the cascade scenario "
            "(5 % margin, traders using 50–90 % of what it allows, real-time risk control "
            "every 5 steps, thin replenishing depth): liquidations move the price, which "
            "brings more liquidations. Bars: one run (seed 11); dots: mean and 95 % interval "
            "per day over n = 10 seeds (cascade_seeds).",
            "runs/cascade, cascade_seeds",
            lambda r: f6_liquidation_cascade(
                run(r, "cascade"), _seed_sweep(r, "cascade_seeds", timeseries=True)
            ),
        ),
        FigureSpec(
            "F7_wti_2020",
            "WTI-2020: simulated settlements and deadline-day low beside CLK20's (18.27 → "
            "−37.63, low −40.32 → +10.01 $/bbl at expiry), with no harvest price in the "
            "scenario: mean and 95 % interval over n = 10 seeds (wti_seeds), each seed faint; "
            "right: the deadline day's last quarter, one run (seed 2020) bold and each seed's "
            "futures faint.",
            "runs/wti_2020, wti_seeds",
            lambda r: f7_wti_replication(
                run(r, "wti_2020"),
                _seed_sweep(r, "wti_seeds"),
                _seed_sweep(r, "wti_seeds", timeseries=True),
            ),
        ),
        FigureSpec(
            "F8_sobol",
            "Sobol sensitivity indices (first order and total, 95 % intervals) of the "
            "transfer and the divergence on the small market (NDNP at the deadline set by the "
            "late retail flow), each design row averaged over n = 10 seeds (the same seeds at "
            "every row): top, on a Gaussian-process emulator of the design's points (interval: "
            "draws from its posterior; Q²: 5-fold out-of-sample fit); bottom, the direct "
            "Saltelli estimate at N base samples (interval: SALib's bootstrap). Each row's title "
            "says whether every interval is narrower than 0.1.",
            "sobol_main/sensitivity.parquet",
            lambda r: f8_sobol(pd.read_parquet(r / "sobol_main" / "sensitivity.parquet")),
        ),
        FigureSpec(
            "F9_stylized_facts",
            "Stylized facts of the default market: standardised returns against a "
            "Gaussian (log scale; one run, seed 42), autocorrelation of returns and |returns| "
            "(mean and 95 % interval over n = 10 seeds, crowd_seeds' balanced crowd; grey: "
            "±2/√n of one run), average order-book depth by level (one run).",
            "runs/default, crowd_seeds",
            lambda r: f9_stylized_facts(run(r, "default"), seeds_ts=_balanced_ts(r)),
        ),
        FigureSpec(
            "F10_comparative_statics",
            "Comparative statics of the divergence at the forced close (default market, ±4 % "
            "band): against the crowd's long share, the fringe's depth, the number of competing "
            "firms and the forced-close lead; simulated and theory, mean and 95 % interval over "
            "n = 10 seeds per point, the same seeds at every point.",
            "harvest_statics",
            lambda r: f10_comparative_statics(sweep(r, "harvest_statics")),
        ),
        FigureSpec(
            "F11_margin_effect",
            "The margin lever: divergence and harvest transfer at the forced close, margin "
            "liquidations and the largest liquidation chain against the base margin rate (the "
            "step-ups move with it; traders use 20–60 % of the largest position the margin "
            "allows); mean and 95 % interval over n = 10 seeds per point, the same seeds at "
            "every margin.",
            "margin_effect, margin_effect_rebar",
            lambda r: f11_margin_effect(sweep(r, "margin_effect"), sweep(r, "margin_effect_rebar")),
        ),
        FigureSpec(
            "F12_ndnp_design",
            "The crowd's NDNP at the deadline set as the design variable (late retail flow, "
            "default market): divergence with the harvest, without it (the hedger keeps its "
            "ordinary quotes, same seeds) and in theory (left); the paired effect of the "
            "harvest on the crowd's P&L and on the transfer to the hedger (right); mean and 95 % "
            "interval over n = 10 seeds per target, against the realised NDNP.",
            "ndnp_design",
            lambda r: f12_ndnp_design(sweep(r, "ndnp_design")),
        ),
    ]


def make_all(
    results_dir: str | Path = "results/paper",
    out_dir: str | Path = "results/figures",
    only: list[str] | None = None,
) -> list[tuple[FigureSpec, list[Path]]]:
    """Draw every figure from stored results; write PDF + PNG and a README index."""
    style()
    root, out = Path(results_dir), Path(out_dir)
    done = []
    for spec in figure_specs():
        if only and not any(spec.name.startswith(o) for o in only):
            continue
        done.append((spec, save(spec.draw(root), out, spec.name)))
    lines = [
        "# Figures",
        "",
        f"Regenerated by `abm figures {root} --out {out}` (or `make figures`) from the "
        f"stored results in `{root}`; recompute those with `abm reproduce`.",
        "",
    ]
    claims = _claims()
    for spec, files in done:
        claim = claims.get(spec.name.split("_")[0])
        try:
            claim_text = claim(root) if claim else ""
        except Exception as err:  # noqa: BLE001 - a claim that cannot be computed says so
            claim_text = f"(claim not computed: {type(err).__name__}: {err})"
        lines += [
            f"## {spec.name}",
            "",
            f"![{spec.name}]({spec.name}.png)",
            "",
            spec.caption,
            "",
            *([f"**Claim.** {claim_text}", ""] if claim_text else []),
            f"- files: `{files[0].name}`, `{files[1].name}`",
            f"- data: `{root / spec.data.split(',')[0].strip()}`"
            + ("".join(f", `{root / d.strip()}`" for d in spec.data.split(",")[1:])),
            "",
        ]
    if not only:
        (out / "README.md").write_text("\n".join(lines))
    return done

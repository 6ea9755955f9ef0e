"""Figures of single runs, each with its claim's intervals over seeds where a replicate sweep
is stored: price paths (F1), wealth by class and channel (F5), a liquidation cascade (F6), the
WTI-2020 replication (F7) and the ordinary market's stylized facts (F9)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from scipy import stats

from abm.figures.data import (
    CLK20,
    CLM20,
    SESSION_CLOSE_MINUTES,
    acf_over_seeds,
    per_day_over_seeds,
    price_changes,
    seed_settlements,
)
from abm.figures.style import (
    COLUMN_WIDTH,
    DEADLINE_STYLE,
    FULL_WIDTH,
    ci_line,
    days_axis,
    finite_mean_ci,
    mark_deadline,
    unit,
)
from abm.metrics import autocorr
from abm.palette import CHANNEL_COLORS, CHANNEL_LABELS, CLASS_LABELS, SERIES_COLORS
from abm.results import RunResult

SPOT, FUT, BASIS = SERIES_COLORS["spot"], SERIES_COLORS["futures"], SERIES_COLORS["basis"]
RECORD = SERIES_COLORS["record"]
NEXT = SERIES_COLORS["next_month"]
#: steps the cascade figure averages the mid-quote over
SMOOTH_STEPS = 10
RET, ABS_RET = SERIES_COLORS["spot"], SERIES_COLORS["futures"]
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
        x_all, *_ = days_axis(run)
        keep = x_all >= run.config.calendar.trading_days - last_days
        ts = run.timeseries[keep]
        x = x_all[keep]
        traded = ts["futures_vwap"].notna().to_numpy()
        ax = axes[0, col]
        ax.plot(x, ts["mid"], color=FUT, lw=0.5, alpha=0.8, label="futures mid-quote")
        ax.plot(
            x[traded],
            ts["futures_vwap"].to_numpy()[traded],
            ".",
            color=FUT,
            ms=1.2,
            alpha=0.5,
            label="futures trades (step VWAP)",
        )
        ax.plot(x, ts["spot"], color=SPOT, lw=1.0, label="spot")
        mark_deadline(ax, run, label=(col == 0))
        ndnp = run.summary["ndnp_at_deadline"]
        ax.set_title(f"{title}\nNDNP at the deadline {ndnp:+,d} lots")
        ax.set_ylabel(f"price ({unit(run)})")
        ax = axes[1, col]
        ax.plot(x, ts["mid"] - ts["spot"], color=BASIS, lw=0.5, label="basis (mid)")
        ax.plot(
            x[traded],
            (ts["futures_vwap"] - ts["spot"]).to_numpy()[traded],
            ".",
            color=BASIS,
            ms=1.2,
            alpha=0.5,
            label="basis (trades)",
        )
        ax.axhline(0, color="0.6", lw=0.6)
        mark_deadline(ax, run, label=False)
        ax.set_ylabel(f"basis ({unit(run)})")
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


# -- F5 ----------------------------------------------------------------------------------------

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
    channels = list(CHANNEL_LABELS)
    colors = CHANNEL_COLORS  # one colour per channel, in every figure (abm.palette)
    extent = [0.0, 0.0]
    for ax, (title, run) in zip(axes, runs.items(), strict=True):
        bc = run.by_class.drop(columns="pnl", errors="ignore") / 1e3
        classes = [c for c in PNL_KEYS if c in bc.index]
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
                    for r in (finite_mean_ci(d[PNL_KEYS[c]] / 1e3) for c in classes)
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


def f6_liquidation_cascade(run: RunResult, seeds_ts: pd.DataFrame | None = None) -> plt.Figure:
    """Margin calls, liquidations and price on one time axis; with ``seeds_ts`` (a sweep's
    timeseries of the same scenario) the daily counts' mean and 95 % interval over its runs
    are drawn over the bars of the one run shown."""
    ts = run.timeseries
    x, *_ = days_axis(run)
    fig, axes = plt.subplots(
        3, 1, figsize=(COLUMN_WIDTH, 4.2), sharex=True, gridspec_kw={"height_ratios": [2, 1, 1]}
    )
    ax = axes[0]
    ax.plot(x, ts["spot"], color=SPOT, lw=0.8, label="spot")
    # the last trade bounces between bid and ask, and in this thin book so does the mid-quote:
    # its mean over a tenth of a day is the path
    smooth = ts["mid"].rolling(SMOOTH_STEPS, min_periods=1).mean()
    ax.plot(x, smooth, color=FUT, lw=0.8, label=f"futures mid-quote, {SMOOTH_STEPS}-step mean")
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
                color=SERIES_COLORS["margin"],
                lw=0.8,
                ls=":",
                label="margin step-up" if (i == 0 and a is ax) else None,
            )
    ax.set_ylabel(f"price ({unit(run)})")
    ax.legend(loc="lower center", ncol=3, bbox_to_anchor=(0.5, 1.0), fontsize=6)
    over = per_day_over_seeds(seeds_ts) if seeds_ts is not None and len(seeds_ts) else None
    ax = axes[1]
    ax.bar(
        run.days["day"] + 0.5,
        run.days["n_margin_calls"],
        width=0.8,
        color=CHANNEL_COLORS["liquidation"],
    )
    mark_deadline(ax, run, label=False)
    ax.set_ylabel("margin calls\nper day")
    ax = axes[2]
    liq = ts["liquidation_volume"].groupby(ts["day"]).sum()
    ax.bar(
        liq.index + 0.5,
        liq.to_numpy(),
        width=0.8,
        color=CHANNEL_COLORS["liquidation"],
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


def _ci_half(values: np.ndarray) -> float:
    """Half-width of the 95 % interval of a mean (t, n − 1 degrees of freedom)."""
    n = values.size
    return float(stats.t.ppf(0.975, max(n - 1, 1)) * values.std(ddof=1) / np.sqrt(n))


def f7_wti_replication(
    run: RunResult, seeds: pd.DataFrame | None = None, seeds_ts: pd.DataFrame | None = None
) -> plt.Figure:
    """The WTI-2020 scenario's last days beside the record: May's (CLK20) and, when the run
    lists the next month, June's (CLM20) settlements and May's deadline-day low over seeds
    (``seeds``: a sweep's runs, ``seeds_ts``: its timeseries; mean and 95 % interval, every
    seed faint); right, the deadline session's last half hour on the clock (a step is a minute:
    the 2-step settlement window is 14:28–14:30 ET), both months, one run bold."""
    last = run.config.calendar.trading_days - 1
    two = "next_futures" in run.timeseries
    x = np.array([-2, -1, 0])
    fig, axes = plt.subplots(
        1, 2, figsize=(FULL_WIDTH, 3.2), gridspec_kw={"width_ratios": [1, 1.4]}
    )
    ax = axes[0]
    months = [("settlement", CLK20, FUT, "May (CLK20)")]
    if two:
        months.append(("next_settlement", CLM20, NEXT, "June (CLM20)"))
    for k, (col, rec, color, label) in enumerate(months):
        dx = 0.06 * k
        ax.plot(
            x + dx,
            [rec["day_minus_2"], rec["day_minus_1"], rec["expiry"]],
            "o-",
            color=RECORD,
            ms=3.5,
            mfc=RECORD if k == 0 else "white",
            label=f"{label} recorded",
        )
        if seeds is not None and seeds_ts is not None and len(seeds):
            wide = seed_settlements(seeds_ts, last, column=col)
            for _, row in wide.iterrows():
                ax.plot(x + dx, row.to_numpy(), "-", color=color, lw=0.4, alpha=0.35)
            m = pd.DataFrame(
                {"mean": wide.mean(), "half": [_ci_half(wide[c].to_numpy()) for c in wide]}
            )
            ci_line(ax, m, color, f"{label} simulated (n = {len(wide)})", "s", x=x + dx)
        else:
            days = run.timeseries.groupby("day")[col].last()
            sim = [days.get(last - 2), days.get(last - 1), days.get(last)]
            ax.plot(x + dx, sim, "s--", color=color, label=f"{label} simulated (one run)")
    ax.plot([-1], [CLK20["low"]], "v", color=RECORD, label="May intraday low, recorded")
    if seeds is not None and len(seeds):
        low = seeds["min_price_deadline_day"].to_numpy(float)
        ax.errorbar(
            [-0.85],
            [low.mean()],
            yerr=[_ci_half(low)],
            fmt="v",
            mfc="none",
            color=FUT,
            capsize=2,
            ms=4,
            label="May low, simulated",
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

    def clock(steps: np.ndarray) -> np.ndarray:
        """Minutes after midnight, ET, of each step's end: the session closes at 14:30."""
        return SESSION_CLOSE_MINUTES - (spd - 1 - (steps - day * spd))

    series = [("futures", FUT, "May")] + ([("next_futures", NEXT, "June")] if two else [])
    if seeds_ts is not None and len(seeds_ts):
        for i, (_, one) in enumerate(seeds_ts.groupby("run_id")):
            one = one.set_index("step").loc[window]
            for col, color, label in series:
                if col in one:
                    ax.plot(
                        clock(one.index.to_numpy()),
                        one[col],
                        color=color,
                        lw=0.4,
                        alpha=0.35,
                        label=f"{label}, each seed" if i == 0 else None,
                    )
    ts = run.timeseries.loc[window]
    t = clock(ts.index.to_numpy())
    for col, color, label in series:
        ax.plot(t, ts[col], color=color, lw=1.2, label=f"{label} (seed {run.config.seed})")
    ax.plot(t, ts["spot"], color=SPOT, lw=1.0, label="spot")
    w = cal.settlement_window_steps or spd
    ax.axvspan(
        SESSION_CLOSE_MINUTES - w,
        SESSION_CLOSE_MINUTES,
        color="0.8",
        alpha=0.5,
        lw=0,
        label="settlement window",
    )
    ax.axvline(
        clock(np.array(day * spd + cal.forced_close_step)) - 1,
        **DEADLINE_STYLE,
        label="forced close",
    )
    ax.axhline(0, color="0.6", lw=0.6)
    ticks = np.arange(SESSION_CLOSE_MINUTES - 30, SESSION_CLOSE_MINUTES + 1, 10)
    ax.set_xticks(ticks, [f"{m // 60}:{m % 60:02d}" for m in ticks])
    ax.set_xlim(SESSION_CLOSE_MINUTES - 30, SESSION_CLOSE_MINUTES)
    ax.set_xlabel("20 April 2020, ET (a step is a minute)")
    ax.set_ylabel("price ($/bbl)")
    ax.set_title("Simulated deadline session, last half hour")
    ax.legend(loc="center left", fontsize=6)
    fig.tight_layout()
    return fig


def f9_stylized_facts(
    run: RunResult,
    max_lag: int = 50,
    seeds_ts: pd.DataFrame | None = None,
    observed: pd.Series | None = None,
) -> plt.Figure:
    """Return distribution against a Gaussian, autocorrelation of returns and |returns| (with
    ``seeds_ts``, a sweep's timeseries of the same market: their mean and 95 % interval over
    its runs), and the average order-book depth by level. With ``observed`` (a daily price
    series, e.g. `abm.observed.load_series("wti")`) its daily returns' distribution and
    autocorrelations are drawn beside the model's, lags in trading days."""
    r = price_changes(run.timeseries["futures"])
    z = (r - r.mean()) / r.std()
    fig, axes = plt.subplots(1, 3, figsize=(FULL_WIDTH, 2.4))
    ax = axes[0]
    bins = np.linspace(-6, 6, 61)
    ax.hist(z, bins=bins, density=True, color=FUT, alpha=0.7, label="model returns")
    if observed is not None:
        from abm.observed import daily_returns

        ro = daily_returns(observed)
        zo = ro / ro.std()
        dens, edges = np.histogram(zo, bins=bins, density=True)
        ax.stairs(
            np.where(dens > 0, dens, np.nan),
            edges,
            color="0.1",
            lw=0.8,
            label=f"{observed.name.upper()} daily",
        )
    g = np.linspace(-6, 6, 300)
    ax.plot(g, stats.norm.pdf(g), color="0.55", lw=1, ls="--", label="Gaussian")
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
        for key, color, label in (("r", RET, "returns"), ("abs", ABS_RET, "|returns|")):
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
            color=RET,
            label="returns",
        )
        ax.plot(
            lags,
            [autocorr(np.abs(r), k) for k in lags],
            "s-",
            ms=2,
            lw=0.7,
            color=ABS_RET,
            label="|returns|",
        )
    if observed is not None:
        ro = daily_returns(observed)
        name = observed.name.upper()
        ax.plot(
            lags,
            [autocorr(ro, k) for k in lags],
            ":",
            lw=1.0,
            color=RET,
            label=f"{name} daily returns",
        )
        ax.plot(
            lags,
            [autocorr(np.abs(ro), k) for k in lags],
            "--",
            lw=1.0,
            color=ABS_RET,
            label=f"{name} daily |returns|",
        )
    band = 2 / np.sqrt(len(r))
    ax.axhspan(-band, band, color="0.85", lw=0, label="±2/√n")
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xlabel(
        "lag (price changes; record: trading days)"
        if observed is not None
        else "lag (price changes)"
    )
    ax.set_ylabel("autocorrelation")
    # lower right: the |return| curves fill the top once volatility clusters
    ax.legend(loc="lower right", fontsize=5 if observed is not None else None)
    ax = axes[2]
    d = run.depth
    ax.plot(d["level"], d["bid"], "o-", color=SERIES_COLORS["bid"], ms=3, label="bid")
    ax.plot(d["level"], d["ask"], "s-", color=SERIES_COLORS["ask"], ms=3, label="ask")
    ax.set_xlabel("book level (1 = best)")
    ax.set_ylabel("mean depth (lots)")
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig

"""The figures as a registry: each `FigureSpec` names a figure, its caption, its data, how it
is drawn and its claim, and `make_all` draws them from stored results with an index."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from abm.figures import claims
from abm.figures.calibration import calibration_figure
from abm.figures.data import balanced_ts, crowds, seed_sweep
from abm.figures.designs import (
    f2_transfer_heatmap,
    f3_divergence_vs_lead,
    f4_divergence_vs_capacity,
    f8_sobol,
    f10_comparative_statics,
    f11_margin_effect,
    f12_ndnp_design,
    f13_harvest_discovered,
)
from abm.figures.single_runs import (
    f1_price_paths,
    f5_wealth_by_channel,
    f6_liquidation_cascade,
    f7_wti_replication,
    f9_stylized_facts,
)
from abm.figures.style import save, style
from abm.observed import load_series

run, sweep = claims.run, claims.sweep


@dataclass
class FigureSpec:
    """A figure: its file ``name`` (``F<k>_<what>``), ``caption``, the stored ``data`` it reads
    (folders under the results root, comma-separated), how to ``draw`` it from the root, and
    its ``claim``: the sentence it supports with the number behind it, from the same data."""

    name: str
    caption: str
    data: str
    draw: Callable[[Path], plt.Figure]
    claim: Callable[[Path], str] | None = None


def figure_specs() -> list[FigureSpec]:
    """Every paper figure, in order, each with its claim."""
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
            claims.f1,
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
            claims.f2,
        ),
        FigureSpec(
            "F3_divergence_vs_lead",
            "Divergence and harvest transfer at the forced close against the forced-close "
            "lead (80 % long crowd, ±4 % daily band: each extra session lets the harvest wait "
            "for the band to walk); simulated and theory, mean and 95 % interval over n = 10 "
            "seeds per lead, the same seeds at every lead.",
            "forced_close_lead",
            lambda r: f3_divergence_vs_lead(sweep(r, "forced_close_lead")),
            claims.f3,
        ),
        FigureSpec(
            "F4_divergence_vs_capacity",
            "Divergence at the forced close against delivery-arbitrage capacity: "
            "simulated and the closed form for each run's NDNP at the deadline (mean and "
            "95 % interval over n = 10 seeds, the same at every capacity); dotted: the "
            "arbitrageurs' delivery cost c_f; shaded: the last tick short of it, where the theory "
            "on the book's tick grid puts the firm's bid once the fringe's room covers the need "
            "(d* = max(c_f − δ, (Q/κ + c_f − c_h)/2), 0 < δ ≤ one tick of the base market).",
            "arbitrage_capacity",
            lambda r: f4_divergence_vs_capacity(
                sweep(r, "arbitrage_capacity"),
                tick=claims.base_tick(r, "arbitrage_capacity") or 1.0,
            ),
            claims.f4,
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
                crowds(r),
            ),
            claims.f5,
        ),
        FigureSpec(
            "F6_liquidation_cascade",
            "Price (futures mid-quote averaged over 10 steps, spot, daily settlement), margin "
            "calls and liquidations on "
            "one time axis in the cascade scenario "
            "(5 % margin, traders using 50–90 % of what it allows, real-time risk control "
            "every 5 steps, thin replenishing depth): liquidations move the price, which "
            "brings more liquidations. Bars: one run (seed 11); dots: mean and 95 % interval "
            "per day over n = 10 seeds (cascade_seeds).",
            "runs/cascade, cascade_seeds",
            lambda r: f6_liquidation_cascade(
                run(r, "cascade"), seed_sweep(r, "cascade_seeds", timeseries=True)
            ),
            claims.f6,
        ),
        FigureSpec(
            "F7_wti_2020",
            "WTI-2020 with the June contract listed (wti_2020_spread): simulated settlements "
            "of May and June and May's deadline-day low beside CLK20's and CLM20's (May 18.27 "
            "→ −37.63, low −40.32 → +10.01; June 25.03 → 20.43 → 11.57 $/bbl), with no "
            "harvest price in the scenario and κ fitted to May's deadline settlement alone "
            "(F14): mean and 95 % interval over n = 10 seeds (wti_spread_seeds), each seed "
            "faint. Right: the deadline session's last half hour on the clock (a step is a "
            "minute: the 2-step settlement window is 14:28–14:30 ET), both months, one run "
            "(seed 2020) bold and each seed faint.",
            "runs/wti_2020_spread, wti_spread_seeds",
            lambda r: f7_wti_replication(
                run(r, "wti_2020_spread"),
                seed_sweep(r, "wti_spread_seeds"),
                seed_sweep(r, "wti_spread_seeds", timeseries=True),
            ),
            claims.f7,
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
            claims.f8,
        ),
        FigureSpec(
            "F9_stylized_facts",
            "Stylized facts of the default market: standardised returns against a "
            "Gaussian (log scale; one run, seed 42), autocorrelation of returns and |returns| "
            "(mean and 95 % interval over n = 10 seeds, crowd_seeds' balanced crowd; grey: "
            "±2/√n of one run), average order-book depth by level (one run). Black and "
            "dashed: the record, WTI Cushing daily 1986–2026 (EIA, public domain; "
            "experiments/observed/), its daily returns and their autocorrelations at lags in "
            "trading days: a different clock from the model's price changes, shown for the "
            "shape.",
            "runs/default, crowd_seeds",
            lambda r: f9_stylized_facts(
                run(r, "default"), seeds_ts=balanced_ts(r), observed=load_series("wti")
            ),
            claims.f9,
        ),
        FigureSpec(
            "F10_comparative_statics",
            "Comparative statics of the divergence at the forced close (default market, ±4 % "
            "band): against the crowd's long share, the fringe's depth, the number of competing "
            "firms and the forced-close lead; simulated and theory, mean and 95 % interval over "
            "n = 10 seeds per point, the same seeds at every point.",
            "harvest_statics",
            lambda r: f10_comparative_statics(sweep(r, "harvest_statics")),
            claims.f10,
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
            claims.f11,
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
            claims.f12,
        ),
        FigureSpec(
            "F13_harvest_discovered",
            "The harvest as firms find it from a desk's view (the book to 5 levels, their own "
            "position, the brokers' NDNP report) against a fringe that shows 3 levels of its "
            "cost ladder at a time, where the band does not bind (small market, ±50 % band). "
            "Left: each (long share, fringe depth κ) case's volume-weighted discount at the "
            "forced close against the ex-ante theory (computed when the harvest window opens); "
            "middle: against the number of firms, with the Cournot prediction; right: the "
            "paired effect of each labelled arm. Mean and 95 % interval over n = 10 seeds per "
            "point, the same seeds at every point.",
            "harvest_discovered",
            lambda r: f13_harvest_discovered(sweep(r, "harvest_discovered")),
            claims.f13,
        ),
        FigureSpec(
            "F14_wti_calibration",
            "The storage-cost slope κ of wti_2020_spread (the one number no source pins down; "
            "May and June listed, storage linking them) fitted to one fact of the record, "
            "CLK20's settlement of −37.63 on 20 April 2020, by `abm calibrate "
            "wti_spread_kappa` (optuna TPE, 24 evaluations of 5 seeds each, the same seeds for "
            "every κ; diagonal synthetic likelihood). Top: each evaluation's distance above "
            "the best against κ, its profile and the 95 % interval from the fitted curvature. "
            "Bottom: every target at the fit on n = 10 fresh seeds, in standard deviations of "
            "the simulated statistic; orange: held out (never fitted): June's settlement, the "
            "May–June spread, the low, the expiry price and the negative-balance share.",
            "wti_spread_kappa",
            lambda r: calibration_figure(r / "wti_spread_kappa"),
            claims.f14,
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
    specs = figure_specs()
    if only:
        unknown = [o for o in only if not any(_named(s, o) for s in specs)]
        if unknown:
            raise ValueError(
                f"--only {unknown}: no such figure; figures are "
                f"{', '.join(s.name.split('_')[0] for s in specs)} (or their full names)"
            )
    done = []
    for spec in specs:
        if only and not any(_named(spec, o) for o in only):
            continue
        done.append((spec, save(spec.draw(root), out, spec.name)))
    lines = [
        "# Figures",
        "",
        f"Regenerated by `abm figures {root} --out {out}` (or `make figures`) from the "
        f"stored results in `{root}`; recompute those with `abm reproduce`.",
        "",
    ]
    for spec, files in done:
        claim = spec.claim
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


def _named(spec: FigureSpec, name: str) -> bool:
    """Whether ``name`` names the figure: its number (``F1``, not F10) or its full name."""
    return spec.name == name or spec.name.split("_")[0] == name

"""Benchmarks (``abm bench``): the order book alone, the default scenario, scaling, sweeps.

Kept out of the test suite: speed is measured here and recorded in BENCHMARKS.md, never
asserted in a timed test. Each figure is the median of ``repeat`` runs on a fixed seed.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def book_stream(n: int, seed: int = 0) -> list[tuple]:
    """A fixed synthetic stream: 60 % limit orders around a drifting mid, 25 % cancels of
    live orders, 15 % market orders; 50 accounts."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(3, size=n, p=[0.60, 0.25, 0.15])
    sides = rng.choice([1, -1], size=n)
    qty = rng.integers(1, 10, size=n)
    offs = rng.integers(1, 20, size=n)
    accts = rng.integers(0, 50, size=n)
    pick = rng.random(n)
    drift = np.cumsum(rng.choice([-1, 0, 1], size=n, p=[0.05, 0.9, 0.05]))
    return [
        (int(k), int(s), int(q), int(o), int(a), float(u), int(d))
        for k, s, q, o, a, u, d in zip(kinds, sides, qty, offs, accts, pick, drift, strict=True)
    ]


def bench_book(n: int = 200_000, repeat: int = 5) -> dict[str, Any]:
    """Order-book events per second (limit, cancel and market orders) on `book_stream()`."""
    from abm.exchange.book import OrderBook

    stream = book_stream(n)
    times = []
    for _ in range(repeat):
        book = OrderBook()
        live: list[int] = []
        t0 = time.perf_counter()
        for kind, side, q, off, acct, u, drift in stream:
            if kind == 0:
                price = 10_000 + drift - side * off
                r = book.submit(acct, side, q, price, "limit")
                if r.status in ("rested", "partial"):
                    live.append(r.order_id)
            elif kind == 1:
                if live:
                    i = int(u * len(live))
                    live[i], live[-1] = live[-1], live[i]
                    book.cancel(live.pop())
            else:
                book.submit(acct, side, q, None, "market")
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {
        "events": n,
        "seconds_median": med,
        "events_per_second": n / med,
        # the spread over replays: this machine is a shared VM, where replays vary by ±4 %
        "events_per_second_best": n / min(times),
        "events_per_second_worst": n / max(times),
        "repeat": repeat,
    }


def _peak_rss_mb_of(code: str) -> tuple[float, dict[str, Any]]:
    """Run ``code`` in a fresh interpreter; its peak resident memory (MB) and JSON output."""
    out = subprocess.run(
        [sys.executable, "-c", _PEAK + code], capture_output=True, text=True, check=True
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return data.pop("peak_rss_mb"), data


# The child's own peak: Linux keeps ru_maxrss across exec, so a child of a large process (a
# pytest worker, a notebook) would report its parent's peak; VmHWM belongs to the new image.
_PEAK = """
import resource
def _peak_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

_RUN = """
import json, time
from abm.scenarios import load
from abm.model import MarketModel
cfg = load({scenario!r}, {updates!r})
t0 = time.perf_counter()
m = MarketModel(cfg)
r = m.run()
wall = time.perf_counter() - t0
s = r.summary
print(json.dumps({{"wall_seconds": wall, "run_seconds": s["wall_seconds"],
                  "ledger_residual": s["ledger_residual"], "volume": s["volume_total"],
                  "activations": m.crowd.activations, "peak_rss_mb": _peak_mb()}}))
"""

_BASELINE = """
import json
import abm.model, abm.metrics, abm.config
print(json.dumps({"peak_rss_mb": _peak_mb()}))
"""


def bench_scenario(
    scenario: str = "default", updates: dict | None = None, repeat: int = 3
) -> dict[str, Any]:
    """Wall seconds (construction + run + summary) and peak memory of one scenario, each run
    in a fresh process; memory also net of the interpreter and imports."""
    runs = []
    for _ in range(repeat):
        rss, data = _peak_rss_mb_of(_RUN.format(scenario=scenario, updates=updates or {}))
        data["peak_rss_mb"] = rss
        runs.append(data)
    base, _ = _peak_rss_mb_of(_BASELINE)
    med = statistics.median(r["wall_seconds"] for r in runs)
    peak = statistics.median(r["peak_rss_mb"] for r in runs)
    return {
        "scenario": scenario,
        "updates": updates or {},
        "wall_seconds_median": med,
        "run_seconds_median": statistics.median(r["run_seconds"] for r in runs),
        "peak_rss_mb": peak,
        "imports_rss_mb": base,
        "model_rss_mb": peak - base,
        "ledger_residual": runs[0]["ledger_residual"],
        # the crowd's clock firings (the same in every repeat: one seed) per wall second
        "activations": runs[0]["activations"],
        "activations_per_second": runs[0]["activations"] / med,
        "repeat": repeat,
    }


def loglog_slope(xs, ys) -> float:
    """Least-squares slope of log(ys) on log(xs): 1 means cost proportional to size."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def market_of_size(n: int, scenario: str = "default") -> dict[str, Any]:
    """The ``scenario`` market (default: `default`) with ``n`` retail traders and everything
    that provides liquidity or room to deliver scaled with the crowd (hedger and market maker
    sizes, refill and risk limit, the commercials' positions and room): the same market,
    larger, rather than a crowd that
    outgrows a fixed market and turns it into a different one."""
    from abm.scenarios import load

    cfg = load(scenario)
    k = n / cfg.retail.n_traders
    h, mm, c = cfg.hedger, cfg.market_maker, cfg.commercials
    return {
        "retail.n_traders": n,
        "hedger.quote_size": max(1, round(h.quote_size * k)),
        "hedger.depth_refill": round(h.depth_refill * k),
        "hedger.risk_limit": None if h.risk_limit is None else h.risk_limit * k,
        "market_maker.quote_size": max(1, round(mm.quote_size * k)),
        "market_maker.inventory_limit": round(mm.inventory_limit * k),
        "commercials.open_interest": round(c.open_interest * k),
        "commercials.soft_capacity": None
        if c.soft_capacity is None
        else round(c.soft_capacity * k),
        "commercials.cost_slope": c.cost_slope / k,
        "commercials.trade_lots": max(1, round(c.trade_lots * k)),
    }


def bench_scaling(
    sizes=(1_000, 10_000, 100_000), steps=(25, 50, 100, 200), repeat: int = 1
) -> dict[str, Any]:
    """Wall seconds against the number of retail traders (the market scaled with the crowd,
    `market_of_size()`) and against steps per day, with the slope of each on a log–log
    plot (1 = linear)."""
    by_n = [bench_scenario("default", market_of_size(n), repeat) for n in sizes]
    by_steps = [
        bench_scenario(
            "default",
            {
                "calendar.steps_per_day": s,
                "hedger.harvest_window_steps": s // 2,
                "market_maker.flatten_lead_steps": s // 2,
            },
            repeat,
        )
        for s in steps
    ]

    return {
        "retail_traders": [
            {
                "n": n,
                "wall_seconds": r["wall_seconds_median"],
                "peak_rss_mb": r["peak_rss_mb"],
                "activations_per_second": r["activations_per_second"],
            }
            for n, r in zip(sizes, by_n, strict=True)
        ],
        "slope_traders": loglog_slope(sizes, [r["wall_seconds_median"] for r in by_n]),
        "steps_per_day": [
            {"steps": s, "wall_seconds": r["wall_seconds_median"]}
            for s, r in zip(steps, by_steps, strict=True)
        ],
        "slope_steps": loglog_slope(steps, [r["wall_seconds_median"] for r in by_steps]),
    }


def bench_sweep(workers: int = 2, runs: int = 16, pairs: int = 1) -> dict[str, Any]:
    """Runs per minute of ``runs`` default-scenario runs on a LocalCluster of ``workers``
    (start-up and the merged file included), and the same sweep serially in this process, in
    ``pairs`` alternating pairs (serial first); the speed-up is the median of the pairs'
    serial / parallel seconds, so a host's drift over the measurement cancels in each pair."""
    from abm.sweeps.runner import run_sweep
    from abm.sweeps.spec import SweepSpec

    spec = SweepSpec.model_validate(
        {
            "name": "bench",
            "base": "default",
            "design": "list",
            "replicates": runs,
            "master_seed": 1,
            "points": [{"retail_long_share": 0.5}],
        }
    )
    serial, parallel, failed = [], [], 0
    for _ in range(pairs):
        for engine in ("serial", "parallel"):
            with tempfile.TemporaryDirectory() as tmp:
                rep = run_sweep(
                    spec, tmp, workers=workers, serial=engine == "serial", progress=False
                )
            (serial if engine == "serial" else parallel).append(rep.seconds)
            failed += len(rep.failed)
    ratios = [a / b for a, b in zip(serial, parallel, strict=True)]
    return {
        "workers": workers,
        "runs": runs,
        "pairs": pairs,
        "seconds": float(np.median(parallel)),
        "serial_seconds": float(np.median(serial)),
        "runs_per_minute": 60.0 * runs / float(np.median(parallel)),
        "speedup_over_serial": float(np.median(ratios)),
        "speedups": ratios,
        "failed": failed,
    }


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "max_rss_unit": "KiB" if resource.getrusage(resource.RUSAGE_SELF) else "",
    }


#: what `run_all` measures by default; ``million`` (the netted crowd at 10⁴, 10⁵ and 10⁶
#: traders: about a minute and a half) only when named
BENCHES = ("book", "default", "scaling", "sweep")
MILLION = 1_000_000


def bench_million(
    n: int = MILLION, engine: str = "netted", sizes: int = 3, scenario: str = "default"
) -> dict[str, Any]:
    """The ``scenario`` market (default: `default`) scaled to ``n`` retail traders
    (`market_of_size()`) with the crowd
    engine ``engine`` (the targets are the netted fast path's), one run in a fresh process:
    wall seconds, peak memory and activations per second, against the targets of 60 s and
    4 GB (issue 24); and the cost's slope against traders over ``sizes`` sizes a factor 10
    apart up to ``n`` (target ≤ 1)."""
    ns = [n // 10**k for k in range(sizes - 1, -1, -1)]
    points = []
    for m in ns:
        updates = {**market_of_size(m, scenario), "retail.engine": engine}
        points.append({"n": m, **bench_scenario(scenario, updates, repeat=1)})
    top = points[-1]
    return {
        "n": n,
        "scenario": scenario,
        "engine": engine,
        "wall_seconds": top["wall_seconds_median"],
        "peak_rss_mb": top["peak_rss_mb"],
        "activations": top["activations"],
        "activations_per_second": top["activations_per_second"],
        "ledger_residual": top["ledger_residual"],
        "by_size": [
            {
                "n": p["n"],
                "wall_seconds": p["wall_seconds_median"],
                "peak_rss_mb": p["peak_rss_mb"],
                "activations_per_second": p["activations_per_second"],
            }
            for p in points
        ],
        "slope_traders": loglog_slope(ns, [p["wall_seconds_median"] for p in points])
        if len(ns) > 1
        else float("nan"),
        "target_seconds": 60.0,
        "target_peak_mb": 4096.0,
        "target_slope": 1.0,
    }


def run_all(
    only: list[str] | None = None, quick: bool = False, sweep_runs: int | None = None
) -> dict[str, Any]:
    """Every benchmark named in ``only`` (default: `BENCHES`; ``"million"`` as well when
    named), or the quick sizes; the sweep of ``sweep_runs`` default runs (16, quick 4)."""
    if sweep_runs is not None and (type(sweep_runs) is not int or sweep_runs < 2):
        raise ValueError(f"sweep_runs = {sweep_runs!r}: allowed a whole number of runs >= 2")
    unknown = sorted(set(only or ()) - set(BENCHES) - {"million"})
    if unknown:
        raise ValueError(f"--only {', '.join(unknown)}: allowed {', '.join(BENCHES)}, million")
    results: dict[str, Any] = {"machine": machine(), "when": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    want = set(only or BENCHES)
    if "book" in want:
        results["book"] = bench_book(50_000 if quick else 200_000, 3 if quick else 9)
    if "default" in want:
        results["default"] = bench_scenario("default", repeat=1 if quick else 3)
    if "scaling" in want:
        results["scaling"] = bench_scaling(
            (1_000, 3_000) if quick else (1_000, 10_000, 100_000),
            (50, 100) if quick else (25, 50, 100, 200),
        )
    if "sweep" in want:
        runs = sweep_runs if sweep_runs is not None else (4 if quick else 16)
        results["sweep"] = bench_sweep(2, runs, 1 if quick else 3)
    if "million" in want:
        results["million"] = bench_million(20_000 if quick else MILLION)
    return results


def plot_scaling(
    scaling: dict[str, Any], path: Path, million: dict[str, Any] | None = None
) -> Path:
    """Log–log plot of wall time against retail traders (the per-agent crowd, and the netted
    crowd up to a million when ``million`` is given, with issue 24's targets for it) and
    against steps per day. Returns ``path``."""
    from matplotlib.figure import Figure  # no pyplot: no backend to choose
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    fig = Figure(figsize=(7.2, 2.8))
    axes = fig.subplots(1, 2)
    for ax, key, x, label, slope in (
        (axes[0], "retail_traders", "n", "retail traders", scaling["slope_traders"]),
        (axes[1], "steps_per_day", "steps", "steps per day", scaling["slope_steps"]),
    ):
        xs = np.array([r[x] for r in scaling[key]], float)
        ys = np.array([r["wall_seconds"] for r in scaling[key]], float)
        who = "per-agent crowd, " if x == "n" else ""
        ax.loglog(xs, ys, "o-", label=f"{who}measured (slope {slope:.2f})")
        ax.loglog(xs, ys[0] * xs / xs[0], "--", color="0.5", label="linear")
        ax.set_xlabel(label)
        ax.set_ylabel("wall seconds")
    traders = [r["n"] for r in scaling["retail_traders"]]
    if million is not None:
        pts = million["by_size"]
        xs = np.array([p["n"] for p in pts], float)
        ys = np.array([p["wall_seconds"] for p in pts], float)
        axes[0].loglog(
            xs, ys, "s-", color="C1", label=f"netted crowd (slope {million['slope_traders']:.2f})"
        )
        axes[0].loglog(
            [100_000, million["n"]],
            [10.0, million["target_seconds"]],
            "v",
            color="C3",
            label="targets (issue 24)",
        )
        traders = sorted(set(traders) | {int(v) for v in xs})
    else:
        axes[0].axhline(60, color="C3", lw=0.8, ls=":", label="target at 100,000 (60 s)")
    axes[0].set_xticks(traders, [f"{v:,d}" for v in traders], fontsize=7)
    axes[1].set_xticks(
        [r["steps"] for r in scaling["steps_per_day"]],
        [str(r["steps"]) for r in scaling["steps_per_day"]],
    )
    for ax in axes:
        ax.minorticks_off()
        lo, hi = ax.get_ylim()
        nice = [v * 10.0**e for e in range(-1, 4) for v in (1, 2, 5)]
        ax.set_yticks([v for v in nice if lo <= v <= hi])
        ax.set_ylim(lo, hi)
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=150, metadata={"Software": None})
    return path

"""The ``abm`` command: run scenarios, list them.

abm run default
abm run one_sided --set margin_rate=0.2 --set hedger.harvest_spread=5 --seed 3
abm run path/to/my.toml --json > summary.json
abm scenarios
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from abm.config import ConfigError, parse_value
from abm.scenarios import load

app = typer.Typer(
    add_completion=False,
    # plain help: rich's help tables label every flag <bool> and eat [bracketed] words
    rich_markup_mode=None,
    no_args_is_help=True,
    help="Agent-based model of the pre-expiry harvest of retail futures traders.",
)

RESULTS_DIR = Path("results") / "runs"
#: designs with more runs than this need --yes (a typo in a grid can ask for millions)
LARGE_DESIGN = 100_000


def _parse_sets(items: list[str]) -> dict[str, Any]:
    updates: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set margin_rate=0.15")
        key, value = item.split("=", 1)
        updates[key.strip()] = parse_value(value.strip())
    return updates


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v != v:
            return "n/a"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.4g}"
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10_000:
        return f"{v:,d}"
    return str(v)


def summary_rows(result) -> list[tuple[str, str, str, str]]:
    """The run summary as (section, key, value, note) rows: the inputs the run used (none it
    did not), the harvest beside its theory, every class's P&L with the fees, delivery costs,
    insurance fund and broker's bad debt that close the ledger, risk and accounting."""
    from abm.config import inert
    from abm.palette import class_label
    from abm.schema import CLASSES

    s = result.summary
    cfg = result.config
    idle = inert(cfg) if cfg is not None else {}
    rows: list[tuple[str, str, str, str]] = []

    def add(section: str, key: str, note: str = "", value: Any = None) -> None:
        if value is None and key not in s:
            return
        rows.append((section, key, _fmt(s[key] if value is None else value), note))

    m = "Market"
    add(m, "scenario")
    add(m, "seed")
    add(m, "n_retail")
    add(m, "retail_long_share")
    add(m, "margin_rate", "base; step-ups move with it")
    add(m, "forced_close_lead_days")
    add(m, "loss_regime")
    add(m, "harvest_policy", "hedger.spread_policy")
    add(m, "n_firms")
    if "arbitrageurs.capacity" not in idle:
        add(m, "arbitrage_capacity")
    if "hedger.harvest_spread" not in idle:
        add(m, "harvest_spread", "typed-in spread of the labelled baseline policy")
    h = "Harvest"
    oi = s.get("ndnp_share_of_open_interest")
    share = f"{100 * oi:+.1f} % of open interest" if isinstance(oi, float) and oi == oi else ""
    add(h, "ndnp_at_harvest_start", share)
    add(h, "ndnp_at_deadline", "the theory's Q (+ = crowd long)")
    add(h, "firms_share_of_opposite", "of the crowd's opposite side, at the start")
    add(h, "harvest_discount", "last forced lot vs fair value")
    add(h, "harvest_discount_vwap", "all forced lots")
    add(h, "theory_divergence", f"ex post; bound: {s.get('theory_bound', '')}")
    add(h, "theory_ex_ante_divergence", f"ex ante; regime: {s.get('regime', '')}")
    add(h, "transfer_retail_to_hedger_harvest_forced_close", "at the harvest price")
    add(h, "theory_transfer", "closed form, ex post")
    add(h, "theory_ex_ante_transfer", "closed form, ex ante")
    add(h, "basis_at_forced_close", "see (1) below")
    add(h, "max_abs_basis_final_window")
    add(h, "basis_at_expiry")
    add(h, "transfer_retail_to_hedger", "all channels")
    p = "P&L by class"
    bc = result.by_class
    total = 0.0
    if bc is not None and len(bc):
        order = [c for c in CLASSES if c in bc.index] + [c for c in bc.index if c not in CLASSES]
        for cls in order:
            pnl = float(bc.loc[cls, "pnl"])
            rows.append((p, f"pnl {class_label(str(cls))}", _fmt(pnl), ""))
            total += pnl
    ledger = [
        ("fees_total", 1.0, "to exchange and brokers"),
        ("delivery_costs_total", 1.0, "to the warehouses"),
        ("bad_debt_broker", -1.0, "absorbed by the brokers"),
    ]
    for key, sign, note in ledger:
        if key in s:
            rows.append((p, key, _fmt(sign * s[key] + 0.0), note))
            total += sign * float(s[key])
    if cfg is not None and "insurance_fund_final" in s:
        gain = float(s["insurance_fund_final"]) - cfg.clearing.insurance_fund_initial
        rows.append((p, "insurance_fund_gain", _fmt(gain), "penalties − payouts"))
        total += gain
    rows.append((p, "sum", f"{total:.3g}", "0: the ledger closes"))
    r = "Risk"
    for key in (
        "n_margin_calls",
        "n_liquidations",
        "n_negative_equity",
        "bad_debt",
        "retail_open_interest_at_deadline",
        "forced_close_lots",
    ):
        add(r, key)
    a = "Accounting"
    add(a, "ledger_residual")
    add(a, "volume_total")
    add(a, "wall_seconds")
    if s.get("notes"):
        rows.append(("Notes", "notes", "", str(s["notes"])))
    return rows


def _print_summary(result, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    s = result.summary
    console = Console()
    table = Table(title=f"Run summary — {s['scenario']}", show_header=False)
    table.add_column("key", style="bold", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("note", style="dim")
    section = None
    for sec, key, value, note in summary_rows(result):
        if sec != section:
            table.add_row(f"[underline]{sec}[/underline]", "", "")
            section = sec
        table.add_row(key, value, note.replace("[", "\\["))
    console.print(table)
    theory = s.get("theory_transfer")
    got = s.get("transfer_retail_to_hedger_harvest_forced_close")
    if theory and theory == theory and got is not None:
        console.print(
            f"harvest transfer / theory = {got / theory:.3f}  (what the crowd lost at the "
            "harvest price, over the closed-form dominant-firm prediction for the NDNP at the "
            "deadline; 1 = the harvest the theory predicts)"
        )
    console.print(
        "(1) basis_at_forced_close is the VWAP of all forced-close fills − spot: it mixes the "
        "crowd's own longs and shorts crossing near the mid with the lots sold at the harvest "
        "price, so it is smaller than harvest_discount, the last lot against fair value."
    )
    share = s.get("ndnp_share_of_open_interest")
    if isinstance(share, float) and abs(share) < 0.05:
        console.print(
            f"The crowd is nearly balanced (its NDNP is {100 * share:+.1f} % of open interest): "
            "the forced close has little to harvest. `abm run one_sided` runs the same market "
            "with a 90 % long crowd, where the harvest shows."
        )
    console.print(f"results written to [bold]{out}[/bold] (summary.json, *.parquet)")


@app.command()
def run(
    scenario: Annotated[
        str, typer.Argument(help="Scenario name (see `abm scenarios`) or .toml path.")
    ],
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="KEY=VALUE; dotted path or "
            "short name (retail_long_share, margin_rate, forced_close_lead_days, "
            "arbitrage_capacity, harvest_spread).",
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Directory for the results (default: a new folder "
            "results/runs/<scenario>/<time>-seed<seed>, with results/runs/<scenario>/latest "
            "pointing at it; with --set, <time>-seed<seed>-set-<hash of the overrides>, and "
            "latest left alone)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Run one simulation, print its summary and write its results (with provenance.json:
    commit, dirty flag, versions, the resolved config and your overrides)."""
    from abm.model import MarketModel
    from abm.results import _jsonable

    try:
        updates = _parse_sets(set_ or [])
        if seed is not None:
            updates["seed"] = seed
        cfg = load(scenario, updates)
        model = MarketModel(cfg)
        model.overrides = updates
        # a run with --set is another market than the scenario's: its folder says so, and it
        # leaves the scenario's `latest` alone
        changed = {k: v for k, v in updates.items() if k != "seed"}
        tag = overrides_tag(changed) if changed else ""
        # the folder is made before the run, so a path that cannot be written fails now
        target = out if out is not None else new_run_dir(RESULTS_DIR / cfg.name, cfg.seed, tag)
        _writable_dir(target)
    except (ConfigError, ValueError, FileNotFoundError) as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    result = model.run(progress=progress and sys.stderr.isatty() and not as_json)
    result.save(target)
    if out is None and not changed:
        _point_latest(target)
    if as_json:
        typer.echo(json.dumps(_jsonable(result.summary), indent=2))
    else:
        _print_summary(result, target)


def overrides_tag(updates: dict[str, Any]) -> str:
    """``set-<8 hex>``: a short hash of the overrides (dotted paths and values), the same for
    the same overrides however they are spelled or ordered."""
    import hashlib

    from abm.config import dotted

    canon = json.dumps({dotted(k): v for k, v in updates.items()}, sort_keys=True, default=str)
    return "set-" + hashlib.sha256(canon.encode()).hexdigest()[:8]


def new_run_dir(parent: Path, seed: int, tag: str = "") -> Path:
    """A folder of its own for one run under ``parent``: ``<UTC time>-seed<seed>`` (then
    ``-<tag>``, e.g. the overrides' hash), with a counter if two runs start in the same
    second; created here, so no two runs share it."""
    import datetime as dt

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    parent.mkdir(parents=True, exist_ok=True)
    base = f"{stamp}-seed{seed}" + (f"-{tag}" if tag else "")
    for k in range(1000):
        d = parent / (base + (f"-{k}" if k else ""))
        try:
            d.mkdir()
            return d
        except FileExistsError:
            continue
    raise ValueError(f"{parent}: 1000 runs started in the same second; give --out")


def _writable_dir(d: Path) -> None:
    """Create ``d`` if needed and prove it takes a file, or say why not (before the run)."""
    if d.exists() and not d.is_dir():
        raise ValueError(f"--out {d}: is a file, not a folder")
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / f".probe.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"--out {d}: cannot write there ({err.strerror or err})") from None


def _point_latest(run_dir: Path) -> None:
    """``<scenario>/latest`` → the newest run (a relative symlink, replaced atomically)."""
    link = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest.{os.getpid()}"
    try:
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(run_dir.name, target_is_directory=True)
        os.replace(tmp, link)
    except OSError:  # a file system without symlinks: the run folder itself is the record
        tmp.unlink(missing_ok=True)


@app.command()
def scenarios() -> None:
    """List the shipped scenarios, one line each."""
    from abm.scenarios import describe

    for name, description in describe("scenarios"):
        typer.echo(f"{name:<14} {description}")


@app.command()
def sweep(
    spec: Annotated[str, typer.Argument(help="Sweep name (experiments/sweeps/) or .toml path.")],
    workers: Annotated[
        int | None,
        typer.Option(
            help="Worker processes of the embedded LocalCluster (default: one per core).", min=1
        ),
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="An existing Dask scheduler, e.g. tcp://host:8786.")
    ] = None,
    serial: Annotated[bool, typer.Option(help="Run in-process, no Dask (debugging).")] = False,
    resume: Annotated[bool, typer.Option(help="Run only the points not yet on disk.")] = False,
    out: Annotated[
        Path,
        typer.Option(
            help="Results root; the sweep goes in OUT/<name>/ (OUT/<name>-quick/ with --quick)."
        ),
    ] = Path("results"),
    quick: Annotated[
        bool, typer.Option(help="The spec's small [quick] size, in a folder of its own.")
    ] = False,
    only: Annotated[
        list[str] | None, typer.Option(help="Run just this run id (repeatable).", metavar="RUN_ID")
    ] = None,
    retry_failed: Annotated[bool, typer.Option(help="Re-run the recorded failures.")] = False,
    repair: Annotated[
        bool,
        typer.Option(
            help="Set aside a damaged runs.parquet / timeseries.parquet (to corrupt/) and run "
            "again what only they held, then merge: the folder is rebuilt from what is whole."
        ),
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    yes: Annotated[
        bool, typer.Option("--yes", help=f"Run a design of more than {LARGE_DESIGN:,} runs.")
    ] = False,
    counterfactual: Annotated[
        str | None,
        typer.Option(
            help="Add a counterfactual arm to every run on the same seed (no_harvest); each "
            "row gets cf_* and the paired effect_*. Overrides the spec's own setting."
        ),
    ] = None,
) -> None:
    """Run a parameter sweep on Dask and store every run as Parquet."""
    from abm.sweeps.runner import run_sweep
    from abm.sweeps.spec import load_spec

    try:
        sp = load_spec(spec, quick=quick)
        if counterfactual is not None:
            try:
                sp = sp.model_validate({**sp.model_dump(), "counterfactual": counterfactual})
            except ValueError:
                raise ConfigError(
                    f"--counterfactual {counterfactual!r}: allowed no_harvest"
                ) from None
        if serial and address:
            raise ConfigError("--serial and --address exclude each other")
        n = sp.n_runs()
        if n > LARGE_DESIGN and not yes:
            raise ConfigError(
                f"sweep '{sp.name}' expands to {n:,} runs ({sp.n_points():,} points × "
                f"{sp.replicates} replicates), more than {LARGE_DESIGN:,}; pass --yes to run it"
            )
        if progress:
            typer.echo(f"{sp.name}: {n:,} runs ({sp.n_points():,} points × {sp.replicates})")
        report = run_sweep(
            sp,
            out,
            workers=workers,
            address=address,
            serial=serial,
            resume=resume,
            quick=quick,
            only=only,
            retry_failed=retry_failed,
            repair=repair,
            progress=progress,
            folder=f"{sp.name}-quick" if quick else None,
        )
    except (ConfigError, ValueError, FileExistsError, FileNotFoundError) as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    if retry_failed and report.total == 0:
        typer.echo(f"{sp.name}: no failures recorded in {report.root}; nothing to retry")
        return
    typer.echo(
        f"{sp.name}: {report.done} runs done, {len(report.failed)} failed, {report.skipped} "
        f"already on disk, of {report.total}; {report.seconds:.1f} s "
        f"({report.runs_per_minute:.1f} runs/min) -> {report.root}"
    )
    if report.failed:
        typer.echo(
            f"failures recorded in {report.root / 'failures'}; retry with "
            f"`abm sweep {spec} --retry-failed`"
        )
        raise typer.Exit(1)


@app.command()
def query(
    results: Annotated[Path, typer.Argument(help="A sweep's or a single run's results folder.")],
    sql: Annotated[
        str,
        typer.Argument(
            help="SQL over a sweep's views runs, timeseries, points, failures; or a run's "
            "summary (= runs), timeseries, accounts, events, days, by_class, depth."
        ),
    ],
    csv: Annotated[bool, typer.Option(help="Print CSV instead of a table.")] = False,
) -> None:
    """Query stored results (a sweep's folder or a single run's) with DuckDB."""
    from abm.results import query as run_query

    try:
        df = run_query(results, sql)
    except Exception as err:  # noqa: BLE001 - DuckDB's own message is the useful one
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    if csv:
        typer.echo(df.to_csv(index=False), nl=False)
    else:
        import pandas as pd

        with pd.option_context(
            "display.max_rows", 200, "display.max_columns", 50, "display.width", 200
        ):
            typer.echo(df.to_string(index=False))


@app.command()
def columns(
    table: Annotated[
        str | None,
        typer.Argument(
            help="summary, timeseries, accounts, events, days, by_class, depth or runs "
            "(default: all)."
        ),
    ] = None,
    csv: Annotated[bool, typer.Option(help="Print CSV instead of a table.")] = False,
) -> None:
    """Every results column with its unit and meaning (abm/schema.py)."""
    from abm.schema import TABLES, rows

    if table is not None and table not in TABLES:
        typer.secho(
            f"error: no table {table!r}; tables: {', '.join(TABLES)}", fg=typer.colors.RED, err=True
        )
        raise typer.Exit(2)
    data = rows(table)
    if csv:
        import pandas as pd

        df = pd.DataFrame(data, columns=["table", "column", "unit", "meaning"])
        typer.echo(df.to_csv(index=False), nl=False)
        return
    from rich.console import Console
    from rich.table import Table

    t = Table("table", "column", "unit", "meaning", title="Results columns")
    for row in data:
        t.add_row(*(x.replace("[", "\\[") for x in row))
    Console().print(t)


@app.command()
def sensitivity(
    spec: Annotated[str, typer.Argument(help="A sweep with design = 'sobol'.")],
    out: Annotated[Path, typer.Option(help="Results root (as for `abm sweep`).")] = Path("results"),
    quick: Annotated[
        bool, typer.Option(help="The spec's small [quick] size, in OUT/<name>-quick/.")
    ] = False,
    run: Annotated[
        bool,
        typer.Option(
            "--run", help="Run the missing points first (the command says how many it will run)."
        ),
    ] = False,
    workers: Annotated[int | None, typer.Option(help="Workers, with --run.")] = None,
    address: Annotated[str | None, typer.Option(help="Dask scheduler address, with --run.")] = None,
    serial: Annotated[
        bool, typer.Option(help="Run missing points in-process, with --run.")
    ] = False,
    recompute: Annotated[
        bool,
        typer.Option(
            help="Recompute even when the stored analysis is of the same runs (minutes at "
            "paper size: the emulator's posterior draws and bootstrap refits)."
        ),
    ] = False,
) -> None:
    """Sobol indices (first-order and total, with confidence intervals) of a stored Sobol
    sweep's outputs, written as sensitivity.parquet beside it. It analyses what is stored; if
    runs are missing it says how many (and about how long they take) and stops, unless --run.
    An analysis already stored from the same runs is shown as it is, unless --recompute."""
    from abm.results import load as load_runs
    from abm.sweeps.runner import SweepStore, run_sweep
    from abm.sweeps.sensitivity import analyse, sensitivity_verdict
    from abm.sweeps.spec import load_spec

    try:
        sp = load_spec(spec, quick=quick)
        if sp.design != "sobol":
            raise ConfigError(
                f"sweep '{sp.name}' has design '{sp.design}'; sensitivity needs design = 'sobol'"
            )
        folder = f"{sp.name}-quick" if quick else sp.name
        store = SweepStore(Path(out) / folder)
        done = store.done_ids() if store.root.exists() else set()
        missing = sp.n_runs() - len(done & {r.run_id for r in sp.iter_runs()})
        if missing and not run:
            raise ConfigError(
                f"{store.root}: {missing:,} of {sp.n_runs():,} runs of '{sp.name}' are not "
                f"stored ({_how_long(store, missing, workers)}). Run them with `abm sweep "
                f"{spec}{' --quick' if quick else ''} --out {out} --resume` (or pass --run "
                "here); or point --out at the results that hold them, e.g. --out results/paper"
            )
        if missing:
            typer.echo(f"running {missing:,} missing runs ({_how_long(store, missing, workers)})")
            run_sweep(
                sp,
                out,
                workers=workers,
                address=address,
                serial=serial,
                resume=True,
                quick=quick,
                folder=folder,
            )
        table = load_runs(store.root)
        res = analyse(
            sp,
            table,
            store.root,
            recompute=recompute,
            say=lambda line: typer.echo(line, err=True),
        )
    except (ConfigError, ValueError, FileNotFoundError) as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    cols = ["output", "method", "parameter", "S1", "S1_lo", "S1_hi", "ST", "ST_lo", "ST_hi"]
    typer.echo(res[cols + ["q2"]].to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    typer.echo(sensitivity_verdict(res))


def _how_long(store, n: int, workers: int | None) -> str:
    """About how long ``n`` runs take, from the stored runs' own times (else unknown)."""
    w = workers or os.cpu_count() or 1
    try:
        times = _mean_run_seconds(store)
    except (OSError, ValueError, RuntimeError):  # no readable runs: no estimate
        times = None
    if not times:
        return "duration unknown until a run has finished"
    minutes = n * times / w / 60
    return f"about {minutes:,.0f} minutes on {w} workers at {times:.2f} s a run"


def _mean_run_seconds(store) -> float | None:
    """Mean seconds of the runs stored in a sweep folder, or None."""
    from abm.results import load as load_runs

    if not store.root.exists():
        return None
    t = load_runs(store.root)
    if "run_seconds" not in t or not len(t):
        return None
    return float(t["run_seconds"].mean())


@app.command()
def reproduce(
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where the figures' data go (results/paper; results/paper-quick with --quick)."
        ),
    ] = None,
    quick: Annotated[
        bool, typer.Option(help="The sweeps' small sizes, kept apart from the paper's results.")
    ] = False,
    workers: Annotated[int | None, typer.Option(help="LocalCluster workers.")] = None,
    serial: Annotated[bool, typer.Option(help="No Dask.")] = False,
    resume: Annotated[
        bool, typer.Option(help="Keep what is on disk; run what is missing.")
    ] = False,
    only: Annotated[
        list[str] | None,
        typer.Option(help="Just this scenario or sweep (repeatable), e.g. crowd_seeds."),
    ] = None,
) -> None:
    """Recompute the stored results the paper figures are drawn from."""
    from abm.sweeps.paper import reproduce as run_reproduce

    if out is None:
        out = Path("results/paper-quick" if quick else "results/paper")
    try:
        root = run_reproduce(
            out,
            quick=quick,
            workers=workers,
            serial=serial,
            fresh=not resume,
            progress=sys.stderr.isatty(),
            only=only,
        )
    except (ConfigError, ValueError) as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    # each calibration keeps its own figure, as `abm calibrate` draws it: the fresh folder
    # reproduce wrote must not lose it
    from abm.figures.calibration import calibration_figure
    from abm.figures.style import save
    from abm.sweeps.calibration import load_calibration
    from abm.sweeps.paper import CALIBRATIONS

    for name in CALIBRATIONS:
        folder = root / load_calibration(name, quick=quick).name
        if (not only or name in only) and (folder / "fit.parquet").exists():
            save(calibration_figure(folder), folder, "calibration")
    typer.echo(f"stored results in {root}; draw the figures with `abm figures {root}`")


@app.command()
def compare(
    a: Annotated[Path, typer.Argument(help="A results store, e.g. results/paper.")],
    b: Annotated[Path, typer.Argument(help="Another, e.g. one `abm reproduce --out` wrote.")],
    rtol: Annotated[
        float, typer.Option(help="Accept numbers whose relative difference is at most this.")
    ] = 0.0,
) -> None:
    """Compare two results stores run by run and sweep by sweep, timing columns left out:
    every column that differs, with its largest difference. Exit 0 when every difference is
    within --rtol (0: bit for bit), 1 otherwise."""
    from abm.sweeps.paper import compare as compare_stores

    for d in (a, b):
        if not d.is_dir():
            typer.secho(f"error: {d}: no such folder", fg=typer.colors.RED, err=True)
            raise typer.Exit(2)
    compared, diffs = compare_stores(a, b, rtol)
    if not compared:
        typer.secho(f"error: {a} and {b} hold no result in common", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    beyond = [d for d in diffs if not d.within]
    typer.echo(
        f"compared {len(compared)} results ({', '.join(compared)}): {len(diffs)} columns differ, "
        f"{len(beyond)} beyond rtol = {rtol:g}"
    )
    for d in diffs:
        typer.echo(f"  {'  ' if d.within else '✗ '}{d}")
    raise typer.Exit(1 if beyond else 0)


@app.command()
def engines(
    folder: Annotated[
        Path, typer.Argument(help="A stored sweep varying retail.engine (abm sweep crowd_engines).")
    ] = Path("results/crowd_engines"),
    level: Annotated[float, typer.Option(help="Test level, after Holm's correction.")] = 0.01,
) -> None:
    """Hold the netted crowd engine against the per-agent one on a stored sweep: every summary
    metric's two samples by a Kolmogorov–Smirnov test, Holm-corrected; writes engines.parquet
    and engines.png into the folder. Exit 0 when no metric differs at --level, 1 otherwise."""
    from abm.results import atomic_write_parquet
    from abm.results import load as load_runs
    from abm.sweeps.engines import engine_comparison, engine_figure

    try:
        runs = load_runs(folder)
        table = engine_comparison(runs, level)
    except (FileNotFoundError, ValueError) as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    atomic_write_parquet(folder / "engines.parquet", table)
    png = engine_figure(runs, table, folder / "engines.png")
    tested = table["p"].notna()
    differ = table[table["differs"]]
    n_a, n_b = int(table["n_a"].max()), int(table["n_b"].max())
    typer.echo(
        f"{int(tested.sum())} metrics tested (n = {n_a} per-agent, {n_b} netted runs), "
        f"{len(differ)} differ at {level:g} after Holm's correction"
    )
    for _, r in table[tested].nsmallest(5, "p").iterrows():
        typer.echo(
            f"  {'✗ ' if r.differs else '  '}{r.metric:<40} agents {r.mean_a:>12.6g}  "
            f"netted {r.mean_b:>12.6g}  p {r.p:.3g}  Holm {r.p_holm:.3g}  paired "
            f"{r['diff']:+.4g} [{r.diff_lo:+.4g}, {r.diff_hi:+.4g}]"
        )
    typer.echo(f"table {folder / 'engines.parquet'}, figure {png}")
    raise typer.Exit(1 if len(differ) else 0)


@app.command()
def figures(
    results: Annotated[Path, typer.Argument(help="Stored results (see `abm reproduce`).")] = Path(
        "results/paper"
    ),
    out: Annotated[Path, typer.Option(help="Where the PDF and PNG files go.")] = Path(
        "results/figures"
    ),
    only: Annotated[list[str] | None, typer.Option(help="Just these figures, e.g. F2.")] = None,
) -> None:
    """Regenerate every paper figure (PDF + PNG) from stored results, with an index."""
    import matplotlib

    matplotlib.use("Agg")  # the command writes files; it never opens a window
    from abm.figures import make_all

    try:
        done = make_all(results, out, only=only)
    except FileNotFoundError as err:
        typer.secho(
            f"error: {err}; recompute the data with `abm reproduce`", fg=typer.colors.RED, err=True
        )
        raise typer.Exit(2) from None
    except ValueError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    for spec, files in done:
        typer.echo(f"{spec.name:<28} {files[0]}  {files[1].name}")


@app.command(name="app")
def dashboard(
    host: Annotated[str, typer.Option(help="Interface to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8765,
    scenario: Annotated[str, typer.Option(help="Base scenario of the dashboard.")] = "small",
) -> None:
    """Launch the browser dashboard (Mesa SolaraViz) and print its address."""
    from abm.scenarios import resolve_scenario

    try:
        resolve_scenario(scenario)
    except ConfigError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    app_file = Path(__file__).resolve().parent / "app.py"
    solara = Path(sys.executable).parent / "solara"
    typer.echo(f"dashboard: http://{host}:{port}/  (scenario {scenario}; Ctrl-C to stop)")
    # no usage telemetry from a research tool (and no network calls on offline machines)
    env = {"SOLARA_TELEMETRY_MIXPANEL_ENABLE": "false", **os.environ, "ABM_APP_SCENARIO": scenario}
    if not 1 <= port <= 65535:
        typer.secho(f"error: --port {port}: allowed 1..65535", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    cmd = [str(solara), "run", str(app_file), "--host", host, "--port", str(port), "--no-open"]
    # exec, not a child: the server is this process, so stopping `abm app` (Ctrl-C, kill)
    # stops the server and frees the port
    sys.stdout.flush()
    os.execve(str(solara), cmd, env)


@app.command()
def facts(
    scenarios: Annotated[
        list[str], typer.Argument(help="Scenarios, e.g. default china_rebar wti_2020.")
    ],
    seeds: Annotated[int, typer.Option(help="Seeds 1..N per scenario.")] = 10,
    series: Annotated[
        str, typer.Option(help="futures (each step's trade price) or mid (the book's mid).")
    ] = "futures",
    horizon: Annotated[
        int, typer.Option(help="Sample the price every N steps (5 with mid: ODD §8's table).")
    ] = 1,
) -> None:
    """Stylized facts of each scenario's ordinary market (before the harvest window): Hill tail
    index, kurtosis and its aggregation, autocorrelation of returns and of |returns|, futures
    against spot volatility; mean ± sd over seeds."""
    from abm.sweeps.facts import facts_table

    try:
        for sc in scenarios:
            load(sc)
        table = facts_table(
            scenarios, seeds, progress=sys.stderr.isatty(), series=series, horizon=horizon
        )
    except (ConfigError, ValueError) as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    wide = table.assign(
        cell=[f"{m:.3g} ± {s:.2g}" for m, s in zip(table["mean"], table["std"], strict=True)]
    )
    typer.echo(wide.pivot(index="fact", columns="scenario", values="cell").to_string())


@app.command()
def calibrate(
    spec: Annotated[
        str, typer.Argument(help="Calibration name (experiments/calibrations/) or .toml path.")
    ],
    out: Annotated[
        Path, typer.Option(help="Results root; the calibration goes in OUT/<name>/.")
    ] = Path("results/calibrations"),
    workers: Annotated[
        int | None,
        typer.Option(
            help="Worker processes of the embedded LocalCluster (default: one per core).", min=1
        ),
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="An existing Dask scheduler, e.g. tcp://host:8786.")
    ] = None,
    serial: Annotated[bool, typer.Option(help="Run in-process, no Dask (debugging).")] = False,
    resume: Annotated[
        bool, typer.Option(help="Carry on a calibration whose folder holds evaluations.")
    ] = False,
    quick: Annotated[
        bool, typer.Option(help="The spec's small [quick] budget, in a folder of its own.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Fit a spec's free parameters to its observed statistics by simulation (optuna's TPE on
    Dask; synthetic-likelihood distance). Writes every evaluation, the estimate with its 95 %
    interval, the profile, the fit of every target (held-out ones apart) and a figure."""
    from abm.figures.calibration import calibration_figure
    from abm.figures.style import save
    from abm.sweeps.calibration import calibrate as run_calibration
    from abm.sweeps.calibration import load_calibration

    try:
        sp = load_calibration(spec, quick=quick)
        if serial and address:
            raise ConfigError("--serial and --address exclude each other")
        if progress:
            typer.echo(
                f"{sp.name}: {sp.budget} evaluations × {sp.seeds} seeds, "
                f"{len(sp.parameters)} parameters, {len(sp.fitted)} fitted targets, "
                f"{len(sp.targets) - len(sp.fitted)} held out"
            )
        report = run_calibration(
            sp,
            out,
            workers=workers,
            address=address,
            serial=serial,
            resume=resume,
            progress=progress,
        )
    except (ConfigError, ValueError, FileExistsError, FileNotFoundError) as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    save(calibration_figure(report.root), report.root, "calibration")
    typer.echo(
        f"{sp.name}: {report.evaluations} evaluations ({report.new} new) in "
        f"{report.seconds:.1f} s -> {report.root}"
    )
    for r in report.best.itertuples():
        ci = f"[{r.ci_low:.4g}, {r.ci_high:.4g}]" if r.ci_low == r.ci_low else r.problem
        typer.echo(f"  {r.parameter} = {r.estimate:.4g}  95 % {ci}")
    for r in report.fit.itertuples():
        tag = "held out" if r.held_out else "fitted  "
        typer.echo(
            f"  {tag} {r.statistic}: observed {r.observed:.4g}, simulated "
            f"{r.simulated_mean:.4g} ± {r.simulated_sd:.2g} (z {r.z:+.2f})"
        )


@app.command()
def bench(
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    quick: Annotated[bool, typer.Option(help="Small sizes (a minute).")] = False,
    only: Annotated[
        list[str] | None,
        typer.Option(
            help="book, default, scaling, sweep; million (the netted crowd at 10,000, 100,000 "
            "and 1,000,000 traders, not run unless named)."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the JSON and the scaling plot here.")
    ] = None,
    sweep_runs: Annotated[
        int | None,
        typer.Option(
            min=2,
            help="Default runs in the sweep benchmark (16; 4 with --quick): a longer sweep "
            "spreads the cluster's start over more runs.",
        ),
    ] = None,
) -> None:
    """Benchmarks: order book events/s, the default scenario's time and memory, scaling with
    traders and steps, sweep runs per minute. Not part of the test suite."""
    from abm.bench import plot_scaling, run_all

    try:
        res = run_all(only=only, quick=quick, sweep_runs=sweep_runs)
    except ValueError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "bench.json").write_text(json.dumps(res, indent=2))
        if "scaling" in res:
            plot_scaling(res["scaling"], out / "scaling.png", res.get("million"))
    if as_json:
        typer.echo(json.dumps(res, indent=2))
        return
    if "book" in res:
        bk = res["book"]
        typer.echo(
            f"order book: {bk['events_per_second']:,.0f} events/s (median of {bk['repeat']}; "
            f"best {bk['events_per_second_best']:,.0f}, worst {bk['events_per_second_worst']:,.0f})"
        )
    if "default" in res:
        d = res["default"]
        typer.echo(
            f"default scenario: {d['wall_seconds_median']:.2f} s, peak "
            f"{d['peak_rss_mb']:.0f} MB ({d['model_rss_mb']:.0f} MB beyond imports), "
            f"{d['activations_per_second']:,.0f} retail activations/s"
        )
    if "scaling" in res:
        sc = res["scaling"]
        for r in sc["retail_traders"]:
            typer.echo(
                f"  {r['n']:>7,d} retail traders: {r['wall_seconds']:.1f} s, "
                f"{r['activations_per_second']:,.0f} activations/s, {r['peak_rss_mb']:.0f} MB"
            )
        typer.echo(
            f"  log-log slope vs traders {sc['slope_traders']:.2f}, vs steps/day "
            f"{sc['slope_steps']:.2f}"
        )
    if "million" in res:
        mi = res["million"]
        typer.echo(
            f"{mi['n']:,d} retail traders ({mi['engine']} crowd): {mi['wall_seconds']:.1f} s "
            f"(target {mi['target_seconds']:.0f} s), peak {mi['peak_rss_mb']:,.0f} MB (target "
            f"{mi['target_peak_mb']:,.0f} MB), {mi['activations_per_second']:,.0f} activations/s"
        )
        for r in mi["by_size"][:-1]:
            typer.echo(
                f"  {r['n']:>9,d} traders: {r['wall_seconds']:.1f} s, {r['peak_rss_mb']:.0f} MB"
            )
        typer.echo(
            f"  log-log slope vs traders {mi['slope_traders']:.2f} (target "
            f"≤ {mi['target_slope']:.0f})"
        )
    if "sweep" in res:
        sw = res["sweep"]
        typer.echo(
            f"sweep: {sw['runs_per_minute']:.1f} runs/min on {sw['workers']} workers, "
            f"{sw['speedup_over_serial']:.2f}× serial (median of {sw['pairs']} alternating pairs "
            f"of {sw['runs']} runs)"
        )


def describe_os_error(err: OSError) -> str:
    """An operating-system error as one line: what failed, on which file, and what to do."""
    import errno

    where = err.filename or ""
    if err.filename2:
        where = f"{where} -> {err.filename2}"
    what = err.strerror or str(err)
    todo = {
        errno.ENOSPC: "the disk is full: free space, or give another --out",
        errno.EDQUOT: "the disk quota is used up: free space, or give another --out",
        errno.EACCES: "no permission to write there: give another --out (or cd elsewhere)",
        errno.EPERM: "no permission to write there: give another --out (or cd elsewhere)",
        errno.EROFS: "the file system is read-only: give another --out (or cd elsewhere)",
        errno.ENOTDIR: "a part of the path is a file, not a folder: give another --out",
        errno.EISDIR: "a folder stands where a file should go: give another --out",
        errno.ENOENT: "no such file or folder",
    }.get(err.errno or -1, "")
    return f"{what}: {where}" + (f"; {todo}" if todo else "")


def main() -> None:
    """The ``abm`` command: an operating-system error (a full disk, a read-only folder, a path
    through a file) ends it with one line saying what and where, not a traceback."""
    try:
        app()
    except OSError as err:
        typer.secho(f"error: {describe_os_error(err)}", fg=typer.colors.RED, err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":  # pragma: no cover
    main()

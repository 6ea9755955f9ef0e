"""Run results as data: a flat summary, DataFrames, and Parquet/JSON files a user can query.

``RunResult.save(dir)`` writes ``summary.json``, ``config.json`` and one Parquet file per table
(``timeseries``, ``accounts``, ``events``, ``days``, ``by_class``);
[`load_run()`][abm.results.load_run] reads them back. DuckDB reads the Parquet files directly, e.g.
``duckdb.sql("SELECT day, max(abs(basis)) FROM 'results/runs/default/timeseries.parquet' GROUP BY
day")``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from abm.config import RunConfig
from abm.statistics import mean_ci, paired_effect  # noqa: F401 - part of the API

TABLES = ("timeseries", "accounts", "events", "days", "by_class", "depth")


@dataclass
class RunResult:
    summary: dict[str, Any]
    timeseries: pd.DataFrame
    accounts: pd.DataFrame
    events: pd.DataFrame = field(default_factory=pd.DataFrame)
    days: pd.DataFrame = field(default_factory=pd.DataFrame)
    by_class: pd.DataFrame = field(default_factory=pd.DataFrame)
    config: RunConfig | None = None
    agents: pd.DataFrame | None = None
    depth: pd.DataFrame = field(default_factory=pd.DataFrame)  # mean lots at the k-th level
    #: commit, dirty flag, versions, machine, command, config, overrides (abm.provenance)
    provenance: dict[str, Any] | None = None

    def plot(self, last_days: float | None = None):
        """A quick look, on separate axes against trading days: futures and spot, the basis,
        the crowd's NDNP with every class's net position, and each class's wealth change; the
        harvest window shaded and the deadline dashed. ``last_days`` zooms on the end.
        Returns the matplotlib Figure (Jupyter shows it inline)."""
        import matplotlib.pyplot as plt

        from abm.palette import CLASS_COLORS, SERIES_COLORS, class_label
        from abm.schema import CLASSES

        ts = self.timeseries
        cfg = self.config
        spd = cfg.calendar.steps_per_day if cfg is not None else 1
        x = ts.index.to_numpy() / spd
        fig, axes = plt.subplots(4, 1, figsize=(7.2, 7.5), sharex=True)
        ax = axes[0]
        ax.plot(x, ts["spot"], lw=1.0, color=SERIES_COLORS["spot"], label="spot")
        ax.plot(x, ts["futures"], lw=0.7, color=SERIES_COLORS["futures"], label="futures")
        ax.set_ylabel("price")
        ax = axes[1]
        ax.plot(
            x, ts["basis"], lw=0.7, color=SERIES_COLORS["basis"], label="basis (futures − spot)"
        )
        ax.axhline(0, color="0.6", lw=0.6)
        ax.set_ylabel("basis")
        ax = axes[2]
        ax.plot(x, ts["ndnp"], lw=1.2, color="k", label="NDNP")
        # every class keeps its colour in every panel (abm.palette)
        for cls in CLASSES:
            col = f"net_{cls}"
            if col in ts and ts[col].abs().max() > 0 and cls != "retail":
                ax.plot(x, ts[col], lw=0.7, color=CLASS_COLORS[cls], label=class_label(cls))
        ax.set_ylabel("net position (lots)")
        ax = axes[3]
        for cls in CLASSES:
            col = f"equity_{cls}"
            if col in ts and ts[col].abs().max() > 0:
                ax.plot(
                    x,
                    ts[col] - ts[col].iloc[0],
                    lw=0.8,
                    color=CLASS_COLORS[cls],
                    label=class_label(cls),
                )
        ax.set_ylabel("wealth change")
        ax.set_xlabel("trading day")
        if cfg is not None:
            from abm.build import calendar, harvest_start_step

            cal = calendar(cfg)
            deadline = cal.deadline_step / spd
            start = harvest_start_step(cfg) / spd
            for a in axes:
                a.axvspan(start, deadline, color=SERIES_COLORS["harvest_window"], alpha=0.12, lw=0)
                a.axvline(deadline, color="0.25", ls="--", lw=0.9)
            if last_days is not None:
                axes[0].set_xlim(cal.trading_days - last_days, cal.trading_days)
        for a in axes:
            a.legend(loc="upper left", fontsize=7, frameon=False)
        fig.suptitle(self.summary.get("scenario", ""), fontsize=9)
        fig.tight_layout()
        return fig

    def save(self, out_dir: str | Path) -> Path:
        """Write the run under ``out_dir``; returns the directory. Every file is written
        atomically, and ``summary.json`` last, naming the files written before it: a run cut
        short (a kill, a full disk) has no summary, or one naming a file that is missing, and
        [`load_run()`][abm.results.load_run] refuses it rather than read it as whole."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        # a reused folder reads as incomplete until its new summary is written
        (out / "summary.json").unlink(missing_ok=True)
        files = []
        if self.config is not None:
            atomic_write_bytes(out / "config.json", self.config.model_dump_json(indent=2).encode())
            files.append("config.json")
        for name in TABLES:
            df = getattr(self, name)
            if df is None:
                continue
            frame = df.reset_index() if name in ("timeseries", "by_class") else df
            if name == "by_class":
                frame = frame.rename(columns={"index": "owner"})
            atomic_write_parquet(out / f"{name}.parquet", frame, table=name)
            files.append(f"{name}.parquet")
        if self.agents is not None:
            atomic_write_parquet(out / "agents.parquet", self.agents)
            files.append("agents.parquet")
        if self.provenance is not None:
            atomic_write_bytes(
                out / "provenance.json", json.dumps(self.provenance, indent=2, default=str).encode()
            )
            files.append("provenance.json")
        summary = {**_jsonable(self.summary), "_files": files}
        atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())
        return out


def point_summary(path: str | Path, metrics: list[str] | None = None, **kw) -> pd.DataFrame:
    """Per-point means, standard errors and 95 % intervals (t and bootstrap) of a stored
    sweep's runs ([`abm.statistics.point_table()`][abm.statistics.point_table]); ``metrics``
    default to the key outputs the sweep has."""
    from abm.statistics import KEY_OUTPUTS, point_table

    runs = load(path)
    if metrics is None:
        metrics = [m for m in KEY_OUTPUTS if m in runs.columns]
    return point_table(runs, metrics, **kw)


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if hasattr(v, "item"):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        out[k] = v
    return out


@contextlib.contextmanager
def _temporary(path: Path) -> Iterator[Path]:
    """The temporary file an atomic write goes through; removed if the write fails (a full
    disk, a kill signal turned into an exception), so nothing half-written is left behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so readers never see half of it: temporary file, fsync, rename."""
    with _temporary(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


def atomic_write_parquet(path: Path, df: pd.DataFrame, table: str | None = None) -> None:
    """Parquet (zstd) written the same way as
    [`atomic_write_bytes()`][abm.results.atomic_write_bytes]; with ``table``
    (a name in [`abm.schema`][abm.schema]) each column carries its unit and meaning as field
    metadata."""
    with _temporary(path) as tmp:
        if table is None:
            df.to_parquet(tmp, compression="zstd", index=False)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            from abm.schema import field_metadata

            t = pa.Table.from_pandas(df, preserve_index=False)
            fields = [f.with_metadata(field_metadata(table, f.name) or None) for f in t.schema]
            t = t.cast(pa.schema(fields, metadata=t.schema.metadata))
            pq.write_table(t, tmp, compression="zstd")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)


def load_run(path: str | Path) -> RunResult:
    """Read a saved run back into a [`RunResult`][abm.results.RunResult]."""
    p = Path(path)
    if not (p / "summary.json").exists():
        raise FileNotFoundError(f"{p}: no summary.json here; not a saved run")
    summary = json.loads((p / "summary.json").read_text())
    files = summary.pop("_files", None)
    missing = [f for f in files or [] if not (p / f).exists()]
    if missing:
        raise FileNotFoundError(
            f"{p}: an incomplete run: its summary names {missing}, which are not there"
        )
    tables = {}
    for name in TABLES:
        f = p / f"{name}.parquet"
        tables[name] = pd.read_parquet(f) if f.exists() else pd.DataFrame()
    ts = tables["timeseries"]
    if "step" in ts.columns:
        ts = ts.set_index("step")
    bc = tables["by_class"]
    if "owner" in bc.columns:
        bc = bc.set_index("owner")
    cfg = None
    if (p / "config.json").exists():
        cfg = RunConfig.model_validate_json((p / "config.json").read_text())
    agents = pd.read_parquet(p / "agents.parquet") if (p / "agents.parquet").exists() else None
    prov = p / "provenance.json"
    provenance = json.loads(prov.read_text()) if prov.exists() else None
    return RunResult(
        summary,
        ts,
        tables["accounts"],
        tables["events"],
        tables["days"],
        bc,
        cfg,
        agents,
        tables["depth"],
        provenance,
    )


# -- sweeps: the read side ---------------------------------------------------------------------


def _connect(path: str | Path):
    """A DuckDB connection with views ``runs``, ``timeseries``, ``points`` (per-point
    statistics of a finished sweep) and ``failures`` of a sweep."""
    import duckdb

    p = Path(path)
    if (p / "summary.json").exists():
        return _connect_run(p)
    if not _is_sweep(p):
        raise FileNotFoundError(_not_results(p))
    con = duckdb.connect()

    def sources(one: Path, many: Path) -> list[Path]:
        files = [one] if one.exists() else []
        if many.is_dir():
            files += sorted(many.glob("*.parquet"))
        return files

    # a sweep is kept as one-row files while it runs and compacted into one file when done;
    # a crash during compaction can leave a run in both: keep one row per run (and step)
    runs = sources(p / "runs.parquet", p / "runs")
    if runs:
        _view(con, "runs", runs, "run_id")
    else:
        con.execute("CREATE VIEW runs AS SELECT NULL::VARCHAR AS run_id WHERE false")
    ts = sources(p / "timeseries.parquet", p / "timeseries")
    if ts:
        _view(con, "timeseries", ts, "run_id, step")
    if (p / "points.parquet").exists():
        _view(con, "points", [p / "points.parquet"])
    fails = sorted((p / "failures").glob("*.json")) if (p / "failures").is_dir() else []
    if fails:
        rows = [json.loads(f.read_text()) for f in fails]
        df = pd.DataFrame(
            [
                {k: r[k] for k in ("run_id", "point", "replicate", "seed", "error")}
                | {"params": json.dumps(r["params"])}
                for r in rows
            ]
        )
        con.register("failures", df)
    return con


def _view(con, name: str, files: list[Path], unique: str | None = None) -> None:
    """View ``name`` over Parquet ``files`` (columns united by name), one row per ``unique``
    key if given. The files are handed to DuckDB as an Arrow dataset, not spliced into SQL,
    so any path works (quotes, brackets, asterisks: nothing is globbed or quoted); a file that
    does not read is named."""
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    schemas = []
    for f in files:
        try:
            schemas.append(pq.read_schema(f))
        except Exception as err:  # noqa: BLE001 - truncated, empty, not Parquet: all the same
            raise ValueError(
                f"{f}: unreadable ({type(err).__name__}: {err}). If it is a sweep's merged file, "
                "`abm sweep <spec> --repair` sets it aside and runs again what only it held"
            ) from None
    schema = pa.unify_schemas(schemas, promote_options="permissive")
    con.register(f"{name}_files", pads.dataset([str(f) for f in files], schema=schema))
    dedupe = f" QUALIFY row_number() OVER (PARTITION BY {unique}) = 1" if unique else ""
    con.execute(f"CREATE VIEW {name} AS SELECT * FROM {name}_files{dedupe}")


def _connect_run(p: Path):
    """A DuckDB connection over one run's folder: ``summary`` (also as ``runs``, one row) and
    a view per stored table (timeseries, accounts, events, days, by_class, depth)."""
    import duckdb

    con = duckdb.connect()
    summary = pd.DataFrame([json.loads((p / "summary.json").read_text())])
    con.register("summary", summary)
    con.execute("CREATE VIEW runs AS SELECT * FROM summary")
    for name in TABLES:
        f = p / f"{name}.parquet"
        if f.exists():
            _view(con, name, [f])
    return con


def _is_sweep(p: Path) -> bool:
    runs = p / "runs"
    return (
        (p / "runs.parquet").exists()
        or (p / "manifest.json").exists()
        or (runs.is_dir() and any(runs.glob("*.parquet")))
    )


def _is_results(p: Path) -> bool:
    return (p / "summary.json").exists() or _is_sweep(p)


def results_folders(root: str | Path, depth: int = 3, budget: int = 2000) -> list[Path]:
    """Sweep and run folders under ``root``, at most ``depth`` levels down and looking into at
    most ``budget`` folders (a results folder is not descended into), sorted."""
    root = Path(root)
    found: list[Path] = []
    seen = [0]

    def walk(d: Path, level: int) -> None:
        seen[0] += 1
        if seen[0] > budget:
            return
        if _is_results(d):
            found.append(d)
            return
        if level == 0:
            return
        try:
            children = sorted(c for c in d.iterdir() if c.is_dir() and not c.name.startswith("."))
        except OSError:
            return
        for c in children:
            walk(c, level - 1)

    if root.is_dir():
        walk(root, depth)
    return found


def _not_results(p: Path) -> str:
    """Why ``p`` cannot be queried, and which results folders exist near it."""
    what = "does not exist" if not p.exists() else "holds no runs/, runs.parquet or summary.json"
    msg = f"{p} {what}: not a sweep's or a run's results folder"
    quick = p.with_name(p.name + "-quick")
    if _is_results(quick):
        return f"{msg}. The --quick sweep is stored in {quick}"
    anchor = p
    while not anchor.is_dir() and anchor != anchor.parent:
        anchor = anchor.parent
    if anchor == anchor.parent:  # nothing of the path exists: do not search the whole disk
        return msg
    near = results_folders(anchor)
    if near:
        shown = ", ".join(str(f) for f in near[:12])
        more = f" and {len(near) - 12} more" if len(near) > 12 else ""
        return f"{msg}. Results folders there: {shown}{more}"
    return f"{msg}, and there are no results folders under {anchor}"


def load(path: str | Path) -> pd.DataFrame:
    """All finished runs of a sweep as one DataFrame, one row per run, ordered by point,
    replicate and run id."""
    con = _connect(path)
    return con.execute("SELECT * FROM runs ORDER BY point, replicate, run_id").df()


def load_timeseries(path: str | Path, run_ids: list[str] | None = None) -> pd.DataFrame:
    con = _connect(path)
    where = ""
    if run_ids:
        ids = ", ".join(f"'{r}'" for r in run_ids)
        where = f" WHERE run_id IN ({ids})"
    return con.execute(f"SELECT * FROM timeseries{where} ORDER BY run_id, step").df()


def query(path: str | Path, sql: str) -> pd.DataFrame:
    """Run SQL against a results folder: a sweep's views ``runs`` (and ``timeseries``,
    ``points``, ``failures``), or a single run's ``summary`` (also ``runs``) and its tables
    (``timeseries``, ``accounts``, ``events``, ``days``, ``by_class``, ``depth``). A query
    naming a view the folder does not have says which views exist and why one is missing."""
    import duckdb

    if not sql or not sql.strip():
        raise ValueError('no SQL given: write a query, e.g. "SELECT * FROM runs LIMIT 5"')
    con = _connect(path)
    try:
        res = con.execute(sql)
        if res.description is None:
            raise ValueError(f"{sql!r} returns no table: give a query (SELECT ...)")
        return res.df()
    except duckdb.CatalogException as err:
        p = Path(path)
        if (p / "summary.json").exists():
            have = ["summary", "runs"] + [t for t in TABLES if (p / f"{t}.parquet").exists()]
            raise ValueError(f"{err}\n{p} is one run's folder, with the views {have}") from None
        have, why = ["runs"], []
        ts_dir = p / "timeseries"
        if (p / "timeseries.parquet").exists() or (ts_dir.is_dir() and any(ts_dir.glob("*"))):
            have.append("timeseries")
        else:
            why.append(
                "timeseries: none stored (the spec keeps summaries only; set "
                "keep = 'timeseries' in it to store them)"
            )
        if (p / "points.parquet").exists():
            have.append("points")
        else:
            why.append("points: written when every run of the sweep has finished")
        if (p / "failures").is_dir() and any((p / "failures").glob("*.json")):
            have.append("failures")
        else:
            why.append("failures: no run failed")
        raise ValueError(f"{err}\n{p} has the views {have}; missing: {'; '.join(why)}") from None

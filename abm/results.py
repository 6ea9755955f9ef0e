"""Run results as data: a flat summary, DataFrames, and Parquet/JSON files a user can query.

``RunResult.save(dir)`` writes ``summary.json``, ``config.json`` and one Parquet file per table
(``timeseries``, ``accounts``, ``events``, ``days``, ``by_class``); :func:`load_run` reads them
back. DuckDB reads the Parquet files directly, e.g.
``duckdb.sql("SELECT day, max(abs(basis)) FROM 'results/runs/default/timeseries.parquet' GROUP BY
day")``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from abm.config import RunConfig

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

    def save(self, out_dir: str | Path) -> Path:
        """Write the run under ``out_dir`` (atomically per file); returns the directory."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(
            out / "summary.json", json.dumps(_jsonable(self.summary), indent=2).encode()
        )
        if self.config is not None:
            atomic_write_bytes(out / "config.json", self.config.model_dump_json(indent=2).encode())
        for name in TABLES:
            df = getattr(self, name)
            if df is None:
                continue
            frame = df.reset_index() if name in ("timeseries", "by_class") else df
            if name == "by_class":
                frame = frame.rename(columns={"index": "owner"})
            atomic_write_parquet(out / f"{name}.parquet", frame)
        if self.agents is not None:
            atomic_write_parquet(out / "agents.parquet", self.agents)
        return out


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if hasattr(v, "item"):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        out[k] = v
    return out


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so readers never see half of it: temporary file, fsync, rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_parquet(path: Path, df: pd.DataFrame) -> None:
    """Parquet (zstd) written the same way as :func:`atomic_write_bytes`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    df.to_parquet(tmp, compression="zstd", index=False)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_run(path: str | Path) -> RunResult:
    """Read a saved run back into a :class:`RunResult`."""
    p = Path(path)
    if not (p / "summary.json").exists():
        raise FileNotFoundError(f"{p}: no summary.json here; not a saved run")
    summary = json.loads((p / "summary.json").read_text())
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
    )


# -- sweeps: the read side ---------------------------------------------------------------------


def _connect(path: str | Path):
    """A DuckDB connection with views ``runs``, ``timeseries`` and ``failures`` of a sweep."""
    import duckdb

    p = Path(path)
    if not ((p / "runs").is_dir() or (p / "runs.parquet").exists()):
        raise FileNotFoundError(f"{p}: no runs/ or runs.parquet; not a sweep results directory")
    con = duckdb.connect()

    def sources(one: Path, many: Path) -> list[str]:
        files = [str(one)] if one.exists() else []
        if many.is_dir() and any(many.glob("*.parquet")):
            files.append(f"{many}/*.parquet")
        return files

    # a sweep is kept as one-row files while it runs and compacted into one file when done;
    # a crash during compaction can leave a run in both: keep one row per run (and step)
    runs = sources(p / "runs.parquet", p / "runs")
    if runs:
        con.execute(
            f"CREATE VIEW runs AS SELECT * FROM read_parquet({runs!r}, union_by_name = true) "
            "QUALIFY row_number() OVER (PARTITION BY run_id) = 1"
        )
    else:
        con.execute("CREATE VIEW runs AS SELECT NULL::VARCHAR AS run_id WHERE false")
    ts = sources(p / "timeseries.parquet", p / "timeseries")
    if ts:
        con.execute(
            f"CREATE VIEW timeseries AS SELECT * FROM read_parquet({ts!r}, union_by_name = true) "
            "QUALIFY row_number() OVER (PARTITION BY run_id, step) = 1"
        )
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
    """Run SQL against a sweep's views ``runs`` (and ``timeseries``, ``failures``)."""
    return _connect(path).execute(sql).df()

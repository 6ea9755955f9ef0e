"""The sweep runner: Dask distributed from a laptop to a cluster, and a store that loses nothing.

Runs execute on Dask distributed — an embedded ``LocalCluster`` of N worker processes by
default, an existing cluster with ``address``, or in-process with ``serial`` for debugging. The
driver writes each finished run at once, atomically (temporary file, fsync, rename), as one
Parquet row under ``<out>/<sweep>/runs/``; time series, when kept, under ``timeseries/``; a run
that raises is recorded under ``failures/`` with its config and traceback and does not stop the
sweep. Killing a sweep at any moment loses at most the runs in flight: ``resume`` runs only the
ids not yet on disk.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import itertools
import json
import logging
import os
import socket
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abm import __version__
from abm.results import atomic_write_bytes, atomic_write_parquet
from abm.sweeps.spec import Run, SweepSpec

log = logging.getLogger(__name__)


#: counterfactual arms a sweep can add to every run: config updates of the arm
COUNTERFACTUALS: dict[str, dict[str, Any]] = {
    # the hedger does not harvest: it keeps its ordinary quotes through the deadline
    "no_harvest": {"hedger.spread_policy": "ordinary"},
}
#: outputs whose paired effect (run − counterfactual on the same seed) each run row carries
EFFECT_OUTPUTS = (
    "transfer_retail_to_hedger_harvest_forced_close",
    "transfer_retail_to_hedger",
    "pnl_retail",
    "pnl_hedger",
    "harvest_discount",
    "basis_at_forced_close",
    "max_abs_basis_final_window",
    "bad_debt",
)


#: runs between two full garbage collections on a worker (see `_collect_garbage()`)
GC_EVERY = 16
_runs_since_collect = 0


def _collect_garbage() -> None:
    """A finished model is kept alive by reference cycles (every Mesa agent points back at its
    model), and Python's collector, which counts objects rather than the arrays they hold, seldom
    reaches them: a worker grew about 1 MB per run (2 GB after 2,200 small runs). A full
    collection every ``GC_EVERY`` runs (about 110 ms, some 3 % of a small run; one per run would
    cost 30 %) keeps a worker's memory flat however long the sweep."""
    global _runs_since_collect
    _runs_since_collect += 1
    if _runs_since_collect >= GC_EVERY:
        _runs_since_collect = 0
        gc.collect()


def execute(
    base: dict[str, Any],
    params: dict[str, Any],
    seed: int,
    keep: str,
    counterfactual: str | None = None,
) -> dict[str, Any]:
    """Run one point (on a worker), and its counterfactual arm on the same seed if asked
    (``cf_<output>`` and the paired ``effect_<output>`` = run − counterfactual join the
    summary). Never raises: an error comes back as data."""
    from abm.config import RunConfig
    from abm.model import MarketModel

    t0 = time.perf_counter()
    try:
        cfg = RunConfig.model_validate(base).with_updates({**params, "seed": seed})
        result = MarketModel(cfg).run()
        summary = dict(result.summary)
        if counterfactual:
            arm = MarketModel(cfg.with_updates(COUNTERFACTUALS[counterfactual])).run().summary
            for k in EFFECT_OUTPUTS:
                summary[f"cf_{k}"] = arm[k]
                summary[f"effect_{k}"] = summary[k] - arm[k]
        ts = result.timeseries.reset_index() if keep == "timeseries" else None
        del result
        _collect_garbage()
        return {
            "summary": summary,
            "timeseries": ts,
            "error": None,
            "seconds": time.perf_counter() - t0,
        }
    except Exception as err:  # noqa: BLE001 - a failed run is recorded, not fatal
        return {
            "summary": None,
            "timeseries": None,
            "seconds": time.perf_counter() - t0,
            "error": f"{type(err).__name__}: {err}",
            "traceback": traceback.format_exc(),
        }


# -- the store ---------------------------------------------------------------------------------


def param_column(key: str) -> str:
    return "param_" + key.replace(".", "_")


@dataclass
class SweepStore:
    root: Path
    #: the hash of the spec that owns the folder (set by `prepare`): a per-run file records
    #: the hash of the spec that wrote it, and only files of this spec count as done
    spec_hash: str | None = None
    #: whether the spec keeps time series: then a run counts as done only with its series
    keep_timeseries: bool = False
    #: the spec (set by `prepare`): how many steps each run's series must hold
    spec: SweepSpec | None = None
    #: why files were set aside during the last verification (file → reason)
    set_aside_reasons: dict[str, str] = field(default_factory=dict)

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def ts_dir(self) -> Path:
        return self.root / "timeseries"

    @property
    def failures_dir(self) -> Path:
        return self.root / "failures"

    @property
    def compacted(self) -> Path:
        return self.root / "runs.parquet"

    def done_ids(self) -> set[str]:
        """The runs on disk, each verified: the merged file must read whole (else an error:
        it holds many runs), and a per-run file must read, hold one row and name its own run;
        one that does not (a kill or a full disk mid-write) is set aside, not counted, so the
        run is done again."""
        ids = set()
        if self.compacted.exists():
            try:
                ids |= set(pd.read_parquet(self.compacted, columns=["run_id"])["run_id"])
            except Exception as err:  # noqa: BLE001 - any unreadable file is the same problem
                raise ValueError(
                    f"{self.compacted}: unreadable ({type(err).__name__}: {err}); it holds the "
                    "merged runs, so it is not removed unasked. `abm sweep <spec> --repair` "
                    "sets it aside and runs again what only it held"
                ) from None
            ts = self.root / "timeseries.parquet"
            if self.keep_timeseries and ts.exists() and not _readable(ts):
                raise ValueError(
                    f"{ts}: unreadable; `abm sweep <spec> --repair` sets it aside and runs "
                    "again what only it held"
                )
        if self.runs_dir.exists():
            for f in sorted(self.runs_dir.glob("*.parquet")):
                why = self._run_file_problem(f)
                if why is None and self.keep_timeseries and f.stem not in ids:
                    why = self._timeseries_problem(self.ts_dir / f.name, self._steps(f.stem))
                if why is None:
                    ids.add(f.stem)
                else:
                    self.set_aside_reasons[str(f)] = why
                    self.set_aside(f)
        return ids

    def _run_file_problem(self, f: Path) -> str | None:
        """Why a one-row run file cannot count as done (None: it can): unreadable, not one row
        naming its own run, or written by another spec (its ``spec_hash`` differs from the
        folder's; a file from before run files recorded it has none and is taken as the
        folder's own)."""
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(f).names
            # the identity columns only: a resume reads every file of a running sweep
            df = pd.read_parquet(f, columns=[c for c in ("run_id", "spec_hash") if c in names])
        except Exception as err:  # noqa: BLE001 - truncated, empty, not Parquet: all the same
            return f"unreadable ({type(err).__name__})"
        if len(df) != 1 or "run_id" not in df or df["run_id"].iloc[0] != f.stem:
            return "not one row naming its own run"
        theirs = df["spec_hash"].iloc[0] if "spec_hash" in df else None
        if self.spec_hash is not None and theirs is not None and theirs != self.spec_hash:
            return f"written by another spec (hash {theirs}, this folder's is {self.spec_hash})"
        return None

    def _steps(self, run_id: str) -> int | None:
        """The number of steps of run ``run_id`` of the folder's spec (None: not one of its)."""
        if self.spec is None:
            return None
        if not hasattr(self, "_steps_by_run"):
            self._steps_by_run: dict[str, dict[str, Any]] = {
                r.run_id: r.params for r in self.spec.iter_runs()
            }
        params = self._steps_by_run.get(run_id)
        if params is None:
            return None
        cfg = self.spec.base_config().with_updates(params)
        return cfg.calendar.trading_days * cfg.calendar.steps_per_day

    @staticmethod
    def _timeseries_problem(f: Path, expected: int | None = None) -> str | None:
        """Why a run's time-series file is not whole (None: it is): missing, unreadable, not
        the run's own steps 0, 1, ... without a gap, or fewer or more than ``expected``."""
        if not f.exists():
            return "its time series is missing"
        try:
            df = pd.read_parquet(f, columns=["run_id", "step"])
        except Exception as err:  # noqa: BLE001
            return f"its time series is unreadable ({type(err).__name__})"
        if not len(df) or (df["run_id"] != f.stem).any():
            return "its time series is empty or names another run"
        steps = df["step"].to_numpy()
        if not (steps == np.arange(len(steps))).all():
            return "its time series has missing or repeated steps"
        if expected is not None and len(steps) != expected:
            return f"its time series has {len(steps)} steps, the run has {expected}"
        return None

    def set_aside(self, f: Path) -> None:
        """Move a damaged file to ``corrupt/`` (kept for inspection, out of every view)."""
        bad = self.root / "corrupt"
        bad.mkdir(exist_ok=True)
        os.replace(f, bad / f"{f.parent.name}-{f.name}")
        # its time series, if any, belongs to a run that will be done again
        ts = self.ts_dir / f.name
        if f.parent == self.runs_dir and ts.exists():
            os.replace(ts, bad / f"timeseries-{f.name}")

    def sweep_temporaries(self) -> int:
        """Remove ``.name.PID.tmp`` files a kill or a full disk left behind (called with the
        folder's lock held, so no live writer owns them); returns how many."""
        n = 0
        for d in (self.root, self.runs_dir, self.ts_dir, self.failures_dir):
            if d.is_dir():
                for f in d.glob(".*.tmp"):
                    f.unlink(missing_ok=True)
                    n += 1
        return n

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Own the folder while a sweep writes it: ``.lock`` holds the owner's pid, host and
        start time, created exclusively. A lock whose owner is a dead process on this host is
        stale and taken over; a live owner (or one on another host) makes this sweep stop."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / ".lock"
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": _now()}
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    text = path.read_text()
                    owner = json.loads(text) if text else {"pid": "(starting)", "host": "?"}
                except (OSError, ValueError):
                    owner = None
                if not isinstance(owner, dict) or not {"pid", "host"} <= set(owner):
                    raise FileExistsError(
                        f"{path}: a lock file that does not say who holds it (damaged, or "
                        "written by something else). If no sweep is writing this folder, "
                        f"delete {path} and run again"
                    ) from None
                if owner.get("host") == me["host"] and not _alive(owner.get("pid")):
                    path.unlink(missing_ok=True)  # stale: its owner died without unlocking
                    continue
                raise FileExistsError(
                    f"{self.root} is in use by another sweep (pid {owner.get('pid')} on "
                    f"{owner.get('host')}, since {owner.get('since')}); wait for it, or give "
                    "another --out. If that process is gone, delete "
                    f"{path}"
                ) from None
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps(me))
            break
        try:
            yield
        finally:
            path.unlink(missing_ok=True)

    def compact(self) -> None:
        """Merge the one-row run files into ``runs.parquet`` (and time series into
        ``timeseries.parquet``): one file instead of hundreds, a few KB instead of 40 per run.
        The merged file is written atomically before the small ones go, so a crash in between
        leaves duplicates, which readers drop, never a loss. A folder already merged, with its
        points, is left untouched (its files may be tracked, as results/paper's are)."""
        merged = False
        for many, one, order, table in (
            (self.runs_dir, self.compacted, ["point", "replicate"], "runs"),
            (self.ts_dir, self.root / "timeseries.parquet", ["run_id", "step"], "timeseries"),
        ):
            files = sorted(many.glob("*.parquet")) if many.exists() else []
            if not files:
                continue
            parts = [pd.read_parquet(one)] if one.exists() else []
            parts += [pd.read_parquet(f) for f in files]
            df = pd.concat(parts, ignore_index=True).drop_duplicates(
                subset=["run_id", "step"] if "step" in order else ["run_id"], keep="last"
            )
            atomic_write_parquet(
                one,
                df.sort_values(order + (["run_id"] if "run_id" not in order else [])).reset_index(
                    drop=True
                ),
                table=table,
            )
            for f in files:
                f.unlink()
            merged = True
        if merged or not (self.root / "points.parquet").exists():
            self.write_points()

    def write_points(self) -> None:
        """``points.parquet``: per design point, each key output's n, mean, sd, standard error
        and 95 % intervals (Student t and bootstrap), from the merged runs."""
        from abm.statistics import KEY_OUTPUTS, point_table

        if not self.compacted.exists():
            return
        runs = pd.read_parquet(self.compacted)
        outputs: list[str] = list(KEY_OUTPUTS)
        manifest = self.root / "manifest.json"
        if manifest.exists():
            spec_outputs = json.loads(manifest.read_text()).get("spec", {}).get("outputs", [])
            outputs += [o for o in spec_outputs if o not in outputs]
        outputs += sorted(c for c in runs.columns if c.startswith("effect_"))
        metrics = [m for m in outputs if m in runs.columns]
        atomic_write_parquet(self.root / "points.parquet", point_table(runs, metrics))

    def failed_ids(self) -> set[str]:
        if not self.failures_dir.exists():
            return set()
        return {p.stem for p in self.failures_dir.glob("*.json")}

    def prepare(self, spec: SweepSpec, resume: bool, quick: bool, engine: str) -> None:
        """Open the folder for ``spec``: a new one gets a manifest (spec, its hash, provenance);
        an existing one must hold this very spec (same hash), whatever the mode, so two specs
        can never share a folder; results already there need ``resume``."""
        manifest = self.root / "manifest.json"
        self.spec_hash = spec.digest()
        self.keep_timeseries = spec.keep == "timeseries"
        self.spec = spec
        if manifest.exists():
            old = read_manifest(manifest)
            if old.get("spec_hash") != spec.digest():
                raise ValueError(
                    f"{self.root} holds sweep '{old.get('sweep')}' with spec hash "
                    f"{old.get('spec_hash')} (quick={old.get('quick')}); this spec "
                    f"(quick={quick}) has {spec.digest()}. A folder holds one spec: give another "
                    "--out, or remove the folder to start again"
                )
            if not resume and (self.done_ids() or self.failed_ids()):
                raise FileExistsError(
                    f"{self.root} already holds results of this sweep; pass --resume to run "
                    "only the missing points, or --out for a fresh directory"
                )
            check_base(manifest, old, spec.base_digest(), self.holds_results)
        else:
            orphans = self.holds_results()
            if orphans:
                raise FileExistsError(
                    f"{self.root} holds {orphans} but no manifest.json, so nothing says which "
                    "spec they belong to; they are not adopted. Restore the manifest, or move "
                    "the folder away (or give another --out) to run this sweep"
                )
            from abm.provenance import provenance

            self.root.mkdir(parents=True, exist_ok=True)
            meta = {
                "sweep": spec.name,
                "spec": spec.model_dump(mode="json"),
                "spec_hash": spec.digest(),
                "base_config_hash": spec.base_digest(),
                "quick": quick,
                "package_version": __version__,
                "started": _now(),
                "engine": engine,
                "n_runs": len(spec.runs()),
                "provenance": provenance(),
            }
            meta["git_commit"] = meta["provenance"].get("commit") or "unknown"
            atomic_write_bytes(manifest, json.dumps(meta, indent=2).encode())
        for d in (self.runs_dir, self.failures_dir):
            d.mkdir(parents=True, exist_ok=True)
        if spec.keep == "timeseries":
            self.ts_dir.mkdir(parents=True, exist_ok=True)

    def repair(self) -> list[str]:
        """Set aside (to ``corrupt/``) the merged files that do not read whole, with the points
        table computed from them, so a resume runs again what they held; returns their names."""
        moved = []
        for f in (self.compacted, self.root / "timeseries.parquet"):
            if f.exists() and not _readable(f):
                self.set_aside(f)
                moved.append(f.name)
        if moved:
            points = self.root / "points.parquet"
            if points.exists():
                self.set_aside(points)
        return moved

    def holds_results(self) -> str:
        """What results the folder holds ("" when none): merged or per-run runs, failures."""
        what = []
        if self.compacted.exists():
            what.append("runs.parquet")
        for d, name in ((self.runs_dir, "run files"), (self.ts_dir, "time-series files")):
            n = len(list(d.glob("*.parquet"))) if d.is_dir() else 0
            if n:
                what.append(f"{n} {name}")
        n = len(self.failed_ids())
        if n:
            what.append(f"{n} recorded failures")
        return ", ".join(what)

    def note_resumed(self) -> None:
        """Record in the manifest that runs were added to the folder now (called only when a
        resume has runs to do: a folder with nothing to add is left as it was)."""
        manifest = self.root / "manifest.json"
        meta = read_manifest(manifest)
        meta.setdefault("resumed", []).append(_now())
        atomic_write_bytes(manifest, json.dumps(meta, indent=2).encode())

    def write_run(self, run: Run, out: dict[str, Any]) -> None:
        row: dict[str, Any] = {
            "run_id": run.run_id,
            "point": run.point,
            "replicate": run.replicate,
            "seed": run.seed,
            "spec_hash": self.spec_hash,
            "run_seconds": out["seconds"],
        }
        for k, v in run.params.items():
            row[param_column(k)] = v
        row.update(out["summary"])
        if out.get("timeseries") is not None:
            ts = out["timeseries"]
            ts.insert(0, "run_id", run.run_id)
            atomic_write_parquet(self.ts_dir / f"{run.run_id}.parquet", ts, table="timeseries")
        atomic_write_parquet(
            self.runs_dir / f"{run.run_id}.parquet", pd.DataFrame([row]), table="runs"
        )
        stale = self.failures_dir / f"{run.run_id}.json"
        if stale.exists():
            stale.unlink()

    def write_failure(self, run: Run, out: dict[str, Any], base: dict[str, Any]) -> None:
        rec = {
            "run_id": run.run_id,
            "point": run.point,
            "replicate": run.replicate,
            "seed": run.seed,
            "params": run.params,
            "error": out.get("error"),
            "traceback": out.get("traceback", ""),
            "base_config": base,
            "when": _now(),
        }
        atomic_write_bytes(
            self.failures_dir / f"{run.run_id}.json",
            json.dumps(rec, indent=2, default=str).encode(),
        )


def _readable(f: Path) -> bool:
    """Whether a Parquet file reads whole (its footer and every row group)."""
    try:
        import pyarrow.parquet as pq

        pq.read_table(f)
    except Exception:  # noqa: BLE001 - truncated, empty, not Parquet: all the same
        return False
    return True


def read_manifest(path: Path) -> dict[str, Any]:
    """A sweep folder's manifest, or an error naming the file and what to do."""
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(
            f"{path}: damaged ({type(err).__name__}: {err}). It names the spec the folder's "
            "runs belong to; restore it from a backup or version control, or move the folder "
            "away to run the sweep afresh"
        ) from None
    if not isinstance(meta, dict) or "spec_hash" not in meta:
        raise ValueError(
            f"{path}: not a sweep manifest (no spec_hash); restore it, or move the folder away"
        )
    return meta


def config_hash(config: dict[str, Any]) -> str:
    """A short hash of a resolved run config (as plain data): what a spec's base scenario
    resolves to when its folder is opened. A spec names its base scenario, so its own hash
    does not change when the scenario's file does; this one does."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_base(
    manifest: Path, old: dict[str, Any], base_hash: str, has_results: Callable[[], Any]
) -> None:
    """Refuse a folder whose results were made from another resolved base config than the
    spec's now: the base scenario (or a default it relies on) changed since, and runs of both
    would sit in one folder. A folder written before the base was recorded is adopted only
    while it holds no results; one with results is refused, with the way to adopt it by hand
    when its owner knows the base is unchanged. ``has_results`` is asked only for such a
    folder (reading the results of a damaged one is `--repair`'s work, not this check's)."""
    theirs = old.get("base_config_hash")
    if theirs == base_hash:
        return
    if theirs is not None:
        raise ValueError(
            f"{manifest.parent} was written from a base config with hash {theirs}; the spec's "
            f"base now resolves to {base_hash}: its scenario or a default changed since, and "
            "runs of both must not share a folder. Give another --out, or remove the folder "
            "to start again"
        )
    if has_results():
        raise ValueError(
            f"{manifest.parent} holds results written before the base config was recorded, so "
            "they cannot be checked against the spec's base as it now resolves (hash "
            f"{base_hash}). Give another --out; or, if you know the base scenario has not "
            f'changed since, add "base_config_hash": "{base_hash}" to {manifest.name}'
        )
    atomic_write_bytes(
        manifest, json.dumps({**old, "base_config_hash": base_hash}, indent=2).encode()
    )


def _alive(pid: Any) -> bool:
    """Whether a process with this pid exists on this host."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# -- running -----------------------------------------------------------------------------------


@dataclass
class SweepReport:
    root: Path
    total: int
    skipped: int
    done: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def runs_per_minute(self) -> float:
        return 60.0 * (self.done + len(self.failed)) / self.seconds if self.seconds else 0.0


def run_sweep(
    spec: SweepSpec,
    out: str | Path = "results",
    workers: int | None = None,
    address: str | None = None,
    serial: bool = False,
    resume: bool = False,
    quick: bool = False,
    only: list[str] | None = None,
    retry_failed: bool = False,
    progress: bool = True,
    folder: str | None = None,
    repair: bool = False,
) -> SweepReport:
    """Run (or resume) a sweep into ``out/<folder>`` (default: the spec's name); returns
    counts, failures and throughput. ``repair`` sets aside a damaged merged file and resumes,
    so the runs only it held are run again and the folder is merged anew."""
    store = SweepStore(Path(out) / (folder or spec.name))
    if retry_failed and not (store.root / "manifest.json").exists():
        raise FileNotFoundError(
            f"{store.root}: sweep '{spec.name}' has no results here, so no failures to retry; "
            "run it first without --retry-failed"
        )
    if workers is not None and workers < 1:
        raise ValueError(f"--workers {workers}: allowed 1 or more")
    engine = "serial" if serial else (address or f"LocalCluster({workers or os.cpu_count()})")
    with store.lock():
        store.prepare(
            spec, resume=resume or bool(only) or retry_failed or repair, quick=quick, engine=engine
        )
        store.sweep_temporaries()
        if repair:
            store.repair()
        return _run_locked(spec, store, workers, address, serial, only, retry_failed, progress)


def _run_locked(
    spec: SweepSpec,
    store: SweepStore,
    workers: int | None,
    address: str | None,
    serial: bool,
    only: list[str] | None,
    retry_failed: bool,
    progress: bool,
) -> SweepReport:
    n_runs = spec.n_runs()
    done = store.done_ids()
    if only:
        wanted = set(only)
        todo = [r for r in spec.iter_runs() if r.run_id in wanted]
        unknown = sorted(wanted - {r.run_id for r in todo})
        if unknown:
            raise ValueError(f"--only {unknown}: no such run id in sweep '{spec.name}'")
    elif retry_failed:
        # nothing failed: nothing to retry, and that is a success
        failed = store.failed_ids()
        todo = [r for r in spec.iter_runs() if r.run_id in failed]
    else:
        todo = (r for r in spec.iter_runs() if r.run_id not in done)
    if only or retry_failed:  # the selection is the whole job: nothing else was "skipped"
        report = SweepReport(store.root, total=len(todo), skipped=0)
        n_todo = len(todo)
    else:
        skipped = len(done)
        report = SweepReport(store.root, total=n_runs, skipped=skipped)
        n_todo = n_runs - skipped
    if n_todo and (done or store.failed_ids()):
        store.note_resumed()
    base = spec.base_config().model_dump(mode="json")
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_todo, desc=spec.name, unit="run", dynamic_ncols=True)
    try:
        for run, result in _results(
            todo, base, spec.keep, serial, workers, address, spec.counterfactual, n_todo
        ):
            if result.get("error"):
                store.write_failure(run, result, base)
                report.failed.append(run.run_id)
            else:
                store.write_run(run, result)
                report.done += 1
            if bar is not None:
                elapsed = time.perf_counter() - t0
                rate = 60.0 * (report.done + len(report.failed)) / elapsed if elapsed else 0.0
                bar.set_postfix(failed=len(report.failed), per_min=f"{rate:.1f}")
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    report.seconds = time.perf_counter() - t0
    if not store.failed_ids() and len(store.done_ids()) >= n_runs:
        store.compact()
    return report


def _results(
    todo: Iterable[Run],
    base: dict[str, Any],
    keep: str,
    serial: bool,
    workers: int | None,
    address: str | None,
    counterfactual: str | None = None,
    n_todo: int = 0,
) -> Iterator[tuple[Run, dict[str, Any]]]:
    todo = iter(todo)
    first = next(todo, None)
    if first is None:  # nothing to do: no cluster started
        return
    jobs = (
        (run, (base, run.params, run.seed, keep, counterfactual))
        for run in itertools.chain([first], todo)
    )
    with dask_client(serial, workers, address) as client:
        batch = batch_size(n_todo, n_workers(client))
        yield from dask_map(execute, jobs, client, failed=_lost_run, batch=batch)


def _lost_run(err: BaseException) -> dict[str, Any]:
    """A run whose task raised on the cluster (e.g. KilledWorker after retries), as data."""
    return {
        "summary": None,
        "timeseries": None,
        "seconds": float("nan"),
        "error": f"{type(err).__name__}: {err}",
        "traceback": "".join(traceback.format_exception(err)),
    }


#: modules a LocalCluster's worker processes hold before their first task: they are forked from
#: a server process that imported them once (``forkserver``), instead of each worker importing
#: them after a fresh start (``spawn``, about 1.4 s of CPU per worker here)
WORKER_PRELOAD = (
    "distributed",
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "abm.model",
    "abm.sweeps.runner",
)


@contextlib.contextmanager
def dask_client(serial: bool, workers: int | None, address: str | None) -> Iterator[Any]:
    """The sweeps' Dask engine: a client of the scheduler at ``address``, else of an embedded
    ``LocalCluster`` of ``workers`` processes (one per core by default), closed on exit; None
    when ``serial`` (jobs run in this process).

    The LocalCluster's workers are forked from one server process that has imported the model
    (``WORKER_PRELOAD``): a worker starts ready, and the imports are paid once rather than once
    per worker. The server is single-threaded, so forking it is safe (forking this process,
    whose Dask threads are running, would not be)."""
    if serial:
        yield None
        return
    import dask
    from distributed import Client, LocalCluster

    cluster = None
    if address:
        try:
            client = Client(address, timeout=15)
        except (OSError, TimeoutError) as err:
            raise ValueError(
                f"--address {address}: no Dask scheduler answers there ({type(err).__name__}: "
                f"{err}); start one with `dask scheduler`, or leave --address out to use a "
                "LocalCluster"
            ) from None
    else:
        from distributed.utils import get_mp_context

        with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
            # Dask sets its own preload on the (process-wide) context the first time it asks for
            # it; asking first and then setting ours makes ours the list the server starts with
            # (it starts with the first worker, below)
            get_mp_context().set_forkserver_preload(list(WORKER_PRELOAD))
            cluster = LocalCluster(
                n_workers=workers or os.cpu_count(),
                threads_per_worker=1,
                processes=True,
                # the scheduler serves HTTP even without a dashboard: a fixed port would collide
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            )
        client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def n_workers(client: Any) -> int:
    """Workers of ``client``'s cluster (1 for None, the serial engine)."""
    if client is None:
        return 1
    return max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))


def run_batch(fn: Any, batch: list[tuple]) -> list[Any]:
    """``fn(*args)`` for every ``args`` of ``batch``, in order, on one worker: one task carries
    several jobs, so the scheduler and the transfer are paid once per batch, not per job."""
    return [fn(*args) for args in batch]


def batch_size(n_jobs: int, n_workers: int, most: int = 8) -> int:
    """Jobs per task for ``n_jobs`` on ``n_workers``: as many as keeps at least 4 tasks per
    worker (so a slow task cannot leave a worker idle for long at the end), at most ``most``,
    at least 1."""
    if n_jobs <= 0 or n_workers <= 0:
        return 1
    return max(1, min(most, n_jobs // (4 * n_workers)))


def dask_map(
    fn: Any,
    jobs: Iterable[tuple[Any, tuple]],
    client: Any,
    failed: Any = None,
    window: int | None = None,
    batch: int = 1,
) -> Iterator[tuple[Any, Any]]:
    """``fn(*args)`` for every ``(tag, args)`` of ``jobs`` on ``client`` (a
    [`dask_client()`][abm.sweeps.runner.dask_client]; None runs them here, in order), yielding
    ``(tag, result)`` as each finishes. ``batch`` jobs go to a worker as one task
    ([`run_batch()`][abm.sweeps.runner.run_batch]); their results come back together. At most
    ``window`` tasks are in flight (default 8 per worker, at least 64), so a long iterator of
    jobs is expanded as it goes, never held whole; a task that raises on the cluster yields
    ``failed(error)`` for each of its jobs (re-raised when ``failed`` is None)."""
    if batch < 1:
        raise ValueError(f"batch {batch}: allowed 1 or more jobs per task")
    if client is None:
        for tag, args in jobs:
            yield tag, fn(*args)
        return
    from distributed import as_completed

    jobs = iter(jobs)
    if window is None:
        window = max(64, 8 * n_workers(client))
    by_key: dict[str, list[Any]] = {}
    pending = as_completed()
    numbers = itertools.count()
    name = getattr(fn, "__name__", "job")

    def submit_next() -> bool:
        chunk = list(itertools.islice(jobs, batch))
        if not chunk:
            return False
        key = f"{name}-{os.getpid()}-{time.time_ns()}-{next(numbers)}"
        fut = client.submit(run_batch, fn, [args for _, args in chunk], pure=False, key=key)
        by_key[fut.key] = [tag for tag, _ in chunk]
        pending.add(fut)
        return True

    for _ in range(window):
        if not submit_next():
            break
    for fut in pending:
        tags = by_key.pop(fut.key)
        try:
            results = fut.result()
        except Exception as err:  # noqa: BLE001 - e.g. KilledWorker after retries
            if failed is None:
                raise
            results = [failed(err) for _ in tags]
        fut.release()
        submit_next()
        yield from zip(tags, results, strict=True)

"""Where a result came from: the code's commit and whether the tree was dirty, the versions of
Python and of the packages that shape a result, the machine, the command, the full resolved
config and the overrides given on top of the scenario.

Every run (``provenance.json`` next to its tables) and every sweep (``provenance.json`` in the
sweep folder) records it, so a figure can be traced to the code and inputs that made it.
"""

from __future__ import annotations

import datetime as _dt
import functools
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

#: packages whose version can change a number in the results, or how they are stored
PACKAGES = (
    "abm-harvest",
    "mesa",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "duckdb",
    "dask",
    "distributed",
)

REPO = Path(__file__).resolve().parent.parent


@functools.cache
def git_state(repo: str | Path = REPO) -> dict[str, Any]:
    """``commit`` (HEAD, or None outside a git checkout), ``dirty`` (tracked files differ from
    HEAD; None when unknown) and, when unknown, ``git_error`` saying why. Cached per process:
    a sweep's thousand runs ask once."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if head.returncode != 0:
            return {"commit": None, "dirty": None, "git_error": head.stderr.strip()[:200]}
        status = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
        return {"commit": head.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.TimeoutExpired) as err:
        return {"commit": None, "dirty": None, "git_error": str(err)[:200]}


@functools.cache
def versions() -> dict[str, str | None]:
    """Python's version and each of [`PACKAGES`][abm.provenance.PACKAGES]' installed version (None:
    not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def provenance(config=None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record for one run or sweep: time (UTC, ISO 8601), git state, versions, machine,
    command line, the resolved config (as JSON-ready data) and the overrides given."""
    rec: dict[str, Any] = {
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        **git_state(),
        "versions": versions(),
        "machine": {"platform": platform.platform(), "processor": platform.machine()},
        "command": sys.argv[:],
    }
    if overrides is not None:
        rec["overrides"] = {str(k): _plain(v) for k, v in overrides.items()}
    if config is not None:
        rec["scenario"] = config.name
        rec["config"] = config.model_dump(mode="json")
    return rec


def _plain(v: Any) -> Any:
    """JSON-ready: numpy scalars and paths as plain values."""
    if hasattr(v, "item") and callable(v.item):
        return v.item()
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v

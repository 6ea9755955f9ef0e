"""The shipped scenarios and sweep specs, and loading a run's config by name.

Scenarios (``experiments/scenarios/NAME.toml``) and sweep specs (``experiments/sweeps/``) are
data: a checkout reads them from ``experiments/``, an installed wheel from the copy it ships
inside the package (``abm/data/``), so ``load("one_sided")`` works either way.
"""

from __future__ import annotations

import importlib.resources
import tomllib
from pathlib import Path
from typing import Any

from abm.build import resolve_plugins
from abm.config import ConfigError, RunConfig, read_toml

#: where a checkout keeps the shipped TOML files
CHECKOUT_DIR = Path(__file__).resolve().parent.parent / "experiments"


def data_dir(kind: str) -> Path:
    """The folder of the shipped ``kind`` files (``"scenarios"`` or ``"sweeps"``): the copy an
    installed wheel carries in the package, else the checkout's ``experiments/``."""
    packaged = importlib.resources.files("abm").joinpath("data", kind)
    if packaged.is_dir():
        return Path(str(packaged))
    return CHECKOUT_DIR / kind


def names(kind: str = "scenarios") -> list[str]:
    """The names of the shipped scenarios (or sweep specs), sorted."""
    return sorted(p.stem for p in data_dir(kind).glob("*.toml"))


def describe(kind: str = "scenarios") -> list[tuple[str, str]]:
    """(name, description) of each shipped scenario (or sweep spec)."""
    out = []
    for name in names(kind):
        with open(data_dir(kind) / f"{name}.toml", "rb") as fh:
            out.append((name, tomllib.load(fh).get("description", "")))
    return out


def find(name_or_path: str | Path, kind: str = "scenarios") -> Path:
    """The TOML file of a shipped scenario (or sweep spec) by name, or a ``.toml`` path."""
    p = Path(name_or_path)
    if p.suffix == ".toml" and p.exists():
        return p
    candidate = data_dir(kind) / f"{name_or_path}.toml"
    if candidate.exists():
        return candidate
    what = "scenario" if kind == "scenarios" else "sweep"
    raise ConfigError(
        f"{what} '{name_or_path}' not found: not a .toml file; known {kind}: {names(kind)}"
    )


def resolve_scenario(name_or_path: str | Path) -> Path:
    """The TOML file of a scenario given by name or path."""
    return find(name_or_path, "scenarios")


def load(name_or_path: str | Path, updates: dict[str, Any] | None = None) -> RunConfig:
    """A run's config: a shipped scenario by name (or a TOML file by path) with ``updates``
    (dotted paths or short names) applied, validated, and the classes it names by import path
    resolved and checked (`abm.build.resolve_plugins`), so a bad one fails here, before any
    run."""
    cfg = read_toml(resolve_scenario(name_or_path), updates)
    resolve_plugins(cfg)
    return cfg

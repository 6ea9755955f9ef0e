"""Sweep specifications: a base scenario, the fields to vary, a design, replicates, what to keep.

A spec is a TOML file in ``experiments/sweeps/``; it is validated in full — including every
varied field against the run config — before anything runs. Each run's identity is its point
(the varied values) and replicate number; its seed is derived from the spec's master seed and
that identity alone, so a run gets the same seed whichever engine runs it and in whatever order.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from abm.config import ConfigError, RunConfig
from abm.scenarios import find, load

#: grids up to this many points have every combination validated before anything runs
GRID_CHECK_LIMIT = 20_000


class Range(BaseModel):
    model_config = ConfigDict(extra="forbid")
    low: float
    high: float
    integer: bool = False

    @model_validator(mode="after")
    def _order(self) -> Range:
        if not self.high > self.low:
            raise ValueError(f"high = {self.high}: must be > low = {self.low}")
        return self


class SweepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    question: str = Field("", description="The research question the sweep answers.")
    base: str = Field("default", description="Base scenario name or .toml path.")
    set: dict[str, Any] = Field(default_factory=dict, description="Fixed overrides of the base.")
    design: Literal["grid", "list", "random", "lhs", "sobol"] = "grid"
    vary: dict[str, list[Any] | Range] = Field(default_factory=dict)
    points: list[dict[str, Any]] = Field(default_factory=list, description="For design 'list'.")
    samples: int = Field(16, ge=1, description="random/lhs: points; sobol: N (a power of 2).")
    replicates: int = Field(1, ge=1, le=10_000)
    master_seed: int = Field(0, ge=0, lt=2**63)
    keep: Literal["summary", "timeseries"] = "summary"
    counterfactual: Literal["no_harvest"] | None = Field(
        None,
        description="Add a counterfactual arm to every run, on the same seed: 'no_harvest' "
        "(the hedger keeps its ordinary quotes through the deadline). Each run row then "
        "carries cf_<output> and the paired effect_<output> = run − counterfactual.",
    )
    outputs: list[str] = Field(
        default_factory=lambda: [
            "transfer_retail_to_hedger_harvest_forced_close",
            "max_abs_basis_final_window",
        ],
        description="Summary keys analysed by `abm sensitivity`.",
    )
    quick: dict[str, Any] = Field(
        default_factory=dict,
        description="Overrides for --quick: top-level keys (replicates, samples, vary) or, under "
        "'set', config fields.",
    )

    @model_validator(mode="after")
    def _design(self) -> SweepSpec:
        if self.design == "list":
            if not self.points:
                raise ValueError("design = 'list' needs points = [{...}, ...]")
        elif not self.vary:
            raise ValueError(f"design = '{self.design}' needs at least one field in [vary]")
        for key, v in self.vary.items():
            if self.design == "grid" and not isinstance(v, list):
                raise ValueError(f"vary.{key}: a grid needs a list of values")
            if self.design == "grid" and isinstance(v, list) and not v:
                raise ValueError(f"vary.{key}: the list of values is empty")
            if self.design in ("random", "lhs", "sobol") and not isinstance(v, Range):
                raise ValueError(
                    f"vary.{key}: design '{self.design}' needs {{{{ low = ..., high = ... }}}}"
                )
        if self.design == "sobol" and (self.samples & (self.samples - 1)):
            raise ValueError(f"samples = {self.samples}: Sobol needs a power of 2")
        return self

    # -- the design --------------------------------------------------------------------------
    def base_config(self) -> RunConfig:
        return load(self.base, self.set)

    def design_points(self) -> list[dict[str, Any]]:
        """The varied values of every point, in a fixed order."""
        if self.design == "list":
            return [dict(p) for p in self.points]
        keys = list(self.vary)
        if self.design == "grid":
            return [
                dict(zip(keys, combo, strict=True))
                for combo in itertools.product(*(self.vary[k] for k in keys))
            ]
        ranges = [self.vary[k] for k in keys]
        if self.design == "sobol":
            from SALib.sample import sobol

            unit = sobol.sample(
                self.problem(), self.samples, calc_second_order=False, seed=self.master_seed % 2**32
            )
            rows = unit  # SALib returns values already scaled to the bounds
        else:
            rng = np.random.default_rng(self.master_seed)
            if self.design == "lhs":
                from scipy.stats import qmc

                u = qmc.LatinHypercube(d=len(keys), seed=rng).random(self.samples)
            else:
                u = rng.random((self.samples, len(keys)))
            lo = np.array([r.low for r in ranges])
            hi = np.array([r.high for r in ranges])
            rows = lo + u * (hi - lo)
        out = []
        for row in rows:
            point = {}
            for k, r, x in zip(keys, ranges, row, strict=True):
                point[k] = int(round(x)) if r.integer else float(x)
            out.append(point)
        return out

    def problem(self) -> dict[str, Any]:
        """The SALib problem of a random/lhs/sobol design."""
        keys = list(self.vary)
        return {
            "num_vars": len(keys),
            "names": keys,
            "bounds": [[self.vary[k].low, self.vary[k].high] for k in keys],
        }

    def n_points(self) -> int:
        """Design points, counted without building them."""
        if self.design == "list":
            return len(self.points)
        if self.design == "grid":
            return math.prod(len(v) for v in self.vary.values())  # type: ignore[arg-type]
        if self.design == "sobol":
            return self.samples * (len(self.vary) + 2)  # Saltelli, first order and total
        return self.samples

    def n_runs(self) -> int:
        """Runs of the whole design (points × replicates), counted without building them."""
        return self.n_points() * self.replicates

    def iter_runs(self) -> Iterator[Run]:
        """The runs one by one, in a fixed order (a grid is expanded lazily)."""
        pts = self._iter_points() if self.design == "grid" else iter(self.design_points())
        for i, p in enumerate(pts):
            for r in range(self.replicates):
                yield Run.make(self, i, p, r)

    def _iter_points(self) -> Iterator[dict[str, Any]]:
        keys = list(self.vary)
        for combo in itertools.product(*(self.vary[k] for k in keys)):
            yield dict(zip(keys, combo, strict=True))

    def runs(self) -> list[Run]:
        return list(self.iter_runs())

    def digest(self) -> str:
        return hashlib.sha256(
            json.dumps(self.model_dump(), sort_keys=True, default=str).encode()
        ).hexdigest()[:16]

    def base_digest(self) -> str:
        """Hash of the base scenario as it resolves now, with ``[set]`` applied: recorded in
        the folder's manifest so that a folder never holds runs of two different bases."""
        from abm.sweeps.runner import config_hash

        return config_hash(self.base_config().model_dump(mode="json"))

    def check_fields(self) -> None:
        """Every varied field must exist in the run config and accept its values."""
        base = self.base_config()
        probes: list[dict[str, Any]] = []
        if self.design == "list":
            probes = self.points
        elif self.design == "grid" and self.n_points() <= GRID_CHECK_LIMIT:
            # every combination: a pair of values that the config refuses together (a lead
            # beyond a short calendar) is caught here, not as failed runs
            probes = list(self._iter_points())
        else:
            for k, v in self.vary.items():
                vals = v if isinstance(v, list) else [v.low, v.high]
                if isinstance(v, Range) and v.integer:
                    vals = [int(round(x)) for x in vals]
                probes += [{k: x} for x in vals]
        for p in probes:
            try:
                base.with_updates(p)
            except ConfigError as err:
                raise ConfigError(f"sweep '{self.name}', point {p}: {err}") from None


class Run(BaseModel):
    """One run of a sweep: its identity, its point and its seed."""

    run_id: str
    point: int
    replicate: int
    seed: int
    params: dict[str, Any]

    @classmethod
    def make(cls, spec: SweepSpec, point: int, params: dict[str, Any], replicate: int) -> Run:
        # the point's index is part of its identity: integer rounding can make two design
        # rows equal, and each must still be its own run
        ident = json.dumps(
            {"point": point, "params": params, "replicate": replicate}, sort_keys=True, default=str
        )
        digest = hashlib.sha256(ident.encode()).digest()
        run_id = digest[:8].hex()
        # common random numbers: replicate k of every point runs on the same seed, so the
        # model's random streams (spot, crowd, clocks) are shared and points are compared
        # paired; the seed depends on the master seed and the replicate only
        ss = np.random.SeedSequence(spec.master_seed, spawn_key=(replicate,))
        seed = int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))  # < 2**63
        return cls(run_id=run_id, point=point, replicate=replicate, seed=seed, params=params)


def load_spec(name_or_path: str | Path, quick: bool = False) -> SweepSpec:
    """Load and validate a sweep spec by name (``experiments/sweeps/NAME.toml``) or path."""
    p = find(name_or_path, "sweeps")
    with open(p, "rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{p}: not valid TOML: {err}") from None
    data.setdefault("name", p.stem)
    if quick and data.get("quick"):
        q = data["quick"]
        for key, val in q.items():
            if key == "set":
                data.setdefault("set", {}).update(val)
            else:
                data[key] = val
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            loc = ".".join(str(x) for x in e["loc"]) or "<spec>"
            msg = e["msg"].removeprefix("Value error, ")
            lines.append(
                f"{loc}: {msg}" + (f" (got {e['input']!r})" if e["type"] != "value_error" else "")
            )
        raise ConfigError(f"invalid sweep spec {p.name}:\n  " + "\n  ".join(lines)) from None
    spec.check_fields()
    return spec


def is_power_of_two(n: int) -> bool:
    return n > 0 and math.log2(n).is_integer()

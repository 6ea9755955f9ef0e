"""Calibration as a command (``abm calibrate SPEC``): free parameters fitted to observed
statistics by simulation, on the sweeps' Dask engine, with every evaluation kept.

A spec (TOML, ``experiments/calibrations/``) names the model (a scenario, or the ``toy`` whose
parameters are known), the free parameters with their bounds, the target statistics with their
observed values (a number, or a fact of a series shipped in ``experiments/observed/``), which
targets are *held out* (simulated and reported at the fit, never in the distance), the number
of seeds per evaluation and the budget.

**Search.** Optuna's TPE sampler (MIT licence) proposes parameters in batches; each proposal is
simulated on the same seeds (common random numbers, so the distance is smooth in the
parameters); the batch's jobs (proposals × seeds) run on Dask like a sweep's runs.

**Distance.** The diagonal *synthetic likelihood* (Wood 2010): for each fitted statistic k,
with μ_k and s_k² the mean and variance of its simulated values over the S seeds, and v_k the
observed value's own variance (0 unless given),

    D(θ) = Σ_k (obs_k − μ_k)² / σ_k² + log σ_k²,    σ_k² = s_k² (1 + 1/S) + v_k,

which is −2 log L(θ) up to a constant when the statistics are Gaussian and independent, so
differences in D read as a likelihood ratio.

**Uncertainty.** A quadratic surface fitted by least squares to the evaluations nearest the
best (in the parameters scaled to [0, 1]) gives D's Hessian H at its minimum; the covariance is
2 H⁻¹ and the 95 % interval the estimate ± 1.96 standard errors. The profile — the lowest D seen
in each slice of one parameter — is stored too, with the interval where it stays within 3.84
(χ²₁ at 95 %) of the minimum; a parameter the statistics do not pin down has a flat profile and
says so.

**Store.** ``<out>/<name>/``: ``manifest.json`` (the spec and its hash), each batch's
proposals written before they run (``proposals/``), each evaluation as its own Parquet row
the moment its seeds are done (``evaluations/``), all atomic. A killed calibration resumes with
``--resume``: it runs the proposals left without evaluations, rebuilds the study from what is
on disk, and carries on. Each batch's sampler is seeded from the spec's seed and the batch's
number, so a resumed calibration proposes exactly what an uninterrupted one would. When the
budget is spent: ``evaluations.parquet``, ``best.parquet`` (estimate and intervals per
parameter), ``fit.parquet`` (every target, fitted and held out, against the simulation at the
best point on fresh seeds) and ``profile.parquet``.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import tomllib
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from abm import __version__
from abm.results import atomic_write_bytes, atomic_write_parquet
from abm.scenarios import data_dir
from abm.sweeps.runner import (
    SweepStore,
    batch_size,
    check_base,
    config_hash,
    dask_client,
    dask_map,
    n_workers,
    read_manifest,
)

#: χ²₁ at 95 %: the rise in D (−2 log L) that bounds a profile interval
CHI2_95 = 3.841458820694124
#: horizons (steps) at which a run's mid-price facts are offered to a calibration
MID_HORIZONS = (1, 5, 10)
#: the toy model's statistics
TOY_STATISTICS = ("mean", "sd", "excess_kurtosis", "acf_lag1")


class Parameter(BaseModel):
    """A free parameter: a config field (dotted) or a toy parameter, searched within bounds."""

    model_config = ConfigDict(extra="forbid")
    name: str
    low: float
    high: float
    #: search on a log scale (both bounds > 0)
    log: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> Parameter:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(
                f"parameter {self.name}: low = {self.low}, high = {self.high}; allowed finite "
                "bounds with low < high"
            )
        if self.log and self.low <= 0:
            raise ValueError(
                f"parameter {self.name}: log = true with low = {self.low}; allowed low > 0"
            )
        return self

    def scale(self, x: np.ndarray) -> np.ndarray:
        """Values → [0, 1] (on the log scale when ``log``)."""
        if self.log:
            return (np.log(x) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (np.asarray(x, float) - self.low) / (self.high - self.low)

    def unscale(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, float)
        if self.log:
            return np.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        return self.low + u * (self.high - self.low)


class Target(BaseModel):
    """A statistic the model is held against: its observed value and whether it is fitted."""

    model_config = ConfigDict(extra="forbid")
    #: a statistic of a run: a summary column, ``facts.<fact>`` of the ordinary market (see
    #: `abm.metrics.stylized_facts`), or, for the toy, one of `TOY_STATISTICS`
    statistic: str
    #: the observed value, or ``"<series>:<fact>"`` of a series in experiments/observed/
    #: (e.g. ``"wti:acf_abs_returns_lag10"``, measured by `abm.observed.daily_facts`)
    observed: float | str
    #: the observed value's own standard error (0: exact)
    observed_se: float = Field(0.0, ge=0)
    #: simulated and reported at the fit, never in the distance
    held_out: bool = False

    def value(self) -> float:
        if isinstance(self.observed, int | float):
            return float(self.observed)
        series, _, fact = self.observed.partition(":")
        from abm.observed import SERIES, daily_facts, load_series

        if series not in SERIES or not fact:
            raise ValueError(
                f"target {self.statistic}: observed = {self.observed!r}; allowed a number or "
                f"'<series>:<fact>' with series one of {sorted(SERIES)}"
            )
        facts = daily_facts(load_series(series))
        if fact not in facts:
            raise ValueError(
                f"target {self.statistic}: observed = {self.observed!r}: no fact {fact!r}; "
                f"allowed {sorted(facts)}"
            )
        return float(facts[fact])


class CalibrationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    #: ``"abm"``: runs of ``scenario`` (with ``set`` applied); ``"toy"``: the known-parameter
    #: test model (`toy_statistics`)
    model: Literal["abm", "toy"] = "abm"
    scenario: str = "default"
    #: config updates applied before the free parameters (dotted paths)
    set: dict[str, Any] = Field(default_factory=dict)
    parameters: list[Parameter]
    targets: list[Target]
    #: seeds per evaluation, the same for every proposal (common random numbers)
    seeds: int = Field(10, ge=2)
    first_seed: int = Field(1, ge=0)
    #: evaluations in all
    budget: int = Field(60, ge=2)
    #: evaluations proposed together (run in parallel)
    batch: int = Field(4, ge=1)
    #: evaluations drawn at random before TPE models the distance
    startup: int = Field(12, ge=1)
    sampler: Literal["tpe", "random"] = "tpe"
    #: the sampler's seed
    seed: int = 0
    #: seeds of the final simulation at the best point (fresh: after the search's own)
    confirm_seeds: int = Field(10, ge=2)
    quick: dict[str, Any] = Field(default_factory=dict)

    @field_validator("parameters")
    @classmethod
    def _some(cls, v: list[Parameter]) -> list[Parameter]:
        if not v:
            raise ValueError("parameters: empty; allowed one or more [[parameters]]")
        names = [p.name for p in v]
        if len(set(names)) != len(names):
            raise ValueError(f"parameters: names repeat ({names}); allowed each once")
        return v

    @model_validator(mode="after")
    def _targets(self) -> CalibrationSpec:
        if not any(not t.held_out for t in self.targets):
            raise ValueError("targets: none is fitted (all held_out); allowed at least one")
        if self.model == "toy":
            bad = [t.statistic for t in self.targets if t.statistic not in TOY_STATISTICS]
            if bad:
                raise ValueError(f"targets {bad}: the toy has statistics {list(TOY_STATISTICS)}")
            names = {p.name for p in self.parameters}
            if not names <= {"toy.mu", "toy.sigma", "toy.phi"}:
                raise ValueError(
                    f"parameters {sorted(names)}: the toy has toy.mu, toy.sigma, toy.phi"
                )
        return self

    def digest(self) -> str:
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def fitted(self) -> list[Target]:
        return [t for t in self.targets if not t.held_out]

    def seed_list(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.seeds))

    def confirm_seed_list(self) -> list[int]:
        start = self.first_seed + self.seeds
        return list(range(start, start + self.confirm_seeds))

    def base(self) -> dict[str, Any]:
        """What a worker needs to simulate: the validated base config (abm) or the toy's
        fixed parameters, as plain data."""
        if self.model == "toy":
            return {"toy": dict(self.set)}
        from abm.scenarios import load

        cfg = load(self.scenario, dict(self.set))
        # every free parameter must be a field of the config: checked once here
        cfg.with_updates({p.name: p.low for p in self.parameters})
        return {"config": cfg.model_dump(mode="json")}


def load_calibration(name_or_path: str | Path, quick: bool = False) -> CalibrationSpec:
    """A calibration spec by name (experiments/calibrations/) or path; ``quick`` applies its
    ``[quick]`` table (a smaller budget for a first look and the tests)."""
    p = Path(name_or_path)
    if p.suffix != ".toml":
        p = data_dir("calibrations") / f"{name_or_path}.toml"
    if not p.exists():
        from abm.scenarios import names

        raise FileNotFoundError(
            f"calibration {name_or_path!r}: no such file; shipped: {names('calibrations')}"
        )
    raw = tomllib.loads(p.read_text())
    if quick:
        raw = {**raw, **raw.get("quick", {}), "name": raw.get("name", p.stem) + "-quick"}
    raw.setdefault("name", p.stem)
    return CalibrationSpec.model_validate(raw)


# -- simulation (on a worker) ------------------------------------------------------------------


def toy_statistics(params: dict[str, float], seed: int, n: int = 400) -> dict[str, float]:
    """The toy model whose parameters are known: an AR(1) series x_t = μ + φ (x_{t−1} − μ) + σ ε_t
    (ε standard normal, stationary start), n draws; its mean, sd, excess kurtosis and lag-1
    autocorrelation. Closed forms: mean μ, sd σ / √(1 − φ²), kurtosis 0, autocorrelation φ."""
    mu = float(params.get("toy.mu", 0.0))
    sigma = float(params.get("toy.sigma", 1.0))
    phi = float(params.get("toy.phi", 0.0))
    rng = np.random.default_rng(seed)
    eps = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = eps[0] * sigma / math.sqrt(1 - phi * phi)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + sigma * eps[t]
    x += mu
    d = x - x.mean()
    sd = float(np.sqrt(np.mean(d * d)))
    return {
        "mean": float(x.mean()),
        "sd": sd,
        "excess_kurtosis": float(np.mean(d**4) / sd**4 - 3),
        "acf_lag1": float(np.sum(d[1:] * d[:-1]) / np.sum(d * d)),
    }


def run_statistics(result: Any) -> dict[str, float]:
    """Every statistic a calibration can target from one model run: the summary's numbers, the
    ordinary market's facts of trade prices per step as ``facts.<fact>``, and of the mid
    sampled every h steps as ``facts_mid<h>.<fact>`` (h in `MID_HORIZONS`)."""
    from abm.metrics import ordinary_market_facts

    out = {k: float(v) for k, v in result.summary.items() if isinstance(v, int | float | np.number)}
    out.update({f"facts.{k}": float(v) for k, v in ordinary_market_facts(result).items()})
    for h in MID_HORIZONS:
        facts = ordinary_market_facts(result, "mid", h)
        out.update({f"facts_mid{h}.{k}": float(v) for k, v in facts.items()})
    return out


def simulate(
    base: dict[str, Any], params: dict[str, float], seed: int, statistics: list[str]
) -> dict[str, Any]:
    """One seed of one proposal: the named statistics (NaN where the run failed, with its
    error). Never raises."""
    t0 = time.perf_counter()
    try:
        if "toy" in base:
            stats = toy_statistics({**base["toy"], **params}, seed)
        else:
            from abm.config import RunConfig
            from abm.model import MarketModel

            cfg = RunConfig.model_validate(base["config"]).with_updates({**params, "seed": seed})
            stats = run_statistics(MarketModel(cfg).run())
        missing = [s for s in statistics if s not in stats]
        if missing:
            raise KeyError(f"statistics {missing} are not produced by this model")
        return {
            "stats": {s: stats[s] for s in statistics},
            "error": None,
            "seconds": time.perf_counter() - t0,
        }
    except Exception as err:  # noqa: BLE001 - a failed seed is data
        return {
            "stats": {s: float("nan") for s in statistics},
            "error": f"{type(err).__name__}: {err}",
            "traceback": traceback.format_exc(),
            "seconds": time.perf_counter() - t0,
        }


# -- the distance and the uncertainty ----------------------------------------------------------


def synthetic_distance(
    observed: np.ndarray, simulated: np.ndarray, observed_var: np.ndarray | None = None
) -> float:
    """D = Σ_k (obs_k − μ_k)² / σ_k² + log σ_k² with σ_k² = s_k² (1 + 1/S) + v_k, from
    ``simulated`` (S seeds × K statistics); +inf when a statistic failed in every seed or does
    not vary (its likelihood is undefined)."""
    sim = np.asarray(simulated, float)
    ok = np.isfinite(sim).all(axis=1)
    sim = sim[ok]
    S = len(sim)
    if S < 2:
        return math.inf
    mu = sim.mean(axis=0)
    var = sim.var(axis=0, ddof=1) * (1 + 1 / S)
    if observed_var is not None:
        var = var + np.asarray(observed_var, float)
    if (var <= 0).any():
        return math.inf
    return float(np.sum((np.asarray(observed, float) - mu) ** 2 / var + np.log(var)))


def quadratic_interval(u: np.ndarray, d: np.ndarray) -> dict[str, Any]:
    """Fit D ≈ c + bᵀu + ½ uᵀHu by least squares to evaluations ``u`` (n × p, scaled to [0, 1])
    with distances ``d``, over the best ones (at least 4 per coefficient, more when more lie
    within 4 × 3.84 of the best); its minimum, and the covariance 2 H⁻¹. Returns
    ``estimate`` (p), ``cov`` (p × p), ``used`` (how many evaluations) and ``problem`` (why
    there is no interval, or None)."""
    n, p = u.shape
    k = 1 + p + p * (p + 1) // 2
    ok = np.isfinite(d)
    u, d = u[ok], d[ok]
    order = np.argsort(d)
    m = max(4 * k, 12)
    if len(d) < k + 2:
        return {
            "estimate": u[order[0]] if len(d) else np.full(p, np.nan),
            "cov": np.full((p, p), np.nan),
            "used": len(d),
            "problem": f"{len(d)} finite evaluations, {k + 2} needed for a quadratic",
        }
    # the nearest ones by distance, widened while they all sit near the minimum
    m = min(max(m, int(np.sum(d <= d[order[0]] + 4 * CHI2_95))), len(d))
    sel = order[:m]
    X = [np.ones(m)]
    X += [u[sel, i] for i in range(p)]
    pairs = [(i, j) for i in range(p) for j in range(i, p)]
    X += [u[sel, i] * u[sel, j] * (0.5 if i == j else 1.0) for i, j in pairs]
    coef, *_ = np.linalg.lstsq(np.column_stack(X), d[sel], rcond=None)
    b = coef[1 : 1 + p]
    H = np.zeros((p, p))
    for c, (i, j) in zip(coef[1 + p :], pairs, strict=True):
        H[i, j] = H[j, i] = c
    eig = np.linalg.eigvalsh(H)
    # round-off leaves a flat direction a curvature of about 1e-12 of the others
    if eig.min() <= 1e-9 * np.abs(eig).max():
        return {
            "estimate": u[order[0]],
            "cov": np.full((p, p), np.nan),
            "used": m,
            "problem": "the distance has no minimum the statistics pin down "
            "(its fitted curvature is not positive in every direction)",
        }
    est = np.linalg.solve(H, -b)
    return {"estimate": est, "cov": 2 * np.linalg.inv(H), "used": m, "problem": None}


def profile(u: np.ndarray, d: np.ndarray, bins: int = 20) -> list[tuple[float, float]]:
    """The lowest distance seen in each of ``bins`` slices of one scaled parameter ``u``."""
    edges = np.linspace(0, 1, bins + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (u >= lo) & ((u < hi) | (hi == 1)) & np.isfinite(d)
        out.append(((lo + hi) / 2, float(d[inside].min()) if inside.any() else math.nan))
    return out


# -- the run -----------------------------------------------------------------------------------


@dataclass
class CalibrationReport:
    root: Path
    evaluations: int
    new: int
    seconds: float
    best: pd.DataFrame = field(default_factory=pd.DataFrame)
    fit: pd.DataFrame = field(default_factory=pd.DataFrame)


class CalibrationStore:
    """A calibration's folder: manifest, proposals, evaluations; nothing half-written counts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proposals = root / "proposals"
        self.evaluations = root / "evaluations"

    def prepare(self, spec: CalibrationSpec, resume: bool) -> None:
        manifest = self.root / "manifest.json"
        if manifest.exists():
            old = read_manifest(manifest)
            if old.get("spec_hash") != spec.digest():
                raise ValueError(
                    f"{self.root} holds calibration '{old.get('calibration')}' with spec hash "
                    f"{old.get('spec_hash')}; this spec has {spec.digest()}. A folder holds one "
                    "spec: give another --out, or remove the folder to start again"
                )
            if not resume and self.done():
                raise FileExistsError(
                    f"{self.root} already holds evaluations of this calibration; pass --resume "
                    "to carry on, or --out for a fresh directory"
                )
            check_base(manifest, old, config_hash(spec.base()), self.done)
        else:
            from abm.provenance import provenance

            self.root.mkdir(parents=True, exist_ok=True)
            meta = {
                "calibration": spec.name,
                "spec": spec.model_dump(mode="json"),
                "spec_hash": spec.digest(),
                "base_config_hash": config_hash(spec.base()),
                "package_version": __version__,
                "provenance": provenance(),
            }
            atomic_write_bytes(manifest, json.dumps(meta, indent=2).encode())
        self.proposals.mkdir(parents=True, exist_ok=True)
        self.evaluations.mkdir(parents=True, exist_ok=True)
        self.spec_hash = spec.digest()

    def done(self) -> dict[int, dict[str, Any]]:
        """The evaluations on disk by trial number; a file that does not read whole (a kill
        mid-write cannot leave one, but a disk can) is set aside and its trial run again."""
        out = {}
        merged = self.root / "evaluations.parquet"
        if merged.exists():
            for row in pd.read_parquet(merged).to_dict("records"):
                out[int(row["trial"])] = row
        if self.evaluations.exists():
            for f in sorted(self.evaluations.glob("*.parquet")):
                try:
                    df = pd.read_parquet(f)
                    assert len(df) == 1 and int(df["trial"].iloc[0]) == int(f.stem)
                except Exception:  # noqa: BLE001 - unreadable or foreign: run it again
                    SweepStore(self.root).set_aside(f)
                    continue
                out[int(f.stem)] = df.iloc[0].to_dict()
        return out

    def batches(self) -> dict[int, list[dict[str, float]]]:
        out = {}
        for f in sorted(self.proposals.glob("batch-*.json")):
            out[int(f.stem.split("-")[1])] = json.loads(f.read_text())["trials"]
        return out

    def write_batch(self, batch: int, trials: list[dict[str, Any]]) -> None:
        atomic_write_bytes(
            self.proposals / f"batch-{batch:05d}.json",
            json.dumps({"batch": batch, "trials": trials}, indent=2).encode(),
        )

    def write_evaluation(self, row: dict[str, Any]) -> None:
        atomic_write_parquet(self.evaluations / f"{row['trial']:05d}.parquet", pd.DataFrame([row]))


def _sampler(spec: CalibrationSpec, batch: int) -> Any:
    import warnings

    import optuna

    # multivariate TPE and the constant liar are marked experimental; they are what a batch
    # of parallel proposals needs (a joint model, and no two proposals of a batch alike)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    seed = int(np.random.SeedSequence([spec.seed, batch]).generate_state(1)[0])
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=spec.startup, multivariate=True, constant_liar=True
    )


def _distributions(spec: CalibrationSpec) -> dict[str, Any]:
    import optuna

    return {
        p.name: optuna.distributions.FloatDistribution(p.low, p.high, log=p.log)
        for p in spec.parameters
    }


def calibrate(
    spec: CalibrationSpec,
    out: str | Path = "results/calibrations",
    workers: int | None = None,
    address: str | None = None,
    serial: bool = False,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> CalibrationReport:
    """Run (or resume) ``spec`` into ``out/<name>/`` and summarise it (see the module's
    docstring). ``stop_after`` ends the search after that many new evaluations, unsummarised,
    as a kill would (for tests of resuming)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = CalibrationStore(Path(out) / spec.name)
    t0 = time.perf_counter()
    with SweepStore(store.root).lock():
        store.prepare(spec, resume)
        base = spec.base()
        observed = np.array([t.value() for t in spec.fitted])
        observed_var = np.array([t.observed_se**2 for t in spec.fitted])
        stats = [t.statistic for t in spec.targets]
        fitted_idx = [stats.index(t.statistic) for t in spec.fitted]
        dists = _distributions(spec)
        done = store.done()
        batches = store.batches()
        n_batches = math.ceil(spec.budget / spec.batch)
        new = 0
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=spec.budget, initial=len(done), desc=spec.name, unit="eval")
        study = optuna.create_study(direction="minimize")
        with dask_client(serial, workers, address) as client:
            for b in range(n_batches):
                size = min(spec.batch, spec.budget - b * spec.batch)
                if b not in batches:
                    study.sampler = _sampler(spec, b)
                    asked = [study.ask(dists) for _ in range(size)]
                    batches[b] = [
                        {"trial": b * spec.batch + i, "params": t.params}
                        for i, t in enumerate(asked)
                    ]
                    store.write_batch(b, batches[b])
                    # the study learns each trial from the store below, in trial order
                    for t in asked:
                        study.tell(t, state=optuna.trial.TrialState.FAIL)
                todo = [t for t in batches[b] if t["trial"] not in done]
                if stop_after is not None and new + len(todo) > stop_after:
                    todo = todo[: max(stop_after - new, 0)]
                for t, row in _evaluate(todo, base, spec, stats, client):
                    sim = np.array([[s[k] for k in stats] for s in row.pop("_stats")])
                    row["distance"] = synthetic_distance(observed, sim[:, fitted_idx], observed_var)
                    row["spec_hash"] = store.spec_hash
                    row["batch"] = b
                    store.write_evaluation(row)
                    done[t["trial"]] = row
                    new += 1
                    if bar is not None:
                        bar.update(1)
                        best = min(r["distance"] for r in done.values())
                        bar.set_postfix(best=f"{best:.4g}")
                if stop_after is not None and new >= stop_after:
                    if bar is not None:
                        bar.close()
                    return CalibrationReport(store.root, len(done), new, time.perf_counter() - t0)
                study = _rebuild(spec, done, dists)
            if bar is not None:
                bar.close()
            report = _summarise(spec, store, done, base, client)
    report.new = new
    report.seconds = time.perf_counter() - t0
    return report


def _rebuild(spec: CalibrationSpec, done: dict[int, dict[str, Any]], dists: dict) -> Any:
    """The study as the store holds it: every evaluation, in trial order (so a resumed
    calibration's sampler sees what an uninterrupted one saw)."""
    import optuna

    study = optuna.create_study(direction="minimize")
    for trial in sorted(done):
        row = done[trial]
        params = {p.name: float(row[f"param_{p.name}"]) for p in spec.parameters}
        d = row["distance"]
        if math.isfinite(d):
            study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=d))
        else:
            study.add_trial(
                optuna.trial.create_trial(
                    params=params, distributions=dists, state=optuna.trial.TrialState.FAIL
                )
            )
    return study


def _evaluate(
    todo: list[dict[str, Any]],
    base: dict[str, Any],
    spec: CalibrationSpec,
    stats: list[str],
    client: Any,
    seeds: list[int] | None = None,
):
    """Run every proposal of ``todo`` on its seeds; yield (proposal, row) as each proposal's
    last seed finishes (its statistics per seed in ``row['_stats']``)."""
    seeds = seeds or spec.seed_list()
    jobs = (((t["trial"], s), (base, t["params"], s, stats)) for t in todo for s in seeds)
    got: dict[int, dict[int, dict[str, Any]]] = {}
    by_trial = {t["trial"]: t for t in todo}
    batch = batch_size(len(todo) * len(seeds), n_workers(client))
    for (trial, s), res in dask_map(simulate, jobs, client, batch=batch):
        got.setdefault(trial, {})[s] = res
        if len(got[trial]) == len(seeds):
            per_seed = got.pop(trial)
            results = [per_seed[x] for x in seeds]
            t = by_trial[trial]
            errors = [r["error"] for r in results if r["error"]]
            row: dict[str, Any] = {"trial": trial}
            row.update({f"param_{k}": float(v) for k, v in t["params"].items()})
            arr = np.array([[r["stats"][k] for k in stats] for r in results], float)
            for i, k in enumerate(stats):
                col = arr[:, i][np.isfinite(arr[:, i])]
                row[f"sim_{k}_mean"] = float(col.mean()) if len(col) else math.nan
                row[f"sim_{k}_sd"] = float(col.std(ddof=1)) if len(col) > 1 else math.nan
            row["seeds_ok"] = len(seeds) - len(errors)
            row["first_error"] = errors[0] if errors else ""
            row["seconds"] = float(sum(r["seconds"] for r in results))
            row["_stats"] = [r["stats"] for r in results]
            yield t, row


def _summarise(
    spec: CalibrationSpec,
    store: CalibrationStore,
    done: dict[int, dict[str, Any]],
    base: dict[str, Any],
    client: Any,
) -> CalibrationReport:
    """Merge the evaluations; estimate, intervals and profile; simulate the best point on fresh
    seeds for the fit table (fitted and held-out targets alike)."""
    ev = pd.DataFrame([done[k] for k in sorted(done)])
    merged = store.root / "evaluations.parquet"
    atomic_write_parquet(merged, ev)
    for f in store.evaluations.glob("*.parquet"):
        f.unlink()
    names = [p.name for p in spec.parameters]
    theta = ev[[f"param_{n}" for n in names]].to_numpy(float)
    u = np.column_stack([p.scale(theta[:, i]) for i, p in enumerate(spec.parameters)])
    d = ev["distance"].to_numpy(float)
    ibest = int(np.nanargmin(np.where(np.isfinite(d), d, np.nan)))
    q = quadratic_interval(u, d)
    rows, prof = [], []
    for i, p in enumerate(spec.parameters):
        pr = profile(u[:, i], d)
        prof += [
            {"parameter": p.name, "value": float(p.unscale(c)), "min_distance": m} for c, m in pr
        ]
        inside = [c for c, m in pr if math.isfinite(m) and m <= d[ibest] + CHI2_95]
        se = math.sqrt(q["cov"][i, i]) if q["problem"] is None else math.nan
        est_u = float(q["estimate"][i])
        lo_u, hi_u = est_u - 1.96 * se, est_u + 1.96 * se
        rows.append(
            {
                "parameter": p.name,
                "best_evaluated": float(theta[ibest, i]),
                "estimate": float(p.unscale(est_u)),
                "ci_low": float(p.unscale(lo_u)) if math.isfinite(se) else math.nan,
                "ci_high": float(p.unscale(hi_u)) if math.isfinite(se) else math.nan,
                "se_scaled": se,
                "profile_low": float(p.unscale(min(inside) - 0.025)) if inside else math.nan,
                "profile_high": float(p.unscale(max(inside) + 0.025)) if inside else math.nan,
                "within_bounds": bool(0 <= est_u <= 1),
                "problem": q["problem"]
                or ("" if 0 <= est_u <= 1 else "estimate outside bounds")
                or (
                    ""
                    if lo_u >= 0 and hi_u <= 1
                    else "the interval reaches beyond the bounds: read the profile's"
                ),
                "evaluations_in_fit": q["used"],
                "best_distance": float(d[ibest]),
            }
        )
    best = pd.DataFrame(rows)
    atomic_write_parquet(store.root / "best.parquet", best)
    atomic_write_parquet(store.root / "profile.parquet", pd.DataFrame(prof))
    # the fit: at the estimate when it lies inside the bounds, else at the best evaluated
    point = {
        r["parameter"]: (
            r["estimate"] if r["within_bounds"] and q["problem"] is None else r["best_evaluated"]
        )
        for r in rows
    }
    stats = [t.statistic for t in spec.targets]
    trial = {"trial": -1, "params": point}
    _, row = next(_evaluate([trial], base, spec, stats, client, spec.confirm_seed_list()))
    fit = []
    for t in spec.targets:
        obs = t.value()
        m, s = row[f"sim_{t.statistic}_mean"], row[f"sim_{t.statistic}_sd"]
        fit.append(
            {
                "statistic": t.statistic,
                "held_out": t.held_out,
                "observed": obs,
                "simulated_mean": m,
                "simulated_sd": s,
                "simulated_se": s / math.sqrt(row["seeds_ok"]) if row["seeds_ok"] else math.nan,
                "error": m - obs,
                "z": (m - obs) / math.sqrt(s * s + t.observed_se**2) if s > 0 else math.nan,
                "seeds": row["seeds_ok"],
            }
        )
    fit_df = pd.DataFrame(fit)
    atomic_write_parquet(store.root / "fit.parquet", fit_df)
    return CalibrationReport(store.root, len(done), 0, 0.0, best=best, fit=fit_df)

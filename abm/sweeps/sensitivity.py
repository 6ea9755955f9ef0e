"""Sobol sensitivity of a sweep's outputs, stored beside the sweep.

Replicates of a design point are averaged first: on common random numbers replicate k of every
point shares its seed, so the average is a deterministic function of the parameters. Two
estimates of the same first-order (S1) and total (ST) indices are stored:

``saltelli``
    SALib's estimators on the Saltelli design itself, with their bootstrap 95 % intervals.
    Exact in the limit, but on this model's thresholded response (a harvest only where the
    crowd's NDNP outruns the fringe) they converge slowly: their interval says how slowly.
``emulator``
    A Gaussian-process emulator (scikit-learn) is fitted to the same replicate-averaged
    points, checked out of sample (Q², k-fold: 1 − prediction error / variance), and the
    indices are computed on it with as many Saltelli samples as wanted. The 95 % interval
    comes from refitting the emulator to bootstrap resamples of the design points (the
    training-sample uncertainty), widened by the Monte-Carlo error of the indices on the
    emulator. It covers what the design points leave unknown, not the emulator's bias: Q²
    bounds that, and an estimate counts as adequate only with Q² ≥ ``Q2_MIN``.

Each row says whether its interval is narrower than 0.1 (``adequate``) and, for the direct
estimate, how many base samples N would make every interval so (``samples_needed``).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from abm.sweeps.spec import SweepSpec

#: an emulator's indices count only if it predicts held-out points this well (Q²)
Q2_MIN = 0.9
#: an index's 95 % interval must be narrower than this
WIDTH_MAX = 0.1
#: design points the emulator's kernel hyperparameters are fitted on (a seeded subset)
HYPER_POINTS = 500


def sobol_indices(problem: dict, y: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """S1, S1_conf, ST, ST_conf per parameter for model outputs ``y`` at SALib's sample rows
    (``*_conf``: half-width of the 95 % bootstrap interval)."""
    from SALib.analyze import sobol

    res = sobol.analyze(problem, np.asarray(y, float), calc_second_order=False, seed=seed)
    return pd.DataFrame(
        {
            "parameter": problem["names"],
            "S1": res["S1"],
            "S1_conf": res["S1_conf"],
            "ST": res["ST"],
            "ST_conf": res["ST_conf"],
        }
    )


def _gp(kernel, optimise: bool, seed: int):
    from sklearn.gaussian_process import GaussianProcessRegressor

    return GaussianProcessRegressor(
        kernel,
        optimizer="fmin_l_bfgs_b" if optimise else None,
        n_restarts_optimizer=2 if optimise else 0,
        random_state=seed,
    )


def _predict(model, u: np.ndarray, chunk: int = 8192) -> np.ndarray:
    # the cross-kernel of a large sample against every design point does not fit at once
    return np.concatenate([model.predict(u[i : i + chunk]) for i in range(0, len(u), chunk)])


def emulated_sobol(
    problem: dict,
    x: np.ndarray,
    y: np.ndarray,
    integer: list[bool] | None = None,
    n_base: int = 65536,
    n_boot: int = 100,
    folds: int = 5,
    seed: int = 0,
    n_post: int = 1024,
    n_draws: int = 200,
    n_boot_base: int = 8192,
) -> tuple[pd.DataFrame, float]:
    """Sobol indices of a Gaussian-process emulator of ``y`` (one value per design point ``x``,
    rows in ``problem``'s parameter order), and the emulator's out-of-sample Q².

    Kernel: a constant times an anisotropic Matérn-5/2 on the unit cube plus a white-noise
    nugget (the averaged output is deterministic but rough); its hyperparameters are fitted
    once, on a seeded subset of at most ``HYPER_POINTS`` points, and held. Q² is k-fold with
    those hyperparameters. Indices on ``n_base`` Saltelli samples of the emulator's mean
    (integer parameters rounded, as the design does). Two 95 % intervals, each widened by the
    indices' Monte-Carlo half-width on the emulator:

    * ``*_lo``/``*_hi`` (Bayesian, Oakley & O'Hagan 2004; Le Gratiet et al. 2014): the
      2.5–97.5 % percentiles of the indices of ``n_draws`` joint draws from the emulator's
      posterior at ``n_post`` base samples, as deviations from those of its mean: what the
      design points leave unknown of this function, given the kernel;
    * ``*_boot_lo``/``*_boot_hi``: the percentiles over ``n_boot`` refits to bootstrap
      resamples of the design points (indices on the first ``n_boot_base`` base samples, as
      deviations from the full fit's there): how far a different design of the same size
      could move them (wider: a resample keeps about 63 % of the distinct points).

    Returns the table (S1, ST and both intervals per parameter) and Q²."""
    from SALib.analyze import sobol
    from SALib.sample import sobol as sobol_sample
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
    from sklearn.model_selection import KFold, cross_val_predict

    x, y = np.asarray(x, float), np.asarray(y, float)
    names = problem["names"]
    if x.ndim != 2 or x.shape != (y.size, len(names)):
        raise ValueError(f"emulated_sobol: x is {x.shape}, y has {y.size} values, {names}")
    if not np.all(np.isfinite(y)) or y.std() == 0:
        raise ValueError("emulated_sobol: the output must be finite and vary across points")
    lo, hi = np.array(problem["bounds"], float).T
    u = (x - lo) / (hi - lo)
    z = (y - y.mean()) / y.std()
    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
        length_scale=np.full(len(names), 0.5), length_scale_bounds=(1e-2, 1e2), nu=2.5
    ) + WhiteKernel(1e-2, (1e-8, 1.0))
    rng = np.random.default_rng(seed)
    # the kernel's hyperparameters are fitted on at most HYPER_POINTS points (the likelihood
    # costs n³ per step) and then held for the full fit, the out-of-sample check and the
    # bootstrap refits
    sub = rng.choice(len(z), min(len(z), HYPER_POINTS), replace=False)
    with warnings.catch_warnings():
        # a length scale at its bound means "this parameter does not matter": fine here
        warnings.simplefilter("ignore", ConvergenceWarning)
        tuned = _gp(kernel, True, seed).fit(u[sub], z[sub]).kernel_
    full = _gp(tuned, False, seed).fit(u, z)
    pred = cross_val_predict(
        _gp(tuned, False, seed), u, z, cv=KFold(folds, shuffle=True, random_state=seed)
    )
    q2 = float(1 - np.sum((pred - z) ** 2) / np.sum((z - z.mean()) ** 2))
    sample = sobol_sample.sample(problem, n_base, calc_second_order=False, seed=seed)
    cols = [i for i, flag in enumerate(integer or []) if flag]
    sample[:, cols] = np.round(sample[:, cols])
    us = (sample - lo) / (hi - lo)

    def indices(model, resamples: int) -> dict:
        return sobol.analyze(
            problem,
            _predict(model, us),
            calc_second_order=False,
            num_resamples=resamples,
            seed=seed,
        )

    main = indices(full, 100)
    # (a) what the emulator does not know of the function between the design points: Sobol
    # indices of draws from its posterior at n_post base samples, as deviations from the
    # indices of the posterior mean at the same samples
    post = sobol_sample.sample(problem, n_post, calc_second_order=False, seed=seed + 1)
    post[:, cols] = np.round(post[:, cols])
    draws = _posterior_draws(full, (post - lo) / (hi - lo), n_draws, rng)
    centre = sobol.analyze(problem, draws[0], calc_second_order=False, num_resamples=2, seed=seed)
    dev = {"S1": [], "ST": []}
    for d in draws[1:]:
        res = sobol.analyze(problem, d, calc_second_order=False, num_resamples=2, seed=seed)
        for key in dev:
            dev[key].append(res[key] - centre[key])
    # (b) how far another design of the same size could move them: refits to bootstrap
    # resamples of the design points, as deviations from the full fit on a smaller sample
    small = (sample[: n_boot_base * (len(names) + 2)] - lo) / (hi - lo)
    centre_b = sobol.analyze(
        problem, _predict(full, small), calc_second_order=False, num_resamples=2, seed=seed
    )
    boots = {"S1": [], "ST": []}
    for _ in range(n_boot):
        pick = rng.integers(0, len(z), len(z))
        refit = _gp(tuned, False, seed).fit(u[pick], z[pick])
        res = sobol.analyze(
            problem, _predict(refit, small), calc_second_order=False, num_resamples=2, seed=seed
        )
        for key in boots:
            boots[key].append(res[key] - centre_b[key])
    table = pd.DataFrame({"parameter": names})
    for key in ("S1", "ST"):
        mc = main[f"{key}_conf"]  # the Monte-Carlo half-width of the indices on the emulator
        d, b = np.array(dev[key]), np.array(boots[key])
        table[key] = main[key]
        table[f"{key}_lo"] = main[key] + np.percentile(d, 2.5, axis=0) - mc
        table[f"{key}_hi"] = main[key] + np.percentile(d, 97.5, axis=0) + mc
        table[f"{key}_conf"] = (table[f"{key}_hi"] - table[f"{key}_lo"]) / 2
        table[f"{key}_boot_lo"] = main[key] + np.percentile(b, 2.5, axis=0) - mc
        table[f"{key}_boot_hi"] = main[key] + np.percentile(b, 97.5, axis=0) + mc
    return table, q2


def _posterior_draws(gp, u: np.ndarray, n_draws: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The posterior mean of a fitted emulator's latent function at ``u`` (first), then
    ``n_draws`` joint draws from its posterior there. The white-noise nugget is left out of the
    predictive covariance: it is roughness the design cannot resolve, not a function to draw."""
    from scipy.linalg import cho_solve, cholesky, solve_triangular

    signal = gp.kernel_.k1  # constant × Matérn; k2 is the nugget
    train = gp.X_train_
    k = gp.kernel_(train) + gp.alpha * np.eye(len(train))
    chol = cholesky(k, lower=True)
    cross = signal(u, train)
    mean = cross @ cho_solve((chol, True), gp.y_train_)
    v = solve_triangular(chol, cross.T, lower=True)
    cov = signal(u) - v.T @ v
    root = _psd_root(cov)
    return [mean] + [mean + root @ rng.standard_normal(len(u)) for _ in range(n_draws)]


def _psd_root(cov: np.ndarray) -> np.ndarray:
    """A matrix R with R Rᵀ = cov: Cholesky with the smallest jitter that works, else an
    eigen-decomposition with the (rounding-error) negative eigenvalues set to zero."""
    from scipy.linalg import LinAlgError, cholesky

    scale = float(np.mean(np.diag(cov))) or 1.0
    for jitter in (1e-10, 1e-8, 1e-6):
        try:
            return cholesky(cov + jitter * scale * np.eye(len(cov)), lower=True)
        except LinAlgError:
            continue
    vals, vecs = np.linalg.eigh(cov)
    return vecs * np.sqrt(np.clip(vals, 0, None))


def inputs_digest(spec: SweepSpec, means: pd.DataFrame, emulator: bool) -> str:
    """What an analysis was computed from: the spec, the per-point means of its outputs (the
    stored runs) and whether the emulator was fitted (sha256, hex)."""
    h = hashlib.sha256()
    h.update(spec.digest().encode())
    h.update(repr(list(means.columns)).encode())
    h.update(np.ascontiguousarray(means.to_numpy(float)).tobytes())
    h.update(b"emulator" if emulator else b"direct")
    return h.hexdigest()


def stored_analysis(out_dir: str | Path, digest: str) -> pd.DataFrame | None:
    """The analysis stored in ``out_dir`` if it was computed from the same inputs, else None."""
    path = Path(out_dir) / "sensitivity.parquet"
    if not path.exists():
        return None
    try:
        old = pd.read_parquet(path)
    except (OSError, ValueError):
        return None
    if "inputs_sha256" in old and (old["inputs_sha256"] == digest).all():
        return old
    return None


def analyse(
    spec: SweepSpec,
    table: pd.DataFrame,
    out_dir: str | Path,
    emulator: bool = True,
    recompute: bool = False,
    say: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Sobol indices of each of ``spec.outputs``, direct (``method = "saltelli"``) and, unless
    ``emulator`` is False, on a Gaussian-process emulator (``method = "emulator"``); writes
    sensitivity.parquet and .json.

    An analysis already stored in ``out_dir`` from the same inputs (spec, per-point means,
    method: column ``inputs_sha256``) is returned as it is unless ``recompute``: the emulator
    takes minutes on a paper-size design, and its intervals move in the sixth digit between
    CPUs. ``say`` receives a line at each stage (progress)."""
    if spec.design != "sobol":
        raise ValueError(
            f"sweep '{spec.name}' has design '{spec.design}': Sobol indices need design = 'sobol'"
        )
    n_points = len(spec.design_points())
    means = table.groupby("point")[spec.outputs].mean()
    missing = sorted(set(range(n_points)) - set(means.index))
    if missing:
        raise ValueError(
            f"sweep '{spec.name}': {len(missing)} of {n_points} points have no "
            f"finished run (e.g. point {missing[0]}); resume the sweep first"
        )
    from abm.statistics import sobol_samples_needed

    digest = inputs_digest(spec, means.reindex(range(n_points)), emulator)
    if not recompute:
        stored = stored_analysis(out_dir, digest)
        if stored is not None:
            if say:
                say(f"the stored analysis in {out_dir} is of these runs: shown as stored")
            return stored
    problem = spec.problem()
    points = spec.design_points()
    x = np.array([[p[k] for k in problem["names"]] for p in points], float)
    integer = [spec.vary[k].integer for k in problem["names"]]
    seed = spec.master_seed % 2**32
    frames = []
    for out in spec.outputs:
        y = means[out].reindex(range(n_points)).to_numpy(float)
        if not np.all(np.isfinite(y)):
            raise ValueError(f"output '{out}' is not finite at every point; cannot analyse")
        if np.ptp(y) == 0:
            raise ValueError(
                f"output '{out}' is {y[0]:g} at every point: it has no variance to apportion"
            )
        if say:
            say(f"{out}: Saltelli indices on {n_points:,} points")
        df = sobol_indices(problem, y, seed=seed)
        df["S1_lo"], df["S1_hi"] = df["S1"] - df["S1_conf"], df["S1"] + df["S1_conf"]
        df["ST_lo"], df["ST_hi"] = df["ST"] - df["ST_conf"], df["ST"] + df["ST_conf"]
        df.insert(0, "method", "saltelli")
        df["q2"] = np.nan
        frames.append(df.assign(output=out))
        if emulator:
            if say:
                say(f"{out}: Gaussian-process emulator, posterior draws and bootstrap refits")
            emu, q2 = emulated_sobol(problem, x, y, integer=integer, seed=seed)
            emu.insert(0, "method", "emulator")
            emu["q2"] = q2
            frames.append(emu.assign(output=out))
    result = pd.concat(frames, ignore_index=True)
    result.insert(0, "output", result.pop("output"))
    width = np.maximum(result["S1_hi"] - result["S1_lo"], result["ST_hi"] - result["ST_lo"])
    result["interval_width"] = width
    if "ST_boot_hi" in result:
        result["boot_width"] = np.maximum(
            result["S1_boot_hi"] - result["S1_boot_lo"], result["ST_boot_hi"] - result["ST_boot_lo"]
        )
    result["adequate"] = (width < WIDTH_MAX) & (
        (result["method"] == "saltelli") | (result["q2"] >= Q2_MIN)
    )
    result["samples"] = spec.samples
    direct = result["method"] == "saltelli"
    result["samples_needed"] = sobol_samples_needed(
        spec.samples, float(width[direct].max()), WIDTH_MAX
    )
    result["inputs_sha256"] = digest
    _store(result, Path(out_dir))
    return result


def _same(a: pd.DataFrame, b: pd.DataFrame, rtol: float = 1e-5) -> bool:
    """Whether two analyses agree to within their reproducibility across machines: numpy's
    vectorised ``exp`` and BLAS differ in the last bits between CPUs, and the emulator's fit
    and posterior draws carry that to about 1e-6 relative in its intervals (measured on the
    stored sobol_main: 2e-6)."""
    if list(a.columns) != list(b.columns) or a.shape != b.shape:
        return False
    for c in a.columns:
        x, y = a[c].to_numpy(), b[c].to_numpy()
        if np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number):
            if not np.allclose(
                x.astype(float), y.astype(float), rtol=rtol, atol=1e-12, equal_nan=True
            ):
                return False
        elif not (x == y).all():
            return False
    return True


def _store(result: pd.DataFrame, out: Path) -> None:
    """Write sensitivity.parquet and .json atomically, and leave an existing analysis untouched
    when the new one agrees with it to floating-point noise, so analysing stored (tracked)
    results does not rewrite them."""
    path = out / "sensitivity.parquet"
    if path.exists():
        try:
            if _same(pd.read_parquet(path), result.reset_index(drop=True)):
                return
        except (OSError, ValueError):  # unreadable old file: replace it
            pass
    from abm.results import atomic_write_bytes, atomic_write_parquet

    atomic_write_parquet(path, result)
    records = json.dumps(result.to_dict(orient="records"), indent=2).encode()
    atomic_write_bytes(out / "sensitivity.json", records)


def sensitivity_verdict(result: pd.DataFrame) -> str:
    """One line per method: adequate (every 95 % interval narrower than ``WIDTH_MAX``, and for
    the emulator Q² ≥ ``Q2_MIN``) or not, with the numbers that decide it."""
    lines = []
    for method, d in result.groupby("method", sort=False):
        widest = float(d["interval_width"].max())
        ok = bool(d["adequate"].all())
        if method == "saltelli":
            n = int(d["samples"].iloc[0])
            lines.append(
                f"direct (Saltelli, N = {n}): "
                + (
                    f"adequate, widest interval {widest:.3f}"
                    if ok
                    else f"not adequate: widest interval {widest:.2f} (target < {WIDTH_MAX}); "
                    f"about N = {int(d['samples_needed'].iloc[0])} would do"
                )
            )
        else:
            q2 = ", ".join(
                f"{o}: {v:.3f}" for o, v in d.groupby("output", sort=False)["q2"].first().items()
            )
            boot = (
                f"; over bootstrap resamples of the design the widest is "
                f"{float(d['boot_width'].max()):.3f}"
                if "boot_width" in d
                else ""
            )
            lines.append(
                f"emulator (Gaussian process; Q² {q2}): "
                + ("adequate" if ok else "not adequate")
                + f", widest posterior interval {widest:.3f} (target < {WIDTH_MAX}, "
                f"Q² ≥ {Q2_MIN}){boot}"
            )
    return "\n".join(lines)

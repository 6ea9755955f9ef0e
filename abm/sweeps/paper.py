"""Recompute the stored results every paper figure is drawn from.

    abm reproduce                 # paper size, into results/paper/
    abm reproduce --quick         # the sweeps' small sizes (a minute or two)

Single runs (``runs/<scenario>/``) come from the shipped scenarios; sweeps
(``<sweep>/``) from the shipped specs, the Sobol sweep followed by its sensitivity analysis.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from abm.config import load
from abm.model import MarketModel
from abm.sweeps.runner import run_sweep
from abm.sweeps.sensitivity import analyse
from abm.sweeps.spec import load_spec

PAPER_DIR = Path("results") / "paper"
SCENARIOS = ("default", "one_sided", "china_rebar", "wti_2020", "cascade")
SWEEPS = (
    # replicates of the single-run figures (F1/F5, F6, F7): intervals and n for their claims
    "crowd_seeds",
    "cascade_seeds",
    "wti_seeds",
    "imbalance_x_margin",
    "forced_close_lead",
    "arbitrage_capacity",
    "harvest_statics",
    "margin_effect",
    "margin_effect_rebar",
    "ndnp_design",
    "sobol_main",
)


def reproduce(
    out: str | Path = PAPER_DIR,
    quick: bool = False,
    workers: int | None = None,
    serial: bool = False,
    progress: bool = True,
    fresh: bool = True,
) -> Path:
    from abm.results import load as load_runs

    root = Path(out)
    for name in SCENARIOS:
        target = root / "runs" / name
        if fresh and target.exists():
            shutil.rmtree(target)
        MarketModel(load(name)).run(progress=progress).save(target)
    for name in SWEEPS:
        spec = load_spec(name, quick=quick)
        if fresh and (root / spec.name).exists():
            shutil.rmtree(root / spec.name)
        run_sweep(
            spec,
            root,
            workers=workers,
            serial=serial,
            quick=quick,
            progress=progress,
            resume=not fresh,
        )
        if spec.design == "sobol":
            analyse(spec, load_runs(root / spec.name), root / spec.name)
    return root

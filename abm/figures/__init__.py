"""The paper's figures, drawn from stored results only (``abm figures``).

* `abm.figures.style` — one style, page sizes, reproducible files, the shared time marks;
* `abm.figures.data` — what the figures read from a results folder, and their reductions over
  seeds;
* `abm.figures.single_runs` — F1, F5, F6, F7, F9: single runs, with intervals over seeds;
* `abm.figures.designs` — F2, F3, F4, F8, F10, F11, F12: sweeps, means and intervals per point;
* `abm.figures.claims` — each figure's claim, with its number and 95 % interval;
* `abm.figures.registry` — the figures with their captions, data and claims, and `make_all`.

Each ``f*`` function takes loaded data and returns a matplotlib Figure, so a researcher can
restyle one in a notebook; `make_all` loads ``results/paper`` (see ``abm reproduce``), draws
all twelve, writes each as PDF (vector) and PNG, and indexes them with their claims in
``README.md``. Colours come from `abm.palette`, shared with `RunResult.plot` and the dashboard.
"""

from abm.figures.data import (
    CLK20,
    acf_over_seeds,
    per_day_over_seeds,
    price_changes,
    seed_settlements,
)
from abm.figures.designs import (
    f2_transfer_heatmap,
    f3_divergence_vs_lead,
    f4_divergence_vs_capacity,
    f8_sobol,
    f10_comparative_statics,
    f11_margin_effect,
    f12_ndnp_design,
)
from abm.figures.registry import FigureSpec, figure_specs, make_all
from abm.figures.single_runs import (
    f1_price_paths,
    f5_wealth_by_channel,
    f6_liquidation_cascade,
    f7_wti_replication,
    f9_stylized_facts,
)
from abm.figures.style import (
    COLUMN_WIDTH,
    FULL_WIDTH,
    PALETTE,
    mark_deadline,
    mean_ci,
    save,
    style,
)

__all__ = [
    "CLK20",
    "COLUMN_WIDTH",
    "FULL_WIDTH",
    "PALETTE",
    "FigureSpec",
    "acf_over_seeds",
    "f1_price_paths",
    "f2_transfer_heatmap",
    "f3_divergence_vs_lead",
    "f4_divergence_vs_capacity",
    "f5_wealth_by_channel",
    "f6_liquidation_cascade",
    "f7_wti_replication",
    "f8_sobol",
    "f9_stylized_facts",
    "f10_comparative_statics",
    "f11_margin_effect",
    "f12_ndnp_design",
    "figure_specs",
    "make_all",
    "mark_deadline",
    "mean_ci",
    "per_day_over_seeds",
    "price_changes",
    "save",
    "seed_settlements",
    "style",
]

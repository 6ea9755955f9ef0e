# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Sweep analysis: transfer against the NDNP
#
# Load a stored sweep with DuckDB or pandas, slice it, plot it, and fit the simulated harvest
# against the closed form |NDNP| × spread × multiplier. The data are the stored results in
# `results/paper/` (recompute them with `abm reproduce`).

# %%
from pathlib import Path

import duckdb
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from scipy import stats

from abm.figures import style
from abm.results import load, query

style()
ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
SWEEP = ROOT / "results" / "paper" / "imbalance_x_margin"
df = load(SWEEP)
df.shape

# %% [markdown]
# ## Querying with SQL
# The same files answer SQL directly: here, the mean harvest by crowd imbalance.

# %%
query(
    SWEEP,
    """
    SELECT retail_long_share, round(avg(ndnp_at_deadline)) AS ndnp,
           round(avg(transfer_retail_to_hedger_harvest_forced_close)) AS harvest,
           round(avg(theory_transfer)) AS theory, count(*) AS runs
    FROM runs GROUP BY ALL ORDER BY ALL""",
)

# %% [markdown]
# Or with DuckDB's own API on the Parquet file:

# %%
duckdb.sql(
    f"SELECT margin_rate, round(avg(n_margin_calls), 1) AS calls, "
    f"round(avg(n_liquidations), 1) AS liquidations "
    f"FROM '{SWEEP}/runs.parquet' GROUP BY ALL ORDER BY ALL"
).df()

# %% [markdown]
# ## Slicing and plotting

# %%
fig, ax = plt.subplots(figsize=(5, 3))
sns.lineplot(
    df,
    x="retail_long_share",
    y="transfer_retail_to_hedger_harvest_forced_close",
    hue="margin_rate",
    marker="o",
    errorbar="sd",
    ax=ax,
    palette="colorblind",
)
ax.set_ylabel("harvest transfer (money)")
fig.tight_layout()

# %% [markdown]
# ## Fitting the transfer against theory
#
# The claim: the simulated harvest tracks the closed form for each run's NDNP at the deadline
# (the Cournot/dominant-firm harvest against the fringe's cost curves, over the band's
# sessions) with a slope near one.

# %%
fit = stats.linregress(df["theory_transfer"], df["transfer_retail_to_hedger_harvest_forced_close"])
print(f"slope {fit.slope:.3f}, intercept {fit.intercept:,.0f}, R² {fit.rvalue**2:.3f}")
assert 0.8 < fit.slope < 1.4 and fit.rvalue**2 > 0.8
fig, ax = plt.subplots(figsize=(4, 3.5))
ax.scatter(df["theory_transfer"], df["transfer_retail_to_hedger_harvest_forced_close"], s=10)
lim = np.array([0, df["theory_transfer"].max() * 1.05])
ax.plot(lim, lim, color="0.5", ls="--", label="y = x")
ax.plot(lim, fit.intercept + fit.slope * lim, color="C3", label="least squares")
ax.set_xlabel("theory: harvest of the NDNP at the deadline")
ax.set_ylabel("simulated harvest transfer")
ax.legend()
fig.tight_layout()

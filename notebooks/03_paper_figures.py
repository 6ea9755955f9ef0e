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
# # The paper's figures, one by one
#
# Each figure function takes loaded results and returns a matplotlib figure, so any one can be
# restyled here before saving. `abm figures` draws them all from the same stored results.

# %%
from pathlib import Path

import pandas as pd

from abm import figures as F
from abm.results import load, load_run, load_timeseries

F.style()
ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
DATA = ROOT / "results" / "paper"
default, one_sided = load_run(DATA / "runs" / "default"), load_run(DATA / "runs" / "one_sided")

# %% F1
fig = F.f1_price_paths(default, one_sided)

# %% F2
fig = F.f2_transfer_heatmap(load(DATA / "imbalance_x_margin"))

# %% F3
fig = F.f3_divergence_vs_lead(load(DATA / "forced_close_lead"))

# %% F4
fig = F.f4_divergence_vs_capacity(load(DATA / "arbitrage_capacity"))

# %% F5
# bars: one run of each crowd; open diamonds: net P&L over the 10 seeds of `crowd_seeds`
crowds = load(DATA / "crowd_seeds")
seeds = {
    "Balanced crowd": crowds[crowds["param_retail_long_share"] == 0.5],
    "One-sided crowd": crowds[crowds["param_retail_long_share"] == 0.9],
}
fig = F.f5_wealth_by_channel({"Balanced crowd": default, "One-sided crowd": one_sided}, seeds)

# %% F6
# the paper draws `cascade`; here the same figure for china_rebar, one run, no seed intervals
fig = F.f6_liquidation_cascade(load_run(DATA / "runs" / "china_rebar"))

# %% F7
wti = load_run(DATA / "runs" / "wti_2020")
wti_seeds = load(DATA / "wti_seeds")
fig = F.f7_wti_replication(wti, wti_seeds, load_timeseries(DATA / "wti_seeds"))
# the claim of the replication: the deadline-day settlement is negative, like CLK20's, in
# every seed
assert (wti_seeds["settlement_deadline_day"] < 0).all()

# %% F8
fig = F.f8_sobol(pd.read_parquet(DATA / "sobol_main" / "sensitivity.parquet"))

# %% F9
fig = F.f9_stylized_facts(default)

# %% F10
fig = F.f10_comparative_statics(load(DATA / "harvest_statics"))

# %% F11
fig = F.f11_margin_effect(load(DATA / "margin_effect"), load(DATA / "margin_effect_rebar"))

# %% [markdown]
# ## Restyling one figure
# Any figure is an ordinary matplotlib figure: change it, then save it with `F.save`.

# %%
fig = F.f3_divergence_vs_lead(load(DATA / "forced_close_lead"))
fig.axes[0].set_title("Divergence and the deadline")
fig.set_size_inches(7.2, 3)
# F.save(fig, Path("my_figures"), "F3_restyled") writes it as PDF and PNG

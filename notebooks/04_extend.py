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
# # Extending the model
#
# Five things a Mesa user does with a model of someone else's:
#
# 1. write an agent of their own and see it trade,
# 2. swap the dominant hedger's pricing for a rule of their own,
# 3. compare the two over many seeds, with confidence intervals, paired on the seeds,
# 4. drive the run with a real daily spot series,
# 5. step the model by hand and look inside between steps,
# 6. give the retail crowd a decision rule of their own, per trader and as arrays.
#
# Under the test suite (`ABM_NOTEBOOK_SMALL=1`) the notebook runs the `small` scenario.

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from abm.agents import TraderAgent
from abm.agents.pricing import Estimating, Quote
from abm.exchange import BUY, SELL
from abm.model import MarketModel
from abm.results import paired_effect

SCENARIO = "small" if os.environ.get("ABM_NOTEBOOK_SMALL") else "default"
SEEDS = range(1, 11)  # 10 replicates, paired across arms

# %% [markdown]
# ## 1. An agent of your own
#
# Any `TraderAgent` subclass created in the model trades: the model activates its agents
# through Mesa's `AgentSet`s by type, each step, in two phases (`"quote"` for liquidity
# providers, then the broker's forced closes, then `"trade"` for everyone else). A subclass
# sets `label` (its class in the results), says whether it can make or take delivery, and
# implements `step()`.
#
# Here: a storage owner with delivery rights and room for `capacity` lots. It buys whenever the
# futures trade more than its delivery cost below spot (it takes delivery and sells the oil
# later at spot), and sells above spot plus its cost. It is one more firm of the competitive
# fringe. Its type is activated with a random stream of its own, so the run with it draws the
# same random numbers as the run without it: what differs is what its trades change (prices
# the crowd reacts to, lots it absorbs). One seed shows the mechanics; section 3 measures an
# effect over seeds.


# %%
class StorageOwner(TraderAgent):
    label = "storage_owner"

    def __init__(self, model, capacity=200, cost=1.0, clip=20):
        super().__init__(model, deposit=5e7, deliverable=True)
        self.capacity, self.cost, self.clip = capacity, cost, clip
        self.traded = 0  # lots, both sides

    def step(self):
        book, tick = self.exchange.book, self.exchange.contract.tick_size
        spot = self.model.spot
        room = self.capacity - self.account.net
        ask = book.best_ask
        if ask is not None and room > 0 and ask * tick < spot - self.cost:
            lots = min(self.clip, room)
            self.traded += self.exchange.submit(self.account, BUY, lots, ask, "ioc").filled
        bid = book.best_bid
        if bid is not None and self.account.net > -self.capacity and bid * tick > spot + self.cost:
            lots = min(self.clip, self.capacity + self.account.net)
            self.traded += self.exchange.submit(self.account, SELL, lots, bid, "ioc").filled


m = MarketModel(scenario=SCENARIO, rng=1)
owner = StorageOwner(m, capacity=200)
with_owner = m.run()
without = MarketModel(scenario=SCENARIO, rng=1).run()
print("lots the storage owner traded:", owner.traded)
print(with_owner.by_class[["pnl"]].round(0))
pd.DataFrame(
    {
        "without": pd.Series(without.summary),
        "with a storage owner": pd.Series(with_owner.summary),
    }
).loc[["harvest_discount", "ndnp_at_deadline", "transfer_retail_to_hedger_harvest_forced_close"]]

# %%
# the same agents can come from the config, with no code in the model:
#   [[agents]]
#   class = "mypackage.agents:StorageOwner"
#   n = 2
#   params = { capacity = 200 }
assert owner.traded > 0, "the storage owner never traded"
assert "storage_owner" in with_owner.by_class.index
fig = with_owner.plot(last_days=4)

# %% [markdown]
# ## 2. A pricing rule of your own
#
# The dominant hedger's quote for the crowd's exit is a decision object
# (`abm.agents.pricing`): `decide(view)` sees what the firm can observe (the competing
# ladder, what remains to be closed, its delivery curve, the band, the sessions left) and
# returns a `Quote(tick, lots, tag)` or nothing. Name your class in the config by import
# path. Here a thought experiment a regulator might run: the hedger prices as its desk
# estimates (the default policy), but may not bid more than `CAP` price units under fair
# value (or offer more than `CAP` above it), and where the optimum would wait for a lower
# band it must bid at the cap instead.

# %%
CAP = 1.0


class CappedEstimating(Estimating):
    name = "capped_estimating"

    def decide(self, view):
        q = super().decide(view)
        limit = round((view.fair - view.side * CAP) / view.tick_size)
        if q is None:  # where the optimum would wait for a lower band, it bids at the cap
            return Quote(limit, view.q, "capped") if view.q > 0 else None
        tick = max(q.tick, limit) if view.side > 0 else min(q.tick, limit)
        if tick == q.tick:
            return q
        # the cap binds: at the capped price it takes the crowd's whole need (anything it
        # left would clear further out against the fringe, beyond the cap)
        return Quote(tick, view.q, "capped")


capped = MarketModel(scenario=SCENARIO, rng=1, hedger__spread_policy="__main__:CappedEstimating")
capped.run().summary["harvest_discount"], without.summary["harvest_discount"]

# %% [markdown]
# ## 3. Many seeds, paired, with confidence intervals
#
# Replicate k of both arms uses seed k, so the crowd, the spot path and the noise are the
# same and only the rule differs: `paired_effect` takes the difference seed by seed.


# %%
def outcomes(**updates):
    rows = []
    for seed in SEEDS:
        s = MarketModel(scenario=SCENARIO, rng=seed, **updates).run().summary
        rows.append(
            {
                "seed": seed,
                "discount": s["harvest_discount"],
                "transfer": s["transfer_retail_to_hedger_harvest_forced_close"],
            }
        )
    return pd.DataFrame(rows).set_index("seed")


base = outcomes()
cap = outcomes(hedger__spread_policy="__main__:CappedEstimating")
effects = pd.DataFrame(
    {k: paired_effect(cap[k], base[k]) for k in ("discount", "transfer")}
).T
effects

# %%
fig, axes = plt.subplots(1, 2, figsize=(7.2, 2.8))
for ax, k in zip(axes, ("discount", "transfer"), strict=True):
    for i, df in enumerate((base, cap)):
        jitter = np.linspace(-0.1, 0.1, len(df))
        ax.scatter(np.full(len(df), i) + jitter, df[k], s=8, color=f"C{i}")
    for seed in base.index:
        ax.plot([0, 1], [base.loc[seed, k], cap.loc[seed, k]], color="0.8", lw=0.6, zorder=0)
    e = effects.loc[k]
    ax.set_xticks([0, 1], ["estimating", f"capped at {CAP}"])
    ax.set_title(f"{k}: paired effect {e['mean']:.3g} [{e['lo']:.3g}, {e['hi']:.3g}]", fontsize=8)
fig.suptitle(f"{SCENARIO}, n = {len(SEEDS)} seeds, lines join the same seed", fontsize=8)
fig.tight_layout()
assert effects.loc["discount", "hi"] <= 0  # a binding cap cannot raise the discount

# %% [markdown]
# ## 4. A real daily spot series
#
# `spot.kind = "csv"` reads a `spot` column. With one row per step it is used as is; with
# `spot.csv_resample = true` the rows are spread evenly over the run (first row = step 0, last
# = expiry) and interpolated: a daily file of `trading_days + 1` closes (the close before the
# first session, then each session's) puts each close on its session's last step. Any other
# evenly spaced frequency works the same way; `abm.spot.resample` is the helper.
#
# Replace the frame below with your own file, e.g. EIA's daily Cushing WTI spot (series
# RWTC) cut to the contract's last `trading_days + 1` sessions. The stand-in here is a
# synthetic daily series, written to a temporary CSV.

# %%
cfg = MarketModel(scenario=SCENARIO, rng=1).cfg
days = cfg.calendar.trading_days
closes = 100 * np.exp(np.cumsum(np.r_[0, np.random.default_rng(3).normal(0, 0.02, days)]))
daily = pd.DataFrame(
    {"date": pd.bdate_range("2020-03-23", periods=days + 1).date, "spot": closes.round(2)}
)
csv = Path(tempfile.mkdtemp()) / "daily_spot.csv"
daily.to_csv(csv, index=False)

model = MarketModel(
    scenario=SCENARIO,
    rng=1,
    spot__kind="csv",
    spot__csv_path=str(csv),
    spot__csv_resample=True,
    spot__initial=float(closes[0]),
)
real = model.run()
spd = cfg.calendar.steps_per_day
# each session's last step carries that day's close (step 0: the close before the first)
assert np.allclose(model.spot_path[::spd], daily["spot"])
fig = real.plot()

# %% [markdown]
# ## 5. Stepping by hand
#
# `model.step()` advances one step; between steps everything is open to inspection: the
# book, any account, the crowd's NDNP. Here we stop at every step of the last day before the
# deadline and record the best quotes and the crowd's position, then let `run()` finish.

# %%
m = MarketModel(scenario=SCENARIO, rng=1)
deadline = m.exchange.calendar.deadline_step
tick = m.exchange.contract.tick_size
rows = []
while m.step_index < deadline:
    m.step()
    if m.step_index >= deadline - spd:
        b = m.exchange.book
        rows.append(
            {
                "step": m.step_index,
                "spot": m.spot,
                "best_bid": None if b.best_bid is None else b.best_bid * tick,
                "best_ask": None if b.best_ask is None else b.best_ask * tick,
                "ndnp": m.exchange.clearing.ndnp,
            }
        )
last_day = pd.DataFrame(rows).set_index("step")
result = m.run()  # finishes the run from where we stopped
fig, ax = plt.subplots(figsize=(7.2, 2.6))
ax.plot(last_day.index, last_day["spot"], label="spot")
ax.step(last_day.index, last_day["best_bid"], where="post", label="best bid")
ax.step(last_day.index, last_day["best_ask"], where="post", label="best ask")
ax.set_xlabel("step")
ax.set_ylabel("price")
ax.legend(fontsize=7, frameon=False)
ax.set_title("the last session before the forced-close deadline", fontsize=8)
assert abs(result.summary["ledger_residual"]) < 1e-6

# %% [markdown]
# ## 6. A crowd rule of your own, per trader and as arrays
#
# `retail.rules` names the crowd's decision rule. A subclass of `RetailRules` changes `act`
# (one trader, per-agent engine) and, to run on the netted engine that takes a crowd to a
# million traders, `act_many` with it: it receives the customers whose clock fired as arrays
# (`Acting`: lots, equity at the mark, deposits, uniforms, ...) and returns their `Actions`
# (stop, start closing, lots to add or reduce). A rule that changes only `act` still runs on
# `retail.engine = "netted"`, on the per-agent engine, with a warning saying so.
#
# Here: nervous traders, who cut the whole position once they have lost a fifth of their
# deposit (the shipped stop-loss waits for half), and otherwise trade as the shipped rule.

# %%
from abm.agents.retail import Actions, RetailRules  # noqa: E402


class Nervous(RetailRules):
    name = "nervous"
    cut = 0.2  # share of the deposit lost that makes a trader cut

    def act(self, trader, u):
        acc, ex = trader.account, trader.exchange
        loss = acc.deposits - acc.equity(ex.mark, ex.contract.multiplier)
        if acc.lots and loss > self.cut * acc.deposits:
            trader.state = "stopped"
            trader.close_now()
            return
        super().act(trader, u)

    def act_many(self, t):
        shipped = super().act_many(t)
        cut = (t.lots > 0) & (t.deposits - t.equity > self.cut * t.deposits)
        stop = shipped.stop | cut
        closing = shipped.start_closing & ~stop
        qty = np.where(stop | closing, 0, shipped.qty)
        return Actions(stop, closing, qty)


netted = {"retail__engine": "netted"}
arms = {
    "shipped": MarketModel(scenario=SCENARIO, rng=1, **netted).run(),
    "nervous": MarketModel(
        scenario=SCENARIO, rng=1, retail__rules="__main__:Nervous", **netted
    ).run(),
}
shown = ["n_margin_calls", "n_liquidations"]
table = pd.DataFrame({k: [r.summary[m] for m in shown] for k, r in arms.items()}, index=shown)
fig, ax = plt.subplots(figsize=(5.5, 2.4))
table.plot.barh(ax=ax)
n = arms["shipped"].summary["n_retail"]
ax.set_title(f"{n:,} traders on the netted engine, seed 1", fontsize=8)
ax.legend(fontsize=7, frameon=False)
for r in arms.values():
    assert abs(r.summary["ledger_residual"]) < 1e-6
# nervous traders cut before the broker has to: fewer of them are liquidated
assert table.loc["n_liquidations", "nervous"] < table.loc["n_liquidations", "shipped"]

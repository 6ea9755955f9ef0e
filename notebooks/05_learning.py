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
# # A firm that learns to price the forced close
#
# `abm.env.HarvestEnv` is a Gymnasium environment in which a learning agent plays the firm
# that prices the crowd's forced exit. The observation is a desk's view (the crowd's side and
# need as the brokers report it, the firm's own position, the sessions left, how far the band
# lets the price go, and the competing volume to 5 levels of the book); the action is the
# discount it bids at, as a fraction of `max_discount`; the reward is the change of its
# equity. Every other agent of the scenario is the world.
#
# The market here is the interior regime of `harvest_discovered`: the small market, a 90 % long
# crowd, a ±50 % band that does not bind, and a fringe that shows 3 levels of its cost ladder
# at a time. We train a policy and hold the discount it learns against the ex-ante theory.
#
# **Which trainer.** With the optional extra `rl` installed (`pip install -e .[rl]`:
# stable-baselines3, which needs torch, too heavy for the test suite) the notebook trains PPO.
# Without it, it runs the cross-entropy method over the discount (a bandit across episodes: a
# Gaussian over the action, refitted to the best quarter of each generation), which needs only
# numpy. Both learn from episodes of the same environment, and both curves are drawn the same
# way. Under the test suite (`ABM_NOTEBOOK_SMALL=1`) the training is shortened.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from gymnasium.utils.env_checker import check_env

from abm.env import HarvestEnv
from abm.metrics import summarize
from abm.statistics import mean_ci

SMALL = bool(os.environ.get("ABM_NOTEBOOK_SMALL"))
MARKET = {
    "retail.long_share": 0.9,
    "contract.price_limit": 0.5,
    "commercials.show_levels": 3,
}
MAX_DISCOUNT = 60.0
env = HarvestEnv("small", MARKET, depth=5, max_discount=MAX_DISCOUNT, reward_scale=1e4)
check_env(env, skip_render_check=True)  # the Gymnasium API contract, as the suite checks it
env.observation_names

# %% [markdown]
# ## 1. One episode by hand
#
# A constant action: bid for the crowd's need at a third of `MAX_DISCOUNT` at every decision.


# %%
def episode(env, act, seed):
    """Play one episode with ``act(obs) -> action``; return its total reward and summary."""
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        obs, r, terminated, truncated, _ = env.step(act(obs))
        total += r
        done = terminated or truncated
    return total, summarize(env.model).summary


ret, s = episode(env, lambda o: np.array([1 / 3], np.float32), seed=1)
ret, s["harvest_discount_vwap"], s["theory_ex_ante_divergence"], s["regime"]

# %% [markdown]
# ## 2. Training
#
# Each generation (or PPO rollout) plays whole episodes on fresh seeds; the learning curve is
# the mean episode return (money / 10⁴) per generation.

# %%
try:
    from stable_baselines3 import PPO  # the optional extra `rl`
except ImportError:
    PPO = None

GENERATIONS = 4 if SMALL else 15
POPULATION = 6 if SMALL else 16
rng = np.random.default_rng(7)
curve = []
if PPO is not None:
    from stable_baselines3.common.monitor import Monitor

    monitored = Monitor(env)
    agent = PPO("MlpPolicy", monitored, n_steps=64, batch_size=32, seed=7, verbose=0)
    agent.learn(total_timesteps=GENERATIONS * POPULATION * 25)
    rewards = np.asarray(monitored.get_episode_rewards())
    chunks = np.array_split(rewards, GENERATIONS)
    curve = [
        {"generation": g, "return": float(c.mean()), "sd": float(c.std())}
        for g, c in enumerate(chunks)
    ]
    trainer = "PPO (stable-baselines3)"

    def learned(obs):
        return agent.predict(obs, deterministic=True)[0]
else:
    mu, sigma = 0.5, 0.25  # the Gaussian over the action (a fraction of MAX_DISCOUNT)
    seed = 100
    for g in range(GENERATIONS):
        actions = np.clip(rng.normal(mu, sigma, POPULATION), 0.0, 1.0)
        returns = []
        for a in actions:
            seed += 1
            returns.append(episode(env, lambda o, a=a: np.array([a], np.float32), seed)[0])
        returns = np.array(returns)
        elite = actions[np.argsort(returns)[-max(2, POPULATION // 4) :]]
        mu, sigma = float(elite.mean()), max(0.02, float(elite.std()))
        curve.append({"generation": g, "return": returns.mean(), "sd": returns.std(), "mu": mu})
    trainer = "cross-entropy method (numpy)"

    def learned(obs):
        return np.array([mu], np.float32)


curve = pd.DataFrame(curve)
fig, ax = plt.subplots(figsize=(4.5, 2.6))
ax.errorbar(curve["generation"], curve["return"], yerr=curve["sd"], marker="o", ms=3, capsize=2)
ax.set_xlabel("generation")
ax.set_ylabel("episode return (money / 10⁴)")
ax.set_title(f"learning curve: {trainer}, {POPULATION} episodes a generation", fontsize=8)
fig.tight_layout()
print(curve.round(3).to_string(index=False))

# %% [markdown]
# ## 3. The learned discount against the theory
#
# The learned policy plays fresh seeds; on the same seeds the desk's estimating policy (the
# model's default) and the ex-ante theory (computed when the harvest window opens) give
# theirs. Mean and 95 % interval, paired on the seeds.

# %%
from abm.model import MarketModel  # noqa: E402
from abm.scenarios import load  # noqa: E402

SEEDS = range(1, 4) if SMALL else range(1, 11)
rows = []
for seed in SEEDS:
    _, s = episode(env, learned, seed=1000 + seed)
    run_seed = int(s["seed"])  # the run the environment drew for this episode
    est = MarketModel(load("small", {**MARKET, "seed": run_seed})).run().summary
    rows.append(
        {
            "seed": run_seed,
            "learned": s["harvest_discount_vwap"],
            "estimating": est["harvest_discount_vwap"],
            "ex-ante theory": s["theory_ex_ante_divergence"],
        }
    )
table = pd.DataFrame(rows).set_index("seed")
summary = pd.DataFrame({k: mean_ci(table[k].to_numpy()) for k in table}).T
summary

# %%
fig, ax = plt.subplots(figsize=(4.5, 2.6))
for i, k in enumerate(table):
    m = summary.loc[k]
    ax.errorbar(
        [i], [m["mean"]], yerr=[[m["mean"] - m["lo"]], [m["hi"] - m["mean"]]], fmt="o", capsize=3
    )
    ax.scatter(
        np.full(len(table), i) + np.linspace(-0.1, 0.1, len(table)), table[k], s=6, color="0.6"
    )
ax.set_xticks(range(len(table.columns)), table.columns)
ax.set_ylabel("discount at the forced close\n(VWAP, price units)")
ax.set_title(f"n = {len(table)} seeds, the same for all three", fontsize=8)
fig.tight_layout()
assert np.isfinite(table.to_numpy()).all()

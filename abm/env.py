"""A Gymnasium environment in which an external policy plays the firm that prices the forced close.

`HarvestEnv` wraps one run of a scenario. The first firm's harvest policy is replaced by
`ExternalPolicy`, which quotes the discount the learning agent chose; every other agent of
the scenario is the world. An episode is one run (one contract to expiry). A decision is
asked whenever the firm prices the crowd's exit (each step of the harvest window in which
the crowd holds a net position); between decisions the model runs on its own.

**Observation** (what a desk sees, nothing more; ``float32``, see `HarvestEnv.observation_names`):
the crowd's side (+1: the crowd is net long, the firm buys), the lots to harvest as the firm
estimates them (the broker's aggregate with ``hedger.knows_ndnp``, else its own netted
position), the firm's own net position, the sessions left before expiry, how far the band
lets the price go today (as a discount, price units; the cap when unbounded), and the
``depth`` best levels of the competing volume visible in the book on the firm's side, each
as (discount against fair value, lots), padded with zeros. It never contains another
account's cost curve or position.

**Action**: the discount at which the firm bids for (or offers to) the crowd's whole need, as a
fraction of ``max_discount`` in ``[0, 1]`` (a normalised box, as learning libraries prefer);
quoted on the tick grid and within the band.

**Reward**: the change of the firm's equity (money) since the last decision, divided by
``reward_scale``; the last step adds what expiry and delivery bring.

`HarvestParallelEnv` does the same for every firm of a scenario with several
(``hedger.n_firms``), through PettingZoo's parallel API: each firm an agent with its own desk
view, action and reward.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from abm.agents.pricing import HarvestView, Quote
from abm.model import MarketModel
from abm.scenarios import load

__all__ = ["ExternalPolicy", "HarvestEnv", "HarvestParallelEnv"]

#: bounds of the observation: lots and prices (price units) no config reaches
LOTS, PRICE = 1e9, 1e6


def _observation_space(depth: int) -> spaces.Box:
    """The desk's observation: side, lots to harvest, own net, sessions left, band reach, then
    ``depth`` × (discount, lots); finite bounds well beyond any market the config allows."""
    low = [-1.0, 0.0, -LOTS, 0.0, -PRICE] + [-PRICE, 0.0] * depth
    high = [1.0, LOTS, LOTS, 1e4, PRICE] + [PRICE, LOTS] * depth
    return spaces.Box(np.array(low, np.float32), np.array(high, np.float32), dtype=np.float32)


def _observe(view: HarvestView, own_net: int, depth: int, max_discount: float) -> np.ndarray:
    """The observation vector of what a firm saw at its last decision (``view``)."""
    levels = np.zeros(2 * depth, np.float32)
    for k, (tick, lots) in enumerate(view.ladder[:depth]):
        levels[2 * k] = view.discount(tick)
        levels[2 * k + 1] = lots
    reach = max_discount if view.worst is None else view.discount(view.worst)
    head = [view.side, view.q, own_net, view.sessions_left, reach]
    return np.concatenate([np.asarray(head, np.float32), levels])


def _world(scenario: str, updates, depth: int, max_discount: float):
    """The checked arguments of an environment: its config updates with every firm's policy set
    to `ExternalPolicy`, and the config they give (a bad scenario or update fails here, not at
    reset)."""
    if depth < 1:
        raise ValueError(f"depth = {depth}: allowed 1 or more visible levels")
    if not max_discount > 0:
        raise ValueError(f"max_discount = {max_discount}: allowed > 0 (price units)")
    full = {**(updates or {}), "hedger.spread_policy": "abm.env:ExternalPolicy"}
    return full, load(scenario, full)


class ExternalPolicy:
    """A harvest policy whose decision comes from outside (the environment's action)."""

    name = "external"
    harvests = True
    shows_quote_size = False
    theory = "cournot"

    def __init__(self) -> None:
        self.discount = 0.0  # price units; set by the environment before the model steps
        self.asked = 0  # decisions taken since the environment last looked
        self.view: HarvestView | None = None  # what the firm saw at its last decision

    def decide(self, view: HarvestView) -> Quote | None:
        self.view = view
        self.asked += 1
        tick = round((view.fair - view.side * self.discount) / view.tick_size)
        return Quote(tick, view.q, "external")


class HarvestEnv(gym.Env):
    """One firm's harvest decisions in a run of ``scenario`` (see the module docstring).

    ``updates`` are config updates applied to the scenario (e.g. a smaller crowd); the first
    firm's ``hedger.spread_policy`` is set to `ExternalPolicy`. ``depth`` is how many visible
    levels of competing volume the observation holds; ``max_discount`` bounds the action
    (price units): the action is a fraction of it. Seeded through ``reset(seed=...)``: the
    same seed gives the same run.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        scenario: str = "small",
        updates: dict[str, Any] | None = None,
        depth: int = 5,
        max_discount: float = 30.0,
        reward_scale: float = 1000.0,
    ) -> None:
        self.scenario = scenario
        self.updates, cfg = _world(scenario, updates, depth, max_discount)
        if cfg.hedger.n_firms != 1:
            # every firm takes the configured policy: with several, the others would quote
            # the external policy's default instead of their own
            raise ValueError(
                f"hedger.n_firms = {cfg.hedger.n_firms}: HarvestEnv plays the one firm of a "
                "scenario; set hedger.n_firms = 1, or use HarvestParallelEnv (every firm an "
                "agent, PettingZoo's parallel API)"
            )
        self.depth = depth
        self.max_discount = float(max_discount)
        self.reward_scale = float(reward_scale)
        n = 5 + 2 * depth
        self.observation_space = _observation_space(depth)
        self.action_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.model: MarketModel | None = None
        self._equity = 0.0
        self._obs = np.zeros(n, np.float32)

    @property
    def observation_names(self) -> list[str]:
        levels = [f"{what}_{k}" for k in range(1, self.depth + 1) for what in ("discount", "lots")]
        return ["side", "lots_to_harvest", "own_net", "sessions_left", "band_reach", *levels]

    # -- the gymnasium API -----------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        run_seed = int(self.np_random.integers(0, 2**63 - 1))
        self.model = MarketModel(load(self.scenario, {**self.updates, "seed": run_seed}))
        self._policy.asked = 0
        self._equity = self._firm_equity()
        self._advance()
        return self._obs.copy(), self._info()

    def step(self, action):
        if self.model is None:
            raise RuntimeError("call reset() before step()")
        a = float(np.clip(np.asarray(action, float).reshape(-1)[0], 0.0, 1.0))
        self._policy.discount = a * self.max_discount
        self._advance()
        equity = self._firm_equity()
        reward = (equity - self._equity) / self.reward_scale
        self._equity = equity
        terminated = not self.model.running
        return self._obs.copy(), float(reward), terminated, False, self._info()

    # -- inside ------------------------------------------------------------------------------
    @property
    def _policy(self) -> ExternalPolicy:
        assert self.model is not None
        return self.model.hedgers[0].pricing

    def _firm_equity(self) -> float:
        assert self.model is not None
        ex = self.model.exchange
        acc = self.model.hedgers[0].account
        return acc.equity(ex.mark, ex.contract.multiplier)

    def _advance(self) -> None:
        """Step the model until the firm has taken one decision with the current action (or
        the run ends), and observe what it saw."""
        model, policy = self.model, self._policy
        assert model is not None
        policy.asked = 0
        while model.running and policy.asked == 0:
            model.step()
        if policy.view is not None:
            self._obs = self._observe(policy.view)

    def _observe(self, view: HarvestView) -> np.ndarray:
        net = self.model.hedgers[0].account.net
        return _observe(view, net, self.depth, self.max_discount)

    def _info(self) -> dict[str, Any]:
        model = self.model
        assert model is not None
        return {"step": model.step_index, "decisions": self._policy.asked}


class HarvestParallelEnv(ParallelEnv):
    """Several firms' harvest decisions in one run, through PettingZoo's parallel API: every
    firm of ``scenario`` (``hedger.n_firms``) is an agent, ``firm_0`` … ``firm_{n−1}``, each
    with `HarvestEnv`'s desk-view observation of its own, its discount as its action and its
    own equity change as its reward; the rest of the scenario is the world. A step sets every
    live firm's discount and runs the model through the next step in which the firms price
    the crowd's exit (they all decide in that step). Firms know each other only through their
    quotes in the book: no observation holds a rival's position or curve."""

    metadata = {"render_modes": [], "name": "abm_harvest_v0"}

    def __init__(
        self,
        scenario: str = "small",
        updates: dict[str, Any] | None = None,
        depth: int = 5,
        max_discount: float = 30.0,
        reward_scale: float = 1000.0,
    ) -> None:
        self.scenario = scenario
        self.updates, cfg = _world(scenario, updates, depth, max_discount)
        if not cfg.hedger.enabled:
            raise ValueError("hedger.enabled = false: there is no firm to play")
        self.depth = depth
        self.max_discount = float(max_discount)
        self.reward_scale = float(reward_scale)
        self.possible_agents = [f"firm_{i}" for i in range(cfg.hedger.n_firms)]
        self.agents: list[str] = []
        # one space object per agent, the same on every call (the API requires it)
        self._obs_space = _observation_space(depth)
        self._act_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.model: MarketModel | None = None
        self._equity: dict[str, float] = {}
        self._obs: dict[str, np.ndarray] = {}

    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Box:
        return self._act_space

    def reset(self, seed: int | None = None, options: dict | None = None):
        rng = np.random.default_rng(seed)
        run_seed = int(rng.integers(0, 2**63 - 1))
        self.model = MarketModel(load(self.scenario, {**self.updates, "seed": run_seed}))
        self.agents = list(self.possible_agents)
        self._obs = {a: np.zeros(self._obs_space.shape, np.float32) for a in self.agents}
        self._equity = {a: self._firm_equity(a) for a in self.agents}
        self._advance()
        return {a: self._obs[a].copy() for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]):
        if self.model is None:
            raise RuntimeError("call reset() before step()")
        for agent, action in actions.items():
            a = float(np.clip(np.asarray(action, float).reshape(-1)[0], 0.0, 1.0))
            self._policy(agent).discount = a * self.max_discount
        self._advance()
        rewards = {}
        for agent in self.agents:
            equity = self._firm_equity(agent)
            rewards[agent] = float((equity - self._equity[agent]) / self.reward_scale)
            self._equity[agent] = equity
        done = not self.model.running
        obs = {a: self._obs[a].copy() for a in self.agents}
        terminations = {a: done for a in self.agents}
        truncations = {a: False for a in self.agents}
        infos = {a: {"step": self.model.step_index} for a in self.agents}
        if done:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    # -- inside ------------------------------------------------------------------------------
    def _firm(self, agent: str):
        assert self.model is not None
        return self.model.hedgers[self.possible_agents.index(agent)]

    def _policy(self, agent: str) -> ExternalPolicy:
        return self._firm(agent).pricing

    def _firm_equity(self, agent: str) -> float:
        assert self.model is not None
        ex = self.model.exchange
        return self._firm(agent).account.equity(ex.mark, ex.contract.multiplier)

    def _advance(self) -> None:
        """Run the model through the next step in which any firm priced the crowd's exit (or
        to the end), and observe what each firm saw when it last decided."""
        model = self.model
        assert model is not None
        policies = [self._policy(a) for a in self.possible_agents]
        for p in policies:
            p.asked = 0
        while model.running and not any(p.asked for p in policies):
            model.step()
        for agent, p in zip(self.possible_agents, policies, strict=True):
            if p.view is not None:
                self._obs[agent] = _observe(
                    p.view, self._firm(agent).account.net, self.depth, self.max_discount
                )

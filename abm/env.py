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
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from abm.agents.pricing import HarvestView, Quote
from abm.model import MarketModel
from abm.scenarios import load

__all__ = ["ExternalPolicy", "HarvestEnv"]

#: bounds of the observation: lots and prices (price units) no config reaches
LOTS, PRICE = 1e9, 1e6


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
        if depth < 1:
            raise ValueError(f"depth = {depth}: allowed 1 or more visible levels")
        if not max_discount > 0:
            raise ValueError(f"max_discount = {max_discount}: allowed > 0 (price units)")
        self.scenario = scenario
        self.updates = {**(updates or {}), "hedger.spread_policy": "abm.env:ExternalPolicy"}
        cfg = load(scenario, self.updates)  # a bad scenario or update fails here, not at reset
        if cfg.hedger.n_firms != 1:
            # every firm takes the configured policy: with several, the others would quote
            # the external policy's default instead of their own
            raise ValueError(
                f"hedger.n_firms = {cfg.hedger.n_firms}: HarvestEnv plays the one firm of a "
                "scenario; set hedger.n_firms = 1 (several firms need a multi-agent API)"
            )
        self.depth = depth
        self.max_discount = float(max_discount)
        self.reward_scale = float(reward_scale)
        n = 5 + 2 * depth
        # finite bounds well beyond any market the config allows (lots ≤ 1e9, prices ≤ 1e6)
        low = [-1.0, 0.0, -LOTS, 0.0, -PRICE] + [-PRICE, 0.0] * depth
        high = [1.0, LOTS, LOTS, 1e4, PRICE] + [PRICE, LOTS] * depth
        self.observation_space = spaces.Box(
            np.array(low, np.float32), np.array(high, np.float32), dtype=np.float32
        )
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
        levels = np.zeros(2 * self.depth, np.float32)
        for k, (tick, lots) in enumerate(view.ladder[: self.depth]):
            levels[2 * k] = view.discount(tick)
            levels[2 * k + 1] = lots
        reach = self.max_discount if view.worst is None else view.discount(view.worst)
        head = [view.side, view.q, self.model.hedgers[0].account.net, view.sessions_left, reach]
        return np.concatenate([np.asarray(head, np.float32), levels])

    def _info(self) -> dict[str, Any]:
        model = self.model
        assert model is not None
        return {"step": model.step_index, "decisions": self._policy.asked}

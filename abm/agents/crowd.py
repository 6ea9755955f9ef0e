"""The retail crowd: its traders, their shared parameters and rules, and their schedule.

The crowd draws its traders once (directions, deposits, leverage, who follows trends, when each
opens and starts closing) from a random stream of its own, and acts for them each step in the
model's trade phase ([`Crowd.step()`][abm.agents.crowd.Crowd.step]): closers re-post their patient
close orders at each day's start, the scheduled actions of the step run (openings, starts of
voluntary closing), then the traders whose Poisson clock fires act. It holds what its traders share
and nothing any other agent reads: the ``[retail]`` parameters, the decision rules, the agenda, the
traders closing, and the trend signal its trend followers see.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from abm.agents.retail import RetailRules, RetailTrader

if TYPE_CHECKING:
    from abm.model import MarketModel


@dataclass
class Population:
    """The crowd's traders as drawn, one array entry each: ``direction`` (+1 long, −1
    short), ``deposit`` (money), ``leverage``, ``trend`` (follows trends), ``open_step`` and
    ``close_step`` (the step it starts closing; −1: it waits for the forced close)."""

    direction: np.ndarray
    deposit: np.ndarray
    leverage: np.ndarray
    trend: np.ndarray
    open_step: np.ndarray
    close_step: np.ndarray


def draw_population(
    model: MarketModel, cfg: Any, rng: np.random.Generator, holds_in_harvest: bool
) -> Population:
    """Draw the traders of a crowd with the ``[retail]`` parameters ``cfg`` from ``rng`` (the
    crowd's own stream): both crowd engines draw the same traders from the same seed."""
    ex = model.exchange
    cal = ex.calendar
    n = cfg.n_traders
    if n == 0:
        e = np.zeros(0, dtype=np.int64)
        return Population(e, np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool), e, e)
    n_long = int(round(cfg.long_share * n))
    direction = np.full(n, -1)
    direction[rng.permutation(n)[:n_long]] = 1
    deposit = cfg.capital_median * np.exp(cfg.capital_dispersion * rng.standard_normal(n))
    if cfg.leverage_mode == "margin":  # a fraction of what the margin allows
        leverage = rng.uniform(cfg.leverage_fraction_min, cfg.leverage_fraction_max, n)
    else:
        leverage = rng.uniform(cfg.leverage_min, cfg.leverage_max, n)
    trend = rng.random(n) < cfg.trend_share
    spd = cal.steps_per_day
    open_span = max(1, int(cfg.opening_days * spd))
    open_step = rng.integers(0, open_span, n)
    deadline = cal.deadline_step
    window = int(round(cfg.close_window_days * spd))
    voluntary = rng.random(n) < cfg.voluntary_close_share
    # with an NDNP target the crowd's voluntary closes fall before the harvest window, so
    # the late flow's target is not undone by closes it cannot offset during the harvest
    end = max(1, ex.harvest_start_step) if holds_in_harvest else deadline
    close_draw = end - 1 - rng.integers(0, max(window, 1), n)
    if window > 0:
        close_step = np.where(voluntary, np.maximum(close_draw, open_step + 1), -1)
    else:
        close_step = np.full(n, -1)
    return Population(direction, deposit, leverage, trend, open_step, close_step)


class Crowd:
    """The retail traders of a model, as one scheduled population.

    ``params`` is the ``[retail]`` section (any object with its fields), ``rules`` the
    decision rules every trader follows ([`RetailRules`][abm.agents.retail.RetailRules]). With
    ``holds_in_harvest`` (an experiment that sets the NDNP) the traders' voluntary closes fall
    before the harvest window and they hold through it.
    """

    def __init__(
        self, model: MarketModel, params: Any, rules: RetailRules, holds_in_harvest: bool = False
    ):
        self.model = model
        self.params = params
        self.rules = rules
        self.holds_in_harvest = holds_in_harvest
        #: step -> actions scheduled for it (openings, starts of voluntary closing)
        self.agenda: dict[int, list[Callable[[], None]]] = defaultdict(list)
        #: traders re-posting a patient close order each morning until filled or forced
        self.closing: set[RetailTrader] = set()
        #: what trend followers see: the futures change over their horizon (price units),
        #: fixed within the step
        self.trend_signal = 0.0
        #: lots the traders opened with (their opening orders), over the run
        self.lots_opened = 0
        #: moving averages of the absolute futures change per step (price units): recent and
        #: usual, for the attention rule; and the activity in force this step (probability)
        self.fast_move = self.slow_move = 0.0
        self.activity = params.activity
        #: firings of the traders' Poisson clocks over the run (each one a `RetailTrader.step`)
        self.activations = 0
        self.traders: list[RetailTrader] = self._draw(model.stream("crowd"))

    def _draw(self, rng: np.random.Generator) -> list[RetailTrader]:
        """Create the traders from the crowd's own random stream and schedule their
        openings and voluntary closes."""
        pop = draw_population(self.model, self.params, rng, self.holds_in_harvest)
        n = len(pop.direction)
        if n == 0:
            return []
        deadline = self.model.exchange.calendar.deadline_step
        close_step = [None if c < 0 else c for c in pop.close_step.tolist()]
        # .tolist() gives Python floats and ints: numpy scalars would make every later
        # booking on these accounts numpy scalar arithmetic (same values, several times slower)
        agents = RetailTrader.create_agents(
            self.model,
            n,
            crowd=[self] * n,
            deposit=pop.deposit.tolist(),
            direction=pop.direction.tolist(),
            leverage=pop.leverage.tolist(),
            trend=pop.trend.tolist(),
            open_step=pop.open_step.tolist(),
            close_step=close_step,
        )
        traders = agents.to_list()
        for t in traders:
            self.agenda[int(t.open_step)].append(t.open_position)
            if t.close_step is not None and t.close_step < deadline:
                self.agenda[int(t.close_step)].append(t.start_closing)
        return traders

    def __len__(self) -> int:
        return len(self.traders)

    def step(self) -> None:
        """The crowd's step: closers re-post their patient close orders at each day's start,
        the scheduled actions of the step run, then the traders whose Poisson clock fires act
        — their number drawn binomially, the traders uniformly and their five uniforms each
        in bulk from the model's generator, so a run is reproducible and 100,000 idle traders
        cost nothing."""
        model = self.model
        step = model.step_index
        self.trend_signal = model.recent_return(self.params.trend_lookback_steps)
        if model.exchange.calendar.is_day_start(step) and self.closing:
            for t in sorted(self.closing, key=lambda a: a.unique_id):
                t.post_close()
                if t.state == "done":
                    self.closing.discard(t)
        for action in self.agenda.pop(step, ()):
            action()
        crowd = self.traders
        if not crowd:
            return
        rng = model.rng
        self.activity = self._activity(step) if self.params.attention else self.params.activity
        k = rng.binomial(len(crowd), self.activity)
        self.activations += k
        if k:
            who = rng.integers(0, len(crowd), k).tolist()
            draws = rng.random((k, 5)).tolist()
            for i, u in zip(who, draws, strict=True):
                crowd[i].step(u)

    def _activity(self, step: int) -> float:
        """The trading probability this step under attention: traders look at the market more
        when it has moved more than usual (attention-driven trading, Barber & Odean 2008), so
        activity = activity × (1 + attention × (fast / slow − 1)), from moving averages of the
        absolute futures change per step with half-lives ``attention_fast_steps`` and
        ``attention_slow_steps``; floored at 0, capped at ``attention_cap`` × activity.
        More orders after a large move make large moves cluster, the mechanism of volatility
        clustering argued in ODD §4."""
        p = self.params
        if step >= 2:
            move = abs(self.model.futures[step - 1] - self.model.futures[step - 2])
            if move != move:  # no trade yet: nothing seen
                move = 0.0
            if self.slow_move == 0.0:  # the first move seeds both averages
                self.fast_move = self.slow_move = move
            else:
                a = 0.5 ** (1 / p.attention_fast_steps)
                b = 0.5 ** (1 / p.attention_slow_steps)
                self.fast_move = a * self.fast_move + (1 - a) * move
                self.slow_move = b * self.slow_move + (1 - b) * move
        if self.slow_move <= 0:
            return p.activity
        m = 1 + p.attention * (self.fast_move / self.slow_move - 1)
        return min(min(max(m, 0.0), p.attention_cap) * p.activity, 1.0)


class Roster:
    """A crowd's traders as a sequence of views (``len``, indexing, iteration), each built on
    demand as ``view(crowd, i)``: a million traders cost nothing until read. ``noun`` names
    one in errors."""

    def __init__(self, crowd: Any, view: Callable[[Any, int], Any], noun: str):
        self.crowd, self.view, self.noun = crowd, view, noun

    def __len__(self) -> int:
        return self.crowd.n

    def __bool__(self) -> bool:
        return self.crowd.n > 0

    def __getitem__(self, i: int):
        n = self.crowd.n
        if not -n <= i < n:
            raise IndexError(f"{self.noun} {i}: the crowd has {n}")
        return self.view(self.crowd, i % n)

    def __iter__(self):
        return (self.view(self.crowd, i) for i in range(self.crowd.n))

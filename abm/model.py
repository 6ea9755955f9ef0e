"""MarketModel: the Mesa model that runs the market a config describes, and collects its data.

One step is one slot of the order book; [`MarketModel.step()`][abm.model.MarketModel.step] lists
what happens in it, in order. After the last step the contract expires and is delivered against
spot. The exchange and the agents are built from the config by [`abm.build`][abm.build].
"""

from __future__ import annotations

import gc
import math
import time
import zlib
from collections.abc import Callable
from typing import Any

import mesa
import numpy as np

from abm import build
from abm.agents import (
    Commercial,
    DeliveryArbitrageur,
    DominantHedger,
    MarketMaker,
    RetailTrader,
    TargetFlow,
    TraderAgent,
)
from abm.config import RunConfig
from abm.schema import CLASSES
from abm.spot import fair_value, make_spot_path

DEPTH_LEVELS = 10
DEPTH_EVERY = 10
#: the built-in agent types, which [`MarketModel.step()`][abm.model.MarketModel.step] activates
#: by name; any other `TraderAgent` type in the model acts after them in the phases it declares
BUILT_IN_TYPES: frozenset[type] = frozenset(
    {DeliveryArbitrageur, Commercial, DominantHedger, MarketMaker, RetailTrader, TargetFlow}
)


class MarketModel(mesa.Model):
    """The harvest model. ``MarketModel(cfg)`` or ``MarketModel(cfg, margin_rate=0.2, ...)``
    (updates by short name, or by path with double underscores: ``retail__long_share=0.8``);
    ``MarketModel(scenario="one_sided", rng=3)``; ``model.run()`` returns a
    [`RunResult`][abm.results.RunResult].

    Each step ([`step()`][abm.model.MarketModel.step]): the exchange opens it; the agents of the
    ``"quote"`` phase act by type in ascending priority — the fringe (arbitrageurs, then
    commercials quote their cost curves), the firms (the hedger prices against them), the market
    maker, then any other quoting type; the broker works its forced closes and liquidations against
    those quotes; the agents of the ``"trade"`` phase act — commercials trade for their business,
    the retail crowd (closers re-post, scheduled openings and closings, the Poisson clock),
    then types added by the user (a ``TraderAgent`` subclass steps once, in random order);
    the exchange closes the step (at the day's end: settlement, mark-to-market, margin calls,
    invariants). Activation goes through Mesa's ``agents_by_type`` AgentSets, so an agent of
    any subclass created in the model trades (see [`TraderAgent`][abm.agents.base.TraderAgent]).

    ``rng`` or ``seed`` (as ``mesa.batch_run`` passes them) override the config's seed; None
    keeps it, so a run is always reproducible.
    """

    def __init__(
        self,
        config: RunConfig | None = None,
        *,
        scenario: str | None = None,
        rng: int | None = None,
        seed: int | None = None,
        **updates: Any,
    ):
        if config is not None and scenario is not None:
            raise ValueError("give a config or a scenario name, not both")
        if scenario is not None:
            from abm.scenarios import load  # above the model: imported when asked for

            cfg = load(scenario)
        else:
            cfg = config if config is not None else RunConfig()
        for name, value in (("rng", rng), ("seed", seed)):
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int | np.integer):
                    raise ValueError(
                        f"{name} = {value!r}: a whole-number seed (a run must be reproducible)"
                    )
                updates["seed"] = int(value)
        if updates:
            cfg = cfg.with_updates(updates)
        #: what was changed on top of the scenario here (recorded in the run's provenance)
        self.overrides: dict[str, Any] = dict(updates)
        super().__init__(rng=cfg.seed)
        self._streams: dict[str, np.random.Generator] = {}
        self.cfg = cfg
        cal = cfg.calendar
        self.n_steps = cal.trading_days * cal.steps_per_day
        # each component draws from a stream of its own (common random numbers: a parameter
        # that changes how many numbers one component draws leaves the others' draws alone)
        self.spot_path = make_spot_path(
            cfg.spot, self.n_steps, cal.steps_per_day, self.stream("spot")
        )
        if not cfg.contract.allow_negative_prices and np.any(self.spot_path <= 0):
            at = int(np.flatnonzero(self.spot_path <= 0)[0])
            where = f"at step {at} ({self.spot_path[at]:.6g})"
            if cfg.spot.kind == "csv":
                raise ValueError(
                    f"spot.csv_path = '{cfg.spot.csv_path}': the spot path reaches a price <= 0 "
                    f"{where} but contract.allow_negative_prices is false; allow negative "
                    "prices or give a positive series"
                )
            raise ValueError(
                f"the {cfg.spot.kind} spot path reaches a price <= 0 {where} but "
                "contract.allow_negative_prices is false; lower spot.volatility (or the jumps), "
                "or allow negative prices"
            )
        self.step_index = 0
        self.fair = fair_value(float(self.spot_path[0]), cfg.spot.carry_rate, cal.trading_days)
        plugins = build.resolve_plugins(cfg)
        build.check_memory(cfg)
        self.exchange = build.build_exchange(cfg, self.fair)
        nm = cfg.next_month
        #: the next listed month's exchange (``[next_month]``), None with one month
        self.next_exchange = None
        #: its fair value (price units): the front's, carried ``days_later`` days more, plus
        #: ``next_month.carry``
        self.fair_next = math.nan
        if nm.enabled:
            self.fair_next = self._fair_next(float(self.spot_path[0]))
            self.next_exchange = build.build_next_exchange(cfg, self.fair_next)
        self._last_next = self.fair_next  # the next month's last trade price, carried forward
        #: the agent owning each account (its id)
        self.owner_of: dict[int, TraderAgent] = {}
        #: the step after which the crowd was flat (set when it happens; expiry otherwise)
        self.harvest_end_step = self.n_steps
        # -- agents: the exchange's accounts are opened in this order --------------------------
        cast = build.participants(self, cfg, plugins)
        self.hedgers: list[DominantHedger] = cast.hedgers
        self.hedger = self.hedgers[0] if self.hedgers else None
        self.market_maker = cast.market_maker
        self.arbitrageurs = cast.arbitrageurs
        self.crowd = cast.crowd
        self.retail: list[RetailTrader] = cast.crowd.traders
        self.target_flow = cast.target_flow
        self.commercials = cast.commercials
        self.fringe = cast.fringe
        self.next_month = build.next_month_participants(self, cfg, cast) if nm.enabled else None
        self._user_types: dict[tuple, list[type]] = {}
        # the market's volatility as the liquidity providers see it: an EWMA of squared
        # futures returns, in fractions per day, starting from the reference level
        rk = cfg.risk
        self.reference_vol = (
            rk.reference_vol if rk.reference_vol is not None else cfg.spot.volatility
        )
        self.vol_daily = self.reference_vol
        self._ewma_decay = 0.5 ** (1.0 / rk.half_life_days)
        self._ewma_var = self.reference_vol**2  # of daily settlement returns

        # -- observation ---------------------------------------------------------------------
        self.futures = np.full(self.n_steps, np.nan)  # last trade price, carried forward
        self._last_futures = self.exchange.settle_price
        self.obs: dict[str, float] = {}
        #: what the model records at the harvest's start and the deadline (for the summary)
        self.marks: dict[str, Any] = {
            "ndnp_at_deadline": None,
            "fringe_at_deadline": None,
            "fair_at_deadline": None,
            "ndnp_at_harvest_start": None,
            "retail_lots_at_harvest_start": None,
            "retail_open_interest_at_deadline": None,
            "open_interest_at_harvest_start": None,
            "fringe_at_harvest_start": None,
            "fair_at_harvest_start": None,
            "firms_at_harvest_start": None,
            "storage_hedge_at_deadline": None,
        }
        reporters: dict[str, Callable[[MarketModel], float]] = {
            name: _reader(name) for name in self._observe(dry=True)
        }
        agent_reporters = None
        if cfg.output.collect_agents:
            agent_reporters = {
                "cls": "label",
                "net": lambda a: a.account.net,
                "equity": lambda a: a.equity,
            }
        self.datacollector = SeriesCollector(
            model_reporters=reporters, agent_reporters=agent_reporters
        )
        self.wall_seconds = 0.0
        self._t0: float | None = None
        #: the run's [`RunResult`][abm.results.RunResult], set when the last step has been taken
        self.result = None
        # average order-book depth by level (k-th best price), sampled every DEPTH_EVERY steps
        self.depth_sum = np.zeros((2, DEPTH_LEVELS))
        self.depth_samples = 0

    def owner(self, account_id: int):
        """The agent owning clearing account ``account_id`` (a trader of the `arrays` crowd
        as a view), or None (an omnibus account, or nobody's)."""
        agent = self.owner_of.get(account_id)
        if agent is None:
            find = getattr(self.crowd, "owner", None)
            if find is not None:
                return find(account_id)
        return agent

    def _fair_next(self, spot: float) -> float:
        """The next month's fair value at ``spot`` (price units)."""
        cfg = self.cfg
        days_left = (self.n_steps - self.step_index) / cfg.calendar.steps_per_day
        days = days_left + cfg.next_month.days_later
        return fair_value(spot, cfg.spot.carry_rate, days) + cfg.next_month.carry

    # -- what agents may read ------------------------------------------------------------------
    @property
    def spot(self) -> float:
        return float(self.spot_path[self.step_index])

    def _update_volatility(self, day_end: bool) -> None:
        """The market's daily volatility (fraction) as its liquidity providers see it: an EWMA
        of squared daily settlement returns, updated at each day's end; within the day, the
        move of the mid-price (else the last trade) since the last settlement when larger, so a
        large move is felt at once."""
        ex = self.exchange
        if day_end and len(ex.days) >= 2:
            r = _relative_change(ex.days[-2].settlement, ex.days[-1].settlement)
            self._ewma_var = self._ewma_decay * self._ewma_var + (1 - self._ewma_decay) * r * r
        mid = ex.book.mid()
        now = mid * ex.contract.tick_size if mid is not None else self._last_futures
        move = abs(_relative_change(ex.prev_settle, now))
        self.vol_daily = max(math.sqrt(self._ewma_var), move)

    # -- activation ----------------------------------------------------------------------------
    def stream(self, name: str) -> np.random.Generator:
        """A random generator of its own for ``name`` (an agent type, a component), seeded by
        the run's seed and the name: draws from it leave the model's generator untouched, so
        adding a component does not shift the random numbers of the others."""
        gen = self._streams.get(name)
        if gen is None:
            key = zlib.crc32(name.encode())
            gen = self._streams[name] = np.random.default_rng([self.cfg.seed, key])
        return gen

    def each(self, kind: type, method: str, *args: Any) -> None:
        """Every agent of exactly ``kind`` calls ``method(*args)``, in creation order (Mesa's
        ``AgentSet.do``)."""
        agents = self.agents_by_type.get(kind)
        if agents:
            agents.do(method, *args)

    def activate_user_types(self, phase: str) -> None:
        """Agents of types other than the built-in ones act in ``phase`` if their type
        declares it (``TraderAgent.phases``), types in ascending ``priority`` (then name),
        each type's agents as its ``activate`` says."""
        by_type = self.agents_by_type
        key = (phase, tuple(by_type))
        order = self._user_types.get(key)
        if order is None:
            order = sorted(
                (
                    k
                    for k in by_type
                    if k not in BUILT_IN_TYPES and phase in getattr(k, "phases", {})
                ),
                key=lambda k: (k.priority, k.__name__),
            )
            self._user_types[key] = order
        for kind in order:
            agents = by_type[kind]
            if len(agents):
                kind.activate(self, agents, phase)

    def crowd_holds(self) -> bool:
        """Whether any account without delivery rights still holds lots."""
        g = self.exchange.clearing.group("non_deliverable")
        return g.long + g.short > 0

    def lots_without_delivery_rights(self) -> int:
        """Lots held by accounts without delivery rights (public: exchanges publish positions
        by trader type): what the fringe may be asked to absorb."""
        g = self.exchange.clearing.group("non_deliverable")
        return g.long + g.short

    def recent_return(self, lookback: int) -> float:
        """Futures price change over the last ``lookback`` steps (price units)."""
        s = self.step_index
        if s < 1:
            return 0.0
        past = self.futures[max(0, s - lookback)]
        return float(self.futures[s - 1] - past)

    # -- the step ------------------------------------------------------------------------------
    def step(self) -> None:
        """One slot of the order book, in this order:

        1. the exchange opens the step (a new day expires orders, sets the band and the
           margin in force, and the broker starts the liquidations of unanswered calls);
        2. **quote** — liquidity providers rest their quotes: the fringe its cost curves
           (arbitrageurs, then commercials), the firms price against them, the market maker
           quotes inside, then quoting types of the user's own;
        3. the broker works its forced closes and liquidations against those quotes;
        4. **trade** — the commercials trade for their business, the retail crowd acts
           (closers re-post, scheduled openings and closings, the Poisson clock), the late
           flow of an NDNP experiment trades to its target, then types of the user's own;
        5. the exchange closes the step (at the day's end: settlement, mark-to-market, margin
           calls, invariants); the model records the step.
        """
        s = self.step_index
        if s >= self.n_steps:
            self.running = False
            return
        if self._t0 is None:  # stepped by hand or by mesa.batch_run: time from the first step
            self._t0 = time.perf_counter()
        cfg = self.cfg
        ex = self.exchange
        cal = ex.calendar
        spot = float(self.spot_path[s])
        days_left = (self.n_steps - s) / cal.steps_per_day
        self.fair = fair_value(spot, cfg.spot.carry_rate, days_left)
        nx = self.next_exchange
        if nx is not None:
            self.fair_next = self._fair_next(spot)
        self._mark(s)
        # 1. open
        ex.begin_step(s, self.fair, work_broker=False)
        if nx is not None:
            nx.begin_step(s, self.fair_next, work_broker=False)
        # 2. quote
        self.each(DeliveryArbitrageur, "quote", self.lots_without_delivery_rights())
        self.each(Commercial, "quote", self.lots_without_delivery_rights())
        self.each(DominantHedger, "step")
        self.each(MarketMaker, "step")
        self.activate_user_types("quote")
        # 3. the broker's market orders meet the quotes just posted
        ex.broker.work()
        if nx is not None:
            nx.broker.work()
        if (
            s >= ex.deadline_step
            and self.harvest_end_step == self.n_steps
            and not ex.broker.forced
            and not self.crowd_holds()
        ):
            self.harvest_end_step = s + 1
        # 4. trade
        self.each(Commercial, "business")
        self.crowd.step()
        self.each(TargetFlow, "step")
        self.activate_user_types("trade")
        if self.next_month is not None and self.next_month.storage is not None:
            self.next_month.storage.hedge()  # what it stored this step, sold forward
        # 5. close
        record = ex.end_step()
        if nx is not None:
            self._close_next_month(nx, record)
        if record is not None:
            for acc in ex.called:
                agent = self.owner(acc.id)
                if agent is not None:
                    agent.on_margin_call(acc.call_amount)
            for h in self.hedgers:
                h.end_of_day()
        self._record(s, record is not None)
        self.step_index += 1
        if self.step_index == self.n_steps:
            ex.expire(float(self.spot_path[self.n_steps]))
            if nx is not None:  # it trades on: its positions stay open, at its settlement
                nx.clearing.check_invariants(nx.settle_price, s + 1)
            self.running = False
            self._finish()

    def _close_next_month(self, nx, front_record) -> None:
        """Close the next month's step; the storer meets the calls on its forward sales (they
        hedge barrels it holds); at the deadline session's end, record its hedge."""
        nx.end_step()
        link = self.next_month.storage
        if link is None:
            return
        for acc in nx.called:
            if acc is link.account and acc.call_amount > 0:
                nx.deposit(acc, acc.call_amount)
        if front_record is not None and front_record.day == self.exchange.calendar.deadline_day:
            self.marks["storage_hedge_at_deadline"] = -link.account.net

    def _mark(self, s: int) -> None:
        """What the summary needs from the harvest's start and the deadline, as they stand
        when the step opens."""
        ex = self.exchange
        if s == ex.harvest_start_step:
            self.marks["ndnp_at_harvest_start"] = ex.clearing.ndnp
            self.marks["retail_lots_at_harvest_start"] = _lots(ex.clearing.group("retail"))
            self.marks["open_interest_at_harvest_start"] = ex.clearing.open_interest
            # what the ex-ante theory reads: the fringe's curves and holdings (positions by
            # trader type are published), fair value, and each firm's own position
            self.marks["fringe_at_harvest_start"] = [
                (a.curve_vs_fair(), a.account.net, a.sides) for a in self.fringe
            ]
            self.marks["fair_at_harvest_start"] = self.fair
            self.marks["firms_at_harvest_start"] = [h.account.net for h in self.hedgers]
        if s == ex.calendar.deadline_step:
            self.marks["retail_open_interest_at_deadline"] = _lots(ex.clearing.group("retail"))
            self.marks["ndnp_at_deadline"] = ex.clearing.ndnp
            self.marks["fringe_at_deadline"] = [
                (a.curve_vs_fair(), a.account.net, a.sides) for a in self.fringe
            ]
            self.marks["fair_at_deadline"] = self.fair

    def _record(self, s: int, day_end: bool) -> None:
        """The step's futures price, the volatility estimate, the depth sample and the row of
        the model series."""
        ex = self.exchange
        lp = ex.book.last_price
        if ex.stats.volume:
            self._last_futures = ex.stats.value / ex.stats.volume
        elif lp is not None:
            self._last_futures = ex.contract.to_price(lp)
        self.futures[s] = self._last_futures
        self._update_volatility(day_end)
        if s % DEPTH_EVERY == 0:
            for row, side in enumerate((1, -1)):
                for k, (_, q) in enumerate(ex.book.depth(side, DEPTH_LEVELS)):
                    self.depth_sum[row, k] += q
            self.depth_samples += 1
        self._observe()
        self.datacollector.collect(self)

    def _observe(self, dry: bool = False) -> dict[str, float]:
        """This step's row of the model series (every key becomes a DataCollector reporter)."""
        ex = self.exchange
        ch = ex.clearing
        names = [
            "step",
            "day",
            "spot",
            "fair",
            "futures",
            "futures_vwap",
            "best_bid",
            "best_ask",
            "mid",
            "basis",
            "relative_basis",
            "volume",
            "buy_volume",
            "open_interest",
            "ndnp",
            "forced_volume",
            "liquidation_volume",
            "settlement",
            "margin_rate_in_force",
            "harvest_window",
            "transfer_retail_to_hedger",
            "n_margin_calls",
            "n_liquidations",
            "bad_debt",
            "insurance_fund",
        ]
        for c in CLASSES:
            names += [f"net_{c}", f"equity_{c}", f"margin_{c}"]
        if self.next_exchange is not None:
            names += ["next_futures", "next_settlement", "calendar_spread"]
        if dry:
            return dict.fromkeys(names, 0.0)
        s = self.step_index
        spot = float(self.spot_path[s])
        st = ex.stats
        c = ex.contract
        bb, ba = ex.book.best_bid, ex.book.best_ask
        fut = self._last_futures
        mark = ex.mark
        rate = ex.margin_rate_in_force
        o = self.obs
        o.update(
            step=s,
            day=ex.day,
            spot=spot,
            fair=self.fair,
            futures=fut,
            futures_vwap=st.value / st.volume if st.volume else np.nan,
            best_bid=c.to_price(bb) if bb is not None else np.nan,
            best_ask=c.to_price(ba) if ba is not None else np.nan,
            mid=c.to_price((bb + ba) / 2) if bb is not None and ba is not None else np.nan,
            basis=fut - spot,
            relative_basis=(fut - spot) / spot if spot else np.nan,
            volume=st.volume,
            buy_volume=st.buy_volume,
            open_interest=ch.open_interest,
            ndnp=ch.ndnp,
            forced_volume=st.forced_volume,
            liquidation_volume=st.liquidation_volume,
            settlement=ex.settle_price,
            margin_rate_in_force=rate,
            harvest_window=float(ex.harvest_start_step <= s < self.harvest_end_step),
            transfer_retail_to_hedger=_flow(ch.flows, "retail", "hedger"),
            n_margin_calls=sum(d.n_margin_calls for d in ex.days),
            n_liquidations=ex.broker.n_liquidations_started,
            bad_debt=ch.broker_loss + ch.fund_paid + ch.socialized_total,
            insurance_fund=ch.fund,
        )
        m = c.multiplier
        for cls in CLASSES:
            g = ch.group(cls)
            o[f"net_{cls}"] = g.net
            o[f"equity_{cls}"] = g.equity(mark, m)
            o[f"margin_{cls}"] = (g.long + g.short) * abs(ex.settle_price) * m * rate
        nx = self.next_exchange
        if nx is not None:
            nst = nx.stats
            if nst.volume:
                self._last_next = nst.value / nst.volume
            elif nx.book.last_price is not None:
                self._last_next = nx.contract.to_price(nx.book.last_price)
            o["next_futures"] = self._last_next
            o["next_settlement"] = nx.settle_price
            o["calendar_spread"] = fut - self._last_next
        return o

    # -- running -------------------------------------------------------------------------------
    def run(self, progress: bool = False):
        """Run to expiry and return the [`RunResult`][abm.results.RunResult]."""
        if self._t0 is None:
            self._t0 = time.perf_counter()
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.n_steps, desc=self.cfg.name, unit="step", leave=False)
        # The agents and accounts built with the model live for the whole run; freezing them
        # keeps the cyclic garbage collector from re-scanning them at every full collection
        # (18 % of a 100,000-trader run's time). Unfrozen when the run ends, so a finished model
        # is collected as usual; this also unfreezes whatever was frozen before, which costs
        # only scanning time, where leaving the model frozen would leak it.
        gc.freeze()
        try:
            while self.running and self.step_index < self.n_steps:
                self.step()
                if bar is not None:
                    bar.update(1)
        finally:
            gc.unfreeze()
        if bar is not None:
            bar.close()
        if self.result is None:
            raise RuntimeError(
                f"the run stopped at step {self.step_index} of {self.n_steps} "
                "(model.running was set False before expiry); it has no summary"
            )
        return self.result

    def _finish(self) -> None:
        """The run has expired: its summary, computed once, for
        [`run()`][abm.model.MarketModel.run], for a model stepped by hand and for
        ``mesa.batch_run`` (whose rows then carry it)."""
        from abm.metrics import summarize
        from abm.provenance import provenance

        if self._t0 is not None:
            self.wall_seconds += time.perf_counter() - self._t0
            self._t0 = None
        self.result = summarize(self)
        if self.result.provenance is None:
            self.result.provenance = provenance(self.cfg, self.overrides)
        add = getattr(self.datacollector, "add_summary", None)  # a plain Mesa collector has none
        if add is not None:
            add(self.result.summary)


def _relative_change(before: float, after: float) -> float:
    """Log return, or the change relative to |before| through zero (negative prices)."""
    if before > 0 and after > 0:
        return math.log(after / before)
    return (after - before) / abs(before) if before else 0.0


def _lots(g) -> int:
    return g.long + g.short


def _flow(flows: dict, payer: str, payee: str) -> float:
    """Net execution transfer from ``payer`` class to ``payee`` class over all channels."""
    out = 0.0
    for (_, a, b), x in flows.items():
        if a == payer and b == payee:
            out += x
        elif a == payee and b == payer:
            out -= x
    return out


class SeriesCollector(mesa.DataCollector):
    """Mesa's DataCollector for a model whose series are plain numbers gathered in
    ``model.obs`` every step, and whose last row also carries the run's summary metrics
    (so ``mesa.batch_run`` rows hold the headline results, not only the last step's series).

    Mesa deep-copies each reporter's value in case it is mutable; for ~40 floats a step that
    copying was a fifth of a default run. The model series are appended as they are (the same
    values, the same ``get_model_vars_dataframe()``); agent reporters go through Mesa."""

    def collect(self, model: MarketModel) -> None:
        obs = model.obs
        if hasattr(self, "_collection_steps"):  # what mesa.batch_run reads the rows by
            self._collection_steps.append(model.time)
        for var, values in self.model_vars.items():
            values.append(obs[var])
        if self.agent_reporters:
            reporters, self.model_reporters = self.model_reporters, {}
            try:
                super().collect(model)
            finally:
                self.model_reporters = reporters

    def add_summary(self, summary: dict[str, Any]) -> None:
        """The run's summary as model variables: empty (None) on every row but the last.
        A summary metric named like a series (``bad_debt``, ``n_margin_calls``, ...) is
        added as ``<name>_at_expiry``: the series' last row is the last step's, before the
        contract expires."""
        n = len(next(iter(self.model_vars.values()), []))
        if n == 0:
            return
        series = set(self.model_vars)
        for key, value in summary.items():
            if not (value is None or isinstance(value, (int, float, str, bool))):
                continue
            name = f"{key}_at_expiry" if key in series else key
            self.model_vars[name] = [None] * (n - 1) + [value]


def _reader(name: str) -> Callable[[MarketModel], float]:
    def read(model: MarketModel) -> float:
        return model.obs[name]

    read.__name__ = f"read_{name}"
    return read

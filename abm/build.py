"""The wiring: a validated config turned into the market a run simulates, once.

A `RunConfig` is data (`abm.config` imports nothing else of the package). This module
reads it and builds what it describes:

* `resolve_plugins` — the classes the config names (the hedger's pricing policy, the crowd's
  rules, agents of the user's own classes), by short name or import path, each checked against
  what it must be; resolved once per config and called before any run by
  `abm.scenarios.load`, the sweeps' validation and the model;
* `contract`, `calendar`, `build_exchange` — the exchange: contract terms, calendar, margin
  schedule, clearing house;
* `delivery_curve` — a delivery-capable account's marginal cost curve from its section;
* `participants` — the agents, created in the order their accounts are opened.

Built-in agents take their parameters as keyword arguments named as their config section's
fields (`from_section` fills them by name), as agents of the user's own classes take the
``params`` of their ``[[agents]]`` table.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from abm.agents import (
    Commercial,
    Crowd,
    DeliveryArbitrageur,
    DominantHedger,
    MarketMaker,
    TraderAgent,
)
from abm.agents.array_crowd import ArrayCrowd
from abm.agents.netted import NettedCrowd
from abm.agents.pricing import POLICIES
from abm.agents.retail import RULES, RetailRules, runs_as_arrays
from abm.agents.target_flow import TargetFlow
from abm.config import ConfigError, RunConfig
from abm.delivery import DeliveryCurve
from abm.exchange import Calendar, ClearingHouse, Contract, Exchange
from abm.plugins import resolve_class

if TYPE_CHECKING:
    import mesa

__all__ = [
    "Participants",
    "Plugins",
    "build_exchange",
    "build_next_exchange",
    "calendar",
    "check_memory",
    "contract",
    "delivery_curve",
    "from_section",
    "harvest_start_step",
    "memory_estimate_mb",
    "next_month_participants",
    "participants",
    "resolve_plugins",
]


# -- plugins ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plugins:
    """The classes a config names, resolved: the firms' harvest ``pricing`` policy, the
    crowd's ``rules`` and each ``[[agents]]`` table's class with its count and parameters."""

    pricing: type
    rules: type[RetailRules]
    agents: list[tuple[type[TraderAgent], int, dict[str, Any]]] = field(default_factory=list)


def resolve_plugins(cfg: RunConfig) -> Plugins:
    """Resolve every class the config names, or raise `ConfigError` naming the field, the
    value and what it must be. A class named by import path is imported here: configs are
    trusted input, like a notebook."""
    errors = []

    def resolve(name: str, known: dict[str, type], base: type, what: str) -> type | None:
        try:
            return resolve_class(name, known, base, what)
        except ValueError as err:
            errors.append(str(err))
            return None

    pricing = resolve(cfg.hedger.spread_policy, POLICIES, object, "hedger.spread_policy")
    if pricing is not None and not callable(getattr(pricing, "decide", None)):
        errors.append(
            f"hedger.spread_policy = {cfg.hedger.spread_policy!r}: {pricing.__name__} has no "
            "decide(view) method (a harvest policy, abm.agents.pricing.HarvestPricing)"
        )
        pricing = None
    if pricing is not None:
        why = _cannot_call(pricing, {})
        if why:
            errors.append(
                f"hedger.spread_policy = {cfg.hedger.spread_policy!r}: {pricing.__name__}() "
                f"cannot be made without arguments ({why}); each firm makes its own policy"
            )
            pricing = None
    rules = resolve(cfg.retail.rules, RULES, RetailRules, "retail.rules")
    agents = []
    for i, spec in enumerate(cfg.agents):
        kind = resolve(spec.cls, {}, TraderAgent, f"agents.{i}.class")
        if kind is None:
            continue
        why = _cannot_call(kind, {"model": None, **spec.params})
        if why:
            wants = ", ".join(
                p for p in inspect.signature(kind).parameters if p not in ("self", "model")
            )
            errors.append(
                f"agents.{i}.params = {dict(spec.params)}: {kind.__name__}(model, ...) does not "
                f"take them ({why}); its parameters: {wants or 'none'}"
            )
            continue
        agents.append((kind, spec.n, dict(spec.params)))
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors))
    return Plugins(pricing, rules, agents)  # type: ignore[arg-type]


#: measured (BENCHMARKS.md, peak resident memory of the scaling runs): about 180 MB for the
#: interpreter, the libraries and a small market, and 3.25 KB more per retail trader (its
#: agent, account and orders); the estimate rounds the latter up
MEMORY_BASE_MB = 180.0
MEMORY_PER_TRADER_KB = 3.5


def memory_estimate_mb(cfg: RunConfig) -> float:
    """About how much memory a run of ``cfg`` takes at its peak (MB)."""
    return MEMORY_BASE_MB + MEMORY_PER_TRADER_KB * cfg.retail.n_traders / 1024


def check_memory(cfg: RunConfig) -> None:
    """Refuse a run whose estimated peak memory exceeds what the machine has available, before
    anything is built (a crowd of 10⁷ would otherwise fill the memory while it is drawn).
    ``ABM_MEMORY_CHECK=0`` in the environment skips the check."""
    import os

    if os.environ.get("ABM_MEMORY_CHECK", "1") == "0":
        return
    need = memory_estimate_mb(cfg)
    if need < 1024:  # under a gigabyte: not worth asking the system
        return
    import psutil

    have = psutil.virtual_memory().available / 2**20
    if need > have:
        raise ConfigError(
            f"retail.n_traders = {cfg.retail.n_traders:,}: a run this size needs about "
            f"{need / 1024:,.1f} GB ({MEMORY_BASE_MB:.0f} MB + {MEMORY_PER_TRADER_KB} KB per "
            f"trader), and this machine has {have / 1024:,.1f} GB available. Use fewer "
            "traders or a larger machine; ABM_MEMORY_CHECK=0 runs it anyway"
        )


def _cannot_call(cls: type, kwargs: dict[str, Any]) -> str:
    """Why ``cls(**kwargs)`` would fail on its signature alone ("" when it would not)."""
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as err:
        return str(err)
    except ValueError:  # no signature to read (a builtin): let the call itself decide
        return ""
    return ""


# -- the exchange -------------------------------------------------------------------------------


def contract(cfg: RunConfig) -> Contract:
    """The contract's terms (``[contract]``)."""
    c = cfg.contract
    return Contract(
        tick_size=c.tick_size,
        multiplier=c.multiplier,
        fee_per_lot=c.fee_per_lot,
        price_limit=c.price_limit,
        allow_negative_prices=c.allow_negative_prices,
        delivery_cost=c.delivery_cost,
        name=c.name,
    )


def calendar(cfg: RunConfig) -> Calendar:
    """Trading days, steps, the settlement window, the deadline and the margin schedule
    (``[calendar]`` and ``[margin]``): the one place a run's dates come from."""
    cal, margin = cfg.calendar, cfg.margin
    return Calendar(
        trading_days=cal.trading_days,
        steps_per_day=cal.steps_per_day,
        settlement_window_steps=cal.settlement_window_steps or cal.steps_per_day,
        forced_close_lead_days=cal.forced_close_lead_days,
        forced_close_step=cal.forced_close_step,
        base_margin_rate=margin.rate,
        margin_steps=tuple((s.days_before_last, s.applied(margin.rate)) for s in margin.step_ups),
        broker_add_on=margin.broker_add_on,
        forced_close_auction=cal.forced_close_auction,
        forced_close_window_steps=cal.forced_close_window_steps,
    )


def harvest_start_step(cfg: RunConfig) -> int:
    """The first step of the harvest window: ``hedger.harvest_window_steps`` before the
    deadline (the deadline itself without a hedger)."""
    deadline = calendar(cfg).deadline_step
    window = cfg.hedger.harvest_window_steps if cfg.hedger.enabled else 0
    return max(0, deadline - window)


def build_exchange(cfg: RunConfig, initial_price: float) -> Exchange:
    """The exchange the config describes, its first settlement at ``initial_price``."""
    terms = contract(cfg)
    clearing = ClearingHouse(
        multiplier=terms.multiplier,
        fee_per_lot=terms.fee_per_lot,
        maintenance_ratio=cfg.margin.maintenance_ratio,
        loss_regime=cfg.clearing.loss_regime,
        insurance_fund=cfg.clearing.insurance_fund_initial,
        liquidation_penalty=cfg.clearing.liquidation_penalty,
        lock_margin=cfg.margin.lock_margin,
        delivery_cost=terms.delivery_cost,
    )
    ex = Exchange(
        terms,
        calendar(cfg),
        clearing,
        initial_price,
        check_every_step=cfg.clearing.check_invariants_every_step,
        discretion=cfg.discretion,
        intraday_check_steps=cfg.margin.intraday_check_steps,
    )
    ex.harvest_start_step = harvest_start_step(cfg)
    return ex


def build_next_exchange(cfg: RunConfig, initial_price: float) -> Exchange:
    """The next listed month (``[next_month]``): the front's contract terms, clearing rules and
    margin schedule in a book of its own, its calendar ``days_later`` trading days longer (so
    its step-ups toward expiry and its deadline fall after the run), its first settlement at
    ``initial_price``, and ``spread_credit`` waived on calendar-spread lots."""
    ex = build_exchange(cfg, initial_price)
    cal = replace(ex.calendar, trading_days=ex.calendar.trading_days + cfg.next_month.days_later)
    ex.calendar = cal
    ex.deadline_step = ex.harvest_start_step = cal.deadline_step
    ex.clearing.spread_credit = cfg.next_month.spread_credit
    return ex


def delivery_curve(section: Any, contract_cost: float, extra_soft: int = 0) -> DeliveryCurve:
    """The marginal delivery cost curve a delivery-capable section describes (its
    ``delivery_cost`` or the contract's, ``soft_capacity``, ``cost_slope``, ``capacity``);
    ``extra_soft`` lots already held at the flat cost (a commercial's opening position) are
    added to both limits."""
    cost = contract_cost if section.delivery_cost is None else section.delivery_cost
    soft = section.soft_capacity
    if soft is None and section.capacity is not None:
        soft = section.capacity
    return DeliveryCurve(
        cost,
        None if soft is None else soft + extra_soft,
        section.cost_slope,
        None if section.capacity is None else section.capacity + extra_soft,
    )


# -- the agents ---------------------------------------------------------------------------------


def from_section(kind: type, model: mesa.Model, section: Any, **given: Any) -> Any:
    """``kind(model, **params)``: its keyword-only parameters filled by name from the config
    ``section``'s fields, plus ``given`` (what the wiring computes: curves, shares, policies)."""
    fields = type(section).model_fields
    params = {
        name: getattr(section, name)
        for name, p in inspect.signature(kind.__init__).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in given and name in fields
    }
    return kind(model, **params, **given)


@dataclass
class Participants:
    """The agents of a run, as created: the firms (``hedgers``), the ``market_maker``, the
    delivery ``arbitrageurs``, the retail ``crowd``, the late ``target_flow`` of an NDNP
    experiment, the two ``commercials`` and the ``user_agents`` of the config's own classes."""

    hedgers: list[DominantHedger]
    market_maker: MarketMaker | None
    arbitrageurs: list[DeliveryArbitrageur]
    crowd: Crowd | NettedCrowd | ArrayCrowd
    target_flow: TargetFlow | None
    commercials: list[Commercial]
    user_agents: list[TraderAgent]

    @property
    def fringe(self) -> list:
        """The competitive delivery-capable traders: arbitrageurs, then commercials."""
        return [*self.arbitrageurs, *self.commercials]


def participants(model: mesa.Model, cfg: RunConfig, plugins: Plugins) -> Participants:
    """Create every agent of the run in the model; the exchange opens their accounts in this
    order (firms, market maker, arbitrageurs, crowd, late flow, commercials, user agents)."""
    ex = model.exchange
    cost = ex.contract.delivery_cost
    hc = cfg.hedger
    hedgers = []
    if hc.enabled:
        curve = delivery_curve(hc, cost)
        for i, share in enumerate(hc.firm_shares()):
            hedgers.append(
                from_section(
                    DominantHedger,
                    model,
                    hc,
                    index=i,
                    share=share,
                    curve=curve.scaled(share),
                    pricing=plugins.pricing(),
                    var_z=cfg.risk.var_z,
                )
            )
    mm = from_section(MarketMaker, model, cfg.market_maker) if cfg.market_maker.enabled else None
    arb = cfg.arbitrageurs
    arbitrageurs = [
        from_section(
            DeliveryArbitrageur, model, arb, curve=delivery_curve(arb, cost).scaled(1.0 / arb.n)
        )
        for _ in range(arb.n)
    ]
    rc = cfg.retail
    targeted = rc.ndnp_target is not None or rc.ndnp_target_share is not None
    rules = plugins.rules()
    if rc.engine == "netted" and runs_as_arrays(rules):
        crowd = NettedCrowd(model, rc, rules, holds_in_harvest=targeted)
    elif rc.engine == "arrays":
        crowd = ArrayCrowd(model, rc, rules, holds_in_harvest=targeted)
    else:
        if rc.engine == "netted":
            # a rule of one's own that decides only per trader runs on the per-agent engine
            warnings.warn(
                f"retail.rules = {rc.rules!r} is a per-trader rule (it changes act, "
                "opening_lots or on_margin_call without a vectorised act_many), so this run's "
                "crowd uses the per-agent engine (retail.engine = 'agents')",
                stacklevel=2,
            )
        crowd = Crowd(model, rc, rules, holds_in_harvest=targeted)
    flow = from_section(TargetFlow, model, rc) if targeted else None
    commercials = []
    co = cfg.commercials
    if co.present:
        # the rest of the market: a long and a short commercial, both delivering at expiry
        curve = delivery_curve(co, cost, extra_soft=co.open_interest)
        buyer, seller = (
            from_section(Commercial, model, co, direction=d, curve=curve) for d in (+1, -1)
        )
        commercials = [buyer, seller]
        if co.open_interest:
            ex.clearing.apply_fill(
                buyer.account,
                seller.account,
                co.open_interest,
                ex.settle_price,
                False,
                False,
                model.fair,
                "ordinary",
                fees=False,
            )
    user = [kind(model, **params) for kind, n, params in plugins.agents for _ in range(n)]
    return Participants(hedgers, mm, arbitrageurs, crowd, flow, commercials, user)


@dataclass
class NextMonth:
    """The next listed month's participants: its ``maker`` and ``storer``, the front long
    commercial's ``storage`` link and the rolling ``fund`` (None when absent)."""

    maker: Any
    storer: Any
    storage: Any
    fund: Any


def next_month_participants(model: mesa.Model, cfg: RunConfig, cast: Participants) -> NextMonth:
    """Create the next month's participants (after the front's: their accounts are opened in
    the next month's book, the fund's and the storage link's in both), and book the fund's
    opening long in the front against the firms' short (else the short commercial's)."""
    from abm.agents.next_month import NextMonthMaker, NextMonthStorer, RollingFund, StorageLink

    nm = cfg.next_month
    maker = None
    if cfg.market_maker.enabled:
        mm = cfg.market_maker
        # it never flattens: the next month does not expire in the run
        maker = from_section(NextMonthMaker, model, mm, exchange=model.next_exchange)
    curve = DeliveryCurve(nm.depth_cost, nm.depth_soft, nm.depth_slope, None)
    storer = NextMonthStorer(model, curve, cfg.commercials.ladder_levels)
    storage = None
    longs = [c for c in cast.commercials if c.direction > 0]
    if nm.storage_link and longs:
        buyer = longs[0]
        m = model.exchange.contract.multiplier
        deposit = abs(model.fair_next) * m * max(cfg.commercials.open_interest, 1)
        storage = StorageLink(buyer, deposit)
        buyer.storage = storage
    fund = None
    if nm.fund_lots:
        fund = RollingFund(
            model,
            lots=nm.fund_lots,
            roll_start_days=nm.fund_roll_start_days,
            roll_days=nm.fund_roll_days,
        )
        ex = model.exchange
        shorts = [c for c in cast.commercials if c.direction < 0]
        holder = cast.hedgers[0] if cast.hedgers else shorts[0]
        if not cast.hedgers:
            holder.base -= nm.fund_lots  # its business leans to its new opening position
        ex.clearing.apply_fill(
            fund.account,
            holder.account,
            nm.fund_lots,
            ex.settle_price,
            False,
            False,
            model.fair,
            "ordinary",
            fees=False,
        )
    return NextMonth(maker, storer, storage, fund)

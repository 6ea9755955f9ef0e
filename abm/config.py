"""The one typed, validated configuration object of a run, loadable from TOML.

This module is data only: it imports nothing else of the package, so every other part can read
a config. Turning a config into an exchange and agents (and checking the classes it names by
import path) is [`abm.build`][abm.build]; loading a shipped scenario by name is
[`abm.scenarios`][abm.scenarios].

Every value is checked once, before anything runs; a bad value raises
[`ConfigError`][abm.config.ConfigError] naming the field (dotted path), the value given and what is
allowed. Units are stated in each field's description: *price units* are the contract's quote
currency per unit of the underlying (e.g. $/bbl), *money* is price units × multiplier.
"""

from __future__ import annotations

import copy
import tomllib
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

#: Short names researchers sweep, mapped to their dotted config paths.
SHORT_NAMES: dict[str, str] = {
    "retail_long_share": "retail.long_share",
    "margin_rate": "margin.rate",
    "forced_close_lead_days": "calendar.forced_close_lead_days",
    "arbitrage_capacity": "arbitrageurs.capacity",
    "harvest_spread": "hedger.harvest_spread",
    "arbitrage_cost_slope": "arbitrageurs.cost_slope",
    "n_firms": "hedger.n_firms",
    "ndnp_target": "retail.ndnp_target",
    "ndnp_target_share": "retail.ndnp_target_share",
    "loss_regime": "clearing.loss_regime",
    "n_retail": "retail.n_traders",
    "seed": "seed",
}


#: the largest amount of money a single booking may carry: float64 holds integers exactly up
#: to 9e15, so sums of amounts below 1e12 keep cents
MONEY_MAX = 1e12


class ConfigError(ValueError):
    """A configuration value is invalid; the message names field, value and what is allowed."""


class _Section(BaseModel):
    # allow_inf_nan=False: no NaN or infinity in any number, anywhere (a NaN drift or an
    # infinite multiplier would run and corrupt the ledger quietly)
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, frozen=False, allow_inf_nan=False
    )

    @model_validator(mode="before")
    @classmethod
    def _none_words(cls, data: Any) -> Any:
        """TOML has no null: 'none' (or 'off') sets a field that allows None to None."""
        if isinstance(data, dict):
            for name, f in cls.model_fields.items():
                v = data.get(name)
                if (
                    isinstance(v, str)
                    and v.strip().lower() in {"none", "off", "null"}
                    and type(None) in typing.get_args(f.annotation)
                ):
                    data = {**data, name: None}
        return data


Prob = Annotated[float, Field(ge=0.0, le=1.0)]
Rate = Annotated[float, Field(gt=0.0, le=1.0)]


class ContractConfig(_Section):
    name: str = Field("generic", description="Contract name, for labels only.")
    tick_size: float = Field(1.0, gt=0, description="Minimum price increment (price units).")
    multiplier: float = Field(10.0, gt=0, description="Units of the underlying per lot.")
    fee_per_lot: float = Field(
        2.0, ge=0, description="Exchange + broker fee per lot per side (money)."
    )
    price_limit: float | None = Field(
        0.04,
        description="Daily band as a fraction of the previous settlement (e.g. 0.04 = ±4 %); "
        "'none' for no limit.",
    )
    allow_negative_prices: bool = Field(False, description="Whether the book accepts prices < 0.")
    delivery_cost: float = Field(
        2.0, ge=0, description="Cost of making or taking delivery (price units per unit)."
    )

    @field_validator("price_limit", mode="before")
    @classmethod
    def _none_word(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().lower() in {"none", "off", ""}:
            return None
        return v

    @field_validator("price_limit")
    @classmethod
    def _limit_range(cls, v: float | None) -> float | None:
        if v is not None and not (0 < v < 1):
            raise ValueError(
                "must be in (0, 1) as a fraction of the previous settlement, or 'none'"
            )
        return v


class CalendarConfig(_Section):
    trading_days: int = Field(40, ge=2, le=10_000, description="Trading days up to expiry.")
    steps_per_day: int = Field(100, ge=1, le=100_000, description="Order-book steps per day.")
    settlement_window_steps: int | None = Field(
        None,
        ge=1,
        description="Settlement = VWAP over the last N steps of the day; None = the whole day.",
    )
    forced_close_lead_days: int = Field(
        2,
        ge=1,
        description="Deadline: this many trading days before the last trading day, accounts "
        "without delivery rights are force-closed.",
    )
    forced_close_step: int = Field(
        0, ge=0, description="Intraday step of the deadline day at which forced closes start."
    )
    forced_close_auction: bool = Field(
        True,
        description="Forced closes meet in a uniform-price call auction each step: opposite "
        "forced closes cross, only the imbalance sweeps the book. False: each is a market "
        "order in the continuous book.",
    )
    forced_close_window_steps: int = Field(
        1,
        ge=1,
        description="The broker's desk works the forced closes over this many steps from "
        "forced_close_step: each step it sends each account's remaining lots over the steps "
        "left (rounded up), so the crowd's sales reach the book at an even pace, as a risk "
        "desk's slices would. 1 = everything at once (the deadline's first step).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> CalendarConfig:
        last = self.trading_days - 1
        if self.trading_days < 3:
            raise ValueError(
                f"trading_days = {self.trading_days}: a forced-close deadline needs a day "
                "before it and a day after it, so at least 3 trading days"
            )
        if self.forced_close_lead_days >= last:
            raise ValueError(
                f"forced_close_lead_days = {self.forced_close_lead_days}: the deadline must fall "
                f"after the first trading day and before the last (allowed 1..{last - 1} for "
                f"trading_days = {self.trading_days})"
            )
        if self.forced_close_step >= self.steps_per_day:
            raise ValueError(
                f"forced_close_step = {self.forced_close_step}: must be < steps_per_day = "
                f"{self.steps_per_day}"
            )
        if self.forced_close_step + self.forced_close_window_steps > self.steps_per_day:
            raise ValueError(
                f"forced_close_window_steps = {self.forced_close_window_steps}: the desk's "
                f"window must end within the deadline day (forced_close_step = "
                f"{self.forced_close_step}, steps_per_day = {self.steps_per_day}: allowed 1.."
                f"{self.steps_per_day - self.forced_close_step})"
            )
        if (
            self.settlement_window_steps is not None
            and self.settlement_window_steps > self.steps_per_day
        ):
            raise ValueError(
                f"settlement_window_steps = {self.settlement_window_steps}: must be <= "
                f"steps_per_day = {self.steps_per_day}"
            )
        return self


class MarginStep(_Section):
    """One step-up of the margin schedule: from ``days_before_last`` on, the base rate plus
    ``add`` (points), or times ``multiply``, or an absolute ``rate`` (an exchange's table)."""

    days_before_last: int = Field(
        ..., ge=0, description="Applies from this many days before expiry."
    )
    rate: Rate | None = Field(
        None, description="Absolute margin rate from then on (fraction of notional)."
    )
    add: float | None = Field(
        None, ge=0, lt=1, description="Points added to the base rate from then on (0.05 = +5 %)."
    )
    multiply: float | None = Field(
        None, ge=1, le=20, description="Factor applied to the base rate from then on."
    )

    @model_validator(mode="after")
    def _one_form(self) -> MarginStep:
        given = [k for k in ("rate", "add", "multiply") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a step-up needs exactly one of rate (absolute), add (points on the base) or "
                f"multiply (a factor on the base); got {given or 'none'}"
            )
        return self

    def applied(self, base: float) -> float:
        """The rate this step sets on a base rate (fraction of notional)."""
        if self.rate is not None:
            return self.rate
        if self.add is not None:
            return base + self.add
        return base * self.multiply


class MarginConfig(_Section):
    rate: Rate = Field(0.10, description="Base margin rate, fraction of notional at settlement.")
    step_ups: list[MarginStep] = Field(
        default_factory=list,
        description="Higher rates toward delivery (days before the last day): each adds points "
        "to the base (add), multiplies it (multiply) or sets an absolute rate (rate), so a sweep "
        "of the base moves the relative ones too.",
    )
    broker_add_on: float = Field(
        0.0, ge=0, lt=1, description="Broker's add-on to the exchange rate."
    )
    maintenance_ratio: Rate = Field(
        1.0, description="Call when equity < ratio × margin used; 1.0 is the Chinese rule."
    )
    lock_margin: Literal["both", "larger_side"] = Field(
        "both", description="Margin on lock positions: both sides, or the larger side only."
    )
    intraday_check_steps: int | None = Field(
        None,
        ge=1,
        description="Every this many steps the broker checks accounts at the mark and "
        "liquidates at once those below maintenance (real-time risk control); None = only "
        "after the daily settlement, with a call first.",
    )


class ClearingConfig(_Section):
    loss_regime: Literal["broker", "insurance_fund", "socialized", "adl"] = Field(
        "broker",
        description="Who absorbs negative equity: broker, insurance_fund (then broker), "
        "socialized (fund, then pro-rata clawback of profits), adl (auto-deleverage).",
    )
    insurance_fund_initial: float = Field(0.0, ge=0, description="Fund's seed capital (money).")
    liquidation_penalty: Prob = Field(
        0.0,
        description="Fraction of liquidated notional paid to the insurance fund, out of the "
        "account's remaining positive equity.",
    )
    check_invariants_every_step: bool = Field(
        False, description="Check accounting invariants every step (tests), else at day ends."
    )


class SpotConfig(_Section):
    kind: Literal["gbm", "ou", "csv", "constant"] = Field(
        "ou", description="Spot process: gbm, ou (with optional jumps), csv, constant."
    )
    initial: float = Field(100.0, description="Spot at step 0 (price units).")
    drift: float = Field(0.0, description="GBM drift per trading day (log units).")
    volatility: float = Field(0.01, ge=0, description="Volatility per trading day.")
    mean_reversion: float = Field(0.1, ge=0, description="OU speed per trading day.")
    long_run_mean: float | None = Field(None, description="OU mean; None = initial.")
    jump_intensity: float = Field(0.0, ge=0, description="Expected jumps per trading day (OU).")
    jump_mean: float = Field(0.0, description="Mean jump size (fraction of price).")
    jump_std: float = Field(0.0, ge=0, description="Jump size std (fraction of price).")
    csv_path: str | None = Field(
        None,
        description="CSV with a 'spot' column: one row per step (step 0 first), or any "
        "frequency with csv_resample = true.",
    )
    csv_resample: bool = Field(
        False,
        description="Spread the CSV's rows evenly over the run (first row = step 0, last = "
        "expiry) and interpolate linearly between them: a daily series of trading_days + 1 "
        "closes, an hourly one, or any other evenly spaced series.",
    )
    carry_rate: float = Field(
        0.0, description="Carry per trading day; fair value = spot × (1 + carry × days left)."
    )

    @model_validator(mode="after")
    def _kind_needs(self) -> SpotConfig:
        if self.kind == "csv" and not self.csv_path:
            raise ValueError("kind = 'csv' needs csv_path")
        if self.kind != "csv" and self.initial <= 0 and self.kind in ("gbm",):
            raise ValueError(f"initial = {self.initial}: GBM needs a positive initial spot")
        return self


class RetailConfig(_Section):
    n_traders: int = Field(1000, ge=0, le=10_000_000, description="Retail traders.")
    long_share: Prob = Field(0.5, description="Share of traders whose direction is long.")
    capital_median: float = Field(50_000.0, gt=0, description="Median deposit (money).")
    capital_dispersion: float = Field(0.8, ge=0, description="Lognormal sigma of deposits.")
    leverage_mode: Literal["margin", "absolute"] = Field(
        "margin",
        description="margin: each trader uses a fraction of the largest position the margin rate "
        "in force allows (margin used <= equity), so higher margin means smaller positions; "
        "absolute: a notional / deposit ratio drawn regardless of margin (the old model).",
    )
    leverage_fraction_min: Prob = Field(
        0.2, description="margin mode: smallest fraction of the maximum position used."
    )
    leverage_fraction_max: Prob = Field(
        0.6, description="margin mode: largest fraction of the maximum position used."
    )
    leverage_min: float = Field(
        1.0, gt=0, description="absolute mode: min notional / deposit when opening."
    )
    leverage_max: float = Field(
        5.0, gt=0, description="absolute mode: max notional / deposit when opening."
    )
    lots_min: int = Field(1, ge=1, description="Min lots per opening order.")
    lots_max: int = Field(1000, ge=1, description="Max lots per opening order (a sanity cap).")
    noise_lots_share: float = Field(
        0.25,
        gt=0,
        le=1,
        description="Largest noise or trend order as a share of the trader's opening lots.",
    )
    opening_days: int = Field(5, ge=0, description="Days over which traders open positions.")
    activity: Prob = Field(0.01, description="Probability a trader acts in a step (Poisson clock).")
    trend_share: Prob = Field(0.3, description="Share of traders that follow trends.")
    trend_lookback_steps: int = Field(50, ge=1, description="Trend followers' horizon.")
    attention: float = Field(
        0.0,
        ge=0,
        description="How much recent volatility draws the crowd in: each step the trading "
        "probability is activity × (1 + attention × (fast / slow − 1)), fast and slow being "
        "moving averages of the absolute price change per step (attention_fast_steps, "
        "attention_slow_steps), floored at 0 and capped at attention_cap × activity. 0 = a "
        "constant activity.",
    )
    attention_fast_steps: int = Field(
        10, ge=1, description="Half-life (steps) of the recent absolute price change."
    )
    attention_slow_steps: int = Field(
        500, ge=1, description="Half-life (steps) of the usual absolute price change."
    )
    attention_cap: float = Field(
        10.0, ge=1, description="Most the trading probability may rise, × activity."
    )
    noise_trading: bool = Field(True, description="Round trips after opening (noise/trend).")
    limit_order_share: Prob = Field(0.5, description="Share of orders placed as limits.")
    limit_offset_ticks: int = Field(5, ge=0, description="Max distance of limit orders from mid.")
    stop_loss: float = Field(0.5, gt=0, description="Close when loss exceeds this × deposit.")
    top_up_probability: Prob = Field(0.5, description="Chance of answering a margin call.")
    close_hazard_base: Prob = Field(
        0.002, description="Per-active-step chance of closing early, far from the deadline."
    )
    close_window_days: float = Field(
        3.0,
        ge=0,
        description="Voluntary close times fall uniformly in the last N days before the "
        "deadline: the hazard 1 / (time left) rises as the deadline nears.",
    )
    voluntary_close_share: Prob = Field(
        0.7, description="Share of traders who close before the deadline; the rest are forced."
    )
    ndnp_target: int | None = Field(
        None,
        ge=-10_000_000,
        le=10_000_000,
        description="Set the crowd's NDNP at the deadline (lots, + = net long): late retail "
        "flow (one account without delivery rights, fully funded) trades at market toward the "
        "target over the last ndnp_target_window_days before the deadline, whatever the noise "
        "trading did. None: the NDNP comes out of long_share and the crowd's behaviour.",
    )
    ndnp_target_share: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        description="The same target as a share of open interest, fixed when the window "
        "opens: target = round(share × open interest then). Excludes ndnp_target.",
    )
    ndnp_target_window_days: float = Field(
        1.0,
        gt=0,
        description="Days before the deadline over which the late flow trades to the target.",
    )
    ndnp_target_tolerance: int = Field(
        0,
        ge=0,
        description="Lots of |NDNP at the deadline − target| accepted without a note; 0 = "
        "max(5 lots, 2 % of |target|).",
    )
    engine: Literal["agents", "arrays", "netted"] = Field(
        "agents",
        description="How the crowd runs: agents (one Mesa agent and clearing account per "
        "trader, the reference), arrays (the traders' draws and states as arrays, each with "
        "its own clearing account and its orders sent one by one as the agents engine sends "
        "them: the same run bit for bit, without a Mesa agent per trader) or netted (the "
        "traders as arrays behind two omnibus accounts, their orders of a step netted into a "
        "few aggregate orders: the fast path for large crowds; ODD §7 states what changes).",
    )
    netting_rounds: int = Field(
        2,
        ge=1,
        le=1000,
        description="netted engine: the rounds a phase's orders are netted in (customers in "
        "arrival order, split evenly); each round reads the market afresh (the mark for "
        "stop-losses and margin) after the last round traded. 1 = one netting a phase, the "
        "fastest; more rounds, a market closer to the per-agent one and slower.",
    )
    netting_tick_bucket: int = Field(
        1,
        ge=1,
        le=100_000,
        description="netted engine: a round's limit orders priced at an offset from the mid "
        "are netted in buckets of this many ticks of offset (0..b-1, b..2b-1, ...), each "
        "bucket's aggregate order at its customers' lots-weighted mean offset rounded to a "
        "tick. 1 = every offset its own order (each customer's own price); more, fewer orders "
        "and a faster run, the crowd's limits moved by up to b-1 ticks (ODD §7).",
    )
    rules: str = Field(
        "default",
        description="The crowd's decision rules: default, hold (open, then wait for the broker), "
        "or an import path 'module:Class' to a RetailRules subclass of your own.",
    )

    @model_validator(mode="after")
    def _ranges(self) -> RetailConfig:
        if self.ndnp_target is not None and self.ndnp_target_share is not None:
            raise ValueError(
                "ndnp_target and ndnp_target_share both set: give the target in lots or as a "
                "share of open interest, not both"
            )
        if self.leverage_max < self.leverage_min:
            raise ValueError(
                f"leverage_max = {self.leverage_max}: must be >= leverage_min = {self.leverage_min}"
            )
        if self.lots_max < self.lots_min:
            raise ValueError(f"lots_max = {self.lots_max}: must be >= lots_min = {self.lots_min}")
        if self.leverage_fraction_max < self.leverage_fraction_min:
            raise ValueError(
                f"leverage_fraction_max = {self.leverage_fraction_max}: must be >= "
                f"leverage_fraction_min = {self.leverage_fraction_min}"
            )
        return self


class _DeliveryCurveFields(_Section):
    """The marginal delivery cost curve of a delivery-capable account
    ([`abm.delivery`][abm.delivery]): flat at ``delivery_cost`` up to ``soft_capacity`` lots, then
    rising by ``cost_slope`` per lot, up to a hard ``capacity``."""

    delivery_cost: float | None = Field(
        None,
        ge=0,
        description="Flat marginal delivery cost (price units per unit); None = the contract's.",
    )
    capacity: int | None = Field(
        None, ge=0, description="Hard limit on lots it can deliver or store; None = none."
    )
    soft_capacity: int | None = Field(
        None,
        ge=0,
        description="Lots at the flat cost, beyond which the marginal cost rises; None = all of "
        "capacity (a wall).",
    )
    cost_slope: float = Field(
        0.0,
        ge=0,
        description="Rise of the marginal delivery cost per lot beyond soft_capacity (price "
        "units per lot); 1 / cost_slope is the depth κ in lots per price unit.",
    )

    @model_validator(mode="after")
    def _curve(self):
        if (
            self.soft_capacity is not None
            and self.capacity is not None
            and self.soft_capacity > self.capacity
        ):
            raise ValueError(
                f"soft_capacity = {self.soft_capacity}: must be <= capacity = {self.capacity}"
            )
        if self.cost_slope > 0 and self.soft_capacity is None and self.capacity is None:
            raise ValueError(
                f"cost_slope = {self.cost_slope}: the cost can only rise beyond a soft_capacity; "
                "set soft_capacity (lots at the flat cost)"
            )
        return self


class HedgerConfig(_DeliveryCurveFields):
    enabled: bool = Field(True, description="Include the dominant hedger.")
    n_firms: int = Field(
        1,
        ge=1,
        le=50,
        description="Delivery-capable firms sharing the hedger's role (the counterparty side); "
        "several play Cournot in the forced-close auction.",
    )
    shares: list[float] | None = Field(
        None,
        description="Each firm's share of the quotes, capital and delivery room (so of the "
        "opposite position); None = equal shares.",
    )
    capital: float = Field(1e9, gt=0, description="Deposit of all firms together (money).")
    quote_half_spread_ticks: int = Field(2, ge=1, description="Ordinary quote: fair ± this.")
    quote_size: int = Field(500, ge=1, description="Lots shown at each ordinary quote level.")
    quote_levels: int = Field(3, ge=1, le=50, description="Price levels quoted per side.")
    harvest_window_steps: int = Field(
        50,
        ge=0,
        description="Steps before the deadline from which the firms price the crowd's side by "
        "their harvest policy (until the crowd is flat).",
    )
    spread_policy: str = Field(
        "estimating",
        description="Harvest policy: estimating (the default, a desk's: it estimates the "
        "competing supply from the book it sees to view_depth levels and prices against it); "
        "optimal (the labelled full-information benchmark: the profit-maximising quote from "
        "the whole book and every firm's position and curve, Cournot among several firms); "
        "the baselines fixed (fair ∓ harvest_spread, a dial) and competitive (one tick "
        "behind the best competing quote, never beyond the spread); the counterfactual "
        "ordinary (no harvest: it keeps its ordinary quotes through the deadline); or an import "
        "path 'module:Class' to a HarvestPricing object of your own.",
    )
    harvest_spread: float = Field(
        3.0,
        ge=0,
        description="Baselines only (spread_policy fixed or competitive): harvest quote = fair ∓ "
        "this (price units). The optimal policy ignores it.",
    )
    knows_ndnp: bool = Field(True, description="Brokers share account data with it.")
    view_depth: int = Field(
        5,
        ge=1,
        le=1000,
        description="Price levels per side of the book a firm's desk sees (its own quotes "
        "excluded); the full-information benchmark (spread_policy optimal) sees them all.",
    )
    net_every_day: bool = Field(True, description="Net own longs against shorts at day end.")
    risk_limit: float | None = Field(
        None,
        gt=0,
        description="Daily value-at-risk limit on the firms' net position (money; VaR = z × daily "
        "volatility × price × multiplier × |net|, z from [risk]); near it they quote less and "
        "wider on the side that adds exposure, at it not at all. None = no limit.",
    )
    depth_refill: int = Field(
        0,
        ge=0,
        description="Lots per step by which each side's ordinary quotes are topped up after "
        "fills (finite, replenishing depth); 0 = at once, without limit.",
    )
    risk_widen_ticks: int = Field(
        2, ge=0, description="Extra half-spread (ticks) on the exposure side at the risk limit."
    )
    flow_lean: float = Field(
        0.0,
        ge=0,
        description="Price units its ordinary quotes' centre moves per lot of its recent net "
        "sales (an EWMA of what it sold minus what it bought, from its own fills): quotes that "
        "learn from order flow, so the crowd's orders move the price for longer. 0 = quotes "
        "centred on fair value.",
    )
    flow_lean_half_life_steps: float = Field(
        100.0, gt=0, description="Half-life (steps) of the recent net sales that flow_lean reads."
    )

    @model_validator(mode="after")
    def _firms(self) -> HedgerConfig:
        if self.shares is not None:
            if len(self.shares) != self.n_firms:
                raise ValueError(
                    f"shares has {len(self.shares)} entries: must have n_firms = {self.n_firms}"
                )
            if any(not (x > 0) for x in self.shares) or abs(sum(self.shares) - 1) > 1e-9:
                raise ValueError(
                    f"shares = {self.shares}: each must be > 0 and together they must sum to 1"
                )
        return self

    def firm_shares(self) -> list[float]:
        return (
            list(self.shares) if self.shares is not None else [1.0 / self.n_firms] * (self.n_firms)
        )


class MarketMakerConfig(_Section):
    enabled: bool = Field(True, description="Include the market maker.")
    capital: float = Field(5e6, gt=0, description="Deposit (money).")
    half_spread_ticks: int = Field(1, ge=1, description="Quotes at reservation price ± this.")
    quote_size: int = Field(5, ge=1, description="Lots per quote.")
    inventory_limit: int = Field(50, ge=0, description="Max |inventory| in lots.")
    skew_ticks_per_lot: float = Field(0.1, ge=0, description="Avellaneda–Stoikov style skew.")
    flatten_lead_steps: int = Field(50, ge=0, description="Start flattening this long before.")
    deliverable: bool = Field(False, description="Delivery rights (then it need not flatten).")
    informed: bool = Field(False, description="Skews quotes against the crowd's NDNP.")
    vol_scaled: bool = Field(
        False,
        description="Widen the half-spread and shrink the inventory limit by the ratio of the "
        "market's daily volatility to its reference ([risk]).",
    )


class _FringeFields(_DeliveryCurveFields):
    """How a fringe of delivery-capable traders plays: how much of its supply it shows and
    whether it holds back while the firms harvest."""

    show_levels: int = Field(
        3,
        ge=0,
        le=500,
        description="Levels of its cost ladder each trader shows at once, refilled from "
        "the next as they fill (an iceberg: the rest of its supply is hidden); 0 = the whole "
        "ladder rests in the book (the passive baseline, a labelled arm).",
    )
    harvest_markup: float = Field(
        0.0,
        ge=0,
        description="Price units each trader adds to its delivery cost, on both sides, while "
        "the firms harvest (from hedger.harvest_window_steps before the deadline: the calendar "
        "is public), holding back supply it expects to sell dearer; 0 = it quotes its cost "
        "throughout (the passive baseline).",
    )


class ArbitrageurConfig(_FringeFields):
    n: int = Field(0, ge=0, le=1000, description="Number of delivery-capable arbitrageurs.")
    capacity: int | None = Field(
        0,
        ge=0,
        description="Total hard delivery capacity in lots, split evenly; None = no wall (the "
        "cost keeps rising by cost_slope).",
    )
    soft_capacity: int | None = Field(
        None,
        ge=0,
        description="Total lots at the flat cost, split evenly; None = all of capacity (a wall).",
    )
    cost_slope: float = Field(
        0.0,
        ge=0,
        description="Rise of the group's marginal delivery cost per lot beyond soft_capacity "
        "(price units per lot; each of n arbitrageurs has n times it, so that their depths add "
        "up to 1 / cost_slope lots per price unit).",
    )
    capital: float = Field(1e8, gt=0, description="Deposit of each arbitrageur (money).")
    order_size: int = Field(
        0, ge=0, description="Max lots per quoted level; 0 = no limit (the default)."
    )
    ladder_levels: int = Field(
        20, ge=1, le=500, description="Price levels of the quoted cost curve, per side."
    )


class CommercialsConfig(_FringeFields):
    open_interest: int = Field(
        0,
        ge=0,
        description="Lots held between two delivery-capable commercial accounts (a long and a "
        "short) from the start to delivery: the rest of the market's open interest.",
    )
    capacity: int | None = Field(
        0,
        ge=0,
        description="Lots each commercial can still store (the long) or deliver from inventory "
        "(the short) beyond its opening position; None = no wall.",
    )
    activity: Prob = Field(
        0.0,
        description="Chance per step that a commercial trades for its physical business "
        "(a market order; after the deadline the only flow besides the firms).",
    )
    trade_lots: int = Field(5, ge=1, description="Max lots of one hedging trade.")
    ladder_levels: int = Field(
        20, ge=1, le=500, description="Price levels of the quoted cost curve."
    )

    @property
    def present(self) -> bool:
        """Whether the two commercial accounts exist (a position, room or a business)."""
        return self.open_interest > 0 or self.capacity != 0 or self.activity > 0


class RiskConfig(_Section):
    half_life_days: float = Field(
        5.0,
        gt=0,
        description="Half-life (trading days) of the market's volatility estimate read by the "
        "liquidity providers: an EWMA of squared daily settlement returns, overridden within "
        "the day by the move of the mid-price since the last settlement when that is larger.",
    )
    var_z: float = Field(
        2.33, gt=0, description="Standard deviations of the VaR limits (2.33: 99 %, one-sided)."
    )
    reference_vol: float | None = Field(
        None,
        gt=0,
        description="Daily volatility (fraction) the liquidity providers take as normal; None = "
        "spot.volatility.",
    )


class DiscretionConfig(_Section):
    enabled: bool = Field(
        False,
        description="Exchange discretion (SHFE practice): after a limit-locked session or a "
        "volatility spike the next session's band is widened and margins raised.",
    )
    after_locked: bool = Field(True, description="A limit-locked session triggers it.")
    vol_spike: float | None = Field(
        None,
        gt=0,
        description="|settlement return| over one day (fraction) that triggers it; None = off.",
    )
    band_add: float = Field(
        0.03, ge=0, lt=1, description="Added to the daily band for the next session (fraction)."
    )
    margin_add: float = Field(
        0.02, ge=0, lt=1, description="Added to the margin rate for the next session (points)."
    )


class AgentSpec(_Section):
    """Extra agents of a class of your own, created with the model: ``n`` of ``class`` (an
    import path 'package.module:Class' to a TraderAgent subclass), each built as
    ``Class(model, **params)``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    cls: str = Field(..., alias="class", description="Import path 'package.module:Class'.")
    n: int = Field(1, ge=0, le=10_000_000, description="How many to create.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments of each agent's constructor."
    )


class NextMonthConfig(_Section):
    """The next listed month (``[next_month]``): a second contract in its own order book under
    the same clearing rules, expiring ``days_later`` trading days after the front, so it is
    still trading when the run ends at the front's expiry."""

    enabled: bool = Field(
        False,
        description="List the next month too: its own book, a market maker and storers quoting "
        "it, the front's long commercial storing against it, a margin credit for calendar "
        "spreads and, optionally, a rolling retail product.",
    )
    days_later: int = Field(
        21,
        ge=1,
        le=1000,
        description="Trading days between the front's last trading day and the next month's "
        "(a month: about 21).",
    )
    carry: float = Field(
        0.0,
        description="Price units by which the next month's fair value lies above the front's "
        "(storage and financing for the month between; contango > 0). A state of storage, "
        "read from the market before the deadline (WTI: the 17 April 2020 spread).",
    )
    spread_credit: Prob = Field(
        0.75,
        description="Share of the next month's margin waived on lots that offset the same "
        "member's opposite lots in the front (a calendar spread is margined below two "
        "outright positions).",
    )
    depth_soft: int = Field(
        0,
        ge=0,
        le=10_000_000,
        description="Lots the next month's storers and producers take or give at its flat cost "
        "before their cost rises.",
    )
    depth_cost: float = Field(
        0.05,
        ge=0,
        description="Their flat cost (price units from the next month's fair value).",
    )
    depth_slope: float = Field(
        0.002,
        gt=0,
        description="Rise of their cost per lot beyond depth_soft (price units per lot): 1 / "
        "the next month's depth. No source pins it down; its effect is reported.",
    )
    storage_link: bool = Field(
        True,
        description="The front's long commercial values a delivered lot at the next month's "
        "best bid (sell it forward, store it for the month) and sells the next month as it "
        "buys the front; off: it values the lot at fair value, as without a next month.",
    )
    fund_lots: int = Field(
        0,
        ge=0,
        le=10_000_000,
        description="Long lots held in the front from the start by a rolling retail product "
        "(an index fund: no delivery rights), which rolls them to the next month.",
    )
    fund_roll_start_days: int = Field(
        9,
        ge=1,
        description="Trading days before the deadline day on which the fund starts to roll.",
    )
    fund_roll_days: int = Field(
        4,
        ge=1,
        description="Trading days the roll is spread over (an equal slice every step).",
    )


class OutputConfig(_Section):
    collect_agents: bool = Field(False, description="Per-agent data every step (costly).")


def _check_netted(cfg: RunConfig) -> None:
    """The netted crowd's customers sit behind omnibus accounts: the rules that act on
    accounts one by one across the market need a per-customer rule it does not have yet."""
    c, mg = cfg.clearing, cfg.margin
    why = [
        (
            "clearing.loss_regime",
            c.loss_regime,
            c.loss_regime in ("socialized", "adl"),
            "a clawback or auto-deleveraging ranks accounts by profit, which for the crowd "
            "must be per customer; allowed with the netted engine: broker, insurance_fund",
        ),
        (
            "clearing.liquidation_penalty",
            c.liquidation_penalty,
            c.liquidation_penalty > 0,
            "the penalty is charged per account out of its equity; allowed with the netted "
            "engine: 0",
        ),
        (
            "margin.intraday_check_steps",
            mg.intraday_check_steps,
            mg.intraday_check_steps is not None,
            "the intraday check liquidates accounts one by one; allowed with the netted "
            "engine: none",
        ),
        (
            "output.collect_agents",
            cfg.output.collect_agents,
            cfg.output.collect_agents,
            "the netted crowd's traders are not Mesa agents; allowed with the netted engine: "
            "false (read model.crowd.customers())",
        ),
    ]
    for field, value, bad, reason in why:
        if bad:
            raise ValueError(f"{field} = {value!r} with retail.engine = 'netted': {reason}")


class RunConfig(_Section):
    """A whole run: one seed and one section per part of the model."""

    name: str = "default"
    description: str = ""
    seed: int = Field(42, ge=0, lt=2**63)
    contract: ContractConfig = Field(default_factory=ContractConfig)
    calendar: CalendarConfig = Field(default_factory=CalendarConfig)
    margin: MarginConfig = Field(default_factory=MarginConfig)
    clearing: ClearingConfig = Field(default_factory=ClearingConfig)
    spot: SpotConfig = Field(default_factory=SpotConfig)
    retail: RetailConfig = Field(default_factory=RetailConfig)
    hedger: HedgerConfig = Field(default_factory=HedgerConfig)
    market_maker: MarketMakerConfig = Field(default_factory=MarketMakerConfig)
    arbitrageurs: ArbitrageurConfig = Field(default_factory=ArbitrageurConfig)
    commercials: CommercialsConfig = Field(default_factory=CommercialsConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    discretion: DiscretionConfig = Field(default_factory=DiscretionConfig)
    next_month: NextMonthConfig = Field(default_factory=NextMonthConfig)
    agents: list[AgentSpec] = Field(
        default_factory=list,
        description="Extra agents of your own classes ([[agents]] tables: class, n, params).",
    )
    output: OutputConfig = Field(default_factory=OutputConfig)

    @model_validator(mode="after")
    def _cross(self) -> RunConfig:
        last = self.calendar.trading_days - 1
        for i, s in enumerate(self.margin.step_ups):
            if s.days_before_last > last:
                raise ValueError(
                    f"margin.step_ups[{i}].days_before_last = {s.days_before_last}: must be <= "
                    f"{last} (trading_days - 1)"
                )
            applied = s.applied(self.margin.rate) + self.margin.broker_add_on
            if applied > 1:
                raise ValueError(
                    f"margin.step_ups[{i}] sets a rate of {applied:.4g} on the base "
                    f"{self.margin.rate}: a margin rate must be <= 1"
                )
        c = self.contract
        if (
            self.hedger.enabled
            and self.hedger.spread_policy in ("optimal", "estimating")
            and c.price_limit is None
            and not (self.arbitrageurs.n > 0 and self.arbitrageurs.capacity is None)
            and not (self.commercials.present and self.commercials.capacity is None)
        ):
            raise ValueError(
                "nothing bounds the harvest price: with no price band (contract.price_limit = "
                "none) the optimal harvest quote runs away once the competing delivery "
                "capacity is used up (upward against a net-short crowd; downward too when "
                "negative prices are allowed). Set a band, or give the arbitrageurs or the "
                "commercials a cost curve without a wall (capacity = none, with soft_capacity "
                "and cost_slope)"
            )
        if (
            self.spot.kind != "csv"
            and self.spot.initial <= 0
            and not (self.contract.allow_negative_prices)
        ):
            raise ValueError(
                f"spot.initial = {self.spot.initial}: the price must be positive (> 0), unless "
                "contract.allow_negative_prices = true"
            )
        fee = c.fee_per_lot * c.multiplier
        if not fee < MONEY_MAX:
            raise ValueError(
                f"contract.fee_per_lot = {c.fee_per_lot}: {fee:.3g} money per lot (× "
                f"contract.multiplier = {c.multiplier}); allowed below {MONEY_MAX:.0e} money a "
                "lot, where float64 still counts money to the cent"
            )
        level = abs(self.spot.initial)
        if self.spot.kind != "csv" and level > 0 and c.tick_size > level / 10:
            raise ValueError(
                f"contract.tick_size = {c.tick_size}: coarser than a tenth of the price level "
                f"(spot.initial = {self.spot.initial}), so prices could barely move; allowed "
                f"tick_size <= {level / 10:g}"
            )
        if (
            self.spot.kind != "csv"
            and level > 0
            and c.price_limit is not None
            and c.price_limit * level < c.tick_size
        ):
            raise ValueError(
                f"contract.price_limit = {c.price_limit}: a band of ±{c.price_limit * level:g} "
                f"around the price level {level:g} is narrower than one tick "
                f"(contract.tick_size = {c.tick_size}); allowed price_limit >= "
                f"{c.tick_size / level:.3g}, or 'none' for no band"
            )
        if self.retail.engine == "netted":
            _check_netted(self)
        if self.retail.engine == "arrays" and self.output.collect_agents:
            raise ValueError(
                "output.collect_agents = True with retail.engine = 'arrays': the arrays "
                "crowd's traders are not Mesa agents, so Mesa's per-agent collection would "
                "leave them out; allowed with the arrays engine: false (read "
                "model.crowd.customers(), or run retail.engine = 'agents')"
            )
        nm = self.next_month
        if nm.fund_lots and not nm.enabled:
            raise ValueError(
                f"next_month.fund_lots = {nm.fund_lots}: a rolling fund needs a month to roll "
                "into; set next_month.enabled = true, or fund_lots = 0"
            )
        if nm.enabled and nm.fund_lots:
            deadline_day = self.calendar.trading_days - 1 - self.calendar.forced_close_lead_days
            if nm.fund_roll_start_days > deadline_day:
                raise ValueError(
                    f"next_month.fund_roll_start_days = {nm.fund_roll_start_days}: the roll would "
                    f"start before the first day; allowed 1..{deadline_day} (the deadline is "
                    f"day {deadline_day})"
                )
            if nm.fund_roll_days > nm.fund_roll_start_days:
                raise ValueError(
                    f"next_month.fund_roll_days = {nm.fund_roll_days}: the roll would run into "
                    f"the deadline day; allowed 1..{nm.fund_roll_start_days} "
                    "(next_month.fund_roll_start_days)"
                )
            if not (self.hedger.enabled or self.commercials.present):
                raise ValueError(
                    f"next_month.fund_lots = {nm.fund_lots}: the fund's opening position needs "
                    "a holder of the other side (the hedger or the commercials); enable one"
                )
        return self

    # -- convenience -------------------------------------------------------------------------
    def with_updates(self, updates: dict[str, Any]) -> RunConfig:
        """A validated copy with dotted-path (or short-name) updates applied. An update that
        changes a field with no effect in the resulting config is refused
        ([`inert()`][abm.config.inert])."""
        data = self.model_dump()
        for key, value in updates.items():
            _set_dotted(data, key, value)
        after = validate(data)
        refuse_inert(self, after, updates)
        return after

    def value(self, path: str) -> Any:
        """The value at a dotted path (or short name)."""
        node: Any = self
        for part in dotted(path).split("."):
            node = getattr(node, part)
        return node


def inert(cfg: RunConfig) -> dict[str, str]:
    """The fields that have no effect on a run of ``cfg``, each (dotted path) with why and what
    would give it one. Each rule is checked by running a config with the field changed
    (tests/test_inert.py): the results do not move."""
    out: dict[str, str] = {}

    def section(name: str, why: str, keep: tuple[str, ...] = ()) -> None:
        for f in type(getattr(cfg, name)).model_fields:
            if f not in keep:
                out.setdefault(f"{name}.{f}", why)

    h = cfg.hedger
    if not h.enabled:
        section("hedger", "there is no hedger (hedger.enabled = false)", keep=("enabled",))
    elif h.spread_policy in ("optimal", "estimating", "ordinary"):
        out["hedger.harvest_spread"] = (
            f"the harvest policy '{h.spread_policy}' does not use a typed-in spread; only the "
            "labelled baselines do (hedger.spread_policy = fixed or competitive)"
        )
    if h.enabled and h.spread_policy in ("optimal", "ordinary"):
        out["hedger.view_depth"] = (
            f"the harvest policy '{h.spread_policy}' does not decide from a desk's view (optimal "
            "reads the whole book, ordinary does not harvest); set hedger.spread_policy = "
            "estimating"
        )
    if cfg.arbitrageurs.n == 0:
        section(
            "arbitrageurs",
            "there are no delivery arbitrageurs (arbitrageurs.n = 0); set arbitrageurs.n, e.g. "
            "--set arbitrageurs.n=2",
            keep=("n",),
        )
    mm = cfg.market_maker
    if not mm.enabled:
        section(
            "market_maker",
            "there is no market maker (market_maker.enabled = false)",
            keep=("enabled",),
        )
    elif mm.deliverable:
        out["market_maker.flatten_lead_steps"] = (
            "a market maker with delivery rights (market_maker.deliverable = true) never "
            "flattens before the deadline"
        )
    co = cfg.commercials
    if not co.present:
        # (not soft_capacity: removing the commercials may have to lower it with capacity)
        for f in ("delivery_cost", "cost_slope", "trade_lots", "ladder_levels"):
            out[f"commercials.{f}"] = (
                "there are no commercials (commercials.open_interest, capacity and activity are "
                "all 0); give them a position, room or business"
            )
    elif co.activity == 0:
        out["commercials.trade_lots"] = (
            "the commercials never trade for their business (commercials.activity = 0)"
        )
    nm = cfg.next_month
    if not nm.enabled:
        section(
            "next_month",
            "there is no next month (next_month.enabled = false)",
            keep=("enabled", "fund_lots"),
        )
    elif not nm.fund_lots:
        for f in ("fund_roll_start_days", "fund_roll_days"):
            out[f"next_month.{f}"] = "there is no rolling fund (next_month.fund_lots = 0)"
    rc = cfg.retail
    if rc.engine != "netted":
        for f in ("netting_rounds", "netting_tick_bucket"):
            out[f"retail.{f}"] = "used only by the netted crowd engine (retail.engine = netted)"
    if rc.leverage_mode == "margin":
        for f in ("leverage_min", "leverage_max"):
            out[f"retail.{f}"] = (
                "used only when retail.leverage_mode = absolute; in margin mode the traders use "
                "retail.leverage_fraction_min..max of what the margin allows"
            )
    else:
        for f in ("leverage_fraction_min", "leverage_fraction_max"):
            out[f"retail.{f}"] = (
                "used only when retail.leverage_mode = margin; in absolute mode the traders "
                "use retail.leverage_min..max"
            )
    if rc.ndnp_target is None and rc.ndnp_target_share is None:
        for f in ("ndnp_target_window_days", "ndnp_target_tolerance"):
            out[f"retail.{f}"] = (
                "no NDNP target is set (retail.ndnp_target or retail.ndnp_target_share)"
            )
    if rc.trend_share == 0 or not rc.noise_trading:
        out["retail.trend_lookback_steps"] = (
            "no trader follows trends (retail.trend_share = 0 or retail.noise_trading = false)"
        )
    sp = cfg.spot
    if sp.kind != "csv":
        for f in ("csv_path", "csv_resample"):
            out[f"spot.{f}"] = f"the spot is not read from a CSV (spot.kind = {sp.kind})"
    if sp.kind != "ou":
        for f in ("mean_reversion", "long_run_mean", "jump_intensity", "jump_mean", "jump_std"):
            out[f"spot.{f}"] = (
                f"used only by the Ornstein–Uhlenbeck spot (spot.kind = ou), not {sp.kind}"
            )
    if sp.kind != "gbm":
        out["spot.drift"] = f"used only by the GBM spot (spot.kind = gbm), not {sp.kind}"
    if not cfg.discretion.enabled:
        section(
            "discretion",
            "the exchange uses no discretion (discretion.enabled = false)",
            keep=("enabled",),
        )
    risk_limited = h.enabled and h.risk_limit is not None
    vol_scaled = mm.enabled and mm.vol_scaled
    if not risk_limited:
        out["risk.var_z"] = "no value-at-risk limit is set (hedger.risk_limit = none, or no hedger)"
        if not vol_scaled:
            for f in ("half_life_days", "reference_vol"):
                out[f"risk.{f}"] = (
                    "no liquidity provider reads the market's volatility (no hedger.risk_limit "
                    "and no market_maker.vol_scaled)"
                )
    return out


def refuse_inert(before: RunConfig, after: RunConfig, updates: dict[str, Any]) -> None:
    """Raise `ConfigError` if an update changed a field that has no effect in ``after``,
    saying why and what to set instead. Setting an idle field to zero, none or false is
    allowed: it switches off what is already off (a test that empties a market sets every
    commercial field to 0), which no reader can mistake for an effect."""
    idle = inert(after)
    bad = []
    for key in updates:
        path = dotted(key)
        value = after.value(path)
        if value is None or value is False or (isinstance(value, int | float) and value == 0):
            continue
        if path in idle and before.value(path) != value:
            shown = key if key == path else f"{key} ({path})"
            bad.append(f"{shown} = {after.value(path)!r} has no effect here: {idle[path]}")
    if bad:
        raise ConfigError("\n".join(bad))


def dotted(key: str) -> str:
    """The dotted config path of a key: a short name, a dotted path, or a flat one with double
    underscores (``retail__long_share``: what a Python keyword argument can spell)."""
    return SHORT_NAMES.get(key, key).replace("__", ".")


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    path = dotted(key)
    parts = path.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(
                f"unknown config key '{key}': no section '{'.'.join(parts[: i + 1])}'"
                f"; sections are {sorted(k for k, v in data.items() if isinstance(v, dict))}"
            )
        node = node[part]
    if not isinstance(node, dict) or parts[-1] not in node:
        allowed = sorted(node) if isinstance(node, dict) else []
        raise ConfigError(
            f"unknown config key '{key}'; allowed here: {allowed} "
            f"(short names: {sorted(SHORT_NAMES)})"
        )
    node[parts[-1]] = value


def _format_errors(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<config>"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            lines.append(f"{loc}: unknown field (value {e['input']!r}); check the spelling")
        elif e["loc"] and e["type"] != "value_error":
            lines.append(f"{loc} = {e['input']!r}: {msg}")
        else:
            lines.append(f"{loc}: {msg}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def validate(data: dict[str, Any]) -> RunConfig:
    """Build a [`RunConfig`][abm.config.RunConfig], turning validation errors into one readable
    ConfigError."""
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(err)) from None


def parse_value(text: str) -> Any:
    """Parse a ``--set`` value as a TOML scalar or array; bare words stay strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def read_toml(path: str | Path, updates: dict[str, Any] | None = None) -> RunConfig:
    """The config a TOML file describes, with ``updates`` (dotted paths or short names) applied
    and everything validated; its name defaults to the file's stem. Loading a shipped scenario
    by name, with its plugins checked, is [`abm.scenarios.load()`][abm.scenarios.load]."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    data.setdefault("name", path.stem)
    data = copy.deepcopy(data)
    if not updates:
        return validate(data)
    try:
        before: RunConfig | None = validate(copy.deepcopy(data))
    except ConfigError:  # a file the updates complete: nothing to compare against
        before = None
    for key, value in updates.items():
        _set_dotted_loose(data, key, value)
    after = validate(data)
    if before is not None:
        refuse_inert(before, after, updates)
    return after


def _set_dotted_loose(data: dict[str, Any], key: str, value: Any) -> None:
    """Like _set_dotted, but sections absent from a TOML file are filled from defaults."""
    full = RunConfig().model_dump()
    path = dotted(key)
    parts = path.split(".")
    # Check the key exists in the schema (names the problem), then set it in the sparse dict.
    _set_dotted(full, key, value)
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value

"""The results schema: every column the model writes, with its unit and meaning.

One place for the whole store: the run summary (``summary.json``, and one row per run in a
sweep's ``runs`` table), the per-step ``timeseries``, the ``accounts``, ``events``, ``days``,
``by_class`` and ``depth`` tables. Parquet files carry each column's unit and meaning in their
field metadata ([`field_metadata()`][abm.schema.field_metadata]), ``abm columns`` prints this
dictionary, and a test fails if the model writes a column that is not described here.

Units: ``price`` (price units of the contract, as quoted), ``lots`` (contracts), ``money``
(price × lots × ``contract.multiplier``, the account currency), ``step`` (model steps from 0),
``day`` (trading days from 0), ``fraction`` (0–1 unless said), ``count``, ``seconds``,
``label`` (text), ``flag`` (true/false or 1/0).
"""

from __future__ import annotations

import re

from abm.exchange.clearing import CHANNELS as TRADE_CHANNELS

Column = tuple[str, str]  # (unit, meaning)

#: the agent classes results are kept by (each agent's ``label``; an agent class of the
#: user's own adds its label), in the order series and tables list them
CLASSES: dict[str, str] = {
    "retail": "retail traders without delivery rights (and an NDNP experiment's late flow)",
    "hedger": "the delivery-capable firms that hold the crowd's opposite position",
    "market_maker": "the market maker",
    "arbitrageur": "delivery arbitrageurs (the fringe)",
    "commercial": "commercials with storage or inventory (the fringe)",
}

#: the channels a class's P&L is split into (abm.metrics): the execution channels of the
#: clearing house, then the rest; each class's channels add up to its ``pnl``
CHANNELS: dict[str, str] = {
    **TRADE_CHANNELS,
    "fees": "exchange fees paid (negative)",
    "delivery_costs": "delivery costs paid on lots delivered (negative)",
    "socialized": "clawback taken by the socialized-loss regime (negative)",
    "bad_debt_covered": "negative equity made good by the loss regime (positive)",
    "liquidation_penalty": "liquidation penalty paid to the insurance fund (negative)",
    "market": "holding positions while fair value moves (mark-to-market against fair)",
}

SUMMARY: dict[str, Column] = {
    "scenario": ("label", "scenario name (config.name)"),
    "seed": ("count", "the run's seed"),
    "n_retail": ("count", "retail traders (retail.n_traders)"),
    "retail_long_share": ("fraction", "share of retail traders drawn long (input)"),
    "margin_rate": ("fraction", "base initial margin rate (input, margin.rate)"),
    "forced_close_lead_days": ("day", "sessions between the forced-close deadline and expiry"),
    "arbitrage_capacity": ("lots", "the arbitrageurs' delivery capacity (input)"),
    "harvest_spread": (
        "price",
        "fixed spread of the labelled baseline policies (input; unused by spread_policy = optimal)",
    ),
    "harvest_policy": ("label", "the hedger's pricing (hedger.spread_policy)"),
    "n_firms": ("count", "delivery-capable firms sharing the hedger's role"),
    "loss_regime": ("label", "who absorbs negative equity: broker, insurance_fund, socialized"),
    "ndnp_at_deadline": (
        "lots",
        "retail non-deliverable net position at the deadline "
        "(+ = crowd net long): what must be closed",
    ),
    "ndnp_at_harvest_start": ("lots", "the same at the first step of the harvest window"),
    "ndnp_target": (
        "lots",
        "the NDNP target the late retail flow traded to (retail.ndnp_target "
        "or ndnp_target_share × open interest); None when not set",
    ),
    "ndnp_target_gap": ("lots", "NDNP at the deadline − target; None when no target"),
    "ndnp_share_of_open_interest": ("fraction", "NDNP / open interest at harvest start (signed)"),
    "firms_share_of_opposite": (
        "fraction",
        "lots the firms hold opposite the crowd at the harvest's start / |NDNP|: how much of the "
        "crowd's counterparty side their quotes won (an outcome, not a setting)",
    ),
    "open_interest_at_harvest_start": ("lots", "open interest at the harvest window's start"),
    "retail_lots_at_harvest_start": ("lots", "retail long + short lots at harvest start"),
    "retail_open_interest_at_deadline": ("lots", "retail long + short lots at the deadline"),
    "retail_lots_opened": ("lots", "lots the crowd opened over the run"),
    "forced_close_lots": ("lots", "lots the broker force-closed"),
    "harvest_discount": (
        "price",
        "how far from fair value the last forced-close lot cleared "
        "(below fair for a net-long crowd, above for net short): the "
        "divergence the harvest forced",
    ),
    "basis_at_forced_close": ("price", "VWAP of the forced-close fills − spot"),
    "relative_basis_at_forced_close": ("fraction", "basis_at_forced_close / spot"),
    "max_abs_basis_final_window": ("price", "largest |futures − spot| in the final window"),
    "basis_at_expiry": (
        "price",
        "final settlement − spot at expiry; NaN when the last day "
        "formed no price (reason in notes)",
    ),
    "final_settlement": ("price", "the last day's settlement price"),
    "final_settlement_source": ("label", "how it was set: vwap, last, locked, previous"),
    "settlement_deadline_day": ("price", "settlement price of the deadline's session"),
    "min_price_deadline_day": ("price", "lowest trade price of the deadline's session"),
    "late_fall_share_deadline_day": (
        "fraction",
        "share of the deadline session's move (previous settlement → its settlement) that came "
        "in its last 20 % of steps (wti scenarios: the last 20 minutes; CLK20 on 20 April "
        "2020: about 0.7)",
    ),
    "next_settlement_deadline_day": (
        "price",
        "the next listed month's settlement on the deadline's session ([next_month] only)",
    ),
    "calendar_spread_deadline_day": (
        "price",
        "front − next month settlement on the deadline's session (CLK20–CLM20, 20 April "
        "2020: −58.06) ([next_month] only)",
    ),
    "next_settlement_final": ("price", "the next month's settlement on the front's last day"),
    "next_open_interest_final": ("lots", "the next month's open interest when the run ends"),
    "next_ledger_residual": (
        "money",
        "the next month's ledger residual at its last settlement (positions still open)",
    ),
    "storage_hedge_lots_at_deadline": (
        "lots",
        "lots the front's long commercial had sold forward in the next month at the deadline "
        "session's end (its storage hedge)",
    ),
    "fund_rolled_lots": ("lots", "lots the rolling fund holds in the next month at the end"),
    "spot_at_expiry": ("price", "spot at expiry"),
    "locked_sessions": (
        "count",
        "sessions that settled limit-locked (broker orders unfilled at the band's edge)",
    ),
    "harvest_end_step": ("step", "the step after the crowd was flat (the harvest's end)"),
    "discretion_days": ("count", "sessions on which the exchange's discretion rule acted"),
    "transfer_retail_to_hedger": (
        "money",
        "net execution transfer from the crowd to the hedger over all channels",
    ),
    "theory_divergence": (
        "price",
        "closed-form harvest discount for the NDNP at the deadline (abm.theory.solve_harvest)",
    ),
    "theory_transfer": ("money", "closed-form harvest transfer to the firms for that NDNP"),
    "theory_ex_ante_divergence": (
        "price",
        "closed-form harvest discount predicted when the harvest window opens, from the NDNP "
        "then, the fringe's curves and holdings then, the firms' costs and own positions, and "
        "the band (abm.metrics.ex_ante_theory): a prediction the run can contradict",
    ),
    "theory_ex_ante_transfer": ("money", "ex-ante closed-form harvest transfer to the firms"),
    "theory_ex_ante_retail_loss": ("money", "ex-ante closed-form loss of the crowd in the harvest"),
    "regime": (
        "label",
        "what bounds the ex-ante harvest: band_cap (the band or floor stops the price short of "
        "the optimum), interior (the firms' optimum), fringe_cost (the firms take all just "
        "ahead of the fringe's cost), fringe_only (no firm gains by buying: it holds too little "
        "of the opposite side), no_fringe (nobody else can deliver on the crowd's side), "
        "no_need (a flat crowd) or no_firm",
    ),
    "harvest_discount_vwap": (
        "price",
        "volume-weighted |fair − price| of the forced-close fills (harvest_discount is the "
        "last, marginal one)",
    ),
    "theory_retail_harvest_loss": ("money", "closed-form loss of the crowd in the harvest"),
    "theory_fringe_lots": ("lots", "lots the fringe absorbs in the closed form"),
    "theory_bound": (
        "label",
        "what bounds the closed-form discount: fringe_cost (the "
        "fringe's cost), interior (the firms' optimum), cap (the band or floor), "
        "or why there is no theory (e.g. no firm, a baseline policy)",
    ),
    "forced_close_within_crowd_gross": (
        "money",
        "what the winning side of the crowd took from "
        "the losing side in forced-close prints between "
        "accounts without delivery rights (nets to zero "
        "for the class)",
    ),
    "fees_total": ("money", "all exchange fees"),
    "delivery_costs_total": ("money", "all delivery costs paid at expiry"),
    "bad_debt": ("money", "negative equity absorbed, all regimes"),
    "bad_debt_broker": ("money", "absorbed by the broker"),
    "bad_debt_insurance_fund": ("money", "paid by the insurance fund"),
    "bad_debt_socialized": ("money", "clawed back from winners (socialized)"),
    "insurance_fund_final": ("money", "insurance fund balance at the end"),
    "retail_loss_negative_share": (
        "fraction",
        "share of the crowd's loss (money) that ended as "
        "negative balances absorbed by the loss regime",
    ),
    "n_margin_calls": ("count", "margin calls issued"),
    "n_liquidations": ("count", "margin liquidations started"),
    "n_intraday_liquidations": ("count", "liquidations started by the intraday risk check"),
    "n_negative_equity": ("count", "accounts that went below zero equity"),
    "n_cascades": (
        "count",
        "liquidation chains (a liquidation's price move triggering more) "
        "of at least the cascade threshold",
    ),
    "max_cascade_lots": ("lots", "lots liquidated in the largest chain"),
    "max_cascade_price_move": ("fraction", "relative price move over the largest chain"),
    "volume_total": ("lots", "lots traded over the run"),
    "turnover": ("money", "traded notional over the run"),
    "ledger_residual": (
        "money",
        "Σ accounts' (equity − deposits) + fees + delivery costs + "
        "insurance fund change − broker loss: zero to rounding when every cash "
        "flow has both ends booked",
    ),
    "wall_seconds": ("seconds", "wall-clock time of the run"),
    "notes": ("label", "why a metric is NaN, or other remarks; empty when none"),
}
SUMMARY_PATTERNS: list[tuple[str, Column]] = [
    (
        r"pnl_(retail|hedger|market_maker|arbitrageurs|commercials)",
        ("money", "P&L of the class over the run (equity − deposits)"),
    ),
    (
        r"retail_pnl_(" + "|".join(CHANNELS) + ")",
        (
            "money",
            "the crowd's P&L in one channel (see by_class); the channels add up to pnl_retail",
        ),
    ),
    (
        r"transfer_retail_to_hedger_(" + "|".join(TRADE_CHANNELS) + ")",
        ("money", "net execution transfer from the crowd to the hedger in one channel"),
    ),
]

TIMESERIES: dict[str, Column] = {
    "step": ("step", "the model step (row index)"),
    "day": ("day", "trading day of the step"),
    "spot": ("price", "exogenous spot price"),
    "fair": ("price", "fair value = spot × (1 + carry × days to expiry)"),
    "futures": ("price", "last traded futures price"),
    "futures_vwap": ("price", "VWAP of the step's fills (NaN: no fill)"),
    "best_bid": ("price", "best bid at the step's end (NaN: none)"),
    "best_ask": ("price", "best ask at the step's end (NaN: none)"),
    "mid": ("price", "(best bid + best ask) / 2, else the last price"),
    "basis": ("price", "futures − spot"),
    "relative_basis": ("fraction", "basis / spot"),
    "volume": ("lots", "lots traded in the step"),
    "buy_volume": ("lots", "of which initiated by buyers"),
    "open_interest": ("lots", "open interest (= Σ long = Σ short)"),
    "ndnp": ("lots", "retail non-deliverable net position (+ = crowd net long)"),
    "forced_volume": ("lots", "forced-close lots filled in the step"),
    "liquidation_volume": ("lots", "liquidation lots filled in the step"),
    "settlement": ("price", "the latest settlement price"),
    "margin_rate_in_force": (
        "fraction",
        "the margin rate applying at the step (schedule, step-ups and discretion included)",
    ),
    "harvest_window": ("flag", "1 while the harvest runs (window start to the crowd flat)"),
    "transfer_retail_to_hedger": ("money", "cumulative execution transfer crowd → hedger"),
    "n_margin_calls": ("count", "cumulative margin calls"),
    "n_liquidations": ("count", "cumulative liquidations started"),
    "bad_debt": ("money", "cumulative bad debt absorbed"),
    "insurance_fund": ("money", "insurance fund balance"),
    "next_futures": (
        "price",
        "the next listed month's VWAP of the step, else its last trade, carried forward "
        "([next_month] only)",
    ),
    "next_settlement": ("price", "the next month's last settlement ([next_month] only)"),
    "calendar_spread": ("price", "futures − next_futures: front minus next ([next_month] only)"),
    "run_id": ("label", "the run (sweep tables only)"),
}
TIMESERIES_PATTERNS: list[tuple[str, Column]] = [
    (
        r"net_(" + "|".join(CLASSES) + ")",
        ("lots", "net position of the class (long − short)"),
    ),
    (
        r"equity_(" + "|".join(CLASSES) + ")",
        ("money", "equity of the class, marked at the latest price"),
    ),
    (
        r"margin_(" + "|".join(CLASSES) + ")",
        ("money", "margin the class's lots require at the settlement price and rate in force"),
    ),
]

ACCOUNTS: dict[str, Column] = {
    "account": ("count", "account id at the exchange"),
    "owner": ("label", "the owner's class (agent label)"),
    "deliverable": ("flag", "whether the account may make or take delivery"),
    "agent_id": ("count", "Mesa unique_id of the owning agent"),
    "direction": ("count", "retail: +1 long, −1 short; 0 otherwise"),
    "trend": ("flag", "retail: follows trends"),
    "state": ("label", "retail: waiting, holding, closing, done, stopped"),
    "deposits": ("money", "money deposited"),
    "equity": ("money", "equity at the end"),
    "pnl": ("money", "equity − deposits"),
    "long": ("lots", "long lots at the end"),
    "short": ("lots", "short lots at the end"),
    "fees": ("money", "fees paid"),
    "realized": ("money", "realized trading P&L"),
    "delivery_pnl": ("money", "P&L of delivery against spot at expiry"),
    "delivery_cost_paid": ("money", "delivery costs paid"),
    "bad_debt_received": ("money", "negative equity made good by the loss regime"),
    "clawed_back": ("money", "taken by the socialized-loss clawback"),
    "penalty_paid": ("money", "liquidation penalties paid"),
    "n_margin_calls": ("count", "margin calls received"),
    "n_liquidations": ("count", "liquidations suffered"),
    "went_negative": ("flag", "equity fell below zero at some point"),
    "broker_receivable": ("money", "what the account owes its broker after bad debt"),
}
ACCOUNT_PATTERNS: list[tuple[str, Column]] = [
    (
        r"transfer_(ordinary|harvest_forced_close|forced_close_within_crowd|liquidation|expiry)",
        ("money", "execution transfer received in the channel (against fair value)"),
    ),
]

EVENTS: dict[str, Column] = {
    "step": ("step", "when"),
    "kind": (
        "label",
        "margin_call, forced_close_start, negative_equity, bad_debt_covered, "
        "clawback, socialized, adl, adl_bankrupt, top_up, netting, expiry_close, delivery",
    ),
    "account": ("count", "the account concerned (−1: none)"),
    "lots": ("lots", "lots concerned"),
    "price": ("price", "price concerned (NaN: none)"),
    "amount": ("money", "money concerned (NaN: none)"),
    "note": ("label", "free text"),
}

DAYS: dict[str, Column] = {
    "day": ("day", "trading day"),
    "settlement": ("price", "the day's settlement price"),
    "margin_rate": ("fraction", "margin rate for the next day's calls"),
    "n_margin_calls": ("count", "calls issued at the day's end"),
    "volume": ("lots", "lots traded that day"),
    "open_interest": ("lots", "open interest at the day's end"),
    "source": ("label", "how the settlement was set: vwap, last, locked, previous"),
    "discretion": (
        "flag",
        "the exchange used its discretion for the next session (wider band, more margin)",
    ),
}

BY_CLASS: dict[str, Column] = {
    "owner": ("label", "the class (agent label)"),
    "pnl": ("money", "the class's P&L; equals the sum of its channels"),
    **{c: ("money", meaning) for c, meaning in CHANNELS.items()},
}

DEPTH: dict[str, Column] = {
    "level": ("count", "k-th price level from the touch (1 = best)"),
    "bid": ("lots", "mean lots resting at the k-th bid level (sampled every 10 steps)"),
    "ask": ("lots", "mean lots resting at the k-th ask level"),
}

#: a sweep's runs table: the run's identity, its varied parameters, then the whole summary
RUNS: dict[str, Column] = {
    "run_id": ("label", "the run: point and replicate"),
    "point": ("count", "design point"),
    "replicate": ("count", "replicate at the point"),
    "run_seconds": ("seconds", "wall-clock seconds of the run in its worker"),
    "spec_hash": (
        "label",
        "hash of the sweep spec that wrote the run (resume counts a run file only if it "
        "matches the folder's manifest)",
    ),
}
RUNS_PATTERNS: list[tuple[str, Column]] = [
    (r"param_.+", ("input", "a varied parameter's value (the spec's [vary] name, dots as _)")),
    (
        r"cf_.+",
        (
            "as the output",
            "the output in the counterfactual arm (spec counterfactual, "
            "e.g. no_harvest), same seed",
        ),
    ),
    (
        r"effect_.+",
        ("as the output", "paired effect: the output minus its counterfactual, same seed"),
    ),
]

#: a finished sweep's per-point statistics (abm.statistics.point_table)
POINTS: dict[str, Column] = {
    "point": ("count", "design point"),
    "metric": ("label", "the summary column summarised"),
    "n": ("count", "replicates with a finite value"),
    "mean": ("as metric", "mean over replicates"),
    "sd": ("as metric", "standard deviation over replicates"),
    "se": ("as metric", "standard error of the mean"),
    "t_lo": ("as metric", "lower end of the Student-t 95 % interval of the mean"),
    "t_hi": ("as metric", "upper end of the Student-t 95 % interval"),
    "ci_lo": ("as metric", "lower end of the percentile-bootstrap 95 % interval of the mean"),
    "ci_hi": ("as metric", "upper end of the bootstrap interval"),
    "note": ("label", "NaN runs left out, or why there is no interval"),
}

TABLES: dict[str, tuple[dict[str, Column], list[tuple[str, Column]]]] = {
    "summary": (SUMMARY, SUMMARY_PATTERNS),
    "timeseries": (TIMESERIES, TIMESERIES_PATTERNS),
    "accounts": (ACCOUNTS, ACCOUNT_PATTERNS),
    "events": (EVENTS, []),
    "days": (DAYS, []),
    "by_class": (BY_CLASS, []),
    "depth": (DEPTH, []),
    "runs": ({**RUNS, **SUMMARY}, RUNS_PATTERNS + SUMMARY_PATTERNS),
    "points": (POINTS, RUNS_PATTERNS),
}


def describe(table: str, column: str) -> Column:
    """(unit, meaning) of ``column`` in ``table``; KeyError names what is undocumented."""
    if table not in TABLES:
        raise KeyError(f"no table {table!r}; tables: {sorted(TABLES)}")
    exact, patterns = TABLES[table]
    if column in exact:
        return exact[column]
    for pat, col in patterns:
        if re.fullmatch(pat, column):
            return col
    raise KeyError(f"{table}.{column} is not documented in abm/schema.py")


def undocumented(table: str, columns) -> list[str]:
    """The columns of ``columns`` that [`describe()`][abm.schema.describe] does not know."""
    out = []
    for c in columns:
        try:
            describe(table, str(c))
        except KeyError:
            out.append(str(c))
    return out


def field_metadata(table: str, column: str) -> dict[bytes, bytes]:
    """Parquet field metadata for a column: its unit and meaning (empty when unknown)."""
    try:
        unit, meaning = describe(table, column)
    except KeyError:
        return {}
    return {b"unit": unit.encode(), b"description": meaning.encode()}


def rows(table: str | None = None) -> list[tuple[str, str, str, str]]:
    """(table, column or pattern, unit, meaning) for ``abm columns``."""
    out = []
    for name, (exact, patterns) in TABLES.items():
        if table not in (None, name):
            continue
        if name == "runs":  # the summary's columns are listed under summary
            exact = RUNS
            patterns = RUNS_PATTERNS + [(r"<every summary column>", ("", "as in summary"))]
        for col, (unit, meaning) in exact.items():
            out.append((name, col, unit, meaning))
        for pat, (unit, meaning) in patterns:
            out.append((name, pat, unit, meaning))
    return out

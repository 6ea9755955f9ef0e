"""Run metrics: basis, NDNP, transfers by class and channel, and stylized facts of returns.

Channels of a class's P&L (money, summing to its P&L):

* ``ordinary``, ``harvest_forced_close``, ``forced_close_within_crowd``, ``liquidation``,
  ``expiry`` — execution transfers: each fill moves (fair − price) × lots × multiplier from
  seller to buyer; a fill's channel is its price source: ``harvest_forced_close`` if it prints
  at the hedger's harvest quote or in a forced close against an account with delivery rights,
  ``forced_close_within_crowd`` if a forced close prints between two accounts without delivery
  rights (the crowd's longs and shorts closing against each other in the auction),
  ``liquidation`` if it is a margin liquidation or ADL, ``ordinary`` otherwise — whenever it
  happens;
* ``fees`` and ``delivery_costs`` paid; ``socialized`` (clawed back, −) and ``bad_debt_covered``
  (received from broker, fund or clawback, +); ``liquidation_penalty`` paid to the fund;
* ``market`` — the rest: what holding a position earned as fair value moved (zero in total).
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from abm import theory
from abm.exchange.clearing import CHANNELS as TRADE_CHANNELS

if TYPE_CHECKING:
    from abm.model import MarketModel


def _firms_share(model: MarketModel, ndnp: int) -> float:
    """The firms' share of the crowd's opposite position when the harvest window opens: what
    they hold opposite the crowd (lots) over |NDNP|. An outcome of the book (the firms win the
    crowd's orders by their quotes against the market maker and the fringe), not a setting;
    NaN without a net position or a firm."""
    nets = model.marks["firms_at_harvest_start"]
    if not ndnp or not nets:
        return float("nan")
    side = 1 if ndnp > 0 else -1
    return sum(max(0, -side * n) for n in nets) / abs(ndnp)


def _target(model: MarketModel) -> int | None:
    """The NDNP target the late flow traded to (None: no target set)."""
    flow = getattr(model, "target_flow", None)
    return None if flow is None else flow.target


def class_channels(accounts: pd.DataFrame) -> pd.DataFrame:
    """P&L by owner class and channel (money); rows = classes, columns = channels."""
    df = pd.DataFrame(index=accounts["owner"].unique())
    g = accounts.groupby("owner")
    for ch in TRADE_CHANNELS:
        df[ch] = g[f"transfer_{ch}"].sum()
    df["fees"] = -g["fees"].sum()
    df["delivery_costs"] = -g["delivery_cost_paid"].sum()
    df["socialized"] = -g["clawed_back"].sum()
    df["bad_debt_covered"] = g["bad_debt_received"].sum()
    df["liquidation_penalty"] = -g["penalty_paid"].sum()
    pnl = g["pnl"].sum()
    df["market"] = pnl - df.sum(axis=1)
    df["pnl"] = pnl
    return df


def accounts_frame(model: MarketModel) -> pd.DataFrame:
    ex = model.exchange
    m = ex.contract.multiplier
    mark = ex.settle_price
    rows = []
    for a in ex.clearing.accounts:
        if a.customers is not None:  # an omnibus account: its customers' rows stand for it
            continue
        agent = model.owner(a.id)
        row = {
            "account": a.id,
            "owner": a.owner,
            "deliverable": a.deliverable,
            "agent_id": getattr(agent, "unique_id", -1),
            "direction": getattr(agent, "direction", 0),
            "trend": bool(getattr(agent, "trend", False)),
            "state": getattr(agent, "state", ""),
            "deposits": a.deposits,
            "equity": a.equity(mark, m),
            "pnl": a.pnl(mark, m),
            "long": a.long,
            "short": a.short,
            "fees": a.fees,
            "realized": a.realized,
            "delivery_pnl": a.delivery_pnl,
            "delivery_cost_paid": a.delivery_cost_paid,
            "bad_debt_received": a.bad_debt_received,
            "clawed_back": a.clawed_back,
            "penalty_paid": a.penalty_paid,
            "n_margin_calls": a.n_margin_calls,
            "n_liquidations": a.n_liquidations,
            "went_negative": a.went_negative,
            "broker_receivable": ex.clearing.broker_receivables.get(a.id, 0.0),
        }
        for ch in TRADE_CHANNELS:
            row[f"transfer_{ch}"] = a.transfers[ch]
        rows.append(row)
    frame = pd.DataFrame(rows)
    customer_rows = getattr(model.crowd, "accounts_rows", None)
    if customer_rows is not None:  # the netted crowd: one row per customer
        frame = pd.concat([frame, customer_rows(mark)], ignore_index=True)
    return frame


def summarize(model: MarketModel):
    """Build the run's [`RunResult`][abm.results.RunResult] (summary, time series, accounts)."""
    from abm.results import RunResult

    cfg = model.cfg
    ex = model.exchange
    ch = ex.clearing
    cal = ex.calendar
    ts = model.datacollector.get_model_vars_dataframe()
    ts["step"] = ts["step"].astype(int)
    ts = ts.set_index("step", drop=True)
    ts.index.name = "step"
    accounts = accounts_frame(model)
    by_class = class_channels(accounts)
    spot = model.spot_path

    deadline = cal.deadline_step
    notes: dict[str, str] = {}
    tgt = _target(model)
    if tgt is not None and model.marks["ndnp_at_deadline"] is not None:
        tol = model.cfg.retail.ndnp_target_tolerance or max(5, math.ceil(0.02 * abs(tgt)))
        gap = model.marks["ndnp_at_deadline"] - tgt
        if abs(gap) > tol:
            notes["ndnp_target_gap"] = (
                f"the NDNP at the deadline missed its target {tgt} by {gap} lots (tolerance "
                f"{tol}): the book could not fill the late flow (a limit-locked session?)"
            )
    if ex.forced_fills:
        lots = sum(q for s, q, p in ex.forced_fills)
        vwap = sum(q * p for s, q, p in ex.forced_fills) / lots
        basis_fc = vwap - spot[deadline]
        # the marginal lot: the last forced fill against fair value at its step
        last_step, _, last_price = ex.forced_fills[-1]
        harvest_discount = abs(float(ts["fair"].iloc[last_step]) - last_price)
        fair_at = ts["fair"].to_numpy()
        harvest_vwap = sum(q * abs(float(fair_at[s]) - p) for s, q, p in ex.forced_fills) / lots
    else:
        harvest_vwap = float("nan")
        harvest_discount = float("nan")
        basis_fc = float("nan")
        notes["basis_at_forced_close"] = "no forced close filled: nothing was left to close"
    h0, h1 = ex.harvest_start_step, min(model.harvest_end_step, model.n_steps)
    window = ts.iloc[h0:h1]
    traded = window["futures_vwap"].dropna()
    if len(traded):
        max_abs_basis = float((traded - window.loc[traded.index, "spot"]).abs().max())
    else:
        max_abs_basis = float("nan")
        notes["max_abs_basis_final_window"] = "no trade between the harvest start and its end"

    ndnp0 = model.marks["ndnp_at_harvest_start"]
    ndnp0 = 0 if ndnp0 is None else int(ndnp0)
    ndnp_d = model.marks["ndnp_at_deadline"]
    ndnp_d = 0 if ndnp_d is None else int(ndnp_d)
    th = theory_for_run(model, ndnp_d)
    ante = ex_ante_theory(model)
    capacity = cfg.arbitrageurs.capacity if cfg.arbitrageurs.n > 0 else 0

    last = ex.days[-1] if ex.days else None
    if last is not None and last.source != "previous":
        basis_exp = float(ex.settle_price - spot[model.n_steps])
    else:
        basis_exp = float("nan")
        notes["basis_at_expiry"] = (
            "no trade on the last trading day: no final settlement price formed (the "
            "accounts were settled at the previous settlement)"
        )
    chains = cascades(ts["liquidation_volume"].to_numpy(), ts["futures"].to_numpy())
    dday = cal.deadline_day
    deadline_day = next((d for d in ex.days if d.day == dday), None)
    dts = ts[ts["day"] == dday]["futures_vwap"].dropna()
    # the crowd's loss before anyone absorbed its negative balances, and the part that did end
    # as negative balances (covered by the broker, the fund or a clawback)
    retail_bad = float(accounts.loc[accounts["owner"] == "retail", "bad_debt_received"].sum())
    retail_pnl = float(by_class.loc["retail", "pnl"]) if "retail" in by_class.index else 0.0
    retail_loss = retail_bad - retail_pnl

    def cls_val(cls: str, col: str) -> float:
        return float(by_class.loc[cls, col]) if cls in by_class.index else 0.0

    flows = ch.flows

    def flow(channel: str, payer: str, payee: str) -> float:
        return flows.get((channel, payer, payee), 0.0) - flows.get((channel, payee, payer), 0.0)

    summary: dict[str, Any] = {
        "scenario": cfg.name,
        "seed": cfg.seed,
        "retail_long_share": cfg.retail.long_share,
        "margin_rate": cfg.margin.rate,
        "forced_close_lead_days": cfg.calendar.forced_close_lead_days,
        "arbitrage_capacity": capacity,
        "harvest_spread": cfg.hedger.harvest_spread,
        "loss_regime": cfg.clearing.loss_regime,
        "n_retail": cfg.retail.n_traders,
        "harvest_policy": cfg.hedger.spread_policy,
        "n_firms": len(model.hedgers),
        "ndnp_at_harvest_start": ndnp0,
        "ndnp_at_deadline": ndnp_d,
        "ndnp_target": _target(model),
        "ndnp_target_gap": (ndnp_d - _target(model)) if _target(model) is not None else None,
        "retail_lots_at_harvest_start": int(model.marks["retail_lots_at_harvest_start"] or 0),
        "open_interest_at_harvest_start": int(model.marks["open_interest_at_harvest_start"] or 0),
        "firms_share_of_opposite": _firms_share(model, ndnp0),
        "ndnp_share_of_open_interest": ndnp0 / model.marks["open_interest_at_harvest_start"]
        if model.marks["open_interest_at_harvest_start"]
        else float("nan"),
        "basis_at_forced_close": float(basis_fc),
        "relative_basis_at_forced_close": float(basis_fc / spot[deadline])
        if deadline <= model.n_steps and spot[deadline]
        else float("nan"),
        "harvest_discount": harvest_discount,
        "max_abs_basis_final_window": max_abs_basis,
        "basis_at_expiry": basis_exp,
        "final_settlement": float(ex.settle_price),
        "final_settlement_source": last.source if last is not None else "none",
        "settlement_deadline_day": float(deadline_day.settlement)
        if deadline_day is not None
        else float("nan"),
        "min_price_deadline_day": float(dts.min()) if len(dts) else float("nan"),
        "late_fall_share_deadline_day": _late_share(ex, ts),
        "locked_sessions": sum(d.source == "locked" for d in ex.days),
        "harvest_end_step": int(model.harvest_end_step),
        "spot_at_expiry": float(spot[model.n_steps]),
        "transfer_retail_to_hedger": sum(flow(c, "retail", "hedger") for c in TRADE_CHANNELS),
        "theory_transfer": th["transfer"],
        "theory_retail_harvest_loss": th["retail_loss"],
        "theory_divergence": th["divergence"],
        "theory_fringe_lots": th["fringe_lots"],
        "theory_bound": th["bound"],
        "theory_ex_ante_divergence": ante["divergence"],
        "theory_ex_ante_transfer": ante["transfer"],
        "theory_ex_ante_retail_loss": ante["retail_loss"],
        "regime": ante["regime"],
        "harvest_discount_vwap": harvest_vwap,
        "pnl_retail": cls_val("retail", "pnl"),
        "pnl_hedger": cls_val("hedger", "pnl"),
        "pnl_market_maker": cls_val("market_maker", "pnl"),
        "pnl_arbitrageurs": cls_val("arbitrageur", "pnl"),
        "pnl_commercials": cls_val("commercial", "pnl"),
        "fees_total": ch.fees_collected,
        "delivery_costs_total": ch.delivery_costs,
        "bad_debt": ch.broker_loss + ch.fund_paid + ch.socialized_total,
        "bad_debt_broker": ch.broker_loss,
        "bad_debt_insurance_fund": ch.fund_paid,
        "bad_debt_socialized": ch.socialized_total,
        "insurance_fund_final": ch.fund,
        "n_margin_calls": int(accounts["n_margin_calls"].sum()),
        "n_liquidations": int(accounts["n_liquidations"].sum()),
        "n_negative_equity": int(accounts["went_negative"].sum()),
        "retail_loss_negative_share": retail_bad / retail_loss if retail_loss > 0 else 0.0,
        "n_intraday_liquidations": ex.broker.n_intraday_liquidations,
        "discretion_days": sum(d.discretion for d in ex.days),
        "n_cascades": int((chains["steps"] >= 2).sum()),
        "max_cascade_lots": float(chains["lots"].max()) if len(chains) else 0.0,
        "max_cascade_price_move": float(chains["price_move"].abs().max()) if len(chains) else 0.0,
        "retail_lots_opened": int(model.crowd.lots_opened),
        "retail_open_interest_at_deadline": int(
            model.marks["retail_open_interest_at_deadline"] or 0
        ),
        "forced_close_lots": int(sum(q for _, q, _ in ex.forced_fills)),
        "volume_total": ch.volume,
        "turnover": ch.turnover,
        "ledger_residual": ch.ledger_residual(ex.settle_price),
        "wall_seconds": model.wall_seconds,
        "notes": "; ".join(f"{k}: {v}" for k, v in notes.items()),
    }
    if model.next_exchange is not None:
        summary.update(next_month_summary(model))
    for c in TRADE_CHANNELS:
        summary[f"transfer_retail_to_hedger_{c}"] = flow(c, "retail", "hedger")
    for col in list(TRADE_CHANNELS) + [
        "fees",
        "delivery_costs",
        "socialized",
        "bad_debt_covered",
        "liquidation_penalty",
        "market",
    ]:
        summary[f"retail_pnl_{col}"] = cls_val("retail", col)
    # inside the crowd the auction's transfer nets to zero for the class; its size is what
    # the winning side of the crowd took from the losing side
    within = accounts.loc[
        ~accounts["deliverable"].astype(bool), "transfer_forced_close_within_crowd"
    ]
    summary["forced_close_within_crowd_gross"] = float(within.clip(lower=0).sum())
    summary["notes"] = explain_nan(summary)
    events = pd.DataFrame(
        [e.__dict__ if hasattr(e, "__dict__") else _event_dict(e) for e in ch.events]
    )
    days = pd.DataFrame([d.__dict__ if hasattr(d, "__dict__") else _event_dict(d) for d in ex.days])
    agents = None
    if cfg.output.collect_agents:
        agents = model.datacollector.get_agent_vars_dataframe().reset_index()
    n = max(model.depth_samples, 1)
    depth = pd.DataFrame(
        {
            "level": np.arange(1, model.depth_sum.shape[1] + 1),
            "bid": model.depth_sum[0] / n,
            "ask": model.depth_sum[1] / n,
        }
    )
    return RunResult(
        summary=summary,
        timeseries=ts,
        accounts=accounts,
        events=events,
        days=days,
        by_class=by_class,
        config=cfg,
        agents=agents,
        depth=depth,
    )


def next_month_summary(model: MarketModel) -> dict[str, Any]:
    """The next listed month at the deadline and at the run's end: its settlements, the
    calendar spread on the deadline's session, its open interest and ledger residual, the
    storage hedge and the fund's roll (lots, prices, money)."""
    ex, nx = model.exchange, model.next_exchange
    dday = ex.calendar.deadline_day
    front = next((d.settlement for d in ex.days if d.day == dday), float("nan"))
    nxt = next((d.settlement for d in nx.days if d.day == dday), float("nan"))
    nm = model.next_month
    return {
        "next_settlement_deadline_day": float(nxt),
        "calendar_spread_deadline_day": float(front - nxt),
        "next_settlement_final": float(nx.settle_price),
        "next_open_interest_final": int(nx.clearing.open_interest),
        "next_ledger_residual": nx.clearing.ledger_residual(nx.settle_price),
        "storage_hedge_lots_at_deadline": int(model.marks.get("storage_hedge_at_deadline") or 0),
        "fund_rolled_lots": int(nm.fund.next_account.long) if nm.fund is not None else 0,
    }


#: the late part of a session, as a share of its steps (wti scenarios: a step is a minute, so
#: the last 20 steps are the 20 minutes before the 14:30 close)
LATE_SHARE_OF_SESSION = 0.2


def _late_share(ex, ts: pd.DataFrame) -> float:
    """The share of the deadline session's move (previous settlement → its settlement, price
    units) that came in the session's last ``LATE_SHARE_OF_SESSION`` of steps: (price before
    them − settlement) / (previous settlement − settlement), the price being the last trade
    carried forward. NaN when the settlement did not move."""
    cal = ex.calendar
    dday = cal.deadline_day
    prev = next((d.settlement for d in ex.days if d.day == dday - 1), None)
    here = next((d.settlement for d in ex.days if d.day == dday), None)
    if prev is None or here is None or prev == here:
        return float("nan")
    spd = cal.steps_per_day
    before = dday * spd + spd - math.ceil(LATE_SHARE_OF_SESSION * spd) - 1
    return float((ts["futures"].iloc[before] - here) / (prev - here))


#: the fallback of `explain_nan` for a NaN with no known reason (the fuzz tests fail on it)
UNEXPLAINED = "not defined for this run, and no reason is known: please report it"


def _nan_reason(key: str, s: dict[str, Any]) -> str:
    """Why summary value ``key`` is NaN, from the summary itself."""
    no_forced = "no forced close filled: nothing was left to close"
    if key.startswith("theory_ex_ante_"):
        regime = str(s.get("regime", ""))
        if regime == "no_firm":
            return "no firm, or the harvest window never opened: no ex-ante harvest"
        if regime == "no_need":
            return "the NDNP at the harvest's start is 0: no lot to harvest, so no price"
        if regime == "no_fringe":
            return "nothing bounds the ex-ante price (no fringe and no band)"
    if key.startswith("theory_"):
        bound = str(s.get("theory_bound", ""))
        if bound.startswith(("none", "unbounded", "no firm")):
            return f"no closed form here ({bound})"
        if s.get("ndnp_at_deadline") == 0:
            return "the NDNP at the deadline is 0: no lot to harvest, so no harvest price"
    if key == "firms_share_of_opposite":
        if s.get("n_firms") == 0:
            return "no firm"
        return "the NDNP at the harvest's start is 0: no opposite side to share"
    if key == "ndnp_share_of_open_interest":
        return "no open interest when the harvest window opened"
    if key in ("harvest_discount", "harvest_discount_vwap", "basis_at_forced_close"):
        return no_forced
    if key == "relative_basis_at_forced_close":
        if s.get("basis_at_forced_close") != s.get("basis_at_forced_close"):
            return no_forced
        return "spot at the deadline is 0 or the deadline falls after expiry"
    if key == "settlement_deadline_day":
        return "the deadline day had no session (it falls after the last trading day)"
    if key == "min_price_deadline_day":
        return "no trade on the deadline day"
    if key == "late_fall_share_deadline_day":
        return (
            "the deadline session settled where the previous one did, or had no session: no "
            "move to share"
        )
    if key == "max_abs_basis_final_window":
        return "no trade between the harvest start and its end"
    if key == "max_cascade_price_move":
        return (
            "the price before every liquidation chain was 0 (negative prices allowed): a move "
            "relative to it is not defined"
        )
    if key == "basis_at_expiry":
        return "no trade on the last trading day: no final settlement price formed"
    return UNEXPLAINED


def explain_nan(summary: dict[str, Any]) -> str:
    """The summary's ``notes`` with every NaN value explained: the notes the run made, then,
    for each NaN number not already noted, ``key: reason``. A pure function of the summary,
    so stored summaries can be re-noted exactly."""
    notes = str(summary.get("notes") or "")
    said = {part.split(":", 1)[0].strip() for part in notes.split("; ") if ":" in part}
    extra = [
        f"{k}: {_nan_reason(k, summary)}"
        for k, v in summary.items()
        if isinstance(v, float) and v != v and k not in said
    ]
    return "; ".join(([notes] if notes else []) + extra)


def theory_for_run(model: MarketModel, ndnp: int) -> dict[str, Any]:
    """The closed-form harvest of this run's NDNP at the deadline (`abm.theory`), as the
    firms' policy says (its ``theory``): ``"cournot"`` (the optimal policy, and the default),
    the Cournot/dominant-firm harvest against the fringe's cost curves as they stood at the
    deadline, the band's sessions and the price floor; ``"fixed_spread"`` (the baselines),
    |NDNP| × spread × multiplier with the arbitrageurs' capacity first; ``None`` (no harvest:
    the counterfactual), none."""
    cfg = model.cfg
    ex = model.exchange
    m = ex.contract.multiplier
    tick = ex.contract.tick_size
    q = abs(ndnp)
    if not model.hedgers:
        return dict(
            transfer=0.0, retail_loss=0.0, divergence=float("nan"), fringe_lots=0.0, bound="no firm"
        )
    policy = model.hedgers[0].pricing
    theory_kind = getattr(policy, "theory", "cournot")
    if theory_kind is None:
        return dict(
            transfer=float("nan"),
            retail_loss=float("nan"),
            divergence=float("nan"),
            fringe_lots=float("nan"),
            bound=f"none: the policy {getattr(policy, 'name', type(policy).__name__)} "
            "does not harvest",
        )
    if theory_kind == "fixed_spread":
        arb = cfg.arbitrageurs
        cap = (arb.capacity or 0) if arb.n > 0 else 0
        dc = ex.contract.delivery_cost if arb.delivery_cost is None else arb.delivery_cost
        p = theory.harvest(ndnp, cfg.hedger.harvest_spread, m, cap, dc)
        return dict(
            transfer=p.transfer_to_hedger,
            retail_loss=p.retail_loss,
            divergence=p.divergence,
            fringe_lots=float(p.lots_to_arbitrageurs),
            bound="spread",
        )
    side = 1 if ndnp >= 0 else -1
    curves = [
        (curve, side * net)
        for curve, net, sides in model.marks["fringe_at_deadline"] or []
        if side in sides
    ]
    supply = theory.fringe_supply(curves, tick)
    cal = ex.calendar
    prev = next((d.settlement for d in ex.days if d.day == cal.deadline_day - 1), None)
    fair = model.marks["fair_at_deadline"] or model.fair
    try:
        path = theory.session_path(
            q,
            supply,
            [h.curve.cost for h in model.hedgers],
            m,
            fair,
            fair if prev is None else prev,
            ex.contract.price_limit,
            cal.last_day - cal.deadline_day + 1,
            tick,
            ex.contract.allow_negative_prices,
            side,
        )
    except ValueError as err:
        return dict(
            transfer=float("nan"),
            retail_loss=float("nan"),
            divergence=float("nan"),
            fringe_lots=float("nan"),
            bound=f"unbounded: {err}",
        )
    h = path.final
    return dict(
        transfer=h.transfer_to_firms,
        retail_loss=h.retail_loss,
        divergence=h.discount if q else float("nan"),
        fringe_lots=h.lots_to_fringe,
        bound=h.bound,
    )


REGIMES = (
    "band_cap",
    "interior",
    "fringe_cost",
    "fringe_only",
    "no_fringe",
    "no_need",
    "no_firm",
)


def ex_ante_theory(model: MarketModel) -> dict[str, Any]:
    """The Cournot/dominant-firm harvest predicted when the harvest window opens, from what is
    observable then and the scenario's parameters, never from the run's later state: the
    crowd's NDNP at the window's start, the fringe's delivery cost curves (parameters) and its
    holdings then (positions by trader type are published), the firms' delivery costs and
    their own positions then (a firm buying back beyond its holding must take delivery), fair
    value then as the reference price of the band, and the band's sessions from the deadline
    to expiry. The run's decisions can disagree with it: the crowd keeps trading, liquidations
    move the need, the fringe may hide or hold back supply, and the firms see only their desk.

    ``regime`` says what bounds it: ``band_cap`` (the band or the floor stops the price short
    of the optimum), ``interior`` (the firms' optimum), ``fringe_cost`` (the firms take all just
    ahead of the fringe's cost), ``fringe_only`` (no firm gains by buying the crowd out: it
    holds too little of the opposite side, and the fringe clears the crowd alone),
    ``no_fringe`` (no delivery-capable trader competes on the crowd's side: only the band
    bounds the price), ``no_need`` (a flat crowd) or ``no_firm``."""
    nan = float("nan")
    out = dict(divergence=nan, transfer=nan, retail_loss=nan, bound="", regime="no_firm")
    if not model.hedgers or model.marks["fair_at_harvest_start"] is None:
        return out
    ndnp = int(model.marks["ndnp_at_harvest_start"] or 0)
    if ndnp == 0:
        return {**out, "transfer": 0.0, "retail_loss": 0.0, "regime": "no_need"}
    ex = model.exchange
    cal = ex.calendar
    tick = ex.contract.tick_size
    side = 1 if ndnp > 0 else -1
    curves = [
        (curve, side * net)
        for curve, net, sides in model.marks["fringe_at_harvest_start"] or []
        if side in sides
    ]
    supply = theory.fringe_supply(curves, tick)
    fair = float(model.marks["fair_at_harvest_start"])
    holdings = [max(0, -side * net) for net in model.marks["firms_at_harvest_start"]]
    try:
        h = theory.session_path(
            abs(ndnp),
            supply,
            [f.curve.cost for f in model.hedgers],
            ex.contract.multiplier,
            fair,
            fair,
            ex.contract.price_limit,
            cal.last_day - cal.deadline_day + 1,
            tick,
            ex.contract.allow_negative_prices,
            side,
            holdings=holdings,
        ).final
    except ValueError as err:
        return {**out, "bound": f"unbounded: {err}", "regime": "no_fringe"}
    if not curves or float(supply(np.array([abs(fair) * 10 + 1e6]))[0]) <= 0:
        regime = "no_fringe"
    else:
        regime = {"cap": "band_cap"}.get(h.bound, h.bound)
    return dict(
        divergence=h.discount,
        transfer=h.transfer_to_firms,
        retail_loss=h.retail_loss,
        bound=h.bound,
        regime=regime,
    )


def _event_dict(obj) -> dict[str, Any]:
    return {k: getattr(obj, k) for k in obj.__slots__}


# -- liquidation cascades ----------------------------------------------------------------------


def cascades(liquidated: np.ndarray, prices: np.ndarray, gap: int = 5) -> pd.DataFrame:
    """Chains of margin liquidations (Thurner, Farmer & Geanakoplos 2012): runs of steps with
    liquidated lots, joined across quiet spells of at most ``gap`` steps. For each chain: first
    and last step, liquidation steps, lots, and the price move from the step before it to its
    furthest point (fraction of that price, signed)."""
    liq = np.asarray(liquidated, float)
    p = np.asarray(prices, float)
    rows = []
    hits = np.flatnonzero(liq > 0)
    if len(hits):
        starts = [hits[0]]
        ends = []
        for a, b in itertools.pairwise(hits):
            if b - a > gap + 1:
                ends.append(a)
                starts.append(b)
        ends.append(hits[-1])
        for a, b in zip(starts, ends, strict=True):
            before = p[a - 1] if a > 0 and np.isfinite(p[a - 1]) else p[a]
            window = p[a : b + 1]
            window = window[np.isfinite(window)]
            far = window[np.argmax(np.abs(window - before))] if len(window) else before
            rows.append(
                {
                    "start": int(a),
                    "end": int(b),
                    "steps": int(np.count_nonzero(liq[a : b + 1])),
                    "lots": float(liq[a : b + 1].sum()),
                    "price_move": float((far - before) / abs(before)) if before else float("nan"),
                }
            )
    return pd.DataFrame(rows, columns=["start", "end", "steps", "lots", "price_move"])


# -- stylized facts ----------------------------------------------------------------------------


def hill_tail_index(x: np.ndarray, tail_fraction: float = 0.05) -> float:
    """Hill estimator of the tail index of |x| from its largest ``tail_fraction`` share."""
    a = np.sort(np.abs(np.asarray(x, float)[np.isfinite(x)]))[::-1]
    a = a[a > 0]
    k = max(int(len(a) * tail_fraction), 2)
    if len(a) <= k:
        return float("nan")
    return float(1.0 / np.mean(np.log(a[:k] / a[k])))


def autocorr(x: np.ndarray, lag: int) -> float:
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    if len(x) <= lag + 1 or np.std(x) == 0:
        return float("nan")
    return float(np.corrcoef(x[:-lag], x[lag:])[0, 1])


def stylized_facts(prices: np.ndarray, aggregate: int = 10) -> dict[str, float]:
    """Tail index, return and |return| autocorrelations, kurtosis at two aggregation levels.

    ``prices`` are per-step futures prices (> 0); returns are log differences of steps with a
    new price, so stale steps do not pile zeros into the distribution.
    """
    from scipy import stats  # imported here: it costs half a second, and runs rarely need it

    p = np.asarray(prices, float)
    p = p[np.isfinite(p) & (p > 0)]
    r = np.diff(np.log(p))
    r_nz = r[r != 0]
    agg = np.diff(np.log(p[::aggregate])) if len(p) > 2 * aggregate else np.array([])
    return {
        "n_returns": int(len(r_nz)),
        "hill_tail_index": hill_tail_index(r_nz),
        "excess_kurtosis": float(stats.kurtosis(r_nz)) if len(r_nz) > 3 else float("nan"),
        f"excess_kurtosis_x{aggregate}": float(stats.kurtosis(agg))
        if len(agg) > 3
        else float("nan"),
        "acf_returns_lag1": autocorr(r, 1),
        "acf_returns_lag5": autocorr(r, 5),
        "acf_abs_returns_lag1": autocorr(np.abs(r), 1),
        "acf_abs_returns_lag10": autocorr(np.abs(r), 10),
        "acf_abs_returns_lag50": autocorr(np.abs(r), 50),
    }


def volatility_ratio(prices: np.ndarray, spot: np.ndarray) -> float:
    """How volatile ``prices`` are against ``spot`` sampled at the same times: the standard
    deviation of their log returns over that of spot's (dimensionless; 1 = as volatile as
    spot). A return counts only where both prices at both of its ends are positive and finite;
    NaN when fewer than two such returns remain or spot does not move."""
    p = np.asarray(prices, float)
    s = np.asarray(spot, float)
    ok = np.isfinite(p) & np.isfinite(s) & (p > 0) & (s > 0)
    both = ok[1:] & ok[:-1]
    if both.sum() < 2:
        return float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        rp = np.diff(np.log(np.where(ok, p, 1.0)))[both]
        rs = np.diff(np.log(np.where(ok, s, 1.0)))[both]
    sd = rs.std(ddof=1)
    return float(rp.std(ddof=1) / sd) if sd > 0 else float("nan")


def ordinary_market_facts(result, series: str = "futures", horizon: int = 1) -> dict[str, float]:
    """[`stylized_facts()`][abm.metrics.stylized_facts] of a run's ``series`` (``"futures"``:
    the step's trade price; ``"mid"``: the book's mid, free of the bid-ask bounce) sampled
    every ``horizon`` steps, before the harvest window opens (the ordinary market, without the
    harvest and the forced closes), and how volatile it is against spot
    ([`volatility_ratio()`][abm.metrics.volatility_ratio]): ``vol_ratio_to_spot`` at the same
    ``horizon``, ``vol_ratio_to_spot_daily`` at each session's last step (the record's scale:
    daily closes)."""
    from abm.build import harvest_start_step

    if horizon < 1:
        raise ValueError(f"horizon = {horizon}: allowed 1 or more steps")
    start = max(harvest_start_step(result.config), 2)
    ts = result.timeseries
    prices = ts[series].to_numpy()[:start]
    facts = stylized_facts(prices[::horizon])
    if "spot" in ts:
        spot = ts["spot"].to_numpy()[:start]
        spd = result.config.calendar.steps_per_day
        closes = np.arange(spd - 1, len(prices), spd)  # each whole session's last step
        facts["vol_ratio_to_spot"] = volatility_ratio(prices[::horizon], spot[::horizon])
        facts["vol_ratio_to_spot_daily"] = volatility_ratio(prices[closes], spot[closes])
    return facts


def is_finite_number(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)

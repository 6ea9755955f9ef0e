"""Retail traders: no delivery rights, a direction, leverage, and a clock running out.

Each trader has a direction (long or short, so that the crowd's long share is
``retail.long_share``), a deposit and a leverage: by default the fraction of the largest
position the margin rate in force allows (margin used ≤ equity), so higher margins mean smaller
positions. It opens once in the opening phase, then —
when its Poisson clock fires — trades noise or trend round trips in its own direction, honours
its stop-loss, and answers margin calls with a probability. Most traders close voluntarily at a
time drawn in the last days before the deadline (a hazard that rises as the deadline nears),
with a patient limit order at the last settlement price; what is still open at the deadline is
force-closed by the broker at the counterparty's price.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from abm.agents.base import TraderAgent
from abm.exchange import BUY, SELL, Account, Exchange

if TYPE_CHECKING:
    from abm.agents.crowd import Crowd


@dataclass(frozen=True)
class Acting:
    """What the netted engine's customers whose clock fired see, for
    [`RetailRules.act_many()`][abm.agents.retail.RetailRules.act_many]: one entry per customer
    in arrival order, each in the holding state before the deadline (it may hold no lots, if
    its opening order did not fill). Arrays:
    ``who`` (customer indices), ``direction`` (+1 long, −1 short), ``lots`` (held), ``free``
    (held and not reserved by a working close), ``deposits`` and ``equity`` (money, equity at
    the mark), ``trend`` (whether it follows trends), ``round_trip_lots`` (its largest noise
    order), ``u`` (k × 5 uniforms: hazard, add-or-reduce, size, order type, limit offset).
    Scalars: ``mark`` (price), ``trend_signal`` (the futures change over
    ``retail.trend_lookback_steps``, price), ``harvest_hold`` (the crowd holds through the
    harvest window, `RetailRules.act`), ``step``, and ``params`` (the ``[retail]`` section)."""

    who: np.ndarray
    direction: np.ndarray
    lots: np.ndarray
    free: np.ndarray
    deposits: np.ndarray
    equity: np.ndarray
    trend: np.ndarray
    round_trip_lots: np.ndarray
    u: np.ndarray
    mark: float
    trend_signal: float
    harvest_hold: bool
    step: int
    params: Any


@dataclass(frozen=True)
class Actions:
    """What a vectorised rule decides for the customers of an [`Acting`][abm.agents.retail.Acting]
    (arrays of the same length, in its order): ``stop`` (close every free lot at market now and
    start closing), ``start_closing`` (a patient close at the last settlement, re-posted each
    morning), ``qty`` (lots in the customer's own direction: > 0 adds by a new position's
    order, < 0 reduces by up to −qty lots, capped at the lots free to close when it is sent;
    0 nothing). A customer that stops or starts closing orders nothing else. ``u_kind`` and
    ``u_offset`` are the uniforms choosing each order's type and limit offset (None: the
    fourth and fifth columns of ``Acting.u``)."""

    stop: np.ndarray
    start_closing: np.ndarray
    qty: np.ndarray
    u_kind: np.ndarray | None = None
    u_offset: np.ndarray | None = None

    @classmethod
    def nothing(cls, k: int) -> Actions:
        """No customer does anything."""
        no = np.zeros(k, dtype=bool)
        return cls(no, no, np.zeros(k, dtype=np.int64))


class RetailRules:
    """How a retail trader decides: the crowd's behaviour as a replaceable object.

    Subclass it and name it in the config (``retail.rules = "mypkg.rules:MyRules"``, or the
    shipped ``"default"`` and ``"hold"``); every method receives the trader, who holds its
    state (``direction``, ``leverage``, ``trend``, ``round_trip_lots``, ``state``, its
    ``account``), reads the crowd's shared parameters as ``trader.params`` (the ``[retail]``
    section) and what the crowd sees as ``trader.crowd`` (e.g. ``crowd.trend_signal``), and
    places orders through its exchange.

    The netted engine (``retail.engine = "netted"``) decides for all the customers whose clock
    fired at once, with [`act_many()`][abm.agents.retail.RetailRules.act_many]: a rule that
    overrides ``act`` runs there only if it overrides ``act_many`` too (else the run falls back
    to the per-agent engine, and says so); ``opening_lots`` and ``on_margin_call`` run there as
    the shipped ones (a rule overriding them runs per agent). See
    [`runs_as_arrays()`][abm.agents.retail.runs_as_arrays].
    """

    name = "default"

    def opening_lots(self, trader: RetailTrader) -> int:
        """Lots of its one opening order. In margin mode ``leverage`` is the fraction f of the
        largest position the margin rate in force allows: lots = f × equity / (price ×
        multiplier × rate), so that margin used = f × equity; in absolute mode it is
        notional / deposit."""
        cfg = trader.params
        ex = trader.exchange
        price = max(abs(ex.mark), ex.contract.tick_size)
        per_lot = price * ex.contract.multiplier
        if cfg.leverage_mode == "margin":
            equity = ex.equity(trader.account)
            lots = math.floor(trader.leverage * equity / (per_lot * ex.margin_rate_in_force))
        else:
            lots = math.floor(trader.leverage * trader.account.deposits / per_lot)
        return max(cfg.lots_min, min(cfg.lots_max, lots))

    def act(self, trader: RetailTrader, u: list[float]) -> None:
        """One firing of its Poisson clock while it holds a position, before the deadline;
        ``u`` holds five uniforms (hazard, add-or-reduce, size, order type, limit offset).
        Honours the stop-loss, may start closing, then trades noise or trend round trips in
        its own direction."""
        cfg = trader.params
        acc = trader.account
        ex = trader.exchange
        if trader.crowd.holds_in_harvest and ex.step >= ex.harvest_start_step:
            # an experiment on the NDNP: once the harvest window opens the crowd holds (no
            # stop-loss, no round trips), so the NDNP set by the late flow reaches the
            # deadline; margin calls and liquidations still apply
            return
        if acc.long or acc.short:
            m = ex.contract.multiplier
            if acc.equity(ex.mark, m) - acc.deposits < -cfg.stop_loss * acc.deposits:
                trader.state = "stopped"
                trader.close_now()
                return
            if u[0] < cfg.close_hazard_base:
                trader.start_closing()
                return
        if not cfg.noise_trading:
            return
        if trader.trend:
            ret = trader.crowd.trend_signal
            add = (ret * trader.direction > 0) if ret != 0 else u[1] < 0.5
        else:
            add = u[1] < 0.5
        my_side = BUY if trader.direction > 0 else SELL
        qty = 1 + int(u[2] * trader.round_trip_lots)
        if add:
            trader._order(my_side, qty, "open", u[3], u[4])
        else:
            if trader.direction > 0:
                free = acc.long - acc.pending_close_long
            else:
                free = acc.short - acc.pending_close_short
            if free > 0:
                trader._order(-my_side, min(qty, free), "close", u[3], u[4])

    def act_many(self, t: Acting) -> Actions:
        """`act` for many customers at once, as array operations (the netted engine): the same
        stop-loss, hazard of starting to close, and noise or trend round trips, decided from
        what ``t`` shows (the mark does not move between them)."""
        cfg = t.params
        k = len(t.who)
        if t.harvest_hold:
            return Actions.nothing(k)
        has = t.lots > 0
        stop = has & (t.equity - t.deposits < -cfg.stop_loss * t.deposits)
        closing = has & ~stop & (t.u[:, 0] < cfg.close_hazard_base)
        if not cfg.noise_trading:
            return Actions(stop, closing, np.zeros(k, dtype=np.int64))
        ret = t.trend_signal
        coin = t.u[:, 1] < 0.5
        add = np.where(t.trend, ret * t.direction > 0, coin) if ret != 0 else coin
        size = 1 + np.floor(t.u[:, 2] * t.round_trip_lots).astype(np.int64)
        qty = np.where(stop | closing, 0, np.where(add, size, -size))
        return Actions(stop, closing, qty)

    def on_margin_call(self, trader: RetailTrader, amount: float) -> None:
        """Tops up the call with probability ``retail.top_up_probability``."""
        if trader.model.rng.random() < trader.params.top_up_probability:
            trader.exchange.deposit(trader.account, amount)


class HoldToDeadline(RetailRules):
    """Opens, then holds until the broker force-closes it: no stop-loss, no round trips, no
    voluntary close (the scheduled close still starts it closing, if one was drawn; set
    ``retail.voluntary_close_share = 0`` for a crowd that only the broker closes)."""

    name = "hold"

    def act(self, trader: RetailTrader, u: list[float]) -> None:
        return None

    def act_many(self, t: Acting) -> Actions:
        return Actions.nothing(len(t.who))


RULES: dict[str, type[RetailRules]] = {r.name: r for r in (RetailRules, HoldToDeadline)}


def _defined_by(cls: type, name: str) -> type:
    return next(c for c in cls.__mro__ if name in c.__dict__)


def runs_as_arrays(rules: RetailRules) -> bool:
    """Whether ``rules`` can decide on the netted engine: its ``act_many`` is defined no
    higher in its class tree than its ``act`` (a rule that changes ``act`` changes
    ``act_many`` with it), and it keeps the shipped ``opening_lots`` and ``on_margin_call``."""
    cls = type(rules)
    if not issubclass(_defined_by(cls, "act_many"), _defined_by(cls, "act")):
        return False
    return all(_defined_by(cls, n) is RetailRules for n in ("opening_lots", "on_margin_call"))


def patient_close(ex: Exchange, acc: Account) -> bool:
    """A trader's patient close: its working orders cancelled, then a limit order for all it
    holds at the last settlement's tick (inside the band). Whether it held lots to close."""
    ex.cancel_all(acc)
    if not acc.lots:
        return False
    price = ex.book.clip(ex.contract.to_tick(ex.settle_price))
    if acc.long:
        ex.submit(acc, SELL, acc.long, price, "limit", "close")
    if acc.short:
        ex.submit(acc, BUY, acc.short, price, "limit", "close")
    return True


def close_at_market(ex: Exchange, acc: Account) -> bool:
    """A stopped-out trader's close: its working orders cancelled, then market orders for all
    it holds. Whether it still holds lots (what the book could not fill)."""
    ex.cancel_all(acc)
    if acc.long:
        ex.submit(acc, SELL, acc.long, None, "market", "close")
    if acc.short:
        ex.submit(acc, BUY, acc.short, None, "market", "close")
    return bool(acc.lots)


class RetailTrader(TraderAgent):
    """One retail trader without delivery rights, one of a [`Crowd`][abm.agents.crowd.Crowd]:
    its own draws (``deposit``, ``direction`` +1 long / −1 short, ``leverage``, ``trend``, the
    steps it opens and starts closing at) as keyword parameters, and the crowd it belongs to,
    which holds the shared parameters and rules and schedules it."""

    label = "retail"

    def __init__(
        self,
        model,
        *,
        crowd: Crowd,
        deposit: float,
        direction: int,
        leverage: float,
        trend: bool,
        open_step: int,
        close_step: int | None,
    ):
        super().__init__(model, deposit, deliverable=False)
        self.crowd = crowd
        self.params = crowd.params  # read on every activation: one attribute, not two
        self.direction = direction  # +1 long, −1 short
        self.leverage = leverage
        self.trend = trend
        self.open_step = open_step
        self.close_step = close_step  # None: waits for the forced close
        self.state = "waiting"  # waiting → holding → closing → done
        self.round_trip_lots = 1  # largest noise/trend order, set when it opens
        self.n_rejected = 0
        self.rules: RetailRules = crowd.rules

    def _order(
        self,
        side: int,
        qty: int,
        effect: str,
        u_kind: float | None = None,
        u_offset: float | None = None,
    ) -> None:
        """A market order, or (with probability ``limit_order_share``) a limit order up to
        ``limit_offset_ticks`` on the passive side of the mid. ``u_*`` are uniforms the model
        drew for this activation (drawn here when not given)."""
        cfg = self.params
        ex = self.exchange
        if u_kind is None:
            u_kind, u_offset = self.model.rng.random(2).tolist()
        if u_kind < cfg.limit_order_share:
            ref = ex.book.mid()
            ref_tick = ex.contract.to_tick(ex.settle_price) if ref is None else round(ref)
            price = ex.book.clip(ref_tick - side * int(u_offset * (cfg.limit_offset_ticks + 1)))
            r = ex.submit(self.account, side, qty, price, "limit", effect)
        else:
            r = ex.submit(self.account, side, qty, None, "market", effect)
        if r.status == "rejected":
            self.n_rejected += 1

    # -- life cycle -----------------------------------------------------------------------------
    def open_position(self) -> None:
        """Scheduled at ``open_step``: open the whole position in the trader's direction."""
        if self.state != "waiting" or self.exchange.after_deadline():
            return
        self.state = "holding"
        lots = self.rules.opening_lots(self)
        self.round_trip_lots = max(1, math.floor(lots * self.params.noise_lots_share))
        self.crowd.lots_opened += lots
        self._order(BUY if self.direction > 0 else SELL, lots, "open")

    def start_closing(self) -> None:
        """Scheduled at ``close_step``: close everything with a patient limit at the last
        settlement price (re-posted every morning until filled or forced)."""
        if self.state in ("done", "closing"):
            return
        self.state = "closing"
        self.crowd.closing.add(self)
        self.post_close()

    def post_close(self) -> None:
        if self.exchange.after_deadline():
            return  # the broker is closing it
        if not patient_close(self.exchange, self.account):
            self.state = "done"

    def close_now(self) -> None:
        if close_at_market(self.exchange, self.account):
            self.state = "closing"
            self.crowd.closing.add(self)
        else:
            self.state = "done"

    def step(self, u: list[float] | None = None) -> None:
        """One activation of the trader's Poisson clock; ``u`` holds five uniforms the model
        drew for it in bulk (hazard, add-or-reduce, size, order type, limit offset). While it
        holds a position before the deadline its rules decide
        ([`RetailRules.act()`][abm.agents.retail.RetailRules.act])."""
        if self.state != "holding":
            return
        ex = self.exchange
        if ex.step >= ex.deadline_step:
            return
        if u is None:
            u = self.model.rng.random(5).tolist()
        self.rules.act(self, u)

    def on_margin_call(self, amount: float) -> None:
        self.rules.on_margin_call(self, amount)

"""The retail crowd as arrays, exactly: the `arrays` engine (``retail.engine = "arrays"``).

The traders' draws and states are arrays held by one
[`ArrayCrowd`][abm.agents.array_crowd.ArrayCrowd] instead of one Mesa agent each; each
trader still clears through its own account at the clearing house (the authority for
positions, cash, margin and every invariant), and its orders still reach the book one by
one, in the order the per-agent engine ([`Crowd`][abm.agents.crowd.Crowd]) sends them.
The random draws are the same, in the same order, so a run is bit for bit the per-agent
run on the same seed (tested on every shipped scenario).

What is done with array operations: the population and its schedule (openings and voluntary
closes grouped by step once), and, for the shipped rules, every part of a firing's decision
that the step fixes (the hazard of starting to close, trend or noise, the size, the order
type and limit offset). What stays per firing because the market moves between two orders of
a step: the stop-loss (equity at the mark the previous order printed), the lots free to close,
and the limit's reference mid. A rule of one's own (``retail.rules``) is called per firing on a
[`ArrayTrader`][abm.agents.array_crowd.ArrayTrader], the same interface a
[`RetailTrader`][abm.agents.retail.RetailTrader] offers, and stays exact.

The traders are not Mesa agents: the crowd reserves the Mesa ids the per-agent engine's
traders would have taken (so every other agent keeps its id), lists its traders as views
(``crowd.traders``, ``model.retail``) and answers ``model.owner(account_id)``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from abm.agents.base import AccountHolder
from abm.agents.crowd import Crowd, Roster, draw_population
from abm.agents.retail import HoldToDeadline, RetailRules, close_at_market, patient_close
from abm.exchange import BUY, SELL, Account

if TYPE_CHECKING:
    from abm.model import MarketModel

#: a trader's state codes (``ArrayCrowd.state``) and their names, as `RetailTrader.state`
STATES = ("waiting", "holding", "closing", "done", "stopped")
WAITING, HOLDING, CLOSING, DONE, STOPPED = range(5)
_CODE = {name: i for i, name in enumerate(STATES)}


class ArrayCrowd(Crowd):
    """The retail crowd with its traders as arrays and their own clearing accounts.

    The same interface as [`Crowd`][abm.agents.crowd.Crowd] for the model. Per trader
    (index ``i``, in the order drawn): ``accounts[i]`` (its clearing account),
    ``direction``, ``deposit``, ``leverage``, ``trend``, ``open_step``, ``close_step`` (lists,
    as drawn), ``state`` (codes of `STATES`), ``round_trip_lots`` and ``n_rejected``
    (arrays); ``traders`` lists them as [`ArrayTrader`][abm.agents.array_crowd.ArrayTrader]
    views and ``customers()`` as a table. ``closing`` holds the indices of the traders
    re-posting a patient close."""

    def __init__(
        self, model: MarketModel, params: Any, rules: RetailRules, holds_in_harvest: bool = False
    ):
        super().__init__(model, params, rules, holds_in_harvest)
        act = type(rules).act
        #: how firings are decided: the shipped rule inline, the hold rule (nothing), or the
        #: rule's own ``act`` per firing on a view
        self._decide = "default" if act is RetailRules.act else "hold"
        if act is not RetailRules.act and act is not HoldToDeadline.act:
            self._decide = "per_trader"

    # -- construction -------------------------------------------------------------------------
    def _draw(self, rng: np.random.Generator) -> Roster:
        model = self.model
        ex = model.exchange
        self.exchange = ex
        pop = draw_population(model, self.params, rng, self.holds_in_harvest)
        n = len(pop.direction)
        self.n = n
        # the Mesa ids the per-agent engine's traders would take: every later agent keeps its id
        self.first_uid = model.agent_id_counter
        model.agent_id_counter += n
        # Python numbers, as the per-agent engine's traders hold them (numpy scalars would make
        # the bookings numpy scalar arithmetic: the same values, several times slower)
        self.direction: list[int] = pop.direction.tolist()
        self.deposit: list[float] = pop.deposit.tolist()
        self.leverage: list[float] = pop.leverage.tolist()
        self.trend: list[bool] = pop.trend.tolist()
        self.open_step: list[int] = pop.open_step.tolist()
        self.close_step: list[int | None] = [None if c < 0 else c for c in pop.close_step.tolist()]
        self._direction = pop.direction.astype(np.int64)
        self._trend = pop.trend.astype(bool)
        self.accounts: list[Account] = [ex.open_account("retail", False, d) for d in self.deposit]
        self.first_account = self.accounts[0].id if n else 0
        self.state = bytearray(n)  # WAITING
        self.round_trip_lots = np.ones(n, dtype=np.int64)
        self.n_rejected = np.zeros(n, dtype=np.int64)
        self.closing: set[int] = set()  # type: ignore[assignment]
        # the agenda as the per-agent engine builds it: by step, traders in order, each one's
        # opening before its start of closing
        deadline = ex.calendar.deadline_step
        idx = np.arange(n)
        shut = (pop.close_step >= 0) & (pop.close_step < deadline)
        steps = np.concatenate([pop.open_step, pop.close_step[shut]])
        who = np.concatenate([idx, idx[shut]])
        kind = np.concatenate([np.zeros(n, dtype=np.int64), np.ones(int(shut.sum()), np.int64)])
        order = np.lexsort((kind, who, steps))
        steps, who, kind = steps[order], who[order], kind[order]
        cuts = np.flatnonzero(np.diff(steps)) + 1
        self.agenda = {  # type: ignore[assignment]
            int(s[0]): list(zip(w.tolist(), k.tolist(), strict=True))
            for s, w, k in zip(
                np.split(steps, cuts), np.split(who, cuts), np.split(kind, cuts), strict=True
            )
            if len(s)
        }
        return Roster(self, ArrayTrader, "trader")

    # -- what the model reads -----------------------------------------------------------------
    def __len__(self) -> int:
        return self.n

    def owner(self, account_id: int) -> ArrayTrader | None:
        """The trader owning clearing account ``account_id``, or None."""
        i = account_id - self.first_account
        if 0 <= i < self.n and self.accounts[i].id == account_id:
            return ArrayTrader(self, i)
        return None

    def customers(self):
        """The traders as a table, one row each: index, Mesa id, direction, trend, state,
        lots (signed), cash and equity at the mark (money), rejected orders."""
        import pandas as pd

        ex = self.exchange
        mark, m = ex.mark, ex.contract.multiplier
        accs = self.accounts
        return pd.DataFrame(
            {
                "trader": np.arange(self.n),
                "agent_id": self.first_uid + np.arange(self.n),
                "direction": self._direction,
                "trend": self._trend,
                "state": np.asarray(STATES)[np.frombuffer(bytes(self.state), dtype=np.uint8)]
                if self.n
                else np.zeros(0, dtype=str),
                "net": np.fromiter((a.net for a in accs), np.int64, self.n),
                "cash": np.fromiter((a.cash for a in accs), float, self.n),
                "equity": np.fromiter((a.equity(mark, m) for a in accs), float, self.n),
                "n_rejected": self.n_rejected,
            }
        )

    # -- the step -----------------------------------------------------------------------------
    def step(self) -> None:
        """As [`Crowd.step()`][abm.agents.crowd.Crowd.step], with the same draws in the same
        order: closers re-post at the day's start, the step's scheduled openings and starts
        of closing run, then the traders whose clock fires act."""
        model = self.model
        step = model.step_index
        self.trend_signal = model.recent_return(self.params.trend_lookback_steps)
        state = self.state
        if model.exchange.calendar.is_day_start(step) and self.closing:
            for i in sorted(self.closing):
                self.post_close(i)
                if state[i] == DONE:
                    self.closing.discard(i)
        for i, kind in self.agenda.pop(step, ()):
            if kind:
                self.start_closing(i)
            else:
                self.open_position(i)
        n = self.n
        if not n:
            return
        rng = model.rng
        self.activity = self._activity(step) if self.params.attention else self.params.activity
        k = rng.binomial(n, self.activity)
        self.activations += k
        if k:
            who = rng.integers(0, n, k)
            u = rng.random((k, 5))
            self._fire(who, u)

    def _fire(self, who: np.ndarray, u: np.ndarray) -> None:
        """The firings of a step, in arrival order (``who`` indices, ``u`` k × 5 uniforms)."""
        ex = self.exchange
        if ex.step >= ex.deadline_step or self._decide == "hold":
            return
        state = self.state
        if self._decide == "per_trader":
            act = self.rules.act
            for i, row in zip(who.tolist(), u.tolist(), strict=True):
                if state[i] == HOLDING:
                    act(ArrayTrader(self, i), row)
            return
        if self.holds_in_harvest and ex.step >= ex.harvest_start_step:
            return  # the crowd holds through the harvest window (RetailRules.act)
        cfg = self.params
        # what the step fixes, for every firing at once (RetailRules.act's arithmetic)
        hazard = (u[:, 0] < cfg.close_hazard_base).tolist()
        coin = u[:, 1] < 0.5
        ret = self.trend_signal
        add = np.where(self._trend[who], ret * self._direction[who] > 0, coin) if ret else coin
        size = (1 + (u[:, 2] * self.round_trip_lots[who]).astype(np.int64)).tolist()
        limit = (u[:, 3] < cfg.limit_order_share).tolist()
        offset = (u[:, 4] * (cfg.limit_offset_ticks + 1)).astype(np.int64).tolist()
        side = self._direction[who].tolist()
        add = add.tolist()
        accounts = self.accounts
        m = ex.contract.multiplier
        stop = -cfg.stop_loss
        trade = cfg.noise_trading
        order = self._order
        for j, i in enumerate(who.tolist()):
            if state[i] != HOLDING:
                continue
            acc = accounts[i]
            if acc.long or acc.short:
                if acc.equity(ex.mark, m) - acc.deposits < stop * acc.deposits:
                    state[i] = STOPPED
                    self.close_now(i)
                    continue
                if hazard[j]:
                    self.start_closing(i)
                    continue
            if not trade:
                continue
            s = side[j]
            if add[j]:
                order(i, s, size[j], "open", limit[j], offset[j])
            else:
                if s > 0:
                    free = acc.long - acc.pending_close_long
                else:
                    free = acc.short - acc.pending_close_short
                if free > 0:
                    q = size[j]
                    order(i, -s, q if q < free else free, "close", limit[j], offset[j])

    def _order(self, i: int, side: int, qty: int, effect: str, limit: bool, offset: int) -> None:
        """As `RetailTrader._order`: a market order, or a limit ``offset`` ticks on the
        passive side of the mid (the settlement's tick when the book has no mid)."""
        ex = self.exchange
        if limit:
            book = ex.book
            ref = book.mid()
            ref_tick = ex.contract.to_tick(ex.settle_price) if ref is None else round(ref)
            price = book.clip(ref_tick - side * offset)
            r = ex.submit(self.accounts[i], side, qty, price, "limit", effect)
        else:
            r = ex.submit(self.accounts[i], side, qty, None, "market", effect)
        if r.status == "rejected":
            self.n_rejected[i] += 1

    def _draw_order(self, i: int, side: int, qty: int, effect: str) -> None:
        """An order whose type and offset are drawn now from the model's generator (two
        uniforms), as `RetailTrader._order` without given uniforms."""
        u_kind, u_offset = self.model.rng.random(2).tolist()
        cfg = self.params
        offset = int(u_offset * (cfg.limit_offset_ticks + 1))
        self._order(i, side, qty, effect, u_kind < cfg.limit_order_share, offset)

    # -- a trader's life cycle, by index (RetailTrader's methods) -----------------------------
    def open_position(self, i: int) -> None:
        """Open the whole position in the trader's direction (its ``open_step``)."""
        ex = self.exchange
        if self.state[i] != WAITING or ex.after_deadline():
            return
        self.state[i] = HOLDING
        lots = self.rules.opening_lots(ArrayTrader(self, i))
        self.round_trip_lots[i] = max(1, math.floor(lots * self.params.noise_lots_share))
        self.lots_opened += lots
        self._draw_order(i, BUY if self.direction[i] > 0 else SELL, lots, "open")

    def start_closing(self, i: int) -> None:
        """Close everything with a patient limit at the last settlement, re-posted every
        morning until filled or forced."""
        if self.state[i] in (DONE, CLOSING):
            return
        self.state[i] = CLOSING
        self.closing.add(i)
        self.post_close(i)

    def post_close(self, i: int) -> None:
        if self.exchange.after_deadline():
            return  # the broker is closing it
        if not patient_close(self.exchange, self.accounts[i]):
            self.state[i] = DONE

    def close_now(self, i: int) -> None:
        if close_at_market(self.exchange, self.accounts[i]):
            self.state[i] = CLOSING
            self.closing.add(i)
        else:
            self.state[i] = DONE


class ArrayTrader(AccountHolder):
    """One trader of an [`ArrayCrowd`][abm.agents.array_crowd.ArrayCrowd], as a view with the
    interface of a [`RetailTrader`][abm.agents.retail.RetailTrader]: its draws, ``state``
    and ``round_trip_lots`` (read and written through to the crowd's arrays), its own
    clearing ``account``, and the methods a rule calls (``_order``, ``close_now``,
    ``start_closing``). Built on demand; two views of one trader are equal."""

    label = "retail"
    __slots__ = ("crowd", "index")

    def __init__(self, crowd: ArrayCrowd, i: int):
        self.crowd, self.index = crowd, i

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ArrayTrader)
            and other.crowd is self.crowd
            and other.index == self.index
        )

    def __hash__(self) -> int:
        return hash((id(self.crowd), self.index))

    # what a RetailTrader holds
    @property
    def unique_id(self) -> int:
        return self.crowd.first_uid + self.index

    @property
    def model(self) -> MarketModel:
        return self.crowd.model

    @property
    def exchange(self):
        return self.crowd.exchange

    @property
    def params(self) -> Any:
        return self.crowd.params

    @property
    def rules(self) -> RetailRules:
        return self.crowd.rules

    @property
    def account(self) -> Account:
        return self.crowd.accounts[self.index]

    @property
    def direction(self) -> int:
        return self.crowd.direction[self.index]

    @property
    def leverage(self) -> float:
        return self.crowd.leverage[self.index]

    @property
    def trend(self) -> bool:
        return self.crowd.trend[self.index]

    @property
    def open_step(self) -> int:
        return self.crowd.open_step[self.index]

    @property
    def close_step(self) -> int | None:
        return self.crowd.close_step[self.index]

    @property
    def state(self) -> str:
        return STATES[self.crowd.state[self.index]]

    @state.setter
    def state(self, value: str) -> None:
        if value not in _CODE:
            raise ValueError(f"state {value!r}: allowed {', '.join(STATES)}")
        self.crowd.state[self.index] = _CODE[value]

    @property
    def round_trip_lots(self) -> int:
        return int(self.crowd.round_trip_lots[self.index])

    @round_trip_lots.setter
    def round_trip_lots(self, value: int) -> None:
        self.crowd.round_trip_lots[self.index] = value

    @property
    def n_rejected(self) -> int:
        return int(self.crowd.n_rejected[self.index])

    # what a rule calls
    def _order(
        self,
        side: int,
        qty: int,
        effect: str,
        u_kind: float | None = None,
        u_offset: float | None = None,
    ) -> None:
        c = self.crowd
        if u_kind is None:
            c._draw_order(self.index, side, qty, effect)
            return
        offset = int(u_offset * (c.params.limit_offset_ticks + 1))  # type: ignore[operator]
        c._order(self.index, side, qty, effect, u_kind < c.params.limit_order_share, offset)

    def open_position(self) -> None:
        self.crowd.open_position(self.index)

    def start_closing(self) -> None:
        self.crowd.start_closing(self.index)

    def post_close(self) -> None:
        self.crowd.post_close(self.index)

    def close_now(self) -> None:
        self.crowd.close_now(self.index)

    def on_margin_call(self, amount: float) -> None:
        self.crowd.rules.on_margin_call(self, amount)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        a = self.account
        return (
            f"<retail trader {self.index}: {'long' if self.direction > 0 else 'short'}, "
            f"{self.state}, {a.net:+d} lots, cash {a.cash:.2f}>"
        )

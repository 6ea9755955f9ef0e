"""Shared behaviour of every trading agent: one account, orders only through the exchange."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import mesa

from abm.exchange import Account, Exchange

if TYPE_CHECKING:
    from abm.model import MarketModel


class AccountHolder:
    """What the owner of one clearing account may know of it (needs ``account`` and
    ``exchange``): a trading agent, or a view of one trader of an arrays crowd."""

    account: Account
    exchange: Exchange

    @property
    def position(self) -> int:
        """Net lots (long − short)."""
        return self.account.net

    @property
    def equity(self) -> float:
        """Equity at the mark (money)."""
        return self.exchange.equity(self.account)

    @property
    def pnl(self) -> float:
        """Equity less deposits (money)."""
        return self.equity - self.account.deposits


class TraderAgent(AccountHolder, mesa.Agent):
    """A Mesa agent owning one clearing account. Subclasses set ``label`` (its class name in
    results) and implement the method their phase calls (``step`` by default); they take their
    parameters as keyword arguments, as the built-in agents do (``Class(model, **params)``, the
    ``params`` of an ``[[agents]]`` table).

    Each step has two phases in which agents act (``MarketModel.step`` lists them): ``"quote"``
    — liquidity providers rest their quotes before the broker works its forced closes and
    liquidations — and ``"trade"`` — everyone else. ``phases`` maps each phase a type acts in
    to the method called on its agents. The built-in types act in the order the model's step
    lists; a type of your own acts after them in the phases it names, types of one phase in
    ascending ``priority`` (then name), its agents as
    [`activate()`][abm.agents.base.TraderAgent.activate] says (by default: each
    once, in a random order of its own). So any subclass created in the model trades, with no
    change to the model.
    """

    label = "trader"
    model: MarketModel
    #: phase -> method name called on each agent of this type in that phase
    phases: ClassVar[dict[str, str]] = {"trade": "step"}
    #: order among the user-defined types of a phase (lower first)
    priority: ClassVar[int] = 100

    @classmethod
    def activate(cls, model: MarketModel, agents: mesa.AgentSet, phase: str) -> None:
        """Activate ``agents`` (all of ``model``'s agents of this exact type) for ``phase``:
        each calls its phase's method once, in a random order drawn from the type's own stream
        (``model.stream``), so adding a type of agents leaves every other draw of the run as it
        was and runs with and without it stay paired on the seed."""
        members = agents.to_list()
        method = cls.phases[phase]
        for i in model.stream(f"{cls.__module__}.{cls.__qualname__}").permutation(len(members)):
            getattr(members[i], method)()

    def __init__(
        self,
        model: MarketModel,
        deposit: float,
        deliverable: bool,
        exchange: Exchange | None = None,
    ):
        super().__init__(model)
        #: the listed month it trades (the front unless told: ``model.next_exchange``)
        self.exchange: Exchange = model.exchange if exchange is None else exchange
        self.account: Account = self.exchange.open_account(self.label, deliverable, deposit)
        if self.exchange is model.exchange:
            model.owner_of[self.account.id] = self

    @property
    def fair(self) -> float:
        """Fair value (price units) of the month it trades: spot plus carry (public)."""
        if self.exchange is self.model.exchange:
            return self.model.fair
        return self.model.fair_next

    def on_margin_call(self, amount: float) -> None:
        """Called after settlement with the money needed; default: do nothing (liquidated)."""

    def cancel_quotes(self) -> None:
        self.exchange.cancel_all(self.account)
        self._quotes = {}

    def best_other(self, side: int, levels: int = 50) -> int | None:
        """Best price on ``side`` among other accounts' orders (tick), or None."""
        book = self.exchange.book
        resting = book.resting
        mine: dict[int, int] = {}
        for (s, price), ids in getattr(self, "_quotes", {}).items():
            if s == side:
                mine[price] = mine.get(price, 0) + sum(resting[i].qty for i in ids if i in resting)
        for price, lots in book.depth(side, levels):
            if lots > mine.get(price, 0):
                return price
        return None

    def maintain_quotes(
        self,
        wanted: list[tuple[int, int, int]],
        effect: str = "auto",
        check_margin: bool = True,
        tags: dict[tuple[int, int], str] | None = None,
    ) -> None:
        """Make the account's resting quotes equal ``wanted`` — (side, tick, lots) — touching
        only what changed: an unchanged quote keeps its place in the queue, a partly filled
        one is topped up, the rest are cancelled or placed. Requoting everything every step
        would cost a cancel and a submit per level per step and throw away time priority.
        ``tags`` names why a quote exists (e.g. ``"harvest"``); a resting order whose tag
        differs from the wanted one is replaced, so every fill carries its price source."""
        ex = self.exchange
        resting = ex.book.resting
        quotes: dict[tuple[int, int], list[int]] = getattr(self, "_quotes", {})
        want: dict[tuple[int, int], int] = {}
        for side, price, lots in wanted:
            if lots > 0:
                want[(side, price)] = want.get((side, price), 0) + lots
        kept: dict[tuple[int, int], list[int]] = {}
        tags = tags or {}
        for key, ids in quotes.items():
            live = [i for i in ids if i in resting]
            tag = tags.get(key, "ordinary")
            if key in want and all(resting[i].tag == tag for i in live):
                kept[key] = live
            else:
                for i in live:
                    ex.cancel(i)
        for key, lots in want.items():
            # an earlier placement may have crossed (self-trade prevention) one of these
            ids = [i for i in kept.get(key, ()) if i in resting]
            have = sum(resting[i].qty for i in ids)
            if have > lots:  # shrink: start the level afresh
                for i in ids:
                    ex.cancel(i)
                ids, have = [], 0
            if have < lots:
                r = ex.submit(
                    self.account,
                    key[0],
                    lots - have,
                    key[1],
                    "limit",
                    effect,
                    tags.get(key, "ordinary"),
                    check_margin=check_margin,
                )
                if r.status in ("rested", "partial"):
                    ids = [*ids, r.order_id]
            kept[key] = ids
        self._quotes = kept

"""Shared behaviour of every trading agent: one account, orders only through the exchange."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa

from abm.exchange import Account, Exchange

if TYPE_CHECKING:
    from abm.model import MarketModel


class TraderAgent(mesa.Agent):
    """A Mesa agent owning one clearing account. Subclasses set ``label`` (its class name in
    results) and implement :meth:`step`."""

    label = "trader"
    model: MarketModel

    def __init__(self, model: MarketModel, deposit: float, deliverable: bool):
        super().__init__(model)
        self.exchange: Exchange = model.exchange
        self.account: Account = self.exchange.open_account(self.label, deliverable, deposit)
        model.owner_of[self.account.id] = self

    # -- what an agent may know -----------------------------------------------------------------
    @property
    def position(self) -> int:
        return self.account.net

    @property
    def equity(self) -> float:
        return self.exchange.equity(self.account)

    @property
    def pnl(self) -> float:
        return self.equity - self.account.deposits

    def on_margin_call(self, amount: float) -> None:
        """Called after settlement with the money needed; default: do nothing (liquidated)."""

    def cancel_quotes(self) -> None:
        self.exchange.cancel_all(self.account)

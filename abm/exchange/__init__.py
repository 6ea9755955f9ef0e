"""The exchange: contract & calendar, limit order book, clearing house and broker."""

from abm.exchange.book import BUY, SELL, Order, OrderBook, OrderResult, Trade
from abm.exchange.calendar import Calendar, Contract
from abm.exchange.clearing import Account, ClearingHouse, InvariantError, liquidation_price
from abm.exchange.market import Exchange

__all__ = [
    "BUY",
    "SELL",
    "Account",
    "Calendar",
    "ClearingHouse",
    "Contract",
    "Exchange",
    "InvariantError",
    "Order",
    "OrderBook",
    "OrderResult",
    "Trade",
    "liquidation_price",
]

"""Public entry to the clearing house's pure accounting functions (``abm.clearing``).

The implementation lives in :mod:`abm.exchange.clearing`; this module is the stable import
path researchers use in notebooks, e.g. ``from abm.clearing import liquidation_price``.
"""

from abm.exchange.clearing import (
    Account,
    ClearingHouse,
    InvariantError,
    bankruptcy_price,
    floating_pnl,
    liquidation_price,
    margin_required,
)

__all__ = [
    "Account",
    "ClearingHouse",
    "InvariantError",
    "bankruptcy_price",
    "floating_pnl",
    "liquidation_price",
    "margin_required",
]

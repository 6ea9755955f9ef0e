"""The agents: retail traders, the dominant hedger (one or several firms), the market maker,
and the competitive delivery-capable fringe (delivery arbitrageurs and commercials)."""

from abm.agents.arbitrageur import DeliveryArbitrageur
from abm.agents.base import TraderAgent
from abm.agents.commercial import Commercial
from abm.agents.fringe import DeliveryTrader
from abm.agents.hedger import DominantHedger
from abm.agents.market_maker import MarketMaker
from abm.agents.retail import RetailTrader

__all__ = [
    "Commercial",
    "DeliveryArbitrageur",
    "DeliveryTrader",
    "DominantHedger",
    "MarketMaker",
    "RetailTrader",
    "TraderAgent",
]

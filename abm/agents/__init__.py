"""The agents: retail traders, the dominant hedger, the market maker, delivery arbitrageurs."""

from abm.agents.arbitrageur import DeliveryArbitrageur
from abm.agents.base import TraderAgent
from abm.agents.hedger import DominantHedger
from abm.agents.market_maker import MarketMaker
from abm.agents.retail import RetailTrader

__all__ = ["DeliveryArbitrageur", "DominantHedger", "MarketMaker", "RetailTrader", "TraderAgent"]

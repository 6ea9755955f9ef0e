"""The agents: retail traders (and their crowd), the dominant hedger (one or several firms), the
market maker, the competitive delivery-capable fringe (delivery arbitrageurs and commercials)
and the late retail flow of an NDNP experiment."""

from abm.agents.arbitrageur import DeliveryArbitrageur
from abm.agents.base import TraderAgent
from abm.agents.commercial import Commercial
from abm.agents.crowd import Crowd
from abm.agents.fringe import DeliveryTrader
from abm.agents.hedger import DominantHedger
from abm.agents.market_maker import MarketMaker
from abm.agents.retail import RetailTrader
from abm.agents.target_flow import TargetFlow

__all__ = [
    "Commercial",
    "Crowd",
    "DeliveryArbitrageur",
    "DeliveryTrader",
    "DominantHedger",
    "MarketMaker",
    "RetailTrader",
    "TargetFlow",
    "TraderAgent",
]

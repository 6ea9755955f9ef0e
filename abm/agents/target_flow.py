"""Late retail flow that sets the crowd's NDNP at the deadline: the design lever of an
experiment on the NDNP (``retail.ndnp_target`` or ``retail.ndnp_target_share``).

One account without delivery rights, labelled ``retail`` (its lots are part of the crowd's
non-deliverable net position and its P&L part of the crowd's), fully funded so that no margin
call can undo the target. Over the last ``retail.ndnp_target_window_days`` before the deadline
it trades at market, each step, the gap between the target and the crowd's NDNP, spread over
the steps left before the harvest window opens, and keeps correcting through the harvest; the
crowd's voluntary closes are moved before the harvest window (``abm.model``). So the target is
met at the deadline whatever the noise trading did, within what the book can fill: during the
harvest the hedger may quote nothing on the side the flow needs, and a gap is then reported as
``ndnp_target_gap`` (with a note when beyond ``retail.ndnp_target_tolerance``). It stands for
the late inflow of retail money that filled the front month before expiry (USO and retail
brokers' clients in April 2020).
"""

from __future__ import annotations

import math
from typing import ClassVar

from abm.agents.base import TraderAgent


class TargetFlow(TraderAgent):
    """Keyword parameters: the ``[retail]`` fields ``ndnp_target`` (lots) or
    ``ndnp_target_share`` (of open interest), ``ndnp_target_window_days`` and ``n_traders``
    (which sizes its deposit when the target is a share). It trades after the crowd and the
    commercials, so it sees the step's other flow."""

    label = "retail"
    phases: ClassVar[dict[str, str]] = {"trade": "step"}

    def __init__(
        self,
        model,
        *,
        ndnp_target: int | None,
        ndnp_target_share: float | None,
        ndnp_target_window_days: float,
        n_traders: int,
    ):
        target, share = ndnp_target, ndnp_target_share
        ex = model.exchange
        cal = ex.calendar
        self.deadline = cal.deadline_step
        spd = cal.steps_per_day
        window = max(1, int(round(ndnp_target_window_days * spd)))
        # the window ends where the harvest starts (then the book is still ordinary on both
        # sides); during the harvest it keeps correcting whatever stop-losses and liquidations
        # change, as far as the book lets it
        self.start = max(0, min(ex.harvest_start_step, self.deadline) - window)
        self.share = share
        self.target = target
        # fully funded at a price up to four times today's: the target must survive any call
        lots = abs(target) if target is not None else n_traders * 1000
        notional = 4.0 * abs(model.fair) * ex.contract.multiplier * max(lots, 1)
        super().__init__(model, deposit=notional, deliverable=False)

    def step(self) -> None:
        ex = self.exchange
        s = ex.step
        if s < self.start or s >= self.deadline:
            return
        if self.target is None:  # a share: fixed when the window opens
            oi = ex.clearing.open_interest
            self.target = int(round(self.share * oi))
        gap = self.target - ex.clearing.ndnp
        if gap == 0:
            return
        end = ex.harvest_start_step if s < ex.harvest_start_step else self.deadline
        left = max(1, end - s)
        qty = max(1, math.ceil(abs(gap) / left))
        side = 1 if gap > 0 else -1
        ex.submit(self.account, side, qty, None, "market", "auto", check_margin=False)

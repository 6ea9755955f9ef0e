"""A broker's customers behind an omnibus account, as arrays: the crowd's accounting at scale.

A large retail crowd does not reach the clearing house one account at a time: its broker
clears it through an omnibus account and keeps each customer's position, cash and margin in
its own books. This module is that customer ledger, one numpy array per field, for customers
who each hold lots in one direction only (a retail trader opens in its direction and closes
what it holds, as [`RetailTrader`][abm.agents.retail.RetailTrader] does). Every operation
mirrors the per-account arithmetic of [`abm.exchange.clearing`][abm.exchange.clearing] for
many customers at once:

- booking fills: opening lots re-average the basis, closing lots realise P&L (as
  `ClearingHouse.apply_fill`), with a customer's fills of one step booked as their lots and
  their value (Σ lots × price), which is the same arithmetic as booking them one by one;
- the daily settlement ([`mark_to_market()`][abm.exchange.omnibus.mark_to_market]), the margin
  calls ([`margin_calls()`][abm.exchange.omnibus.margin_calls]) and the lots a liquidation
  closes ([`lots_to_liquidate()`][abm.exchange.omnibus.lots_to_liquidate]);
- sharing an omnibus order's fills among the customers whose orders it nets, by arrival
  ([`allocate_by_arrival()`][abm.exchange.omnibus.allocate_by_arrival]: each customer's lots
  take the trades' prices in order, so the money the customers book is the trades' money) or
  pro rata ([`allocate_pro_rata()`][abm.exchange.omnibus.allocate_pro_rata]: largest remainder,
  the broker's rule for slicing forced closes).

Units: prices in price units, lots in contracts, money in price units × multiplier.
The clearing house still holds the omnibus account and checks every invariant on it; the
ledger's own check ([`CustomerLedger.reconcile()`][abm.exchange.omnibus.CustomerLedger.reconcile])
says its customers add up to that account. The design of the crowd engines that use it is in
``docs/design/crowd_arrays.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from abm.exchange.clearing import InvariantError


def equity(
    cash: np.ndarray,
    direction: np.ndarray,
    lots: np.ndarray,
    basis: np.ndarray,
    mark: float,
    multiplier: float,
) -> np.ndarray:
    """Cash + floating P&L at ``mark`` (money), per customer: cash + d × lots × (mark − basis)
    × multiplier, with d = +1 for a long holder and −1 for a short one."""
    return cash + direction * lots * (mark - basis) * multiplier


def margin_calls(
    cash: np.ndarray,
    lots: np.ndarray,
    settle: float,
    rate: float,
    maintenance_ratio: float,
    multiplier: float,
) -> tuple[np.ndarray, np.ndarray]:
    """After the settlement at ``settle`` (positions re-based there, so equity is the cash):
    the customers called, equity < maintenance × |settle| × multiplier × lots × rate, and the
    amount each call asks (money). Indices, amounts."""
    need = maintenance_ratio * (abs(settle) * multiplier * lots * rate)
    called = np.flatnonzero((lots > 0) & (cash < need))
    return called, need[called] - cash[called]


def lots_to_liquidate(
    equity_now: np.ndarray,
    lots: np.ndarray,
    price: float,
    rate: float,
    maintenance_ratio: float,
    multiplier: float,
) -> np.ndarray:
    """Lots to close so that equity ≥ maintenance × margin at ``price``, per customer (as
    `ClearingHouse.lots_to_liquidate`): everything when equity ≤ 0, else lots − ⌊equity /
    (maintenance × |price| × multiplier × rate)⌋, never below 0."""
    per_lot = maintenance_ratio * (abs(price) * multiplier * rate)
    lots = np.asarray(lots, dtype=np.int64)
    if per_lot <= 0:
        return lots.copy()
    keep = np.floor(np.maximum(equity_now, 0.0) / per_lot).astype(np.int64)
    out = np.clip(lots - keep, 0, lots)
    return np.where(equity_now <= 0, lots, out)


def allocate_by_arrival(
    requested: np.ndarray, trade_qty: np.ndarray, trade_price: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Share the trades of one omnibus order (``trade_qty`` lots at ``trade_price``, in the
    order they printed) among the customers whose orders it nets, in their arrival order
    (``requested`` lots each): the first customer's lots take the first trades' prices, and so
    on; customers the fills do not reach get nothing. Returns each customer's filled lots and
    their value (Σ lots × price, price units × lots), computed from the running totals so that
    the values add up to the trades' value."""
    requested = np.asarray(requested, dtype=np.int64)
    trade_qty = np.asarray(trade_qty, dtype=np.int64)
    if (requested < 0).any() or (trade_qty < 0).any():
        raise ValueError("allocate_by_arrival: lots must be ≥ 0")
    total = int(trade_qty.sum())
    want = np.cumsum(requested)
    got_to = np.minimum(want, total)  # lots filled up to and including each customer
    filled = np.diff(got_to, prepend=0)
    # the value of the first x lots of the trades: piecewise linear in x, exact at the
    # trades' boundaries
    q_edges = np.concatenate(([0], np.cumsum(trade_qty)))
    v_edges = np.concatenate(([0.0], np.cumsum(trade_qty * np.asarray(trade_price, float))))
    v_to = np.interp(got_to, q_edges, v_edges) if total else np.zeros(len(got_to))
    value = np.diff(v_to, prepend=0.0)
    return filled, value


def allocate_pro_rata(held: np.ndarray, total: int) -> np.ndarray:
    """``total`` lots shared among customers holding ``held`` in proportion to it, by largest
    remainder (ties to the earlier customer), never more than a customer holds: the array form
    of [`slice_pro_rata()`][abm.exchange.broker.slice_pro_rata]. Lots."""
    held = np.asarray(held, dtype=np.int64)
    whole = int(held.sum())
    if total >= whole:
        return held.copy()
    if total <= 0:
        return np.zeros_like(held)
    exact = total * held / whole
    out = exact.astype(np.int64)
    rest = total - int(out.sum())
    if rest:
        # largest remainder first, the earlier customer on a tie (a stable sort keeps order)
        order = np.argsort(-(exact - out), kind="stable")
        out[order[:rest]] += 1
    return out


@dataclass
class CustomerLedger:
    """The customers of one omnibus account: ``direction`` (+1 long, −1 short, fixed), and per
    customer ``lots`` (held in its direction), ``basis`` (price units: the average opening
    price, re-based to each settlement), ``cash`` (money: deposits + realised and settled P&L −
    fees + bad debt received), ``deposits``, ``realized``, ``fees``, ``bad_debt_received``
    (money), ``n_margin_calls`` and ``went_negative``."""

    direction: np.ndarray
    deposits: np.ndarray
    multiplier: float
    fee_per_lot: float = 0.0
    lots: np.ndarray = field(init=False)
    basis: np.ndarray = field(init=False)
    cash: np.ndarray = field(init=False)
    realized: np.ndarray = field(init=False)
    fees: np.ndarray = field(init=False)
    bad_debt_received: np.ndarray = field(init=False)
    n_margin_calls: np.ndarray = field(init=False)
    went_negative: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.direction = np.asarray(self.direction, dtype=np.int8)
        self.deposits = np.asarray(self.deposits, dtype=float).copy()
        if self.direction.shape != self.deposits.shape or self.direction.ndim != 1:
            raise ValueError(
                f"direction {self.direction.shape} and deposits {self.deposits.shape}: "
                "one value per customer each"
            )
        bad = ~np.isin(self.direction, (-1, 1))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"direction[{i}] = {int(self.direction[i])}: allowed +1 (long) or -1 (short)"
            )
        n = len(self.direction)
        self.lots = np.zeros(n, dtype=np.int64)
        self.basis = np.zeros(n)
        self.cash = self.deposits.copy()
        self.realized = np.zeros(n)
        self.fees = np.zeros(n)
        self.bad_debt_received = np.zeros(n)
        self.n_margin_calls = np.zeros(n, dtype=np.int64)
        self.went_negative = np.zeros(n, dtype=bool)

    def __len__(self) -> int:
        return len(self.direction)

    def equity(self, mark: float, who: np.ndarray | None = None) -> np.ndarray:
        """Each customer's equity at ``mark`` (money); of customers ``who`` only, if given."""
        if who is None:
            return equity(self.cash, self.direction, self.lots, self.basis, mark, self.multiplier)
        return equity(
            self.cash[who],
            self.direction[who],
            self.lots[who],
            self.basis[who],
            mark,
            self.multiplier,
        )

    def deposit(self, who: np.ndarray, amount: np.ndarray) -> None:
        """Money paid in by customers ``who`` (e.g. answering a margin call)."""
        np.add.at(self.deposits, who, amount)
        np.add.at(self.cash, who, amount)

    def book(
        self,
        who: np.ndarray,
        qty: np.ndarray,
        value: np.ndarray,
        closes: bool,
        fees: bool = True,
        distinct: bool = False,
    ) -> None:
        """Book fills: customer ``who[j]`` bought or sold ``qty[j]`` lots worth ``value[j]``
        (Σ lots × price) in its direction (``closes`` False: opening lots) or against it
        (True: closing lots). One entry per customer (indices distinct; ``distinct`` says the
        caller knows they are, and skips the check). Opening re-averages the basis; closing
        realises d × (value − qty × basis) × multiplier and a flat customer's basis returns to
        0; each lot pays the fee unless ``fees`` is off (closing at expiry)."""
        who = np.asarray(who, dtype=np.int64)
        qty = np.asarray(qty, dtype=np.int64)
        value = np.asarray(value, dtype=float)
        if not distinct and len(np.unique(who)) != len(who):
            raise ValueError("book: one entry per customer (indices repeat)")
        keep = qty > 0
        who, qty, value = who[keep], qty[keep], value[keep]
        m = self.multiplier
        held = self.lots[who]
        if closes:
            over = qty > held
            if over.any():
                j = int(np.flatnonzero(over)[0])
                raise InvariantError(
                    f"customer {int(who[j])} closes {int(qty[j])} lots but holds {int(held[j])}"
                )
            d = self.direction[who]
            pnl = d * (value - qty * self.basis[who]) * m
            self.realized[who] += pnl
            self.cash[who] += pnl
            left = held - qty
            self.lots[who] = left
            self.basis[who] = np.where(left == 0, 0.0, self.basis[who])
        else:
            n = held + qty
            self.basis[who] = (self.basis[who] * held + value) / n
            self.lots[who] = n
        if self.fee_per_lot and fees:
            fee = self.fee_per_lot * qty
            self.cash[who] -= fee
            self.fees[who] += fee

    def mark_to_market(self, settle: float) -> None:
        """Daily settlement at ``settle``: floating P&L into cash, positions re-based there
        (as `ClearingHouse.mark_to_market`)."""
        held = self.lots > 0
        vm = np.where(held, self.direction * self.lots * (settle - self.basis), 0.0)
        vm *= self.multiplier
        self.cash += vm
        self.realized += vm
        self.basis = np.where(held, settle, self.basis)

    def margin_calls(
        self, settle: float, rate: float, maintenance_ratio: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Customers called after the settlement at ``settle``, and the amounts (money);
        counts each call."""
        who, amount = margin_calls(
            self.cash, self.lots, settle, rate, maintenance_ratio, self.multiplier
        )
        self.n_margin_calls[who] += 1
        return who, amount

    def cover_negative_equity(self, mark: float) -> float:
        """Flat customers left with negative equity are made whole by the broker; returns the
        deficit covered (money), which the broker books as its loss."""
        eq = self.equity(mark)
        bust = (self.lots == 0) & (eq < 0)
        deficit = -eq[bust]
        self.cash[bust] += deficit
        self.bad_debt_received[bust] += deficit
        self.went_negative |= bust
        return float(deficit.sum())

    def reconcile(self, long: int, short: int, equity_total: float, mark: float) -> None:
        """Check the customers add up to the omnibus account: its ``long`` and ``short`` lots
        are the long and short customers' lots, and its equity at ``mark`` (money) is theirs
        (to a relative 1e-9 of the money involved). Raises InvariantError naming the gap."""
        lg = int(self.lots[self.direction > 0].sum())
        sh = int(self.lots[self.direction < 0].sum())
        if (lg, sh) != (long, short):
            raise InvariantError(
                f"customer ledger holds {lg} long and {sh} short lots; the omnibus account "
                f"{long} and {short}"
            )
        eq = self.equity(mark)
        total = float(np.sum(eq))
        scale = max(1.0, float(np.abs(eq).sum()), abs(equity_total))
        if abs(total - equity_total) > 1e-9 * scale:
            raise InvariantError(
                f"customer ledger's equity {total:.6f} differs from the omnibus account's "
                f"{equity_total:.6f} by {total - equity_total:.3g}"
            )

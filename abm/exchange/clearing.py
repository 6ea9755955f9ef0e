"""Clearing house and broker: accounts, margin, mark-to-market, netting, delivery, loss regimes.

Units: *price* in price units (e.g. $/bbl, ¥/t), *lots* in contracts, *money* = price × lots ×
multiplier. Every cash flow is between two named parties: accounts, the fee collector, the
warehouse (delivery costs), the insurance fund and the broker (bad debt it absorbs). That is
what makes the ledger residual a real check:

    Σ_accounts (equity − deposits) + fees + delivery costs + (fund − fund seed) − broker loss = 0

Positions are kept as separate long and short lots (lock positions are allowed), each side with
a *basis* price: the average opening price until the first daily settlement, then the last
settlement price (Chinese 逐日盯市: daily P&L is moved into cash at settlement).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

LossRegime = Literal["broker", "insurance_fund", "socialized", "adl"]

#: The channels of execution transfers, by the fill's price source, and what each holds
#: (`ClearingHouse.apply_fill` books every fill in one; the exchange chooses it)
CHANNELS: dict[str, str] = {
    "ordinary": "every other fill, whenever it happens (against fair value)",
    "harvest_forced_close": "fills at the hedger's harvest quote, and forced-close prints "
    "against an account with delivery rights",
    "forced_close_within_crowd": "forced-close prints between two accounts without delivery "
    "rights: the crowd's longs and shorts closing against each other",
    "liquidation": "fills of margin liquidations",
    "expiry": "closing of non-deliverable positions at expiry",
}


def _breach(value: float, tol: float) -> bool:
    """|value| beyond tol, or value NaN or infinite (``abs(nan) > tol`` is False, and an
    infinite quantity can make its own tolerance infinite)."""
    return not (math.isfinite(value) and abs(value) <= tol)


class InvariantError(AssertionError):
    """An accounting invariant is broken; the message names the account and the step."""


# -- pure accounting functions ---------------------------------------------------------------


def margin_required(lots: int, price: float, multiplier: float, rate: float) -> float:
    """Margin for ``lots`` at ``price`` (money) = |price| × multiplier × lots × rate."""
    return abs(price) * multiplier * lots * rate


def floating_pnl(
    long: int, long_basis: float, short: int, short_basis: float, mark: float, multiplier: float
) -> float:
    """Unrealised P&L (money) of a long/short book marked at ``mark`` (price units)."""
    return (long * (mark - long_basis) + short * (short_basis - mark)) * multiplier


def liquidation_price(
    side: Literal["long", "short"],
    entry_price: float,
    lots: int,
    multiplier: float,
    equity: float,
    margin_rate: float,
    maintenance_ratio: float,
) -> float:
    """Price at which equity falls to ``maintenance_ratio`` × margin (margin on that price).

    ``equity`` is the account's equity (money) at ``entry_price``. For a long position
    equity(P) = equity + (P − entry) × lots × mult, margin(P) = P × lots × mult × rate, so
    P = (lots·mult·entry − equity) / (lots·mult·(1 − k·rate)); a short mirrors it with
    P = (equity + lots·mult·entry) / (lots·mult·(1 + k·rate)). Returns price units.
    """
    if side not in ("long", "short"):
        raise ValueError(f"side = {side!r}: allowed 'long' or 'short'")
    if not (isinstance(lots, int) and lots > 0):
        raise ValueError(f"lots = {lots!r}: must be a positive whole number")
    if multiplier <= 0:
        raise ValueError(f"multiplier = {multiplier}: must be > 0")
    if not 0 < margin_rate <= 1:
        raise ValueError(f"margin_rate = {margin_rate}: must be in (0, 1]")
    if not 0 < maintenance_ratio <= 1:
        raise ValueError(f"maintenance_ratio = {maintenance_ratio}: must be in (0, 1]")
    if entry_price <= 0:
        raise ValueError(f"entry_price = {entry_price}: must be > 0")
    km = maintenance_ratio * margin_rate
    nm = lots * multiplier
    if side == "long":
        if km >= 1:
            raise ValueError("maintenance_ratio × margin_rate = 1: a long is never liquidated")
        return (nm * entry_price - equity) / (nm * (1 - km))
    return (equity + nm * entry_price) / (nm * (1 + km))


def spread_lots(long: int, short: int, other_long: int, other_short: int) -> int:
    """Lots of a position (``long``, ``short``) in one month that offset the same member's
    opposite lots in another month (a calendar spread): min(long, other short) + min(short,
    other long). Lots."""
    return min(long, other_short) + min(short, other_long)


def bankruptcy_price(net_lots: int, mark: float, equity: float, multiplier: float) -> float:
    """Price (price units) at which an account with ``net_lots`` (+ long) and ``equity`` at
    ``mark`` has exactly zero equity."""
    if net_lots == 0:
        raise ValueError("net_lots = 0: a flat account has no bankruptcy price")
    return mark - equity / (net_lots * multiplier)


# -- accounts --------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Account:
    id: int
    owner: str  # agent class label: retail, hedger, market_maker, arbitrageur, ...
    deliverable: bool
    deposits: float = 0.0  # money paid in (initial + top-ups)
    cash: float = 0.0  # deposits + realised/settled P&L − fees ± loss transfers
    long: int = 0
    short: int = 0
    long_basis: float = 0.0
    short_basis: float = 0.0
    long_open_avg: float = 0.0  # average opening price, for reporting
    short_open_avg: float = 0.0
    fees: float = 0.0
    realized: float = 0.0  # closed-trade and settled (MTM) P&L, money
    delivery_pnl: float = 0.0  # value of goods at spot − final settlement, less delivery cost
    bad_debt_received: float = 0.0  # covered by broker / fund / clawback
    clawed_back: float = 0.0  # taken by socialization
    penalty_paid: float = 0.0  # liquidation penalties paid to the fund
    delivery_cost_paid: float = 0.0  # part of delivery_pnl paid to the warehouse
    transfers: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CHANNELS, 0.0))
    margin_called: bool = False
    call_amount: float = 0.0
    n_margin_calls: int = 0
    n_liquidations: int = 0
    went_negative: bool = False
    pending_close_long: int = 0  # lots in resting/working orders that close longs
    pending_close_short: int = 0
    #: its marginal delivery cost curve (abm.delivery.DeliveryCurve); None: the contract's
    #: flat cost per unit
    delivery_curve: object | None = field(default=None, repr=False, compare=False)
    #: the same member's account in the other listed month (None: one month, or none held
    #: there): its opposite lots earn a spread credit on this account's margin
    pair: Account | None = field(default=None, repr=False, compare=False)
    #: the running totals of its owner class and delivery rights (shared with its peers)
    group: GroupTotals | None = field(default=None, repr=False, compare=False)
    #: an omnibus account's customers (a broker's book behind it, e.g.
    #: [`NettedCrowd`][abm.agents.netted.NettedCrowd]): told of every fill, every order that
    #: leaves the book and the expiry; it margins them itself, so the clearing house does not
    #: call the omnibus account. None: an ordinary account
    customers: object | None = field(default=None, repr=False, compare=False)

    def basis_value(self) -> float:
        """Σ lots × basis, longs minus shorts (price units × lots): floating P&L is
        (mark × net − basis_value) × multiplier."""
        return self.long * self.long_basis - self.short * self.short_basis

    @property
    def net(self) -> int:
        return self.long - self.short

    @property
    def lots(self) -> int:
        return self.long + self.short

    def floating(self, mark: float, multiplier: float) -> float:
        return floating_pnl(
            self.long, self.long_basis, self.short, self.short_basis, mark, multiplier
        )

    def equity(self, mark: float, multiplier: float) -> float:
        """Cash + floating P&L at ``mark`` (money)."""
        return self.cash + floating_pnl(
            self.long, self.long_basis, self.short, self.short_basis, mark, multiplier
        )

    def pnl(self, mark: float, multiplier: float) -> float:
        return self.equity(mark, multiplier) - self.deposits


@dataclass(slots=True)
class GroupTotals:
    """Running sums over a group of accounts, kept in step with every booking so that class
    aggregates cost O(1) per step instead of a pass over all accounts."""

    cash: float = 0.0
    deposits: float = 0.0
    long: int = 0
    short: int = 0
    basis_value: float = 0.0

    @property
    def net(self) -> int:
        return self.long - self.short

    def equity(self, mark: float, multiplier: float) -> float:
        return self.cash + (mark * (self.long - self.short) - self.basis_value) * multiplier


@dataclass(slots=True)
class Event:
    step: int
    kind: str
    account: int
    lots: int = 0
    price: float = float("nan")
    amount: float = 0.0
    note: str = ""


class ClearingHouse:
    """Accounts, margin and the loss-absorbing parties.

    It never matches orders: fills come from the book through
    [`apply_fill()`][abm.exchange.clearing.ClearingHouse.apply_fill]; ADL and
    expiry pairings are clearing-level transfers at a stated price.
    """

    def __init__(
        self,
        multiplier: float,
        fee_per_lot: float,
        maintenance_ratio: float = 1.0,
        loss_regime: LossRegime = "broker",
        insurance_fund: float = 0.0,
        liquidation_penalty: float = 0.0,
        lock_margin: Literal["both", "larger_side"] = "both",
        delivery_cost: float = 0.0,
    ):
        if loss_regime not in ("broker", "insurance_fund", "socialized", "adl"):
            raise ValueError(
                f"loss_regime = {loss_regime!r}: allowed broker, insurance_fund, socialized, adl"
            )
        self.multiplier = multiplier
        self.fee_per_lot = fee_per_lot
        self.maintenance_ratio = maintenance_ratio
        self.loss_regime = loss_regime
        self.liquidation_penalty = liquidation_penalty
        self.lock_margin = lock_margin
        self.delivery_cost = delivery_cost
        #: share of the margin waived on an account's calendar-spread lots (those offset by its
        #: ``pair`` in the other month); set on the next month's clearing house
        self.spread_credit = 0.0
        self.accounts: list[Account] = []
        self.open_interest = 0
        self.fees_collected = 0.0
        self.delivery_costs = 0.0
        self.fund_seed = insurance_fund
        self.fund = insurance_fund
        self.fund_paid = 0.0
        self.fund_received = 0.0
        self.broker_loss = 0.0
        self.broker_receivables: dict[int, float] = {}
        self.socialized_total = 0.0
        self.turnover = 0.0  # money
        self.volume = 0  # lots
        self.events: list[Event] = []
        self.step = 0
        #: running totals by (owner class, delivery rights): one per account, so a booking
        #: updates one aggregate; classes and the non-deliverable side are sums of these
        self.totals: dict[tuple[str, bool], GroupTotals] = {}
        #: execution transfers between owner classes: (channel, payer, payee) -> money
        self.flows: dict[tuple[str, str, str], float] = {}

    # -- group totals -------------------------------------------------------------------------
    @staticmethod
    def _snap(acc: Account) -> tuple[float, float, int, int, float]:
        return (acc.cash, acc.deposits, acc.long, acc.short, acc.basis_value())

    def _commit(self, acc: Account, snap: tuple[float, float, int, int, float]) -> None:
        dc = acc.cash - snap[0]
        dd = acc.deposits - snap[1]
        dl = acc.long - snap[2]
        ds = acc.short - snap[3]
        db = acc.basis_value() - snap[4]
        t = acc.group
        t.cash += dc
        t.deposits += dd
        t.long += dl
        t.short += ds
        t.basis_value += db

    def group(self, name: str) -> GroupTotals:
        """Totals of an owner class ('retail', 'hedger', ...) or of 'non_deliverable' (every
        account without delivery rights). Read-only: a class of one kind of account is its
        live running totals, a mixed one a fresh sum."""
        if name == "non_deliverable":
            parts = [t for (_, deliverable), t in self.totals.items() if not deliverable]
        else:
            parts = [t for (owner, _), t in self.totals.items() if owner == name]
        if len(parts) == 1:
            return parts[0]
        total = GroupTotals()
        for t in parts:
            total.cash += t.cash
            total.deposits += t.deposits
            total.long += t.long
            total.short += t.short
            total.basis_value += t.basis_value
        return total

    @property
    def ndnp(self) -> int:
        """Non-deliverable net position: Σ net lots of accounts without delivery rights."""
        return self.group("non_deliverable").net

    # -- accounts --------------------------------------------------------------------------
    def open_account(self, owner: str, deliverable: bool, deposit: float) -> Account:
        if deposit < 0 or not math.isfinite(deposit):
            raise ValueError(f"deposit = {deposit}: must be a finite amount >= 0")
        group = self.totals.setdefault((owner, deliverable), GroupTotals())
        acc = Account(len(self.accounts), owner, deliverable, group=group)
        self.accounts.append(acc)
        snap = self._snap(acc)
        acc.deposits = acc.cash = float(deposit)  # a numpy scalar would slow every booking
        self._commit(acc, snap)
        return acc

    def deposit(self, account: Account, amount: float) -> None:
        """Top-up (money) from outside the system."""
        if amount <= 0 or not math.isfinite(amount):
            raise ValueError(f"amount = {amount}: a deposit must be a finite amount > 0")
        amount = float(amount)
        snap = self._snap(account)
        account.deposits += amount
        account.cash += amount
        self._commit(account, snap)
        self.events.append(Event(self.step, "top_up", account.id, amount=amount))

    def margin_lots(self, acc: Account) -> float:
        """The lots an account is margined on (lots, fractional with a spread credit): both
        sides or the larger, less ``spread_credit`` of those in a calendar spread with its
        pair in the other month."""
        lots = max(acc.long, acc.short) if self.lock_margin == "larger_side" else acc.lots
        pair = acc.pair
        if pair is not None and self.spread_credit:
            lots -= self.spread_credit * spread_lots(acc.long, acc.short, pair.long, pair.short)
        return lots

    def margin_used(self, acc: Account, price: float, rate: float) -> float:
        return margin_required(self.margin_lots(acc), price, self.multiplier, rate)

    # -- fills -------------------------------------------------------------------------------
    def apply_fill(
        self,
        buyer: Account,
        seller: Account,
        qty: int,
        price: float,
        buyer_closes: bool,
        seller_closes: bool,
        ref_price: float,
        channel: str,
        fees: bool = True,
    ) -> None:
        """Book one fill of ``qty`` lots at ``price`` between two accounts.

        Opening lots re-average the side's basis (price units); closing lots realise
        ``qty × (price − basis) × multiplier`` (money; reversed for shorts). ``ref_price``
        (price units) is the fair value at the time: the fill moves (ref − price) × qty × mult
        from seller to buyer, booked as an execution transfer in ``channel``; what the accounts
        gain or lose afterwards from holding the position is the market component.
        """
        if buyer is seller:
            raise InvariantError(f"step {self.step}: account {buyer.id} trades with itself")
        m = self.multiplier
        fee = self.fee_per_lot * qty if fees else 0.0
        # one body for both sides (the busiest loop of a run: no helper calls inside)
        for acc, buys, closes in ((buyer, True, buyer_closes), (seller, False, seller_closes)):
            cash0 = acc.cash
            lg, sh = acc.long, acc.short
            bv0 = lg * acc.long_basis - sh * acc.short_basis
            dl = ds = 0
            if closes:
                held = sh if buys else lg
                if qty > held:
                    raise InvariantError(
                        f"step {self.step}: account {acc.id} {'buys' if buys else 'sells'} to "
                        f"close {qty} lots but holds {held} {'short' if buys else 'long'}"
                    )
                if buys:
                    pnl = qty * (acc.short_basis - price) * m
                    acc.short = sh - qty
                    ds = -qty
                    if acc.short == 0:
                        acc.short_basis = acc.short_open_avg = 0.0
                else:
                    pnl = qty * (price - acc.long_basis) * m
                    acc.long = lg - qty
                    dl = -qty
                    if acc.long == 0:
                        acc.long_basis = acc.long_open_avg = 0.0
                acc.realized += pnl
                acc.cash += pnl
            elif buys:
                n = lg + qty
                acc.long_basis = (acc.long_basis * lg + price * qty) / n
                acc.long_open_avg = (acc.long_open_avg * lg + price * qty) / n
                acc.long = n
                dl = qty
            else:
                n = sh + qty
                acc.short_basis = (acc.short_basis * sh + price * qty) / n
                acc.short_open_avg = (acc.short_open_avg * sh + price * qty) / n
                acc.short = n
                ds = qty
            if fee:
                acc.cash -= fee
                acc.fees += fee
                self.fees_collected += fee
            # the group totals move with the account (inlined _snap/_commit)
            t = acc.group
            t.cash += acc.cash - cash0
            t.long += dl
            t.short += ds
            t.basis_value += acc.long * acc.long_basis - acc.short * acc.short_basis - bv0
        # OI counts one side: Σ long grows when the buyer opens, shrinks when the seller closes.
        self.open_interest += (0 if buyer_closes else qty) - (qty if seller_closes else 0)
        x = (ref_price - price) * qty * m
        buyer.transfers[channel] += x
        seller.transfers[channel] -= x
        payer, payee = (seller.owner, buyer.owner) if x >= 0 else (buyer.owner, seller.owner)
        key = (channel, payer, payee)
        self.flows[key] = self.flows.get(key, 0.0) + abs(x)
        self.turnover += abs(price) * qty * m
        self.volume += qty

    def fill_within(
        self,
        acc: Account,
        qty: int,
        price: float,
        buyer_closes: bool,
        seller_closes: bool,
        ref_price: float,
        channel: str,
    ) -> None:
        """Book a fill of ``qty`` lots at ``price`` between two customers of one omnibus
        account (one opens, the other closes, in the account's one direction): its position
        and equity do not move but for both sides' fees; the customers' books are their
        broker's. The execution transfer is between two members of one class (booked in
        ``flows`` as `apply_fill` does, net zero on the account)."""
        if buyer_closes == seller_closes:
            raise InvariantError(
                f"step {self.step}: omnibus account {acc.id} fills {qty} lots with itself with "
                f"both sides {'closing' if buyer_closes else 'opening'}: its position would move"
            )
        if acc.customers is None:
            raise InvariantError(f"step {self.step}: account {acc.id} trades with itself")
        m = self.multiplier
        fee = 2 * self.fee_per_lot * qty
        if fee:
            acc.cash -= fee
            acc.fees += fee
            acc.group.cash -= fee
            self.fees_collected += fee
        x = abs((ref_price - price) * qty * m)
        key = (channel, acc.owner, acc.owner)
        self.flows[key] = self.flows.get(key, 0.0) + x
        self.turnover += abs(price) * qty * m
        self.volume += qty

    def net_locks(self, acc: Account) -> int:
        """Offset an account's own longs against its shorts: no trade, no price impact.

        Returns the lots netted (open interest falls by that much).
        """
        k = min(acc.long - acc.pending_close_long, acc.short - acc.pending_close_short)
        if k <= 0:
            return 0
        snap = self._snap(acc)
        pnl = k * (acc.short_basis - acc.long_basis) * self.multiplier
        acc.long -= k
        acc.short -= k
        if acc.long == 0:
            acc.long_basis = acc.long_open_avg = 0.0
        if acc.short == 0:
            acc.short_basis = acc.short_open_avg = 0.0
        acc.realized += pnl
        acc.cash += pnl
        self._commit(acc, snap)
        self.open_interest -= k
        self.events.append(Event(self.step, "netting", acc.id, lots=k))
        return k

    # -- settlement and margin ---------------------------------------------------------------
    def mark_to_market(self, settle: float) -> None:
        """Daily settlement: move every account's floating P&L at ``settle`` into cash and
        re-base its positions at ``settle``."""
        m = self.multiplier
        for acc in self.accounts:
            lg, sh = acc.long, acc.short
            if lg or sh:
                # MTM moves floating P&L into cash and re-bases: the account's equity, and so
                # its class totals' equity, are unchanged; cash and basis value move together
                bv0 = lg * acc.long_basis - sh * acc.short_basis
                vm = (lg * (settle - acc.long_basis) + sh * (acc.short_basis - settle)) * m
                acc.cash += vm
                acc.realized += vm
                if lg:
                    acc.long_basis = settle
                if sh:
                    acc.short_basis = settle
                t = acc.group
                t.cash += vm
                t.basis_value += (lg - sh) * settle - bv0

    def issue_margin_calls(self, settle: float, rate: float) -> list[Account]:
        """After settlement: call every account with equity < maintenance × margin used."""
        called = []
        m = self.multiplier
        k = self.maintenance_ratio
        price = abs(settle)
        larger = self.lock_margin == "larger_side"
        for acc in self.accounts:
            acc.margin_called = False
            acc.call_amount = 0.0
            lg, sh = acc.long, acc.short
            if not (lg or sh) or acc.customers is not None:
                continue
            # the same arithmetic as margin_required(), so calls do not depend on rounding
            if acc.pair is None:
                need = k * (price * m * (max(lg, sh) if larger else lg + sh) * rate)
            else:
                need = k * (price * m * self.margin_lots(acc) * rate)
            # positions were just re-based at ``settle``: equity is the cash
            eq = acc.cash + (lg * (settle - acc.long_basis) + sh * (acc.short_basis - settle)) * m
            if eq < need:
                acc.margin_called = True
                acc.call_amount = need - eq
                acc.n_margin_calls += 1
                called.append(acc)
                self.events.append(
                    Event(self.step, "margin_call", acc.id, acc.lots, settle, acc.call_amount)
                )
        return called

    def lots_to_liquidate(self, acc: Account, price: float, rate: float) -> int:
        """Lots to close so that equity ≥ maintenance × margin at ``price`` (ignoring impact)."""
        eq = acc.equity(price, self.multiplier)
        per_lot = self.maintenance_ratio * margin_required(1, price, self.multiplier, rate)
        if eq <= 0 or per_lot <= 0:
            return acc.lots
        keep = math.floor(eq / per_lot)
        held = max(acc.long, acc.short) if self.lock_margin == "larger_side" else acc.lots
        return max(0, min(acc.lots, held - keep))

    def pay_penalty(self, acc: Account, notional: float, mark: float) -> None:
        """Liquidation penalty to the insurance fund, out of remaining positive equity."""
        if self.liquidation_penalty <= 0:
            return
        eq = acc.equity(mark, self.multiplier)
        amount = min(max(eq, 0.0), self.liquidation_penalty * notional)
        if amount > 0:
            snap = self._snap(acc)
            acc.cash -= amount
            self._commit(acc, snap)
            acc.penalty_paid += amount
            self.fund += amount
            self.fund_received += amount

    # -- negative equity ---------------------------------------------------------------------
    def cover_negative_equity(self, acc: Account, mark: float) -> float:
        """Make a bankrupt, flat (or expired) account whole by the loss regime; returns the
        deficit covered (money). Each party's share is booked so the loss is traceable."""
        eq = acc.equity(mark, self.multiplier)
        if eq >= 0:
            return 0.0
        deficit = -eq
        acc.went_negative = True
        self.events.append(Event(self.step, "negative_equity", acc.id, acc.lots, mark, deficit))
        self._absorb(acc, deficit, mark)
        return deficit

    def cover_customers(self, acc: Account, deficit: float, mark: float) -> tuple[float, float]:
        """Make whole the customers behind an omnibus account whose flat books ended
        ``deficit`` (money) below zero: the loss regime covers it as it would an account's
        own deficit (fund, then broker), credited to the omnibus account. Returns (the fund's
        part, the broker's part), money."""
        if not deficit > 0:
            return 0.0, 0.0
        self.events.append(
            Event(self.step, "negative_equity", acc.id, acc.lots, mark, deficit, "customers")
        )
        fund0, broker0 = self.fund_paid, self.broker_loss
        self._absorb(acc, deficit, mark)
        return self.fund_paid - fund0, self.broker_loss - broker0

    def _absorb(self, acc: Account, deficit: float, mark: float) -> None:
        """The loss regime covers ``deficit`` (money) of ``acc``: the fund, a clawback, then
        the broker."""
        left = deficit
        if self.loss_regime in ("insurance_fund", "socialized", "adl") and self.fund > 0:
            take = min(self.fund, left)
            self.fund -= take
            self.fund_paid += take
            left -= take
            self._credit(acc, take, "insurance_fund")
        if left > 0 and self.loss_regime == "socialized":
            left -= self._claw_back(acc, left, mark)
        if left > 1e-12:
            self.broker_loss += left
            self.broker_receivables[acc.id] = self.broker_receivables.get(acc.id, 0.0) + left
            self._credit(acc, left, "broker")

    def _credit(self, acc: Account, amount: float, source: str) -> None:
        snap = self._snap(acc)
        acc.cash += amount
        self._commit(acc, snap)
        acc.bad_debt_received += amount
        self.events.append(Event(self.step, "bad_debt_covered", acc.id, amount=amount, note=source))

    def _claw_back(self, bankrupt: Account, amount: float, mark: float) -> float:
        """Take ``amount`` pro rata from accounts' positive P&L (OKEx-style); returns taken."""
        m = self.multiplier
        profits = [(a, a.pnl(mark, m)) for a in self.accounts if a is not bankrupt]
        profits = [(a, p) for a, p in profits if p > 0]
        total = sum(p for _, p in profits)
        if total <= 0:
            return 0.0
        take_total = min(amount, total)
        for a, p in profits:
            share = take_total * p / total
            snap = self._snap(a)
            a.cash -= share
            self._commit(a, snap)
            a.clawed_back += share
            self.events.append(Event(self.step, "clawback", a.id, amount=share))
        self.socialized_total += take_total
        snap = self._snap(bankrupt)
        bankrupt.cash += take_total
        self._commit(bankrupt, snap)
        bankrupt.bad_debt_received += take_total
        self.events.append(
            Event(self.step, "bad_debt_covered", bankrupt.id, amount=take_total, note="socialized")
        )
        return take_total

    def auto_deleverage(self, acc: Account, mark: float, ref_price: float) -> int:
        """ADL: close a bankrupt account's net position at its bankruptcy price against the
        opposing positions ranked by profit × leverage. Returns lots closed."""
        m = self.multiplier
        self.net_locks(acc)
        net = acc.net
        if net == 0:
            return 0
        eq = acc.equity(mark, m)
        price = bankruptcy_price(net, mark, eq, m)
        want = abs(net)
        side = 1 if net > 0 else -1  # the bankrupt account's side
        candidates = []
        for a in self.accounts:
            if a is acc:
                continue
            opp = a.short if side > 0 else a.long
            opp -= a.pending_close_short if side > 0 else a.pending_close_long
            if opp <= 0:
                continue
            a_eq = a.equity(mark, m)
            pnl = a_eq - a.deposits
            lev = abs(a.net) * abs(mark) * m / a_eq if a_eq > 0 else 0.0
            candidates.append((pnl * lev if pnl > 0 else pnl, a.id, a, opp))
        candidates.sort(key=lambda c: (-c[0], c[1]))
        done = 0
        for _, _, a, opp in candidates:
            if done >= want:
                break
            q = min(opp, want - done)
            if side > 0:  # bankrupt long sells to the short holder, both close
                self.apply_fill(a, acc, q, price, True, True, ref_price, "liquidation", fees=False)
            else:
                self.apply_fill(acc, a, q, price, True, True, ref_price, "liquidation", fees=False)
            self.events.append(Event(self.step, "adl", a.id, q, price, note=f"vs {acc.id}"))
            done += q
        if done:
            acc.n_liquidations += 1
            self.events.append(Event(self.step, "adl_bankrupt", acc.id, done, price))
        return done

    # -- expiry ------------------------------------------------------------------------------
    def expire(self, final_settle: float, spot: float, ref_price: float) -> None:
        """Expiry: final mark-to-market, close what accounts without delivery rights still
        hold against opposite positions at the final settlement price, then deliver the
        rest against spot (goods valued at spot; each side pays its delivery cost: its own
        curve's total for the lots it delivers, else the contract's cost per unit)."""
        m = self.multiplier
        self.mark_to_market(final_settle)
        for acc in self.accounts:
            acc.pending_close_long = acc.pending_close_short = 0
            self.net_locks(acc)
        nd = [a for a in self.accounts if a.lots and not a.deliverable]
        # the holders of each side, other non-deliverables first: closing at expiry only
        # takes lots away, so a holder that runs out is passed for good (one pass over the
        # holders instead of a scan of every account for every lot holder left)
        rank = lambda a: (a.deliverable, a.id)  # noqa: E731
        holders = {
            1: sorted((a for a in self.accounts if a.short), key=rank),
            -1: sorted((a for a in self.accounts if a.long), key=rank),
        }
        first = {1: 0, -1: 0}
        for acc in nd:
            while acc.lots:
                side = 1 if acc.long else -1
                opp, i = holders[side], first[side]
                while i < len(opp) and not (opp[i].short if side > 0 else opp[i].long):
                    i += 1
                first[side] = i
                a = None
                for j in range(i, len(opp)):
                    b = opp[j]
                    if b is not acc and (b.short if side > 0 else b.long):
                        a = b
                        break
                if a is None:
                    raise InvariantError(
                        f"step {self.step}: account {acc.id} holds {acc.lots} lots at expiry "
                        "with no opposite position"
                    )
                q = min(acc.long if side > 0 else acc.short, a.short if side > 0 else a.long)
                buyer, seller = (a, acc) if side > 0 else (acc, a)
                self.apply_fill(
                    buyer, seller, q, final_settle, True, True, ref_price, "expiry", fees=False
                )
                self.events.append(Event(self.step, "expiry_close", acc.id, q, final_settle))
            if acc.customers is not None:  # its customers close at the same price
                acc.customers.on_expiry(acc, final_settle, ref_price)
        cost = self.delivery_cost
        for acc in self.accounts:
            if not acc.lots:
                continue
            snap = self._snap(acc)
            value = (acc.long * (spot - final_settle) + acc.short * (final_settle - spot)) * m
            curve = acc.delivery_curve
            fee = (acc.lots * cost if curve is None else curve.total(acc.lots)) * m
            acc.cash += value - fee
            acc.delivery_pnl += value - fee
            acc.delivery_cost_paid += fee
            acc.transfers["expiry"] += (acc.long - acc.short) * (spot - ref_price) * m
            self.delivery_costs += fee
            self.events.append(Event(self.step, "delivery", acc.id, acc.net, spot, value - fee))
            self.open_interest -= acc.long
            acc.long = acc.short = 0
            acc.long_basis = acc.short_basis = acc.long_open_avg = acc.short_open_avg = 0.0
            self._commit(acc, snap)
        for acc in self.accounts:
            self.cover_negative_equity(acc, final_settle)

    # -- invariants --------------------------------------------------------------------------
    def ledger_residual(self, mark: float) -> float:
        """Σ_accounts (equity − deposits) + fees + delivery costs + fund change − broker loss
        (money); zero when every cash flow has both ends booked."""
        m = self.multiplier
        total = math.fsum(a.equity(mark, m) - a.deposits for a in self.accounts)
        return (
            total
            + self.fees_collected
            + self.delivery_costs
            + (self.fund - self.fund_seed)
            - self.broker_loss
        )

    def balances(self) -> float:
        """The money the ledger holds, in magnitude (money): Σ over the class totals of
        |deposits| + |cash|, plus the fees, delivery costs, fund and broker loss."""
        held = math.fsum(abs(t.deposits) + abs(t.cash) for t in self.totals.values())
        return (
            held
            + abs(self.fees_collected)
            + abs(self.delivery_costs)
            + abs(self.fund)
            + abs(self.fund_seed)
            + abs(self.broker_loss)
        )

    def money_tolerance(self, extra: float = 0.0, ledger: bool = False) -> float:
        """How far a money sum may drift by rounding alone (money).

        Every booking is a float64 operation, rounding by at most ε = 2⁻⁵³ ≈ 1.1e-16 of its
        result. A running sum of n bookings therefore drifts by at most n·ε·(largest partial
        sum): it scales with the amounts that pass through it (turnover: money traded) and
        the sizes it carries (``extra``: an account's or a class's cash and position value).
        The ledger residual (``ledger``) sums every account's equity less its deposits, and
        loses ε of each term, so it also scales with all the money the ledger holds
        ([`balances()`][abm.exchange.clearing.ClearingHouse.balances]: deposits and cash can
        dwarf the turnover, as a firm funded with 5e11 in a market trading 1e4 does). The
        tolerance is 1e-9 of those amounts, room for 10⁷ worst-case roundings of the largest,
        far more than any run books, with a floor of 1e-6 per unit of multiplier. A real
        error of a fraction of a tick on one lot still fails wherever float64 can see it."""
        held = self.balances() if ledger else 0.0
        return 1e-9 * (max(self.turnover, 0.0) + held + extra) + 1e-6 * max(
            1.0, abs(self.multiplier)
        )

    def check_totals(self, mark: float, step: int) -> None:
        """The invariants from the running class totals alone (cheap: every day's end):
        open interest = Σ long = Σ short, and a zero ledger residual."""
        owners = list(self.totals.values())
        sum_long = sum(t.long for t in owners)
        sum_short = sum(t.short for t in owners)
        if not (self.open_interest == sum_long == sum_short):
            raise InvariantError(
                f"step {step}: open interest {self.open_interest} != Σ long {sum_long} "
                f"or Σ short {sum_short} (class totals)"
            )
        m = self.multiplier
        res = (
            math.fsum(t.equity(mark, m) - t.deposits for t in owners)
            + self.fees_collected
            + self.delivery_costs
            + (self.fund - self.fund_seed)
            - self.broker_loss
        )
        tol = self.money_tolerance(ledger=True)
        if _breach(res, tol):
            raise InvariantError(
                f"step {step}: ledger residual {res:.6g} (money) from class totals exceeds the "
                f"tolerance {tol:.3g} (turnover {self.turnover:.6g})"
            )

    def check_invariants(self, mark: float, step: int | None = None) -> None:
        """Raise [`InvariantError`][abm.exchange.clearing.InvariantError] naming the account and
        step on any breach."""
        step = self.step if step is None else step
        sum_long = sum_short = 0
        for a in self.accounts:
            if a.long < 0 or a.short < 0:
                raise InvariantError(
                    f"step {step}: account {a.id} ({a.owner}) holds negative lots "
                    f"(long {a.long}, short {a.short})"
                )
            if a.pending_close_long > a.long or a.pending_close_short > a.short:
                raise InvariantError(
                    f"step {step}: account {a.id} ({a.owner}) has close orders for more lots "
                    f"than it holds"
                )
            sum_long += a.long
            sum_short += a.short
        if not (self.open_interest == sum_long == sum_short):
            raise InvariantError(
                f"step {step}: open interest {self.open_interest} != Σ long {sum_long} "
                f"or Σ short {sum_short}"
            )
        for a in self.accounts:
            book = (
                a.deposits
                + a.realized
                - a.fees
                + a.delivery_pnl
                + a.bad_debt_received
                - a.clawed_back
                - a.penalty_paid
            )
            tol = 1e-9 * max(abs(a.deposits), abs(a.cash), 1.0) + self.money_tolerance(0.0)
            if _breach(a.cash - book, tol):
                raise InvariantError(
                    f"step {step}: account {a.id} ({a.owner}) cash {a.cash:.6f} does not "
                    f"reconcile with its bookings {book:.6f}: difference "
                    f"{a.cash - book:.6g} (money), tolerance {tol:.3g}"
                )
        fresh = {g: GroupTotals() for g in self.totals}
        for a in self.accounts:
            t = fresh[a.owner, a.deliverable]
            if a.group is not self.totals[a.owner, a.deliverable]:
                raise InvariantError(
                    f"step {step}: account {a.id} ({a.owner}) counts in the wrong class totals"
                )
            t.cash += a.cash
            t.deposits += a.deposits
            t.long += a.long
            t.short += a.short
            t.basis_value += a.basis_value()
        m = self.multiplier
        for g, t in fresh.items():
            kept = self.totals[g]
            who = f"{g[0]} accounts {'with' if g[1] else 'without'} delivery rights"
            if (kept.long, kept.short) != (t.long, t.short):
                raise InvariantError(
                    f"step {step}: running lots of {who} drifted: kept long/short "
                    f"{kept.long}/{kept.short}, the accounts hold {t.long}/{t.short}"
                )
            # rounding in a running sum grows with what has passed through it: the market's
            # turnover (money), the class's cash and position value, not a fixed 1e-6
            tol = self.money_tolerance(abs(t.cash) + abs(t.basis_value) * m)
            for what, a_, b_, scale in (
                ("cash", kept.cash, t.cash, 1.0),
                ("position value (price × lots × multiplier)", kept.basis_value, t.basis_value, m),
            ):
                if _breach((a_ - b_) * scale, tol):
                    raise InvariantError(
                        f"step {step}: running {what} of {who} drifted: kept {a_ * scale:.9g}, "
                        f"the accounts sum to {b_ * scale:.9g}, difference "
                        f"{(a_ - b_) * scale:.3g} (money), tolerance {tol:.3g}"
                    )
        res = self.ledger_residual(mark)
        tol = self.money_tolerance(ledger=True)
        if _breach(res, tol):
            worst = max(self.accounts, key=lambda a: abs(a.cash), default=None)
            raise InvariantError(
                f"step {step}: ledger residual {res:.6g} (money) exceeds the tolerance "
                f"{tol:.3g} (turnover {self.turnover:.6g}); largest cash account "
                f"{worst.id if worst else '-'}"
            )

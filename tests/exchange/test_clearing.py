"""Clearing house rules with hand-computed numbers: fills, MTM, margin, netting, losses."""

import pytest

from abm.exchange.clearing import ClearingHouse, InvariantError, liquidation_price


def house(**kw):
    base = dict(multiplier=10.0, fee_per_lot=2.0)
    base.update(kw)
    return ClearingHouse(**base)


def test_liquidation_price_seed_case():
    # seed 001: 1 lot long at 10,000 × 10, margin 10 %, maintenance 70 %, equity 10,000
    assert liquidation_price("long", 10_000, 1, 10, 10_000, 0.10, 0.7) == pytest.approx(
        9677.42, abs=0.005
    )
    # short mirrors: 10,000 + (10,000 − P)·10 = 0.7 · 0.1 · P · 10  ->  P = 110,000 / 10.7
    assert liquidation_price("short", 10_000, 1, 10, 10_000, 0.10, 0.7) == pytest.approx(
        110_000 / 10.7
    )


def test_liquidation_price_is_where_equity_meets_maintenance():
    p = liquidation_price("long", 3500, 4, 10, 20_000, 0.12, 1.0)
    equity = 20_000 + (p - 3500) * 4 * 10
    assert equity == pytest.approx(1.0 * 0.12 * p * 4 * 10)


@pytest.mark.parametrize(
    "kw, word",
    [
        (dict(side="flat"), "side"),
        (dict(lots=0), "lots"),
        (dict(margin_rate=1.5), "margin_rate"),
        (dict(maintenance_ratio=0), "maintenance_ratio"),
        (dict(multiplier=-1), "multiplier"),
    ],
)
def test_liquidation_price_rejects_bad_input(kw, word):
    args = dict(
        side="long",
        entry_price=100,
        lots=1,
        multiplier=10,
        equity=500,
        margin_rate=0.1,
        maintenance_ratio=0.7,
    )
    args.update(kw)
    with pytest.raises(ValueError, match=word):
        liquidation_price(**args)


def test_fill_mark_to_market_and_margin():
    ch = house()
    a = ch.open_account("retail", False, 10_000)
    b = ch.open_account("hedger", True, 10_000)
    ch.apply_fill(a, b, 2, 100.0, False, False, 100.0, "ordinary")
    assert (a.long, b.short, ch.open_interest) == (2, 2, 2)
    assert a.cash == 10_000 - 4 and ch.fees_collected == 8
    ch.mark_to_market(105.0)
    assert a.cash == 10_000 - 4 + 2 * 5 * 10  # +100 variation margin
    assert b.cash == 10_000 - 4 - 100
    assert a.long_basis == 105.0 and a.long_open_avg == 100.0
    assert ch.margin_used(a, 105.0, 0.10) == pytest.approx(2 * 105 * 10 * 0.10)
    c = ch.open_account("retail", False, 10_000)
    ch.apply_fill(c, a, 1, 108.0, False, True, 108.0, "ordinary")  # a sells 1 to close
    assert a.realized == pytest.approx(100 + 1 * (108 - 105) * 10)
    assert ch.open_interest == 2
    ch.check_invariants(108.0)


def test_execution_transfer_is_relative_to_fair_value():
    ch = house(fee_per_lot=0)
    a = ch.open_account("retail", False, 1e4)
    b = ch.open_account("hedger", True, 1e4)
    ch.apply_fill(b, a, 3, 97.0, False, False, 100.0, "harvest_forced_close")
    # buyer gets (100 − 97) · 3 · 10 = 90 from the seller
    assert b.transfers["harvest_forced_close"] == 90 and a.transfers["harvest_forced_close"] == -90


def test_netting_offsets_lock_without_trade():
    ch = house(fee_per_lot=0)
    h = ch.open_account("hedger", True, 1e6)
    x = ch.open_account("retail", False, 1e6)
    y = ch.open_account("retail", False, 1e6)
    ch.apply_fill(h, x, 3, 100.0, False, False, 100.0, "ordinary")  # h long 3 @100
    ch.apply_fill(y, h, 2, 104.0, False, False, 104.0, "ordinary")  # h short 2 @104
    assert ch.open_interest == 5 and ch.volume == 5
    assert ch.net_locks(h) == 2
    assert (h.long, h.short, ch.open_interest, ch.volume) == (1, 0, 3, 5)
    assert h.realized == 2 * (104 - 100) * 10
    ch.check_invariants(104.0)


def test_margin_call_under_maintenance():
    ch = house(fee_per_lot=0, maintenance_ratio=1.0)
    a = ch.open_account("retail", False, 150)
    b = ch.open_account("hedger", True, 1e6)
    ch.apply_fill(a, b, 1, 100.0, False, False, 100.0, "ordinary")
    ch.mark_to_market(96.0)  # equity 110 >= margin 96: no call
    assert ch.issue_margin_calls(96.0, 0.10) == []
    ch.mark_to_market(94.0)  # equity 90 < margin 94: call for 4
    called = ch.issue_margin_calls(94.0, 0.10)
    assert called == [a] and a.call_amount == pytest.approx(4.0) and a.n_margin_calls == 1


def test_lots_to_liquidate():
    ch = house(maintenance_ratio=1.0)
    a = ch.open_account("retail", False, 500)
    b = ch.open_account("hedger", True, 1e6)
    ch.apply_fill(a, b, 8, 100.0, False, False, 100.0, "ordinary")
    a.cash = 500.0 + a.fees  # forget the fee so equity is a round 500
    a.fees = 0
    # 100 per lot of margin at 100 × 10 × 10 %: equity 500 carries 5 lots, so 3 must go
    assert ch.lots_to_liquidate(a, 100.0, 0.10) == 3


def bankrupt_setup(**kw):
    """A (deposit 100) bought 2 @100 from B; A sold them to C @90: A's equity is −100."""
    ch = house(fee_per_lot=0, **kw)
    a = ch.open_account("retail", False, 100)
    b = ch.open_account("hedger", True, 10_000)
    c = ch.open_account("market_maker", False, 10_000)
    ch.apply_fill(a, b, 2, 100.0, False, False, 100.0, "ordinary")
    ch.apply_fill(c, a, 2, 90.0, False, True, 90.0, "liquidation")
    return ch, a, b, c


def test_broker_absorbs_negative_equity():
    ch, a, b, c = bankrupt_setup(loss_regime="broker")
    assert a.equity(90, 10) == -100
    assert ch.cover_negative_equity(a, 90.0) == 100
    assert a.equity(90, 10) == 0 and ch.broker_loss == 100 and ch.broker_receivables == {0: 100}
    ch.check_invariants(90.0)


def test_insurance_fund_then_broker():
    ch, a, b, c = bankrupt_setup(loss_regime="insurance_fund", insurance_fund=60)
    ch.cover_negative_equity(a, 90.0)
    assert ch.fund == 0 and ch.fund_paid == 60 and ch.broker_loss == 40
    ch.check_invariants(90.0)


def test_socialized_clawback_pro_rata():
    ch, a, b, c = bankrupt_setup(loss_regime="socialized")
    d = ch.open_account("retail", False, 1000)
    ch.apply_fill(d, c, 1, 90.0, False, False, 90.0, "ordinary")
    # marked at 96: b +80 (short 2 from 100), d +60 (long 1 from 90),
    # c +60 (long 2 and short 1, both from 90): profits 200, the 100 deficit taken pro rata
    ch.cover_negative_equity(a, 96.0)
    assert b.clawed_back == pytest.approx(40) and d.clawed_back == pytest.approx(30)
    assert c.clawed_back == pytest.approx(30)
    assert ch.broker_loss == 0 and ch.socialized_total == pytest.approx(100)
    ch.check_invariants(96.0)


def test_adl_closes_at_bankruptcy_price():
    ch = house(fee_per_lot=0, loss_regime="adl")
    a = ch.open_account("retail", False, 100)
    b = ch.open_account("hedger", True, 10_000)
    ch.apply_fill(a, b, 2, 100.0, False, False, 100.0, "ordinary")
    # marked at 90 a's equity is −100: bankruptcy price 90 + 100 / 20 = 95
    assert ch.auto_deleverage(a, 90.0, 90.0) == 2
    assert a.lots == 0 and a.equity(90, 10) == pytest.approx(0)
    assert b.short == 0 and b.equity(90, 10) == pytest.approx(10_000 + 5 * 2 * 10)
    ch.check_invariants(90.0)


def test_liquidation_penalty_feeds_fund():
    ch = house(fee_per_lot=0, loss_regime="insurance_fund", liquidation_penalty=0.01)
    a = ch.open_account("retail", False, 500)
    ch.pay_penalty(a, 1000.0, 100.0)
    assert a.penalty_paid == 10 and ch.fund == 10
    ch.check_invariants(100.0)


def test_delivery_at_expiry_against_spot():
    ch = house(fee_per_lot=0, delivery_cost=1.0)
    long_ = ch.open_account("arbitrageur", True, 1000)
    short = ch.open_account("hedger", True, 1000)
    ch.apply_fill(long_, short, 1, 100.0, False, False, 100.0, "ordinary")
    ch.expire(final_settle=100.0, spot=103.0, ref_price=103.0)
    # long: goods worth 103 for 100, less cost 1: (3 − 1) · 10; short: (−3 − 1) · 10
    assert long_.equity(100, 10) - 1000 == pytest.approx(20)
    assert short.equity(100, 10) - 1000 == pytest.approx(-40)
    assert ch.delivery_costs == 20 and ch.open_interest == 0
    ch.check_invariants(100.0)


def test_expiry_closes_non_deliverable_against_deliverable_at_settlement():
    ch = house(fee_per_lot=0)
    r = ch.open_account("retail", False, 1000)
    h = ch.open_account("hedger", True, 1000)
    ch.apply_fill(r, h, 2, 100.0, False, False, 100.0, "ordinary")
    ch.expire(final_settle=98.0, spot=100.0, ref_price=100.0)
    assert r.lots == 0 and h.lots == 0 and ch.delivery_costs == 0
    assert r.pnl(98, 10) == pytest.approx(-40) and h.pnl(98, 10) == pytest.approx(40)
    ch.check_invariants(98.0)


def test_breaches_name_account_and_step():
    ch = house()
    a = ch.open_account("retail", False, 1000)
    b = ch.open_account("hedger", True, 1000)
    ch.apply_fill(a, b, 1, 100.0, False, False, 100.0, "ordinary")
    ch.check_invariants(100.0, step=7)
    a.cash += 5.0
    with pytest.raises(InvariantError, match=r"step 7: account 0 \(retail\)"):
        ch.check_invariants(100.0, step=7)
    a.cash -= 5.0
    b.short = 2
    with pytest.raises(InvariantError, match="step 9: open interest 1"):
        ch.check_invariants(100.0, step=9)
    b.short = -1
    with pytest.raises(InvariantError, match="step 9: account 1 .* negative lots"):
        ch.check_invariants(100.0, step=9)


def test_ledger_residual_catches_a_lost_fee():
    ch = house()
    a = ch.open_account("retail", False, 1000)
    b = ch.open_account("hedger", True, 1000)
    ch.apply_fill(a, b, 1, 100.0, False, False, 100.0, "ordinary")
    ch.fees_collected -= 2.0  # a fee that left an account but reached no one
    with pytest.raises(InvariantError, match="ledger residual"):
        ch.check_invariants(100.0, step=3)


def test_class_totals_check_catches_what_the_full_check_does():
    ch = house()
    a = ch.open_account("retail", False, 1000)
    b = ch.open_account("hedger", True, 1000)
    ch.apply_fill(a, b, 2, 100.0, False, False, 100.0, "ordinary")
    ch.mark_to_market(103.0)
    ch.check_totals(103.0, step=4)
    ch.group("retail").cash += 7.0  # a booking that missed the running totals
    with pytest.raises(InvariantError, match="step 4: ledger residual"):
        ch.check_totals(103.0, step=4)
    with pytest.raises(
        InvariantError, match="running cash of retail accounts without delivery rights drifted"
    ):
        ch.check_invariants(103.0, step=4)
    ch.group("retail").cash -= 7.0
    ch.open_interest += 1
    with pytest.raises(InvariantError, match="step 5: open interest 3"):
        ch.check_totals(103.0, step=5)


def test_class_and_non_deliverable_totals_sum_over_mixed_delivery_rights():
    # a class may hold accounts with and without delivery rights: its totals are the sum of
    # both running groups, and the non-deliverable side counts only the accounts without
    ch = house()
    r = ch.open_account("retail", False, 1000)
    mm_d = ch.open_account("market_maker", True, 500)
    mm_n = ch.open_account("market_maker", False, 300)
    ch.apply_fill(r, mm_d, 3, 100.0, False, False, 100.0, "ordinary")  # retail +3, mm_d -3
    ch.apply_fill(mm_n, r, 1, 101.0, False, False, 100.0, "ordinary")  # mm_n +1, retail short 1
    mm = ch.group("market_maker")
    assert (mm.long, mm.short, mm.deposits) == (1, 3, 800.0)
    # cash: 800 less fees 3 × 2 (mm_d) and 1 × 2 (mm_n)
    assert mm.cash == 792.0
    nd = ch.group("non_deliverable")
    assert nd.net == (3 - 1) + 1 == ch.ndnp
    assert ch.group("arbitrageur").long == 0  # a class with no accounts is empty, not an error
    ch.check_invariants(100.0, step=1)

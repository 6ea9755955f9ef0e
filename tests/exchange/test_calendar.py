"""Contract and calendar rules, with hand-computed numbers."""

import pytest

from abm.build import calendar
from abm.config import CalendarConfig, MarginConfig, MarginStep, RunConfig
from abm.exchange.calendar import Contract


def contract(**kw):
    base = dict(
        tick_size=1.0,
        multiplier=10.0,
        fee_per_lot=0.0,
        price_limit=0.03,
        allow_negative_prices=False,
        delivery_cost=0.0,
    )
    base.update(kw)
    return Contract(**base)


def test_band_is_percent_of_previous_settlement_rounded_inward():
    assert contract().band(3000.0) == (2910, 3090)
    c = contract(tick_size=0.5, price_limit=0.04)
    # 101.3 ± 4.052 = [97.248, 105.352] -> ticks of 0.5 inside: 97.5 (195) .. 105.0 (210)
    assert c.band(101.3) == (195, 210)


def test_no_limit_band_and_negative_prices():
    assert contract(price_limit=None).band(50.0) == (1, None)
    assert contract(price_limit=None, allow_negative_prices=True).band(50.0) == (None, None)


def test_ticks_and_prices():
    c = contract(tick_size=0.25)
    assert c.to_tick(100.26) == 401 and c.to_price(401) == 100.25


def make_cal(**kw):
    cal = CalendarConfig(trading_days=40, steps_per_day=100, forced_close_lead_days=2, **kw)
    margin = MarginConfig(
        rate=0.10,
        step_ups=[
            MarginStep(days_before_last=10, rate=0.15),
            MarginStep(days_before_last=3, rate=0.20),
        ],
    )
    return calendar(RunConfig(calendar=cal, margin=margin))


def test_margin_steps_up_toward_delivery():
    cal = make_cal()
    # last day is 39: 0.15 from day 29, 0.20 from day 36
    assert [cal.scheduled_margin_rate(d) for d in (0, 28, 29, 35, 36, 39)] == [
        0.10,
        0.10,
        0.15,
        0.15,
        0.20,
        0.20,
    ]


def test_deadline_and_steps():
    cal = make_cal(forced_close_step=30)
    assert cal.last_day == 39 and cal.deadline_day == 37
    assert cal.deadline_step == 3730 and cal.n_steps == 4000
    assert cal.is_day_start(3700) and cal.is_day_end(3799) and not cal.is_day_end(3798)
    assert cal.days_to_deadline(3630) == pytest.approx(1.0)


def test_settlement_window():
    cal = make_cal(settlement_window_steps=2)
    assert not cal.in_settlement_window(97) and cal.in_settlement_window(98)
    assert make_cal().in_settlement_window(0)  # default: the whole day


def test_step_up_never_lowers_a_high_base():
    cal = CalendarConfig(trading_days=40, steps_per_day=100, forced_close_lead_days=2)
    margin = MarginConfig(
        rate=0.25, step_ups=[MarginStep(days_before_last=10, rate=0.15)], broker_add_on=0.02
    )
    c = calendar(RunConfig(calendar=cal, margin=margin))
    assert c.scheduled_margin_rate(0) == pytest.approx(0.27)
    assert c.scheduled_margin_rate(39) == pytest.approx(0.27)

"""The exchange trades only for its own accounts, and says why it refuses (issue 14, item 4)."""

from __future__ import annotations

import numpy as np
import pytest

from abm.build import build_exchange
from abm.exchange import BUY, SELL
from abm.scenarios import load


def _exchange():
    ex = build_exchange(load("small"), 100.0)
    ex.begin_step(0, 100.0)
    return ex


def test_an_account_of_another_exchange_cannot_trade_here():
    ex, other = _exchange(), _exchange()
    mine = ex.open_account("mine", True, 1e7)
    seller = ex.open_account("seller", True, 1e7)
    ex.submit(seller, SELL, 5, 100, "limit")
    stranger = other.open_account("stranger", True, 1e7)
    assert stranger.id == mine.id  # same number, different exchange
    r = ex.submit(stranger, BUY, 3, None, "market")
    assert r.status == "rejected" and "not an account opened at this exchange" in r.reason
    assert mine.long == 0 and ex.book.depth(SELL, 1) == [(100, 5)]  # nothing consumed


def test_an_unknown_id_is_refused_before_the_book_moves():
    ex = _exchange()
    seller = ex.open_account("seller", True, 1e7)
    ex.submit(seller, SELL, 5, 100, "limit")

    class Fake:
        id = 999

    r = ex.submit(Fake(), BUY, 2, None, "market")
    assert r.status == "rejected" and "999" in r.reason
    assert ex.book.depth(SELL, 1) == [(100, 5)]
    ex.clearing.check_invariants(100.0)


def test_numbers_of_other_types_get_the_right_answer():
    ex = _exchange()
    a = ex.open_account("a", True, 1e7)
    b = ex.open_account("b", True, 1e7)
    ex.submit(a, SELL, 5, 100, "limit")
    r = ex.submit(b, BUY, np.int64(3), np.int64(100), "limit")  # numpy integers are integers
    assert r.status != "rejected" and b.long == 3
    r = ex.submit(b, BUY, 1, "100", "limit")
    assert r.status == "rejected" and "price '100' (str)" in r.reason
    r = ex.submit(b, BUY, 1, 100.0, "limit")
    assert r.status == "rejected" and "integer number of ticks" in r.reason


def test_a_cancel_that_cannot_happen_says_why():
    ex = _exchange()
    a = ex.open_account("a", True, 1e7)
    oid = ex.submit(a, SELL, 5, 100, "limit").order_id
    assert ex.cancel(oid)
    again = ex.cancel(oid)
    assert not again and "not resting" in again.reason
    never = ex.cancel(12345)
    assert not never and "never issued" in never.reason
    assert "whole numbers" in ex.cancel("x").reason


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_quantities_are_named(bad):
    ex = _exchange()
    a = ex.open_account("a", True, 1e7)
    r = ex.submit(a, BUY, bad, 100, "limit")
    assert r.status == "rejected" and f"qty {bad!r}" in r.reason

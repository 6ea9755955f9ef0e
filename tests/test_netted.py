"""The netted crowd (``retail.engine = "netted"``): the sharing of an omnibus order's fills by
hand, the same traders as the per-agent crowd, the customers adding up to the omnibus
accounts through a whole run, the clear errors, and the summary metrics' distributions
against the per-agent engine."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from abm.agents.netted import _TICKS, RELATIVE, CustomerView, NettedCrowd, _group_order, _Queue
from abm.agents.retail import Actions, HoldToDeadline, RetailRules, runs_as_arrays
from abm.exchange import BUY, SELL
from abm.exchange.clearing import CHANNELS, ClearingHouse, InvariantError
from abm.model import MarketModel
from abm.scenarios import load
from abm.statistics import compare_distributions, holm

pytestmark = pytest.mark.xdist_group("netted")


@pytest.mark.parametrize("span", [3, 51, 700, 5000, 2**30])
def test_group_order_is_numpys_stable_argsort(span):
    # the compact radix key must order exactly as the full key (ties in arrival order), on
    # spans that fit 16 bits and on spans that must fall back to the full sort
    rng = np.random.default_rng(span)
    cat = rng.integers(0, 32, 4000)
    tick = rng.integers(-span // 2, span // 2 + 1, 4000)
    key = cat * _TICKS + (tick + _TICKS // 2)
    assert _group_order(key).tolist() == np.argsort(key, kind="stable").tolist()


def test_first_entries_and_repeats_count_as_unique_does():
    crowd = object.__new__(NettedCrowd)
    crowd._count = np.zeros(50, dtype=np.int64)
    rng = np.random.default_rng(1)
    for k in (0, 1, 5, 30, 200):
        who = rng.integers(0, 50, k)
        _, first = np.unique(who, return_index=True)
        assert crowd._first_entries(who).tolist() == sorted(first.tolist())
        assert crowd._repeats(who) == (len(np.unique(who)) < k)
        assert not crowd._count.any()  # the scratch is left zero
    # by hand: customer 4 fires at positions 0 and 2, customer 9 at 3 and 4
    assert crowd._first_entries(np.array([4, 7, 4, 9, 9, 1])).tolist() == [0, 1, 3, 5]


def test_queue_shares_fills_by_arrival_by_hand():
    # customers 7, 3, 9 want 2, 3 and 1 lots, in that arrival order
    q = _Queue(np.array([7, 3, 9]), np.array([2, 3, 1]), BUY, False, 0, 0, "ordinary", None)
    assert q.total == 6
    # two fills: 1 lot at 10, then 3 lots at 11; with a second amount of 1 and 2 per lot
    q.done = 4
    who, lots, out = q.share(np.array([1, 3]), np.array([[10.0, 1.0], [11.0, 2.0]]))
    assert who.tolist() == [7, 3]
    assert lots.tolist() == [2, 2]
    # customer 7: 1 lot at 10 and 1 at 11; customer 3: 2 lots at 11
    assert out[:, 0].tolist() == pytest.approx([21.0, 22.0])
    assert out[:, 1].tolist() == pytest.approx([3.0, 4.0])
    # before the last fill, the unfilled rest: 1 lot of customer 3 and customer 9's lot
    rest_who, rest_lots = q.rest()
    assert rest_who.tolist() == [3, 9] and rest_lots.tolist() == [1, 1]
    # one more fill of 2 lots at 12
    q.done = 6
    who, lots, out = q.share(np.array([2]), np.array([[12.0, 0.5]]))
    assert who.tolist() == [3, 9] and lots.tolist() == [1, 1]
    assert out[:, 0].tolist() == [12.0, 12.0]
    assert len(q.rest()[0]) == 0
    # one fill taking the whole order at once: every customer's lots at its price
    q = _Queue(np.array([1, 2]), np.array([3, 4]), SELL, True, 0, 0, "ordinary", None)
    q.done = 7
    who, lots, out = q.share(np.array([7]), np.array([[5.0, -0.5]]))
    assert who.tolist() == [1, 2] and lots.tolist() == [3, 4]
    assert out.tolist() == [[15.0, -1.5], [20.0, -2.0]]


def test_flush_books_what_each_order_shares_by_arrival():
    """The crowd's flush books every order's fills at once on one lot axis; the reference is
    `_Queue.share`, order by order: random orders of long customers opening, random fills
    (several a queue, some queues filled in part, one queue longer than 64 customers), the
    customers' lots and Σ lots × price must agree."""
    rng = np.random.default_rng(11)
    model = MarketModel(_small("netted", **{"retail.n_traders": 400}))
    crowd: NettedCrowd = model.crowd
    longs = crowd.members[1]
    pool = rng.permutation(longs)
    queues, fills, start = [], [], 0
    for size in (3, 1, 70, 5):
        who = pool[start : start + size]
        start += size
        want = rng.integers(1, 6, size)
        q = _Queue(who, want, BUY, False, 0, 0, "ordinary", crowd.long_account)
        ref = _Queue(who, want, BUY, False, 0, 0, "ordinary", None)
        take = int(want.sum()) if size != 5 else int(want.sum()) - 2  # the last in part
        qty = []
        while take > 0:
            x = int(min(take, rng.integers(1, 8)))
            qty.append(x)
            take -= x
        price = rng.uniform(90, 110, len(qty)).round(2)
        for x, p in zip(qty, price, strict=True):
            fills.append((q, x, float(p), 100.0, "ordinary"))
            q.done += x
        ref.done = q.done
        queues.append((ref, np.array(qty), price))
    # the orders' fills interleave at random, each order's own in the order they printed
    per = {}
    for f in fills:
        per.setdefault(id(f[0]), []).append(f)
    seq = [k for k, fl in per.items() for _ in fl]
    rng.shuffle(seq)
    fills = [per[k].pop(0) for k in seq]
    led = crowd.ledger
    lots0, value0 = led.lots.copy(), (led.lots * led.basis).copy()
    crowd._fills = fills
    crowd.flush()
    expect_lots = np.zeros_like(lots0)
    expect_value = np.zeros(len(lots0))
    for ref, qty, price in queues:
        who, lots, out = ref.share(qty, price[:, None])
        expect_lots[who] += lots
        expect_value[who] += out[:, 0]
    assert (led.lots - lots0).tolist() == expect_lots.tolist()
    got_value = led.lots * led.basis - value0
    assert got_value == pytest.approx(expect_value, abs=1e-9)


def test_sending_no_orders_sends_nothing():
    crowd = MarketModel(_small("netted")).crowd
    empty = np.zeros(0, dtype=np.int64)
    crowd._send(empty, empty, empty, True, empty, np.zeros(0, bool))
    assert not crowd.queues and not crowd._fills


def test_fill_within_an_omnibus_account_moves_only_fees():
    ch = ClearingHouse(multiplier=10.0, fee_per_lot=0.5)
    acc = ch.open_account("retail", False, 1000.0)
    other = ch.open_account("hedger", True, 1000.0)
    ch.apply_fill(acc, other, 4, 100.0, False, False, 100.0, "ordinary")  # acc long 4
    cash0 = acc.cash
    acc.customers = object()
    # a long customer buys 3 lots to open from a long customer closing 3: the account's
    # position stays 4 long, both sides pay the fee (2 × 0.5 × 3 = 3 money)
    ch.fill_within(acc, 3, 101.0, False, True, 100.0, "ordinary")
    assert (acc.long, acc.short) == (4, 0)
    assert acc.cash == pytest.approx(cash0 - 3.0)
    assert ch.open_interest == 4
    ch.check_invariants(100.0)
    with pytest.raises(InvariantError, match="both sides opening"):
        ch.fill_within(acc, 1, 101.0, False, False, 100.0, "ordinary")


@pytest.mark.parametrize(
    ("order", "fill", "expect_left"),
    [
        # the whole book of 10 lots in one order (the default one-step window): the 4 lots
        # the auction fills go to customers a, b, c in that order, a in full first
        (10, 4, [0, 3, 3]),
        # a paced slice of 5 lots: pro rata 1, 2.5, 1.5 -> 1, 2, 1 and the one left over to
        # the larger remainder, b before c on the tie -> 1, 3, 1; 3 lots fill a's 1 and 2 of b
        (5, 3, [1, 3, 3]),
    ],
)
def test_the_brokers_forced_close_fills_customers_in_order_by_hand(order, fill, expect_left):
    """As the per-agent broker: a paced forced close is sliced over the customers pro rata
    (largest remainder, the earlier on a tie), and what the auction fills goes to the slices
    in customer order; what is not filled is free to close again."""
    model = MarketModel(_small("netted", **{"retail.n_traders": 40}))
    crowd: NettedCrowd = model.crowd
    led = crowd.ledger
    a, b, c = crowd.members[1][:3]
    led.lots[:] = 0
    led.lots[[a, b, c]] = [2, 5, 3]
    led.basis[[a, b, c]] = 100.0
    cash0 = led.cash.copy()
    acc = crowd.long_account
    crowd.expect_forced(acc, SELL, order)
    assert crowd.pending[[a, b, c]].sum() == order
    crowd.on_fill(acc, 987654, SELL, fill, 90.0, True, 100.0, "harvest_forced_close")
    crowd.forced_sent(acc)
    crowd.flush()
    assert led.lots[[a, b, c]].tolist() == expect_left
    assert crowd.pending.sum() == 0 and not crowd.queues and not crowd._forced
    sold = np.array([2, 5, 3]) - np.array(expect_left)
    # each sold lot realises (90 - 100) x multiplier and pays the fee
    m, fee = crowd.multiplier, model.exchange.clearing.fee_per_lot
    got = led.cash[[a, b, c]] - cash0[[a, b, c]]
    assert got == pytest.approx(sold * (-10.0 * m - fee))
    # the sellers' execution transfer: (fair - price) x lots x multiplier to the buyer
    assert crowd.transfers["harvest_forced_close"][[a, b, c]] == pytest.approx(-sold * 10.0 * m)


def test_after_the_deadline_an_unanswered_call_counts_but_the_forced_close_trades():
    """As the per-agent broker: after the deadline a customer still short of maintenance at
    the open is counted as liquidated, and the liquidation sends nothing, the forced close
    closing its lots."""
    model = MarketModel(_small("netted", **{"retail.n_traders": 40}))
    ex = model.exchange
    while not ex.after_deadline():
        model.step()
    crowd: NettedCrowd = model.crowd
    led = crowd.ledger
    i = int(crowd.members[1][0])
    led.lots[i], led.basis[i] = 10, ex.prev_settle
    led.cash[i] = 1.0  # far below 10 lots' maintenance
    crowd.called = np.array([i])
    started = ex.broker.n_liquidations_started
    orders = ex.broker.n_liquidation_orders
    before = int(crowd.n_liquidations[i])
    crowd.open_day()
    assert crowd.n_liquidations[i] == before + 1
    assert ex.broker.n_liquidations_started == started + 1
    crowd.work()
    assert ex.broker.n_liquidation_orders == orders
    assert led.lots[i] == 10


def test_a_forced_close_below_zero_makes_each_customer_whole_once():
    """`wti_2020` at 2,000 traders: the deadline auction prints below zero and leaves the
    long customers flat with negative cash. Each is made whole once, by the broker, before the
    broker looks at the omnibus account (which is then flat at zero): the customers' deficits
    add up to the run's bad debt, and every settlement reconciles (or the run would stop)."""
    model = MarketModel(load("wti_2020", {"retail.engine": "netted", "retail.n_traders": 2000}))
    s = model.run().summary
    led = model.crowd.ledger
    assert s["settlement_deadline_day"] < 0
    assert s["n_negative_equity"] == int(led.went_negative.sum()) > 0
    assert math.fsum(led.bad_debt_received) == pytest.approx(s["bad_debt"], rel=1e-12)
    assert s["bad_debt"] == pytest.approx(s["bad_debt_broker"] + s["bad_debt_insurance_fund"])
    assert abs(s["ledger_residual"]) < 1e-6 * s["bad_debt"]


def test_a_rounds_customers_read_the_marks_its_market_orders_print_by_hand():
    """Each customer's margin check reads the last trade before it in a per-agent stream: the
    price the round's last earlier market order reached on the book's other side (the depth
    as the round starts), the mark as the round starts before any market order."""
    model = MarketModel(_small("netted", **{"retail.n_traders": 40}))
    crowd: NettedCrowd = model.crowd
    ex = model.exchange
    book = ex.book
    maker = model.hedgers[0].account.id
    for side, tick, lots in ((SELL, 101, 3), (SELL, 102, 5), (BUY, 99, 4), (BUY, 98, 10)):
        assert book.submit(maker, side, lots, tick).status == "rested"
    side = np.array([BUY, SELL, BUY, SELL, BUY])
    qty = np.array([2, 7, 2, 5, 1])
    market = np.array([True, False, True, True, True])  # the second is a limit: not counted
    got = crowd._stream_marks(side, qty, market)
    ts = ex.contract.tick_size
    # 0: nothing before it; 1 and 2: after a 2-lot buy, at the first ask (3 lots there);
    # 3: after 4 lots bought, at the second ask; 4: after a 5-lot sell, at the second bid
    assert got.tolist() == pytest.approx([ex.mark, 101 * ts, 101 * ts, 102 * ts, 98 * ts])
    # beyond the book's depth: its last level
    assert crowd._stream_marks(np.array([BUY, BUY]), np.array([50, 1]), np.array([True, True]))[
        1
    ] == pytest.approx(102 * ts)


def _small(engine: str, **updates):
    return load("small", {"retail.engine": engine, **updates})


def test_same_traders_as_the_per_agent_crowd():
    cfg = _small("agents", seed=5)
    agents = MarketModel(cfg).crowd.traders
    netted = MarketModel(_small("netted", seed=5)).crowd
    pop = netted.pop
    assert pop.direction.tolist() == [t.direction for t in agents]
    assert pop.deposit.tolist() == [t.account.deposits for t in agents]
    assert pop.open_step.tolist() == [t.open_step for t in agents]
    assert [None if c < 0 else c for c in pop.close_step.tolist()] == [t.close_step for t in agents]
    # the omnibus accounts hold the customers' deposits, one account a side
    la, sa = netted.long_account, netted.short_account
    longs = pop.direction > 0
    assert la.deposits == pytest.approx(pop.deposit[longs].sum())
    assert sa.deposits == pytest.approx(pop.deposit[~longs].sum())


@pytest.fixture(scope="module")
def netted_run():
    model = MarketModel(_small("netted", seed=3))
    result = model.run()
    return model, result


def test_customers_add_up_to_the_omnibus_accounts(netted_run):
    model, result = netted_run
    crowd: NettedCrowd = model.crowd
    ch = model.exchange.clearing
    accs = (crowd.long_account, crowd.short_account)
    m = model.exchange.contract.multiplier
    mark = model.exchange.settle_price
    rows = result.accounts[result.accounts["owner"] == "retail"]
    assert len(rows) == len(crowd) == model.cfg.retail.n_traders
    # P&L, fees, bad debt and every channel's transfer: the customers' sums are the accounts'
    assert rows["pnl"].sum() == pytest.approx(sum(a.pnl(mark, m) for a in accs), abs=1e-6)
    assert rows["fees"].sum() == pytest.approx(sum(a.fees for a in accs), abs=1e-6)
    assert rows["bad_debt_received"].sum() == pytest.approx(
        sum(a.bad_debt_received for a in accs), abs=1e-6
    )
    for c in CHANNELS:
        assert rows[f"transfer_{c}"].sum() == pytest.approx(
            sum(a.transfers[c] for a in accs), abs=1e-6
        ), c
    # the crowd traded, was force-closed and ends flat; the ledger balances
    assert result.summary["retail_lots_opened"] > 0
    assert (crowd.ledger.lots == 0).all() and (crowd.pending == 0).all()
    assert abs(result.summary["ledger_residual"]) < ch.money_tolerance(ledger=True)
    crowd.reconcile(mark)
    # margin calls and liquidations are counted per customer, and the day records agree
    assert rows["n_margin_calls"].sum() == sum(d.n_margin_calls for d in model.exchange.days)


def test_customers_are_inspectable(netted_run):
    model, _ = netted_run
    crowd = model.crowd
    table = crowd.customers()
    assert len(table) == len(crowd)
    assert set(table["state"]) <= {"waiting", "holding", "closing", "done"}
    view = model.retail[0]
    assert isinstance(view, CustomerView)
    assert view.direction == table["direction"].iloc[0]
    assert view.cash == pytest.approx(table["cash"].iloc[0])
    assert view.account in (crowd.long_account, crowd.short_account)
    assert len(list(model.retail)) == len(crowd)
    with pytest.raises(IndexError, match="the crowd has"):
        model.retail[len(crowd)]
    # the crowd is a Mesa agent of the model
    assert list(model.agents_by_type[NettedCrowd]) == [crowd]


@pytest.mark.parametrize(
    "updates, field",
    [
        ({"clearing.loss_regime": "socialized"}, "clearing.loss_regime"),
        ({"clearing.liquidation_penalty": 0.01}, "clearing.liquidation_penalty"),
        ({"margin.intraday_check_steps": 5}, "margin.intraday_check_steps"),
        ({"output.collect_agents": True}, "output.collect_agents"),
    ],
)
def test_what_the_netted_engine_cannot_run_is_refused_by_name(updates, field):
    with pytest.raises(Exception, match=field.replace(".", r"\.")):
        _small("netted", **updates)


class Nervous(RetailRules):
    """A rule of one's own: it changes ``act`` only, so it runs per trader, on the per-agent
    engine."""

    name = "nervous"

    def act(self, trader, u):
        if u[0] < 0.5:
            trader.start_closing()
        else:
            super().act(trader, u)


class StopEveryone(RetailRules):
    """A vectorised rule of one's own: every customer holding lots whose clock fires is
    stopped out; per trader the same."""

    name = "stop_everyone"

    def act(self, trader, u):
        if trader.account.lots:
            trader.state = "stopped"
            trader.close_now()

    def act_many(self, t):
        stop = t.lots > 0
        return Actions(stop, np.zeros(len(stop), bool), np.zeros(len(stop), np.int64))


class Margin(RetailRules):
    def on_margin_call(self, trader, amount):
        return None


class Bad(RetailRules):
    def act_many(self, t):
        return Actions(t.lots > 0, t.lots > 0, np.zeros(len(t.lots), np.int64))


@pytest.mark.parametrize(
    ("rules", "arrays"),
    [
        (RetailRules(), True),
        (HoldToDeadline(), True),
        (Nervous(), False),  # act without act_many
        (StopEveryone(), True),  # both
        (Margin(), False),  # the netted engine's calls are the shipped rule's
    ],
)
def test_which_rules_run_as_arrays(rules, arrays):
    assert runs_as_arrays(rules) is arrays


def test_a_vectorised_rule_of_ones_own_runs_on_the_netted_engine():
    """`StopEveryone.act_many` by hand: 3 long customers holding 2, 0 and 4 lots fire; the two
    holding are stopped (closing, their lots sent at market), the flat one is left holding."""
    model = MarketModel(_small("netted", **{"retail.rules": "tests.test_netted:StopEveryone"}))
    crowd: NettedCrowd = model.crowd
    assert type(crowd.rules) is StopEveryone
    led = crowd.ledger
    a, b, c = crowd.members[1][:3]
    led.lots[[a, b, c]] = [2, 0, 4]
    led.basis[[a, b, c]] = crowd.exchange.settle_price
    crowd.state[[a, b, c]] = 1  # holding
    sent = []
    crowd._send = lambda who, side, qty, closes, tick, limit, tag="ordinary": sent.append(
        (who.tolist(), side.tolist(), qty.tolist(), bool(np.all(closes)), tick.tolist())
    )
    crowd._act(np.array([a, b, c]), np.full((3, 5), 0.9))
    assert crowd.state[[a, b, c]].tolist() == [2, 1, 2]  # closing, holding, closing
    # one market close (tick 0, limit off) of every free lot, sold by the long customers
    assert sent == [([a, c], [SELL, SELL], [2, 4], True, [0, 0])]


def test_a_rule_that_contradicts_itself_is_refused_by_name():
    model = MarketModel(_small("netted", **{"retail.rules": "tests.test_netted:Bad"}))
    crowd = model.crowd
    i = crowd.members[1][0]
    crowd.ledger.lots[i] = 3
    crowd.state[i] = 1
    with pytest.raises(ValueError, match=r"Bad\.act_many: customer 0 .* stops and starts"):
        crowd._act(np.array([i]), np.full((1, 5), 0.9))


def test_a_rule_of_ones_own_falls_back_to_the_agent_engine_and_says_so():
    cfg = _small("netted", **{"retail.rules": "tests.test_netted:Nervous"})
    with pytest.warns(UserWarning, match="uses the per-agent engine"):
        model = MarketModel(cfg)
    assert type(model.crowd).__name__ == "Crowd"
    assert all(t.rules.name == "nervous" for t in model.crowd.traders)
    # built directly, the netted crowd refuses it by name
    with pytest.raises(ValueError, match="retail.engine = 'agents'"):
        NettedCrowd(model, model.cfg.retail, model.crowd.rules)


def test_holm_by_hand():
    # p = 0.01, 0.04, 0.03, nan: sorted 0.01×3, 0.03×2, 0.04×1 -> 0.03, 0.06, 0.06 (monotone)
    got = holm([0.01, 0.04, 0.03, math.nan])
    assert got[:3].tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(got[3])


def test_engine_comparison_pairs_the_runs_on_their_seeds():
    from abm.sweeps.engines import engine_comparison

    # replicate k of both engines shares a seed: the paired difference of x is exactly +2
    # in every pair, so its interval is [2, 2]; y differs by pair and is not paired away
    runs = pd.DataFrame(
        {
            "replicate": [0, 1, 2, 0, 1, 2],
            "param_retail_engine": ["agents"] * 3 + ["netted"] * 3,
            "x": [1.0, 5.0, 9.0, 3.0, 7.0, 11.0],
            "y": [1.0, 2.0, 3.0, 3.0, 1.0, 2.0],
        }
    )
    t = engine_comparison(runs).set_index("metric")
    assert t.loc["x", ["diff", "diff_lo", "diff_hi"]].tolist() == pytest.approx([2, 2, 2])
    assert t.loc["x", "n_pairs"] == 3
    assert t.loc["y", "diff"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="holds engines"):
        engine_comparison(runs[runs["param_retail_engine"] == "agents"])


def test_compare_distributions_finds_a_shift_and_not_noise():
    rng = np.random.default_rng(0)
    a = pd.DataFrame({"x": rng.normal(0, 1, 40), "y": rng.normal(0, 1, 40), "k": 3.0})
    b = pd.DataFrame({"x": rng.normal(3, 1, 40), "y": rng.normal(0, 1, 40), "k": 3.0})
    t = compare_distributions(a, b).set_index("metric")
    assert t.loc["x", "differs"] and not t.loc["y", "differs"]
    assert math.isnan(t.loc["k", "p"]) and not t.loc["k", "differs"]


#: summary metrics whose difference between the engines is by construction, not a finding:
#: the run's clock, and the count of broker orders (the netted crowd's liquidations go out as
#: one omnibus order a side, the per-agent broker's as one per account)
BY_CONSTRUCTION = ("wall_seconds", "n_liquidation_orders")
SEEDS = range(1, 21)


def _summaries(engine: str) -> pd.DataFrame:
    rows = []
    for seed in SEEDS:
        cfg = load("small", {"retail.engine": engine, "seed": seed})
        rows.append(MarketModel(cfg).run().summary)
    return pd.DataFrame(rows)


def test_netted_metrics_match_the_per_agent_engine_in_distribution():
    """20 seeds per engine on the small market (200 traders; the 10,000-trader comparison
    is ``experiments/engines.py``, reported in BENCHMARKS.md): no summary metric's
    distribution differs by the two-sample Kolmogorov–Smirnov test at 1 % after Holm's
    correction over the metrics."""
    a, b = _summaries("agents"), _summaries("netted")
    numeric = [
        c
        for c in a.columns
        if c not in BY_CONSTRUCTION
        and pd.api.types.is_numeric_dtype(a[c])
        and not pd.api.types.is_bool_dtype(a[c])
        and a[c].notna().sum() >= 2
    ]
    assert len(numeric) > 50
    t = compare_distributions(a, b, level=0.01, columns=numeric)
    assert not t["differs"].any(), t[t["differs"]].to_string()
    # and the test can see a difference of this size: the per-agent NDNP shifted by two of
    # its standard deviations is found
    shift = 2 * a["ndnp_at_deadline"].std()
    c = pd.DataFrame({"ndnp_at_deadline": a["ndnp_at_deadline"] + shift})
    assert compare_distributions(a, c, columns=["ndnp_at_deadline"])["differs"].all()


def test_relative_limits_netted_by_bucket_by_hand():
    """With ``retail.netting_tick_bucket = 10`` a round's limits priced at an offset from the
    mid go out one order per bucket of offsets (0–9, 10–19, …) at the customers' lots-weighted
    mean offset rounded to a tick; with 1, one order per offset."""
    offsets = np.array([0, 9, 12, 19])
    qty = np.array([2, 1, 3, 4])
    by_bucket = {}
    for b in (1, 10):
        model = MarketModel(_small("netted", **{"retail.netting_tick_bucket": b}))
        crowd: NettedCrowd = model.crowd
        ex = model.exchange
        assert ex.book.mid() is None  # nothing quoted yet: limits priced from the settlement
        ref = ex.contract.to_tick(ex.settle_price)
        who = crowd.members[1][:4]  # long customers opening: buys, resting below the mid
        crowd._send(who, np.full(4, BUY), qty, False, offsets, np.full(4, RELATIVE))
        mine = ex.book.open_orders(crowd.long_account.id)
        by_bucket[b] = sorted((ref - o.price, o.qty) for o in mine)
        queued = sorted((q.tick, q.who.tolist()) for q in crowd.queues.values())
        if b == 10:  # 0 and 9: (2·0 + 1·9)/3 = 3; 12 and 19: (3·12 + 4·19)/7 = 16
            assert queued == [(ref - 16, who[2:].tolist()), (ref - 3, who[:2].tolist())]
    assert by_bucket[1] == [(0, 2), (9, 1), (12, 3), (19, 4)]
    assert by_bucket[10] == [(3, 3), (16, 7)]


def test_a_run_with_one_bucket_sends_fewer_orders_and_keeps_its_accounts(monkeypatch):
    """A bucket wider than every offset (``limit_offset_ticks`` + 1) leaves at most one
    relative limit per omnibus account, side and open or close in a netting; the run keeps
    every invariant (checked each step) and the customers add up to the omnibus accounts."""
    sent: list[list[int]] = []
    net = NettedCrowd._net

    def counting(self, who, side, qty, closes, tick, limit, tag):
        sent.append([])
        return net(self, who, side, qty, closes, tick, limit, tag)

    submit = NettedCrowd._submit

    def recording(self, acc, q):
        if q.kind == RELATIVE and sent:
            sent[-1].append((acc.id, q.side, q.closes))
        return submit(self, acc, q)

    monkeypatch.setattr(NettedCrowd, "_net", counting)
    monkeypatch.setattr(NettedCrowd, "_submit", recording)
    per_netting = {}
    for b in (1, 1000):
        sent.clear()
        cfg = _small("netted", seed=3, **{"retail.netting_tick_bucket": b})
        assert cfg.retail.limit_offset_ticks + 1 < 1000
        model = MarketModel(cfg)
        result = model.run()
        assert abs(result.summary["ledger_residual"]) < 1e-6
        per_netting[b] = [len(s) for s in sent]
        if b == 1000:
            assert all(len(s) == len(set(s)) for s in sent)
    assert max(per_netting[1000]) <= 4 < max(per_netting[1])
    assert sum(per_netting[1000]) < sum(per_netting[1])

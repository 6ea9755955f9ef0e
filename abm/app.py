"""The browser dashboard: a Mesa SolaraViz app that shows the harvest happening.

    abm app                 # or: make app; prints the address
    solara run abm/app.py   # the same page

In Jupyter the same page renders inline: ``from abm.app import page; page``.

Bad input (a value out of range, a combination the config rejects) never reaches a stack trace:
the model falls back to the last valid configuration, the page shows the config's error message,
and the controls keep working.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
import solara
from matplotlib.figure import Figure  # figures made without pyplot need no backend
from mesa.visualization import SolaraViz

from abm.config import ConfigError
from abm.model import MarketModel
from abm.palette import CLASS_COLORS, SERIES_COLORS, class_label
from abm.scenarios import load
from abm.schema import CLASSES

SCENARIO = os.environ.get("ABM_APP_SCENARIO", "small")
EVENT_KINDS = (
    "margin_call",
    "liquidation_start",
    "adl_bankrupt",
    "negative_equity",
    "bad_debt_covered",
    "clawback",
    "forced_close_start",
)


#: sliders show their value at all times (Vuetify's thumb label, otherwise shown only while
#: dragging); the single page needs no tab bar (Mesa labels it "Page 0")
PAGE_CSS = """
.v-slider__thumb-label-container { display: block !important; }
.v-slider__thumb-label { font-size: 11px; }
.v-input__slider { margin-top: 28px; }
.v-tabs { display: none !important; }
"""
#: steps between redraws: the default small run (600 steps) plays in about 20 s
RENDER_INTERVAL = 25


def _int(text: Any, field: str, lo: int, hi: int) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ConfigError(f"{field} = {text!r}: must be a whole number") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{field} = {value}: allowed {lo}..{hi}")
    return value


def _page_id() -> str:
    """The browser page this code runs for (Solara's virtual kernel); "local" outside a
    server (a test, or the page rendered in Jupyter)."""
    try:
        return solara.get_kernel_id(ipython_fallback=False)
    except Exception:  # noqa: BLE001 - no Solara context: a single, local page
        return "local"


class DashboardModel(MarketModel):
    """MarketModel built from the dashboard's controls; invalid controls give the last valid
    configuration plus ``config_error`` instead of an exception."""

    #: each page's last valid controls, by Solara virtual kernel (one per browser page): a bad
    #: value on one page falls back to that page's own configuration, never another's
    last_valid: dict[str, dict[str, Any]] = {}

    def __init__(
        self,
        retail_long_share: float = 0.9,
        margin_rate: float = 0.10,
        forced_close_lead_days: int = 2,
        arbitrage_capacity: int = 0,
        n_firms: int = 1,
        knows_ndnp: bool = True,
        loss_regime: str = "broker",
        n_retail: Any = "200",
        seed: Any = "42",
        base_scenario: str | None = None,
        **_: Any,
    ):
        # ``**_`` takes what SolaraViz adds on reset (e.g. Mesa's own ``scenario`` object)
        scenario = base_scenario or SCENARIO
        updates = {
            "retail_long_share": retail_long_share,
            "margin_rate": margin_rate,
            "forced_close_lead_days": forced_close_lead_days,
            "arbitrage_capacity": arbitrage_capacity,
            "arbitrageurs.n": 2 if arbitrage_capacity else 0,
            "n_firms": n_firms,
            "hedger.knows_ndnp": knows_ndnp,
            "loss_regime": loss_regime,
        }
        error = None
        try:
            updates["n_retail"] = _int(n_retail, "retail.n_traders", 0, 100_000)
            updates["seed"] = _int(seed, "seed", 0, 2**63 - 1)
            cfg = load(scenario, updates)
        except (ConfigError, ValueError) as err:
            error = str(err)
            cfg = load(scenario, DashboardModel.last_valid.get(_page_id(), {}))
        else:
            DashboardModel.last_valid[_page_id()] = updates
        self.config_error = error
        super().__init__(cfg)
        if error:
            self.running = False  # nothing to play until the controls are valid

    def step(self) -> None:
        if self.config_error:
            return  # an invalid configuration is shown, not run
        if self.step_index < self.n_steps:
            super().step()
        else:
            self.running = False


def _frame(model: MarketModel) -> pd.DataFrame:
    return model.datacollector.get_model_vars_dataframe()


def _days_axis(model: MarketModel, df: pd.DataFrame) -> np.ndarray:
    return df["step"].to_numpy() / model.cfg.calendar.steps_per_day


def _mark(ax, model: MarketModel) -> None:
    spd = model.cfg.calendar.steps_per_day
    ex = model.exchange
    ax.axvspan(
        ex.harvest_start_step / spd,
        ex.calendar.deadline_step / spd,
        color=SERIES_COLORS["harvest_window"],
        alpha=0.12,
        lw=0,
        label="harvest window",
    )
    ax.axvline(ex.calendar.deadline_step / spd, color="0.2", ls="--", lw=0.9, label="deadline")
    ax.set_xlim(0, model.n_steps / spd)


def _figure(h: float = 2.4) -> tuple[Figure, Any]:
    # constrained layout makes room for legends placed beside the axes
    fig = Figure(figsize=(7, h), dpi=90, layout="constrained")
    return fig, fig.subplots()


def _legend(ax, **kw) -> None:
    """A legend beside the axes, never over the data, at a size readable on a projector."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(
            fontsize=8,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            frameon=False,
            borderaxespad=0.0,
            **kw,
        )


def _show(fig: Figure):
    return solara.FigureMatplotlib(fig, format="png")


def Summary(model: DashboardModel):
    """The numbers: what the page says in words (and what the browser test reads)."""
    ex = model.exchange
    o = model.obs or {}
    s = model.step_index
    items = [
        ("step", f"{s} / {model.n_steps}"),
        ("day", f"{ex.day if ex.day >= 0 else 0}"),
        ("retail traders", f"{len(model.retail)}"),
        ("futures", f"{o.get('futures', ex.settle_price):.2f}"),
        ("spot", f"{model.spot_path[min(s, model.n_steps)]:.2f}"),
        ("basis", f"{o.get('basis', 0.0):+.2f}"),
        ("NDNP", f"{ex.clearing.ndnp:+d} lots"),
        ("open interest", f"{ex.clearing.open_interest:,d} lots"),
        ("transfer retail → hedger", f"{o.get('transfer_retail_to_hedger', 0.0):,.0f}"),
        ("margin calls", f"{sum(d.n_margin_calls for d in ex.days):,d}"),
    ]
    with solara.Card("Market now") as card:
        solara.Style(PAGE_CSS)
        if getattr(model, "config_error", None):
            solara.Error(f"Invalid parameters — {model.config_error}")
        solara.Markdown(
            "\n".join(f"- **{k}**: <span class='abm-{k.split()[0]}'>{v}</span>" for k, v in items)
        )
    return card


def PricePanel(model: MarketModel):
    df = _frame(model)
    fig, ax = _figure()
    if len(df):
        x = _days_axis(model, df)
        ax.plot(x, df["spot"], lw=1.0, color=SERIES_COLORS["spot"], label="spot")
        ax.plot(x, df["futures"], lw=0.7, color=SERIES_COLORS["futures"], label="futures (last)")
        ax.plot(x, df["best_bid"], lw=0.4, color=SERIES_COLORS["bid"], alpha=0.6, label="best bid")
        ax.plot(x, df["best_ask"], lw=0.4, color=SERIES_COLORS["ask"], alpha=0.6, label="best ask")
    _mark(ax, model)
    ax.set_ylabel("price")
    ax.set_title("Futures and spot")
    _legend(ax)
    return _show(fig)


def BasisPanel(model: MarketModel):
    df = _frame(model)
    fig, ax = _figure()
    if len(df):
        x = _days_axis(model, df)
        ax.plot(
            x, df["basis"], lw=0.7, color=SERIES_COLORS["basis"], label="basis (futures − spot)"
        )
    ax.axhline(0, color="0.6", lw=0.6)
    _mark(ax, model)
    ax.set_ylabel("basis")
    ax.set_title("Basis")
    _legend(ax)
    return _show(fig)


def _two_rows(model: MarketModel):
    """A figure of two stacked panels sharing the day axis, deadline marked on both."""
    fig = Figure(figsize=(7, 3.2), dpi=90, layout="constrained")
    ax, ax2 = fig.subplots(2, 1, sharex=True)
    for a in (ax, ax2):
        _mark(a, model)
    return fig, ax, ax2


def PositionsPanel(model: MarketModel):
    df = _frame(model)
    fig, ax, ax2 = _two_rows(model)
    if len(df):
        x = _days_axis(model, df)
        ax.plot(x, df["ndnp"], lw=1.2, color="k", label="NDNP")
        for c in CLASSES:
            if df[f"net_{c}"].abs().max() > 0:
                ax.plot(x, df[f"net_{c}"], lw=0.7, color=CLASS_COLORS[c], label=class_label(c))
        ax2.plot(x, df["open_interest"], lw=0.8, label="open interest")
        ax2.bar(
            x, df["volume"], width=1 / model.cfg.calendar.steps_per_day, color="0.6", label="volume"
        )
    ax.set_ylabel("net lots")
    ax.set_title("NDNP and net position by class")
    _legend(ax)
    ax2.set_ylabel("lots")
    _legend(ax2)
    return _show(fig)


def WealthPanel(model: MarketModel):
    df = _frame(model)
    fig, ax, ax2 = _two_rows(model)
    if len(df):
        x = _days_axis(model, df)
        for c in CLASSES:
            eq = df[f"equity_{c}"]
            if eq.abs().max() > 0:
                ax.plot(x, eq - eq.iloc[0], lw=0.8, color=CLASS_COLORS[c], label=class_label(c))
        ax2.plot(x, df["transfer_retail_to_hedger"], color=CLASS_COLORS["hedger"], lw=1.0)
    ax.set_ylabel("equity change")
    ax.set_title("Equity by class, and the running transfer")
    _legend(ax)
    ax2.set_ylabel("retail → hedger")
    return _show(fig)


def DepthPanel(model: MarketModel):
    book = model.exchange.book
    c = model.exchange.contract
    fig, ax = _figure(2.2)
    bids, asks = book.depth(1, 10), book.depth(-1, 10)
    if bids:
        ax.barh(
            [c.to_price(p) for p, _ in bids],
            [q for _, q in bids],
            color=SERIES_COLORS["bid"],
            height=0.8 * c.tick_size,
            label="bids",
        )
    if asks:
        ax.barh(
            [c.to_price(p) for p, _ in asks],
            [-q for _, q in asks],
            color=SERIES_COLORS["ask"],
            height=0.8 * c.tick_size,
            label="asks",
        )
    ax.axvline(0, color="0.5", lw=0.6)
    ax.set_xlabel("lots (bids right, asks left)")
    ax.set_ylabel("price")
    ax.set_title("Order book now")
    _legend(ax)
    return _show(fig)


def EventLog(model: MarketModel):
    ev = [e for e in model.exchange.clearing.events if e.kind in EVENT_KINDS]
    rows = [
        {
            "step": e.step,
            "event": e.kind,
            "account": e.account,
            "lots": e.lots,
            "amount": round(e.amount, 2),
        }
        for e in ev[::-1]  # newest first; the table pages through all of them
    ]
    with solara.Card(f"Margin calls, liquidations, negative equity ({len(ev)} events)") as card:
        if rows:
            solara.DataFrame(pd.DataFrame(rows), items_per_page=12)
        else:
            solara.Text("no events yet")
    return card


_BASE = load(SCENARIO)
#: the scenario's own limits: the deadline must fall after the first day and before the last
MAX_LEAD = _BASE.calendar.trading_days - 2

model_params = {
    "retail_long_share": {
        "type": "SliderFloat",
        "value": 0.9,
        "min": 0.0,
        "max": 1.0,
        "step": 0.05,
        "label": "retail long share",
    },
    "margin_rate": {
        "type": "SliderFloat",
        "value": 0.10,
        "min": 0.02,
        "max": 0.5,
        "step": 0.01,
        "label": "margin rate",
    },
    "forced_close_lead_days": {
        "type": "SliderInt",
        "value": min(2, MAX_LEAD),
        "min": 1,
        "max": MAX_LEAD,
        "step": 1,
        "label": "forced-close lead (days)",
    },
    "arbitrage_capacity": {
        "type": "SliderInt",
        "value": 0,
        "min": 0,
        "max": 5000,
        "step": 100,
        "label": "arbitrage capacity (lots)",
    },
    "n_firms": {
        "type": "SliderInt",
        "value": 1,
        "min": 1,
        "max": 5,
        "step": 1,
        "label": "delivery-capable firms",
    },
    "knows_ndnp": {"type": "Checkbox", "value": True, "label": "hedger knows the NDNP"},
    "loss_regime": {
        "type": "Select",
        "value": "broker",
        "label": "loss regime",
        "values": ["broker", "insurance_fund", "socialized", "adl"],
    },
    "n_retail": {"type": "InputText", "value": "200", "label": "retail traders"},
    "seed": {"type": "InputText", "value": "42", "label": "seed"},
}

components = [Summary, PricePanel, BasisPanel, PositionsPanel, WealthPanel, DepthPanel, EventLog]

model = DashboardModel()
page = SolaraViz(
    model,
    components=components,
    model_params=model_params,
    name="Harvest of retail futures traders",
    play_interval=50,
    render_interval=RENDER_INTERVAL,
)

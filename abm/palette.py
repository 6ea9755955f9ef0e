"""One palette for every picture of the model: the paper figures, `RunResult.plot` and the
dashboard give each agent class, P&L channel and price series the same colour everywhere.

The colours are seaborn's colour-blind-safe ``colorblind`` palette (Wong's, extended), written
out as hex so that reading them costs no plotting import; `tests/test_palette.py` checks they
are that palette and that no two colours of one legend are hard to tell apart.
"""

from __future__ import annotations

from abm.schema import CHANNELS, CLASSES

#: seaborn's "colorblind" palette, in its order
COLORBLIND: tuple[str, ...] = (
    "#0173b2",  # blue
    "#de8f05",  # orange
    "#029e73",  # green
    "#d55e00",  # vermillion
    "#cc78bc",  # pink
    "#ca9161",  # brown
    "#fbafe4",  # light pink
    "#949494",  # grey
    "#ece133",  # yellow
    "#56b4e9",  # sky blue
)
BLUE, ORANGE, GREEN, VERMILLION, PINK, BROWN, LIGHT_PINK, GREY, YELLOW, SKY = COLORBLIND
DARK_GREY = "#4d4d4d"

#: each agent class (its results label)
CLASS_COLORS: dict[str, str] = {
    "retail": BLUE,
    "hedger": VERMILLION,
    "market_maker": GREEN,
    "arbitrageur": PINK,
    "commercial": BROWN,
}
#: the classes as figures label them
CLASS_LABELS: dict[str, str] = {
    "retail": "retail",
    "hedger": "hedger",
    "market_maker": "market maker",
    "arbitrageur": "arbitrageurs",
    "commercial": "commercials",
}
#: colours left for a class of the user's own, in the order they are handed out
_SPARE = (SKY, YELLOW, LIGHT_PINK, ORANGE, GREY)

#: each channel of a class's P&L (`abm.schema.CHANNELS`): the execution channels in strong
#: hues, the accounting flows in muted ones, the headline (the harvest) in vermillion
CHANNEL_COLORS: dict[str, str] = {
    "ordinary": BLUE,
    "harvest_forced_close": VERMILLION,
    "forced_close_within_crowd": YELLOW,
    "liquidation": PINK,
    "expiry": BROWN,
    "fees": GREY,
    "delivery_costs": GREEN,
    "socialized": LIGHT_PINK,
    "bad_debt_covered": ORANGE,
    "liquidation_penalty": DARK_GREY,
    "market": SKY,
}
CHANNEL_LABELS: dict[str, str] = {
    "ordinary": "ordinary trading",
    "harvest_forced_close": "harvest & forced close",
    "forced_close_within_crowd": "forced close within the crowd",
    "liquidation": "margin liquidations",
    "expiry": "expiry settlement",
    "fees": "fees",
    "delivery_costs": "delivery costs",
    "socialized": "socialized loss",
    "bad_debt_covered": "bad debt covered",
    "liquidation_penalty": "liquidation penalty",
    "market": "market moves",
}

#: price series and what stands beside them
SERIES_COLORS: dict[str, str] = {
    "spot": BLUE,
    "futures": ORANGE,
    "next_month": BROWN,
    "basis": GREEN,
    "settlement": DARK_GREY,
    "record": "#000000",  # a recorded (real) price: black
    "theory": BLUE,
    "simulated": ORANGE,
    "counterfactual": GREEN,
    "harvest_window": VERMILLION,
    "margin": PINK,
    "bid": GREEN,
    "ask": PINK,
}

assert set(CLASS_COLORS) == set(CLASSES), "a class without a colour"
assert set(CHANNEL_COLORS) == set(CHANNELS), "a channel without a colour"


def class_color(label: str, seen: list[str] | None = None) -> str:
    """The colour of an agent class; a class of the user's own gets a spare colour, the same
    one for the same position in ``seen`` (the classes a picture shows, in order)."""
    if label in CLASS_COLORS:
        return CLASS_COLORS[label]
    others = [c for c in (seen or [label]) if c not in CLASS_COLORS]
    k = others.index(label) if label in others else 0
    return _SPARE[k % len(_SPARE)]


def class_label(label: str) -> str:
    return CLASS_LABELS.get(label, label.replace("_", " "))

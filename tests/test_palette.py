"""One palette: seaborn's colour-blind-safe colours, one per class, channel and series, and no
two colours of one legend hard to tell apart (CIE76 ΔE, an independent sRGB → Lab
conversion)."""

from __future__ import annotations

import itertools

import pytest
import seaborn as sns

from abm.palette import CHANNEL_COLORS, CLASS_COLORS, COLORBLIND, class_color
from abm.schema import CHANNELS, CLASSES


def lab(hex_color: str) -> tuple[float, float, float]:
    """CIE L*a*b* (D65) of an sRGB colour."""
    rgb = [int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92 for c in rgb]
    r, g, b = lin
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(v: float) -> float:
        return v ** (1 / 3) if v > 0.008856 else 7.787 * v + 16 / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def delta_e(a: str, b: str) -> float:
    return sum((p - q) ** 2 for p, q in zip(lab(a), lab(b), strict=True)) ** 0.5


def test_lab_conversion_against_known_values():
    # white and black are L* 100 and 0; pure sRGB red is (53.24, 80.09, 67.20)
    assert lab("#ffffff") == pytest.approx((100, 0, 0), abs=0.05)
    assert lab("#000000") == pytest.approx((0, 0, 0), abs=0.05)
    assert lab("#ff0000") == pytest.approx((53.24, 80.09, 67.20), abs=0.1)


def test_the_colours_are_seaborns_colorblind_palette():
    assert list(COLORBLIND) == sns.color_palette("colorblind").as_hex()


def test_every_class_and_channel_has_its_own_colour():
    assert set(CLASS_COLORS) == set(CLASSES) and set(CHANNEL_COLORS) == set(CHANNELS)
    for palette, least in ((CLASS_COLORS, 40.0), (CHANNEL_COLORS, 20.0)):
        closest = min(delta_e(a, b) for a, b in itertools.combinations(palette.values(), 2))
        assert closest >= least


def test_a_class_of_ones_own_gets_a_spare_colour():
    seen = ["retail", "storage_owner", "hoarder"]
    mine = {class_color(c, seen) for c in ("storage_owner", "hoarder")}
    assert len(mine) == 2 and not mine & set(CLASS_COLORS.values())
    assert class_color("storage_owner", seen) == class_color("storage_owner", seen)

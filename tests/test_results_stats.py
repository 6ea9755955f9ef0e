"""Replicate statistics: intervals checked against hand-computed t quantiles."""

import math

import pytest

from abm.results import mean_ci, paired_effect


def test_mean_ci_by_hand():
    # 1, 2, 3, 4, 5: mean 3, sd sqrt(2.5), se sqrt(0.5); t(0.975, 4) = 2.7764451
    r = mean_ci([1, 2, 3, 4, 5])
    assert r["mean"] == 3 and r["n"] == 5
    assert r["se"] == pytest.approx(math.sqrt(0.5))
    assert r["hi"] - 3 == pytest.approx(2.7764451 * math.sqrt(0.5), rel=1e-6)
    assert r["lo"] == pytest.approx(6 - r["hi"])


def test_paired_effect_removes_the_shared_noise():
    control = [10.0, 50.0, 30.0, 70.0]
    treated = [c + 2.0 + e for c, e in zip(control, (0.1, -0.1, 0.1, -0.1), strict=True)]
    r = paired_effect(treated, control)
    assert r["mean"] == pytest.approx(2.0)
    assert r["hi"] - r["lo"] < 1.0  # unpaired, the seeds' spread (sd ≈ 26) would swamp it
    with pytest.raises(ValueError, match="2 treated vs 3 control"):
        paired_effect([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="not finite"):
        mean_ci([1.0, float("nan"), 2.0])

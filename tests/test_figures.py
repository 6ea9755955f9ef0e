"""`abm figures` draws all twelve figures from the stored results, reproducibly, at most a page
wide, and writes each figure's claim with its number."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from abm.cli import app
from abm.figures import figure_specs, make_all

PAPER = Path(__file__).resolve().parent.parent / "results" / "paper"


@pytest.mark.skipif(
    not (PAPER / "sobol_main" / "sensitivity.parquet").exists(),
    reason="results/paper is missing: run `abm reproduce` (it is committed)",
)
def test_all_figures_from_stored_results(tmp_path):
    res = CliRunner().invoke(app, ["figures", str(PAPER), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    names = [s.name for s in figure_specs()]
    assert len(names) == 12
    from PIL import Image

    for n in names:
        for ext in ("pdf", "png"):
            f = tmp_path / f"{n}.{ext}"
            assert f.exists() and f.stat().st_size > 5_000, f
        with Image.open(tmp_path / f"{n}.png") as im:  # 300 dpi, at most 7.2 in wide
            w, _ = im.size
        assert w <= 7.2 * 300 + 1, (n, w / 300)
    index = (tmp_path / "README.md").read_text()
    for spec in figure_specs():
        assert f"## {spec.name}" in index and spec.caption in index
    # every sweep figure states its claim with a number and its interval, none failed
    assert "claim not computed" not in index
    assert index.count("**Claim.**") >= 11 and index.count("(n = 10)") >= 5


def test_figure_files_are_byte_identical_on_rerun(tmp_path):
    a = make_all(PAPER, tmp_path / "a", only=["F2"])[0][1]
    b = make_all(PAPER, tmp_path / "b", only=["F2"])[0][1]
    for fa, fb in zip(a, b, strict=True):
        assert fa.read_bytes() == fb.read_bytes(), fa.name


def test_missing_results_are_a_clear_error(tmp_path):
    res = CliRunner().invoke(
        app, ["figures", str(tmp_path / "nothing"), "--out", str(tmp_path / "f")]
    )
    assert res.exit_code == 2 and "abm reproduce" in res.output

"""Each dashboard page falls back to its own last valid controls (issue 14, item 9)."""

from __future__ import annotations

import abm.app as app


def test_a_bad_value_on_one_page_never_shows_another_pages_config(monkeypatch):
    page = {"id": "A"}
    monkeypatch.setattr(app, "_page_id", lambda: page["id"])
    monkeypatch.setattr(app.DashboardModel, "last_valid", {})
    a = app.DashboardModel(n_retail="50", seed="1")
    assert a.config_error is None and len(a.retail) == 50
    page["id"] = "B"
    b = app.DashboardModel(n_retail="70", seed="not a seed")
    assert "seed" in b.config_error
    assert len(b.retail) != 50  # B falls back to its own (here: the scenario's) configuration
    assert b.cfg.retail.n_traders == app.load(app.SCENARIO).retail.n_traders
    page["id"] = "A"
    a2 = app.DashboardModel(n_retail="x")
    assert "retail.n_traders" in a2.config_error and len(a2.retail) == 50  # A's own fallback

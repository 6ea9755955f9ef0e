"""The results schema covers every column the model writes (issue 13): a new column cannot go
undocumented; Parquet files carry units; a query naming a missing view says what exists."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from abm import schema
from abm.model import MarketModel
from abm.results import query
from abm.scenarios import load
from abm.sweeps.runner import run_sweep
from abm.sweeps.spec import load_spec


@pytest.fixture(scope="module")
def result():
    # arbitrageurs and the socialized regime on, so their columns exist too
    cfg = load("small", {"arbitrageurs.n": 2, "arbitrage_capacity": 500, "seed": 5})
    return MarketModel(cfg).run()


def test_every_column_of_a_run_is_documented(result, tmp_path):
    assert schema.undocumented("summary", result.summary) == []
    for table in ("timeseries", "by_class"):
        cols = list(getattr(result, table).reset_index().columns)
        cols = ["owner" if c == "index" else c for c in cols]
        assert schema.undocumented(table, cols) == [], table
    for table in ("accounts", "events", "days", "depth"):
        assert schema.undocumented(table, getattr(result, table).columns) == [], table
    # and the saved files carry each column's unit and meaning
    result.save(tmp_path)
    f = pq.read_schema(tmp_path / "timeseries.parquet")
    assert f.field("basis").metadata[b"unit"] == b"price"
    assert b"futures" in f.field("basis").metadata[b"description"]
    assert pq.read_schema(tmp_path / "by_class.parquet").field("pnl").metadata[b"unit"] == b"money"


def test_the_dictionary_refuses_what_it_does_not_know():
    with pytest.raises(KeyError, match="summary.made_up is not documented"):
        schema.describe("summary", "made_up")
    assert schema.describe("timeseries", "net_hedger")[0] == "lots"
    assert schema.describe("summary", "retail_pnl_fees")[0] == "money"
    assert schema.undocumented("summary", ["pnl_retail", "pnl_nobody"]) == ["pnl_nobody"]


def test_every_column_of_a_sweep_is_documented_and_missing_views_are_named(tmp_path):
    spec = load_spec("imbalance_x_margin", quick=True)
    first = spec.runs()[0].run_id
    run_sweep(spec, tmp_path, serial=True, quick=True, progress=False, only=[first])
    root = tmp_path / spec.name
    runs = query(root, "SELECT * FROM runs")
    assert len(runs) == 1 and schema.undocumented("runs", runs.columns) == []
    with pytest.raises(ValueError, match=r"has the views \['runs'\]; missing: timeseries"):
        query(root, "SELECT * FROM timeseries")
    # a spec that keeps time series: their columns (with run_id) are documented too
    toml = tmp_path / "kept.toml"
    toml.write_text(
        'name = "kept"\nbase = "small"\ndesign = "grid"\nreplicates = 1\nkeep = "timeseries"\n'
        "[vary]\nmargin_rate = [0.1]\n"
    )
    kept = load_spec(toml)
    run_sweep(kept, tmp_path, serial=True, progress=False)
    ts = query(tmp_path / "kept", "SELECT * FROM timeseries")
    assert len(ts) > 0 and schema.undocumented("timeseries", ts.columns) == []
    meta = pq.read_schema(tmp_path / "kept" / "runs.parquet").field("ndnp_at_deadline").metadata
    assert meta[b"unit"] == b"lots"
    # a finished sweep stores its per-point statistics, documented too
    pts = query(tmp_path / "kept", "SELECT * FROM points")
    assert set(pts["metric"]) >= {"ndnp_at_deadline", "harvest_discount"}
    assert schema.undocumented("points", pts.columns) == []

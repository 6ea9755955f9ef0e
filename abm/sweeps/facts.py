"""Stylized facts of a scenario's ordinary market over seeds (``abm facts``)."""

from __future__ import annotations

import pandas as pd

from abm.metrics import ordinary_market_facts
from abm.model import MarketModel
from abm.scenarios import load


def facts_table(
    scenarios: list[str],
    seeds: int = 10,
    progress: bool = False,
    series: str = "futures",
    horizon: int = 1,
) -> pd.DataFrame:
    """Stylized facts of the ordinary market of each scenario over ``seeds`` seeds (1..seeds):
    mean and standard deviation of each fact, one row per scenario and fact. ``series`` and
    ``horizon`` as in [`ordinary_market_facts()`][abm.metrics.ordinary_market_facts]: the
    step's trade price (``"futures"``) or the book's mid (``"mid"``), every ``horizon`` steps."""
    if series not in ("futures", "mid"):
        raise ValueError(f"series = {series!r}: allowed 'futures' (trade price) or 'mid'")
    if horizon < 1:
        raise ValueError(f"horizon = {horizon}: allowed 1 or more steps")
    rows = []
    jobs = [(sc, sd) for sc in scenarios for sd in range(1, seeds + 1)]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="facts", unit="run")
    for sc, sd in jobs:
        run = MarketModel(load(sc, {"seed": sd})).run()
        f = ordinary_market_facts(run, series=series, horizon=horizon)
        rows += [{"scenario": sc, "seed": sd, "fact": k, "value": v} for k, v in f.items()]
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    df = pd.DataFrame(rows)
    out = df.groupby(["scenario", "fact"], sort=False)["value"].agg(["mean", "std", "count"])
    return out.reset_index()

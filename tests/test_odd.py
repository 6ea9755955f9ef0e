"""ODD.md stays in step with the config: every field is named there by its dotted path."""

from pathlib import Path

from pydantic import BaseModel

from abm.config import RunConfig

ODD = Path(__file__).resolve().parent.parent / "ODD.md"


def dotted_fields():
    cfg = RunConfig()
    for sec in RunConfig.model_fields:
        val = getattr(cfg, sec)
        if isinstance(val, BaseModel):
            for name in type(val).model_fields:
                yield f"{sec}.{name}"


def test_every_config_field_is_in_odd():
    text = ODD.read_text()
    missing = [f for f in dotted_fields() if f"`{f}`" not in text]
    assert not missing, f"ODD.md does not name: {missing}"


def test_odd_has_its_sections():
    text = ODD.read_text()
    for h in (
        "Purpose and patterns",
        "Entities, state variables and scales",
        "Process overview and scheduling",
        "Design concepts",
        "Initialization",
        "Input data",
        "Submodels",
    ):
        assert h in text

"""The package's layers (pyproject's import-linter contracts): kept, and able to break."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).parent / "lint-imports"


def lint(where: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(where)}
    return subprocess.run(
        [str(LINT), "--config", str(where / "pyproject.toml"), "--no-cache"],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy_of_the_package(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "abm", tmp_path / "abm", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_import_contracts_are_kept():
    r = lint(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 broken" in r.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # the exchange reaching up to the model: a circle the layers forbid
        ("exchange/book.py", "import abm.model", "is layered"),
        # the config reading agent code (what its validators used to do)
        ("config.py", "from abm.agents import retail", "is layered"),
        # the exchange reading the config
        ("exchange/calendar.py", "import abm.config", "stands alone"),
    ],
)
def test_an_upward_import_breaks_them(tmp_path, module, line, contract):
    where = copy_of_the_package(tmp_path)
    target = where / "abm" / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    r = lint(where)
    assert r.returncode != 0
    # the report's last part lists the broken contracts, each with the offending import
    broken = " ".join(r.stdout.split("Broken contracts", 1)[1].split())
    assert contract in broken, r.stdout
    name = module.removesuffix(".py").replace("/", ".")
    assert f"abm.{name} -> abm." in broken, r.stdout


def test_a_new_module_must_be_placed_in_a_layer(tmp_path):
    where = copy_of_the_package(tmp_path)
    (where / "abm" / "stray.py").write_text('"""A module no layer names."""\n')
    r = lint(where)
    assert r.returncode != 0 and "stray" in r.stdout + r.stderr

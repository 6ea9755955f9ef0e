"""An installed (non-editable) copy loads the shipped scenarios and sweep specs by name: the
wheel is built, installed into a fresh venv and run from a folder outside the checkout."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CHECK = """
import abm, json, sys
from pathlib import Path
from abm.scenarios import data_dir, load, names
from abm.sweeps.spec import load_spec

here = Path(abm.__file__).resolve()
cfg = load("one_sided", {"n_retail": 20})
spec = load_spec("crowd_seeds")
print(json.dumps({
    "abm": str(here),
    "data": str(data_dir("scenarios")),
    "scenarios": names("scenarios"),
    "sweeps": names("sweeps"),
    "long_share": cfg.retail.long_share,
    "spec_base": spec.base,
}))
"""


@pytest.mark.slow
def test_an_installed_wheel_loads_scenarios_and_sweeps_by_name(tmp_path):
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("abm_harvest-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "-q",
            "--no-deps",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    # the dependencies come from this environment's site-packages, added as a plain path: its
    # .pth files (the editable install's pointer to the checkout among them) are not read
    site = Path(
        subprocess.check_output(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            text=True,
        ).strip()
    )
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    away = tmp_path / "elsewhere"
    away.mkdir()
    out = subprocess.run(
        [str(py), "-c", CHECK], cwd=away, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    import json

    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(got["abm"]).is_relative_to(venv), got["abm"]  # the wheel, not the checkout
    assert Path(got["data"]).is_relative_to(venv)
    shipped = sorted(p.stem for p in (ROOT / "experiments" / "scenarios").glob("*.toml"))
    assert got["scenarios"] == shipped
    assert got["sweeps"] == sorted(p.stem for p in (ROOT / "experiments" / "sweeps").glob("*.toml"))
    assert got["long_share"] == 0.9 and got["spec_base"] == "default"
    # and the command a user types
    cmd = subprocess.run(
        [str(venv / "bin" / "abm"), "scenarios"], cwd=away, capture_output=True, text=True
    )
    assert cmd.returncode == 0 and "one_sided" in cmd.stdout, cmd.stderr

"""Every notebook runs, its own asserts pass, and every cell that draws shows a picture.

The notebooks run here in a Jupyter kernel with matplotlib's inline backend (the way a
researcher opens them), at the small scenario (``ABM_NOTEBOOK_SMALL=1``): a plotting cell that
produces no image fails, as a library module choosing a non-interactive backend once did.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def draws(source: str) -> bool:
    """Whether a cell's top-level statements call something that draws: plt.*, sns.*, a
    figure function F.f*, a ``.plot(`` method, or the notebook's own ``show(``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython magics
        return False

    def walk(node):  # not into function bodies or lambdas: they draw when called, elsewhere
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, ast.FunctionDef | ast.Lambda | ast.ClassDef):
                yield from walk(child)

    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.ClassDef | ast.Import | ast.ImportFrom):
            continue
        for node in walk(stmt):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            if isinstance(f, ast.Attribute):
                owner = f.value.id if isinstance(f.value, ast.Name) else ""
                if (
                    owner in ("plt", "sns")
                    or f.attr == "plot"
                    or (owner == "F" and f.attr.startswith("f"))
                ):
                    return True
            elif isinstance(f, ast.Name) and f.id == "show":
                return True
    return False


def test_the_drawing_detector():
    assert draws("fig = F.f1_price_paths(a, b)") and draws("show(run())")
    assert draws("result.plot()") and draws("plt.hist(x)")
    assert not draws("def show(r):\n    plt.plot(r)") and not draws("x = 1")
    assert not draws("w = widgets.interactive(lambda **kw: show(run(**kw)))")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_shows_its_figures(path, tmp_path):
    # a kernel of its own, as a researcher's Jupyter starts it: matplotlib's inline backend
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["ABM_NOTEBOOK_SMALL"] = "1"
    out = tmp_path / path.name
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--ExecutePreprocessor.timeout=600",
            # Unix sockets, not TCP ports another test's server could take in between
            "--KernelManager.transport=ipc",
            f"--KernelManager.ip={tmp_path / 'kernel'}",
            str(path),
            "--output",
            str(out),
        ],
        cwd=path.parent,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]  # a failing cell or assert fails here
    nb = nbformat.read(out, as_version=4)
    drawing = [c for c in nb.cells if c.cell_type == "code" and draws(c.source)]
    assert drawing, f"{path.name} draws nothing"
    for cell in drawing:
        images = [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        assert images, f"{path.name}: this cell draws but shows no image:\n{cell.source[:300]}"

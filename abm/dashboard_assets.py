"""Put Solara's front-end files in its local asset cache, so the dashboard works offline.

Solara's page loads its JavaScript and CSS (the Vuetify app, RequireJS, Font Awesome) from a CDN
through its own proxy, which first looks in ``<sys.prefix>/share/solara/cdn/``. On machines
without internet access (CI here) the page never renders. This fills that cache from the npm
registry: it reads the ``package@version`` references out of Solara's sources, fetches each
package with ``npm pack`` and unpacks it where the proxy looks. It does nothing for packages
already cached.

    python -m abm.dashboard_assets
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# "/@scope/name@1.2.3/..." or "/name@1.2.3-alpha.2/..." (pinned versions only)
REF = re.compile(r"/((?:@[a-z0-9-]+/)?[a-z0-9.-]+)@(\d+\.\d+\.\d+(?:-[\w.]+)?)/")
#: not needed by the dashboard: the docs site's search, and an unscoped name that only appears
#: in a comment
SKIP = {"algoliasearch", "solara-vuetify-app"}


def referenced_packages() -> set[tuple[str, str]]:
    """(package, version) pairs Solara's page and components load from the CDN."""
    import solara.server
    import solara.server.settings as settings

    refs: set[tuple[str, str]] = set()
    pkg = Path(solara.server.__file__).parent.parent
    for pattern in ("**/*.j2", "**/*.py", "**/*.vue"):
        for f in pkg.glob(pattern):
            refs |= {r for r in REF.findall(f.read_text(errors="ignore")) if r[0] not in SKIP}
    fa = settings.assets.fontawesome_path.strip("/").split("/")[0]  # font-awesome@4.5.0
    name, _, version = fa.rpartition("@")
    if name:
        refs.add((name, version))
    return refs


def cache_dir() -> Path:
    import solara.server.settings as settings

    return Path(settings.assets.proxy_cache_dir)


def fetch(verbose: bool = True) -> Path:
    root = cache_dir()
    npm = shutil.which("npm")
    todo = [(p, v) for p, v in sorted(referenced_packages()) if not (root / f"{p}@{v}").exists()]
    if not todo:
        return root
    if npm is None:
        raise RuntimeError(
            "npm is not installed: cannot fetch Solara's front-end packages "
            f"{[f'{p}@{v}' for p, v in todo]} for offline use"
        )
    with tempfile.TemporaryDirectory() as tmp:
        for pkg, ver in todo:
            out = subprocess.run(
                [npm, "pack", f"{pkg}@{ver}", "--silent"],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=300,
            )
            if out.returncode != 0:
                raise RuntimeError(f"npm pack {pkg}@{ver} failed: {out.stderr.strip()}")
            tgz = Path(tmp) / out.stdout.strip().splitlines()[-1]
            target = root / f"{pkg}@{ver}"
            staging = Path(tmp) / "x"
            shutil.rmtree(staging, ignore_errors=True)
            with tarfile.open(tgz) as tar:
                tar.extractall(staging, filter="data")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(staging / "package"), str(target))
            if verbose:
                print(f"cached {pkg}@{ver} -> {target}")
    return root


if __name__ == "__main__":
    try:
        fetch()
    except (RuntimeError, OSError, subprocess.SubprocessError) as err:
        print(f"warning: {err}; the dashboard needs internet access to load", file=sys.stderr)
        sys.exit(0)

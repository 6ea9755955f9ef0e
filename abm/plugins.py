"""Named, replaceable parts: a class chosen in the config by name or by import path.

Decision rules (the hedger's harvest pricing, the retail crowd's rules) and extra agent classes
are named in the config either by a short name the model ships (``"optimal"``, ``"hold"``) or
by an import path ``"package.module:Class"``, so a researcher's own class needs no change to
the model: ``hedger.spread_policy = "mypkg.pricing:MyPolicy"``, ``[[agents]] class =
"mypkg.agents:MyTrader"``.
"""

from __future__ import annotations

import importlib
from typing import Any


def load_object(path: str) -> Any:
    """The object named by ``"package.module:Name"`` (or ``"package.module.Name"``)."""
    if not isinstance(path, str) or not path.strip():
        raise ValueError(f"{path!r}: expected an import path 'package.module:Name'")
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"{path!r}: expected an import path 'package.module:Name'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"{path!r}: cannot import module {module_name!r} ({err})") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"{path!r}: module {module_name!r} has no {attr!r}") from None


def resolve_class(name: str, known: dict[str, type], base: type, what: str) -> type:
    """A class by short name from ``known`` or by import path; it must subclass ``base`` (or,
    for protocols, provide its methods)."""
    if name in known:
        return known[name]
    if ":" not in name and "." not in name:
        raise ValueError(
            f"{what} = {name!r}: not one of {sorted(known)} nor an import path 'module:Class'"
        )
    try:
        obj = load_object(name)
    except ValueError as err:
        raise ValueError(f"{what} = {err}") from None
    if not isinstance(obj, type):
        raise ValueError(f"{what} = {name!r}: {obj!r} is not a class")
    if isinstance(base, type) and base is not object and not issubclass(obj, base):
        raise ValueError(f"{what} = {name!r}: {obj.__name__} must subclass {base.__name__}")
    return obj

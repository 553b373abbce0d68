"""The method registry: every method the harness can run, by name.

The built-in methods are named here as ``module:Class`` strings and imported only when used,
so ``aebench --help`` and the light commands import no torch. A method from another installed
package registers through the entry-point group ``aebench.methods``
(``name = "package.module:Class"`` in its ``pyproject.toml``), appears in ``aebench ls
methods`` and runs in a protocol like a built-in one; its config section ``cfg.<name>`` is an
open mapping (:mod:`aebench.config`), which the method validates itself. Metrics have their
own registry, beside their modules (:mod:`aebench.eval.registry`).
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from importlib.metadata import entry_points

from aebench.config import METHOD_ENTRY_POINTS
from aebench.method_api import Method
#: the built-in methods: name -> "module:Class"
BUILTIN_METHODS: dict[str, str] = {
    "aenerf": "aebench.aenerf.method:AENeRF",
    "dfrf": "aebench.baselines.dfrf:DFRF",
    "adnerf": "aebench.baselines.adnerf:ADNeRF",
    "external": "aebench.baselines.external:External",
}


@lru_cache(maxsize=1)
def plugin_methods() -> dict[str, str]:
    """Methods of other installed packages (entry points of ``aebench.methods``): name -> target."""
    found = {ep.name: ep.value for ep in entry_points(group=METHOD_ENTRY_POINTS)}
    clash = sorted(set(found) & set(BUILTIN_METHODS))
    if clash:
        raise RuntimeError(f"installed plugins register methods named like built-in ones: {', '.join(clash)}")
    return found


def methods() -> dict[str, str]:
    """Every registered method: name -> ``module:Class`` (built-in first, then plugins)."""
    return {**BUILTIN_METHODS, **plugin_methods()}


def method_class(name: str) -> type[Method]:
    """The class of method ``name``; a KeyError naming the registered ones when unknown."""
    known = methods()
    if name not in known:
        raise KeyError(f"unknown method '{name}'; registered: {', '.join(sorted(known))}")
    module, _, cls = known[name].partition(":")
    try:
        found = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise KeyError(f"method '{name}' is registered as {known[name]} but cannot be imported: {exc}") from exc
    if not (isinstance(found, type) and issubclass(found, Method)):
        raise KeyError(f"method '{name}' ({known[name]}) is not a subclass of aebench.method_api.Method")
    return found


def get_method(name: str) -> Method:
    """A new instance of method ``name``."""
    return method_class(name)()

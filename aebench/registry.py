"""The method registry: every method aebench can run, by name, and the config sections it declares.

Methods register through the entry-point group ``aebench.methods`` (``name =
"package.module:Class"``): the built-in ones in aebench's own ``pyproject.toml``, others in
their package's. A method is imported only when used, so ``aebench --help`` and the light
commands import no torch. A notebook or a test registers one at run time with
:func:`register` (held in :data:`REGISTERED`, which the process pool hands to its workers).

A method's config section ``cfg.<name>`` is its class's ``settings_cls`` (a
:class:`aebench.settings.Settings` subclass; an open mapping, validated by the method itself,
when it declares none). Sections that are not a method's (the NeRF field encoding, the
launchers) register through the group ``aebench.sections`` (``name = "module:Class"``).
Metrics have their own registry, beside their modules (:mod:`aebench.eval.registry`).
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from aebench.method_api import Method

#: the entry-point group of methods (``name = "package.module:Class"``)
METHOD_ENTRY_POINTS = "aebench.methods"
#: the entry-point group of config sections that are not a method's (``name = "module:Class"``)
SECTION_ENTRY_POINTS = "aebench.sections"
#: methods registered at run time (:func:`register`): name -> "module:Class"
REGISTERED: dict[str, str] = {}


def _group(group: str) -> dict[str, str]:
    """An entry-point group as name -> target; two installed packages claiming one name is an error."""
    found: dict[str, str] = {}
    for ep in entry_points(group=group):
        if found.get(ep.name, ep.value) != ep.value:
            raise RuntimeError(f"two installed packages register '{ep.name}' in {group}: {found[ep.name]} and {ep.value}")
        found[ep.name] = ep.value
    return found


@lru_cache(maxsize=1)
def installed_methods() -> dict[str, str]:
    """Methods of the installed packages (aebench's own included): name -> target."""
    return _group(METHOD_ENTRY_POINTS)


def register(name: str, target: str) -> None:
    """Register method ``name`` as ``"module:Class"`` for this process (and its pool workers)."""
    if name in installed_methods() and installed_methods()[name] != target:
        raise ValueError(f"method '{name}' is already registered as {installed_methods()[name]}")
    REGISTERED[name] = target


def methods() -> dict[str, str]:
    """Every registered method: name -> ``module:Class``."""
    return {**installed_methods(), **REGISTERED}


def load_target(target: str) -> Any:
    """The object ``"module:Name"`` names."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def method_class(name: str) -> type[Method]:
    """The class of method ``name``; a KeyError naming the registered ones when unknown."""
    known = methods()
    if name not in known:
        raise KeyError(f"unknown method '{name}'; registered: {', '.join(sorted(known))}")
    try:
        found = load_target(known[name])
    except (ImportError, AttributeError) as exc:
        raise KeyError(f"method '{name}' is registered as {known[name]} but cannot be imported: {exc}") from exc
    if not (isinstance(found, type) and issubclass(found, Method)):
        raise KeyError(f"method '{name}' ({known[name]}) is not a subclass of aebench.method_api.Method")
    return found


def get_method(name: str) -> Method:
    """A new instance of method ``name``."""
    return method_class(name)()


def sections() -> dict[str, str]:
    """Config sections other layers declare (not methods'): name -> ``module:Class``."""
    return _group(SECTION_ENTRY_POINTS)

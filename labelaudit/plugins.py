"""Discovery for every registry: import each module of a package once, so its decorators register.

Detectors (:mod:`labelaudit.detectors`), truth-inference methods (:mod:`labelaudit.agreement`),
input formats (:mod:`labelaudit.io.formats`), companion inputs (:mod:`labelaudit.io.companions`) and
CLI commands (:mod:`labelaudit.commands`) are each one module that registers itself; the registry
calls
:func:`import_submodules` before it lists them, so a new module is found without being named
anywhere else.

>>> [m.__name__ for m in import_submodules("labelaudit.io.formats")][:2]
['labelaudit.io.formats.delimited', 'labelaudit.io.formats.jsonlines']
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from types import ModuleType

__all__ = ["import_submodules"]


def import_submodules(package: str, *, skip: tuple[str, ...] = ()) -> tuple[ModuleType, ...]:
    """Import every direct submodule of ``package`` except private ones (``_name``) and ``skip``;
    return them sorted by name. Imported once per process (later calls return the same tuple)."""
    return _import_submodules(package, tuple(sorted(skip)))


@functools.cache
def _import_submodules(package: str, skip: tuple[str, ...]) -> tuple[ModuleType, ...]:
    pkg = importlib.import_module(package)
    names = sorted(
        m.name
        for m in pkgutil.iter_modules(pkg.__path__)
        if not m.name.startswith("_") and m.name not in skip
    )
    return tuple(importlib.import_module(f"{package}.{name}") for name in names)

"""Where the scan's parallel steps run: the engine seam.

An engine runs one function over a list of independent work items and returns the results in the
items' order. The scan hands it the parts of its steps that do not depend on each other (embedding
chunks, blocks of the neighbour search, out-of-fold folds) and assembles the results itself, so
every engine writes the same workspace artifacts and the app, the CLI and ``export`` read them
unchanged.

- :class:`LocalEngine` (the default): runs the items one after the other in this process. Needs
  nothing beyond labelaudit's own dependencies; importing this module never imports Ray.
- :class:`labelaudit.engine_ray.RayEngine` (``engine="ray"``): one Ray task per item on an existing
  Ray cluster (``address`` / ``RAY_ADDRESS``) or a local Ray runtime it starts. See docs/scale.md.

``shared`` values (e.g. the (N, D) embeddings) are passed to every item; the Ray engine puts them in
the object store once, instead of once per task.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from labelaudit.errors import UsageError

ENGINES = ("local", "ray")


class Engine(Protocol):
    """Runs ``fn(item, **shared)`` for every item; results in item order."""

    name: str

    def map(
        self, fn: Callable[..., Any], items: Sequence[Any], *, shared: dict[str, Any] | None = None
    ) -> list[Any]: ...

    def close(self) -> None: ...


class LocalEngine:
    """Every item in this process, in order (the default engine)."""

    name = "local"

    def map(
        self, fn: Callable[..., Any], items: Sequence[Any], *, shared: dict[str, Any] | None = None
    ) -> list[Any]:
        kw = shared or {}
        return [fn(item, **kw) for item in items]

    def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return "LocalEngine()"


LOCAL = LocalEngine()


def get_engine(engine: str | Engine | None = None, *, address: str | None = None) -> Engine:
    """An engine from its name (``"local"``, ``"ray"``), an engine object, or None (local).

    ``address``: the Ray cluster for ``"ray"`` (default ``RAY_ADDRESS``; neither = start a local
    Ray runtime on this machine). Raises UsageError for an unknown name, or for ``"ray"`` when Ray
    is not installed.
    """
    if engine is None or engine == "local":
        if address:
            raise UsageError("--ray-address needs --engine ray")
        return LOCAL
    if not isinstance(engine, str):
        return engine
    if engine != "ray":
        raise UsageError(f"unknown engine '{engine}'; choose one of {list(ENGINES)}")
    try:
        from labelaudit.engine_ray import RayEngine
    except ImportError:
        raise UsageError(
            "--engine ray needs Ray: pip install 'labelaudit[ray]' (or pip install ray)"
        ) from None
    return RayEngine(address=address or os.environ.get("RAY_ADDRESS") or None)

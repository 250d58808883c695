"""Which detectors exist, what each needs, and which of them a context can feed.

A detector module registers itself with :func:`register`; every module in
``labelaudit.detectors`` is imported by :func:`all_detectors`, so adding a detector is adding a file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from labelaudit.detectors.base import DetectionContext, DetectorResult
from labelaudit.plugins import import_submodules

DetectorFn = Callable[[DetectionContext], DetectorResult]


@dataclass(frozen=True)
class DetectorSpec:
    name: str
    fn: DetectorFn
    #: Context fields that must not be None: any of "embeddings", "pred_probs", "texts", "dynamics".
    requires: tuple[str, ...]
    description: str
    #: Rough relative cost, to order the cheap ones first.
    cost: int = 1
    #: Run by default in ``scan``; expensive or experimental detectors may opt out.
    default: bool = True


_REGISTRY: dict[str, DetectorSpec] = {}


def register(
    name: str,
    *,
    requires: tuple[str, ...] = (),
    description: str = "",
    cost: int = 1,
    default: bool = True,
) -> Callable[[DetectorFn], DetectorFn]:
    def deco(fn: DetectorFn) -> DetectorFn:
        _REGISTRY[name] = DetectorSpec(name, fn, requires, description, cost, default)
        return fn

    return deco


def all_detectors() -> dict[str, DetectorSpec]:
    import_submodules("labelaudit.detectors", skip=("base", "registry"))
    return dict(sorted(_REGISTRY.items(), key=lambda kv: (kv[1].cost, kv[0])))


def runnable(ctx: DetectionContext, names: list[str] | None = None) -> list[DetectorSpec]:
    """The chosen detectors (default: every default one) whose required inputs ``ctx`` has.

    :func:`labelaudit.detect.run_available` runs them.
    """
    specs = all_detectors()
    chosen = [specs[n] for n in names] if names else [s for s in specs.values() if s.default]
    return [s for s in chosen if all(getattr(ctx, r) is not None for r in s.requires)]

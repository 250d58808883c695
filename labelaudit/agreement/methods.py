"""Truth-inference methods, registered like detectors: name -> function, title, inputs.

:func:`register_truth_method` adds a method; :func:`labelaudit.agreement.infer_truth`, the
``labelaudit agreement --method`` choices and the Annotators page list them from here. A new method
is a module in ``labelaudit/agreement/`` that registers itself (every module of the package is
imported on first use) plus its test. A method takes ``(ratings, inputs)`` and returns a
:class:`~labelaudit.agreement.truth.TruthResult`.

The built-in methods are registered below as thin calls into the modules that implement them
(their internals live in ``truth.py``, ``mace.py`` and ``crowdlab.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from labelaudit.agreement.ratings import Ratings
from labelaudit.agreement.truth import TieBreak, TruthResult
from labelaudit.errors import UsageError
from labelaudit.plugins import import_submodules
from labelaudit.progress import ProgressFn, no_progress


@dataclass(frozen=True)
class TruthInputs:
    """What a method may use besides the ratings (each method reads only what it needs)."""

    seed: int = 0
    tie_break: TieBreak = "random"
    #: float (I, K) in ``ratings.item_ids`` order, or None.
    pred_probs: np.ndarray | None = None
    progress: ProgressFn = field(default=no_progress)


TruthFn = Callable[[Ratings, TruthInputs], TruthResult]


@dataclass(frozen=True)
class TruthMethod:
    name: str
    #: Shown to users: "MACE".
    title: str
    fn: TruthFn
    #: Needs model probabilities (refused with a clear message without them).
    needs_probs: bool = False
    #: Listed in this order (the first is the Annotators page's default).
    order: int = 100


_REGISTRY: dict[str, TruthMethod] = {}


def register_truth_method(
    name: str, *, title: str, needs_probs: bool = False, order: int = 100
) -> Callable[[TruthFn], TruthFn]:
    """Decorator: register ``fn(ratings, inputs) -> TruthResult`` as the method ``name``."""

    def deco(fn: TruthFn) -> TruthFn:
        if name in _REGISTRY and _REGISTRY[name].fn is not fn:
            raise ValueError(f"truth-inference method {name!r} is already registered")
        _REGISTRY[name] = TruthMethod(name, title, fn, needs_probs, order)
        return fn

    return deco


def all_truth_methods() -> dict[str, TruthMethod]:
    """Every registered method by name, in listing order."""
    import_submodules("labelaudit.agreement")
    return dict(sorted(_REGISTRY.items(), key=lambda kv: (kv[1].order, kv[0])))


def run_truth_method(name: str, ratings: Ratings, inputs: TruthInputs) -> TruthResult:
    """Run the method ``name``; UsageError for an unknown one or missing probabilities."""
    methods = all_truth_methods()
    if name not in methods:
        raise UsageError(f"unknown method {name!r}; use one of {', '.join(methods)}")
    m = methods[name]
    if m.needs_probs and inputs.pred_probs is None:
        raise UsageError(f"method {name} needs predicted probabilities (the dataset has none)")
    return m.fn(ratings, inputs)


class MethodTitles(Mapping[str, str]):
    """``{name: title}`` of the registered methods, read at each use (so later registrations show)."""

    def __getitem__(self, key: str) -> str:
        return all_truth_methods()[key].title

    def __iter__(self) -> Iterator[str]:
        return iter(all_truth_methods())

    def __len__(self) -> int:
        return len(all_truth_methods())

    def __repr__(self) -> str:
        return repr(dict(self))


# --------------------------------------------------------------------------- the built-in methods
@register_truth_method("mv", title="majority vote", order=30)
def _majority_vote(ratings: Ratings, inputs: TruthInputs) -> TruthResult:
    from labelaudit.agreement.truth import majority_vote

    return majority_vote(
        ratings, tie_break=inputs.tie_break, seed=inputs.seed, pred_probs=inputs.pred_probs
    )


@register_truth_method("ds", title="Dawid–Skene", order=20)
def _dawid_skene(ratings: Ratings, inputs: TruthInputs) -> TruthResult:
    from labelaudit.agreement.truth import dawid_skene

    return dawid_skene(ratings, smoothing=0.01)


@register_truth_method("mace", title="MACE", order=10)
def _mace(ratings: Ratings, inputs: TruthInputs) -> TruthResult:
    from labelaudit.agreement.mace import mace

    return mace(ratings, seed=inputs.seed, progress=inputs.progress)


@register_truth_method("crowdlab", title="CROWDLAB (with the model)", needs_probs=True, order=40)
def _crowdlab(ratings: Ratings, inputs: TruthInputs) -> TruthResult:
    from labelaudit.agreement.crowdlab import crowdlab

    assert inputs.pred_probs is not None  # checked by run_truth_method
    return crowdlab(ratings, inputs.pred_probs)

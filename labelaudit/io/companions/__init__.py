"""The optional inputs beside a dataset (probabilities, annotations, …): one module each.

Every module here registers its companion with :func:`register_companion`: its ``load_dataset``
option, CLI flag and help, the files a dataset folder names it by, the upload types of the Data
page, the README line, what the workspace stores, and the reader. The loader, the CLI, the
workspace, the Data page and the README table all read :func:`all_companions`, so adding a companion
is adding a module here plus its test (see CONTRIBUTING.md). Modules whose name starts with ``_`` or
that register nothing (``arrays``) hold shared helpers.

A reader takes ``(source, dataset, report)``: ``source`` is what the caller passed (a path, or an
in-memory array/DataFrame), ``dataset`` the rows already validated. It sets the dataset attributes
it fills and records every problem in ``report`` (file, row, column, found, expected) instead of
raising.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labelaudit.plugins import import_submodules

if TYPE_CHECKING:
    from labelaudit.dataset import Dataset
    from labelaudit.errors import Report

CompanionReader = Callable[[Any, "Dataset", "Report"], None]


@dataclass(frozen=True)
class Companion:
    """One optional input beside a dataset."""

    #: The ``load_dataset`` keyword, e.g. "probs"; the CLI flag is ``--<name>``.
    name: str
    #: One line of ``--help``.
    help: str
    #: The README table's format cell (Markdown).
    doc: str
    #: Sets the dataset's attributes from a source; None = read by the loader itself (classes).
    read: CompanionReader | None
    #: A dataset-folder file whose stem is one of these, or starts with one and "_", is this
    #: companion.
    folder_prefixes: tuple[str, ...] = ()
    #: The Data page's upload label and accepted file types (without the dot).
    upload_label: str = ""
    upload_types: tuple[str, ...] = ()
    #: Dataset attributes the workspace stores, with the artifact type: ("pred_probs", "npy").
    stored: tuple[tuple[str, str], ...] = ()
    #: Companions are read in this order (then by name).
    order: int = 100

    @property
    def flag(self) -> str:
        return f"--{self.name.replace('_', '-')}"


_REGISTRY: dict[str, Companion] = {}


def register_companion(
    name: str,
    *,
    help: str,
    doc: str,
    folder_prefixes: tuple[str, ...] = (),
    upload_label: str = "",
    upload_types: tuple[str, ...] = (),
    stored: tuple[tuple[str, str], ...] = (),
    order: int = 100,
) -> Callable[[CompanionReader], CompanionReader]:
    """Decorator: register ``fn(source, dataset, report)`` as the reader of the companion ``name``.

    Example:
        >>> @register_companion("example", help="doc only", doc="doc only")
        ... def read_example(source, ds, rep):
        ...     pass
        >>> companion("example").flag
        '--example'
        >>> _ = _REGISTRY.pop("example")
    """
    bad = [t for t in upload_types if t.startswith(".") or t != t.lower()]
    if bad:
        raise ValueError(f"upload types are lower-case suffixes without the dot, got {bad}")

    def deco(fn: CompanionReader) -> CompanionReader:
        if name in _REGISTRY and _REGISTRY[name].read is not fn:
            raise ValueError(f"companion {name!r} is already registered")
        _REGISTRY[name] = Companion(
            name,
            help,
            doc,
            fn,
            tuple(folder_prefixes),
            upload_label,
            tuple(upload_types),
            tuple(stored),
            order,
        )
        return fn

    return deco


def register_loader_companion(companion: Companion) -> None:
    """Register a companion the loader reads itself (``read=None``: the class list)."""
    _REGISTRY[companion.name] = companion


def all_companions() -> list[Companion]:
    """Every registered companion, in reading order."""
    import_submodules(__name__)
    return sorted(_REGISTRY.values(), key=lambda c: (c.order, c.name))


def companion(name: str) -> Companion:
    """The companion registered as ``name`` (KeyError naming the known ones otherwise)."""
    all_companions()
    if name not in _REGISTRY:
        raise KeyError(f"unknown companion {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def stored_attributes() -> list[tuple[str, str]]:
    """``(dataset attribute, artifact type)`` of every companion the workspace stores."""
    return [s for c in all_companions() for s in c.stored]


def readme_table() -> str:
    """The README's companion table, one row per companion (the docs test keeps them equal)."""
    rows = ["| option | format |", "|---|---|"]
    rows += [f"| `{c.flag}` | {c.doc} |" for c in all_companions()]
    return "\n".join(rows)

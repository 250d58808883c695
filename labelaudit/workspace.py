"""The workspace: a folder of derived artifacts keyed by content hashes.

Layout::

    <root>/datasets/<content_hash>/          the dataset in canonical form (see save_dataset)
    <root>/artifacts/<key>/<name>-<params_hash>.<ext>
    <root>/review.sqlite                      the review store (default database)
    <root>/review.sqlite.manifest.json        decisions saved (count, newest id): checked on open
    <root>/review.sqlite.backups/             rolling backups of the review store
    <root>/workspace.json                     the format (labelaudit.workspace_format)

``key`` is whatever hash the artifact depends on: embeddings depend only on the texts
(``Dataset.text_hash``), detector output on the whole dataset (``Dataset.content_hash``). An
artifact is written once, atomically, and read back on every later request with the same key and
parameters, so unchanged inputs are never recomputed. Artifacts are NumPy ``.npy`` (never
pickled), Parquet or JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np
import pandas as pd

from labelaudit.dataset import Dataset

T = TypeVar("T")
_HASH_RE = re.compile(r"[0-9a-f]{1,64}")
DEFAULT_ROOT = ".labelaudit"


def params_hash(params: dict[str, Any]) -> str:
    blob = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@overload
def as_workspace(workspace: Workspace | str | os.PathLike) -> Workspace: ...
@overload
def as_workspace(workspace: None) -> None: ...
@overload
def as_workspace(workspace: Workspace | str | os.PathLike | None) -> Workspace | None: ...
def as_workspace(workspace: Workspace | str | os.PathLike | None) -> Workspace | None:
    """A :class:`Workspace` from a Workspace, a folder path, or None (kept None: no caching).

    Every public function that takes ``workspace=`` coerces it here, once.

    Example:
        >>> as_workspace(None) is None
        True
    """
    if workspace is None or isinstance(workspace, Workspace):
        return workspace
    return Workspace(workspace)


class Workspace:
    """A folder of cached artifacts. Safe to share between processes (writes are atomic renames)."""

    def __init__(self, root: str | os.PathLike | None = None, *, check_format: bool = True):
        self.root = Path(root or os.environ.get("LABELAUDIT_WORKSPACE") or DEFAULT_ROOT).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        #: What opening the workspace changed (an older format upgraded); see workspace_format.
        self.notes: list[str] = []
        if check_format:
            from labelaudit.workspace_format import ensure_format

            self.notes = ensure_format(self)

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    @property
    def database_url(self) -> str:
        """The review store's database: LABELAUDIT_DB_URL if set, else SQLite in the workspace."""
        return os.environ.get("LABELAUDIT_DB_URL") or f"sqlite:///{self.root / 'review.sqlite'}"

    def review_manifest_path(self, url: str | None = None) -> Path:
        """The manifest that counts the decisions saved in the review database ``url`` (default
        :attr:`database_url`): ``review.sqlite.manifest.json`` beside a SQLite file, else
        ``review-<hash of the URL>.manifest.json`` in the workspace (see
        :mod:`labelaudit.review.store_health`)."""
        from labelaudit.review import store_health

        url = url or self.database_url
        return store_health.default_manifest_path(url) or store_health.workspace_manifest_path(
            self.root, url
        )

    def review_store(self, url: str | None = None, *, read_only: bool = False, **kwargs: Any):  # type: ignore[no-untyped-def]
        """The workspace's :class:`~labelaudit.review.store.ReviewStore` (``url`` default
        :attr:`database_url`), checked against the workspace's manifest on open. ``read_only`` for
        commands that only read: no write lock, no file created."""
        from labelaudit.review.store import ReviewStore

        url = url or self.database_url
        return ReviewStore(
            url, read_only=read_only, manifest=self.review_manifest_path(url), **kwargs
        )

    # ------------------------------------------------------------------ artifacts
    def path(
        self, key: str, name: str, params: dict[str, Any] | None = None, ext: str = "npy"
    ) -> Path:
        d = self.root / "artifacts" / key
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{name}-{params_hash(params or {})}.{ext}"

    def has(
        self, key: str, name: str, params: dict[str, Any] | None = None, ext: str = "npy"
    ) -> bool:
        return self.path(key, name, params, ext).exists()

    def load(
        self,
        key: str,
        name: str,
        params: dict[str, Any] | None = None,
        ext: str = "npy",
        *,
        mmap: bool = False,
    ) -> Any:
        """The stored artifact; ``mmap=True`` opens a ``.npy`` read-only memory-mapped (not loaded)."""
        return _read(self.path(key, name, params, ext), mmap=mmap)

    def save(
        self,
        key: str,
        name: str,
        value: Any,
        params: dict[str, Any] | None = None,
        ext: str = "npy",
    ) -> Path:
        p = self.path(key, name, params, ext)
        _write_atomic(p, value)
        return p

    @contextlib.contextmanager
    def writing_npy(
        self,
        key: str,
        name: str,
        params: dict[str, Any] | None,
        shape: tuple[int, ...],
        dtype: Any,
    ) -> Iterator[np.ndarray]:
        """A new ``.npy`` artifact of ``shape`` and ``dtype``, filled in place through the yielded
        memory map (``np.lib.format.open_memmap`` on a temporary file beside it) and put under its
        name only when the block ends without an error (else removed): an array larger than one
        wants to hold (the (E, N, K) logits of a training run) is written without a copy in
        memory, and a reader never sees a half-written file."""
        p = self.path(key, name, params, "npy")
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
        os.close(fd)
        try:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
            yield out
            out.flush()
            del out
            os.replace(tmp, p)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def cached(
        self,
        key: str,
        name: str,
        params: dict[str, Any] | None,
        compute: Callable[[], T],
        ext: str = "npy",
        *,
        mmap: bool = False,
    ) -> T:
        """Return the stored artifact, or compute, store and return it.

        ``mmap=True`` (``.npy`` only): the result is always the stored file opened memory-mapped,
        also right after computing it, so the computed array can be freed by the caller.
        """
        p = self.path(key, name, params, ext)
        if p.exists():
            return _read(p, mmap=mmap)  # type: ignore[no-any-return]
        value = compute()
        _write_atomic(p, value)
        if mmap:
            del value
            return _read(p, mmap=True)  # type: ignore[no-any-return]
        return value

    # ------------------------------------------------------------------ datasets
    def dataset_dir(self, content_hash: str) -> Path:
        return self.root / "datasets" / content_hash

    def save_dataset(self, ds: Dataset) -> str:
        """Store ``ds`` in canonical form (Parquet + .npy + JSON) and return its content hash."""
        h = ds.content_hash
        d = self.dataset_dir(h)
        if (d / "meta.json").exists():
            return h
        d.mkdir(parents=True, exist_ok=True)
        _write_atomic(d / "frame.parquet", ds.frame)
        from labelaudit.io.companions import stored_attributes

        for name, ext in stored_attributes():  # every registered companion's stored attributes
            value = getattr(ds, name)
            if value is not None:
                _write_atomic(d / f"{name}.{ext}", value)
        meta = {
            "classes": ds.classes,
            "source": ds.source,
            "class_descriptions": ds.class_descriptions,
            "mapping": ds.mapping,
            "warnings": [w.__dict__ for w in ds.warnings],
        }
        _write_atomic(d / "meta.json", meta)  # written last: its presence marks a complete dataset
        return h

    def load_dataset(self, content_hash: str) -> Dataset:
        from labelaudit.errors import DataError, Problem

        if not _HASH_RE.fullmatch(str(content_hash)):  # e.g. LABELAUDIT_DATASET: never a path
            raise DataError(
                Problem(
                    f"{str(content_hash)[:80]!r} is not a dataset version",
                    "the hexadecimal content hash of a dataset saved in the workspace",
                )
            )
        d = self.dataset_dir(content_hash)
        if not (d / "meta.json").exists():
            raise DataError(
                Problem(
                    f"no dataset {content_hash} in the workspace {self.root}",
                    "a dataset saved with Workspace.save_dataset",
                )
            )
        meta = _read(d / "meta.json")
        kw: dict[str, Any] = {}
        from labelaudit.io.companions import stored_attributes

        for name, ext in stored_attributes():
            if (d / f"{name}.{ext}").exists():
                kw[name] = _read(d / f"{name}.{ext}")
        ds = Dataset(
            frame=_read(d / "frame.parquet"),
            classes=meta["classes"],
            source=meta["source"],
            class_descriptions=meta["class_descriptions"],
            mapping=meta["mapping"],
            warnings=[Problem(**w) for w in meta.get("warnings", [])],  # shown on the Data page
            **kw,
        )
        ds.__dict__["content_hash"] = (
            content_hash  # trust the folder name; avoids rehashing on every page
        )
        return ds

    def datasets(self) -> list[str]:
        base = self.root / "datasets"
        return (
            sorted(p.name for p in base.iterdir() if (p / "meta.json").exists())
            if base.exists()
            else []
        )


def _read(p: Path, *, mmap: bool = False) -> Any:
    if p.suffix == ".npy":
        return np.load(p, allow_pickle=False, mmap_mode="r" if mmap else None)
    if p.suffix == ".parquet":
        return pd.read_parquet(p)
    if p.suffix == ".json":
        return json.loads(p.read_text(encoding="utf-8"))
    raise ValueError(f"unknown artifact type {p.suffix}")


def _write_atomic(p: Path, value: Any) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if p.suffix == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(value), allow_pickle=False)
        elif p.suffix == ".parquet":
            value.to_parquet(tmp, index=False)
        elif p.suffix == ".json":
            Path(tmp).write_text(json.dumps(value, default=_json_default), encoding="utf-8")
        else:
            raise ValueError(f"unknown artifact type {p.suffix}")
        os.replace(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot store {type(o).__name__} as JSON")

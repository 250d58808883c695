"""Hugging Face ``datasets``: read a ``save_to_disk`` folder (or its Arrow / Parquet files) with its
``ClassLabel`` names, and write the cleaned dataset so ``datasets.load_from_disk`` reads it back with
the label names intact.

A ``DatasetDict`` folder's splits become the ``split`` column (``test`` stays the protected split).
A label column of type ``ClassLabel`` is turned into its names and its name list becomes the class
list (in ClassLabel order, so classes without rows are kept); a plain string column is read as is.
Arrow files are read with ``datasets`` itself (memory-mapped); Parquet files written by ``datasets``
carry the features in their schema metadata, which is read with pyarrow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from labelaudit.dataset import Dataset
from labelaudit.errors import DataError, Problem

#: Files that mark a ``save_to_disk`` folder: a DatasetDict, or a single Dataset.
DICT_MARKER = "dataset_dict.json"
DATASET_MARKERS = ("state.json", "dataset_info.json")


def is_hf_folder(path: str | Path) -> bool:
    """True for a folder written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``."""
    p = Path(path)
    return p.is_dir() and (
        (p / DICT_MARKER).is_file() or all((p / m).is_file() for m in DATASET_MARKERS)
    )


def is_hf_file(path: str | Path) -> bool:
    """True for an ``.arrow`` file, or a Parquet file whose schema carries ``datasets`` features."""
    p = Path(path)
    if p.suffix.lower() == ".arrow":
        return p.is_file()
    if p.suffix.lower() in (".parquet", ".pq") and p.is_file():
        return _parquet_features(p) is not None
    return False


def _parquet_features(p: Path) -> dict[str, Any] | None:
    try:
        import pyarrow.parquet as pq

        meta = pq.read_schema(p).metadata or {}
        raw = meta.get(b"huggingface")
        return json.loads(raw)["info"]["features"] if raw else None
    except Exception:  # not Parquet, or no datasets metadata: an ordinary table
        return None


def _label_names(features: dict[str, Any]) -> dict[str, list[str]]:
    """Column -> ClassLabel names, from a features dict (``Features.to_dict()`` / the JSON metadata)."""
    out = {}
    for col, f in features.items():
        if isinstance(f, dict) and f.get("_type") == "ClassLabel" and f.get("names"):
            out[col] = [str(n) for n in f["names"]]
    return out


def _frames(path: Path) -> tuple[list[tuple[str, pd.DataFrame]], dict[str, list[str]]]:
    """(split name, rows) pairs and the ClassLabel names of every ClassLabel column."""
    try:
        import datasets
    except ImportError:  # pragma: no cover - a dependency
        raise DataError(
            Problem("the datasets package is not installed", "pip install datasets", file=path.name)
        ) from None
    try:
        if path.is_dir():
            obj = datasets.load_from_disk(str(path), keep_in_memory=False)
        elif path.suffix.lower() == ".arrow":
            obj = datasets.Dataset.from_file(str(path))
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            feats = _parquet_features(path) or {}
            return [("", table.to_pandas())], _label_names(feats)
    except (FileNotFoundError, ValueError, OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise DataError(
            Problem(
                f"cannot read it as a Hugging Face dataset ({type(e).__name__}: {str(e)[:200]})",
                "a folder written by save_to_disk, or its .arrow / .parquet files",
                file=path.name,
                fix="save it again with dataset.save_to_disk(path)",
            )
        ) from None
    parts = list(obj.items()) if isinstance(obj, datasets.DatasetDict) else [("", obj)]
    names: dict[str, list[str]] = {}
    out = []
    for split, d in parts:
        for col, n in _label_names(d.features.to_dict()).items():
            if names.setdefault(col, n) != n:
                raise DataError(
                    Problem(
                        f"the splits give column '{col}' different ClassLabel names",
                        "the same ClassLabel in every split",
                        file=path.name,
                        column=col,
                    )
                )
        out.append((split, d.to_pandas()))
    return out, names


def read_hf(
    path: str | Path, *, label_col: str | None = None
) -> tuple[pd.DataFrame, list[str] | None, str | None]:
    """``(rows, class names or None, label column)`` of a Hugging Face dataset on disk.

    ClassLabel columns hold names instead of integers; a ``DatasetDict``'s splits are in ``split``.
    The class list is the ClassLabel names of ``label_col`` (or of the only ClassLabel column).
    """
    p = Path(path)
    parts, names = _frames(p)
    frames = []
    for split, df in parts:
        df = df.copy()
        for col, n in names.items():
            codes = pd.to_numeric(df[col], errors="coerce")
            bad = codes.notna() & ((codes < -1) | (codes >= len(n)))
            if bad.any():
                row = int(bad.to_numpy().nonzero()[0][0]) + 1
                raise DataError(
                    Problem(
                        f"label index {int(codes[bad].iloc[0])} has no ClassLabel name",
                        f"an index in 0..{len(n) - 1}",
                        file=p.name,
                        row=row,
                        column=col,
                    )
                )
            # -1 is datasets' "no label": left empty, which the loader reports as a missing label
            df[col] = [n[int(c)] if pd.notna(c) and c >= 0 else "" for c in codes]
        if split and "split" not in df.columns:
            df["split"] = split
        frames.append(df)
    rows = pd.concat(frames, ignore_index=True)
    chosen: str | None = None
    if label_col is not None and label_col in names:
        chosen = label_col
    elif label_col is None and len(names) == 1:
        chosen = next(iter(names))
    return rows, (names[chosen] if chosen else None), chosen


def load_hf_dataset(path: str | Path, **options: Any) -> Dataset:
    """A Hugging Face dataset on disk as a validated :class:`Dataset` (options as ``load_dataset``).

    >>> ds = load_hf_dataset("banking77_hf")       # a DatasetDict saved with save_to_disk  # doctest: +SKIP
    >>> ds.classes[:2], ds.splits                                                        # doctest: +SKIP
    (['activate_my_card', 'age_limit'], ['train', 'test'])
    """
    from labelaudit.io import load_dataset

    rows, classes, col = read_hf(path, label_col=options.get("label_col"))
    if col is not None and options.get("label_col") is None:
        options["label_col"] = col
    if classes is not None and options.get("classes") is None:
        options["classes"] = classes
    ds = load_dataset(rows, **options)
    ds.source = str(path)
    return ds


def to_hf_dataset(
    clean: pd.DataFrame, classes: list[str], *, label_col: str = "final_label"
) -> Any:
    """The cleaned dataset (:func:`labelaudit.review.export.cleaned_dataset`) as a ``datasets``
    object: a ``DatasetDict`` by split when the data has splits, else a ``Dataset``; ``label_col``
    and ``original_label`` are ``ClassLabel(names=classes)``."""
    import datasets

    df = clean.copy()
    if "removed" in df.columns:
        raise DataError(
            Problem(
                "removed rows are flagged, not dropped",
                "a cleaned dataset without removed rows",
                fix="export with removed='drop' for Hugging Face datasets",
            )
        )
    feats: dict[str, Any] = {}
    for col in df.columns:
        if col in (label_col, "original_label"):
            feats[col] = datasets.ClassLabel(names=list(classes))
            df[col] = df[col].map({c: i for i, c in enumerate(classes)}).astype("int64")
        elif df[col].dtype == object:
            df[col] = df[col].map(
                lambda v: "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
            )
            feats[col] = datasets.Value("string")
    splits = [s for s in df["split"].unique().tolist() if s] if "split" in df else []

    def build(part: pd.DataFrame) -> Any:
        part = part.reset_index(drop=True)
        f = datasets.Features(
            {
                c: feats.get(c)
                or datasets.Dataset.from_pandas(part[[c]], preserve_index=False).features[c]
                for c in part.columns
            }
        )
        return datasets.Dataset.from_pandas(part, features=f, preserve_index=False)

    if splits and (df["split"] != "").all():
        return datasets.DatasetDict({s: build(df[df["split"] == s]) for s in splits})
    return build(df)


def export_hf(ds: Dataset, store: Any, *, out: str | Path, identity: Any = None) -> Path:
    """Write the reviewed dataset to the folder ``out`` with ``save_to_disk`` (removed rows dropped).
    ``datasets.load_from_disk(out)`` reads it back; ``final_label`` is a ClassLabel of ``ds.classes``.
    ``identity``: who exports; a store reviewed with roles needs a lead
    (:func:`labelaudit.review.export.check_export`), checked before anything is written."""
    from labelaudit.review.export import check_export, cleaned_dataset

    check_export(store, ds.content_hash, identity)

    p = Path(out)
    if p.exists() and any(p.iterdir()) and not is_hf_folder(p):
        from labelaudit.errors import UsageError

        raise UsageError(
            f"--out {out}: the folder exists and is not a Hugging Face dataset; choose a new folder"
        )
    clean = cleaned_dataset(ds, store.current(ds.content_hash), removed="drop")
    obj = to_hf_dataset(clean, ds.classes)
    tmp = p.with_name(f".{p.name}.tmp")
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    obj.save_to_disk(str(tmp))
    shutil.rmtree(p, ignore_errors=True)
    tmp.rename(p)  # the old folder or the new one, never half of each
    return p

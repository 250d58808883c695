"""A dataset folder: split files (``train.csv``, ``test.csv``, …), a class list and companions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from labelaudit.dataset import SPLIT
from labelaudit.errors import DataError, Problem, Report
from labelaudit.io.companions import all_companions
from labelaudit.io.companions.classes import read_classes
from labelaudit.io.formats import table_suffixes
from labelaudit.io.tables import read_table

#: Class-list files beside the split files, the first found wins.
CLASS_FILES = ("categories.json", "classes.json")
#: Split files are concatenated in this order (then the others by name).
SPLIT_ORDER = {
    "train": 0,
    "training": 0,
    "validation": 1,
    "valid": 1,
    "dev": 1,
    "val": 1,
    "test": 2,
}
OTHER_SPLITS = 3


def folder_prefixes() -> dict[str, str]:
    """Files in a dataset folder that are companions, not split files: name prefix -> load_dataset
    option (from each companion's ``folder_prefixes``)."""
    return {prefix: c.name for c in all_companions() for prefix in c.folder_prefixes}


def folder_companion_role(p: Path) -> str | None:
    """The load_dataset option a file in a dataset folder feeds (``annotations_simulated.csv`` ->
    annotations)."""
    stem = p.stem.lower()
    for prefix, role in folder_prefixes().items():
        if stem == prefix or stem.startswith(prefix + "_"):
            return role
    return None


def folder_companions(path: Path) -> dict[str, Path]:
    """Companion files found in a dataset folder, by load_dataset option (first match by name
    wins)."""
    out: dict[str, Path] = {}
    for p in sorted(path.iterdir()):
        role = folder_companion_role(p)
        if role and role not in out and p.is_file():
            out[role] = p
    return out


def read_folder(
    path: Path, encoding: str | None, split_col: str | None, rep: Report
) -> tuple[pd.DataFrame, str, list[str] | None, dict[str, str]]:
    """``(rows of every split file, "train.csv+test.csv", class list or None, descriptions)``.

    Without a split column, each file's stem becomes its rows' ``split``. Every split file must
    have the same columns.
    """
    suffixes = set(table_suffixes(in_folders=True))
    files = sorted(
        (
            p
            for p in path.iterdir()
            if p.suffix.lower() in suffixes and p.is_file() and folder_companion_role(p) is None
        ),
        key=lambda p: (SPLIT_ORDER.get(p.stem.lower(), OTHER_SPLITS), p.name),
    )
    if not files:
        raise DataError(
            Problem(
                f"the folder {path} has no data files",
                "train.csv, test.csv or other .csv/.parquet/.jsonl files",
                file=path.name,
            )
        )
    frames = []
    for f in files:
        df = read_table(f, encoding=encoding)
        if split_col is None and SPLIT not in df.columns:
            df[SPLIT] = f.stem
        frames.append(df)
    cols = [set(f.columns) for f in frames]
    if any(c != cols[0] for c in cols):
        raise DataError(
            Problem(
                f"the files in {path.name} have different columns: "
                + "; ".join(f"{f.name}: {sorted(c)}" for f, c in zip(files, cols, strict=True)),
                "the same columns in every split file",
                file=path.name,
            )
        )
    classes = descriptions = None
    for name in CLASS_FILES:
        if (path / name).exists():
            classes, descriptions = read_classes(path / name, rep)
            break
    return (
        pd.concat(frames, ignore_index=True),
        "+".join(f.name for f in files),
        classes,
        descriptions or {},
    )

"""Datasets written by other tools, recognised by their content: a Label Studio JSON export, a
Hugging Face ``save_to_disk`` folder or its Arrow / Parquet files. Each reader turns the source into
rows (and companions such as the annotations of every annotator) and hands them to ``load_dataset``,
so validation stays in one place. The readers live in :mod:`labelaudit.integrations`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from labelaudit.dataset import Dataset

SourceReader = Callable[..., Dataset]


def _labelstudio(path: Path, **options: Any) -> Dataset:
    from labelaudit.integrations.labelstudio.export import load_export_dataset

    options.pop("split_col", None)  # a Label Studio task's split is its data field "split"
    options.pop("encoding", None)  # JSON exports are UTF-8
    return load_export_dataset(path, **options)


def _hf(path: Path, **options: Any) -> Dataset:
    from labelaudit.integrations.hf import load_hf_dataset

    options.pop("encoding", None)
    return load_hf_dataset(path, **options)


def source_reader(path: Path) -> tuple[str, SourceReader] | None:
    """``(name, reader)`` when ``path`` is another tool's dataset, else None (an ordinary table or
    folder)."""
    from labelaudit.integrations.hf import is_hf_file, is_hf_folder
    from labelaudit.integrations.labelstudio.export import looks_like_labelstudio_export

    if path.is_dir():
        return ("Hugging Face datasets folder", _hf) if is_hf_folder(path) else None
    if looks_like_labelstudio_export(path):
        return "Label Studio export", _labelstudio
    if is_hf_file(path):
        return "Hugging Face datasets file", _hf
    return None

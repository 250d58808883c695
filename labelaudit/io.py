"""Reading and validating datasets and their companions.

Validation happens here, once. Everything that goes wrong becomes a :class:`~labelaudit.errors.Problem`
naming file, row and column; all problems of a load are collected and raised together as one
:class:`~labelaudit.errors.DataError`, so a user fixes a file in one pass.
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labelaudit.dataset import ID, LABEL, SPLIT, TEXT, Dataset
from labelaudit.errors import DataError, Problem, Report

TABLE_SUFFIXES = {".csv", ".tsv", ".txt", ".parquet", ".pq", ".jsonl", ".ndjson", ".json"}
TEXT_NAMES = (
    "text",
    "sentence",
    "utterance",
    "query",
    "content",
    "message",
    "review",
    "document",
    "body",
    "question",
    "input",
)
LABEL_NAMES = ("label", "labels", "category", "class", "intent", "target", "gold", "y")
ID_NAMES = ("id", "idx", "guid", "uid", "item_id", "row_id")
SPLIT_NAMES = ("split", "subset", "partition", "fold_name")
PROB_PREFIXES = ("prob_", "pred_prob_", "p_")
#: Probability rows whose sum is off by at most this are renormalised with a warning; beyond it, refused.
PROB_SUM_TOLERANCE = 1e-2
#: Rows listed by name in one message before the rest are counted.
MAX_ROWS_LISTED = 5
#: Reading a table takes several times its size on disk; refuse files that would not fit.
MEMORY_FACTOR = 6.0


# --------------------------------------------------------------------------- memory guard
def available_memory_bytes() -> int:
    """Memory this process can still use: MemAvailable, capped by a cgroup limit if any."""
    override = os.environ.get("LABELAUDIT_MEMORY_LIMIT_BYTES")
    if override:
        return int(override)
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    for cg in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(cg).read_text().strip()
            if raw.isdigit():
                avail = min(avail or int(raw), int(raw))
        except OSError:
            pass
    return avail if avail is not None else 8 * 2**30


def _check_size(path: Path, rep: Report) -> bool:
    size = path.stat().st_size
    if size == 0:
        rep.error(
            "the file is empty (0 bytes)",
            "a header row and at least one data row",
            file=path.name,
            fix="check that the export finished writing",
        )
        return False
    need = size * MEMORY_FACTOR
    avail = available_memory_bytes()
    if need > avail:
        rep.error(
            f"the file is {size / 2**30:.1f} GiB; reading it needs about {need / 2**30:.1f} GiB of memory "
            f"but only {avail / 2**30:.1f} GiB is available",
            "a file that fits in memory",
            file=path.name,
            fix="split the file, sample it, or keep only the id, text and label columns",
        )
        return False
    return True


# --------------------------------------------------------------------------- reading tables
def _decode_problem(path: Path, raw: bytes, err: UnicodeDecodeError) -> Problem:
    line = raw[: err.start].count(b"\n") + 1
    guess = ""
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(raw[:2_000_000]).best()
        if best is not None and best.encoding not in ("utf_8", "ascii"):
            guess = best.encoding
    except Exception:  # the guess is only a hint
        guess = ""
    hint = f" (it looks like {guess})" if guess else ""
    return Problem(
        f"byte 0x{raw[err.start]:02x} at line {line} is not valid UTF-8{hint}",
        "a UTF-8 text file",
        file=path.name,
        fix=f"re-save the file as UTF-8, or pass its encoding (--encoding {guess or 'cp1252'})",
    )


def read_table(
    path: str | Path, *, encoding: str | None = None, what: str = "data"
) -> pd.DataFrame:
    """Read CSV, TSV, Parquet or JSON Lines into a DataFrame of strings and numbers.

    Raises DataError naming the file for unreadable, empty, undecodable or oversized input.
    Every column of text files is read as ``str`` so ids like ``007`` keep their zeros.
    """
    path = Path(path)
    rep = Report()
    if not path.exists():
        raise DataError(
            Problem(f"no such file: {path}", f"a path to the {what} file", file=path.name)
        )
    if path.is_dir():
        raise DataError(Problem(f"{path} is a folder", f"a {what} file", file=path.name))
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(
            Problem(
                f"unsupported file type '{suffix or '(none)'}'",
                "one of .csv, .tsv, .parquet, .jsonl",
                file=path.name,
                fix="export the data as CSV or Parquet",
            )
        )
    if not _check_size(path, rep):
        rep.raise_if_errors()
    try:
        if suffix in (".parquet", ".pq"):
            try:
                df = pd.read_parquet(path)
            except Exception as e:
                raise DataError(
                    Problem(
                        f"cannot read it as Parquet ({type(e).__name__}: {e})",
                        "a valid Parquet file",
                        file=path.name,
                    )
                ) from None
        else:
            raw = path.read_bytes()
            enc = encoding or "utf-8-sig"
            try:
                content = raw.decode(enc)
            except UnicodeDecodeError as e:
                raise DataError(_decode_problem(path, raw, e)) from None
            except LookupError:
                raise DataError(
                    Problem(
                        f"unknown encoding '{encoding}'",
                        "an encoding name such as utf-8 or cp1252",
                        file=path.name,
                    )
                ) from None
            if "\x00" in content[:100_000]:
                raise DataError(
                    Problem(
                        "the file contains NUL bytes: it looks binary",
                        "a text file",
                        file=path.name,
                        fix="export the data as CSV or Parquet",
                    )
                )
            if not content.strip():
                raise DataError(
                    Problem(
                        "the file holds only whitespace",
                        "a header row and data rows",
                        file=path.name,
                    )
                )
            df = _parse_text(path, content, suffix)
    except OSError as e:
        raise DataError(
            Problem(f"cannot read the file ({e.strerror or e})", "a readable file", file=path.name)
        ) from None
    if df.empty:
        raise DataError(
            Problem(
                "the file has a header but no data rows"
                if len(df.columns)
                else "the file has no rows",
                "at least one data row",
                file=path.name,
            )
        )
    dupes = [
        c
        for c in df.columns
        if re.fullmatch(r".+\.\d+", str(c)) and str(c).rsplit(".", 1)[0] in df.columns
    ]
    if dupes:
        raise DataError(
            Problem(
                f"the header repeats column names ({', '.join(sorted({d.rsplit('.', 1)[0] for d in dupes}))})",
                "unique column names",
                file=path.name,
                fix="rename one of the repeated columns",
            )
        )
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _parse_text(path: Path, content: str, suffix: str) -> pd.DataFrame:
    import io

    if suffix in (".jsonl", ".ndjson", ".json"):
        rows = []
        for lineno, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                if suffix == ".json" and lineno == 1:
                    try:
                        data = json.loads(content)
                    except json.JSONDecodeError:
                        raise DataError(
                            Problem(
                                f"not valid JSON ({e.msg})",
                                "JSON Lines: one object per line",
                                file=path.name,
                                row=lineno,
                            )
                        ) from None
                    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
                        return pd.DataFrame(data)
                raise DataError(
                    Problem(
                        f"line {lineno} is not valid JSON ({e.msg})",
                        "one JSON object per line",
                        file=path.name,
                        row=lineno,
                    )
                ) from None
            if not isinstance(obj, dict):
                raise DataError(
                    Problem(
                        f"line {lineno} is a JSON {type(obj).__name__}",
                        "a JSON object per line",
                        file=path.name,
                        row=lineno,
                    )
                )
            rows.append(obj)
        return pd.DataFrame(rows)
    sep = (
        "\t"
        if suffix == ".tsv" or (suffix == ".txt" and "\t" in content.split("\n", 1)[0])
        else ","
    )
    try:
        return pd.read_csv(
            io.StringIO(content),
            sep=sep,
            dtype=str,
            keep_default_na=False,
            na_values=[],
            skip_blank_lines=True,
        )
    except pd.errors.ParserError as e:
        m = re.search(r"line (\d+)", str(e))
        bad_line = int(m.group(1)) if m else None
        raise DataError(
            Problem(
                f"malformed {'TSV' if sep == chr(9) else 'CSV'}: {e}".rstrip(),
                "the same number of fields on every line",
                file=path.name,
                row=(bad_line - 1) if bad_line else None,
                fix="quote fields that contain the separator or a line break",
            )
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(
            Problem("the file has no columns", "a header row", file=path.name)
        ) from None


# --------------------------------------------------------------------------- column mapping
def _pick_column(
    df: pd.DataFrame,
    given: str | None,
    names: Iterable[str],
    role: str,
    flag: str,
    file: str,
    rep: Report,
    required: bool,
) -> tuple[str | None, str]:
    cols = list(df.columns)
    if given is not None:
        if given in cols:
            return given, "given"
        close = [c for c in cols if c.lower() == given.lower()]
        rep.error(
            f"no column named '{given}' for the {role}",
            f"one of the columns {cols}",
            file=file,
            column=given,
            fix=f"use {flag} {close[0]}" if close else f"pass {flag} with one of {cols}",
        )
        return None, ""
    lower = {c.lower(): c for c in cols}
    hits = [lower[n] for n in names if n in lower]
    if len(hits) == 1:
        return hits[0], "detected by name"
    if len(hits) > 1:
        rep.error(
            f"the {role} could be any of the columns {hits}",
            f"one {role} column",
            file=file,
            fix=f"say which with {flag}",
        )
        return None, ""
    if role == "text":
        # No column is named like text: take the string column with the longest texts, if it stands out.
        obj = [c for c in cols if df[c].dtype == object]
        if obj:
            mean_len = {c: df[c].astype(str).str.len().mean() for c in obj}
            ranked = sorted(mean_len, key=lambda c: mean_len[c], reverse=True)
            if len(ranked) == 1 or mean_len[ranked[0]] >= 2 * mean_len[ranked[1]]:
                return ranked[0], "detected as the column with the longest texts"
    if required:
        rep.error(
            f"no {role} column found among {cols}",
            f"a column named like {list(names)[:4]}",
            file=file,
            fix=f"say which column holds the {role} with {flag}",
        )
    return None, ""


def _rows(mask: pd.Series | np.ndarray) -> list[int]:
    return (np.flatnonzero(np.asarray(mask)) + 1).tolist()


def _rows_text(rows: list[int]) -> str:
    """'row 4', or 'rows 2, 5, 9, 11, 12 and 40 more' (1-based data rows)."""
    shown = ", ".join(str(r) for r in rows[:MAX_ROWS_LISTED])
    more = f" and {len(rows) - MAX_ROWS_LISTED} more" if len(rows) > MAX_ROWS_LISTED else ""
    return f"{'row' if len(rows) == 1 else 'rows'} {shown}{more}"


# --------------------------------------------------------------------------- public loader
def load_dataset(
    data: str | Path | pd.DataFrame,
    *,
    text_col: str | None = None,
    label_col: str | None = None,
    id_col: str | None = None,
    split_col: str | None = None,
    probs: str | Path | np.ndarray | None = None,
    annotations: str | Path | pd.DataFrame | None = None,
    dynamics: str | Path | np.ndarray | None = None,
    embeddings: str | Path | np.ndarray | None = None,
    scores: str | Path | pd.DataFrame | None = None,
    classes: list[str] | str | Path | None = None,
    encoding: str | None = None,
) -> Dataset:
    """Load, map and validate a dataset and its companions.

    ``data`` is a CSV/TSV/Parquet/JSONL file, a folder of split files (``train.csv``, ``test.csv``,
    … become the ``split`` column; a ``categories.json`` beside them gives the class list), or a
    DataFrame. Columns are detected by name unless given. Without an id column, ids are the 0-based
    row numbers as strings.

    Companions: ``probs`` (N, K) ``.npy`` or columns named ``prob_<class>``; ``annotations`` long
    format ``item_id, annotator_id, label[, timestamp]``; ``dynamics`` (E, N, K) ``.npy`` or a folder
    / glob of cartography ``dynamics_epoch_*.jsonl``; ``embeddings`` (N, D) ``.npy``; ``scores``
    per-row (``id`` + numeric columns) or per-pair (``train_id, query_id, score``).

    Returns a valid :class:`Dataset` (non-fatal problems in ``.warnings``); raises
    :class:`~labelaudit.errors.DataError` listing every problem otherwise.

    Example:
        >>> ds = load_dataset("sample_data/banking77")          # doctest: +SKIP
        >>> ds.n, ds.k                                           # doctest: +SKIP
        (13083, 77)
    """
    rep = Report()
    mapping: dict[str, str] = {}
    class_list: list[str] | None = None
    descriptions: dict[str, str] = {}

    # ---- the rows
    if isinstance(data, pd.DataFrame):
        if data.empty:
            raise DataError(
                Problem("the DataFrame has no rows", "at least one row", file="<DataFrame>")
            )
        df = data.copy()
        df.columns = [str(c) for c in df.columns]
        file = "<DataFrame>"
        source = "<DataFrame>"
    else:
        path = Path(data)
        source = str(path)
        if path.is_dir():
            df, file, class_list, descriptions = _read_folder(path, encoding, split_col, rep)
            found = folder_companions(path)
            probs = probs if probs is not None else found.get("probs")
            annotations = annotations if annotations is not None else found.get("annotations")
            dynamics = dynamics if dynamics is not None else found.get("dynamics")
            embeddings = embeddings if embeddings is not None else found.get("embeddings")
            scores = scores if scores is not None else found.get("scores")
            if split_col is None and SPLIT in df.columns:
                split_col = SPLIT
        else:
            df = read_table(path, encoding=encoding)
            file = path.name
    rep.raise_if_errors()

    t, how = _pick_column(df, text_col, TEXT_NAMES, "text", "--text-col", file, rep, required=True)
    if t:
        mapping["text"] = f"{t} ({how})"
    lab, how = _pick_column(
        df, label_col, LABEL_NAMES, "label", "--label-col", file, rep, required=True
    )
    if lab:
        mapping["label"] = f"{lab} ({how})"
    i, how = _pick_column(df, id_col, ID_NAMES, "id", "--id-col", file, rep, required=False)
    mapping["id"] = f"{i} ({how})" if i else "row number (no id column)"
    s, how = _pick_column(
        df, split_col, SPLIT_NAMES, "split", "--split-col", file, rep, required=False
    )
    mapping["split"] = f"{s} ({how})" if s else "none"
    if t and lab and t == lab:
        rep.error(
            f"the text and the label are the same column '{t}'", "two different columns", file=file
        )
    rep.raise_if_errors()
    assert t is not None and lab is not None

    # ---- canonical frame
    def as_str(col: str) -> pd.Series:
        sr = df[col]
        missing = sr.isna()
        out = sr.astype(object).where(~missing, "")
        out = out.map(lambda v: v if isinstance(v, str) else _scalar_str(v))
        return out.astype(object)

    text = as_str(t)
    empty = text.str.strip() == ""
    if empty.any():
        rows = _rows(empty)
        rep.error(
            f"{len(rows)} empty text(s) in {_rows_text(rows)}",
            "a non-empty text in every row",
            file=file,
            column=t,
            fix="remove those rows or fill in their text",
        )
    label = as_str(lab).str.strip()
    nolab = label == ""
    if nolab.any():
        rows = _rows(nolab)
        rep.error(
            f"{len(rows)} missing label(s) in {_rows_text(rows)}",
            "a label in every row",
            file=file,
            column=lab,
            fix="label those rows or remove them",
        )
    if i:
        ids = as_str(i).str.strip()
        blank = ids == ""
        if blank.any():
            rows = _rows(blank)
            rep.error(
                f"{len(rows)} missing id(s) in {_rows_text(rows)}",
                "an id in every row",
                file=file,
                column=i,
            )
        dup = ids.duplicated(keep=False) & ~blank
        if dup.any():
            first = ids[dup].iloc[0]
            rows = _rows(ids == first)
            rep.error(
                f"{int(ids[dup].nunique())} id(s) appear more than once, e.g. '{first}' in {_rows_text(rows)}",
                "unique ids",
                file=file,
                column=i,
                fix="deduplicate the rows or pick another id column",
            )
    else:
        ids = pd.Series([str(r) for r in range(len(df))], dtype=object)
    split = as_str(s).str.strip() if s else pd.Series([""] * len(df), dtype=object)

    meta_cols = [c for c in df.columns if c not in {t, lab, i, s} and not _is_prob_col(c)]
    frame = pd.DataFrame(
        {
            ID: ids.to_numpy(),
            TEXT: text.to_numpy(),
            LABEL: label.to_numpy(),
            SPLIT: split.to_numpy(),
        }
    )
    for c in meta_cols:
        name = c if c not in (ID, TEXT, LABEL, SPLIT) else f"meta_{c}"
        frame[name] = df[c].to_numpy()

    # ---- classes
    if classes is not None:
        class_list, descriptions = _read_classes(classes, rep)
    present = sorted(set(label[~nolab].tolist()))
    if class_list is None:
        class_list = present
    else:
        unknown = sorted(set(present) - set(class_list))
        if unknown:
            rows = _rows(label.isin(unknown))
            rep.error(
                f"label(s) {unknown[:5]} in {_rows_text(rows)} are not in the class list",
                f"one of the {len(class_list)} listed classes",
                file=file,
                column=lab,
            )
    if len(set(present)) < 2 and not nolab.all():
        rep.error(
            f"every row has the same label '{present[0]}'" if present else "no labels",
            "at least two classes",
            file=file,
            column=lab,
            fix="label errors need at least two classes to tell apart",
        )
    rep.raise_if_errors()

    n = len(frame)
    ds = Dataset(
        frame=frame,
        classes=list(class_list),
        source=source,
        class_descriptions=descriptions,
        mapping=mapping,
    )

    # ---- companions
    prob_cols = [c for c in df.columns if _is_prob_col(c)]
    if probs is None and prob_cols:
        ds.pred_probs = _probs_from_columns(df, prob_cols, ds.classes, file, rep)
    elif probs is not None:
        ds.pred_probs = _read_probs(probs, n, ds.k, rep)
    if annotations is not None:
        ds.annotations = _read_annotations(annotations, ds, rep)
    if dynamics is not None:
        ds.dynamics = _read_dynamics(dynamics, ds, rep)
    if embeddings is not None:
        ds.embeddings = _read_embeddings(embeddings, n, rep)
    if scores is not None:
        ds.row_scores, ds.pair_scores = _read_scores(scores, ds, rep)
    rep.raise_if_errors()
    ds.warnings = rep.warnings
    return ds


def _scalar_str(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _is_prob_col(c: str) -> bool:
    return any(str(c).startswith(p) for p in PROB_PREFIXES[:2])


#: Files in a dataset folder that are companions, not split files: name prefix -> load_dataset option.
FOLDER_COMPANIONS = {
    "annotations": "annotations",
    "pred_probs": "probs",
    "embeddings": "embeddings",
    "dynamics": "dynamics",
    "scores": "scores",
    "influence": "scores",
}


def folder_companion_role(p: Path) -> str | None:
    """The load_dataset option a file in a dataset folder feeds (``annotations_simulated.csv`` -> annotations)."""
    stem = p.stem.lower()
    for prefix, role in FOLDER_COMPANIONS.items():
        if stem == prefix or stem.startswith(prefix + "_"):
            return role
    return None


def folder_companions(path: Path) -> dict[str, Path]:
    """Companion files found in a dataset folder, by load_dataset option (first match by name wins)."""
    out: dict[str, Path] = {}
    for p in sorted(path.iterdir()):
        role = folder_companion_role(p)
        if role and role not in out and p.is_file():
            out[role] = p
    return out


def _read_folder(
    path: Path, encoding: str | None, split_col: str | None, rep: Report
) -> tuple[pd.DataFrame, str, list[str] | None, dict[str, str]]:
    order = {"train": 0, "training": 0, "validation": 1, "valid": 1, "dev": 1, "val": 1, "test": 2}
    files = sorted(
        (
            p
            for p in path.iterdir()
            if p.suffix.lower() in TABLE_SUFFIXES - {".json"}
            and p.is_file()
            and folder_companion_role(p) is None
        ),
        key=lambda p: (order.get(p.stem.lower(), 3), p.name),
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
    for name in ("categories.json", "classes.json"):
        if (path / name).exists():
            classes, descriptions = _read_classes(path / name, rep)
            break
    return (
        pd.concat(frames, ignore_index=True),
        "+".join(f.name for f in files),
        classes,
        descriptions or {},
    )


def _read_classes(
    classes: list[str] | str | Path, rep: Report
) -> tuple[list[str] | None, dict[str, str]]:
    """A class list: a Python list, or a JSON file with a list of names or a {name: description} object."""
    if isinstance(classes, list):
        return [str(c) for c in classes], {}
    p = Path(classes)
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        rep.error(
            f"cannot read the class list ({e})",
            "a JSON list of class names or {name: description}",
            file=p.name,
        )
        return None, {}
    if isinstance(obj, dict):
        return [str(c) for c in obj], {str(k): str(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [str(c) for c in obj], {}
    rep.error(
        f"a JSON {type(obj).__name__}",
        "a JSON list of class names or {name: description}",
        file=p.name,
    )
    return None, {}


def _check_prob_matrix(p: np.ndarray, n: int, k: int, file: str, rep: Report) -> np.ndarray | None:
    if p.ndim != 2:
        rep.error(
            f"an array of shape {p.shape}", f"a 2-D array (N={n} rows, K={k} classes)", file=file
        )
        return None
    if p.shape[0] != n:
        rep.error(
            f"{p.shape[0]} rows of probabilities for {n} dataset rows",
            f"{n} rows, one per dataset row, in the same order",
            file=file,
        )
        return None
    if p.shape[1] != k:
        rep.error(
            f"{p.shape[1]} columns of probabilities",
            f"{k} columns, one per class in class order",
            file=file,
            fix="pass the class list (--classes) if some classes have no rows",
        )
        return None
    p = p.astype(np.float64)
    bad = ~np.isfinite(p).all(axis=1)
    if bad.any():
        rows = _rows(bad)
        rep.error(
            f"NaN or infinite probabilities in {_rows_text(rows)}",
            "finite numbers in [0, 1]",
            file=file,
        )
        return None
    neg = (p < 0).any(axis=1)
    if neg.any():
        rows = _rows(neg)
        rep.error(
            f"negative probabilities in {_rows_text(rows)} (smallest {p.min():.3g})",
            "probabilities in [0, 1]",
            file=file,
            fix="pass softmax probabilities, not logits",
        )
        return None
    sums = p.sum(axis=1)
    off = np.abs(sums - 1)
    far = off > PROB_SUM_TOLERANCE
    if far.any():
        rows = _rows(far)
        rep.error(
            f"probability {_rows_text(rows)} sum to {sums[far][0]:.4g}, not 1",
            f"each row summing to 1 (within {PROB_SUM_TOLERANCE})",
            file=file,
            fix="pass softmax probabilities, not logits or scores",
        )
        return None
    if (off > 1e-6).any():
        rep.warn(
            f"{int((off > 1e-6).sum())} probability rows sum to 1 only within {off.max():.2g}; renormalised",
            "",
            file=file,
        )
        p = p / sums[:, None]
    return p


def _read_probs(probs: str | Path | np.ndarray, n: int, k: int, rep: Report) -> np.ndarray | None:
    if isinstance(probs, np.ndarray):
        return _check_prob_matrix(probs, n, k, "<pred_probs>", rep)
    p = Path(probs)
    if p.suffix.lower() == ".npy":
        arr = _load_npy(p, rep)
        return None if arr is None else _check_prob_matrix(arr, n, k, p.name, rep)
    df = read_table(p, what="probabilities")
    cols = [c for c in df.columns if c not in ID_NAMES]
    try:
        arr = df[cols].apply(pd.to_numeric, errors="raise").to_numpy()
    except (ValueError, TypeError) as e:
        rep.error(f"non-numeric probability values ({e})", "numbers in [0, 1]", file=p.name)
        return None
    return _check_prob_matrix(arr, n, k, p.name, rep)


def _probs_from_columns(
    df: pd.DataFrame, cols: list[str], classes: list[str], file: str, rep: Report
) -> np.ndarray | None:
    by_class = {}
    for c in cols:
        name = next(c[len(pfx) :] for pfx in PROB_PREFIXES if c.startswith(pfx))
        by_class[name] = c
    missing = [c for c in classes if c not in by_class]
    extra = [c for c in by_class if c not in classes]
    if missing or extra:
        rep.error(
            f"probability columns do not match the classes (missing {missing[:5]}, unknown {extra[:5]})",
            "one prob_<class> column per class",
            file=file,
        )
        return None
    arr = df[[by_class[c] for c in classes]].apply(pd.to_numeric, errors="coerce").to_numpy()
    return _check_prob_matrix(arr, len(df), len(classes), file, rep)


def _load_npy(p: Path, rep: Report) -> np.ndarray | None:
    if not p.exists():
        rep.error(f"no such file: {p}", "a .npy file", file=p.name)
        return None
    try:
        return np.load(p, allow_pickle=False)  # never unpickle user files
    except ValueError as e:
        rep.error(
            f"cannot read it as a plain NumPy array ({e})",
            "a numeric .npy file saved without pickling",
            file=p.name,
        )
    except OSError as e:
        rep.error(f"cannot read it ({e})", "a .npy file", file=p.name)
    return None


def _read_embeddings(emb: str | Path | np.ndarray, n: int, rep: Report) -> np.ndarray | None:
    file = "<embeddings>" if isinstance(emb, np.ndarray) else Path(emb).name
    arr = emb if isinstance(emb, np.ndarray) else _load_npy(Path(emb), rep)
    if arr is None:
        return None
    if arr.ndim != 2 or arr.shape[0] != n:
        rep.error(
            f"an array of shape {arr.shape}",
            f"shape ({n}, D): one embedding per dataset row",
            file=file,
        )
        return None
    if arr.dtype.kind not in "fiu" or not np.isfinite(arr).all():
        rep.error("non-numeric, NaN or infinite values", "finite numbers", file=file)
        return None
    return arr.astype(np.float32)


def _read_annotations(
    ann: str | Path | pd.DataFrame, ds: Dataset, rep: Report
) -> pd.DataFrame | None:
    if isinstance(ann, pd.DataFrame):
        df, file = ann.copy(), "<annotations>"
        df.columns = [str(c) for c in df.columns]
    else:
        df, file = read_table(ann, what="annotations"), Path(ann).name
    need = ["item_id", "annotator_id", "label"]
    alias = {
        "item": "item_id",
        "task": "item_id",
        "id": "item_id",
        "annotator": "annotator_id",
        "worker": "annotator_id",
        "worker_id": "annotator_id",
        "rater": "annotator_id",
        "rater_id": "annotator_id",
    }
    df = df.rename(
        columns={
            c: alias[c.lower()]
            for c in df.columns
            if c.lower() in alias and alias[c.lower()] not in df.columns
        }
    )
    missing = [c for c in need if c not in df.columns]
    if missing:
        rep.error(
            f"missing column(s) {missing} among {list(df.columns)}",
            "columns item_id, annotator_id, label[, timestamp]",
            file=file,
        )
        return None
    out = pd.DataFrame(
        {c: df[c].map(lambda v: "" if pd.isna(v) else _scalar_str(v)).str.strip() for c in need}
    )
    if "timestamp" in df.columns:
        ts = pd.to_datetime(df["timestamp"], errors="coerce", utc=True)
        bad = ts.isna() & df["timestamp"].notna() & (df["timestamp"].astype(str).str.strip() != "")
        if bad.any():
            rows = _rows(bad)
            rep.error(
                f"unreadable timestamps in {_rows_text(rows)}, e.g. {df['timestamp'][bad].iloc[0]!r}",
                "ISO 8601 times such as 2024-05-01T12:00:00Z",
                file=file,
                column="timestamp",
            )
        out["timestamp"] = ts
    for c in need:
        blank = out[c] == ""
        if blank.any():
            rows = _rows(blank)
            rep.error(
                f"{len(rows)} empty value(s) in {_rows_text(rows)}",
                f"a {c} in every row",
                file=file,
                column=c,
            )
    unknown_items = ~out["item_id"].isin(ds.id_to_row) & (out["item_id"] != "")
    if unknown_items.any():
        rows = _rows(unknown_items)
        rep.error(
            f"{len(rows)} row(s) name items that are not in the dataset, e.g. '{out['item_id'][unknown_items].iloc[0]}' "
            f"in {_rows_text(rows)}",
            "item_id values that are ids of the dataset",
            file=file,
            column="item_id",
            fix="check that the dataset's id column is mapped (--id-col) and matches",
        )
    unknown_labels = ~out["label"].isin(ds.classes) & (out["label"] != "")
    if unknown_labels.any():
        rows = _rows(unknown_labels)
        vals = sorted(out["label"][unknown_labels].unique().tolist())
        rep.error(
            f"label(s) {vals[:5]} in {_rows_text(rows)} are not classes of the dataset",
            f"one of the dataset's {ds.k} classes",
            file=file,
            column="label",
        )
    dup = out.duplicated(subset=["item_id", "annotator_id"], keep=False)
    if dup.any() and "timestamp" not in out.columns:
        rep.warn(
            f"{int(dup.sum())} rows repeat an (item, annotator) pair; each repeat counts as a separate rating",
            "",
            file=file,
        )
    return out


def _read_dynamics(dyn: str | Path | np.ndarray, ds: Dataset, rep: Report) -> np.ndarray | None:
    arr: np.ndarray | None
    if isinstance(dyn, np.ndarray):
        arr, file = dyn, "<dynamics>"
    else:
        p = Path(dyn)
        file = p.name
        arr = _load_npy(p, rep) if p.suffix.lower() == ".npy" else _read_cartography(p, ds, rep)
        if arr is None:
            return None
    if arr.ndim != 3 or arr.shape[1] != ds.n or arr.shape[2] != ds.k:
        rep.error(
            f"an array of shape {arr.shape}",
            f"shape (E, {ds.n}, {ds.k}): epochs x rows x classes",
            file=file,
        )
        return None
    if arr.shape[0] < 2:
        rep.error(f"{arr.shape[0]} epoch(s) of logits", "at least 2 epochs", file=file)
        return None
    if not np.isfinite(arr).all():
        rep.error("NaN or infinite logits", "finite numbers", file=file)
        return None
    return arr.astype(np.float32)


def _read_cartography(p: Path, ds: Dataset, rep: Report) -> np.ndarray | None:
    """allenai/cartography's training_dynamics/dynamics_epoch_{e}.jsonl: guid, logits_epoch_{e}, gold."""
    pattern = str(p / "dynamics_epoch_*.jsonl") if p.is_dir() else str(p)
    files = sorted(
        glob.glob(pattern), key=lambda f: int(re.findall(r"(\d+)", Path(f).stem)[-1] or 0)
    )
    if not files:
        rep.error(
            f"no dynamics_epoch_*.jsonl files at {p}",
            "an (E, N, K) .npy or cartography dynamics files",
            file=p.name,
        )
        return None
    out = np.full((len(files), ds.n, ds.k), np.nan, dtype=np.float32)
    for e, f in enumerate(files):
        tab = read_table(f, what="training dynamics")
        key = next((c for c in tab.columns if c.startswith("logits_epoch")), None)
        if "guid" not in tab.columns or key is None:
            rep.error(
                f"columns {list(tab.columns)}", "guid and logits_epoch_<e>", file=Path(f).name
            )
            return None
        rows = tab["guid"].map(lambda g: ds.id_to_row.get(_scalar_str(g)))
        if rows.isna().any():
            bad = _rows(rows.isna())
            rep.error(
                f"guids not in the dataset in {_rows_text(bad)}",
                "guids that are dataset ids",
                file=Path(f).name,
                column="guid",
            )
            return None
        logits = np.array(tab[key].tolist(), dtype=np.float32)
        if logits.ndim != 2 or logits.shape[1] != ds.k:
            rep.error(
                f"logits of shape {logits.shape}",
                f"{ds.k} logits per row",
                file=Path(f).name,
                column=key,
            )
            return None
        out[e, rows.astype(int).to_numpy()] = logits
    if np.isnan(out).any():
        missing = int(np.isnan(out[:, :, 0]).any(axis=0).sum())
        rep.error(
            f"{missing} dataset rows have no logits in some epoch",
            "every row in every epoch file",
            file=p.name,
        )
        return None
    return out


def _read_scores(
    scores: str | Path | pd.DataFrame, ds: Dataset, rep: Report
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    if isinstance(scores, pd.DataFrame):
        df, file = scores.copy(), "<scores>"
    else:
        df, file = read_table(scores, what="scores"), Path(scores).name
    cols = set(df.columns)
    if {"train_id", "query_id", "score"} <= cols:
        out = pd.DataFrame(
            {
                "train_id": df["train_id"].map(_scalar_str),
                "query_id": df["query_id"].map(_scalar_str),
                "score": pd.to_numeric(df["score"], errors="coerce"),
            }
        )
        if out["score"].isna().any():
            rows = _rows(out["score"].isna())
            rep.error(
                f"non-numeric scores in {_rows_text(rows)}", "numbers", file=file, column="score"
            )
        unknown = ~out["train_id"].isin(ds.id_to_row)
        if unknown.any():
            rows = _rows(unknown)
            rep.error(
                f"train_id values not in the dataset in {_rows_text(rows)}",
                "dataset ids",
                file=file,
                column="train_id",
            )
        return None, out
    if ID not in cols:
        rep.error(
            f"columns {sorted(cols)}",
            "per-row scores with an 'id' column, or pairs with train_id, query_id, score",
            file=file,
        )
        return None, None
    out = df.copy()
    out[ID] = out[ID].map(_scalar_str)
    for c in out.columns:
        if c == ID:
            continue
        num = pd.to_numeric(out[c], errors="coerce")
        if num.isna().any():
            rows = _rows(num.isna())
            rep.error(f"non-numeric values in {_rows_text(rows)}", "numbers", file=file, column=c)
        out[c] = num
    unknown = ~out[ID].isin(ds.id_to_row)
    if unknown.any():
        rows = _rows(unknown)
        rep.error(
            f"ids not in the dataset in {_rows_text(rows)}", "dataset ids", file=file, column=ID
        )
    if out[ID].duplicated().any():
        rep.error("ids repeated", "one row per id", file=file, column=ID)
    return out, None


def validate(
    data: str | Path | pd.DataFrame, **options: Any
) -> tuple[Dataset | None, list[Problem]]:
    """Load ``data`` like :func:`load_dataset` but return ``(dataset or None, problems)`` instead of raising."""
    try:
        ds = load_dataset(data, **options)
    except DataError as e:
        return None, e.problems
    return ds, list(ds.warnings)

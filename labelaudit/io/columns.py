"""Column guessing: which source column holds the text, the label, the id and the split."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from labelaudit.errors import Report

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
#: Prefixes of per-class probability columns in the data (``prob_card_arrival``).
PROB_PREFIXES = ("prob_", "pred_prob_", "p_")
#: A guessed text column must have texts at least this many times longer than the runner-up.
LONGEST_TEXT_MARGIN = 2


def is_prob_column(c: str) -> bool:
    """True for ``prob_<class>`` and ``pred_prob_<class>`` columns (``p_`` alone is too common)."""
    return any(str(c).startswith(p) for p in PROB_PREFIXES[:2])


@dataclass
class ColumnMapping:
    """Source column of each role (None when absent), and how each was chosen, for the user."""

    text: str | None = None
    label: str | None = None
    id: str | None = None
    split: str | None = None
    how: dict[str, str] = field(default_factory=dict)


def map_columns(
    df: pd.DataFrame,
    *,
    text_col: str | None,
    label_col: str | None,
    id_col: str | None,
    split_col: str | None,
    file: str,
    rep: Report,
) -> ColumnMapping:
    """Choose the text, label, id and split columns; given names win, else detected by name.

    Errors (a given column that does not exist, ambiguous or missing required columns, text and
    label the same column) go to ``rep``. ``how`` says per role what was chosen, for example
    ``{"text": "utterance (detected by name)", "id": "row number (no id column)", ...}``.
    """
    m = ColumnMapping()
    m.text, how = pick_column(df, text_col, TEXT_NAMES, "text", "--text-col", file, rep, True)
    if m.text:
        m.how["text"] = f"{m.text} ({how})"
    m.label, how = pick_column(df, label_col, LABEL_NAMES, "label", "--label-col", file, rep, True)
    if m.label:
        m.how["label"] = f"{m.label} ({how})"
    m.id, how = pick_column(df, id_col, ID_NAMES, "id", "--id-col", file, rep, False)
    m.how["id"] = f"{m.id} ({how})" if m.id else "row number (no id column)"
    m.split, how = pick_column(df, split_col, SPLIT_NAMES, "split", "--split-col", file, rep, False)
    m.how["split"] = f"{m.split} ({how})" if m.split else "none"
    if m.text and m.label and m.text == m.label:
        rep.error(
            f"the text and the label are the same column '{m.text}'",
            "two different columns",
            file=file,
        )
    return m


def pick_column(
    df: pd.DataFrame,
    given: str | None,
    names: Iterable[str],
    role: str,
    flag: str,
    file: str,
    rep: Report,
    required: bool,
) -> tuple[str | None, str]:
    """The column for ``role`` and how it was chosen ("given", "detected by name", …), or
    ``(None, "")``."""
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
        # No column is named like text: take the string column with the longest texts, if it stands
        # out.
        obj = [c for c in cols if df[c].dtype == object]
        if obj:
            mean_len = {c: df[c].astype(str).str.len().mean() for c in obj}
            ranked = sorted(mean_len, key=lambda c: mean_len[c], reverse=True)
            if len(ranked) == 1 or mean_len[ranked[0]] >= LONGEST_TEXT_MARGIN * mean_len[ranked[1]]:
                return ranked[0], "detected as the column with the longest texts"
    if required:
        rep.error(
            f"no {role} column found among {cols}",
            f"a column named like {list(names)[:4]}",
            file=file,
            fix=f"say which column holds the {role} with {flag}",
        )
    return None, ""

"""The tables, filters and matrices the dashboard pages show, as plain functions (no Streamlit).

The pages only call these and draw the result, so a notebook or a script gets exactly what a page
shows. Every function takes plain frames and arrays (a scan table, the detection details, the
dataset's texts and classes) and returns a new frame or array; nothing is cached or stored here.

Label issues
    :func:`issue_table` (one ranked row per dataset row), :func:`filter_issues`,
    :func:`issues_queue_source` (what "Send to review" calls the queue), :func:`confusion_counts`,
    :func:`confusion_cells`, :func:`disagreements`, :func:`most_confused_pairs`, :class:`CellChoice`
    (box selection or pick, whichever came last), :func:`cell_rows`, :func:`evidence_lines`,
    :func:`issues_per_class`.

Annotators
    :func:`truth_methods_for` (the methods a dataset can feed), :func:`tie_breaks_for`,
    :func:`kappa_matrix` (pairwise kappa, overlap and raw agreement), :func:`items_with_text`,
    :func:`disputed_order`.

Example:
    >>> import labelaudit as la
    >>> from labelaudit.tables import issue_table, filter_issues
    >>> res = la.scan(ds)                                                        # doctest: +SKIP
    >>> table = issue_table(res.table, ds.texts, res.detection.details, ds.classes)  # doctest: +SKIP
    >>> filter_issues(table, classes=["refund"]).head()                          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


# --------------------------------------------------------------------------- search
def text_matches(texts: pd.Series, query: str) -> np.ndarray:
    """bool (N,): the texts containing ``query`` (case-insensitive, a plain substring, never a
    regular expression: the query is typed by a user).

    >>> text_matches(pd.Series(["Refund please", "top up", None]), "refund").tolist()
    [True, False, False]
    """
    q = str(query).strip()
    if not q:
        return np.zeros(len(texts), dtype=bool)
    return pd.Series(texts).str.contains(q, case=False, regex=False, na=False).to_numpy(dtype=bool)


# --------------------------------------------------------------------------- label issues
#: Lead columns of :func:`issue_table`, in the order the Label issues page shows them.
ISSUE_TABLE_LEAD = [
    "id",
    "text",
    "given label",
    "suggestion 1",
    "p 1",
    "suggestion 2",
    "p 2",
    "suggestion 3",
    "p 3",
    "combined score",
    "needs review",
    "flags",
]
#: Columns of :func:`cell_rows`' listing on the Label issues page.
CELL_ROW_COLUMNS = [
    "id",
    "text",
    "given label",
    "suggestion 1",
    "p 1",
    "combined score",
    "needs review",
]


def ids_present(row_ids: pd.Series, ids: Sequence[str]) -> list[str]:
    """The ``ids`` (in their order, repeats kept) that are among ``row_ids`` (a table's id column
    as strings), by one vectorised ``isin``: no Python set of every row id per page view (0.4 s at
    1M rows).

    >>> ids_present(pd.Series(["a", "b", "c"]), ["c", "x", "a"])
    ['c', 'a']
    """
    ids = [str(i) for i in ids]
    if not ids:
        return []
    found = set(row_ids[row_ids.isin(ids)].tolist())
    return [i for i in ids if i in found]


def texts_of_ids(row_ids: pd.Series, texts: pd.Series, ids: Sequence[str]) -> dict[str, str]:
    """{id: text} for the ``ids`` among ``row_ids`` (aligned with ``texts`` by position), without a
    dict of every row (0.75 s at 1M rows): the rows are found by one ``isin``.

    >>> texts_of_ids(pd.Series(["a", "b"]), pd.Series(["x", "y"]), ["b", "z"])
    {'b': 'y'}
    """
    ids = list(dict.fromkeys(str(i) for i in ids))
    if not ids:
        return {}
    hit = np.flatnonzero(row_ids.isin(ids).to_numpy())
    return dict(zip(row_ids.iloc[hit].tolist(), texts.iloc[hit].astype(str).tolist(), strict=True))


def top_positions(score: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest ``score`` values, in increasing position order: the same
    rows as ``np.sort(np.argsort(-score, kind="stable")[:k])`` (ties at the cut go to the earlier
    rows; NaN last), by a partition in O(N) instead of a sort (0.2 s at 1M rows).

    >>> top_positions(np.array([0.1, 0.9, 0.5, 0.9, 0.5]), 3).tolist()
    [1, 2, 3]
    """
    score = np.asarray(score, dtype=np.float64)
    n = len(score)
    if k >= n:
        return np.arange(n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    neg = -score
    kth = np.partition(neg, k - 1)[k - 1]
    if np.isnan(kth):  # fewer than k numbers: the sort's order of the NaNs
        return np.sort(np.argsort(neg, kind="stable")[:k])
    above = np.flatnonzero(neg < kth)
    ties = np.flatnonzero(neg == kth)[: k - len(above)]
    return np.sort(np.concatenate([above, ties]))


def detector_names(scan_table: pd.DataFrame) -> list[str]:
    """Detectors present in a scan table, from its ``score_<name>`` columns, in column order.

    >>> detector_names(pd.DataFrame(columns=["id", "score_knn", "score_cl", "label_issue_score"]))
    ['knn', 'cl']
    """
    return [c.removeprefix("score_") for c in scan_table.columns if c.startswith("score_")]


def issue_table(
    scan_table: pd.DataFrame,
    texts: Sequence[str],
    details: Mapping[str, Any],
    classes: Sequence[str],
) -> pd.DataFrame:
    """One row per dataset row, ranked by combined score (most suspicious first; ties by row).

    ``scan_table``: the scan's N-row table (``id``, ``given_label``, ``label_issue_score`` in [0, 1],
    ``is_label_issue``, ``n_flags``, ``score_<detector>``, optionally ``cluster``). ``texts``: N
    texts in dataset order. ``details``: the detection details (``top3_labels`` / ``top3_probs``
    (N, <=3) class indices and probabilities, ``flags`` {detector: N booleans}); missing parts give
    empty suggestions and no ``flagged_by``. ``classes``: the K class names.

    Columns: ``row`` (position in the dataset), :data:`ISSUE_TABLE_LEAD`, one score column per
    detector (named after it), ``cluster`` (when the scan has clusters) and ``flagged_by`` (list of
    detector names).

    >>> scan = pd.DataFrame({"id": ["a", "b"], "given_label": ["x", "y"], "label_issue_score": [0.1, 0.8],
    ...                      "is_label_issue": [False, True], "n_flags": [0, 2], "score_knn": [0.1, 0.9]})
    >>> t = issue_table(scan, ["t0", "t1"], {"top3_labels": [[0], [0]], "top3_probs": [[0.9], [0.6]]}, ["x", "y"])
    >>> t[["id", "suggestion 1", "combined score"]].values.tolist()
    [['b', 'x', 0.8], ['a', 'x', 0.1]]
    """
    n = len(scan_table)
    names = np.asarray(classes, dtype=object)
    top_labels = np.asarray(details.get("top3_labels", np.zeros((n, 0))), dtype=np.int64)
    top_probs = np.asarray(details.get("top3_probs", np.zeros((n, 0))), dtype=np.float64)
    out = pd.DataFrame(
        {
            "row": np.arange(n),
            "id": scan_table["id"].astype(str).to_numpy(),
            "text": list(texts),
            "given label": scan_table["given_label"].astype(str).to_numpy(),
        }
    )
    for j in range(3):
        has = top_labels.ndim == 2 and top_labels.shape[1] > j
        out[f"suggestion {j + 1}"] = names[top_labels[:, j]] if has else ""
        out[f"p {j + 1}"] = top_probs[:, j] if has else np.nan
    out["combined score"] = scan_table["label_issue_score"].to_numpy()
    out["needs review"] = scan_table["is_label_issue"].to_numpy(dtype=bool)
    out["flags"] = scan_table["n_flags"].to_numpy()
    dets = detector_names(scan_table)
    for d in dets:
        out[d] = scan_table[f"score_{d}"].to_numpy()
    if "cluster" in scan_table:
        out["cluster"] = scan_table["cluster"].to_numpy()
    flags = details.get("flags", {})
    flag_arrays = {d: np.asarray(flags[d], dtype=bool) for d in dets if d in flags}
    out["flagged_by"] = [[d for d, f in flag_arrays.items() if f[r]] for r in range(n)]
    return out.sort_values(
        ["combined score", "row"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)


def filter_issues(
    table: pd.DataFrame,
    *,
    classes: Sequence[str] | None = None,
    clusters: Sequence[int] | None = None,
    detectors: Sequence[str] | None = None,
    only_flagged: bool = True,
) -> pd.DataFrame:
    """Rows of :func:`issue_table` matching every filter, order kept (empty or None = no filter).

    ``classes``: given labels kept; ``clusters``: cluster numbers kept (ignored without a cluster
    column); ``detectors``: kept when any of them flagged the row; ``only_flagged``: only rows
    needing review.

    >>> t = pd.DataFrame({"given label": ["x", "y"], "needs review": [True, False], "flagged_by": [["knn"], []]})
    >>> len(filter_issues(t)), len(filter_issues(t, only_flagged=False)), len(filter_issues(t, detectors=["cl"]))
    (1, 2, 0)
    """
    keep = np.ones(len(table), dtype=bool)
    if only_flagged:
        keep &= table["needs review"].to_numpy(dtype=bool)
    if classes:
        keep &= table["given label"].isin(classes).to_numpy()
    if clusters and "cluster" in table:
        keep &= table["cluster"].isin(clusters).to_numpy()
    if detectors:
        wanted = set(detectors)
        keep &= np.fromiter(
            (bool(wanted.intersection(f)) for f in table["flagged_by"]),
            dtype=bool,
            count=len(table),
        )
    return table[keep]


def issues_queue_source(
    *,
    classes: Sequence[str] = (),
    clusters: Sequence[int] = (),
    detectors: Sequence[str] = (),
    only_flagged: bool = True,
) -> str:
    """The review queue's name for rows chosen with :func:`filter_issues` and these filters.

    >>> issues_queue_source(classes=["refund"], detectors=["knn"])
    'Label issues: classes refund; flagged by knn; needing review'
    """
    parts = [
        f"classes {', '.join(classes)}" if classes else "",
        f"clusters {list(clusters)}" if clusters else "",
        f"flagged by {', '.join(detectors)}" if detectors else "",
        "needing review" if only_flagged else "all rows",
    ]
    return "Label issues: " + "; ".join(p for p in parts if p)


def confusion_counts(given: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """int64 (K, K) counts: row = given label, column = predicted label (class indices in [0, K)).

    >>> confusion_counts(np.array([0, 0, 1]), np.array([0, 1, 1]), 2).tolist()
    [[1, 1], [0, 1]]
    """
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(given), np.asarray(predicted)), 1)
    return m


def confusion_cells(counts: np.ndarray) -> np.ndarray:
    """(given, predicted) of every non-empty cell of ``counts``, int64 (M, 2), row-major order
    (the order :func:`labelaudit.plots.build_confusion_figure` draws them in).

    >>> confusion_cells(np.array([[1, 0], [2, 3]])).tolist()
    [[0, 0], [1, 0], [1, 1]]
    """
    return np.argwhere(np.asarray(counts) > 0).astype(np.int64)


def disagreements(counts: np.ndarray) -> list[tuple[int, int, int]]:
    """Off-diagonal non-empty cells as (given, predicted, rows), most rows first (ties row-major).

    >>> disagreements(np.array([[5, 1], [3, 2]]))
    [(1, 0, 3), (0, 1, 1)]
    """
    m = np.asarray(counts)
    cells = [(int(g), int(p), int(m[g, p])) for g, p in zip(*np.nonzero(m), strict=True) if g != p]
    return sorted(cells, key=lambda c: -c[2])


def most_confused_pairs(
    counts: np.ndarray, classes: Sequence[str], *, top: int = 20
) -> pd.DataFrame:
    """The ``top`` largest disagreements as a table: ``given``, ``predicted``, ``rows``, and
    ``share of given`` (rows / rows of the given class, in [0, 1]); most rows first. Readable with
    many classes, where a K x K matrix's axis labels overlap.

    >>> most_confused_pairs(np.array([[5, 1], [3, 2]]), ["a", "b"])["rows"].tolist()
    [3, 1]
    """
    m = np.asarray(counts)
    per_given = m.sum(axis=1)
    rows = [
        {
            "given": classes[g],
            "predicted": classes[p],
            "rows": n,
            "share of given": n / max(int(per_given[g]), 1),
        }
        for g, p, n in disagreements(m)[:top]
    ]
    return pd.DataFrame(rows, columns=["given", "predicted", "rows", "share of given"])


@dataclass(frozen=True)
class CellChoice:
    """Which confusion cells the Label issues page lists: those of a box selection on the chart or
    the one picked from the list, whichever the user changed last (neither silently overrides the
    other). Immutable: :meth:`update` returns the next choice from what each widget now holds.

    >>> c = CellChoice().update(chart=[(1, 0)], pick=None)
    >>> c.source, c.cells
    ('chart', [(1, 0)])
    >>> c = c.update(chart=[(1, 0)], pick=(0, 1))     # the pick changed last: it wins
    >>> c.source, c.cells
    ('pick', [(0, 1)])
    >>> c.update(chart=[(2, 1)], pick=(0, 1)).source  # then the chart again
    'chart'
    """

    chart: tuple[tuple[int, int], ...] = ()
    pick: tuple[int, int] | None = None
    source: str = ""  # "chart", "pick" or "" (nothing chosen)

    def update(
        self, *, chart: Sequence[tuple[int, int]], pick: tuple[int, int] | None
    ) -> CellChoice:
        chart_t = tuple((int(g), int(p)) for g, p in chart)
        pick_t = None if pick is None else (int(pick[0]), int(pick[1]))
        source = self.source
        if chart_t != self.chart:
            source = "chart" if chart_t else ("pick" if pick_t else "")
        if pick_t != self.pick:
            source = "pick" if pick_t else ("chart" if chart_t else "")
        if source == "chart" and not chart_t:
            source = "pick" if pick_t else ""
        if source == "pick" and not pick_t:
            source = "chart" if chart_t else ""
        return CellChoice(chart=chart_t, pick=pick_t, source=source)

    @property
    def cells(self) -> list[tuple[int, int]]:
        if self.source == "chart":
            return list(self.chart)
        if self.source == "pick" and self.pick is not None:
            return [self.pick]
        return []

    def heading(self, classes: Sequence[str], n_rows: int) -> str:
        """What is listed, in plain words (class names as given: escape for the surface)."""
        if self.source == "pick" and self.pick is not None:
            g, p = self.pick
            return f"Rows labelled {classes[g]}, predicted {classes[p]} (picked from the list): {n_rows:,}"
        if self.source == "chart":
            n = len(self.chart)
            return (
                f"Rows in the {n:,} square{'s' if n != 1 else ''} selected on the chart: {n_rows:,}"
            )
        return ""


def cell_rows(
    table: pd.DataFrame,
    given: np.ndarray,
    predicted: np.ndarray,
    cells: Sequence[tuple[int, int]],
) -> pd.DataFrame:
    """Rows of :func:`issue_table` (order kept) whose (given, predicted) class pair is one of ``cells``.

    ``given`` / ``predicted``: int class indices per dataset row (N,), aligned with the table's ``row``.

    >>> t = pd.DataFrame({"row": [1, 0, 2]})
    >>> cell_rows(t, np.array([0, 1, 1]), np.array([0, 0, 1]), [(1, 0)])["row"].tolist()
    [1]
    """
    mask = np.zeros(len(given), dtype=bool)
    for g, p in cells:
        mask |= (np.asarray(given) == g) & (np.asarray(predicted) == p)
    return table[mask[table["row"].to_numpy()]]


def evidence_lines(details: Mapping[str, Any], row: int) -> list[str]:
    """``"<detector>: <evidence>"`` for every detector with evidence for dataset row ``row``.

    ``details["evidence"]``: {detector: N strings}; empty strings are left out.

    >>> evidence_lines({"evidence": {"knn": ["", "7 of 10 neighbours say refund"]}}, 1)
    ['knn: 7 of 10 neighbours say refund']
    """
    evidence = details.get("evidence", {}) or {}
    return [
        f"{d}: {evidence[d][row]}" for d in evidence if row < len(evidence[d]) and evidence[d][row]
    ]


def issues_per_class(counts: Mapping[str, float], class_counts: pd.Series) -> pd.DataFrame:
    """Rows needing review per class: ``class``, ``rows needing review``, ``share of class`` (in
    [0, 1]), most first. ``counts``: {class: rows needing review}; ``class_counts``: rows per class.

    >>> issues_per_class({"x": 2}, pd.Series({"x": 4, "y": 5}))["share of class"].tolist()
    [0.5, 0.0]
    """
    s = pd.Series(dict(counts), dtype=float).reindex(class_counts.index, fill_value=0)
    frame = pd.DataFrame(
        {
            "class": s.index.astype(str),
            "rows needing review": s.to_numpy(),
            "share of class": s.to_numpy() / class_counts.clip(lower=1).to_numpy(),
        }
    )
    return frame.sort_values("rows needing review", ascending=False, kind="stable").reset_index(
        drop=True
    )


# --------------------------------------------------------------------------- annotators
def truth_methods_for(has_probs: bool) -> list[str]:
    """Registered truth-inference methods a dataset can feed: those needing model probabilities
    only when it has them (``has_probs``), in listing order.

    >>> "crowdlab" in truth_methods_for(False), "crowdlab" in truth_methods_for(True)
    (False, True)
    """
    from labelaudit.agreement.methods import all_truth_methods

    return [n for n, m in all_truth_methods().items() if has_probs or not m.needs_probs]


def tie_breaks_for(has_probs: bool) -> dict[str, str]:
    """Majority-vote tie rules a dataset can feed, with their labels (``model`` needs
    probabilities).

    >>> list(tie_breaks_for(False))
    ['random', 'rarer']
    """
    out = {"random": "at random (seed 0)", "rarer": "the rarer class"}
    if has_probs:
        out["model"] = "the model's choice"
    return out


def kappa_matrix(
    pairs: pd.DataFrame, annotators: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kappa, overlap, raw agreement) square matrices over ``annotators`` from the pair table of
    :class:`labelaudit.agreement.AgreementReport` (``annotator_a``, ``annotator_b``, ``kappa``,
    ``overlap``, ``agreement``); symmetric, NaN (overlap 0) where a pair rated nothing together.

    >>> pairs = pd.DataFrame({"annotator_a": ["a"], "annotator_b": ["b"], "kappa": [0.5],
    ...                       "overlap": [4], "agreement": [0.75]})
    >>> kappa, overlap, agree = kappa_matrix(pairs, ["a", "b", "c"])
    >>> float(kappa[1, 0]), int(overlap[0, 2]), bool(np.isnan(agree[0, 2]))
    (0.5, 0, True)
    """
    pos = {a: i for i, a in enumerate(annotators)}
    n = len(annotators)
    kappa, overlap, agree = (
        np.full((n, n), np.nan),
        np.zeros((n, n), dtype=np.int64),
        np.full((n, n), np.nan),
    )
    for row in pairs.itertuples(index=False):
        if row.annotator_a in pos and row.annotator_b in pos:
            a, b = pos[row.annotator_a], pos[row.annotator_b]
            for x, y in ((a, b), (b, a)):
                kappa[x, y], overlap[x, y], agree[x, y] = row.kappa, row.overlap, row.agreement
    return kappa, overlap, agree


def items_with_text(
    items: pd.DataFrame, frame: pd.DataFrame, id_to_row: Mapping[str, int]
) -> pd.DataFrame:
    """The per-item agreement table with each item's ``text`` and ``given_label`` (from the
    dataset's ``frame``, found by ``id_to_row``) as its second and third columns."""
    rows = [id_to_row[i] for i in items["item_id"]]
    out = items.copy()
    out.insert(1, "text", frame["text"].to_numpy()[rows])
    out.insert(2, "given_label", frame["label"].to_numpy()[rows])
    return out


def disputed_order(items: pd.DataFrame) -> pd.DataFrame:
    """Most disputed first: lowest pairwise agreement, then least confident consensus, then most
    raters (a stable sort, so ties keep their order)."""
    return items.sort_values(
        ["disagreement", "consensus_confidence", "n_ratings"],
        ascending=[False, True, False],
        kind="mergesort",
    )

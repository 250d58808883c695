"""The review queue and what a reviewer sees for one item.

A queue is an ordered list of row ids. By default it follows the combined ranking of the scan
(flagged rows first, then by ``label_issue_score``); other pages can hand over a selection instead
(a cluster, a lasso selection, a confusion-matrix cell, the most disputed items). Items already
decided are skipped unless asked for. Nothing here touches the database except :func:`apply_bulk`,
which goes through :class:`~labelaudit.review.store.ReviewStore`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from labelaudit.dataset import ID, LABEL, SPLIT, TEST_SPLIT, TEXT, Dataset
from labelaudit.errors import UsageError
from labelaudit.neighbours import NeighbourGraph
from labelaudit.neighbours import nearest_neighbours as neighbour_rows
from labelaudit.review.identity import Identity, require_lead
from labelaudit.review.store import ConflictError, Decision, ReviewStore

#: Source name of the default queue.
RANKING_SOURCE = "ranking"


def build_queue(
    ds: Dataset,
    *,
    scan_table: pd.DataFrame | None = None,
    selection: Sequence[str] | None = None,
    pred_probs: np.ndarray | None = None,
    decided_ids: Iterable[str] = (),
    include_decided: bool = False,
    flagged_only: bool = False,
) -> list[str]:
    """Row ids to review, in order.

    ``selection`` (ids in the order given) wins when not None; unknown ids and repeats are dropped.
    Otherwise the scan ranking: rows with ``is_label_issue`` first, then by descending
    ``label_issue_score`` (ties in dataset order). Without a scan table but with ``pred_probs``
    (float (N, K), e.g. ``ds.pred_probs``), by ascending self-confidence (the probability of the given
    label; Northcutt et al. 2021, "Confident Learning"); with neither, dataset order.
    ``flagged_only`` keeps only flagged rows of the scan ranking (no effect without a scan). Ids in
    ``decided_ids`` are left out unless ``include_decided``.

    >>> build_queue(ds, scan_table=table, decided_ids={"17"})[:3]    # doctest: +SKIP
    ['942', '12', '3051']
    """
    if selection is not None:
        known = ds.id_to_row
        ids = list(dict.fromkeys(str(i) for i in selection if str(i) in known))
    elif scan_table is not None and "label_issue_score" in scan_table and len(scan_table) == ds.n:
        score = pd.to_numeric(scan_table["label_issue_score"], errors="coerce").fillna(0)
        flag = _flags(scan_table)
        # One stable lexsort (the last key first): flagged rows first, then by descending score,
        # ties in dataset order. No frame of every row and no dict of every id (``id_to_row``,
        # needed only for a selection): the Review page's queue at 1M rows (bench_pages_scale).
        order = np.lexsort((-score.to_numpy(dtype=np.float64), ~flag))
        if flagged_only:
            order = order[flag[order]]
        ids = ds.frame[ID].to_numpy(dtype=object)[order].tolist()
    elif pred_probs is not None and len(pred_probs) == ds.n:
        self_confidence = np.asarray(pred_probs)[np.arange(ds.n), ds.labels]
        ids = (
            ds.frame[ID].to_numpy(dtype=object)[np.argsort(self_confidence, kind="stable")].tolist()
        )
    else:
        ids = ds.frame[ID].tolist()
    return ids if include_decided else without_decided(ids, decided_ids)


def without_decided(queue: Sequence[str], decided_ids: Iterable[str]) -> list[str]:
    """``queue`` without the ids in ``decided_ids``, order kept.

    >>> without_decided(["a", "b", "c"], {"b"})
    ['a', 'c']
    """
    done = set(decided_ids)
    return [i for i in queue if i not in done]


def _flags(table: pd.DataFrame) -> np.ndarray:
    if "is_label_issue" not in table:
        return np.zeros(len(table), dtype=bool)
    return table["is_label_issue"].fillna(False).astype(bool).to_numpy()


@dataclass
class ReviewProgress:
    """Where a reviewer stands: queue items decided and left, and how often the suggestion was taken."""

    done: int
    remaining: int
    decided_total: int
    accepted: int

    @property
    def total(self) -> int:
        return self.done + self.remaining

    @property
    def acceptance_rate(self) -> float | None:
        """Share of decisions (in force) that accepted the suggested label; None before any decision."""
        return self.accepted / self.decided_total if self.decided_total else None


def review_progress(queue_ids: Sequence[str], current: pd.DataFrame) -> ReviewProgress:
    """Progress over ``queue_ids`` (with decided items included) given ``ReviewStore.current``."""
    decided = set(current["item_id"]) if len(current) else set()
    done = sum(1 for i in queue_ids if i in decided)
    accepted = int((current["action"] == "accept").sum()) if len(current) else 0
    return ReviewProgress(
        done=done, remaining=len(queue_ids) - done, decided_total=len(current), accepted=accepted
    )


# --------------------------------------------------------------------------- one item
@dataclass
class ItemEvidence:
    """Everything the card shows for one row. All text is dataset text: render it as plain text."""

    item_id: str
    row: int
    text: str
    given_label: str
    split: str
    #: (class name, probability) best first; the scan's suggestion first when it has one.
    suggestions: list[tuple[str, float]] = field(default_factory=list)
    #: One row per detector: detector, score, flagged, suggested, evidence.
    detectors: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Nearest neighbours: id, similarity, label, text.
    neighbours: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Annotators' votes: label, votes (most first); empty without annotations.
    votes: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: class name -> description, for the given label and the suggestions that have one.
    descriptions: dict[str, str] = field(default_factory=dict)
    label_issue_score: float | None = None
    is_label_issue: bool = False

    @property
    def suggested_label(self) -> str | None:
        """The top suggestion (the scan's, else the most probable class); may equal the given label."""
        return self.suggestions[0][0] if self.suggestions else None

    @property
    def in_test_split(self) -> bool:
        return self.split == TEST_SPLIT

    def shown(self, source: str) -> dict[str, Any]:
        """The JSON stored with a decision: what the reviewer saw when deciding."""
        scores = (
            {}
            if self.detectors.empty
            else {
                str(r.detector): round(float(r.score), 6)
                for r in self.detectors.itertuples()
                if pd.notna(r.score)
            }
        )
        return {
            "queue": source,
            "label_issue_score": self.label_issue_score,
            "is_label_issue": self.is_label_issue,
            "suggested_label": self.suggested_label,
            "suggestions": [[n, round(p, 6)] for n, p in self.suggestions[:3]],
            "detector_scores": scores,
        }


def item_evidence(
    ds: Dataset,
    item_id: str,
    *,
    scan_table: pd.DataFrame | None = None,
    pred_probs: np.ndarray | None = None,
    embeddings: np.ndarray | None = None,
    detection_details: Mapping[str, Any] | None = None,
    n_neighbours: int = 5,
    n_suggestions: int = 3,
    neighbour_graph: NeighbourGraph | None = None,
) -> ItemEvidence:
    """Collect what the reviewer sees for ``item_id``.

    ``scan_table``: the scan's N-row table (``label_issue_score``, ``is_label_issue``,
    ``suggested_label``, ``suggested_label_prob``, ``score_<detector>`` and, when present,
    ``is_issue_<detector>`` / ``suggested_<detector>`` / ``evidence_<detector>``).
    ``detection_details``: the scan's ``Detection.details``; its per-detector ``flags``,
    ``suggestions`` (class indices) and ``evidence`` (N-long each) fill what the table lacks.
    ``pred_probs``: float (N, K) out-of-sample probabilities (the scan's or ``ds.pred_probs``).
    ``embeddings``: float32 (N, D) L2-normalised; neighbours by cosine similarity, the item excluded.
    """
    if item_id not in ds.id_to_row:
        raise UsageError(f"no row with id {item_id!r} in the dataset")
    row = ds.id_to_row[item_id]
    rec = ds.frame.iloc[row]
    ev = ItemEvidence(
        item_id=item_id,
        row=row,
        text=str(rec[TEXT]),
        given_label=str(rec[LABEL]),
        split=str(rec[SPLIT]),
    )
    suggestions: dict[str, float] = {}
    t = scan_table.iloc[row] if scan_table is not None and len(scan_table) == ds.n else None
    if t is not None:
        if "label_issue_score" in t and pd.notna(t["label_issue_score"]):
            ev.label_issue_score = float(t["label_issue_score"])
        ev.is_label_issue = (
            bool(t.get("is_label_issue", False))
            if pd.notna(t.get("is_label_issue", False))
            else False
        )
        sug = t.get("suggested_label")
        if isinstance(sug, str) and sug in ds.classes:
            prob = t.get("suggested_label_prob")
            suggestions[sug] = float(prob) if prob is not None and pd.notna(prob) else float("nan")
        ev.detectors = _detector_rows(t, ds.classes, row, detection_details or {})
    probs = pred_probs if pred_probs is not None else ds.pred_probs
    if probs is not None and len(probs) == ds.n:
        p = np.asarray(probs[row], dtype=np.float64)
        for k in np.argsort(-p, kind="stable")[:n_suggestions]:
            name = ds.classes[int(k)]
            if name not in suggestions or np.isnan(suggestions[name]):
                suggestions[name] = float(p[k])
    ev.suggestions = list(suggestions.items())
    graph = neighbour_graph if neighbour_graph is not None and neighbour_graph.n == ds.n else None
    if n_neighbours > 0 and (
        graph is not None or (embeddings is not None and len(embeddings) == ds.n)
    ):
        ev.neighbours = nearest_neighbours(ds, row, embeddings, k=n_neighbours, graph=graph)
    if ds.annotations is not None:
        a = ds.annotations[ds.annotations["item_id"] == item_id]
        if len(a):
            ev.votes = a["label"].value_counts().rename_axis("label").reset_index(name="votes")
    names = [ev.given_label] + [n for n, _ in ev.suggestions]
    ev.descriptions = {
        n: ds.class_descriptions[n] for n in dict.fromkeys(names) if ds.class_descriptions.get(n)
    }
    return ev


def _per_row(details: Mapping[str, Any], key: str, name: str, row: int) -> Any:
    """``details[key][name][row]`` when present (arrays, or lists after the JSON cache), else None."""
    values = (details.get(key) or {}).get(name)
    try:
        return values[row] if values is not None and len(values) > row else None
    except (TypeError, IndexError, KeyError):
        return None


def _detector_rows(
    t: pd.Series, classes: list[str], row: int, details: Mapping[str, Any]
) -> pd.DataFrame:
    rows = []
    for col in t.index:
        if not str(col).startswith("score_"):
            continue
        name = str(col)[len("score_") :]
        sug = t.get(f"suggested_{name}", _per_row(details, "suggestions", name, row))
        if (
            sug is not None
            and not isinstance(sug, str)
            and pd.notna(sug)
            and 0 <= int(sug) < len(classes)
        ):
            sug = classes[int(sug)]  # detectors store class indices
        flagged = t.get(f"is_issue_{name}", _per_row(details, "flags", name, row))
        rows.append(
            {
                "detector": name,
                "score": float(t[col]) if pd.notna(t[col]) else np.nan,
                "flagged": bool(flagged) if flagged is not None and pd.notna(flagged) else None,
                "suggested": sug if isinstance(sug, str) else "",
                "evidence": str(
                    t.get(f"evidence_{name}", _per_row(details, "evidence", name, row)) or ""
                ),
            }
        )
    df = pd.DataFrame(rows, columns=["detector", "score", "flagged", "suggested", "evidence"])
    return df.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


def nearest_neighbours(
    ds: Dataset,
    row: int,
    embeddings: np.ndarray | None,
    *,
    k: int = 5,
    graph: NeighbourGraph | None = None,
) -> pd.DataFrame:
    """The ``k`` rows most similar to ``row`` (cosine on float (N, D) embeddings), itself excluded:
    columns id, similarity (in [-1, 1]), label, text; most similar first (ties in dataset order).
    ``graph``: the scan's shared neighbour graph; when it holds ``k`` neighbours the row is read from
    it (O(k) at any N, the same neighbours the detectors used) instead of searching every row."""
    top, sims = neighbour_rows(embeddings, row, k=k, graph=graph)
    return pd.DataFrame(
        {
            "id": ds.frame[ID].to_numpy(dtype=object)[top],
            "similarity": sims.astype(float),
            "label": ds.frame[LABEL].to_numpy(dtype=object)[top],
            "text": ds.frame[TEXT].to_numpy(dtype=object)[top],
        }
    )


# --------------------------------------------------------------------------- typical rows
#: How the typical rows of a class were chosen (what the card says).
EXEMPLAR_BY_CONFIDENCE = "highest self-confidence"
EXEMPLAR_BY_CENTRALITY = "closest to the class centroid"
EXEMPLAR_BY_ORDER = "first in the dataset"


@dataclass(frozen=True)
class ClassExemplars:
    """The few most typical rows of every class: ``rows[k]`` holds row indices of class ``k``
    (given label), most typical first; ``method``: one of the ``EXEMPLAR_BY_*`` names."""

    rows: tuple[np.ndarray, ...]
    method: str
    #: The ids and texts of ``rows`` (str arrays), read once by :func:`class_exemplars`: a card
    #: then reads no column of the dataset (a take from a 1M-row Arrow column costs tens of ms).
    ids: tuple[np.ndarray, ...] = ()
    texts: tuple[np.ndarray, ...] = ()


def class_exemplars(
    ds: Dataset,
    *,
    pred_probs: np.ndarray | None = None,
    embeddings: np.ndarray | None = None,
    k: int = 3,
) -> ClassExemplars:
    """The ``k`` most typical rows of each class, computed once for all classes (cache the result).

    With ``pred_probs`` (float (N, K) out-of-sample probabilities): the rows of the class whose
    given label the model is most confident about (highest self-confidence, the opposite end of
    Northcutt et al.'s ranking of likely label errors). Else with ``embeddings`` (float (N, D),
    L2-normalised, may be memory-mapped): the rows closest (cosine) to their class's mean
    embedding. Else the first rows of each class. Rows of the protected test split are left out.
    One pass over the rows plus one sort: O(N log N), no (N, N) product.

    >>> ex = class_exemplars(ds, pred_probs=ds.pred_probs, k=3)      # doctest: +SKIP
    >>> ds.frame["text"].iloc[ex.rows[ds.classes.index("refund")]]   # doctest: +SKIP
    """
    n, n_classes = ds.n, len(ds.classes)
    labels = np.asarray(ds.labels)
    usable = (~np.asarray(ds.test_mask, dtype=bool)) & (labels >= 0)
    if pred_probs is not None and len(pred_probs) == n:
        score = np.asarray(pred_probs, dtype=np.float64)[np.arange(n), np.clip(labels, 0, None)]
        method = EXEMPLAR_BY_CONFIDENCE
    elif embeddings is not None and len(embeddings) == n and n_classes:
        sums = np.zeros((n_classes, embeddings.shape[1]), dtype=np.float64)
        block = 65_536  # row blocks: a memory-mapped (N, D) array is never copied whole
        for lo in range(0, n, block):
            hi = min(lo + block, n)
            m = usable[lo:hi]
            np.add.at(sums, labels[lo:hi][m], np.asarray(embeddings[lo:hi], dtype=np.float64)[m])
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        centroids = sums / np.where(norms > 0, norms, 1.0)
        score = np.empty(n, dtype=np.float64)
        for lo in range(0, n, block):
            hi = min(lo + block, n)
            e = np.asarray(embeddings[lo:hi], dtype=np.float64)
            score[lo:hi] = np.einsum("ij,ij->i", e, centroids[np.clip(labels[lo:hi], 0, None)])
        method = EXEMPLAR_BY_CENTRALITY
    else:
        score = -np.arange(n, dtype=np.float64)
        method = EXEMPLAR_BY_ORDER
    score = np.where(usable, score, -np.inf)
    # by class, then best score first, ties in dataset order
    order = np.lexsort((np.arange(n), -score, labels))
    order = order[usable[order]]
    by_class = labels[order]
    starts = np.searchsorted(by_class, np.arange(n_classes), side="left")
    ends = np.minimum(np.searchsorted(by_class, np.arange(n_classes), side="right"), starts + k)
    rows = tuple(order[a:b].copy() for a, b in zip(starts, ends, strict=True))
    every = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    ids = ds.frame[ID].iloc[every].astype(str).to_numpy()  # one take per column, all classes
    texts = ds.frame[TEXT].iloc[every].astype(str).to_numpy()
    cut = np.cumsum([len(r) for r in rows])[:-1]
    return ClassExemplars(
        rows=rows,
        method=method,
        ids=tuple(np.split(ids, cut)),
        texts=tuple(np.split(texts, cut)),
    )


def typical_rows(
    ds: Dataset, exemplars: ClassExemplars, class_name: str, *, exclude: str | None = None
) -> pd.DataFrame:
    """The typical rows of ``class_name`` (columns id, text; dataset text: draw it as plain text),
    without the row ``exclude`` (the item on screen); empty for an unknown class."""
    if class_name not in ds.classes:
        return pd.DataFrame(columns=["id", "text"])
    k = ds.classes.index(class_name)
    if exemplars.ids:  # read by class_exemplars
        ids, texts = exemplars.ids[k], exemplars.texts[k]
    else:
        rows = exemplars.rows[k]
        ids = ds.frame[ID].iloc[rows].astype(str).to_numpy()
        texts = ds.frame[TEXT].iloc[rows].astype(str).to_numpy()
    keep = ids != exclude if exclude is not None else np.ones(len(ids), dtype=bool)
    return pd.DataFrame({"id": ids[keep], "text": texts[keep]})


# --------------------------------------------------------------------------- grid
#: At most this many rows in one grid (a screenful to read before deciding them together).
GRID_MAX_ROWS = 100


def grid_rows(
    ds: Dataset,
    item_ids: Sequence[str],
    *,
    scan_table: pd.DataFrame | None = None,
    pred_probs: np.ndarray | None = None,
    in_force: Mapping[str, Decision] | None = None,
    limit: int = GRID_MAX_ROWS,
) -> pd.DataFrame:
    """The grid of similar rows to decide together: the first ``limit`` known ids of
    ``item_ids`` with columns id, text, given (label), suggested (the scan's suggestion, else the
    most probable class, else ""), decided (the decision in force, from ``in_force``
    :meth:`ReviewStore.in_force`, else "") and test (in the protected split). Reads only those
    rows. All text is dataset text: draw it as plain text (a data grid does)."""
    known = ds.id_to_row
    ids = [str(i) for i in dict.fromkeys(item_ids) if str(i) in known][:limit]
    rows = np.asarray([known[i] for i in ids], dtype=np.int64)
    sub = ds.frame.iloc[rows]
    suggested = [""] * len(ids)
    if scan_table is not None and "suggested_label" in scan_table and len(scan_table) == ds.n:
        vals = scan_table["suggested_label"].iloc[rows].tolist()
        suggested = [v if isinstance(v, str) and v in ds.classes else "" for v in vals]
    probs = pred_probs if pred_probs is not None else ds.pred_probs
    if probs is not None and len(probs) == ds.n and len(rows):
        top = np.asarray(probs[rows]).argmax(axis=1)
        suggested = [s or ds.classes[int(k)] for s, k in zip(suggested, top, strict=True)]
    decided = []
    for i in ids:
        d = (in_force or {}).get(i)
        decided.append(
            ""
            if d is None
            else d.action + (f" → {d.new_label}" if d.action in ("accept", "change") else "")
        )
    return pd.DataFrame(
        {
            "id": ids,
            "text": sub[TEXT].astype(str).to_numpy(),
            "given": sub[LABEL].astype(str).to_numpy(),
            "suggested": suggested,
            "decided": decided,
            "test": np.asarray(ds.test_mask, dtype=bool)[rows] if len(rows) else [],
        }
    )


# --------------------------------------------------------------------------- bulk
@dataclass
class BulkResult:
    """What a bulk decision did: saved decisions, ids skipped because they are in the protected test
    split, ids that changed since they were shown (not written), ids that already had the label."""

    saved: list[Decision] = field(default_factory=list)
    skipped_test: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"saved {len(self.saved)}"]
        if self.skipped_test:
            parts.append(f"skipped {len(self.skipped_test)} in the protected test split")
        if self.conflicts:
            parts.append(f"{len(self.conflicts)} changed by someone else meanwhile (not saved)")
        if self.unchanged:
            parts.append(f"{len(self.unchanged)} already had that label")
        return ", ".join(parts)


def current_labels(ds: Dataset, current: pd.DataFrame) -> dict[str, str | None]:
    """Label of every row now: the final label of its decision in force, else the given label
    (None for removed rows). ``current``: :meth:`ReviewStore.current`."""
    labels: dict[str, str | None] = dict(
        zip(ds.frame[ID].tolist(), ds.frame[LABEL].tolist(), strict=True)
    )
    for item, final in zip(current["item_id"], current["final_label"], strict=True):
        if item in labels:
            labels[item] = final if isinstance(final, str) else None
    return labels


def label_before(ds: Dataset, labels_now: dict[str, str | None], item_id: str) -> str:
    """The ``old_label`` to record for a decision on ``item_id``: its label now; the given label if removed."""
    now = labels_now.get(item_id)
    return now if now is not None else str(ds.frame[LABEL].iat[ds.id_to_row[item_id]])


def bulk_targets(ds: Dataset, item_ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split ``item_ids`` into (may be changed in bulk, protected test-split rows). Unknown ids dropped."""
    test = ds.test_mask
    ok: list[str] = []
    protected: list[str] = []
    for i in dict.fromkeys(item_ids):
        r = ds.id_to_row.get(i)
        if r is None:
            continue
        (protected if test[r] else ok).append(i)
    return ok, protected


def bulk_clusters(scan_table: pd.DataFrame | None) -> list[int]:
    """Clusters a bulk decision can target (sorted; the unclustered -1 left out); [] without clusters."""
    if scan_table is None or "cluster" not in scan_table:
        return []
    return sorted(int(c) for c in scan_table["cluster"].unique() if c >= 0)


def cluster_slice(
    ds: Dataset, scan_table: pd.DataFrame, cluster: int, given_label: str | None = None
) -> list[str]:
    """Ids of the rows in ``cluster`` of the scan (and with ``given_label`` when given), in dataset order.

    ``scan_table``: the scan's N-row table with a ``cluster`` column.
    """
    mask = (scan_table["cluster"] == cluster).to_numpy()
    if given_label is not None:  # not &=: pandas may hand back a read-only array
        mask = mask & (ds.frame[LABEL] == given_label).to_numpy()
    return ds.frame.loc[mask, ID].tolist()


def duplicate_groups(ds: Dataset, detection_details: Any) -> list[list[str]]:
    """The near-duplicate groups whose given labels differ, as id lists (each in dataset order),
    largest first: what the near-duplicates detector stored in the scan
    (``detection.details.detector_details["near_duplicates"].conflicting_groups``, row numbers).
    [] when the detector did not run or found none. A group is decided together in the grid.

    >>> from labelaudit.io import load_dataset
    >>> ds = load_dataset(pd.DataFrame({"text": list("abc"), "label": list("xyx")}))
    >>> duplicate_groups(ds, {"detector_details": {"near_duplicates": {"conflicting_groups": [[0, 1]]}}})
    [['0', '1']]
    """
    if detection_details is None:
        return []
    per = detection_details.get("detector_details") or {}
    nd = per.get("near_duplicates")
    groups = getattr(nd, "conflicting_groups", None)
    if groups is None and isinstance(nd, Mapping):  # a details dict read back as plain JSON
        groups = nd.get("conflicting_groups")
    ids = ds.frame[ID].astype(str).to_numpy()
    out = [[str(ids[r]) for r in sorted(g) if 0 <= int(r) < ds.n] for g in groups or []]
    return sorted((g for g in out if len(g) > 1), key=lambda g: (-len(g), g[0]))


def suggestion_map(scan_table: pd.DataFrame | None) -> dict[str, str] | None:
    """{item id: the scan's suggested label}, what a bulk accept sets; None without suggestions."""
    if scan_table is None or "suggested_label" not in scan_table:
        return None
    return dict(
        zip(scan_table["id"].astype(str), scan_table["suggested_label"].astype(str), strict=True)
    )


def apply_bulk(
    store: ReviewStore,
    ds: Dataset,
    *,
    item_ids: Sequence[str],
    action: str,
    reviewer: str,
    seen: dict[str, int],
    new_label: str | None = None,
    comment: str = "",
    source: str = "bulk",
    suggestions: Mapping[str, str] | None = None,
    identity: Identity | None = None,
) -> BulkResult:
    """Apply one decision to many rows, never touching the protected test split.

    ``action``: accept (each row's own suggested label, from ``suggestions`` {item id: class name}),
    change (to ``new_label``), keep, ambiguous or remove. ``seen``: the latest decision id
    of every decided item when the confirmation was shown (:meth:`ReviewStore.latest_decision_ids`;
    items absent had none); an item decided since is reported in ``conflicts`` and not written.
    ``identity``: the lead running it (:func:`labelaudit.review.identity.require_lead` is checked
    when given); every decision is recorded in the capacity ``bulk``.

    >>> r = apply_bulk(store, ds, item_ids=dup_group, action="change", new_label="refund",
    ...                reviewer="ana", seen=store.latest_decision_ids(ds.content_hash))   # doctest: +SKIP
    >>> r.summary()                                                                      # doctest: +SKIP
    'saved 4, skipped 1 in the protected test split'
    """
    if identity is not None:
        require_lead(identity, "run bulk decisions")
        reviewer = identity.name
    if action not in ("accept", "change", "keep", "ambiguous", "remove"):
        raise UsageError(
            f"bulk '{action}' is not supported; use accept, change, keep, ambiguous or remove"
        )
    if action == "accept" and not suggestions:
        raise UsageError("bulk accept needs the suggested labels (run the scan first)")
    if action == "change" and new_label not in ds.classes:
        raise UsageError(f"bulk change needs a class name as the new label, got {new_label!r}")
    ok, protected = bulk_targets(ds, item_ids)
    result = BulkResult(skipped_test=protected)
    labels_now = current_labels(ds, store.current(ds.content_hash))
    for item in ok:
        old = label_before(ds, labels_now, item)
        target = new_label
        if action == "accept":
            target = (suggestions or {}).get(item)
            if target not in ds.classes:
                result.unchanged.append(item)  # no usable suggestion for this row
                continue
        if action in ("accept", "change") and labels_now.get(item) == target:
            result.unchanged.append(item)
            continue
        shown: dict = {"queue": source, "bulk": True, "bulk_size": len(ok)}
        if action == "accept":
            shown["suggested_label"] = target
        try:
            d = store.record(
                dataset_version=ds.content_hash,
                item_id=item,
                reviewer=reviewer,
                action=action,
                old_label=old,
                new_label=target,
                comment=comment,
                shown=shown,
                seen_decision_id=seen.get(item),
                identity=identity,
                capacity="bulk",
            )
            result.saved.append(d)
        except ConflictError:
            result.conflicts.append(item)
    return result


@dataclass(frozen=True)
class BulkRequest:
    """A bulk decision prepared for confirmation: what :func:`apply_bulk` will be called with.

    ``ids``: the targets (protected test-split rows included: :func:`apply_bulk` skips them);
    ``seen``: :meth:`ReviewStore.latest_decision_ids` when the request was prepared, so an item
    decided between preparing and confirming is reported as a conflict, not overwritten.
    """

    ids: list[str]
    action: str
    source: str
    seen: dict[str, int]
    new_label: str | None = None
    comment: str = ""
    suggestions: dict[str, str] | None = None

    def describe(self) -> str:
        """``"change → refund"``, ``"keep"``: the decision in a few words."""
        return self.action + (f" → {self.new_label}" if self.new_label else "")

    def apply(
        self, store: ReviewStore, ds: Dataset, *, reviewer: str, identity: Identity | None = None
    ) -> BulkResult:
        """Run the request (see :func:`apply_bulk`); raises UsageError as it does."""
        return apply_bulk(
            store,
            ds,
            identity=identity,
            item_ids=self.ids,
            action=self.action,
            reviewer=reviewer,
            seen=self.seen,
            new_label=self.new_label,
            comment=self.comment,
            source=self.source,
            suggestions=self.suggestions,
        )

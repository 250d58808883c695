"""The Training dynamics and Influence pages' tables, as plain functions (no Streamlit).

What the pages show, computed from what :func:`prepare` stored in the workspace: the data map of the
training rows (:func:`dynamics_view`), the self-influence ranking (:func:`self_influence_ranking`),
row search and the colour choices. Every function takes a dataset and a workspace, so a notebook or
the CLI gets the page's exact tables; ``components/dynamics.py`` only caches them and draws.

All of them use :func:`labelaudit.dynamics.training_population` (every row outside the protected
``test`` split).

>>> prepare(ds, ws, influence=True)              # doctest: +SKIP
>>> dynamics_view(ds, ws).table.head()           # doctest: +SKIP
>>> self_influence_ranking(ds, ws).head()        # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from labelaudit.dataset import ID, LABEL, TEXT, Dataset
from labelaudit.dynamics import (
    DEFAULT_EPOCHS,
    _aum_params,
    array_key,
    cached_aum,
    cached_dynamics,
    data_map,
    dynamics_stored,
    forgetting_events,
    given_label_probs,
    training_population,
)
from labelaudit.influence import cached_model, cached_self_influence, influence_stored
from labelaudit.progress import ProgressFn, no_progress
from labelaudit.workspace import Workspace

__all__ = [
    "DynamicsView",
    "colour_options",
    "dynamics_table",
    "dynamics_view",
    "is_prepared",
    "prepare",
    "search_rows",
    "self_influence_ranking",
    "stored_embeddings",
]


def stored_embeddings(ds: Dataset, ws: Workspace) -> np.ndarray | None:
    """The dataset's embeddings if given or already stored in the workspace by the scan, else None."""
    from labelaudit.scanning import embeddings_key, get_embeddings

    if ds.embeddings is not None or ws.has(
        ds.text_hash, "embeddings", {"model": embeddings_key(ds)}
    ):
        return get_embeddings(ds, workspace=ws)
    return None


def prepare(
    ds: Dataset, ws: Workspace, *, influence: bool, progress: ProgressFn = no_progress
) -> None:
    """Compute and store what the pages read: embeddings, the training run, AUM and (when
    ``influence``) the influence model and self-influence of the training rows."""
    from labelaudit.scanning import get_embeddings

    emb = get_embeddings(ds, workspace=ws, progress=progress)
    train = training_population(ds)
    x, y = emb[train], ds.labels[train]
    if ds.dynamics is None:
        cached_dynamics(x, y, n_classes=ds.k, workspace=ws, progress=progress)
    cached_aum(x, y, n_classes=ds.k, workspace=ws, progress=progress)
    if influence:
        progress("fitting the influence model", 0, 1)
        cached_model(x, y, n_classes=ds.k, workspace=ws)
        progress("fitting the influence model", 1, 1)
        cached_self_influence(x, y, n_classes=ds.k, workspace=ws, progress=progress)


def is_prepared(ds: Dataset, ws: Workspace, *, influence: bool) -> bool:
    """Whether :func:`prepare` has stored everything (cheap: file checks after loading embeddings)."""
    emb = stored_embeddings(ds, ws)
    if emb is None:
        return False
    train = training_population(ds)
    x, y = emb[train], ds.labels[train]
    if ds.dynamics is None:
        ok = dynamics_stored(x, y, n_classes=ds.k, workspace=ws)
    else:
        ok = _aum_only_stored(x, y, ds.k, ws)  # imported logits: only AUM is trained here
    return bool(ok and (not influence or influence_stored(x, y, n_classes=ds.k, workspace=ws)))


def _aum_only_stored(x: np.ndarray, y: np.ndarray, k: int, ws: Workspace) -> bool:
    return ws.has(
        array_key(np.asarray(x, np.float32), np.asarray(y, np.int64)),
        "aum",
        _aum_params(k, 0, DEFAULT_EPOCHS),
        "json",
    )


@dataclass
class DynamicsView:
    """``table``: one row per training row (id, text, given_label, confidence, variability, correctness,
    region, forgetting, never_learned, predicted, aum, aum_flag); ``trajectories``: (E, n_train)
    probability of the given label per epoch; ``source``: where the logits came from."""

    table: pd.DataFrame
    trajectories: np.ndarray
    source: str


def dynamics_table(
    ds: Dataset,
    logits: np.ndarray,
    aum: np.ndarray | None = None,
    aum_flag: np.ndarray | None = None,
    rows: np.ndarray | None = None,
) -> pd.DataFrame:
    """The per-row table of the data map for ``rows`` of ``ds`` (default all) from (E, n, K) ``logits``."""
    rows = np.arange(ds.n) if rows is None else rows
    labels = ds.labels[rows]
    dm = data_map(logits, labels)
    events, never = forgetting_events(logits, labels)
    t = pd.DataFrame(
        {
            "id": ds.frame[ID].to_numpy()[rows],
            "text": ds.frame[TEXT].to_numpy()[rows],
            "given_label": ds.frame[LABEL].to_numpy()[rows],
        }
    )
    for c in ("confidence", "variability", "correctness", "region"):
        t[c] = dm[c].to_numpy()
    t["forgetting"] = events
    t["never_learned"] = never
    t["predicted"] = np.asarray(ds.classes, dtype=object)[dm["mean_pred"].to_numpy()]
    if aum is not None:
        t["aum"] = aum
        t["aum_flag"] = aum_flag
    return t


def dynamics_view(ds: Dataset, ws: Workspace) -> DynamicsView | None:
    """The data map of the training rows from stored artifacts; None when :func:`prepare` has not
    stored them yet (nothing is trained here)."""
    if not is_prepared(ds, ws, influence=False):
        return None
    emb = stored_embeddings(ds, ws)
    if emb is None:
        return None
    train = training_population(ds)
    rows = np.flatnonzero(train)
    x, y = emb[train], ds.labels[train]
    if ds.dynamics is not None:
        logits = np.asarray(ds.dynamics)[:, train]
        source = f"imported ({ds.dynamics.shape[0]} epochs)"
    else:
        logits = cached_dynamics(x, y, n_classes=ds.k, workspace=ws).logits
        source = f"softmax head trained on the embeddings ({logits.shape[0]} epochs, seeded mini-batch SGD)"
    aum = cached_aum(x, y, n_classes=ds.k, workspace=ws)
    table = dynamics_table(ds, logits, aum.aum, aum.is_mislabeled, rows)
    return DynamicsView(table, given_label_probs(logits, y), source)


def self_influence_ranking(ds: Dataset, ws: Workspace) -> pd.DataFrame | None:
    """Training rows by self-influence, highest first: id, text, given_label, predicted,
    self_influence, exact; None when the embeddings are not stored yet."""
    emb = stored_embeddings(ds, ws)
    if emb is None:
        return None
    train = training_population(ds)
    x, y = emb[train], ds.labels[train]
    values, exact = cached_self_influence(x, y, n_classes=ds.k, workspace=ws)
    model = cached_model(x, y, n_classes=ds.k, workspace=ws)
    frame = ds.frame.loc[train]
    out = pd.DataFrame(
        {
            "id": frame[ID].to_numpy(),
            "text": frame[TEXT].to_numpy(),
            "given_label": frame[LABEL].to_numpy(),
            "predicted": np.asarray(ds.classes, dtype=object)[model.probs.argmax(axis=1)],
            "self_influence": values,
            "exact": exact,
        }
    )
    return out.sort_values("self_influence", ascending=False, kind="stable").reset_index(drop=True)


def colour_options(table: pd.DataFrame, scan_table: pd.DataFrame | None) -> list[str]:
    """What the data map can be coloured by: region, the dynamics columns, then the scan's detector scores."""
    opts = ["region", "correctness", "forgetting", "aum"]
    if scan_table is not None:
        opts += [
            c for c in scan_table.columns if c.startswith("score_") or c == "label_issue_score"
        ]
    return [
        o
        for o in opts
        if o in table.columns or (scan_table is not None and o in scan_table.columns)
    ]


def search_rows(frame: pd.DataFrame, query: str, *, limit: int = 200) -> pd.DataFrame:
    """Rows whose id equals ``query`` or whose text contains it (case-insensitive, plain substring);
    exact id matches first."""
    q = query.strip()
    if not q:
        return frame.head(0)
    exact = frame[ID].astype(str) == q
    contains = frame[TEXT].str.contains(q, case=False, regex=False, na=False)
    hits = frame[exact | contains]
    return pd.concat([hits[exact[hits.index]], hits[~exact[hits.index]]]).head(limit)

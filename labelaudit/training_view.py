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
    PopulationDynamics,
    _aum_params,
    array_key,
    cached_aum,
    cached_dynamics,
    dynamics_stored,
    given_label_probs,
    population_dynamics,
    training_population,
)
from labelaudit.influence import cached_model, cached_self_influence, influence_stored
from labelaudit.progress import ProgressFn, no_progress
from labelaudit.workspace import Workspace

__all__ = [
    "DYNAMICS_COLUMNS",
    "DynamicsView",
    "colour_options",
    "dynamics_table",
    "dynamics_view",
    "is_prepared",
    "population_of",
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


#: The columns of :func:`dynamics_table`, in order: the Training dynamics page, the facade
#: :func:`labelaudit.training_dynamics` and the notebooks all use these names.
DYNAMICS_COLUMNS = (
    "id",
    "text",
    "given_label",
    "in_training",
    "predicted_label",
    "confidence",
    "variability",
    "correctness",
    "region",
    "forgetting_events",
    "never_learned",
    "aum",
    "aum_threshold",
    "aum_flag",
)


@dataclass
class DynamicsView:
    """``table``: :func:`dynamics_table` of the training rows only (the page's data map);
    ``trajectories``: (E, n_train) probability of the given label per epoch; ``source``: where the
    logits came from."""

    table: pd.DataFrame
    trajectories: np.ndarray
    source: str


def population_of(
    ds: Dataset,
    embeddings: np.ndarray | None,
    ws: Workspace | None,
    *,
    seed: int = 0,
    epochs: int = DEFAULT_EPOCHS,
    with_aum: bool = True,
    progress: ProgressFn = no_progress,
) -> PopulationDynamics:
    """:func:`labelaudit.dynamics.population_dynamics` of ``ds`` (its imported dynamics, else a run
    on ``embeddings``), trained on :func:`training_population` rows: what the detectors compute."""
    return population_dynamics(
        ds.labels,
        n_classes=ds.k,
        train=training_population(ds),
        embeddings=embeddings,
        dynamics=None if ds.dynamics is None else np.asarray(ds.dynamics),
        workspace=ws,
        seed=seed,
        epochs=epochs,
        with_aum=with_aum,
        progress=progress,
    )


def dynamics_table(ds: Dataset, pop: PopulationDynamics) -> pd.DataFrame:
    """One row per row of ``ds``, in dataset order, with :data:`DYNAMICS_COLUMNS`: ``in_training``
    (the row is in the training population), the data map (``confidence``, ``variability``,
    ``correctness`` in [0, 1], ``region``), ``predicted_label`` (argmax of the epoch-averaged
    probabilities), ``forgetting_events`` (Toneva et al. 2019), ``never_learned`` and the area under
    the margin (``aum``, ``aum_threshold``: NaN outside the training population or without an AUM
    run; ``aum_flag``: False there)."""
    dm = pop.map
    n = ds.n
    aum = np.full(n, np.nan)
    thr = np.full(n, np.nan)
    flag = np.zeros(n, dtype=bool)
    if pop.aum is not None:
        aum[pop.train], thr[pop.train] = pop.aum.aum, pop.aum.threshold
        flag[pop.train] = pop.aum.is_mislabeled
    return pd.DataFrame(
        {
            "id": ds.frame[ID].to_numpy(),
            "text": ds.frame[TEXT].to_numpy(),
            "given_label": ds.frame[LABEL].to_numpy(),
            "in_training": pop.train,
            "predicted_label": np.asarray(ds.classes, dtype=object)[dm["mean_pred"].to_numpy()],
            "confidence": dm["confidence"].to_numpy(),
            "variability": dm["variability"].to_numpy(),
            "correctness": dm["correctness"].to_numpy(),
            "region": dm["region"].to_numpy(),
            "forgetting_events": pop.events,
            "never_learned": pop.never_learned,
            "aum": aum,
            "aum_threshold": thr,
            "aum_flag": flag,
        },
        columns=list(DYNAMICS_COLUMNS),
    )


def dynamics_view(ds: Dataset, ws: Workspace) -> DynamicsView | None:
    """The data map of the training rows from stored artifacts; None when :func:`prepare` has not
    stored them yet (nothing is trained here)."""
    if not is_prepared(ds, ws, influence=False):
        return None
    emb = stored_embeddings(ds, ws)
    if emb is None:
        return None
    pop = population_of(ds, emb, ws)
    train = pop.train
    table = dynamics_table(ds, pop)[train].reset_index(drop=True)
    trajectories = given_label_probs(pop.logits[:, train], ds.labels[train])
    return DynamicsView(table, trajectories, pop.source)


def self_influence_ranking(ds: Dataset, ws: Workspace) -> pd.DataFrame | None:
    """Training rows by self-influence, highest first: id, text, given_label, predicted_label (the
    influence head's), self_influence, exact; None when the embeddings are not stored yet."""
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
            "predicted_label": np.asarray(ds.classes, dtype=object)[model.probs.argmax(axis=1)],
            "self_influence": values,
            "exact": exact,
        }
    )
    return out.sort_values("self_influence", ascending=False, kind="stable").reset_index(drop=True)


def colour_options(table: pd.DataFrame, scan_table: pd.DataFrame | None) -> list[str]:
    """What the data map can be coloured by: region, the dynamics columns, then the scan's detector scores."""
    opts = ["region", "correctness", "forgetting_events", "aum"]
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

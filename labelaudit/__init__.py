"""labelaudit: find wrong or contested human labels in text-classification datasets.

The public API, for notebooks and scripts. Functions take and return pandas DataFrames and NumPy
arrays; every name below has a docstring with shapes, ranges and an example (``help(labelaudit.scan)``).

Load and check
    :func:`load_dataset`, :func:`validate`, :class:`Dataset`, :class:`DataError`, :class:`Problem`,
    :class:`UsageError`, :class:`Workspace` (the folder of cached artifacts).
Scan and detect
    :func:`scan` (embeddings, 2-D map, clusters and every detector; cached), :class:`ScanResult`,
    :func:`detect_label_issues`, :func:`list_detectors`.
Several annotators
    :func:`rater_agreement` (statistics, consensus per item, a profile per annotator),
    :class:`Ratings`, :class:`AgreementReport`.
Training dynamics and influence
    :func:`training_dynamics` (data maps, forgetting events, area under the margin per row),
    :func:`influence_scores` (which training rows help or hurt one row's fit),
    :func:`train_dynamics`, :func:`data_map`, :class:`InfluenceModel`.
Review, export and report
    :class:`ReviewStore` (the decision log), :func:`export` (the reviewed dataset as CSV/Parquet),
    :func:`report` (what the review changed and cost; the HTML report for leaders).
The dashboard
    :func:`show` opens it on a DataFrame from Jupyter or any Python process; :class:`Dashboard`.

Also importable from here, outside ``__all__``: ``get_embeddings``, ``Detection`` and
``analyse_annotations`` (the lower-level functions the facades call).

Importing ``labelaudit`` is cheap: every name is imported on first use, and nothing here imports
torch, sentence-transformers, umap or streamlit until a function needs it.

Example:
    >>> import labelaudit as la
    >>> ds = la.load_dataset("sample_data/banking77")                      # doctest: +SKIP
    >>> res = la.scan(ds, workspace=".labelaudit")                         # doctest: +SKIP
    >>> res.table.nlargest(10, "label_issue_score")                        # doctest: +SKIP
    >>> la.show(ds)                                                        # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and IDEs only; at run time the names load lazily
    import numpy as np
    import pandas as pd

    from labelaudit.agreement import AgreementReport, Ratings, analyse_annotations  # noqa: F401
    from labelaudit.dataset import Dataset
    from labelaudit.detect import Detection, detect_label_issues  # noqa: F401
    from labelaudit.dynamics import data_map, train_dynamics
    from labelaudit.errors import DataError, Problem, UsageError
    from labelaudit.influence import InfluenceModel
    from labelaudit.io import load_dataset
    from labelaudit.notebook import Dashboard, show
    from labelaudit.plots import build_map_figure  # noqa: F401
    from labelaudit.review.store import ReviewStore
    from labelaudit.scanning import ScanResult, get_embeddings, scan  # noqa: F401
    from labelaudit.workspace import Workspace

__version__ = "0.1.0"

# Before any thread of ours parses (np.load's .npy headers, Streamlit's page scripts): CPython
# 3.11.0-3.11.7's ast.parse is not thread-safe (labelaudit/ast_guard.py).
from labelaudit import ast_guard as _ast_guard  # noqa: E402

_ast_guard.install()

#: Public name -> (module, attribute), imported on first access.
_LAZY: dict[str, tuple[str, str]] = {
    "load_dataset": ("labelaudit.io", "load_dataset"),
    "Dataset": ("labelaudit.dataset", "Dataset"),
    "DataError": ("labelaudit.errors", "DataError"),
    "Problem": ("labelaudit.errors", "Problem"),
    "UsageError": ("labelaudit.errors", "UsageError"),
    "Workspace": ("labelaudit.workspace", "Workspace"),
    "scan": ("labelaudit.scanning", "scan"),
    "ScanResult": ("labelaudit.scanning", "ScanResult"),
    "build_map_figure": ("labelaudit.plots", "build_map_figure"),
    "get_embeddings": ("labelaudit.scanning", "get_embeddings"),
    "detect_label_issues": ("labelaudit.detect", "detect_label_issues"),
    "Detection": ("labelaudit.detect", "Detection"),
    "analyse_annotations": ("labelaudit.agreement", "analyse_annotations"),
    "Ratings": ("labelaudit.agreement", "Ratings"),
    "AgreementReport": ("labelaudit.agreement", "AgreementReport"),
    "train_dynamics": ("labelaudit.dynamics", "train_dynamics"),
    "data_map": ("labelaudit.dynamics", "data_map"),
    "InfluenceModel": ("labelaudit.influence", "InfluenceModel"),
    "ReviewStore": ("labelaudit.review.store", "ReviewStore"),
    "show": ("labelaudit.notebook", "show"),
    "Dashboard": ("labelaudit.notebook", "Dashboard"),
}

__all__ = [
    # load and check
    "load_dataset",
    "validate",
    "Dataset",
    "DataError",
    "Problem",
    "UsageError",
    "Workspace",
    # scan and detect
    "scan",
    "ScanResult",
    "build_map_figure",
    "detect_label_issues",
    "list_detectors",
    # several annotators
    "rater_agreement",
    "Ratings",
    "AgreementReport",
    # training dynamics and influence
    "training_dynamics",
    "influence_scores",
    "train_dynamics",
    "data_map",
    "InfluenceModel",
    # review, export and the return on the review
    "ReviewStore",
    "export",
    "report",
    # the dashboard
    "show",
    "Dashboard",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value  # later lookups skip this hook
        return value
    raise AttributeError(f"module 'labelaudit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


# --------------------------------------------------------------------------- facades
# Thin wrappers that give notebooks a one-call, DataFrame-in/DataFrame-out entry to a feature. They
# validate nothing themselves: the functions they call do.


def validate(data: Any, **options: Any) -> tuple[Dataset | None, list[Problem]]:
    """Load ``data`` like :func:`load_dataset` but return ``(dataset or None, problems)`` instead of raising.

    ``options`` are those of :func:`load_dataset` (``text_col``, ``label_col``, ``probs``, …). The
    problems are every error when the dataset is ``None``, else the warnings (possibly empty).

    Example:
        >>> import pandas as pd, labelaudit as la
        >>> ds, problems = la.validate(pd.DataFrame({"text": ["a", "b"], "label": ["x", "x"]}))
        >>> ds is None, problems[0].column
        (True, 'label')
    """
    from labelaudit.io import validate as _validate

    return _validate(data, **options)


def list_detectors() -> pd.DataFrame:
    """The registered label-issue detectors: one row per detector with ``name``, ``requires``
    (inputs it needs), ``default`` (runs when no list is given), ``cost`` and ``description``.

    Example:
        >>> import labelaudit as la
        >>> "confident_learning" in set(la.list_detectors()["name"])
        True
    """
    import pandas as pd

    from labelaudit.detectors import registry

    rows = [
        {
            "name": s.name,
            "requires": ", ".join(s.requires),
            "default": s.default,
            "cost": s.cost,
            "description": s.description,
        }
        for s in registry.all_detectors().values()
    ]
    return pd.DataFrame(rows, columns=["name", "requires", "default", "cost", "description"])


def rater_agreement(
    data: Dataset | pd.DataFrame,
    *,
    method: str = "mace",
    seed: int = 0,
    tie_break: str = "random",
    pred_probs: np.ndarray | None = None,
) -> AgreementReport:
    """Agreement between several annotators, a consensus label per item and a profile per annotator.

    ``data``: a :class:`Dataset` loaded with annotations (items in dataset order, classes of the
    dataset), or a long-format DataFrame ``item_id, annotator_id, label`` (classes = the sorted
    labels). ``method``: ``"mv"`` majority vote, ``"ds"`` Dawid–Skene, ``"mace"`` (default) or
    ``"crowdlab"`` (needs ``pred_probs`` float (I, K) in item order). Deterministic for a ``seed``.

    Returns an :class:`AgreementReport`: ``.statistics`` (Fleiss' kappa, Krippendorff's alpha, …),
    ``.items`` (``item_id``, ``consensus_label``, ``consensus_confidence`` in [0, 1], ``agreement``,
    …), ``.annotators`` (``annotator_id``, ``competence`` in [0, 1], ``likely_spammer``, …) and
    ``.summary_lines()``.

    Example:
        >>> import pandas as pd, labelaudit as la
        >>> ann = pd.DataFrame({"item_id": ["1", "1", "1", "2", "2", "2"],
        ...                     "annotator_id": ["a", "b", "c", "a", "b", "c"],
        ...                     "label": ["x", "x", "y", "y", "y", "y"]})
        >>> la.rater_agreement(ann, method="mv").items["consensus_label"].tolist()
        ['x', 'y']
    """
    import pandas as pd

    from labelaudit.agreement import Ratings, analyse_annotations
    from labelaudit.dataset import Dataset
    from labelaudit.errors import UsageError

    if isinstance(data, Dataset):
        ratings = Ratings.from_dataset(data)
    elif isinstance(data, pd.DataFrame):
        ratings = Ratings.from_frame(data)
    else:
        raise UsageError(
            f"rater_agreement() takes a Dataset or a DataFrame of annotations, not {type(data).__name__}"
        )
    return analyse_annotations(
        ratings,
        method=method,  # type: ignore[arg-type]
        seed=seed,
        tie_break=tie_break,  # type: ignore[arg-type]
        pred_probs=pred_probs,
    )


def _embeddings_for(ds: Dataset, embeddings: np.ndarray | None, workspace: Any) -> np.ndarray:
    import numpy as np

    from labelaudit.errors import UsageError

    if embeddings is None:
        from labelaudit.scanning import get_embeddings as _get_embeddings

        return _get_embeddings(ds, workspace=workspace)
    emb = np.asarray(embeddings, dtype=np.float32)
    if emb.ndim != 2 or len(emb) != ds.n:
        raise UsageError(f"embeddings must have shape (N={ds.n}, D), got {emb.shape}")
    return emb


def training_dynamics(
    ds: Dataset,
    *,
    embeddings: np.ndarray | None = None,
    workspace: Any = None,
    epochs: int = 20,
    seed: int = 0,
    aum: bool = True,
) -> pd.DataFrame:
    """Per-row training dynamics: data map, forgetting events and area under the margin.

    Uses the dataset's imported dynamics (``ds.dynamics``, (E, N, K) logits) when it has them;
    otherwise trains a softmax head on the training population's ``embeddings`` (float (N, D);
    default: the scan's embeddings from the bundled model, cached in ``workspace``) for ``epochs``
    epochs and records every row's logits after each epoch; rows of the protected ``test`` split are
    scored by the same run's checkpoints, as held-out rows
    (:func:`labelaudit.dynamics.training_population`). Deterministic for a ``seed``. The same rule
    and the same numbers as the datamap, forgetting and aum detectors and the Training dynamics page.

    Returns N rows in dataset order, the columns of the Training dynamics page's table
    (:data:`labelaudit.training_view.DYNAMICS_COLUMNS`): ``id``, ``text``, ``given_label``,
    ``in_training``, ``predicted_label``, ``confidence`` (mean probability of the given label over
    epochs, in [0, 1]), ``variability`` (its standard deviation), ``correctness`` (share of epochs
    predicted right), ``region`` (easy-to-learn / ambiguous / hard-to-learn; Swayamdipta et al.
    2020), ``forgetting_events`` (Toneva et al. 2019), ``never_learned``, and with ``aum`` (needs
    embeddings) ``aum``, ``aum_threshold``, ``aum_flag`` (Pleiss et al. 2020; NaN / False outside
    the training population).

    Example:
        >>> dyn = la.training_dynamics(ds, embeddings=res.embeddings)    # doctest: +SKIP
        >>> dyn[dyn["region"] == "hard-to-learn"].head()                   # doctest: +SKIP
    """
    from labelaudit.training_view import dynamics_table, population_of
    from labelaudit.workspace import as_workspace

    ws = as_workspace(workspace)
    emb = None
    if ds.dynamics is None or embeddings is not None:
        emb = _embeddings_for(ds, embeddings, ws)
    pop = population_of(ds, emb, ws, seed=seed, epochs=epochs, with_aum=aum)
    out = dynamics_table(ds, pop)
    if pop.aum is None:
        out = out.drop(columns=["aum", "aum_threshold", "aum_flag"])
    return out


def influence_scores(
    ds: Dataset,
    query_id: str,
    *,
    embeddings: np.ndarray | None = None,
    workspace: Any = None,
    method: str = "influence",
) -> pd.DataFrame:
    """How much each training row helps or hurts the model's fit of one query row.

    ``method="influence"``: the influence function (Koh & Liang 2017) of an L2-regularised softmax
    head on the embeddings, with exact Hessian solves; ``"tracin"``: TracIn (Pruthi et al. 2020) over
    the checkpoints of the training-dynamics run. The model trains on every row outside the
    protected ``test`` split. ``embeddings``: float (N, D) aligned with ``ds`` (default: the scan's,
    from the bundled model, cached in ``workspace``). ``query_id``: an ``id`` of ``ds``.

    Returns one row per training row, most helpful first: ``train_id``, ``text``, ``label``,
    ``score`` (positive = helpful: removing the row would raise the query's loss; negative =
    harmful) and ``rank`` (1 = most helpful). See :func:`labelaudit.influence.influence_table`.

    Example:
        >>> inf = la.influence_scores(ds, "12", embeddings=res.embeddings)  # doctest: +SKIP
        >>> inf.head(5), inf.tail(5)        # the most helpful and the most harmful rows   # doctest: +SKIP
    """
    from labelaudit.influence import influence_table, query_row
    from labelaudit.workspace import as_workspace

    query_row(ds, query_id)  # an unknown id fails before any embedding work
    ws = as_workspace(workspace)
    emb = _embeddings_for(ds, embeddings, ws)
    return influence_table(ds, emb, query_id, method=method, workspace=ws)


def export(
    ds: Dataset,
    *,
    out: str | Path,
    workspace: Any = None,
    store: ReviewStore | None = None,
    removed: str = "drop",
    log: bool = False,
    identity: Any = None,
) -> list[Path]:
    """Write the reviewed dataset (final labels and decisions) to ``out``, a ``.csv`` or ``.parquet`` file.

    Decisions come from ``store`` (default: the review store of ``workspace``, i.e.
    ``$LABELAUDIT_DB_URL`` or ``review.sqlite`` in it). One row per original row: ``id``, ``text``,
    ``final_label``, ``original_label``, ``action``, ``reviewer``, ``decided_at``, ``split`` and the
    source's metadata; ``removed="drop"`` leaves removed rows out, ``"flag"`` keeps them marked.
    With ``log`` the decision log is written next to it (``NAME.decisions.EXT``). CSV cells that a
    spreadsheet would run as formulas are neutralised. Returns the paths written. ``identity``
    (:class:`labelaudit.review.identity.Identity`): who exports; a store reviewed with roles needs
    a lead (:func:`labelaudit.review.export.check_export`).

    Example:
        >>> la.export(ds, out="clean.csv", workspace=".labelaudit")   # doctest: +SKIP
        [PosixPath('clean.csv')]
    """
    from labelaudit.review.export import export_review
    from labelaudit.workspace import Workspace, as_workspace

    own = store is None
    if store is None:
        ws = as_workspace(workspace) or Workspace()
        store = ws.review_store(read_only=True)
    try:
        return export_review(ds, store, out=out, removed=removed, log=log, identity=identity)  # type: ignore[arg-type]
    finally:
        if own:
            store.close()


def report(
    ds: Dataset,
    *,
    workspace: Any = None,
    store: ReviewStore | None = None,
    scan_result: ScanResult | None = None,
    out: str | Path | None = None,
    retrain: bool = True,
    next_n: int = 100,
    seed: int = 0,
) -> Any:
    """The return on the review so far: decisions, precision, reviewer time, before/after, projection.

    Reads the decisions and findings for ``ds`` from ``store`` (default: the review store of
    ``workspace``) and the scan from ``scan_result`` (default: the latest stored scan of ``ds`` in
    ``workspace``; without one there is no before/after). ``retrain``: retrain the classifier on
    the reviewed labels for the before/after (cached; ``False`` uses a stored result only).
    ``next_n``: rows in the "review the next N" projection. With ``out`` (``.html``), also writes
    the self-contained HTML report there.

    Returns a :class:`labelaudit.reporting.RoiReport`: ``.summary`` (counts per action, precision by
    class and detector, reviewer time), ``.before_after`` (macro-F1 and accuracy with paired
    bootstrap intervals, or None), ``.projection``; its Plotly figures come from
    :func:`labelaudit.reporting.report_figures`.

    Example:
        >>> rep = la.report(ds, workspace=".labelaudit", out="roi.html")   # doctest: +SKIP
        >>> rep.summary.n_reviewed                                          # doctest: +SKIP
        120
    """
    from labelaudit.reporting import compute_report, find_scan, write_report
    from labelaudit.workspace import Workspace, as_workspace

    ws = as_workspace(workspace) or Workspace()
    own = store is None
    if store is None:
        store = ws.review_store(read_only=True)
    try:
        log = store.log(ds.content_hash)
        findings = store.findings(ds.content_hash)
    finally:
        if own:
            store.close()
    res = scan_result if scan_result is not None else find_scan(ds, ws)
    det = None if res is None else res.detection
    rep = compute_report(
        ds,
        log,
        findings,
        scan_table=None if res is None else res.table,
        details=None if det is None else det.details,
        embeddings=None if res is None else res.embeddings,
        workspace=ws,
        next_n=next_n,
        seed=seed,
        retrain=retrain,
    )
    if out is not None:
        write_report(rep, out)
    return rep

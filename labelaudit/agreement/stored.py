"""An :class:`~labelaudit.agreement.AgreementReport` stored in the workspace and read back whole.

The scan stores the report of the Annotators page's default settings (:data:`DEFAULT_SETTINGS`)
beside the dataset, so that a page view reads it (a few Parquet and ``.npy`` files, no EM run)
instead of computing it. Everything is keyed by the dataset's content hash and the settings the
report was asked for (``method`` as asked, e.g. ``auto``; ``report.method`` is the one it chose).

Artifacts (:mod:`labelaudit.workspace`, under the content hash)::

    agreement_items-*.parquet       report.items (other pages and notebooks read it too)
    agreement_annotators-*.parquet  report.annotators
    agreement_pairs-*.parquet       report.pairs
    agreement_per_class-*.parquet   report.per_class
    agreement_<array>-*.npy         the truth's posterior, consensus, competence and confusion,
                                    and the report's (J, K, K) confusion counts
    agreement_report-*.json         written last: method, statistics, notes, truth details;
                                    its presence marks a complete report

The ratings are not stored: they are :meth:`Ratings.from_dataset` of the same dataset (what the
report was computed from), rebuilt in well under a second. Nothing is unpickled: JSON through
:mod:`labelaudit.typed_json`, arrays with ``allow_pickle=False``.

>>> report = stored_report(ws, ds, DEFAULT_SETTINGS)        # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from labelaudit import typed_json
from labelaudit.agreement import AgreementReport, Ratings, Statistic, TruthResult
from labelaudit.dataset import Dataset
from labelaudit.workspace import Workspace

#: Bump when what is stored changes: older stored reports are then ignored (and recomputed).
VERSION = 1
#: The Annotators page's first view: the method chosen for the data, seed 0, ties at random.
DEFAULT_SETTINGS: dict[str, Any] = {"method": "auto", "seed": 0, "tie_break": "random"}
_FRAMES = ("items", "annotators", "pairs", "per_class")
_TRUTH_ARRAYS = ("posterior", "consensus", "competence", "confusion")


def settings_params(method: str, seed: int, tie_break: str = "random") -> dict[str, Any]:
    """The key of a stored report (``tie_break`` only matters for majority vote, as
    :func:`components.annotators.artifact_params` keys ``agreement_items``)."""
    return {
        "method": method,
        "seed": int(seed),
        **({"tie_break": tie_break} if method == "mv" else {}),
    }


def _key(params: dict[str, Any]) -> dict[str, Any]:
    return {**params, "agreement_version": VERSION}


def compute_report(
    ds: Dataset, *, method: str, seed: int, tie_break: str = "random"
) -> AgreementReport:
    """:func:`labelaudit.agreement.analyse_annotations` of ``ds``'s annotations, with its given
    probabilities (in the ratings' item order) when it has them."""
    from labelaudit.agreement import analyse_annotations

    ratings = Ratings.from_dataset(ds)
    probs = None
    if ds.pred_probs is not None:
        probs = ds.pred_probs[[ds.id_to_row[i] for i in ratings.item_ids]]
    return analyse_annotations(
        ratings,
        method=method,
        seed=seed,
        tie_break=tie_break,  # type: ignore[arg-type]
        pred_probs=probs,
    )


def save_report(
    ws: Workspace, content_hash: str, report: AgreementReport, params: dict[str, Any]
) -> None:
    """Store ``report`` under ``content_hash`` and ``params`` (:func:`settings_params`)."""
    key = _key(params)
    # agreement_items keeps the key other readers use (no version: its columns are documented)
    ws.save(content_hash, "agreement_items", report.items, params, ext="parquet")
    for name in _FRAMES[1:]:
        ws.save(content_hash, f"agreement_{name}", getattr(report, name), key, ext="parquet")
    truth = report.truth
    arrays = {f"truth_{a}": getattr(truth, a) for a in _TRUTH_ARRAYS}
    arrays["confusion"] = report.confusion
    present = []
    for name, value in arrays.items():
        if value is not None:
            ws.save(content_hash, f"agreement_{name}", np.asarray(value), key)
            present.append(name)
    meta = {
        "method": report.method,
        "statistics": [asdict(s) for s in report.statistics],
        "notes": list(report.notes),
        "truth_method": truth.method,
        "truth_details": typed_json.encode(truth.details, "truth.details"),
        "arrays": present,
        "n_items": int(report.ratings.n_items),
    }
    ws.save(content_hash, "agreement_report", meta, key, ext="json")  # last: marks it complete


def has_report(ws: Workspace, content_hash: str, params: dict[str, Any]) -> bool:
    """Whether a report for ``params`` is stored under ``content_hash`` (nothing is read)."""
    return ws.has(content_hash, "agreement_report", _key(params), ext="json")


def load_report(ws: Workspace, ds: Dataset, params: dict[str, Any]) -> AgreementReport | None:
    """The report stored for ``ds`` and ``params``, or None when there is none (or it does not fit
    the dataset's ratings any more)."""
    key, h = _key(params), ds.content_hash
    if not ws.has(h, "agreement_report", key, ext="json") or not ws.has(
        h, "agreement_items", params, ext="parquet"
    ):
        return None
    meta = ws.load(h, "agreement_report", key, ext="json")
    ratings = Ratings.from_dataset(ds)
    if int(meta.get("n_items", -1)) != ratings.n_items:
        return None
    arrays: dict[str, Any] = {}
    for name in meta["arrays"]:
        if not ws.has(h, f"agreement_{name}", key):
            return None
        arrays[name] = ws.load(h, f"agreement_{name}", key)
    frames = {"items": ws.load(h, "agreement_items", params, ext="parquet")}
    for name in _FRAMES[1:]:
        if not ws.has(h, f"agreement_{name}", key, ext="parquet"):
            return None
        frames[name] = ws.load(h, f"agreement_{name}", key, ext="parquet")
    truth = TruthResult(
        method=meta["truth_method"],
        posterior=arrays["truth_posterior"],
        consensus=arrays["truth_consensus"],
        competence=arrays.get("truth_competence"),
        confusion=arrays.get("truth_confusion"),
        details=typed_json.decode(meta["truth_details"]),
    )
    return AgreementReport(
        ratings=ratings,
        method=meta["method"],
        statistics=[Statistic(**s) for s in meta["statistics"]],
        truth=truth,
        confusion=arrays["confusion"],
        notes=list(meta["notes"]),
        **frames,
    )


def stored_report(
    ws: Workspace, ds: Dataset, settings: dict[str, Any] | None = None
) -> AgreementReport:
    """The report of ``ds`` for ``settings`` (default :data:`DEFAULT_SETTINGS`): read when stored,
    else computed and stored (so that it is computed once per dataset and settings)."""
    s = {**DEFAULT_SETTINGS, **(settings or {})}
    params = settings_params(s["method"], s["seed"], s["tie_break"])
    report = load_report(ws, ds, params)
    if report is None:
        report = compute_report(ds, method=s["method"], seed=s["seed"], tie_break=s["tie_break"])
        save_report(ws, ds.content_hash, report, params)
    return report

"""Export the reviewed dataset and the decision log, as CSV or Parquet.

The cleaned dataset has one row per original row (removed rows dropped, or kept and flagged), with
``id``, ``text``, ``final_label``, ``original_label``, ``action`` (empty when undecided),
``reviewer``, ``decided_at`` (ISO 8601 UTC), ``split`` and the source's metadata columns. Load it
back with ``--label-col final_label``.

CSV files come from the one writer, :mod:`labelaudit.csvfile`: they read back to the same values
(quoted CR/LF), and cells a spreadsheet would run as a formula get a leading apostrophe that
:func:`labelaudit.csvfile.restore_formulas` removes again; Parquet keeps the values unchanged (it
is typed data, never evaluated).

Exporting is a lead's action (:mod:`labelaudit.review.identity`): for a review store used with
roles (:func:`roles_in_use`) :func:`export_review` needs the identity of a lead, checked with the
same :func:`~labelaudit.review.identity.require_lead` as bulk decisions; a plain dataset reviewed
without roles exports for anyone, as before.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Literal

import pandas as pd
import sqlalchemy as sa

from labelaudit.csvfile import neutralise_formulas, restore_formulas, to_csv_bytes
from labelaudit.dataset import ID, LABEL, SPLIT, TEXT, Dataset
from labelaudit.errors import UsageError
from labelaudit.review.identity import Identity, leads_from_env, require_lead, role_for
from labelaudit.review.store import ReviewStore, blind_decisions_table, decision_identities_table

__all__ = [
    "check_export",
    "cleaned_dataset",
    "decision_log",
    "exporter",
    "export_review",
    "file_format",
    "log_path_for",
    "neutralise_formulas",
    "restore_formulas",
    "roles_in_use",
    "to_csv_bytes",
    "to_parquet_bytes",
    "write_table",
]

RemovedMode = Literal["drop", "flag"]
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def cleaned_dataset(
    ds: Dataset, current: pd.DataFrame, *, removed: RemovedMode = "drop"
) -> pd.DataFrame:
    """The dataset with the review applied, one row per kept row (N rows minus removed ones).

    ``current``: :meth:`ReviewStore.current` for ``ds.content_hash``. ``removed="drop"`` leaves
    removed rows out; ``"flag"`` keeps them with ``removed=True`` and an empty ``final_label``.

    >>> cleaned_dataset(ds, store.current(ds.content_hash), removed="flag").columns[:4].tolist()  # doctest: +SKIP
    ['id', 'text', 'final_label', 'original_label']
    """
    if removed not in ("drop", "flag"):
        raise UsageError(f"removed rows: 'drop' or 'flag', got {removed!r}")
    f = ds.frame
    cur = (
        current.set_index("item_id")
        if len(current)
        else pd.DataFrame(columns=["action", "final_label", "reviewer", "decided_at"])
    )
    ids = f[ID]
    action = ids.map(cur["action"]).fillna("").astype(str)
    decided = action != ""
    final = ids.map(cur["final_label"]).where(decided, f[LABEL]).astype(object)
    final[action == "remove"] = None
    decided_at = pd.to_datetime(ids.map(cur["decided_at"]), utc=True)
    out = pd.DataFrame(
        {
            ID: ids,
            TEXT: f[TEXT],
            "final_label": final,
            "original_label": f[LABEL],
            "action": action,
            "reviewer": ids.map(cur["reviewer"]).fillna("").astype(str),
            "decided_at": decided_at.map(lambda t: "" if pd.isna(t) else t.isoformat()),
            SPLIT: f[SPLIT],
        }
    )
    if removed == "flag":
        out["removed"] = action == "remove"
    else:
        out = out[action != "remove"]
    for col in ds.metadata_columns:
        if col not in out:
            out[col] = f.loc[out.index, col]
    return out.reset_index(drop=True)


def decision_log(store: ReviewStore, dataset_version: str | None) -> pd.DataFrame:
    """The decision log (:data:`~labelaudit.review.store.LOG_COLUMNS`) with ``decided_at`` as ISO 8601 text."""
    log = store.log(dataset_version)
    log["decided_at"] = log["decided_at"].map(lambda t: t.isoformat())
    return log


def to_parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def file_format(path: str | Path) -> str:
    """'csv' or 'parquet' from the file name; UsageError otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(
            f"cannot tell the export format of {path}: use a .csv or .parquet file name"
        )
    return FORMATS[suffix]


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` as CSV (formulas neutralised) or Parquet, chosen by the suffix; atomic rename."""
    p = Path(path)
    fmt = file_format(p)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_bytes(to_csv_bytes(df, what=p.name) if fmt == "csv" else to_parquet_bytes(df))
    tmp.replace(p)
    return p


def log_path_for(out: str | Path) -> Path:
    """Where ``export --log`` writes the decision log: ``clean.csv`` -> ``clean.decisions.csv``."""
    p = Path(out)
    return p.with_name(f"{p.stem}.decisions{p.suffix}")


#: What makes a review store one used with roles: a decision made in the app (signed in or typed)
#: by someone in the role ``reviewer``. The app records everyone as ``lead`` unless the deployment
#: names leads (``LABELAUDIT_LEADS``), so such a decision means leads were named when it was made.
_APP_AUTH = ("oidc", "typed")


def roles_in_use(
    store: ReviewStore, dataset_version: str | None = None, *, leads: frozenset[str] | None = None
) -> str:
    """Why ``store`` is used with roles, as a phrase for a message; empty when it is not.

    Roles are in use when ``LABELAUDIT_LEADS`` names leads (``leads``: :func:`leads_from_env` by
    default), or when the store holds a decision or a blind review made in the app by a
    ``reviewer`` (of ``dataset_version`` when given): a database a team reviewed with roles keeps
    them when it is opened from a shell without the deployment's settings.

    >>> roles_in_use(store, leads=frozenset({"lea"}))   # doctest: +SKIP
    'LABELAUDIT_LEADS names the leads'
    """
    leads = leads_from_env() if leads is None else leads
    if leads:
        return "LABELAUDIT_LEADS names the leads"
    with store.reading() as conn:
        for table, what in (
            (decision_identities_table, "decisions"),
            (blind_decisions_table, "blind reviews"),
        ):
            if table.name in store._absent:  # an older database opened read-only
                continue
            c = table.c
            query = sa.select(c.role).where((c.role == "reviewer") & c.auth.in_(_APP_AUTH))
            if dataset_version is not None:
                query = query.where(c.dataset_version == dataset_version)
            if conn.execute(query.limit(1)).first() is not None:
                return f"it holds {what} made in the app by reviewers who are not leads"
    return ""


def check_export(
    store: ReviewStore,
    dataset_version: str | None,
    identity: Identity | None,
    *,
    leads: frozenset[str] | None = None,
) -> None:
    """The lead-only rule for exporting the review of ``dataset_version`` from ``store``.

    With an ``identity``: :func:`~labelaudit.review.identity.require_lead`, as for bulk decisions.
    Without one (a script, the CLI without ``--as``): allowed unless the store is used with roles
    (:func:`roles_in_use`), then a UsageError saying why and how to name the lead.

    >>> check_export(store, ds.content_hash, Identity("bo", role="reviewer"))   # doctest: +SKIP
    Traceback (most recent call last):
    labelaudit.errors.UsageError: only a lead can export the reviewed dataset; bo is a reviewer
    """
    if identity is not None:
        require_lead(identity, "export the reviewed dataset")
        return
    why = roles_in_use(store, dataset_version, leads=leads)
    if why:
        raise UsageError(
            f"only a lead can export the reviewed dataset of {store.described}: it is reviewed "
            f"with roles ({why}). Say who exports: `labelaudit export --as NAME` with NAME among "
            "the leads in LABELAUDIT_LEADS, or identity=Identity(NAME, role='lead') in Python"
        )


def exporter(
    name: str,
    store: ReviewStore,
    dataset_version: str | None,
    *,
    leads: frozenset[str] | None = None,
) -> Identity:
    """The identity of a person exporting from a script or the CLI (``labelaudit export --as
    NAME``): ``name`` with the role ``LABELAUDIT_LEADS`` gives it (``leads``), auth ``script``.

    A store used with roles while no lead is named here (``LABELAUDIT_LEADS`` unset in this shell)
    is a UsageError: with nobody named everyone counts as a lead, which would let any name export
    what the team's deployment reserves for its leads.
    """
    leads = leads_from_env() if leads is None else leads
    if not leads:
        why = roles_in_use(store, dataset_version, leads=leads)
        if why:
            raise UsageError(
                f"--as {name}: the review store {store.described} is reviewed with roles ({why}) "
                "but LABELAUDIT_LEADS is not set here, so no name can be checked as a lead; set it "
                "as the app's deployment does (comma-separated names or e-mail addresses)"
            )
    return Identity(name, auth="script", role=role_for([name], leads))


def export_review(
    ds: Dataset,
    store: ReviewStore,
    *,
    out: str | Path,
    removed: RemovedMode = "drop",
    log: bool = False,
    identity: Identity | None = None,
) -> list[Path]:
    """Write the cleaned dataset to ``out`` (.csv or .parquet) and, with ``log``, the decision log next
    to it (:func:`log_path_for`). Returns the paths written.

    ``identity``: who exports; checked by :func:`check_export` (a lead for a store used with roles)
    before anything is read or written."""
    file_format(out)  # fail before any work on a bad name
    check_export(store, ds.content_hash, identity)
    written = [
        write_table(cleaned_dataset(ds, store.current(ds.content_hash), removed=removed), out)
    ]
    if log:
        written.append(write_table(decision_log(store, ds.content_hash), log_path_for(out)))
    return written

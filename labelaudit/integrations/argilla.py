"""Argilla 2.x: the review queue as a dataset folder to import (``rg.Dataset.from_disk``), and the
responses of an exported dataset read back as annotations.

The folder is the one ``rg.Dataset.to_disk`` writes: ``.argilla/settings.json`` (a text field, a
single-label question over the classes, metadata properties), ``.argilla/dataset.json`` and
``records.json`` (one record per item: the text, the suggestion with its score and agent, the given
label, score and evidence as metadata). labelaudit writes and reads these files itself: the ``argilla``
package needs a server connection even to build its settings objects, and nothing here needs one. The
tests check the files against the SDK's own ``Settings``/``Record`` classes.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from labelaudit.dataset import Dataset
from labelaudit.errors import DataError, Problem, UsageError

QUESTION = "label"
FIELD = "text"
AGENT = "labelaudit"
METADATA = (("given_label", "terms"), ("label_issue_score", "float"), ("evidence", "terms"))


def _settings(classes: list[str]) -> dict[str, Any]:
    def base(name: str) -> dict[str, Any]:
        return {
            "id": None,
            "inserted_at": None,
            "updated_at": None,
            "name": name,
            "title": name,
            "dataset_id": None,
        }

    meta = []
    for name, kind in METADATA:
        settings: dict[str, Any] = {"visible_for_annotators": True, "type": kind}
        if kind == "terms":
            settings["values"] = None
        else:
            settings.update(min=None, max=None)
        meta.append({**base(name), "settings": settings, "visible_for_annotators": True})
    return {
        "guidelines": "Pick the correct label. labelaudit's suggestion is pre-filled; the given label, "
        "the label-issue score and the evidence are in the metadata.",
        "fields": [
            {
                **base(FIELD),
                "settings": {"type": "text", "use_markdown": False},
                "required": True,
                "description": None,
                "type": "text",
            }
        ],
        "questions": [
            {
                **base(QUESTION),
                "settings": {
                    "type": "label_selection",
                    "options": [{"text": c, "value": c} for c in classes],
                    "visible_options": None,
                },
                "description": None,
                "required": True,
                "type": "label_selection",
            }
        ],
        "vectors": [],
        "metadata": meta,
        "allow_extra_metadata": False,
        "distribution": {"strategy": "overlap", "min_submitted": 1},
        "mapping": None,
    }


def queue_records(
    ds: Dataset, item_ids: list[str], *, scan: Any | None = None
) -> list[dict[str, Any]]:
    """One Argilla record dict (``rg.Record.to_dict()`` shape) per item, in queue order."""
    from labelaudit.integrations.labelstudio.sync import build_tasks

    out = []
    for t in build_tasks(ds, item_ids, scan=scan):
        d = t["data"]
        rec: dict[str, Any] = {
            "id": d["item_id"],
            "fields": {FIELD: d["text"]},
            "metadata": {
                "given_label": d["given_label"],
                "evidence": d["evidence"],
            },
            "suggestions": {},
            "responses": {},
            "vectors": {},
            "status": "pending",
            "_server_id": None,
        }
        if d["label_issue_score"] != "":
            rec["metadata"]["label_issue_score"] = float(d["label_issue_score"])
        if t.get("predictions"):
            p = t["predictions"][0]
            rec["suggestions"][QUESTION] = {
                "value": d["suggested_label"],
                "score": p.get("score"),
                "agent": f"{AGENT} {p['model_version']}",
            }
        out.append(rec)
    return out


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False)
    os.replace(tmp, path)


def export_argilla(
    ds: Dataset,
    item_ids: list[str],
    *,
    out: str | Path,
    scan: Any | None = None,
    name: str | None = None,
) -> Path:
    """Write the queue as an Argilla dataset folder at ``out`` (import it with
    ``rg.Dataset.from_disk(out, workspace=...)``). Returns ``out``.

    >>> export_argilla(ds, queue[:500], out="review_argilla", scan=res)   # doctest: +SKIP
    """
    p = Path(out)
    if p.exists() and any(p.iterdir()):
        raise UsageError(
            f"{out}: the folder is not empty; Argilla's from_disk needs a folder of its own"
        )
    missing = [i for i in item_ids if i not in ds.id_to_row]
    if missing:
        raise UsageError(f"{len(missing)} queue id(s) are not in the dataset, e.g. {missing[0]!r}")
    _write_json(p / ".argilla" / "settings.json", _settings(list(ds.classes)))
    _write_json(
        p / ".argilla" / "dataset.json",
        {
            "id": None,
            "name": name or f"labelaudit-review-{ds.content_hash[:8]}",
            "status": "draft",
            "guidelines": None,
            "allow_extra_metadata": False,
            "distribution": None,
            "workspace_id": None,
            "inserted_at": None,
            "updated_at": None,
            "last_activity_at": None,
        },
    )
    _write_json(p / "records.json", queue_records(ds, list(dict.fromkeys(item_ids)), scan=scan))
    return p


def read_argilla_responses(
    path: str | Path, *, question: str = QUESTION, users: dict[str, str] | None = None
) -> pd.DataFrame:
    """Responses of an exported Argilla dataset (its ``records.json``, or the folder holding it) as
    annotations: ``item_id, annotator_id, label`` (pass it as ``annotations=`` to ``load_dataset``).

    ``users``: user id -> name, to show names instead of ids. Records without a response to
    ``question`` give no row; a response of another shape is a DataError naming the record.
    """
    p = Path(path)
    f = p / "records.json" if p.is_dir() else p
    try:
        raw = json.loads(f.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            Problem(f"no such file: {f}", "an Argilla records.json", file=f.name)
        ) from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(
            Problem(f"cannot read it as JSON ({e})", "an Argilla records.json", file=f.name)
        ) from None
    if isinstance(raw, dict) and "records" in raw:
        raw = raw["records"]
    if not isinstance(raw, list):
        raise DataError(
            Problem(f"a JSON {type(raw).__name__}", "a list of Argilla records", file=f.name)
        )
    rows = []
    for pos, r in enumerate(raw, start=1):
        if not isinstance(r, dict) or "id" not in r:
            raise DataError(
                Problem(
                    "not an Argilla record", "an object with id and responses", file=f.name, row=pos
                )
            )
        responses = (r.get("responses") or {}).get(question) or []
        if not isinstance(responses, list):
            raise DataError(
                Problem(
                    f"responses.{question} is a JSON {type(responses).__name__}",
                    "a list of responses",
                    file=f.name,
                    row=pos,
                    column=f"responses.{question}",
                )
            )
        for j, resp in enumerate(responses):
            value = resp.get("value") if isinstance(resp, dict) else None
            if not isinstance(value, str):
                raise DataError(
                    Problem(
                        f"the response value is {value!r}",
                        "one label (a single-label question)",
                        file=f.name,
                        row=pos,
                        column=f"responses.{question}[{j}].value",
                    )
                )
            if resp.get("status") not in (None, "submitted"):
                continue  # drafts and discarded responses are not decisions
            uid = str(resp.get("user_id") or "unknown")
            rows.append(
                {
                    "item_id": str(r["id"]),
                    "annotator_id": (users or {}).get(uid, uid),
                    "label": value,
                }
            )
    return pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"])

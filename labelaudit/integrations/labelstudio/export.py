"""Reading a Label Studio project export (the JSON export: one object per task).

Each task becomes one dataset row; every annotation of it (any number of annotators) one row of the
annotations companion; the task's predictions become metadata columns. The given label of a row is, in
this order: the task data field named by ``label_field``; the annotation marked ground truth; the most
frequent label among the task's annotations (ties: the earliest annotation among the tied labels).
Tasks with no label at all are left out and counted in a warning, never dropped silently.

The same parser reads what :func:`labelaudit.integrations.labelstudio.sync.pull_decisions` downloads
from a server, so a file export and a live project are read by one piece of code.

Every problem names the file, the task (``row``: its 1-based position in the export), the field (a
path such as ``annotations[1].result[0].value.choices``), what was found and what was expected.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from labelaudit.errors import DataError, Problem, Report
from labelaudit.integrations.labelstudio.config import (
    OWN_PREFIX,
    ClassificationConfig,
    parse_label_config,
)

#: Data keys tried, in order, for the item id when ``id_field`` is not given (the task id otherwise).
ID_FIELDS = ("item_id", "id", "idx", "guid", "uid")
#: Rows listed by name in one message before the rest are counted.
MAX_LISTED = 5


@dataclass
class LabelStudioAnnotation:
    """One annotation (or prediction) result for the class control, as read from a task."""

    task_id: int
    annotation_id: int | None
    annotator: str
    label: str | None
    flag: str | None
    created_at: pd.Timestamp | None
    updated_at: pd.Timestamp | None
    ground_truth: bool = False
    cancelled: bool = False


@dataclass
class LabelStudioTask:
    """One task of an export: position (1-based), ids, data and its class-control annotations."""

    position: int
    task_id: int
    item_id: str
    data: dict[str, Any]
    annotations: list[LabelStudioAnnotation] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class LabelStudioExport:
    """A parsed export: the config used, its tasks, and non-fatal problems."""

    config: ClassificationConfig
    tasks: list[LabelStudioTask]
    file: str
    warnings: list[Problem] = field(default_factory=list)


def looks_like_labelstudio_export(path: str | Path) -> bool:
    """True when ``path`` is a .json file whose first task has Label Studio's ``data`` plus
    ``annotations``/``predictions`` (or the pre-1.0 ``completions``). Reads only the file's start."""
    p = Path(path)
    if p.suffix.lower() != ".json" or not p.is_file():
        return False
    try:
        with p.open("rb") as f:
            head = f.read(65536).decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
    except OSError:
        return False
    if not head.startswith("["):
        return False
    return '"data"' in head and any(
        k in head for k in ('"annotations"', '"predictions"', '"completions"')
    )


def _annotator(a: dict[str, Any]) -> str:
    who = a.get("completed_by")
    if isinstance(who, dict):
        return str(who.get("email") or who.get("username") or f"user {who.get('id', '?')}")
    if who is None or who == "":
        return "unknown annotator"
    return f"user {who}"


def _ts(v: Any) -> pd.Timestamp | None:
    if not v:
        return None
    t = pd.to_datetime(v, errors="coerce", utc=True)
    return None if pd.isna(t) else t


def _infer_config(
    tasks: list[Any], file: str, text_field: str | None, control: str | None
) -> ClassificationConfig:
    """Without a labeling config: the control from the results' ``from_name``, the classes from the
    values used, the text field from the data keys."""
    names: Counter[str] = Counter()
    types: Counter[str] = Counter()
    values: dict[str, None] = {}
    keys: Counter[str] = Counter()
    for t in tasks:
        if not isinstance(t, dict):
            continue
        if isinstance(t.get("data"), dict):
            keys.update(k for k, v in t["data"].items() if isinstance(v, str))
        for kind in ("annotations", "predictions"):
            for a in t.get(kind) or []:
                for r in (a.get("result") or []) if isinstance(a, dict) else []:
                    if not isinstance(r, dict) or str(r.get("from_name", "")).startswith(
                        OWN_PREFIX
                    ):
                        continue
                    types[str(r.get("type"))] += 1
                    if r.get("type") == "choices":
                        names[str(r.get("from_name"))] += 1
                        for v in (r.get("value") or {}).get("choices") or []:
                            values[str(v)] = None
    expected = "single-choice classification results (type 'choices')"
    if control is None:
        if not names:
            found = ", ".join(f"{n} '{k}'" for k, n in types.most_common()) or "no results"
            raise DataError(
                Problem(
                    f"the export is not single-choice text classification: its results are {found}",
                    expected,
                    file=file,
                    fix="labelaudit reviews one class label per text; pass the project's labeling "
                    "config (label_config=) if it is a classification project",
                )
            )
        if len(names) > 1:
            raise DataError(
                Problem(
                    f"results come from several Choices controls: {sorted(names)}",
                    "one class-label control",
                    file=file,
                    fix="say which holds the class label with --label-col NAME",
                )
            )
        control = next(iter(names))
    if text_field is None:
        for cand in (
            "text",
            "sentence",
            "utterance",
            "content",
            "message",
            "review",
            "document",
            "body",
        ):
            if cand in keys:
                text_field = cand
                break
        else:
            strs = [k for k in keys if k not in ID_FIELDS]
            if len(strs) != 1:
                raise DataError(
                    Problem(
                        f"cannot tell which task data field holds the text among {sorted(keys)}",
                        "a field named text, or the labeling config",
                        file=file,
                        fix="say which with --text-col FIELD, or pass the labeling config (label_config=)",
                    )
                )
            text_field = strs[0]
    classes = sorted(values)
    return ClassificationConfig(text_field=text_field, control=control, classes=classes)


def parse_export(
    content: str | bytes | list[Any],
    *,
    file: str = "<Label Studio export>",
    label_config: str | None = None,
    text_field: str | None = None,
    control: str | None = None,
    id_field: str | None = None,
) -> LabelStudioExport:
    """Parse a Label Studio JSON export (text, bytes or the decoded list) and check it.

    ``label_config``: the project's labeling config XML, which gives the text field, the class control
    and the class list (including classes nobody chose yet); without it they are inferred from the
    results. ``text_field`` / ``control`` / ``id_field`` override. Raises DataError with every problem.
    """
    rep = Report()
    if isinstance(content, list):
        raw: Any = content
    else:
        try:
            raw = json.loads(content)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(
                Problem(
                    f"not valid JSON ({e})",
                    "a Label Studio JSON export (a list of tasks)",
                    file=file,
                )
            ) from None
    if isinstance(raw, dict):
        hint = "a JSON object"
        if "data" in raw:
            hint = "a single task, not a list of tasks"
        raise DataError(
            Problem(
                f"the export is {hint}",
                "a Label Studio JSON export: a list of tasks with data and annotations",
                file=file,
                fix="export the project with the JSON format (not JSON_MIN, CSV or a single task)",
            )
        )
    if not isinstance(raw, list) or not raw:
        raise DataError(
            Problem(
                "the export has no tasks"
                if isinstance(raw, list)
                else f"a JSON {type(raw).__name__}",
                "a list of at least one task",
                file=file,
            )
        )
    if label_config is not None:
        cfg = parse_label_config(label_config, control=control, text_field=text_field, file=file)
    else:
        cfg = _infer_config(raw, file, text_field, control)
    tasks: list[LabelStudioTask] = []
    seen_ids: dict[str, int] = {}
    for pos, t in enumerate(raw, start=1):
        task = _parse_task(t, pos, cfg, file, id_field, rep)
        if task is None:
            continue
        if task.item_id in seen_ids:
            rep.error(
                f"item id '{task.item_id}' is also the id of task {seen_ids[task.item_id]}",
                "a unique id per task",
                file=file,
                row=pos,
                column=f"data.{id_field}" if id_field else "id",
            )
            continue
        seen_ids[task.item_id] = pos
        tasks.append(task)
    rep.raise_if_errors()
    return LabelStudioExport(config=cfg, tasks=tasks, file=file, warnings=rep.warnings)


def _parse_task(
    t: Any, pos: int, cfg: ClassificationConfig, file: str, id_field: str | None, rep: Report
) -> LabelStudioTask | None:
    if not isinstance(t, dict):
        rep.error(f"a JSON {type(t).__name__}", "a task object", file=file, row=pos)
        return None
    if "completions" in t and "annotations" not in t:
        rep.error(
            "the task has 'completions' (the export format of Label Studio before 1.0)",
            "'annotations' (Label Studio 1.x)",
            file=file,
            row=pos,
            column="completions",
            fix="re-export the project from Label Studio 1.x",
        )
        return None
    data = t.get("data")
    if not isinstance(data, dict):
        rep.error(
            f"'data' is {type(data).__name__ if data is not None else 'missing'}",
            "an object with the task's fields",
            file=file,
            row=pos,
            column="data",
            fix="export with the JSON format, not JSON_MIN or CSV",
        )
        return None
    text = data.get(cfg.text_field)
    if not isinstance(text, str) or not text.strip():
        rep.error(
            f"the text field is {'empty' if isinstance(text, str) else repr(text) if text is not None else 'missing'}"
            f" (task {t.get('id', '?')})",
            f"a non-empty string in data.{cfg.text_field}",
            file=file,
            row=pos,
            column=f"data.{cfg.text_field}",
        )
        return None
    tid = t.get("id")
    if not isinstance(tid, int):
        tid = pos
    if id_field is not None:
        item = data.get(id_field)
        if item is None or str(item).strip() == "":
            rep.error(
                "the id field is missing or empty",
                f"an id in data.{id_field}",
                file=file,
                row=pos,
                column=f"data.{id_field}",
            )
            return None
        item_id = _id_str(item)
    else:
        key = next((k for k in ID_FIELDS if data.get(k) not in (None, "")), None)
        item_id = _id_str(data[key]) if key else str(tid)
    task = LabelStudioTask(position=pos, task_id=tid, item_id=item_id, data=data)
    for i, a in enumerate(t.get("annotations") or []):
        ann = _parse_result(a, f"annotations[{i}]", pos, tid, cfg, file, rep)
        if ann is not None:
            task.annotations.append(ann)
    for i, p in enumerate(t.get("predictions") or []):
        if not isinstance(p, dict):
            continue  # newer servers list only prediction ids in the export; the label is in the annotation
        pred = _parse_result(p, f"predictions[{i}]", pos, tid, cfg, file, rep)
        if pred is not None and pred.label is not None:
            task.predictions.append(
                {
                    "label": pred.label,
                    "score": p.get("score") if isinstance(p, dict) else None,
                    "model_version": str(p.get("model_version") or "")
                    if isinstance(p, dict)
                    else "",
                }
            )
    return task


def _id_str(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _parse_result(
    a: Any, where: str, pos: int, tid: int, cfg: ClassificationConfig, file: str, rep: Report
) -> LabelStudioAnnotation | None:
    if not isinstance(a, dict):
        rep.error(
            f"a JSON {type(a).__name__}", "an annotation object", file=file, row=pos, column=where
        )
        return None
    result = a.get("result")
    if result is None:
        result = []
    if not isinstance(result, list):
        rep.error(
            f"'result' is a JSON {type(result).__name__}",
            "a list of results",
            file=file,
            row=pos,
            column=f"{where}.result",
        )
        return None
    label = flag = None
    for j, r in enumerate(result):
        col = f"{where}.result[{j}]"
        if not isinstance(r, dict):
            rep.error(
                f"a JSON {type(r).__name__}", "a result object", file=file, row=pos, column=col
            )
            return None
        name = str(r.get("from_name", ""))
        if name != cfg.control and not name.startswith(OWN_PREFIX):
            continue
        if r.get("type") not in (None, "choices"):
            rep.error(
                f"a result of type '{r.get('type')}' for the control '{name}'",
                "type 'choices' (single-choice classification)",
                file=file,
                row=pos,
                column=f"{col}.type",
            )
            return None
        vals = (r.get("value") or {}).get("choices") if isinstance(r.get("value"), dict) else None
        if not isinstance(vals, list) or not all(isinstance(v, str) for v in vals):
            rep.error(
                f"value.choices is {vals!r}",
                "a list with one class name",
                file=file,
                row=pos,
                column=f"{col}.value.choices",
            )
            return None
        if len(vals) > 1:
            rep.error(
                f"{len(vals)} choices {vals[:5]} in one result: this is multi-label",
                "exactly one class per annotation (single-choice classification)",
                file=file,
                row=pos,
                column=f"{col}.value.choices",
                fix="labelaudit reviews one class label per text; use a single-choice project",
            )
            return None
        if not vals:
            continue
        if name.startswith(OWN_PREFIX):
            flag = vals[0]
            continue
        cls = cfg.class_of(vals[0])
        if cfg.classes and cls not in cfg.classes:
            rep.error(
                f"the choice {cls!r} is not one of the config's classes",
                f"one of {cfg.classes[:8]}" + (" …" if len(cfg.classes) > 8 else ""),
                file=file,
                row=pos,
                column=f"{col}.value.choices",
            )
            return None
        label = cls
    aid = a.get("id")
    return LabelStudioAnnotation(
        task_id=tid,
        annotation_id=aid if isinstance(aid, int) else None,
        annotator=_annotator(a),
        label=label,
        flag=flag,
        created_at=_ts(a.get("created_at")),
        updated_at=_ts(a.get("updated_at") or a.get("created_at")),
        ground_truth=bool(a.get("ground_truth")),
        cancelled=bool(a.get("was_cancelled")),
    )


def given_label(task: LabelStudioTask, label_field: str | None = None) -> str | None:
    """The row's given label: ``data[label_field]``, else the ground-truth annotation, else the most
    frequent annotation label (ties: the earliest annotation among the tied labels); None if unlabeled."""
    if label_field is not None:
        v = task.data.get(label_field)
        return None if v is None or str(v).strip() == "" else str(v).strip()
    done = [a for a in task.annotations if not a.cancelled and a.label is not None]
    gt = [a for a in done if a.ground_truth]
    if gt:
        return gt[-1].label
    if not done:
        return None
    counts = Counter(a.label for a in done)
    top = max(counts.values())
    return next(a.label for a in done if counts[a.label] == top)


def export_tables(
    export: LabelStudioExport, *, label_field: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, list[Problem]]:
    """``(rows, annotations, warnings)`` of a parsed export.

    ``rows``: columns ``id``, ``text``, ``label``, ``ls_task_id``, ``ls_annotations`` (count), the
    prediction's ``ls_prediction``/``ls_prediction_score``/``ls_model_version`` when any task has one,
    then the other scalar data fields. ``annotations``: long format ``item_id, annotator_id, label,
    timestamp`` of every non-cancelled annotation with a label.
    """
    cfg = export.config
    warnings = list(export.warnings)
    rows: list[dict[str, Any]] = []
    ann_rows: list[dict[str, Any]] = []
    unlabeled: list[LabelStudioTask] = []
    bad_label: list[tuple[LabelStudioTask, str]] = []
    has_pred = any(t.predictions for t in export.tasks)
    skip_keys = {cfg.text_field, label_field, "id", "text", "label", "split"} | set(ID_FIELDS)
    for t in export.tasks:
        lab = given_label(t, label_field)
        if lab is None:
            unlabeled.append(t)
            continue
        if cfg.classes and lab not in cfg.classes:
            bad_label.append((t, lab))
            continue
        row: dict[str, Any] = {
            "id": t.item_id,
            "text": t.data[cfg.text_field],
            "label": lab,
            "ls_task_id": t.task_id,
            "ls_annotations": sum(1 for a in t.annotations if not a.cancelled and a.label),
        }
        if "split" in t.data and isinstance(t.data["split"], str):
            row["split"] = t.data["split"]
        if has_pred:
            p = t.predictions[-1] if t.predictions else {}
            row["ls_prediction"] = p.get("label", "")
            row["ls_prediction_score"] = p.get("score")
            row["ls_model_version"] = p.get("model_version", "")
        for k, v in t.data.items():
            if (
                k not in skip_keys
                and isinstance(v, str | int | float | bool)
                and not k.startswith(OWN_PREFIX)
            ):
                row[k] = v
        rows.append(row)
        for a in t.annotations:
            if a.cancelled or a.label is None:
                continue
            ann_rows.append(
                {
                    "item_id": t.item_id,
                    "annotator_id": a.annotator,
                    "label": a.label,
                    "timestamp": a.updated_at,
                }
            )
    if bad_label:
        t, lab = bad_label[0]
        raise DataError(
            Problem(
                f"{len(bad_label)} task(s) have a label that is not a class of the config, e.g. {lab!r} "
                f"(task {t.task_id})",
                f"one of {cfg.classes[:8]}",
                file=export.file,
                row=t.position,
                column=f"data.{label_field}" if label_field else "annotations",
            )
        )
    if unlabeled:
        listed = ", ".join(str(t.task_id) for t in unlabeled[:MAX_LISTED])
        more = f" and {len(unlabeled) - MAX_LISTED} more" if len(unlabeled) > MAX_LISTED else ""
        warnings.append(
            Problem(
                f"{len(unlabeled)} task(s) have no label yet and are left out (task ids {listed}{more})",
                "a ground-truth or completed annotation, or a label field, on every task",
                file=export.file,
                column="annotations",
                severity="warning",
            )
        )
    if not rows:
        raise DataError(
            Problem(
                "no task has a label (no completed annotation and no label field)",
                "at least one annotated task",
                file=export.file,
                fix="annotate some tasks, or name the task field holding the label with --label-col",
            )
        )
    frame = pd.DataFrame(rows)
    if "split" in frame:
        frame["split"] = frame["split"].fillna("")
    ann = pd.DataFrame(ann_rows, columns=["item_id", "annotator_id", "label", "timestamp"])
    return frame, ann, warnings


def read_export_file(path: str | Path, **options: Any) -> LabelStudioExport:
    """Read and parse an export file; options as :func:`parse_export`. DataError for unreadable files."""
    p = Path(path)
    try:
        content = p.read_bytes()
    except OSError as e:
        raise DataError(
            Problem(
                f"cannot read the file ({e.strerror or e})",
                "a Label Studio JSON export",
                file=p.name,
            )
        ) from None
    return parse_export(content, file=p.name, **options)


def load_export_dataset(
    path: str | Path,
    *,
    label_config: str | Path | None = None,
    text_col: str | None = None,
    label_col: str | None = None,
    id_col: str | None = None,
    **companions: Any,
) -> Any:
    """A Label Studio JSON export as a validated :class:`~labelaudit.dataset.Dataset` whose
    ``annotations`` companion holds every annotator's label.

    ``label_config``: the project's labeling config (XML text or a ``.xml`` file). ``text_col``: the
    task data field with the text. ``label_col``: the Choices control holding the class label, or a
    task data field holding the given label. ``id_col``: the data field with the item id (default
    ``item_id``/``id`` when present, else the task id). Other keyword options go to
    :func:`labelaudit.io.load_dataset` (``probs``, ``embeddings``, ``classes``…).

    >>> ds = load_export_dataset("project-3-at-2026-11-30.json")          # doctest: +SKIP
    >>> ds.annotations["annotator_id"].nunique()                           # doctest: +SKIP
    3
    """
    from labelaudit.io import load_dataset

    p = Path(path)
    xml = None
    if label_config is not None:
        cp = Path(label_config) if not str(label_config).lstrip().startswith("<") else None
        if cp is not None:
            try:
                xml = cp.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise DataError(
                    Problem(
                        f"cannot read the labeling config ({e})",
                        "a Label Studio XML config",
                        file=cp.name,
                    )
                ) from None
        else:
            xml = str(label_config)
    raw = p.read_bytes() if p.is_file() else None
    if raw is None:
        raise DataError(Problem(f"no such file: {p}", "a Label Studio JSON export", file=p.name))
    # --label-col is a data field holding the label when the tasks have such a field, else a control.
    label_field = None
    control = label_col
    if label_col is not None:
        try:
            first = json.loads(raw)[0]
        except (json.JSONDecodeError, UnicodeDecodeError, IndexError, KeyError, TypeError):
            first = None
        if (
            isinstance(first, dict)
            and isinstance(first.get("data"), dict)
            and label_col in first["data"]
        ):
            label_field, control = label_col, None
    export = parse_export(
        raw, file=p.name, label_config=xml, text_field=text_col, control=control, id_field=id_col
    )
    frame, ann, warnings = export_tables(export, label_field=label_field)
    classes = companions.pop("classes", None)
    if classes is None and export.config.classes:
        classes = list(export.config.classes)
    ds = load_dataset(
        frame,
        text_col="text",
        label_col="label",
        id_col="id",
        split_col="split" if "split" in frame else None,
        annotations=companions.pop("annotations", None)
        if "annotations" in companions
        else (ann if len(ann) else None),
        classes=classes,
        **companions,
    )
    ds.source = str(p)
    ds.mapping = {
        "text": f"data.{export.config.text_field} (Label Studio task field)",
        "label": f"data.{label_field}"
        if label_field
        else f"control '{export.config.control}' (ground truth, else the most frequent annotation)",
        "id": f"data.{id_col}" if id_col else "data.item_id / data.id, else the task id",
        "split": "data.split" if "split" in frame else "none",
    }
    ds.warnings = warnings + list(ds.warnings)
    return ds

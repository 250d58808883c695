"""Sending a review queue to Label Studio and taking the decisions made there.

:func:`push_queue` creates (or reuses) a project and imports one task per queue item: the text, the
given label, labelaudit's suggestion as a prediction whose ``model_version`` names the scan, and the
evidence as task data. What was sent is remembered in the workspace (``labelstudio/`` — project, task
ids, and each item's latest decision id at sending; never the token).

:func:`pull_decisions` downloads the project's export through the same SDK and turns each task's
latest annotation into a decision by the Label Studio user who made it (their e-mail address, else
user name, as the reviewer's name: compared with assignments as typed names are, by
:func:`~labelaudit.review.identity.name_key`; recorded as ``import`` with the Label Studio account as
subject), with the Review page's rule: an item decided in labelaudit after it was sent (or after
the last pull) and also in Label Studio is a *conflict*: reported, never overwritten. A decision on
an overlap item the same person holds in an open assignment is their *blind* review of it
(:func:`labelaudit.review.team.record_blind`), so it counts for their assignment, their progress and
the agreement exactly as one made on the Review page. An annotation on an item that *others* hold
in an open assignment, by someone who holds no slot on it, is not taken (:class:`PullHeld`,
reported): the Review page refuses such an item to a reviewer, and a third person's label must not
end a blind double review. Everything that can fail (the server, the
export's format) happens before the first write, and the other decisions are written in one
transaction (:meth:`ReviewStore.record_many`), so a pull that fails leaves the store as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labelaudit.dataset import LABEL, TEXT, Dataset
from labelaudit.errors import DataError, Problem, UsageError
from labelaudit.integrations.labelstudio.client import LabelStudioConnection
from labelaudit.integrations.labelstudio.config import (
    OWN_PREFIX,
    ClassificationConfig,
    classification_config_xml,
    parse_label_config,
)
from labelaudit.integrations.labelstudio.export import LabelStudioAnnotation, parse_export
from labelaudit.progress import ProgressFn, no_progress
from labelaudit.review import team
from labelaudit.review.identity import Identity, clean_name
from labelaudit.review.queue import current_labels, label_before
from labelaudit.review.store import ConflictError, Decision, ReviewStore
from labelaudit.workspace import Workspace, as_workspace

#: Prefix of the subject of a pulled decision (``labelstudio:<server URL>|<annotator>``): which Label
#: Studio account made it. The reviewer's name is the user's own (e-mail address or user name).
REVIEWER_PREFIX = "labelstudio:"
#: Queue source recorded in ``shown`` of pulled decisions.
SOURCE = "labelstudio"
#: Detectors listed in a task's evidence, most suspicious first.
EVIDENCE_DETECTORS = 4
#: Conflicting writes (someone decided between our check and our write) retried this often.
PULL_RETRIES = 3


# --------------------------------------------------------------------------- what was sent
@dataclass
class SyncState:
    """What labelaudit sent to one project, kept in the workspace as JSON (no token).

    ``items``: item id -> ``{"task": task id, "seen": latest decision id at sending (0 = none)}``;
    ``pulled``: item id -> ``{"annotation", "updated_at", "decision"}`` of the last decision taken
    (and ``"blind"``, the blind review's id, when it was taken as one; ``"decision"`` is then the
    item's latest decision in the log after it).
    """

    url: str
    project: int
    dataset: str
    model_version: str
    control: str
    text_field: str
    items: dict[str, dict[str, int]] = field(default_factory=dict)
    pulled: dict[str, dict[str, Any]] = field(default_factory=dict)
    pushes: list[dict[str, Any]] = field(default_factory=list)

    @staticmethod
    def path(ws: Workspace, url: str, project: int, dataset: str) -> Path:
        server = hashlib.sha256(url.encode()).hexdigest()[:12]
        return ws.root / "labelstudio" / dataset / f"{server}-project-{int(project)}.json"

    @classmethod
    def load(cls, ws: Workspace, url: str, project: int, dataset: str) -> SyncState | None:
        p = cls.path(ws, url, project, dataset)
        if not p.exists():
            return None
        try:
            raw = json.loads(p.read_text(encoding="utf-8"))
            return cls(**raw)
        except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as e:
            raise DataError(
                Problem(
                    f"the record of what was sent to Label Studio is unreadable ({e})",
                    "the JSON labelaudit wrote at the last push",
                    file=str(p),
                    fix="push the queue to a new project",
                )
            ) from None

    def save(self, ws: Workspace) -> Path:
        p = self.path(ws, self.url, self.project, self.dataset)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.__dict__, f, sort_keys=True)
        os.replace(tmp, p)  # atomic: a crash leaves the old record or the new one
        return p


def sent_projects(workspace: Workspace | str, dataset: str) -> list[SyncState]:
    """Every project the queue of ``dataset`` was pushed to from this workspace, newest first."""
    ws = as_workspace(workspace)
    folder = ws.root / "labelstudio" / dataset
    out = []
    for p in sorted(folder.glob("*-project-*.json"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            out.append(SyncState(**json.loads(p.read_text(encoding="utf-8"))))
        except (json.JSONDecodeError, TypeError, UnicodeDecodeError):
            continue
    return out


# --------------------------------------------------------------------------- push
@dataclass
class PushResult:
    """What a push did: the project, tasks created, items skipped because already in the project."""

    project: int
    created_project: bool
    model_version: str
    task_ids: list[int] = field(default_factory=list)
    already_sent: list[str] = field(default_factory=list)
    url: str = ""

    def summary(self) -> str:
        s = f"sent {len(self.task_ids):,} task(s) to project {self.project} at {self.url}"
        if self.created_project:
            s += " (new project)"
        if self.already_sent:
            s += f"; {len(self.already_sent):,} item(s) were already in that project (not sent again)"
        return s


def model_version(ds: Dataset, scan: Any | None) -> str:
    """The prediction's ``model_version``: names the scan (dataset version + scan parameters)."""
    if scan is None:
        return f"labelaudit-{ds.content_hash[:10]}-model-probabilities"
    from labelaudit.workspace import params_hash

    return f"labelaudit-scan-{ds.content_hash[:10]}-{params_hash(scan.params)[:10]}"


def _evidence_texts(ds: Dataset, rows: np.ndarray, scan: Any | None) -> list[str]:
    """One plain-text evidence summary per row: the top detectors' scores and their evidence."""
    if scan is None:
        return [""] * len(rows)
    table = scan.table
    details = scan.detection.details if scan.detection is not None else {}
    evidence = details.get("evidence") or {}
    score_cols = [c for c in table.columns if str(c).startswith("score_")]
    scores = table[score_cols].to_numpy(dtype=np.float64) if score_cols else np.zeros((ds.n, 0))
    out = []
    for r in rows:
        s = scores[r]
        order = [
            i for i in np.argsort(-np.nan_to_num(s, nan=-1.0), kind="stable") if np.isfinite(s[i])
        ]
        parts = []
        for i in order[:EVIDENCE_DETECTORS]:
            name = score_cols[i][len("score_") :]
            ev = evidence.get(name)
            note = str(ev[r]) if ev is not None and len(ev) > r and ev[r] else ""
            parts.append(f"{name} {s[i]:.2f}" + (f": {note}" if note else ""))
        out.append(" | ".join(parts))
    return out


def build_tasks(
    ds: Dataset,
    item_ids: list[str],
    *,
    scan: Any | None = None,
    text_field: str = "text",
    control: str = "label",
    to_name: str | None = None,
) -> list[dict[str, Any]]:
    """Label Studio tasks for ``item_ids``: data (text, item id, given label, suggestion, score,
    evidence) and, when there is a suggestion, a prediction of it with its probability as score.

    Suggestions come from the scan (``suggested_label``/``suggested_label_prob``) or, without one,
    from ``ds.pred_probs`` (the most probable class).
    """
    rows = np.array([ds.id_to_row[i] for i in item_ids], dtype=np.int64)
    version = model_version(ds, scan)
    if scan is not None and "suggested_label" in scan.table:
        sug = scan.table["suggested_label"].astype(str).to_numpy()[rows]
        prob = pd.to_numeric(scan.table.get("suggested_label_prob"), errors="coerce")
        probs = prob.to_numpy()[rows] if prob is not None else np.full(len(rows), np.nan)
        score = pd.to_numeric(scan.table["label_issue_score"], errors="coerce").to_numpy()[rows]
    elif ds.pred_probs is not None:
        best = ds.pred_probs[rows].argmax(axis=1)
        sug = np.asarray(ds.classes, dtype=object)[best]
        probs = ds.pred_probs[rows, best]
        score = 1.0 - ds.pred_probs[rows, ds.labels[rows]]
    else:
        sug = np.array([""] * len(rows), dtype=object)
        probs = score = np.full(len(rows), np.nan)
    evidence = _evidence_texts(ds, rows, scan)
    texts = ds.frame[TEXT].to_numpy(dtype=object)[rows]
    given = ds.frame[LABEL].to_numpy(dtype=object)[rows]
    tasks = []
    for j, item in enumerate(item_ids):
        s = str(sug[j]) if sug[j] in ds.classes else ""
        data = {
            text_field: str(texts[j]),
            "item_id": item,
            "given_label": str(given[j]),
            "suggested_label": s,
            "label_issue_score": "" if not np.isfinite(score[j]) else f"{score[j]:.3f}",
            "evidence": evidence[j],
            f"{OWN_PREFIX}dataset": ds.content_hash,
        }
        task: dict[str, Any] = {"data": data}
        if s:
            pred: dict[str, Any] = {
                "model_version": version,
                "result": [
                    {
                        "from_name": control,
                        "to_name": to_name or text_field,
                        "type": "choices",
                        "value": {"choices": [s]},
                    }
                ],
            }
            if np.isfinite(probs[j]):
                pred["score"] = float(probs[j])
            task["predictions"] = [pred]
        tasks.append(task)
    return tasks


def push_queue(
    conn: LabelStudioConnection,
    ds: Dataset,
    store: ReviewStore,
    *,
    item_ids: list[str],
    workspace: Workspace | str,
    scan: Any | None = None,
    project: int | None = None,
    title: str | None = None,
    progress: ProgressFn = no_progress,
) -> PushResult:
    """Send ``item_ids`` (a review queue, in order) to Label Studio, one task per item.

    ``project`` None creates a project with labelaudit's labeling config (the dataset's classes, plus
    an optional ambiguous/remove flag); an existing project must be single-choice classification over
    the same classes, and items already sent to it are not sent twice. Raises
    :class:`~labelaudit.integrations.labelstudio.client.LabelStudioError` when the server is down,
    slow or refuses the token (nothing is recorded then), UsageError for unknown ids.

    >>> r = push_queue(conn, ds, store, item_ids=queue[:200], workspace=".labelaudit", scan=res)  # doctest: +SKIP
    >>> r.summary()                                                                               # doctest: +SKIP
    'sent 200 task(s) to project 4 at http://127.0.0.1:8080 (new project)'
    """
    ws = as_workspace(workspace)
    unknown = [i for i in item_ids if i not in ds.id_to_row]
    if unknown:
        raise UsageError(f"{len(unknown)} queue id(s) are not in the dataset, e.g. {unknown[0]!r}")
    if not item_ids:
        raise UsageError("the review queue is empty: nothing to send")
    item_ids = list(dict.fromkeys(item_ids))
    progress("Label Studio: connecting", 0, 3)
    conn.check()
    created = project is None
    if project is None:
        cfg = ClassificationConfig(text_field="text", control="label", classes=list(ds.classes))
        project = conn.create_project(
            title or f"labelaudit review {ds.content_hash[:8]}"[:50],
            classification_config_xml(ds.classes),
            description=f"Review queue of {Path(ds.source).name} ({ds.content_hash}) sent by labelaudit",
        )
        state = None
    else:
        info = conn.project(project)
        cfg = parse_label_config(info["label_config"], file=f"project {project} labeling config")
        missing = sorted(set(ds.classes) - set(cfg.classes))
        if missing:
            raise DataError(
                Problem(
                    f"project {project} has no choice for the class(es) {missing[:5]}",
                    "a Choices control listing every class of the dataset",
                    file=f"project {project} labeling config",
                    column=cfg.control,
                    fix="push without --project to create a project with the right classes",
                )
            )
        state = SyncState.load(ws, conn.url, project, ds.content_hash)
    version = model_version(ds, scan)
    if state is None:
        state = SyncState(
            url=conn.url,
            project=int(project),
            dataset=ds.content_hash,
            model_version=version,
            control=cfg.control,
            text_field=cfg.text_field,
        )
    already = [i for i in item_ids if i in state.items]
    todo = [i for i in item_ids if i not in state.items]
    result = PushResult(
        project=int(project),
        created_project=created,
        model_version=version,
        already_sent=already,
        url=conn.url,
    )
    if not todo:
        return result
    seen = store.latest_decision_ids(ds.content_hash)  # at sending: later decisions here conflict
    tasks = build_tasks(
        ds,
        todo,
        scan=scan,
        text_field=cfg.text_field,
        control=cfg.control,
        to_name=cfg.to_name or None,
    )
    progress("Label Studio: sending tasks", 1, 3)
    task_ids = conn.import_tasks(project, tasks)
    if len(task_ids) != len(todo):
        raise UsageError(
            f"Label Studio created {len(task_ids)} task(s) for {len(todo)} item(s); "
            "check the project before pulling"
        )
    for item, tid in zip(todo, task_ids, strict=True):
        state.items[item] = {"task": int(tid), "seen": int(seen.get(item, 0))}
    state.model_version = version
    state.pushes.append(
        {"at": datetime.now(UTC).isoformat(), "tasks": len(task_ids), "model_version": version}
    )
    state.save(ws)
    progress("Label Studio: sent", 3, 3)
    result.task_ids = task_ids
    return result


# --------------------------------------------------------------------------- pull
@dataclass
class PullConflict:
    """An item decided in both places after it was sent: the labelaudit decision in force and what
    Label Studio says. Nothing is overwritten; decide it on the Review page."""

    item_id: str
    labelaudit: Decision
    labelstudio_user: str
    labelstudio_label: str | None
    labelstudio_flag: str | None
    task_id: int

    def describe(self) -> str:
        ls = self.labelstudio_flag or self.labelstudio_label or "(no label)"
        return (
            f"item {self.item_id}: decided here ({self.labelaudit.describe()}) and in Label Studio "
            f"({self.labelstudio_user}: {ls}, task {self.task_id}); kept the decision made here"
        )


@dataclass
class PullHeld:
    """An annotation made in Label Studio on an item that other reviewers hold in an open
    assignment, by someone who holds no slot on it: not taken, as the Review page refuses a
    reviewer such an item. On an overlap item a third person's label would otherwise end the
    blind double review before the two holders are compared; on a single item it would be
    counted for nobody's assignment. It stays in Label Studio: a later pull takes it once the
    assignment no longer holds the item (closed or moved), with the usual conflict rule; a lead
    can decide the item on the Review page meanwhile."""

    item_id: str
    labelstudio_user: str
    labelstudio_label: str | None
    labelstudio_flag: str | None
    task_id: int
    holders: tuple[str, ...]
    overlap: bool

    def describe(self) -> str:
        ls = self.labelstudio_flag or self.labelstudio_label or "(no label)"
        what = "reviewed twice, blind, by" if self.overlap else "assigned to"
        return (
            f"item {self.item_id}: labelled {ls} in Label Studio by {self.labelstudio_user} (task "
            f"{self.task_id}), who does not hold it; it is {what} {', '.join(self.holders)}: "
            "not taken"
        )


@dataclass
class PullResult:
    """What a pull did. ``saved``: decisions written; ``conflicts``: not written (see
    :class:`PullConflict`); ``unchanged``: annotations already taken by an earlier pull;
    ``not_sent``: annotated tasks that labelaudit did not send (left alone); ``no_decision``:
    annotated tasks without a label or flag (skipped, or only the comment changed)."""

    project: int
    saved: list[Decision] = field(default_factory=list)
    conflicts: list[PullConflict] = field(default_factory=list)
    unchanged: int = 0
    not_sent: int = 0
    no_decision: int = 0
    #: Blind reviews taken (overlap items the annotator holds in an open assignment).
    blind: list[team.BlindOutcome] = field(default_factory=list)
    #: Not taken: annotations on items others hold, by someone who does not (:class:`PullHeld`).
    held: list[PullHeld] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"took {len(self.saved):,} decision(s) from project {self.project}"]
        if self.blind:
            parts.append(
                f"{len(self.blind):,} blind review(s) of overlap items, for the annotators' "
                "assignments"
            )
        if self.conflicts:
            parts.append(
                f"{len(self.conflicts):,} conflict(s): decided here and in Label Studio after "
                "sending (kept as decided here)"
            )
        if self.held:
            n_overlap = sum(h.overlap for h in self.held)
            parts.append(
                f"{len(self.held):,} not taken: annotated by someone who does not hold the item "
                f"in an open assignment ({n_overlap:,} of them overlap items still under double "
                "review)"
            )
        if self.unchanged:
            parts.append(f"{self.unchanged:,} already taken")
        if self.not_sent:
            parts.append(f"{self.not_sent:,} task(s) not sent by labelaudit ignored")
        if self.no_decision:
            parts.append(f"{self.no_decision:,} annotated without a label")
        return "; ".join(parts)


def _latest(anns: list[LabelStudioAnnotation]) -> LabelStudioAnnotation | None:
    usable = [a for a in anns if not a.cancelled and (a.label is not None or a.flag)]
    if not usable:
        return None
    far = pd.Timestamp.min.tz_localize("UTC")
    return max(usable, key=lambda a: (a.updated_at or far, a.annotation_id or 0))


def _stamp(a: LabelStudioAnnotation) -> str:
    return a.updated_at.isoformat() if a.updated_at is not None else ""


def pull_decisions(
    conn: LabelStudioConnection,
    ds: Dataset,
    store: ReviewStore,
    *,
    project: int,
    workspace: Workspace | str,
    progress: ProgressFn = no_progress,
) -> PullResult:
    """Take the decisions made in Label Studio on the tasks labelaudit sent to ``project``.

    For each sent item with an annotation: the latest one (by update time) becomes a decision by
    ``labelstudio:<e-mail>``: ``remove`` / ``ambiguous`` when the reviewer set labelaudit's flag,
    else ``keep`` (the label it has now), ``accept`` (the suggestion) or ``change``. An item that
    got a decision here after it was sent (or after the last pull) is a conflict and is not written.
    An annotation already taken is not taken again; one edited since is taken as a new decision.

    Raises LabelStudioError (server down, slow, token refused) or DataError (an export it cannot
    read) before writing anything; UsageError when nothing was sent to ``project`` from here.
    """
    ws = as_workspace(workspace)
    state = SyncState.load(ws, conn.url, project, ds.content_hash)
    if state is None:
        raise UsageError(
            f"nothing of this dataset ({ds.content_hash[:8]}) was sent to project {project} at "
            f"{conn.url} from this workspace; push the queue first (labelaudit labelstudio push)"
        )
    progress("Label Studio: downloading the export", 0, 3)
    tasks, users = conn.export(project)
    progress("Label Studio: reading decisions", 1, 3)
    cfg = ClassificationConfig(
        text_field=state.text_field, control=state.control, classes=list(ds.classes)
    )
    export = _parse_with(tasks, cfg, project)
    for _ in range(PULL_RETRIES):
        result, requests, pulled, blind = _plan(export, ds, store, state, users, project, conn.url)
        try:
            saved = store.record_many(requests)
        except ConflictError:
            continue  # decided meanwhile: plan again against the new state
        result.saved = saved
        for item, d in zip(pulled, saved, strict=True):
            state.pulled[item] = dict(pulled[item], decision=d.id)
        try:
            _record_blind(store, ds, state, blind, result)
        finally:
            state.save(ws)
        progress("Label Studio: decisions saved", 3, 3)
        return result
    raise UsageError(
        "the review store kept changing while the pull was writing; nothing was written, try again"
    )


def _parse_with(tasks: list[Any], cfg: ClassificationConfig, project: int) -> Any:
    from labelaudit.integrations.labelstudio import export as ex

    file = f"project {project} export"
    if not tasks:
        return ex.LabelStudioExport(config=cfg, tasks=[], file=file)
    xml = classification_config_xml(cfg.classes, text_field=cfg.text_field, control=cfg.control)
    return parse_export(tasks, file=file, label_config=xml, id_field=None)


@dataclass
class _BlindPull:
    """An annotation to take as its annotator's blind review of an overlap item they hold."""

    item_id: str
    slot: int
    values: dict[str, Any]  # the keyword arguments of team.record_blind
    pulled: dict[str, Any]  # what state.pulled keeps for the item once taken
    annotation: LabelStudioAnnotation
    task_id: int


def _annotator_identity(user: str, annotator: str, url: str) -> Identity:
    """The Label Studio user as a reviewer: their name (e-mail address, else user name) checked as
    a typed name is (:func:`clean_name`), auth ``import``, the account as subject."""
    try:
        name = clean_name(user)
    except UsageError:  # empty, too long or with control characters: name the account instead
        name = clean_name(f"{REVIEWER_PREFIX}{annotator}"[:120])
    return Identity(name, auth="import", subject=f"{REVIEWER_PREFIX}{url}|{annotator}")


def _record_blind(
    store: ReviewStore, ds: Dataset, state: SyncState, blind: list[_BlindPull], result: PullResult
) -> None:
    """Write the blind reviews one by one (each its own transaction, as on the Review page): a
    review is refused as a conflict when the item got a decision, or the slot a review, since."""
    for b in blind:
        try:
            out = team.record_blind(store, dataset_version=ds.content_hash, **b.values)
        except ConflictError as e:
            result.conflicts.append(
                PullConflict(
                    item_id=b.item_id,
                    labelaudit=e.latest,
                    labelstudio_user=b.values["identity"].name,
                    labelstudio_label=b.annotation.label,
                    labelstudio_flag=b.annotation.flag,
                    task_id=b.task_id,
                )
            )
            continue
        result.blind.append(out)
        latest = out.consensus.id if out.consensus is not None else b.values["seen_decision_id"]
        state.pulled[b.item_id] = dict(b.pulled, decision=latest or 0, blind=out.review.id)


def _plan(
    export: Any,
    ds: Dataset,
    store: ReviewStore,
    state: SyncState,
    users: dict[str, str],
    project: int,
    url: str = "",
) -> tuple[PullResult, list[dict[str, Any]], dict[str, dict[str, Any]], list[_BlindPull]]:
    result = PullResult(project=int(project))
    latest_ids = store.latest_decision_ids(ds.content_hash)
    current = store.current(ds.content_hash)
    labels_now = current_labels(ds, current)
    book = team.assignment_book(store, ds.content_hash)
    requests: list[dict[str, Any]] = []
    pulled: dict[str, dict[str, Any]] = {}
    blind: list[_BlindPull] = []
    by_task = {v["task"]: k for k, v in state.items.items()}
    for t in export.tasks:
        item = by_task.get(t.task_id)
        if item is None or item not in ds.id_to_row:
            result.not_sent += 1
            continue
        ann = _latest(t.annotations)
        if ann is None:
            result.no_decision += 1
            continue
        before = state.pulled.get(item)
        if (
            before
            and before.get("annotation") == ann.annotation_id
            and before.get("updated_at") == _stamp(ann)
        ):
            result.unchanged += 1
            continue
        expected = int(before["decision"]) if before else int(state.items[item]["seen"])
        now = latest_ids.get(item, 0)
        user = _user_name(ann.annotator, users)
        if now != expected:
            result.conflicts.append(
                PullConflict(
                    item_id=item,
                    labelaudit=store.decision(now),
                    labelstudio_user=user,
                    labelstudio_label=ann.label,
                    labelstudio_flag=ann.flag,
                    task_id=t.task_id,
                )
            )
            continue
        old = label_before(ds, labels_now, item)
        suggested = str(t.data.get("suggested_label") or "")
        if ann.flag in ("remove", "ambiguous"):
            action, new = ann.flag, None
        elif ann.label is None:
            result.no_decision += 1
            continue
        elif ann.label == labels_now.get(item):
            action, new = "keep", None
        elif ann.label == suggested:
            action, new = "accept", ann.label
        else:
            action, new = "change", ann.label
        identity = _annotator_identity(user, ann.annotator, url)
        comment = (
            f"Label Studio project {project}, task {t.task_id}, annotation {ann.annotation_id}"
        )
        shown = {
            "queue": SOURCE,
            "project": int(project),
            "task": t.task_id,
            "annotation": ann.annotation_id,
            "model_version": state.model_version,
            "suggested_label": suggested or None,
            "label_issue_score": t.data.get("label_issue_score"),
            "annotators": len([a for a in t.annotations if not a.cancelled]),
        }
        taken = {"annotation": ann.annotation_id, "updated_at": _stamp(ann)}
        slot = book.slot_of(item, identity.name)
        holders = book.holders(item)
        if slot is None and holders:  # held by others: as the Review page, not this person's
            result.held.append(
                PullHeld(
                    item_id=item,
                    labelstudio_user=identity.name,
                    labelstudio_label=ann.label,
                    labelstudio_flag=ann.flag,
                    task_id=t.task_id,
                    holders=tuple(holders),
                    overlap=len(holders) > 1,
                )
            )
            continue  # not remembered as taken: a later pull looks at it again
        if slot is not None and slot.overlap:  # their blind review, as on the Review page
            blind.append(
                _BlindPull(
                    item_id=item,
                    slot=slot.slot,
                    values=dict(
                        item_id=item,
                        slot=slot.slot,
                        identity=identity,
                        action=action,
                        old_label=old,
                        new_label=new,
                        comment=comment,
                        shown=shown,
                        seen_blind_id=(before or {}).get("blind"),
                        seen_decision_id=now or None,
                    ),
                    pulled=taken,
                    annotation=ann,
                    task_id=t.task_id,
                )
            )
            continue
        requests.append(
            dict(
                dataset_version=ds.content_hash,
                item_id=item,
                reviewer=identity.name,
                action=action,
                old_label=old,
                new_label=new,
                comment=comment,
                shown=shown,
                seen_decision_id=now or None,
                identity=identity,
                capacity="import",
            )
        )
        pulled[item] = taken
    return result, requests, pulled, blind


def _user_name(annotator: str, users: dict[str, str]) -> str:
    if annotator.startswith("user "):
        return users.get(annotator[len("user ") :], annotator)
    return annotator

"""Push and pull rules against an in-memory stand-in for the server (the real server: test_labelstudio_server.py).

The stand-in answers like Label Studio's JSON export does (tasks with ``annotations`` whose
``completed_by`` is a user id), so these tests pin the conflict rules and the all-or-nothing pull fast.
"""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from labelaudit.errors import DataError, UsageError
from labelaudit.integrations.labelstudio import (
    LabelStudioConnection,
    LabelStudioError,
    parse_label_config,
    pull_decisions,
    push_queue,
    sent_projects,
)
from labelaudit.integrations.labelstudio.sync import build_tasks
from labelaudit.io import load_dataset
from labelaudit.review import team
from labelaudit.review.identity import Identity
from labelaudit.review.store import ReviewStore

TOKEN = "secret-token-123456"


class FakeServer(LabelStudioConnection):
    """A LabelStudioConnection whose calls are answered from memory."""

    def __init__(self):
        super().__init__("http://127.0.0.1:9", token=TOKEN)
        self.projects: dict[int, dict] = {}
        self.tasks: dict[int, dict] = {}
        self.fail: str | None = None
        self._ann = 0

    def call(self, op, *, slow_calls=1, **payload):
        if self.fail:
            raise self._error(self.fail, "stand-in failure")
        if op == "check":
            return {"user": "admin@example.com", "user_id": 1, "version": "1.23.2"}
        if op == "create_project":
            pid = len(self.projects) + 1
            self.projects[pid] = {
                "title": payload["title"],
                "label_config": payload["label_config"],
            }
            return {"project": pid}
        if op == "project":
            return {"project": payload["project"], **self.projects[payload["project"]]}
        if op == "import_tasks":
            ids = []
            for t in payload["tasks"]:
                tid = len(self.tasks) + 1
                self.tasks[tid] = {"id": tid, "project": payload["project"], "annotations": [], **t}
                ids.append(tid)
            return {"task_ids": ids}
        if op == "export":
            tasks = [
                t
                for t in self.tasks.values()
                if t["project"] == payload["project"] and t["annotations"]
            ]
            users = {"1": "admin@example.com", "2": "bo@example.com", "3": "cy@example.com"}
            return {"tasks": tasks, "users": users}
        raise AssertionError(op)

    def annotate(
        self, task_id, label=None, *, flag=None, user=1, at="2026-11-30T10:00:00Z", cancelled=False
    ):
        self._ann += 1
        res = []
        if label:
            res.append(
                {
                    "from_name": "label",
                    "to_name": "text",
                    "type": "choices",
                    "value": {"choices": [label]},
                }
            )
        if flag:
            res.append(
                {
                    "from_name": "labelaudit_decision",
                    "to_name": "text",
                    "type": "choices",
                    "value": {"choices": [flag]},
                }
            )
        a = {
            "id": self._ann,
            "completed_by": user,
            "result": res,
            "was_cancelled": cancelled,
            "created_at": at,
            "updated_at": at,
        }
        self.tasks[task_id]["annotations"].append(a)
        return a


@pytest.fixture
def ds():
    df = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(8)],
            "text": [f"text number {i}" for i in range(8)],
            "label": ["a", "b", "a", "b", "c", "a", "b", "c"],
        }
    )
    probs = [[0.1, 0.8, 0.1]] * 8  # suggestion "b" for every row
    import numpy as np

    return load_dataset(df, probs=np.array(probs))


@pytest.fixture
def store(tmp_path):
    s = ReviewStore(f"sqlite:///{tmp_path / 'review.sqlite'}")
    yield s
    s.close()


@pytest.fixture
def server():
    return FakeServer()


def _push(server, ds, store, tmp_path, items=("r0", "r1", "r2", "r3")):
    return push_queue(server, ds, store, item_ids=list(items), workspace=tmp_path / "ws")


def test_push_creates_a_project_with_one_task_per_item(server, ds, store, tmp_path):
    r = _push(server, ds, store, tmp_path)
    assert r.created_project and len(r.task_ids) == 4
    cfg = parse_label_config(server.projects[r.project]["label_config"])
    assert cfg.classes == ds.classes and cfg.control == "label"
    t = server.tasks[r.task_ids[0]]
    assert t["data"]["text"] == "text number 0" and t["data"]["given_label"] == "a"
    assert t["data"]["item_id"] == "r0" and t["data"]["suggested_label"] == "b"
    (pred,) = t["predictions"]
    assert pred["model_version"] == r.model_version and pred["score"] == pytest.approx(0.8)
    assert pred["result"][0]["value"]["choices"] == ["b"]
    # what was sent is in the workspace, the token is not
    (state,) = sent_projects(tmp_path / "ws", ds.content_hash)
    assert set(state.items) == {"r0", "r1", "r2", "r3"}
    blob = "".join(p.read_text() for p in (tmp_path / "ws").rglob("*.json"))
    assert TOKEN not in blob


def test_push_to_the_same_project_skips_items_already_sent(server, ds, store, tmp_path):
    r = _push(server, ds, store, tmp_path)
    r2 = push_queue(
        server, ds, store, item_ids=["r3", "r4"], workspace=tmp_path / "ws", project=r.project
    )
    assert r2.already_sent == ["r3"] and len(r2.task_ids) == 1 and not r2.created_project


def test_pull_turns_annotations_into_decisions_by_the_labelstudio_user(server, ds, store, tmp_path):
    r = _push(server, ds, store, tmp_path)
    t0, t1, t2, t3 = r.task_ids
    server.annotate(t0, "b", user=2)  # the suggestion
    server.annotate(t1, "b")  # its own label
    server.annotate(t2, "c")  # another class
    server.annotate(t3, "b", flag="remove")
    res = pull_decisions(server, ds, store, project=r.project, workspace=tmp_path / "ws")
    got = {d.item_id: (d.reviewer, d.action, d.new_label) for d in res.saved}
    assert got == {
        "r0": ("bo@example.com", "accept", "b"),
        "r1": ("admin@example.com", "keep", "b"),
        "r2": ("admin@example.com", "change", "c"),
        "r3": ("admin@example.com", "remove", None),
    }
    # the annotator's own identity: imported, the Label Studio account as subject
    assert {(d.auth, d.capacity) for d in res.saved} == {("import", "import")}
    log = store.log(ds.content_hash).set_index("item_id")
    assert log.loc["r0", "subject"] == f"labelstudio:{server.url}|user 2"
    assert log.loc["r1", "subject"] == f"labelstudio:{server.url}|user 1"
    shown = res.saved[0].shown
    assert (
        shown["queue"] == "labelstudio"
        and shown["task"] == t0
        and shown["model_version"] == r.model_version
    )
    # a second pull takes nothing twice
    again = pull_decisions(server, ds, store, project=r.project, workspace=tmp_path / "ws")
    assert again.saved == [] and again.unchanged == 4


def test_latest_annotation_wins_and_an_edit_is_taken_as_a_new_decision(server, ds, store, tmp_path):
    r = _push(server, ds, store, tmp_path)
    server.annotate(r.task_ids[0], "c", at="2026-11-30T10:00:00Z")
    server.annotate(r.task_ids[0], "b", user=2, at="2026-11-30T11:00:00Z")
    server.annotate(r.task_ids[1], "c", cancelled=True)
    res = pull_decisions(server, ds, store, project=r.project, workspace=tmp_path / "ws")
    assert [(d.item_id, d.new_label) for d in res.saved] == [("r0", "b")] and res.no_decision == 1
    a = server.tasks[r.task_ids[0]]["annotations"][1]
    a["result"][0]["value"]["choices"] = ["a"]
    a["updated_at"] = "2026-11-30T12:00:00Z"
    res = pull_decisions(server, ds, store, project=r.project, workspace=tmp_path / "ws")
    assert [(d.item_id, d.action, d.old_label, d.new_label) for d in res.saved] == [
        ("r0", "change", "b", "a")
    ]
    assert store.current(ds.content_hash).set_index("item_id").loc["r0", "final_label"] == "a"


def test_decided_in_both_places_after_sending_is_a_conflict_never_overwritten(
    server, ds, store, tmp_path
):
    before = store.record(
        dataset_version=ds.content_hash,
        item_id="r1",
        reviewer="ana",
        action="keep",
        old_label="b",
        new_label=None,
    )
    r = _push(server, ds, store, tmp_path)  # r1 was decided before sending: not a conflict
    here = store.record(
        dataset_version=ds.content_hash,
        item_id="r0",
        reviewer="ana",
        action="change",
        old_label="a",
        new_label="c",
        seen_decision_id=None,
    )
    server.annotate(r.task_ids[0], "b")
    server.annotate(r.task_ids[1], "c")
    res = pull_decisions(server, ds, store, project=r.project, workspace=tmp_path / "ws")
    assert [d.item_id for d in res.saved] == ["r1"] and res.saved[0].old_label == "b"
    assert store.history(ds.content_hash, "r1")[0].id == before.id
    (c,) = res.conflicts
    assert c.item_id == "r0" and c.labelaudit.id == here.id and c.labelstudio_label == "b"
    assert "kept the decision made here" in c.describe()
    assert store.current(ds.content_hash).set_index("item_id").loc["r0", "final_label"] == "c"
    # still a conflict on the next pull, still not written
    res = pull_decisions(server, ds, store, project=r.project, workspace=tmp_path / "ws")
    assert len(res.conflicts) == 1 and res.saved == []


def test_decided_here_after_a_pull_then_edited_there_is_a_conflict(server, ds, store, tmp_path):
    r = _push(server, ds, store, tmp_path)
    a = server.annotate(r.task_ids[0], "b")
    (taken,) = pull_decisions(server, ds, store, project=r.project, workspace=tmp_path / "ws").saved
    store.record(
        dataset_version=ds.content_hash,
        item_id="r0",
        reviewer="ana",
        action="change",
        old_label="b",
        new_label="c",
        seen_decision_id=taken.id,
    )
    a["result"][0]["value"]["choices"] = ["a"]
    a["updated_at"] = "2026-12-01T10:00:00Z"
    res = pull_decisions(server, ds, store, project=r.project, workspace=tmp_path / "ws")
    assert res.saved == [] and [c.item_id for c in res.conflicts] == ["r0"]


@pytest.mark.parametrize("kind", ["unreachable", "timeout", "refused"])
def test_a_failing_server_leaves_the_store_as_it_was(server, ds, store, tmp_path, kind):
    r = _push(server, ds, store, tmp_path)
    server.annotate(r.task_ids[0], "b")
    server.fail = kind
    with pytest.raises(LabelStudioError) as e:
        pull_decisions(server, ds, store, project=r.project, workspace=tmp_path / "ws")
    assert e.value.kind == kind and TOKEN not in str(e.value) and "127.0.0.1:9" in str(e.value)
    assert len(store.log(ds.content_hash)) == 0


def test_a_broken_annotation_fails_the_pull_before_any_write(server, ds, store, tmp_path):
    r = _push(server, ds, store, tmp_path)
    server.annotate(r.task_ids[0], "b")
    bad = server.annotate(r.task_ids[1], "b")
    bad["result"][0]["value"]["choices"] = ["a", "b"]
    with pytest.raises(DataError) as e:
        pull_decisions(server, ds, store, project=r.project, workspace=tmp_path / "ws")
    p = e.value.problems[0]
    assert p.file == f"project {r.project} export" and "multi-label" in p.found and p.row == 2
    assert len(store.log(ds.content_hash)) == 0


def test_a_database_failure_mid_pull_writes_nothing(server, ds, store, tmp_path):
    r = _push(server, ds, store, tmp_path)
    for t in r.task_ids:
        server.annotate(t, "c")
    # A real database failure on the third decision of the batch (a trigger aborting its insert).
    item = "r2"
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER disk_full BEFORE INSERT ON review_decisions "
            f"WHEN NEW.item_id = '{item}' BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    with pytest.raises(sa.exc.DBAPIError, match="disk full"):
        pull_decisions(server, ds, store, project=r.project, workspace=tmp_path / "ws")
    assert len(store.log(ds.content_hash)) == 0
    assert store.latest_decision_id(ds.content_hash, item) is None
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER disk_full")
    assert (
        len(pull_decisions(server, ds, store, project=r.project, workspace=tmp_path / "ws").saved)
        == 4
    )


def test_pull_of_a_project_never_pushed_from_here(server, ds, store, tmp_path):
    with pytest.raises(UsageError, match="push the queue first"):
        pull_decisions(server, ds, store, project=7, workspace=tmp_path / "ws")


def test_push_refuses_unknown_ids_and_an_empty_queue(server, ds, store, tmp_path):
    with pytest.raises(UsageError, match="not in the dataset"):
        _push(server, ds, store, tmp_path, items=["nope"])
    with pytest.raises(UsageError, match="empty"):
        _push(server, ds, store, tmp_path, items=[])


def test_push_to_a_project_missing_classes_is_refused(server, ds, store, tmp_path):
    server.projects[1] = {
        "title": "other",
        "label_config": '<View><Text name="text" value="$text"/><Choices name="label" toName="text">'
        '<Choice value="a"/><Choice value="b"/></Choices></View>',
    }
    with pytest.raises(DataError, match=r"no choice for the class\(es\) \['c'\]"):
        push_queue(server, ds, store, item_ids=["r0"], workspace=tmp_path / "ws", project=1)


def test_tasks_without_probabilities_have_no_prediction(ds):
    plain = load_dataset(ds.frame[["id", "text", "label"]])
    (t,) = build_tasks(plain, ["r0"])
    assert "predictions" not in t and t["data"]["suggested_label"] == ""


def test_connection_never_shows_the_token():
    c = LabelStudioConnection("http://127.0.0.1:8080/", token=TOKEN)
    assert TOKEN not in repr(c) and c.url == "http://127.0.0.1:8080"
    with pytest.raises(UsageError, match="LABEL_STUDIO_API_KEY"):
        LabelStudioConnection.from_env("http://127.0.0.1:8080", environ={})
    with pytest.raises(UsageError, match="LABEL_STUDIO_URL"):
        LabelStudioConnection.from_env(environ={"LABEL_STUDIO_API_KEY": "x"})
    with pytest.raises(UsageError, match="expected http"):
        LabelStudioConnection("127.0.0.1:8080", token="x")
    assert not LabelStudioConnection.configured({"LABEL_STUDIO_URL": "http://x"})
    assert LabelStudioConnection.configured(
        {"LABEL_STUDIO_URL": "http://x", "LABEL_STUDIO_API_KEY": "t"}
    )


# --------------------------------------------------------------------------- assignments (issue 18)
LEAD = Identity("lea@example.com", auth="oidc", role="lead", subject="https://idp|lea")


def _assign(store, ds, items, reviewers, share):
    team.create_assignment(
        store,
        dataset_version=ds.content_hash,
        item_ids=list(items),
        reviewers=list(reviewers),
        overlap_share=share,
        lead=LEAD,
    )
    return team.assignment_book(store, ds.content_hash)


def test_a_pulled_decision_counts_for_the_annotators_assignment(server, ds, store, tmp_path):
    # Assigned in labelaudit as typed (other case, blanks); Label Studio says bo@example.com.
    book = _assign(store, ds, ["r0", "r1", "r2", "r3"], [" Bo@Example.com", "ana"], 0.0)
    mine = book.queue_for("bo@example.com")
    assert len(mine) == 2
    r = _push(server, ds, store, tmp_path)
    tasks = dict(zip(["r0", "r1", "r2", "r3"], r.task_ids, strict=True))
    for item in mine:
        server.annotate(tasks[item], "b", user=2)
    before = team.team_overview(store, ds.content_hash).set_index("reviewer")
    assert before.loc[" Bo@Example.com".strip(), "decided"] == 0
    res = pull_decisions(server, ds, store, project=r.project, workspace=tmp_path / "ws")
    assert sorted(d.item_id for d in res.saved) == sorted(mine) and not res.blind
    assert {d.reviewer for d in res.saved} == {"bo@example.com"}
    over = team.team_overview(store, ds.content_hash).set_index("reviewer")
    assert (
        over.loc["Bo@Example.com", "decided"] == 2 and over.loc["Bo@Example.com", "remaining"] == 0
    )
    assert pd.notna(over.loc["Bo@Example.com", "last_decision"])  # matched by name, not prefixed
    assert over.loc["ana", "decided"] == 0


def test_an_overlap_item_pulled_is_the_annotators_blind_review(server, ds, store, tmp_path):
    items = ["r0", "r1", "r2", "r3"]
    book = _assign(store, ds, items, ["bo@example.com", "admin@example.com"], 1.0)
    assert all(book.slot_of(i, "bo@example.com").overlap for i in items)
    r = _push(server, ds, store, tmp_path)
    tasks = dict(zip(items, r.task_ids, strict=True))
    server.annotate(tasks["r0"], "b", user=2)  # bo: the suggestion
    server.annotate(tasks["r1"], "c", user=2)  # bo: another class
    res = pull_decisions(server, ds, store, project=r.project, workspace=tmp_path / "ws")
    assert res.saved == [] and len(res.blind) == 2 and "2 blind review(s)" in res.summary()
    assert {o.status for o in res.blind} == {"waiting"}
    assert store.latest_decision_ids(ds.content_hash) == {}  # nothing in the log yet
    over = team.team_overview(store, ds.content_hash).set_index("reviewer")
    assert over.loc["bo@example.com", ["decided", "overlap_decided"]].tolist() == [2, 2]
    assert over.loc["admin@example.com", "decided"] == 0
    # the other reviewer's blind review on the Review page settles the pair as usual
    admin = Identity("admin@example.com", auth="oidc", role="reviewer", subject="https://idp|a")
    slot = book.slot_of("r0", admin.name).slot
    out = team.record_blind(
        store,
        dataset_version=ds.content_hash,
        item_id="r0",
        slot=slot,
        identity=admin,
        action="accept",
        old_label="a",
        new_label="b",
        seen_blind_id=None,
        seen_decision_id=None,
    )
    assert out.status == "agreed" and out.consensus.capacity == "consensus"
    slot = book.slot_of("r1", admin.name).slot
    out = team.record_blind(
        store,
        dataset_version=ds.content_hash,
        item_id="r1",
        slot=slot,
        identity=admin,
        action="keep",
        old_label="b",
        new_label=None,
        seen_blind_id=None,
        seen_decision_id=None,
    )
    assert out.status == "disagreed" and team.adjudication_queue(store, ds.content_hash) == ["r1"]
    agreement = team.team_agreement(store, ds.content_hash, classes=ds.classes)
    assert agreement.n_items == 2  # the pulled reviews are bo's half of both pairs
    (pair,) = agreement.pairs.itertuples()
    assert {pair.annotator_a, pair.annotator_b} == {"bo@example.com", "admin@example.com"}
    # a second pull takes nothing twice; an edit in Label Studio is a new blind review
    again = pull_decisions(server, ds, store, project=r.project, workspace=tmp_path / "ws")
    assert again.blind == [] and again.unchanged == 2 and again.conflicts == []


def test_an_overlap_item_reviewed_in_both_places_is_a_conflict(server, ds, store, tmp_path):
    items = ["r0", "r1"]
    book = _assign(store, ds, items, ["bo@example.com", "admin@example.com"], 1.0)
    r = _push(server, ds, store, tmp_path)
    bo = Identity("bo@example.com", auth="oidc", role="reviewer", subject="https://idp|bo")
    team.record_blind(  # bo's blind review on the Review page, after sending
        store,
        dataset_version=ds.content_hash,
        item_id="r0",
        slot=book.slot_of("r0", bo.name).slot,
        identity=bo,
        action="keep",
        old_label="a",
        new_label=None,
        seen_blind_id=None,
        seen_decision_id=None,
    )
    server.annotate(r.task_ids[0], "c", user=2)  # and bo again in Label Studio
    server.annotate(r.task_ids[1], "c", user=2)
    res = pull_decisions(server, ds, store, project=r.project, workspace=tmp_path / "ws")
    assert [c.item_id for c in res.conflicts] == ["r0"]
    assert [o.review.item_id for o in res.blind] == ["r1"]
    assert res.conflicts[0].labelaudit.action == "keep"  # the review made here is kept
    # an edit in Label Studio after the pull is taken as bo's new blind review of r1
    a = server.tasks[r.task_ids[1]]["annotations"][0]
    a["result"][0]["value"]["choices"] = ["a"]
    a["updated_at"] = "2026-11-30T12:00:00Z"
    res = pull_decisions(server, ds, store, project=r.project, workspace=tmp_path / "ws")
    (o,) = [o for o in res.blind if o.review.item_id == "r1"]
    assert (o.review.action, o.review.new_label) == ("change", "a")
    pairs = team.double_reviews(store, ds.content_hash).set_index("item_id")
    row = pairs.loc["r1"]
    ratings = {row["reviewer_a"]: row["rating_a"], row["reviewer_b"]: row["rating_b"]}
    assert ratings.get("bo@example.com") == "a"  # the edit superseded the first review ("c")


def test_a_third_persons_label_does_not_end_a_double_review(server, ds, store, tmp_path):
    """An overlap item annotated in Label Studio by someone who holds no slot on it is not taken:
    not a decision (which would end the blind double review before the two holders are compared)
    and not a blind review; it is reported, and the holders' reviews settle the item as usual."""
    items = ["r0", "r1"]
    book = _assign(store, ds, items, ["bo@example.com", "admin@example.com"], 1.0)
    r = _push(server, ds, store, tmp_path)
    tasks = dict(zip(["r0", "r1", "r2", "r3"], r.task_ids, strict=True))
    server.annotate(tasks["r0"], "c", user=3)  # cy holds nothing
    server.annotate(tasks["r1"], "b", user=2)  # bo holds r1: his blind review
    res = pull_decisions(server, ds, store, project=r.project, workspace=tmp_path / "ws")
    assert res.saved == [] and [o.review.item_id for o in res.blind] == ["r1"]
    (held,) = res.held
    assert (held.item_id, held.labelstudio_user, held.labelstudio_label, held.overlap) == (
        "r0",
        "cy@example.com",
        "c",
        True,
    )
    assert set(held.holders) == {"bo@example.com", "admin@example.com"}
    assert "1 not taken" in res.summary() and "1 of them overlap items" in res.summary()
    assert "reviewed twice, blind, by" in held.describe()
    assert store.latest_decision_ids(ds.content_hash) == {}  # r0 is not decided
    assert team.blind_head(store, ds.content_hash, "r0", 0) is None
    assert team.blind_head(store, ds.content_hash, "r0", 1) is None
    # the two holders still review r0 blind, and their pair is what counts
    for who, action, new in (("bo@example.com", "keep", None), ("admin@example.com", "keep", None)):
        out = team.record_blind(
            store,
            dataset_version=ds.content_hash,
            item_id="r0",
            slot=book.slot_of("r0", who).slot,
            identity=Identity(who, auth="oidc", subject=f"https://idp|{who}"),
            action=action,
            old_label="a",
            new_label=new,
            seen_blind_id=None,
            seen_decision_id=None,
        )
    assert out.status == "agreed" and out.consensus.capacity == "consensus"
    # a later pull does not overwrite the consensus with cy's label: reported as a conflict
    again = pull_decisions(server, ds, store, project=r.project, workspace=tmp_path / "ws")
    assert again.saved == [] and [c.item_id for c in again.conflicts] == ["r0"]
    assert store.current(ds.content_hash).set_index("item_id").loc["r0", "action"] == "keep"


def test_a_single_item_held_by_another_is_taken_once_the_assignment_is_closed(
    server, ds, store, tmp_path
):
    book = _assign(store, ds, ["r0", "r1"], ["bo@example.com"], 0.0)
    r = _push(server, ds, store, tmp_path)
    server.annotate(r.task_ids[0], "c", user=3)  # cy, on bo's item
    res = pull_decisions(server, ds, store, project=r.project, workspace=tmp_path / "ws")
    (held,) = res.held
    assert held.holders == ("bo@example.com",) and not held.overlap
    assert "assigned to bo@example.com" in held.describe() and res.saved == []
    assert (
        team.team_overview(store, ds.content_hash)
        .set_index("reviewer")
        .loc["bo@example.com", "decided"]
        == 0
    )
    # still not taken on the next pull (not remembered as taken while held)
    assert len(pull_decisions(server, ds, store, project=r.project, workspace=tmp_path / "ws").held)
    (aid,) = book.assignments["assignment_id"].tolist()
    team.close_assignment(store, dataset_version=ds.content_hash, assignment_id=int(aid), lead=LEAD)
    res = pull_decisions(server, ds, store, project=r.project, workspace=tmp_path / "ws")
    assert res.held == [] and [(d.item_id, d.reviewer) for d in res.saved] == [
        ("r0", "cy@example.com")
    ]

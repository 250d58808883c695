"""Export is a lead's action in the library and the CLI too, not only on the page (issue 18).

A store reviewed with roles (leads named in LABELAUDIT_LEADS, or decisions made in the app by
reviewers who are not leads) exports only for a lead, checked with the same ``require_lead`` as bulk
decisions; a dataset reviewed without roles exports for anyone, as before. SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

import labelaudit as la
from labelaudit.cli import main
from labelaudit.errors import UsageError
from labelaudit.review import team
from labelaudit.review.export import check_export, export_review, exporter, roles_in_use
from labelaudit.review.identity import Identity
from labelaudit.review.store import ReviewStore
from labelaudit.workspace import Workspace
from tests.test_review_data import toy_dataset

LEA = Identity("lea@example.com", auth="oidc", role="lead", subject="https://idp|lea")
BO = Identity("bo@example.com", auth="oidc", role="reviewer", subject="https://idp|bo")


@pytest.fixture
def ds():
    return toy_dataset()


@pytest.fixture(autouse=True)
def no_leads(monkeypatch):
    monkeypatch.delenv("LABELAUDIT_LEADS", raising=False)


def keep(store, version, item, identity=None, reviewer="ana"):
    return store.record(
        dataset_version=version,
        item_id=item,
        reviewer=identity.name if identity else reviewer,
        action="keep",
        old_label="a",
        new_label=None,
        seen_decision_id=store.latest_decision_id(version, item),
        identity=identity,
    )


# --------------------------------------------------------------------------- what "with roles" is
def test_roles_are_in_use_when_leads_are_named_or_reviewers_decided_in_the_app(store):
    v = uuid.uuid4().hex[:20]
    assert roles_in_use(store, v) == ""  # nothing decided
    keep(store, v, "0")  # a script (auth script, role reviewer): no roles
    keep(store, v, "1", Identity("cy", auth="import"))  # an import: no roles
    keep(store, v, "2", Identity("lea", auth="typed", role="lead"))  # the app, nobody named
    assert roles_in_use(store, v) == ""
    assert roles_in_use(store, v, leads=frozenset({"lea"})) == "LABELAUDIT_LEADS names the leads"
    keep(store, v, "3", BO)  # the app, a reviewer: leads were named when it was made
    assert "reviewers who are not leads" in roles_in_use(store, v)
    assert roles_in_use(store, uuid.uuid4().hex[:20]) == ""  # per dataset version


def test_a_blind_review_by_a_reviewer_is_a_store_with_roles(store):
    v = uuid.uuid4().hex[:20]
    team.create_assignment(
        store,
        dataset_version=v,
        item_ids=["0", "1"],
        reviewers=[BO.name, "ana@example.com"],
        overlap_share=1.0,
        lead=LEA,
    )
    assert roles_in_use(store, v) == ""
    slot = team.assignment_book(store, v).slot_of("0", BO.name)
    team.record_blind(
        store,
        dataset_version=v,
        item_id="0",
        slot=slot.slot,
        identity=BO,
        action="keep",
        old_label="a",
        new_label=None,
        seen_blind_id=None,
        seen_decision_id=None,
    )
    assert roles_in_use(store, v) == (
        "it holds blind reviews made in the app by reviewers who are not leads"
    )


def test_the_lead_rule_is_require_lead(store):
    v = uuid.uuid4().hex[:20]
    keep(store, v, "0", BO)
    with pytest.raises(UsageError, match="only a lead can export the reviewed dataset; bo@"):
        check_export(store, v, BO)
    check_export(store, v, LEA)  # a lead
    with pytest.raises(UsageError, match="reviewed with roles") as e:
        check_export(store, v, None)
    assert "--as NAME" in str(e.value) and "LABELAUDIT_LEADS" in str(e.value)
    check_export(store, uuid.uuid4().hex[:20], None)  # another version, reviewed without roles


# --------------------------------------------------------------------------- the library
def test_export_review_needs_a_lead_for_a_store_with_roles(ds, tmp_path):
    store = ReviewStore(f"sqlite:///{tmp_path / 'r.sqlite'}")
    keep(store, ds.content_hash, "r0")  # a script's decision: no roles
    out = tmp_path / "plain.csv"
    assert export_review(ds, store, out=out) == [out]  # open, as before
    keep(store, ds.content_hash, "r1", BO)
    refused = tmp_path / "refused.csv"
    with pytest.raises(UsageError, match="reviewed with roles"):
        export_review(ds, store, out=refused, log=True)
    with pytest.raises(UsageError, match="bo@example.com is a reviewer"):
        la.export(ds, out=refused, store=store, identity=BO)
    assert not refused.exists() and not (tmp_path / "refused.decisions.csv").exists()
    written = la.export(ds, out=tmp_path / "lead.csv", store=store, log=True, identity=LEA)
    assert len(written) == 2
    back = pd.read_csv(written[0], keep_default_na=False).set_index("id")
    assert back.loc["r1", "reviewer"] == BO.name
    store.close()


def test_named_leads_make_every_store_one_with_roles(ds, tmp_path, monkeypatch):
    store = ReviewStore(f"sqlite:///{tmp_path / 'r.sqlite'}")
    monkeypatch.setenv("LABELAUDIT_LEADS", "lea@example.com")
    with pytest.raises(UsageError, match="LABELAUDIT_LEADS names the leads"):
        export_review(ds, store, out=tmp_path / "x.csv")
    assert export_review(ds, store, out=tmp_path / "x.csv", identity=LEA)
    store.close()


# --------------------------------------------------------------------------- the CLI
def test_cli_export_of_a_store_with_roles_needs_as_a_lead(ds, tmp_path, capsys, monkeypatch):
    ws = Workspace(tmp_path / "ws")
    ws.save_dataset(ds)
    store = ReviewStore(ws.database_url)
    keep(store, ds.content_hash, "r0", BO)
    store.close()
    out = tmp_path / "clean.csv"
    argv = ["export", "--workspace", str(ws.root), "--out", str(out)]
    assert main(argv) == 2
    assert "only a lead can export" in capsys.readouterr().err and not out.exists()
    # --as with nobody named here: every name would count as a lead, so it is refused
    assert main([*argv, "--as", "lea@example.com"]) == 2
    assert "LABELAUDIT_LEADS is not set here" in capsys.readouterr().err
    monkeypatch.setenv("LABELAUDIT_LEADS", "Lea@Example.com")
    assert main([*argv, "--as", "bo@example.com"]) == 2
    assert "bo@example.com is a reviewer" in capsys.readouterr().err and not out.exists()
    assert main([*argv, "--as", "lea@example.com"]) == 0
    assert out.exists() and "1 decided" in capsys.readouterr().out


def test_exporter_takes_the_role_from_the_named_leads(store):
    v = uuid.uuid4().hex[:20]
    assert exporter("lea", store, v, leads=frozenset({"lea"})) == Identity(
        "lea", auth="script", role="lead"
    )
    assert exporter("bo", store, v, leads=frozenset({"lea"})).role == "reviewer"
    assert exporter("bo", store, v, leads=frozenset()).role == "lead"  # no roles: anyone
    keep(store, v, "0", BO)
    with pytest.raises(UsageError, match="LABELAUDIT_LEADS is not set here"):
        exporter("bo", store, v, leads=frozenset())


def test_the_hugging_face_export_follows_the_same_rule(tmp_path):
    pytest.importorskip("datasets")
    from labelaudit.integrations.hf import export_hf
    from labelaudit.io import load_dataset

    ds = load_dataset(
        pd.DataFrame({"id": ["r0", "r1"], "text": ["one", "two"], "label": ["a", "b"]})
    )
    store = ReviewStore(f"sqlite:///{tmp_path / 'r.sqlite'}")
    keep(store, ds.content_hash, "r1", BO)
    with pytest.raises(UsageError, match="reviewed with roles"):
        export_hf(ds, store, out=tmp_path / "hf")
    with pytest.raises(UsageError, match="bo@example.com is a reviewer"):
        export_hf(ds, store, out=tmp_path / "hf", identity=BO)
    assert not (tmp_path / "hf").exists()
    assert export_hf(ds, store, out=tmp_path / "hf", identity=LEA).is_dir()
    store.close()

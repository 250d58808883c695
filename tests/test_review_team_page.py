"""The Review page as a team, driven by AppTest: roles, assignments with a blind overlap,
adjudication, agreement, the queue in force and its settings, and lead-only actions that a
reviewer cannot reach through the URL or the session state."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from labelaudit.dataset import Dataset
from labelaudit.review import adaptive, team
from labelaudit.review.identity import Identity
from labelaudit.review.store import ReviewStore
from labelaudit.workspace import Workspace
from tests.learn_data import world
from tests.test_report import store_fake_scan

PAGE = str(Path(__file__).resolve().parents[1] / "views" / "review.py")
LEAD = Identity("lea", auth="typed", role="lead")


@pytest.fixture
def scanned(tmp_path, monkeypatch):
    """A stored (synthetic) scan of 120 rows and the workspace's store; lea is the only lead."""
    monkeypatch.delenv("LABELAUDIT_DB_URL", raising=False)
    monkeypatch.setenv("LABELAUDIT_LEADS", "lea")
    ws = Workspace(tmp_path / "ws")
    ds, table, _ = world(120, seed=3)
    emb = np.random.default_rng(3).normal(size=(ds.n, 8)).astype(np.float32)
    ds = Dataset(frame=ds.frame, classes=ds.classes, embeddings=emb)  # a stored scan needs them
    h = ws.save_dataset(ds)
    store_fake_scan(ds, ws, table.drop(columns=["given_label", "split", "cluster"]), {})
    store = ReviewStore(ws.database_url)
    yield ws, ds, h, store
    store.close()


def page(ws, h, reviewer: str, **state) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=90)
    at.session_state["workspace"] = str(ws.root)
    at.session_state["dataset_hash"] = h
    at.session_state["reviewer"] = reviewer
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def texts(at) -> str:
    """Every text, caption and code block, with Markdown escapes removed."""
    return "\n".join(
        [str(t.value) for t in at.text]
        + [str(c.value) for c in at.caption]
        + [str(c.value) for c in at.code]
    ).replace("\\", "")


def keys(at) -> set[str]:
    return {w.key for w in at.button if w.key} | {
        getattr(w, "key", None) or "" for w in at.get("form_submit_button")
    }


def shown(at):
    return at.session_state["review_session"].shown


def decide(at, action: str = "keep") -> AppTest:
    next(b for b in at.button if b.key == f"review_{action}").click()
    return at.run()


def test_a_reviewer_gets_no_lead_action_even_through_state_or_url(scanned):
    ws, ds, h, store = scanned
    at = AppTest.from_file(PAGE, default_timeout=90)
    at.session_state["workspace"] = str(ws.root)
    at.session_state["dataset_hash"] = h
    at.session_state["reviewer"] = "bo"
    at.session_state["review_mode"] = "team"  # as if a widget had been set
    at.query_params["review_mode"] = "team"
    at.query_params["role"] = "lead"
    at.run()
    assert not at.exception, at.exception
    assert "Reviewing as bo (typed, not verified)" in texts(at)
    found = keys(at)
    for lead_only in ("review_rerank", "bulk_prepare", "ls_send", "assign_create"):
        assert lead_only not in found
    assert not at.get("download_button")
    # no mode picker for a reviewer (the card's evidence picker is one too, for everybody)
    assert [s.key for s in at.get("segmented_control")] == ["review_evidence"]
    assert shown(at) is not None  # bo reviews the queue


def test_the_ranking_in_force_is_shown_and_the_lead_can_rerank(scanned):
    ws, ds, h, store = scanned
    at = page(ws, h, "lea")
    assert not at.exception, at.exception
    assert "Ranking in force: static" in texts(at)
    assert "No decisions yet" in texts(at)  # says why nothing is learnt yet
    assert "Track record so far" in texts(at)
    first = shown(at).item_id
    for _ in range(3):
        at = decide(at, "keep")
        assert not at.exception, at.exception
    assert shown(at).item_id != first
    assert len(store.current(h)) == 3
    next(b for b in at.button if b.key == "review_rerank").click()
    at.run()
    assert not at.exception, at.exception
    rec = adaptive.latest_ranking(store, h)
    assert rec is not None and rec.trigger == "on demand" and rec.requested_by == "lea"
    assert "on demand, by lea" in texts(at)
    # one-sided decisions (all kept): the static ranking stays, and the page says why
    assert "Ranking in force: static" in texts(at)
    assert "Not enough decisions of both outcomes to learn from: 0 label changes and 3" in texts(at)


def test_lead_refits_the_suggestions_on_the_decisions(scanned):
    ws, ds, h, store = scanned
    at = page(ws, h, "lea")
    for _ in range(3):
        at = decide(at, "change")
    next(b for b in at.button if b.key == "review_refit_suggestions").click()
    at.run()
    assert not at.exception, at.exception
    assert "Suggestions: refitted on the decisions up to #3." in texts(at)
    refit = adaptive.latest_suggestion_refit(ws, ws.load_dataset(h))
    assert refit is not None and refit.n_decisions == 3
    top = ds.classes[int(refit.probs[ds.id_to_row[shown(at).item_id]].argmax())]
    assert shown(at).suggested == top  # the card's suggestion is the refitted model's


def test_rerank_after_every_n_decisions(scanned):
    ws, ds, h, store = scanned
    adaptive.save_setting(store, h, "rerank_every", 2, set_by="lea")
    at = page(ws, h, "ana")
    for _ in range(2):
        at = decide(at, "keep")
    at.run()  # the next full run re-ranks (ana's page, anyone's decisions)
    assert not at.exception, at.exception
    rec = adaptive.latest_ranking(store, h)
    assert rec is not None and rec.trigger == "auto" and rec.cutoff_decision_id == 2


def test_audit_items_are_marked_in_the_store_not_on_the_card(scanned):
    ws, ds, h, store = scanned
    at = page(ws, h, "lea")
    at.number_input(key="review_audit_share").set_value(50)
    next(b for b in at.button if b.key == "review_audit_start").click()
    at.run()
    assert not at.exception, at.exception
    assert adaptive.load_settings(store, h).audit_share == 0.5
    at = page(ws, h, "ana")  # a reviewer: nothing on the page says which items are audit items
    for _ in range(4):
        assert not re.search(r"\baudit\b", texts(at), flags=re.I)
        at = decide(at, "keep")
    shown_json = store.log(h)["shown"].tolist()
    assert any('"audit": true' in s for s in shown_json)
    assert not all('"audit": true' in s for s in shown_json)


def test_assignment_overlap_blind_review_and_adjudication(scanned):
    ws, ds, h, store = scanned
    lead = page(ws, h, "lea")
    lead.segmented_control(key="review_mode").set_value("team").run()
    assert not lead.exception, lead.exception
    lead.number_input(key="assign_size").set_value(10)
    lead.text_input(key="assign_reviewers").set_value("ana, bo")
    lead.slider(key="assign_overlap").set_value(50)
    next(b for b in lead.get("form_submit_button") if "Create" in b.proto.label).click()
    lead.run()
    assert not lead.exception, lead.exception
    assert any("reviewed twice" in s.value for s in lead.success)
    book = team.assignment_book(store, h)
    assert abs(len(book.queue_for("ana")) - len(book.queue_for("bo"))) <= 1
    both = set(book.queue_for("ana")) & set(book.queue_for("bo"))
    assert len(both) == 5
    only_ana = set(book.queue_for("ana")) - both

    # ana and bo each see only their own items; on the shared ones, opposite decisions
    pages = {n: page(ws, h, n) for n in ("ana", "bo")}
    for name, at in pages.items():
        assert "Your assignment" in texts(at)
        seen = []
        for _ in range(len(book.queue_for(name))):
            item = shown(at).item_id
            seen.append(item)
            assert item in book.queue_for(name)
            at = decide(at, "keep" if name == "ana" else "remove")
            assert not at.exception, at.exception
        assert set(seen) == set(book.queue_for(name))
        assert any("Nothing left" in s.value for s in at.success)
    assert team.adjudication_queue(store, h) and set(team.adjudication_queue(store, h)) == both
    assert set(store.current(h)["item_id"]) >= only_ana  # single items go straight to the log

    lead = page(ws, h, "lea")
    opts = lead.segmented_control(key="review_mode")
    assert "Adjudication (5)" in list(opts.options)
    opts.set_value("team").run()
    assert "Raw agreement" in [m.label for m in lead.metric]
    lead.segmented_control(key="review_mode").set_value("adjudicate").run()
    assert not lead.exception, lead.exception
    assert "The two blind reviews" in "\n".join(m.value for m in lead.markdown)
    item = shown(lead).item_id
    assert item in both
    lead = decide(lead, "keep")
    d = store.in_force(h, [item])[item]
    assert d.capacity == "adjudication" and d.reviewer == "lea" and d.final
    assert item not in team.adjudication_queue(store, h)


def test_typed_name_is_recorded_as_typed(scanned):
    ws, ds, h, store = scanned
    at = page(ws, h, "ana")
    decide(at, "keep")
    log = store.log(h)
    assert log["auth"].tolist() == ["typed"] and log["role"].tolist() == ["reviewer"]


def test_a_signed_in_user_is_recorded_as_oidc_and_typed_names_are_refused(scanned, monkeypatch):
    """Login configured ([auth] in secrets): the page takes st.user's claims (stubbed here: no
    provider runs in the tests) and never a typed name."""
    import components.login as rt

    ws, ds, h, store = scanned
    auth = {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "s" * 32,
        "client_id": "labelaudit",
        "client_secret": "x",
        "server_metadata_url": "http://idp/.well-known/openid-configuration",
    }
    monkeypatch.setattr(rt, "auth_section", lambda: auth)
    monkeypatch.setattr(rt, "login_claims", lambda: None)
    at = page(ws, h, "lea")  # a typed name in the session: refused while login is configured
    assert not at.exception, at.exception
    assert "review_sign_in" in keys(at)
    assert "review_session" not in at.session_state or shown(at) is None  # no item, no decision
    assert not any("Keep" in b.proto.label for b in at.get("form_submit_button"))
    claims = {"email": "Lea@Example.com", "name": "Lea", "iss": "https://idp", "sub": "42"}
    monkeypatch.setattr(rt, "login_claims", lambda: claims)
    monkeypatch.setenv("LABELAUDIT_LEADS", "lea@example.com")
    at = page(ws, h, "someone typed")
    assert not at.exception, at.exception
    assert "Reviewing as lea@example.com (signed in, lead)" in texts(at)
    assert "review_sign_out" in keys(at)
    decide(at, "keep")
    log = store.log(h)
    assert log["reviewer"].tolist() == ["lea@example.com"]
    assert log["auth"].tolist() == ["oidc"] and log["role"].tolist() == ["lead"]


def _export_script(ws_root: str, h: str, name: str, role: str) -> None:
    """The Review page's export component on its own, for the identity given (AppTest script)."""
    from components.review import render_export
    from components.store import workspace_store
    from labelaudit.review.identity import Identity
    from labelaudit.workspace import Workspace

    render_export(
        workspace_store(ws_root),
        Workspace(ws_root).load_dataset(h),
        ws_root,
        Identity(name, auth="typed", role=role),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(("name", "role", "downloads"), [("bo", "reviewer", 0), ("lea", "lead", 3)])
def test_the_export_component_itself_refuses_a_reviewer(scanned, name, role, downloads):
    """The rule is the library's check_export inside the component, not only the page's `if`:
    a reviewer gets no download button even with the export's widget keys and a role in the
    session state and the URL."""
    ws, ds, h, store = scanned
    at = AppTest.from_function(
        _export_script, args=(str(ws.root), h, name, role), default_timeout=60
    )
    at.session_state["export_removed"] = "flag"
    at.session_state["download_csv"] = True
    at.session_state["role"] = "lead"
    at.query_params["role"] = "lead"
    at.run()
    assert not at.exception, at.exception
    assert len(at.get("download_button")) == downloads
    if not downloads:
        assert "only a lead can export the reviewed dataset; bo is a reviewer" in texts(at)

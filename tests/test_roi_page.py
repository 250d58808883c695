"""AppTest of the ROI page with a stored scan and a store holding a few decisions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from labelaudit import roi
from labelaudit.review.store import ReviewStore
from tests.test_report import reviewed_setup, store_fake_scan

PAGE = str(Path(__file__).resolve().parents[1] / "views" / "roi.py")


def open_page(
    workspace, tmp_path, *, reviewer: str = "ana", decide: bool = True
) -> tuple[AppTest, str]:
    ds, _, store, scan_table, details = reviewed_setup(tmp_path, reviewer=reviewer)
    h = ds.content_hash
    store.close()
    if decide:  # the workspace's own database is where the page looks
        shutil.copyfile(tmp_path / "review.sqlite", workspace.root / "review.sqlite")
    workspace.save_dataset(ds)
    store_fake_scan(ds, workspace, scan_table, details)
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["workspace"] = str(workspace.root)
    at.session_state["dataset_hash"] = h
    return at, h


def metric(at: AppTest, label: str) -> str:
    for m in at.metric:
        if m.label == label:
            return m.value
    raise AssertionError(f"no metric {label!r}; have {[m.label for m in at.metric]}")


def test_page_shows_review_numbers_then_retrains_on_click(workspace, tmp_path):
    at, h = open_page(workspace, tmp_path)
    at.run()
    assert not at.exception, at.exception
    s = roi.summarise_review(workspace.load_dataset(h), ReviewStore(workspace.database_url).log(h))
    assert metric(at, "Items reviewed") == f"{s.n_reviewed:,}"
    assert metric(at, "Labels changed") == f"{s.n_relabelled:,}"
    assert not at.warning  # real reviewers: no simulation notice
    retrain = [b for b in at.button if b.key == "roi_retrain"]
    assert retrain, "the retrain button is offered before the first retraining"
    retrain[0].click().run()
    assert not at.exception, at.exception
    assert metric(at, "Accuracy after").endswith("%")
    assert not [b for b in at.button if b.key == "roi_retrain"]
    assert any("Trained on" in c.value for c in at.caption)
    downloads = at.get("download_button")
    assert len(downloads) == 1 and "report" in downloads[0].proto.label


def test_learning_from_the_decisions_is_shown(workspace, tmp_path):
    at, h = open_page(workspace, tmp_path)
    at.run()
    assert not at.exception, at.exception
    assert "Learning from the decisions" in [x.value for x in at.header]
    assert metric(at, "Ranking in force") in ("static", "learnt")
    assert metric(at, "Errors left (estimate)") == "n/a"  # no audit yet: says so instead
    assert any("audit" in c.value.lower() for c in at.caption)
    frames = [d.value for d in at.dataframe]
    assert any({"scope", "precision", "precision_low"} <= set(f.columns) for f in frames)


def test_simulated_decisions_show_the_notice(workspace, tmp_path):
    at, _ = open_page(workspace, tmp_path, reviewer=roi.SIMULATED_REVIEWER)
    at.run()
    assert not at.exception, at.exception
    assert any("Simulated demo" in w.value for w in at.warning)


def test_no_decisions_yet(workspace, tmp_path):
    at, _ = open_page(workspace, tmp_path, decide=False)
    at.run()
    assert not at.exception, at.exception
    assert any("No review decisions yet" in i.value for i in at.info)
    assert metric(at, "Items reviewed") == "0"


@pytest.mark.parametrize(
    "note", ["card_arrival vs card_delivery_estimate: the guideline is ambiguous"]
)
def test_pin_a_finding(workspace, tmp_path, note):
    at, h = open_page(workspace, tmp_path, decide=False)
    at.run()
    at.selectbox(key="roi_finding_kind").set_value("class_pair")
    at.text_input(key="roi_finding_target").input("card_arrival vs card_delivery_estimate")
    at.text_area(key="roi_finding_note").input(note)
    at.text_input(key="roi_finding_author").input("dee")
    next(b for b in at.button if "Pin finding" in b.label).click()
    at.run()
    assert not at.exception, at.exception
    found = ReviewStore(workspace.database_url).findings(h)
    assert found["note"].tolist() == [note] and found["kind"].tolist() == ["class_pair"]
    assert found[["author", "author_auth"]].values.tolist() == [["dee", "typed"]]
    assert any(note in df.value["note"].tolist() for df in at.dataframe if "note" in df.value)


def test_a_signed_in_user_pins_as_themselves_without_typing_a_name(
    workspace, tmp_path, monkeypatch
):
    import components.login as login
    from tests.test_identity import GOOD, ISS

    claims = {"iss": ISS, "sub": "u-7", "email": "Ana@Example.com", "email_verified": True}
    monkeypatch.setattr(login, "login_claims", lambda: claims)
    monkeypatch.setenv("LABELAUDIT_LEADS", "lea@example.com")  # ana is a reviewer
    at, h = open_page(workspace, tmp_path, decide=False)
    at.secrets["auth"] = GOOD
    at.session_state["reviewer"] = "typed-before"  # a typed name never wins over the login
    at.run()
    assert not at.exception, at.exception
    assert not [t for t in at.text_input if t.key == "roi_finding_author"]
    assert any(t.value == "Pinned as ana@example.com (signed in)" for t in at.text)
    at.text_area(key="roi_finding_note").input("refund wording is ambiguous")
    next(b for b in at.button if "Pin finding" in b.label).click()
    at.run()
    assert not at.exception, at.exception
    found = ReviewStore(workspace.database_url).findings(h)
    assert found[["author", "author_auth", "author_subject"]].values.tolist() == [
        ["ana@example.com", "oidc", f"{ISS}|u-7"]
    ]
    shown = next(df.value for df in at.dataframe if "identified" in df.value)
    assert shown[["author", "identified"]].values.tolist() == [["ana@example.com", "signed in"]]


def test_with_login_configured_nobody_pins_without_signing_in(workspace, tmp_path, monkeypatch):
    import components.login as login
    from tests.test_identity import GOOD

    monkeypatch.setattr(login, "login_claims", lambda: None)
    at, _ = open_page(workspace, tmp_path, decide=False)
    at.secrets["auth"] = GOOD
    at.session_state["reviewer"] = "mallory"  # a typed name is refused when login is configured
    at.run()
    assert not at.exception, at.exception
    assert not [b for b in at.button if "Pin finding" in b.label]
    assert not [t for t in at.text_input if t.key == "roi_finding_author"]
    assert any("Sign in to pin a finding" in i.value for i in at.info)
    assert [b.label for b in at.button if b.key == "review_sign_in"] == ["Sign in"]


def test_two_decisions_are_too_few_for_a_precision(workspace, tmp_path):
    # Before: "Precision 100%" and "Expected fixes in the next 100: 100.0" from two decisions.
    at, h = open_page(workspace, tmp_path, decide=False)
    ds = workspace.load_dataset(h)
    store = ReviewStore(workspace.database_url)
    from labelaudit.reporting import find_scan

    table = find_scan(ds, workspace).table
    flagged = table.loc[table["is_label_issue"].astype(bool), "id"].astype(str).tolist()[:2]
    assert len(flagged) == 2
    for item in flagged:
        old = ds.frame["label"].iloc[ds.id_to_row[item]]
        new = next(c for c in ds.classes if c != old)
        store.record(
            dataset_version=h,
            item_id=item,
            action="change",
            old_label=old,
            new_label=new,
            reviewer="ana",
        )
    store.close()
    at.run()
    assert not at.exception, at.exception
    assert metric(at, "Precision of suggestions").startswith("too few decisions (2 of")
    assert metric(at, "Expected fixes in the next 100") == "n/a"

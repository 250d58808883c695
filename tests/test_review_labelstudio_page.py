"""The Review page's "Send to Label Studio" and "Pull decisions" against a real Label Studio server
(the PyPI ``label-studio`` in ``.venv-labelstudio``, started on loopback from the test template)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from labelaudit.integrations.labelstudio import sent_projects
from labelaudit.review.store import ReviewStore
from labelaudit.workspace import Workspace
from tests.labelstudio_server import server_python, start_from_template
from tests.test_review_data import toy_dataset

pytestmark = [pytest.mark.slow, pytest.mark.labelstudio]
PAGE = str(Path(__file__).resolve().parents[1] / "views" / "review.py")


@pytest.fixture(scope="module")
def ls_server():
    if not server_python().exists():
        pytest.skip(f"no Label Studio venv at {server_python()}: `make labelstudio-env`")
    server = start_from_template()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.delenv("LABELAUDIT_DB_URL", raising=False)
    monkeypatch.delenv("LABELAUDIT_LEADS", raising=False)
    ws = Workspace(tmp_path / "ws")
    ds = toy_dataset()
    h = ws.save_dataset(ds)
    store = ReviewStore(ws.database_url)
    yield ws, ds, h, store
    store.close()


def open_page(ws, h) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["workspace"] = str(ws.root)
    at.session_state["dataset_hash"] = h
    at.session_state["reviewer"] = "lea"
    return at.run()


def everything(at) -> str:
    parts = [
        str(e.value)
        for kind in ("text", "caption", "success", "error", "warning")
        for e in getattr(at, kind)
    ]
    return "\n".join(parts)


def click(at, key):
    next(b for b in at.button if b.key == key).click()
    return at.run()


def test_send_then_pull_from_the_review_page(ls_server, setup, monkeypatch):
    ws, ds, h, store = setup
    monkeypatch.setenv("LABEL_STUDIO_URL", ls_server.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", ls_server.token)
    monkeypatch.setenv("LABELAUDIT_LABELSTUDIO_PYTHON", str(ls_server.python))
    at = open_page(ws, h)
    assert not at.exception, at.exception
    at.number_input(key="ls_limit").set_value(5)
    at = click(at, "ls_send")
    assert not at.exception, at.exception
    assert any("Sent 5 task(s)" in s.value.replace("\\", "") for s in at.success), everything(at)
    assert ls_server.token not in everything(at)
    (sent,) = sent_projects(ws.root, h)
    assert len(sent.items) == 5
    item = next(iter(sent.items))
    task = sent.items[item]["task"]
    ls_server.sdk(
        "R = {'from_name': 'label', 'to_name': 'text', 'type': 'choices', "
        f"'value': {{'choices': [{json.dumps(ds.classes[0])}]}}}}\n"
        f"c.annotations.create(id={task}, result=[R])\n"
    )
    at = click(at, "ls_pull")
    assert not at.exception, at.exception
    assert any("Took 1 decision(s)" in s.value.replace("\\", "") for s in at.success), everything(
        at
    )
    d = store.in_force(h, [item])[item]
    assert "@" in d.reviewer and d.auth == "import"  # the Label Studio user's e-mail address
    assert (d.new_label if d.action != "keep" else None) in (ds.classes[0], None)


def test_a_server_that_is_down_is_a_message_on_the_page(setup, monkeypatch):
    if not server_python().exists():
        pytest.skip("no Label Studio venv")
    ws, ds, h, store = setup
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("LABEL_STUDIO_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "secret-token-123")
    monkeypatch.setenv("LABELAUDIT_LABELSTUDIO_PYTHON", str(server_python()))
    at = open_page(ws, h)
    at = click(at, "ls_send")
    assert not at.exception, at.exception
    assert any("not reachable" in e.value.replace("\\", "") for e in at.error), everything(at)
    assert "secret-token-123" not in everything(at)
    assert not sent_projects(ws.root, h) and store.log(h).empty

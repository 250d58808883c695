"""The Label Studio round trip against a real server (PyPI ``label-studio`` in ``.venv-labelstudio``).

One server per test session, on loopback, on a throwaway copy of a migrated data folder; stopped
(and its folder deleted) at the end of the session, also when a test fails. The official SDK runs in
the server's venv, both for labelaudit's calls (``LABELAUDIT_LABELSTUDIO_PYTHON``) and for the
annotators these tests play.
"""

from __future__ import annotations

import json
import socket
import threading

import numpy as np
import pandas as pd
import pytest

from labelaudit.integrations.labelstudio import (
    LabelStudioConnection,
    LabelStudioError,
    load_export_dataset,
    pull_decisions,
    push_queue,
)
from labelaudit.io import load_dataset
from labelaudit.review.store import ReviewStore
from tests.labelstudio_server import server_python, start_from_template

pytestmark = [pytest.mark.slow, pytest.mark.labelstudio]


def _need_venv():
    if not server_python().exists():
        pytest.skip(
            f"no Label Studio venv at {server_python()}: `make labelstudio-env` (make test does it)"
        )


@pytest.fixture(scope="session")
def ls_server():
    _need_venv()
    server = start_from_template()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def conn(ls_server):
    return LabelStudioConnection(ls_server.url, token=ls_server.token, python=str(ls_server.python))


@pytest.fixture
def ds():
    rng = np.random.default_rng(0)
    n = 30
    labels = ["refund", "card", "transfer"]
    df = pd.DataFrame(
        {
            "id": [f"q{i}" for i in range(n)],
            "text": [f"customer message {i}: <b>bold?</b> & more" for i in range(n)],
            "label": [labels[i % 3] for i in range(n)],
        }
    )
    probs = rng.dirichlet(np.ones(3), size=n)
    return load_dataset(df, probs=probs)


@pytest.fixture
def store(tmp_path):
    s = ReviewStore(f"sqlite:///{tmp_path / 'review.sqlite'}")
    yield s
    s.close()


def test_queue_round_trip_with_a_real_server(ls_server, conn, ds, store, tmp_path):
    ws = tmp_path / "ws"
    queue = ds.ids.tolist()[:20]
    r = push_queue(conn, ds, store, item_ids=queue, workspace=ws, title="labelaudit round trip")
    assert r.created_project and len(r.task_ids) == 20
    # What the server holds: text, given label, evidence fields, the suggestion as a prediction.
    tasks = json.loads(
        ls_server.sdk(
            f"ts = list(c.tasks.list(project={r.project}, fields='all'))\n"
            "print(json.dumps([{'id': t.id, 'data': t.data, 'predictions': [{'model_version': p.model_version, "
            "'score': p.score, 'result': p.result} for p in c.predictions.list(task=t.id)]} for t in ts]))"
        )
    )
    assert len(tasks) == 20
    first = next(t for t in tasks if t["data"]["item_id"] == "q0")
    assert first["data"]["text"] == ds.texts[0] and first["data"]["given_label"] == "refund"
    (pred,) = first["predictions"]
    assert pred["model_version"] == r.model_version
    assert pred["result"][0]["value"]["choices"] == [first["data"]["suggested_label"]]
    task_of = {t["data"]["item_id"]: t["id"] for t in tasks}

    # decided here after sending: q2 -> a conflict if Label Studio decides it too
    here = store.record(
        dataset_version=ds.content_hash,
        item_id="q2",
        reviewer="ana",
        action="keep",
        old_label="transfer",
        new_label=None,
    )
    # two annotators in Label Studio (the second one created through the API)
    ls_server.sdk(
        "bo = [u for u in c.users.list() if u.email == 'bo@example.com']\n"
        "bo = bo[0] if bo else c.users.create(email='bo@example.com', username='bo')\n"
        "R = lambda v, n='label': {'from_name': n, 'to_name': 'text', 'type': 'choices', 'value': {'choices': [v]}}\n"
        f"t = {json.dumps(task_of)}\n"
        "c.annotations.create(id=t['q0'], result=[R('card')])\n"
        "c.annotations.create(id=t['q1'], result=[R('card')], completed_by=bo.id)\n"
        "c.annotations.create(id=t['q2'], result=[R('refund')])\n"
        "c.annotations.create(id=t['q3'], result=[R('card'), R('remove', 'labelaudit_decision')], completed_by=bo.id)\n"
    )
    res = pull_decisions(conn, ds, store, project=r.project, workspace=ws)
    got = {d.item_id: (d.reviewer, d.action, d.new_label) for d in res.saved}
    admin = "labelaudit-tests@example.com"  # the Label Studio user's own name (issue 18)
    assert got["q0"] == (admin, "change", "card") or got["q0"] == (admin, "accept", "card")
    assert got["q1"] == ("bo@example.com", "keep", "card")
    assert got["q3"] == ("bo@example.com", "remove", None)
    assert set(got) == {"q0", "q1", "q3"}
    (conflict,) = res.conflicts
    assert conflict.item_id == "q2" and conflict.labelaudit.id == here.id
    assert (
        store.current(ds.content_hash).set_index("item_id").loc["q2", "final_label"] == "transfer"
    )

    again = pull_decisions(conn, ds, store, project=r.project, workspace=ws)
    assert again.saved == [] and again.unchanged == 3 and len(again.conflicts) == 1

    # The project's own export file reads back as a dataset with both annotators.
    raw = ls_server.sdk(
        f"sys.stdout.write(b''.join(c.projects.exports.download_sync({r.project}, export_type='JSON')).decode())"
    )
    config = ls_server.sdk(f"sys.stdout.write(c.projects.get(id={r.project}).label_config)")
    f = tmp_path / "export.json"
    f.write_text(raw)
    (tmp_path / "config.xml").write_text(config)
    exported = load_export_dataset(f, label_config=tmp_path / "config.xml")
    assert sorted(exported.ids.tolist()) == ["q0", "q1", "q2", "q3"]
    assert exported.annotations["annotator_id"].nunique() == 2
    assert exported.classes == ds.classes


def test_a_refused_token_is_a_clear_message(ls_server):
    bad = LabelStudioConnection(
        ls_server.url, token="not-the-token-0000", python=str(ls_server.python)
    )
    with pytest.raises(LabelStudioError) as e:
        bad.check()
    assert e.value.kind == "refused" and "refused the token" in str(e.value)
    assert "not-the-token-0000" not in str(e.value)


def test_a_server_that_is_down_is_a_clear_message():
    _need_venv()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    c = LabelStudioConnection(
        f"http://127.0.0.1:{port}", token="t0ken-xyz", python=str(server_python())
    )
    with pytest.raises(LabelStudioError) as e:
        c.check()
    assert (
        e.value.kind == "unreachable"
        and "not reachable" in str(e.value)
        and "t0ken-xyz" not in str(e.value)
    )


def test_a_slow_server_is_a_clear_message():
    _need_venv()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_stay_silent():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    th = threading.Thread(target=accept_and_stay_silent, daemon=True)
    th.start()
    try:
        port = listener.getsockname()[1]
        c = LabelStudioConnection(
            f"http://127.0.0.1:{port}", token="t0ken-xyz", timeout=2, python=str(server_python())
        )
        with pytest.raises(LabelStudioError) as e:
            c.check()
        assert e.value.kind == "timeout" and "did not answer within 2 s" in str(e.value)
    finally:
        stop.set()
        th.join(5)
        for s in held:
            s.close()
        listener.close()


def test_cli_push_and_pull(ls_server, ds, tmp_path, monkeypatch, capsys):
    from labelaudit.cli import main
    from labelaudit.workspace import Workspace

    ws = Workspace(tmp_path / "cli-ws")
    ws.save_dataset(ds)
    monkeypatch.setenv("LABEL_STUDIO_URL", ls_server.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", ls_server.token)
    monkeypatch.setenv("LABELAUDIT_LABELSTUDIO_PYTHON", str(ls_server.python))
    assert main(["labelstudio", "check"]) == 0
    assert "signed in as labelaudit-tests@example.com" in capsys.readouterr().out
    assert main(["labelstudio", "push", "--workspace", str(ws.root), "--limit", "5"]) == 0
    out = capsys.readouterr()
    assert "sent 5 task(s)" in out.out and ls_server.token not in out.out + out.err
    project = int(out.out.split("to project ")[1].split()[0])
    first = json.loads(
        ls_server.sdk(f"print(json.dumps([t.id for t in c.tasks.list(project={project})]))")
    )[0]
    ls_server.sdk(
        f"c.annotations.create(id={first}, result=[{{'from_name': 'label', 'to_name': 'text', "
        "'type': 'choices', 'value': {'choices': ['card']}}])"
    )
    assert main(["labelstudio", "pull", "--workspace", str(ws.root)]) == 0
    assert "took 1 decision(s)" in capsys.readouterr().out


def test_cli_with_a_server_that_is_down(tmp_path, monkeypatch, capsys):
    from labelaudit.cli import main

    _need_venv()
    monkeypatch.setenv("LABELAUDIT_LABELSTUDIO_PYTHON", str(server_python()))
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "t0ken-xyz")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["labelstudio", "check", "--url", f"http://127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith("error: Label Studio at") and "Traceback" not in err and "t0ken" not in err
    )
    monkeypatch.delenv("LABEL_STUDIO_API_KEY")
    assert main(["labelstudio", "check", "--url", f"http://127.0.0.1:{port}"]) == 2
    assert "LABEL_STUDIO_API_KEY" in capsys.readouterr().err

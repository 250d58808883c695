"""labelaudit.show(): a background dashboard from Python, reused per workspace, stopped on demand and at exit."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import urllib.request

import pandas as pd
import pytest
from playwright.sync_api import expect

import labelaudit as la
from labelaudit import notebook
from labelaudit.errors import DataError, UsageError
from tests.conftest import ROOT


def _frame(n: int = 40, offset: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "utterance": [
                f"message number {i + offset} about {'cards' if i % 2 else 'transfers'}"
                for i in range(n)
            ],
            "intent": ["card" if i % 2 else "transfer" for i in range(n)],
        }
    )


def _health(base_url: str) -> int | None:
    try:
        with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=3) as r:
            return r.status
    except OSError:
        return None


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def dashboards():
    """Dashboards started by a test; their servers are stopped afterwards even when it fails."""
    started: list[la.Dashboard] = []
    yield started
    for d in started:
        d.stop()


def test_show_serves_reuses_and_stops(tmp_path, dashboards):
    ws = tmp_path / "ws"
    first = la.show(_frame(), text="utterance", label="intent", workspace=ws)
    dashboards.append(first)
    assert first.running and _health(f"http://127.0.0.1:{first.port}") == 200
    assert first.url == f"http://127.0.0.1:{first.port}/?dataset={first.dataset_hash}"
    assert first.dataset_hash in la.Workspace(ws).datasets()
    html = first._repr_html_()
    assert f'<iframe src="{first.url}"' in html
    assert "running" in repr(first) and first.url in repr(first)

    second = la.show(_frame(offset=100), workspace=ws)  # columns detected by name this time
    dashboards.append(second)
    assert second.port == first.port and second._server is first._server
    assert second.dataset_hash != first.dataset_hash
    assert second.url.endswith(f"?dataset={second.dataset_hash}")

    first.stop()
    assert not first.running and not second.running
    assert not _port_open(first.port)
    assert "stopped" in repr(second) and "<iframe" not in second._repr_html_()
    first.stop()  # a second stop is harmless

    third = la.show(_frame(), text="utterance", label="intent", workspace=ws)
    dashboards.append(third)
    assert third.running and third._server is not first._server


def test_show_accepts_a_loaded_dataset_and_an_explicit_port(tmp_path, dashboards):
    from tests.conftest import free_port

    ds = la.load_dataset(_frame(), text_col="utterance", label_col="intent")
    port = free_port()
    dash = la.show(ds, workspace=tmp_path / "ws", port=port)
    dashboards.append(dash)
    assert dash.port == port and dash.dataset_hash == ds.content_hash
    with pytest.raises(UsageError, match="already in use"):
        la.show(ds, workspace=tmp_path / "other", port=port)


def test_a_bad_dataframe_raises_before_any_server_starts(tmp_path):
    before = dict(notebook._SERVERS)
    bad = pd.DataFrame({"utterance": ["hello", "", "bye"], "intent": ["a", "b", None]})
    with pytest.raises(DataError) as err:
        la.show(bad, text="utterance", label="intent", workspace=tmp_path / "ws")
    message = str(err.value)
    assert "<DataFrame>, column 'utterance': 1 empty text(s) in row 2" in message
    assert "column 'intent': 1 missing label(s) in row 3" in message
    assert before == notebook._SERVERS
    assert not (tmp_path / "ws" / "logs").exists()


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda ws: la.show(la.load_dataset(_frame()), text="utterance", workspace=ws),
            "also text",
        ),
        (lambda ws: la.show([1, 2, 3], workspace=ws), "not list"),
        (lambda ws: la.show(_frame(), port=70000, workspace=ws), "between 1 and 65535"),
    ],
)
def test_bad_calls_are_usage_errors(tmp_path, call, message):
    with pytest.raises(UsageError, match=message):
        call(tmp_path / "ws")


class _RunningStub:
    running = True
    port = 1


def test_repr_html_escapes_the_url(tmp_path):
    dash = la.Dashboard(
        url='http://127.0.0.1:1/?dataset="><script>alert(1)</script>',
        dataset_hash="x",
        workspace=tmp_path,
        _server=_RunningStub(),
    )  # type: ignore[arg-type]
    html = dash._repr_html_()
    assert "<script>" not in html
    assert 'src="http://127.0.0.1:1/?dataset=&quot;&gt;&lt;script&gt;' in html


def test_servers_are_stopped_when_the_interpreter_exits(tmp_path):
    code = textwrap.dedent(f"""
        import pandas as pd, labelaudit as la
        df = pd.DataFrame({{"text": ["a b", "c d", "e f"], "label": ["x", "y", "x"]}})
        print(la.show(df, workspace={str(tmp_path / "ws")!r}).port, flush=True)
    """)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=180, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    port = int(out.stdout.strip().splitlines()[-1])
    assert not _port_open(port)


def test_show_and_the_app_agree_on_the_query_parameter():
    from components.state import DATASET_QUERY_PARAM

    assert notebook.DATASET_QUERY_PARAM == DATASET_QUERY_PARAM


def test_the_app_opens_the_dataset_named_in_the_query_parameter(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    ws = la.Workspace(tmp_path / "ws")
    env_hash = ws.save_dataset(la.load_dataset(_frame()))
    wanted = ws.save_dataset(la.load_dataset(_frame(offset=7)))
    monkeypatch.setenv("LABELAUDIT_WORKSPACE", str(ws.root))
    monkeypatch.setenv("LABELAUDIT_DATASET", env_hash)
    for query, expected in [(wanted, wanted), ("../../etc", env_hash), ("0" * 20, env_hash)]:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        at.query_params["dataset"] = query
        at.run()
        assert not at.exception
        assert at.session_state["dataset_hash"] == expected, query


@pytest.mark.browser
def test_the_notebook_frame_shows_the_second_dataset_in_a_browser(tmp_path, dashboards, page):
    ws = tmp_path / "ws"
    dashboards.append(la.show(_frame(), workspace=ws))
    second = la.show(
        _frame(n=24, offset=500), workspace=ws
    )  # same server, started with the first dataset
    dashboards.append(second)
    page.set_content(second._repr_html_())  # what Jupyter renders for the cell's output
    frame = page.frame_locator("iframe")
    frame.get_by_text(f"dataset version {second.dataset_hash}").wait_for(timeout=90_000)
    # the Rows metric, by its label, polled: a snapshot of the first metric once read the last of the
    # four ("1.0x", the class ratio) while the page was still drawing the others
    rows = frame.locator("[data-testid='stMetric']").filter(has_text="Rows")
    expect(rows.locator("[data-testid='stMetricValue']")).to_have_text("24", timeout=60_000)

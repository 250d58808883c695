"""Server paths are limited to the data roots; the app listens on loopback unless told otherwise."""

from __future__ import annotations

import doctest
import os
import subprocess
import sys

import pandas as pd
import pytest

from labelaudit import security
from labelaudit.errors import DataError
from labelaudit.security import DATA_ROOTS_ENV, LAUNCH_DIR_ENV, check_server_path, data_roots
from tests.conftest import ROOT

SECRET_HEADER = "aws_secret_access_key"
SECRET_VALUE = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def layout(tmp_path, monkeypatch):
    """tmp/launch/data is the only data root; tmp/outside holds a credentials CSV."""
    launch = tmp_path / "launch"
    root = launch / "data"
    root.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    creds = outside / "credentials.csv"
    creds.write_text(
        f"text,label,{SECRET_HEADER}\nadmin login,root,{SECRET_VALUE}\n", encoding="utf-8"
    )
    good = root / "good.csv"
    pd.DataFrame({"text": ["a b", "c d", "e f"], "label": ["x", "y", "x"]}).to_csv(
        good, index=False
    )
    monkeypatch.setenv(LAUNCH_DIR_ENV, str(launch))
    monkeypatch.delenv(DATA_ROOTS_ENV, raising=False)
    return {"launch": launch, "root": root, "creds": creds, "good": good, "outside": outside}


def _refused(path) -> str:
    with pytest.raises(DataError) as err:
        check_server_path(path)
    text = str(err.value)
    assert "refused" in text
    assert SECRET_HEADER not in text and SECRET_VALUE not in text
    return text


# --------------------------------------------------------------------------- the rule
def test_the_default_roots_are_the_launch_folders_data_and_the_bundled_sample(layout):
    roots = data_roots()
    assert layout["root"].resolve() in roots
    assert (layout["launch"] / "sample_data").resolve() in roots
    assert (ROOT / "sample_data").resolve() in roots
    assert layout["launch"].resolve() not in roots


def test_a_path_inside_a_root_is_allowed_relative_or_absolute(layout):
    assert check_server_path(layout["good"]) == layout["good"].resolve()
    assert check_server_path("data/good.csv") == layout["good"].resolve()
    assert check_server_path(layout["root"]) == layout["root"].resolve()
    assert check_server_path(ROOT / "sample_data" / "banking77").is_dir()


def test_an_absolute_path_outside_every_root_is_refused(layout):
    text = _refused(layout["creds"])
    assert str(layout["root"].resolve()) in text  # says where data may come from
    _refused("/etc/passwd")


def test_dotdot_out_of_a_root_is_refused(layout):
    _refused(layout["root"] / ".." / ".." / "outside" / "credentials.csv")
    _refused("data/../../outside/credentials.csv")


def test_a_symlink_inside_a_root_pointing_outside_is_refused(layout):
    link = layout["root"] / "innocent.csv"
    link.symlink_to(layout["creds"])
    _refused(link)
    folder_link = layout["root"] / "linked_folder"
    folder_link.symlink_to(layout["outside"], target_is_directory=True)
    _refused(folder_link / "credentials.csv")


def test_a_folder_inside_a_root_with_a_file_linking_outside_is_refused(layout):
    folder = layout["root"] / "splits"
    folder.mkdir()
    (folder / "test.csv").write_text("text,label\na,x\n", encoding="utf-8")
    (folder / "train.csv").symlink_to(layout["creds"])
    text = _refused(folder)
    assert "train.csv" in text and "links outside" in text


def test_the_refusal_does_not_say_whether_the_path_exists(layout):
    a = _refused(layout["creds"]).replace(str(layout["creds"]), "P")
    b = _refused(layout["outside"] / "nope.csv").replace(str(layout["outside"] / "nope.csv"), "P")
    assert a == b


def test_roots_are_widened_by_the_environment(layout, monkeypatch):
    monkeypatch.setenv(DATA_ROOTS_ENV, os.pathsep.join([str(layout["outside"]), "", "  "]))
    assert check_server_path(layout["creds"]) == layout["creds"].resolve()
    assert check_server_path(layout["good"]) == layout["good"].resolve()  # defaults stay


def test_doctests_pass():
    result = doctest.testmod(security, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 2 and result.failed == 0


# --------------------------------------------------------------------------- the Data page
def _all_text(at) -> str:
    """Every string anywhere in the rendered page (element protos included)."""
    out: list[str] = []

    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        for attr in ("value", "label", "body"):
            v = getattr(node, attr, None)
            if v is not None:
                out.append(str(v))
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            for c in children.values():
                walk(c)

    walk(at._tree)
    return "\n".join(out)


def _data_page(workspace):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "views/data.py"), default_timeout=60)
    at.session_state["workspace"] = str(workspace.root)
    at.run()
    at.radio(key="data_source").set_value("Path on the server").run()
    return at


def _assert_nothing_leaked(at, workspace):
    assert not at.exception
    shown = _all_text(at)
    assert SECRET_HEADER not in shown and SECRET_VALUE not in shown
    assert "dataset_hash" not in at.session_state
    assert workspace.datasets() == []
    copies = [
        p
        for p in workspace.root.rglob("*")
        if p.is_file() and SECRET_VALUE.encode() in p.read_bytes()
    ]
    assert copies == []


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink"])
def test_the_data_page_refuses_a_credentials_file_outside_the_roots(how, layout, workspace):
    typed = {
        "absolute": str(layout["creds"]),
        "dotdot": "data/../../outside/credentials.csv",
        "symlink": str(layout["root"] / "innocent.csv"),
    }[how]
    if how == "symlink":
        (layout["root"] / "innocent.csv").symlink_to(layout["creds"])
    at = _data_page(workspace)
    at.text_input[0].input(typed).run()
    assert any("refused" in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="load_button").disabled
    _assert_nothing_leaked(at, workspace)


def test_the_data_page_refuses_a_companion_outside_the_roots(layout, workspace):
    at = _data_page(workspace)
    at.text_input[0].input(str(layout["good"])).run()
    at.text_input(key="path_annotations").input(str(layout["creds"])).run()
    assert any("refused" in e.value for e in at.error)
    assert at.button(key="load_button").disabled
    _assert_nothing_leaked(at, workspace)


def test_the_data_page_loads_a_file_inside_a_root(layout, workspace):
    at = _data_page(workspace)
    at.text_input[0].input("data/good.csv").run()
    at.button(key="load_button").click().run()
    assert not at.exception
    assert not [e.value for e in at.error]
    assert at.session_state["dataset_hash"] in workspace.datasets()


def test_loading_checks_the_roots_again_behind_the_page(layout, workspace, monkeypatch):
    """load_into_session itself refuses, whatever a page passes it."""
    from streamlit.testing.v1 import AppTest

    script = (
        "import streamlit as st\n"
        "from components.data import load_into_session\n"
        f"ok = load_into_session({str(layout['creds'])!r})\n"
        "st.write('loaded' if ok else 'refused')\n"
    )
    at = AppTest.from_string(script, default_timeout=60)
    at.session_state["workspace"] = str(workspace.root)
    at.run()
    assert not at.exception
    assert any("refused" in str(m.value) for m in at.markdown)
    assert any("refused" in p for p in at.session_state["load_problems"])
    _assert_nothing_leaked(at, workspace)


def test_the_app_ignores_a_dataset_variable_that_is_not_a_stored_version(
    layout, workspace, monkeypatch
):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("LABELAUDIT_WORKSPACE", str(workspace.root))
    monkeypatch.setenv("LABELAUDIT_DATASET", "../../outside")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception
    assert "dataset_hash" not in at.session_state
    with pytest.raises(DataError, match="not a dataset version"):
        workspace.load_dataset("../../outside")


# --------------------------------------------------------------------------- listening address
def test_the_app_listens_on_loopback_unless_exposed():
    from labelaudit.commands.app import listen_address, streamlit_command
    from labelaudit.errors import UsageError

    assert listen_address(None, False) == "127.0.0.1"
    assert listen_address("localhost", False) == "127.0.0.1"
    assert listen_address(None, True) == "0.0.0.0"
    assert listen_address("10.1.2.3", True) == "10.1.2.3"
    for host in ("0.0.0.0", "10.1.2.3", "example.org"):
        with pytest.raises(UsageError, match="--expose"):
            listen_address(host, False)
    cmd = streamlit_command(8501)
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"


def test_the_cli_refuses_a_public_host_without_expose():
    r = subprocess.run(
        [sys.executable, "-m", "labelaudit", "app", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    assert "--expose" in r.stderr and "Traceback" not in r.stderr


def test_a_bare_streamlit_run_listens_on_loopback_too():
    """``streamlit run app.py`` from the app folder reads .streamlit/config.toml."""
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["address"] == "127.0.0.1"
    assert config["browser"]["gatherUsageStats"] is False


def test_the_cli_passes_its_launch_folder_and_roots_to_the_app(tmp_path, monkeypatch):
    import argparse

    from labelaudit.commands import app as app_cmd

    seen: dict = {}

    def fake_call(cmd, env, cwd):
        seen.update(cmd=cmd, env=env)
        return 0

    monkeypatch.setattr(app_cmd.subprocess, "call", fake_call)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(LAUNCH_DIR_ENV, raising=False)
    monkeypatch.setenv(DATA_ROOTS_ENV, "/srv/shared")
    args = argparse.Namespace(
        data=None,
        workspace=str(tmp_path / "ws"),
        port=8599,
        host=None,
        expose=False,
        data_root=["extra"],
    )
    assert app_cmd.run(args) == 0
    env = seen["env"]
    assert env[LAUNCH_DIR_ENV] == str(tmp_path)
    assert env[DATA_ROOTS_ENV].split(os.pathsep) == [
        str((tmp_path / "extra").resolve()),
        "/srv/shared",
    ]
    assert seen["cmd"][seen["cmd"].index("--server.address") + 1] == "127.0.0.1"


def test_a_broken_install_without_serve_py_stops_before_any_work(tmp_path, monkeypatch, capsys):
    """``labelaudit app DATA`` and ``la.show()`` name the missing script before they load, store or
    scan anything, or start a server."""
    import argparse

    from labelaudit import jobs, notebook
    from labelaudit.commands import app as app_cmd
    from labelaudit.errors import UsageError

    gone = tmp_path / "serve.py"
    monkeypatch.setattr(app_cmd, "SERVER_SCRIPT", gone)
    monkeypatch.setattr(app_cmd, "load_from_args", lambda a: pytest.fail("loaded the data"))
    monkeypatch.setattr(jobs, "start_scan", lambda *a: pytest.fail("started a scan"))
    monkeypatch.setattr(app_cmd.subprocess, "call", lambda *a, **k: pytest.fail("started"))
    args = argparse.Namespace(
        data="d.csv",
        workspace=str(tmp_path / "ws"),
        port=8599,
        host=None,
        expose=False,
        data_root=[],
    )
    assert app_cmd.run(args) == 2
    assert f"the app script {gone} is missing" in capsys.readouterr().err
    with pytest.raises(UsageError, match="serve.py is missing"):
        notebook._start_server(tmp_path / "ws", "abc", None)


def test_no_page_opens_a_server_path_without_the_check():
    """Every text_input that names a path goes through server_path (a grep-level guard)."""
    for f in [*(ROOT / "views").glob("*.py"), *(ROOT / "components").glob("*.py")]:
        src = f.read_text(encoding="utf-8")
        if "Path(typed" in src or "Path(v.strip()" in src:
            pytest.fail(f"{f.name} turns typed text into a Path without labelaudit.security")

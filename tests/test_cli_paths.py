"""Every path the CLI writes to is checked before the work starts (issue 19).

Read-only ``--out`` files and folders, read-only workspaces and databases in ``scan``, ``export``
and ``report``: a clear message naming the flag and the path, exit 2, no traceback, nothing computed.
Before, each of these gave a traceback (after the work, for ``scan``). Read-only is made for real:
``chattr +i`` as root (root ignores permission bits), the permission bits otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from labelaudit.cli import main
from labelaudit.errors import StoreError
from labelaudit.review.store import ReviewStore
from labelaudit.workspace import Workspace
from tests.test_review_data import toy_dataset

ROOT = os.geteuid() == 0


@pytest.fixture
def read_only() -> Iterator:
    """``read_only(path)`` makes a file or folder unwritable for this user until the test ends."""
    made: list[tuple[Path, int]] = []
    if ROOT and shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: cannot make a path read-only")

    def make(path: Path) -> Path:
        made.append((path, path.stat().st_mode))
        if ROOT:
            subprocess.run(["chattr", "+i", str(path)], check=True)
        else:
            path.chmod(0o555 if path.is_dir() else 0o444)
        return path

    yield make
    for path, mode in reversed(made):
        if ROOT:
            subprocess.run(["chattr", "-i", str(path)], check=False)
        else:
            path.chmod(mode)


@pytest.fixture
def data_csv(tmp_path) -> Path:
    p = tmp_path / "data.csv"
    p.write_text("id,text,label\n1,hello there,a\n2,good bye,b\n3,hi again,a\n", encoding="utf-8")
    return p


@pytest.fixture
def reviewed(tmp_path) -> tuple[Workspace, object]:
    ds = toy_dataset()
    ws = Workspace(tmp_path / "ws")
    ws.save_dataset(ds)
    store = ws.review_store()
    store.record(
        dataset_version=ds.content_hash,
        item_id="r0",
        reviewer="ana",
        action="change",
        old_label="card_arrival",
        new_label="card_delivery_estimate",
    )
    store.close()
    return ws, ds


def refused(capsys, flag: str, path: Path | str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("usage error: ") and flag in err and str(path) in err, err
    return err


# --------------------------------------------------------------------------- scan
def test_scan_refuses_a_read_only_out_file_before_any_work(tmp_path, data_csv, read_only, capsys):
    out = tmp_path / "scores.csv"
    out.write_text("old\n")
    read_only(out)
    ws = tmp_path / "ws"
    assert main(["scan", str(data_csv), "--workspace", str(ws), "--out", str(out)]) == 2
    assert "not writable" in refused(capsys, "--out", out)
    assert not (ws / "artifacts").exists()  # nothing computed


def test_scan_refuses_out_and_clusters_out_in_read_only_folders(
    tmp_path, data_csv, read_only, capsys
):
    folder = tmp_path / "locked"
    folder.mkdir()
    read_only(folder)
    ws = tmp_path / "ws"
    argv = ["scan", str(data_csv), "--workspace", str(ws)]
    assert main([*argv, "--out", str(folder / "s.parquet")]) == 2
    refused(capsys, "--out", folder / "s.parquet")
    out = tmp_path / "s.parquet"
    assert main([*argv, "--out", str(out), "--clusters-out", str(folder / "c.csv")]) == 2
    refused(capsys, "--clusters-out", folder / "c.csv")
    assert not (ws / "artifacts").exists() and not out.exists()


def test_scan_refuses_a_read_only_workspace(tmp_path, data_csv, read_only, capsys):
    ws = tmp_path / "ws"
    ws.mkdir()
    read_only(ws)
    out = tmp_path / "s.csv"
    assert main(["scan", str(data_csv), "--workspace", str(ws), "--out", str(out)]) == 2
    err = refused(capsys, "--workspace", ws)
    assert "embeddings" in err and not out.exists()
    parent = tmp_path / "locked"
    parent.mkdir()
    read_only(parent)
    assert main(["scan", str(data_csv), "--workspace", str(parent / "ws"), "--out", str(out)]) == 2
    assert "cannot create the workspace folder" in refused(capsys, "--workspace", parent / "ws")


# --------------------------------------------------------------------------- export
def test_export_refuses_read_only_out_and_log_files(reviewed, tmp_path, read_only, capsys):
    ws, _ = reviewed
    out = tmp_path / "clean.csv"
    out.write_text("old\n")
    read_only(out)
    assert main(["export", "--workspace", str(ws.root), "--out", str(out)]) == 2
    refused(capsys, "--out", out)
    assert out.read_text() == "old\n"
    fresh = tmp_path / "fresh.csv"
    log = tmp_path / "fresh.decisions.csv"
    log.write_text("old\n")
    read_only(log)
    assert main(["export", "--workspace", str(ws.root), "--out", str(fresh), "--log"]) == 2
    refused(capsys, "--log", log)
    assert not fresh.exists()  # checked before anything was written
    locked = tmp_path / "locked"
    locked.mkdir()
    read_only(locked)
    nested = locked / "new" / "clean.csv"  # export creates missing folders: the parent is checked
    assert main(["export", "--workspace", str(ws.root), "--out", str(nested)]) == 2
    refused(capsys, "--out", nested)


def test_export_reads_a_read_only_workspace_and_database(reviewed, tmp_path, read_only, capsys):
    ws, ds = reviewed
    for p in sorted(ws.root.rglob("*"), reverse=True):
        read_only(p)
    read_only(ws.root)
    out = tmp_path / "clean.csv"
    assert main(["export", "--workspace", str(ws.root), "--out", str(out)]) == 0
    assert "1 decided" in capsys.readouterr().out and out.exists()


# --------------------------------------------------------------------------- report
def test_report_refuses_a_read_only_out_and_workspace(reviewed, tmp_path, read_only, capsys):
    ws, _ = reviewed
    out = tmp_path / "roi.html"
    out.write_text("old")
    read_only(out)
    assert main(["report", "--workspace", str(ws.root), "--out", str(out)]) == 2
    refused(capsys, "--out", out)
    read_only(ws.root)
    fresh = tmp_path / "fresh.html"
    assert main(["report", "--workspace", str(ws.root), "--out", str(fresh)]) == 2
    assert "retraining" in refused(capsys, "--workspace", ws.root)
    assert not fresh.exists()


def test_a_writer_on_a_read_only_database_says_so_on_open(reviewed, read_only):
    ws, _ = reviewed
    read_only(ws.root / "review.sqlite")
    with pytest.raises(StoreError, match="cannot be written") as e:
        ReviewStore(ws.database_url)
    assert str(ws.root / "review.sqlite") in str(e.value)

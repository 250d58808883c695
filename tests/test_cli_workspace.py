"""The command line without the app: ``scan`` stores its dataset in the workspace, and ``export`` /
``report`` find it there or take the same data options as ``scan`` (issue 16)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelaudit.cli import main
from labelaudit.workspace import Workspace


def _write_data(tmp_path, n_per_class: int = 30) -> tuple[str, str]:
    """A 3-class CSV (train + test) and its (N, 8) embeddings as separate files, as a user has them."""
    rng = np.random.default_rng(0)
    rows, vecs = [], []
    for c in range(3):
        centre = np.zeros(8)
        centre[c] = 4.0
        for i in range(n_per_class):
            rows.append(
                {
                    "id": f"r{c}_{i}",
                    "text": f"text {c} number {i}",
                    "label": f"class{c}",
                    "split": "test" if i % 5 == 0 else "train",
                }
            )
            vecs.append(centre + rng.normal(size=8))
    csv = tmp_path / "data.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    npy = tmp_path / "emb.npy"
    np.save(npy, np.asarray(vecs, dtype=np.float32))
    return str(csv), str(npy)


def test_export_takes_the_data_options_of_scan(tmp_path, capsys):
    csv, npy = _write_data(tmp_path)
    ws = tmp_path / "ws"
    out = tmp_path / "clean.csv"
    argv = ["export", csv, "--embeddings", npy, "--workspace", str(ws), "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    assert len(Workspace(ws).datasets()) == 1
    back = pd.read_csv(out, keep_default_na=False)
    assert len(back) == 90 and set(back["final_label"]) == {"class0", "class1", "class2"}
    # Later, without DATA, export finds the dataset the first call stored.
    assert main(["export", "--workspace", str(ws), "--out", str(out)]) == 0


def test_data_and_a_different_dataset_version_is_a_usage_error(tmp_path, capsys):
    csv, npy = _write_data(tmp_path)
    argv = ["export", csv, "--embeddings", npy, "--workspace", str(tmp_path / "ws")]
    assert main([*argv, "--dataset", "zzzz", "--out", str(tmp_path / "x.csv")]) == 2
    assert "does not match DATA" in capsys.readouterr().err


def test_empty_workspace_says_how_to_fill_it(tmp_path, capsys):
    assert main(["report", "--workspace", str(tmp_path / "ws"), "--out", str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert "no dataset in the workspace" in err and "labelaudit scan DATA" in err


@pytest.mark.slow
def test_scan_then_export_then_report_from_the_cli_alone(tmp_path, capsys):
    csv, npy = _write_data(tmp_path)
    ws = str(tmp_path / "ws")
    scanned = tmp_path / "scan.parquet"
    assert (
        main(["scan", csv, "--embeddings", npy, "--workspace", ws, "--out", str(scanned)]) == 0
    ), capsys.readouterr().err
    capsys.readouterr()
    (h,) = Workspace(ws).datasets()
    out = tmp_path / "clean.parquet"
    assert main(["export", "--workspace", ws, "--out", str(out)]) == 0, capsys.readouterr().err
    assert h in capsys.readouterr().out
    assert len(pd.read_parquet(out)) == 90
    html = tmp_path / "r.html"
    assert main(["report", "--workspace", ws, "--out", str(html)]) == 0, capsys.readouterr().err
    printed = capsys.readouterr()
    assert h in printed.out and "scanning it first" not in printed.err  # the stored scan is used
    assert "<html" in html.read_text(encoding="utf-8").lower()

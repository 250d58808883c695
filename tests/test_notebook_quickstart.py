"""examples/quickstart.ipynb: committed clean and in step with its generator; executes end to end."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import nbformat
import pytest

from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"
NOTEBOOK = EXAMPLES / "quickstart.ipynb"
#: Rows the executed test scans (the notebook's default is 2,000): keeps the test near two minutes.
TEST_ROWS = "1000"


def _generated() -> nbformat.NotebookNode:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_quickstart", EXAMPLES / "make_quickstart.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build()


def test_committed_notebook_is_valid_cleared_and_matches_its_generator():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code), (
        "clear the outputs"
    )
    assert [(c.cell_type, c.source) for c in nb.cells] == [
        (c.cell_type, c.source) for c in _generated().cells
    ], "run `python examples/make_quickstart.py` after editing the cells"


@pytest.mark.parametrize(
    "needle",
    [
        "la.load_dataset(",
        "la.scan(",
        "label_issue_score",
        "la.rater_agreement(",
        "la.influence_scores(",
        "la.show(",
        "dash.stop()",
    ],
)
def test_notebook_covers_the_quickstart_steps(needle):
    source = "\n".join(c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells)
    assert needle in source


@pytest.mark.slow
def test_quickstart_notebook_executes_end_to_end(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("LABELAUDIT_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("QUICKSTART_ROWS", TEST_ROWS)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # kernel "python3" runs this interpreter (jupyter_client swaps "python" for sys.executable).
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        allow_errors=False,
        resources={"metadata": {"path": str(EXAMPLES)}},
    )
    client.execute()  # raises CellExecutionError naming the failing cell

    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            texts.append(
                out.get("text", "")
                + str(out.get("data", {}).get("text/plain", ""))
                + str(out.get("data", {}).get("text/html", ""))
            )
    joined = "\n".join(texts)
    assert f"scanning {int(TEST_ROWS):,} of 13,083 rows" in joined
    assert '<iframe src="http://127.0.0.1:' in joined  # the dashboard cell rendered the frame
    assert "labelaudit dashboard stopped" in joined
    port = int(re.search(r"http://127\.0\.0\.1:(\d+)/\?dataset=", joined).group(1))
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the dashboard server is still listening"
    assert Path(tmp_path / "ws" / "datasets").exists()

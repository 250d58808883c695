"""Pages at scale (issue 14): a table element never holds every row of a large dataset.

The Explore page's row tables are capped at ``components.label_issues.MAX_TABLE_ROWS`` (5,000; the
Label issues table's cap), the most suspicious rows kept; the cap is lowered here so the 120-row
scan of test_scan stands for a large one. Bytes sent to a real browser at 10k and 1M rows are
measured in bench/bench_pages_scale.py.
"""

from __future__ import annotations

import numpy as np
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT
from tests.test_explore import scanned  # noqa: F401  (fixture)
from tests.test_scan import fakes  # noqa: F401  (fixture)

CAP = 50


def _page(workspace, ds, monkeypatch) -> AppTest:
    import components.label_issues

    monkeypatch.setattr(components.label_issues, "MAX_TABLE_ROWS", CAP)
    at = AppTest.from_file(str(ROOT / "views/explore.py"), default_timeout=120)
    at.session_state["workspace"] = str(workspace.root)
    at.session_state["dataset_hash"] = workspace.save_dataset(ds)
    return at


def test_rows_in_view_table_holds_the_most_suspicious_rows_only(
    scanned,  # noqa: F811
    workspace,
    monkeypatch,
):
    ds, res = scanned
    at = _page(workspace, ds, monkeypatch).run()
    assert not at.exception
    assert f"Rows in view ({ds.n:,})" in [s.value for s in at.subheader]  # the count: every row
    table = at.dataframe[0].value
    assert len(table) == CAP < ds.n
    scores = res.table["label_issue_score"].to_numpy()
    top = np.sort(scores)[::-1][:CAP]
    np.testing.assert_allclose(table["label_issue_score"].to_numpy(), top)
    note = f"Showing the {CAP:,} most suspicious of {ds.n:,} rows"
    assert any(note in c.value for c in at.caption)


def test_a_large_selection_is_capped_in_the_table_but_sent_to_review_whole(
    scanned,  # noqa: F811
    workspace,
    monkeypatch,
):
    import components.label_issues

    ds, res = scanned
    monkeypatch.setattr(components.label_issues, "MAX_TABLE_ROWS", CAP)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)  # the send switches pages
    at.session_state["workspace"] = str(workspace.root)
    at.session_state["dataset_hash"] = workspace.save_dataset(ds)
    picked = [str(i) for i in res.table["id"]]
    at.session_state["selection"] = picked
    at.switch_page("views/explore.py").run()
    assert not at.exception
    assert f"Selected rows ({ds.n:,})" in [s.value for s in at.subheader]
    assert len(at.dataframe[0].value) == CAP
    at.button(key="explore_send").click().run()
    assert not at.exception
    queue = at.session_state["review_queue"]
    assert sorted(queue) == sorted(picked)  # every selected row, not only the shown ones

"""The first pass in a real browser (issue 16): while the full scan runs, Explore shows the first
pass's map under a "Provisional" note that names the sample, and the full scan replaces it when it
lands, without a click or a reload."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import StreamlitServer, wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

N, SAMPLE = 300, 60


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    import os

    from labelaudit import first_pass
    from labelaudit.commands.app import APP_SCAN_OPTIONS
    from labelaudit.io import load_dataset
    from labelaudit.workspace import Workspace

    rng = np.random.default_rng(0)
    labels = np.arange(N) % 3
    emb = np.hstack(
        [np.eye(3)[labels] * 3 + rng.normal(size=(N, 3)), rng.normal(size=(N, 5))]
    ).astype(np.float32)
    classes = ["card", "refund", "top up"]
    frame = pd.DataFrame(
        {
            "id": [f"q{i}" for i in range(N)],
            "text": [f"question {i} about {classes[c]}" for i, c in enumerate(labels)],
            "label": [classes[c] for c in labels],
        }
    )
    ws = Workspace(tmp_path_factory.mktemp("first_pass") / "ws")
    ds = load_dataset(frame, embeddings=emb)
    h = ws.save_dataset(ds)
    # The first pass is stored before the server starts, so the page finds it at once whatever the
    # machine's speed; the job the page starts keeps it and runs the full scan.
    os.environ[first_pass.ROWS_ENV] = str(SAMPLE)
    try:
        assert first_pass.run_first_pass(ws, ds, dict(APP_SCAN_OPTIONS)) is not None
    finally:
        del os.environ[first_pass.ROWS_ENV]
    server = StreamlitServer(
        ws.root, None, {"LABELAUDIT_SCAN_RUNNER": "process", first_pass.ROWS_ENV: str(SAMPLE)}
    )
    yield server, h
    server.stop()


def test_explore_shows_the_first_pass_then_the_full_scan(app, page):
    server, h = app
    page.goto(f"{server.url}/explore?dataset={h}")
    wait_for_app(page)
    note = page.get_by_text("Provisional")
    note.first.wait_for(timeout=120_000)
    page.get_by_text(f"a stratified sample of {SAMPLE} of the {N} rows").first.wait_for()
    # generous: on a shared 2-core machine the page's script competes with the scan's training
    page.locator("[data-testid='stVegaLiteChart'] canvas").first.wait_for(timeout=300_000)
    page.get_by_text(f"{SAMPLE} rows. Drag a box").wait_for(timeout=120_000)
    # No click, no reload: the full scan replaces it when it is stored.
    page.get_by_text(f"{N} rows. Drag a box").wait_for(timeout=600_000)
    assert note.count() == 0
    assert page.locator("[data-testid='stException']").count() == 0, server.log()

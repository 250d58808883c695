"""Strings from the data stay plain text in every widget on every page, in Chromium (issue 16).

A dataset whose class names, ids and texts are Markdown, HTML or LaTeX
(``**x**``, ``<b>y</b>``, ``[l](u)``, ``$m$``) is scanned, then every page of the app is opened in
Chromium. Streamlit renders Markdown in radio options, tab names, expander titles, button, toggle
and checkbox labels, and shows selectbox / multiselect options and table cells as typed; Plotly
reads HTML in its labels. So on each page the test reads the DOM and asserts that none of the
payloads was rendered (no bold / italic / code element holding a payload's inner word, no link to
the payload's address, no KaTeX, no Plotly bold ``tspan``) and none was shown with the
backslashes of an escape meant for another surface (``\\*\\*x\\*\\*`` in a selectbox). The
selectboxes and multiselects of each page are opened so their option lists are in the DOM too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import StreamlitServer, wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: The payloads and the word inside each that must never appear as the whole text of a rendered
#: element (bold, link, maths...).
CLASSES = ["**zqbold**", "<b>zqhtml</b>", "[zqlink](http://evil.example/x)", "$zqmath$"]
WORDS = ["zqbold", "zqhtml", "zqlink", "zqmath", "zqid", "zqann"]
PORT = 8641

#: Backslash escapes of the payloads: shown only when an escape meant for Markdown landed on a
#: surface that shows text as typed.
ESCAPES = [r"\*\*zq", r"\<b\>", r"\<i\>", r"\[zq", r"\$zq", r"\`zq"]

#: JavaScript: everything in the DOM that shows a payload rendered instead of as text.
RENDERED = r"""
({words, escapes}) => {
  const bad = [];
  const sel = 'strong, b, em, i, code, a, del, s, mark, .katex, tspan';
  for (const el of document.querySelectorAll(sel)) {
    const t = (el.textContent || '').trim();
    if (!words.some(w => t.includes(w))) continue;
    if (el.tagName.toLowerCase() === 'tspan') {
      const style = (el.getAttribute('style') || '') + (el.getAttribute('font-weight') || '');
      if (/bold|700/.test(style)) bad.push('plotly bold: ' + t.slice(0, 80));
      continue;
    }
    // an element holding a payload's word without the payload's markup: it was rendered
    if (!/[*<\[$`]/.test(t)) bad.push(el.tagName.toLowerCase() + ': ' + t.slice(0, 80));
  }
  for (const a of document.querySelectorAll('a')) {
    const href = a.getAttribute('href') || a.getAttribute('xlink:href') || '';
    if (href.includes('evil.example')) bad.push('link: ' + href);
  }
  const text = document.body.innerText;
  for (const esc of escapes) if (text.includes(esc)) bad.push('escape shown: ' + esc);
  // a payload's word shown without the markup that precedes it: rendered, or its markup dropped
  const lead = {zqbold: /(^|[^*])zqbold/, zqhtml: /(^|[^>])zqhtml/, zqlink: /(^|[^\[])zqlink/,
                zqmath: /(^|[^$])zqmath/, zqid: /(^|[^*>`\[])zqid/};
  for (const [w, re] of Object.entries(lead)) {
    const m = text.match(re);
    if (m) {
      const at = text.indexOf(m[0]);
      bad.push('markup dropped: ' + JSON.stringify(text.slice(Math.max(0, at - 30), at + 40)));
    }
  }
  return bad;
}
"""


def _rendered(page) -> list[str]:
    return page.evaluate(RENDERED, {"words": WORDS, "escapes": ESCAPES})


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from labelaudit.io import load_dataset
    from labelaudit.workspace import Workspace

    rng = np.random.default_rng(0)
    n = 240
    labels = np.arange(n) % len(CLASSES)
    labels[::17] = (labels[::17] + 1) % len(CLASSES)  # some label errors for the queue
    centres = np.eye(len(CLASSES))[np.arange(n) % len(CLASSES)] * 3
    emb = np.hstack([centres + rng.normal(size=(n, 4)), rng.normal(size=(n, 4))]).astype(np.float32)
    ids = [
        [f"**zqid{i}**", f"<i>zqid{i}</i>", f"`zqid{i}`", f"[zqid{i}](http://evil.example/{i})"][
            i % 4
        ]
        for i in range(n)
    ]
    frame = pd.DataFrame(
        {
            "id": ids,
            "text": [f"**zqbold** text {i} <b>zqhtml</b> $zqmath$" for i in range(n)],
            "label": [CLASSES[c] for c in labels],
            "split": ["test" if i % 5 == 0 else "train" for i in range(n)],
        }
    )
    ws = Workspace(tmp_path_factory.mktemp("widget_labels") / "ws")
    h = ws.save_dataset(load_dataset(frame, embeddings=emb))
    server = StreamlitServer(ws.root, None, {"LABELAUDIT_SCAN_RUNNER": "process"}, port=PORT)
    yield server, h
    server.stop()


def _open_dropdowns(page) -> None:
    """Open each selectbox / multiselect of the main area once, so its options are in the DOM, and
    close it again (Escape)."""
    boxes = page.locator("[data-testid='stMain'] [data-baseweb='select']")
    for i in range(min(boxes.count(), 12)):
        box = boxes.nth(i)
        if not box.is_visible():
            continue
        box.click()
        page.locator("[data-baseweb='popover'], [role='listbox']").first.wait_for(timeout=5_000)
        bad = _rendered(page)
        page.keyboard.press("Escape")
        if bad:
            raise AssertionError(f"dropdown {i}: {bad}")


def test_data_strings_stay_text_in_every_widget_on_every_page(app, page):
    from components.pages import PAGES

    server, h = app
    page.goto(f"{server.url}/explore?dataset={h}")
    wait_for_app(page)
    # the scan runs in the background; wait until it is stored
    page.locator("[data-testid='stSidebar']").get_by_text("Scan stored").wait_for(timeout=300_000)
    # the check can fail: a rendered payload and a shown escape put into the page are both found
    page.evaluate(
        "() => { const b = document.createElement('strong'); b.id = 'probe'; "
        "b.textContent = 'zqbold'; document.body.appendChild(b); }"
    )
    found = _rendered(page)
    assert any(f.startswith("strong: zqbold") for f in found), found
    page.evaluate("() => { document.getElementById('probe').textContent = '\\\\*\\\\*zqbold'; }")
    assert any(f.startswith("escape shown") for f in _rendered(page)), _rendered(page)
    page.evaluate("() => document.getElementById('probe').remove()")
    problems: dict[str, list[str]] = {}
    shown: dict[str, bool] = {}
    for p in PAGES:
        page.goto(f"{server.url}{p.url_path}?dataset={h}")
        wait_for_app(page)
        if p.title == "Data":  # the class-balance chart names every class, as typed
            page.wait_for_function(
                "() => (document.querySelector(\"[data-testid='stMain']\") || {})"
                ".textContent?.includes('**zqbold**')",
                timeout=60_000,
            )
        page.wait_for_timeout(500)
        assert page.locator("[data-testid='stException']").count() == 0, (p.title, server.log())
        # open every expander, so their contents are drawn
        for exp in page.locator("[data-testid='stMain'] details:not([open]) summary").all()[:10]:
            if exp.is_visible():
                exp.click()
        wait_for_app(page)
        bad = _rendered(page)
        # textContent: the charts' SVG text too (tables are drawn on a canvas: plain text there)
        main = page.locator("[data-testid='stMain']")
        text = main.inner_text() + (main.text_content() or "")
        shown[p.title] = any(c in text for c in CLASSES) or "**zqid" in text
        try:
            _open_dropdowns(page)
        except AssertionError as e:
            bad.append(str(e))
        if bad:
            problems[p.title] = bad
    assert not problems, problems
    # the payloads were on the pages, as typed (the class names or ids, literally)
    assert shown["Data"], shown

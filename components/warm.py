"""The stored results of the current dataset, read in the background into the caches the pages use.

The first view of a page in a fresh server process otherwise pays for reading what the scan
stored: the page modules' imports (scipy, scikit-learn), the scan's tables, the map sample, the
issue table, and the training run's data map (a softmax over every epoch's logits, 2-3 s at 13k
rows on this 2-core machine; bench/results/page_views.md). So the first page a session opens with
a dataset starts one thread (per server process, dataset and scan options) that calls the same
cached loaders the pages call, in the order of the pages: a page opened later finds them loaded,
and a page that asks while the thread is still reading waits for it (Streamlit's caches compute a
key once, the other callers wait on its lock) instead of reading it a second time.

Only stored results are read: a loader that finds nothing stored raises before caching anything
(``_NotScanned`` / ``_NotPrepared``), and the thread moves on; nothing is computed that a page
would not read, nothing is written. Such a step is tried again by the next page view (the scan may
have been stored meanwhile); a step that succeeded is not. ``LABELAUDIT_WARM_CACHES=0`` turns it
off.

``app.py`` calls :func:`warm_current_dataset` when a page's script has finished (also when it
stopped), so the reading never competes with the page being drawn.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

_LOG = logging.getLogger(__name__)
_LOCK = threading.Lock()
#: (workspace, dataset hash, options key) -> the steps already loaded.
_DONE: dict[tuple[str, str, str], set[str]] = {}
#: The warming threads running now, by the same key.
_RUNNING: dict[tuple[str, str, str], threading.Thread] = {}
#: When the last warm-up of a key ended (time.monotonic()): steps that found nothing stored are
#: tried again only after :data:`RETRY_SECONDS`, so page views do not keep starting threads.
_ENDED: dict[tuple[str, str, str], float] = {}
RETRY_SECONDS = 30.0
#: Seconds each step took when it was loaded, by key (read by the tests).
TIMINGS: dict[tuple[str, str, str], dict[str, float]] = {}
#: The steps of :func:`warm_steps`, by name.
STEPS = ("imports", "scan", "map", "issue table", "dynamics", "self-influence")
#: Modules a page imports when it draws, not at its top: pandas' Styler (the Explore legend's
#: colour swatches; it imports jinja2, over a second on the first Explore view of a fresh server
#: at load 9, bench/results/page_views.md).
DRAW_IMPORTS = {"explore.py": ("pandas.io.formats.style",)}


def _is_submodule(package: str, name: str) -> bool:
    """Whether ``name`` is a module file or folder of the package ``package`` (found, not run)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return False
    folders = (spec.submodule_search_locations or []) if spec is not None else []
    return any((Path(f) / f"{name}.py").is_file() or (Path(f) / name).is_dir() for f in folders)


def page_imports(folder: Path | None = None) -> list[str]:
    """The modules the page files (``views/*.py``) import at their top level, in navigation order
    (the page a user opens next first) and without repeats (the files are parsed, not run), each
    page's :data:`DRAW_IMPORTS` after its own. A fresh server's
    first view of each page otherwise imports them in its script run (scipy, scikit-learn, the
    review store, the integrations: 0.5-1 s a page at load 9)."""
    import ast

    if folder is None:
        from components.pages import PAGES, VIEWS

        paths = [VIEWS / p.path.rsplit("/", 1)[-1] for p in PAGES]
    else:
        paths = sorted(folder.glob("*.py"))
    names: list[str] = []
    for path in paths:
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Import):
                names += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.append(node.module)
                # ``from components import roi``: the submodule roi
                names += [
                    f"{node.module}.{a.name}"
                    for a in node.names
                    if _is_submodule(node.module, a.name)
                ]
        names += DRAW_IMPORTS.get(path.name, ())
    return list(dict.fromkeys(names))


def enabled() -> bool:
    return os.environ.get("LABELAUDIT_WARM_CACHES", "1").strip().lower() not in ("0", "off", "no")


def warm_steps(
    workspace_root: str, dataset_hash: str, options_json: str
) -> list[tuple[str, Callable[[], object]]]:
    """(name, loader) of each cache the pages read for this dataset, in page order: exactly the
    calls the pages make, with the arguments of their first view, after the imports of every page
    (:func:`page_imports`: the next page's script finds its modules loaded)."""

    def imports() -> None:
        import importlib

        for name in page_imports():
            importlib.import_module(name)

    def load_scan() -> object:
        from components import scan

        return scan.load_scan(workspace_root, dataset_hash, options_json)

    def map_rows() -> object:
        from components import scan

        return scan.map_rows(workspace_root, dataset_hash, options_json, None, ())

    def issue_table() -> object:
        from components import label_issues

        return label_issues.cached_issue_table(workspace_root, dataset_hash, options_json)

    def prepared(influence: bool) -> None:
        # self_influence_ranking computes (and stores) what is missing: the Influence page calls it
        # only after its guard found it stored, and so does this
        from components.data import load_workspace_dataset
        from labelaudit.training_view import is_prepared
        from labelaudit.workspace import Workspace

        ds = load_workspace_dataset(workspace_root, dataset_hash)
        if not is_prepared(ds, Workspace(workspace_root), influence=influence):
            raise LookupError("not stored")

    def training_run() -> object:
        from components import dynamics

        prepared(False)
        return dynamics.load_dynamics(workspace_root, dataset_hash)

    def self_influence() -> object:
        from components import dynamics

        prepared(True)
        return dynamics.self_influence_ranking(workspace_root, dataset_hash)

    return [
        ("imports", imports),
        ("scan", load_scan),
        ("map", map_rows),
        ("issue table", issue_table),
        ("dynamics", training_run),
        ("self-influence", self_influence),
    ]


def _warm(key: tuple[str, str, str]) -> None:
    done = _DONE.setdefault(key, set())
    timings = TIMINGS.setdefault(key, {})
    for name, load in warm_steps(*key):
        if name in done:
            continue
        t = time.perf_counter()
        try:
            load()
        except Exception:  # not stored (yet), unreadable, an import failed: the page says so
            _LOG.debug("warming %s: %s not loaded", key, name, exc_info=True)
            continue
        timings[name] = time.perf_counter() - t
        done.add(name)
    with _LOCK:
        _RUNNING.pop(key, None)
        _ENDED[key] = time.monotonic()


def warm_stored_results(
    workspace_root: str, dataset_hash: str, options_json: str
) -> threading.Thread | None:
    """Start reading this dataset's stored results into the pages' caches in a background thread,
    unless they are loaded or being loaded; the thread, or None when nothing is started."""
    if not enabled():
        return None
    key = (str(workspace_root), dataset_hash, options_json)
    with _LOCK:
        if key in _RUNNING:
            return None
        if _DONE.get(key, set()) >= set(STEPS):
            return None
        ended = _ENDED.get(key)
        if ended is not None and time.monotonic() - ended < RETRY_SECONDS:
            return None
        # No script-run context: the loaders draw nothing, and the thread outlives the page run.
        thread = threading.Thread(target=_warm, args=(key,), name="labelaudit-warm", daemon=True)
        _RUNNING[key] = thread
    thread.start()
    return thread


def warm_current_dataset() -> threading.Thread | None:
    """:func:`warm_stored_results` for this session's current dataset and scan options (nothing
    without a dataset)."""
    import streamlit as st

    from components import state

    ss = st.session_state
    dataset_hash, workspace_root = ss.get(state.DATASET_HASH), ss.get(state.WORKSPACE)
    if not dataset_hash or not workspace_root:
        return None
    from components.scan import scan_options_key

    return warm_stored_results(workspace_root, dataset_hash, scan_options_key())


#: Modules the first script run of a fresh server imports before any page: app.py's own, and
#: Streamlit's emoji catalogue (``st.set_page_config``'s favicon check; 0.3 s, once per process).
START_IMPORTS = ("components.pages", "components.state", "streamlit.emojis")


def warm_at_start(environ: dict[str, str] | None = None) -> threading.Thread | None:
    """What a fresh server can read before its first page view (``serve.py`` calls it when the
    server starts): the modules of :data:`START_IMPORTS` and of every page (:func:`page_imports`),
    then, when the server was started on a dataset (``labelaudit app DATA`` sets
    ``LABELAUDIT_DATASET``), that dataset's stored results under the app's default scan options
    (:func:`warm_stored_results`; nothing when none are stored). In a background thread, so the
    server answers at once; the thread, or None when warming is off."""
    if not enabled():
        return None
    env = os.environ if environ is None else environ

    def run() -> None:
        import importlib

        for name in START_IMPORTS:
            try:
                importlib.import_module(name)
            except Exception:  # the page that needs it says what is missing
                _LOG.debug("warming at start: %s not imported", name, exc_info=True)
        dataset_hash = env.get("LABELAUDIT_DATASET")
        if dataset_hash:
            from components.scan import DEFAULT_OPTIONS, scan_options_key
            from labelaudit.workspace import Workspace

            ws = Workspace(env.get("LABELAUDIT_WORKSPACE"))  # as init_state resolves it
            if dataset_hash in ws.datasets():
                # its first step imports every page's modules
                key = scan_options_key(DEFAULT_OPTIONS)
                started = warm_stored_results(str(ws.root), dataset_hash, key)
                if started is not None:
                    started.join()
                return
        for name in page_imports():
            try:
                importlib.import_module(name)
            except Exception:
                _LOG.debug("warming at start: %s not imported", name, exc_info=True)

    thread = threading.Thread(target=run, name="labelaudit-warm-start", daemon=True)
    thread.start()
    return thread

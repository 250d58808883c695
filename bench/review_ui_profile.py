"""Server-side timing of each Streamlit script run, for ``bench.bench_review_ui --profile``.

Imported by a ``sitecustomize.py`` that the benchmark puts on the app server's ``PYTHONPATH`` (the
product never imports it). It wraps :meth:`ScriptRunner._run_script` (one full rerun or fragment
run, button callbacks included) and a few named steps of a review click, and appends one JSON line
per run to ``$LABELAUDIT_UI_PROFILE``:

``{"start": wall clock, "wall": s, "cpu": s (thread CPU), "fragment": bool, "deltas": n,
"delta_bytes": n, "parts": {step: s}}``

With ``$LABELAUDIT_UI_CPROFILE`` set to a folder, each run is also profiled with :mod:`cProfile`
(``run-<start>.pstats`` there; it slows the runs, so not for the timed figures).

The benchmark matches runs to clicks by time. Steps are timed inclusively (a step inside another
counts in both); only the outermost call of a step is counted.
"""

from __future__ import annotations

import cProfile
import functools
import gc
import json
import os
import threading
import time
from typing import Any

_LOCAL = threading.local()
_LOCK = threading.Lock()


def _run() -> dict[str, Any] | None:
    return getattr(_LOCAL, "run", None)


def timed(name: str, fn: Any) -> Any:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        run = _run()
        if run is None or name in run["_active"]:
            return fn(*args, **kwargs)
        run["_active"].add(name)
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            run["_active"].discard(name)
            run["parts"][name] = run["parts"].get(name, 0.0) + time.perf_counter() - t

    return wrapper


def _delta_kind(delta: Any) -> str:
    """What one delta draws: the element type (``text``, ``button``, ...), ``block:<kind>`` for a
    container (columns, form, tabs, ...), or the delta's own kind (``add_rows``, ...)."""
    which = delta.WhichOneof("type")
    if which == "new_element":
        return str(delta.new_element.WhichOneof("type"))
    if which == "add_block":
        return "block:" + str(delta.add_block.WhichOneof("type"))
    return str(which)


def _patch(owner: Any, attr: str, name: str) -> None:
    setattr(owner, attr, timed(name, getattr(owner, attr)))


def install(path: str) -> None:
    from streamlit.runtime.scriptrunner import script_runner
    from streamlit.runtime.scriptrunner_utils import script_run_context

    from labelaudit.review import live, session, store, store_health, team

    original = script_runner.ScriptRunner._run_script
    stats_dir = os.environ.get("LABELAUDIT_UI_CPROFILE")  # a folder: one cProfile dump per run

    def run_script(self: Any, rerun_data: Any) -> None:
        run = {
            "start": time.time(),
            "fragment": bool(getattr(rerun_data, "fragment_id_queue", None)),
            "parts": {},
            "deltas": 0,
            "delta_bytes": 0,
            "delta_types": {},
            "_active": set(),
        }
        _LOCAL.run = run
        prof = cProfile.Profile() if stats_dir else None
        t, c = time.perf_counter(), time.thread_time()
        try:
            if prof is None:
                return original(self, rerun_data)
            return prof.runcall(original, self, rerun_data)
        finally:
            run["wall"] = time.perf_counter() - t
            run["cpu"] = time.thread_time() - c
            if prof is not None and stats_dir:
                prof.dump_stats(os.path.join(stats_dir, f"run-{run['start']:.3f}.pstats"))
            _LOCAL.run = None
            run.pop("_active")
            with _LOCK, open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(run) + "\n")

    script_runner.ScriptRunner._run_script = run_script  # type: ignore[method-assign]

    # Streamlit's collection after every run (``runner.postScriptGC``), timed as a step of its own.
    class _TimedGc:
        def __getattr__(self, name: str) -> Any:
            return getattr(gc, name)

        collect = staticmethod(timed("streamlit.gc_collect", gc.collect))

    script_runner.gc = _TimedGc()  # type: ignore[assignment]

    enqueue = script_run_context.ScriptRunContext.enqueue

    def counting_enqueue(self: Any, msg: Any) -> None:
        run = _run()
        if run is not None and msg.WhichOneof("type") == "delta":
            run["deltas"] += 1
            run["delta_bytes"] += msg.ByteSize()
            kind = _delta_kind(msg.delta)
            run["delta_types"][kind] = run["delta_types"].get(kind, 0) + 1
        return enqueue(self, msg)

    script_run_context.ScriptRunContext.enqueue = counting_enqueue  # type: ignore[method-assign]

    S = store.ReviewStore
    for attr in ("record", "undo", "in_force", "latest_decision_id", "touched_since", "current"):
        _patch(S, attr, f"store.{attr}")
    _patch(S, "_after_commit", "store.after_commit (manifest, backup)")
    _patch(store_health, "add_to_manifest", "manifest")
    _patch(store_health, "backup_sqlite", "backup")
    L = live.LiveQueue
    for attr in ("refresh", "pick", "resync", "peek_next"):
        _patch(L, attr, f"live.{attr}")
    R = session.ReviewSession
    for attr in ("decide", "undo", "show", "skip"):
        _patch(R, attr, f"session.{attr}")
    _patch(team, "assignment_book", "team.assignment_book")
    _patch(team, "adjudication_queue", "team.adjudication_queue")


if os.environ.get("LABELAUDIT_UI_PROFILE"):
    install(os.environ["LABELAUDIT_UI_PROFILE"])

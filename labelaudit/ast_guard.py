"""One lock around :func:`ast.parse` on the CPython releases whose AST constructor is not safe
across threads.

CPython 3.11.0-3.11.7 and 3.12.0-3.12.1 keep the AST constructor's recursion counter in one
interpreter-wide struct. When a collection during ``ast.parse`` runs Python code and another
thread parses meanwhile, the first parse ends with ``SystemError: AST constructor recursion depth
mismatch`` (CPython issue gh-106905; fixed by gh-113035, released in 3.11.8 and 3.12.2). NumPy calls
``ast.parse`` for every ``.npy`` header (``np.load`` -> ``ast.literal_eval``) and Streamlit for
every page script it runs, so the app's background reader (``components/warm.py``) and the fit
threads (:func:`labelaudit.dynamics.map_on_cores`) hit it: seen as a failed page run in the fast
suite on Python 3.11.7, the version this project's machines have.

:func:`install` (called when ``labelaudit`` is imported) replaces ``ast.parse`` by a wrapper that
holds one re-entrant lock, on the affected releases only; parses then run one at a time, which costs
nothing measurable (a ``.npy`` header or a page script is parsed in well under a millisecond).
On a fixed release it does nothing.
"""

from __future__ import annotations

import ast
import functools
import sys
import threading

#: True on the releases with the shared counter (gh-106905).
AFFECTED = sys.version_info[:3] < (3, 11, 8) or (3, 12, 0) <= sys.version_info[:3] < (3, 12, 2)

_LOCK = threading.RLock()


def installed() -> bool:
    """Whether ``ast.parse`` is the locked wrapper."""
    return bool(getattr(ast.parse, "_labelaudit_locked", False))


def install(*, force: bool = False) -> bool:
    """Put the lock around ``ast.parse`` (once per process); True when it was put now. ``force``
    installs it on a fixed release too (for the tests)."""
    if not (AFFECTED or force) or installed():
        return False
    unlocked = ast.parse

    @functools.wraps(unlocked)
    def parse(*args, **kwargs):  # type: ignore[no-untyped-def]
        with _LOCK:
            return unlocked(*args, **kwargs)

    parse._labelaudit_locked = True  # type: ignore[attr-defined]
    ast.parse = parse  # ast.literal_eval looks the name up in the module, so it takes it too
    return True

"""The lock around ast.parse (labelaudit/ast_guard.py): without it, two threads that parse while a
collection lets the other run end in CPython's 'AST constructor recursion depth mismatch' on the
affected releases; with it they do not."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap

import labelaudit  # noqa: F401  (importing it installs the guard)
from labelaudit import ast_guard

# Two threads parse a large module over and over; a gc callback sleeps, so every collection during
# a parse hands the interpreter to the other thread (as a finaliser or a weakref callback does).
RACE = textwrap.dedent(
    """
    import ast, gc, sys, threading, time
    if sys.argv[1] == "guard":
        from labelaudit import ast_guard
        ast_guard.install(force=True)
    source = "\\n".join(f"x{i} = [{i}, ({i}, {{'a': [{i}]}}), f({i}, k={i})]" for i in range(3000))
    gc.callbacks.append(lambda phase, info: time.sleep(0))
    errors = []
    def work():
        try:
            for _ in range(6):
                ast.parse(source)
                ast.literal_eval("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }")
        except SystemError as e:
            errors.append(str(e))
    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads: t.start()
    for t in threads: t.join()
    print("ERRORS", len(errors), errors[:1])
    """
)


def _race(mode: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", RACE, mode], capture_output=True, text=True, timeout=300, check=True
    )
    return out.stdout


def test_parses_in_two_threads_do_not_fail_with_the_guard():
    assert "ERRORS 0 " in _race("guard")


def test_the_race_is_real_on_affected_releases():
    # the test above could fail: on the affected releases the same run without the guard fails
    if not ast_guard.AFFECTED:
        return
    assert "recursion depth mismatch" in _race("plain")


def test_importing_labelaudit_installs_it_on_affected_releases_only():
    assert ast_guard.installed() is ast_guard.AFFECTED
    assert ast.literal_eval("{'shape': (3, 4)}") == {"shape": (3, 4)}
    assert ast.parse("a = 1").body[0].targets[0].id == "a"
    assert ast.parse.__name__ == "parse" and ast.parse.__doc__  # functools.wraps kept them

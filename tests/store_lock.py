"""A real second process holding a SQLite database's write lock (``BEGIN IMMEDIATE``) until released."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

HOLDER = textwrap.dedent(
    """
    import sqlite3, sys
    con = sqlite3.connect(sys.argv[1], isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    sys.stdin.read()  # hold the write lock until our stdin is closed
    """
)


def hold_write_lock(db: Path) -> subprocess.Popen:
    """Start the holder and return once it holds the lock."""
    p = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "locked"
    return p


def release(p: subprocess.Popen) -> None:
    """Let the holder go (its connection closes: the lock is released) and wait for it."""
    if p.poll() is None:
        assert p.stdin is not None
        p.stdin.close()
        p.wait(timeout=30)

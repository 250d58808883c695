"""The workspace format, and what happens to a workspace written by an older labelaudit.

``<root>/workspace.json`` records :data:`WORKSPACE_FORMAT`. Format 1 (no such file) keyed datasets
and artifacts by hashes that joined fields with separators, so two different datasets could share a
version and the second was served the first one's cached results. Its keys are not trusted:

* ``datasets/`` and ``artifacts/`` are moved, unchanged, to ``<root>/format-1-ignored/`` (nothing is
  deleted; delete that folder when you no longer need it) and every later result is recomputed;
* each stored dataset is read back from its canonical files and saved again under its new version;
* review decisions recorded under an old version are moved to the new one, in one transaction, in
  the workspace's review database (every table with a ``dataset_version`` column). If that cannot
  be done (the database is unreachable, or the new version already has decisions) nothing is
  changed there and the note says which versions were left as they were.

The note (:attr:`labelaudit.workspace.Workspace.notes`) is also printed on standard error once, by
the process that upgrades. A workspace of a newer format than this labelaudit reads is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from labelaudit.errors import UsageError
from labelaudit.hashing import HASH_FORMAT

if TYPE_CHECKING:
    from labelaudit.workspace import Workspace

#: 2: dataset versions and text keys from :mod:`labelaudit.hashing` (length-prefixed fields).
WORKSPACE_FORMAT = HASH_FORMAT
FORMAT_FILE = "workspace.json"
KEYED_FOLDERS = ("datasets", "artifacts")


def read_format(root: Path) -> int | None:
    """The format recorded in ``root``; None when there is no (readable) record."""
    try:
        return int(json.loads((root / FORMAT_FILE).read_text(encoding="utf-8"))["format"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def ensure_format(ws: Workspace) -> list[str]:
    """Bring ``ws`` to :data:`WORKSPACE_FORMAT`; the notes to show (empty when nothing changed)."""
    root = ws.root
    fmt = read_format(root)
    if fmt == WORKSPACE_FORMAT:
        return []
    if fmt is not None and fmt > WORKSPACE_FORMAT:
        raise UsageError(
            f"the workspace {root} was written by a newer labelaudit (format {fmt}); this one "
            f"reads format {WORKSPACE_FORMAT}. Upgrade labelaudit or use another --workspace"
        )
    has_old_keys = any((root / d).exists() for d in KEYED_FOLDERS)
    if not os.access(root, os.W_OK):
        if not has_old_keys:
            return []  # nothing stored yet: a read-only empty workspace holds no untrusted key
        raise UsageError(
            f"the workspace {root} was written by an older labelaudit (format {fmt or 1}) whose "
            "dataset versions could collide, and it is read-only, so it cannot be upgraded. Fix: "
            "make it writable once (its results are then recomputed), or use another --workspace"
        )
    with _lock(root):
        fmt = read_format(root)  # another process may have upgraded it meanwhile
        if fmt == WORKSPACE_FORMAT:
            return []
        notes = _upgrade(ws, fmt or 1) if has_old_keys else []
        _write_format(root)
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    return notes


@contextlib.contextmanager
def _lock(root: Path):
    import fcntl

    with open(root / ".workspace.lock", "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _write_format(root: Path) -> None:
    tmp = root / f".{FORMAT_FILE}.{os.getpid()}.tmp"
    tmp.write_text(
        json.dumps({"format": WORKSPACE_FORMAT, "written_by": "labelaudit"}), encoding="utf-8"
    )
    os.replace(tmp, root / FORMAT_FILE)


def _aside_folder(root: Path, old: int) -> Path:
    base = root / f"format-{old}-ignored"
    aside, i = base, 1
    while aside.exists():
        i += 1
        aside = base.with_name(f"{base.name}-{i}")
    aside.mkdir()
    return aside


def _upgrade(ws: Workspace, old: int) -> list[str]:
    from labelaudit.workspace import Workspace

    root = ws.root
    aside = _aside_folder(root, old)
    for d in KEYED_FOLDERS:
        if (root / d).exists():
            os.replace(root / d, aside / d)
    notes = [
        f"the workspace {root} was written by an older labelaudit (format {old}), whose dataset "
        f"versions could collide; its cached results are not used and were moved to {aside} "
        "(delete it when no longer needed). Results are recomputed on the next scan."
    ]
    previous = Workspace(aside, check_format=False)
    mapping: dict[str, str] = {}
    unreadable: list[str] = []
    for old_version in previous.datasets():
        try:
            ds = previous.load_dataset(old_version)
        except Exception as e:  # a damaged old folder: keep it aside, say so
            unreadable.append(f"{old_version} ({type(e).__name__})")
            continue
        for cached in ("content_hash", "text_hash"):
            ds.__dict__.pop(cached, None)
        mapping[old_version] = ws.save_dataset(ds)
    if mapping:
        notes.append(
            f"{len(mapping)} stored dataset(s) saved again under their new versions: "
            + ", ".join(f"{o} -> {n}" for o, n in mapping.items())
        )
    if unreadable:
        notes.append(
            "could not read the stored dataset(s) "
            + ", ".join(unreadable)
            + f"; they stay in {aside / 'datasets'}"
        )
    if mapping:
        notes.append(_move_review_decisions(ws, mapping))
    return notes


def _move_review_decisions(ws: Workspace, mapping: dict[str, str]) -> str:
    """Re-key decisions from old to new versions in the workspace's database, all or nothing."""
    import sqlalchemy as sa

    url = ws.database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return "no review database yet: no decisions to move"
    pairs = {o: n for o, n in mapping.items() if o != n}
    try:
        engine = sa.create_engine(url)
        try:
            tables = [
                t
                for t in sa.inspect(engine).get_table_names()
                if "dataset_version" in {c["name"] for c in sa.inspect(engine).get_columns(t)}
            ]
            moved = 0
            with engine.begin() as conn:
                for t in tables:
                    table = sa.table(t, sa.column("dataset_version"))
                    for o, n in pairs.items():
                        r = conn.execute(
                            sa.update(table)
                            .where(table.c.dataset_version == o)
                            .values(dataset_version=n)
                        )
                        moved += r.rowcount or 0
        finally:
            engine.dispose()
    except Exception as e:
        return (
            f"review decisions could NOT be moved to the new versions ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:200]}); they are still recorded under the old versions "
            + ", ".join(pairs)
            + f" in {sa.engine.make_url(url).render_as_string(hide_password=True)}"
        )
    return f"review database: {moved} row(s) moved from the old versions to the new ones"

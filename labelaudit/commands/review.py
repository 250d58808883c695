"""``labelaudit review check|backups|backup|restore``: the review database's health and backups.

``check`` opens the database read-only and runs the checks every open runs (``PRAGMA quick_check``,
the decisions against the manifest); ``backups`` lists the rolling backups of a SQLite store, each
checked; ``backup`` takes one now; ``restore [BACKUP]`` puts one back (default: the newest sound
one), moving the damaged file aside, never deleting it. Exit 3 when the database cannot be used.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from labelaudit.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "review", help="check the review database, list its backups, back it up, restore one"
    )
    actions = p.add_subparsers(dest="review_command", metavar="ACTION")
    actions.required = True
    for name, text in (
        ("check", "check the review database (quick_check, decisions against the manifest)"),
        ("backups", "list the rolling backups of the review database, newest first"),
        ("backup", "take a backup of the review database now"),
        ("restore", "put a backup back (default: the newest sound one); the damaged file is kept"),
    ):
        a = actions.add_parser(name, help=text, description=text)
        a.add_argument(
            "--workspace", help="workspace folder (default: LABELAUDIT_WORKSPACE or .labelaudit)"
        )
        a.add_argument(
            "--db",
            help="review database URL (default: LABELAUDIT_DB_URL or review.sqlite in the workspace)",
        )
        if name == "restore":
            a.add_argument(
                "backup",
                nargs="?",
                help="backup file (a name from `labelaudit review backups`, or a path); "
                "default: the newest one that passes the check",
            )
        a.set_defaults(func=run)


def _sqlite_file(url: str) -> Path:
    from labelaudit.review import store_health

    db = store_health.sqlite_path(url)
    if db is None:
        raise UsageError(
            f"{store_health.redacted(url)} is not a SQLite file: labelaudit keeps backups of SQLite "
            "stores only; back a database server up with its own tools (e.g. pg_dump)"
        )
    return db


def run(args: argparse.Namespace) -> int:
    from labelaudit.review import store_health
    from labelaudit.workspace import Workspace

    ws = Workspace(args.workspace)
    url = args.db or ws.database_url
    manifest = ws.review_manifest_path(url)
    database = store_health.redacted(url)
    if args.review_command == "check":
        store = ws.review_store(url, read_only=True)
        try:
            last, count = store._figures()
        finally:
            store.close()
        m = store_health.read_manifest(manifest)
        print(
            f"ok: {database} holds {count:,} decision(s) up to id {last}"
            + (
                f"; the manifest {manifest} recorded {m.describe()} at {m.updated_at}"
                if m
                else "; no manifest yet"
            )
        )
        db = store_health.sqlite_path(url)
        if db is not None:
            files = store_health.backup_files(db)
            print(
                f"{len(files)} backup(s) in {store_health.backup_dir(db)}"
                + (f", newest {files[0].name}" if files else "")
            )
        return 0
    db = _sqlite_file(url)
    if args.review_command == "backups":
        infos = store_health.list_backups(db)
        if not infos:
            print(f"no backups of {db} yet (in {store_health.backup_dir(db)})")
            return 0
        for info in infos:
            print(info.describe())
        return 0
    if args.review_command == "backup":
        from labelaudit.review.store import BACKUPS_KEPT

        ws.review_store(url, read_only=True).close()  # refuses a damaged database: no bad backup
        path = store_health.backup_sqlite(db, keep=BACKUPS_KEPT)
        print(f"wrote {path}")
        return 0
    restored = store_health.restore_backup(db, args.backup, manifest, database)
    print(f"restored {db} from {restored.backup.describe()}")
    for p in restored.moved_aside:
        print(f"kept the replaced file as {p}")
    if restored.lost:
        print(
            f"warning: the manifest had recorded {restored.lost:,} more decision(s) than this "
            "backup holds: they were made after it and are not in it"
        )
    return 0

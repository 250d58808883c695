"""The ``labelaudit`` command line.

Exit codes: 0 success, 1 invalid data (one clear line per problem, no traceback), 2 bad usage,
3 the review database cannot be used (busy, damaged: :class:`labelaudit.errors.StoreError`).
Each subcommand lives in ``labelaudit/commands/<name>.py`` with a ``register(subparsers)`` function
that adds its parser and sets ``func``; this module only discovers and dispatches.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from labelaudit.errors import DataError, StoreError, UsageError
from labelaudit.plugins import import_submodules

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def add_data_options(p: argparse.ArgumentParser, *, data_required: bool = True) -> None:
    """The options every command that reads a dataset shares (those of ``validate``)."""
    p.add_argument(
        "data",
        nargs=None if data_required else "?",
        help="dataset: a CSV/TSV/Parquet/JSONL file or a folder of split files (train.csv, test.csv)",
    )
    p.add_argument("--text-col", help="column holding the text (default: detected by name)")
    p.add_argument("--label-col", help="column holding the given label (default: detected by name)")
    p.add_argument(
        "--id-col",
        help="column holding a unique id (default: detected; else the 0-based row number)",
    )
    p.add_argument(
        "--split-col", help="column holding the split name, e.g. train/test (default: detected)"
    )
    from labelaudit.io.companions import all_companions

    for c in all_companions():  # one flag per registered companion (labelaudit/io/companions/)
        p.add_argument(c.flag, dest=c.name, help=c.help)
    p.add_argument("--encoding", help="text encoding of the data file (default UTF-8)")


def add_reviewed_dataset_options(p: argparse.ArgumentParser) -> None:
    """The options of commands that read a stored dataset and its review decisions (export, report):
    DATA and the data options of ``scan`` (optional: without DATA, the dataset ``scan`` or the app
    stored in the workspace), the workspace, the dataset version and the review database."""
    add_data_options(p, data_required=False)
    p.add_argument(
        "--workspace", help="workspace folder (default: LABELAUDIT_WORKSPACE or .labelaudit)"
    )
    p.add_argument(
        "--dataset",
        help="content hash (or a unique prefix) of the dataset; default: the only one "
        "in the workspace, or the only one with review decisions",
    )
    p.add_argument(
        "--db",
        help="review database URL (default: LABELAUDIT_DB_URL or review.sqlite in the workspace)",
    )


def reviewed_dataset_hash(args: argparse.Namespace, ws, decided: dict[str, int]) -> str:
    """The dataset ``export``/``report`` work on: DATA when given (loaded with the data options, as
    ``scan`` reads it, and stored in the workspace), else ``--dataset`` or the workspace's only one."""
    from labelaudit.commands.export import pick_dataset

    if getattr(args, "data", None):
        ds = load_from_args(args)
        h = ws.save_dataset(ds)
        if args.dataset and not h.startswith(args.dataset):
            raise UsageError(
                f"--dataset {args.dataset} does not match DATA {args.data} (its version is {h}); "
                "give one of them"
            )
        return str(h)
    return pick_dataset(ws.datasets(), args.dataset, decided, str(ws.root))


def check_output_path(path: str, flag: str, suffixes: tuple[str, ...]) -> Path:
    """An output file the command can write, checked before any work: a known extension, an existing
    folder that accepts a new file, and (when the file exists) a file that can be overwritten; else a
    UsageError naming ``flag`` and ``path``."""
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        raise UsageError(
            f"{flag} {path}: unsupported extension '{out.suffix or '(none)'}'; use {' or '.join(suffixes)}"
        )
    if not out.parent.exists():
        raise UsageError(f"{flag} {path}: the folder {out.parent} does not exist")
    check_writable_file(out, flag)
    return out


def check_writable_file(out: Path, flag: str) -> None:
    """UsageError unless ``out`` can be written (overwritten if it exists), tried for real: a
    permission bit, an immutable file or a read-only mount all count. Writes nothing."""
    if out.is_dir():
        raise UsageError(f"{flag} {out}: is a folder; expected a file name")
    folder = out.parent
    try:
        if out.exists():
            with open(out, "r+b"):  # opens for writing without truncating
                pass
        else:
            folder = out.parent
            while not folder.exists() and folder != folder.parent:
                folder = folder.parent  # a command that creates missing folders needs this one
            _probe_folder(folder)
    except OSError as e:
        what = "the file" if out.exists() else f"the folder {folder}"
        raise UsageError(
            f"{flag} {out}: {what} is not writable ({e.strerror or e}); expected a file this user "
            f"can write. Fix: make it writable or choose another {flag}"
        ) from e


def _probe_folder(folder: Path) -> None:
    fd, probe = tempfile.mkstemp(dir=folder, prefix=".labelaudit-write-check-")
    os.close(fd)
    os.unlink(probe)


def open_workspace(path: str | None, *, write: bool, why: str = ""):  # type: ignore[no-untyped-def]
    """The :class:`~labelaudit.workspace.Workspace` at ``--workspace`` (or LABELAUDIT_WORKSPACE,
    or .labelaudit), checked before any work: created if missing, and with ``write`` able to take
    new files (``why``: what the command stores there). A UsageError naming the flag otherwise."""
    from labelaudit.workspace import DEFAULT_ROOT, Workspace

    flag = "--workspace" if path else "the workspace (LABELAUDIT_WORKSPACE or .labelaudit)"
    root = Path(path or os.environ.get("LABELAUDIT_WORKSPACE") or DEFAULT_ROOT)
    try:
        ws = Workspace(root)
    except OSError as e:
        raise UsageError(
            f"{flag} {root}: cannot create the workspace folder ({e.strerror or e}). Fix: create "
            "it, make its parent writable, or choose another --workspace"
        ) from e
    if write:
        try:
            _probe_folder(ws.root)
            for sub in ("artifacts", "datasets"):
                if (ws.root / sub).is_dir():
                    _probe_folder(ws.root / sub)
        except OSError as e:
            raise UsageError(
                f"{flag} {ws.root}: the workspace folder is not writable ({e.strerror or e})"
                + (f"; {why}" if why else "")
                + ". Fix: make it writable or choose another --workspace"
            ) from e
    return ws


def data_kwargs(args: argparse.Namespace) -> dict:
    """The load_dataset options given on the command line (columns, companions, encoding)."""
    from labelaudit.io.companions import all_companions

    names = ["text_col", "label_col", "id_col", "split_col"]
    names += [c.name for c in all_companions()] + ["encoding"]
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def load_from_args(args: argparse.Namespace):
    from labelaudit.io import load_dataset

    return load_dataset(args.data, **data_kwargs(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labelaudit", description="Find and fix label errors in text-classification data."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in import_submodules("labelaudit.commands"):
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DataError as e:
        for p in e.problems:
            print(f"error: {p}", file=sys.stderr)
        return 1
    except UsageError as e:
        print(f"usage error: {e}", file=sys.stderr)
        return 2
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

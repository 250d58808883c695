"""Which server paths the app may open: the data roots.

The dashboard is the untrusted surface: whoever can reach it can type a path into the Data page.
Every server path the app opens goes through :func:`check_server_path` first, which resolves the
path (``~``, ``..`` and every symlink) and refuses it unless it lies inside one of the data roots.

Data roots, in order:

* the folders named in ``LABELAUDIT_DATA_ROOTS`` (``os.pathsep``-separated, i.e. ``:`` on Linux),
  or given to ``labelaudit app --data-root``;
* ``data/``, ``datasets/`` and ``sample_data/`` in the working directory the app was started from
  (``LABELAUDIT_LAUNCH_DIR``, set by ``labelaudit app``; else the process's working directory);
* the bundled sample, ``sample_data/`` beside the package.

The command line run by the machine's own user reads whatever path that user names (it can read
those files anyway); only the app is limited. ``docs/security.md`` describes the trust model.

A refusal never says whether the path exists and never shows anything read from it: the check runs
before the file is opened.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from labelaudit.errors import DataError, Problem

DATA_ROOTS_ENV = "LABELAUDIT_DATA_ROOTS"
LAUNCH_DIR_ENV = "LABELAUDIT_LAUNCH_DIR"
#: Folders of the launch directory that are data roots by default.
DEFAULT_ROOT_NAMES = ("data", "datasets", "sample_data")
#: The bundled sample (``sample_data/`` of the source tree).
BUNDLED_SAMPLE_ROOT = Path(__file__).resolve().parents[1] / "sample_data"
#: A dataset folder is checked entry by entry (symlinks included); beyond this many it is refused.
MAX_FOLDER_ENTRIES = 20_000


def launch_dir() -> Path:
    """The folder relative server paths are read from: where the app was started."""
    return Path(os.environ.get(LAUNCH_DIR_ENV) or os.getcwd())


def data_roots(extra: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """The data roots, resolved (symlinks followed), without duplicates.

    Example:
        >>> BUNDLED_SAMPLE_ROOT.resolve() in data_roots()
        True
    """
    configured = [p for p in os.environ.get(DATA_ROOTS_ENV, "").split(os.pathsep) if p.strip()]
    base = launch_dir()
    candidates = [
        *(Path(p) for p in extra),
        *(Path(p.strip()) for p in configured),
        *(base / name for name in DEFAULT_ROOT_NAMES),
        BUNDLED_SAMPLE_ROOT,
    ]
    out: list[Path] = []
    for c in candidates:
        c = c.expanduser()
        r = (c if c.is_absolute() else base / c).resolve()
        if r not in out:
            out.append(r)
    return out


def _inside(p: Path, roots: list[Path]) -> bool:
    return any(p == r or p.is_relative_to(r) for r in roots)


def _refusal(typed: str, roots: list[Path], why: str) -> DataError:
    listed = ", ".join(str(r) for r in roots)
    return DataError(
        Problem(
            f"the server path {typed!r} is refused: {why}",
            f"a file or folder inside one of the data roots ({listed})",
            fix=f"copy the data into one of them, upload it instead, or start the app with "
            f"--data-root FOLDER (or set {DATA_ROOTS_ENV}) to add a root",
        )
    )


def check_server_path(path: str | os.PathLike, roots: list[Path] | None = None) -> Path:
    """The resolved ``path`` if it lies inside a data root, else :class:`DataError` (nothing read).

    ``~`` is expanded, a relative path is taken from :func:`launch_dir`, and ``..`` and symlinks are
    resolved before the check, so neither a symlink nor ``..`` leads out of a root. For a folder,
    every entry below it is checked the same way (a symlink inside a root pointing outside is
    refused). The message names the path as typed and the roots, never anything read from the file.

    Example:
        >>> check_server_path("/etc/passwd", roots=[Path("/srv/data")])
        Traceback (most recent call last):
        ...
        labelaudit.errors.DataError: the server path '/etc/passwd' is refused: it is outside the ...
    """
    roots = data_roots() if roots is None else [Path(r).resolve() for r in roots]
    typed = str(path)
    if "\x00" in typed:
        raise _refusal(typed, roots, "it contains a NUL character")
    p = Path(typed).expanduser()
    if not p.is_absolute():
        p = launch_dir() / p
    try:
        resolved = p.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        raise _refusal(typed, roots, "it cannot be resolved (a symlink loop?)") from None
    if not _inside(resolved, roots):
        raise _refusal(typed, roots, "it is outside the data roots")
    if resolved.is_dir():
        _check_folder(typed, resolved, roots)
    return resolved


def _check_folder(typed: str, folder: Path, roots: list[Path]) -> None:
    seen = 0
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        for name in [*dirnames, *filenames]:
            seen += 1
            if seen > MAX_FOLDER_ENTRIES:
                raise _refusal(
                    typed, roots, f"the folder holds more than {MAX_FOLDER_ENTRIES:,} entries"
                )
            entry = Path(dirpath) / name
            if entry.is_symlink():
                try:
                    target = entry.resolve()
                except (OSError, RuntimeError):
                    raise _refusal(
                        typed, roots, f"its entry {entry.relative_to(folder)} cannot be resolved"
                    ) from None
                if not _inside(target, roots):
                    raise _refusal(
                        typed,
                        roots,
                        f"its entry {entry.relative_to(folder)} links outside the data roots",
                    )

"""Reading a NumPy ``.npy`` companion: plain arrays only, never pickled objects."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labelaudit.errors import Report


def load_npy(p: Path, rep: Report) -> np.ndarray | None:
    """The array in ``p``, or None with an error in ``rep`` (missing, pickled or unreadable
    file)."""
    if not p.exists():
        rep.error(f"no such file: {p}", "a .npy file", file=p.name)
        return None
    try:
        return np.load(p, allow_pickle=False)  # never unpickle user files
    except (ValueError, EOFError) as e:  # EOFError: an empty or truncated file
        rep.error(
            f"cannot read it as a plain NumPy array ({e})",
            "a numeric .npy file saved without pickling",
            file=p.name,
        )
    except OSError as e:
        rep.error(f"cannot read it ({e})", "a .npy file", file=p.name)
    return None

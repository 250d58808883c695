"""Progress reporting that works the same from the CLI, the app and a notebook.

Long computations take a ``progress`` callable and call it as ``progress(step, done, total)``;
``total`` may be 0 when unknown. The CLI passes a tqdm-backed reporter, the app one that drives
``st.progress``; the library itself never prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Progress(Protocol):
    def __call__(self, step: str, done: int, total: int) -> None: ...


def no_progress(step: str, done: int, total: int) -> None:
    """The default reporter: says nothing."""


class TqdmProgress:
    """One tqdm bar per step, on stderr. Steps named ``"group: item"`` (``"detector: knn"``) share the
    bar of their group, whose label follows the current item."""

    def __init__(self) -> None:
        self._bar = None
        self._group: str | None = None

    def __call__(self, step: str, done: int, total: int) -> None:
        from tqdm import tqdm

        group = step.split(":", 1)[0].rstrip("s")  # "detector: knn" and "detectors" share one bar
        if group != self._group:
            self.close()
            self._bar = tqdm(
                total=total or None, desc=step, unit="it", leave=True, dynamic_ncols=True
            )
            self._group = group
        assert self._bar is not None
        if total and self._bar.total != total:
            self._bar.total = total
        self._bar.set_description_str(step, refresh=False)
        self._bar.n = done
        self._bar.refresh()
        if total and done >= total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._group = None


def eta_text(started: float, done: int, total: int) -> str:
    """'123 of 1,000 · about 40 s left' — shared wording for progress labels."""
    if not total:
        return f"{done:,}"
    elapsed = time.monotonic() - started
    if done <= 0 or elapsed <= 0:
        return f"{done:,} of {total:,}"
    left = elapsed / done * (total - done)
    return f"{done:,} of {total:,} · about {left:,.0f} s left"


ProgressFn = Callable[[str, int, int], None]

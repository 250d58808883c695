"""Progress of long library calls drawn in the app: an ``st.status`` whose label names the running
step, and a bar with counts and time left (the library's ``progress(step, done, total)`` protocol)."""

from __future__ import annotations

import time

import streamlit as st

from labelaudit.progress import eta_text


class StatusProgress:
    """A ``ProgressFn`` that draws into ``status`` (an open ``st.status``); ``verb`` prefixes its label."""

    def __init__(self, status, verb: str):
        self.status = status
        self.verb = verb
        self.bar = st.progress(0.0, text="starting")
        self.started: dict[str, float] = {}

    def __call__(self, step: str, done: int, total: int) -> None:
        if step not in self.started:
            self.started[step] = time.monotonic()
            # expanded=True on every update: an update without it clears the field, and the browser
            # then collapses the box, hiding the bar (issue 16)
            self.status.update(label=f"{self.verb}: {step}…", expanded=True)
        frac = min(done / total, 1.0) if total else 0.0
        self.bar.progress(frac, text=f"{step}: {eta_text(self.started[step], done, total)}")

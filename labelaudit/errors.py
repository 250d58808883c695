"""Problems found in user input, and the exception that carries them.

Every loader and validator reports a :class:`Problem` that names where it is (file, row, column),
what was found, what was expected and how to fix it. Callers at the edge (CLI, app, notebook) print
``str(problem)``; nothing below them prints or raises tracebacks at users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One problem with user input.

    ``row`` is the 1-based data row (the header is not counted), as a spreadsheet user counts
    rows below the header; ``None`` when the problem is not about one row.
    """

    found: str
    expected: str = ""
    file: str | None = None
    row: int | None = None
    column: str | None = None
    fix: str | None = None
    severity: Severity = "error"

    def where(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file)
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column is not None:
            parts.append(f"column '{self.column}'")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        text = f"{where}: {self.found}" if where else self.found
        if self.expected:
            text += f"; expected {self.expected}"
        if self.fix:
            text += f". Fix: {self.fix}"
        return text


class DataError(Exception):
    """Input that cannot be used. Carries every problem found, not only the first."""

    def __init__(self, problems: list[Problem] | Problem):
        self.problems: list[Problem] = (
            [problems] if isinstance(problems, Problem) else list(problems)
        )
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(Exception):
    """A call that cannot work whatever the data (bad option, missing argument)."""


@dataclass
class Report:
    """Errors and warnings collected while loading; raise once at the end."""

    problems: list[Problem] = field(default_factory=list)

    def error(self, found: str, expected: str = "", **where: object) -> None:
        self.problems.append(Problem(found, expected, severity="error", **where))  # type: ignore[arg-type]

    def warn(self, found: str, expected: str = "", **where: object) -> None:
        self.problems.append(Problem(found, expected, severity="warning", **where))  # type: ignore[arg-type]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise DataError(self.errors)


class StoreError(Exception):
    """The review database cannot be used right now (busy, damaged); nothing was written.

    Carries the whole message for a person: which database, what was found, what was expected and
    what to do. The CLI prints it and exits 3; the app shows it with a retry; the library raises it.
    """


class StoreBusy(StoreError):
    """Another process holds the review database's write lock longer than the store waits."""


class StoreCorrupt(StoreError):
    """The review database is damaged, truncated, or holds fewer decisions than were saved."""

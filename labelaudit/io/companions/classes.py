"""The ``classes`` companion: the class list, optionally with a description per class."""

from __future__ import annotations

import json
from pathlib import Path

from labelaudit.errors import Report


def read_classes(
    classes: list[str] | str | Path, rep: Report
) -> tuple[list[str] | None, dict[str, str]]:
    """``(class names, {name: description})`` from a list, or a JSON file holding a list of names or
    a ``{name: description}`` object; ``(None, {})`` with an error in ``rep`` when unreadable.

    Example:
        >>> read_classes(["b", "a"], Report())
        (['b', 'a'], {})
    """
    if isinstance(classes, list):
        return [str(c) for c in classes], {}
    p = Path(classes)
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        rep.error(
            f"cannot read the class list ({e})",
            "a JSON list of class names or {name: description}",
            file=p.name,
        )
        return None, {}
    if isinstance(obj, dict):
        return [str(c) for c in obj], {str(k): str(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [str(c) for c in obj], {}
    rep.error(
        f"a JSON {type(obj).__name__}",
        "a JSON list of class names or {name: description}",
        file=p.name,
    )
    return None, {}

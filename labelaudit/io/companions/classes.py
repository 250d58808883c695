"""The ``classes`` companion: the class list, optionally with a description per class."""

from __future__ import annotations

import json
from pathlib import Path

from labelaudit.errors import Report
from labelaudit.io.checks import check_class_list
from labelaudit.io.companions import Companion, register_loader_companion


def read_classes(
    classes: list[str] | str | Path, rep: Report
) -> tuple[list[str] | None, dict[str, str]]:
    """``(class names, {name: description})`` from a list, or a JSON file holding a list of names or
    a ``{name: description}`` object; ``(None, {})`` with an error in ``rep`` when unreadable or
    when a name repeats (look-alike names are a warning).

    Example:
        >>> read_classes(["b", "a"], Report())
        (['b', 'a'], {})
    """
    if isinstance(classes, list):
        names = [str(c) for c in classes]
        return (names if check_class_list(names, "<classes>", rep) else None), {}
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
        names = [str(c) for c in obj]
        ok = check_class_list(names, p.name, rep)
        return (names if ok else None), {str(k): str(v) for k, v in obj.items()}
    if isinstance(obj, list):
        names = [str(c) for c in obj]
        return (names if check_class_list(names, p.name, rep) else None), {}
    rep.error(
        f"a JSON {type(obj).__name__}",
        "a JSON list of class names or {name: description}",
        file=p.name,
    )
    return None, {}


# Read by the loader itself, before the rows' labels are resolved against it.
register_loader_companion(
    Companion(
        "classes",
        help="JSON list of class names (column order of --probs), or {name: description}",
        doc="JSON list of class names, or `{name: description}` (descriptions are shown to "
        "reviewers)",
        read=None,
        upload_label="Class list (JSON list, or {class: description})",
        upload_types=("json",),
        order=60,
    )
)

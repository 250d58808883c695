"""Every session-state key is named in components/state.py: no page or component spells one.

Walks the app's source: a ``key=`` argument, a ``st.session_state`` / ``ss`` subscript, ``get``,
``pop``, ``setdefault`` or ``in`` test, or a module-level ``*_KEY = "..."`` constant with a string
literal (or f-string) outside components/state.py is a key created outside it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

APP_FILES = sorted(
    [ROOT / "app.py", *(ROOT / "components").glob("*.py"), *(ROOT / "views").glob("*.py")]
)
STATE = ROOT / "components" / "state.py"
SESSION_NAMES = {"ss", "session_state"}


def _is_literal(node: ast.AST | None) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def _is_session_state(node: ast.AST) -> bool:
    if isinstance(node, ast.Name):
        return node.id in SESSION_NAMES
    return isinstance(node, ast.Attribute) and node.attr == "session_state"


def _spells_a_key(node: ast.AST) -> bool:
    if isinstance(node, ast.keyword):
        return node.arg == "key" and _is_literal(node.value)
    if isinstance(node, ast.Subscript):
        return _is_session_state(node.value) and _is_literal(node.slice)
    if isinstance(node, ast.Call):
        f = node.func
        return (
            isinstance(f, ast.Attribute)
            and f.attr in ("get", "pop", "setdefault")
            and _is_session_state(f.value)
            and bool(node.args)
            and _is_literal(node.args[0])
        )
    if isinstance(node, ast.Compare):
        return (
            any(isinstance(op, ast.In | ast.NotIn) for op in node.ops)
            and _is_literal(node.left)
            and any(_is_session_state(c) for c in node.comparators)
        )
    return False


def _key_constant(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Assign)
        and _is_literal(node.value)
        and any(isinstance(t, ast.Name) and t.id.endswith("_KEY") for t in node.targets)
    )


def spelled_keys(source: str) -> list[tuple[int, str]]:
    """(line, code) of every key spelled as a literal in ``source``."""
    tree = ast.parse(source)
    found = [n for n in ast.walk(tree) if _spells_a_key(n)]
    found += [n for n in tree.body if _key_constant(n)]
    return [(getattr(n, "lineno", 0), ast.unparse(n)) for n in found]


@pytest.mark.parametrize("path", APP_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_session_state_key_is_spelled_outside_state_py(path: Path):
    if path == STATE:
        return
    found = spelled_keys(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)}: name these in components/state.py: {found}"


@pytest.mark.parametrize(
    "code",
    [
        'st.button("Go", key="go")',
        'st.text_input("x", key=f"note_{item}")',
        'st.session_state["x"] = 1',
        'ss.get("x")',
        'st.session_state.pop("x", None)',
        'ss.setdefault("x", [])',
        'if "x" in st.session_state: pass',
        'MAP_KEY = "explore_map"',
    ],
)
def test_the_check_finds_each_way_of_spelling_a_key(code):
    assert spelled_keys(code), code


def test_the_check_accepts_named_keys():
    code = (
        "st.button('Go', key=state.RUN_SCAN)\n"
        "st.text_input('x', key=state.key_for(state.REVIEW_LABEL, item))\n"
        "ss[state.SELECTION] = []\n"
        "st.session_state.get(state.QUEUE)\n"
        "if state.QUEUE in st.session_state: pass\n"
    )
    assert spelled_keys(code) == []


def test_state_names_each_key_once():
    import components.state as state

    values = [v for k, v in vars(state).items() if k.isupper() and isinstance(v, str)]
    assert len(values) == len(set(values))

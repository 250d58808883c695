"""Showing untrusted text (dataset rows, labels, ids, comments, file names) literally."""

from __future__ import annotations

#: Characters Streamlit's Markdown (alerts, captions, button and radio labels) would interpret.
_MD_SPECIAL = set("\\`*_{}[]()#+-.!|<>~$:")


def md_escape(text: object) -> str:
    """Backslash-escape Markdown so dataset text, labels and comments show literally in an alert, a
    caption or a widget label: no links, images, emphasis, colour or icon directives.
    ``"**b**"`` -> ``"\\*\\*b\\*\\*"``."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in str(text))

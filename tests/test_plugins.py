"""labelaudit.plugins.import_submodules: the one discovery every registry uses."""

from __future__ import annotations

import sys

from labelaudit.plugins import import_submodules


def test_imports_public_modules_once_sorted_and_skips_private_and_named(tmp_path, monkeypatch):
    pkg = tmp_path / "fakeplugins"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("LOADED = []\n")
    for name in ("zeta", "alpha", "_private", "base"):
        (pkg / f"{name}.py").write_text(
            f"import fakeplugins\nfakeplugins.LOADED.append({name!r})\n"
        )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        mods = import_submodules("fakeplugins", skip=("base",))
        assert [m.__name__ for m in mods] == ["fakeplugins.alpha", "fakeplugins.zeta"]
        assert import_submodules("fakeplugins", skip=("base",)) is mods
        assert sys.modules["fakeplugins"].LOADED == ["alpha", "zeta"]  # each ran once
    finally:
        for name in [n for n in sys.modules if n.startswith("fakeplugins")]:
            del sys.modules[name]


def test_every_registry_finds_its_modules():
    from labelaudit.agreement.methods import all_truth_methods
    from labelaudit.cli import build_parser
    from labelaudit.detectors.registry import all_detectors
    from labelaudit.io.companions import all_companions
    from labelaudit.io.formats import all_formats

    assert {"confident_learning", "knn", "aum", "self_influence"} <= set(all_detectors())
    assert {"mace", "ds", "mv", "crowdlab"} <= set(all_truth_methods())
    assert {"NDJSON", "Parquet", "CSV"} <= {f.name for f in all_formats()}
    assert {"probs", "embeddings", "annotations"} <= {c.name for c in all_companions()}
    commands = build_parser()._subparsers._group_actions[0].choices
    assert {"scan", "validate", "report", "app"} <= set(commands)

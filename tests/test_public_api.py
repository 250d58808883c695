"""The public API in labelaudit/__init__.py: cheap to import, every name documented, facades
behave."""

from __future__ import annotations

import doctest
import inspect
import pkgutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import labelaudit as la
from labelaudit.errors import DataError, UsageError

HEAVY = ("torch", "sentence_transformers", "umap", "streamlit", "numba", "hdbscan")
#: Classes whose docstrings (owned by other modules) carry no example yet: they still need a
#: docstring.
CLASSES_WITHOUT_EXAMPLE = {
    "Dataset",
    "DataError",
    "Problem",
    "UsageError",
    "Workspace",
    "ScanResult",
    "AgreementReport",
    "InfluenceModel",
}


def _heavy_after(code: str) -> list[str]:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys\n{code}\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [m for m in out.stdout.strip().split(",") if m]


@pytest.mark.parametrize(
    "code",
    [
        "import labelaudit",
        "import labelaudit; labelaudit.load_dataset; labelaudit.Workspace; labelaudit.DataError",
        "import labelaudit; labelaudit.scan; labelaudit.show; labelaudit.rater_agreement",
        "from labelaudit import scan, show, training_dynamics, influence_scores, export, report",
    ],
)
def test_import_does_not_load_heavy_libraries(code):
    assert _heavy_after(code) == []


def test_all_names_are_unique_and_public():
    assert len(la.__all__) == len(set(la.__all__))
    assert all(not n.startswith("_") for n in la.__all__)


@pytest.mark.parametrize("name", la.__all__)
def test_every_public_name_resolves_with_a_documented_example(name):
    obj = getattr(la, name)
    doc = inspect.getdoc(obj) or ""
    assert doc.strip(), f"labelaudit.{name} has no docstring"
    if inspect.isclass(obj) and name in CLASSES_WITHOUT_EXAMPLE:
        return
    assert ">>>" in doc or "Example" in doc, f"labelaudit.{name}'s docstring has no example"


@pytest.mark.parametrize("name", ["get_embeddings", "Detection", "analyse_annotations"])
def test_lower_level_names_outside_all_still_resolve(name):
    assert name not in la.__all__
    assert getattr(la, name).__doc__


def test_dir_lists_every_public_name():
    assert set(la.__all__) <= set(dir(la))


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        la.nope  # noqa: B018


def test_no_submodule_shadows_a_public_name():
    # A submodule named like a public function (the old labelaudit/scan.py and report.py) would
    # replace the function on the package as soon as anything imported it.
    submodules = {m.name for m in pkgutil.iter_modules(la.__path__)}
    assert submodules & (set(la.__all__) | set(la._LAZY)) == set()
    assert {"scanning", "reporting"} <= submodules


def test_scan_and_report_stay_functions_after_every_submodule_is_imported():
    code = (
        "import importlib, pkgutil, types, labelaudit as la\n"
        "for m in pkgutil.iter_modules(la.__path__):\n"
        "    if m.name not in ('__main__', 'engine_ray'):\n"
        "        importlib.import_module('labelaudit.' + m.name)\n"
        "from labelaudit.scanning import ScanResult, scan\n"
        "from labelaudit.reporting import RoiReport\n"
        "assert type(la) is types.ModuleType, type(la)\n"
        "assert la.scan is scan and isinstance(la.scan, types.FunctionType), la.scan\n"
        "assert isinstance(la.report, types.FunctionType) and la.report.__module__ == "
        "'labelaudit'\n"
        "assert la.ScanResult is ScanResult\n"
        "assert 'report' in la.report.__doc__ and RoiReport.__module__ == 'labelaudit.reporting'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_package_doctests_pass():
    result = doctest.testmod(la, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5
    assert result.failed == 0


# --------------------------------------------------------------------------- facades
def test_validate_returns_problems_instead_of_raising():
    ds, problems = la.validate(pd.DataFrame({"text": ["a", ""], "label": ["x", "y"]}))
    assert ds is None
    assert any("empty text" in p.found for p in problems)
    ds, problems = la.validate(pd.DataFrame({"text": ["a", "b"], "label": ["x", "y"]}))
    assert ds is not None and ds.n == 2 and problems == []


def test_list_detectors_names_every_registered_detector():
    table = la.list_detectors()
    assert {"self_confidence", "confident_learning", "knn"} <= set(table["name"])
    assert list(table.columns) == ["name", "requires", "default", "cost", "description"]
    assert table["description"].str.len().gt(0).all()


ANNOTATIONS = pd.DataFrame(
    {
        "item_id": ["0", "0", "0", "1", "1", "1", "2", "2", "2"],
        "annotator_id": ["a", "b", "c"] * 3,
        "label": ["x", "x", "y", "y", "y", "y", "x", "y", "x"],
    }
)


@pytest.mark.parametrize("method", ["mv", "ds", "mace"])
def test_rater_agreement_from_a_frame_and_from_a_dataset_agree(method):
    from_frame = la.rater_agreement(ANNOTATIONS, method=method, seed=0)
    assert from_frame.items["consensus_label"].tolist() == ["x", "y", "x"]
    ds = la.load_dataset(
        pd.DataFrame({"text": ["t0", "t1", "t2"], "label": ["x", "y", "y"]}),
        annotations=ANNOTATIONS,
    )
    from_ds = la.rater_agreement(ds, method=method, seed=0)
    assert from_ds.items["item_id"].tolist() == ["0", "1", "2"]
    assert from_ds.items["consensus_label"].tolist() == from_frame.items["consensus_label"].tolist()
    assert set(from_ds.annotators["annotator_id"]) == {"a", "b", "c"}


def test_rater_agreement_refuses_other_inputs():
    with pytest.raises(UsageError):
        la.rater_agreement([1, 2, 3])
    ds = la.load_dataset(pd.DataFrame({"text": ["t0", "t1"], "label": ["x", "y"]}))
    with pytest.raises(DataError, match="no annotations"):
        la.rater_agreement(ds)


def _clustered(
    n_per_class: int = 40, k: int = 3, d: int = 8, flip: int = 3, seed: int = 0, test_rows: int = 0
):
    """Separable clusters with ``flip`` labels moved to the next class: (dataset, embeddings,
    flipped ids)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 4
    y = np.repeat(np.arange(k), n_per_class)
    emb = centres[y] + rng.normal(size=(len(y), d))
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(
        np.float32
    )  # unit norm, like the scan's
    given = y.copy()
    flipped = rng.choice(len(y), size=flip, replace=False)
    given[flipped] = (given[flipped] + 1) % k
    split = np.array(["train"] * len(y), dtype=object)
    if test_rows:
        split[rng.choice(len(y), size=test_rows, replace=False)] = "test"
    df = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(len(y))],
            "text": [f"text {i}" for i in range(len(y))],
            "label": [f"c{v}" for v in given],
            "split": split,
        }
    )
    return la.load_dataset(df), emb, [f"r{i}" for i in flipped]


def test_training_dynamics_table_shape_ranges_and_flipped_rows(tmp_path):
    ds, emb, flipped = _clustered()
    dyn = la.training_dynamics(ds, embeddings=emb, workspace=tmp_path / "ws", epochs=8, seed=0)
    assert len(dyn) == ds.n and dyn["id"].tolist() == ds.ids.tolist()
    for col in ("confidence", "variability", "correctness"):
        assert dyn[col].between(0, 1).all(), col
    assert set(dyn["region"]) <= {"easy-to-learn", "ambiguous", "hard-to-learn"}
    assert set(dyn["predicted_label"]) <= set(ds.classes)
    assert {"aum", "aum_threshold", "aum_flag"} <= set(dyn.columns)
    # Flipped labels are the hardest to learn: their mean given-label confidence is far below the
    # rest.
    is_flipped = dyn["id"].isin(flipped)
    assert (
        dyn.loc[is_flipped, "confidence"].mean() < dyn.loc[~is_flipped, "confidence"].mean() - 0.3
    )
    again = la.training_dynamics(ds, embeddings=emb, workspace=tmp_path / "ws", epochs=8, seed=0)
    pd.testing.assert_frame_equal(dyn, again)


def test_training_dynamics_uses_imported_dynamics_without_embeddings():
    ds, emb, _ = _clustered(n_per_class=5, flip=0)
    logits = np.zeros((4, ds.n, ds.k), dtype=np.float32)
    logits[:, np.arange(ds.n), ds.labels] = 5.0  # always confident in the given label
    ds.dynamics = logits
    dyn = la.training_dynamics(ds)
    assert "aum" not in dyn.columns
    assert (dyn["region"] == "easy-to-learn").all()
    assert (dyn["correctness"] == 1).all() and (dyn["forgetting_events"] == 0).all()


@pytest.mark.parametrize("method", ["influence", "tracin"])
def test_influence_scores_rank_training_rows_and_skip_the_test_split(tmp_path, method):
    ds, emb, _ = _clustered(test_rows=12)
    query = ds.ids[np.flatnonzero(ds.test_mask)[0]]
    inf = la.influence_scores(ds, query, embeddings=emb, workspace=tmp_path / "ws", method=method)
    train = ~ds.test_mask
    assert len(inf) == int(train.sum()) and not set(inf["train_id"]) & set(ds.ids[ds.test_mask])
    assert inf["score"].is_monotonic_decreasing and inf["rank"].tolist() == list(
        range(1, len(inf) + 1)
    )
    # Rows of the query's class help it more, on average, than rows of other classes.
    same = inf["label"] == ds.label_names[ds.id_to_row[query]]
    assert inf.loc[same, "score"].mean() > inf.loc[~same, "score"].mean()


def test_influence_scores_match_the_model():
    from labelaudit.influence import InfluenceModel

    ds, emb, _ = _clustered(test_rows=12)
    query = ds.ids[np.flatnonzero(ds.test_mask)[0]]
    inf = la.influence_scores(ds, query, embeddings=emb)
    train = ~ds.test_mask
    row = ds.id_to_row[query]
    model = InfluenceModel.fit(emb[train], ds.labels[train], n_classes=ds.k)
    expected = pd.Series(model.influence_on(emb[row], int(ds.labels[row])), index=ds.ids[train])
    got = inf.set_index("train_id")["score"].loc[expected.index]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-12)


def test_influence_of_a_training_row_on_itself_is_helpful():
    ds, emb, _ = _clustered()
    inf = la.influence_scores(ds, "r5", embeddings=emb)
    assert inf.set_index("train_id").loc["r5", "score"] > 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"query_id": "missing"}, "no row with id"),
        ({"query_id": "r0", "method": "shapley"}, "unknown influence method"),
    ],
)
def test_influence_scores_bad_queries(kwargs, message):
    ds, emb, _ = _clustered(n_per_class=5, flip=0)
    with pytest.raises(UsageError, match=message):
        la.influence_scores(ds, embeddings=emb, **kwargs)


def test_embeddings_of_the_wrong_length_are_refused():
    ds, emb, _ = _clustered(n_per_class=5, flip=0)
    with pytest.raises(UsageError, match="shape"):
        la.training_dynamics(ds, embeddings=emb[:-1])


def _reviewed(tmp_path, first_text: str, last_action: str):
    """Three rows (a, b, c) and a workspace where "ana" changed b to x and gave c
    ``last_action``."""
    ds = la.load_dataset(
        pd.DataFrame(
            {"id": ["a", "b", "c"], "text": [first_text, "two", "three"], "label": ["x", "y", "y"]}
        )
    )
    ws = la.Workspace(tmp_path / "ws")
    store = la.ReviewStore(ws.database_url)
    try:
        for item, action, new in (("b", "change", "x"), ("c", last_action, None)):
            store.record(
                dataset_version=ds.content_hash,
                item_id=item,
                reviewer="ana",
                action=action,
                old_label="y",
                new_label=new,
            )
    finally:
        store.close()
    return ds, ws


@pytest.mark.parametrize("removed, rows", [("drop", 2), ("flag", 3)])
def test_export_writes_the_reviewed_dataset(tmp_path, removed, rows):
    ds, ws = _reviewed(tmp_path, "=1+1", "remove")
    written = la.export(ds, out=tmp_path / "clean.csv", workspace=ws, removed=removed, log=True)
    assert [p.name for p in written] == ["clean.csv", "clean.decisions.csv"]
    out = pd.read_csv(written[0], dtype=str, keep_default_na=False)
    assert len(out) == rows
    assert out.set_index("id").loc["b", "final_label"] == "x"
    assert out.set_index("id").loc["a", "text"].startswith("'")  # spreadsheet formula neutralised


def test_report_summarises_the_review_and_writes_html(tmp_path):
    ds, ws = _reviewed(tmp_path, "one <b>", "keep")
    rep = la.report(ds, workspace=ws, out=tmp_path / "roi.html")
    assert rep.summary.n_reviewed == 2
    assert rep.before_after is None  # no scan, so no embeddings to retrain on
    page = (tmp_path / "roi.html").read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html")

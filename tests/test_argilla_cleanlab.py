"""Argilla files checked against the argilla SDK's own classes (no server), and cleanlab interop."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pandas as pd
import pytest

from labelaudit.errors import DataError
from labelaudit.integrations.argilla import export_argilla, queue_records, read_argilla_responses
from labelaudit.integrations.cleanlab import cleanlab_inputs, scores_from_cleanlab
from labelaudit.io import load_dataset


@pytest.fixture(scope="module")
def rg():
    """The argilla SDK with a client object that never connects: its classes need one, not a server."""
    import argilla
    import httpx
    from argilla._api._client import ArgillaAPI

    client = argilla.Argilla.__new__(argilla.Argilla)
    client.api = ArgillaAPI(httpx.Client(base_url="http://argilla.invalid"))
    old = argilla.Argilla._default_client
    argilla.Argilla._default_client = client
    yield argilla
    argilla.Argilla._default_client = old


@pytest.fixture
def ds():
    df = pd.DataFrame(
        {"id": ["a1", "a2", "a3"], "text": ["one", "two", "three"], "label": ["x", "y", "x"]}
    )
    return load_dataset(df, probs=np.array([[0.2, 0.8], [0.9, 0.1], [0.6, 0.4]]))


def test_queue_export_is_read_by_the_argilla_sdk(rg, ds, tmp_path):
    out = export_argilla(ds, ["a1", "a2"], out=tmp_path / "argilla")
    settings = rg.Settings.from_json(str(out / ".argilla" / "settings.json"))
    assert [f.name for f in settings.fields] == ["text"]
    (q,) = settings.questions
    assert isinstance(q, rg.LabelQuestion) and q.labels == ["x", "y"]
    assert {m.name for m in settings.metadata} == {"given_label", "label_issue_score", "evidence"}
    records = json.loads((out / "records.json").read_text())
    parsed = [rg.Record.from_dict(r) for r in records]
    assert [r.id for r in parsed] == ["a1", "a2"]
    first = parsed[0]
    assert first.fields["text"] == "one" and first.metadata["given_label"] == "x"
    sug = first.suggestions["label"]
    assert (
        sug.value == "y" and sug.score == pytest.approx(0.8) and sug.agent.startswith("labelaudit")
    )
    # the same record built with the SDK serialises exactly as ours
    ours = dict(records[0])
    built = rg.Record(
        id="a1",
        fields={"text": "one"},
        metadata=ours["metadata"],
        suggestions=[
            rg.Suggestion(
                "label", "y", score=ours["suggestions"]["label"]["score"], agent=sug.agent
            )
        ],
    ).to_dict()
    assert {k: built[k] for k in ("id", "fields", "metadata", "suggestions")} == {
        k: ours[k] for k in ("id", "fields", "metadata", "suggestions")
    }


def test_exported_responses_read_back_as_annotations(rg, ds, tmp_path):
    ana, bo = uuid.uuid4(), uuid.uuid4()
    records = [
        rg.Record(
            id="a1",
            fields={"text": "one"},
            responses=[
                rg.Response("label", "y", user_id=ana),
                rg.Response("label", "x", user_id=bo),
            ],
        ),
        rg.Record(
            id="a2", fields={"text": "two"}, responses=[rg.Response("label", "y", user_id=ana)]
        ),
        rg.Record(id="a3", fields={"text": "three"}),
    ]
    f = tmp_path / "records.json"
    f.write_text(json.dumps([r.to_dict() for r in records], default=str))
    ann = read_argilla_responses(f, users={str(ana): "ana"})
    assert ann.values.tolist() == [["a1", "ana", "y"], ["a1", str(bo), "x"], ["a2", "ana", "y"]]
    back = load_dataset(ds.frame[["id", "text", "label"]], annotations=ann)
    assert back.annotations["annotator_id"].nunique() == 2


@pytest.mark.parametrize(
    "content,found",
    [
        ("{", "cannot read it as JSON"),
        ('{"a": 1}', "a JSON dict"),
        ('[{"id": "a1", "responses": {"label": [{"value": ["x", "y"]}]}}]', "response value is"),
    ],
    ids=["broken", "object", "multi-label"],
)
def test_bad_argilla_files_are_clear(tmp_path, content, found):
    f = tmp_path / "records.json"
    f.write_text(content)
    with pytest.raises(DataError) as e:
        read_argilla_responses(f)
    assert found in e.value.problems[0].found and e.value.problems[0].file == "records.json"


def test_queue_records_without_a_suggestion(ds):
    plain = load_dataset(ds.frame[["id", "text", "label"]])
    (r,) = queue_records(plain, ["a3"])
    assert r["suggestions"] == {} and r["fields"] == {"text": "three"}


# --------------------------------------------------------------------------- cleanlab
def _dataset(n=60, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    probs = rng.dirichlet(np.ones(3) * 0.5, n)
    probs[np.arange(n), labels] += 1.5
    probs /= probs.sum(1, keepdims=True)
    flip = rng.choice(n, 6, replace=False)
    labels[flip] = (labels[flip] + 1) % 3
    df = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "text": [f"t{i}" for i in range(n)],
            "label": np.array(["a", "b", "c"])[labels],
        }
    )
    return load_dataset(df, probs=probs), rng.normal(size=(n, 4)).astype(np.float32)


def test_datalab_issues_become_row_scores(tmp_path):
    from cleanlab import Datalab

    ds, feats = _dataset()
    lab = Datalab(data={"label": ds.labels}, label_name="label", verbosity=0)
    lab.find_issues(pred_probs=ds.pred_probs, issue_types={"label": {}})
    issues = lab.get_issues()
    scores = scores_from_cleanlab(ds, issues)
    np.testing.assert_allclose(scores["cleanlab_label"], 1 - issues["label_score"])
    assert scores["cleanlab_is_label_issue"].sum() == issues["is_label_issue"].sum()
    back = load_dataset(ds.frame[["id", "text", "label"]], scores=scores)
    assert "cleanlab_label" in back.row_scores.columns


def test_find_label_issues_mask_and_ranking():
    from cleanlab.filter import find_label_issues

    ds, _ = _dataset()
    mask = find_label_issues(ds.labels, ds.pred_probs)
    assert scores_from_cleanlab(ds, mask)["cleanlab_label_issue"].sum() == mask.sum()
    ranked = find_label_issues(ds.labels, ds.pred_probs, return_indices_ranked_by="self_confidence")
    s = scores_from_cleanlab(ds, ranked)["cleanlab_label_issue_rank"].to_numpy()
    assert s[ranked[0]] == 1.0 and (s[ranked] > 0).all() and np.all(np.diff(s[ranked]) < 0)
    with pytest.raises(DataError, match="repeated or out-of-range"):
        scores_from_cleanlab(ds, np.array([0, 0]))
    with pytest.raises(DataError, match="rows of cleanlab issues"):
        scores_from_cleanlab(ds, pd.DataFrame({"label_score": [0.5]}))


def test_scan_results_in_cleanlab_shapes_feed_cleanlab():
    from types import SimpleNamespace

    from cleanlab.filter import find_label_issues

    ds, feats = _dataset()
    scan = SimpleNamespace(detection=SimpleNamespace(pred_probs=ds.pred_probs), embeddings=feats)
    arrays = cleanlab_inputs(ds, scan)
    assert arrays["labels"].shape == (ds.n,) and arrays["pred_probs"].shape == (ds.n, 3)
    assert arrays["features"].shape == (ds.n, 4) and arrays["features"].dtype == np.float32
    assert find_label_issues(arrays["labels"], arrays["pred_probs"]).shape == (ds.n,)

"""``labelaudit queue``: the queue in force for scripts and other tools, its settings and bad usage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelaudit.cli import main
from labelaudit.io import load_dataset
from labelaudit.review import adaptive, learn
from labelaudit.review.store import ReviewStore
from tests.learn_data import world


@pytest.fixture
def env(tmp_path, workspace):
    """A dataset file (one id looks like a formula), its stored scan, and an empty review store."""
    from labelaudit.detect import Detection
    from labelaudit.scanning import ScanResult, _store, scan_params

    base, table, truth = world(400, seed=6)
    frame = base.frame.copy()
    frame.loc[5, "id"] = "=cmd()"
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    emb_path = tmp_path / "emb.npy"
    np.save(emb_path, np.random.default_rng(0).normal(size=(len(frame), 4)).astype(np.float32))
    args = [str(path), "--embeddings", str(emb_path)]
    ds = load_dataset(path, embeddings=str(emb_path))
    table = table.assign(id=ds.ids, x=0.0, y=0.0)
    det_cols = [
        c for c in table.columns if c not in ("id", "given_label", "split", "x", "y", "cluster")
    ]
    _store(
        ds,
        workspace,
        ScanResult(
            table=table,
            embeddings=ds.embeddings,
            clusters=pd.DataFrame({"cluster": [0]}),
            detection=Detection(table=table[det_cols], details={}),
            params=scan_params(ds),
        ),
    )
    db = f"sqlite:///{tmp_path / 'review.sqlite'}"
    common = [*args, "--workspace", str(workspace.root), "--db", db]
    return ds, table, truth, common, db


def run(capsys, *argv):
    code = main(["queue", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_queue_without_decisions_is_the_static_ranking(env, tmp_path, capsys):
    ds, table, _, common, _ = env
    out = tmp_path / "q.csv"
    code, stdout, err = run(capsys, *common, "--out", str(out))
    assert code == 0, err
    q = pd.read_csv(out, keep_default_na=False)
    assert q.columns.tolist() == [
        "id",
        "queue_rank",
        "ranking",
        "label_issue_score",
        "estimated_precision",
    ]
    assert q["queue_rank"].tolist() == list(range(1, ds.n + 1))
    assert set(q["ranking"]) == {"static"} and set(q["estimated_precision"]) == {""}
    expected = [str(i) for i in ds.ids[learn.static_order(table)]]
    assert [i.removeprefix("'") for i in q["id"]] == expected
    assert "'=cmd()" in set(q["id"])  # a formula-looking id is neutralised in CSV
    assert "400 items left" in stdout and "static" in stdout


def test_queue_after_decisions_is_learnt_and_leaves_decided_items_out(env, tmp_path, capsys):
    ds, table, truth, common, db = env
    store = ReviewStore(db)
    order = learn.static_order(table)
    changed, kept = [r for r in order if truth[r]][:40], [r for r in order if not truth[r]][:90]
    # mixed outcomes all along the review order, so every block of the forward check holds both
    rows = [int(r) for r in np.random.default_rng(0).permutation(changed + kept)]
    for r in rows:
        given = ds.label_names[r]
        other = next(c for c in ds.classes if c != given)
        store.record(
            dataset_version=ds.content_hash,
            item_id=ds.ids[r],
            reviewer="ana",
            action="change" if truth[r] else "keep",
            old_label=given,
            new_label=other if truth[r] else given,
            shown={"queue": "ranking"},
        )
    store.close()
    out = tmp_path / "q.parquet"
    code, stdout, err = run(capsys, *common, "--rerank", "--by", "scripted", "--out", str(out))
    assert code == 0, err
    q = pd.read_parquet(out)
    assert len(q) == ds.n - len(rows) and not set(q["id"]) & set(ds.ids[rows])
    assert set(q["ranking"]) == {"learnt"}, stdout
    assert q["estimated_precision"].notna().any()
    assert (q["estimated_precision"].dropna().between(0, 1)).all()
    assert "cross-validated AUROC" in stdout
    store = ReviewStore(db)
    rec = adaptive.latest_ranking(store, ds.content_hash)
    store.close()
    assert rec.trigger == "on demand" and rec.requested_by == "scripted"


def test_settings_from_the_command_line_are_stored(env, tmp_path, capsys):
    ds, _, _, common, db = env
    out = tmp_path / "q.csv"
    code, stdout, err = run(
        capsys, *common, "--audit-share", "0.1", "--rerank-every", "7", "--out", str(out)
    )
    assert code == 0, err
    store = ReviewStore(db)
    s = adaptive.load_settings(store, ds.content_hash)
    store.close()
    assert (s.audit_share, s.rerank_every) == (0.1, 7)
    assert "audit" not in pd.read_csv(out).columns  # audit items are not marked for the reviewer
    assert "Not enough audit decisions" in stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--out", "q.txt"], "unsupported extension"),
        (["--out", "missing/q.csv"], "does not exist"),
        (["--out", "q.csv", "--audit-share", "0.9"], "between 0 and 0.5"),
        (["--out", "q.csv", "--rerank-every", "0"], "whole number of decisions"),
    ],
)
def test_bad_usage_exits_2(env, tmp_path, capsys, monkeypatch, extra, message):
    _, _, _, common, _ = env
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *common, *extra)
    assert code == 2 and message in err


def test_active_learning_without_annotations_exits_1(env, tmp_path, capsys):
    _, _, _, common, _ = env
    code, _, err = run(capsys, *common, "--active-learning", "--out", str(tmp_path / "a.csv"))
    assert code == 1 and "the dataset has no annotations" in err


def test_active_learning_queue(tmp_path, workspace, capsys):
    from tests.test_review_data import toy_dataset

    ds = toy_dataset()
    folder = tmp_path / "toy"
    folder.mkdir()
    ds.frame.to_csv(folder / "data.csv", index=False)
    ds.annotations.to_csv(folder / "annotations.csv", index=False)
    np.save(folder / "pred_probs.npy", ds.pred_probs)
    np.save(folder / "emb.npy", ds.embeddings)
    args = [
        str(folder / "data.csv"),
        "--annotations",
        str(folder / "annotations.csv"),
        "--probs",
        str(folder / "pred_probs.npy"),
        "--classes",
        str(_classes(folder, ds.classes)),
        "--embeddings",
        str(folder / "emb.npy"),
    ]
    loaded = load_dataset(
        folder / "data.csv",
        annotations=str(folder / "annotations.csv"),
        probs=str(folder / "pred_probs.npy"),
        classes=str(folder / "classes.json"),
        embeddings=str(folder / "emb.npy"),
    )
    from tests.test_report import store_fake_scan
    from tests.test_review_data import toy_scan_table

    store_fake_scan(loaded, workspace, toy_scan_table(loaded), {})
    out = tmp_path / "al.csv"
    code = main(
        [
            "queue",
            *args,
            "--workspace",
            str(workspace.root),
            "--db",
            f"sqlite:///{tmp_path / 'r.sqlite'}",
            "--active-learning",
            "--out",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    al = pd.read_csv(out)
    assert al.columns.tolist() == [
        "id",
        "queue_rank",
        "active_learning_score",
        "n_annotations",
        "n_labels",
    ]
    assert set(al["id"]) == {"r0", "r1"} and al["active_learning_score"].is_monotonic_increasing


def _classes(folder, classes):
    import json

    p = folder / "classes.json"
    p.write_text(json.dumps(list(classes)))
    return p

"""Review queue, item evidence, bulk decisions, export and the ``labelaudit export`` command."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from labelaudit.cli import main
from labelaudit.errors import UsageError
from labelaudit.review.export import (
    cleaned_dataset,
    export_review,
    log_path_for,
    neutralise_formulas,
    to_csv_bytes,
)
from labelaudit.review.queue import apply_bulk, build_queue, item_evidence, review_progress
from labelaudit.review.store import ReviewStore
from labelaudit.workspace import Workspace
from tests.test_review_data import toy_dataset, toy_scan_table


@pytest.fixture
def ds():
    return toy_dataset()


@pytest.fixture
def store(tmp_path):
    s = ReviewStore(f"sqlite:///{tmp_path / 'review.sqlite'}")
    yield s
    s.close()


def decide(store, ds, item, action, new=None, reviewer="ana"):
    return store.record(
        dataset_version=ds.content_hash,
        item_id=item,
        reviewer=reviewer,
        action=action,
        old_label=ds.frame.set_index("id").loc[item, "label"],
        new_label=new,
        seen_decision_id=store.latest_decision_id(ds.content_hash, item),
    )


# --------------------------------------------------------------------------- queue
def test_queue_follows_ranking_flagged_first(ds):
    q = build_queue(ds, scan_table=toy_scan_table(ds))
    assert q[:3] == ["r7", "r0", "r35"]  # flagged, by score
    assert q[3:6] == ["r1", "r2", "r3"]  # then by score (decreasing with row)
    assert sorted(q) == sorted(ds.ids)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"flagged_only": True}, ["r7", "r0", "r35"]),
        ({"decided_ids": {"r7"}, "flagged_only": True}, ["r0", "r35"]),
        (
            {"decided_ids": {"r7"}, "flagged_only": True, "include_decided": True},
            ["r7", "r0", "r35"],
        ),
        ({"selection": ["r9", "bogus", "r2", "r9"]}, ["r9", "r2"]),
        ({"selection": ["r9", "r2"], "decided_ids": {"r2"}}, ["r9"]),
        ({"selection": []}, []),
    ],
)
def test_queue_options(ds, kwargs, expected):
    assert build_queue(ds, scan_table=toy_scan_table(ds), **kwargs) == expected


@pytest.mark.parametrize("flagged_only", [False, True])
def test_queue_order_is_the_stable_sort_by_flag_then_score_with_ties_in_row_order(ds, flagged_only):
    """The ranking's order, pinned against the sort it replaced: flagged first, then by descending
    score, ties (and missing scores, as 0) in dataset order, missing flags as unflagged."""
    rng = np.random.default_rng(3)
    n = ds.n
    table = pd.DataFrame(
        {
            "label_issue_score": rng.choice([0.9, 0.5, 0.5, 0.1, np.nan, 0.0], n),
            "is_label_issue": pd.array(rng.choice([True, False, None], n), dtype="boolean"),
        }
    )
    want = pd.DataFrame(
        {
            "id": ds.frame["id"],
            "score": table["label_issue_score"].fillna(0),
            "flag": table["is_label_issue"].fillna(False).astype(bool),
            "row": np.arange(n),
        }
    )
    if flagged_only:
        want = want[want["flag"]]
    want = want.sort_values(["flag", "score", "row"], ascending=[False, False, True], kind="stable")
    got = build_queue(ds, scan_table=table, flagged_only=flagged_only)
    assert got == want["id"].tolist()
    assert len(set(got)) == len(got)


def test_queue_without_scan_is_dataset_order(ds):
    assert build_queue(ds, scan_table=None)[:3] == ["r0", "r1", "r2"]


def test_progress_counts_queue_and_acceptance(ds, store):
    q = ["r0", "r1", "r2", "r3"]
    decide(store, ds, "r0", "accept", new="card_delivery_estimate")
    decide(store, ds, "r1", "keep")
    decide(
        store, ds, "r20", "accept", new="card_arrival"
    )  # outside the queue: counts for the rate only
    p = review_progress(q, store.current(ds.content_hash))
    assert (p.done, p.remaining, p.total) == (2, 2, 4)
    assert p.acceptance_rate == pytest.approx(2 / 3)
    assert review_progress(q, store.current("other")).acceptance_rate is None


# --------------------------------------------------------------------------- evidence
def test_item_evidence_collects_everything(ds):
    ev = item_evidence(ds, "r0", scan_table=toy_scan_table(ds), embeddings=ds.embeddings)
    assert ev.given_label == "card_arrival" and ev.is_label_issue
    assert ev.suggested_label == "card_delivery_estimate"
    assert ev.suggestions[0] == ("card_delivery_estimate", pytest.approx(0.9))
    assert ev.neighbours.loc[0, "id"] == "r1" and "r0" not in ev.neighbours["id"].tolist()
    assert ev.neighbours["similarity"].is_monotonic_decreasing
    assert ev.votes.set_index("label")["votes"].to_dict() == {
        "card_delivery_estimate": 2,
        "card_arrival": 1,
    }
    assert ev.detectors["detector"].tolist() == ["confident_learning", "knn"]
    cl = ev.detectors.iloc[0]
    assert (
        cl.flagged and cl.suggested == "card_delivery_estimate" and cl.evidence == "model disagrees"
    )
    assert ev.descriptions == {
        "card_delivery_estimate": "when will my card arrive (before it ships)"
    }
    shown = ev.shown("ranking")
    assert shown["queue"] == "ranking" and shown["detector_scores"][
        "confident_learning"
    ] == pytest.approx(0.95)


def test_item_evidence_without_scan_or_extras(ds):
    bare = toy_dataset()
    bare.pred_probs = None
    bare.annotations = None
    ev = item_evidence(bare, "r2")
    assert ev.suggestions == [] and ev.suggested_label is None
    assert ev.neighbours.empty and ev.votes.empty and ev.detectors.empty
    with pytest.raises(UsageError):
        item_evidence(ds, "nope")


# --------------------------------------------------------------------------- bulk
def test_bulk_never_touches_test_split(ds, store):
    selection = ["r1", "r4", "r33", "r34", "r39"]  # r32.. are test rows
    r = apply_bulk(
        store,
        ds,
        item_ids=selection,
        action="change",
        new_label="refund_not_showing_up",
        reviewer="ana",
        seen=store.latest_decision_ids(ds.content_hash),
    )
    assert sorted(d.item_id for d in r.saved) == ["r1", "r4"]
    assert r.skipped_test == ["r33", "r34", "r39"]
    assert "skipped 3 in the protected test split" in r.summary()
    cur = store.current(ds.content_hash)
    assert set(cur["item_id"]) == {"r1", "r4"}
    assert not set(cur["item_id"]) & set(ds.frame.loc[ds.test_mask, "id"])


def test_bulk_reports_conflicts_and_unchanged(ds, store):
    seen = store.latest_decision_ids(ds.content_hash)  # confirmation shown: nothing decided yet
    decide(store, ds, "r1", "keep", reviewer="bo")  # bo decides r1 meanwhile
    r = apply_bulk(
        store,
        ds,
        item_ids=["r1", "r3", "r5"],
        action="change",
        new_label="refund_not_showing_up",
        reviewer="ana",
        seen=seen,
    )
    assert r.conflicts == ["r1"]
    assert r.unchanged == ["r5"]  # r5 is already refund_not_showing_up
    assert [d.item_id for d in r.saved] == ["r3"]
    with pytest.raises(UsageError):
        apply_bulk(
            store, ds, item_ids=["r1"], action="accept", reviewer="ana", seen={}
        )  # no suggestions


def test_bulk_accept_applies_each_rows_own_suggestion(ds, store):
    given = dict(zip(ds.frame["id"], ds.frame["label"], strict=True))
    other = next(c for c in ds.classes if c != given["r1"])
    suggestions = {
        "r1": other,
        "r3": given["r3"],
        "r33": other,
    }  # r3: suggestion equals its label; r33: test split
    r = apply_bulk(
        store,
        ds,
        item_ids=["r1", "r3", "r2", "r33"],
        action="accept",
        reviewer="ana",
        seen=store.latest_decision_ids(ds.content_hash),
        suggestions=suggestions,
    )
    assert [d.item_id for d in r.saved] == ["r1"]
    assert r.saved[0].new_label == other and r.saved[0].action == "accept"
    assert sorted(r.unchanged) == ["r2", "r3"]  # r2 has no suggestion
    assert r.skipped_test == ["r33"]
    cur = store.current(ds.content_hash).set_index("item_id")
    assert cur.loc["r1", "final_label"] == other


# --------------------------------------------------------------------------- export
@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd", "'+cmd"),
        ("-2", "-2"),  # a plain number stays readable (issue 19)
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_formula_neutralisation(cell, expected):
    assert neutralise_formulas(pd.DataFrame({"c": [cell]}))["c"].iat[0] == expected


def test_formula_neutralisation_leaves_numbers_and_header():
    df = pd.DataFrame({"=h": ["=x"], "n": [-5]})
    out = neutralise_formulas(df)
    assert out.columns.tolist() == ["'=h", "n"] and out["n"].iat[0] == -5
    text = to_csv_bytes(df).decode()
    assert "'=x" in text and "\n-5" not in text.replace(",-5", "")


@pytest.mark.parametrize("removed", ["drop", "flag"])
def test_cleaned_dataset(ds, store, removed):
    decide(store, ds, "r0", "accept", new="card_delivery_estimate")
    decide(store, ds, "r1", "remove")
    decide(store, ds, "r2", "ambiguous")
    out = cleaned_dataset(ds, store.current(ds.content_hash), removed=removed).set_index("id")
    assert len(out) == (ds.n if removed == "flag" else ds.n - 1)
    assert out.loc["r0", ["final_label", "original_label", "action", "reviewer"]].tolist() == [
        "card_delivery_estimate",
        "card_arrival",
        "accept",
        "ana",
    ]
    assert out.loc["r0", "decided_at"].endswith("+00:00")
    assert (
        out.loc["r2", "final_label"] == "refund_not_showing_up"
        and out.loc["r2", "action"] == "ambiguous"
    )
    assert (
        out.loc["r3", "action"] == ""
        and out.loc["r3", "final_label"] == out.loc["r3", "original_label"]
    )
    assert out.loc["r5", "channel"] == "@SUM(A1:A9)"
    if removed == "flag":
        assert bool(out.loc["r1", "removed"]) and out.loc["r1", "final_label"] is None
        assert out["removed"].sum() == 1
    else:
        assert "r1" not in out.index


def test_export_files_csv_and_parquet(ds, store, tmp_path):
    decide(store, ds, "r0", "accept", new="card_delivery_estimate")
    decide(store, ds, "r1", "remove")
    csv, log_csv = export_review(ds, store, out=tmp_path / "clean.csv", log=True)
    assert log_csv == log_path_for(csv) == tmp_path / "clean.decisions.csv"
    text = csv.read_text()
    assert "'=HYPERLINK" in text and "'@SUM(A1:A9)" in text
    back = pd.read_csv(csv, keep_default_na=False)
    assert (
        len(back) == ds.n - 1
        and back.loc[back["id"] == "r0", "final_label"].item() == "card_delivery_estimate"
    )
    log = pd.read_csv(log_csv)
    assert log["action"].tolist() == ["accept", "remove"]
    (pq,) = export_review(ds, store, out=tmp_path / "clean.parquet", removed="flag")
    back = pd.read_parquet(pq)
    assert len(back) == ds.n and back["removed"].sum() == 1
    assert (
        back.loc[back["id"] == "r3", "text"].item().startswith("=HYPERLINK")
    )  # Parquet keeps values
    with pytest.raises(UsageError, match=".csv or .parquet"):
        export_review(ds, store, out=tmp_path / "clean.xlsx")


# --------------------------------------------------------------------------- CLI
def test_cli_export(ds, tmp_path, capsys):
    ws = Workspace(tmp_path / "ws")
    h = ws.save_dataset(ds)
    store = ReviewStore(ws.database_url)
    decide(store, ds, "r0", "change", new="refund_not_showing_up")
    out = tmp_path / "out" / "clean.csv"
    assert (
        main(
            ["export", "--workspace", str(ws.root), "--out", str(out), "--log", "--removed", "flag"]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert h in printed and "1 decided" in printed and str(out) in printed
    back = pd.read_csv(out, keep_default_na=False).set_index("id")
    assert back.loc["r0", "final_label"] == "refund_not_showing_up"
    assert (tmp_path / "out" / "clean.decisions.csv").exists()


def test_cli_export_picks_reviewed_dataset_or_says_which(ds, tmp_path, capsys):
    ws = Workspace(tmp_path / "ws")
    h1 = ws.save_dataset(ds)
    other = toy_dataset(seed=1)
    h2 = ws.save_dataset(other)
    out = str(tmp_path / "x.csv")
    # Two datasets, no decisions: ambiguous -> exit 2 naming both.
    assert main(["export", "--workspace", str(ws.root), "--out", out]) == 2
    err = capsys.readouterr().err
    assert h1 in err and h2 in err and "--dataset" in err
    # Decisions on one of them: that one is exported.
    decide(ReviewStore(ws.database_url), other, "r0", "keep")
    assert main(["export", "--workspace", str(ws.root), "--out", out]) == 0
    assert h2 in capsys.readouterr().out
    # An explicit prefix works; an unknown one is a usage error.
    assert main(["export", "--workspace", str(ws.root), "--dataset", h1[:8], "--out", out]) == 0
    assert main(["export", "--workspace", str(ws.root), "--dataset", "zzz", "--out", out]) == 2


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--out", "x.xlsx"], 2, ".csv or .parquet"),
        (["--out", "x.csv"], 2, "no dataset in the workspace"),
    ],
)
def test_cli_export_usage_errors(tmp_path, capsys, argv, code, message):
    assert main(["export", "--workspace", str(tmp_path / "empty"), *argv]) == code
    assert message in capsys.readouterr().err


def test_csv_bytes_roundtrip_keeps_unicode():
    df = pd.DataFrame({"t": ["naïve café ✓"]})
    assert pd.read_csv(io.BytesIO(to_csv_bytes(df)))["t"].iat[0] == "naïve café ✓"


def test_queue_without_scan_ranks_by_self_confidence(ds):
    q = build_queue(ds, pred_probs=ds.pred_probs)
    p_given = ds.pred_probs[range(ds.n), ds.labels]
    assert q[0] == ds.ids[p_given.argmin()] and q[-1] == ds.ids[p_given.argmax()]


def test_item_evidence_reads_per_detector_details_like_the_scan_stores_them(ds):
    # The scan table has only score_<detector>; flags, suggestions and evidence live in Detection.details
    # (lists after the workspace's JSON round trip).
    table = toy_scan_table(ds)[
        [
            "label_issue_score",
            "is_label_issue",
            "suggested_label",
            "suggested_label_prob",
            "score_confident_learning",
            "score_knn",
        ]
    ]
    details = {
        "flags": {"knn": [i == 0 for i in range(ds.n)]},
        "suggestions": {"knn": [2] * ds.n},
        "evidence": {"knn": ["3 of 5 neighbours say refund_not_showing_up"] * ds.n},
    }
    ev = item_evidence(ds, "r0", scan_table=table, detection_details=details)
    knn = ev.detectors.set_index("detector").loc["knn"]
    assert knn.flagged is True and knn.suggested == "refund_not_showing_up"
    assert knn.evidence.startswith("3 of 5")
    cl = ev.detectors.set_index("detector").loc["confident_learning"]
    assert cl.flagged is None and cl.evidence == ""

"""The scan: caching, determinism, cluster summaries, map sampling, the CLI; one slow test with the real model.

Unit tests replace the embedder (words hashed to fixed random vectors), UMAP (PCA) and the
detectors (a fake that counts its calls), so they run in seconds; ``test_real_model_and_umap`` uses
the real ones on 200 texts.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from labelaudit import clustering, detect, embed, projection, typed_json
from labelaudit.clustering import NOISE, ctfidf_keywords, summarise_clusters
from labelaudit.detect import Detection
from labelaudit.io import load_dataset
from labelaudit.scanning import BASE_COLUMNS, load_cached_scan, map_sample, scan
from labelaudit.workspace import Workspace
from tests.conftest import ROOT

TOPICS = {
    "card": ["card", "lost", "stolen", "blocked", "pin"],
    "transfer": ["transfer", "money", "account", "sent", "iban"],
    "refund": ["refund", "purchase", "return", "merchant", "charged"],
}
FILLER = ["please", "help", "need", "today"]
MISLABELLED = {"r3": "refund", "r50": "card", "r100": "transfer"}


def topic_dataset(n_per_topic: int = 40, seed: int = 0):
    """3 topics of n_per_topic texts each; three rows (MISLABELLED) carry another topic's label."""
    rng = np.random.default_rng(seed)
    rows = []
    for topic, words in TOPICS.items():
        for _ in range(n_per_topic):
            picked = list(rng.choice(words, size=3, replace=False)) + list(
                rng.choice(FILLER, size=1)
            )
            rows.append({"text": " ".join(picked), "label": topic})
    df = pd.DataFrame(rows)
    df.insert(0, "id", [f"r{i}" for i in range(len(df))])
    for rid, lab in MISLABELLED.items():
        df.loc[df["id"] == rid, "label"] = lab
    return load_dataset(df)


def fake_vectors(texts, dim: int = 32) -> np.ndarray:
    """Each word a fixed random vector (seeded by its hash); a text the normalised sum of its words."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for i, t in enumerate(texts):
        for w in t.lower().split():
            seed = int(hashlib.md5(w.encode()).hexdigest()[:8], 16)
            out[i] += np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return embed.normalise_rows(out)


class Calls:
    def __init__(self) -> None:
        self.embed = self.umap = self.cluster = self.detect = 0
        self.combiners: list[object] = []


@pytest.fixture
def fakes(monkeypatch) -> Calls:
    """Fake embedder, UMAP (PCA) and detectors that count their calls."""
    calls = Calls()
    real_cluster = clustering.cluster_points

    def fake_embed(
        texts, *, model=None, batch_size=64, device=None, progress=embed.no_progress, engine=None
    ):
        calls.embed += 1
        progress("embedding", len(texts), len(texts))
        return fake_vectors(texts)

    def fake_umap(x, n_components, *, seed=0, n_neighbors=15, min_dist=0.1, knn=None):
        calls.umap += 1
        return projection.pca_reduce(x, n_components, seed=seed)

    def counting_cluster(*a, **kw):
        calls.cluster += 1
        return real_cluster(*a, **kw)

    def fake_detect(ds, embeddings, *, workspace=None, seed=0, detectors=None, progress=None, **_):
        calls.detect += 1
        calls.combiners.append(_.get("combiner"))
        # Suspicion = 1 - cosine to the own class centroid: the planted errors score high.
        cents = np.stack([embeddings[ds.labels == k].mean(axis=0) for k in range(ds.k)])
        cents /= np.linalg.norm(cents, axis=1, keepdims=True)
        sims = embeddings @ cents.T
        score = np.clip((1 - sims[np.arange(ds.n), ds.labels]) / 2, 0, 1)
        probs = np.exp(5 * sims) / np.exp(5 * sims).sum(axis=1, keepdims=True)
        table = pd.DataFrame(
            {
                "label_issue_score": score,
                "is_label_issue": score > np.quantile(score, 0.95),
                "suggested_label": np.asarray(ds.classes, dtype=object)[probs.argmax(axis=1)],
                "suggested_label_prob": probs.max(axis=1),
            }
        )
        return Detection(
            table=table,
            pred_probs=probs,
            details={"noise_matrix": np.eye(ds.k)},
        )

    monkeypatch.setattr(embed, "embed_texts", fake_embed)
    monkeypatch.setattr(projection, "umap_fit", fake_umap)
    monkeypatch.setattr(clustering, "cluster_points", counting_cluster)
    monkeypatch.setattr(detect, "detect_label_issues", fake_detect)
    return calls


# --------------------------------------------------------------------------- caching
def test_scan_table_shape_and_columns(fakes, workspace):
    ds = topic_dataset()
    res = scan(ds, workspace=workspace, cluster_method="kmeans", n_clusters=3)
    assert res.table.columns[: len(BASE_COLUMNS)].tolist() == BASE_COLUMNS
    assert {"label_issue_score", "suggested_label", "is_label_issue"} <= set(res.table.columns)
    assert res.table["id"].tolist() == ds.ids.tolist()
    assert res.table["given_label"].tolist() == ds.label_names.tolist()
    assert res.embeddings.dtype == np.float32 and res.embeddings.shape == (ds.n, 32)
    np.testing.assert_allclose(np.linalg.norm(res.embeddings, axis=1), 1, atol=1e-5)
    assert np.isfinite(res.table[["x", "y"]].to_numpy()).all()
    assert set(res.timings) >= {"embedding", "projection", "clustering", "detection", "total"}
    # The planted errors are among the most suspicious rows of the fake detector.
    top = set(res.table.nlargest(10, "label_issue_score")["id"])
    assert set(MISLABELLED) <= top


def test_second_scan_loads_and_recomputes_nothing(fakes, workspace):
    ds = topic_dataset()
    first = scan(ds, workspace=workspace)
    counts = (fakes.embed, fakes.umap, fakes.cluster, fakes.detect)
    assert counts == (1, 1, 1, 1)  # one UMAP fit: the clusters are found on the 2-D map
    again = scan(ds, workspace=workspace)
    assert (fakes.embed, fakes.umap, fakes.cluster, fakes.detect) == counts
    assert "load" in again.timings
    pd.testing.assert_frame_equal(again.table, first.table)
    pd.testing.assert_frame_equal(again.clusters, first.clusters)
    np.testing.assert_array_equal(again.embeddings, first.embeddings)
    np.testing.assert_allclose(again.detection.pred_probs, first.detection.pred_probs)
    # The typed details read back exactly: the array stays an array of the same dtype.
    assert typed_json.same(again.detection.details, first.detection.details)
    assert again.detection.details.noise_matrix.dtype == np.float64
    assert list(again.detection.table.columns) == list(first.detection.table.columns)


def test_the_combiner_asked_for_is_the_one_that_runs(fakes, workspace):
    # scan() once left combiner="rank_average" out of its call to detection, so asking for the
    # rank average silently ran the default (quality-gated) combiner.
    ds = topic_dataset()
    scan(ds, workspace=workspace)
    scan(ds, workspace=workspace, combiner="rank_average")
    scan(ds, workspace=workspace, combiner="rank_average")  # cached: no third detection
    assert fakes.combiners == ["quality", "rank_average"]


def test_load_cached_scan_is_none_until_scanned(fakes, workspace):
    ds = topic_dataset()
    assert load_cached_scan(ds, workspace=workspace) is None
    scan(ds, workspace=workspace)
    assert load_cached_scan(ds, workspace=workspace) is not None
    assert load_cached_scan(ds, workspace=workspace, seed=1) is None
    assert fakes.detect == 1


@pytest.mark.parametrize(
    ("change", "expected_new_calls"),
    [
        # (embed, umap, cluster, detect) calls a second scan makes after the change
        ({"cluster_method": "kmeans", "n_clusters": 4}, (0, 0, 1, 1)),
        ({"seed": 7}, (0, 1, 1, 1)),  # one UMAP fit: the map, which the clusters are found on
        ({"relabel": True}, (0, 0, 0, 1)),  # same texts: embeddings, map and clusters are reused
    ],
)
def test_cache_misses_recompute_only_what_changed(fakes, workspace, change, expected_new_calls):
    ds = topic_dataset()
    scan(ds, workspace=workspace)
    before = (fakes.embed, fakes.umap, fakes.cluster, fakes.detect)
    change = dict(change)
    if change.pop("relabel", False):
        labels = ds.label_names.copy()
        labels[0] = "refund" if labels[0] != "refund" else "card"
        ds = ds.with_labels(labels)
    scan(ds, workspace=workspace, **change)
    after = (fakes.embed, fakes.umap, fakes.cluster, fakes.detect)
    assert tuple(a - b for a, b in zip(after, before, strict=True)) == expected_new_calls


def test_precomputed_embeddings_are_used_not_recomputed(fakes, workspace):
    base = topic_dataset()
    given = fake_vectors(base.texts) * 3.0  # not normalised: the scan normalises
    df = base.frame[["id", "text", "label"]]
    ds = load_dataset(df, embeddings=given)
    res = scan(ds, workspace=workspace)
    assert fakes.embed == 0
    np.testing.assert_allclose(res.embeddings, given / 3.0, atol=1e-6)
    assert res.params["embeddings"].startswith("given:")


def test_two_dimensional_input_is_the_map(fakes, workspace):
    base = topic_dataset()
    xy = np.random.default_rng(0).standard_normal((base.n, 2)).astype(np.float32)
    xy /= np.linalg.norm(xy, axis=1, keepdims=True)
    res = scan(
        load_dataset(base.frame[["id", "text", "label"]], embeddings=xy),
        workspace=workspace,
        cluster_method="kmeans",
        n_clusters=3,
    )
    assert fakes.umap == 0
    np.testing.assert_allclose(res.table[["x", "y"]].to_numpy(), xy, atol=1e-6)


def test_same_seed_same_result_in_fresh_workspaces(fakes, tmp_path):
    ds = topic_dataset()
    a = scan(ds, workspace=Workspace(tmp_path / "a"), cluster_method="kmeans", n_clusters=3, seed=3)
    b = scan(ds, workspace=Workspace(tmp_path / "b"), cluster_method="kmeans", n_clusters=3, seed=3)
    pd.testing.assert_frame_equal(a.table, b.table)
    pd.testing.assert_frame_equal(a.clusters, b.clusters)


def test_progress_reports_each_step_in_order(fakes, workspace):
    seen: list[str] = []
    scan(topic_dataset(), workspace=workspace, progress=lambda step, done, total: seen.append(step))
    order = list(dict.fromkeys(seen))
    assert order[:4] == ["embedding", "neighbour graph", "projection", "clustering"]


def test_page_view_path_never_imports_umap_or_torch(fakes, workspace):
    ds = topic_dataset()
    scan(ds, workspace=workspace)
    h = workspace.save_dataset(ds)
    code = (
        "import sys; from labelaudit.workspace import Workspace; from labelaudit.scanning import load_cached_scan\n"
        f"ws = Workspace({str(workspace.root)!r}); ds = ws.load_dataset({h!r})\n"
        "res = load_cached_scan(ds, workspace=ws)\n"
        "assert res is not None and len(res.table) == ds.n\n"
        "heavy = [m for m in ('umap', 'numba', 'torch', 'sentence_transformers', 'hdbscan', "
        "'streamlit') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- clusters
def test_kmeans_clusters_recover_the_topics_with_summaries(fakes, workspace):
    ds = topic_dataset()
    res = scan(ds, workspace=workspace, cluster_method="kmeans", n_clusters=3)
    cl = res.clusters.set_index("top_label")
    assert sorted(cl.index) == sorted(TOPICS)
    assert cl["size"].sum() == ds.n
    for topic, words in TOPICS.items():
        row = cl.loc[topic]
        assert row["purity"] >= 0.9
        top3 = row["keywords"].split(", ")[:3]
        assert set(top3) <= set(words), (topic, row["keywords"])
        members = set(res.table.loc[res.table["cluster"] == row["cluster"], "id"])
        assert set(row["representative_ids"]) <= members and len(row["representative_ids"]) == 3
    assert {"mean_issue_score", "issue_rate"} <= set(res.clusters.columns)


def test_hdbscan_default_finds_the_topics(fakes, workspace):
    ds = topic_dataset(n_per_topic=60)
    res = scan(ds, workspace=workspace)
    found = res.clusters[res.clusters["cluster"] >= 0]
    assert len(found) >= 3
    assert set(found["top_label"]) == set(TOPICS)
    assert (res.table["cluster"] >= NOISE).all()


def test_summarise_clusters_by_hand():
    cluster = np.array([0, 0, 0, 1, 1, NOISE])
    labels = ["a", "a", "b", "c", "c", "a"]
    texts = ["apple pie", "apple tart", "apple cake", "car wheel", "car engine", "misc"]
    vectors = np.array([[0.0], [1.0], [2.0], [10.0], [12.0], [5.0]])
    s = summarise_clusters(
        cluster,
        texts=texts,
        labels=labels,
        ids=list("uvwxyz"),
        vectors=vectors,
        n_representatives=1,
    )
    assert s["cluster"].tolist() == [0, 1, NOISE]  # noise last
    assert s["size"].tolist() == [3, 2, 1]
    assert s["purity"].round(4).tolist() == [round(2 / 3, 4), 1.0, 1.0]
    assert s.loc[0, "labels"] == "a 67% · b 33%"
    assert s["representative_ids"].tolist() == [
        ["v"],
        ["x"],
        ["z"],
    ]  # nearest to the centroid (tie: first)
    assert s.loc[0, "keywords"].split(", ")[0] == "apple"
    assert s.loc[1, "keywords"].split(", ")[0] == "car"


def test_ctfidf_ranks_cluster_words_above_shared_ones():
    texts = ["please refund refund", "please refund", "please card", "please card card"]
    kw = ctfidf_keywords(texts, np.array([0, 0, 1, 1]), n_keywords=2)
    assert kw[0][0] == "refund" and kw[1][0] == "card"
    assert ctfidf_keywords(["the and", "of the"], np.array([0, 1])) == {
        0: [],
        1: [],
    }  # only stop words


@pytest.mark.parametrize(
    ("counts", "max_points", "expected_total", "min_kept"),
    [
        ([50, 50], 1000, 100, 50),  # small: every row
        ([30_000, 100], 1000, 1000, 20),  # large: small class keeps 20
        ([5000, 5000, 5000], 3000, 3000, 1000),
        ([10_000, 3], 500, 500, 3),  # a class smaller than the floor keeps all it has
        ([5] * 100, 400, 500, 5),  # the floors alone exceed max_points: every row
    ],
)
def test_map_sample_is_stratified(counts, max_points, expected_total, min_kept):
    strata = np.repeat(np.arange(len(counts)), counts)
    rows = map_sample(strata, max_points=max_points, seed=1)
    assert len(rows) == expected_total
    assert len(np.unique(rows)) == len(rows) and (np.diff(rows) > 0).all()
    per = np.bincount(strata[rows], minlength=len(counts))
    assert per.min() >= min_kept
    np.testing.assert_array_equal(rows, map_sample(strata, max_points=max_points, seed=1))


def test_unknown_cluster_method_is_a_usage_error(workspace):
    from labelaudit.errors import UsageError

    with pytest.raises(UsageError, match="unknown clustering method"):
        scan(topic_dataset(), workspace=workspace, cluster_method="dbscan")


# --------------------------------------------------------------------------- CLI
def _write_topics(tmp_path):
    p = tmp_path / "topics.csv"
    topic_dataset().frame[["id", "text", "label"]].to_csv(p, index=False)
    return p


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_cli_scan_writes_one_row_per_item(fakes, tmp_path, suffix, capsys):
    from labelaudit.cli import main

    data = _write_topics(tmp_path)
    out = tmp_path / f"scan{suffix}"
    clusters_out = tmp_path / f"clusters{suffix}"
    code = main(
        [
            "scan",
            str(data),
            "--workspace",
            str(tmp_path / "ws"),
            "--cluster",
            "kmeans",
            "--n-clusters",
            "3",
            "--out",
            str(out),
            "--clusters-out",
            str(clusters_out),
        ]
    )
    assert code == 0
    df = pd.read_csv(out, dtype={"id": str}) if suffix == ".csv" else pd.read_parquet(out)
    assert len(df) == 120 and df.columns[:6].tolist() == BASE_COLUMNS
    assert df["cluster"].nunique() == 3
    cl = pd.read_csv(clusters_out) if suffix == ".csv" else pd.read_parquet(clusters_out)
    assert len(cl) == 3
    assert "3 clusters" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--out", "x.json"], 2, "unsupported extension"),
        (["--out", "no/such/dir/x.csv"], 2, "does not exist"),
        (["--out", "x.csv", "--n-clusters", "4"], 2, "kmeans only"),
        (["--out", "x.csv", "--model", "/no/such/model"], 2, "no such folder"),
    ],
)
def test_cli_scan_bad_usage(fakes, tmp_path, monkeypatch, capsys, extra, code, message):
    from labelaudit.cli import main

    monkeypatch.chdir(tmp_path)
    data = _write_topics(tmp_path)
    assert main(["scan", str(data), "--workspace", str(tmp_path / "ws"), *extra]) == code
    assert message in capsys.readouterr().err


def test_cli_scan_bad_data_exits_1(tmp_path, capsys):
    from labelaudit.cli import main

    p = tmp_path / "bad.csv"
    p.write_text("text,label\nhello,\n")
    assert (
        main(
            ["scan", str(p), "--out", str(tmp_path / "o.csv"), "--workspace", str(tmp_path / "ws")]
        )
        == 1
    )
    assert "error:" in capsys.readouterr().err


# --------------------------------------------------------------------------- real model
@pytest.mark.slow
def test_real_model_and_umap(small_dataset, tmp_path, monkeypatch):
    """The bundled MiniLM and real UMAP + HDBSCAN on 200 BANKING77 texts (detectors faked for speed)."""
    monkeypatch.setattr(
        detect,
        "detect_label_issues",
        lambda ds, emb, **kw: Detection(table=pd.DataFrame(index=range(ds.n))),
    )
    ds = small_dataset.subset(np.arange(small_dataset.n) < 200)
    res = scan(ds, workspace=Workspace(tmp_path / "a"), seed=0)
    assert res.embeddings.shape == (200, 384) and res.embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(res.embeddings, axis=1), 1, atol=1e-4)
    # The same text embeds the same whatever its batch neighbours (sorting by length must not change it).
    alone = embed.embed_texts([ds.texts[5]])
    np.testing.assert_allclose(alone[0], res.embeddings[5], atol=1e-4)
    again = scan(ds, workspace=Workspace(tmp_path / "b"), seed=0)
    np.testing.assert_allclose(
        again.table[["x", "y"]].to_numpy(), res.table[["x", "y"]].to_numpy(), atol=1e-4
    )
    assert again.table["cluster"].tolist() == res.table["cluster"].tolist()
    # 5 intents: the clusters found are mostly pure.
    found = res.clusters[res.clusters["cluster"] >= 0]
    assert len(found) >= 2
    assert (found["purity"] * found["size"]).sum() / found["size"].sum() >= 0.7
    json.dumps(res.params)


@pytest.mark.slow
def test_cli_unknown_model_name_is_a_usage_error(tmp_path, capsys):
    from labelaudit.cli import main

    data = _write_topics(tmp_path)
    code = main(
        [
            "scan",
            str(data),
            "--workspace",
            str(tmp_path / "ws"),
            "--model",
            "no-such-org/no-such-model",
            "--out",
            str(tmp_path / "o.csv"),
        ]
    )
    assert code == 2
    assert "cannot load the embedding model 'no-such-org/no-such-model'" in capsys.readouterr().err

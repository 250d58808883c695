"""Clusters of similar texts and what each is about.

Clusters are found with HDBSCAN (Campello, Moulavi & Sander 2013; the ``hdbscan`` package) on a
reduced space, or KMeans as an option. Each cluster is summarised by its size, top keywords by
class-based TF-IDF (the c-TF-IDF of BERTopic, Grootendorst 2022, arXiv:2203.05794), its given-label
distribution and purity, and representative rows (the ones nearest its centroid).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from labelaudit.errors import UsageError

METHODS = ("hdbscan", "kmeans")
#: Cluster id HDBSCAN gives to rows in no cluster.
NOISE = -1


def default_min_cluster_size(n: int) -> int:
    """HDBSCAN's smallest cluster: 10 rows, growing with N (33 at 10k rows, 100 from 30k)."""
    return int(max(10, min(100, n // 300)))


def cluster_points(
    space: np.ndarray,
    *,
    method: str = "hdbscan",
    n_clusters: int | None = None,
    min_cluster_size: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Cluster ids, int64 (N,): 0..C-1, and :data:`NOISE` (-1) for HDBSCAN's unclustered rows.

    ``space``: float (N, d) with small d (the clustering space of
    :func:`labelaudit.projection.map_and_cluster_space`). ``n_clusters`` is required for KMeans.
    Ids are renumbered by decreasing cluster size (ties: order of first row), so cluster 0 is the largest.

    >>> cluster_points(np.r_[np.zeros((20, 2)), np.ones((20, 2))], method="kmeans", n_clusters=2)[:3]
    array([0, 0, 0])
    """
    x = np.asarray(space, dtype=np.float64)
    n = len(x)
    if method not in METHODS:
        raise UsageError(f"unknown clustering method '{method}'; choose one of {list(METHODS)}")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if method == "kmeans":
        if not n_clusters or n_clusters < 1:
            raise UsageError("KMeans needs the number of clusters (--n-clusters K, K >= 1)")
        from sklearn.cluster import KMeans

        k = min(int(n_clusters), n)
        raw = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(x)
    else:
        mcs = min_cluster_size or default_min_cluster_size(n)
        if n < 2 * mcs:
            return np.full(n, NOISE, dtype=np.int64) if n < 2 else np.zeros(n, dtype=np.int64)
        import hdbscan

        # min_samples below min_cluster_size: fewer rows are thrown out as noise in dense text data.
        raw = hdbscan.HDBSCAN(min_cluster_size=mcs, min_samples=min(5, mcs)).fit_predict(x)
    return _renumber_by_size(np.asarray(raw, dtype=np.int64))


def _renumber_by_size(raw: np.ndarray) -> np.ndarray:
    ids, first, counts = np.unique(raw[raw != NOISE], return_index=True, return_counts=True)
    order = ids[np.lexsort((first, -counts))]  # ties: the cluster seen first gets the lower id
    mapping = {int(old): new for new, old in enumerate(order)}
    return np.array([mapping.get(int(c), NOISE) for c in raw], dtype=np.int64)


def ctfidf_keywords(
    texts: Sequence[str], cluster: np.ndarray, *, n_keywords: int = 8
) -> dict[int, list[str]]:
    """Top ``n_keywords`` words of each cluster by class-based TF-IDF.

    Each cluster's texts are one document; a word's weight is its frequency in the cluster times
    ``log(1 + A / f)`` where A is the average number of words per cluster and f the word's frequency
    over all clusters (Grootendorst 2022). Noise rows are kept as their own class so words common
    everywhere still score low. English stop words are dropped.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    cluster = np.asarray(cluster)
    classes = np.unique(cluster)
    docs = [" ".join(t for t, c in zip(texts, cluster, strict=True) if c == k) for k in classes]
    try:
        vec = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_][\w'-]+\b")
        counts = vec.fit_transform(docs)
    except ValueError:  # only stop words / empty vocabulary
        return {int(k): [] for k in classes}
    counts = counts.astype(np.float64)
    words = np.asarray(vec.get_feature_names_out())
    tf = counts.multiply(1.0 / np.maximum(counts.sum(axis=1), 1)).tocsr()
    avg_words = counts.sum() / len(classes)
    freq = np.asarray(counts.sum(axis=0)).ravel()
    idf = np.log(1.0 + avg_words / np.maximum(freq, 1))
    weights = tf.multiply(idf).tocsr()
    out: dict[int, list[str]] = {}
    for row, k in enumerate(classes):
        w = weights.getrow(row).toarray().ravel()
        top = np.argsort(-w, kind="stable")[:n_keywords]
        out[int(k)] = [str(words[i]) for i in top if w[i] > 0]
    return out


def summarise_clusters(
    cluster: np.ndarray,
    *,
    texts: Sequence[str],
    labels: Sequence[str] | np.ndarray,
    ids: Sequence[str] | np.ndarray,
    vectors: np.ndarray | None = None,
    n_keywords: int = 8,
    n_representatives: int = 3,
    top_labels: int = 3,
) -> pd.DataFrame:
    """One row per cluster (noise last, as cluster -1), sorted by cluster id.

    Columns: ``cluster`` (int), ``size`` (int), ``keywords`` (str, comma separated, c-TF-IDF),
    ``top_label`` (str), ``purity`` (float in (0, 1]: share of the top given label),
    ``labels`` (str: up to ``top_labels`` labels with shares, "a 80% · b 20%"),
    ``n_labels`` (distinct given labels), ``representative_ids`` (list[str]: rows nearest the
    cluster centroid in ``vectors`` (N, D) when given, else the first rows).
    """
    cluster = np.asarray(cluster, dtype=np.int64)
    label_arr = np.asarray(labels, dtype=object)
    id_arr = np.asarray(ids, dtype=object)
    keywords = ctfidf_keywords(texts, cluster, n_keywords=n_keywords) if len(cluster) else {}
    rows = []
    present = sorted(set(cluster.tolist()), key=lambda c: (c == NOISE, c))
    for k in present:
        members = np.flatnonzero(cluster == k)
        dist = pd.Series(label_arr[members]).value_counts()
        shares = dist / len(members)
        if vectors is not None and len(members):
            v = np.asarray(vectors[members], dtype=np.float64)
            centre = v.mean(axis=0)
            nearest = members[
                np.argsort(((v - centre) ** 2).sum(axis=1), kind="stable")[:n_representatives]
            ]
        else:
            nearest = members[:n_representatives]
        rows.append(
            {
                "cluster": int(k),
                "size": int(len(members)),
                "keywords": ", ".join(keywords.get(int(k), [])),
                "top_label": str(dist.index[0]),
                "purity": float(shares.iloc[0]),
                "labels": " · ".join(
                    f"{lab} {s:.0%}" for lab, s in shares.head(top_labels).items()
                ),
                "n_labels": int(len(dist)),
                "representative_ids": [str(i) for i in id_arr[nearest]],
            }
        )
    cols = [
        "cluster",
        "size",
        "keywords",
        "top_label",
        "purity",
        "labels",
        "n_labels",
        "representative_ids",
    ]
    return pd.DataFrame(rows, columns=cols)

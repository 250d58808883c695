"""Clusters of similar texts and what each is about.

Clusters are found with HDBSCAN (Campello, Moulavi & Sander 2013; the ``hdbscan`` package) on a
reduced space, or KMeans as an option. Each cluster is summarised by its size, top keywords by
class-based TF-IDF (the c-TF-IDF of BERTopic, Grootendorst 2022, arXiv:2203.05794), its given-label
distribution and purity, and representative rows (the ones nearest its centroid).

Above :data:`FIT_MAX_ROWS` rows HDBSCAN is fitted on a seeded sample of that many rows and every other
row takes the similarity-weighted majority cluster of its already assigned neighbours in the scan's
shared k-NN graph (repeated until every row has one), so clustering stays linear in N past the sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from labelaudit.errors import UsageError

if TYPE_CHECKING:
    from labelaudit.neighbours import NeighbourGraph

METHODS = ("hdbscan", "kmeans")
#: Cluster id HDBSCAN gives to rows in no cluster.
NOISE = -1
#: Most rows HDBSCAN is fitted on; beyond it the rest are assigned through the neighbour graph.
FIT_MAX_ROWS = 200_000
#: Rows assigned per vectorised step / passes of assignment (see :func:`vote_by_graph`).
VOTE_BLOCK = 65_536
VOTE_PASSES = 20
#: Rows per block when representatives are searched (bounds the (rows, D) float temporary).
CENTRE_BLOCK = 65_536


def vote_by_graph(
    assigned: np.ndarray, sample: np.ndarray, graph: NeighbourGraph, *, passes: int = VOTE_PASSES
) -> np.ndarray:
    """Cluster ids (N,) for every row of ``graph``: ``assigned`` at the rows ``sample``; every other row
    the similarity-weighted majority id among its assigned neighbours (ties: the lower id), pass after
    pass (:func:`labelaudit.neighbours.spread_over_graph`); rows with no assigned neighbour after
    ``passes`` get :data:`NOISE`. O(passes x N x k).
    """
    from scipy.sparse import coo_matrix

    from labelaudit.neighbours import spread_over_graph

    out = np.full(graph.n, NOISE, dtype=np.int64)
    out[sample] = assigned
    n_ids = int(out.max()) + 2  # ids -1..max shifted to 0..max+1

    def fill(rows: np.ndarray, nb: np.ndarray, w: np.ndarray) -> np.ndarray:
        pos = np.repeat(np.arange(len(rows)), nb.shape[1])
        votes = coo_matrix(
            (w.ravel(), (pos, out[nb].ravel() + 1)), shape=(len(rows), n_ids)
        ).tocsr()
        ok = np.asarray(votes.sum(axis=1)).ravel() > 0
        out[rows[ok]] = np.asarray(votes.argmax(axis=1)).ravel()[ok] - 1
        return ok

    spread_over_graph(graph, sample, fill, passes=passes, block=VOTE_BLOCK)
    return out


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
    graph: NeighbourGraph | None = None,
    fit_max_rows: int = FIT_MAX_ROWS,
) -> np.ndarray:
    """Cluster ids, int64 (N,): 0..C-1, and :data:`NOISE` (-1) for HDBSCAN's unclustered rows.

    ``space``: float (N, d) with small d (the clustering space of
    :func:`labelaudit.projection.map_and_cluster_space`). ``n_clusters`` is required for KMeans.
    Ids are renumbered by decreasing cluster size (ties: order of first row), so cluster 0 is the largest.
    ``graph`` (the k-NN graph of the same rows): with more than ``fit_max_rows`` rows, HDBSCAN is fitted
    on a seeded sample and the rest assigned by :func:`vote_by_graph` (without a graph, on everything).

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
        sampled = graph is not None and n > fit_max_rows
        if sampled:
            from labelaudit.projection import fit_sample

            sample = fit_sample(n, fit_max_rows, seed=seed)
            x = x[sample]
        m = len(x)
        mcs = min_cluster_size or default_min_cluster_size(m)
        if m < 2 * mcs:
            return np.full(n, NOISE, dtype=np.int64) if n < 2 else np.zeros(n, dtype=np.int64)
        import hdbscan

        # min_samples below min_cluster_size: fewer rows are thrown out as noise in dense text data.
        raw = hdbscan.HDBSCAN(min_cluster_size=mcs, min_samples=min(5, mcs)).fit_predict(x)
        if sampled:
            assert graph is not None
            raw = vote_by_graph(np.asarray(raw, dtype=np.int64), sample, graph)
    return _renumber_by_size(np.asarray(raw, dtype=np.int64))


def _renumber_by_size(raw: np.ndarray) -> np.ndarray:
    ids, first, counts = np.unique(raw[raw != NOISE], return_index=True, return_counts=True)
    order = ids[np.lexsort((first, -counts))]  # ties: the cluster seen first gets the lower id
    lookup = np.full(int(raw.max(initial=NOISE)) + 2, NOISE, dtype=np.int64)  # index = old id + 1
    lookup[order + 1] = np.arange(len(order))
    return lookup[raw + 1]


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
    # One pass over the rows (grouped by cluster), not one pass per cluster.
    docs = pd.Series(list(texts), dtype=object).groupby(cluster, sort=True).agg(" ".join).tolist()
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
    # Rows grouped by cluster once (stable: each group in row order), not one scan per cluster.
    order = np.argsort(cluster, kind="stable")
    ids_sorted, starts = np.unique(cluster[order], return_index=True)
    groups = dict(zip(ids_sorted.tolist(), np.split(order, starts[1:]), strict=True))
    present = sorted(groups, key=lambda c: (c == NOISE, c))
    for k in present:
        members = groups[k]
        dist = pd.Series(label_arr[members]).value_counts()
        shares = dist / len(members)
        if vectors is not None and len(members):
            nearest = members[_nearest_centre(vectors, members, n_representatives)]
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


def _nearest_centre(vectors: np.ndarray, members: np.ndarray, n: int) -> np.ndarray:
    """Positions (into ``members``) of the ``n`` rows nearest the members' centroid, nearest first
    (ties: row order); read in blocks, so a big cluster never makes an (M, D) float64 copy."""
    centre = np.zeros(vectors.shape[1], dtype=np.float64)
    for s in range(0, len(members), CENTRE_BLOCK):
        centre += np.asarray(vectors[members[s : s + CENTRE_BLOCK]], dtype=np.float64).sum(axis=0)
    centre /= len(members)
    dist = np.empty(len(members), dtype=np.float64)
    for s in range(0, len(members), CENTRE_BLOCK):
        v = np.asarray(vectors[members[s : s + CENTRE_BLOCK]], dtype=np.float64)
        dist[s : s + len(v)] = ((v - centre) ** 2).sum(axis=1)
    return np.argsort(dist, kind="stable")[:n]

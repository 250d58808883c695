"""UMAP's numba functions are compiled once per machine, not once per process (issue 16).

umap-learn compiles them without numba's on-disk cache; :func:`labelaudit.projection.import_umap`
turns the cache on. A fit in a new process must leave their cache files behind, so that the next
process (the next scan job) loads them instead of compiling them again.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

FIT = (
    "import numpy as np\n"
    "from labelaudit.neighbours import build_neighbour_graph\n"
    "from labelaudit.projection import map_and_cluster_space\n"
    "x = np.random.default_rng(0).normal(size=(300, 16)).astype('float32')\n"
    "x /= np.linalg.norm(x, axis=1, keepdims=True)\n"
    "map_and_cluster_space(x, seed=0, graph=build_neighbour_graph(x, k=14, seed=0))\n"
)


@pytest.mark.slow
def test_a_fit_leaves_umaps_compiled_functions_in_numbas_cache(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    subprocess.run([sys.executable, "-c", FIT], env=env, check=True, capture_output=True)
    names = {p.name for p in tmp_path.rglob("*.nbi")}
    # the fit's layout optimisation and its fuzzy graph: the two slowest compilations of a fit
    for fn in ("layouts._optimize_layout_euclidean_single_epoch", "umap_.smooth_knn_dist"):
        assert any(n.startswith(fn) for n in names), (fn, sorted(names))
    assert any(p.suffix == ".nbc" for p in tmp_path.rglob("*.nbc"))


def test_import_umap_returns_umap_and_is_idempotent():
    from labelaudit.projection import import_umap

    first = import_umap()
    assert first is import_umap()
    assert hasattr(first, "UMAP")

"""Fill numba's on-disk cache of UMAP's and pynndescent's compiled functions (``make install``).

UMAP compiles its layout and graph functions with numba at first use; the scan caches them beside
the package (``labelaudit.projection.import_umap`` turns numba's on-disk cache on for them, which
umap-learn itself does not); without this, the first map the app draws pays the compilation (issue
16: the first pass's projection took longer than its embedding). Two tiny fits through the scan's
own code path (the shared cosine neighbour graph given to UMAP), below and above the size at which
UMAP's own defaults switch from exact neighbours to pynndescent. Run:
``.venv/bin/python -m scripts.warm_numba``.
"""

from __future__ import annotations

import time

import numpy as np


def main() -> None:
    from labelaudit.neighbours import build_neighbour_graph
    from labelaudit.projection import N_NEIGHBORS, map_and_cluster_space

    t = time.perf_counter()
    rng = np.random.default_rng(0)
    for n in (300, 4_200):
        x = rng.normal(size=(n, 16)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        graph = build_neighbour_graph(x, k=N_NEIGHBORS - 1, seed=0)
        map_and_cluster_space(x, seed=0, graph=graph)
    print(f"numba cache warmed for UMAP in {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()

"""Fill numba's on-disk cache of UMAP's and pynndescent's compiled functions (``make install``).

UMAP compiles its layout and graph functions with numba at first use and caches them beside the
package (``cache=True``); without this, the first map the app draws pays the compilation (issue 16:
the first pass's projection took longer than its embedding in a cold cache). Two tiny fits through
the scan's own code path: below and above the size at which UMAP switches from exact neighbours to
pynndescent. Run: ``.venv/bin/python -m scripts.warm_numba``.
"""

from __future__ import annotations

import time

import numpy as np


def main() -> None:
    from labelaudit.projection import map_and_cluster_space

    t = time.perf_counter()
    rng = np.random.default_rng(0)
    for n in (300, 4_200):
        x = rng.normal(size=(n, 16)).astype(np.float32)
        map_and_cluster_space(x / np.linalg.norm(x, axis=1, keepdims=True), seed=0)
    print(f"numba cache warmed for UMAP in {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()

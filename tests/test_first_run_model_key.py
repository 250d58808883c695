"""The embeddings cache is keyed by what makes the vectors, not by where the model lies (issue 16):
a new venv or a reinstall (the same model at another path) reuses the cached embeddings; a changed
model (weights, config, tokenizer) misses."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labelaudit import embed, scanning
from labelaudit.io import load_dataset
from labelaudit.workspace import Workspace


def _fake_model(folder: Path) -> Path:
    """A folder with a sentence-transformers layout (the bytes only matter for the key)."""
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "config.json").write_text('{"hidden_size": 4}')
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    (folder / "tokenizer.json").write_text('{"vocab": ["a", "b"]}')
    (folder / "README.md").write_text("---\nlibrary_name: x\n---\n# tiny-model\n")
    return folder


@pytest.fixture
def counted_embedding(monkeypatch, tmp_path):
    """``embed_texts`` replaced by a counter of unit vectors; the digest cache in tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    embed._FINGERPRINTS.clear()
    calls: list[str] = []

    def fake(texts, *, model=None, progress=None, **kw):
        calls.append(str(model))
        out = np.zeros((len(texts), 4), dtype=np.float32)
        out[:, 0] = 1
        return out

    monkeypatch.setattr(embed, "embed_texts", fake)
    return calls


def _dataset():
    texts = ["card lost", "top up failed", "refund please"]
    frame = pd.DataFrame({"text": texts, "label": list("aab")})
    return load_dataset(frame)


def test_two_copies_of_a_model_share_the_cache_and_a_changed_model_misses(
    tmp_path, counted_embedding
):
    a = _fake_model(tmp_path / "venv1" / "model")
    b = tmp_path / "venv2" / "site-packages" / "other-name"
    shutil.copytree(a, b)
    ds, ws = _dataset(), Workspace(tmp_path / "ws")
    assert embed.embeddings_id(a, "torch") == embed.embeddings_id(b, "torch")
    assert embed.embeddings_id(a, "torch").startswith("tiny-model@")
    scanning.get_embeddings(ds, workspace=ws, model=a)
    scanning.get_embeddings(ds, workspace=ws, model=b)
    assert counted_embedding == [str(a)]  # the copy at another path hit the cache
    # a README edit is not a model change
    (b / "README.md").write_text("# tiny-model\nmore words\n")
    scanning.get_embeddings(ds, workspace=ws, model=b)
    assert len(counted_embedding) == 1
    # changed weights, config or tokenizer: another model, its own embeddings
    for name, content in [
        ("model.safetensors", b"\x01" * 100),
        ("config.json", '{"hidden_size": 5}'),
        ("tokenizer.json", '{"vocab": ["a", "c"]}'),
    ]:
        c = tmp_path / f"changed-{name}"
        shutil.copytree(a, c)
        target = c / name
        target.write_bytes(content) if isinstance(content, bytes) else target.write_text(content)
        assert embed.embeddings_id(c, "torch") != embed.embeddings_id(a, "torch"), name
        scanning.get_embeddings(ds, workspace=ws, model=c)
        assert counted_embedding[-1] == str(c), name
    assert len(counted_embedding) == 4


def test_the_key_names_the_backend_and_normalisation(tmp_path, counted_embedding):
    a = _fake_model(tmp_path / "m")
    ids = {name: embed.embeddings_id(a, name) for name in embed.BACKENDS}
    assert len(set(ids.values())) == len(ids)
    assert ids["torch"].endswith("/l2") and ids["onnx"].endswith("/l2#onnx")
    assert str(tmp_path) not in ids["torch"]  # no path in the key


def test_the_fingerprint_is_remembered_across_processes(tmp_path, counted_embedding):
    a = _fake_model(tmp_path / "m")
    first = embed.model_fingerprint(a)
    store = tmp_path / "cache" / "labelaudit" / "model-digests.json"
    assert store.exists() and first in store.read_text()
    embed._FINGERPRINTS.clear()  # a new process: read from the file, the weights not hashed again
    opened: list[str] = []
    real_open = open

    def spy(path, *args, **kw):
        opened.append(str(path))
        return real_open(path, *args, **kw)

    import builtins

    builtins.open, saved = spy, builtins.open
    try:
        assert embed.model_fingerprint(a) == first
    finally:
        builtins.open = saved
    assert not any(p.endswith("model.safetensors") for p in opened), opened


def test_the_bundled_model_and_a_copy_have_one_key(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    embed._FINGERPRINTS.clear()
    src = Path(embed.default_model_path())
    copy = tmp_path / "reinstalled" / "model"
    shutil.copytree(src, copy)
    assert embed.embeddings_id(None, "torch") == embed.embeddings_id(copy, "torch")
    assert embed.embeddings_id(None, "torch").startswith("all-MiniLM-L6-v2@")

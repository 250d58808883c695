"""The ONNX Runtime embedding backends (issue 16): exported locally from the bundled model at first
use, cached, close to torch's vectors; refused with a clear message where the export does not
reproduce the model; their embeddings keyed apart from torch's."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labelaudit import embed
from labelaudit.errors import UsageError

TEXTS = [
    "I am still waiting on my card?",
    "What can I do if my card still hasn't arrived after 2 weeks?",
    "  my top up failed  ",
    "Can I get a refund for this?",
    "why was I charged a fee for an ATM withdrawal in another country, it is not fair at all",
    "x",
]


def test_unknown_backend_is_refused_with_the_choices(monkeypatch):
    monkeypatch.setenv(embed.BACKEND_ENV, "tensorrt")
    with pytest.raises(UsageError, match="onnx-int8"):
        embed.backend_name()


def test_each_backend_keys_its_own_embeddings(monkeypatch, tmp_path):
    monkeypatch.delenv(embed.BACKEND_ENV, raising=False)
    ids = {b: embed.embeddings_id(str(tmp_path), b) for b in embed.BACKENDS}
    # keyed by the folder's contents (tests/test_first_run_model_key.py), never its path
    assert ids["torch"] == f"local@{embed.model_fingerprint(tmp_path)}/l2"
    assert len(set(ids.values())) == 3 and ids["onnx-int8"].endswith("#onnx-int8")
    assert embed.embeddings_id(str(tmp_path)) == ids[embed.DEFAULT_CPU_BACKEND]


def test_a_model_the_export_cannot_reproduce_is_refused(tmp_path):
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "modules.json").write_text(
        json.dumps(
            [
                {
                    "idx": 0,
                    "name": "0",
                    "path": "",
                    "type": "sentence_transformers.models.Transformer",
                },
                {
                    "idx": 1,
                    "name": "1",
                    "path": "1_Pooling",
                    "type": "sentence_transformers.models.Pooling",
                },
            ]
        )
    )
    (tmp_path / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    )
    (tmp_path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128}))
    with pytest.raises(UsageError, match="mean pooling"):
        embed.onnx_model_path(str(tmp_path))
    (tmp_path / "modules.json").unlink()
    with pytest.raises(UsageError, match="sentence-transformers folder"):
        embed.onnx_model_path(str(tmp_path))


@pytest.mark.slow
def test_onnx_backends_match_torch_and_export_once(monkeypatch, tmp_path):
    monkeypatch.setenv(embed.ONNX_CACHE_ENV, str(tmp_path / "onnx"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ref = embed.embed_texts(TEXTS, backend="torch", device="cpu")
    fp32 = embed.embed_texts(TEXTS, backend="onnx")
    int8 = embed.embed_texts(TEXTS, backend="onnx-int8")
    assert fp32.shape == int8.shape == ref.shape and fp32.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    assert (fp32 * ref).sum(axis=1).min() > 0.9999  # same graph, same tokens
    assert (int8 * ref).sum(axis=1).mean() > 0.98  # int8 weights: close, not equal
    files = sorted((tmp_path / "onnx").rglob("*.onnx"))
    assert [f.name for f in files] == ["model-int8.onnx", "model.onnx"]
    mtimes = [f.stat().st_mtime_ns for f in files]
    embed._ENCODERS.clear()  # a new process: the cached export is read, not made again
    again = embed.embed_texts(TEXTS, backend="onnx-int8")
    np.testing.assert_array_equal(again, int8)
    assert [f.stat().st_mtime_ns for f in files] == mtimes

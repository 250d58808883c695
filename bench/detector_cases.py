"""Benchmark cases for the label-issue ranking (issue 12): texts, labels, planted or human-verified
errors, and optionally strong given probabilities. Detector outputs are cached per case in
``.labelaudit-bench/cases/`` (keyed by the case name and the detection VERSION), so the combiners can
be compared without rerunning the detectors.

Cases (every one has a truth vector except the SMS control):
- ``banking-{train,test}-{uniform,nearest}-{5,10}``: BANKING77 with planted flips, no probabilities
  (and ``banking-test-...-{2,15}``, the fresh cases: built once the combiner's rules were frozen);
  ``...+probs``: the same labels with strong given probabilities (5-fold out-of-fold logistic
  regression on TF-IDF word and character n-grams plus the sentence embeddings, fitted here on the
  noisy labels), the embedding detectors' outputs reused (they never read the given probabilities).
- ``...+cleanprobs`` (the held-out property: given probabilities clearly stronger than every
  detector trained on the embeddings): the same TF-IDF + embedding model, out of fold, but each fold's
  model is fitted on the *clean* labels of the other folds (the labels before the flips were planted).
  A proxy for a strong model trained on better data; still out-of-sample for every row, and it never
  sees a row's own label. Used on the BANKING77 nearest-intent flips (where the embedding detectors
  are weakest: AP 0.17 to 0.64) and on the uniform flips and SMS as checks.
- ``sms-flip-15+probs``: SMS spam with 15 % uniform flips (binary, skewed) and strong given
  probabilities: the properties of a strong-model sentiment set with ~15 % crowd-confirmed errors.
- ``<case>@<seed>`` (e.g. ``banking-test-nearest-5@3+probs``): the same case with the flips planted
  by another seed (``@0`` is the plain name); the multi-seed table of part 8 reads them.
- ``banking-{test,train}-clean`` (``+probs``): BANKING77 as published, no flip: the rows the detectors
  rank highest there are candidates for its natural label errors (the ceiling analysis).
- ``sms-control`` and ``sms-control+probs``: SMS spam as given (nearly clean): how many rows get flagged.
- ``20news``, ``mnist``, ``cifar10``: human-verified errors, probabilities only (computed in
  :mod:`bench.bench_detectors`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
BANKING = SHARED / "data" / "banking77"
SMS = SHARED / "data" / "sms_spam" / "sms_spam.csv"
BENCH_WS = ROOT / ".labelaudit-bench"
CASES = BENCH_WS / "cases"


@dataclass
class Case:
    name: str
    labels: np.ndarray  # int64 (N,), the (noisy) given labels
    truth: np.ndarray | None  # bool (N,): a known label error; None = unknown (control)
    probs: np.ndarray  # float64 (N, K): given, or the out-of-fold ones detection used
    probs_source: str
    scores: dict[str, np.ndarray]  # detector -> (N,) scores
    flags: dict[str, np.ndarray]  # detector -> (N,) bool
    details: dict  # detector -> details (only what the combiner reads)
    detect_seconds: float
    oof_accuracy: float | None
    #: detector -> (N,) int64 suggested labels (empty for cases cached before they were stored)
    suggestions: dict[str, np.ndarray] = field(default_factory=dict)


def plant_flips(
    labels: np.ndarray, emb: np.ndarray, n_classes: int, *, rate: float, kind: str, seed: int
):
    """Flip ``rate`` of the rows: to a uniformly random other class, or to the nearest-centroid other class."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(labels), int(round(rate * len(labels))), replace=False))
    noisy = labels.copy()
    if kind == "uniform":
        shift = rng.integers(1, n_classes, len(rows))
        noisy[rows] = (labels[rows] + shift) % n_classes
    else:
        centroids = np.stack([emb[labels == c].mean(axis=0) for c in range(n_classes)])
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
        sims = centroids @ centroids.T
        np.fill_diagonal(sims, -np.inf)
        noisy[rows] = sims.argmax(axis=1)[labels[rows]]
    return noisy, rows


def strong_probs(
    texts: list[str],
    emb: np.ndarray,
    labels: np.ndarray,
    k: int,
    *,
    seed: int = 0,
    fit_labels: np.ndarray | None = None,
):
    """5-fold out-of-fold probabilities of a stronger model than the embedding head: logistic
    regression on TF-IDF word 1-2-grams and character 2-5-grams plus the embeddings. ``fit_labels``:
    the labels each fold's model is fitted on (default ``labels``; the clean labels for
    ``+cleanprobs``); the folds are stratified on ``labels``."""
    fit_labels = labels if fit_labels is None else fit_labels
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(labels, minlength=k)
    folds = int(min(5, max(2, counts[counts > 0].min())))
    out = np.zeros((len(labels), k))
    skf = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for tr, te in skf.split(emb, labels):
        word = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)
        tr_texts = [texts[i] for i in tr]
        te_texts = [texts[i] for i in te]
        xtr = hstack(
            [word.fit_transform(tr_texts), char.fit_transform(tr_texts), csr_matrix(emb[tr] * 2)]
        ).tocsr()
        xte = hstack(
            [word.transform(te_texts), char.transform(te_texts), csr_matrix(emb[te] * 2)]
        ).tocsr()
        clf = LogisticRegression(C=20.0, max_iter=1000)
        clf.fit(xtr, fit_labels[tr])
        p = np.zeros((len(te), k))
        p[:, clf.classes_] = clf.predict_proba(xte)
        out[te] = p
    out = np.clip(out, 1e-6, None)
    return out / out.sum(axis=1, keepdims=True)


def _save(path: Path, case: Case) -> None:
    arrays = {
        "labels": case.labels,
        "probs": case.probs,
        "truth": case.truth if case.truth is not None else np.zeros(0, dtype=bool),
        "meta": np.array(
            [case.probs_source, str(case.detect_seconds), str(case.oof_accuracy)], dtype=object
        ).astype(str),
    }
    for n, s in case.scores.items():
        arrays[f"score__{n}"] = s
        arrays[f"flag__{n}"] = case.flags[n]
        if n in case.suggestions:
            arrays[f"sugg__{n}"] = case.suggestions[n]
    nm = case.details.get("confident_learning", {}).get("noise_matrix")
    if nm is not None:
        arrays["cl_noise_matrix"] = nm
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)


def _load(path: Path, name: str) -> Case:
    z = np.load(path, allow_pickle=False)
    scores = {k.split("__", 1)[1]: z[k] for k in z.files if k.startswith("score__")}
    flags = {k.split("__", 1)[1]: z[k] for k in z.files if k.startswith("flag__")}
    suggestions = {k.split("__", 1)[1]: z[k] for k in z.files if k.startswith("sugg__")}
    src, secs, oof = (str(v) for v in z["meta"])
    truth = z["truth"]
    details = {}
    if "cl_noise_matrix" in z.files:
        details["confident_learning"] = {"noise_matrix": z["cl_noise_matrix"]}
    return Case(
        name=name,
        labels=z["labels"],
        truth=truth if len(truth) else None,
        probs=z["probs"],
        probs_source=src,
        scores=scores,
        flags=flags,
        details=details,
        detect_seconds=float(secs),
        oof_accuracy=None if oof == "None" else float(oof),
        suggestions=suggestions,
    )


def _detect(ds, emb, truth, name: str, detectors: list[str] | None) -> Case:
    from labelaudit.detect import detect_label_issues
    from labelaudit.workspace import Workspace

    t = time.perf_counter()
    det = detect_label_issues(
        ds, emb, workspace=Workspace(BENCH_WS / "scratch"), seed=0, detectors=detectors
    )
    secs = time.perf_counter() - t
    d = det.details
    return Case(
        name=name,
        labels=ds.labels,
        truth=truth,
        probs=np.asarray(det.pred_probs),
        probs_source=d["probs_source"],
        scores={n: det.table[f"score_{n}"].to_numpy() for n in d["detectors"]},
        flags={n: np.asarray(d["flags"][n], dtype=bool) for n in d["detectors"]},
        details={
            n: {"noise_matrix": d["noise_matrix"]}
            for n in d["detectors"]
            if n == "confident_learning"
        },
        detect_seconds=secs,
        oof_accuracy=d["oof_accuracy"],
        suggestions={n: np.asarray(d["suggestions"][n], dtype=np.int64) for n in d["detectors"]},
    )


def _with_given(base: Case, ds, emb, probs: np.ndarray, name: str) -> Case:
    """``base``'s embedding detectors plus the probability detectors rerun on ``probs``."""
    from labelaudit.detect import run_available
    from labelaudit.detectors.base import DetectionContext

    ctx = DetectionContext(
        labels=base.labels, n_classes=probs.shape[1], pred_probs=probs, classes=list(ds.classes)
    )
    t = time.perf_counter()
    res, _ = run_available(ctx)
    secs = base.detect_seconds + time.perf_counter() - t
    scores, flags = dict(base.scores), dict(base.flags)
    suggestions = dict(base.suggestions)
    for n, r in res.items():
        scores[n], flags[n] = r.score, r.is_issue
        suggestions[n] = np.asarray(r.suggested_label, dtype=np.int64)
    return Case(
        name=name,
        labels=base.labels,
        truth=base.truth,
        probs=probs,
        probs_source="given",
        scores=scores,
        flags=flags,
        details={
            n: {"noise_matrix": r.details["noise_matrix"]}
            for n, r in res.items()
            if n == "confident_learning"
        },
        detect_seconds=secs,
        oof_accuracy=None,
        suggestions=suggestions,
    )


def _embedded(path: Path, **kw):
    from labelaudit.io import load_dataset
    from labelaudit.scanning import get_embeddings
    from labelaudit.workspace import Workspace

    ds = load_dataset(path, **kw)
    return ds, get_embeddings(ds, workspace=Workspace(BENCH_WS))


def case_names() -> list[str]:
    names = []
    for split in ("test", "train"):
        for kind in ("uniform", "nearest"):
            for rate in (5, 10):
                names += [f"banking-{split}-{kind}-{rate}", f"banking-{split}-{kind}-{rate}+probs"]
    # fresh cases: other flip rates, built after the similar-class rule was frozen
    fresh = [
        f"banking-test-{kind}-{rate}{given}"
        for rate in (2, 15)
        for kind in ("uniform", "nearest")
        for given in ("", "+probs")
    ]
    strong = [
        f"banking-test-{kind}-{rate}+cleanprobs"
        for kind in ("nearest", "uniform")
        for rate in (5, 10)
    ]
    sms = [
        "sms-flip-15",
        "sms-flip-15+probs",
        "sms-flip-15+cleanprobs",
        "sms-control",
        "sms-control+probs",
    ]
    # the splits without planted flips: what the detectors flag on BANKING77 as published
    clean = [f"banking-{split}-clean{g}" for split in ("test", "train") for g in ("", "+probs")]
    return names + fresh + strong + sms + clean


def is_built(name: str, *, version: str = "v1") -> bool:
    """Whether the case is in the cache (reading it then costs no detection)."""
    return (CASES / version / f"{name}.npz").exists()


def get_case(name: str, *, detectors: list[str] | None = None, version: str = "v1") -> Case:
    """The case, from the cache or computed (minutes for the BANKING77 train cases)."""
    path = CASES / version / f"{name}.npz"
    if path.exists():
        return _load(path, name)
    base_name, _, given = name.partition("+")
    if given:
        base = get_case(base_name, detectors=detectors, version=version)
        ds, emb = _source(base_name)
        clean = (
            ds.labels if given == "cleanprobs" else None
        )  # the source's labels, before the flips
        probs = strong_probs(ds.texts, emb, base.labels, ds.k, fit_labels=clean)
        case = _with_given(base, ds, emb, probs, name)
    else:
        ds, emb = _source(base_name)
        labels, truth = _noisy(base_name, ds, emb)
        case = _detect(ds.with_labels(labels), emb, truth, name, detectors)
    _save(path, case)
    return case


def split_seed(base_name: str) -> tuple[str, int]:
    """``"banking-test-nearest-5@3"`` -> (``"banking-test-nearest-5"``, 3); no ``@`` = seed 0."""
    stem, _, seed = base_name.partition("@")
    return stem, int(seed) if seed else 0


def seeded_name(name: str, seed: int) -> str:
    """The case ``name`` (with or without ``+given``) with its flips planted by ``seed``."""
    base, plus, given = name.partition("+")
    return f"{base}@{seed}{plus}{given}" if seed else name


def _source(base_name: str):
    base_name = split_seed(base_name)[0]
    if base_name.startswith("banking-"):
        split = base_name.split("-")[1]
        return _embedded(BANKING / f"{split}.csv")
    if base_name.startswith("sms-flip"):
        return _embedded(SMS, id_col="idx")
    return _embedded(SMS, id_col="idx")


def _noisy(base_name: str, ds, emb):
    base_name, seed = split_seed(base_name)
    if base_name.startswith("banking-") and base_name.endswith("-clean"):
        # the split as published: no planted flip (the ceiling analysis reads its natural errors)
        return ds.labels, np.zeros(ds.n, dtype=bool)
    if base_name.startswith("banking-"):
        _, _, kind, rate = base_name.split("-")
        noisy, rows = plant_flips(
            ds.labels,
            emb,
            ds.k,
            rate=int(rate) / 100,
            kind="uniform" if kind == "uniform" else "nearest-class",
            seed=seed,
        )
    elif base_name.startswith("sms-flip"):
        rate = int(base_name.rsplit("-", 1)[1]) / 100
        noisy, rows = plant_flips(ds.labels, emb, ds.k, rate=rate, kind="uniform", seed=seed)
    else:
        return ds.labels, None
    truth = np.zeros(ds.n, dtype=bool)
    truth[rows] = True
    return noisy, truth


if __name__ == "__main__":
    import sys

    for n in sys.argv[1:] or case_names():
        t = time.perf_counter()
        c = get_case(n)
        print(
            f"{n}: {len(c.labels)} rows, detectors {sorted(c.scores)}, {time.perf_counter() - t:.1f} s",
            flush=True,
        )

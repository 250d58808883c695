"""Suggestions refitted with the reviewed labels fixed (issue 13): the out-of-fold model learns
what reviewers decided about similar items, so its suggestion for the next item improves."""

from __future__ import annotations

import numpy as np
import pandas as pd

from labelaudit.dataset import Dataset
from labelaudit.detectors.oof import out_of_fold_probs
from labelaudit.review import adaptive
from labelaudit.review.store import ReviewStore


def systematic_world(seed: int = 0):
    """Three classes in well-separated blobs; one tight sub-cluster of ``a`` (40 rows) was mostly
    mislabelled ``b`` by one annotator (30 of its 40 rows). The scan's out-of-fold model, trained on
    those labels, learns the sub-cluster as ``b`` and so suggests ``b`` for the wrong labels (no
    change). Returns ``(dataset, embeddings, the flipped rows)``."""
    rng = np.random.default_rng(seed)
    dim, per = 8, 60
    centres = rng.normal(0, 1, (3, dim)) * 4
    sub_centre = centres[0] + rng.normal(0, 1, dim) * 2.0
    emb = [centres[c] + rng.normal(0, 1, (per, dim)) for c in range(3)]
    emb.append(sub_centre + rng.normal(0, 0.3, (40, dim)))
    x = np.vstack(emb).astype(np.float32)
    labels = np.repeat([0, 1, 2, 0], [per, per, per, 40])
    flipped = 3 * per + rng.permutation(40)[:30]
    given = labels.copy()
    given[flipped] = 1
    classes = ["a", "b", "c"]
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(len(x))],
            "text": [f"text {i}" for i in range(len(x))],
            "label": np.asarray(classes, dtype=object)[given],
            "split": "train",
        }
    )
    return Dataset(frame=frame, classes=classes, source="synthetic"), x, np.sort(flipped)


def test_refit_with_reviewed_labels_fixes_the_suggestion_for_later_items(tmp_path):
    ds, emb, flipped = systematic_world()
    before, _ = out_of_fold_probs(emb, ds.labels, n_classes=ds.k, seed=0, n_splits=3)
    later, reviewed = flipped[15:], flipped[:15]
    # The scan's model suggests the wrong label back for most of the later flipped rows.
    assert (before[later].argmax(axis=1) == 0).mean() < 0.35
    store = ReviewStore(f"sqlite:///{tmp_path / 'review.sqlite'}")
    try:
        for row in reviewed:  # reviewers restore "a" on the first 15 flipped rows
            store.record(
                dataset_version=ds.content_hash,
                item_id=str(ds.ids[row]),
                reviewer="ana",
                action="change",
                old_label="b",
                new_label="a",
                shown={"queue": "ranking"},
                seen_decision_id=None,
            )
        log = store.log(ds.content_hash)
    finally:
        store.close()
    refit = adaptive.refit_suggestions(ds, emb, log, seed=0, n_splits=3)
    after = refit.probs[later].argmax(axis=1)
    # With the reviewed labels fixed the sub-cluster is mostly "a" again: the refit suggests it
    # for the later flipped rows that nobody has reviewed yet.
    assert (after == 0).mean() > 0.6
    # Rows that were never wrong keep their suggestion.
    other = np.setdiff1d(np.arange(3 * 60), flipped)
    assert (refit.probs[other].argmax(axis=1) == ds.labels[other]).mean() > 0.95
    assert refit.n_decisions == 15

"""The simulated raters: seeded, marked as simulated, confusing close classes, and the committed file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from labelaudit.agreement import Ratings, analyse_annotations
from labelaudit.simulate_raters import (
    SIMULATED_PREFIX,
    class_closeness,
    is_simulated,
    simulate_ratings,
)
from tests.conftest import SAMPLE


def _train():
    train = pd.read_csv(SAMPLE / "train.csv", dtype=str, keep_default_na=False)
    classes = list(json.loads((SAMPLE / "categories.json").read_text(encoding="utf-8")))
    labels = train["category"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    return train["text"].tolist(), labels, classes


def test_committed_file_is_what_the_documented_generator_writes():
    texts, labels, classes = _train()
    fresh, profiles = simulate_ratings(texts, labels, classes, n_items=1500, seed=0)
    committed = pd.read_csv(SAMPLE / "annotations_simulated.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(fresh.astype(str), committed)
    assert (SAMPLE / "annotations_simulated.csv").stat().st_size < 2 * 2**20
    assert committed["item_id"].astype(int).max() <= 10002  # train rows only
    assert committed.groupby("item_id").size().between(3, 5).all()
    assert is_simulated(committed["annotator_id"].unique())
    assert [p.kind for p in profiles].count("honest") == 10


def test_seeded_and_errors_go_to_close_classes():
    texts, labels, classes = _train()
    a, _ = simulate_ratings(texts, labels, classes, n_items=300, seed=5)
    b, _ = simulate_ratings(texts, labels, classes, n_items=300, seed=5)
    c, _ = simulate_ratings(texts, labels, classes, n_items=300, seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    closeness = class_closeness(texts, labels, len(classes))
    index = {cl: i for i, cl in enumerate(classes)}
    truth = labels[a["item_id"].astype(int).to_numpy()]
    said = a["label"].map(index).to_numpy()
    honest_wrong = a["annotator_id"].str.contains("rater").to_numpy() & (said != truth)
    # The honest raters' wrong labels are among the 5 closest classes far more often than chance (5/76).
    rank = (
        closeness[truth[honest_wrong]] > closeness[truth[honest_wrong], said[honest_wrong]][:, None]
    ).sum(axis=1)
    assert np.mean(rank < 5) > 0.8


def test_mace_recovers_the_simulated_spammers_and_rater_order(sample_dataset):
    report = analyse_annotations(Ratings.from_dataset(sample_dataset), method="mace", seed=0)
    ann = report.annotators.set_index("annotator_id")
    assert set(ann.index[ann["likely_spammer"]]) == {
        f"{SIMULATED_PREFIX}spammer1",
        f"{SIMULATED_PREFIX}spammer2",
    }
    honest = ann.loc[
        [f"{SIMULATED_PREFIX}rater{r:02d}" for r in range(1, 11)], "competence"
    ].to_numpy()
    assert np.corrcoef(honest, np.arange(10))[0, 1] < -0.9  # accuracy falls from rater01 to rater10

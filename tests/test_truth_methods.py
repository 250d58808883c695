"""Truth-inference methods are registered like detectors (labelaudit/agreement/methods.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelaudit.agreement import METHODS, Ratings, infer_truth, methods
from labelaudit.agreement.truth import TruthResult
from labelaudit.errors import UsageError

RATINGS = Ratings.from_frame(
    pd.DataFrame(
        {
            "item_id": ["a", "a", "a", "b", "b", "b"],
            "annotator_id": ["x", "y", "z", "x", "y", "z"],
            "label": ["p", "p", "q", "q", "q", "q"],
        }
    )
)


def test_the_built_in_methods_are_registered_in_order():
    assert list(METHODS) == ["auto", "mace", "ds", "mv", "crowdlab"]
    assert METHODS["ds"] == "Dawid–Skene"
    assert methods.all_truth_methods()["crowdlab"].needs_probs


def test_infer_truth_runs_the_registered_method():
    res = infer_truth(RATINGS, method="mv")
    assert res.method == "mv" and res.consensus.tolist() == [0, 1]


def test_unknown_method_and_missing_probs_are_usage_errors():
    with pytest.raises(
        UsageError, match="unknown method 'nope'; use one of auto, mace, ds, mv, crowdlab"
    ):
        infer_truth(RATINGS, method="nope")
    with pytest.raises(UsageError, match="crowdlab needs predicted probabilities"):
        infer_truth(RATINGS, method="crowdlab")


@pytest.fixture
def first_label_method():
    @methods.register_truth_method("first", title="first rater wins", order=99)
    def first(ratings, inputs):
        mv = infer_truth(ratings, method="mv")
        return TruthResult(
            method="first",
            posterior=mv.posterior,
            consensus=np.zeros(len(mv.consensus), dtype=np.int64),
        )

    yield
    methods._REGISTRY.pop("first")


def test_a_new_method_is_one_registration(first_label_method):
    assert METHODS["first"] == "first rater wins" and list(METHODS)[-1] == "first"
    assert infer_truth(RATINGS, method="first").consensus.tolist() == [0, 0]

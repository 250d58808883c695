"""check_array checks a large companion array in blocks of rows (no float64 copy of the whole
array): the same verdicts and the same rows named as a check of the whole array at once."""

from __future__ import annotations

import numpy as np
import pytest

from labelaudit.errors import Report
from labelaudit.io import checks
from labelaudit.io.checks import ArraySpec, check_array

SPEC = ArraySpec("embeddings", (1000, None), ("N", "D"), ("rows", "dimensions"))


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(checks, "CHECK_BLOCK_ELEMENTS", 7 * 16)  # 7 rows of 16 per block


def test_nan_and_infinity_in_later_blocks_are_named_by_their_rows():
    x = np.ones((1000, 16), dtype=np.float32)
    x[500, 3], x[998, 0] = np.nan, np.inf
    rep = Report()
    assert check_array(x, SPEC, "e.npy", rep) is None
    assert "NaN or infinite values in rows 501, 999" in rep.errors[0].found


def test_a_value_beyond_the_bound_in_a_later_block_is_named_with_its_size():
    x = np.ones((1000, 16), dtype=np.float32)
    x[777, 5] = -3e20
    rep = Report()
    assert check_array(x, SPEC, "e.npy", rep) is None
    assert rep.errors[0].found == "values as large as 3e+20 in row 778"


def test_a_good_float32_array_is_returned_without_a_copy():
    x = np.random.default_rng(0).standard_normal((1000, 16)).astype(np.float32)
    out = check_array(x, SPEC, "e.npy", Report())
    assert out is not None and np.shares_memory(out, x)

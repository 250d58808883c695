"""How problems name rows and values: 1-based data rows, short lists, ids as users wrote them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: Rows listed by name in one message before the rest are counted.
MAX_ROWS_LISTED = 5


def rows_of(mask: pd.Series | np.ndarray) -> list[int]:
    """1-based data row numbers where ``mask`` is true (the header is not counted).

    Example:
        >>> rows_of(np.array([False, True, True]))
        [2, 3]
    """
    return (np.flatnonzero(np.asarray(mask)) + 1).tolist()


def rows_text(rows: list[int]) -> str:
    """'row 4', or 'rows 2, 5, 9, 11, 12 and 40 more' (1-based data rows).

    Example:
        >>> rows_text([4])
        'row 4'
        >>> rows_text(list(range(1, 9)))
        'rows 1, 2, 3, 4, 5 and 3 more'
    """
    shown = ", ".join(str(r) for r in rows[:MAX_ROWS_LISTED])
    more = f" and {len(rows) - MAX_ROWS_LISTED} more" if len(rows) > MAX_ROWS_LISTED else ""
    return f"{'row' if len(rows) == 1 else 'rows'} {shown}{more}"


def scalar_str(v: Any) -> str:
    """A cell as text; whole floats lose their ``.0`` (ids read from JSON or Parquet as numbers).

    Example:
        >>> scalar_str(7.0), scalar_str(7.5), scalar_str("007")
        ('7', '7.5', '007')
    """
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)

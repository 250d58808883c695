"""Apache Parquet tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from labelaudit.errors import DataError, Problem
from labelaudit.io.formats import register_format


@register_format("Parquet", suffixes=(".parquet", ".pq"), description="Apache Parquet")
def read_parquet(path: Path, encoding: str | None) -> pd.DataFrame:
    """Parquet stores its own types; ``encoding`` does not apply."""
    try:
        return pd.read_parquet(path)
    except Exception as e:  # pyarrow raises many types for a corrupt file
        raise DataError(
            Problem(
                f"cannot read it as Parquet ({type(e).__name__}: {e})",
                "a valid Parquet file",
                file=path.name,
            )
        ) from None

"""Apache Parquet tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from labelaudit.errors import DataError, Problem, Report
from labelaudit.io.checks import check_header, check_row_count
from labelaudit.io.formats import register_format


@register_format("Parquet", suffixes=(".parquet", ".pq"), description="Apache Parquet")
def read_parquet(path: Path, encoding: str | None) -> pd.DataFrame:
    """Parquet stores its own types; ``encoding`` does not apply. The row count and the columns
    come from the file's footer, so a file past a bound is refused before its data is read."""
    try:
        import pyarrow.parquet as pq

        footer = pq.ParquetFile(path)
        rep = Report()
        if not check_header(list(footer.schema_arrow.names), path.name, rep) or not check_row_count(
            footer.metadata.num_rows, path.name, rep
        ):
            rep.raise_if_errors()
        return pd.read_parquet(path)
    except DataError:
        raise
    except Exception as e:  # pyarrow raises many types for a corrupt file
        raise DataError(
            Problem(
                f"cannot read it as Parquet ({type(e).__name__}: {e})",
                "a valid Parquet file",
                file=path.name,
            )
        ) from None

"""Reading and validating datasets and their companions.

Validation happens here, once. Everything that goes wrong becomes a
:class:`~labelaudit.errors.Problem` naming file, row and column; all problems of a load are
collected and raised together as one
:class:`~labelaudit.errors.DataError`, so a user fixes a file in one pass.

One module per job:

- :mod:`~labelaudit.io.loader`: :func:`load_dataset` and :func:`validate`, the public entry points;
- :mod:`~labelaudit.io.memory`: refuse a file that cannot fit in memory before reading it;
- :mod:`~labelaudit.io.tables`: :func:`read_table`, the checks every table format shares;
- :mod:`~labelaudit.io.formats`: one reader per format, registered by suffix (a new format is a
  new file there);
- :mod:`~labelaudit.io.columns`: which column is the text, the label, the id, the split;
- :mod:`~labelaudit.io.canonical`: the canonical frame and the class list, validated;
- :mod:`~labelaudit.io.folder`: a folder of split files, its class list and its companions;
- :mod:`~labelaudit.io.companions`: one module per companion input, registered with its CLI flag,
  folder file names, upload types and README line (a new companion is a new file there).
"""

from __future__ import annotations

from labelaudit.io.columns import ID_NAMES, LABEL_NAMES, PROB_PREFIXES, SPLIT_NAMES, TEXT_NAMES
from labelaudit.io.companions import Companion, all_companions, companion, register_companion
from labelaudit.io.companions.probs import PROB_SUM_TOLERANCE
from labelaudit.io.folder import folder_companion_role, folder_companions, folder_prefixes
from labelaudit.io.formats import TableFormat, all_formats, register_format, table_suffixes
from labelaudit.io.loader import load_dataset, validate
from labelaudit.io.memory import MEMORY_FACTOR, available_memory_bytes
from labelaudit.io.rows import MAX_ROWS_LISTED
from labelaudit.io.tables import read_table

__all__ = [
    "ID_NAMES",
    "LABEL_NAMES",
    "MAX_ROWS_LISTED",
    "MEMORY_FACTOR",
    "PROB_PREFIXES",
    "PROB_SUM_TOLERANCE",
    "SPLIT_NAMES",
    "TEXT_NAMES",
    "Companion",
    "TableFormat",
    "all_companions",
    "all_formats",
    "available_memory_bytes",
    "companion",
    "folder_companion_role",
    "folder_companions",
    "folder_prefixes",
    "load_dataset",
    "read_table",
    "register_companion",
    "register_format",
    "table_suffixes",
    "validate",
]

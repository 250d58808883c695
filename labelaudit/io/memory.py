"""The memory guard: refuse a file before reading it when it cannot fit in memory."""

from __future__ import annotations

import os
from pathlib import Path

from labelaudit.errors import Report
from labelaudit.io.checks import check_file_bytes

#: Peak memory of loading a CSV/TSV, per byte on disk, measured by bench/bench_memory.py
#: (bench/results/memory.md: about 4x for 100-200 MB files), with headroom.
MEMORY_FACTOR = 5.0
#: Per-suffix factors where a format costs more than a CSV (JSON rows pass through Python dicts).
FORMAT_FACTORS = {".jsonl": 12.0, ".ndjson": 12.0, ".json": 12.0}
#: Fixed cost of a load whatever the size (a small file peaks at several times its size).
MEMORY_ALLOWANCE_BYTES = 256 * 2**20
#: Assumed when neither /proc/meminfo nor a cgroup limit can be read.
FALLBACK_MEMORY_BYTES = 8 * 2**30


def available_memory_bytes() -> int:
    """Memory this process can still use, in bytes: MemAvailable, capped by a cgroup limit if any.

    ``LABELAUDIT_MEMORY_LIMIT_BYTES`` overrides the probe (tests, containers that hide their limit).

    Example:
        >>> available_memory_bytes() > 0
        True
    """
    override = os.environ.get("LABELAUDIT_MEMORY_LIMIT_BYTES")
    if override:
        return int(override)
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    for cg in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(cg).read_text().strip()
            if raw.isdigit():
                avail = min(avail or int(raw), int(raw))
        except OSError:
            pass
    return avail if avail is not None else FALLBACK_MEMORY_BYTES


def memory_needed(size: int, suffix: str) -> float:
    """Bytes of memory that loading a ``suffix`` file of ``size`` bytes is expected to peak at.

    Example:
        >>> memory_needed(100 * 2**20, ".csv") / 2**20
        756.0
    """
    return size * FORMAT_FACTORS.get(suffix.lower(), MEMORY_FACTOR) + MEMORY_ALLOWANCE_BYTES


def check_size(path: Path, rep: Report) -> bool:
    """True when ``path`` is non-empty and small enough to read; otherwise an error in ``rep``."""
    size = path.stat().st_size
    if size == 0:
        rep.error(
            "the file is empty (0 bytes)",
            "a header row and at least one data row",
            file=path.name,
            fix="check that the export finished writing",
        )
        return False
    need = memory_needed(size, path.suffix)
    avail = available_memory_bytes()
    if need > avail:
        rep.error(
            f"the file is {size / 2**30:.1f} GiB; reading it needs about {need / 2**30:.1f} GiB of "
            "memory "
            f"but only {avail / 2**30:.1f} GiB is available",
            "a file that fits in memory",
            file=path.name,
            fix="split the file, sample it, or keep only the id, text and label columns",
        )
        return False
    return check_file_bytes(size, path.name, rep)

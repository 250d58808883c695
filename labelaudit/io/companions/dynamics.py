"""The ``dynamics`` companion: per-epoch logits, float32 of shape (E, N, K), E >= 2.

From an array, an ``.npy``, or allenai/cartography's ``dynamics_epoch_<e>.jsonl`` files (a folder
or a glob), whose rows may come in any order: they are placed by their ``guid``.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

import numpy as np

from labelaudit.dataset import Dataset
from labelaudit.errors import Report
from labelaudit.io.checks import ArraySpec, check_array
from labelaudit.io.companions import register_companion
from labelaudit.io.companions.arrays import load_npy
from labelaudit.io.rows import rows_of, rows_text, scalar_str
from labelaudit.io.tables import read_table

MIN_EPOCHS = 2


def read_dynamics(dyn: str | Path | np.ndarray, ds: Dataset, rep: Report) -> np.ndarray | None:
    """Logits of shape (E, N, K) in dataset row order; None with an error in ``rep`` otherwise."""
    arr: np.ndarray | None
    if isinstance(dyn, np.ndarray):
        arr, file = dyn, "<dynamics>"
    else:
        p = Path(dyn)
        file = p.name
        arr = load_npy(p, rep) if p.suffix.lower() == ".npy" else read_cartography(p, ds, rep)
        if arr is None:
            return None
    if arr.ndim == 3 and arr.shape[0] < MIN_EPOCHS and arr.shape[1:] == (ds.n, ds.k):
        rep.error(f"{arr.shape[0]} epoch(s) of logits", f"at least {MIN_EPOCHS} epochs", file=file)
        return None
    return check_array(arr, dynamics_spec(ds.n, ds.k), file, rep)


def dynamics_spec(n: int, k: int) -> ArraySpec:
    """Logits of E >= 2 epochs for every row and class; finite, of sane magnitude."""
    return ArraySpec(
        "training dynamics (logits)", (None, n, k), ("E", "N", "K"), ("epochs", "rows", "classes")
    )


def read_cartography(p: Path, ds: Dataset, rep: Report) -> np.ndarray | None:
    """allenai/cartography's training_dynamics/dynamics_epoch_{e}.jsonl: guid, logits_epoch_{e},
    gold."""
    pattern = str(p / "dynamics_epoch_*.jsonl") if p.is_dir() else str(p)
    files = sorted(
        glob.glob(pattern), key=lambda f: int(re.findall(r"(\d+)", Path(f).stem)[-1] or 0)
    )
    if not files:
        rep.error(
            f"no dynamics_epoch_*.jsonl files at {p}",
            "an (E, N, K) .npy or cartography dynamics files",
            file=p.name,
        )
        return None
    out = np.full((len(files), ds.n, ds.k), np.nan, dtype=np.float32)
    for e, f in enumerate(files):
        tab = read_table(f, what="training dynamics", nested=(r"logits_epoch_\d+",))
        key = next((c for c in tab.columns if c.startswith("logits_epoch")), None)
        if "guid" not in tab.columns or key is None:
            rep.error(
                f"columns {list(tab.columns)}", "guid and logits_epoch_<e>", file=Path(f).name
            )
            return None
        rows = tab["guid"].map(lambda g: ds.id_to_row.get(scalar_str(g)))
        if rows.isna().any():
            bad = rows_of(rows.isna())
            rep.error(
                f"guids not in the dataset in {rows_text(bad)}",
                "guids that are dataset ids",
                file=Path(f).name,
                column="guid",
            )
            return None
        try:
            logits = np.array(tab[key].tolist(), dtype=np.float32)
        except (ValueError, TypeError):
            rep.error(
                "logits that are not lists of numbers of one length",
                f"{ds.k} numbers per row",
                file=Path(f).name,
                column=key,
            )
            return None
        if logits.ndim != 2 or logits.shape[1] != ds.k:
            rep.error(
                f"logits of shape {logits.shape}",
                f"{ds.k} logits per row",
                file=Path(f).name,
                column=key,
            )
            return None
        out[e, rows.astype(int).to_numpy()] = logits
    if np.isnan(out).any():
        missing = int(np.isnan(out[:, :, 0]).any(axis=0).sum())
        rep.error(
            f"{missing} dataset rows have no logits in some epoch",
            "every row in every epoch file",
            file=p.name,
        )
        return None
    return out


@register_companion(
    "dynamics",
    help="per-epoch logits: (E, N, K) .npy, or a folder of cartography dynamics_epoch_*.jsonl",
    doc="per-epoch logits, (E, N, K) `.npy`, or a folder of allenai/cartography "
    "`dynamics_epoch_*.jsonl`",
    folder_prefixes=("dynamics",),
    upload_label="Per-epoch logits (E x N x K)",
    upload_types=("npy",),
    stored=(("dynamics", "npy"),),
    order=30,
)
def dynamics_companion(source: str | Path | np.ndarray, ds: Dataset, rep: Report) -> None:
    ds.dynamics = read_dynamics(source, ds, rep)

"""Write sample_data/banking77/annotations_simulated.csv: simulated multi-rater labels (seeded).

Usage: .venv/bin/python scripts/make_simulated_annotations.py [--seed 0] [--items 1500]

The labels are SIMULATED (see labelaudit/simulate_raters.py for the generator): 1,500 BANKING77
train items, 3–5 raters each from a pool of 10 honest raters (accuracy 0.95 … 0.65) who confuse
semantically close intents, and 2 spammers. Item ids are the dataset ids of the bundled sample:
the row numbers "0".."10002" of train.csv (the train split loads first).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from labelaudit.csvfile import write_csv
from labelaudit.simulate_raters import simulate_ratings

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "banking77"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--items", type=int, default=1500)
    ap.add_argument("--out", default=str(SAMPLE / "annotations_simulated.csv"))
    args = ap.parse_args()
    train = pd.read_csv(SAMPLE / "train.csv", dtype=str, keep_default_na=False)
    classes = list(json.loads((SAMPLE / "categories.json").read_text(encoding="utf-8")))
    index = {c: i for i, c in enumerate(classes)}
    labels = train["category"].map(index).to_numpy()
    ratings, profiles = simulate_ratings(
        train["text"].tolist(), labels, classes, n_items=args.items, seed=args.seed
    )
    write_csv(ratings, args.out)
    print(
        f"wrote {len(ratings):,} simulated ratings of {ratings['item_id'].nunique():,} items by "
        f"{ratings['annotator_id'].nunique()} simulated annotators to {args.out}"
    )
    for p in profiles:
        print(
            f"  {p.annotator_id}: {p.kind}"
            + (f", accuracy {p.accuracy:.2f}" if p.kind == "honest" else "")
        )


if __name__ == "__main__":
    main()

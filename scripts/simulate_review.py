"""Demo data for the ROI page: plant seeded label flips in the sample, scan, replay a reviewer.

Usage: .venv/bin/python scripts/simulate_review.py [--workspace DIR] [--rate 0.05] [--items 500] [--seed 0]
Everything it does is described in labelaudit/simulate_review.py and docs/roi.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labelaudit.simulate_review import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())

"""Write examples/quickstart.ipynb (outputs cleared). Run after editing the cells below:

    .venv/bin/python examples/make_quickstart.py

The notebook is generated so its cells stay reviewable as plain Python in this file;
tests/test_notebook_quickstart.py executes it end to end.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

CELLS: list[tuple[str, str]] = [
    (
        "md",
        """# labelaudit quickstart: find wrong labels from Python

This notebook walks through the library on the bundled BANKING77 sample (online-banking queries,
77 intents; PolyAI, Casanueva et al. 2020, CC BY 4.0):

1. load and validate the sample,
2. scan a subset: embeddings, a 2-D map, clusters and every label-issue detector,
3. look at the top label issues,
4. measure agreement between the sample's simulated raters,
5. ask which training rows drive one suspicious row (influence),
6. open the dashboard on the same data, then stop it.

Everything runs on CPU and offline. The first scan is the slow part (embedding the texts,
compiling and running UMAP, training the detectors' models); every result is cached in the
workspace folder, so running the notebook again skips all of it.""",
    ),
    (
        "code",
        """import os
from pathlib import Path

import numpy as np
import pandas as pd

import labelaudit as la

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the embedding model is bundled: never download
# The repository root (this notebook lives in examples/).
ROOT = Path.cwd() if (Path.cwd() / "sample_data").exists() else Path.cwd().parent
SAMPLE = ROOT / "sample_data" / "banking77"
WORKSPACE = la.Workspace(os.environ.get("LABELAUDIT_WORKSPACE", ROOT / ".labelaudit"))
# How many training rows to scan; 2,000 keeps the first run near a minute. Use None for all 13,083.
N_ROWS = int(os.environ.get("QUICKSTART_ROWS", "2000"))
pd.set_option("display.max_colwidth", 80)
WORKSPACE""",
    ),
    (
        "md",
        """## 1. Load and validate

`load_dataset` reads a file, a folder of split files (`train.csv`, `test.csv`) or a DataFrame, maps
the columns (detected by name unless given) and validates everything at once. Companion files in
the folder are picked up by name: here `annotations_simulated.csv`, labels from 12 simulated raters.
Bad input raises `DataError` listing every problem with file, row and column; `la.validate` returns
the problems instead.""",
    ),
    (
        "code",
        """ds = la.load_dataset(SAMPLE)
print(f"{ds.n:,} rows, {ds.k} classes, splits {ds.splits}")
ds.companions()""",
    ),
    (
        "code",
        """# What a problem looks like: an empty text and a missing label.
bad = pd.DataFrame({"text": ["card arrived?", "", "top up failed"], "label": ["card_arrival", "top_up_failed", None]})
_, problems = la.validate(bad)
for p in problems:
    print(p)""",
    ),
    (
        "md",
        """## 2. Scan a subset

To keep this quick we scan a seeded random sample of `N_ROWS` rows of the **train** split (not the
first rows: the file is sorted by intent). `scan` embeds the texts with the bundled
all-MiniLM-L6-v2, projects them to 2-D with UMAP, clusters them, and runs every label-issue
detector whose inputs exist. Probabilities are out-of-fold (5-fold logistic regression on the
embeddings) because the sample brings none of its own. `la.list_detectors()` lists the detectors.""",
    ),
    (
        "code",
        """rng = np.random.default_rng(0)
train_rows = np.flatnonzero(ds.split_mask("train"))
chosen = train_rows if N_ROWS is None or N_ROWS >= len(train_rows) else rng.choice(train_rows, N_ROWS, replace=False)
keep = np.zeros(ds.n, dtype=bool)
keep[chosen] = True
sub = ds.subset(keep)
print(f"scanning {sub.n:,} of {ds.n:,} rows")

res = la.scan(sub, workspace=WORKSPACE, seed=0)
print({step: f"{seconds:.1f} s" for step, seconds in res.timings.items()})
print(f"{int(res.table['is_label_issue'].sum()):,} rows flagged for review; "
      f"out-of-fold accuracy {res.detection.details.get('oof_accuracy') or float('nan'):.3f}")""",
    ),
    ("code", """la.list_detectors()[["name", "requires", "description"]]"""),
    (
        "md",
        """## 3. The top label issues

`res.table` has one row per item: the map coordinates, the cluster, the ensemble's
`label_issue_score` in [0, 1] (higher = more likely wrong), `is_label_issue`, the
`suggested_label` and one `score_<detector>` column per detector.""",
    ),
    (
        "code",
        """issues = (res.table.merge(sub.frame[["id", "text"]], on="id")
          .nlargest(10, "label_issue_score")
          [["id", "text", "given_label", "suggested_label", "label_issue_score", "n_flags"]])
issues""",
    ),
    (
        "code",
        """# Where the suspected errors sit on the map (a Plotly figure; hover shows the text, escaped).
import html

import plotly.express as px

shown = res.table.merge(sub.frame[["id", "text"]], on="id")
shown["hover"] = shown["text"].map(html.escape)
fig = px.scatter(shown, x="x", y="y", color="is_label_issue", hover_name="hover",
                 hover_data={"given_label": True, "suggested_label": True, "x": False, "y": False},
                 opacity=0.7, title="Scanned rows; flagged ones in colour")
fig.update_traces(marker={"size": 5})
fig""",
    ),
    (
        "md",
        """## 4. Agreement between raters

The sample's `annotations_simulated.csv` holds labels from 12 simulated raters on 1,500 items
(two of them spammers), 3 to 5 raters per item. `rater_agreement` gives chance-corrected
agreement (Krippendorff's alpha, Randolph's kappa, Cohen's kappa per pair of raters; Fleiss' kappa
when every item has the same number of raters), a consensus label per item (MACE by default; also
majority vote and Dawid–Skene) and each rater's estimated competence.""",
    ),
    (
        "code",
        """agreement = la.rater_agreement(ds, method="mace", seed=0)
print("\\n".join(agreement.summary_lines()))""",
    ),
    (
        "code",
        """agreement.annotators.sort_values("competence")[["annotator_id", "competence", "n_labels", "likely_spammer"]]""",
    ),
    (
        "code",
        """# Items where the raters' consensus disagrees with the given label: candidates for review.
consensus = agreement.items.merge(ds.frame[["id", "text", "label"]], left_on="item_id", right_on="id")
disputed = consensus[consensus["consensus_label"] != consensus["label"]]
print(f"{len(disputed):,} of {len(consensus):,} rated items: consensus differs from the given label")
disputed.nlargest(5, "consensus_confidence")[["item_id", "text", "label", "consensus_label", "consensus_confidence"]]""",
    ),
    (
        "md",
        """## 5. Influence: which training rows drive a suspicious row?

For the top flagged row, `influence_scores` ranks every training row by its influence on that
row's loss under an L2-regularised softmax head on the embeddings (Koh & Liang 2017; exact
Hessian solves). Positive = helpful (removing the row would raise the query's loss), negative =
harmful. Rows that help a wrongly labelled row fit are often mislabelled the same way.""",
    ),
    (
        "code",
        """query = issues["id"].iloc[0]
print("query:", sub.frame.loc[sub.id_to_row[query], "text"], "| given label:", sub.frame.loc[sub.id_to_row[query], "label"])
influence = la.influence_scores(sub, query, embeddings=res.embeddings, workspace=WORKSPACE)
others = influence[influence["train_id"] != query]  # the row itself is always its own top helper
pd.concat([others.head(5).assign(direction="helpful"), others.tail(5).assign(direction="harmful")])""",
    ),
    (
        "md",
        """Training dynamics tell a similar story per row: `la.training_dynamics` returns the data-map
coordinates (Swayamdipta et al. 2020), forgetting events (Toneva et al. 2019) and the area under
the margin (Pleiss et al. 2020) for every row.""",
    ),
    (
        "code",
        """dynamics = la.training_dynamics(sub, embeddings=res.embeddings, workspace=WORKSPACE)
dynamics["region"].value_counts()""",
    ),
    (
        "md",
        """## 6. Open the dashboard

`show` stores the data in the workspace and serves the dashboard in the background on a free
local port (reusing a running one of this kernel for the same workspace). The object renders
as an embedded frame; `dash.url` opens it in a browser tab, `dash.stop()` ends the server.
`la.show(df, text="...", label="...")` works the same on any DataFrame.""",
    ),
    (
        "code",
        """dash = la.show(sub, workspace=WORKSPACE)
dash""",
    ),
    (
        "code",
        """print(dash.url)
dash.stop()
dash""",
    ),
]


def build() -> nbformat.NotebookNode:
    cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in CELLS]
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i:02d}"  # stable ids: regenerating does not churn the diff
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def main() -> None:
    nb = build()
    nbformat.validate(nb)
    out = HERE / "quickstart.ipynb"
    nbformat.write(nb, out)
    print(f"wrote {out} ({len(nb.cells)} cells)")


if __name__ == "__main__":
    main()

"""Every session-state key the app uses, named once, initialised in one place."""

from __future__ import annotations

import os

import streamlit as st

#: Content hash of the current dataset (stored in the workspace); absent until one is loaded.
DATASET_HASH = "dataset_hash"
#: URL query parameter that opens a stored dataset (``?dataset=<content hash>``); labelaudit.show() uses it.
DATASET_QUERY_PARAM = "dataset"
#: Absolute path of the workspace folder.
WORKSPACE = "workspace"
#: Problems of the last failed load, as strings, shown on the Data page.
LOAD_PROBLEMS = "load_problems"
#: Row ids the user selected on the map / a table (list[str]); feeds tables and the review queue.
SELECTION = "selection"
#: Reviewer name for this session.
REVIEWER = "reviewer"
#: The review queue: ordered list of row ids, and where it came from.
QUEUE = "review_queue"
QUEUE_SOURCE = "review_queue_source"
#: Review page: the item on screen ({item_id, seen: its latest decision id at first sight, shown, suggested}),
#: ids skipped this session, an item forced back on screen (after a conflict or an undo), this session's
#: last decision ({item_id, decision_id}) for undo, the outcome of the last action, a bulk decision awaiting
#: confirmation, and whether decided items stay in the queue.
REVIEW_SHOWN = "review_shown"
REVIEW_SKIPPED = "review_skipped"
REVIEW_FORCE = "review_force"
REVIEW_LAST = "review_last"
REVIEW_FLASH = "review_flash"
REVIEW_BULK = "review_bulk"
REVIEW_INCLUDE_DECIDED = "review_include_decided"
#: Scan options chosen in the app (dict: cluster_method, n_clusters, seed); the scan cache key.
SCAN_OPTIONS = "scan_options"
#: Explore page: cluster filter (int or None) and class filter (list[str], empty = all classes).
EXPLORE_CLUSTER = "explore_cluster"
EXPLORE_CLASSES = "explore_classes"
#: Annotators page: truth-inference method ("mace", "ds", "mv", "crowdlab") and the annotator whose confusion is shown.
ANNOTATORS_METHOD = "annotators_method"
ANNOTATORS_SELECTED = "annotators_selected"
#: Annotators page: majority-vote tie rule ("random", "model", "rarer").
ANNOTATORS_TIE_BREAK = "annotators_tie_break"

#: Label issues page: filters (given classes, clusters, detectors, only rows needing review) and the
#: confusion-matrix cell chosen from the list ("" = none).
ISSUES_CLASSES = "issues_classes"
ISSUES_CLUSTERS = "issues_clusters"
ISSUES_DETECTORS = "issues_detectors"
ISSUES_ONLY_FLAGGED = "issues_only_flagged"
ISSUES_CELL = "issues_cell"

#: Training dynamics page: colour of the data map, regions shown, and the row whose trajectory is drawn.
DYNAMICS_COLOUR = "dynamics_colour"
DYNAMICS_REGIONS = "dynamics_regions"
DYNAMICS_ROW = "dynamics_row"
#: Influence page: the query row's id, the attribution method ("influence" or "tracin"), the text search.
INFLUENCE_QUERY = "influence_query"
INFLUENCE_METHOD = "influence_method"
INFLUENCE_SEARCH = "influence_search"
#: ROI page: how many next reviews the projection covers (int).
ROI_NEXT_N = "roi_next_n"


def init_state() -> None:
    """Set defaults once per session. The CLI may preload a dataset through the environment."""
    ss = st.session_state
    if WORKSPACE not in ss:
        from labelaudit.workspace import Workspace

        ss[WORKSPACE] = str(Workspace(os.environ.get("LABELAUDIT_WORKSPACE")).root)
    if DATASET_HASH not in ss and st.query_params.get(DATASET_QUERY_PARAM):
        # labelaudit.show() links to ?dataset=<hash>; accept only a dataset stored in this workspace.
        from labelaudit.workspace import Workspace

        wanted = st.query_params.get(DATASET_QUERY_PARAM, "")
        if wanted in Workspace(ss[WORKSPACE]).datasets():
            ss[DATASET_HASH] = wanted
    if DATASET_HASH not in ss and os.environ.get("LABELAUDIT_DATASET"):
        ss[DATASET_HASH] = os.environ["LABELAUDIT_DATASET"]
    ss.setdefault(LOAD_PROBLEMS, [])
    ss.setdefault(SELECTION, [])

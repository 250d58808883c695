"""Every session-state key the app uses, named once, initialised in one place.

The first part names the keys that carry state between pages and reruns; the second the keys of
widgets and elements. Nothing outside this module spells a key (tests/test_state_keys.py).
"""

from __future__ import annotations

import os

import streamlit as st

#: Content hash of the current dataset (stored in the workspace); absent until one is loaded.
DATASET_HASH = "dataset_hash"
#: URL query parameter that opens a stored dataset (``?dataset=<content hash>``); labelaudit.show()
#: uses it.
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
#: Review page: this session's :class:`labelaudit.review.session.ReviewSession` (the item on screen,
#: ids skipped, an item forced back, the last decision for undo), the outcome of the last action
#: (a ``labelaudit.review.session.Outcome``), a bulk decision awaiting confirmation (a
#: ``labelaudit.review.queue.BulkRequest``), and whether decided items stay in the queue.
REVIEW_SESSION = "review_session"
REVIEW_FLASH = "review_flash"
REVIEW_BULK = "review_bulk"
REVIEW_INCLUDE_DECIDED = "review_include_decided"
#: Scan options chosen in the app (dict: cluster_method, n_clusters, seed); the scan cache key.
SCAN_OPTIONS = "scan_options"
#: Explore page: cluster filter (int or None) and class filter (list[str], empty = all classes).
EXPLORE_CLUSTER = "explore_cluster"
EXPLORE_CLASSES = "explore_classes"
#: Explore page: the text search (str; matches are highlighted on the map and narrow the table).
EXPLORE_SEARCH = "explore_search"
#: Annotators page: truth-inference method ("mace", "ds", "mv", "crowdlab") and the annotator whose
#: confusion is shown.
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
#: Label issues page: the confusion cells listed (a labelaudit.tables.CellChoice: the chart's box
#: selection or the pick from the list, whichever changed last).
ISSUES_CELL_CHOICE = "issues_cell_choice"

#: Training dynamics page: colour of the data map, regions shown, and the row whose trajectory is
#: drawn.
DYNAMICS_COLOUR = "dynamics_colour"
DYNAMICS_REGIONS = "dynamics_regions"
DYNAMICS_ROW = "dynamics_row"
#: Influence page: the query row's id, the attribution method ("influence" or "tracin"), the text
#: search.
INFLUENCE_QUERY = "influence_query"
INFLUENCE_METHOD = "influence_method"
INFLUENCE_SEARCH = "influence_search"
#: ROI page: how many next reviews the projection covers (int).
ROI_NEXT_N = "roi_next_n"


# ------------------------------------------------------------------- widget and element keys
# Every ``key=`` the pages give Streamlit is named here too, so that nothing else creates a
# session-state key (tests/test_state_keys.py checks it). Per-item widgets take :func:`key_for`.


def key_for(prefix: str, part: object) -> str:
    """The key of the widget ``prefix`` for one item, role or field: ``key_for(REVIEW_LABEL, "17")``
    is ``"review_label_17"``."""
    return f"{prefix}_{part}"


#: Data page: source radio, encoding, one mapping selectbox per role (key_for(DATA_MAP, "text")),
#: one uploader / path input per companion (key_for(DATA_UPLOAD, "probs")), the Load button.
DATA_SOURCE = "data_source"
DATA_ENCODING = "data_encoding"
DATA_MAP = "map"
DATA_UPLOAD = "upload"
DATA_PATH = "path"
DATA_LOAD = "load_button"

#: Scan options widgets: one group on Explore and one in the "Run scan" guard; each group's fields
#: are key_for(prefix, "method" | "k" | "seed").
SCAN_OPTIONS_EXPLORE = "explore"
SCAN_OPTIONS_GUARD = "require_scan"
RUN_SCAN = "run_scan"

#: Explore page: the map (its selection), the cluster table (its selected row), what the last run
#: saw of both (a click is applied once), whether the URL was read, and the other widgets.
EXPLORE_MAP = "explore_map"
#: Explore page: the map as drawn on opening (Vega-Lite, its box selection) and the toggle that
#: draws it with Plotly instead (for the lasso; Plotly's bundle loads then).
EXPLORE_MAP_BOX = "explore_map_box"
EXPLORE_LASSO = "explore_lasso"
EXPLORE_CLUSTER_TABLE = "explore_cluster_table"
EXPLORE_LAST_CLUSTER_PICK = "explore_last_cluster_pick"
EXPLORE_LAST_CHART_IDS = "explore_last_chart_ids"
EXPLORE_URL_READ = "explore_url_read"
EXPLORE_COLOR = "explore_color"
EXPLORE_CLEAR_CLUSTER = "explore_clear_cluster"
EXPLORE_SELECTED_ROWS = "explore_selected_rows"
EXPLORE_SEND = "explore_send"
EXPLORE_CLEAR_SELECTION = "explore_clear_selection"
EXPLORE_VIEW_ROWS = "explore_view_rows"
EXPLORE_SELECT_VIEW = "explore_select_view"
EXPLORE_LEGEND = "explore_legend"

#: Label issues page: the confusion chart (its selection), the ranked table (its selected row), and
#: the other elements.
ISSUES_CONFUSION = "issues_confusion"
ISSUES_TABLE = "issues_table"
ISSUES_CELL_ROWS = "issues_cell_rows"
ISSUES_NEIGHBOURS = "issue_neighbours"
ISSUES_NOISE_MATRIX = "noise_matrix"
ISSUES_PER_CLASS = "issues_per_class"
ISSUES_PAIRS = "issues_pairs"
#: Label issues page: which matrix is drawn (given vs predicted, noise, per class).
ISSUES_MATRIX_VIEW = "issues_matrix_view"

#: Annotators page elements.
ANNOTATORS_KAPPA = "kappa_heatmap"
ANNOTATORS_COMPETENCE = "competence_chart"
ANNOTATORS_CONFUSION = "annotator_confusion"
ANNOTATORS_QUEUE_SIZE = "annotators_queue_size"
ANNOTATORS_SEND_DISPUTED = "send_disputed"
ANNOTATORS_SEND_DIFFERING = "send_differing"
ANNOTATORS_CLASS_AGREEMENT = "class_agreement"

#: Training dynamics page: the Prepare button (also on Influence), the data map (its selection), the
#: table (its selected row), and the other elements.
DYNAMICS_PREPARE = "dynamics_prepare"
DYNAMICS_MAP = "dynamics_map"
#: Training dynamics page: the data map as drawn on opening (Vega-Lite, box selection) and the
#: toggle that draws it with Plotly (lasso).
DYNAMICS_MAP_BOX = "dynamics_map_box"
DYNAMICS_LASSO = "dynamics_lasso"
DYNAMICS_TABLE = "dynamics_table"
DYNAMICS_SEND = "dynamics_send"
DYNAMICS_SELECT = "dynamics_select"
DYNAMICS_TRAJECTORY = "dynamics_trajectory"

#: Influence page: the self-influence ranking (its selected row), the last click applied, and the
#: other elements.
INFLUENCE_RANKING = "influence_ranking"
INFLUENCE_LAST_CLICK = "influence_last_click"
INFLUENCE_PICK = "influence_pick"
INFLUENCE_USE_PICK = "influence_use_pick"
INFLUENCE_USE_SELECTION = "influence_use_sel"
INFLUENCE_PROPONENTS = "influence_proponents"
INFLUENCE_OPPONENTS = "influence_opponents"
INFLUENCE_DOWNLOAD = "influence_download"
INFLUENCE_EXTERNAL = "influence_external"

#: Review page: the name form's input, the card's form (its label / comment / pin note keep one key
#: each and are reset when another item comes on screen, REVIEW_FORM_ITEM: a widget that keeps its
#: identity is updated in the browser instead of rebuilt), the action buttons, the queue toggles,
#: the bulk form and the export.
REVIEWER_NAME_INPUT = "reviewer_name_input"
REVIEW_FORM = "review_form"
REVIEW_FORM_ITEM = "review_form_item"
REVIEW_LABEL = "review_label"
REVIEW_COMMENT = "review_comment"
REVIEW_PIN_NOTE = "review_pin_note"
#: Review page: the buttons that open the "Pin finding" and "Go to" dialogs.
REVIEW_PIN_OPEN = "review_pin_open"
REVIEW_JUMP_OPEN = "review_jump_open"
#: Review page: the dialog open ("pin" or "jump"; absent: none).
REVIEW_DIALOG = "review_dialog"
#: Review page: what the open dialog's button did, shown in the dialog or (done) on the card.
REVIEW_DIALOG_OUTCOME = "review_dialog_outcome"
#: Review page: go to a decided (or any) item; the grid of similar rows decided together.
REVIEW_JUMP_PICK = "review_jump_pick"
REVIEW_JUMP_ID = "review_jump_id"
REVIEW_JUMP = "review_jump"
#: Review page: which evidence the card shows under the action bar (typical rows, detectors, ...).
REVIEW_EVIDENCE = "review_evidence"
#: Grid mode: whether its expander is open (the reviewer's choice, kept across reruns).
GRID_OPEN = "grid_open"
GRID_SOURCE = "grid_source"
GRID_CLUSTER = "grid_cluster"
GRID_GROUP = "grid_group"
GRID_TABLE = "grid_table"
GRID_ACTION = "grid_action"
GRID_LABEL = "grid_label"
GRID_COMMENT = "grid_comment"
GRID_APPLY = "grid_apply"
GRID_UNDO = "grid_undo"
GRID_FLASH = "grid_flash"
GRID_RERUN = "grid_rerun"
#: Grid mode: a new table (an empty selection in the browser too) after each decision or undo.
GRID_VERSION = "grid_version"
REVIEW_ACCEPT = "review_accept"
REVIEW_CHANGE = "review_change"
REVIEW_KEEP = "review_keep"
REVIEW_AMBIGUOUS = "review_ambiguous"
REVIEW_REMOVE = "review_remove"
REVIEW_PIN = "review_pin"
REVIEW_SKIP = "review_skip"
REVIEW_UNDO = "review_undo"
#: Review page: retry saving a decision the database was too busy to take, and retry opening it.
REVIEW_RETRY = "review_retry"
REVIEW_RETRY_OPEN = "review_retry_open"
REVIEW_FLAGGED_ONLY = "review_flagged_only"
REVIEW_CLEAR_SELECTION = "review_clear_selection"
BULK_TARGET = "bulk_target"
BULK_CLUSTER = "bulk_cluster"
BULK_GIVEN = "bulk_given"
BULK_ACTION = "bulk_action"
BULK_LABEL = "bulk_label"
BULK_COMMENT = "bulk_comment"
BULK_PREPARE = "bulk_prepare"
BULK_CONFIRM = "bulk_confirm"
BULK_CANCEL = "bulk_cancel"
EXPORT_REMOVED = "export_removed"
DOWNLOAD_CSV = "download_csv"
DOWNLOAD_PARQUET = "download_parquet"
DOWNLOAD_LOG = "download_log"

#: ROI page: the retrain button, the findings form, the charts and the download.
ROI_RETRAIN = "roi_retrain"
ROI_FINDING_KIND = "roi_finding_kind"
ROI_FINDING_TARGET = "roi_finding_target"
ROI_FINDING_NOTE = "roi_finding_note"
ROI_FINDING_AUTHOR = "roi_finding_author"
ROI_BEFORE_AFTER = "roi_before_after"
ROI_CURVE = "roi_curve"
ROI_DECISIONS = "roi_decisions"
ROI_PRECISION_DETECTOR = "roi_precision_detector"
ROI_DOWNLOAD = "roi_download"


#: Review as a team and the queue that learns (issues 18, 13, 17), owned by the Review and ROI
#: pages. Session state: this session's live queue (``(token, labelaudit.review.live.LiveQueue)``),
#: the decisions made since its order was built, the Review page's mode ("queue", "adjudicate",
#: "team"), and the Label Studio outcome to show (an ``Outcome``).
REVIEW_LIVE = "review_live"
REVIEW_MODE = "review_mode"
REVIEW_LS_FLASH = "review_ls_flash"
#: The typed name this browser's cookie holds (set once per session), "forget" / "forgotten" after
#: "Not you?".
REVIEWER_REMEMBERED = "reviewer_remembered"
#: Widgets: sign in / out, forget the typed name, back, the queue kind, re-rank settings and audit.
REVIEW_SIGN_IN = "review_sign_in"
REVIEW_SIGN_OUT = "review_sign_out"
REVIEW_FORGET_NAME = "review_forget_name"
REVIEW_BACK = "review_back"
REVIEW_QUEUE_KIND = "review_queue_kind"
REVIEW_RERANK = "review_rerank"
REVIEW_RERANK_EVERY = "review_rerank_every"
REVIEW_SAVE_RERANK_EVERY = "review_save_rerank_every"
REVIEW_AUDIT_SHARE = "review_audit_share"
REVIEW_AUDIT_START = "review_audit_start"
REVIEW_AUDIT_STOP = "review_audit_stop"
REVIEW_REFIT_SUGGESTIONS = "review_refit_suggestions"
#: Lead's team panel: the assignment form, closing one (key_for(ASSIGN_CLOSE, id)), the tables.
ASSIGN_SOURCE = "assign_source"
ASSIGN_CLUSTER = "assign_cluster"
ASSIGN_SIZE = "assign_size"
ASSIGN_REVIEWERS = "assign_reviewers"
ASSIGN_OVERLAP = "assign_overlap"
ASSIGN_NAME = "assign_name"
ASSIGN_CREATE = "assign_create"
ASSIGN_CLOSE = "assign_close"
TEAM_OVERVIEW = "team_overview"
TEAM_PAIRS = "team_pairs"
TEAM_PER_CLASS = "team_per_class"
TEAM_DOUBLE = "team_double"
#: The audit log's identities (signed in or typed), in the lead's Team view.
TEAM_IDENTITIES = "team_identities"
#: Label Studio on the Review page: how many items to send, the project to pull, the buttons.
LS_LIMIT = "ls_limit"
LS_PROJECT = "ls_project"
LS_SEND = "ls_send"
LS_PULL = "ls_pull"
#: ROI page: learning from the decisions (the precision table, the strata of the audit).
ROI_LEARN_PRECISION = "roi_learn_precision"
ROI_LEARN_STRATA = "roi_learn_strata"
#: Keys that outlive a change of dataset: the workspace, who reviews, the scan options, and the
#: Data page's own form (it is where the switch happens). Everything else in the session is tied to
#: one dataset (queue, selection, review session and its undo target and skipped items, bulk
#: requests, finding drafts, every page's filters and picks) and is dropped by set_dataset.
KEEP_ACROSS_DATASETS = frozenset(
    {
        WORKSPACE,
        REVIEWER,
        REVIEWER_REMEMBERED,
        REVIEWER_NAME_INPUT,
        SCAN_OPTIONS,
        LOAD_PROBLEMS,
        DATA_SOURCE,
        DATA_ENCODING,
        ROI_NEXT_N,
        *(
            key_for(group, field)
            for group in (SCAN_OPTIONS_EXPLORE, SCAN_OPTIONS_GUARD)
            for field in ("method", "k", "seed")
        ),
    }
)
#: ... and the Data page's per-role and per-companion widgets (key_for(DATA_MAP, role), …).
KEEP_PREFIXES_ACROSS_DATASETS = tuple(key_for(p, "") for p in (DATA_MAP, DATA_UPLOAD, DATA_PATH))
#: URL parameters that name rows or clusters of one dataset (Explore writes them).
DATASET_URL_PARAMS = ("cluster", "ids")


def set_dataset(content_hash: str) -> None:
    """Make ``content_hash`` the current dataset. When it differs from the current one, everything
    tied to the old dataset is dropped from the session (see KEEP_ACROSS_DATASETS) and from the URL,
    so no page shows or acts on rows of the dataset that was open before. The URL then names the
    dataset (``?dataset=<hash>``): a reload, a bookmark or a shared link reopens it."""
    ss = st.session_state
    if ss.get(DATASET_HASH) != content_hash:
        for key in list(ss.keys()):
            k = str(key)
            if k in KEEP_ACROSS_DATASETS or k.startswith(KEEP_PREFIXES_ACROSS_DATASETS):
                continue
            del ss[key]
        for param in DATASET_URL_PARAMS:
            if param in st.query_params:
                del st.query_params[param]
        ss[SELECTION] = []
    ss[DATASET_HASH] = content_hash
    _dataset_in_url(content_hash)


def _dataset_in_url(content_hash: str) -> None:
    if st.query_params.get(DATASET_QUERY_PARAM) != content_hash:
        st.query_params[DATASET_QUERY_PARAM] = content_hash


def init_state() -> None:
    """Set defaults; runs on every script run (app.py). The dataset comes from the URL
    (``?dataset=<hash>``, written on every run so that page switches and reloads keep it), else from
    the CLI through the environment; a URL naming a dataset this workspace does not hold says so."""
    ss = st.session_state
    if WORKSPACE not in ss:
        from labelaudit.workspace import Workspace

        ss[WORKSPACE] = str(Workspace(os.environ.get("LABELAUDIT_WORKSPACE")).root)
    ss.setdefault(LOAD_PROBLEMS, [])
    ss.setdefault(SELECTION, [])
    if DATASET_HASH in ss:
        _dataset_in_url(ss[DATASET_HASH])
        return
    wanted = st.query_params.get(DATASET_QUERY_PARAM, "")
    if wanted:
        from labelaudit.workspace import Workspace

        if wanted in Workspace(ss[WORKSPACE]).datasets():
            set_dataset(wanted)
            return
        ss[LOAD_PROBLEMS] = [
            f"The link names dataset {wanted[:40]}, which this workspace ({ss[WORKSPACE]}) does "
            "not "
            "hold; load the data again below (its version is the same when the data is)."
        ]
        del st.query_params[DATASET_QUERY_PARAM]
    env = os.environ.get("LABELAUDIT_DATASET")
    if env:
        # set by `labelaudit app DATA`: a dataset version stored in this workspace, never a path
        from labelaudit.workspace import Workspace

        if env in Workspace(ss[WORKSPACE]).datasets():
            set_dataset(env)

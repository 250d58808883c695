"""Influence: pick a row and see the training rows that help (proponents) and hurt (opponents) it; self-influence."""

import streamlit as st

from components import state
from components.data import require_dataset
from components.dynamics import (
    SIGN_CONVENTION,
    external_influence,
    query_influence,
    require_prepared,
    self_influence_ranking,
)
from components.text import md_escape
from labelaudit.csvfile import to_csv_bytes
from labelaudit.dataset import ID, LABEL, SPLIT, TEXT
from labelaudit.errors import DataError, UsageError
from labelaudit.training_view import search_rows

#: Its entry in the navigation (components/pages.py reads it without running the page).
PAGE = {"title": "Influence", "icon": ":material/hub:", "section": "Find", "order": 60}

TOP_N = 20

st.title("Influence")
ds = require_dataset()
ss = st.session_state
ws_root = ss[state.WORKSPACE]
require_prepared(ds, ws_root, influence=True)
st.markdown(SIGN_CONVENTION)
st.caption(
    "Exact influence functions (Koh & Liang 2017) of an L2-regularised softmax head on the embeddings, or "
    "TracIn (Pruthi et al. 2020) over the checkpoints of the training-dynamics run. Training rows are all "
    "rows outside the test split; the chosen row may be any row."
)

ranking = self_influence_ranking(ws_root, ds.content_hash)

# ------------------------------------------------------------------ pick the row
# A click in the self-influence ranking (drawn further down) arrives before it is drawn.
clicked = (ss.get(state.INFLUENCE_RANKING) or {}).get("selection", {}).get("rows", [])
if clicked and clicked != ss.get(state.INFLUENCE_LAST_CLICK):
    ss[state.INFLUENCE_LAST_CLICK] = clicked
    ss[state.INFLUENCE_QUERY] = str(ranking["id"].iloc[clicked[0]])

c1, c2 = st.columns([2, 1])
search = c1.text_input(
    "Find a row by id or text",
    key=state.INFLUENCE_SEARCH,
    placeholder="an id, or words from the text",
)
method = c2.radio(
    "Method",
    ["influence", "tracin"],
    horizontal=True,
    key=state.INFLUENCE_METHOD,
    format_func=lambda m: {"influence": "influence function", "tracin": "TracIn"}[m],
)
hits = search_rows(ds.frame, search) if search else ds.frame.head(0)
if search:
    if hits.empty:
        st.warning("No row has that id or contains that text.")
    else:
        labels = {
            i: f"{i} · {lab} · {txt[:80]}"
            for i, lab, txt in zip(hits[ID].astype(str), hits[LABEL], hits[TEXT], strict=True)
        }
        pick = st.selectbox(
            f"{len(hits):,} matching rows",
            list(labels),
            format_func=lambda i: labels[i],
            key=state.INFLUENCE_PICK,
        )
        if st.button("Explain this row", type="primary", key=state.INFLUENCE_USE_PICK):
            ss[state.INFLUENCE_QUERY] = pick
selected = [i for i in ss.get(state.SELECTION, []) if i in ds.id_to_row]
if selected and st.button(
    f"Explain the first row of the app's selection ({selected[0]})",
    key=state.INFLUENCE_USE_SELECTION,
):
    ss[state.INFLUENCE_QUERY] = selected[0]

query = ss.get(state.INFLUENCE_QUERY)
if query not in ds.id_to_row:
    query = None
if query is None:
    st.info(
        "Pick a row: search above, click a row of the self-influence ranking below, or select rows on a map."
    )
else:
    r = ds.id_to_row[query]
    st.subheader("Chosen row")
    split = ds.frame[SPLIT].iloc[r]
    st.text(
        f"{query} · given label: {ds.frame[LABEL].iloc[r]}"
        + (f" · split: {split}" if split else "")
    )
    st.text(str(ds.frame[TEXT].iloc[r]))
    try:
        with st.spinner(
            "Solving H⁻¹ g for this row…" if method == "influence" else "Summing over checkpoints…"
        ):
            table = query_influence(ws_root, ds.content_hash, query, method)
    except (DataError, UsageError) as e:
        st.error(str(e), icon=":material/error:")
        st.stop()
    # score and label first, the long text last: in half-width tables a leading text column
    # pushed the label and the score out of view
    cols = ["score", "label", "train_id", "text"]
    cfg = {
        "score": st.column_config.NumberColumn(format="%.2e", width="small"),
        "text": st.column_config.TextColumn(width="medium"),
    }
    left, right = st.columns(2)
    left.markdown(f"**Proponents** (most helpful, top {TOP_N})")
    left.dataframe(
        table.head(TOP_N)[cols],
        hide_index=True,
        width="stretch",
        column_config=cfg,
        key=state.INFLUENCE_PROPONENTS,
    )
    right.markdown(f"**Opponents** (most harmful, top {TOP_N})")
    right.dataframe(
        table.tail(TOP_N).iloc[::-1][cols],
        hide_index=True,
        width="stretch",
        column_config=cfg,
        key=state.INFLUENCE_OPPONENTS,
    )
    same = (table.head(TOP_N)["label"] == ds.frame[LABEL].iloc[r]).mean()
    st.caption(
        f"{same:.0%} of the proponents share the chosen row's label. Opponents with the same text "
        "meaning but another label are candidates for label errors."
    )
    st.download_button(
        "Download all training rows with their scores (CSV)",
        to_csv_bytes(table),
        file_name=f"influence_{method}_{query}.csv",
        mime="text/csv",
        key=state.INFLUENCE_DOWNLOAD,
    )
    ext = external_influence(ds, query)
    if ext is not None:
        st.subheader("Imported influence")
        if ext.empty:
            st.caption("The imported pair scores have no entry for this row.")
        else:
            st.caption(
                f"{len(ext):,} pairs from the imported scores file (same sign convention: positive = helpful)."
            )
            st.dataframe(
                ext[cols],
                hide_index=True,
                width="stretch",
                column_config=cfg,
                key=state.INFLUENCE_EXTERNAL,
            )

# ------------------------------------------------------------------ self-influence ranking
st.subheader("Self-influence ranking")
st.caption(
    "How much each training row's own loss would rise if it were left out (g⊤H⁻¹g / N): rows the model "
    "fits only by bending towards them, often mislabelled. Click a row to explain it."
)
st.dataframe(
    ranking.head(2000)[["self_influence", "given_label", "predicted_label", "id", "text", "exact"]],
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="single-row",
    key=state.INFLUENCE_RANKING,
    column_config={
        "self_influence": st.column_config.NumberColumn(format="%.3e"),
        "text": st.column_config.TextColumn(width="large"),
    },
)
if ds.pair_scores is not None:
    queries = ds.pair_scores["query_id"].astype(str).unique().tolist()
    st.caption(
        f"Imported influence covers {len(queries):,} query rows, e.g. {md_escape(', '.join(queries[:5]))}."
    )

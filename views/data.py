"""Data page: choose the bundled sample, upload files or give a server path; map columns; see the summary."""

from pathlib import Path

import streamlit as st

from components import state
from components.data import (
    COMPANION_UPLOADS,
    DATASET_UPLOAD_LABEL,
    DATASET_UPLOAD_TYPES,
    SAMPLE_DIR,
    current_dataset,
    load_into_session,
    read_columns,
    render_dataset_summary,
    save_upload,
    server_path,
)
from components.pages import render_unknown_page_notice
from components.scan import render_scan_sidebar
from components.text import md_escape

#: Its entry in the navigation (components/pages.py reads it without running the page).
PAGE = {
    "title": "Data",
    "icon": ":material/database:",
    "section": "Data",
    "order": 10,
    "default": True,
    "needs_dataset": False,
}

st.title("Data")
render_unknown_page_notice()

AUTO = "(detect)"
NONE = "(none)"
source = st.radio(
    "Source",
    ["Bundled sample: BANKING77", "Upload files", "Path on the server"],
    horizontal=True,
    key=state.DATA_SOURCE,
)

data_path: Path | None = None
companions: dict[str, str] = {}
encoding = None
from_server = True  # every path but the page's own uploads must lie inside the data roots
refused: list[str] = []
if source.startswith("Bundled"):
    st.caption(
        "13,083 online-banking queries in 77 intents (train 10,003 · test 3,080), with simulated "
        "multi-rater annotations when present. CC BY 4.0, PolyAI (Casanueva et al. 2020)."
    )
    data_path = SAMPLE_DIR
elif source == "Upload files":
    up = st.file_uploader(DATASET_UPLOAD_LABEL, type=DATASET_UPLOAD_TYPES)
    with st.expander("Optional companions"):
        for key, (label, types) in COMPANION_UPLOADS.items():
            f = st.file_uploader(label, type=types, key=state.key_for(state.DATA_UPLOAD, key))
            if f is not None:
                companions[key] = str(save_upload(st.session_state[state.WORKSPACE], f))
    if up is not None:
        data_path = save_upload(st.session_state[state.WORKSPACE], up)
    from_server = False
else:
    typed = st.text_input("Path to a data file or a folder of split files (train.csv, test.csv, …)")
    st.caption(
        "Only paths inside the data roots are read (see docs/security.md); add a root with "
        "`labelaudit app --data-root FOLDER` or LABELAUDIT_DATA_ROOTS."
    )
    with st.expander("Optional companions (paths on the server)"):
        for key, (label, _types) in COMPANION_UPLOADS.items():
            v = st.text_input(label, key=state.key_for(state.DATA_PATH, key))
            if v.strip():
                checked, why = server_path(v.strip())
                if checked is None:
                    refused.append(str(why))
                else:
                    companions[key] = str(checked)
    if typed.strip():
        data_path, why = server_path(typed.strip())
        if why:
            refused.append(why)
    for why in refused:
        st.error(md_escape(why), icon=":material/block:")
    if refused:
        data_path = None

mapping: dict[str, str | None] = {}
if data_path is not None and not source.startswith("Bundled"):
    encoding = st.text_input("Encoding (blank = UTF-8)", key=state.DATA_ENCODING).strip() or None
    if data_path.exists() and data_path.is_file():
        columns, problem = read_columns(str(data_path), data_path.stat().st_mtime, encoding)
        if problem:
            st.error(md_escape(problem), icon=":material/error:")
        elif columns:
            st.markdown(
                "**Columns** — leave on *(detect)* to let labelaudit choose; it says what it chose."
            )
            c = st.columns(4)
            for col, (role, optional) in zip(
                c, [("text", False), ("label", False), ("id", True), ("split", True)], strict=True
            ):
                opts = [AUTO] + ([NONE] if optional else []) + columns
                choice = col.selectbox(
                    f"{role} column", opts, key=state.key_for(state.DATA_MAP, role)
                )
                mapping[f"{role}_col"] = None if choice == AUTO else choice
            if mapping.get("id_col") == NONE:
                mapping["id_col"] = None
            if mapping.get("split_col") == NONE:
                mapping["split_col"] = None

if (
    st.button("Load", type="primary", disabled=data_path is None, key=state.DATA_LOAD)
    and data_path is not None
):
    with st.spinner("Reading and validating…"):
        ok = load_into_session(
            data_path, server_paths=from_server, encoding=encoding, **mapping, **companions
        )
    if ok:
        st.rerun()

for problem in st.session_state.get(state.LOAD_PROBLEMS, []):
    st.error(md_escape(problem), icon=":material/error:")

ds = current_dataset()
if ds is None:
    st.info("No dataset loaded yet.")
    st.stop()
    raise AssertionError("unreachable")  # st.stop() raises
render_scan_sidebar(ds)  # loading a dataset starts its scan in the background, no button
st.header("Summary")
render_dataset_summary(ds)

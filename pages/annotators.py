"""Annotators page (placeholder until its issue lands)."""

import streamlit as st

from components.data import require_dataset

st.title("Annotators")
ds = require_dataset()
st.info("This page is being built. It will need: annotations from several people (item_id, annotator_id, label).")

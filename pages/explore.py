"""Explore page (placeholder until its issue lands)."""

import streamlit as st

from components.data import require_dataset

st.title("Explore")
ds = require_dataset()
st.info("This page is being built. It will need: the scan (embeddings, 2-D map and clusters).")

"""Influence page (placeholder until its issue lands)."""

import streamlit as st

from components.data import require_dataset

st.title("Influence")
ds = require_dataset()
st.info("This page is being built. It will need: the scan's embeddings and a trained softmax head.")

"""Training dynamics page (placeholder until its issue lands)."""

import streamlit as st

from components.data import require_dataset

st.title("Training dynamics")
ds = require_dataset()
st.info("This page is being built. It will need: per-epoch logits, imported or trained on the embeddings.")

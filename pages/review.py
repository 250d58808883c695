"""Review page (placeholder until its issue lands)."""

import streamlit as st

from components.data import require_dataset

st.title("Review")
ds = require_dataset()
st.info("This page is being built. It will need: the ranked queue of suspected label errors.")

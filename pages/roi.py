"""ROI page (placeholder until its issue lands)."""

import streamlit as st

from components.data import require_dataset

st.title("ROI")
ds = require_dataset()
st.info("This page is being built. It will need: review decisions and a protected test split.")

"""Label issues page (placeholder until its issue lands)."""

import streamlit as st

from components.data import require_dataset

st.title("Label issues")
ds = require_dataset()
st.info("This page is being built. It will need: the scan with its label-error detectors.")

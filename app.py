"""labelaudit dashboard: registers the pages (components/pages.py), nothing else."""

import streamlit as st

from components.pages import navigation
from components.state import init_state

st.set_page_config(page_title="labelaudit", page_icon=":material/fact_check:", layout="wide")
init_state()
st.navigation(navigation()).run()

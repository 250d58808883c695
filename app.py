"""labelaudit dashboard: registers the pages (components/pages.py), nothing else."""

import streamlit as st

from components.pages import navigation, requested_page
from components.state import init_state

# The favicon is an emoji (drawn by the browser): a ":material/...:" favicon makes Streamlit fetch
# an SVG from fonts.gstatic.com on every page view (docs/security.md). Page icons use the bundled
# font.
st.set_page_config(page_title="labelaudit", page_icon="🏷️", layout="wide")
init_state()
st.navigation(navigation(requested_page())).run()

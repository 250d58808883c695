"""labelaudit dashboard: registers the pages (components/pages.py); when a page has run, the other
pages' stored results are read in the background (components/warm.py)."""

import streamlit as st

from components.pages import navigation, requested_page
from components.state import init_state
from components.warm import warm_current_dataset

# The favicon is an emoji (drawn by the browser): a ":material/...:" favicon makes Streamlit fetch
# an SVG from fonts.gstatic.com on every page view (docs/security.md). Page icons use the bundled
# font.
st.set_page_config(page_title="labelaudit", page_icon="🏷️", layout="wide")
init_state()
try:
    st.navigation(navigation(requested_page())).run()
finally:  # after the page (also after st.stop): the other pages' stored results, in the background
    warm_current_dataset()

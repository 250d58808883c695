"""labelaudit dashboard: registers the pages, nothing else."""

import streamlit as st

from components.state import init_state

st.set_page_config(page_title="labelaudit", page_icon=":material/fact_check:", layout="wide")
init_state()
st.navigation(
    {
        "Data": [st.Page("views/data.py", title="Data", icon=":material/database:", default=True)],
        "Find": [
            st.Page("views/explore.py", title="Explore", icon=":material/scatter_plot:"),
            st.Page("views/label_issues.py", title="Label issues", icon=":material/report:"),
            st.Page("views/annotators.py", title="Annotators", icon=":material/groups:"),
            st.Page("views/dynamics.py", title="Training dynamics", icon=":material/timeline:"),
            st.Page("views/influence.py", title="Influence", icon=":material/hub:"),
        ],
        "Fix": [
            st.Page("views/review.py", title="Review", icon=":material/rule:"),
            st.Page("views/roi.py", title="ROI", icon=":material/trending_up:"),
        ],
        "Help": [st.Page("views/about.py", title="About", icon=":material/info:")],
    }
).run()

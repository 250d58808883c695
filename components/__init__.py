"""Reusable Streamlit widgets and the app's only ``st.cache_*`` wrappers."""

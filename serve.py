"""The dashboard's server entry, ``streamlit run serve.py``: ``app.py`` served as an ASGI app
(``st.App``) with one middleware in front of Streamlit's own routes, which sends a browser's
nested or trailing-slash page URL (``/a/b``, ``/review/``), which Streamlit would answer with an
empty page, to one that renders and says what happened (:mod:`components.routes`).
``labelaudit app``, ``make run``, ``la.show()`` and the browser tests all start this file."""

import streamlit as st
from starlette.middleware import Middleware

from components.routes import PagePathRedirect


def _base_path() -> str:
    return str(st.get_option("server.baseUrlPath") or "")


app = st.App("app.py", middleware=[Middleware(PagePathRedirect, base_path=_base_path)])

"""The dashboard's server entry, ``streamlit run serve.py``: ``app.py`` served as an ASGI app
(``st.App``) with

- one middleware in front of Streamlit's own routes, which sends a browser's nested or
  trailing-slash page URL (``/a/b``, ``/review/``), which Streamlit would answer with an empty page,
  to one that renders and says what happened (:mod:`components.routes`);
- a start-up hook that reads, in the background, what the first page views would otherwise read
  in their script runs: the pages' modules and the launch dataset's stored results
  (:func:`components.warm.warm_at_start`).

``labelaudit app``, ``make run``, ``la.show()``, the browser tests and the benches start this file.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import streamlit as st
from starlette.middleware import Middleware

from components.routes import PagePathRedirect
from components.warm import warm_at_start


def _base_path() -> str:
    return str(st.get_option("server.baseUrlPath") or "")


@asynccontextmanager
async def _lifespan(_app: st.App) -> AsyncIterator[None]:
    warm_at_start()
    yield


app = st.App(
    "app.py", lifespan=_lifespan, middleware=[Middleware(PagePathRedirect, base_path=_base_path)]
)

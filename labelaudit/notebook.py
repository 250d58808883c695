"""Open the dashboard from Jupyter or any Python process: :func:`show`.

``show(df, text=..., label=...)`` validates the data exactly as the CLI and the Data page do
(:func:`labelaudit.io.load_dataset`), stores it in the workspace, and serves the dashboard
(``streamlit run app.py``, the command ``labelaudit app`` runs) in a background process on a free
loopback port. The returned :class:`Dashboard` renders as an embedded frame in a notebook and
carries the URL; :meth:`Dashboard.stop` ends the server.

One server per workspace: a second ``show()`` on the same workspace reuses the running server and
opens the new dataset through the URL's ``?dataset=<content hash>`` query parameter (read once per
browser session by ``components.state.init_state``), so older dashboards keep showing their own
data and nothing restarts. Servers still running when the interpreter exits are stopped.
"""

from __future__ import annotations

import atexit
import html
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from labelaudit.dataset import Dataset
from labelaudit.errors import UsageError
from labelaudit.workspace import Workspace, as_workspace

#: Query parameter the app reads to open a stored dataset (see components/state.py).
DATASET_QUERY_PARAM = "dataset"
#: Address the background server listens on: loopback only, the data never leaves the machine.
HOST = "127.0.0.1"
#: Seconds to wait for a new server to answer /_stcore/health.
START_TIMEOUT = 90.0
#: Height in pixels of the frame a notebook shows.
FRAME_HEIGHT = 800


@dataclass
class _Server:
    """A dashboard process this interpreter started."""

    proc: subprocess.Popen
    port: int
    workspace: Path
    log_path: Path
    log_file: IO[str] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        if self.log_file is not None:
            self.log_file.flush()
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """End the server's whole process group (streamlit and anything it spawned)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        if self.log_file is not None and not self.log_file.closed:
            self.log_file.close()


#: Servers started by this process, by (workspace root, port). Stopped at interpreter exit.
_SERVERS: dict[tuple[str, int], _Server] = {}


@dataclass(eq=False)
class Dashboard:
    """A running dashboard showing one dataset.

    ``url`` opens the app on ``dataset_hash`` (the dataset's content hash in ``workspace``).
    In a notebook the object displays as an ``<iframe>`` of the app. Several dashboards of one
    workspace share one server: :meth:`stop` ends it for all of them.

    Example:
        >>> dash = show(df, text="text", label="label")     # doctest: +SKIP
        >>> dash.url                                         # doctest: +SKIP
        'http://127.0.0.1:40123/?dataset=3f2a9c0d1e5b7a6c4d2e'
        >>> dash.stop()                                      # doctest: +SKIP
    """

    url: str
    dataset_hash: str
    workspace: Path
    _server: _Server = field(repr=False)

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._server.running

    def stop(self) -> None:
        """Stop the server (its process group); the port is free afterwards. Safe to call twice."""
        self._server.stop()
        _SERVERS.pop((str(self._server.workspace), self._server.port), None)

    def open(self) -> None:
        """Open the dashboard in the default web browser."""
        import webbrowser

        webbrowser.open(self.url)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"Dashboard(url={self.url!r}, dataset={self.dataset_hash!r}, {state})"

    def _repr_html_(self) -> str:
        url = html.escape(self.url, quote=True)
        if not self.running:
            return f"<p>labelaudit dashboard stopped (was <code>{url}</code>).</p>"
        return (
            f'<iframe src="{url}" width="100%" height="{FRAME_HEIGHT}" style="border:0" '
            f'title="labelaudit dashboard"></iframe>'
            f'<p><a href="{url}" target="_blank" rel="noopener">Open the labelaudit dashboard in a new tab</a></p>'
        )


def show(
    df_or_dataset: pd.DataFrame | Dataset | str | os.PathLike,
    *,
    text: str | None = None,
    label: str | None = None,
    id: str | None = None,  # noqa: A002 - mirrors the column role, like text/label
    split: str | None = None,
    pred_probs: np.ndarray | str | os.PathLike | None = None,
    annotations: pd.DataFrame | str | os.PathLike | None = None,
    embeddings: np.ndarray | str | os.PathLike | None = None,
    workspace: Workspace | str | os.PathLike | None = None,
    port: int | None = None,
    open_browser: bool = False,
) -> Dashboard:
    """Validate the data, store it in the workspace and open the dashboard on it.

    ``df_or_dataset``: a DataFrame (N rows; columns named by ``text``, ``label``, ``id``, ``split``,
    detected by name when not given), a file or folder path, or an already loaded :class:`Dataset`
    (then no column options). Companions as in :func:`labelaudit.io.load_dataset`:
    ``pred_probs`` float (N, K) out-of-sample probabilities (columns in sorted class order),
    ``annotations`` long format ``item_id, annotator_id, label``, ``embeddings`` float (N, D).
    ``workspace``: folder for the dataset and cached artifacts (default ``$LABELAUDIT_WORKSPACE``
    or ``.labelaudit``). ``port``: default a free one; a running server of this process on the same
    workspace is reused. Invalid data raises :class:`~labelaudit.errors.DataError` listing every
    problem, before any server starts.

    Returns a :class:`Dashboard` (``.url``, ``.stop()``); the last expression of a notebook cell
    displays it as an embedded frame.

    Example:
        >>> import pandas as pd, labelaudit
        >>> df = pd.DataFrame({"text": ["card lost", "top up failed", "where is my card"],
        ...                    "label": ["lost_card", "top_up", "lost_card"]})
        >>> dash = labelaudit.show(df, workspace="ws")       # doctest: +SKIP
        >>> dash                                             # doctest: +SKIP
        Dashboard(url='http://127.0.0.1:40123/?dataset=…', dataset='…', running)
        >>> dash.stop()                                      # doctest: +SKIP
    """
    if port is not None and not (0 < int(port) < 65536):
        raise UsageError(f"port must be between 1 and 65535, got {port}")
    ds = _as_dataset(
        df_or_dataset,
        text=text,
        label=label,
        id=id,
        split=split,
        pred_probs=pred_probs,
        annotations=annotations,
        embeddings=embeddings,
    )
    ws = as_workspace(workspace) or Workspace()
    dataset_hash = ws.save_dataset(ds)
    server = _running_server(ws.root, port)
    if server is None:
        server = _start_server(ws.root, dataset_hash, port)
    url = f"{server.base_url}/?{DATASET_QUERY_PARAM}={dataset_hash}"
    dash = Dashboard(url=url, dataset_hash=dataset_hash, workspace=ws.root, _server=server)
    if open_browser:
        dash.open()
    return dash


def stop_all() -> None:
    """Stop every dashboard server this process started (also runs at interpreter exit)."""
    for key, server in list(_SERVERS.items()):
        server.stop()
        _SERVERS.pop(key, None)


atexit.register(stop_all)


# --------------------------------------------------------------------------- helpers
def _as_dataset(
    data: Any,
    *,
    text: str | None,
    label: str | None,
    id: str | None,
    split: str | None,  # noqa: A002
    pred_probs: Any,
    annotations: Any,
    embeddings: Any,
) -> Dataset:
    if isinstance(data, Dataset):
        given = {
            "text": text,
            "label": label,
            "id": id,
            "split": split,
            "pred_probs": pred_probs,
            "annotations": annotations,
            "embeddings": embeddings,
        }
        extra = [k for k, v in given.items() if v is not None]
        if extra:
            raise UsageError(
                f"show() got a loaded Dataset and also {', '.join(extra)}: pass the options to "
                "load_dataset instead, or pass the DataFrame to show()"
            )
        return data
    if not isinstance(data, (pd.DataFrame, str, os.PathLike)):
        raise UsageError(
            f"show() takes a DataFrame, a Dataset or a path, not {type(data).__name__}"
        )
    from labelaudit.io import load_dataset

    return load_dataset(
        data,
        text_col=text,
        label_col=label,
        id_col=id,
        split_col=split,
        probs=pred_probs,
        annotations=annotations,
        embeddings=embeddings,
    )


def _running_server(root: Path, port: int | None) -> _Server | None:
    """A healthy server of this process for ``root`` (on ``port`` when given); dead ones are dropped."""
    for key, server in list(_SERVERS.items()):
        if key[0] != str(root) or (port is not None and key[1] != port):
            continue
        if server.running and _healthy(server.base_url):
            return server
        server.stop()
        _SERVERS.pop(key, None)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


def _healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _start_server(root: Path, dataset_hash: str, port: int | None) -> _Server:
    from labelaudit.commands.app import APP_SCRIPT, missing_app_script, streamlit_command

    missing = missing_app_script()
    if missing:
        raise UsageError(missing)
    if port is None:
        port = _free_port()
    elif _port_in_use(port):
        raise UsageError(
            f"port {port} is already in use; pass another port, or none to pick a free one"
        )
    env = dict(
        os.environ,
        LABELAUDIT_WORKSPACE=str(root),
        LABELAUDIT_DATASET=dataset_hash,
        # the Data page's default data roots are those of the notebook's folder (labelaudit.security)
        LABELAUDIT_LAUNCH_DIR=os.environ.get("LABELAUDIT_LAUNCH_DIR") or os.getcwd(),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    log_path = root / "logs" / f"dashboard-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(log_path, "w")  # noqa: SIM115 - closed by _Server.stop
    cmd = streamlit_command(port, HOST, env["LABELAUDIT_LAUNCH_DIR"])
    # A new session: stop() can end streamlit and its children together, and Ctrl-C in the
    # notebook does not reach the server.
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=str(APP_SCRIPT.parent),
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = _Server(proc=proc, port=port, workspace=root, log_path=log_path, log_file=log_file)
    deadline = time.monotonic() + START_TIMEOUT
    while not _healthy(server.base_url):
        if not server.running:
            tail = server.log_tail()
            server.stop()
            raise RuntimeError(f"the dashboard exited while starting (log {log_path}):\n{tail}")
        if time.monotonic() > deadline:
            tail = server.log_tail()
            server.stop()
            raise RuntimeError(
                f"the dashboard did not answer within {START_TIMEOUT:.0f} s (log {log_path}):\n{tail}"
            )
        time.sleep(0.25)
    _SERVERS[(str(root), port)] = server
    return server

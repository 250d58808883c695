"""``labelaudit app [DATA options]``: start the dashboard, optionally with a dataset preloaded."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from labelaudit.cli import add_data_options, load_from_args

#: The dashboard's entry script: beside the labelaudit package, in a checkout and in an installed
#: wheel alike (the wheel ships app.py, components/ and views/ at the top level; see pyproject.toml).
APP_SCRIPT = Path(__file__).resolve().parents[2] / "app.py"
#: What ``streamlit run`` starts: app.py as an ``st.App`` behind one middleware that turns a nested
#: page URL (``/a/b``, a blank page in Streamlit alone) into one that renders (components/routes.py).
SERVER_SCRIPT = APP_SCRIPT.parent / "serve.py"


def missing_app_script() -> str | None:
    """What is wrong when the dashboard's scripts are not beside the package (a broken install),
    else None."""
    for script in (APP_SCRIPT, SERVER_SCRIPT):
        if not script.exists():
            return f"the app script {script} is missing; reinstall labelaudit (its wheel ships it)"
    return None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("app", help="start the dashboard (on DATA when given)")
    add_data_options(p, data_required=False)
    p.add_argument("--workspace", help="folder for derived artifacts (default .labelaudit)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument(
        "--host",
        default=None,
        help=f"address to listen on (default {LOOPBACK}: this machine only); "
        "an address other machines can reach needs --expose",
    )
    p.add_argument(
        "--expose",
        action="store_true",
        help="listen on every interface (or the non-loopback --host): anyone who can reach the "
        "port can read the data roots and write review decisions (docs/security.md)",
    )
    p.add_argument(
        "--data-root",
        action="append",
        default=[],
        metavar="FOLDER",
        help="a folder the Data page may read server paths from (repeatable; added to "
        "LABELAUDIT_DATA_ROOTS, ./data, ./datasets, ./sample_data and the bundled sample)",
    )
    p.set_defaults(func=run)


LOOPBACK = "127.0.0.1"


def listen_address(host: str | None, expose: bool) -> str:
    """The address the server binds: loopback unless exposing is asked for explicitly.

    Example:
        >>> listen_address(None, False), listen_address(None, True), listen_address("::1", False)
        ('127.0.0.1', '0.0.0.0', '::1')
    """
    import ipaddress

    from labelaudit.errors import UsageError

    if host is None:
        return "0.0.0.0" if expose else LOOPBACK
    if host == "localhost":
        return LOOPBACK
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False  # a host name: it may resolve to any interface
    if not loopback and not expose:
        raise UsageError(
            f"--host {host} would let other machines reach the app; add --expose to confirm "
            "(see docs/security.md for what they can then read and write)"
        )
    return host


#: Flags of every production run (they repeat .streamlit/config.toml, which an installed wheel run
#: from another folder does not see): watch no files (the watcher walks .venv and the workspace and
#: floods the log with "Inotify queue overflowed"), no usage statistics, no Deploy button.
PRODUCTION_FLAGS = (
    "--server.headless",
    "true",
    "--browser.gatherUsageStats",
    "false",
    "--server.fileWatcherType",
    "none",
    "--server.runOnSave",
    "false",
    "--client.toolbarMode",
    "viewer",
)


def secrets_files(launch_dir: str | Path | None = None) -> list[str]:
    """Where the server reads its secrets (the ``[auth]`` table that turns on login,
    docs/review.md), later files winning: Streamlit's own two places (``~/.streamlit`` and the
    app's folder, where the server runs) and then ``.streamlit/secrets.toml`` in the folder
    ``labelaudit app`` was started from, the one a deployment edits. Missing files are skipped.

    >>> secrets_files("/srv/team")[-1]
    '/srv/team/.streamlit/secrets.toml'
    """
    launch = Path(launch_dir if launch_dir is not None else os.getcwd()).expanduser().resolve()
    places = [Path.home(), APP_SCRIPT.parent, launch]
    return list(dict.fromkeys(str(p / ".streamlit" / "secrets.toml") for p in places))


def streamlit_command(
    port: int, host: str = LOOPBACK, launch_dir: str | Path | None = None
) -> list[str]:
    secrets = [a for f in secrets_files(launch_dir) for a in ("--secrets.files", f)]
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(SERVER_SCRIPT),
        *PRODUCTION_FLAGS,
        "--server.port",
        str(port),
        "--server.address",
        host,
        *secrets,
    ]


#: The scan options the app uses until a user changes them (components/scan.py DEFAULT_OPTIONS).
APP_SCAN_OPTIONS = {"cluster_method": "hdbscan", "n_clusters": None, "seed": 0}


def _start_scan(ws, ds) -> None:
    """Start the dataset's scan in the background before the server is even up, so the map is on
    its way before the first page is opened (the app shows the same job's progress)."""
    from labelaudit import jobs

    status = jobs.start_scan(ws, ds, APP_SCAN_OPTIONS)
    if status is None:
        return
    if status.state == jobs.COMPLETE:
        print("scan: stored in the workspace")
    elif status.state == jobs.RUNNING and status.estimate_seconds:
        print(
            f"scan: running in the background, about {status.estimate_seconds:,.0f} s "
            f"({status.estimate_source}); every page shows its progress"
        )


def run(args: argparse.Namespace) -> int:
    from labelaudit.security import DATA_ROOTS_ENV, LAUNCH_DIR_ENV
    from labelaudit.workspace import Workspace

    host = listen_address(args.host, args.expose)  # UsageError -> exit 2, before any work
    missing = missing_app_script()
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    ws = Workspace(args.workspace)
    env = dict(
        os.environ, LABELAUDIT_WORKSPACE=str(ws.root), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"
    )
    # The server runs in the app's folder: relative paths and the default roots keep meaning the
    # folder this command was started from.
    env[LAUNCH_DIR_ENV] = os.environ.get(LAUNCH_DIR_ENV) or os.getcwd()
    roots = [str(Path(r).expanduser().resolve()) for r in args.data_root]
    if roots:
        env[DATA_ROOTS_ENV] = os.pathsep.join(
            [*roots, *filter(None, [os.environ.get(DATA_ROOTS_ENV)])]
        )
    if args.data:
        ds = load_from_args(args)  # DataError -> exit 1 with the problems, before any server starts
        env["LABELAUDIT_DATASET"] = ws.save_dataset(ds)
        print(f"{ds.source}: {ds.n:,} rows, {ds.k} classes -> workspace {ws.root}")
        _start_scan(ws, ds)
    print(f"labelaudit dashboard on http://{host}:{args.port}")
    if host != LOOPBACK and host != "::1":
        print(
            f"warning: listening on {host}: anyone who can reach port {args.port} can use the app "
            "(docs/security.md)",
            file=sys.stderr,
        )
    cmd = streamlit_command(args.port, host, env[LAUNCH_DIR_ENV])
    return subprocess.call(cmd, env=env, cwd=str(APP_SCRIPT.parent))

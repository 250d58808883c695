"""``labelaudit app [DATA options]``: start the dashboard, optionally with a dataset preloaded."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from labelaudit.cli import add_data_options, load_from_args

APP_SCRIPT = Path(__file__).resolve().parents[2] / "app.py"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("app", help="start the dashboard (on DATA when given)")
    add_data_options(p, data_required=False)
    p.add_argument("--workspace", help="folder for derived artifacts (default .labelaudit)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--host", default="localhost")
    p.set_defaults(func=run)


def streamlit_command(port: int, host: str = "localhost") -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_SCRIPT),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.port",
        str(port),
        "--server.address",
        host,
    ]


def run(args: argparse.Namespace) -> int:
    from labelaudit.workspace import Workspace

    ws = Workspace(args.workspace)
    env = dict(
        os.environ, LABELAUDIT_WORKSPACE=str(ws.root), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"
    )
    if args.data:
        ds = load_from_args(args)  # DataError -> exit 1 with the problems, before any server starts
        env["LABELAUDIT_DATASET"] = ws.save_dataset(ds)
        print(f"{ds.source}: {ds.n:,} rows, {ds.k} classes -> workspace {ws.root}")
    print(f"labelaudit dashboard on http://{args.host}:{args.port}")
    if not APP_SCRIPT.exists():
        print(
            f"error: the app script {APP_SCRIPT} is missing (run from a source checkout)",
            file=sys.stderr,
        )
        return 2
    return subprocess.call(
        streamlit_command(args.port, args.host), env=env, cwd=str(APP_SCRIPT.parent)
    )

"""``labelaudit labelstudio push|pull|check``: the review queue to a Label Studio project and back.

The server comes from ``--url`` or ``LABEL_STUDIO_URL``; the token only from ``LABEL_STUDIO_API_KEY``
or ``--token-file`` (never a command-line value: other users of the machine could read it). A
server that is down, slow or refuses the token is one clear line and exit code 1; nothing is
written then.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from labelaudit.cli import add_reviewed_dataset_options, reviewed_dataset_hash
from labelaudit.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "labelstudio",
        help="send the review queue to a Label Studio project, take the decisions made there back",
    )
    actions = p.add_subparsers(dest="labelstudio_action", metavar="ACTION")
    actions.required = True
    check = actions.add_parser("check", help="check the server URL and token")
    push = actions.add_parser("push", help="send the review queue as one task per item")
    pull = actions.add_parser(
        "pull", help="take the decisions made in Label Studio into the review store"
    )
    for a in (check, push, pull):
        a.add_argument("--url", help="Label Studio server (default: LABEL_STUDIO_URL)")
        a.add_argument(
            "--token-file",
            help="file holding the access token (default: the LABEL_STUDIO_API_KEY variable)",
        )
        a.add_argument(
            "--timeout", type=float, default=60.0, help="seconds one request may take (default 60)"
        )
    for a in (push, pull):
        add_reviewed_dataset_options(a)
    push.add_argument(
        "--project", type=int, help="an existing project id (default: create a new project)"
    )
    push.add_argument("--title", help="title of the new project")
    push.add_argument(
        "--limit", type=int, default=200, help="send the first N items of the queue (default 200)"
    )
    push.add_argument("--flagged-only", action="store_true", help="only rows the scan flagged")
    push.add_argument(
        "--include-decided", action="store_true", help="also send items already decided here"
    )
    pull.add_argument(
        "--project", type=int, help="project id (default: the last one the queue was pushed to)"
    )
    p.set_defaults(func=run)


def _connection(args: argparse.Namespace):
    from labelaudit.integrations.labelstudio import LabelStudioConnection

    token = None
    if args.token_file:
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"--token-file {args.token_file}: cannot read it ({e})") from None
    return LabelStudioConnection.from_env(args.url, token=token, timeout=args.timeout)


def run(args: argparse.Namespace) -> int:
    from labelaudit.integrations.labelstudio import LabelStudioError

    try:
        conn = _connection(args)
        if args.labelstudio_action == "check":
            info = conn.check()
            print(f"{conn.url}: Label Studio {info['version']}, signed in as {info['user']}")
            return 0
        return _push(conn, args) if args.labelstudio_action == "push" else _pull(conn, args)
    except LabelStudioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def _open(args: argparse.Namespace):
    from labelaudit.workspace import Workspace

    ws = Workspace(args.workspace)
    store = ws.review_store(args.db)
    log = store.log()
    decided = log.groupby("dataset_version")["item_id"].nunique().to_dict() if len(log) else {}
    h = reviewed_dataset_hash(args, ws, decided)
    return ws, store, ws.load_dataset(h)


def _push(conn, args: argparse.Namespace) -> int:
    from labelaudit.integrations.labelstudio import push_queue
    from labelaudit.progress import TqdmProgress
    from labelaudit.reporting import find_scan
    from labelaudit.review.queue import build_queue

    if args.limit <= 0:
        raise UsageError(f"--limit must be positive, got {args.limit}")
    ws, store, ds = _open(args)
    try:
        scan = find_scan(ds, ws)
        if scan is None:
            print(
                f"no stored scan of {ds.content_hash}: the queue follows the model's probabilities "
                "(run `labelaudit scan` to rank by every detector)",
                file=sys.stderr,
            )
        queue = build_queue(
            ds,
            scan_table=scan.table if scan is not None else None,
            pred_probs=scan.detection.pred_probs
            if scan is not None and scan.detection is not None
            else ds.pred_probs,
            decided_ids=set(store.current(ds.content_hash)["item_id"]),
            include_decided=args.include_decided,
            flagged_only=args.flagged_only,
        )[: args.limit]
        bar = TqdmProgress()
        try:
            r = push_queue(
                conn,
                ds,
                store,
                item_ids=queue,
                workspace=ws,
                scan=scan,
                project=args.project,
                title=args.title,
                progress=bar,
            )
        finally:
            bar.close()
        print(r.summary())
        print(f"model version of the suggestions: {r.model_version}")
        print(
            f"open {conn.url}/projects/{r.project}; then: labelaudit labelstudio pull --project {r.project}"
        )
    finally:
        store.close()
    return 0


def _pull(conn, args: argparse.Namespace) -> int:
    from labelaudit.integrations.labelstudio import pull_decisions, sent_projects
    from labelaudit.progress import TqdmProgress

    ws, store, ds = _open(args)
    try:
        project = args.project
        if project is None:
            sent = [s for s in sent_projects(ws, ds.content_hash) if s.url == conn.url]
            if not sent:
                raise UsageError(
                    f"the queue of {ds.content_hash} was never pushed to {conn.url} from {ws.root}; "
                    "run `labelaudit labelstudio push` first, or pass --project"
                )
            project = sent[0].project
        bar = TqdmProgress()
        try:
            res = pull_decisions(conn, ds, store, project=project, workspace=ws, progress=bar)
        finally:
            bar.close()
        print(res.summary())
        for c in res.conflicts:
            print(f"conflict: {c.describe()}")
        for h in res.held:
            print(f"held: {h.describe()}")
    finally:
        store.close()
    return 0

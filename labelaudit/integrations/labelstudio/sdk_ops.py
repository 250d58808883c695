"""The calls labelaudit makes with the official ``label-studio-sdk`` client, and nothing else.

This file imports only the standard library and ``label_studio_sdk``, so it runs in two ways:

- in-process, when ``label_studio_sdk`` is importable next to labelaudit;
- as a script in a separate Python that has the SDK (``python sdk_ops.py`` reading one JSON request on
  stdin and writing one JSON reply on stdout), because the SDK's pins (numpy < 2.3 through
  opencv-python-headless) conflict with labelaudit's environment; see ``docs/integrations.md``.

The token travels only inside the request (stdin), never on a command line or in the environment of
a child process, and no reply or error message contains it.

Every reply is ``{"ok": true, "result": ...}`` or ``{"ok": false, "kind": K, "message": M}`` with
``K`` in ``unreachable`` (no server answers), ``timeout`` (the server answered too slowly),
``refused`` (HTTP 401/403: the token), ``not_found`` (404), ``api`` (another HTTP error) or
``client`` (the SDK failed otherwise).
"""

from __future__ import annotations

import json
import sys
from typing import Any

#: Tasks per import request: bounded requests, and a progress step per batch.
IMPORT_BATCH = 1000


def _client(req: dict[str, Any]) -> Any:
    from label_studio_sdk import LabelStudio

    return LabelStudio(
        base_url=req["url"].rstrip("/"), api_key=req["token"], timeout=float(req.get("timeout", 60))
    )


def op_check(c: Any, _req: dict[str, Any]) -> dict[str, Any]:
    me = c.users.whoami()
    version = c.versions.get()
    return {
        "user": me.email or me.username or f"user {me.id}",
        "user_id": me.id,
        "version": getattr(version, "release", None) or str(version),
    }


def op_create_project(c: Any, req: dict[str, Any]) -> dict[str, Any]:
    p = c.projects.create(
        title=req["title"], label_config=req["label_config"], description=req.get("description", "")
    )
    return {"project": p.id}


def op_project(c: Any, req: dict[str, Any]) -> dict[str, Any]:
    p = c.projects.get(id=int(req["project"]))
    return {"project": p.id, "title": p.title, "label_config": p.label_config}


def op_import_tasks(c: Any, req: dict[str, Any]) -> dict[str, Any]:
    tasks = req["tasks"]
    ids: list[int] = []
    for start in range(0, len(tasks), IMPORT_BATCH):
        r = c.projects.import_tasks(
            int(req["project"]), request=tasks[start : start + IMPORT_BATCH], return_task_ids=True
        )
        ids.extend(int(i) for i in (r.task_ids or []))
    return {"task_ids": ids}


def op_export(c: Any, req: dict[str, Any]) -> dict[str, Any]:
    raw = b"".join(
        c.projects.exports.download_sync(
            int(req["project"]),
            export_type="JSON",
            download_all_tasks=bool(req.get("all_tasks", False)),
        )
    )
    users = {str(u.id): (u.email or u.username or f"user {u.id}") for u in c.users.list()}
    return {"tasks": json.loads(raw or b"[]"), "users": users}


OPS = {
    "check": op_check,
    "create_project": op_create_project,
    "project": op_project,
    "import_tasks": op_import_tasks,
    "export": op_export,
}


def _detail(body: Any) -> str:
    if isinstance(body, dict):
        parts = [str(body.get("detail") or "")]
        if body.get("validation_errors"):
            parts.append(json.dumps(body["validation_errors"], sort_keys=True)[:500])
        return " ".join(p for p in parts if p)
    return str(body)[:300] if body else ""


def run(req: dict[str, Any]) -> dict[str, Any]:
    """Run one request ``{"op", "url", "token", "timeout", ...}``; never raises."""
    try:
        import httpx
        from label_studio_sdk.core.api_error import ApiError
    except ImportError as e:
        return {
            "ok": False,
            "kind": "client",
            "message": f"label-studio-sdk is not installed ({e})",
        }
    op = OPS.get(str(req.get("op")))
    if op is None:
        return {"ok": False, "kind": "client", "message": f"unknown operation {req.get('op')!r}"}
    try:
        return {"ok": True, "result": op(_client(req), req)}
    except httpx.TimeoutException:
        return {
            "ok": False,
            "kind": "timeout",
            "message": f"no answer within {req.get('timeout', 60)} s",
        }
    except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.UnsupportedProtocol) as e:
        return {"ok": False, "kind": "unreachable", "message": type(e).__name__}
    except ApiError as e:
        code = e.status_code
        kind = "refused" if code in (401, 403) else "not_found" if code == 404 else "api"
        return {"ok": False, "kind": kind, "message": f"HTTP {code} {_detail(e.body)}".strip()}
    except Exception as e:  # the SDK's own failures (pydantic parsing of an unexpected reply…)
        return {"ok": False, "kind": "client", "message": f"{type(e).__name__}: {str(e)[:300]}"}


def main() -> int:
    req = json.loads(sys.stdin.buffer.read())
    sys.stdout.write(json.dumps(run(req)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

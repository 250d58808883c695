"""A connection to a Label Studio server through the official ``label-studio-sdk`` client.

The SDK runs in-process when it is importable here, else in the Python named by
``LABELAUDIT_LABELSTUDIO_PYTHON`` (``make labelstudio-env`` builds one), because its pins conflict with
labelaudit's (see ``docs/integrations.md``). Either way the same functions of
:mod:`labelaudit.integrations.labelstudio.sdk_ops` make the calls.

The token is held only in memory: it is never printed, logged, written to the workspace or put on a
command line; ``repr`` and every error message leave it out.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelaudit.errors import UsageError

#: Environment variables: server URL and token (the SDK's own names), and the Python that has the SDK.
URL_ENV = "LABEL_STUDIO_URL"
TOKEN_ENV = "LABEL_STUDIO_API_KEY"
PYTHON_ENV = "LABELAUDIT_LABELSTUDIO_PYTHON"
#: Seconds one HTTP request may take before the server counts as too slow.
DEFAULT_TIMEOUT = 60.0

_OPS_FILE = Path(__file__).with_name("sdk_ops.py")


class LabelStudioError(Exception):
    """The server could not be used: ``kind`` as in :mod:`sdk_ops` (unreachable, timeout, refused,
    not_found, api, client, unavailable); the message says what to do and never holds the token."""

    def __init__(self, kind: str, message: str):
        self.kind = kind
        super().__init__(message)


def sdk_in_process() -> bool:
    """True when ``label_studio_sdk`` can be imported by this Python."""
    import importlib.util

    return importlib.util.find_spec("label_studio_sdk") is not None


@dataclass
class LabelStudioConnection:
    """Where the server is and how to reach it. Create with :meth:`from_env` or directly.

    >>> conn = LabelStudioConnection("http://127.0.0.1:8080", token="…")     # doctest: +SKIP
    >>> conn.check()["user"]                                                 # doctest: +SKIP
    'ana@example.com'
    """

    url: str
    token: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT
    python: str | None = None

    def __post_init__(self) -> None:
        self.url = (self.url or "").strip().rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise UsageError(
                f"Label Studio URL {self.url!r}: expected http://host:port or https://host"
            )
        if not self.token or not str(self.token).strip():
            raise UsageError(
                f"no Label Studio token: set {TOKEN_ENV} (Account & Settings → Access token)"
            )
        self.token = str(self.token).strip()
        if self.timeout <= 0:
            raise UsageError(f"timeout must be positive, got {self.timeout}")

    def __repr__(self) -> str:
        return f"LabelStudioConnection(url={self.url!r}, token=<hidden>, timeout={self.timeout})"

    @classmethod
    def from_env(
        cls,
        url: str | None = None,
        *,
        token: str | None = None,
        timeout: float | None = None,
        environ: dict[str, str] | None = None,
    ) -> LabelStudioConnection:
        """URL and token from the arguments, else ``LABEL_STUDIO_URL`` / ``LABEL_STUDIO_API_KEY``."""
        env = os.environ if environ is None else environ
        u = url or env.get(URL_ENV, "")
        if not u:
            raise UsageError(f"no Label Studio server: pass --url or set {URL_ENV}")
        return cls(
            u,
            token=token or env.get(TOKEN_ENV, ""),
            timeout=timeout or DEFAULT_TIMEOUT,
            python=env.get(PYTHON_ENV) or None,
        )

    @staticmethod
    def configured(environ: dict[str, str] | None = None) -> bool:
        """True when both the server URL and a token are set in the environment."""
        env = os.environ if environ is None else environ
        return bool(env.get(URL_ENV, "").strip() and env.get(TOKEN_ENV, "").strip())

    # ------------------------------------------------------------------ calls
    def call(self, op: str, *, slow_calls: int = 1, **payload: Any) -> Any:
        """Run one :mod:`sdk_ops` operation; its result, or :class:`LabelStudioError`.

        ``slow_calls``: how many HTTP requests the operation makes at most (bounds the wait for the
        separate Python).
        """
        req = {"op": op, "url": self.url, "token": self.token, "timeout": self.timeout, **payload}
        if self.python is None and sdk_in_process():
            from labelaudit.integrations.labelstudio import sdk_ops

            reply = sdk_ops.run(req)
        else:
            reply = self._call_bridge(req, slow_calls)
        if not reply.get("ok"):
            raise self._error(str(reply.get("kind")), str(reply.get("message", "")))
        return reply["result"]

    def _call_bridge(self, req: dict[str, Any], slow_calls: int) -> dict[str, Any]:
        python = self.python
        if not python:
            raise LabelStudioError(
                "unavailable",
                "the Label Studio client (label-studio-sdk) is not installed for labelaudit: run "
                f"`make labelstudio-env`, or set {PYTHON_ENV} to a Python that has label-studio-sdk",
            )
        if not Path(python).exists():
            raise LabelStudioError(
                "unavailable",
                f"{PYTHON_ENV}={python}: no such file; run `make labelstudio-env` or point it at a "
                "Python that has label-studio-sdk",
            )
        # The child sees no token in argv or environment: the request goes on stdin.
        env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
        try:
            out = subprocess.run(
                [python, str(_OPS_FILE)],
                input=json.dumps(req).encode(),
                capture_output=True,
                env=env,
                timeout=30 + self.timeout * max(1, slow_calls) + 10,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"ok": False, "kind": "timeout", "message": "the server did not finish in time"}
        except OSError as e:
            return {"ok": False, "kind": "unavailable", "message": f"cannot run {python} ({e})"}
        try:
            return json.loads(out.stdout.decode("utf-8", errors="replace"))
        except json.JSONDecodeError:
            tail = out.stderr.decode("utf-8", errors="replace").strip().splitlines()[-1:]
            return {
                "ok": False,
                "kind": "client",
                "message": f"the client process failed (exit {out.returncode}) {' '.join(tail)}"[
                    :400
                ],
            }

    def _error(self, kind: str, message: str) -> LabelStudioError:
        message = message.replace(self.token, "<token>")
        where = f"Label Studio at {self.url}"
        text = {
            "unreachable": f"{where} is not reachable (nothing answers there); check the URL and that "
            "the server is running",
            "timeout": f"{where} did not answer within {self.timeout:g} s ({message}); it is busy or "
            "down: try again later or raise --timeout",
            "refused": f"{where} refused the token ({message}); create a new access token in "
            f"Label Studio (Account & Settings) and set {TOKEN_ENV}",
            "not_found": f"{where}: not found ({message}); check the project id",
            "api": f"{where} answered with an error: {message}",
            "unavailable": message,
        }.get(kind, f"{where}: the client failed: {message}")
        return LabelStudioError(kind, text)

    # ------------------------------------------------------------------ operations
    def check(self) -> dict[str, Any]:
        """``{"user", "user_id", "version"}`` of the token's user: proves URL and token work."""
        return self.call("check")

    def create_project(self, title: str, label_config: str, description: str = "") -> int:
        return int(
            self.call(
                "create_project", title=title, label_config=label_config, description=description
            )["project"]
        )

    def project(self, project: int) -> dict[str, Any]:
        return self.call("project", project=int(project))

    def import_tasks(self, project: int, tasks: list[dict[str, Any]]) -> list[int]:
        """Import ``tasks`` (Label Studio task dicts) in batches; the new task ids, in order."""
        from labelaudit.integrations.labelstudio.sdk_ops import IMPORT_BATCH

        batches = max(1, -(-len(tasks) // IMPORT_BATCH))
        return [
            int(i)
            for i in self.call(
                "import_tasks", slow_calls=batches, project=int(project), tasks=tasks
            )["task_ids"]
        ]

    def export(self, project: int, *, all_tasks: bool = False) -> tuple[list[Any], dict[str, str]]:
        """The project's JSON export (annotated tasks, or all) and ``{user id: e-mail}``."""
        r = self.call("export", slow_calls=2, project=int(project), all_tasks=all_tasks)
        return r["tasks"], {str(k): str(v) for k, v in r["users"].items()}

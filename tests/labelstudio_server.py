"""A real Label Studio server for tests and benchmarks: loopback, a throwaway data folder, stopped
also on failure.

The server (PyPI ``label-studio``) lives in its own virtual environment, ``.venv-labelstudio``, built by
``make labelstudio-env`` (``make test`` depends on it), so its pins never touch labelaudit's. Its first
start runs every database migration (minutes on a busy machine); that is done once, into a *template*
data folder beside the venv with one admin user and a random access token. Each test session copies
the template into a fresh temporary folder and starts from there, which skips the migrations.

``python -m tests.labelstudio_server --template`` builds the template (the Makefile calls it).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-labelstudio"
TEMPLATE = VENV / "template-data"
ADMIN = "labelaudit-tests@example.com"
START_TIMEOUT = 600.0


def server_python() -> Path:
    """The Python of the Label Studio venv (``LABELAUDIT_LABELSTUDIO_PYTHON`` wins)."""
    return Path(os.environ.get("LABELAUDIT_LABELSTUDIO_PYTHON") or VENV / "bin" / "python")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LabelStudioServer:
    """A running server: ``url``, ``token`` (the admin's) and ``python`` (has label-studio-sdk)."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    python: Path = field(default_factory=server_python)
    token: str = ""
    proc: subprocess.Popen | None = None
    owns_data: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(
        self, *, credentials: bool = False, timeout: float = START_TIMEOUT
    ) -> LabelStudioServer:
        args = [
            str(self.python.parent / "label-studio"),
            "start",
            "--no-browser",
            "--host",
            "127.0.0.1",
            "-p",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--log-level",
            "WARNING",
            "--enable-legacy-api-token",
        ]
        if credentials:
            args += [
                "--username",
                ADMIN,
                "--password",
                secrets.token_hex(12),
                "--user-token",
                self.token,
            ]
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("LABEL_STUDIO_", "DJANGO_", "LABELAUDIT_TEST_PG"))
        }
        env.update(
            LABEL_STUDIO_BASE_DATA_DIR=str(self.data_dir),
            LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
            COLLECT_ANALYTICS="false",
            SENTRY_DSN="",
            FRONTEND_SENTRY_DSN="",
        )
        self.log_path = self.data_dir / "server.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 (open while the server runs; closed in stop)
        self.proc = subprocess.Popen(
            args, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            self._wait(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"label-studio exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(1)
        raise RuntimeError(f"label-studio did not answer in {timeout:.0f} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(20)
        if getattr(self, "_log", None) is not None:
            self._log.close()
        if self.owns_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def sdk(self, code: str) -> str:
        """Run ``code`` with the official SDK in the server's venv; ``c`` is a client logged in as the
        admin. Returns its stdout (raise RuntimeError on failure). The token goes on stdin."""
        prelude = (
            "import sys, json\n"
            "from label_studio_sdk import LabelStudio\n"
            "c = LabelStudio(base_url=sys.argv[1], api_key=sys.stdin.readline().strip())\n"
        )
        out = subprocess.run(
            [str(self.python), "-c", prelude + code, self.url],
            input=self.token + "\n",
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"SDK script failed:\n{out.stderr[-3000:]}")
        return out.stdout


def build_template(template: Path = TEMPLATE) -> Path:
    """Migrate a data folder once and create the admin with a random token (kept in ``token``)."""
    if (template / "token").exists():
        return template
    tmp = Path(tempfile.mkdtemp(prefix="ls-template-", dir=template.parent))
    server = LabelStudioServer(data_dir=tmp, token=secrets.token_hex(20))
    server.start(credentials=True)
    server.stop()
    (tmp / "token").write_text(server.token)
    (tmp / "server.log").unlink(missing_ok=True)
    shutil.rmtree(template, ignore_errors=True)
    tmp.rename(template)
    return template


def start_from_template(template: Path = TEMPLATE) -> LabelStudioServer:
    """A new server on a copy of the template in a throwaway folder (deleted by ``stop``)."""
    build_template(template)
    data = Path(tempfile.mkdtemp(prefix="labelaudit-ls-"))
    shutil.copytree(template, data, dirs_exist_ok=True)
    server = LabelStudioServer(
        data_dir=data, token=(template / "token").read_text().strip(), owns_data=True
    )
    return server.start()


if __name__ == "__main__":
    if sys.argv[1:] == ["--template"]:
        t0 = time.monotonic()
        print(
            json.dumps(
                {"template": str(build_template()), "seconds": round(time.monotonic() - t0, 1)}
            )
        )
    else:
        sys.exit("usage: python -m tests.labelstudio_server --template")

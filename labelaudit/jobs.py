"""Scans that run in the background, with their progress kept in the workspace.

Nobody waits at a button: loading a dataset (or starting the app on one) calls :func:`start_scan`,
which starts ``python -m labelaudit.jobs WORKSPACE HASH OPTIONS`` in a process of its own (the
app's pages stay responsive, and umap's compilation stays off page views). The job writes its
progress, atomically and at most a few times a second, to::

    <root>/jobs/scan-<content_hash>-<params_hash>.json   state, step, counts, seconds per finished step
    <root>/jobs/scan-<content_hash>-<params_hash>.lock   held while the job runs (its pid inside)
    <root>/jobs/scan-<content_hash>-<params_hash>.log    the job's stderr

so any process can show it: every page of the app, a reload, another browser, a restarted server.
A job whose process died (a server restart, a kill) is found by its lock's pid and started again;
two sessions asking for the same scan share one job. The scan itself is :func:`labelaudit.scanning.scan`,
whose steps are each stored as they finish, so a restarted job resumes after the last stored step.

>>> status = start_scan(Workspace("ws"), ds.content_hash, {"seed": 0})   # doctest: +SKIP
>>> read_status(Workspace("ws"), ds.content_hash, {"seed": 0}).describe()  # doctest: +SKIP
'embedding: 2,048 of 13,083 · about 70 s left'
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labelaudit import first_pass
from labelaudit.workspace import Workspace, params_hash

#: Seconds between two progress writes (a step's first and last update are always written).
WRITE_EVERY = 0.5
#: Rough cost per row of each part of a background scan job (first pass included) on a quiet 2-core
#: machine, used for the estimate before a workspace has timed a scan of its own: the job's own
#: step times in bench/results/first_run.md, "First run: the background scan", the quiet run of
#: 2026-12-03 10:24 UTC (main 1386c01, load 0.3): the bundled sample's 13,083 rows stored 78.3 s
#: after the start; embedding 4.6 + 32.0 s (first pass + the rest), projection 3.4 + 9.6 s,
#: neighbour graph 0.8 s, clustering 0.5 s, the first pass's and the full detectors (agreement
#: included) 21.6 s; the rest (process start, model load) is in no step. (Before: 119.6 s on
#: main 0165ea2; the numba cache for UMAP and the fits on both cores made it 1.5x too high.)
ROUGH_SECONDS_PER_ROW = {
    "embedding": 36.6 / 13_083,
    "projection": 13.0 / 13_083,
    "neighbour graph": 0.8 / 13_083,
    "clustering": 0.5 / 13_083,
    "detection": 21.6 / 13_083,
}
#: How far the estimate may be from the measured job on the machine it was measured on (the
#: bench reports the ratio: bench/bench_first_run.py).
ESTIMATE_TOLERANCE = 0.25
RUNNING, COMPLETE, FAILED, STOPPED = "running", "complete", "failed", "stopped"
#: Environment variable choosing how start_scan runs a job: "process" (default: a background
#: process), "inline" (in the calling process, before start_scan returns: for tests whose fakes
#: live in the test process, and scripts that want to wait) or "off" (never started on its own:
#: the app then offers a "Run scan" button, as before issue 16; the test suite's default).
RUNNER_ENV = "LABELAUDIT_SCAN_RUNNER"
#: Set to 0 to keep the background job from starting the map's worker process
#: (:func:`labelaudit.projection.start_worker`): every step then runs in order in the job's process.
MAP_WORKER_ENV = "LABELAUDIT_MAP_WORKER"


def map_worker_wanted() -> bool:
    """Whether the background job starts the map's worker: more than one core
    (:func:`labelaudit.dynamics.cpu_workers`) and ``LABELAUDIT_MAP_WORKER`` not 0."""
    from labelaudit.dynamics import cpu_workers

    return cpu_workers() > 1 and os.environ.get(MAP_WORKER_ENV, "1").strip() != "0"


def runner() -> str:
    value = os.environ.get(RUNNER_ENV, "process").strip().lower()
    return value if value in ("process", "inline", "off") else "process"


@dataclass
class JobStatus:
    """What a background scan is doing. ``state``: "running", "complete", "failed" (the scan
    reported a problem: not retried on its own) or "stopped" (its process ended early, e.g. a
    server restart: started again on the next request); ``step``,
    ``done``, ``total``: the current step and its counts; ``finished``: seconds of each finished
    step; ``started`` / ``updated``: wall-clock seconds (time.time()); ``estimate_seconds``: the
    whole scan's expected duration, from this workspace's earlier scans or the rough defaults;
    ``error``: the message of a failed scan (a data or usage problem, in plain words)."""

    state: str
    step: str = ""
    done: int = 0
    total: int = 0
    finished: dict[str, float] = field(default_factory=dict)
    started: float = 0.0
    updated: float = 0.0
    step_started: float = 0.0
    pid: int = 0
    n_rows: int = 0
    estimate_seconds: float | None = None
    estimate_source: str = ""
    error: str = ""
    #: The first pass (:mod:`labelaudit.first_pass`) is stored: pages can show it until the full scan is.
    first_pass: bool = False
    #: Seconds of work done in the map's worker beside the job's own steps (the first pass's scan
    #: while the job embeds the rest): not part of ``finished``, whose steps follow one another.
    beside: dict[str, float] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    def step_text(self) -> str:
        """'embedding: 2,048 of 13,083 · about 70 s left' (the current step's counts and time left)."""
        if not self.step:
            return "starting"
        if not self.total:
            return f"{self.step}: {self.done:,}"
        text = f"{self.step}: {self.done:,} of {self.total:,}"
        elapsed = self.updated - self.step_started
        if self.done > 0 and elapsed > 0 and self.done < self.total:
            text += f" · about {elapsed / self.done * (self.total - self.done):,.0f} s left"
        return text

    def fraction(self) -> float:
        return min(self.done / self.total, 1.0) if self.total else 0.0

    def overall_text(self, now: float | None = None) -> str:
        """Elapsed time, and the time left of the whole scan against the estimate."""
        now = time.time() if now is None else now
        elapsed = max(now - self.started, 0.0)
        text = f"{elapsed:,.0f} s so far"
        if self.estimate_seconds:
            left = self.estimate_seconds - elapsed
            text += (
                f" of about {self.estimate_seconds:,.0f} s ({self.estimate_source})"
                if left > 0
                else f"; longer than the estimate of {self.estimate_seconds:,.0f} s ({self.estimate_source})"
            )
        return text


# --------------------------------------------------------------------------- files
def job_name(content_hash: str, params: dict[str, Any]) -> str:
    return f"scan-{content_hash}-{params_hash(params)}"


def _paths(ws: Workspace, name: str) -> tuple[Path, Path, Path]:
    d = ws.root / "jobs"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{name}.json", d / f"{name}.lock", d / f"{name}.log"


def _write_status(path: Path, status: JobStatus) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(status)), encoding="utf-8")
    os.replace(tmp, path)


def _read_status(path: Path) -> JobStatus | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return JobStatus(**{k: v for k, v in raw.items() if k in JobStatus.__dataclass_fields__})
    except (OSError, ValueError, TypeError):
        return None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not running
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _lock_pid(lock: Path) -> int:
    try:
        return int(lock.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


# --------------------------------------------------------------------------- reading
def _scan_params(ds, options: dict[str, Any]) -> dict[str, Any]:
    from labelaudit.scanning import scan_params

    return scan_params(ds, **options)


def read_status(ws: Workspace, ds, options: dict[str, Any]) -> JobStatus | None:
    """The status of the background scan of ``ds`` with ``options``: COMPLETE when the scan is
    stored, the job file's status while it runs or after it failed, None when none was started. A
    "running" status whose process is gone reads as FAILED ("stopped")."""
    params = _scan_params(ds, options)
    if ws.has(ds.content_hash, "scan_meta", params, ext="json"):
        st = _read_status(_paths(ws, job_name(ds.content_hash, params))[0])
        return JobStatus(state=COMPLETE, n_rows=ds.n) if st is None else _as_complete(st, ds.n)
    path, lock, _ = _paths(ws, job_name(ds.content_hash, params))
    st = _read_status(path)
    if st is None:
        return None
    if st.state == RUNNING and not _pid_alive(_lock_pid(lock) or st.pid):
        st.state, st.error = STOPPED, "the scan stopped before it finished (its process ended)"
    return st


def clear_failed(ws: Workspace, ds, options: dict[str, Any]) -> None:
    """Forget a failed scan's status, so that the next :func:`start_scan` tries again."""
    path, _, _ = _paths(ws, job_name(ds.content_hash, _scan_params(ds, options)))
    st = _read_status(path)
    if st is not None and st.state == FAILED:
        path.unlink(missing_ok=True)


def _as_complete(st: JobStatus, n: int) -> JobStatus:
    st.state, st.n_rows = COMPLETE, n
    return st


def estimate(ws: Workspace, n_rows: int) -> tuple[float, str]:
    """(seconds, source): the expected duration of a scan job of ``n_rows`` rows, scaled per row
    from this workspace's most recent complete job (its whole wall time, first pass included: what
    the user waits), else from its most recent timed full scan, else from
    :data:`ROUGH_SECONDS_PER_ROW` (measured on a quiet 2-core machine)."""
    statuses = sorted(
        (ws.root / "jobs").glob("scan-*.json"), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for path in statuses[:20]:
        st = _read_status(path)
        if st is None or st.state != COMPLETE or st.n_rows <= 0 or st.started <= 0:
            continue
        took = st.updated - st.started
        if took > 0:
            return took / st.n_rows * n_rows, f"from an earlier scan of {st.n_rows:,} rows here"
    metas = sorted(
        (ws.root / "artifacts").glob("*/scan_meta-*.json"),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for meta in metas[:20]:
        try:
            raw = json.loads(meta.read_text(encoding="utf-8"))
            timings, rows = raw["timings"], int(raw.get("n_rows") or 0)
            if (raw.get("params") or {}).get("detectors") == sorted(first_pass.DETECTORS):
                continue  # a first pass: cheap detectors only, no guide to a full scan
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        total = float(timings.get("total", 0.0)) or sum(
            float(timings.get(k, 0.0)) for k in ROUGH_SECONDS_PER_ROW
        )
        if rows > 0 and total > 0:
            return total / rows * n_rows, f"from an earlier scan of {rows:,} rows here"
    return (
        sum(ROUGH_SECONDS_PER_ROW.values()) * n_rows,
        "measured on a quiet 2-core machine; longer when it is busy",
    )


# --------------------------------------------------------------------------- starting
def start_scan(
    ws: Workspace, ds, options: dict[str, Any], *, python: str | None = None
) -> JobStatus | None:
    """Make sure the scan of ``ds`` (stored in ``ws``) with ``options`` is stored or running, and
    return its status. Starts a background process only when the scan is neither stored nor
    already running (here or in another process); safe to call on every page view. With the
    runner "off" (see RUNNER_ENV) nothing starts: the status, or None when never started."""
    status = read_status(ws, ds, options)
    if status is not None and status.state in (COMPLETE, RUNNING, FAILED):
        return status  # a failed scan waits for clear_failed (the app's "Try again")
    if runner() == "off":
        return status
    params = _scan_params(ds, options)
    ws.save_dataset(ds)
    path, lock, log = _paths(ws, job_name(ds.content_hash, params))
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        if _pid_alive(_lock_pid(lock)):
            return read_status(ws, ds, options) or JobStatus(state=RUNNING, n_rows=ds.n)
        lock.unlink(missing_ok=True)  # left by a job that died: take it over
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:  # another process took it over first
            return read_status(ws, ds, options) or JobStatus(state=RUNNING, n_rows=ds.n)
    seconds, source = estimate(ws, ds.n)
    now = time.time()
    status = JobStatus(
        state=RUNNING,
        started=now,
        updated=now,
        step_started=now,
        pid=os.getpid(),
        n_rows=ds.n,
        estimate_seconds=seconds,
        estimate_source=source,
    )
    if runner() == "inline":
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        _write_status(path, status)
        run_job(str(ws.root), ds.content_hash, options)
        return read_status(ws, ds, options) or status
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [
                python or sys.executable,
                "-m",
                "labelaudit.jobs",
                str(ws.root),
                ds.content_hash,
                json.dumps(options, sort_keys=True),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"),
        )
    os.write(fd, str(proc.pid).encode())
    os.close(fd)
    status.pid = proc.pid
    _write_status(path, status)
    _CHILDREN.append(proc)
    return status


#: Processes started from here (reaped by :func:`reap`, so that none stays a zombie).
_CHILDREN: list[subprocess.Popen] = []


def reap() -> None:
    """Collect the exit status of finished jobs started by this process."""
    for p in list(_CHILDREN):
        if p.poll() is not None:
            _CHILDREN.remove(p)


# --------------------------------------------------------------------------- the job process
class FileProgress:
    """A ``ProgressFn`` that writes the job's status file (throttled to WRITE_EVERY seconds)."""

    def __init__(self, path: Path, status: JobStatus):
        import threading

        self.path = path
        self.status = status
        self._last_write = 0.0
        # the first pass's end is written from the worker's callback thread (_first_pass)
        self._lock = threading.RLock()

    def __call__(self, step: str, done: int, total: int) -> None:
        with self._lock:
            self._report(step, done, total)

    def write(self) -> None:
        with self._lock:
            _write_status(self.path, self.status)

    def _report(self, step: str, done: int, total: int) -> None:
        st, now = self.status, time.time()
        new_step = step != st.step
        if new_step:
            if st.step:
                st.finished[st.step] = round(now - st.step_started, 2)
            st.step, st.step_started = step, now
        st.done, st.total, st.updated = int(done), int(total), now
        if new_step or (total and done >= total) or now - self._last_write >= WRITE_EVERY:
            self._last_write = now
            _write_status(self.path, st)

    def finish(self, state: str, error: str = "") -> None:
        with self._lock:
            st, now = self.status, time.time()
            if st.step and st.step not in st.finished:
                st.finished[st.step] = round(now - st.step_started, 2)
            st.state, st.error, st.updated = state, error, now
            _write_status(self.path, st)


def _first_pass(ws: Workspace, ds, options: dict[str, Any], progress: FileProgress):
    """The first pass (a map and a provisional queue from a stratified sample) before the full
    scan, when the dataset is large enough for it to pay. A problem in it is logged and the full
    scan goes on (it would report a data problem itself).

    With the map's worker running (:func:`labelaudit.projection.start_worker`), only the sample's
    embedding is done here: its scan is handed to the worker (the same calls,
    :func:`labelaudit.first_pass.scan_sample_stored`) and the job goes on embedding the other rows
    meanwhile; the status says "first pass" once the worker has stored it. Returns the sample when
    its scan was handed over (for :func:`labelaudit.first_pass.full_embeddings`), else None."""
    from labelaudit import projection

    if not first_pass.wanted(ds):
        return None
    worker = projection.running_worker()
    try:
        stored_already = first_pass.load_first_pass(ws, ds, options) is not None
        if worker is None or not first_pass.beside_wanted() or stored_already:
            done = first_pass.run_first_pass(ws, ds, options, progress=progress)
            if done is not None:
                progress.status.first_pass = True
                progress.write()
            return None
        sample = first_pass.embed_sample(ws, ds, options, progress=progress)
        assert sample is not None  # wanted(ds)
        pending = worker.submit(
            first_pass.scan_sample_stored,
            str(ws.root),
            ds.content_hash,
            sample.content_hash,
            options,
        )
    except Exception as e:  # the full scan is what matters; the log keeps the reason
        print(f"first pass skipped: {type(e).__name__}: {e}", file=sys.stderr)
        return None
    started = time.time()

    def stored(fut) -> None:  # in the worker's callback thread
        try:
            timings = fut.result()
        except BaseException as e:  # noqa: BLE001 (a broken worker too: the full scan goes on)
            print(f"first pass skipped: {type(e).__name__}: {e}", file=sys.stderr)
            return
        with progress._lock:
            progress.status.first_pass = True
            progress.status.beside["first pass (in the worker)"] = round(time.time() - started, 2)
            for step, seconds in timings.items():
                if step != "total":
                    progress.status.beside[f"first pass: {step}"] = round(float(seconds), 2)
            progress.write()

    pending.add_done_callback(stored)
    return sample


def run_job(root: str, content_hash: str, options: dict[str, Any], *, worker: bool = False) -> int:
    """The job process: scan the stored dataset, writing progress; 0 when stored, 1 on a problem.

    ``worker``: start the map's own process first (:func:`labelaudit.projection.start_worker`):
    umap's import and compiled functions load while the sample's texts are embedded; the first
    pass's scan then runs there while this process embeds the other rows, and the full map (with
    the trained detectors' runs, whichever process is free first) beside the detectors, on the
    other core. The background job does this on a machine with more than one core
    (:func:`cpu_workers`). The stored results are the same either way (tests/test_map_worker.py)."""
    from labelaudit import projection
    from labelaudit.errors import DataError, UsageError
    from labelaudit.scanning import scan

    ws = Workspace(root)
    ds = ws.load_dataset(content_hash)
    params = _scan_params(ds, options)
    path, lock, _ = _paths(ws, job_name(content_hash, params))
    status = _read_status(path) or JobStatus(state=RUNNING, started=time.time())
    status.state, status.pid, status.n_rows = RUNNING, os.getpid(), ds.n
    progress = FileProgress(path, status)
    if worker:
        projection.start_worker()
    try:
        sample = _first_pass(ws, ds, options, progress)
        first_pass.full_embeddings(ws, ds, options, progress=progress, sample=sample)
        scan(ds, workspace=ws, progress=progress, **options)
    except (DataError, UsageError) as e:
        progress.finish(FAILED, str(e))
        return 1
    except Exception as e:  # the status file must say the job ended; the log has the traceback
        progress.finish(FAILED, f"{type(e).__name__}: {e}")
        if runner() == "inline":
            return 1
        raise
    finally:
        if worker:
            projection.stop_worker()
        if _lock_pid(lock) == os.getpid():
            lock.unlink(missing_ok=True)
    progress.finish(COMPLETE)
    return 0


if __name__ == "__main__":  # python -m labelaudit.jobs WORKSPACE HASH OPTIONS_JSON
    sys.exit(run_job(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), worker=map_worker_wanted()))

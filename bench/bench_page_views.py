"""Every page of the app opened in Chromium on a stored scan of the bundled sample (issue 16).

    .venv/bin/python -m bench.bench_page_views                 # workspace .labelaudit-bench
    .venv/bin/python -m bench.bench_page_views --workspace W --rounds 3

The workspace is prepared once: the bundled sample (13,083 rows) saved and scanned with the app's
scan options (:data:`labelaudit.commands.app.APP_SCAN_OPTIONS`) by :func:`labelaudit.scanning.scan`,
reusing what the workspace already holds (embeddings, map, runs). Then ``streamlit run serve.py`` on
that workspace (the app's own ``.streamlit/config.toml``, the background scan off, port 8642), with
the dataset as ``labelaudit app DATA`` passes it (``--no-launch-dataset``: without); unless
``--at-once``, once the server's start-up reading is over (its CPU quiet: :func:`wait_settled`; a
person opening the printed link comes later than that), each page of
:data:`components.pages.PAGES` is opened in a new Chromium tab
(``page.goto(<page>?dataset=<hash>)``): seconds from the navigation to the page's main element
(:data:`MAIN`) visible with the script finished (Streamlit's running indicator gone). Round 1 is the
first view of each page in a fresh server process; later rounds are repeat views (Streamlit's
caches warm). Then the same pages by in-app navigation (:func:`navigate`: one tab, a click on each
page's sidebar link, as a user moves between pages): the browser keeps the JavaScript bundles it
loaded (Plotly's is 4.7 MB, evaluated again in every new tab), so both are reported. Goal of
issue 16: under 2 s each.

Recomputation: a page view of stored results must not compute anything. After each view the bench
records (a) files the view added to or changed in the workspace (the review database and the job
files excepted) and (b) the heavy libraries the server process has loaded since its start
(``/proc/<pid>/maps``: torch, numba/umap, onnxruntime): either means the page recomputed.
``--profile`` adds where each new-tab view's time goes: the server's script runs inside the view
(:mod:`bench.review_ui_profile`: count, wall and CPU seconds, bytes of deltas), the bytes the
browser received on Streamlit's websocket, and the browser's long tasks (a ``PerformanceObserver``
of ``longtask`` entries: their sum and the longest). ``--cprofile DIR`` also dumps a
:mod:`cProfile` of every script run there (slower: not for the timed figures).

Writes this run on top of bench/results/page_views.md (command, date, commit, machine, load
average); the run that was on top moves under "Earlier runs", headings one level down.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import tempfile
import time
from pathlib import Path

from bench.bench_review_ui import CHROMIUM, CHROMIUM_ARGS, Server

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "page_views.md"
PORT = 8642
GOAL_SECONDS = 2.0
#: The element that makes each page (by its file name) useful, in Streamlit's test ids.
MAIN = {
    "data": "[data-testid='stVegaLiteChart']",
    "explore": "[data-testid='stVegaLiteChart'] canvas, [data-testid='stPlotlyChart']",
    "label_issues": "[data-testid='stDataFrame']",
    "annotators": "[data-testid='stAlert'], [data-testid='stPlotlyChart']",
    "dynamics": "[data-testid='stVegaLiteChart'] canvas, [data-testid='stPlotlyChart']",
    "influence": "[data-testid='stDataFrame']",
    "review": "[data-testid='stButton'], [data-testid='stTextInput']",
    "roi": "[data-testid='stMetric'], [data-testid='stAlert']",
    "about": "[data-testid='stMarkdown']",
}
#: Shared libraries whose presence in the server process means a model, UMAP or ONNX was loaded.
HEAVY = {"torch": "libtorch", "numba (UMAP)": "numba/", "onnxruntime": "onnxruntime"}
#: Workspace files a page view may write: the review store and the job files.
ALLOWED_WRITES = ("review", ".sqlite", "jobs/", "streamlit-")


def prepare(ws_root: Path):
    """The sample saved and scanned in ``ws_root`` (a no-op when already stored): (ds, seconds)."""
    from labelaudit.commands.app import APP_SCAN_OPTIONS
    from labelaudit.io import load_dataset
    from labelaudit.scanning import scan
    from labelaudit.workspace import Workspace

    ds = load_dataset(ROOT / "sample_data" / "banking77")
    ws = Workspace(ws_root)
    ws.save_dataset(ds)
    t = time.perf_counter()
    scan(ds, workspace=ws, **APP_SCAN_OPTIONS)
    return ds, time.perf_counter() - t


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for p in root.rglob("*"):
        if p.is_file():
            st = p.stat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


def heavy_loaded(pid: int) -> set[str]:
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return set()
    return {name for name, lib in HEAVY.items() if lib in maps}


def start_server(
    ws_root: Path,
    port: int,
    *,
    dataset_hash: str | None = None,
    profile: Path | None = None,
    cprofile: Path | None = None,
) -> Server:
    """The app on ``port`` over the prepared workspace, with the background scan off (a page view
    must show what is stored); the server class is :class:`bench.bench_review_ui.Server`.
    ``dataset_hash``: the launch dataset, as ``labelaudit app DATA`` (``make run``) passes it.
    ``profile``: the JSON-lines file :mod:`bench.review_ui_profile` appends each script run to
    (``cprofile``: a folder for a cProfile dump per run)."""
    env = {
        "LABELAUDIT_WORKSPACE": str(ws_root),
        "LABELAUDIT_SCAN_RUNNER": "off",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    if dataset_hash:
        env["LABELAUDIT_DATASET"] = dataset_hash
    if profile is not None:
        hook = profile.parent / "profile_hook"
        hook.mkdir(exist_ok=True)
        (hook / "sitecustomize.py").write_text("import bench.review_ui_profile\n")
        env["PYTHONPATH"] = os.pathsep.join([str(hook), str(ROOT)])
        env["LABELAUDIT_UI_PROFILE"] = str(profile)
        if cprofile is not None:
            cprofile.mkdir(parents=True, exist_ok=True)
            env["LABELAUDIT_UI_CPROFILE"] = str(cprofile)
    return Server(ROOT / "serve.py", env, ws_root / f"streamlit-{port}.log", port=port)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_settled(pid: int, *, quiet: float = 0.05, window: float = 1.0, timeout: float = 90.0):
    """Until the server uses less than ``quiet`` CPU seconds in a ``window`` (its start-up reading
    is over, as it is by the time a person opens the printed link), at most ``timeout``; returns
    (seconds waited, CPU seconds it used meanwhile)."""
    t0, c0 = time.perf_counter(), cpu_seconds(pid)
    last = c0
    while time.perf_counter() - t0 < timeout:
        time.sleep(window)
        now = cpu_seconds(pid)
        if now - last < quiet:
            break
        last = now
    return time.perf_counter() - t0, cpu_seconds(pid) - c0


#: Collects the browser's long tasks (main-thread tasks over 50 ms) of each tab from its start.
LONG_TASKS_JS = """
window.__laLongTasks = [];
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__laLongTasks.push(e.duration);
  }).observe({type: 'longtask', buffered: true});
} catch (e) {}
"""


class ViewProbe:
    """What ``--profile`` records for one new-tab view: its wall-clock window (to match the
    server's script runs), the bytes received on the app's websocket and the long tasks."""

    def __init__(self, page) -> None:
        self.page = page
        self.ws_bytes = 0
        self.start = time.time()
        self.end = self.start
        page.on("websocket", self._socket)

    def _socket(self, ws) -> None:
        def received(payload) -> None:
            self.ws_bytes += len(payload)

        ws.on("framereceived", received)

    def finish(self) -> dict:
        self.end = time.time()
        tasks = self.page.evaluate("() => window.__laLongTasks || []")
        return {
            "window": (self.start, self.end),
            "ws_kb": self.ws_bytes / 1024,
            "long_tasks_s": sum(tasks) / 1000,
            "longest_task_s": (max(tasks) if tasks else 0.0) / 1000,
        }


def server_runs(path: Path, window: tuple[float, float]) -> dict:
    """Sum of the server's script runs that started inside ``window`` (count, wall, CPU, deltas)."""
    lo, hi = window
    runs = []
    if path.exists():
        runs = [json.loads(line) for line in path.read_text().splitlines() if line]
    mine = [r for r in runs if lo <= r["start"] <= hi]
    return {
        "runs": len(mine),
        "server_wall_s": sum(r["wall"] for r in mine),
        "server_cpu_s": sum(r["cpu"] for r in mine),
        "delta_kb": sum(r["delta_bytes"] for r in mine) / 1024,
    }


#: The script has finished: the app's own run state (``data-test-script-state`` on ``stApp``),
#: the rule of ``tests/conftest.py``'s ``wait_for_app``. The running indicator (``stStatusWidget``)
#: alone is no such signal: Streamlit shows it only once a run has lasted 500 ms, so a run that
#: started less than 500 ms ago looked finished.
SCRIPT_DONE_JS = (
    "() => { const a = document.querySelector('[data-testid=\"stApp\"]');"
    " const s = a && a.getAttribute('data-test-script-state');"
    " return (s === 'notRunning' || s === 'compilationError')"
    " && !document.querySelector('[data-testid=\"stStatusWidget\"]'); }"
)


def wait_script_done(page) -> None:
    page.wait_for_function(SCRIPT_DONE_JS, timeout=120_000, polling=20)


def view(page, url: str, main: str) -> float:
    t = time.perf_counter()
    page.goto(url)
    page.locator(f":is({main})").first.wait_for(state="visible", timeout=120_000)
    wait_script_done(page)
    return time.perf_counter() - t


def navigate(page, title: str, heading: str, main: str) -> float:
    """Seconds from a click on the page's sidebar link (what a user does: the app's own
    navigation, no new tab, the browser's bundles already loaded) to its main element visible with
    its script finished. ``heading``: the page's ``st.title``, which tells the new page from the
    one still shown."""
    t = time.perf_counter()
    page.locator("[data-testid='stSidebarNav'] a", has_text=title).first.click()
    page.locator("h1", has_text=heading).first.wait_for(state="visible", timeout=120_000)
    page.locator(f":is({main})").first.wait_for(state="visible", timeout=120_000)
    wait_script_done(page)
    return time.perf_counter() - t


def _heading(path: str) -> str:
    """The text of a page's ``st.title`` call, read from its file (``views/<name>.py``)."""
    import ast

    for node in ast.walk(ast.parse((ROOT / path).read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "title"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            return str(node.args[0].value)
    return ""


EARLIER = "## Earlier runs (kept as they were; headings one level down)"


def with_earlier_runs(new: str, old: str) -> str:
    """``new`` (this run's section) on top of the results file ``old``: the run that was on top
    goes first under :data:`EARLIER`, its headings one level down, then the earlier runs as they
    were."""
    if not old.strip():
        return new
    top, _, earlier = old.partition("\n## Earlier runs")
    earlier = earlier.split("\n", 1)[1] if "\n" in earlier else ""
    lines = top.strip().splitlines()
    when = re.search(r"; (\d{4}-\d\d-\d\d \d\d:\d\d UTC);", top)
    if lines and lines[0].startswith("## Page views") and when:
        lines[0] = f"## The run of {when.group(1)}"  # the title every run has: say which run
    demoted = "\n".join("#" + line if line.startswith("#") else line for line in lines)
    return f"{new.rstrip()}\n\n{EARLIER}\n\n{demoted}\n\n{earlier.strip()}\n"


def git_commit() -> str:
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return out.stdout.strip() + (" + uncommitted changes" if dirty else "")


def profile_lines(pages, profiles: dict[str, list[dict]]) -> list[str]:
    """The ``--profile`` table: one line per page and new-tab round."""
    lines = [
        "",
        "Where each new-tab view's time went (`--profile`): server = the Streamlit script runs "
        "that started inside the view (count, wall and thread-CPU seconds, kB of deltas "
        "serialised); websocket = kB the browser received on the app's websocket; long tasks = "
        "the browser's main-thread tasks over 50 ms (sum, longest).",
        "",
        "| page | round | view (s) | script runs | server wall (s) | server CPU (s) "
        "| deltas (kB) | websocket (kB) | long tasks (s) | longest task (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in pages:
        for i, r in enumerate(profiles[p.title], start=1):
            lines.append(
                f"| {p.title} | {i} | {r['seconds']:.2f} | {r['runs']} | "
                f"{r['server_wall_s']:.2f} | {r['server_cpu_s']:.2f} | {r['delta_kb']:.0f} | "
                f"{r['ws_kb']:.0f} | {r['long_tasks_s']:.2f} | {r['longest_task_s']:.2f} |"
            )
    return lines


def main(argv: list[str] | None = None) -> None:
    from playwright.sync_api import sync_playwright

    from components.pages import PAGES

    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", type=Path, default=ROOT / ".labelaudit-bench")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--port", type=int, default=PORT)
    ap.add_argument(
        "--profile", action="store_true", help="add where each new-tab view's time goes"
    )
    ap.add_argument("--cprofile", type=Path, help="a folder for a cProfile dump per script run")
    ap.add_argument("--out", type=Path, default=RESULTS, help="the results file")
    ap.add_argument(
        "--no-launch-dataset",
        action="store_true",
        help="start the server without a dataset (as `labelaudit app` alone); the URL names it",
    )
    ap.add_argument(
        "--at-once",
        action="store_true",
        help="open the first tab as soon as the server answers (default: once its start-up "
        "reading is over)",
    )
    ap.add_argument(
        "--no-keep-earlier",
        dest="keep_earlier",
        action="store_false",
        help="rewrite the results file with this run only (default: earlier runs kept below)",
    )
    args = ap.parse_args(argv)
    ws_root = args.workspace.resolve()
    ds, prep = prepare(ws_root)
    commit = git_commit()
    load_start = os.getloadavg()
    started_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    tmp = Path(tempfile.mkdtemp(prefix="page-views-"))
    runs_file = tmp / "runs.jsonl" if (args.profile or args.cprofile) else None
    server = start_server(
        ws_root,
        args.port,
        dataset_hash=None if args.no_launch_dataset else ds.content_hash,
        profile=runs_file,
        cprofile=args.cprofile,
    )
    settle = (0.0, 0.0) if args.at_once else wait_settled(server.proc.pid)
    print(f"server settled after {settle[0]:.1f} s ({settle[1]:.1f} CPU-s)", flush=True)
    profiles: dict[str, list[dict]] = {p.title: [] for p in PAGES}
    proc = server.proc
    times: dict[str, list[float]] = {p.title: [] for p in PAGES}
    nav_times: dict[str, list[float]] = {p.title: [] for p in PAGES}
    writes: dict[str, set[str]] = {p.title: set() for p in PAGES}
    loaded: dict[str, set[str]] = {p.title: set() for p in PAGES}
    errors: dict[str, str] = {}
    try:
        base = heavy_loaded(proc.pid)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            if runs_file is not None:
                ctx.add_init_script(LONG_TASKS_JS)
            for _ in range(args.rounds):
                for p in PAGES:
                    name = p.path.rsplit("/", 1)[-1].removesuffix(".py")
                    before = snapshot(ws_root)
                    page = ctx.new_page()
                    probe = ViewProbe(page) if runs_file is not None else None
                    url = f"http://127.0.0.1:{args.port}{p.url_path}?dataset={ds.content_hash}"
                    try:
                        times[p.title].append(
                            view(page, url, MAIN.get(name, "[data-testid='stMarkdown']"))
                        )
                    except Exception as e:  # a page that never shows its element: said, not hidden
                        errors[p.title] = f"{type(e).__name__}: {str(e).splitlines()[0]}"
                        times[p.title].append(float("nan"))
                    print(f"new tab: {p.title} {times[p.title][-1]:.2f} s", flush=True)
                    if probe is not None and runs_file is not None:
                        got = probe.finish()
                        time.sleep(0.2)  # the run's line is appended when the run ends
                        got.update(server_runs(runs_file, got.pop("window")))
                        got["seconds"] = times[p.title][-1]
                        profiles[p.title].append(got)
                        print(f"  profile: {got}", flush=True)
                    if page.locator("[data-testid='stException']").count():
                        errors[p.title] = "an exception on the page"
                    page.close()
                    after = snapshot(ws_root)
                    changed = {
                        f
                        for f, v in after.items()
                        if before.get(f) != v and not any(a in f for a in ALLOWED_WRITES)
                    }
                    writes[p.title] |= changed
                    loaded[p.title] |= (
                        heavy_loaded(proc.pid)
                        - base
                        - set().union(*(loaded[q.title] for q in PAGES if q.title != p.title))
                    )
            # In-app navigation: one tab, each page reached by its sidebar link (after the tabs
            # above, so Streamlit's caches are as warm as for the repeat views).
            page = ctx.new_page()
            first = PAGES[0]
            # the app's root (its default page): the page's own URL left the sidebar inert
            view(
                page,
                f"http://127.0.0.1:{args.port}/?dataset={ds.content_hash}",
                "[data-testid='stSidebarNav']",
            )
            for _ in range(args.rounds):
                for p in [*PAGES[1:], first]:
                    name = p.path.rsplit("/", 1)[-1].removesuffix(".py")
                    try:
                        nav_times[p.title].append(
                            navigate(
                                page,
                                p.title,
                                _heading(p.path),
                                MAIN.get(name, "[data-testid='stMarkdown']"),
                            )
                        )
                    except Exception as e:  # said in the table, not hidden
                        errors[p.title] = (
                            f"navigation: {type(e).__name__}: {str(e).splitlines()[0]}"
                        )
                        nav_times[p.title].append(float("nan"))
                    print(f"navigation: {p.title} {nav_times[p.title][-1]:.2f} s", flush=True)
            page.close()
            browser.close()
    finally:
        server.stop()
    load_end = os.getloadavg()
    rows = []
    for p in PAGES:
        t = times[p.title]
        cold, warm = t[0], min(t[1:]) if len(t) > 1 else float("nan")
        ok = max(t) < GOAL_SECONDS
        recompute = sorted(writes[p.title]) + sorted(f"loaded {x}" for x in loaded[p.title])
        nav = nav_times[p.title]
        nav_best = min(nav) if nav else float("nan")
        nav_ok = bool(nav) and max(nav) < GOAL_SECONDS
        rows.append(
            f"| {p.title} | {cold:.2f} | {warm:.2f} | {'yes' if ok else 'no'} | "
            f"{max(nav) if nav else float('nan'):.2f} | {nav_best:.2f} | "
            f"{'yes' if nav_ok else 'no'} | "
            + ("; ".join(recompute[:4]) or "none")
            + (f" | {errors[p.title]}" if p.title in errors else " | ")
            + " |"
        )
    cmd = (
        "`.venv/bin/python -m bench.bench_page_views"
        + (f" --rounds {args.rounds}" if args.rounds != 2 else "")
        + (" --profile" if args.profile else "")
        + (" --cprofile DIR" if args.cprofile else "")
        + (" --no-launch-dataset" if args.no_launch_dataset else "")
        + (" --at-once" if args.at_once else "")
        + "`"
    )
    lines = [
        "## Page views of a stored scan in Chromium (issue 16)",
        "",
        f"Command: {cmd}; {started_at}; commit {commit}; load average {load_start[0]:.1f} "
        "at the start and "
        f"{load_end[0]:.1f} at the end (the 2-core shared VM; times above a load of 2 are upper "
        f"bounds). The bundled sample ({ds.n:,} rows, {ds.k} classes), scanned once in the "
        f"workspace beforehand ({prep:.0f} s this run, reusing stored steps); a fresh "
        "`streamlit run serve.py` process (as `labelaudit app` starts it"
        + ("" if args.no_launch_dataset else ", on the dataset, as `labelaudit app DATA` does")
        + "); "
        + (
            "the first tab opened as soon as the server answered; "
            if args.at_once
            else f"the first tab opened once the server's start-up reading was over "
            f"({settle[0]:.1f} s after it answered, {settle[1]:.1f} CPU-s); "
        )
        + "each page opened in a new Chromium tab "
        f"({args.rounds} rounds). Seconds from `page.goto` to the page's main element visible "
        "with the script finished; goal < 2 s. Then in-app navigation: one tab, each page "
        "reached by a click on its sidebar link (as a user moves between pages; the browser "
        "keeps the bundles it loaded), seconds from the click to the page's title, main element "
        f"and finished script ({args.rounds} rounds).",
        "",
        "| page | new tab: first view (s) | new tab: repeat, best (s) | new tab: every view < 2 s "
        "| navigation: slowest (s) | navigation: best (s) | navigation: every view < 2 s "
        "| recomputed (workspace writes, heavy libraries loaded) | problem |",
        "|---|---:|---:|---|---:|---:|---|---|---|",
        *rows,
    ]
    if runs_file is not None:
        lines += profile_lines(PAGES, profiles)
    old = args.out.read_text(encoding="utf-8") if args.out.exists() and args.keep_earlier else ""
    args.out.write_text(with_earlier_runs("\n".join(lines) + "\n", old), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

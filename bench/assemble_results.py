"""Rebuild bench/RESULTS.md from the per-part files in bench/results/ (each written by its benchmark).

.venv/bin/python -m bench.assemble_results
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["scan", "detectors", "agreement", "influence", "review", "roi", "memory"]

INTRO = """# Benchmark results

Every figure below sits next to the command that produced it. Machine for all of them: x86_64,
2 cores, 24 GiB, no GPU, CPU build of torch 2.13.0, Python 3.11.7, on 2026-11-24.

**Load.** Most runs shared the 2 cores with other test and benchmark jobs (load averages of 10 to 18
are recorded next to those runs). Wall times from such runs are upper bounds, several times what an
idle machine gives; ratios against a peer were measured in the same process and run, and quality
figures (precision, AP, accuracy) do not depend on load. Where a later run on a quieter machine exists
it is shown beside the first.

The sections come from `bench/results/<part>.md`, each written by `bench/bench_<part>.py`;
`.venv/bin/python -m bench.assemble_results` rebuilds this file from them and `make bench` reruns
everything.
"""


def main() -> None:
    parts = [INTRO]
    names = ORDER + sorted(p.stem for p in (HERE / "results").glob("*.md") if p.stem not in ORDER)
    for name in names:
        path = HERE / "results" / f"{name}.md"
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8").strip()
        # Demote headings one level so each part is a section of this file.
        lines = [("#" + ln) if ln.startswith("#") else ln for ln in text.splitlines()]
        parts.append("\n".join(lines))
    (HERE / "RESULTS.md").write_text("\n\n---\n\n".join(parts) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

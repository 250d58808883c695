"""``labelaudit validate DATA [options]``: summary and every problem; exit 0 valid, 1 invalid."""

from __future__ import annotations

import argparse
import sys

from labelaudit.cli import add_data_options, data_kwargs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate", help="check a dataset and its companions; print a summary and every problem"
    )
    add_data_options(p)
    p.set_defaults(func=run)


def format_summary(ds) -> str:
    s = ds.summary()
    lines = [f"{s['source']}: {s['rows']:,} rows, {s['classes']} classes"]
    if len(s["rows_per_split"]) > 1 or "(none)" not in s["rows_per_split"]:
        lines.append("  splits: " + ", ".join(f"{k} {v:,}" for k, v in s["rows_per_split"].items()))
    lines.append(
        f"  class sizes: smallest {s['smallest_class'][0]} ({s['smallest_class'][1]:,}), "
        f"largest {s['largest_class'][0]} ({s['largest_class'][1]:,}), ratio {s['imbalance_ratio']:.1f}"
    )
    lines.append(f"  median text length: {s['median_text_length']:.0f} characters")
    lines.append("  columns: " + "; ".join(f"{k} <- {v}" for k, v in s["mapping"].items()))
    comp = s["companions"]
    lines.append("  companions: " + ("; ".join(comp.values()) if comp else "none"))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from labelaudit.io import validate

    ds, problems = validate(args.data, **data_kwargs(args))
    if ds is not None:
        print(format_summary(ds))
    for p in problems:
        print(f"{p.severity}: {p}", file=sys.stderr if p.severity == "error" else sys.stdout)
    if ds is None:
        print(
            f"invalid: {sum(p.severity == 'error' for p in problems)} problem(s)", file=sys.stderr
        )
        return 1
    print("valid")
    return 0

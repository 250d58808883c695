"""Decoding a text file for the text formats: UTF-8 unless told, with a clear message otherwise."""

from __future__ import annotations

from pathlib import Path

from labelaudit.errors import DataError, Problem

#: How much of a file the charset guess and the binary check look at.
SNIFF_BYTES = 2_000_000


def decode_text(path: Path, encoding: str | None) -> str:
    """The file's text (a UTF-8 byte-order mark is dropped); DataError for binary or undecodable files."""
    raw = path.read_bytes()
    enc = encoding or "utf-8-sig"
    try:
        content = raw.decode(enc)
    except UnicodeDecodeError as e:
        raise DataError(_decode_problem(path, raw, e)) from None
    except LookupError:
        raise DataError(
            Problem(
                f"unknown encoding '{encoding}'",
                "an encoding name such as utf-8 or cp1252",
                file=path.name,
            )
        ) from None
    nul = content.find("\x00")  # anywhere in the file, not only its start
    if nul >= 0:
        line = content.count("\n", 0, nul) + 1
        raise DataError(
            Problem(
                f"a NUL byte at line {line} (character {nul + 1:,}): the file looks binary or "
                "partly corrupt",
                "a text file without NUL bytes",
                file=path.name,
                fix="export the data again as CSV or Parquet",
            )
        )
    if not content.strip():
        raise DataError(
            Problem("the file holds only whitespace", "a header row and data rows", file=path.name)
        )
    return content


def _decode_problem(path: Path, raw: bytes, err: UnicodeDecodeError) -> Problem:
    line = raw[: err.start].count(b"\n") + 1
    guess = ""
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(raw[:SNIFF_BYTES]).best()
        if best is not None and best.encoding not in ("utf_8", "ascii"):
            guess = best.encoding
    except Exception:  # the guess is only a hint
        guess = ""
    hint = f" (it looks like {guess})" if guess else ""
    return Problem(
        f"byte 0x{raw[err.start]:02x} at line {line} is not valid UTF-8{hint}",
        "a UTF-8 text file",
        file=path.name,
        fix=f"re-save the file as UTF-8, or pass its encoding (--encoding {guess or 'cp1252'})",
    )

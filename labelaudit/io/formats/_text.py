"""Decoding a text file for the text formats: UTF-8 unless told, with a clear message otherwise.

:func:`check_text_file` streams the file in blocks (memory: one block), so a reader can then let
pandas parse the file itself instead of holding its bytes, its decoded text and a copy of both;
:func:`decode_text` returns the whole text for the formats that need it (a JSON document).
"""

from __future__ import annotations

import codecs
from pathlib import Path

from labelaudit.errors import DataError, Problem

#: How much of a file the charset guess looks at.
SNIFF_BYTES = 2_000_000
#: Bytes decoded at a time by :func:`check_text_file`.
BLOCK_BYTES = 8 * 2**20


def text_encoding(encoding: str | None) -> str:
    """The codec name to read with (UTF-8, its byte-order mark dropped, unless told); DataError for
    an unknown name."""
    enc = encoding or "utf-8-sig"
    try:
        codecs.lookup(enc)
    except LookupError:
        raise DataError(
            Problem(
                f"unknown encoding '{encoding}'",
                "an encoding name such as utf-8 or cp1252",
                file="",
            )
        ) from None
    return enc


def check_text_file(path: Path, encoding: str | None) -> str:
    """Check, block by block, that the whole file decodes with ``encoding``, holds no NUL byte and
    is not only whitespace; returns the codec name. DataError naming the line otherwise."""
    enc = _encoding_for(path, encoding)
    decoder = codecs.getincrementaldecoder(enc)(errors="strict")
    offset = 0  # bytes before the current block
    lines = 0  # line breaks before the current block
    chars = 0  # characters before the current block
    blank = True
    with open(path, "rb") as f:
        while True:
            block = f.read(BLOCK_BYTES)
            final = not block
            try:
                text = decoder.decode(block, final=final)
            except UnicodeDecodeError as e:
                raise DataError(_decode_problem(path, e, offset, lines)) from None
            _check_nul(path, text, lines, chars)
            if blank and text.strip():
                blank = False
            lines += block.count(b"\n")
            chars += len(text)
            offset += len(block)
            if final:
                break
    if blank:
        raise DataError(
            Problem("the file holds only whitespace", "a header row and data rows", file=path.name)
        )
    return enc


def decode_text(path: Path, encoding: str | None) -> str:
    """The file's text (a UTF-8 byte-order mark is dropped); DataError for binary or undecodable
    files."""
    enc = check_text_file(path, encoding)
    return path.read_bytes().decode(enc)


def _encoding_for(path: Path, encoding: str | None) -> str:
    try:
        return text_encoding(encoding)
    except DataError as e:
        raise DataError(
            [Problem(p.found, p.expected, file=path.name) for p in e.problems]
        ) from None


def _check_nul(path: Path, text: str, lines_before: int, chars_before: int) -> None:
    nul = text.find("\x00")  # anywhere in the file, not only its start
    if nul >= 0:
        line = lines_before + text.count("\n", 0, nul) + 1
        raise DataError(
            Problem(
                f"a NUL byte at line {line} (character {chars_before + nul + 1:,}): the file looks "
                "binary or partly corrupt",
                "a text file without NUL bytes",
                file=path.name,
                fix="export the data again as CSV or Parquet",
            )
        )


def _decode_problem(path: Path, err: UnicodeDecodeError, offset: int, lines_before: int) -> Problem:
    line = lines_before + err.object[: err.start].count(b"\n") + 1
    guess = ""
    try:
        from charset_normalizer import from_bytes

        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
        best = from_bytes(head).best()
        if best is not None and best.encoding not in ("utf_8", "ascii"):
            guess = best.encoding
    except Exception:  # the guess is only a hint
        guess = ""
    hint = f" (it looks like {guess})" if guess else ""
    return Problem(
        f"byte 0x{err.object[err.start]:02x} at line {line} is not valid "
        f"{_codec_name(err.encoding)}{hint}",
        f"a {_codec_name(err.encoding)} text file",
        file=path.name,
        fix=f"re-save the file as UTF-8, or pass its encoding (--encoding {guess or 'cp1252'})",
    )


def _codec_name(enc: str) -> str:
    """'UTF-8' for utf-8 and utf-8-sig, else the codec's own name."""
    name = codecs.lookup(enc).name
    return "UTF-8" if name in ("utf-8", "utf-8-sig") else name

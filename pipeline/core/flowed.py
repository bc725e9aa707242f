"""RFC 3676 format=flowed (DelSp=No): wrap text for plain-text readers, and join it back.

A flowed line that ends in a space is a soft break: a client that knows the format joins it
with the next line (and reflows it to its own width); any other client shows short lines.
Pure functions; lines are joined with "\\n" (the mail transport writes CRLF).
"""

from __future__ import annotations

import re
import unicodedata

# RFC 3676 §4.2: lines of at most 78 characters, trailing space included; counted here in
# columns (wide characters as two), which keeps every line within 78 characters too.
WIDTH = 78
SIGNATURE_SEPARATOR = "-- "  # RFC 3676 §4.3: always a hard break, never stuffed or joined
_CHUNK_RE = re.compile(r"[^ ]+ *| +")  # a word and the spaces after it (delsp=no keeps them)


def columns(text: str) -> int:
    """How wide text shows in a fixed-width font: Hangul and other wide characters take two
    columns (so a Korean line fits the same terminal as an English one)."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _needs_stuffing(line: str) -> bool:
    """RFC 3676 §4.4: a line starting with a space, '>' or 'From ' gets one more space."""
    return line.startswith((" ", ">", "From "))


def flow_line(line: str, width: int = WIDTH) -> list[str]:
    """One paragraph as flowed lines: every line but the last ends in a space (soft break).

    Breaks only after a space, so a word longer than `width` columns (a long URL) gets a
    line of its own and is never cut. Stuffed lines count the added space."""
    line = line.rstrip(" ")  # a trailing space would make the paragraph's hard break soft
    if not line:
        return [line]
    out: list[str] = []
    current, used = "", 0  # the line so far and its columns
    for chunk in _CHUNK_RE.findall(line):
        cols = columns(chunk)
        # the chunk's own trailing space counts: it ends the line when the next one breaks
        # never leave "-- " alone on a line: it would read as the signature separator
        if current and current != SIGNATURE_SEPARATOR and used + cols > width:
            out.append(current)
            current, used = "", 0
        if not current and _needs_stuffing(chunk):
            chunk, cols = " " + chunk, cols + 1
        current += chunk
        used += cols
    out.append(current)
    return out


def flow(text: str, width: int = WIDTH) -> str:
    """Text as format=flowed: each line of `text` is a paragraph (a hard break ends it),
    wrapped at spaces to `width`; the "-- " signature separator stays as it is."""
    lines: list[str] = []
    for line in text.split("\n"):
        if line == SIGNATURE_SEPARATOR:
            lines.append(line)
        else:
            lines.extend(flow_line(line, width))
    return "\n".join(lines)


def unflow(text: str) -> str:
    """What a format=flowed (DelSp=No) reader sees: soft-broken lines joined, space-stuffing
    removed, quoted lines joined only with lines of the same quote depth (RFC 3676 §4.5)."""
    out: list[str] = []
    pending: tuple[int, str] | None = None  # quote depth and text of an unfinished paragraph
    for raw in text.replace("\r\n", "\n").split("\n"):
        depth = len(raw) - len(raw.lstrip(">"))
        line = raw[depth:]
        if line.startswith(" "):
            line = line[1:]  # space-stuffing
        soft = line.endswith(" ") and line != SIGNATURE_SEPARATOR
        if pending is not None and pending[0] == depth:
            line = pending[1] + line
        elif pending is not None:  # a quote-depth change ends the paragraph (RFC 3676 §4.5)
            out.append(">" * pending[0] + pending[1])
        pending = (depth, line) if soft else None
        if not soft:
            out.append(">" * depth + line)
    if pending is not None:
        out.append(">" * pending[0] + pending[1])
    return "\n".join(out)

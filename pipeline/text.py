"""Pure text helpers: LaTeX in titles and abstracts to readable Unicode, title keys for matching."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from pylatexenc.latex2text import LatexNodes2Text

_URL_RE = re.compile(r"https?://[^\s{}<>\"]+[^\s{}<>\".,;:!?)\]]")
_URL_CMD_RE = re.compile(r"\\(?:url|href)\{([^{}]*)\}(?:\{([^{}]*)\})?")
_LATEX_HINT_RE = re.compile(r"[\\$^_{}]")
# LaTeX "islands": math spans, brace groups holding a command, commands with their arguments,
# accents, ``quotes''. Only these go through pylatexenc: it is slow on long plain text, and
# plain text around them (`&`, `--`, `~`) must stay as typed.
_ISLAND_RE = re.compile(
    r"\$\$.+?\$\$"
    r"|(?<!\\)\$[^$]+?(?<!\\)\$"
    r"|\{[^{}]*\\[^{}]*\}"
    r"|\\[^a-zA-Z\s](?:\{[^{}]*\}|[a-zA-Z])?"
    r"|\\[a-zA-Z]+\*?(?:\s*\{(?:[^{}]|\{[^{}]*\})*\})*"
    r"|``[^`']*''"
    r"|\{(?:[^{}]|\{[^{}]*\})*\}"
)
_UNESCAPED_PERCENT_RE = re.compile(r"(?<!\\)%")
_SPACE_RE = re.compile(r"\s+")
# Kept literally: in abstracts `--` and `~` are the authors' punctuation ("~10x", "a -- b"),
# not LaTeX ligatures, and the curator's reference issue keeps them as typed.
_KEEP = {"--": "\x00DASH\x00", "~": "\x00TILDE\x00"}


@lru_cache(maxsize=1)
def _converter() -> LatexNodes2Text:
    return LatexNodes2Text(math_mode="text", strict_latex_spaces=False)


def _convert_island(latex: str) -> str:
    text = _UNESCAPED_PERCENT_RE.sub(r"\\%", latex)  # `%` would start a LaTeX comment
    for literal, mark in _KEEP.items():
        text = text.replace(literal, mark)
    try:
        out: str = _converter().latex_to_text(text)
    except Exception:  # pylatexenc is lenient, but never let odd input stop a run
        return latex
    for literal, mark in _KEEP.items():
        out = out.replace(mark, literal)
    return out


def _convert_segment(text: str) -> str:
    if not _LATEX_HINT_RE.search(text):
        return text
    if (text.count("$") - text.count(r"\$")) % 2 == 1:
        # An odd number of `$` is prices, not math: keep the dollars as dollars.
        text = re.sub(r"(?<!\\)\$", r"\\$", text)
    return _ISLAND_RE.sub(lambda m: _convert_island(m.group(0)), text)


def latex_to_text(text: str) -> str:
    """Turn arXiv's LaTeX-flavoured text into readable Unicode on one line (URLs untouched)."""
    text = _URL_CMD_RE.sub(lambda m: m.group(1), text)
    parts: list[str] = []
    pos = 0
    for m in _URL_RE.finditer(text):
        parts.append(_convert_segment(text[pos : m.start()]))
        parts.append(m.group(0))
        pos = m.end()
    parts.append(_convert_segment(text[pos:]))
    return _SPACE_RE.sub(" ", "".join(parts)).strip()


def title_key(title: str) -> str:
    """A normalised title for matching: LaTeX, Unicode forms, case, punctuation and spacing."""
    text = unicodedata.normalize("NFKC", latex_to_text(title)).casefold()
    text = "".join(ch if ch.isalnum() else " " for ch in text)
    return " ".join(text.split())

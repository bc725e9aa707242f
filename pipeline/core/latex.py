"""Pure text helpers: LaTeX in titles and abstracts to readable Unicode, title keys for matching.

LaTeX is turned into text in "islands" (a command with its arguments, a `$…$` span, a brace
group, an accent, ``quotes''): the text between islands stays exactly as typed (`&`, `--`,
`~` are the authors' punctuation in abstracts). Islands are found in one linear pass and are
bounded in size, so the time is linear in the input. Trivial islands (`\\textbf{word}`,
`\\alpha`, `$1/38$`) are read straight from pylatexenc's macro tables; the others go through
pylatexenc's LatexNodes2Text with the macro specs customised below. pylatexenc is imported
only when a text holds LaTeX.
"""

from __future__ import annotations

import heapq
import re
import unicodedata
from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pylatexenc.latex2text import LatexNodes2Text

_URL_RE = re.compile(r"https?://[^\s{}<>\"\\]+[^\s{}<>\".,;:!?)\]\\]")
# \url{U} and \href{U}{text} give the URL itself (one level of braces in the text).
_URL_CMD_RE = re.compile(r"\\url\s*\{([^{}]*)\}|\\href\s*\{([^{}]*)\}\s*\{(?:[^{}]|\{[^{}]*\})*\}")
# LaTeX, or letters of the mathematical-alphanumeric block, to turn into text.
_SLOW_HINT_RE = re.compile("[\\\\$^_{}\U0001d400-\U0001d7ff]")
_SPECIAL_RE = re.compile(r"[\\${`]")
_BRACE_RE = re.compile(r"\\.|[{}]", re.DOTALL)
_DOLLAR_RE = re.compile(r"\\.|\$", re.DOTALL)
# A `$` that starts a price ("$5", "$1.2M"), not math: a number, then a space or the end.
_PRICE_RE = re.compile(r"\$\d[\d,.]*(?:[kKmMbB]\b)?(?=[\s,;:!?)]|\.(?:\s|$)|$)")
_NAME_RE = re.compile(r"[a-zA-Z]+\*?")
_SPACES_THEN_ARG_RE = re.compile(r"[ \t]*(?=\{)")
_SPACE_RE = re.compile(r"\s+")
_UNESCAPED_PERCENT_RE = re.compile(r"(?<!\\)%")
_MATH_ALNUM_RE = re.compile("[\U0001d400-\U0001d7ff]+")
# A dropped citation leaves "by , while": the space before the punctuation goes with it.
_PUNCT_AFTER = frozenset(",.;:)!?")
# An island longer than this is not converted whole: its wrapper goes and its inside is read
# as text again (so pylatexenc never sees more than this at once: linear time overall).
MAX_ISLAND = 2000
MAX_DEPTH = 8
_MAX_OPT_ARG = 200  # `[...]` options of a command (\citep[see][p.~3]{key})
_MAX_QUOTE = 300

# Private-use characters stand in for what pylatexenc must not touch inside an island.
_KEEP = {"--": "\ue010", "~": "\ue011"}
_URL_MARK = ("\ue000", "\ue001")  # \ue000<n>\ue001: the n-th URL of the text
_URL_MARK_RE = re.compile("\ue000(\\d+)\ue001")

# Font and style commands whose argument is plain text: `\texttt{Qwen}` → `Qwen`. The math
# alphabets too, so titles stay searchable (pylatexenc maps `\mathtt{X}` to the
# mathematical-alphanumeric block: 𝚇).
PLAIN_ARGUMENT_MACROS = (
    "texttt", "textsf", "textbf", "textit", "textrm", "textsl", "textsc", "textup", "textmd",
    "textnormal", "emph", "underline", "uline", "mbox", "hbox", "text", "textsuperscript",
    "mathtt", "mathbf", "mathsf", "mathrm", "mathit", "mathcal", "mathbb", "mathscr",
    "mathfrak", "mathbfit", "mathnormal", "boldsymbol", "bm", "operatorname", "ce",
)
# Citations and cross-references disappear with their argument (no "<cit.>", no "<ref>").
DROPPED_MACROS = (
    "cite", "citet", "citep", "citealt", "citealp", "citeauthor", "citefullauthor", "citeyear",
    "citeyearpar", "Cite", "Citet", "Citep", "Citealt", "Citealp", "Citeauthor", "citetext",
    "citenum", "citetalias", "citepalias", "nocite", "textcite", "parencite", "autocite",
    "footcite", "ref", "eqref", "autoref", "cref", "Cref", "pageref", "label", "require",
)
# Font and size switches (`{\\em word}`) and spacing commands: nothing to read.
SWITCH_MACROS = (
    "em", "bf", "it", "tt", "sf", "rm", "sc", "sl", "normalfont", "bfseries", "itshape",
    "ttfamily", "sffamily", "rmfamily", "scshape", "upshape", "mdseries", "slshape", "tiny",
    "scriptsize", "footnotesize", "small", "normalsize", "large", "Large", "LARGE", "huge",
    "Huge", "centering", "noindent", "xspace", "relax", "protect", "nobreak", "ignorespaces",
    "boldmath", "unboldmath", "displaystyle", "textstyle", "scriptstyle", "limits", "nolimits",
    # delimiter sizes: `\\left( x \\right)` is "( x )"
    "left", "right", "middle", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr",
    "biggl", "biggr", "Biggl", "Biggr", "nonumber", "notag",
)
# Symbols pylatexenc lacks, and the abbreviations authors define as macros (`\\eg`, `\\ie`).
EXTRA_SYMBOLS = {
    "ne": "≠", "colon": ":", "imath": "ı", "jmath": "ȷ", "eg": "e.g.", "ie": "i.e.",
    "etc": "etc.", "wrt": "w.r.t.", "vs": "vs.", "etal": "et al.", "space": " ",
}
_CITE_ARGS = "*[[{"
# Argument specs pylatexenc's parser lacks (else `\unicode{x2014}` reads as "x2014").
_PARSER_ARGS = {
    "unicode": "{", "textcite": _CITE_ARGS, "parencite": _CITE_ARGS, "autocite": _CITE_ARGS,
    "footcite": _CITE_ARGS, "Cite": _CITE_ARGS, "nocite": "{", "bm": "{", "mathbfit": "{",
    "mathnormal": "{", "uline": "{", "hbox": "{", "textnormal": "{", "textsuperscript": "{",
    "operatorname": "*{", "pageref": "{", "require": "{", "ce": "{", "SI": "[{{", "si": "[{",
    "num": "[{", "qty": "[{{",
}


def unicode_char(code: str) -> str | None:
    """The character of a MathJax `\\unicode{x2014}` / `{0x2014}` / `{8212}`, or None."""
    code = code.strip()
    try:
        if code[:2].lower() == "0x":
            value = int(code[2:], 16)
        elif code[:1].lower() in ("x", "u"):
            value = int(code[1:].lstrip("+"), 16)
        else:
            value = int(code, 10)
        return chr(value) if value > 0x1F else None
    except (ValueError, OverflowError):
        return None


class _Latex:
    """pylatexenc, set up once: the parser's context and the converter with our macro specs."""

    def __init__(self) -> None:
        from pylatexenc import latex2text, latexwalker, macrospec

        self.latexwalker = latexwalker
        walker_db = latexwalker.get_default_latex_context_db()
        walker_db.add_context_category(
            "arxiv-digest", prepend=True,
            macros=[macrospec.MacroSpec(name, args) for name, args in _PARSER_ARGS.items()],
        )
        self.walker_db = walker_db
        text_db = latex2text.get_default_latex_context_db()
        spec = latex2text.MacroTextSpec
        text_db.add_context_category(
            "arxiv-digest", prepend=True,
            macros=[
                *(spec(name, discard=False) for name in PLAIN_ARGUMENT_MACROS),
                *(spec(name, simplify_repl="", discard=True)
                  for name in (*DROPPED_MACROS, *SWITCH_MACROS)),
                spec("footnote", simplify_repl=self._footnote),
                spec("unicode", simplify_repl=self._unicode),
                spec("url", simplify_repl="%s"),
                *(spec(name, simplify_repl=text) for name, text in EXTRA_SYMBOLS.items()),
            ],
        )
        text_db.set_unknown_macro_spec(spec("", simplify_repl=self._unknown))
        self.text_db = text_db
        self.converter: LatexNodes2Text = latex2text.LatexNodes2Text(
            latex_context=text_db, math_mode="text", strict_latex_spaces=False,
        )

    # pylatexenc passes the converter to a callable as `l2tobj` (it looks at the names).
    @staticmethod
    def _args(node: Any, l2tobj: Any) -> list[str]:
        args = [a for a in (node.nodeargd.argnlist if node.nodeargd else []) if a is not None]
        return [str(l2tobj.nodelist_to_text([a])).strip() for a in args]

    def _footnote(self, node: Any, l2tobj: Any) -> str:
        text = (self._args(node, l2tobj) or [""])[-1]
        return f" ({text})" if text else ""

    def _unicode(self, node: Any, l2tobj: Any) -> str:
        code = (self._args(node, l2tobj) or [""])[-1]
        return unicode_char(code) or code

    def _unknown(self, node: Any, l2tobj: Any, macroname: str) -> str:
        """An author's own macro (`\\veomni`) keeps its name as a word, rather than vanish;
        one with arguments keeps their text."""
        args = [a for a in self._args(node, l2tobj) if a]
        return " ".join(args) if args else macroname

    def convert(self, latex: str) -> str:
        """One island through pylatexenc (lenient: odd input comes back as it was)."""
        try:
            walker = self.latexwalker.LatexWalker(latex, latex_context=self.walker_db,
                                                  tolerant_parsing=True)
            nodes = walker.get_latex_nodes()[0]
            return str(self.converter.nodelist_to_text(nodes))
        except Exception:  # pylatexenc is lenient, but never let odd input stop a run
            return latex

    @lru_cache(maxsize=1024)  # noqa: B019 - one _Latex for the process, never freed
    def table(self, name: str) -> tuple[int, str | None] | None:
        """How a macro reads by the tables alone: (number of `{}` arguments, replacement
        with %-placeholders, or None for "the arguments' text"); None when pylatexenc's parser
        must decide (optional arguments, code, unknown macros)."""
        if name in _SWITCHES:
            return 0, ""
        walker_spec = self.walker_db.get_macro_spec(name)
        spec = self.text_db.get_macro_spec(name)
        if spec is None:
            return None
        argspec = walker_spec.args_parser.argspec if walker_spec is not None else ""
        if argspec.strip("{"):
            return None
        if name in _DROPPED:
            return len(argspec), ""
        if spec.simplify_repl is None:
            return (len(argspec), None) if not spec.discard else (len(argspec), "")
        if not isinstance(spec.simplify_repl, str):
            return None
        return len(argspec), spec.simplify_repl


@lru_cache(maxsize=1)
def _latex() -> _Latex:
    return _Latex()


_PLAIN_ARG = frozenset(PLAIN_ARGUMENT_MACROS)
_DROPPED = frozenset(DROPPED_MACROS)
_SWITCHES = frozenset(SWITCH_MACROS)
# The letter after a symbol accent (\\'a) is a token of its own.
_TOKEN_RE = re.compile(
    r"\\[a-zA-Z]+\*?|\\[^a-zA-Z]|(?<=\\['\"^`~=.])[a-zA-Z]|\$\$|``|''|[{}$]|[^\\{}$`']+|[`']",
    re.DOTALL,
)
# Text pylatexenc gives back as typed (in math mode too, where `^`, `_` stay: "TC^0").
_LITERAL_RE = re.compile(r"[^\\{}$%&#`'~^_]*")
_LITERAL_MATH_RE = re.compile(r"[^\\{}$%&#`'~]*")


class _NotSimple(Exception):
    """The island needs pylatexenc's parser."""


# What pylatexenc's accent macros do: the letter, then the combining mark, composed (NFC).
_ACCENTS = {
    "'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303", "=": "\u0304",
    ".": "\u0307", "u": "\u0306", "v": "\u030c", "H": "\u030b", "c": "\u0327", "k": "\u0328",
    "r": "\u030a", "d": "\u0323", "b": "\u0331",
}
_QUOTES = {"``": "\u201c", "''": "\u201d"}


def _apply(repl: str | None, args: list[str]) -> str:
    if repl is None:
        return "".join(args)
    if "%(" in repl:
        return repl % {str(n): a for n, a in enumerate(args, 1)}
    return repl % tuple(args) if "%" in repl and repl != "%" else repl


def _group(tokens: list[str], i: int, math: bool, lx: _Latex) -> tuple[str, int]:
    """The `{…}` argument at `i` as text, and the index after it."""
    if i >= len(tokens) or tokens[i] != "{":
        raise _NotSimple  # an argument without braces: pylatexenc's parser decides
    inner: list[str] = []
    end = _simple(tokens, i + 1, math, lx, inner)
    if tokens[end - 1] != "}":
        raise _NotSimple  # a `$` closed inside the group: pylatexenc's parser decides
    return "".join(inner), end


def _simple(tokens: list[str], i: int, math: bool, lx: _Latex, out: list[str]) -> int:
    """Read the tokens of a simple island from `i` to the end of the current group into `out`,
    by pylatexenc's own tables; raise _NotSimple for anything the tables do not say plainly."""
    while i < len(tokens):
        tok = tokens[i]
        if tok == "}":
            return i + 1
        if tok == "{":
            i = _simple(tokens, i + 1, math, lx, out)
            continue
        if tok == "$$":
            raise _NotSimple  # display math: pylatexenc sets it apart with spaces
        if tok == "$":
            if math:
                return i + 1
            inner: list[str] = []
            i = _simple(tokens, i + 1, True, lx, inner)
            if tokens[i - 1] != "$":
                raise _NotSimple
            out.append("".join(inner).strip())  # as pylatexenc: no spaces at the edges of math
            continue
        if tok in _QUOTES and not math:
            out.append(_QUOTES[tok])
            i += 1
            continue
        if tok.startswith("\\"):
            name = tok[1:]
            if name.isspace():
                raise _NotSimple  # a control space: pylatexenc's spacing rules
            if name in _ACCENTS and not math:
                if i + 1 < len(tokens) and tokens[i + 1] == "{":
                    letter, i = _group(tokens, i + 1, math, lx)
                elif i + 1 < len(tokens) and len(tokens[i + 1]) == 1 and tokens[i + 1].isalpha():
                    letter, i = tokens[i + 1], i + 2
                else:
                    raise _NotSimple
                if len(letter) != 1 or not letter.isalpha():
                    raise _NotSimple
                out.append(unicodedata.normalize("NFC", letter + _ACCENTS[name]))
                continue
            if name in _DROPPED and i + 1 < len(tokens) and tokens[i + 1] == "{":
                _, i = _group(tokens, i + 1, math, lx)
                continue
            if name in ("footnote", "unicode") and not math:
                arg, i = _group(tokens, i + 1, math, lx)
                if name == "footnote":
                    out.append(f" ({arg.strip()})" if arg.strip() else "")
                else:
                    out.append(unicode_char(arg) or arg.strip())
                continue
            if name in _SWITCHES:  # `{\\em word}`: the switch and the spaces after it go
                nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
                if nxt[:1].isspace() and (_LITERAL_MATH_RE if math else _LITERAL_RE).fullmatch(nxt):
                    out.append(nxt.lstrip())
                    i += 1
                i += 1
                continue
            how = lx.table(name)
            if how is None:
                raise _NotSimple
            nargs, repl = how
            if nargs == 0 and i + 1 < len(tokens) and tokens[i + 1][:1].isspace():
                raise _NotSimple  # pylatexenc's own rules for the space after a macro
            i += 1
            args = []
            for _ in range(nargs):
                arg, i = _group(tokens, i, math, lx)
                args.append(arg)
            out.append(_apply(repl, args))
            continue
        if not (_LITERAL_MATH_RE if math else _LITERAL_RE).fullmatch(tok):
            raise _NotSimple
        out.append(tok)
        i += 1
    return i


@lru_cache(maxsize=4096)
def _convert_island(latex: str) -> str:
    """One island as text: read by pylatexenc's tables when simple, else by pylatexenc."""
    lx = _latex()
    out: list[str] = []
    try:
        tokens = _TOKEN_RE.findall(latex)
        if _simple(tokens, 0, False, lx, out) == len(tokens):
            return "".join(out)
    except (_NotSimple, RecursionError):
        pass
    text = _UNESCAPED_PERCENT_RE.sub(r"\\%", latex)  # `%` would start a LaTeX comment
    for literal, mark in _KEEP.items():
        text = text.replace(literal, mark)
    out_text = lx.convert(text)
    for literal, mark in _KEEP.items():
        out_text = out_text.replace(mark, literal)
    return out_text


def _brace_pairs(text: str) -> dict[int, int]:
    """Matching `{`…`}` in one pass (escaped ones skipped): start → index of the `}`. A group
    nested deeper than MAX_DEPTH is left out (its braces read as text, its inside as islands),
    so no island is deep either: pylatexenc's parser slows down with depth."""
    pairs: dict[int, int] = {}
    stack: list[list[int]] = []  # [start, depth of the deepest group inside]
    for m in _BRACE_RE.finditer(text):
        tok = m.group(0)
        if tok == "{":
            stack.append([m.start(), 0])
        elif tok == "}" and stack:
            start, depth = stack.pop()
            if depth < MAX_DEPTH:
                pairs[start] = m.start()
            if stack:
                stack[-1][1] = max(stack[-1][1], depth + 1)
    return pairs


def _dollar_pairs(text: str) -> dict[int, int]:
    """`$…$` and `$$…$$` spans (start → index of the closing `$`); an odd number of `$` is
    prices, not math: no spans then."""
    dollars = [m.start() for m in _DOLLAR_RE.finditer(text) if m.group(0) == "$"]
    if len(dollars) % 2:
        # "costs $5 and $40\\%$": without the price, the rest pairs as math again.
        dollars = [d for d in dollars if not _PRICE_RE.match(text, d)]
        if len(dollars) % 2:
            return {}
    pairs: dict[int, int] = {}
    i = 0
    while i + 1 < len(dollars):
        start = dollars[i]
        if (dollars[i + 1] == start + 1 and i + 3 < len(dollars)
                and dollars[i + 3] == dollars[i + 2] + 1):  # $$ … $$
            pairs[start] = dollars[i + 2]
            i += 4
        else:
            pairs[start] = dollars[i + 1]
            i += 2
    return pairs


def _command_end(text: str, start: int, braces: dict[int, int]) -> tuple[int, int | None]:
    """Where the command at `start` ends with its arguments, and the position of the `{` of
    an argument too long to convert whole (None when there is none)."""
    n = len(text)
    nm = _NAME_RE.match(text, start + 1)
    if nm is None:  # \% \& \'a \"{o}
        end = min(start + 2, n)
        if end < n and text[start + 1] in "'\"^`~=.uvHcdbkr":
            if text[end] == "{" and end in braces:
                end = braces[end] + 1
            elif text[end].isalpha():
                end += 1
        return end, None
    end = nm.end()
    while end < n:  # the arguments: [..] right after, {..} after spaces
        if text[end] == "[":
            close = text.find("]", end, end + _MAX_OPT_ARG)
            if close < 0:
                break
            end = close + 1
            continue
        sp = _SPACES_THEN_ARG_RE.match(text, end)
        if sp is None:
            break
        if sp.end() not in braces:  # its argument's brace pairs with nothing (or too deep)
            name = nm.group(0).rstrip("*")
            if end == nm.end() and (name in _PLAIN_ARG or name in _DROPPED):
                return end, end  # the command goes; the text after it is read as text
            break
        group_end = braces[sp.end()] + 1
        if group_end - start > MAX_ISLAND and nm.group(0).rstrip("*") not in _DROPPED:
            return end, sp.end()  # a huge citation goes all the same; anything else is read
        end = group_end
    return end, None


def _islands(text: str) -> Iterator[tuple[int, int, bool]]:
    """(start, end, convert) for each LaTeX island in order. An island too long to convert
    whole (a 1 MB `\\textbf{…}`) loses its wrapper (`convert` False for the opening and the
    closing part) and its inside is read like the rest of the text."""
    braces = _brace_pairs(text)
    dollars = _dollar_pairs(text)
    closers: list[tuple[int, int]] = []  # heap of (start, end) of wrappers' closing parts
    pos = 0
    while True:
        m = _SPECIAL_RE.search(text, pos)
        while closers and closers[0][0] < pos:  # swallowed by an island that crossed it
            heapq.heappop(closers)
        if closers and (m is None or m.start() > closers[0][0]):
            close_start, close_end = heapq.heappop(closers)
            yield close_start, close_end, False
            pos = close_end
            continue
        if m is None:
            return
        start = m.start()
        ch = text[start]
        inner: int | None = None  # where the inside of a too-long island starts
        if ch == "\\":
            end, arg = _command_end(text, start, braces)
            if arg == end:
                inner = end
            elif arg is not None:
                inner, close = arg + 1, braces[arg]
                heapq.heappush(closers, (close, close + 1))
        elif ch == "$" and start in dollars:
            width = 2 if text.startswith("$$", start) else 1
            close = dollars[start]
            end = close + width
            if end - start > MAX_ISLAND:
                inner = start + width
                heapq.heappush(closers, (close, end))
        elif ch == "{" and start in braces:
            end = braces[start] + 1
            if end - start > MAX_ISLAND:
                inner = start + 1
                heapq.heappush(closers, (end - 1, end))
        elif ch == "`" and text.startswith("``", start):
            close = text.find("''", start + 2, start + _MAX_QUOTE)
            if close < 0:
                pos = start + 2
                continue
            end = close + 2
        else:  # a `$` or `{` that pairs with nothing: text as typed
            pos = start + 1
            continue
        if inner is not None:
            yield start, inner, False
            pos = inner
        else:
            yield start, end, True
            pos = end


def _drop_braces(text: str) -> str:
    """Text between islands without the braces that paired with nothing: LaTeX never prints
    a brace (a brace to print is `\\{`, an island)."""
    return text.replace("{", "").replace("}", "") if "{" in text or "}" in text else text


def _convert_segment(text: str, urls: list[str]) -> str:
    out: list[str] = []
    pos = 0
    for start, end, convert in _islands(text):
        out.append(_drop_braces(text[pos:start]))
        pos = end
        if not convert:
            continue
        converted = _convert_island(text[start:end])
        if not converted and end < len(text) and text[end] in _PUNCT_AFTER and out:
            out[-1] = out[-1].rstrip()
        out.append(converted)
    out.append(_drop_braces(text[pos:]))
    result = "".join(out)
    if _URL_MARK[0] in result:
        result = _URL_MARK_RE.sub(lambda m: urls[int(m.group(1))], result)
    return result


def known_macro(name: str) -> bool:
    """Whether `\\name` means something to LaTeX→text (else it is an author's own macro)."""
    spec = _latex().text_db.get_macro_spec(name)
    return name in _PLAIN_ARG or name in _DROPPED or name in _SWITCHES or (
        spec is not None and spec.macroname == name)


def _no_math_alphanumerics(text: str) -> str:
    """𝙶𝚛𝚊𝚍𝙽𝚘𝚛𝚖 → GradNorm: plain letters keep titles searchable and copyable (a code point
    of the block that Unicode leaves unassigned has no plain form: it goes)."""
    if not _MATH_ALNUM_RE.search(text):
        return text
    return _MATH_ALNUM_RE.sub(
        lambda m: _MATH_ALNUM_RE.sub("", unicodedata.normalize("NFKC", m.group(0))), text)


def latex_to_text(text: str) -> str:
    """Turn arXiv's LaTeX-flavoured text into readable Unicode on one line (URLs untouched)."""
    if not _SLOW_HINT_RE.search(text):  # most titles: no LaTeX, nothing to import
        return " ".join(text.split())
    # `\\textbackslash n` is "\\n": the space only ends the command's name.
    text = _BACKSLASH_RE.sub("\ue012", text)
    # `$\\href{U}{text}$`: a link set in math is a link, not math around it.
    text = _MATH_URL_RE.sub(r"\1", text)
    text = _URL_CMD_RE.sub(lambda m: m.group(1) or m.group(2) or "", text)
    urls: list[str] = []

    def protect(m: re.Match[str]) -> str:
        urls.append(m.group(0))
        return f"{_URL_MARK[0]}{len(urls) - 1}{_URL_MARK[1]}"

    # A `~` tying a word to a command (`solving~\footnote{…}`) is LaTeX's space, not a tilde.
    text = _TIE_RE.sub(" ", _URL_RE.sub(protect, text))
    converted = _convert_segment(text, urls).replace("\ue012", "\\")
    return _no_math_alphanumerics(_SPACE_RE.sub(" ", converted).strip())


_TIE_RE = re.compile(r"~(?=\\[a-zA-Z])")
_BACKSLASH_RE = re.compile(r"\\(?:textbackslash|backslash)(?![a-zA-Z])(?:\s*\{\}|[ \t]*)")
_MATH_URL_RE = re.compile(
    r"\$\s*(\\(?:url|href)\s*\{[^{}]*\}(?:\s*\{(?:[^{}]|\{[^{}]*\})*\})?)\s*\$")


def title_key(title: str) -> str:
    """A normalised title for matching: LaTeX, Unicode forms, case, punctuation and spacing."""
    text = unicodedata.normalize("NFKC", latex_to_text(title)).casefold()
    text = "".join(ch if ch.isalnum() else " " for ch in text)
    return " ".join(text.split())



"""The body of a note: the abstract (quoted or not), the commentary in its languages, the
#tags, and the lines naming the papers of a note about several; one Entry per paper."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.core.digest_format import format_problem_at
from pipeline.core.errors import FormatError
from pipeline.core.latex import known_macro, latex_to_text
from pipeline.core.models import Entry, has_hangul, is_links_only, normalize_tag, split_arxiv_id
from pipeline.curate.note_header import (
    _ARXIV_URL_RE,
    _HEADING_RE,
    _ID_LINE_RE,
    _LETTER_RE,
    _URL_LINE_RE,
    MAX_INTRO_LINES,
    _bare_title,
    _id_line,
    _is_markup,
    _read_header,
    _read_title,
    _second_title,
    _split_authors,
    _split_tags_line,
    _split_title_line,
    _unclosed_title,
    _url_line,
)
from pipeline.curate.note_kinds import (
    BARE_TITLE,
    ENGLISH_BLOCK,
    IMAGE,
    MID_LINE_TAGS,
    SECOND_TITLE,
    SEE_MORE,
    STRAY_TAG_WORD,
    UNCLOSED_TITLE,
    UNQUOTED_ABSTRACT,
    Warn,
)

_AUTHORS_ONLY_RE = re.compile(r"\((.+)\)")
_TRAILING_TAGS_RE = re.compile(r"(?:(?<=\s)#[\w\-]+[,;]?\s*)+$")
_TRAILING_COMMENT_RE = re.compile(r"(?:^|(?<=\s))(?<!\\)%\s*$")
_MACRO_RE = re.compile(r"\\([a-zA-Z]+)(?:\{\})?")
_INLINE_ENGLISH_RE = re.compile(r"</?english>", re.IGNORECASE)
_SEE_MORE_RE = re.compile(r"\s*(?:…|\.\.\.)\s*(?:더\s*보기|See more)\s*$")
_WIKILINK_LINE_RE = re.compile(r"(?:\[\[[^\]]*\]\]\s*)+")
# "384*384": a multiplication sign typed as '*' (the reference issue lost it as "384384").
_TIMES_RE = re.compile(r"(?<=\d)\s?\*\s?(?=\d)")
_BULLET_RE = re.compile(r"(?:[-*+\u2022]|\d{1,2}[.)])\s+")
_LIST_ITEM_RE = re.compile(r"(?:[-*+\u2022]|\(?\d{1,2}[.)])\s+\S")
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'\u2019\-]+")
_IMAGE_LINE_RE = re.compile(r"!\[[^\]]*\]\([^)]*\)|!\[\[[^\]]*\]\]")
_MARKER_RE = re.compile(r"<(?P<close>/?)(?P<word>[A-Za-z]{4,10})>")
# A run of #tags, after a sentence's end or at the line's start, with a remark after it.
_MID_TAGS_RE = re.compile(
    r"(?:^|(?<=[.!?)\]]\s))(?:#[\w\-]*[^\W\d_][\w\-]*[,;]?\s+)+(?=[^\s#])")
_ABSTRACT_OPENER_RE = re.compile(
    r"(?:We |In this (?:paper|work|study|report)|This (?:paper|work|study|report) )")
# An abstract pasted without '>' is a long English paragraph right after the title.
ABSTRACT_MIN_WORDS = 80
OPENER_ABSTRACT_MIN_WORDS = 30


def _split_trailing_tags(line: str) -> tuple[str, list[str]] | None:
    """'commentary. #tag1 #tag2' -> ('commentary.', ['#tag1', '#tag2']); None without such
    a run of hashtags at the end."""
    m = _TRAILING_TAGS_RE.search(line)
    if m is None or not m.start():
        return None
    tags = [t.rstrip(",;") for t in m.group(0).split()]
    if not all(_LETTER_RE.search(t) for t in tags):
        return None  # "#1" is a rank, not a tag
    return line[: m.start()].rstrip(), tags


def _title_macros(abstract: str, title: str) -> str:
    """`\\veomni` in the abstract of 'VeOmni: …' is the authors' macro for the name: spelled as
    in the title (an unknown macro would otherwise read as its bare name)."""
    if "\\" not in abstract:
        return abstract
    words = {w.casefold(): w for w in re.findall(r"[A-Za-z][A-Za-z0-9]{2,}", title)}
    return _MACRO_RE.sub(
        lambda m: words[m.group(1).casefold()]
        if m.group(1).casefold() in words and not known_macro(m.group(1)) else m.group(0),
        abstract)


def _clean_abstract_line(line: str) -> str:
    """An abstract line without its quote marker and a LaTeX comment sign that ends it."""
    return _TRAILING_COMMENT_RE.sub("", line).strip()


def _see_more(line: str) -> str | None:
    """A commentary line without the '… 더 보기' (… See more) of a post copied from a
    social network, or None when it has none."""
    if not line.endswith(("보기", "See more")):
        return None
    m = _SEE_MORE_RE.search(line)
    return line[: m.start()].rstrip() if m else None


def _words(line: str) -> int:
    return sum(1 for t in line.split() if _WORD_RE.fullmatch(t.strip(".,;:!?()\"'")))


def _is_prose(line: str) -> bool:
    """English sentences: words, not a formula, a number or a label."""
    tokens = line.split()
    words = _words(line)
    if words >= 4 and words >= 0.6 * len(tokens):
        return True
    # 'Interesting.': a sentence of its own, however short
    return (bool(words) and line[:1].isupper() and line.endswith((".", "!", "?"))
            and "=" not in line)


def _joins_korean(line: str, paragraph: list[str]) -> bool:
    """Whether a line without Hangul inside a Korean paragraph belongs to it (a list item, a
    formula, a number), rather than being English commentary."""
    if is_links_only(line):
        return False  # links are in every edition already
    if _LIST_ITEM_RE.match(line):
        korean_list = any(has_hangul(p) and _LIST_ITEM_RE.match(p) for p in paragraph)
        return korean_list or not _is_prose(line)
    return not _is_prose(line)


def _follow_paragraph_language(
    commentary: list[tuple[int, str, bool]],
) -> list[tuple[int, str, bool]]:
    """A line without Hangul in a Korean paragraph (lines with no blank line between, outside
    <english>) joins the Korean line before it (or after it), so the Korean edition keeps it:
    the digest format tells a paragraph's language by Hangul."""
    out: list[tuple[int, str, bool]] = []
    i = 0
    while i < len(commentary):
        j = i + 1
        while (j < len(commentary) and commentary[j][0] == commentary[j - 1][0] + 1
               and commentary[j][2] == commentary[i][2]):
            j += 1
        para = commentary[i:j]
        lines = [line for _, line, _ in para]
        if para[0][2] or len(para) == 1 or not any(has_hangul(t) for t in lines):
            out.extend(para)
        else:
            merged: list[tuple[int, str, bool]] = []
            pending: list[str] = []  # lines to join to the next Korean line
            for n, line, eng in para:
                if has_hangul(line) or not _joins_korean(line, lines):
                    if pending and has_hangul(line):
                        line = " ".join((*pending, line))
                        pending = []
                    merged.append((n, line, eng))
                elif merged and has_hangul(merged[-1][1]):
                    m_n, m_line, m_eng = merged[-1]
                    merged[-1] = (m_n, f"{m_line} {line}", m_eng)
                else:
                    pending.append(line)
            if pending:  # nothing Korean after them: they stay lines of their own
                merged.extend((para[-1][0], line, para[-1][2]) for line in pending)
            out.extend(merged)
        i = j
    return out


@dataclass(frozen=True)
class _Paper:
    """A line that names one of the papers of a note about several."""

    index: int  # in the note's content lines
    line: str  # without its list bullet
    arxiv_id: str
    version: int | None
    title: str | None
    group: int | None = None  # papers of one group share the commentary after them


def _paper_lines(content: list[tuple[int, str]]) -> list[_Paper]:
    """The lines naming arXiv papers a note is about: the URL lines at the top, then further
    'Title https://arxiv.org/abs/…' lines (when the note starts that way, or right after
    another), or an arXiv URL alone after a blank line with a title line below it."""
    first = next(
        (i for i, (_, line) in enumerate(content[: MAX_INTRO_LINES + 1])
         if _url_line(_BULLET_RE.sub("", line, count=1), first=i == 0)),
        None,
    )
    if first is None:
        return []
    papers: list[_Paper] = []
    seen: set[str] = set()

    def paper(i: int, line: str, title: str | None, url: str) -> bool:
        found = _ARXIV_URL_RE.fullmatch(url)
        if found is None:
            return False
        try:
            arxiv_id, version = split_arxiv_id(found.group("id"))
        except ValueError:
            return False
        if arxiv_id not in seen:
            seen.add(arxiv_id)
            papers.append(_Paper(i, line, arxiv_id, version,
                                 latex_to_text(title) if title else None))
        return True

    head_line = _BULLET_RE.sub("", content[first][1], count=1)
    run = 1  # the papers of the URL lines at the top: one group, whatever lies between
    head = _url_line(head_line, first=first == 0)
    assert head is not None
    if not paper(first, head_line, head.title, head.url):
        return []
    named = head.title is not None
    i = first + 1
    if head.title is None and head.rest is None:  # the run of URL lines at the top
        while i < len(content) and (m := _URL_LINE_RE.fullmatch(content[i][1])):
            paper(i, content[i][1], None, m.group(1))
            i += 1
        run = len(papers)
    previous = i - 1
    for k in range(i, len(content)):
        n, line = content[k]
        if _HEADING_RE.fullmatch(line):
            break
        if has_hangul(line) or "arxiv.org/" not in line:
            continue
        bare = _BULLET_RE.sub("", line, count=1)
        u = _url_line(bare)
        if u is None or u.rest is not None:
            continue
        after_paper = previous == k - 1
        if u.title is not None:
            if (named or after_paper) and len(u.title.split()) <= 20 and paper(
                    k, bare, u.title, u.url):
                previous = k
        elif (after_paper or n > content[k - 1][0] + 1) and (
                after_paper or _read_title(content, k + 1) is not None) and paper(
                k, bare, None, u.url):
            previous = k
    return [replace(p, group=0) if k < run else p for k, p in enumerate(papers)]


def _english_marker(line: str) -> tuple[str, bool] | None:
    """'<english>' or '</english>' as written, misspelt ('<enligsh>') too: (marker, typo)."""
    m = _MARKER_RE.fullmatch(line)
    if m is None:
        return None
    word = m.group("word").casefold()
    marker = f"<{m.group('close')}english>"
    if word == "english":
        return marker, False
    if difflib.SequenceMatcher(None, word, "english").ratio() >= 0.7:
        return marker, True
    return None


def _unquoted_abstract(content: list[tuple[int, str]], idx: int) -> int | None:
    """Where an abstract pasted without '>' right after the title ends (index after it), or
    None: a long English paragraph before the Korean commentary."""
    end = idx
    while (end < len(content) and not has_hangul(content[end][1])
           and not _is_markup(content[end][1]) and not content[end][1].startswith("<")
           and (end == idx or content[end][0] == content[end - 1][0] + 1)):
        end += 1
    if end == idx:
        return None
    text = " ".join(line for _, line in content[idx:end])
    if _URL_LINE_RE.fullmatch(content[idx][1]) or _ID_LINE_RE.fullmatch(content[idx][1]):
        return None
    words = _words(text)
    korean_after = any(has_hangul(line) for _, line in content[end:])
    opener = _ABSTRACT_OPENER_RE.match(text) is not None
    if (words >= ABSTRACT_MIN_WORDS and (korean_after or opener)) or (
            opener and words >= OPENER_ABSTRACT_MIN_WORDS):
        return end
    return None


def _parse_entry(
    content: list[tuple[int, str]], path: str | Path, warn: Warn, file_title: str | None
) -> Entry:
    """One paper's entry from its lines (URL line first, or after an introduction);
    `file_title` is the title when no line gives one (None: the paper's id)."""
    header = _read_header(content, path)
    idx = header.end
    before = list(header.intro)  # commentary written before the body: intro, URL line's rest
    title = header.title or file_title or (f"arXiv:{header.arxiv_id}" if header.arxiv_id
                                           else None) or ""
    authors: tuple[str, ...] = ()
    titled = header.title is not None  # a line gave the title (not the file name)
    if header.rest and header.title is None and (found := _read_title(list(header.rest), 0)):
        title, authors, _ = found  # 'https://… *Title* (Authors)'
        titled = True
    else:
        before.extend(header.rest)
    if header.title is None and not authors and (found := _read_title(content, idx)):
        title, authors, idx = found
        titled = True
    elif header.title is None and not authors and header.intro and (
            found := _read_title(list(header.intro), 0)) is not None:
        title, authors, _ = found  # the title line written above the URL
        before = before[len(header.intro):]
        titled = True
    elif (header.title is not None and idx < len(content)
          and (m := _AUTHORS_ONLY_RE.fullmatch(content[idx][1])) is not None
          and "://" not in m.group(1) and not has_hangul(m.group(1))):
        authors = _split_authors(m.group(1))  # 'Title (URL)', then '(Authors)'
        idx += 1
    while not titled and idx < len(content) and (ided := _ID_LINE_RE.fullmatch(content[idx][1])):
        _id_line(ided, content[idx], header.arxiv_id, warn)  # '| 2005.04318' above the title
        idx += 1
        if (found := _read_title(content, idx)) is not None:
            title, authors, idx = found
            titled = True
    if not titled and (found := _unclosed_title(content, idx)) is not None:
        title, authors, idx = found
        titled = True
        warn(content[idx - 1][0], "the title line's '(' never closes: read the names after it "
             "as the authors (close it with ')')", UNCLOSED_TITLE)
    if not titled and header.link is not None and (bare := _bare_title(content, idx)):
        warn(content[idx][0], f"{bare[:60]!r} read as the title of the link (write it as "
             "*Title* to say so)", BARE_TITLE)
        title, titled = latex_to_text(bare), True
        idx += 1
    if not title:
        raise FormatError("no title: expected '*Title* (Author, Author)' after the URL",
                          path=path, line=content[min(idx, len(content) - 1)][0])

    abstract: list[str] = []
    abstract_line: int | None = None
    if (end := _unquoted_abstract(content, idx)) is not None and not any(
            line.startswith(">") for _, line in content[idx:]):
        lines_of = (f"line {content[idx][0]}" if end == idx + 1
                    else f"lines {content[idx][0]}-{content[end - 1][0]}")
        warn(content[idx][0], f"the English paragraph of {lines_of} read as the abstract "
             "(pasted without '>')", UNQUOTED_ABSTRACT)
        abstract.extend(_clean_abstract_line(line) for _, line in content[idx:end])
        abstract_line = content[idx][0]
        idx = end
    commentary: list[tuple[int, str, bool]] = [(n, line, False) for n, line in before]
    tags: dict[str, str] = {}
    english_open: int | None = None  # line where an open <english> block started
    english_closed: int | None = None  # line of the last </english>
    last_abstract: int | None = None  # line of the last abstract line, while it may go on
    korean_seen = any(has_hangul(line) for _, line in before)
    for n, line in content[idx:]:
        if (heading := _HEADING_RE.fullmatch(line)) is not None:
            if heading.group("name").strip().casefold() == "links":
                break
            raise FormatError(
                f"unexpected heading {line!r} (only '# Links' may follow the commentary)",
                path=path, line=n,
            )
        continuing = last_abstract is not None and n == last_abstract + 1
        last_abstract = None
        quote = line.startswith(">")
        if not quote and (typo := re.match(r"[A-Za-z]{1,4}>\s*(?=\S)", line)) and not abstract \
                and not commentary[len(before):] and english_open is None and not tags:
            warn(n, f"{typo.group(0).strip()!r} read as the abstract's '>' (a stray key)",
                 UNQUOTED_ABSTRACT)
            line, quote = ">" + line[typo.end():], True
        if quote:
            if commentary[len(before):] or tags or english_open is not None:
                raise FormatError(
                    "a '>' quote after the commentary started "
                    "(expected the abstract right after the title)",
                    path=path, line=n,
                )
            abstract.append(_clean_abstract_line(line[1:]))
            abstract_line = abstract_line or n
            last_abstract = n
            continue
        folded = line.casefold()
        if (marker := _english_marker(line)) is not None:
            folded, typo_marker = marker
            if typo_marker:
                warn(n, f"{line!r} read as {folded}", ENGLISH_BLOCK)
            if folded == "<english>":
                if english_open is not None:
                    warn(n, f"a second <english> while the one of line {english_open} is "
                         "open: read as one block", ENGLISH_BLOCK)
                else:
                    english_open = n
            elif english_open is not None:
                english_open, english_closed = None, n
            elif english_closed is not None:
                warn(n, f"</english> again (the block was closed at line {english_closed}): "
                     "ignored", ENGLISH_BLOCK)
            else:
                warn(n, "</english> without an <english> before it: ignored", ENGLISH_BLOCK)
            continue
        split_tags = None if line == "#" else _split_tags_line(line)
        if line == "#" or split_tags is not None:
            if split_tags is not None:
                found_tags, strays = split_tags
                for tag in found_tags:
                    tags.setdefault(normalize_tag(tag), tag[1:])
                if strays:
                    warn(n, f"{strays[0]!r} in the #tags line is not a tag: ignored (write "
                         f"#{strays[0].lstrip('#')} to make it one)", STRAY_TAG_WORD)
            if english_open is not None:
                warn(english_open, f"<english> is never closed: the English ends at the "
                     f"#tags line {n}", ENGLISH_BLOCK)
                english_open, english_closed = None, n
            continue
        if _WIKILINK_LINE_RE.fullmatch(line):
            continue  # a link to another note in the notes app: nothing a reader can follow
        if _IMAGE_LINE_RE.fullmatch(line):
            warn(n, "an image line: not published (the digest is text)", IMAGE)
            continue
        if (ided := _ID_LINE_RE.fullmatch(line)) is not None:
            _id_line(ided, (n, line), header.arxiv_id, warn)
            continue
        inline_english = "<english>" in folded or "</english>" in folded
        if inline_english:
            # '<english>Text</english>' on one line: the markers go, the text stays.
            line = _INLINE_ENGLISH_RE.sub("", line).strip()
            if not line:
                continue
        if (not korean_seen and english_open is None and not has_hangul(line)
                and (other := _second_title(line, title)) is not None):
            if not titled:  # the title line, after the abstract: the title
                title, titled = other, True
                authors = (_split_title_line(line) or ("", ()))[1]
                continue
            warn(n, f"a second title line {line[:60]!r} (another version's?): not published; "
                 f"the entry's title is {title[:60]!r}", SECOND_TITLE)
            continue
        if continuing and abstract and not has_hangul(line) and not _URL_LINE_RE.fullmatch(line):
            # The abstract goes on without '>' (a paragraph pasted as it was) until the blank
            # line or the Korean commentary.
            abstract.append(_clean_abstract_line(line))
            last_abstract = n
            continue
        if (cut := _see_more(line)) is not None:
            warn(n, "the line ends with '… 더 보기' (a post copied while folded): cut there",
                 SEE_MORE)
            line = cut
            if not line:
                continue
        if (mid := _split_mid_tags(line)) is not None:
            kept, found_tags = mid
            for tag in found_tags:
                tags.setdefault(normalize_tag(tag), tag[1:])
            warn(n, f"{' '.join(found_tags)} inside the line read as the note's tags; the rest "
                 "of the line stays commentary", MID_LINE_TAGS)
            line = kept
        korean_seen = korean_seen or has_hangul(line)
        commentary.append((n, line, english_open is not None or inline_english))
    if english_open is not None:
        warn(english_open, "<english> is never closed: the English ends at the end of the note",
             ENGLISH_BLOCK)
    if commentary:  # 'commentary. #tag1 #tag2': the hashtags end the note on its last line
        n, last, eng = commentary[-1]
        if (split := _split_trailing_tags(last)) is not None:
            kept, trailing = split
            commentary[-1] = (n, kept, eng)
            for tag in trailing:
                tags.setdefault(normalize_tag(tag), tag[1:])
    commentary = _follow_paragraph_language(commentary)

    extra = (" ".join(header.extra),) if header.extra else ()
    entry = Entry(
        title=title,
        authors=authors,
        abstract=_TIMES_RE.sub("×", latex_to_text(_title_macros(" ".join(abstract), title))),
        # Further header URLs stay, as a first paragraph of links.
        commentary=extra + tuple(line for _, line, _ in commentary),
        tags=tuple(tags.values()),
        arxiv_id=header.arxiv_id,
        version=header.version,
        url=header.link,
        line=header.line,
    )
    if (problem := format_problem_at(entry)) is not None:  # a draft could not hold it
        message, part, index = problem
        line_of = {"title": header.line, "abstract": abstract_line or header.line}
        at = line_of.get(part, header.line)
        if part == "commentary" and index is not None and index >= len(extra):
            at = commentary[index - len(extra)][0]
        raise FormatError(message, path=path, line=at)
    return entry


def _split_mid_tags(line: str) -> tuple[str, list[str]] | None:
    """'… 학습. #meta_learning #rl 나중에 다시' -> the line without its #tags, and the tags: a
    run of them at the start of the line or after a sentence, with a remark after it."""
    if "#" not in line:
        return None
    m = _MID_TAGS_RE.search(line)
    if m is None:
        return None
    found = [t.rstrip(",;") for t in m.group(0).split()]
    if m.start() == 0 and len(found) < 2:
        return None  # '#GPT4 is …': a sentence that starts with a hashtag
    kept = " ".join((line[: m.start()].rstrip() + " " + line[m.end():]).split())
    return (kept, found) if kept else None

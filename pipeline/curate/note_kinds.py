"""The stable kinds of NoteWarning (what `digest check` counts) and the warn callback the
note reader's parts report them through."""

from __future__ import annotations

from collections.abc import Callable

# Stable kinds of NoteWarning: `digest check` counts findings by kind.
STRAY_TAG_WORD = "tag-stray-word"  # one word that is no #tag in the tags line
ENGLISH_BLOCK = "english-block"  # <english> unclosed, closed twice, misspelt
SEE_MORE = "see-more"  # '… 더 보기': a post copied while folded
SECOND_TITLE = "second-title"  # another 'Title (Authors)' line: not published
ID_LINE = "id-line"  # an id line naming another paper than the note's
MULTI_PAPER = "multi-paper"  # a note about several papers: one entry each
BARE_TITLE = "bare-title"  # a link note's title read from a line without *…* or authors
UNCLOSED_TITLE = "unclosed-title"  # 'Title (Authors' whose '(' never closes
UNQUOTED_ABSTRACT = "unquoted-abstract"  # an abstract pasted without '>'
MID_LINE_TAGS = "mid-line-tags"  # #tags inside a commentary line, with a remark after
IMAGE = "image"  # a Markdown image line: not published
URL_TYPO = "url-typo"  # stray characters before the URL of the first line


Warn = Callable[[int | None, str, str], None]

"""Match papers to the configured tag rules and score them for ranking (pure)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipeline.core.config import TagRule
from pipeline.core.models import Paper

# Score weights: a phrase in the title says more than one in the abstract; a followed author
# or the primary category says more than a cross-listed category.
TITLE_HIT = 3.0
ABSTRACT_HIT = 1.0
AUTHOR_HIT = 2.0
PRIMARY_CATEGORY_HIT = 1.0
OTHER_CATEGORY_HIT = 0.5


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str] | None:
    """One regex matching any phrase as whole words, case-insensitively, any spacing between,
    with an optional plural ending on the last word ("reward model" finds "reward models")."""
    parts = sorted(
        {r"\s+".join(re.escape(w) for w in _fold(p).split()) for p in phrases if p.strip()},
        key=len,
        reverse=True,  # longest first, so "reward model" wins over "reward"
    )
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?:e?s)?(?!\w)")


@dataclass(frozen=True)
class CompiledRule:
    """A TagRule prepared once: folded names and category sets, compiled phrase regexes."""

    name: str
    categories: frozenset[str]
    keywords: re.Pattern[str] | None
    exclude: re.Pattern[str] | None
    authors: frozenset[str]


@dataclass(frozen=True)
class TagMatch:
    """The tags a paper got (in config order) and its ranking score (higher is better)."""

    tags: tuple[str, ...]
    score: float


def compile_rules(rules: Sequence[TagRule]) -> tuple[CompiledRule, ...]:
    """Prepare the rules for matching many papers."""
    return tuple(
        CompiledRule(
            name=r.name,
            categories=frozenset(r.categories),
            keywords=phrase_pattern(r.keywords),
            exclude=phrase_pattern(r.exclude),
            authors=frozenset(_name_key(a) for a in r.authors if a.strip()),
        )
        for r in rules
    )


def _name_key(name: str) -> str:
    return " ".join(_fold(name).replace(".", ". ").split())


def _distinct(pattern: re.Pattern[str], text: str) -> int:
    return len({" ".join(m.group(0).split()) for m in pattern.finditer(text)})


def match_paper(paper: Paper, rules: Sequence[CompiledRule]) -> TagMatch:
    """Every tag whose rule the paper meets (category, phrase or author; no exclude phrase),
    and a score: distinct phrases in the title and abstract, authors and categories."""
    title = _fold(paper.title)
    abstract = _fold(paper.abstract)
    authors = {_name_key(a) for a in paper.authors}
    tags: list[str] = []
    score = 0.0
    for rule in rules:
        points = 0.0
        if rule.categories:
            if paper.primary_category in rule.categories:
                points += PRIMARY_CATEGORY_HIT
            elif rule.categories.intersection(paper.categories):
                points += OTHER_CATEGORY_HIT
        if rule.keywords is not None:
            points += TITLE_HIT * _distinct(rule.keywords, title)
            points += ABSTRACT_HIT * _distinct(rule.keywords, abstract)
        if rule.authors:
            points += AUTHOR_HIT * len(rule.authors & authors)
        if points == 0.0:
            continue
        if rule.exclude is not None and (
            rule.exclude.search(title) or rule.exclude.search(abstract)
        ):
            continue
        tags.append(rule.name)
        score += points
    return TagMatch(tuple(tags), score)


Span = tuple[int, int]


@dataclass(frozen=True)
class RuleHit:
    """Why one tag rule matched a paper: the spans of its phrases in the paper's own title and
    abstract (offsets into the unfolded text, for highlighting), followed authors, categories."""

    name: str
    title_spans: tuple[Span, ...]
    abstract_spans: tuple[Span, ...]
    phrases: tuple[str, ...]  # the distinct phrases found, as written in the paper
    authors: tuple[str, ...]
    categories: tuple[str, ...]


def _folded_with_offsets(text: str) -> tuple[str, list[int]]:
    """`text` folded character by character, and for each folded character the offset of the
    original character it came from (folding may lengthen text: 'ß' → 'ss'), then len(text)."""
    if text.isascii():  # most titles and abstracts: NFKC keeps ASCII, casefold is lower()
        return text.lower(), list(range(len(text) + 1))
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        folded = _fold(ch)
        out.append(folded)
        origin.extend([i] * len(folded))
    origin.append(len(text))
    return "".join(out), origin


def _spans(pattern: re.Pattern[str] | None, folded: str, origin: list[int]) -> list[Span]:
    """The spans, in the unfolded text, of `pattern`'s matches in its folded form."""
    if pattern is None or not folded:
        return []
    return [(origin[m.start()], origin[m.end() - 1] + 1) for m in pattern.finditer(folded)
            if m.end() > m.start()]


def explain_match(paper: Paper, rules: Sequence[CompiledRule]) -> tuple[RuleHit, ...]:
    """For each tag `match_paper` gives the paper, what made the rule match (same rules, same
    order; a rule stopped by an exclude phrase is left out, as there)."""
    given = set(match_paper(paper, rules).tags)
    if not given:
        return ()
    authors = {_name_key(a): a for a in paper.authors}
    # Folded once per paper, not once per matching rule.
    folded_title = _folded_with_offsets(paper.title)
    folded_abstract = _folded_with_offsets(paper.abstract)
    hits = []
    for rule in rules:
        if rule.name not in given:
            continue
        title = _spans(rule.keywords, *folded_title)
        abstract = _spans(rule.keywords, *folded_abstract)
        found: dict[str, str] = {}  # one spelling per phrase, the first met
        for text, spans in ((paper.title, title), (paper.abstract, abstract)):
            for a, b in spans:
                words = " ".join(text[a:b].split())
                found.setdefault(_fold(words), words)
        hits.append(RuleHit(
            name=rule.name,
            title_spans=tuple(title),
            abstract_spans=tuple(abstract),
            phrases=tuple(found.values()),
            authors=tuple(authors[k] for k in sorted(rule.authors & set(authors))),
            categories=tuple(c for c in paper.categories if c in rule.categories),
        ))
    return tuple(hits)

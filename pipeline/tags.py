"""Match papers to the configured tag rules and score them for ranking (pure)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipeline.config import TagRule
from pipeline.models import Paper

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

"""Tag rules: categories, whole-word phrases, exclude phrases, authors, and the score."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.collect.tags import compile_rules, match_paper
from pipeline.core.config import TagRule
from pipeline.core.models import Paper


def paper(
    title: str = "A study",
    abstract: str = "Nothing to see.",
    authors: tuple[str, ...] = ("Ada Lovelace",),
    categories: tuple[str, ...] = ("cs.LG",),
) -> Paper:
    return Paper("2411.00001", title, authors, abstract, categories=categories)


def tags_of(p: Paper, *rules: TagRule) -> tuple[str, ...]:
    return match_paper(p, compile_rules(rules)).tags


RM = TagRule("reward-model", keywords=("reward model", "process reward"))


def test_phrases_match_whole_words_in_any_case_and_spacing() -> None:
    assert tags_of(paper(title="A Reward  Model for Math"), RM) == ("reward-model",)
    assert tags_of(paper(abstract="we train a reward\nmodel."), RM) == ("reward-model",)
    assert tags_of(paper(abstract="(process reward)"), RM) == ("reward-model",)
    assert tags_of(paper(title="Reward modeling at scale"), RM) == ()
    assert tags_of(paper(title="Nonreward model"), RM) == ()
    assert tags_of(paper(title="reward_model"), RM) == ()


def test_hyphens_and_symbols_are_part_of_the_phrase() -> None:
    rule = TagRule("pre", keywords=("pre-training", "C++"))
    assert tags_of(paper(title="Better Pre-Training"), rule) == ("pre",)
    assert tags_of(paper(title="Better pretraining"), rule) == ()
    assert tags_of(paper(abstract="written in C++."), rule) == ("pre",)
    assert tags_of(paper(abstract="written in C."), rule) == ()


def test_exclude_vetoes_only_its_own_tag() -> None:
    survey = TagRule("llm", keywords=("language model",), exclude=("survey",))
    other = TagRule("nlp", categories=("cs.CL",))
    p = paper(title="A Survey of Language Models", categories=("cs.CL",))
    assert tags_of(p, survey, other) == ("nlp",)
    assert tags_of(paper(title="A language model", abstract="surveying"), survey) == ("llm",)
    assert tags_of(paper(title="A language model", abstract="two surveys"), survey) == ()


def test_categories_and_authors() -> None:
    cat = TagRule("cv", categories=("cs.CV",))
    who = TagRule("lecun", authors=("Yann LeCun",))
    p = paper(categories=("cs.LG", "cs.CV"), authors=("yann  lecun", "B. Other"))
    assert tags_of(p, cat, who) == ("cv", "lecun")
    assert tags_of(paper(), cat, who) == ()
    dotted = TagRule("k", authors=("D.P. Kingma",))
    assert tags_of(paper(authors=("D. P. Kingma",)), dotted) == ("k",)


def test_tags_keep_config_order_and_scores_rank_title_over_abstract() -> None:
    rules = compile_rules([TagRule("b", keywords=("beta",)), TagRule("a", keywords=("alpha",))])
    in_title = match_paper(paper(title="Alpha and beta"), rules)
    in_abstract = match_paper(paper(abstract="alpha and beta"), rules)
    assert in_title.tags == in_abstract.tags == ("b", "a")
    assert in_title.score > in_abstract.score > 0
    nothing = match_paper(paper(), rules)
    assert (nothing.tags, nothing.score) == ((), 0.0)


def test_primary_category_scores_above_a_cross_list() -> None:
    rules = compile_rules([TagRule("cl", categories=("cs.CL",))])
    primary = match_paper(paper(categories=("cs.CL", "cs.LG")), rules)
    cross = match_paper(paper(categories=("cs.LG", "cs.CL")), rules)
    assert primary.score > cross.score > 0


def test_more_distinct_phrases_score_higher() -> None:
    rules = compile_rules([RM])
    one = match_paper(paper(abstract="a reward model; a reward model"), rules)
    two = match_paper(paper(abstract="a reward model and a process reward"), rules)
    assert two.score > one.score


@given(
    before=st.sampled_from(["", " ", "(", "\"", ", ", "—", "\n"]),
    after=st.sampled_from(["", ".", ")", "!", " x", ":", "'s"]),
    case=st.sampled_from([str.lower, str.upper, str.title]),
)
def test_a_phrase_between_non_word_characters_always_matches(
    before: str, after: str, case: object
) -> None:
    text = before + case("process reward") + after  # type: ignore[operator]
    assert tags_of(paper(abstract=text), RM) == ("reward-model",)
    assert tags_of(paper(abstract=text.lower().replace("process", "processx")), RM) == ()


def test_keyword_matches_its_plural_but_not_longer_words() -> None:
    from pipeline.collect.tags import phrase_pattern

    pattern = phrase_pattern(["reward model", "process"])
    assert pattern is not None
    assert pattern.search("we train reward models")
    assert pattern.search("many processes")
    assert not pattern.search("reward modelling")
    assert not pattern.search("processing")

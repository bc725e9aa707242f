"""LaTeX in arXiv titles and abstracts becomes readable Unicode; plain text stays as typed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.text import latex_to_text, title_key


@pytest.mark.parametrize(
    ("latex", "text"),
    [
        (r"an \textit{implicit PRM} can", "an implicit PRM can"),
        (r"less than $1/38$ of", "less than 1/38 of"),
        (r"PIXART-{\delta} is", "PIXART-δ is"),
        (r"at $384\times384$ resolution", "at 384×384 resolution"),
        (r"baseline \textit{\'a la} Math-Shepherd", "baseline á la Math-Shepherd"),
        (r"a 7.2\% gain, removing 90% of data", "a 7.2% gain, removing 90% of data"),
        (r"at \url{https://aka.ms/redstone}.", "at https://aka.ms/redstone."),
        (r"nonlinear Schr\"odinger equation", "nonlinear Schrödinger equation"),
        ("a gap -- a variant ~10x faster", "a gap -- a variant ~10x faster"),
        ("Kehle & Unger's 2022 work", "Kehle & Unger's 2022 work"),
        (r"we introduce \textbf{IKUN}, up to \textbf{50\%}", "we introduce IKUN, up to 50%"),
        ("see https://github.com/a_b/c~d_e. ok", "see https://github.com/a_b/c~d_e. ok"),
        ("it costs $5 per run", "it costs $5 per run"),
        ("two\n  lines", "two lines"),
    ],
)
def test_latex_to_text(latex: str, text: str) -> None:
    assert latex_to_text(latex) == text


@given(st.text(max_size=200).filter(lambda s: "\x00" not in s))
def test_any_text_converts_to_one_line_without_internal_markers(raw: str) -> None:
    out = latex_to_text(raw)
    assert "\n" not in out and "\x00" not in out


def test_title_key_ignores_case_punctuation_latex_and_unicode_forms() -> None:
    assert title_key(r"PIXART-{\delta}: Fast  and Controllable") == title_key(
        "PIXART-δ — fast and controllable"
    )
    assert title_key("Ｆｕｌｌｗｉｄｔｈ Title") == title_key("fullwidth title")

"""The email subject template (`newsletter.subject`): a sandboxed Jinja2 string, checked once.

Plain text (no autoescaping: a subject is not HTML); only the variables below exist, so a
typo is caught when the config is loaded, not on the morning of a send.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # jinja2 is imported when a template is compiled: `digest check` needs none
    from jinja2 import Template

DEFAULT_SUBJECT = "{{ name }} · {{ date }} · {{ first_title }}"
SUBJECT_WIDTH = 78  # characters an inbox row shows at best; first_title is cut to fit
SUBJECT_VARIABLES: dict[str, str] = {
    "name": "the newsletter's title (newsletter.title)",
    "date": "the issue's date in the email's language (2024년 12월 5일, December 5, 2024)",
    "date_iso": "the issue's date as 2024-12-05",
    "first_title": "the first paper's title, shortened so the subject fits ~78 characters",
    "count": "how many papers the issue has",
}

SAMPLE_VALUES: dict[str, str | int] = {
    "name": "ML Papers Digest", "date": "2024년 12월 5일", "date_iso": "2024-12-05",
    "first_title": "Free Process Rewards without Process Labels", "count": 10,
}

# A subject is one line: a template longer than this is no subject, and what it renders to
# is bounded too (a template like {{ "x" * 300000000 }} would take seconds and a gigabyte
# on every command that loads the config).
MAX_SUBJECT_SOURCE = 1000
MAX_SUBJECT_TEXT = 2000
# Filters that never grow their input beyond what the template itself says; the others
# (center, indent, format, wordwrap, replace, ...) can multiply it and are not offered.
_SAFE_FILTERS = (
    "abs", "capitalize", "d", "default", "e", "escape", "first", "float", "int", "last",
    "length", "lower", "round", "string", "striptags", "title", "trim", "truncate", "upper",
    "wordcount",
)


def _environment() -> object:
    """A sandbox whose `*` and `**` cannot build huge values, with the non-growing filters."""
    from jinja2 import StrictUndefined
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import SandboxedEnvironment

    class Bounded(SandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context: object, operator: str, left: object,
                       right: object) -> object:
            if operator == "**" and not (isinstance(left, int | float)
                                         and isinstance(right, int | float)
                                         and abs(left) <= 1000 and abs(right) <= 64):
                raise SecurityError("the subject template raises to a power too large")
            if operator == "*":
                for seq, n in ((left, right), (right, left)):
                    if isinstance(seq, str | list | tuple) and isinstance(n, int) \
                            and len(seq) * n > MAX_SUBJECT_TEXT:
                        raise SecurityError(f"the subject template repeats text past "
                                            f"{MAX_SUBJECT_TEXT} characters")
            return super().call_binop(context, operator, left, right)  # type: ignore[arg-type]

    env = Bounded(autoescape=False, undefined=StrictUndefined)
    env.filters = {name: env.filters[name] for name in _SAFE_FILTERS}
    return env


@functools.lru_cache(maxsize=16)
def compile_subject(source: str) -> Template:
    """The compiled subject template; ValueError saying what is wrong (syntax, unknown name,
    too long, or an expression that builds a huge value)."""
    from jinja2 import TemplateSyntaxError, meta
    from jinja2.sandbox import SandboxedEnvironment

    if len(source) > MAX_SUBJECT_SOURCE:
        raise ValueError(f"the subject template is {len(source)} characters long "
                         f"(expected at most {MAX_SUBJECT_SOURCE})")
    env = _environment()
    assert isinstance(env, SandboxedEnvironment)
    try:
        unknown = sorted(meta.find_undeclared_variables(env.parse(source)) - set(SUBJECT_VARIABLES))
    except TemplateSyntaxError as exc:
        raise ValueError(f"not a valid Jinja2 template: {exc.message} (line {exc.lineno})") from exc
    if unknown:
        raise ValueError(
            f"unknown variable {unknown[0]!r} in the subject template "
            f"(expected some of: {', '.join(SUBJECT_VARIABLES)})"
        )
    template = env.from_string(source)
    # A trial run, so what fails only when rendered (the sandbox refusing an attribute, an
    # {% include %} with nothing to include, a division by zero) fails now, not at a send.
    try:
        text = template.render(**SAMPLE_VALUES)
    except Exception as exc:  # anything a user's template can raise
        raise ValueError(f"the subject template fails: {exc}") from exc
    if len(text) > MAX_SUBJECT_TEXT:
        raise ValueError(f"the subject template gives {len(text)} characters "
                         f"(expected at most {MAX_SUBJECT_TEXT})")
    return template

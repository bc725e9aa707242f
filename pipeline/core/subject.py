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

@functools.lru_cache(maxsize=16)
def compile_subject(source: str) -> Template:
    """The compiled subject template; ValueError saying what is wrong (syntax, unknown name)."""
    from jinja2 import StrictUndefined, TemplateSyntaxError, meta
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)
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
        template.render(**SAMPLE_VALUES)
    except Exception as exc:  # anything a user's template can raise
        raise ValueError(f"the subject template fails: {exc}") from exc
    return template

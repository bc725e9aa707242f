"""What `digest init` writes: a new newsletter's commented config from the owner's answers."""

from __future__ import annotations

import typing
from dataclasses import dataclass

from pipeline.core.settings import ArxivSettings


@dataclass(frozen=True)
class InitAnswers:
    """What `digest init` asks a new owner (the rest of the config keeps its defaults)."""

    name: str
    sender: str  # the From: header, "Name <address>"
    base_url: str
    languages: tuple[str, ...]
    categories: tuple[str, ...]
    tags: tuple[tuple[str, tuple[str, ...]], ...]  # (tag, keywords)
    timezone: str
    collect: str  # cron lines of [schedule]
    send: str
    transport: str  # "smtp" or "outbox"
    smtp_host: str = "localhost"
    smtp_port: int = 587
    smtp_username: str = ""
    contact: str = ""  # arXiv asks for a contact address in the User-Agent
    rss_url: str = ArxivSettings.rss_url
    api_url: str = ArxivSettings.api_url


def _toml_str(value: str) -> str:
    """A TOML basic string."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _toml_list(values: typing.Iterable[str]) -> str:
    return "[" + ", ".join(_toml_str(v) for v in values) + "]"


def init_config_text(a: InitAnswers) -> str:
    """The commented config/digest.toml that `digest init` writes from the owner's answers;
    config/digest.toml in the repository documents every other key."""
    contact = a.contact or a.sender.rpartition("<")[2].rstrip(">").strip()
    tags = "\n".join(
        f"[tags.{key}]\nkeywords = {_toml_list(words)}\n" for key, words in a.tags
    )
    return f'''# {a.name}: made by `digest init`. Every key not here keeps its default; the
# repository's config/digest.toml documents them all. Unknown keys are errors.
# Secrets never live here: DIGEST_SECRET signs the unsubscribe and confirm links,
# DIGEST_SMTP_PASSWORD is the SMTP password.

[newsletter]
title = {_toml_str(a.name)}
from = {_toml_str(a.sender)}             # the From: header of every mail
base_url = {_toml_str(a.base_url)}       # where site/ is published (links, feeds, unsubscribe)
languages = {_toml_list(a.languages)}     # commentary languages; editions: each, and "all"
locale = {_toml_str(a.languages[0])}      # dates and words of the "all" edition and the site
timezone = {_toml_str(a.timezone)}        # the clock of --date defaults and of [schedule]

[arxiv]
categories = {_toml_list(a.categories)}   # fetched together in one request
contact = {_toml_str(contact)}            # goes into the User-Agent, as arXiv asks
rss_url = {_toml_str(a.rss_url)}
api_url = {_toml_str(a.api_url)}

# One table per tag; the table name is the #tag. A paper gets every tag whose rule it meets:
# keywords (whole-word phrases in title or abstract), categories, authors, exclude.
{tags}
[schedule]                                # cron lines, in newsletter.timezone
collect = {_toml_str(a.collect)}          # collect + draft (+ build)
send = {_toml_str(a.send)}                # send the approved issue

[delivery]
# "smtp" mails readers through [smtp]; "outbox" only writes .eml files to outbox/ (a demo).
transport = {_toml_str(a.transport)}

[smtp]
host = {_toml_str(a.smtp_host)}
port = {a.smtp_port}
security = "starttls"                     # "starttls" | "tls" | "none"
username = {_toml_str(a.smtp_username)}   # password: env DIGEST_SMTP_PASSWORD
'''

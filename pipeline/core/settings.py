"""The newsletter's settings as frozen dataclasses (what config/digest.toml becomes); secrets
come from the environment. pipeline.core.config reads and validates the file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline.core.errors import ConfigError
from pipeline.core.subject import DEFAULT_SUBJECT

MIN_SECRET_LENGTH = 16  # non-blank characters of DIGEST_SECRET


@dataclass(frozen=True)
class NewsletterSettings:
    title: str = "ML Papers Digest"
    locale: str = "ko"
    languages: tuple[str, ...] = ("ko", "en")
    timezone: str = "Asia/Seoul"
    base_url: str = "https://digest.example.org"
    from_: str = "ML Papers Digest <digest@example.org>"
    unsubscribe_mailto: str = "unsubscribe@example.org"
    feed_items: int = 20
    subject: str = DEFAULT_SUBJECT


@dataclass(frozen=True)
class PathSettings:
    data: Path = Path("data")
    notes: Path = Path("notes")
    drafts: Path = Path("drafts")
    site: Path = Path("site")
    outbox: Path = Path("outbox")
    templates: Path = Path("templates")


@dataclass(frozen=True)
class ArxivSettings:
    rss_url: str = "https://rss.arxiv.org/rss/{categories}"
    api_url: str = "https://export.arxiv.org/api/query"
    categories: tuple[str, ...] = ("cs.CL", "cs.LG", "cs.CV", "cs.AI")
    announce_types: tuple[str, ...] = ("new", "cross")
    contact: str = "curator@example.org"
    timeout: float = 30.0
    retries: int = 4
    api_interval: float = 3.0


@dataclass(frozen=True)
class TagRule:
    name: str
    categories: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    api_search: bool = False


@dataclass(frozen=True)
class DraftSettings:
    max_candidates: int = 0
    more_papers: int = 20


@dataclass(frozen=True)
class ApprovalSettings:
    required: bool = True


@dataclass(frozen=True)
class DeliverySettings:
    transport: str = "outbox"
    rate_per_second: float = 0.0  # 0 = no cap of its own: the relay's pace and 4xx answers rule
    connections: int = 4
    max_html_kb: int = 90
    # The whole message, every part and header: relays commonly refuse over 10 MB (some
    # count the base64 size), so stay well under.
    max_message_bytes: int = 5_000_000
    # DKIM signing, for those who run their own relay (an ESP signs for you): the private
    # key's path (relative to the newsletter directory), the selector and the signing domain
    # (default: the From address's domain).
    dkim_key: str = ""
    dkim_selector: str = ""
    dkim_domain: str = ""


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"
    username: str = ""
    timeout: float = 30.0
    retries: int = 3
    smtputf8: bool = False


@dataclass(frozen=True)
class BounceSettings:
    soft_limit: int = 3  # soft bounces within soft_days before a reader is set bounced
    soft_days: int = 30
    # Amazon SNS signs with a certificate it names by URL: only hosts matching this pattern
    # are fetched (a forged message could name any URL).
    sns_cert_host: str = r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?"
    sns_topic_arn: str = ""  # when set, SNS messages of other topics are refused
    maildir: str = ""  # a maildir of delivery reports, read by `digest bounces`
    imap_host: str = ""  # or an IMAP mailbox (TLS); password: env DIGEST_IMAP_PASSWORD
    imap_port: int = 993
    imap_user: str = ""
    imap_folder: str = "INBOX"


@dataclass(frozen=True)
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    trusted_proxy: str = ""


@dataclass(frozen=True)
class ScheduleSettings:
    collect: str = "30 10 * * 1-5"
    send: str = "0 18 * * 1-5"
    misfire_grace_seconds: int = 3600


@dataclass(frozen=True)
class Settings:
    """Everything the pipeline needs to know, validated; paths are absolute."""

    root: Path
    newsletter: NewsletterSettings = field(default_factory=NewsletterSettings)
    paths: PathSettings = field(default_factory=PathSettings)
    arxiv: ArxivSettings = field(default_factory=ArxivSettings)
    tags: tuple[TagRule, ...] = ()
    draft: DraftSettings = field(default_factory=DraftSettings)
    approval: ApprovalSettings = field(default_factory=ApprovalSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    web: WebSettings = field(default_factory=WebSettings)
    bounces: BounceSettings = field(default_factory=BounceSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    source: Path | None = None
    # False when the file names no [delivery] transport: nothing is then sent to readers
    # (the outbox default is for the demo and tests, and a real first send must not vanish).
    transport_chosen: bool = True

    @property
    def variants(self) -> tuple[str, ...]:
        """Email/web variants: each language alone, then 'all' when there are several."""
        langs = self.newsletter.languages
        return (*langs, "all") if len(langs) > 1 else langs

    @property
    def locale_language(self) -> str:
        """The language part of newsletter.locale ('ko' of 'ko_KR', 'en' of 'en-GB')."""
        return self.newsletter.locale.split("_")[0].split("-")[0]

    @property
    def db_path(self) -> Path:
        """The SQLite database file (pipeline.core.layout names it)."""
        from pipeline.core import layout

        return layout.store_path(self)

    @property
    def tzinfo(self) -> ZoneInfo:
        """The newsletter's time zone."""
        return ZoneInfo(self.newsletter.timezone)

    @property
    def smtp_password(self) -> str:
        """The SMTP password, from DIGEST_SMTP_PASSWORD (never from a file); surrounding
        whitespace (the newline of `$(cat file)`) is not part of it."""
        return os.environ.get("DIGEST_SMTP_PASSWORD", "").strip()

    @property
    def dkim_key_path(self) -> Path | None:
        """The DKIM private key file (delivery.dkim_key), absolute; None when not signing."""
        key = self.delivery.dkim_key
        return (self.root / key) if key else None

    @property
    def secret(self) -> bytes:
        """The signing secret for unsubscribe and confirm links, from DIGEST_SECRET."""
        value = os.environ.get("DIGEST_SECRET", "").strip()
        if not value:
            raise ConfigError(
                "DIGEST_SECRET is not set: export a long random string to sign links",
                key="DIGEST_SECRET",
            )
        # Every reader holds a token signed with it: a short secret is found offline from
        # one token, and then anyone can unsubscribe anyone.
        strength = sum(not c.isspace() for c in value)  # sixteen spaces are no secret
        if strength < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"DIGEST_SECRET is too short ({strength} characters): use at least "
                f"{MIN_SECRET_LENGTH} random characters, e.g. `openssl rand -hex 32`",
                key="DIGEST_SECRET",
            )
        return value.encode()

"""Load and validate config/digest.toml into frozen settings; secrets come from the environment."""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
import typing
import unicodedata
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.core.errors import ConfigError
from pipeline.core.models import ANNOUNCE_TYPES, MAX_TAG_LENGTH, TAG_RE, normalize_tag
from pipeline.core.subject import DEFAULT_SUBJECT, compile_subject

DEFAULT_CONFIG = Path("config/digest.toml")
CONFIG_ENV = "DIGEST_CONFIG"
# Where a command looks for the config without --config, after $DIGEST_CONFIG: the current
# folder (a newsletter folder made by `digest init` holds config/digest.toml).
CONFIG_CANDIDATES = (Path("digest.toml"), DEFAULT_CONFIG)
# What a config says of its own newsletter (with [tags]): one of them at least. Their
# defaults are example.org placeholders; an empty file would otherwise load as a newsletter.
REQUIRED_KEYS = (("newsletter", "from"), ("newsletter", "base_url"))
MIN_SECRET_LENGTH = 16  # non-blank characters of DIGEST_SECRET
MAX_PORT = 65535
MAX_CONNECTIONS = 64  # delivery.connections
MAX_MESSAGE_BYTES = 9_500_000  # delivery.max_message_bytes: under the common 10 MB limit


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


T = TypeVar("T")

_SECTIONS: dict[str, type[Any]] = {
    "newsletter": NewsletterSettings,
    "paths": PathSettings,
    "arxiv": ArxivSettings,
    "draft": DraftSettings,
    "approval": ApprovalSettings,
    "delivery": DeliverySettings,
    "smtp": SmtpSettings,
    "web": WebSettings,
    "bounces": BounceSettings,
    "schedule": ScheduleSettings,
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "delivery.transport": ("outbox", "smtp"),
    "smtp.security": ("starttls", "tls", "none"),
}


def _toml_name(name: str) -> str:
    return name.rstrip("_")  # `from` is a Python keyword, stored as from_


def _one_line(value: str, key: str, path: Path) -> str:
    """`value` when it has no line break or other control character: settings end up in mail
    headers (a title with CR LF would add a header of its own), URLs and file names."""
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise ConfigError(f"expected one line of text, got {value!r}", path=path, key=key)
    return value


def _convert(value: Any, hint: Any, key: str, path: Path) -> Any:
    """Check one TOML value against a field's type hint; name the key when it is wrong."""
    origin = typing.get_origin(hint)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"expected true or false, got {value!r}", path=path, key=key)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"expected a whole number, got {value!r}", path=path, key=key)
    if hint is float:
        # TOML has nan and inf: a timeout of nan or a rate of inf is no setting
        if isinstance(value, int | float) and not isinstance(value, bool) \
                and math.isfinite(value):
            return float(value)
        raise ConfigError(f"expected a finite number, got {value!r}", path=path, key=key)
    if hint is str:
        if isinstance(value, str):
            return _one_line(value, key, path)
        raise ConfigError(f"expected a string, got {value!r}", path=path, key=key)
    if hint is Path:
        if isinstance(value, str) and value:
            return Path(value)
        raise ConfigError(f"expected a path (a string), got {value!r}", path=path, key=key)
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"expected a list of strings, got {value!r}", path=path, key=key)
        return tuple(_one_line(v, key, path) for v in value)
    raise TypeError(f"unsupported setting type {hint!r}")  # pragma: no cover - programming error


def _build(cls: type[T], table: Any, section: str, path: Path, **fixed: Any) -> T:
    """Build one settings dataclass from a TOML table, rejecting unknown keys."""
    if not isinstance(table, dict):
        raise ConfigError("expected a table", path=path, key=section)
    hints = typing.get_type_hints(cls)
    known = {_toml_name(f.name): f.name for f in fields(cls) if f.name != "name"}  # type: ignore[arg-type]
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown key (expected one of: {', '.join(sorted(known))})",
            path=path,
            key=f"{section}.{unknown[0]}",
        )
    values: dict[str, Any] = dict(fixed)
    for toml_key, attr in known.items():
        if toml_key in table:
            key = f"{section}.{toml_key}"
            values[attr] = _convert(table[toml_key], hints[attr], key, path)
            choices = _CHOICES.get(key)
            if choices and values[attr] not in choices:
                raise ConfigError(
                    f"expected one of {', '.join(choices)}, got {values[attr]!r}",
                    path=path,
                    key=key,
                )
    return cls(**values)


def _check_values(s: Settings, path: Path) -> None:
    """Cross-field checks that a type alone cannot express."""
    nl = s.newsletter
    try:
        ZoneInfo(nl.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"unknown time zone {nl.timezone!r} (expected e.g. Asia/Seoul)",
            path=path,
            key="newsletter.timezone",
        ) from exc
    from babel import Locale, UnknownLocaleError  # only once a config is read (not on import)

    try:
        Locale.parse(nl.locale)
    except (UnknownLocaleError, ValueError) as exc:
        raise ConfigError(
            f"unknown locale {nl.locale!r} (expected e.g. ko or en)",
            path=path,
            key="newsletter.locale",
        ) from exc
    try:
        compile_subject(nl.subject)
    except ValueError as exc:
        raise ConfigError(str(exc), path=path, key="newsletter.subject") from exc
    if not nl.languages:
        raise ConfigError("expected at least one language", path=path, key="newsletter.languages")
    for lang in nl.languages:
        if lang not in ("ko", "en"):
            raise ConfigError(
                f"unsupported language {lang!r} (expected ko or en)",
                path=path,
                key="newsletter.languages",
            )
        if nl.languages.count(lang) > 1:  # each language is one variant, stored once per issue
            raise ConfigError(f"{lang!r} twice (expected each language once)",
                              path=path, key="newsletter.languages")
    base = urlsplit(nl.base_url)
    # Page names are appended to it: a query or fragment would end up in front of them.
    if base.scheme not in ("http", "https") or not base.netloc or base.query or base.fragment:
        raise ConfigError(
            "expected an http(s) URL of the site's folder, without ?query or #fragment "
            "(e.g. https://digest.example.org/)", path=path, key="newsletter.base_url"
        )
    if "{categories}" not in s.arxiv.rss_url:
        raise ConfigError(
            "expected a URL containing {categories}", path=path, key="arxiv.rss_url"
        )
    if not s.arxiv.categories:
        raise ConfigError("expected at least one category", path=path, key="arxiv.categories")
    for t in s.arxiv.announce_types:
        if t not in ANNOUNCE_TYPES:
            raise ConfigError(
                f"unknown announce type {t!r} (expected new, cross, replace or replace-cross)",
                path=path,
                key="arxiv.announce_types",
            )
    checks: list[tuple[str, float, float]] = [
        ("draft.max_candidates", s.draft.max_candidates, 0),
        ("draft.more_papers", s.draft.more_papers, 0),
        ("arxiv.retries", s.arxiv.retries, 0),
        ("arxiv.timeout", s.arxiv.timeout, 0.001),
        ("arxiv.api_interval", s.arxiv.api_interval, 3.0),
        ("delivery.rate_per_second", s.delivery.rate_per_second, 0),
        ("delivery.connections", s.delivery.connections, 1),
        ("delivery.max_html_kb", s.delivery.max_html_kb, 10),
        ("delivery.max_message_bytes", s.delivery.max_message_bytes, 200_000),
        ("bounces.soft_limit", s.bounces.soft_limit, 1),
        ("bounces.soft_days", s.bounces.soft_days, 1),
        ("bounces.imap_port", s.bounces.imap_port, 1),
        ("smtp.port", s.smtp.port, 1),
        ("smtp.timeout", s.smtp.timeout, 0.001),
        ("smtp.retries", s.smtp.retries, 0),
        ("web.port", s.web.port, 1),
        ("newsletter.feed_items", s.newsletter.feed_items, 1),
        ("schedule.misfire_grace_seconds", s.schedule.misfire_grace_seconds, 1),
    ]
    for key, value, minimum in checks:
        if value < minimum:
            raise ConfigError(f"expected at least {minimum:g}, got {value:g}", path=path, key=key)
    if s.delivery.connections > MAX_CONNECTIONS:  # relays refuse (421) past a handful per client
        raise ConfigError(f"expected at most {MAX_CONNECTIONS}, got {s.delivery.connections}",
                          path=path, key="delivery.connections")
    if s.delivery.max_message_bytes > MAX_MESSAGE_BYTES:
        raise ConfigError(f"expected at most {MAX_MESSAGE_BYTES} (relays commonly refuse "
                          f"messages over 10 MB), got {s.delivery.max_message_bytes}",
                          path=path, key="delivery.max_message_bytes")
    dkim = (s.delivery.dkim_key, s.delivery.dkim_selector)
    if any(dkim) and not all(dkim):
        raise ConfigError("DKIM signing needs both delivery.dkim_key and delivery.dkim_selector",
                          path=path, key="delivery.dkim_selector" if s.delivery.dkim_key
                          else "delivery.dkim_key")
    try:
        re.compile(s.bounces.sns_cert_host)
    except re.error as exc:
        raise ConfigError(f"not a regular expression: {exc}", path=path,
                          key="bounces.sns_cert_host") from exc
    proxy = s.web.trusted_proxy
    if proxy:
        try:
            ipaddress.ip_address(proxy)
        except ValueError as exc:
            raise ConfigError(f"expected the proxy's IP address (e.g. 127.0.0.1), got {proxy!r}",
                              path=path, key="web.trusted_proxy") from exc
    for key, port in (("smtp.port", s.smtp.port), ("web.port", s.web.port)):
        if port > MAX_PORT:
            raise ConfigError(f"expected a port from 1 to {MAX_PORT}, got {port}",
                              path=path, key=key)


def _check_from(value: str, smtputf8: bool, path: Path) -> str:
    """newsletter.from with an address that every mail server takes: a display name is
    optional, an internationalised domain becomes its IDNA form (the From header and the
    envelope are ASCII), and a non-ASCII name before the @ needs smtp.smtputf8."""
    from email.headerregistry import Address
    from email.utils import parseaddr

    from email_validator import EmailNotValidError, validate_email

    name, addr = parseaddr(value)
    key = "newsletter.from"
    if "@" not in addr:
        raise ConfigError(f"expected an address, e.g. \"Digest <digest@example.org>\", "
                          f"got {value!r}", path=path, key=key)
    try:
        valid = validate_email(addr, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise ConfigError(f"not a valid address {addr!r}: {exc}", path=path, key=key) from exc
    if not valid.local_part.isascii() and not smtputf8:
        raise ConfigError(f"{addr!r} has a non-ASCII name before the @, which only a mail "
                          "server with SMTPUTF8 carries (set smtp.smtputf8 = true if yours "
                          "has it, or use an ASCII address)", path=path, key=key)
    ascii_addr = f"{valid.local_part}@{valid.ascii_domain}"
    if ascii_addr == addr:
        return value
    return str(Address(display_name=name, addr_spec=ascii_addr))


def _build_tags(table: Any, path: Path, explicit: bool = True) -> tuple[TagRule, ...]:
    """The [tags.<name>] rules; a [tags] table written out must hold at least one."""
    if not isinstance(table, dict):
        raise ConfigError("expected a table of [tags.<name>] tables", path=path, key="tags")
    if not table and explicit:  # collect would find nothing, every day, without a word
        raise ConfigError("expected at least one [tags.<name>] table (e.g. [tags.llm] with "
                          "keywords = [\"language model\"])", path=path, key="tags")
    rules = []
    seen: dict[str, str] = {}
    for name, rule_table in table.items():
        if not TAG_RE.fullmatch("#" + name):
            raise ConfigError(
                "a tag name takes letters, digits, '-' or '_' only", path=path, key=f"tags.{name}"
            )
        first = seen.setdefault(normalize_tag(name), name)
        if first != name:  # both rules would tag a paper twice (#VQ #vq) and score it twice
            raise ConfigError(
                f"the same tag as tags.{first} (tags ignore case, and '_' equals '-')",
                path=path, key=f"tags.{name}",
            )
        if len(name) > MAX_TAG_LENGTH:  # it names files: site/tags/<tag>.xml
            raise ConfigError(f"a tag name has at most {MAX_TAG_LENGTH} characters, this one "
                              f"{len(name)}", path=path, key=f"tags.{name[:20]}…")
        rules.append(_build(TagRule, rule_table, f"tags.{name}", path, name=name))
    for rule in rules:
        if not (rule.categories or rule.keywords or rule.authors):
            raise ConfigError("a tag needs at least one of categories, keywords or authors "
                              "(otherwise it matches nothing)", path=path, key=f"tags.{rule.name}")
    return tuple(rules)


def _resolve_paths(paths: PathSettings, root: Path) -> PathSettings:
    return PathSettings(**{f.name: _absolute(root / getattr(paths, f.name)) for f in fields(paths)})


def _absolute(path: Path) -> Path:
    """`path` made absolute, its last part kept as written: site/ is a symlink that each
    publish swaps (pipeline.publish.versioned), so resolving it would pin one old version."""
    normal = Path(os.path.normpath(path.absolute()))
    return normal.parent.resolve() / normal.name


def parse_config(text: str, path: Path, root: Path) -> Settings:
    """Validate TOML text into Settings; `root` is the newsletter directory for relative paths."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=path) from exc
    unknown = sorted(set(data) - set(_SECTIONS) - {"tags"})
    if unknown:
        raise ConfigError(
            f"unknown section (expected one of: {', '.join(sorted([*_SECTIONS, 'tags']))})",
            path=path,
            key=unknown[0],
        )
    sections = {name: _build(cls, data.get(name, {}), name, path) for name, cls in _SECTIONS.items()}
    settings = Settings(
        root=root.resolve(),
        tags=_build_tags(data.get("tags", {}), path, "tags" in data),
        source=path,
        transport_chosen="transport" in (data.get("delivery") or {}),
        **sections,
    )
    _check_values(settings, path)
    from_ = _check_from(settings.newsletter.from_, settings.smtp.smtputf8, path)
    settings = replace(settings, newsletter=replace(settings.newsletter, from_=from_))
    return Settings(
        **{f.name: getattr(settings, f.name) for f in fields(settings) if f.name != "paths"},
        paths=_resolve_paths(settings.paths, root),
    )


def find_config(explicit: Path | None, env: dict[str, str] | None = None,
                cwd: Path | None = None) -> Path:
    """The config a command uses: --config, else $DIGEST_CONFIG, else ./digest.toml or
    ./config/digest.toml; a one-line error saying where it looked when there is none."""
    if explicit is not None:
        return explicit
    env = dict(os.environ) if env is None else env
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]).expanduser()
    here = cwd or Path.cwd()
    for candidate in CONFIG_CANDIDATES:
        if (here / candidate).is_file():
            return here / candidate if cwd else candidate
    raise ConfigError(
        f"no config found: looked for {' and '.join(map(str, CONFIG_CANDIDATES))} here and "
        f"${CONFIG_ENV}; pass --config PATH, or make a newsletter with `digest init DIR`",
        path=here,
    )


def newsletter_root(path: Path) -> Path:
    """The newsletter directory of a config file: the parent of its folder when that folder
    is `config/` (DIR/config/digest.toml), else its own folder (DIR/digest.toml)."""
    folder = path.resolve().parent
    return folder.parent if folder.name == "config" else folder


def check_not_empty(text: str, path: Path) -> None:
    """Refuse a config that says nothing of its own newsletter: none of REQUIRED_KEYS and no
    [tags] (an empty file would otherwise load as the example newsletter)."""
    data = tomllib.loads(text)  # parse_config has already reported a syntax error
    newsletter = data.get("newsletter") or {}
    if data.get("tags") or any(key in newsletter for _, key in REQUIRED_KEYS):
        return
    raise ConfigError(
        "the config sets neither newsletter.from nor newsletter.base_url nor any [tags]: an "
        "empty or near-empty config is refused (it would load as an example newsletter); "
        "start from `digest init DIR`",
        path=path,
    )


def load_config(path: Path) -> Settings:
    """Read a config file (see newsletter_root for its newsletter directory); a file that
    does not set REQUIRED_KEYS is refused."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError("config file not found (use --config PATH, or `digest init DIR`)",
                          path=path) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", path=path) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError("config is not UTF-8 text", path=path) from exc
    settings = parse_config(text, path, newsletter_root(path))  # bad values named first
    check_not_empty(text, path)
    return settings


def default_settings(root: Path) -> Settings:
    """Settings with every default, for a newsletter directory (used by tests and the demo)."""
    return Settings(root=root.resolve(), paths=_resolve_paths(PathSettings(), root))



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

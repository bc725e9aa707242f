"""Load and validate config/digest.toml into frozen settings; secrets come from the environment."""

from __future__ import annotations

import math
import os
import tomllib
import typing
import unicodedata
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pipeline.core.config_checks import _check_from, _check_values
from pipeline.core.errors import ConfigError
from pipeline.core.models import MAX_TAG_LENGTH, TAG_RE, normalize_tag
from pipeline.core.subject import DEFAULT_SUBJECT

DEFAULT_CONFIG = Path("config/digest.toml")
CONFIG_ENV = "DIGEST_CONFIG"
# Where a command looks for the config without --config, after $DIGEST_CONFIG: the current
# folder (a newsletter folder made by `digest init` holds config/digest.toml).
CONFIG_CANDIDATES = (Path("digest.toml"), DEFAULT_CONFIG)
# What a config says of its own newsletter (with [tags]): one of them at least. Their
# defaults are example.org placeholders; an empty file would otherwise load as a newsletter.
REQUIRED_KEYS = (("newsletter", "from"), ("newsletter", "base_url"))
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

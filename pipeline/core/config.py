"""Load and validate config/digest.toml into frozen settings (pipeline.core.settings)."""

from __future__ import annotations

import math
import os
import tomllib
import typing
import unicodedata
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, TypeVar

from pipeline.core.config_checks import _check_from, _check_values
from pipeline.core.errors import ConfigError
from pipeline.core.models import MAX_TAG_LENGTH, TAG_RE, normalize_tag
from pipeline.core.settings import (
    MIN_SECRET_LENGTH,
    ApprovalSettings,
    ArxivSettings,
    BounceSettings,
    DeliverySettings,
    DraftSettings,
    NewsletterSettings,
    PathSettings,
    ScheduleSettings,
    Settings,
    SmtpSettings,
    TagRule,
    WebSettings,
)

# The settings types are re-exported: callers import them from here with the loader.
__all__ = [
    "CONFIG_CANDIDATES",
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "MIN_SECRET_LENGTH",
    "REQUIRED_KEYS",
    "ApprovalSettings",
    "ArxivSettings",
    "BounceSettings",
    "DeliverySettings",
    "DraftSettings",
    "NewsletterSettings",
    "PathSettings",
    "ScheduleSettings",
    "Settings",
    "SmtpSettings",
    "TagRule",
    "WebSettings",
    "check_not_empty",
    "default_settings",
    "find_config",
    "load_config",
    "newsletter_root",
    "parse_config",
]

DEFAULT_CONFIG = Path("config/digest.toml")
CONFIG_ENV = "DIGEST_CONFIG"
# Where a command looks for the config without --config, after $DIGEST_CONFIG: the current
# folder (a newsletter folder made by `digest init` holds config/digest.toml).
CONFIG_CANDIDATES = (Path("digest.toml"), DEFAULT_CONFIG)
# What a config says of its own newsletter (with [tags]): one of them at least. Their
# defaults are example.org placeholders; an empty file would otherwise load as a newsletter.
REQUIRED_KEYS = (("newsletter", "from"), ("newsletter", "base_url"))

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

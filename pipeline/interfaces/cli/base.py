"""The `digest` group and what its commands share: Context, options, reports."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipeline import __version__
from pipeline.core.errors import InputError

if TYPE_CHECKING:
    from pipeline.core import calendar as arxiv_calendar
    from pipeline.core.config import Settings
    from pipeline.core.runtime import Runtime
    from pipeline.interfaces import present
else:  # imported on first use: `digest check` needs neither the network nor the renderer
    from pipeline.core.lazy import lazy_module

    arxiv_calendar = lazy_module("pipeline.core.calendar")
    present = lazy_module("pipeline.interfaces.present")


class Context:
    """What every command gets: the config path, flags, and lazily loaded settings."""

    def __init__(self, config: Path | None, verbose: bool) -> None:
        self.explicit = config
        self.verbose = verbose
        self._settings: Settings | None = None

    @property
    def config(self) -> Path:
        """--config, else the one found ($DIGEST_CONFIG, ./digest.toml, ./config/)."""
        from pipeline.core.config import find_config

        return find_config(self.explicit)

    def config_if_any(self) -> Path | None:
        """The config when there is one (`digest check` works without)."""
        try:
            path = self.config
        except InputError:
            return None
        return path if path.exists() else None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from pipeline.core.config import load_config

            self._settings = load_config(self.config)
        return self._settings

    def runtime(self) -> Runtime:
        from pipeline.core.runtime import Runtime

        return Runtime(verbose=self.verbose, progress=sys.stderr.isatty())

    def require_secret(self) -> None:
        """Fail now, before any work, when DIGEST_SECRET is unset, blank or short: the
        command leads to a send, and a send signs every reader's unsubscribe link."""
        self.settings.secret  # noqa: B018 - raises ConfigError naming DIGEST_SECRET

    def day(self, value: date | None) -> date:
        """--date, else the day `digest run` picks: the latest arXiv announcement out now (so
        `run`, `studio`, `build` and `send` without --date all mean the same issue)."""
        return value if value is not None else arxiv_calendar.announcement_for(
            self.runtime().now())


pass_ctx = click.make_pass_decorator(Context)


def _parse_date(_ctx: Any, _param: Any, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected YYYY-MM-DD, got {value!r}") from None


date_option = click.option(
    "--date", "day", callback=_parse_date, metavar="YYYY-MM-DD",
    help="Announcement date (default: the latest announcement out now, as `digest run`).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config", type=click.Path(path_type=Path), default=None,
    help="The newsletter's config file (default: $DIGEST_CONFIG, else ./digest.toml or "
         "./config/digest.toml).",
)
@click.option("-v", "--verbose", is_flag=True, help="More detail; tracebacks on errors.")
@click.version_option(__version__, prog_name="digest")
@click.pass_context
def cli(ctx: click.Context, config: Path, verbose: bool) -> None:
    """arxiv-digest: a curated daily arXiv newsletter."""
    ctx.obj = Context(config, verbose)

json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print what the command did as one JSON object on stdout.")


def _say(line: str) -> None:
    """A line of a step's report: on stderr, as the steps' progress always was."""
    click.echo(line, err=True)


def _report(report: object, as_json: bool, **options: bool) -> None:
    """Print a service's report: its lines on stderr, or (`as_json`) its JSON on stdout."""
    if as_json:
        click.echo(json.dumps(present.to_json(report), ensure_ascii=False, indent=2))
        return
    for line in present.lines(report, **options):
        _say(line)

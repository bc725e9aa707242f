"""The `digest` command line: parses flags, calls run/stage functions, reports errors once."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

import click

from pipeline.core.errors import DigestError

# Each module registers its commands on `cli` as it is imported.
from pipeline.interfaces.cli import (
    cmd_check,
    cmd_init,
    cmd_rank,
    cmd_steps,
    cmd_subscribers,
    cmd_web,
)
from pipeline.interfaces.cli.base import Context, cli, date_option, json_option, pass_ctx

if TYPE_CHECKING:
    from pipeline.interfaces import present
else:  # imported on first use, as in base
    from pipeline.core.lazy import lazy_module

    present = lazy_module("pipeline.interfaces.present")

__all__ = [
    "Context", "cli", "cmd_check", "cmd_init", "cmd_rank", "cmd_steps", "cmd_subscribers",
    "cmd_web", "date_option", "json_option", "main", "pass_ctx",
]


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"digest: error: {message}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning every error into one line and an exit code."""
    verbose = any(a in ("-v", "--verbose") for a in (argv if argv is not None else sys.argv[1:]))
    try:
        cli.main(args=argv, prog_name="digest", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("aborted", 1)
    except click.UsageError as exc:
        _fail(exc.format_message().replace("\n", " "), 2)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except DigestError as exc:
        if exc.report is not None:  # what the step did before it failed (a send's totals;
            # its publishing was said as it happened)
            for line in present.error_lines(exc, published_shown=True):
                click.echo(line, err=True)
        if verbose:
            raise
        from pipeline.core.lifecycle import UncommentedError

        if isinstance(exc, UncommentedError):  # the entries it refused, then its one line
            for line in present.error_lines(exc):
                click.echo(line, err=True)
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except OSError as exc:
        if verbose:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}", 1)
    sys.exit(0)

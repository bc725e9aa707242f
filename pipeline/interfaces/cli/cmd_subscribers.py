"""`digest subscribers …`: add, remove, list, import, export."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pipeline.core.errors import InputError
from pipeline.core.models import SUBSCRIBER_STATUSES
from pipeline.interfaces.cli.base import Context, cli, pass_ctx

if TYPE_CHECKING:
    from pipeline import services
else:  # imported on first use, as in base
    from pipeline.core.lazy import lazy_module

    services = lazy_module("pipeline.services")


@cli.group()
def subscribers() -> None:
    """Manage subscribers: add, remove, list, import, export."""


@subscribers.command(name="add")
@click.argument("email")
@click.option("--language", help="Variant: ko, en or all (default: the widest, all).")
@click.option("--tags", default="", help="Space-separated tags (empty = everything).")
@pass_ctx
def subscribers_add(ctx: Context, email: str, language: str | None, tags: str) -> None:
    """Add (or reactivate) a subscriber."""
    from pipeline.deliver import subscribers as subs

    variants = ctx.settings.variants
    with closing(services.open_store(ctx.settings, ctx.runtime())) as conn:
        outcome, sub = subs.add(conn, variants, email, language or variants[-1], tags,
                                smtputf8=ctx.settings.smtp.smtputf8)
    tags_note = f", tags {' '.join(sub.tags)}" if sub.tags else ""
    click.echo(f"{outcome}: {sub.email} ({sub.language}{tags_note})")


@subscribers.command(name="remove")
@click.argument("email")
@pass_ctx
def subscribers_remove(ctx: Context, email: str) -> None:
    """Unsubscribe a subscriber (kept as unsubscribed)."""
    from pipeline.deliver import subscribers as subs

    with closing(services.open_store(ctx.settings, ctx.runtime())) as conn:
        changed = subs.remove(conn, email)
    click.echo(f"{'unsubscribed' if changed else 'already unsubscribed'}: {email}")


@subscribers.command(name="list")
@click.option("--status", type=click.Choice(SUBSCRIBER_STATUSES), help="Only this status.")
@pass_ctx
def subscribers_list(ctx: Context, status: str | None) -> None:
    """List subscribers."""
    from pipeline import store

    with closing(services.open_store(ctx.settings, ctx.runtime())) as conn:
        for sub in store.iter_subscribers(conn, status):
            click.echo(f"{sub.email}\t{sub.language}\t{' '.join(sub.tags)}\t{sub.status}")


@subscribers.command(name="import")
@click.argument("csv_file", type=click.Path(path_type=Path))
@pass_ctx
def subscribers_import(ctx: Context, csv_file: Path) -> None:
    """Import subscribers from CSV (email,language,tags,status)."""
    from pipeline.deliver import subscribers as subs

    with closing(services.open_store(ctx.settings, ctx.runtime())) as conn:
        report = subs.import_csv(conn, ctx.settings.variants, csv_file,
                                 smtputf8=ctx.settings.smtp.smtputf8)
    for line, message in report.errors:  # each one: the rows to fix, by line
        click.echo(f"{csv_file}:{line}: {message}", err=True)
    click.echo(
        f"{csv_file}: added {report.added}, updated {report.updated}, unchanged "
        f"{report.unchanged}, kept unsubscribed {report.kept_unsubscribed}, "
        f"kept unconfirmed {report.kept_unconfirmed}, "
        f"bad rows {len(report.errors)}"
    )
    if report.errors:
        raise InputError(
            f"{len(report.errors)} bad rows (listed above); the other rows were imported",
            path=csv_file,
        )


@subscribers.command(name="export")
@click.argument("csv_file", type=click.Path(path_type=Path))
@pass_ctx
def subscribers_export(ctx: Context, csv_file: Path) -> None:
    """Export subscribers to CSV (email,language,tags,status); '-' writes to stdout."""
    from pipeline.core.files import write_atomic
    from pipeline.deliver import subscribers as subs

    with closing(services.open_store(ctx.settings, ctx.runtime())) as conn:
        text = subs.export_csv(conn)
    if str(csv_file) == "-":
        click.echo(text, nl=False)
    else:
        write_atomic(csv_file, text)

"""The steps: `digest collect`, `draft`, `build`, `approve`, `send`, `status`, `bounces`,
`run` and `schedule`."""

from __future__ import annotations

import json
from contextlib import closing, nullcontext
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipeline.core.errors import DigestError, InputError
from pipeline.interfaces.cli.base import Context, _report, _say, cli, date_option, json_option, pass_ctx

if TYPE_CHECKING:
    from pipeline import services
    from pipeline.core import calendar as arxiv_calendar
    from pipeline.interfaces import present
else:  # imported on first use, as in base
    from pipeline.core.lazy import lazy_module

    arxiv_calendar = lazy_module("pipeline.core.calendar")
    services = lazy_module("pipeline.services")
    present = lazy_module("pipeline.interfaces.present")


@cli.command()
@date_option
@json_option
@pass_ctx
def collect(ctx: Context, day: date | None, as_json: bool) -> None:
    """Fetch the day's announcements (+ API searches) and store candidates."""
    rt = ctx.runtime()
    track = present.progress_bar("Reading the feed") if rt.progress and not as_json else nullcontext
    _report(services.collect(ctx.settings, ctx.day(day), rt, track=track), as_json)


@cli.command()
@date_option
@json_option
@pass_ctx
def draft(ctx: Context, day: date | None, as_json: bool) -> None:
    """Write drafts/DATE.txt (keeps the curator's edits)."""
    _report(services.draft(ctx.settings, ctx.day(day), ctx.runtime()), as_json)


@cli.command()
@date_option
@json_option
@pass_ctx
def build(ctx: Context, day: date | None, as_json: bool) -> None:
    """Merge and render the previews (outbox/DATE/); site/ is untouched until approval."""
    _report(services.build(ctx.settings, ctx.day(day), ctx.runtime()), as_json)


@cli.command()
@date_option
@click.option("--allow-uncommented", is_flag=True,
              help="Approve although some entries have no commentary.")
@json_option
@pass_ctx
def approve(ctx: Context, day: date | None, allow_uncommented: bool, as_json: bool) -> None:
    """Approve the built issue and publish it (site/, feeds); a sent issue: its correction."""
    ctx.require_secret()
    _report(services.approve(ctx.settings, ctx.day(day), ctx.runtime(),
                             allow_uncommented=allow_uncommented), as_json)


@cli.command()
@date_option
@click.option("--dry-run", is_flag=True,
              help="Write every reader's message to outbox/DATE/; records nothing (any state "
              "after build).")
@click.option("--to", metavar="ADDR",
              help="Send a [TEST] copy to ADDR; records nothing (any state after build).")
@click.option("--variant", metavar="VARIANT",
              help="With --to: the variant to send (e.g. ko, en, all; default: ADDR's own, "
              "else the widest).")
@json_option
@pass_ctx
def send(ctx: Context, day: date | None, dry_run: bool, to: str | None,
         variant: str | None, as_json: bool) -> None:
    """Send the approved issue to subscribers (publishing it first if needed)."""
    if variant is not None and to is None:
        raise click.UsageError("--variant goes with --to ADDR")
    ctx.require_secret()

    def published(report: services.PublishReport) -> None:
        if not as_json:  # said before the first mail goes out, as it happens
            for line in present.lines(report):
                _say(line)

    rt = ctx.runtime()
    bar = present.progress_counter("sending") if rt.progress and not as_json else None
    report = services.send(ctx.settings, ctx.day(day), rt, dry_run=dry_run, to=to,
                           variant=variant, on_publish=published, progress=bar)
    _report(report, as_json, published_shown=True)


@cli.command()
@date_option
@json_option
@pass_ctx
def status(ctx: Context, day: date | None, as_json: bool) -> None:
    """The day's issue at a glance: collected, draft, build, approval, publication, sending."""
    report = services.status(ctx.settings, ctx.day(day), ctx.runtime())
    try:
        ctx.require_secret()
    except DigestError as exc:  # status still reports the day; the send would fail
        click.echo(f"digest: warning: {exc}", err=True)
    rates = _deliverability(ctx)
    if as_json:
        data = report.as_json()
        data["deliverability"] = rates.as_json() if rates is not None else None
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    for line in present.status_lines(report):
        click.echo(line)
    if rates is not None:
        click.echo(rates.text_line())
        for warning in rates.warnings:
            click.echo(f"warning: {warning}")


def _deliverability(ctx: Context) -> Any:
    """Bounce and complaint rates of the last RATE_DAYS days (None without a store)."""
    from datetime import timedelta

    from pipeline import store
    from pipeline.deliver import bounces

    if not store.check_present(ctx.settings.db_path):
        return None
    with closing(store.connect(ctx.settings.db_path)) as conn:
        return bounces.rates(conn, ctx.runtime().now() - timedelta(days=bounces.RATE_DAYS))


@cli.command(name="bounces")
@click.option("--maildir", type=click.Path(path_type=Path),
              help="Read this maildir (default: bounces.maildir, else the IMAP mailbox).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_ctx
def bounces_cmd(ctx: Context, maildir: Path | None, as_json: bool) -> None:
    """Read delivery and complaint reports (maildir/IMAP) and stop the readers they name."""
    import os

    from pipeline.deliver import bounces

    settings = ctx.settings
    folder = maildir or (settings.root / settings.bounces.maildir
                         if settings.bounces.maildir else None)
    if folder is not None:
        reading = bounces.read_maildir(folder)
    elif settings.bounces.imap_host:
        reading = bounces.read_imap(settings, os.environ.get("DIGEST_IMAP_PASSWORD", ""))
    else:
        raise InputError("no mailbox to read: set bounces.maildir or bounces.imap_host, or "
                         "pass --maildir", key="bounces.maildir")
    rt = ctx.runtime()
    # the mailbox marks what was read only once the store has recorded it
    with reading as scan, closing(services.open_store(settings, rt)) as conn:
        applied = bounces.apply_events(conn, settings, scan.events, rt.now())
    kinds = dict(bounces.iter_kinds(applied))
    if as_json:
        click.echo(json.dumps({"messages": scan.messages, "not_reports": scan.not_reports,
                               "recorded": applied.recorded, "repeated": applied.repeated,
                               **kinds, "stopped": list(applied.stopped)}, indent=2))
        return
    for email in applied.stopped:
        click.echo(f"stopped: {email}")
    noun = "message" if scan.messages == 1 else "messages"
    click.echo(f"read {scan.messages} {noun}: hard bounces {kinds['hard']}, soft bounces "
               f"{kinds['soft']}, complaints {kinds['complaint']}, seen before "
               f"{applied.repeated}, not reports {scan.not_reports}; stopped "
               f"{len(applied.stopped)} readers")


@cli.command(name="run")
@date_option
@json_option
@pass_ctx
def run_cmd(ctx: Context, day: date | None, as_json: bool) -> None:
    """The daily job: collect, draft, build, then send when approved.

    Without --date: the latest arXiv announcement out now, and any recent issue approved
    after its send went out."""
    ctx.require_secret()
    rt = ctx.runtime()
    said: list[object] = []

    def on_event(event: object) -> None:
        if as_json:
            said.append(event)
        else:  # each line as it happens; a day's outcome is its last event
            for line in present.lines(event, published_shown=True):
                _say(line)

    bar = present.progress_counter("sending") if rt.progress and not as_json else None
    reports = [services.daily(ctx.settings, day, rt, on_event=on_event, progress=bar)]
    if day is None:
        reports += services.send_late(ctx.settings, arxiv_calendar.announcement_for(rt.now()),
                                      rt, on_event=on_event, progress=bar)
    if as_json:
        events = [present.to_json(e) for e in said if not isinstance(e, services.DailyReport)]
        click.echo(json.dumps({"report": "run", "days": [present.to_json(r) for r in reports],
                               "events": events}, ensure_ascii=False, indent=2))


@cli.command()
@pass_ctx
def schedule(ctx: Context) -> None:
    """Run the scheduler in the foreground."""
    from pipeline.services import schedule as scheduler

    ctx.require_secret()
    # A send's publishing is logged as it happens (on_publish): its report need not repeat it.
    scheduler.main(ctx.settings, ctx.runtime(),
                   describe=lambda report: present.lines(report, published_shown=True))

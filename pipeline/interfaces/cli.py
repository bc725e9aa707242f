"""The `digest` command line: parses flags, calls run/stage functions, reports errors once."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from pipeline import __version__
from pipeline.core.config import DEFAULT_CONFIG
from pipeline.core.errors import DigestError, FormatError, InputError
from pipeline.core.models import SUBSCRIBER_STATUSES

if TYPE_CHECKING:
    from pipeline.core import calendar as arxiv_calendar
    from pipeline.core.config import Settings
    from pipeline.core.runtime import Runtime
    from pipeline.curate.checking import Context as CheckContext
    from pipeline.curate.checking import FileReport
    from pipeline.curate.lint import Finding
    from pipeline.services import run
else:  # imported on first use: `digest check` needs neither the network nor the renderer
    from pipeline.core.lazy import lazy_module

    arxiv_calendar = lazy_module("pipeline.core.calendar")
    run = lazy_module("pipeline.services.run")


class Context:
    """What every command gets: the config path, flags, and lazily loaded settings."""

    def __init__(self, config: Path, verbose: bool) -> None:
        self.config = config
        self.verbose = verbose
        self._settings: Settings | None = None

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
        return value if value is not None else run.today(self.settings, self.runtime())


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
    help="Announcement date (default: today in the newsletter's time zone).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config", type=click.Path(path_type=Path), default=DEFAULT_CONFIG, show_default=True,
    help="The newsletter's config file.",
)
@click.option("-v", "--verbose", is_flag=True, help="More detail; tracebacks on errors.")
@click.version_option(__version__, prog_name="digest")
@click.pass_context
def cli(ctx: click.Context, config: Path, verbose: bool) -> None:
    """arxiv-digest: a curated daily arXiv newsletter."""
    ctx.obj = Context(config, verbose)


# A linted file or an imported CSV can have thousands of findings; the first ones say enough.
MAX_FINDINGS_SHOWN = 50


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON array: per file, the parsed entries and the findings.")
@click.option("--flowed", is_flag=True,
              help="The files are format=flowed text (an email's text part, site/issues/D.txt): "
              "join their wrapped lines first.")
@pass_ctx
def check(ctx: Context, paths: tuple[Path, ...], as_json: bool, flowed: bool) -> None:
    """Validate digest, draft and note files (notes: *.md; folders: recursive) and lint what
    they would publish; exits 2 when any file has an error."""
    from pipeline.curate import checking

    files = list(checking.expand_paths(paths))
    if not files:
        raise InputError("no *.md, *.markdown or *.txt files to check under "
                         + ", ".join(str(p) for p in paths))
    with _check_context(ctx) as check_ctx:
        check_ctx = replace(check_ctx, flowed=flowed)
        reports = [checking.check_file(f, check_ctx) for f in files]
    bad = [r for r in reports if r.status == "error"]
    if as_json:
        click.echo(json.dumps([r.to_json() for r in reports], ensure_ascii=False, indent=2))
        if bad:
            raise FormatError(f"{len(bad)} of {len(reports)} files with errors",
                              path=bad[0].path if len(reports) == 1 else None)
        return
    single = len(reports) == 1 and not paths[0].is_dir()
    for report in reports:
        _print_report(report, single)
    if not single:
        click.echo(checking.summary(reports))
        if bad:
            raise FormatError(f"{len(bad)} of {len(reports)} files with errors (see above)")


def _print_report(report: FileReport, single: bool) -> None:
    """The findings of one file on stderr (the first MAX_FINDINGS_SHOWN), and its line."""
    from pipeline.curate import lint

    path = report.path
    if report.parsed is None and single:
        (error,) = report.messages  # one file that cannot be read: one line, as ever
        raise FormatError(error.message, path=error.path or path, line=error.line)
    for m in report.messages[:MAX_FINDINGS_SHOWN]:
        click.echo(f"digest: {m.level}: {_where(m, path)}: {m.message}", err=True)
    if len(report.messages) > MAX_FINDINGS_SHOWN:
        click.echo(f"digest: … {len(report.messages) - MAX_FINDINGS_SHOWN} more findings not "
                   "shown", err=True)
    errors = sum(m.level == "error" for m in report.messages)
    if report.status == "error":
        if single:
            raise FormatError(f"{errors} error{'s' * (errors > 1)} (see above)", path=path)
        first = next(m for m in report.messages if m.level == "error")
        more = f" (and {errors - 1} more)" if errors > 1 else ""
        click.echo(f"{_where(first, path)}: error: {first.message}{more}")
        return
    n = report.entries
    kind = "note" if report.kind == "note" else f"{n} entr{'y' if n == 1 else 'ies'}"
    warned = len(report.messages)
    bare = sum(m.kind == lint.UNCOMMENTED for m in report.messages)
    click.echo(f"{path}: ok, {kind}" + (f", {warned} warning{'s' * (warned > 1)}"
                                        if warned else "")
               + (f" ({bare} without commentary)" if bare else ""))


def _where(finding: Finding, path: Path) -> str:
    """`file:line` of a finding: its own file, else the one checked."""
    return (finding.path or str(path)) + (f":{finding.line}" if finding.line is not None else "")


@contextmanager
def _check_context(ctx: Context) -> Iterator[CheckContext]:
    """What the config and the store add to `digest check` (opened once for all files)."""
    from pipeline.curate import checking

    settings = ctx.settings if ctx.config.exists() else None
    if settings is None:
        yield checking.Context()
        return
    base = checking.Context(languages=settings.newsletter.languages,
                            known_tags=[t.name for t in settings.tags])
    from pipeline import store

    if not store.check_present(settings.db_path):
        yield base
        return
    from pipeline.curate import lint, notes

    with closing(store.connect(settings.db_path)) as conn:
        reported = False

        def notes_findings() -> list[lint.Finding]:
            nonlocal reported
            if reported:  # with the first digest checked only: the notes are the same for all
                return []
            reported = True
            shelf = notes.read_notes(settings.paths.notes)
            ids = [n.entry.arxiv_id for n in shelf.notes if n.entry.arxiv_id]
            known = set(store.get_papers(conn, ids))
            return lint.waiting_notes(shelf.notes, known) + [
                lint.Finding("warning", f"note not used: {e.message}", e.line, e.path)
                for e in shelf.errors
            ]

        yield replace(base, stored_ids=lambda ids: set(store.get_papers(conn, ids)),
                      notes_findings=notes_findings)


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
def fmt(file: Path) -> None:
    """Print the digest in canonical form (an unchanged input gives the same bytes)."""
    from pipeline.core import digest_format as digest

    text = digest.write_digest(digest.read_digest(file))
    sys.stdout.buffer.write(text.encode("utf-8"))


@cli.command()
@date_option
@pass_ctx
def collect(ctx: Context, day: date | None) -> None:
    """Fetch the day's announcements (+ API searches) and store candidates."""
    run.collect(ctx.settings, ctx.day(day), ctx.runtime())


@cli.command()
@date_option
@pass_ctx
def draft(ctx: Context, day: date | None) -> None:
    """Write drafts/DATE.txt (keeps the curator's edits)."""
    run.draft(ctx.settings, ctx.day(day), ctx.runtime())


@cli.command()
@date_option
@pass_ctx
def build(ctx: Context, day: date | None) -> None:
    """Merge and render the previews (outbox/DATE/); site/ is untouched until approval."""
    run.build(ctx.settings, ctx.day(day), ctx.runtime())


@cli.command()
@date_option
@click.option("--allow-uncommented", is_flag=True,
              help="Approve although some entries have no commentary.")
@pass_ctx
def approve(ctx: Context, day: date | None, allow_uncommented: bool) -> None:
    """Approve the built issue and publish it (site/, feeds); a sent issue: its correction."""
    ctx.require_secret()
    run.approve(ctx.settings, ctx.day(day), ctx.runtime(), allow_uncommented=allow_uncommented)


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
@pass_ctx
def send(ctx: Context, day: date | None, dry_run: bool, to: str | None,
         variant: str | None) -> None:
    """Send the approved issue to subscribers (publishing it first if needed)."""
    if variant is not None and to is None:
        raise click.UsageError("--variant goes with --to ADDR")
    ctx.require_secret()
    run.send(ctx.settings, ctx.day(day), ctx.runtime(), dry_run=dry_run, to=to,
             variant=variant)


@cli.command()
@date_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@pass_ctx
def status(ctx: Context, day: date | None, as_json: bool) -> None:
    """The day's issue at a glance: collected, draft, build, approval, publication, sending."""
    from pipeline.core import lifecycle

    report = lifecycle.status(ctx.settings, ctx.day(day), ctx.runtime())
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
    for line in report.text_lines():
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
        scan = bounces.read_maildir(folder)
    elif settings.bounces.imap_host:
        scan = bounces.read_imap(settings, os.environ.get("DIGEST_IMAP_PASSWORD", ""))
    else:
        raise InputError("no mailbox to read: set bounces.maildir or bounces.imap_host, or "
                         "pass --maildir", key="bounces.maildir")
    rt = ctx.runtime()
    with closing(run.open_store(settings, rt)) as conn:
        applied = bounces.apply_events(conn, settings, scan.events, rt.now())
    kinds = dict(bounces.iter_kinds(applied))
    if as_json:
        click.echo(json.dumps({"messages": scan.messages, "not_reports": scan.not_reports,
                               "recorded": applied.recorded, "repeated": applied.repeated,
                               **kinds, "stopped": list(applied.stopped)}, indent=2))
        return
    for email in applied.stopped:
        click.echo(f"stopped: {email}")
    click.echo(f"read {scan.messages} messages: hard bounces {kinds['hard']}, soft bounces "
               f"{kinds['soft']}, complaints {kinds['complaint']}, seen before "
               f"{applied.repeated}, not reports {scan.not_reports}; stopped "
               f"{len(applied.stopped)} readers")


@cli.command(name="run")
@date_option
@pass_ctx
def run_cmd(ctx: Context, day: date | None) -> None:
    """The daily job: collect, draft, build, then send when approved.

    Without --date: the latest arXiv announcement out now, and any recent issue approved
    after its send went out."""
    ctx.require_secret()
    rt = ctx.runtime()
    run.daily(ctx.settings, day, rt)
    if day is None:
        run.send_late(ctx.settings, arxiv_calendar.announcement_for(rt.now()), rt)


@cli.command()
@pass_ctx
def schedule(ctx: Context) -> None:
    """Run the scheduler in the foreground."""
    from pipeline.services import schedule as scheduler

    ctx.require_secret()
    scheduler.main(ctx.settings, ctx.runtime())


@cli.command()
@click.option("--host", help="Address to listen on (default: web.host).")
@click.option("--port", type=click.IntRange(0, 65535),
              help="Port to listen on (default: web.port; 0 = any free port).")
@pass_ctx
def serve(ctx: Context, host: str | None, port: int | None) -> None:
    """Serve unsubscribe/subscribe and site/ over HTTP."""
    from pipeline.interfaces import serve as web

    settings = ctx.settings
    settings.secret  # noqa: B018 - fail now, not on the first unsubscribe, if it is unset
    # A name that does not resolve fails now, in one line, not as a traceback (or, for the
    # mail server, only in the log of the first confirmation mail).
    web.check_host(host or settings.web.host, "--host" if host else "web.host")
    if settings.delivery.transport == "smtp":
        web.check_host(settings.smtp.host, "smtp.host")
    server = web.make_server(  # --port 0: a free port chosen by the OS, not web.port
        settings, host or settings.web.host, settings.web.port if port is None else port,
        ctx.runtime(),
    )
    click.echo(f"serving on http://{host or settings.web.host}:{server.effective_port}", err=True)
    server.run()


@cli.command()
@date_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; one other than loopback needs DIGEST_STUDIO_PASSWORD.")
@click.option("--port", type=int, default=0, help="Port to listen on (default: any free one).")
@click.option("--to", metavar="ADDR", help="Where test copies go (default: arxiv.contact).")
@pass_ctx
def studio(ctx: Context, day: date | None, host: str, port: int, to: str | None) -> None:
    """Pick, annotate, preview and approve the day's issue in a browser."""
    from pipeline.interfaces import studio as studio_app

    studio_app.serve_studio(ctx.settings, ctx.day(day), ctx.runtime(), host=host, port=port,
                            to=to, ready=lambda line: click.echo(line, err=True))


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
    with closing(run.open_store(ctx.settings, ctx.runtime())) as conn:
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

    with closing(run.open_store(ctx.settings, ctx.runtime())) as conn:
        changed = subs.remove(conn, email)
    click.echo(f"{'unsubscribed' if changed else 'already unsubscribed'}: {email}")


@subscribers.command(name="list")
@click.option("--status", type=click.Choice(SUBSCRIBER_STATUSES), help="Only this status.")
@pass_ctx
def subscribers_list(ctx: Context, status: str | None) -> None:
    """List subscribers."""
    from pipeline import store

    with closing(run.open_store(ctx.settings, ctx.runtime())) as conn:
        for sub in store.iter_subscribers(conn, status):
            click.echo(f"{sub.email}\t{sub.language}\t{' '.join(sub.tags)}\t{sub.status}")


@subscribers.command(name="import")
@click.argument("csv_file", type=click.Path(path_type=Path))
@pass_ctx
def subscribers_import(ctx: Context, csv_file: Path) -> None:
    """Import subscribers from CSV (email,language,tags,status)."""
    from pipeline.deliver import subscribers as subs

    with closing(run.open_store(ctx.settings, ctx.runtime())) as conn:
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

    with closing(run.open_store(ctx.settings, ctx.runtime())) as conn:
        text = subs.export_csv(conn)
    if str(csv_file) == "-":
        click.echo(text, nl=False)
    else:
        write_atomic(csv_file, text)


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
        if verbose:
            raise
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except OSError as exc:
        if verbose:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}", 1)
    sys.exit(0)



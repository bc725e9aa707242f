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
from pipeline.core.errors import DigestError, FormatError, InputError
from pipeline.core.models import SUBSCRIBER_STATUSES

if TYPE_CHECKING:
    from pipeline import services

if TYPE_CHECKING:
    from pipeline.core import calendar as arxiv_calendar
    from pipeline.core.config import Settings
    from pipeline.core.runtime import Runtime
    from pipeline.curate.checking import Context as CheckContext
    from pipeline.curate.checking import FileReport
    from pipeline.curate.lint import Finding
    from pipeline.interfaces import present
else:  # imported on first use: `digest check` needs neither the network nor the renderer
    from pipeline.core.lazy import lazy_module

    arxiv_calendar = lazy_module("pipeline.core.calendar")
    services = lazy_module("pipeline.services")
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


# A linted file or an imported CSV can have thousands of findings; the first ones say enough.
MAX_FINDINGS_SHOWN = 50
# Checking many files, the warnings of one kind shown before they are only counted.
SHOWN_PER_KIND = 3


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
    # Many files: a kind of warning that repeats is shown a few times, then counted.
    shown: dict[str, int] | None = None if single or ctx.verbose else {}
    for report in reports:
        _print_report(report, single, shown)
    if not single:
        hidden = 0
        for level, kind, n, in_files in checking.counts_by_kind(reports):
            click.echo(f"  {kind}: {n} {level}{'s' * (n != 1)} in {in_files} "
                       f"file{'s' * (in_files != 1)}")
            if shown is not None and level == "warning":
                hidden += max(0, n - SHOWN_PER_KIND)
        if hidden:
            click.echo(f"  ({hidden} more warnings not shown: the first {SHOWN_PER_KIND} of "
                       "each kind are; all with `digest -v check`)")
        click.echo(checking.summary(reports))
        if bad:
            raise FormatError(f"{len(bad)} of {len(reports)} files with errors (see above)")


def _print_report(report: FileReport, single: bool, shown: dict[str, int] | None) -> None:
    """The findings of one file on stderr (the first MAX_FINDINGS_SHOWN), and its line;
    `shown` counts the warnings shown so far by kind (None: show them all)."""
    from pipeline.curate import lint

    path = report.path
    if report.parsed is None and single:
        (error,) = report.messages  # one file that cannot be read: one line, as ever
        raise FormatError(error.message, path=error.path or path, line=error.line)
    for m in report.messages[:MAX_FINDINGS_SHOWN]:
        if shown is not None and m.level == "warning":
            kind = m.kind or "other"
            shown[kind] = shown.get(kind, 0) + 1
            if shown[kind] > SHOWN_PER_KIND:
                continue
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
    from pipeline.core import layout
    from pipeline.curate import checking

    settings = ctx.settings if ctx.config_if_any() is not None else None
    if settings is None:
        yield checking.Context()
        return
    base = checking.Context(languages=settings.newsletter.languages,
                            known_tags=[t.name for t in settings.tags])
    from pipeline import store

    if not store.check_present(layout.store_path(settings)):
        yield base
        return
    from pipeline.curate import lint, notes

    with closing(store.connect(layout.store_path(settings))) as conn:
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
                lint.Finding("warning", f"note not used: {e.message}", e.line, e.path,
                             kind=lint.NOTE_UNUSED)
                for e in shelf.errors
            ]

        yield replace(base, stored_ids=lambda ids: set(store.get_papers(conn, ids)),
                      sent_papers=lambda day: store.sent_papers(conn, day),
                      notes_findings=notes_findings)


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
def fmt(file: Path) -> None:
    """Print the digest in canonical form (an unchanged input gives the same bytes)."""
    from pipeline.core import digest_format as digest

    text = digest.write_digest(digest.read_digest(file))
    sys.stdout.buffer.write(text.encode("utf-8"))


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


@cli.command()
@date_option
@json_option
@pass_ctx
def collect(ctx: Context, day: date | None, as_json: bool) -> None:
    """Fetch the day's announcements (+ API searches) and store candidates."""
    rt = ctx.runtime()
    track = present.progress_bar("Reading the feed") if rt.progress and not as_json else None
    report = (services.collect(ctx.settings, ctx.day(day), rt, track=track) if track
              else services.collect(ctx.settings, ctx.day(day), rt))
    _report(report, as_json)


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

    report = services.send(ctx.settings, ctx.day(day), ctx.runtime(), dry_run=dry_run, to=to,
                           variant=variant, on_publish=published)
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
        scan = bounces.read_maildir(folder)
    elif settings.bounces.imap_host:
        scan = bounces.read_imap(settings, os.environ.get("DIGEST_IMAP_PASSWORD", ""))
    else:
        raise InputError("no mailbox to read: set bounces.maildir or bounces.imap_host, or "
                         "pass --maildir", key="bounces.maildir")
    rt = ctx.runtime()
    with closing(services.open_store(settings, rt)) as conn:
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

    reports = [services.daily(ctx.settings, day, rt, on_event=on_event)]
    if day is None:
        reports += services.send_late(ctx.settings, arxiv_calendar.announcement_for(rt.now()),
                                      rt, on_event=on_event)
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
    scheduler.main(ctx.settings, ctx.runtime(), describe=present.lines)


@cli.command()
@click.option("--host", help="Address to listen on (default: web.host).")
@click.option("--port", type=click.IntRange(0, 65535),
              help="Port to listen on (default: web.port; 0 = any free port).")
@pass_ctx
def serve(ctx: Context, host: str | None, port: int | None) -> None:
    """Serve unsubscribe/subscribe and site/ over HTTP."""
    from pipeline.interfaces import serve as web
    from pipeline.interfaces.guard import check_host

    settings = ctx.settings
    settings.secret  # noqa: B018 - fail now, not on the first unsubscribe, if it is unset
    # A name that does not resolve fails now, in one line, not as a traceback (or, for the
    # mail server, only in the log of the first confirmation mail).
    check_host(host or settings.web.host, "--host" if host else "web.host")
    if settings.delivery.transport == "smtp":
        check_host(settings.smtp.host, "smtp.host")
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


def _new_folder(_ctx: Any, _param: Any, folder: Path) -> Path:
    """`digest init`'s folder, refused before any question when it holds a config."""
    folder = folder.expanduser()
    if (folder / "config" / "digest.toml").exists():
        raise InputError(f"{folder / 'config' / 'digest.toml'} already exists: nothing was changed")
    return folder


@cli.command()
@click.argument("folder", type=click.Path(path_type=Path), callback=_new_folder, is_eager=True)
@click.option("--name", prompt="Newsletter name", help="The newsletter's name.")
@click.option("--from", "sender", prompt="Sender (Name <address>)", help="The From: header.")
@click.option("--base-url", prompt="Base URL of the published site", help="Where site/ lives.")
@click.option("--languages", default="ko,en", show_default=True, prompt="Languages (ko, en)",
              help="Commentary languages, comma-separated; the first is the site's.")
@click.option("--categories", default="cs.CL,cs.LG", show_default=True,
              prompt="arXiv categories", help="Comma-separated arXiv categories.")
@click.option("--tag", "tags", multiple=True, metavar="NAME=KEYWORD,KEYWORD",
              help="A tag and its keywords (repeat for more; asked when none is given).")
@click.option("--timezone", default="Asia/Seoul", show_default=True, prompt="Time zone")
@click.option("--collect", default="30 10 * * 1-5", show_default=True,
              prompt="When to collect (cron)")
@click.option("--send", default="0 18 * * 1-5", show_default=True, prompt="When to send (cron)")
@click.option("--transport", type=click.Choice(["smtp", "outbox"]), default="smtp",
              show_default=True, prompt="Transport",
              help='"smtp" mails readers; "outbox" only writes files (a demo).')
@click.option("--smtp-host", default="localhost", show_default=True)
@click.option("--smtp-port", default=587, show_default=True, type=int)
@click.option("--smtp-username", default="", help="Password: env DIGEST_SMTP_PASSWORD.")
@click.option("--arxiv-url", "rss_url", default=None, hidden=True,
              help="The arXiv RSS URL template (tests: a local server).")
@click.option("--arxiv-api-url", "api_url", default=None, hidden=True)
def init(folder: Path, name: str, sender: str, base_url: str, languages: str,
         categories: str, tags: tuple[str, ...], timezone: str, collect: str, send: str,
         transport: str, smtp_host: str, smtp_port: int, smtp_username: str,
         rss_url: str | None, api_url: str | None) -> None:
    """Make a new newsletter folder: FOLDER/config/digest.toml (commented), notes/, drafts/.

    Asks for what it is not given as flags. Run the other commands inside FOLDER (or set
    DIGEST_CONFIG=FOLDER/config/digest.toml) and they find the config without --config."""
    from pipeline.core import config as cfg
    from pipeline.core.files import write_atomic

    path = folder / "config" / "digest.toml"
    if not tags:
        tags = (click.prompt("A tag and its keywords (NAME=KEYWORD,KEYWORD)",
                             default="reward-model=reward model,process reward"),)
    rules = []
    for spec in tags:
        key, _, words = spec.partition("=")
        keywords = tuple(w.strip() for w in words.split(",") if w.strip())
        if not key.strip() or not keywords:
            raise InputError(f"--tag {spec!r}: expected NAME=KEYWORD,KEYWORD")
        rules.append((key.strip().lstrip("#"), keywords))
    defaults = cfg.ArxivSettings()
    answers = cfg.InitAnswers(
        name=name, sender=sender, base_url=base_url,
        languages=tuple(v.strip() for v in languages.split(",") if v.strip()),
        categories=tuple(v.strip() for v in categories.split(",") if v.strip()),
        tags=tuple(rules), timezone=timezone, collect=collect, send=send,
        transport=transport, smtp_host=smtp_host, smtp_port=smtp_port,
        smtp_username=smtp_username, rss_url=rss_url or defaults.rss_url,
        api_url=api_url or defaults.api_url,
    )
    text = cfg.init_config_text(answers)
    cfg.parse_config(text, path, folder)  # a bad answer is reported before anything is written
    for sub in ("config", "notes", "drafts"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)
    click.echo(f"wrote {path}")
    click.echo(f"next: cd {folder}, set DIGEST_SECRET, add yourself with "
               "`digest subscribers add ADDRESS`, then `digest run`")


@cli.group()
def rank() -> None:
    """The learned ranking of a day's candidates."""


@rank.command(name="train")
@date_option
@click.option("--force", is_flag=True, help="Train even when the history has not changed.")
@json_option
@pass_ctx
def rank_train(ctx: Context, day: date | None, force: bool, as_json: bool) -> None:
    """Train the ranking model from this newsletter's notes, sent issues, studio picks and
    dismissals, and collected candidates (`digest collect` does it when they changed)."""
    from pipeline.services import ranking

    report = ranking.train(ctx.settings, ctx.day(day), ctx.runtime(), force=force)
    _report(report, as_json)


@rank.command(name="eval")
@click.option("--train", "train_file", type=click.Path(path_type=Path), metavar="DAYS",
              help="Listing days with picks to learn from before the test days (JSON lines).")
@click.option("--history", "history_file", type=click.Path(path_type=Path), metavar="PICKS",
              help="Earlier picks, positives only (JSON lines).")
@click.option("--test", "test_file", type=click.Path(path_type=Path), metavar="DAYS",
              required=True, help="Listing days to rank, each with a model of the days before it.")
@click.option("--retrain-days", type=click.IntRange(1, 366), default=7, show_default=True,
              help="Retrain once this many days have passed since the last training.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random order.")
@click.option("--json", "as_json", is_flag=True, help="Print rankings and metrics as JSON.")
@pass_ctx
def rank_eval(ctx: Context, train_file: Path | None, history_file: Path | None, test_file: Path,
              retrain_days: int, seed: int, as_json: bool) -> None:
    """Rank each test day online and compare with the tag rules' and a random order."""
    from pipeline.collect.tags import compile_rules, match_paper
    from pipeline.core.models import Paper
    from pipeline.curate import rank_eval as evaluation
    from pipeline.curate.ranking import RankPaper

    history = evaluation.read_history(history_file) if history_file is not None else ()
    train = evaluation.read_days(train_file) if train_file is not None else ()
    test = evaluation.read_days(test_file)
    rules = compile_rules(ctx.settings.tags)

    def tag_score(p: RankPaper) -> float:
        return match_paper(Paper(str(p.arxiv_id), p.title, p.authors, p.abstract), rules).score

    report = evaluation.evaluate(history, train, test, tag_score, retrain_days=retrain_days,
                                 seed=seed)
    if as_json:
        click.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
        return
    for day, ids in report.rankings.items():
        click.echo(f"{day.isoformat()} {' '.join(ids)}")
    learned = report.metrics["learned"]
    click.echo(f"\n{len(report.rankings)} test days, {learned.days} with picks; "
               f"{len(report.retrained)} trainings; in the tag rules' order for want of a "
               f"model: {len(report.fallback_days)}; earlier picks used: {report.history_used}")
    click.echo(f"{'method':<10} {'recall@10':>9} {'recall@20':>9} {'nDCG@10':>8} {'MRR':>6}")
    for name, m in report.metrics.items():
        click.echo(f"{name:<10} {m.recall_at_10:>9.3f} {m.recall_at_20:>9.3f} "
                   f"{m.ndcg_at_10:>8.3f} {m.mrr:>6.3f}")


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



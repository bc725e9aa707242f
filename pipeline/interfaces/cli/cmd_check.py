"""`digest check` and `digest fmt`: validate and format digest, draft and note files."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pipeline.core.errors import FormatError, InputError
from pipeline.interfaces.cli.base import Context, cli, pass_ctx

if TYPE_CHECKING:
    from pipeline.curate.checking import Context as CheckContext
    from pipeline.curate.checking import FileReport
    from pipeline.curate.lint import Finding


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
